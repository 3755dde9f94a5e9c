"""Data layouts and evaluation (top-1 / top-5 against an independent recount)."""

import numpy as np
import pytest

from edgecnn.apps.evaluate import evaluate, subset
from edgecnn.core import reference
from edgecnn.core.datasets import Augment, eval_pixels, find_samples, input_affine, to_input
from edgecnn.core.graph import Preprocessing
from edgecnn.core.labels import ilsvrc2012
from edgecnn.core.preprocess import load_image
from edgecnn.errors import EdgecnnError
from testutil import tiny_cnn, write_image

WNIDS = [w for w, _ in ilsvrc2012()]


def _class_folders(root, classes, per_class=3):
    for ci, c in enumerate(classes):
        (root / c).mkdir(parents=True)
        for j in range(per_class):
            write_image(root / c / f"{j}.JPEG", seed=10 * ci + j, fmt="JPEG")
    return root


def _recount(g, samples, classes):
    x = np.stack([to_input(eval_pixels(load_image(s.path), g.preprocessing, (16, 16)),
                           g.preprocessing) for s in samples])
    p = reference.predict(g, x)
    t = np.array([classes.index(s.label) for s in samples])
    best = np.argsort(-p, axis=1, kind="stable")[:, :5]
    return (best[:, 0] == t).mean(), (best == t[:, None]).any(1).mean()


def test_eval_class_folders_matches_recount(tmp_path):
    classes = WNIDS[:4]
    root = _class_folders(tmp_path / "val", classes)
    g = tiny_cnn(classes=1000)
    r = evaluate(g, tmp_path, workers=2)  # the split root: val/ is found
    samples = find_samples(tmp_path)
    t1, t5 = _recount(g, samples, WNIDS)
    assert r["images"] == 12 and r["top1"] == pytest.approx(t1) and r["top5"] == pytest.approx(t5)
    assert set(r["per_class"]) == set(classes)
    assert sum(v["images"] for v in r["per_class"].values()) == 12
    assert root.name == "val"


def test_eval_own_labels_and_corrupt_image_is_skipped(tmp_path):
    classes = ["cat", "dog", "other"]
    _class_folders(tmp_path, classes, per_class=4)
    (tmp_path / "dog" / "bad.JPEG").write_bytes(b"not a jpeg")
    g = tiny_cnn(classes=3, labels=classes)
    r = evaluate(g, tmp_path, batch_size=5)
    assert r["images"] == 12 and len(r["skipped"]) == 1 and "bad.JPEG" in r["skipped"][0]["image"]
    good = [s for s in find_samples(tmp_path) if s.path.name != "bad.JPEG"]
    t1, t5 = _recount(g, good, classes)
    assert r["top1"] == pytest.approx(t1) and r["top5"] == 1.0


def test_flat_folder_with_loc_val_solution(tmp_path):
    val = tmp_path / "val"
    val.mkdir()
    lines = ["ImageId,PredictionString"]
    for i in range(5):
        write_image(val / f"ILSVRC2012_val_{i:08d}.JPEG", seed=i, fmt="JPEG")
        lines.append(f"ILSVRC2012_val_{i:08d},{WNIDS[i * 7]} 1 2 3 4 {WNIDS[i * 7]} 5 6 7 8")
    (tmp_path / "LOC_val_solution.csv").write_text("\n".join(lines) + "\n")
    samples = find_samples(val)
    assert [s.label for s in samples] == [WNIDS[i * 7] for i in range(5)]
    g = tiny_cnn(classes=1000)
    r = evaluate(g, val)
    t1, _ = _recount(g, samples, WNIDS)
    assert r["images"] == 5 and r["top1"] == pytest.approx(t1)


def test_wnid_prefixed_files(tmp_path):
    write_image(tmp_path / f"{WNIDS[3]}_goldfish.JPEG", fmt="JPEG")
    write_image(tmp_path / f"{WNIDS[9]}_o'brien.JPEG", seed=2, fmt="JPEG")
    assert [s.label for s in find_samples(tmp_path)] == [WNIDS[3], WNIDS[9]]


def test_limit_spreads_over_the_set(tmp_path):
    items = list(range(100))
    assert subset(items, 5) == [0, 25, 50, 74, 99]
    assert subset(items, None) == items


def test_bad_data_gets_clear_errors(tmp_path):
    g = tiny_cnn(classes=1000)
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgecnnError, match="no labelled images"):
        evaluate(g, tmp_path / "empty")
    with pytest.raises(EdgecnnError, match="no such data folder"):
        evaluate(g, tmp_path / "missing")
    _class_folders(tmp_path / "pets", ["cats", "dogs"], per_class=1)
    with pytest.raises(EdgecnnError, match="cats, dogs unknown to model.*ILSVRC2012 WNIDs"):
        evaluate(g, tmp_path / "pets")
    g3 = tiny_cnn(classes=3, labels=["cats", "dogs"])
    with pytest.raises(EdgecnnError, match="3 outputs but 2 labels"):
        evaluate(g3, tmp_path / "pets")


def test_augment_output_and_determinism(tmp_path):
    im = load_image(write_image(tmp_path / "a.png", size=(64, 48)))
    a = Augment()(im, (32, 32), np.random.default_rng(1))
    b = Augment()(im, (32, 32), np.random.default_rng(1))
    c = Augment()(im, (32, 32), np.random.default_rng(2))
    assert a.shape == (32, 32, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_input_affine_equals_to_input():
    px = np.random.default_rng(0).integers(0, 256, (4, 5, 3), dtype=np.uint8)
    for p in (Preprocessing(), Preprocessing(channel_order="BGR", pixel_range=(0, 255)),
              Preprocessing(pixel_range=(-1, 1), mean=(0.1, 0.2, 0.3), std=(0.5, 2, 4),
                            channel_order="BGR")):
        a, b, bgr = input_affine(p)
        x = (px[..., ::-1] if bgr else px).astype(np.float32) * a + b
        np.testing.assert_allclose(x, to_input(px, p), rtol=1e-6, atol=1e-5)
