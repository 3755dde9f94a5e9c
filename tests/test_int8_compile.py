"""Integer models compiled: the generated C equals the numpy integer reference bit for bit.

The graphs: the small uint8 and int8 ``.tflite`` models the tests write themselves (per-tensor
and per-channel conv, depthwise, add, average and max pooling, a rescaling concatenation,
reshape, dense, softmax; float input quantized, output dequantized), three graphs made by
``edgecnn quantize``'s builder from float models (fused relu clamps, leaky relu as its own
integer layer, ceil-mode max pools, global average pool, dense, residual add and channel
concatenation, int8 per channel), and the shared uint8 MobileNet v1 0.25/128 on real photos.

Each target builds one static program holding every graph (the conformance driver of
test_conformance_targets) and runs it natively or under qemu-user. The outputs are compared
with ``assert_array_equal``: a dequantized output is an injective function of the integer
tensor, so float equality is integer equality. The quantizer's graphs end in a float softmax
(not an integer computation), so they are cut at its input: the dequantized logits.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import need, need_module
from edgecnn.compiler import build, passes, targets
from edgecnn.compiler import kernels as kernel_table
from edgecnn.core import reference, surgery
from edgecnn.core.graph import GraphBuilder
from test_conformance_targets import cached_runs

pytestmark = pytest.mark.cc

# host and the portable build; every ARM target under qemu
TARGETS = ["host", "c99", "pi3", "armv7", "aarch64", "pi4", "pi5"]


def _tflite_graph(tmp_path, dtype: str, ragged: bool = False):
    need_module("tflite", "tflite")
    from edgecnn.formats.importers import import_model
    from int_models import ragged_model, small_model

    path = tmp_path / f"{'ragged' if ragged else 'small'}_{dtype}.tflite"
    path.write_bytes(ragged_model(dtype, seed=5) if ragged else small_model(dtype, seed=3))
    return import_model(path)


def _join_model():
    """A float model with what the zoo's chains lack: a residual add and a concatenation."""
    b = GraphBuilder("joins", (10, 9, 3))
    b.add("conv2d", "c1", filters=8, kernel=3, padding=1)
    r = b.add("activation", "c1.relu", function="relu")
    b.add("conv2d", "c2", filters=8, kernel=3, padding=1)
    s = b.add("add", "res", inputs=["c2", r])
    b.add("conv2d", "side", filters=4, kernel=1, inputs=[r])
    b.add("concat", "cat", inputs=[s, "side"])
    b.add("maxpool", "pool", kernel=2)
    b.add("global_avgpool", "gap")
    b.add("dense", "fc", units=6)
    b.add("softmax", "prob")
    return b.build()


def _quantized(g, seed: int):
    """``edgecnn quantize``'s graph for ``g`` (He weights), cut at the dequantized logits."""
    from edgecnn.apps import quantize as ptq

    if not g.weights:
        g = g.init_weights(seed)
    rng = np.random.default_rng(seed)
    calib = [rng.uniform(0, 1, (8, *g.input_shape)).astype(np.float32) for _ in range(2)]
    gi, _ = ptq.quantize_graph(g, iter(calib), ptq.Options())
    return surgery.cut(gi, gi.output.inputs[0]), rng.uniform(0, 1, (3, *g.input_shape))


@pytest.fixture(scope="module")
def programs(tmp_path_factory, shared_data):
    """[(id, graph, float inputs, None)] in the conformance driver's form."""
    from edgecnn import zoo

    tmp = tmp_path_factory.mktemp("int-graphs")
    rng = np.random.default_rng(7)
    out = []
    for dtype in ("uint8", "int8"):
        g = _tflite_graph(tmp, dtype)
        out.append((f"tflite_{dtype}", g, rng.normal(0, 1, (3, 12, 12, 3))))
        g = _tflite_graph(tmp, dtype, ragged=True)
        out.append((f"ragged_{dtype}", g, rng.normal(0, 1, (3, 19, 17, 3))))
    for i, g in enumerate([zoo.get("d_I32x32x3CMCMCF10S"), zoo.get("dr_I32x32x3CMCMC1AS"),
                           _join_model()]):
        gi, x = _quantized(g, 10 + i)
        out.append((f"ptq_{g.name}", gi, x))
    out.append(("mobilenet_v1", *_mobilenet_v1(tmp, shared_data)))
    return [(pid, g, np.asarray(x, np.float32), None) for pid, g, x in out]


