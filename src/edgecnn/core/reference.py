"""The numpy reference interpreter: the oracle every other backend is tested against.

Runs a batch ``(N, H, W, C)`` of preprocessed float32 inputs through the graph in layer order,
each layer by its kind's vectorized ``forward``; buffers are dropped after their last reader.
"""

from __future__ import annotations

import numpy as np

from ..errors import EdgecnnError
from .graph import Graph


def check_input(g: Graph, x: np.ndarray, what: str = "model") -> np.ndarray:
    """Accept (H, W, C) or (N, H, W, C) of the graph's input shape, float or integer (every
    backend checks input with this); return float32 NHWC."""
    x = np.asarray(x)
    given = tuple(x.shape)  # as the caller passed it, for the message
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or tuple(x.shape[1:]) != g.input_shape:
        h, w, c = g.input_shape
        raise EdgecnnError(f"{what} {g.name!r} takes input of shape (N, {h}, {w}, {c}) or "
                           f"({h}, {w}, {c}), got {given}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise EdgecnnError(f"{what} {g.name!r} takes a numeric input, got dtype {x.dtype}")
    return np.ascontiguousarray(x, dtype=np.float32)


def run(g: Graph, x: np.ndarray, outputs: list[str] | None = None) -> np.ndarray | dict:
    """Run the graph; return the output ``(N, H, W, C)``, or a dict of the named layers'."""
    x = check_input(g, x)
    last_use: dict[str, int] = {}
    for i, l in enumerate(g.layers):
        for src in l.inputs:
            last_use[src] = i
    keep = set(outputs or ()) | {g.output.name}
    acts: dict[str, np.ndarray] = {g.input.name: x}
    wanted = {}
    for i, l in enumerate(g.layers[1:], start=1):
        y = l.spec.forward(l.attrs, [acts[s] for s in l.inputs], g.layer_weights(l))
        acts[l.name] = y
        if l.name in keep:
            wanted[l.name] = y
        for src in set(l.inputs):  # a set: a layer may read one input twice (x + x)
            if last_use[src] == i and src not in keep:
                del acts[src]
    if g.input.name in keep:
        wanted[g.input.name] = x
    if outputs is None:
        return wanted[g.output.name]
    return {n: wanted[n] for n in outputs}


def predict(g: Graph, x: np.ndarray) -> np.ndarray:
    """Run the graph and flatten its output to ``(N, classes)``."""
    y = run(g, x)
    return y.reshape(y.shape[0], -1)
