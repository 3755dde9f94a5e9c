"""The torch module of a whole graph: one submodule per layer, from the layer kind's
``to_torch`` lowering, run in the graph's order (any DAG). Imported lazily (by
:func:`edgecnn.train.torch_module.to_module`): it imports torch at its top."""

from __future__ import annotations

import torch
from torch import nn

from ..core.graph import Graph
from ..errors import EdgecnnError, GraphError
from ..layers import lowers_to


class GraphModule(nn.Module):
    """Runs the graph's layers in order; input and output NCHW float32."""

    def __init__(self, graph: Graph):
        super().__init__()
        self.graph_name = graph.name
        self.order: list[tuple[str, str, tuple[str, ...]]] = []  # (layer, key, inputs)
        self.key_of: dict[str, str] = {}
        self.state_keys: dict[str, str] = {}
        self.layers = nn.ModuleDict()
        self.input_name = graph.input.name
        self.output_name = graph.output.name
        self.input_shape = graph.input_shape
        for l in graph.layers[1:]:
            if not lowers_to(l.spec, "torch"):
                raise GraphError(f"layer {l.name!r}: the torch backend has no layer of kind "
                                 f"{l.kind!r}")
            key = _module_key(l.name, self.key_of)
            self.key_of[l.name] = key
            ins = graph.input_shapes(l)
            self.layers[key] = l.spec.to_torch(l.attrs, ins)
            self.order.append((l.name, key, l.inputs))
            names = l.spec.torch_names(l.attrs)
            for t in l.spec.tensors(l.attrs, ins):
                self.state_keys[f"{l.name}.{t}"] = f"layers.{key}.{names.get(t, t)}"
        self._last_use = {}
        for i, (_, _, inputs) in enumerate(self.order):
            for src in inputs:
                self._last_use[src] = i

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w, c = self.input_shape
        if x.dim() != 4 or tuple(x.shape[1:]) != (c, h, w):
            raise EdgecnnError(f"model {self.graph_name!r} takes NCHW input of shape "
                               f"(N, {c}, {h}, {w}), got {tuple(x.shape)}")
        acts = {self.input_name: x}
        for i, (name, key, inputs) in enumerate(self.order):
            acts[name] = self.layers[key](*[acts[s] for s in inputs])
            for src in inputs:  # free buffers after their last reader
                if self._last_use[src] == i and src != self.output_name:
                    acts.pop(src, None)
        return acts[self.output_name]


def _module_key(name: str, taken: dict[str, str]) -> str:
    """A torch module name for a layer name: no dots (torch forbids them), unique."""
    key = name.replace(".", "_")
    used = set(taken.values())
    n = 1
    base = key
    while key in used:
        n += 1
        key = f"{base}_{n}"
    return key
