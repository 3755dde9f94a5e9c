"""Small graphs and files the tests build (no test data needed)."""

import numpy as np
from PIL import Image

from edgecnn.core.graph import GraphBuilder, Preprocessing


def tiny_cnn(classes: int = 10, size: int = 16, seed: int = 0, labels="ilsvrc2012"):
    """conv-bn-leaky, maxpool, conv, residual add, concat, global pool, dense, softmax."""
    b = GraphBuilder("tiny", (size, size, 3), labels=labels,
                     preprocessing=Preprocessing(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)))
    b.add("conv2d", "conv1", filters=8, kernel=3, padding=1, bias=False)
    b.add("batchnorm", "bn1")
    b.add("activation", "act1", function="leaky_relu", slope=0.1)
    p = b.add("maxpool", "pool1", kernel=2)
    c2 = b.add("conv2d", "conv2", filters=8, kernel=3, padding=1)
    s = b.add("add", "res", inputs=[p, c2])
    c3 = b.add("conv2d", "conv3", inputs=s, filters=4, kernel=1)
    b.add("concat", "cat", inputs=[s, c3])
    b.add("global_avgpool", "gap")
    b.add("dense", "fc", units=classes)
    b.add("softmax", "prob")
    g = b.build(init_seed=seed)
    rng = np.random.default_rng(seed + 1)
    g.weights["bn1.mean"] = rng.normal(0, 0.1, 8).astype(np.float32)
    g.weights["bn1.var"] = rng.uniform(0.5, 2, 8).astype(np.float32)
    return g


def write_image(path, size=(40, 30), seed=0, fmt=None):
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format=fmt)
    return path


SHAPE_CLASSES = ("stripes_h", "stripes_v", "disc", "checker")


def shape_image(kind: str, size: int, rng) -> np.ndarray:
    """A learnable synthetic image of one class: a pattern in random colours, offset and noise."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    period = rng.uniform(4, 8)
    phase = rng.uniform(0, period)
    if kind == "stripes_h":
        mask = ((y + phase) % period) < period / 2
    elif kind == "stripes_v":
        mask = ((x + phase) % period) < period / 2
    elif kind == "disc":
        cy, cx = rng.uniform(size * 0.3, size * 0.7, 2)
        mask = (y - cy) ** 2 + (x - cx) ** 2 < (size * rng.uniform(0.2, 0.35)) ** 2
    else:
        mask = (((y + phase) // (period / 2)) + ((x + phase) // (period / 2))) % 2 == 0
    fg, bg = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    while np.abs(fg - bg).sum() < 150:
        fg, bg = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    img = np.where(mask[..., None], fg, bg) + rng.normal(0, 12, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def make_shapes_dataset(root, per_class: int = 50, size: int = 32, seed: int = 0,
                        names=None):
    """Class folders of synthetic images (JPEG) — a small learnable data set."""
    from pathlib import Path

    rng = np.random.default_rng(seed)
    root = Path(root)
    names = names or SHAPE_CLASSES
    for kind, name in zip(SHAPE_CLASSES, names, strict=False):  # names may be fewer
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(shape_image(kind, size, rng)).save(root / name / f"{i:04d}.JPEG",
                                                               quality=95)
    return root


def small_d_model(classes: int = 4, size: int = 32, labels=None):
    """A small d-family-like model: C16 M C32 M C1(classes) A S."""
    b = GraphBuilder("d_small", (size, size, 3), labels=labels or list(SHAPE_CLASSES),
                     preprocessing=Preprocessing(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
                                                 crop_fraction=1.0))
    for i, f in enumerate((16, 32)):
        b.add("conv2d", f"conv{i}", filters=f, kernel=3, padding=1, bias=False)
        b.add("batchnorm", f"bn{i}")
        b.add("activation", f"act{i}", function="leaky_relu", slope=0.1)
        b.add("maxpool", f"pool{i}", kernel=2)
    b.add("conv2d", "head", filters=classes, kernel=1)
    b.add("global_avgpool", "gap")
    b.add("softmax", "prob")
    return b.build(init_seed=0)
