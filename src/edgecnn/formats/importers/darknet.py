"""Darknet classifiers: a ``.cfg`` network description, optionally with its ``.weights``.

Sections (pjreddie/darknet, src/parser.c): [net] (height, width, channels), [convolutional]
(filters, size, stride, pad / padding, groups, batch_normalize, activation), [maxpool],
[avgpool] (global), [connected] (output, activation, batch_normalize), [softmax] (groups=1),
[dropout], [normalization] (local response normalization), [crop] (only first: the central
crop becomes preprocessing), [cost] (training only, ignored). Activations: leaky (slope 0.1),
relu, linear, logistic, tanh.

Darknet's tensors are C, H, W: a [connected] layer reading a C x H x W tensor has its weight
columns permuted to edgecnn's H, W, C order. Its maxpool pads ``padding`` cells (default
size - 1), ``padding // 2`` before; out = (in + padding - size) / stride + 1, padded cells
ignored. Batch norm divides by sqrt(var) + 1e-6 (src/batchnorm_layer.c); edgecnn's divides by
sqrt(var + eps): imported with eps = 1e-6, the two differ by less than 1e-3 relative where
var > 1e-6.

``.weights`` (src/parser.c, load_weights_upto): int32 major, minor, revision; ``seen`` as int64
when major * 10 + minor >= 2, else int32; then float32 per layer: [convolutional] biases,
[scales, rolling_mean, rolling_variance if batch_normalize], weights (n, c / groups, size,
size); [connected] biases, weights (outputs, inputs), [scales, rolling_mean,
rolling_variance]. Without a weights file the graph is He-initialized.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ...core.build import Build
from ...core.graph import Graph, Preprocessing
from ...errors import ModelFileError
from . import unsupported
from ._build import default_labels

ACTIVATIONS = {"leaky": ("leaky_relu", 0.1), "relu": ("relu", None), "linear": (None, None),
               "logistic": ("sigmoid", None), "tanh": ("tanh", None)}
IGNORED = {"cost"}
SUPPORTED = {"net", "network", "convolutional", "conv", "maxpool", "max", "avgpool", "avg",
             "connected", "conn", "softmax", "soft", "dropout", "normalization", "crop", "cost"}
BN_EPS = 1e-6


@dataclass
class Section:
    type: str
    line: int
    options: dict[str, str] = field(default_factory=dict)

    def get(self, key: str, default, cast=int):
        v = self.options.get(key)
        if v is None:
            return default
        try:
            return cast(v)
        except ValueError:
            raise ModelFileError(f"[{self.type}] at line {self.line}: {key}={v!r} is not "
                                 f"{'an integer' if cast is int else 'a number'}") from None


def parse_cfg(path: str) -> list[Section]:
    """The sections of a Darknet .cfg: ``[type]`` headers, ``key=value`` lines, # comments."""
    sections: list[Section] = []
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError:
        raise ModelFileError(f"{path}: not a Darknet .cfg (not text)") from None
    for i, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise ModelFileError(f"{path}, line {i}: unclosed section header {line!r}")
            sections.append(Section(line[1:-1].strip().lower(), i))
        elif "=" in line and sections:
            k, v = line.split("=", 1)
            sections[-1].options[k.strip()] = v.strip()
        else:
            raise ModelFileError(f"{path}, line {i}: expected [section] or key=value, got "
                                 f"{line!r}")
    if not sections or sections[0].type not in ("net", "network"):
        raise ModelFileError(f"{path}: a Darknet .cfg starts with a [net] section")
    return sections


def import_darknet(cfg: str | os.PathLike, weights: str | os.PathLike | None = None,
                   seed: int = 0) -> Graph:
    """Read a Darknet ``.cfg`` (and ``.weights``) into a Graph."""
    cfg = os.fspath(cfg)
    sections = parse_cfg(cfg)
    _check(cfg, sections)
    b, tensors, pre, notes = _build(cfg, sections)
    name = os.path.splitext(os.path.basename(cfg))[0]
    classes = int(np.prod(b.shapes[b.last]))
    meta = {"source": {"format": "darknet", "file": os.path.basename(cfg)}, "notes": notes}
    if weights is None:
        b.weights = {}
        g = Graph(name, b.layers, None, pre, default_labels(classes), meta).init_weights(seed)
        g.meta["notes"].append(f"no .weights file: He-initialized (seed {seed})")
        return g
    weights = os.fspath(weights)
    meta["source"]["weights"] = os.path.basename(weights)
    values, header = read_weights(weights, tensors)
    meta["source"]["weights_header"] = header
    for (layer, tname, _, _), arr in zip(tensors, values, strict=True):
        b.weights[f"{layer}.{tname}"] = arr
    return b.graph(name, pre, default_labels(classes), meta, weights)


