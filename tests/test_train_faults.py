"""Faults in training: SIGKILL at seeded points, then --resume; safe checkpoints; label choice.

Each kill runs ``kill_train.py`` in its own process (2 epochs of 12 steps on 192 images), so
the kill is real: no finally block, no atexit. Kill points: mid-epoch 1 and 2, during the
first and second checkpoint writes, during the final model save.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import need_module
from edgecnn.cli.main import main
from edgecnn.formats.modelfile import load, save
from testutil import make_shapes_dataset, small_d_model

HERE = Path(__file__).resolve().parent
# point → epochs the checkpoint holds after the kill (None: no checkpoint yet)
KILL_POINTS = {"step:5": None, "step:15": 1, "publish:1": None, "publish:2": 1, "publish:3": 2}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    need_module("torch", "torch", "training needs the torch extra")
    root = tmp_path_factory.mktemp("shapes")
    make_shapes_dataset(root / "train", per_class=48, seed=0)
    return root / "train"


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    from edgecnn.train.loop import train
    from kill_train import RECIPE

    out = tmp_path_factory.mktemp("full") / "m.safetensors"
    train(small_d_model(), data, out, RECIPE)
    return load(out)


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_sigkill_then_resume_ends_like_an_uninterrupted_run(data, uninterrupted, tmp_path,
                                                            point):
    from edgecnn.train.checkpoint import load_checkpoint
    from edgecnn.train.loop import train
    from kill_train import RECIPE

    out = tmp_path / "m.safetensors"
    proc = subprocess.run([sys.executable, str(HERE / "kill_train.py"), str(data), str(out),
                           point], capture_output=True, text=True, timeout=600)
    assert proc.returncode == -9, proc.stderr[-2000:]  # it was killed, not finished
    assert not out.exists()  # never a partial model under the output name
    if point.startswith("publish"):  # the cut temp file is there, under another name
        assert list(tmp_path.glob(".m.*.tmp"))
    ckpt = out.with_suffix(".ckpt")
    if KILL_POINTS[point] is None:
        assert not ckpt.exists()
    else:
        assert load_checkpoint(ckpt)[2]["epoch"] == KILL_POINTS[point]  # lost ≤ this epoch
    train(small_d_model(), data, out, RECIPE, resume=True)
    got = load(out)
    for k, v in uninterrupted.weights.items():
        np.testing.assert_allclose(got.weights[k], v, rtol=0, atol=1e-6, err_msg=k)
    log = [json.loads(line) for line in out.with_suffix(".log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == [1, 2]  # no duplicate line from the cut epoch
    # the killed run's temp files are gone too: only the three outputs remain
    assert {p.name for p in tmp_path.iterdir()} == {"m.safetensors", "m.ckpt", "m.log.jsonl"}


def test_checkpoint_is_not_a_pickle_and_bad_ones_are_refused(data, tmp_path):
    torch = need_module("torch", "torch")
    from edgecnn.train.checkpoint import CheckpointError, load_checkpoint
    from edgecnn.train.loop import train
    from kill_train import RECIPE

    out = tmp_path / "m.safetensors"
    train(small_d_model(), data, out, RECIPE.override(epochs=1))
    ckpt = out.with_suffix(".ckpt")
    head = ckpt.read_bytes()[:8]
    assert head[:2] != b"PK" and int.from_bytes(head, "little") < 1 << 24  # safetensors header
    model, opt, state = load_checkpoint(ckpt)
    assert state["epoch"] == 1 and all(isinstance(v, torch.Tensor) for v in model.values())
    assert opt["param_groups"][0]["lr"] == pytest.approx(0.05)
    # a pickle (what torch.save writes) is refused, not unpickled
    torch.save({"model": {}}, tmp_path / "old.ckpt")
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(tmp_path / "old.ckpt")
    # truncated, or not a checkpoint at all: one error saying what to do
    (tmp_path / "cut.ckpt").write_bytes(ckpt.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="without --resume"):
        load_checkpoint(tmp_path / "cut.ckpt")
    save(small_d_model(), tmp_path / "model.ckpt")
    with pytest.raises(CheckpointError, match="without --resume"):
        load_checkpoint(tmp_path / "model.ckpt")


def test_untrained_architecture_on_non_wnid_folders_uses_folder_labels(data, tmp_path, capsys):
    out = tmp_path / "t.safetensors"
    argv = ["train", "d_I32x32x3CMCMC1AS", "--data", str(data), "-o", str(out), "--epochs",
            "1", "--batch-size", "32", "--workers", "0"]
    assert main(argv) == 0
    said = capsys.readouterr().out
    assert "not ILSVRC2012 WNIDs" in said and "--own-labels" in said
    assert load(out).labels == ["checker", "disc", "stripes_h", "stripes_v"]


def test_trained_model_on_unknown_folders_names_own_labels_and_retarget(data, tmp_path, capsys):
    ilsvrc = save(small_d_model(classes=1000, labels="ilsvrc2012"), tmp_path / "i.safetensors")
    out = tmp_path / "t.safetensors"
    assert main(["train", str(ilsvrc), "--data", str(data), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "unknown to model" in err and "--own-labels" in err and "edgecnn retarget" in err
    assert not out.exists()
