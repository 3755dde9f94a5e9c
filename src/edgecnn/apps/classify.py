"""Classify image files with a model: decode, preprocess, run a backend, report top-k."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..core.graph import Graph
from ..core.labels import class_names
from ..core.preprocess import IMAGE_SUFFIXES, list_images, load_image, preprocess
from ..core.progress import Progress
from ..errors import EdgecnnError, ImageError

BACKENDS = ("reference", "compiled", "torch")


@dataclass
class Prediction:
    image: str
    top: list[dict] = field(default_factory=list)  # {"index", "id", "name", "probability"}
    error: str | None = None

    def to_json(self) -> dict:
        d = {"image": self.image}
        if self.error is None:
            d["top"] = self.top
        else:
            d["error"] = self.error
        return d


def backend_fn(g: Graph, backend: str) -> Callable[[np.ndarray], np.ndarray]:
    """A function (N, H, W, C) float32 → (N, outputs) for the named backend."""
    if backend == "reference":
        from ..core.reference import predict

        return lambda x: predict(g, x)
    if backend == "compiled":
        from ..compiler.api import compile as compile_model

        return compile_model(g).predict
    if backend == "torch":
        return _torch_fn(g)
    raise EdgecnnError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")


def _torch_fn(g: Graph) -> Callable[[np.ndarray], np.ndarray]:
    from ..errors import require
    from ..train.torch_module import to_module

    torch = require("torch", "torch")
    module = to_module(g).eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            y = module(torch.from_numpy(x).permute(0, 3, 1, 2))  # NHWC -> NCHW
            return y.permute(0, 2, 3, 1).reshape(len(x), -1).numpy()  # (H, W, C) order

    return run


def probabilities(g: Graph, y: np.ndarray) -> np.ndarray:
    """Model outputs as probabilities: as they are after a softmax layer (or when the model says
    its outputs are probabilities), else softmax(y)."""
    if g.output.kind == "softmax" or g.meta.get("output") == "probabilities":
        return y
    z = np.exp(y - y.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def classify(g: Graph, paths: list[str | os.PathLike], top: int = 5,
             backend: str = "reference", batch_size: int = 8) -> list[Prediction]:
    """Top-``top`` classes for each image; unreadable images get an error entry, the rest go on."""
    if top < 1:
        raise EdgecnnError("--top must be at least 1")
    files = list_images(paths)
    if not files:
        raise EdgecnnError(f"no images found in {', '.join(map(str, paths))}; give image files "
                           f"or folders holding {', '.join(IMAGE_SUFFIXES[:4])} … files")
    run = backend_fn(g, backend)
    h, w, _ = g.input_shape
    names = class_names(g.labels, g.num_classes)
    results: list[Prediction] = []
    with Progress(len(files), "classify", "img") as bar:
        for start in range(0, len(files), batch_size):
            chunk = files[start:start + batch_size]
            batch, ok = [], []
            for f in chunk:
                pred = Prediction(str(f))
                results.append(pred)
                try:
                    batch.append(preprocess(load_image(f), g.preprocessing, (h, w)))
                    ok.append(pred)
                except ImageError as e:
                    pred.error = str(e)
            if batch:
                probs = probabilities(g, run(np.stack(batch)))
                for pred, p in zip(ok, probs, strict=True):
                    pred.top = top_k(p, names, top)
            bar.update(len(chunk))
    return results


def top_k(p: np.ndarray, names: list[tuple[str, str]], k: int) -> list[dict]:
    idx = np.argsort(-p, kind="stable")[:k]
    return [{"index": int(i), "id": names[i][0], "name": names[i][1],
             "probability": float(p[i])} for i in idx]
