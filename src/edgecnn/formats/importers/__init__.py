"""Importers: models trained elsewhere become a :class:`~edgecnn.core.graph.Graph`.

``import_model(path)`` chooses by file type: ``.onnx`` (ONNX), ``.tflite`` (TensorFlow Lite),
``.cfg`` with an optional ``.weights`` (Darknet). PyTorch modules go through
:func:`edgecnn.formats.importers.torch.import_torch` (an ONNX export, then the ONNX importer).

An importer is faithful or fails: an operator it cannot express stops the import with one
message listing every such operator (name and type); nothing is skipped silently.

Labels of 1001-class models (TF-slim, TFLite): output 0 is "background" and output i >= 1 is
ILSVRC2012 class i - 1. Such a graph's labels are the list ``["background", <WNID of class 0>,
…, <WNID of class 999>]`` (:func:`ilsvrc2012_with_background`), so classification and
evaluation by WNID need nothing special.
"""

from __future__ import annotations

import os
import struct

from ...core.graph import Graph
from ...errors import MALFORMED, EdgecnnError, ModelFileError, malformed


class UnsupportedModelError(EdgecnnError):
    """A model that uses operators or attributes edgecnn cannot express."""


def import_model(path: str | os.PathLike, weights: str | os.PathLike | None = None,
                 fake_quant: bool = False, as_float: bool = False) -> Graph:
    """Read a model file (.onnx, .tflite, Darknet .cfg [+ .weights]) into a Graph.

    A quantized .tflite becomes an integer graph, bit-exact with LiteRT's reference kernels,
    unless ``as_float`` (a float graph) or ``fake_quant`` (a float graph that keeps LiteRT's
    activation rounding as ``fake_quant`` layers).
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if not os.path.isfile(path):
        raise EdgecnnError(f"{path}: no such file")
    if weights is not None and ext != ".cfg":
        raise EdgecnnError(f"{path}: a separate weights file is only used with a Darknet .cfg")
    if weights is not None and not os.path.isfile(weights):
        raise EdgecnnError(f"{weights}: no such file")
    if fake_quant and ext != ".tflite":
        raise EdgecnnError(f"{path}: fake quantization applies to quantized .tflite models only")
    kinds = {".onnx": "ONNX model", ".tflite": "TFLite model", ".cfg": "Darknet model"}
    if ext in kinds:
        try:
            return _import(path, ext, weights, fake_quant, as_float)
        except EdgecnnError:
            raise
        except (*MALFORMED, struct.error) as e:  # a parser tripped on the file's contents
            raise ModelFileError(malformed(path, kinds[ext], e)) from None
    if ext in (".pt", ".pth"):
        raise EdgecnnError(f"{path}: a PyTorch checkpoint holds no graph; in Python call "
                           "edgecnn.formats.importers.torch.import_torch(module, "
                           "example_input), or export the module to ONNX and import the .onnx file")
    raise EdgecnnError(f"{path}: unknown model file type {ext or '(none)'!r}; edgecnn imports "
                       ".onnx, .tflite and Darknet .cfg (+ .weights)")


def _import(path: str, ext: str, weights, fake_quant: bool, as_float: bool) -> Graph:
    if ext == ".onnx":
        from .onnx import import_onnx

        return import_onnx(path)
    if ext == ".tflite":
        from .tflite import import_tflite

        return import_tflite(path, fake_quant=fake_quant, as_float=as_float)
    from .darknet import import_darknet

    return import_darknet(path, weights)


def convert(path: str | os.PathLike, out: str | os.PathLike,
            weights: str | os.PathLike | None = None, fake_quant: bool = False,
            as_float: bool = False) -> dict:
    """Import ``path`` and save it as an edgecnn model file; returns a JSON-ready report."""
    from ...core.accounting import summarize
    from ..modelfile import save

    g = import_model(path, weights, fake_quant, as_float)
    save(g, out)
    s = summarize(g)
    return {"source": os.fspath(path), "output": os.fspath(out), "name": g.name,
            "layers": len(g.layers), "input": list(g.input_shape), "outputs": g.num_classes,
            "params": s.total_params, "macs": s.total_macs,
            "preprocessing": g.preprocessing.to_json(),
            "labels": g.labels if isinstance(g.labels, str) else f"{len(g.labels)} names",
            "notes": g.meta.get("notes", [])}


def ilsvrc2012_with_background() -> list[str]:
    """1001 labels: "background", then the ILSVRC2012 WNIDs in standard class order."""
    from ...core.labels import ilsvrc2012

    return ["background"] + [wnid for wnid, _ in ilsvrc2012()]


def unsupported(source: str, items: list[str]) -> UnsupportedModelError:
    """One error listing every unsupported operator of a model."""
    lines = "\n".join(f"  - {s}" for s in items)
    return UnsupportedModelError(
        f"{source}: {len(items)} operator(s) edgecnn cannot import:\n{lines}\n"
        "edgecnn imports none of the model rather than part of it.")
