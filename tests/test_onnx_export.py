"""ONNX export: ONNX Runtime on the exported model ⇄ the numpy reference.

Every case of the conformance table (tests/conformance.py), then whole graphs (a DAG with add
and concat, the seed model, AlexNet) with He-initialized weights. The exported model takes and
returns NCHW; the reference works in NHWC, so the comparison transposes.
"""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

import conformance as C
from conftest import need_module
from edgecnn.core import reference
from edgecnn.core.graph import GraphBuilder, Preprocessing
from edgecnn.errors import EdgecnnError
from edgecnn.layers import all_kinds

pytestmark = pytest.mark.onnx

onnx = need_module("onnx", "onnx", "the onnx extra is not installed")
ort = need_module("onnx", "onnxruntime", "the onnx extra is not installed")

from edgecnn.formats.onnx_export import export, to_onnx  # noqa: E402 - after the skip above


def run_onnx(model_or_path, x_nhwc: np.ndarray) -> np.ndarray:
    """ONNX Runtime on an NHWC batch; the output back in NHWC."""
    src = model_or_path if isinstance(model_or_path, str) else model_or_path.SerializeToString()
    sess = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    (y,) = sess.run(["output"], {"input": np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))})
    return y.transpose(0, 2, 3, 1)


def test_every_layer_kind_is_exported():
    from edgecnn.formats.onnx_export import _EMITTERS

    assert set(all_kinds()) - {"input"} <= set(_EMITTERS)


@pytest.mark.parametrize("case", C.CASES, ids=C.IDS)
def test_conformance_case(case):
    g, x = C.build(case)
    y = run_onnx(to_onnx(g), x)
    C.assert_close(y, reference.run(g, x), case, "onnxruntime")


# pools whose ONNX shapes need care: ceil mode needed in one dimension (W) while the PyTorch
# rule drops the last window in the other (H); see onnx_export._ceil_mode
MIXED_CEIL = [C.Case(f"{kind}-ceil-mixed", kind, dict(attrs, kernel=2, stride=2, ceil_mode=True,
                                                      padding=(1, 0, 1, 0)), ((9, 7, 3),))
              for kind, attrs in (("maxpool", {}), ("avgpool", {"count_include_pad": True}),
                                  ("avgpool", {"count_include_pad": False}))]


@pytest.mark.parametrize("case", MIXED_CEIL, ids=[f"{c.id}-{i}" for i, c in enumerate(MIXED_CEIL)])
def test_pool_ceil_mode_mixed(case):
    g, x = C.build(case)
    assert g.output_shape == (5, 4, 3)  # H: the rule drops a window; W: ceil adds one
    C.assert_close(run_onnx(to_onnx(g), x), reference.run(g, x), case, "onnxruntime")


def dag_graph():
    """Branches joined by add (2 and 3 inputs) and concat, every input reused, a dense head
    reading an H x W x C tensor (so the column permutation matters) and a softmax."""
    b = GraphBuilder("dag", (12, 10, 3), labels=["cat", "dog", "owl", "fox", "elk"],
                     preprocessing=Preprocessing(channel_order="BGR", mean=(0.4, 0.5, 0.6)))
    stem = b.add("conv2d", "stem", filters=8, kernel=3, padding=1)
    b.add("batchnorm", "bn")
    act = b.add("activation", "act", function="relu6")
    left = b.add("conv2d", "left", inputs=act, filters=8, kernel=1)
    right = b.add("conv2d", "right", inputs=act, filters=8, kernel=3, padding=1, groups=8)
    s = b.add("add", "sum3", inputs=[stem, left, right])
    s2 = b.add("add", "sum2", inputs=[s, act])
    cat = b.add("concat", "cat", inputs=[s2, left, stem])
    b.add("maxpool", "pool", inputs=cat, kernel=3, stride=2, padding=1)
    b.add("flatten", "flat")
    b.add("dense", "fc", units=5)
    b.add("softmax", "prob")
    return b.build(init_seed=3)


def check_whole_graph(g, n=2, seed=0, atol=1e-4):
    """ONNX Runtime on the exported graph against the reference, on logits (C.logits)."""
    g = C.logits(g)
    x = np.random.default_rng(seed).normal(0, 1, (n, *g.input_shape)).astype(np.float32)
    y, ref = run_onnx(to_onnx(g), x), reference.run(g, x)
    scale = max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(y, ref, rtol=1e-3, atol=atol * scale)
    return y, ref


def test_dag_with_add_and_concat():
    check_whole_graph(dag_graph())


def test_classifier_head_is_flatten_then_gemm():
    """The dense weight columns are permuted at export, so no Transpose runs (module docstring);
    the 3-input add is a chain of Adds (the reference's order)."""
    model = to_onnx(dag_graph())
    ops = [n.op_type for n in model.graph.node]
    assert "Transpose" not in ops and "Sum" not in ops
    i = ops.index("Gemm")
    assert ops[i - 1] == "Flatten" and ops.count("Add") == 3