def _check(path: str, sections: list[Section]) -> None:
    problems = []
    for i, s in enumerate(sections[1:], 1):
        where = f"section #{i} [{s.type}] at line {s.line}"
        act = s.options.get("activation", "logistic")  # Darknet's default
        if s.type not in SUPPORTED:
            problems.append(where)
        elif s.type in ("convolutional", "conv", "connected", "conn") and act not in ACTIVATIONS:
            problems.append(f"{where}: activation {act!r}")
        elif s.type in ("softmax", "soft") and s.get("groups", 1) != 1:
            problems.append(f"{where}: groups={s.get('groups', 1)} (only 1)")
        elif s.type in ("softmax", "soft") and s.get("temperature", 1.0, float) != 1.0:
            problems.append(f"{where}: temperature (only 1)")
        elif s.type == "normalization" and s.get("size", 5) % 2 == 0:
            problems.append(f"{where}: even size (only odd)")
        elif s.type == "crop" and i != 1:
            problems.append(f"{where}: a crop after the first layer")
        elif s.type in ("convolutional", "conv") and (s.get("dilation", 1) != 1
                                                      or s.get("binary", 0)
                                                      or s.get("xnor", 0)):
            problems.append(f"{where}: dilation, binary or xnor")
    if problems:
        raise unsupported(path, problems)


def _build(path: str, sections: list[Section]):
    """The layers, and the .weights reading plan: (layer, tensor, shape, transform) in order."""
    net = sections[0]
    h, w, c = net.get("height", 0), net.get("width", 0), net.get("channels", 3)
    if min(h, w, c) < 1:
        raise ModelFileError(f"{path}: [net] needs height, width and channels")
    pre = dict(channel_order="RGB", pixel_range=(0.0, 1.0), resize="center_crop",
               crop_fraction=1.0)
    notes = ["RGB input scaled to [0, 1] (Darknet's 1/255)",
             f"batch norm divides by sqrt(var + {BN_EPS:g}) where Darknet divides by "
             f"sqrt(var) + {BN_EPS:g}"]
    body = sections[1:]
    if body and body[0].type == "crop":  # test-time central crop: part of preprocessing
        crop = body.pop(0)
        ch, cw = crop.get("crop_height", h), crop.get("crop_width", w)
        pre["crop_fraction"] = min(ch / h, cw / w)
        if not crop.get("noadjust", 0):  # src/crop_layer.c maps [0, 1] to [-1, 1]
            pre["pixel_range"] = (-1.0, 1.0)
        notes.append(f"[crop] {ch}x{cw} of {h}x{w} taken as the preprocessing's central crop")
        h, w = ch, cw
    b = Build((h, w, c))
    plan: list[tuple[str, str, tuple, str]] = []
    counts: dict[str, int] = {}
    for s in body:
        kind = {"conv": "convolutional", "max": "maxpool", "avg": "avgpool", "conn": "connected",
                "soft": "softmax"}.get(s.type, s.type)
        if kind in IGNORED:
            continue
        counts[kind] = counts.get(kind, 0) + 1
        name = {"convolutional": "conv", "connected": "fc", "normalization": "lrn"}.get(
            kind, kind) + str(counts[kind])
        globals()["_" + kind](b, s, name, plan)
    return b, plan, Preprocessing(**pre), notes


def _activation(b: Build, s: Section, name: str) -> None:
    function, slope = ACTIVATIONS[s.options.get("activation", "logistic")]
    if function is not None:
        attrs = {"slope": slope} if slope is not None else {}
        b.add("activation", f"{name}_act", [b.last], function=function, **attrs)


def _batchnorm(b: Build, name: str, n: int, plan: list) -> str:
    bn = b.add("batchnorm", f"{name}_bn", [b.last], eps=BN_EPS)
    plan += [(bn, "scale", (n,), ""), (bn, "mean", (n,), ""), (bn, "var", (n,), "")]
    return bn


