"""The PyTorch backend: a Graph as a trainable ``torch.nn.Module``, and trained weights back.

``to_module(graph)`` builds one submodule per layer (the input layer has none) and runs them in
the graph's order, so any DAG (``add``, ``concat``) works. The module takes NCHW float32 (torch's
native layout) and returns the output layer's result as NCHW; a dense layer's ``(1, 1, units)``
comes out as ``(N, units, 1, 1)``.

Every layer means exactly what its numpy reference in ``edgecnn.layers`` computes; each kind's
module holds its torch lowering (``LayerKind.to_torch``) and says how (explicit padding where
torch pads symmetrically, the ONNX LRN window, H, W, C flattening, BinaryNet's clipped
straight-through estimator for binary_conv2d). The module classes live in ``graph_module.py``
and ``layers/_torch.py``, imported on first use, so importing this file needs no torch.

Parameter names: the submodule of layer ``L`` is ``module.layers[module.key_of[L]]`` (the name
with "." replaced, since torch forbids dots in module names), and ``module.state_keys`` maps
every graph tensor key ``"L.t"`` to its state_dict key, e.g. ``"bn1.mean"`` →
``"layers.bn1.running_mean"``, ``"conv1.weight"`` → ``"layers.conv1.conv.weight"``.
Batch normalization is ``nn.BatchNorm2d`` (so training updates the running statistics and
``nn.SyncBatchNorm.convert_sync_batchnorm`` applies).
"""

from __future__ import annotations

import numpy as np

from ..core.graph import Graph
from ..errors import EdgecnnError, GraphError, require


def _torch():
    return require("torch", "torch")


def to_module(graph: Graph):
    """An ``nn.Module`` computing ``graph`` (weights copied from ``graph.weights``)."""
    graph.check_weights(f"model {graph.name!r}")
    _torch()  # a clear error naming the extra when torch is missing
    from .graph_module import GraphModule

    module = GraphModule(graph)
    load_graph_weights(module, graph)
    return module


def load_graph_weights(module, graph: Graph) -> None:
    """Copy ``graph.weights`` into the module's parameters and buffers (in place)."""
    torch = _torch()
    state = module.state_dict()
    with torch.no_grad():
        for key, torch_key in module.state_keys.items():
            value = torch.from_numpy(np.asarray(graph.weights[key], dtype=np.float32))
            if tuple(state[torch_key].shape) != tuple(value.shape):
                raise GraphError(f"tensor {key!r} has shape {tuple(value.shape)}, the torch "
                                 f"module expects {tuple(state[torch_key].shape)}")
            state[torch_key].copy_(value)


def to_graph_weights(module, graph: Graph) -> dict[str, np.ndarray]:
    """The module's trained tensors as graph weights (float32, keyed ``"<layer>.<tensor>"``)."""
    state = module.state_dict()
    out = {}
    for key, torch_key in module.state_keys.items():
        out[key] = state[torch_key].detach().cpu().numpy().astype(np.float32).copy()
    missing = sorted(set(graph.tensor_specs()) - set(out))
    if missing:
        raise EdgecnnError(f"the torch module has no tensor for {', '.join(missing)}: it was "
                           f"not built from model {graph.name!r}")
    return out


def update_graph(graph: Graph, module) -> Graph:
    """Write the module's trained weights (and batch-norm running statistics) into ``graph``."""
    graph.weights = to_graph_weights(module, graph)
    graph.check_weights(f"model {graph.name!r}")
    return graph
