"""PyTorch modules → Graph, through ONNX.

The module is exported with ``torch.onnx.export`` (the TorchScript-based exporter,
``dynamo=False``: it needs no onnxscript and folds batch norm into convolutions in eval mode)
to a temporary file at opset 13, which the ONNX importer then reads. Layers the ONNX importer
does not support are reported by their ONNX node names (e.g. ``/features/features.3/Mul``).
"""

from __future__ import annotations

import os
import tempfile
import warnings

from ...core.graph import Graph, Preprocessing
from ...errors import EdgecnnError, require

OPSET = 13


def import_torch(module, example_input, name: str | None = None,
                 preprocessing: Preprocessing | None = None) -> Graph:
    """Export ``module`` (in eval mode) on ``example_input`` (N, C, H, W) and import it."""
    torch = require("torch", "torch")
    require("onnx", "onnx")
    from .onnx import import_onnx

    if example_input.ndim != 4:
        raise EdgecnnError(f"example_input must be (N, C, H, W), got {tuple(example_input.shape)}")
    example_input = example_input[:1]  # edgecnn graphs are exported at batch 1
    was_training = module.training
    module.eval()
    fd, tmp = tempfile.mkstemp(suffix=".onnx")
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation notice
            try:
                torch.onnx.export(module, (example_input,), tmp, dynamo=False,
                                  opset_version=OPSET, do_constant_folding=True,
                                  input_names=["input"], output_names=["output"])
            except Exception as e:
                raise EdgecnnError(f"PyTorch could not export {type(module).__name__} to ONNX "
                                   f"({type(e).__name__}: {e})") from None
        g = import_onnx(tmp, preprocessing)
    finally:
        module.train(was_training)
        os.unlink(tmp)
    g.name = name or type(module).__name__
    g.meta["source"] = {"format": "torch", "module": type(module).__name__,
                        "via": f"torch.onnx.export (TorchScript, opset {OPSET})"}
    return g
