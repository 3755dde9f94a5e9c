"""edgecnn: ImageNet classifiers from an architecture string to fast, dependency-free C."""

from ._version import __version__
from .core.accounting import summarize
from .core.graph import Graph, GraphBuilder, Layer, Preprocessing
from .errors import EdgecnnError


def compile(model, target="host", threads=None, **options):  # noqa: A001 - the product's verb
    """Build ``model`` (a Graph, model file, pretrained or zoo name) into C for ``target`` and
    load it: ``.predict(batch)`` runs it.

    See :func:`edgecnn.compiler.api.compile` (imported lazily: it needs a C compiler only).
    """
    from .apps.resolve import resolve
    from .compiler.api import compile as _compile

    return _compile(resolve(model), target, threads, **options)


__all__ = ["EdgecnnError", "Graph", "GraphBuilder", "Layer", "Preprocessing", "__version__",
           "compile", "summarize"]
