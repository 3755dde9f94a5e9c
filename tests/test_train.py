"""Training on CPU with a generated data set: learns, resumes exactly, runs under torchrun."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import need_module
from edgecnn.apps.evaluate import evaluate
from edgecnn.cli.main import main
from edgecnn.errors import EdgecnnError
from edgecnn.formats.modelfile import load, save
from edgecnn.train.loop import RECIPES, epoch_order, lr_at
from testutil import make_shapes_dataset, small_d_model

torch = need_module("torch", "torch", "training needs the torch extra")
pytestmark = pytest.mark.torch

FAST = RECIPES["default"].override(epochs=2, batch_size=16, lr=0.05, workers=0,
                                   schedule="constant", crop_scale_min=0.6, hue=0.0,
                                   saturation=1.0, exposure=1.0)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    make_shapes_dataset(root / "train", per_class=48, seed=0)
    make_shapes_dataset(root / "val", per_class=12, seed=1)
    return root


def test_lr_schedules():
    r = RECIPES["default"].override(lr=1.0, epochs=10, warmup_epochs=1, schedule="step",
                                    step_every=4, step_gamma=0.5)
    assert lr_at(r, 0, 10) == pytest.approx(0.1) and lr_at(r, 9, 10) == pytest.approx(1.0)
    assert lr_at(r, 40, 10) == 0.5 and lr_at(r, 85, 10) == 0.25
    c = r.override(schedule="cosine", warmup_epochs=0)
    assert lr_at(c, 0, 10) == 1.0 and lr_at(c, 50, 10) == pytest.approx(0.5)
    p = r.override(schedule="poly", warmup_epochs=0, poly_power=2)
    assert lr_at(p, 50, 10) == pytest.approx(0.25)


def test_epoch_order_shards_disjointly():
    a = epoch_order(100, 0, 3, 0, 2, 8)
    b = epoch_order(100, 0, 3, 1, 2, 8)
    assert len(a) == len(b) == 48 and not set(a) & set(b)
    assert a != epoch_order(100, 0, 4, 0, 2, 8)


def test_training_learns_far_above_chance(shapes, tmp_path):
    from edgecnn.train.loop import train

    out = tmp_path / "m.safetensors"
    recipe = FAST.override(epochs=10, schedule="cosine", lr=0.1)
    train(small_d_model(), shapes / "train", out, recipe, val=shapes / "val")
    g = load(out)
    report = evaluate(g, shapes / "val")
    assert report["top1"] > 0.8  # chance is 0.25
    assert g.meta["training"]["epochs"] == 10
    log = [json.loads(l) for l in out.with_suffix(".log.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in log] == list(range(1, 11)) and "val_top1" in log[-1]
    # the torch and reference backends agree on the trained file
    ref = evaluate(g, shapes / "val", backend="reference")
    tor = evaluate(g, shapes / "val", backend="torch")
    assert ref["top1"] == tor["top1"] and ref["top5"] == tor["top5"]


def test_resume_after_a_kill_gives_the_same_parameters(shapes, tmp_path):
    from edgecnn.train.loop import train

    full = tmp_path / "full.safetensors"
    train(small_d_model(), shapes / "train", full, FAST)
    part = tmp_path / "part.safetensors"
    train(small_d_model(), shapes / "train", part, FAST, max_steps=15)  # killed mid-epoch 2
    assert not part.exists()
    train(small_d_model(), shapes / "train", part, FAST, resume=True)
    a, b = load(full), load(part)
    for k in a.weights:
        np.testing.assert_allclose(a.weights[k], b.weights[k], rtol=0, atol=1e-6, err_msg=k)


def test_train_cli_with_own_labels_and_errors(shapes, tmp_path, capsys):
    model = save(small_d_model(classes=4, labels=["a", "b", "c", "d"]), tmp_path / "s.safetensors")
    out = tmp_path / "t.safetensors"
    assert main(["train", str(model), "--data", str(shapes / "train"), "-o", str(out),
                 "--epochs", "1", "--batch-size", "32", "--workers", "0", "--own-labels"]) == 0
    assert load(out).labels == ["checker", "disc", "stripes_h", "stripes_v"]
    # ILSVRC model on non-WNID folders: one clear error
    ilsvrc = save(small_d_model(classes=1000, labels="ilsvrc2012"), tmp_path / "i.safetensors")
    assert main(["train", str(ilsvrc), "--data", str(shapes / "train"), "-o", str(out)]) == 2
    assert "unknown to model" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["train", str(model), "--data", str(tmp_path / "empty"), "-o", str(out)]) == 2
    assert "no labelled images" in capsys.readouterr().err
    assert main(["train", str(model), "--data", str(shapes), "-o", str(out),
                 "--set", "bogus=1"]) == 2
    assert "unknown training setting 'bogus'" in capsys.readouterr().err
    with pytest.raises(EdgecnnError, match="fewer than one batch"):
        epoch_order(10, 0, 0, 0, 1, 16)


@pytest.mark.slow
def test_torchrun_two_processes_with_gloo(shapes, tmp_path):
    model = save(small_d_model(), tmp_path / "s.safetensors")
    out = tmp_path / "ddp.safetensors"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    # --standalone: a local rendezvous on a free port the launcher picks (no fixed port)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "edgecnn", "train", str(model), "--data",
           str(shapes / "train"), "-o", str(out), "--epochs", "3", "--batch-size", "32",
           "--workers", "0", "--lr", "0.05", "--set", "schedule=constant", "--val",
           str(shapes / "val")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    g = load(out)
    assert g.meta["training"]["processes"] == 2
    report = evaluate(g, shapes / "val")
    assert report["top1"] > 0.5  # chance 0.25, three short epochs
