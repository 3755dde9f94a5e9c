"""`edgecnn import`: writes a model file that loads back to the same graph; errors exit 2."""

from __future__ import annotations

import json

import numpy as np

from edgecnn.cli import main as cli
from edgecnn.core import reference
from edgecnn.formats.importers import import_model

CFG = """[net]
height=16
width=16
channels=3

[convolutional]
batch_normalize=1
filters=8
size=3
stride=2
pad=1
activation=leaky

[maxpool]
size=2
stride=2

[connected]
output=10
activation=linear

[softmax]
"""


def test_import_writes_a_loadable_model(tmp_path, capsys):
    from edgecnn.formats.modelfile import load

    cfg = tmp_path / "net.cfg"
    cfg.write_text(CFG)
    out = tmp_path / "net.safetensors"
    assert cli.main(["import", str(cfg), "-o", str(out), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["layers"] == 7 and report["input"] == [16, 16, 3]
    assert report["params"] == 8 * 27 + 2 * 8 + 10 * 4 * 4 * 8 + 10
    g = load(out)
    want = import_model(cfg)  # He-initialized with the same default seed
    x = np.random.default_rng(0).uniform(0, 1, (2, 16, 16, 3)).astype(np.float32)
    np.testing.assert_array_equal(reference.run(g, x), reference.run(want, x))
    assert g.preprocessing == want.preprocessing and g.meta["source"]["format"] == "darknet"


def test_import_text_report(tmp_path, capsys):
    cfg = tmp_path / "net.cfg"
    cfg.write_text(CFG)
    assert cli.main(["import", str(cfg), "-o", str(tmp_path / "m.safetensors")]) == 0
    text = capsys.readouterr().out
    assert "input 16x16x3" in text and "10 outputs" in text and "He-initialized" in text


def test_import_errors_exit_2_with_one_message(tmp_path, capsys):
    cfg = tmp_path / "net.cfg"
    cfg.write_text(CFG.replace("[maxpool]", "[route]\nlayers=-1\n\n[maxpool]"))
    out = tmp_path / "m.safetensors"
    assert cli.main(["import", str(cfg), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edgecnn import: error: ") and "[route]" in err
    assert not out.exists()
    cfg.write_text(CFG)
    weights = tmp_path / "net.weights"
    weights.write_bytes(np.zeros(5, "<i4").tobytes() + np.zeros(7, "<f4").tobytes())
    assert cli.main(["import", str(cfg), "--weights", str(weights), "-o", str(out)]) == 2
    assert "expected" in capsys.readouterr().err and not out.exists()
    assert cli.main(["import", str(tmp_path / "missing.onnx"), "-o", str(out)]) == 2
    assert "no such file" in capsys.readouterr().err
    assert cli.main(["import", str(cfg), "--fake-quant", "-o", str(out)]) == 2
    assert ".tflite" in capsys.readouterr().err