def test_dense_after_hxwxc_and_flatten_layer():
    b = GraphBuilder("heads", (3, 4, 5))
    b.add("dense", "fc_direct", units=6)  # dense reading 3x4x5 itself: permuted columns
    g1 = b.build(init_seed=1)
    b = GraphBuilder("heads", (3, 4, 5))
    b.add("flatten", "flat")  # flatten in H, W, C order, then dense from 1x1x60
    b.add("dense", "fc", units=6)
    g2 = b.build()
    g2.weights = {"fc.weight": g1.weights["fc_direct.weight"], "fc.bias": g1.weights[
        "fc_direct.bias"]}
    y1, _ = check_whole_graph(g1)
    y2, _ = check_whole_graph(g2)
    np.testing.assert_allclose(y1, y2, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["dr_I256x256x3CMCMCMCMCMCMCMC1AS", "alexnet"])
def test_zoo_model(name):
    zoo = importlib.import_module("edgecnn.zoo")
    g = zoo.get(name).init_weights(0)
    check_whole_graph(g, n=1)


def test_zoo_binary_model_logits():
    """A model with binary layers: their outputs are integers times a scale, so the logits of
    random weights tie often and the softmax of two correct backends may pick different
    winners; compare the logits (the graph without its softmax) instead."""
    zoo = importlib.import_module("edgecnn.zoo")
    g = zoo.get("d_I160x160x3CMCMBMBMBMBMC1AS").init_weights(0)
    assert g.output.kind == "softmax" and "binary_conv2d" in {l.kind for l in g.layers}
    check_whole_graph(g, n=1)


def test_file_metadata_and_names(tmp_path):
    g = dag_graph()
    path = export(g, tmp_path / "dag.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dag.onnx"]  # no temp file left
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["edgecnn.preprocessing"]) == g.preprocessing.to_json()
    assert json.loads(props["edgecnn.labels"]) == g.labels
    assert props["edgecnn.name"] == "dag"
    assert props["edgecnn.input_layout"] == "NCHW"
    (inp,), (out,) = model.graph.input, model.graph.output
    assert (inp.name, out.name) == ("input", "output")
    dims = [d.dim_value or d.dim_param for d in inp.type.tensor_type.shape.dim]
    assert dims == ["N", 3, 12, 10]
    inits = {t.name for t in model.graph.initializer}
    assert {"stem.weight", "bn.var", "fc.bias"} <= inits  # graph tensor keys are kept
    x = np.random.default_rng(0).normal(size=(1, 12, 10, 3)).astype(np.float32)
    np.testing.assert_allclose(run_onnx(str(path), x), reference.run(g, x), rtol=1e-4,
                               atol=1e-5)


def test_ilsvrc_labels_metadata():
    g = C.build(C.CASES[0])[0]
    props = {p.key: p.value for p in to_onnx(g).metadata_props}
    assert props["edgecnn.labels"] == "ilsvrc2012"


@pytest.mark.parametrize("opset", [13, 17, 21])
def test_opsets(opset):
    case = next(c for c in C.CASES if c.kind == "activation" and c.attrs["function"] == "relu6")
    g, x = C.build(case)
    model = to_onnx(g, opset=opset)
    assert model.opset_import[0].version == opset
    C.assert_close(run_onnx(model, x), reference.run(g, x), case, f"opset {opset}")


def test_bad_opset_and_missing_weights(tmp_path):
    g = dag_graph()
    with pytest.raises(EdgecnnError, match="opset 9 is not supported"):
        to_onnx(g, opset=9)
    del g.weights["fc.weight"]
    with pytest.raises(EdgecnnError, match="missing tensor 'fc.weight'"):
        export(g, tmp_path / "x.onnx")
    assert not list(tmp_path.iterdir())


def test_unwritable_destination(tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(EdgecnnError, match="cannot write the ONNX file"):
        export(dag_graph(), tmp_path / "a_file" / "m.onnx")


def test_cli_export(tmp_path, capsys):
    from edgecnn.cli.main import main
    from edgecnn.formats.modelfile import save

    g = dag_graph()
    src = save(g, tmp_path / "dag.safetensors")
    out = tmp_path / "dag.onnx"
    assert main(["export", str(src), "--format", "onnx", "-o", str(out), "--opset", "13"]) == 0
    assert "input 'input' Nx3x12x10 NCHW" in capsys.readouterr().out
    model = onnx.load(str(out))
    assert model.opset_import[0].version == 13
    x = np.random.default_rng(1).normal(size=(2, 12, 10, 3)).astype(np.float32)
    np.testing.assert_allclose(run_onnx(str(out), x), reference.run(g, x), rtol=1e-4, atol=1e-5)
    assert main(["export", str(src), "-o", str(out), "--opset", "5"]) == 2
    assert "opset 5 is not supported" in capsys.readouterr().err


def test_flatten_read_by_dense_and_by_another_kind():
    b = GraphBuilder("mixed_flatten", (3, 2, 4))
    flat = b.add("flatten", "flat")  # read in H, W, C order by the softmax: needs a Transpose
    fc = b.add("dense", "fc", units=5)
    sm = b.add("softmax", "sm", inputs=flat)
    b.add("concat", "cat", inputs=[fc, sm])
    check_whole_graph(b.build(init_seed=2))