def _mobilenet_v1(tmp, shared_data):
    need_module("tflite", "tflite")
    from edgecnn.core.preprocess import load_image, normalize, to_pixels
    from edgecnn.formats.importers import import_model

    g = import_model(shared_data / "tflite" / "mobilenet_v1_0.25_128_quant.tflite")
    photos = sorted(p for p in (shared_data / "imagenet-samples").rglob("*")
                    if p.suffix.lower() in (".jpeg", ".jpg", ".png"))[:2]
    assert photos, "no ImageNet photos in the shared data"
    h, w, _ = g.input_shape
    px = np.stack([to_pixels(load_image(p), g.preprocessing, (h, w)) for p in photos])
    return g, normalize(px, g.preprocessing)


@pytest.fixture(scope="module")
def expected(programs):
    return [reference.run(g, x) for _, g, x, _ in programs]


@pytest.fixture(scope="module")
def runs(programs, tmp_path_factory):
    return cached_runs(tmp_path_factory, "int", programs)


FAST_INT = {"int8_pointwise", "int8_direct", "int8_depthwise", "int8_add", "int8_maxpool",
            "int8_lut", "int8_quantize"}


def expected_kernel(layer, in_channels: int, vnni: bool = False, sdot: bool = False,
                    first: bool = False, armv7: bool = False) -> str:
    """The integer kernel a layer must get on a vector target: the fast convolutions for
    groups 1 (pointwise: 1x1, stride 1, unpadded, and every qdense; direct: the rest; both with
    VPDPBUSD where the target has AVX-512 VNNI, SDOT where it has the AArch64 dot product,
    direct then for dilation 1 along x) and depthwise with multiplier 1, the fast add, max
    pool and activation table, the fast quantization of the model's input (``first``; not on
    32-bit ARM), the portable INT8 row for the rest."""
    a = layer.attrs
    pointwise = ("int8_pointwise_vnni" if vnni else "int8_pointwise_sdot" if sdot else
                 "int8_pointwise")
    if layer.kind == "qadd":
        return "int8_add"
    if layer.kind == "qmaxpool":
        return "int8_maxpool"
    if layer.kind == "qactivation":
        return "int8_lut"
    if layer.kind == "quantize" and first and not armv7:
        return "int8_quantize"
    if layer.kind == "qdense":
        return pointwise
    if layer.kind != "qconv2d":
        return "int8"
    if a["groups"] == 1:
        one = tuple(a["kernel"]) == (1, 1) and tuple(a["stride"]) == (1, 1)
        plain = a["dilation"][1] == 1
        direct = ("int8_direct_vnni" if vnni and plain else "int8_direct_sdot" if sdot and plain
                  else "int8_direct")
        return pointwise if one and not any(a["padding"]) else direct
    return "int8_depthwise" if a["groups"] == in_channels == a["filters"] else "int8"


@pytest.mark.parametrize("target", TARGETS)
def test_integer_graphs_bit_exact_on_target(target, runs, programs, expected):
    outs, algos = runs(target)
    have = kernel_table.features(targets.get(target))
    vnni, sdot = "avx512vnni" in have, "dotprod" in have
    armv7 = targets.get(target).arch == "armv7"
    used = set()
    for pid, g, _, _ in programs:  # every integer layer ran on the integer kernels
        for layer in g.layers[1:]:
            if layer.spec.integer:
                want = expected_kernel(layer, g.shapes[layer.inputs[0]][2], vnni, sdot,
                                       layer.inputs[0] == g.layers[0].name, armv7)
                assert algos[pid][layer.name] == want, (pid, layer.name, algos[pid])
                used.add(want)
    vnni_rows = {"int8_pointwise_vnni", "int8_direct_vnni"}
    rows = FAST_INT - {"int8_pointwise", "int8_direct"} | vnni_rows if vnni else FAST_INT
    sdot_rows = {"int8_pointwise_sdot", "int8_direct_sdot"}
    rows = FAST_INT - {"int8_pointwise", "int8_direct"} | sdot_rows if sdot else rows
    rows = rows - {"int8_quantize"} if armv7 else rows
    assert rows | {"int8"} <= used, used  # the graphs exercise every integer row
    if outs is None:
        pytest.skip(f"compiled; not run: this CPU cannot run {target} code")
    for (pid, _, _, _), got, want in zip(programs, outs, expected, strict=True):
        np.testing.assert_array_equal(got, want, err_msg=f"{pid} on {target}")


