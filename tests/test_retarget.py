"""retarget: a new head on cut features reaches high accuracy; --group merges classes."""

import json

import numpy as np
import pytest

from conftest import need_module
from edgecnn.apps.classify import classify
from edgecnn.apps.evaluate import evaluate
from edgecnn.apps.retarget import fit_softmax, group, read_groups, retarget
from edgecnn.core import reference
from edgecnn.core.labels import ilsvrc2012
from edgecnn.errors import EdgecnnError
from testutil import make_shapes_dataset, small_d_model, tiny_cnn


def test_fit_softmax_separates_separable_data():
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 3, (3, 5))
    y = rng.integers(0, 3, 300)
    x = centers[y] * 10 + 50 + rng.normal(0, 1, (300, 5))  # far from standardized on purpose
    w, b = fit_softmax(x, y, 3)
    assert ((x @ w.T + b).argmax(1) == y).mean() > 0.97


@pytest.mark.torch
def test_retarget_pretrained_features_to_new_categories(tmp_path):
    """Pretrain on four shape classes, then repurpose to three new categories (one of them
    merging two pretrained classes) from a small set of other images."""
    need_module("torch", "torch", "pretraining the base model needs the torch extra")
    from edgecnn.train.loop import RECIPES, train

    wnids = [w for w, _ in ilsvrc2012()][:4]
    pre = make_shapes_dataset(tmp_path / "pre", per_class=48, seed=5, names=wnids)
    recipe = RECIPES["default"].override(epochs=8, batch_size=16, lr=0.1, workers=0,
                                         crop_scale_min=0.6, hue=0.0, saturation=1.0,
                                         exposure=1.0)
    base_file = tmp_path / "base.safetensors"
    train(small_d_model(classes=4, labels=wnids), pre, base_file, recipe)
    from edgecnn.formats.modelfile import load

    names = ["stripes", "stripes2", "round", "checkered"]
    data = make_shapes_dataset(tmp_path / "new", per_class=25, seed=6, names=names)
    held = make_shapes_dataset(tmp_path / "held", per_class=10, seed=7, names=names)
    for root in (data, held):  # two stripe classes become one category
        for f in (root / "stripes2").iterdir():
            f.rename(root / "stripes" / f"b{f.name}")
        (root / "stripes2").rmdir()
    g = retarget(load(base_file), data)
    assert g.labels == ["checkered", "round", "stripes"] and g.num_classes == 3
    assert g.meta["retarget"]["cut_at"] == "pool1"
    assert g.meta["retarget"]["holdout_accuracy"] > 0.85
    assert evaluate(g, held)["top1"] > 0.85
    results = classify(g, [held / "round"], top=1)
    assert np.mean([r.top[0]["id"] == "round" for r in results]) >= 0.7


def test_group_sums_class_probabilities(tmp_path):
    g = tiny_cnn(classes=1000)
    wnids = [w for w, _ in ilsvrc2012()]
    spec = tmp_path / "groups.txt"
    spec.write_text(f"# ELL-style\nfish: {wnids[0]}-{wnids[6]}\nbirds: {wnids[7]}, {wnids[8]}\n")
    groups = read_groups(spec)
    assert groups["fish"] == wnids[0:7] and groups["birds"] == wnids[7:9]
    grouped = group(g, groups)
    assert grouped.labels == ["fish", "birds", "other"]
    x = np.random.default_rng(0).normal(size=(3, 16, 16, 3)).astype(np.float32)
    p = reference.predict(g, x)
    q = reference.predict(grouped, x)
    np.testing.assert_allclose(q[:, 0], p[:, 0:7].sum(1), rtol=1e-5)
    np.testing.assert_allclose(q[:, 1], p[:, 7:9].sum(1), rtol=1e-5)
    np.testing.assert_allclose(q.sum(1), 1, rtol=1e-5)
    (tmp_path / "g.json").write_text(json.dumps({"x": ["n99999999"]}))
    with pytest.raises(EdgecnnError, match="not an ILSVRC2012 WNID"):
        read_groups(tmp_path / "g.json")


def test_retarget_needs_two_categories(tmp_path):
    make_shapes_dataset(tmp_path / "one", per_class=2, names=["only"])
    with pytest.raises(EdgecnnError, match="at least two"):
        retarget(small_d_model(), tmp_path / "one")
