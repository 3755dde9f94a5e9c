"""classify, preprocessing and labels."""

import json

import numpy as np
import pytest
from PIL import Image

from edgecnn.apps.classify import classify
from edgecnn.cli.main import main
from edgecnn.core import reference
from edgecnn.core.graph import Preprocessing
from edgecnn.core.labels import class_names, ilsvrc2012
from edgecnn.core.preprocess import crop_box, load_image, normalize, preprocess
from edgecnn.formats.modelfile import save
from testutil import tiny_cnn, write_image


def test_ilsvrc2012_classes_are_sorted_wnids_with_names():
    rows = ilsvrc2012()
    wnids = [w for w, _ in rows]
    assert len(rows) == 1000 and wnids == sorted(wnids) and len(set(wnids)) == 1000
    assert rows[0] == ("n01440764", "tench")
    assert rows[999][0] == "n15075141"


@pytest.mark.data
def test_class_order_matches_shared_wnid_list(shared_data):
    wnids = (shared_data / "ilsvrc2012_wnids.txt").read_text().split()
    assert [w for w, _ in ilsvrc2012()] == wnids


def test_class_names_for_own_labels():
    names = class_names(["cat", "n01440764"], 3)
    assert names == [("cat", "cat"), ("n01440764", "tench"), ("2", "class 2")]


def test_crop_boxes():
    p = Preprocessing(resize="center_crop", crop_fraction=0.5)
    assert crop_box(200, 100, p) == (75.0, 25.0, 125.0, 75.0)
    p = Preprocessing(resize="central_fraction", crop_fraction=0.5)
    assert crop_box(200, 100, p) == (50.0, 25.0, 150.0, 75.0)
    assert crop_box(200, 100, Preprocessing(resize="stretch")) == (0.0, 0.0, 200.0, 100.0)


def test_center_crop_takes_the_middle(tmp_path):
    # a 60x40 image, left third red, middle green, right blue: the central square is green
    arr = np.zeros((40, 60, 3), np.uint8)
    arr[:, :20, 0] = 255
    arr[:, 20:40, 1] = 255
    arr[:, 40:, 2] = 255
    px = preprocess(Image.fromarray(arr), Preprocessing(crop_fraction=0.5, pixel_range=(0, 255)),
                    (4, 4))
    np.testing.assert_allclose(px, np.broadcast_to([0, 255, 0], (4, 4, 3)))


def test_normalize_formula_and_channel_order():
    pixels = np.array([[[10, 20, 30]]], np.uint8)
    p = Preprocessing(channel_order="BGR", pixel_range=(-1, 1), mean=(0.1, 0.2, 0.3),
                      std=(2, 4, 8))
    rgb = pixels[0, 0].astype(np.float64) / 255 * 2 - 1
    want = (rgb[::-1] - [0.1, 0.2, 0.3]) / [2, 4, 8]
    np.testing.assert_allclose(normalize(pixels, p)[0, 0], want, rtol=1e-6)


def test_classify_matches_reference_and_skips_corrupt(tmp_path):
    g = tiny_cnn(classes=1000)
    for i in range(3):
        write_image(tmp_path / f"img{i}.png", seed=i)
    write_image(tmp_path / "img3.bmp", seed=3, fmt="BMP")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    results = classify(g, [tmp_path], top=3)
    assert [r.image.split("/")[-1] for r in results] == [
        "broken.jpg", "img0.png", "img1.png", "img2.png", "img3.bmp"]
    assert "broken.jpg" in results[0].error and "cannot decode" in results[0].error
    for r in results[1:]:
        x = preprocess(load_image(r.image), g.preprocessing, (16, 16))
        p = reference.predict(g, x)[0]
        want = np.argsort(-p, kind="stable")[:3]
        assert [t["index"] for t in r.top] == list(want)
        np.testing.assert_allclose([t["probability"] for t in r.top], p[want], rtol=1e-5)
        assert r.top[0]["id"] == ilsvrc2012()[want[0]][0]


def test_classify_cli_json_and_text(tmp_path, capsys):
    model = save(tiny_cnn(classes=1000), tmp_path / "m.safetensors")
    img = write_image(tmp_path / "a.png")
    assert main(["classify", str(model), str(img), "--top", "2", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["results"][0]["image"] == str(img) and len(out["results"][0]["top"]) == 2
    assert main(["classify", str(model), str(img)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == str(img) and len(text.splitlines()) == 6


def test_classify_cli_reports_bad_images_and_goes_on(tmp_path, capsys):
    model = save(tiny_cnn(classes=1000), tmp_path / "m.safetensors")
    good = write_image(tmp_path / "good.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"garbage")
    assert main(["classify", str(model), str(bad), str(good)]) == 0
    cap = capsys.readouterr()
    assert str(good) in cap.out and "skipped" in cap.err and str(bad) in cap.err
    assert main(["classify", str(model), str(bad)]) == 1


def test_classify_missing_model_is_one_clear_error(tmp_path, capsys):
    assert main(["classify", str(tmp_path / "nope.safetensors"), "x.png"]) == 2
    err = capsys.readouterr().err
    assert "no such model file" in err and "Traceback" not in err
