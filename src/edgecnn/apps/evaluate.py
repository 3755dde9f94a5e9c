"""Top-1 / top-5 accuracy of a model on a labelled image folder, with any backend."""

from __future__ import annotations

import datetime
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..core.datasets import Sample, find_samples, label_indices
from ..core.graph import Graph, fingerprint
from ..core.labels import class_names
from ..core.preprocess import load_image, preprocess
from ..core.progress import Progress
from ..errors import EdgecnnError
from .classify import backend_fn


def subset(samples: list[Sample], limit: int | None) -> list[Sample]:
    """``limit`` samples spread evenly over the (sorted) set, so every part is represented."""
    if limit is None or limit >= len(samples):
        return samples
    if limit < 1:
        raise EdgecnnError("--limit must be at least 1")
    idx = np.linspace(0, len(samples) - 1, limit).round().astype(int)
    return [samples[i] for i in idx]


def _load(g: Graph, s: Sample) -> np.ndarray | str:
    """The preprocessed input for a sample, or the error message if it cannot be read."""
    try:
        h, w, _ = g.input_shape
        return preprocess(load_image(s.path), g.preprocessing, (h, w))
    except EdgecnnError as e:
        return str(e)


def evaluate(g: Graph, data: str | Path, backend: str = "reference", limit: int | None = None,
             batch_size: int = 16, workers: int = 4, log=None) -> dict:
    """Evaluate ``g`` on ``data``; returns the JSON-ready report (what model cards read).

    Skipped images are reported on ``log`` (default: sys.stderr as it is at call time)."""
    log = log or sys.stderr
    samples = subset(find_samples(data), limit)
    targets = label_indices(g, samples, str(data))
    run = backend_fn(g, backend)
    names = class_names(g.labels, g.num_classes)
    top1 = np.zeros(len(samples), bool)
    top5 = np.zeros(len(samples), bool)
    done = np.zeros(len(samples), bool)
    skipped = []
    t0 = time.perf_counter()
    compute = 0.0
    with ThreadPoolExecutor(max(1, workers)) as pool, \
            Progress(len(samples), f"eval {g.name}", "img") as bar:
        for start in range(0, len(samples), batch_size):
            idx = list(range(start, min(start + batch_size, len(samples))))
            loaded = list(pool.map(lambda i: _load(g, samples[i]), idx))
            ok = [i for i, x in zip(idx, loaded, strict=True) if not isinstance(x, str)]
            for i, x in zip(idx, loaded, strict=True):
                if isinstance(x, str):
                    skipped.append({"image": str(samples[i].path), "error": x})
                    print(f"edgecnn eval: skipped {x}", file=log)
            if ok:
                c0 = time.perf_counter()
                scores = run(np.stack([x for x in loaded if not isinstance(x, str)]))
                compute += time.perf_counter() - c0
                best = np.argsort(-scores, axis=1, kind="stable")[:, :5]
                t = targets[ok]
                top1[ok] = best[:, 0] == t
                top5[ok] = (best == t[:, None]).any(axis=1)
                done[ok] = True
            n = int(done.sum())
            bar.update(len(idx), f"top-1 {top1.sum() / max(n, 1):.3f}")
    wall = time.perf_counter() - t0
    n = int(done.sum())
    if n == 0:
        raise EdgecnnError(f"{data}: none of the {len(samples)} images could be read (each is "
                           "listed above as skipped); check the files are images")
    per_class = {}
    for i in sorted(set(targets[done].tolist())):
        m = done & (targets == i)
        per_class[names[i][0]] = {"name": names[i][1], "images": int(m.sum()),
                                  "top1": float(top1[m].mean()), "top5": float(top5[m].mean())}
    return {
        "model": g.name, "fingerprint": fingerprint(g), "data": str(data), "backend": backend,
        "images": n,
        "skipped": skipped, "limit": limit,
        "top1": float(top1[done].mean()), "top5": float(top5[done].mean()),
        "per_class": per_class,
        "images_per_second": n / wall, "inference_images_per_second": n / max(compute, 1e-9),
        "date": datetime.date.today().isoformat(),
    }
