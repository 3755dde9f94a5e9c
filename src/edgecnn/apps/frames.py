"""Classifying video and camera frames (ELL's Pi camera tutorial), with OpenCV (an extra)."""

from __future__ import annotations

import contextlib
import csv
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..core.graph import Graph
from ..core.labels import class_names
from ..core.preprocess import preprocess
from ..errors import EdgecnnError, require
from .classify import backend_fn, probabilities, top_k


@dataclass
class FrameResult:
    frame: int
    time_s: float  # position in the video (camera: seconds since start)
    top: list[dict]
    ms: float  # inference time of this frame
    fps: float  # frames classified per second so far (decode + preprocess + inference)
    image: np.ndarray | None = None  # the frame (BGR, as OpenCV decodes it), for display


def _open(source: str | int):
    cv2 = require("cv2", "video")
    if isinstance(source, str) and not os.path.isfile(source):
        raise EdgecnnError(f"{source}: no such video file; check the path")
    cap = cv2.VideoCapture(source)
    if not cap.isOpened():
        what = f"camera {source}" if isinstance(source, int) else source
        raise EdgecnnError(f"{what}: OpenCV cannot open it; check the camera index or that "
                           "the file is a video OpenCV reads (e.g. MP4, AVI)")
    return cv2, cap


def classify_frames(g: Graph, source: str | int, backend: str = "compiled", every: int = 1,
                    top: int = 5, max_frames: int | None = None) -> Iterator[FrameResult]:
    """Classify every ``every``-th frame of a video file or camera.

    The source is opened (and a bad one reported) before the first frame is asked for.
    """
    if every < 1:
        raise EdgecnnError("--every must be at least 1")
    cv2, cap = _open(source)
    run = backend_fn(g, backend)
    return _frames(g, cv2, cap, isinstance(source, str), run, every, top, max_frames)


def _frames(g, cv2, cap, is_file, run, every, top, max_frames) -> Iterator[FrameResult]:
    names = class_names(g.labels, g.num_classes)
    h, w, _ = g.input_shape
    start = time.perf_counter()
    done = index = 0
    try:
        while max_frames is None or done < max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            index += 1
            if (index - 1) % every:
                continue
            rgb = Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            x = preprocess(rgb, g.preprocessing, (h, w))[None]
            t0 = time.perf_counter()
            p = probabilities(g, run(x))[0]
            ms = (time.perf_counter() - t0) * 1e3
            done += 1
            pos = (cap.get(cv2.CAP_PROP_POS_MSEC) / 1e3 if is_file
                   else time.perf_counter() - start)
            yield FrameResult(index - 1, pos, top_k(np.asarray(p), names, top), ms,
                              done / (time.perf_counter() - start), bgr)
    finally:
        cap.release()


def write_csv(results: Iterator[FrameResult], path: str | os.PathLike, top: int) -> int:
    """Headless mode: one CSV row per classified frame; returns the number of rows."""
    n = 0
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["frame", "time_s", "ms", "fps"]
                     + [f"{k}{i + 1}" for i in range(top) for k in ("id", "name", "p")])
        for r in results:
            row = [r.frame, f"{r.time_s:.3f}", f"{r.ms:.2f}", f"{r.fps:.2f}"]
            for t in r.top:
                row += [t["id"], t["name"], f"{t['probability']:.5f}"]
            out.writerow(row)
            n += 1
    return n


def show(results: Iterator[FrameResult]) -> None:
    """A window with the top labels over the frames (needs OpenCV with GUI support)."""
    cv2 = require("cv2", "video")
    try:
        for r in results:
            frame = r.image
            for i, t in enumerate(r.top[:3]):
                cv2.putText(frame, f"{t['probability']:.0%} {t['name']}", (10, 30 + 28 * i),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 255, 0), 2)
            cv2.putText(frame, f"{r.fps:.1f} fps", (10, frame.shape[0] - 12),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 0), 1)
            try:
                cv2.imshow("edgecnn", frame)
            except cv2.error:
                raise EdgecnnError("this OpenCV build has no windows (headless): use --headless "
                                   "or --csv FILE, or pip install opencv-python") from None
            if cv2.waitKey(1) & 0xFF in (27, ord("q")):
                break
    finally:
        with contextlib.suppress(cv2.error):  # a headless build has no windows to close
            cv2.destroyAllWindows()


def print_results(results: Iterator[FrameResult], stream=None) -> int:
    stream = stream or sys.stdout
    n = 0
    for r in results:
        t = r.top[0]
        print(f"frame {r.frame:6d}  {r.time_s:8.2f}s  {t['probability']:6.1%} {t['name']:<30} "
              f"{r.ms:6.1f} ms  {r.fps:5.1f} fps", file=stream, flush=True)
        n += 1
    return n
