"""Post-training quantization: a float graph and calibration images → an integer graph.

Steps (each a function below):
1. ``prepare``: batch norm and scale/bias layers fold into the convolution or dense layer
   before them; dropout goes.
2. ``calibrate``: the float graph runs on the calibration batches; every layer's output keeps
   its exact min / max and a random sample of values (for percentiles and histograms).
3. ``choose_range``: per value, [lo, hi] by ``minmax``, ``percentile`` (99.99% of the sample on
   each side by default) or ``entropy`` (TensorRT's KL-divergence threshold search over a
   2048-bin histogram), widened to include 0; int8 scale = (hi - lo) / 255 and zero point
   -128 - lo / scale, rounded (so real 0 is exact).
4. ``build``: each layer becomes its integer kind (edgecnn.quant's scheme): weights int8
   symmetric per output channel (or per tensor), biases int32 at input x weight scale, a relu
   or relu6 reading a conv/dense alone fuses into its clamp. Layers kept float (``keep_float``,
   and the final softmax) read dequantized values; ``quantize`` / ``dequantize`` layers are
   inserted where integer and float meet.
5. ``report``: per integer layer, the SQNR of its dequantized output against the float graph's
   (10 log10(sum x^2 / sum (x - x_q)^2), in dB), and at the model's output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import quant
from ..core import reference
from ..core.build import Build
from ..core.graph import Graph, Layer
from ..errors import EdgecnnError
from ..layers.qactivation import activation_params

METHODS = ("minmax", "percentile", "entropy")
SAMPLE_PER_BATCH = 1 << 16  # values sampled from each layer's output per batch
FUSABLE = ("relu", "relu6")
MIN_HISTOGRAM_VALUES = 50_000  # fewer values: the entropy method falls back to min/max


class QuantizeError(EdgecnnError):
    """A model or calibration set the quantizer cannot use."""


# ---- 1. prepare --------------------------------------------------------------------------------

def _affine_of(l: Layer, w: dict) -> tuple[np.ndarray, np.ndarray]:
    """A batchnorm / scale_bias layer as y = a * x + b per channel (float64)."""
    if l.kind == "batchnorm":
        a = w["scale"] / np.sqrt(w["var"].astype(np.float64) + l.attrs["eps"])
        return a, w["shift"] - w["mean"] * a
    c = next(iter(w.values())).shape[0]
    return (w.get("scale", np.ones(c)).astype(np.float64),
            w.get("bias", np.zeros(c)).astype(np.float64))


def prepare(g: Graph) -> Graph:
    """A copy of ``g`` with affine layers folded into their conv/dense and no dropout."""
    layers: list[Layer] = []
    weights = {k: v.astype(np.float32) for k, v in g.weights.items()}
    by_name: dict[str, Layer] = {}
    rename: dict[str, str] = {}
    for l in g.layers:
        inputs = tuple(rename.get(s, s) for s in l.inputs)
        prod = by_name.get(inputs[0]) if inputs else None
        if l.kind == "dropout":
            rename[l.name] = inputs[0]
            continue
        if (l.kind in ("batchnorm", "scale_bias") and prod is not None
                and prod.kind in ("conv2d", "dense") and g.consumers[prod.name] == [l.name]):
            a, b = _affine_of(l, g.layer_weights(l))
            w = weights[f"{prod.name}.weight"].astype(np.float64)
            weights[f"{prod.name}.weight"] = (w * a.reshape(-1, *[1] * (w.ndim - 1))
                                              ).astype(np.float32)
            bias = weights.get(f"{prod.name}.bias", np.zeros(len(a))).astype(np.float64)
            weights[f"{prod.name}.bias"] = (bias * a + b).astype(np.float32)
            prod.attrs["bias"] = True
            for t in g.layer_weights(l):
                del weights[f"{l.name}.{t}"]
            rename[l.name] = prod.name
            continue
        new = Layer(l.name, l.kind, inputs, dict(l.attrs))
        layers.append(new)
        by_name[l.name] = new
    return Graph(g.name, layers, weights, g.preprocessing, g.labels, dict(g.meta))


# ---- 2. calibrate ------------------------------------------------------------------------------

@dataclass
class Stats:
    lo: float = np.inf
    hi: float = -np.inf
    samples: list = field(default_factory=list)

    def update(self, x: np.ndarray, rng: np.random.Generator) -> None:
        self.lo = min(self.lo, float(x.min()))
        self.hi = max(self.hi, float(x.max()))
        flat = x.reshape(-1)
        if flat.size > SAMPLE_PER_BATCH:
            flat = flat[rng.integers(0, flat.size, SAMPLE_PER_BATCH)]
        self.samples.append(flat.astype(np.float32))

    def values(self) -> np.ndarray:
        return np.concatenate(self.samples)


def calibrate(g: Graph, batches, progress=None, seed: int = 0) -> dict[str, Stats]:
    """Run ``g`` on each (N, H, W, C) float batch; statistics of every layer's output."""
    rng = np.random.default_rng(seed)
    names = [l.name for l in g.layers]
    stats = {n: Stats() for n in names}
    for x in batches:
        outs = reference.run(g, x, outputs=names)
        for n in names:
            stats[n].update(outs[n], rng)
        if progress is not None:
            progress.update(len(x))
    return stats


