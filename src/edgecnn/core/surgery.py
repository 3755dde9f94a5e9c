"""Graph surgery: cut a graph at a layer, give it a new classifier for new labels."""

from __future__ import annotations

from ..errors import EdgecnnError
from .graph import Graph, Layer


def cut(g: Graph, at: str) -> Graph:
    """The graph up to and including layer ``at`` (which becomes the output)."""
    names = [l.name for l in g.layers]
    if at not in names:
        raise EdgecnnError(f"model {g.name!r} has no layer {at!r} (layers: "
                           f"{', '.join(names[1:])})")
    keep = g.layers[:names.index(at) + 1]
    needed = {at}
    for l in reversed(keep):
        if l.name in needed:
            needed.update(l.inputs)
    return g.derive([l for l in keep if l.name in needed])


def classifier_layer(g: Graph) -> Layer:
    """The last linear layer (convolution or dense): the one whose outputs are the classes."""
    for l in reversed(g.layers):
        if l.spec.linear:
            return l
    raise EdgecnnError(f"model {g.name!r} has no conv2d or dense layer to re-head; "
                       "retarget a model with a classifier layer")


def with_classes(g: Graph, labels: list[str], seed: int = 0) -> Graph:
    """The same architecture with its classifier resized to ``labels`` (fresh weights for it).

    The classifier is the last conv2d/dense layer; the layers after it (batchnorm, activation,
    pooling, softmax …) keep the channel count and get fresh tensors too.
    """
    head = classifier_layer(g)
    n = len(labels)
    resized = Layer(head.name, head.kind, head.inputs,
                    dict(head.attrs, **{"filters" if head.kind == "conv2d" else "units": n}))
    out = g.derive([resized if l is head else l for l in g.layers], labels=list(labels))
    if out.num_classes != n:
        raise EdgecnnError(f"cannot re-head {g.name!r}: after resizing {head.name!r} the "
                           f"model has {out.num_classes} outputs, not {n}")
    out.init_weights(seed)  # fresh everywhere, then the trained layers before the head
    kept = {l.name for l in g.layers[:g.layers.index(head)]}
    out.weights.update({k: v for k, v in g.weights.items() if _layer_of(k) in kept})
    return out


def _layer_of(key: str) -> str:
    """The layer of a tensor key "<layer>.<tensor>" (layer names may contain dots)."""
    return key.rsplit(".", 1)[0]
