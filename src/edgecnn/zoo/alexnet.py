"""AlexNet (Krizhevsky, Sutskever, Hinton 2012) as taught in ImageNet lectures: the single-GPU
equivalent of the two-GPU network (no channel groups).

227x227x3 -> conv1 11x11/4 (96) 55x55 -> relu -> maxpool 3x3/2 27x27 -> LRN -> conv2 5x5 pad 2
(256) 27x27 -> relu -> maxpool 13x13 -> LRN -> conv3 3x3 pad 1 (384) -> relu -> conv4 (384) ->
relu -> conv5 (256) -> relu -> maxpool 6x6x256 -> dropout -> fc6 4096 -> relu -> dropout ->
fc7 4096 -> relu -> fc8 1000 -> softmax. 62,378,344 params (62,367,776 weights + 10,568 biases).
"""

from __future__ import annotations

from ..core.graph import Graph, GraphBuilder, Preprocessing
from .registry import register

# Paper: k=2, n=5, alpha=1e-4, beta=0.75 with alpha multiplying the plain sum of squares; our
# lrn kind (PyTorch/ONNX convention) divides alpha by size, so alpha = 1e-4 * 5.
LRN = {"size": 5, "alpha": 1e-4 * 5, "beta": 0.75, "k": 2.0}

IMAGENET = Preprocessing(channel_order="RGB", pixel_range=(0.0, 1.0), mean=(0.485, 0.456, 0.406),
                         std=(0.229, 0.224, 0.225), resize="center_crop", crop_fraction=0.875)


def _conv(b: GraphBuilder, i: int, filters: int, kernel: int, stride: int = 1,
          padding: int = 0) -> None:
    b.add("conv2d", f"conv{i}", filters=filters, kernel=kernel, stride=stride, padding=padding)
    b.add("activation", f"relu{i}", function="relu")


@register("alexnet")
def alexnet() -> Graph:
    b = GraphBuilder("alexnet", (227, 227, 3), preprocessing=IMAGENET, labels="ilsvrc2012",
                     meta={"description": "AlexNet (Krizhevsky et al. 2012), single-GPU "
                                          "equivalent without channel groups", "departures": []})
    _conv(b, 1, 96, 11, stride=4)  # 55x55x96
    b.add("maxpool", "pool1", kernel=3, stride=2)  # 27x27x96
    b.add("lrn", "norm1", **LRN)
    _conv(b, 2, 256, 5, padding=2)  # 27x27x256
    b.add("maxpool", "pool2", kernel=3, stride=2)  # 13x13x256
    b.add("lrn", "norm2", **LRN)
    _conv(b, 3, 384, 3, padding=1)
    _conv(b, 4, 384, 3, padding=1)
    _conv(b, 5, 256, 3, padding=1)  # 13x13x256
    b.add("maxpool", "pool5", kernel=3, stride=2)  # 6x6x256
    b.add("dropout", "drop6", rate=0.5)
    b.add("dense", "fc6", units=4096)
    b.add("activation", "relu6", function="relu")
    b.add("dropout", "drop7", rate=0.5)
    b.add("dense", "fc7", units=4096)
    b.add("activation", "relu7", function="relu")
    b.add("dense", "fc8", units=1000)
    b.add("softmax", "prob")
    return b.build()
