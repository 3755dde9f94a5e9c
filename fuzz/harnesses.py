"""Fuzz targets: each takes arbitrary bytes and must either succeed or raise an EdgecnnError.

Any other exception (or a crash, a hang, a runaway allocation) is a finding. Each target has
a seed function writing tiny valid inputs, made the way the tests make them.

    TARGETS[name] = (one_input(data: bytes) -> None, seeds() -> list[bytes])
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # testutil: the tiny graphs the tests build

from edgecnn.errors import EdgecnnError  # noqa: E402

# skip the reference run of a graph bigger than this (it would only slow the campaign down)
MAX_ACTIVATION_BYTES = 8 << 20
MAX_MACS = 30_000_000
SCRATCH = Path(tempfile.mkdtemp(prefix="edgecnn-fuzz-"))


def _scratch(name: str, data: bytes) -> Path:
    path = SCRATCH / name
    path.write_bytes(data)
    return path


def _shared(*parts) -> Path | None:
    root = Path(os.environ.get("EDGECNN_DATA") or REPO.parent / "shared" / "data")
    path = root.joinpath(*parts)
    return path if path.exists() else None


def _run_on_zeros(g) -> None:
    """The reference interpreter on an all-zero input, when the graph is small enough."""
    from edgecnn.core import reference
    from edgecnn.core.accounting import peak_activation_bytes, summarize

    if peak_activation_bytes(g) > MAX_ACTIVATION_BYTES or summarize(g).total_macs > MAX_MACS:
        return
    y = reference.predict(g, np.zeros((1, *g.input_shape), np.float32))
    assert y.shape == (1, g.num_classes) or y.shape[0] == 1, y.shape


# ---- model file (safetensors + graph JSON) ---------------------------------------------------

def model_file(data: bytes) -> None:
    from edgecnn.formats.modelfile import load

    try:
        g = load(_scratch("m.safetensors", data))
        _run_on_zeros(g)
    except EdgecnnError:
        pass


def model_file_seeds() -> list[bytes]:
    from edgecnn.formats.modelfile import save
    from testutil import small_d_model, tiny_cnn

    out = []
    for i, g in enumerate((tiny_cnn(), small_d_model(size=16))):
        out.append(save(g, SCRATCH / f"seed{i}.safetensors").read_bytes())
    return out


# ---- ONNX ------------------------------------------------------------------------------------

def onnx_model(data: bytes) -> None:
    from edgecnn.formats.importers import import_model

    try:
        g = import_model(_scratch("m.onnx", data))
        _run_on_zeros(g)
    except EdgecnnError:
        pass


def onnx_seeds() -> list[bytes]:
    from edgecnn.formats.onnx_export import export
    from testutil import small_d_model, tiny_cnn

    return [export(g, SCRATCH / f"seed{i}.onnx").read_bytes()
            for i, g in enumerate((tiny_cnn(), small_d_model(size=16)))]


# ---- TFLite ----------------------------------------------------------------------------------

def tflite_model(data: bytes) -> None:
    from edgecnn.formats.importers import import_model

    try:
        g = import_model(_scratch("m.tflite", data))
        _run_on_zeros(g)
    except EdgecnnError:
        pass


def tflite_seeds() -> list[bytes]:
    path = _shared("tflite", "mobilenet_v1_0.25_128_quant.tflite")
    return [path.read_bytes()] if path else []


# ---- Darknet: cfg text, a NUL, then the .weights bytes ---------------------------------------

SMALL_CFG = """[net]
height=9
width=8
channels=3

[convolutional]
batch_normalize=1
filters=4
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[connected]
output=3
activation=linear

