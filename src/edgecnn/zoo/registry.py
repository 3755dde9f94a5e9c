"""The architecture registry: builder functions registered by name (timm/torchvision style)."""

from __future__ import annotations

import difflib
from collections.abc import Callable

from ..core.graph import Graph
from ..errors import EdgecnnError

Builder = Callable[[], Graph]

_BUILDERS: dict[str, Builder] = {}


def register(name: str) -> Callable[[Builder], Builder]:
    """Decorator: register a function returning a weightless Graph under ``name``."""

    def deco(fn: Builder) -> Builder:
        if name in _BUILDERS:
            raise ValueError(f"an architecture named {name!r} is already registered")
        _BUILDERS[name] = fn
        return fn

    return deco


def names() -> list[str]:
    """Every registered architecture name, sorted."""
    return sorted(_BUILDERS)


def is_registered(name: str) -> bool:
    return name in _BUILDERS


def build(name: str) -> Graph:
    """The registered graph (no weights); an unknown name lists the close matches."""
    try:
        fn = _BUILDERS[name]
    except KeyError:
        raise EdgecnnError(unknown_message(name)) from None
    return fn()


def unknown_message(name: str) -> str:
    close = difflib.get_close_matches(name, names(), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return (f"unknown architecture {name!r}{hint} (`edgecnn list` shows all registered names; "
            "an ELL architecture string such as dr_I64x64x3CMCMC1AS also works)")