# ---- 3. ranges ---------------------------------------------------------------------------------

def choose_range(s: Stats, method: str, percentile: float = 99.99) -> tuple[float, float]:
    if method == "minmax":
        lo, hi = s.lo, s.hi
    elif method == "percentile":
        lo, hi = np.percentile(s.values(), [100 - percentile, percentile])
    elif method == "entropy":
        lo, hi = entropy_range(s.values(), s.lo, s.hi)
    else:
        raise QuantizeError(f"unknown range method {method!r} (choose from {', '.join(METHODS)})")
    return min(float(lo), 0.0), max(float(hi), 0.0)


def entropy_range(v: np.ndarray, lo: float, hi: float, bins: int = 2048) -> tuple[float, float]:
    """TensorRT's calibration: the threshold T minimising KL(P || Q), P the histogram clipped
    at T (outliers in the last bin), Q it quantized to the int8 levels it would get. One-sided
    ([0, T], 256 levels) for non-negative values, else symmetric ([-T, T], 128 per side).
    A sample smaller than MIN_HISTOGRAM_VALUES keeps its min / max."""
    if v.size < MIN_HISTOGRAM_VALUES:  # too sparse for the search: it would clip at noise
        return lo, hi
    one_sided = lo >= 0
    a = v[v > 0] if one_sided else np.abs(v)  # a relu's zeros are exact: they would swamp P
    top = float(a.max()) if a.size else 0.0
    if top == 0.0:
        return lo, hi
    hist, edges = np.histogram(a, bins=bins, range=(0.0, top))
    levels = 256 if one_sided else 128
    best, best_i = np.inf, bins
    for i in range(levels, bins + 1, 16):
        p = hist[:i].astype(np.float64)
        p[-1] += hist[i:].sum()
        q = _quantized_histogram(hist[:i], levels)
        kl = _kl(p, q)
        if kl < best:
            best, best_i = kl, i
    t = float(edges[best_i])
    return (0.0, min(t, hi)) if one_sided else (max(-t, lo), min(t, hi))


def _quantized_histogram(h: np.ndarray, levels: int) -> np.ndarray:
    """Merge ``h`` into ``levels`` groups, then spread each group evenly over its non-empty
    bins (TensorRT's expansion)."""
    starts = np.array([len(g) for g in np.array_split(np.arange(len(h)), levels)]).cumsum()
    starts = np.concatenate([[0], starts[:-1]])
    sums = np.add.reduceat(h.astype(np.float64), starts)
    nonzero = np.add.reduceat((h > 0).astype(np.float64), starts)
    group = np.repeat(np.arange(levels), np.diff(np.append(starts, len(h))))
    share = np.divide(sums, nonzero, out=np.zeros(levels), where=nonzero > 0)
    return np.where(h > 0, share[group], 0.0)


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    p = p / p.sum()
    q = q / max(q.sum(), 1e-12)
    m = p > 0
    if np.any(q[m] == 0):
        return np.inf
    return float(np.sum(p[m] * np.log(p[m] / q[m])))


