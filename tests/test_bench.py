"""`edgecnn.publish.bench` and `edgecnn bench`: well-formed results, agreement, clear errors.

No assertion on speed (machines are noisy); the timings are only checked to be consistent
with one another (min <= median, GFLOP/s = 2 x MACs / median, ratios from the medians).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from conftest import need_module
from edgecnn import summarize
from edgecnn.cli.main import main
from edgecnn.compiler import api
from edgecnn.core import reference
from edgecnn.errors import EdgecnnError, MissingDependencyError
from edgecnn.formats.modelfile import save
from edgecnn.publish.bench import bench, format_table, machine_info
from testutil import tiny_cnn

FAST = {"repeats": 3, "warmup": 1, "min_time": 0.0}
ENTRY_FIELDS = {"backend", "threads", "available", "target", "device", "date", "ms_median",
                "ms_min", "gflops", "ratio"}


def _entry(result, backend, threads=1):
    (e,) = [e for e in result["entries"] if e["backend"] == backend and e["threads"] == threads]
    return e


def _check_timed(e, macs):
    assert set(e) >= ENTRY_FIELDS
    assert e["available"] and 0 < e["ms_min"] <= e["ms_median"]
    assert e["gflops"] == pytest.approx(2 * macs / (e["ms_median"] / 1e3) / 1e9)
    assert e["samples"] == FAST["repeats"]


@pytest.mark.onnx
def test_reference_and_onnxruntime_well_formed():
    need_module("onnx", "onnxruntime", "the onnx extra is not installed")
    g = tiny_cnn()
    r = bench(g, ("reference", "onnxruntime"), threads=(1, 2), **FAST)
    macs = summarize(g).total_macs
    assert r["total_macs"] == macs > 0 and r["model"] == "tiny"
    assert [(e["backend"], e["threads"]) for e in r["entries"]] == [
        ("onnxruntime", 1), ("reference", 1), ("onnxruntime", 2), ("reference", 2)]
    for e in r["entries"]:
        _check_timed(e, macs)
        assert e["ratio"] is None  # no compiled entry to compare with
        assert e["details"]["compared_with"] == "onnxruntime"
        assert e["details"]["max_abs_diff"] < 1e-5  # same weights, same input, same output
    assert r["machine"]["cpu"] and r["machine"]["usable_cores"] >= 1
    assert r["versions"]["numpy"] == np.__version__
    text = format_table(r)
    assert "onnxruntime" in text and "reference" in text


def _no_compiler(graph, **kw):
    raise OSError("cc: not found")  # what a failed C build raises


def test_compiled_missing_or_failing_is_an_entry(monkeypatch):
    monkeypatch.setattr(api, "compile", _no_compiler)
    r = bench(tiny_cnn(), ("compiled", "reference"), **FAST)
    e = _entry(r, "compiled")
    assert not e["available"] and "not available" in e["reason"]
    assert e["ms_median"] is None
    _check_timed(_entry(r, "reference"), r["total_macs"])

    def failing(graph, **kw):
        raise EdgecnnError("not yet supported: layer 'x' of kind 'y'")

    monkeypatch.setattr(api, "compile", failing)
    e = _entry(bench(tiny_cnn(), ("compiled", "reference"), **FAST), "compiled")
    assert not e["available"] and "not yet supported" in e["reason"]


class _FakeCompiled:
    """Stands in for a CompiledModel: the reference, twice over (so it is slower)."""

    def __init__(self, graph, **kw):
        self.graph, self.kw, self.threads = graph, kw, None

    def set_threads(self, n):
        self.threads = n

    def predict(self, x):
        reference.predict(self.graph, x)
        return reference.predict(self.graph, x)

    def profile(self, x):
        return [{"layer": l.name, "ms": 0.001} for l in self.graph.layers[1:]]


def test_ratio_and_profile_with_a_compiled_backend(monkeypatch):
    made = []

    def fake_compile(graph, **kw):
        made.append(_FakeCompiled(graph, **kw))
        return made[-1]

    monkeypatch.setattr(api, "compile", fake_compile)
    g = tiny_cnn()
    r = bench(g, ("compiled", "reference"), threads=(1, 2), profile=True, **FAST)
    assert [m.kw["target"] for m in made] == ["host", "host"]
    assert [m.threads for m in made] == [1, 2]
    for t in (1, 2):
        c, ref = _entry(r, "compiled", t), _entry(r, "reference", t)
        assert c["ratio"] is None
        assert ref["ratio"] == pytest.approx(c["ms_median"] / ref["ms_median"])
        assert c["details"]["max_abs_diff"] == 0.0
    assert r["profile"]["available"]
    assert [row["layer"] for row in r["profile"]["layers"]] == [l.name for l in g.layers[1:]]


def test_profile_not_available_without_compiled(monkeypatch):
    monkeypatch.setattr(api, "compile", _no_compiler)
    r = bench(tiny_cnn(), ("compiled", "reference"), profile=True, **FAST)
    assert r["profile"]["available"] is False and r["profile"]["reason"]


def test_bad_backend_and_threads():
    with pytest.raises(EdgecnnError, match=r"unknown backend\(s\) 'tensorrt'.*known: compiled"):
        bench(tiny_cnn(), ("onnxruntime", "tensorrt"))
    with pytest.raises(EdgecnnError, match="thread counts must be positive"):
        bench(tiny_cnn(), ("reference",), threads=(0,))
    with pytest.raises(EdgecnnError, match="repeats must be >= 1"):
        bench(tiny_cnn(), ("reference",), repeats=0)


@pytest.mark.parametrize("module,extra", [("onnxruntime", "onnx"), ("torch", "torch")])
def test_missing_extra_is_a_clear_error(monkeypatch, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(MissingDependencyError, match=rf"pip install 'edgecnn\[{extra}\]'"):
        bench(tiny_cnn(), (module,), **FAST)


def test_machine_info_names_no_host():
    import platform

    info = machine_info()
    assert {"cpu", "logical_cores", "usable_cores", "arch", "simd", "os"} <= set(info)
    assert platform.node() not in json.dumps(info) or not platform.node()


@pytest.mark.onnx
def test_cli_json_has_what_cards_need(tmp_path, capsys, monkeypatch):
    need_module("onnx", "onnxruntime", "the onnx extra is not installed")
    monkeypatch.setenv("EDGECNN_CACHE", str(tmp_path / "cache"))  # a compiled build, if any
    model = save(tiny_cnn(), tmp_path / "tiny.safetensors")
    out = tmp_path / "bench.json"
    rc = main(["bench", str(model), "--against", "onnxruntime,reference", "--threads", "1,2",
               "--format", "json", "--repeats", "2", "--warmup", "1", "--min-time", "0",
               "-o", str(out)])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert printed["model"] == "tiny" and printed["total_macs"] == summarize(tiny_cnn()).total_macs
    assert printed["date"] and printed["machine"]["cpu"]
    assert {(e["backend"], e["threads"]) for e in printed["entries"]} == {
        (b, t) for b in ("compiled", "onnxruntime", "reference") for t in (1, 2)}
    for e in printed["entries"]:
        assert {"device", "threads", "target", "date"} <= set(e)
        if e["available"]:  # every backend computes the same scores (softmax outputs)
            assert e["details"]["max_abs_diff"] < 1e-5, e
    assert str(tmp_path) not in json.dumps(printed)  # no path of this machine in the card data


def test_cli_table_and_errors(tmp_path, capsys):
    model = save(tiny_cnn(), tmp_path / "tiny.safetensors")
    assert main(["bench", str(model), "--no-compiled", "--against", "reference",
                 "--repeats", "2", "--warmup", "0", "--min-time", "0", "--profile"]) == 0
    out = capsys.readouterr().out
    assert "reference" in out and "ms median" in out and "profile:" in out
    assert main(["bench", str(model), "--against", "onnxruntime,bogus"]) == 2
    assert "unknown backend(s) 'bogus'" in capsys.readouterr().err
    assert main(["bench", str(model), "--threads", "one"]) == 2
    assert "--threads takes integers" in capsys.readouterr().err
    assert main(["bench", str(tmp_path / "missing.safetensors")]) == 2


def test_busy_warning():
    from edgecnn.publish.bench import busy_warning

    def result(before, after):
        return {"machine": {"usable_cores": 2,
                            "load_average_1min": {"before": before, "after": after}}}

    assert busy_warning(result(0.2, 0.4)) == ""
    assert busy_warning(result(None, None)) == ""
    assert "load average up to 3.5 on 2 cores" in busy_warning(result(0.1, 3.5))


@pytest.mark.onnx
@pytest.mark.torch
def test_agreement_on_a_spatial_output():
    """The output is 4x4x8, not 1x1xC: NCHW backends are compared in H, W, C order."""
    need_module("onnx", "onnxruntime", "the onnx extra is not installed")
    need_module("torch", "torch", "the torch extra is not installed")
    from edgecnn.core.graph import GraphBuilder

    b = GraphBuilder("spatial", (8, 8, 3))
    b.add("conv2d", filters=8, kernel=3, stride=2, padding=1)
    r = bench(b.build(init_seed=0), ("reference", "onnxruntime", "torch"), **FAST)
    for e in r["entries"]:
        assert e["details"]["max_abs_diff"] < 1e-5, e


def test_integer_model_against_litert_and_onnx_runtime(tmp_path):
    """An integer graph: the compiled model, LiteRT on the .tflite itself (as integers) and ONNX
    Runtime on the QDQ export all run, and agree with the reference within 16 output steps of
    1/256 (XNNPACK and ONNX Runtime requantize differently; see test_int8_onnx)."""
    from conftest import need_module
    from int_models import small_model

    need_module("tflite", "tflite")
    need_module("litert", "ai_edge_litert")
    need_module("onnx", "onnxruntime")
    from edgecnn.formats.importers import import_model

    path = tmp_path / "small.tflite"
    path.write_bytes(small_model("uint8"))
    g = import_model(path)
    r = bench(g, ["compiled", "litert", "onnxruntime"], threads=[1], repeats=2, warmup=1,
              min_time=0, check_tol=16 / 256, sources={"tflite": str(path)})
    by = {e["backend"]: e for e in r["entries"]}
    for b in ("compiled", "litert", "onnxruntime"):
        assert by[b].get("available", True) and by[b]["ms_median"] > 0, by[b]
    assert "(integer)" in by["litert"]["details"]["source"]
    assert by["compiled"]["details"]["reference_rel_err"] == 0  # bit for bit
