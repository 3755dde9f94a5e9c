"""The model file: round trip, and one clear error for every kind of damage."""

import json

import numpy as np
import pytest
from safetensors.numpy import save_file

from edgecnn.apps.resolve import resolve
from edgecnn.core import reference
from edgecnn.errors import ModelFileError
from edgecnn.formats.modelfile import load, save
from testutil import tiny_cnn


def test_round_trip_keeps_graph_weights_and_outputs(tmp_path):
    g = tiny_cnn()
    path = save(g, tmp_path / "m.safetensors")
    h = load(path)
    assert h.to_json() == g.to_json()
    assert set(h.weights) == set(g.weights)
    for k in g.weights:
        np.testing.assert_array_equal(h.weights[k], g.weights[k])
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype(np.float32)
    np.testing.assert_array_equal(reference.run(g, x), reference.run(h, x))


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path):
    save(tiny_cnn(), tmp_path / "m.safetensors")
    save(tiny_cnn(seed=3), tmp_path / "m.safetensors")  # overwrite in place
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def _write_raw(path, tensors, meta):
    save_file(tensors, str(path), metadata=meta)
    return path


def _meta(g):
    return {"edgecnn.format": "1", "edgecnn.graph": json.dumps(g.to_json())}


def _expect(path, *words):
    with pytest.raises(ModelFileError) as e:
        load(path)
    msg = str(e.value)
    assert str(path) in msg
    for w in words:
        assert w in msg, msg
    assert "\n" not in msg


def test_truncated_file(tmp_path):
    path = save(tiny_cnn(), tmp_path / "m.safetensors")
    data = path.read_bytes()
    for cut in (5, 100, len(data) // 2, len(data) - 3):
        p = tmp_path / f"cut{cut}.safetensors"
        p.write_bytes(data[:cut])
        _expect(p, "truncated or corrupt")


def test_garbage_file(tmp_path):
    p = tmp_path / "junk.safetensors"
    p.write_bytes(b"\xff" * 64)
    _expect(p, "not a readable safetensors file")


def test_missing_file(tmp_path):
    _expect(tmp_path / "none.safetensors", "no such model file")


def test_safetensors_without_graph(tmp_path):
    p = _write_raw(tmp_path / "plain.safetensors", {"a": np.zeros(3, np.float32)}, {})
    _expect(p, "not an edgecnn model")


def test_unknown_kind(tmp_path):
    g = tiny_cnn()
    d = g.to_json()
    d["layers"][4]["kind"] = "frobnicate"
    meta = {"edgecnn.format": "1", "edgecnn.graph": json.dumps(d)}
    p = _write_raw(tmp_path / "k.safetensors", g.weights, meta)
    _expect(p, "unknown layer kind 'frobnicate'", "pool1")


def test_wrong_tensor_shape(tmp_path):
    g = tiny_cnn()
    w = dict(g.weights)
    w["conv2.weight"] = np.zeros((8, 8, 3, 2), np.float32)
    p = _write_raw(tmp_path / "s.safetensors", w, _meta(g))
    _expect(p, "conv2.weight", "(8, 8, 3, 2)", "(8, 8, 3, 3)")


def test_missing_tensor(tmp_path):
    g = tiny_cnn()
    w = {k: v for k, v in g.weights.items() if k != "fc.bias"}
    p = _write_raw(tmp_path / "m.safetensors", w, _meta(g))
    _expect(p, "missing tensor 'fc.bias'")


def test_extra_tensor(tmp_path):
    g = tiny_cnn()
    w = dict(g.weights, stray=np.zeros(2, np.float32))
    p = _write_raw(tmp_path / "x.safetensors", w, _meta(g))
    _expect(p, "stray", "belong to no layer")


def test_bad_json_and_bad_attribute(tmp_path):
    g = tiny_cnn()
    p = _write_raw(tmp_path / "j.safetensors", g.weights,
                   {"edgecnn.format": "1", "edgecnn.graph": "{not json"})
    _expect(p, "not valid JSON")
    d = g.to_json()
    d["layers"][1]["attrs"]["kernel"] = "big"
    p = _write_raw(tmp_path / "a.safetensors", g.weights,
                   {"edgecnn.format": "1", "edgecnn.graph": json.dumps(d)})
    _expect(p, "conv1", "kernel")


def test_shape_mismatch_in_edited_graph(tmp_path):
    g = tiny_cnn()
    d = g.to_json()
    d["layers"][5]["attrs"]["filters"] = 5  # conv2 no longer matches the residual add
    p = _write_raw(tmp_path / "r.safetensors", g.weights,
                   {"edgecnn.format": "1", "edgecnn.graph": json.dumps(d)})
    _expect(p, "res", "one shape")


def test_wrong_dtype_and_nan(tmp_path):
    g = tiny_cnn()
    w = dict(g.weights)
    w["fc.bias"] = w["fc.bias"].astype(np.float64)
    _expect(_write_raw(tmp_path / "d.safetensors", w, _meta(g)), "fc.bias", "float64")
    w = dict(g.weights)
    w["fc.bias"] = np.full_like(w["fc.bias"], np.nan)
    _expect(_write_raw(tmp_path / "n.safetensors", w, _meta(g)), "fc.bias", "NaN")


def test_future_format_version(tmp_path):
    g = tiny_cnn()
    p = _write_raw(tmp_path / "v.safetensors", g.weights,
                   {"edgecnn.format": "99", "edgecnn.graph": json.dumps(g.to_json())})
    _expect(p, "format '99'")


def test_resolve_path_that_does_not_exist(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        resolve(str(tmp_path / "missing.safetensors"))


def test_saved_file_gets_the_umask_mode(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        path = save(tiny_cnn(), tmp_path / "m.safetensors")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
