"""Video frames: every N-th frame classified, the CSV agrees with the reference on the frames."""

import csv

import numpy as np
import pytest
from PIL import Image

from conftest import need_module
from edgecnn.cli.main import main
from edgecnn.core import reference
from edgecnn.core.preprocess import preprocess
from edgecnn.formats.modelfile import save
from testutil import tiny_cnn

cv2 = need_module("video", "cv2", "video needs the video extra (OpenCV)")


def _video(path, frames=9, size=(48, 32)):
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, size)
    rng = np.random.default_rng(0)
    for _ in range(frames):
        out.write(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    out.release()
    return path


def _decoded_frames(path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            return frames
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def test_video_csv_every_second_frame(tmp_path, capsys):
    g = tiny_cnn(classes=1000)
    model = save(g, tmp_path / "m.safetensors")
    video = _video(tmp_path / "clip.avi")
    out = tmp_path / "frames.csv"
    assert main(["classify", str(model), "--video", str(video), "--every", "2", "--backend",
                 "reference", "--csv", str(out), "--top", "3"]) == 0
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert [int(r["frame"]) for r in rows] == [0, 2, 4, 6, 8]
    frames = _decoded_frames(video)
    for r in rows:
        x = preprocess(Image.fromarray(frames[int(r["frame"])]), g.preprocessing, (16, 16))
        p = reference.predict(g, x)[0]
        assert r["id1"] == f"{_wnid(int(np.argmax(p)))}"
        assert float(r["p1"]) == pytest.approx(float(p.max()), abs=1e-5)
        assert float(r["fps"]) > 0


def _wnid(i):
    from edgecnn.core.labels import ilsvrc2012

    return ilsvrc2012()[i][0]


def test_headless_prints_a_line_per_frame_and_bad_video(tmp_path, capsys):
    model = save(tiny_cnn(classes=1000), tmp_path / "m.safetensors")
    video = _video(tmp_path / "clip.avi", frames=4)
    assert main(["classify", str(model), "--video", str(video), "--headless", "--backend",
                 "reference", "--max-frames", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(l.startswith("frame") and "fps" in l for l in lines)
    assert main(["classify", str(model), "--video", str(tmp_path / "none.avi")]) == 2
    assert "no such video file" in capsys.readouterr().err
    (tmp_path / "bad.avi").write_bytes(b"nothing")
    assert main(["classify", str(model), "--video", str(tmp_path / "bad.avi"), "--backend",
                 "reference", "--headless"]) == 2
    assert "OpenCV cannot open it" in capsys.readouterr().err
