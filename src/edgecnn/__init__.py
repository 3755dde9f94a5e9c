"""edgecnn: ImageNet classifiers from an architecture string to fast, dependency-free C."""

__version__ = "0.1.0"

from .accounting import summarize  # noqa: E402
from .errors import EdgecnnError  # noqa: E402
from .graph import Graph, GraphBuilder, Layer, Preprocessing  # noqa: E402

__all__ = ["EdgecnnError", "Graph", "GraphBuilder", "Layer", "Preprocessing", "summarize"]
