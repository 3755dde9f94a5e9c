"""The peer engines of `edgecnn bench` and benchmarks/peers.py: outputs checked against the
numpy reference before timing; the float copy of a quantized .tflite; the summary's ratios.

No assertion on speed. The engines of the bench extra (OpenVINO, ncnn, MNN) are the piece
"peers", required only when EDGECNN_REQUIRE names it (the test extra does not install them).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from conftest import REPO_ROOT, need_module
from edgecnn.core import reference
from edgecnn.core.graph import Graph
from edgecnn.core.surgery import cut
from edgecnn.errors import EdgecnnError
from edgecnn.publish import bench as bench_mod
from edgecnn.publish.bench import bench
from testutil import tiny_cnn

FAST = {"repeats": 2, "warmup": 1, "min_time": 0.0}
TOL = 1e-4  # max |engine - reference| / max(1, max |reference|): float32 with other summation
MV1 = "tflite/mobilenet_v1_0.25_128_quant.tflite"


def _logits(g: Graph) -> Graph:
    return cut(g, g.output.inputs[0]) if g.output.kind == "softmax" else g


def _entry(result, backend, threads=1):
    (e,) = [e for e in result["entries"] if e["backend"] == backend and e["threads"] == threads]
    return e


# ---- the check against the reference (numpy only) ---------------------------------------------

def test_an_engine_that_computes_something_else_is_not_timed(monkeypatch):
    real = bench_mod._FACTORIES["reference"]

    def off_by_a_bit(graph, t, tmp, sources):  # the reference, with one logit moved by 1e-2
        r = real(graph, t, tmp, sources)
        r.backend, run = "onnxruntime", r.run

        def wrong(x):
            y = np.array(run(x))
            y[0, 3] += 1e-2
            return y
        r.run = wrong
        return r

    g = _logits(tiny_cnn())
    monkeypatch.setitem(bench_mod._FACTORIES, "onnxruntime", off_by_a_bit)  # a wrong engine
    r = bench(g, ["reference", "onnxruntime"], check_tol=TOL, **FAST)
    ok, bad = _entry(r, "reference"), _entry(r, "onnxruntime")
    assert ok["available"] and ok["details"]["reference_rel_err"] == 0.0
    assert not bad["available"] and bad["ms_median"] is None
    assert "differs from edgecnn's reference: max abs difference 0.01 " in bad["reason"]
    assert r["settings"]["check_tol"] == TOL


def test_without_check_tol_nothing_is_dropped():
    g = _logits(tiny_cnn())
    r = bench(g, ["reference"], **FAST)
    assert _entry(r, "reference")["available"] and r["settings"]["check_tol"] is None


def test_a_missing_engine_names_the_extra(monkeypatch):
    from edgecnn.publish import peers

    monkeypatch.setitem(sys.modules, "openvino", None)  # import fails
    r = bench(_logits(tiny_cnn()), ["reference", "openvino"], check_tol=TOL, **FAST)
    e = _entry(r, "openvino")
    assert not e["available"] and peers.EXTRA in e["reason"]


def test_litert_needs_a_tflite_source():
    r = bench(_logits(tiny_cnn()), ["litert"], check_tol=TOL, **FAST)
    e = _entry(r, "litert")
    assert not e["available"] and ".tflite" in e["reason"]


# ---- the peers of the bench extra ---------------------------------------------------------------

@pytest.mark.parametrize("engine,module", [("openvino", "openvino"), ("ncnn", "ncnn"),
                                           ("mnn", "MNN")])
def test_peer_agrees_with_the_reference(engine, module):
    need_module("peers", module, f"needs {module}: pip install 'edgecnn[bench]'")
    if engine == "ncnn":
        need_module("peers", "pnnx", "needs pnnx: pip install 'edgecnn[bench]'")
    need_module("onnx", "onnx", "the onnx extra is not installed")
    g = _logits(tiny_cnn(size=20))
    r = bench(g, [engine], threads=(1, 2), check_tol=TOL, **FAST)
    for t in (1, 2):
        e = _entry(r, engine, t)
        assert e["available"], e.get("reason")
        assert 0 <= e["details"]["reference_rel_err"] <= TOL
        assert 0 < e["ms_min"] <= e["ms_median"]


# ---- the float copy of a quantized .tflite ------------------------------------------------------

def _mv1(shared_data):
    need_module("litert", "ai_edge_litert.interpreter", "needs ai-edge-litert (test extra)")
    return shared_data / MV1


@pytest.mark.data
def test_float_tflite_runs_the_imported_float_graph(shared_data):
    from ai_edge_litert.interpreter import Interpreter

    from edgecnn.formats.importers import import_model
    from edgecnn.formats.tflite_float import float_tflite

    path = _mv1(shared_data)
    g = import_model(path, as_float=True)
    x = np.random.default_rng(3).normal(0, 1, (1, *g.input_shape)).astype(np.float32)
    for drop in (True, False):
        interp = Interpreter(model_content=float_tflite(path, drop_softmax=drop))
        interp.allocate_tensors()
        (i,), (o,) = interp.get_input_details(), interp.get_output_details()
        assert i["dtype"] == o["dtype"] == np.float32 and not i["quantization_parameters"][
            "scales"].size
        interp.set_tensor(i["index"], x)
        interp.invoke()
        got = interp.get_tensor(o["index"]).reshape(-1)
        want = reference.predict(_logits(g) if drop else g, x).reshape(-1)
        scale = max(1.0, float(np.abs(want).max()))
        assert np.abs(got - want).max() <= TOL * scale
        if not drop:  # the softmax kept: probabilities
            assert got.sum() == pytest.approx(1, abs=1e-5)


@pytest.mark.data
def test_float_tflite_refuses_an_op_without_a_float_twin(shared_data, tmp_path):
    from ai_edge_litert import schema_py_generated as s

    from edgecnn.formats.tflite_float import float_tflite

    path = _mv1(shared_data)
    m = s.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    code = s.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = s.BuiltinOperator.DEQUANTIZE
    m.operatorCodes.append(code)
    m.subgraphs[0].operators[0].opcodeIndex = len(m.operatorCodes) - 1
    import flatbuffers

    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(bytes(b.Output()))
    with pytest.raises(EdgecnnError, match=r"bad\.tflite.*DEQUANTIZE"):
        float_tflite(bad)


# ---- benchmarks/peers.py: the summary -----------------------------------------------------------

def _peers_script():
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    try:
        import peers
    finally:
        sys.path.pop(0)
    return peers


def _timed(backend, med, lo, threads=1, gflops=10.0):
    return {"backend": backend, "threads": threads, "available": True, "ms_median": med,
            "ms_min": lo, "gflops": gflops, "details": {}}


def test_summary_ratios_against_the_best_peer():
    peers = _peers_script()
    r = {"model": "m", "total_macs": 10**6, "entries": [
        _timed("compiled", 3.0, 2.0), _timed("onnxruntime", 4.0, 1.6),
        _timed("mnn", 2.5, 2.4),
        {"backend": "ncnn", "threads": 1, "available": False, "reason": "pnnx failed"}]}
    machine = {"peak": {"measured_gflops_per_core": 100.0}}
    (row,) = peers.summary_rows(r, machine)
    assert row["best_peer"] == "mnn"  # the fastest median
    assert row["ratio_median"] == pytest.approx(3.0 / 2.5)
    assert row["ratio_min"] == pytest.approx(2.0 / 1.6)  # the fastest min, whoever has it
    assert row["percent_of_peak"]["compiled"] == pytest.approx(10.0)
    assert row["not_run"] == {"ncnn": "pnnx failed"}
    notes = peers._not_run_notes([row])
    assert notes == ["Not run: ncnn on m (1 thread(s)): pnnx failed"]
    assert "| m | 1 | 1 | 3.00 (2.00) |" in peers._table_row(row, ["compiled", "onnxruntime"])