def int8_params(lo: float, hi: float) -> tuple[float, int]:
    """(scale, zero point) of int8 for [lo, hi] (lo <= 0 <= hi); real 0 is exactly zp."""
    scale = (hi - lo) / 255.0 if hi > lo else 1e-8
    scale = float(np.float32(scale))
    zp = int(np.clip(-128 - round(lo / scale), -128, 127))
    return scale, zp


# ---- 4. build ----------------------------------------------------------------------------------

@dataclass
class Options:
    method: str = "percentile"
    per_channel: bool = True
    keep_float: tuple[str, ...] = ()  # layer names, or "first" / "last" (conv/dense layers)
    percentile: float = 99.99


def _kept(g: Graph, keep: tuple[str, ...]) -> set[str]:
    weighted = [l.name for l in g.layers if l.kind in ("conv2d", "dense")]
    names = {l.name for l in g.layers}
    out = set()
    for k in keep:
        if k in ("first", "last"):
            if weighted:
                out.add(weighted[0] if k == "first" else weighted[-1])
        elif k in names:
            out.add(k)
        else:
            raise QuantizeError(f"--keep-float: model {g.name!r} has no layer {k!r}")
    return out


def _weights_int8(w: np.ndarray, per_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 weights: (q (same shape), scales (C_out,) or (1,))."""
    axes = tuple(range(1, w.ndim))
    m = np.abs(w).max(axis=axes) if per_channel else np.array([np.abs(w).max()])
    s = (np.maximum(m, 1e-12) / 127.0).astype(np.float32)
    shaped = s.reshape(-1, *[1] * (w.ndim - 1))
    q = np.clip(quant.round_half_away(w / shaped), -127, 127).astype(np.int8)
    return q, s


class _Builder:
    """The float graph's layers in order, each turned into its integer form through
    :class:`~edgecnn.core.build.Build` (the float graph's names kept)."""

    def __init__(self, g: Graph, params: dict[str, tuple[float, int]], opts: Options):
        self.g, self.params, self.opts = g, params, opts
        self.kept = _kept(g, opts.keep_float)
        self.b = Build(g.input_shape)
        self.int_of: dict[str, str] = {}  # float value → the layer holding it as int8
        self.float_of: dict[str, str] = {"input": "input"}  # float value → a float layer
        self.fused: set[str] = set()

    # -- conversions at the border of integer and float
    def as_int(self, v: str) -> str:
        if v not in self.int_of:
            s, z = self.params[v]
            name = f"{v}_q"
            self.b.add_named("quantize", name, [self.float_of[v]], dtype="int8", scale=s,
                             zero_point=z)
            self.int_of[v] = name
        return self.int_of[v]

    def as_float(self, v: str) -> str:
        if v not in self.float_of:
            s, z = self.params[v]
            name = f"{v}_dq"
            self.b.add_named("dequantize", name, [self.int_of[v]], scale=s, zero_point=z)
            self.float_of[v] = name
        return self.float_of[v]

    def add_int(self, v: str, kind: str, inputs: list[str], weights: dict | None = None,
                **attrs) -> None:
        self.b.add_named(kind, v, inputs, weights, **attrs)
        self.int_of[v] = v

    def requant_attrs(self, src: str, out: str, act: str | None) -> dict:
        si, zi = self.params[src]
        so, zo = self.params[out]
        lo, hi = quant.activation_range(act, so, zo, "int8")
        return dict(dtype="int8", input_scale=si, input_zero_point=zi, output_scale=so,
                    output_zero_point=zo, act_min=lo, act_max=hi)

    # -- the layers
    def build(self) -> Graph:
        for l in self.g.layers[1:]:
            if l.name in self.fused:
                continue
            if l.name in self.kept or l.kind == "softmax":
                self.keep_float(l)
                continue
            handler = getattr(self, f"_{l.kind}", None)
            if handler is None:
                raise QuantizeError(f"layer {l.name!r} of kind {l.kind!r} has no integer form; "
                                    f"keep it in float with --keep-float {l.name}")
            handler(l)
        last = self.g.output.name
        self.as_float(last)
        return self.b.graph(self.g.name, self.g.preprocessing, self.g.labels, dict(self.g.meta),
                            "quantized model")

    def keep_float(self, l: Layer) -> None:
        name = l.name if l.name not in self.b.names.used else f"{l.name}_f"
        self.b.add_named(l.kind, name, [self.as_float(s) for s in l.inputs],
                         self.g.layer_weights(l), **l.attrs)
        self.float_of[l.name] = name

    def _fusion(self, l: Layer) -> tuple[str, str | None]:
        """(the value this layer's integer form outputs, the fused activation)."""
        readers = self.g.consumers[l.name]
        if len(readers) == 1:
            r = self.g.layer(readers[0])
            if (r.kind == "activation" and r.attrs["function"] in FUSABLE
                    and r.name not in self.kept):
                self.fused.add(r.name)
                return r.name, r.attrs["function"]
        return l.name, None

    def _weighted(self, l: Layer, kind: str, extra: dict) -> None:
        src = l.inputs[0]
        out, act = self._fusion(l)
        w = self.g.weights[f"{l.name}.weight"]
        b = self.g.weights.get(f"{l.name}.bias", np.zeros(w.shape[0], np.float32))
        q, ws = _weights_int8(w, self.opts.per_channel)
        a = self.requant_attrs(src, out, act)
        si = a["input_scale"]
        m, e = quant.conv_multipliers(si, ws, a["output_scale"], legacy=False)
        bias = np.clip(quant.round_half_away(b.astype(np.float64) / (si * ws.astype(np.float64))),
                       quant.INT32_MIN, quant.INT32_MAX).astype(np.int32)
        self.add_int(out, kind, [self.as_int(src)],
                     {"weight": q, "bias": bias, "weight_scale": ws, "multiplier": m, "shift": e},
                     **extra, **a, per_channel=self.opts.per_channel)

    def _conv2d(self, l: Layer) -> None:
        extra = {k: v for k, v in l.attrs.items() if k != "bias"}
        self._weighted(l, "qconv2d", extra)

    def _dense(self, l: Layer) -> None:
        self._weighted(l, "qdense", {"units": l.attrs["units"]})

    def _activation(self, l: Layer) -> None:
        f = l.attrs["function"]
        if f not in ("relu", "relu6", "leaky_relu"):
            raise QuantizeError(f"layer {l.name!r}: activation {f!r} has no integer form; keep "
                                f"it in float with --keep-float {l.name}")
        src = l.inputs[0]
        a = self.requant_attrs(src, l.name, f if f != "leaky_relu" else None)
        slope = l.attrs["slope"] if f == "leaky_relu" else 0.0
        self.add_int(l.name, "qactivation", [self.as_int(src)], function=f, slope=slope, **a,
                     **activation_params(slope, a["input_scale"], a["output_scale"]))

    def _same_params(self, l: Layer) -> tuple[str, float, int]:
        """Pools and flatten keep their input's scale and zero point."""
        src = l.inputs[0]
        self.params[l.name] = self.params[src]
        s, z = self.params[src]
        return self.as_int(src), s, z

    def _pool(self, l: Layer, kind: str, kernel, stride, padding, ceil=False) -> None:
        src, s, z = self._same_params(l)
        self.add_int(l.name, kind, [src], kernel=kernel, stride=stride, padding=padding,
                     ceil_mode=ceil, dtype="int8", scale=s, zero_point=z, act_min=-128,
                     act_max=127)

    def _maxpool(self, l: Layer) -> None:
        self._pool(l, "qmaxpool", l.attrs["kernel"], l.attrs["stride"], l.attrs["padding"],
                   l.attrs["ceil_mode"])

    def _avgpool(self, l: Layer) -> None:
        if l.attrs["count_include_pad"] and any(l.attrs["padding"]):
            raise QuantizeError(f"layer {l.name!r}: average pooling that counts padding has no "
                                f"integer form; keep it in float with --keep-float {l.name}")
        self._pool(l, "qavgpool", l.attrs["kernel"], l.attrs["stride"], l.attrs["padding"],
                   l.attrs["ceil_mode"])

    def _global_avgpool(self, l: Layer) -> None:
        h, w, _ = self.g.shapes[l.inputs[0]]
        self._pool(l, "qavgpool", (h, w), (1, 1), (0, 0, 0, 0))

    def _flatten(self, l: Layer) -> None:
        src, _, _ = self._same_params(l)
        self.add_int(l.name, "flatten", [src])

    def _add(self, l: Layer) -> None:
        if len(l.inputs) != 2:
            raise QuantizeError(f"layer {l.name!r}: integer add takes 2 inputs, this one has "
                                f"{len(l.inputs)}; keep it in float with --keep-float {l.name}")
        (s1, z1), (s2, z2) = self.params[l.inputs[0]], self.params[l.inputs[1]]
        so, zo = self.params[l.name]
        self.add_int(l.name, "qadd", [self.as_int(v) for v in l.inputs], dtype="int8",
                     input1_scale=s1, input1_zero_point=z1, input2_scale=s2,
                     input2_zero_point=z2, output_scale=so, output_zero_point=zo, act_min=-128,
                     act_max=127, **quant.add_params(s1, s2, so))

    def _concat(self, l: Layer) -> None:
        so, zo = self.params[l.name]
        scales = np.array([self.params[v][0] for v in l.inputs], np.float32)
        zero_points = np.array([self.params[v][1] for v in l.inputs], np.int32)
        self.add_int(l.name, "qconcat", [self.as_int(v) for v in l.inputs],
                     {"input_scale": scales, "input_zero_point": zero_points}, dtype="int8",
                     output_scale=so, output_zero_point=zo)


def build(g: Graph, stats: dict[str, Stats], opts: Options) -> tuple[Graph, dict]:
    """The integer graph of the prepared float graph ``g``; also the int8 (scale, zero point)
    of every value."""
    params = {n: int8_params(*choose_range(s, opts.method, opts.percentile))
              for n, s in stats.items()}
    b = _Builder(g, params, opts)
    return b.build(), b


# ---- 5. report ---------------------------------------------------------------------------------

def sqnr_db(ref: np.ndarray, approx: np.ndarray) -> float:
    ref = ref.astype(np.float64)
    noise = np.sum((ref - approx.astype(np.float64)) ** 2)
    signal = np.sum(ref ** 2)
    if noise == 0:
        return float("inf")
    return float(10 * np.log10(max(signal, 1e-30) / noise))


def report(gf: Graph, gi: Graph, b: _Builder, x: np.ndarray) -> dict:
    """Per integer layer and at the output: SQNR (dB) of the integer graph against the float
    graph on the batch ``x``."""
    values = [l.name for l in gf.layers[1:] if l.name in b.int_of]
    last = gf.output
    logits = last.inputs[0] if last.kind == "softmax" else last.name
    ref = reference.run(gf, x, outputs=[l.name for l in gf.layers])
    got = reference.run(gi, x, outputs=sorted({b.int_of[v] for v in values}
                                              | {gi.output.name}))
    rows = []
    for v in values:
        s, z = b.params[v]
        rows.append({"layer": v, "kind": gf.layer(v).kind, "scale": s, "zero_point": z,
                     "sqnr_db": sqnr_db(ref[v], quant.dequantize(got[b.int_of[v]], s, z))})
    out = {"layers": rows, "output_layer": last.name,
           "output_sqnr_db": sqnr_db(ref[last.name], got[gi.output.name])}
    if logits in b.int_of:  # the scores before a softmax: the figure that is not saturated
        s, z = b.params[logits]
        out["logits"] = logits
        out["logits_sqnr_db"] = sqnr_db(ref[logits], quant.dequantize(got[b.int_of[logits]],
                                                                      s, z))
    return out


def quantize_graph(g: Graph, batches, opts: Options, progress=None,
                   report_batch: np.ndarray | None = None) -> tuple[Graph, dict]:
    """The whole pipeline: (integer graph, report)."""
    if opts.method not in METHODS:
        raise QuantizeError(f"unknown range method {opts.method!r} (choose from "
                            f"{', '.join(METHODS)})")
    if any(l.spec.integer for l in g.layers):
        raise QuantizeError(f"model {g.name!r} is already an integer model: quantize its float "
                            "model instead (for a .tflite, `edgecnn import --float`)")
    gf = prepare(g)
    stats = calibrate(gf, batches, progress)
    if not np.isfinite(stats[gf.input.name].lo):
        raise QuantizeError("no calibration image could be used (each unreadable one is listed "
                            "above): give a folder of readable .jpg/.png images")
    gi, b = build(gf, stats, opts)
    gi.meta["quantized"] = {"method": opts.method, "per_channel": opts.per_channel,
                            "keep_float": sorted(b.kept)}
    rep = report(gf, gi, b, report_batch) if report_batch is not None else {}
    return gi, rep


# ---- from files --------------------------------------------------------------------------------

def calibration_images(folder, count: int) -> list:
    """The first ``count`` images (sorted paths) of ``folder``, searched recursively."""
    from pathlib import Path

    from ..core.preprocess import list_images

    folder = Path(folder)
    if not folder.is_dir():
        raise QuantizeError(f"{folder}: the calibration folder does not exist or is not a "
                            "folder")
    paths = list_images([folder])
    if not paths:
        raise QuantizeError(f"{folder}: no images in the calibration folder (.jpg, .png, ...)")
    if count < 1:
        raise QuantizeError(f"the number of calibration images must be at least 1, got {count}")
    return paths[:count]


def image_batches(g: Graph, paths: list, batch_size: int, skipped: list):
    """Preprocessed (N, H, W, C) batches; unreadable images are appended to ``skipped`` as
    {"image", "error"} and left out."""
    from ..core.preprocess import load_image, preprocess

    h, w, _ = g.input_shape
    batch = []
    for p in paths:
        try:
            batch.append(preprocess(load_image(p), g.preprocessing, (h, w)))
        except EdgecnnError as e:
            skipped.append({"image": str(p), "error": str(e)})
        if len(batch) == batch_size:
            yield np.stack(batch)
            batch = []
    if batch:
        yield np.stack(batch)


def quantize_model(model, calibrate_dir, output, images: int = 100, opts: Options | None = None,
                   batch_size: int = 8, report_images: int = 8) -> dict:
    """``edgecnn quantize``: load, calibrate, build, report, save. Returns the JSON report."""
    import os

    from ..core.progress import Progress
    from ..errors import GraphError
    from ..formats.modelfile import save
    from .resolve import resolve

    opts = opts or Options()
    g = resolve(model)
    try:
        g.check_weights(f"model {g.name!r}")
    except GraphError as e:
        raise QuantizeError(f"{e}: the quantizer needs a model with its weights") from None
    paths = calibration_images(calibrate_dir, images)
    skipped: list[dict] = []
    held = list(image_batches(g, paths[:report_images], report_images, []))
    with Progress(len(paths), "calibrating", "images") as progress:
        gi, rep = quantize_graph(g, image_batches(g, paths, batch_size, skipped), opts,
                                 progress, held[0] if held else None)
    save(gi, output)
    float_bytes = sum(v.size * 4 for v in g.weights.values())
    int_bytes = sum(v.nbytes for v in gi.weights.values())
    return {"model": g.name, "output": os.fspath(output), "method": opts.method,
            "per_channel": opts.per_channel, "keep_float": gi.meta["quantized"]["keep_float"],
            "calibration_images": len(paths) - len(skipped), "skipped": skipped,
            "float_weight_bytes": float_bytes, "int_weight_bytes": int_bytes, **rep}
