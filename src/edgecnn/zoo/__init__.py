"""The architecture zoo: registered names, plus any ELL architecture string parsed on the fly
(a gallery-form name by its family's rules, any other string literally: see ``zoo.rules``).

``get(name)`` returns a Graph without weights (call ``.init_weights(seed)`` for random ones).
Register a new architecture with ``@register("name")`` on a function returning its Graph.
"""

from __future__ import annotations

from ..core.graph import Graph
from ..errors import EdgecnnError
from . import alexnet, ell, ell_gallery, rules  # noqa: F401 - imported to register their architectures
from .registry import is_registered, names, register, unknown_message


def get(name: str) -> Graph:
    """A registered architecture, or an ELL architecture string such as ``dr_I64x64x3CMC1AS``."""
    from .registry import build

    if is_registered(name):
        return build(name)
    if ell.looks_like_ell(name):
        return rules.graph(name)
    raise EdgecnnError(unknown_message(name))


def catalog() -> list[dict]:
    """One entry per registered architecture: name, input (H, W, C), params, MACs, description."""
    from ..core.accounting import summarize

    out = []
    for name in names():
        g = get(name)
        s = summarize(g)
        out.append({"name": name, "input": list(g.input_shape), "params": s.total_params,
                    "macs": s.total_macs, "description": g.meta.get("description", "")})
    return out


__all__ = ["catalog", "get", "names", "register"]