def test_the_graphs_cover_every_integer_kind(programs):
    kinds = {l.kind for _, g, _, _ in programs for l in g.layers}
    integer = {k for k in kernel_table.INT8.kinds}
    assert integer <= kinds, integer - kinds


def test_arena_counts_integer_tensors_at_their_width(programs):
    """uint8/int8 values take one byte per element (whole floats, 64-byte aligned regions), the
    float input is quantized where the caller holds it (it never enters the arena), and the
    arena of MobileNet v1 is the live peak of its integer tensors."""
    _, g, _, _ = next(p for p in programs if p[0] == "mobilenet_v1")
    prog, pl = build.lower_and_plan(g, targets.get("c99"))
    assert prog.external_input and prog.input not in pl.views
    for v, view in pl.views.items():
        h, w, c = prog.shapes[v]
        if v != prog.output:  # dequantize writes the only float: the output
            assert view.esize == 1 and view.floats == -(-h * w * c // 4), v
    first = {op.output: i for i, op in enumerate(prog.ops)}
    last = {v: max([i for i, op in enumerate(prog.ops) if v in op.inputs], default=len(prog.ops))
            for v in pl.views}
    peak = max(sum(pl.views[v].floats for v in pl.views if first[v] <= i <= last[v])
               for i in range(len(prog.ops)))
    assert peak * 4 <= pl.arena_bytes <= peak * 4 + 64 * len(pl.views)
    assert pl.arena_bytes < 100_000  # the float graph's: 384 KB


def test_mixed_types_are_refused_naming_the_layer():
    from edgecnn.errors import EdgecnnError

    b = GraphBuilder("mixed", (4, 4, 2))
    b.add("quantize", "q", dtype="int8", scale=0.1, zero_point=0)
    b.add("activation", "relu", function="relu")
    g = b.build().init_weights(0)
    with pytest.raises(EdgecnnError, match=r"layer 'relu' \(activation\) reads an integer "
                                           r"tensor but computes in float"):
        passes.lower(g)


def test_compiled_classify_equals_reference(tmp_path, programs, monkeypatch):
    """The user's path: edgecnn.compile of an integer model, run through ctypes, on the host."""
    import edgecnn
    from edgecnn.errors import EdgecnnError

    need("cc", targets.loadable(targets.get("host")), "host code cannot run here")
    monkeypatch.setenv("EDGECNN_CACHE", str(tmp_path / "cache"))
    _, g, x, _ = next(p for p in programs if p[0] == "tflite_uint8")
    m = edgecnn.compile(g, target="host")
    want = reference.predict(g, x)
    np.testing.assert_array_equal(m.predict(x), want)
    # the integer entry point: the input quantized by the caller, the same result
    q = reference.run(g, x, outputs=[g.layers[1].name])[g.layers[1].name]
    assert q.dtype == np.uint8
    np.testing.assert_array_equal(m.predict_quantized(q), want)
    with pytest.raises(EdgecnnError, match="quantized input must be uint8, got int8"):
        m.predict_quantized(q.astype(np.int8))


def test_two_threads_equal_one(tmp_path, programs, monkeypatch):
    """The fast integer kernels split a layer over OpenMP threads (tiles, rows, blocks of an
    add) that write disjoint bytes: MobileNet v1 0.25, whose layers are large enough to split
    (its 8-channel depthwise layer stores whole vectors within each row), equals the reference
    at 1 and 2 threads."""
    import edgecnn

    need("cc", targets.loadable(targets.get("host")), "host code cannot run here")
    monkeypatch.setenv("EDGECNN_CACHE", str(tmp_path / "cache"))
    _, g, x, _ = next(p for p in programs if p[0] == "mobilenet_v1")
    m = edgecnn.compile(g, target="host")
    want = reference.predict(g, x)
    for n in (2, 1, 2):
        m.set_threads(n)
        np.testing.assert_array_equal(m.predict(x), want, err_msg=f"{n} threads")
