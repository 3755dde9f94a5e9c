"""The inference engines ``edgecnn bench`` compares with beyond ONNX Runtime and PyTorch.

Each is a pip package of the ``bench`` extra, given the model the way its users give it:

- ``openvino``: the exported ONNX file read by OpenVINO's ONNX front end (``Core.read_model``;
  not ``convert_model``/``ovc``, which send telemetry), compiled for "CPU" with
  ``INFERENCE_NUM_THREADS`` = threads, ``PERFORMANCE_HINT`` LATENCY, one stream, and
  ``INFERENCE_PRECISION_HINT`` f32 (on a CPU with AVX512_BF16 it may otherwise pick bf16);
- ``ncnn``: the ONNX file converted by ``pnnx`` (its executable, with ``fp16=0``: float32
  weights), run by ``ncnn.Net`` with ``num_threads`` = threads and fp16 storage/arithmetic off
  (ncnn stores weights in fp16 by default where the CPU has F16C; the other engines compute in
  float32);
- ``mnn``: the ONNX file converted by MNN's converter, called as ``_tools.mnnconvert`` in a
  child process. Not the ``mnnconvert`` command nor ``MNN.tools``: importing those runs
  ``pip install aliyun-log-python-sdk`` (which downgrades protobuf and breaks ``import onnx``)
  and uploads a usage log. Run through the session API, ``numThread`` = threads, precision
  "normal";
- ``litert``: LiteRT (``ai_edge_litert``) with its default XNNPACK delegate, on a float32 copy
  of the ``.tflite`` the model was imported from (:mod:`edgecnn.formats.tflite_float`); a model
  that did not come from a ``.tflite`` has no LiteRT form (edgecnn does not write .tflite).

Every engine gets (1, H, W, C) float32 input converted to its own layout outside the timing
and returns the model's output, compared with edgecnn's reference by
:mod:`edgecnn.publish.bench` before it is timed.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys

import numpy as np

from ..core.graph import Graph
from .bench import BackendUnavailable, _nchw_to_nhwc, _Runner, onnx_file

EXTRA = "pip install 'edgecnn[bench]'"


def _need(module: str, dist: str):
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise BackendUnavailable(f"not installed: {EXTRA} (needs {dist}: {e})") from None


def _nchw_feed(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _run_tool(cmd: list[str], what: str, cwd: str) -> None:
    """Run a converter; a failure is the peer's reason for not running (its output's tail)."""
    try:
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BackendUnavailable(f"{what} failed: {e}") from None
    if p.returncode != 0:
        tail = " | ".join((p.stdout + p.stderr).strip().splitlines()[-3:])
        raise BackendUnavailable(f"{what} failed (exit {p.returncode}): {tail}")


# ---- OpenVINO -----------------------------------------------------------------------------

def openvino_runner(graph: Graph, t: int, tmp: str, sources: dict) -> _Runner:
    ov = _need("openvino", "openvino")
    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": t, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
              "INFERENCE_PRECISION_HINT": "f32"}
    try:
        compiled = core.compile_model(core.read_model(onnx_file(graph, tmp)), "CPU", config)
    except RuntimeError as e:  # an op its ONNX front end or CPU plugin does not take
        raise BackendUnavailable(f"OpenVINO cannot compile the ONNX model: {e}") from None
    req = compiled.create_infer_request()

    def run(x):
        req.infer({0: x})
        return req.get_output_tensor(0).data.copy()  # the request reuses its buffer

    return _Runner("openvino", t, run, prepare=_nchw_feed, nhwc=_nchw_to_nhwc,
                   details={"target": "CPU", "source": "ONNX (read_model)", **config})


# ---- ncnn (pnnx converts) -------------------------------------------------------------------

def pnnx_executable() -> str:
    """The ``pnnx`` program inside the pip package (found without importing it: its module
    imports torch)."""
    spec = importlib.util.find_spec("pnnx")
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailable(f"not installed: {EXTRA} (needs pnnx, ncnn's converter)")
    exe = os.path.join(list(spec.submodule_search_locations)[0], "pnnx")
    if not os.access(exe, os.X_OK):
        raise BackendUnavailable(f"the pnnx package has no executable at {exe}")
    return exe


def ncnn_files(graph: Graph, tmp: str) -> tuple[str, str]:
    """``graph``'s ONNX export converted by pnnx to ncnn's model.ncnn.param/.bin (once)."""
    out = os.path.join(tmp, "ncnn")
    param, weights = os.path.join(out, "model.ncnn.param"), os.path.join(out, "model.ncnn.bin")
    if os.path.exists(param):
        return param, weights
    os.makedirs(out, exist_ok=True)
    h, w, c = graph.input_shape
    onnx = onnx_file(graph, tmp)
    # pnnx writes several side files (pnnx param/bin/py, a simplified onnx): keep them in `out`
    side = {k: os.path.join(out, f"model.{k}") for k in ("pnnx.param", "pnnx.bin", "pnnx.onnx")}
    _run_tool([pnnx_executable(), onnx, f"inputshape=[1,{c},{h},{w}]", "fp16=0",
               f"ncnnparam={param}", f"ncnnbin={weights}", f"pnnxparam={side['pnnx.param']}",
               f"pnnxbin={side['pnnx.bin']}", f"pnnxonnx={side['pnnx.onnx']}",
               f"pnnxpy={os.path.join(out, 'model_pnnx.py')}",
               f"ncnnpy={os.path.join(out, 'model_ncnn.py')}"], "pnnx (ONNX -> ncnn)", out)
    if not os.path.exists(param):
        raise BackendUnavailable("pnnx wrote no ncnn model")
    return param, weights


def _ncnn_blobs(param: str) -> tuple[str, str]:
    """The input blob (the Input layer's top) and the output blob (the last layer's top)."""
    with open(param, encoding="utf-8") as f:
        rows = [line.split() for line in f.read().splitlines()[2:] if line.strip()]
    inputs = [r for r in rows if r[0] == "Input"]
    if len(inputs) != 1:
        raise BackendUnavailable(f"{param}: expected one Input layer, found {len(inputs)}")

    def top(r):  # type name n_bottom n_top bottoms... tops... params...
        nb, nt = int(r[2]), int(r[3])
        return r[4 + nb: 4 + nb + nt]

    return top(inputs[0])[0], top(rows[-1])[-1]


def ncnn_runner(graph: Graph, t: int, tmp: str, sources: dict) -> _Runner:
    ncnn = _need("ncnn", "ncnn")
    param, weights = ncnn_files(graph, tmp)
    blob_in, blob_out = _ncnn_blobs(param)
    net = ncnn.Net()
    net.opt.num_threads = t
    net.opt.use_fp16_storage = net.opt.use_fp16_packed = net.opt.use_fp16_arithmetic = False
    if net.load_param(param) != 0 or net.load_model(weights) != 0:
        raise BackendUnavailable(f"ncnn cannot load {param}")

    def prepare(x):  # (1, H, W, C) -> one C×H×W image
        return np.ascontiguousarray(x[0].transpose(2, 0, 1))

    def run(chw):
        ex = net.create_extractor()
        ex.input(blob_in, ncnn.Mat(chw))
        rc, out = ex.extract(blob_out)
        if rc != 0:
            raise RuntimeError(f"ncnn: extracting {blob_out!r} failed ({rc})")
        y = np.array(out)
        return y.transpose(1, 2, 0)[None] if y.ndim == 3 else y[None]

    return _Runner("ncnn", t, run, prepare=prepare,
                   details={"target": "cpu", "source": "ONNX -> pnnx (fp16=0)",
                            "fp16": False, "num_threads": t})


# ---- MNN ------------------------------------------------------------------------------------

# the converter extension alone: `import MNN.tools` (and the mnnconvert command) would run the
# usage logger, which pip-installs a package and uploads a log (see the module doc)
_MNNCONVERT = "import sys, _tools; sys.exit(0 if _tools.mnnconvert(sys.argv) else 1)"


def mnn_file(graph: Graph, tmp: str) -> str:
    path = os.path.join(tmp, "model.mnn")
    if not os.path.exists(path):
        if importlib.util.find_spec("_tools") is None:
            raise BackendUnavailable(f"not installed: {EXTRA} (needs MNN, for its converter)")
        _run_tool([sys.executable, "-c", _MNNCONVERT, "-f", "ONNX", "--modelFile",
                   onnx_file(graph, tmp), "--MNNModel", path, "--bizCode", "edgecnn"],
                  "MNN's converter (ONNX -> MNN)", tmp)
    if not os.path.exists(path):
        raise BackendUnavailable("MNN's converter wrote no model")
    return path


def mnn_runner(graph: Graph, t: int, tmp: str, sources: dict) -> _Runner:
    mnn = _need("MNN", "MNN")
    path = mnn_file(graph, tmp)
    interp = mnn.Interpreter(path)
    config = {"numThread": t, "precision": "normal", "backend": "CPU"}
    session = interp.createSession(config)
    x_in = interp.getSessionInput(session)
    shape = (1, graph.input_shape[2], *graph.input_shape[:2])
    f32, nchw = mnn.Halide_Type_Float, mnn.Tensor_DimensionType_Caffe

    def run(x):
        x_in.copyFrom(mnn.Tensor(shape, f32, x, nchw))
        interp.runSession(session)
        out = interp.getSessionOutput(session)
        host = mnn.Tensor(out.getShape(), f32, np.zeros(out.getShape(), np.float32), nchw)
        out.copyToHostTensor(host)
        return np.array(host.getNumpyData(), np.float32).reshape(out.getShape())

    return _Runner("mnn", t, run, prepare=_nchw_feed, nhwc=_nchw_to_nhwc,
                   details={"target": "CPU", "source": "ONNX -> MNN converter", **config})


# ---- LiteRT ---------------------------------------------------------------------------------

def litert_runner(graph: Graph, t: int, tmp: str, sources: dict) -> _Runner:
    path = sources.get("tflite")
    if not path:
        raise BackendUnavailable("LiteRT runs .tflite files; this model was not imported from "
                                 "one (edgecnn writes ONNX, not .tflite)")
    interp_mod = _need("ai_edge_litert.interpreter", "ai-edge-litert")
    if any(l.spec.integer for l in graph.layers):
        return _litert_integer(interp_mod, graph, path, t)
    from ..formats.tflite_float import float_tflite

    drop = graph.output.kind != "softmax"  # the graph gives logits: so must the copy
    interp = interp_mod.Interpreter(model_content=float_tflite(path, drop_softmax=drop),
                                    num_threads=t)
    interp.allocate_tensors()
    (i,), (o,) = interp.get_input_details(), interp.get_output_details()
    if tuple(i["shape"][1:]) != tuple(graph.input_shape):
        raise BackendUnavailable(f"{path}: input {tuple(i['shape'])} is not the graph's "
                                 f"{graph.input_shape}")

    def run(x):
        interp.set_tensor(i["index"], x)
        interp.invoke()
        return interp.get_tensor(o["index"])

    return _Runner("litert", t, run,
                   details={"target": "cpu", "source": f"float32 copy of "
                            f"{os.path.basename(path)}", "delegate": "XNNPACK (default)",
                            "num_threads": t})


def _litert_integer(interp_mod, graph: Graph, path: str, t: int) -> _Runner:
    """The integer graph's own file, run as integers by LiteRT's default (XNNPACK) kernels: the
    input quantized (untimed) with the file's input parameters, the output dequantized for the
    agreement check (XNNPACK requantizes differently: expect a step of difference)."""
    from .. import quant

    interp = interp_mod.Interpreter(model_path=str(path), num_threads=t)
    interp.allocate_tensors()
    (i,), (o,) = interp.get_input_details(), interp.get_output_details()
    if tuple(i["shape"][1:]) != tuple(graph.input_shape) or i["dtype"] == np.float32:
        raise BackendUnavailable(f"{path}: input {tuple(i['shape'])} {i['dtype'].__name__} is "
                                 f"not the integer graph's {graph.input_shape} input")
    (si, zi), (so, zo) = i["quantization"], o["quantization"]
    dtype = np.dtype(i["dtype"]).name

    def run(q):
        interp.set_tensor(i["index"], q)
        interp.invoke()
        return interp.get_tensor(o["index"])

    return _Runner("litert", t, run, prepare=lambda x: quant.quantize(x, si, zi, dtype),
                   nhwc=lambda y: ((y - zo) * so).reshape(1, *graph.output_shape),
                   details={"target": "cpu", "source": f"{os.path.basename(path)} (integer)",
                            "delegate": "XNNPACK (default)", "num_threads": t})


FACTORIES = {"openvino": openvino_runner, "ncnn": ncnn_runner, "mnn": mnn_runner,
             "litert": litert_runner}