def _convolutional(b: Build, s: Section, name: str, plan: list) -> None:
    n, size, stride = s.get("filters", 1), s.get("size", 1), s.get("stride", 1)
    groups = s.get("groups", 1)
    pad = size // 2 if s.get("pad", 0) else s.get("padding", 0)
    bn = s.get("batch_normalize", 0)
    cin = b.shapes[b.last][2]
    conv = b.add("conv2d", name, [b.last], filters=n, kernel=size, stride=stride, padding=pad,
                 groups=groups, bias=not bn)
    if bn:  # file order: biases (the BN shift), scales, mean, variance, then weights
        plan.append((f"{name}_bn", "shift", (n,), ""))
        _batchnorm(b, name, n, plan)
    else:
        plan.append((conv, "bias", (n,), ""))
    plan.append((conv, "weight", (n, cin // groups, size, size), ""))
    _activation(b, s, name)


def _connected(b: Build, s: Section, name: str, plan: list) -> None:
    n = s.get("output", 1)
    h, w, c = b.shapes[b.last]
    bn = s.get("batch_normalize", 0)
    fc = b.add("dense", name, [b.last], units=n, bias=not bn)
    # file order: biases (the BN shift when batch_normalize), weights, [scales, mean, var]
    plan.append((f"{name}_bn", "shift", (n,), "") if bn else (fc, "bias", (n,), ""))
    # Darknet flattens C, H, W; the columns are permuted to H, W, C (see read_weights)
    plan.append((fc, "weight", (n, h * w * c), f"chw:{c},{h},{w}"))
    if bn:
        _batchnorm(b, name, n, plan)
    _activation(b, s, name)


def _maxpool(b: Build, s: Section, name: str, plan: list) -> None:
    size = s.get("size", 1)
    stride = s.get("stride", size)
    padding = s.get("padding", size - 1)
    h, w, _ = b.shapes[b.last]
    # src/maxpool_layer.c: out = (in + padding - size) / stride + 1, offset -padding / 2
    oh, ow = (h + padding - size) // stride + 1, (w + padding - size) // stride + 1
    t = padding // 2
    bottom = max(0, (oh - 1) * stride + size - h - t)  # only what the last window reads
    right = max(0, (ow - 1) * stride + size - w - t)
    pads = (t, t, bottom, right)
    b.add("maxpool", name, [b.last], kernel=size, stride=stride, padding=pads)


def _avgpool(b: Build, s: Section, name: str, plan: list) -> None:
    b.add("global_avgpool", name, [b.last])


def _softmax(b: Build, s: Section, name: str, plan: list) -> None:
    b.add("softmax", name, [b.last])


def _dropout(b: Build, s: Section, name: str, plan: list) -> None:
    b.add("dropout", name, [b.last], rate=s.get("probability", 0.5, float))


def _normalization(b: Build, s: Section, name: str, plan: list) -> None:
    size = s.get("size", 5)
    # src/normalization_layer.c: x / (kappa + alpha * sum of squares) ** beta; edgecnn's lrn
    # divides alpha by size, so alpha is multiplied by size here
    b.add("lrn", name, [b.last], size=size, alpha=s.get("alpha", 1e-4, float) * size,
          beta=s.get("beta", 0.75, float), k=s.get("kappa", 1.0, float))


def read_weights(path: str, plan: list) -> tuple[list[np.ndarray], dict]:
    """The float32 tensors of a .weights file in ``plan`` order; sizes checked exactly."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 12:
        raise ModelFileError(f"{path}: {len(data)} bytes, too short for a Darknet weights "
                             "header (12 to 20 bytes)")
    major, minor, revision = (int(v) for v in np.frombuffer(data, "<i4", 3))
    wide = major * 10 + minor >= 2 and major < 1000 and minor < 1000
    seen_bytes = 8 if wide else 4
    header = 12 + seen_bytes
    seen = int(np.frombuffer(data, "<i8" if wide else "<i4", 1, 12)[0]) \
        if len(data) >= header else 0
    transpose = major > 1000 or minor > 1000
    need = header + 4 * sum(int(np.prod(shape)) for _, _, shape, _ in plan)
    pos = header
    out = []
    for layer, tname, shape, how in plan:
        count = int(np.prod(shape))
        if pos + 4 * count > len(data):
            raise ModelFileError(
                f"{path}: expected {need} bytes for this .cfg, the file has {len(data)}; it ran "
                f"out at layer {layer!r} (tensor {tname}, {count} values at byte {pos})")
        arr = np.frombuffer(data, "<f4", count, pos).astype(np.float32)
        pos += 4 * count
        if how.startswith("chw:"):
            c, h, w = (int(v) for v in how[4:].split(","))
            if transpose:  # stored (inputs, outputs)
                arr = arr.reshape(c * h * w, -1).T
            arr = arr.reshape(-1, c, h, w).transpose(0, 2, 3, 1)
        out.append(arr.reshape(shape).copy())
    if pos != len(data):
        raise ModelFileError(f"{path}: expected {need} bytes for this .cfg, the file has "
                             f"{len(data)} ({len(data) - pos} bytes after the last layer); "
                             "the weights belong to another network")
    return out, {"major": major, "minor": minor, "revision": revision, "seen": seen}

