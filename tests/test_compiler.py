"""Compiler passes, memory plan and C emission, checked without a C compiler."""

import re

import numpy as np
import pytest

from edgecnn import GraphBuilder
from edgecnn.compiler import build, emit, passes, plan, targets
from edgecnn.core import accounting, reference
from edgecnn.core.graph import Graph
from edgecnn.errors import EdgecnnError

SEED = "dr_I256x256x3CMCMCMCMCMCMCMC1AS"


def _random(g: Graph, seed: int = 0) -> Graph:
    """Non-trivial weights: batchnorm statistics and biases away from identity/zero."""
    rng = np.random.default_rng(seed)
    g.init_weights(seed)
    for k, v in g.weights.items():
        if k.endswith((".bias", ".shift", ".mean")):
            g.weights[k] = rng.normal(0, 0.5, v.shape).astype(np.float32)
        elif k.endswith((".var", ".scale")):
            g.weights[k] = rng.uniform(0.5, 1.5, v.shape).astype(np.float32)
    return g


def _run_program(prog: passes.Program, x: np.ndarray) -> np.ndarray:
    """Run a lowered program with the layer kinds' numpy forward (checks the passes' maths)."""
    from edgecnn.layers import get_kind

    acts = {prog.input: x}
    for op in prog.ops:
        w = dict(op.weights)
        y = get_kind(op.kind).forward(op.attrs, [acts[v] for v in op.inputs], w)
        if op.act:
            a = {"function": op.act, "slope": op.act_alpha}
            y = get_kind("activation").forward(a, [y], {"slope": w.get("act_slope")})
        acts[op.output] = y
    return acts[prog.output]


def _chain() -> Graph:
    b = GraphBuilder("chain", (8, 8, 3))
    b.add("conv2d", filters=6, kernel=3, padding=1, bias=False)
    b.add("batchnorm")
    b.add("activation", function="leaky_relu", slope=0.1)
    b.add("dropout")
    b.add("maxpool", kernel=2)
    b.add("batchnorm")  # after a pool: cannot fold, stays a scale_bias op
    b.add("flatten")
    b.add("dense", units=5)
    b.add("scale_bias")
    b.add("activation", function="prelu")  # not fused into dense: stays an op
    b.add("softmax")
    return _random(b.build())


