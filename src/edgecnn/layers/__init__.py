"""Layer kinds. Every module of this package (but ``base`` and private ones) defines kinds that
register themselves on import; importing the package imports them all (discovery, no list)."""

import importlib
import pkgutil

from .base import (
    LOWERINGS,
    Attr,
    LayerKind,
    Shape,
    TensorSpec,
    all_kinds,
    get_kind,
    lowers_to,
    register,
)


def _discover() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.name != "base" and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_discover()

__all__ = ["LOWERINGS", "Attr", "LayerKind", "Shape", "TensorSpec", "all_kinds", "get_kind",
           "lowers_to", "register"]
