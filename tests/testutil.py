"""Small graphs and files the tests build (no test data needed)."""

import numpy as np
from PIL import Image

from edgecnn.graph import GraphBuilder, Preprocessing


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