def test_passes_fold_fuse_drop_and_keep_the_meaning():
    g = _chain()
    prog = passes.lower(g)
    kinds = [op.kind for op in prog.ops]
    assert kinds == ["conv2d", "maxpool", "scale_bias", "flatten", "dense", "activation",
                     "softmax"]
    conv, dense = prog.ops[0], prog.ops[4]
    assert conv.act == "leaky_relu" and conv.folded == ["batchnorm1", "activation1"]
    assert dense.folded == ["scale_bias1"] and dense.act is None
    x = np.random.default_rng(1).standard_normal((2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(_run_program(prog, x), reference.run(g, x), rtol=1e-5, atol=1e-6)


def test_batchnorm_with_two_readers_is_not_folded():
    b = GraphBuilder("branch", (6, 6, 3))
    c = b.add("conv2d", filters=4, kernel=1)
    b.add("batchnorm")
    b.add("add", inputs=[b.last, c])
    prog = passes.lower(_random(b.build()))
    assert [op.kind for op in prog.ops] == ["conv2d", "scale_bias", "add"]


def test_unsupported_kind_names_the_layer(monkeypatch):
    """A kind the emitter does not know fails at compile time, naming the layer and kind."""
    monkeypatch.setattr(passes, "SUPPORTED", passes.SUPPORTED - {"lrn"})
    b = GraphBuilder("m", (4, 4, 2))
    b.add("lrn", name="norm1")
    with pytest.raises(EdgecnnError, match="not yet supported.*layer 'norm1' of kind 'lrn'"):
        passes.lower(b.build(init_seed=0))


@pytest.mark.parametrize("name, want", [("dr_I256x256x3CMC1AS", "dr_I256x256x3CMC1AS"),
                                        ("tiny-net.v2", "tiny_net_v2"), ("3net", "m_3net"),
                                        ("int", "int_model"), ("-", "model")])
def test_c_prefix_derived_from_model_name(name, want):
    assert emit.c_prefix(name) == want


@pytest.mark.parametrize("bad", ["9lives", "a-b", "int", "", "x" * 64, "name with space"])
def test_bad_name_is_a_clear_error(bad):
    with pytest.raises(EdgecnnError, match="not a valid C identifier"):
        emit.c_prefix("m", bad)


def test_seed_arena_within_accounting_peak_plus_borders():
    """The whole arena (activations with their ELL borders, plus kernel scratch such as
    Winograd's, which the planner fits into gaps) is no larger than accounting's peak of live
    buffers with borders, and no smaller than the peak without them."""
    from edgecnn import zoo

    g = zoo.get(SEED).init_weights(0)
    prog, pl = build.lower_and_plan(g, targets.get("host"))
    bound = accounting.peak_activation_bytes(g, accounting.padded_shapes(g))
    assert accounting.peak_activation_bytes(g) <= pl.arena_bytes <= bound
    _check_no_overlap(prog, pl)


def _check_no_overlap(prog: passes.Program, pl: plan.Plan) -> None:
    """Values alive at the same time occupy disjoint arena regions (or share in place)."""
    last = plan._last_use(prog)
    first = {prog.input: -1} | {op.output: i for i, op in enumerate(prog.ops)}
    vals = list(pl.views)
    for i, a in enumerate(vals):
        for b in vals[i + 1:]:
            va, vb = pl.views[a], pl.views[b]
            if va.offset == vb.offset and va.floats == vb.floats:
                continue  # one in-place group
            alive = first[a] <= last[b] and first[b] <= last[a]
            apart = (va.offset + va.floats <= vb.offset or vb.offset + vb.floats <= va.offset)
            assert not alive or apart, f"{a} and {b} overlap while both alive"
    for i, op in enumerate(prog.ops):
        if op.name in pl.scratch:
            off, n = pl.scratch[op.name]
            for v, vw in pl.views.items():
                if first[v] <= i <= last[v]:
                    assert off + n <= vw.offset or vw.offset + vw.floats <= off, (op.name, v)


def test_dag_plan_has_no_overlap_and_reuses_memory():
    g = _dag()
    prog, pl = build.lower_and_plan(g, targets.get("c99"))
    _check_no_overlap(prog, pl)
    total = sum(v.floats for v in pl.views.values()) * 4
    assert pl.arena_bytes < total


def _dag() -> Graph:
    """Residual add, concat, an unfused activation, lrn, avgpool: a small DAG."""
    b = GraphBuilder("dag", (12, 12, 3))
    b.add("conv2d", filters=8, kernel=3, padding=1)
    b.add("activation", function="relu6")
    x = b.add("maxpool", kernel=3, stride=2, padding=1)
    y = b.add("conv2d", filters=8, kernel=3, padding=1)
    b.add("activation", function="relu")
    r = b.add("add", inputs=[b.last, x])
    z = b.add("conv2d", filters=4, kernel=1, inputs=r)
    b.add("activation", function="tanh")
    b.add("concat", inputs=[b.last, r, y])
    b.add("lrn", size=3, alpha=0.1, beta=0.75, k=1.0)
    b.add("avgpool", kernel=3, stride=2, padding=1)
    b.add("conv2d", filters=6, kernel=3, padding=1, groups=2)
    b.add("activation", function="sigmoid")
    b.add("global_avgpool")
    b.add("dense", units=7)
    b.add("softmax")
    del z
    return _random(b.build(), 3)


def test_emitted_c99_has_no_heap_and_a_banner(tmp_path):
    g = _chain()
    gen = build.generate(g, tmp_path, "c99", arena="caller")
    src = (tmp_path / "model.c").read_text()
    assert src.startswith("/* Generated by edgecnn ")
    assert "'chain'" in src.splitlines()[0]
    runtime = src + "".join((tmp_path / s).read_text() for s in gen.sources[1:])
    assert not re.search(r"\b(malloc|calloc|realloc|free)\s*\(", runtime)
    assert "ec_arena" not in src and "chain_predict(" not in src  # no static arena
    hdr = (tmp_path / "model.h").read_text()
    assert "int chain_predict_with_arena(const float *input_hwc, float *output, void *arena);" \
        in hdr
    assert f"#define CHAIN_ARENA_BYTES {gen.arena_bytes}" in hdr


def test_weights_file_mode_writes_weights_bin(tmp_path):
    g = _chain()
    build.generate(g, tmp_path, "c99", weights="file")
    data = (tmp_path / "weights.bin").read_bytes()
    assert data[:4] == b"ECW1"
    n = int.from_bytes(data[4:8], "little")
    assert len(data) == 16 + 4 * n
    assert "chain_load_weights(const char *path)" in (tmp_path / "model.c").read_text()


def test_unknown_target_and_missing_cross_compiler(monkeypatch):
    with pytest.raises(EdgecnnError, match="unknown target 'pi9'"):
        targets.get("pi9")
    monkeypatch.setenv("PATH", "")
    with pytest.raises(EdgecnnError, match="apt install gcc-arm-linux-gnueabihf"):
        targets.get("pi3").require_compiler()


def test_compile_command_bad_name_exits_2(tmp_path, capsys):
    from edgecnn.cli.main import main

    rc = main(["compile", "d_I128x128x3CMCMCMCMCMCMC1AS", "--target", "c99", "-o",
               str(tmp_path), "--name", "1bad", "--no-build"])
    assert rc == 2
    assert "not a valid C identifier" in capsys.readouterr().err


def test_compile_command_missing_cross_compiler(tmp_path, capsys, monkeypatch):
    from edgecnn.cli.main import main

    monkeypatch.setenv("PATH", "")
    rc = main(["compile", "d_I128x128x3CMCMCMCMCMCMC1AS", "--target", "pi4", "-o",
               str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "gcc-aarch64-linux-gnu" in err and "aarch64-linux-gnu-gcc" in err
    assert (tmp_path / "model.c").is_file() and (tmp_path / "Makefile").is_file()
