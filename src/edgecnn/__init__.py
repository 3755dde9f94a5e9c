"""edgecnn: ImageNet classifiers from an architecture string to fast, dependency-free C."""

__version__ = "0.1.0"

from .core.accounting import summarize  # noqa: E402
from .core.graph import Graph, GraphBuilder, Layer, Preprocessing  # noqa: E402
from .errors import EdgecnnError  # noqa: E402


def compile(model, target="host", threads=None, **options):  # noqa: A001 - the product's verb
    """Build ``model`` into C for ``target`` and load it: ``.predict(batch)`` runs it.

    See :func:`edgecnn.compiler.api.compile` (imported lazily: it needs a C compiler only).
    """
    from .compiler.api import compile as _compile

    return _compile(model, target, threads, **options)


__all__ = ["EdgecnnError", "Graph", "GraphBuilder", "Layer", "Preprocessing", "compile",
           "summarize"]