[softmax]
"""


def darknet_model(data: bytes) -> None:
    from edgecnn.formats.importers import import_model

    cfg, sep, weights = data.partition(b"\0")
    cfg_path = _scratch("m.cfg", cfg)
    try:
        g = import_model(cfg_path, _scratch("m.weights", weights) if sep else None)
        _run_on_zeros(g)
    except EdgecnnError:
        pass


def darknet_seeds() -> list[bytes]:
    rng = np.random.default_rng(0)
    # conv (bias 4, bn 3x4, weights 4x3x3x3) + connected (bias 3, weights 3x(4x4x4))
    n = 4 + 12 + 108 + 3 + 3 * 64
    header = np.array([0, 2, 0], "<i4").tobytes() + np.array([1], "<i8").tobytes()
    body = rng.uniform(0.5, 1.5, n).astype("<f4").tobytes()
    out = [SMALL_CFG.encode() + b"\0" + header + body, SMALL_CFG.encode()]
    path = _shared("darknet", "tiny.cfg")
    if path:
        out.append(path.read_bytes())
    return out


# ---- image decoding + preprocessing ----------------------------------------------------------

def image(data: bytes) -> None:
    from edgecnn.core.graph import Preprocessing
    from edgecnn.core.preprocess import load_image, preprocess

    try:
        im = load_image(io.BytesIO(data))
    except EdgecnnError:
        return
    if im.width * im.height > 4 << 20:
        return  # a big but valid image: decoding it is not the point here
    for p in (Preprocessing(), Preprocessing(resize="stretch"),
              Preprocessing(resize="central_fraction", crop_fraction=0.5)):
        x = preprocess(im, p, (8, 8))
        assert x.shape == (8, 8, 3) and x.dtype == np.float32
        assert np.isfinite(x).all()


def image_seeds() -> list[bytes]:
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for fmt, mode in (("PNG", "RGB"), ("JPEG", "RGB"), ("BMP", "RGB"), ("GIF", "P"),
                      ("PPM", "RGB"), ("PNG", "L"), ("PNG", "RGBA"), ("TIFF", "RGB"),
                      ("WEBP", "RGB")):
        arr = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).convert(mode).save(buf, format=fmt)
        out.append(buf.getvalue())
    return out


# ---- serve: one HTTP request through the real handler ----------------------------------------

class _FakeSocket:
    """Enough of a socket for StreamRequestHandler: reads ``data``, collects what is sent."""

    def __init__(self, data: bytes):
        self.inp, self.out = io.BytesIO(data), io.BytesIO()

    def settimeout(self, t):
        pass

    def setsockopt(self, *a):
        pass

    def makefile(self, mode, *a, **kw):
        return self.inp if "r" in mode else self.out

    def sendall(self, b):
        self.out.write(b)


_HANDLER = None


def serve_request(data: bytes) -> None:
    global _HANDLER
    if _HANDLER is None:
        from edgecnn.apps.serve import Classifier, make_handler
        from edgecnn.apps.serve_http import Limits
        from testutil import tiny_cnn

        _HANDLER = make_handler(Classifier(tiny_cnn(classes=1000)), Limits(max_upload=1 << 20))

    class _Server:
        def busy(self):
            return False

    sock = _FakeSocket(data)
    _HANDLER(sock, ("127.0.0.1", 1), _Server())
    answer = sock.out.getvalue()
    if answer:  # an empty request gets no answer (the client sent nothing)
        assert answer.startswith(b"HTTP/1."), answer[:80]
        status = int(answer.split(b" ", 2)[1])
        assert 200 <= status < 600
        assert status != 500, answer  # a 500 is an unexpected exception: a finding


def serve_seeds() -> list[bytes]:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((6, 5, 3), 90, np.uint8)).save(buf, format="PNG")
    png = buf.getvalue()
    return [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /classify HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(png) + png,
            b"POST /classify HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"]


TARGETS = {
    "model_file": (model_file, model_file_seeds),
    "onnx": (onnx_model, onnx_seeds),
    "tflite": (tflite_model, tflite_seeds),
    "darknet": (darknet_model, darknet_seeds),
    "image": (image, image_seeds),
    "serve": (serve_request, serve_seeds),
}
