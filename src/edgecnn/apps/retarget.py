"""Repurposing a pretrained classifier (ELL's tutorial): new categories from a few hundred images.

``retarget``: cut the network at a layer, compute that layer's output for every image (the
features), fit a new dense + softmax head by multinomial logistic regression (numpy, full batch,
L2-regularized), and append the head — the result is an ordinary model with the new labels.

``group``: merge ILSVRC2012 classes into coarser categories (ELL's dog / cat / other): a fixed
dense layer after the softmax sums the probabilities of each category's classes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..core.datasets import find_samples
from ..core.graph import Graph, Layer
from ..core.labels import ilsvrc2012, wnid_index
from ..core.preprocess import load_image, normalize, to_pixels
from ..core.progress import Progress
from ..core.surgery import classifier_layer, cut
from ..errors import EdgecnnError
from .classify import backend_fn


def default_cut(g: Graph) -> str:
    """The layer feeding the classifier (the last conv2d/dense)."""
    head = classifier_layer(g)
    return head.inputs[0]


def features(g: Graph, paths: list[Path], backend: str = "reference", batch_size: int = 16,
             flip: bool = False) -> tuple[np.ndarray, list[int]]:
    """(N, D) features of the readable images (and their positions in ``paths``)."""
    run = backend_fn(g, backend)
    h, w, _ = g.input_shape
    out, ok = [], []
    with Progress(len(paths), "features", "img") as bar:
        for start in range(0, len(paths), batch_size):
            xs = []
            for i in range(start, min(start + batch_size, len(paths))):
                try:
                    px = to_pixels(load_image(paths[i]), g.preprocessing, (h, w))
                except EdgecnnError as e:
                    print(f"edgecnn retarget: skipped {e}")
                    continue
                if flip:
                    px = px[:, ::-1]
                xs.append(normalize(px, g.preprocessing))
                ok.append(i)
            if xs:
                out.append(run(np.stack(xs)))
            bar.update(min(batch_size, len(paths) - start))
    if not out:
        raise EdgecnnError("none of the images could be read (each is listed above); check "
                           "the --data folder holds image files")
    return np.concatenate(out).reshape(len(ok), -1), ok


def fit_softmax(x: np.ndarray, y: np.ndarray, classes: int, l2: float = 1e-3,
                steps: int = 500, lr: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression on standardized features; returns (W (k, D), b (k,))
    expressed on the raw features (the standardization is folded in)."""
    mean, std = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / std
    n, d = z.shape
    w = np.zeros((classes, d))
    b = np.zeros(classes)
    onehot = np.eye(classes)[y]
    m_w, v_w, m_b, v_b = (np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b))
    for t in range(1, steps + 1):  # Adam on the full batch
        logits = z @ w.T + b
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g_logits = (p - onehot) / n
        gw = g_logits.T @ z + l2 * w
        gb = g_logits.sum(0)
        for param, grad, m, v in ((w, gw, m_w, v_w), (b, gb, m_b, v_b)):
            m *= 0.9
            m += 0.1 * grad
            v *= 0.999
            v += 0.001 * grad * grad
            param -= lr * 0.1 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
    w_raw = w / std
    b_raw = b - w_raw @ mean
    return w_raw.astype(np.float32), b_raw.astype(np.float32)


def _append_head(base: Graph, labels: list[str], w: np.ndarray, b: np.ndarray,
                 meta: dict) -> Graph:
    last = base.output.name
    g = base.derive(base.layers + [Layer("retarget_fc", "dense", (last,), {"units": len(labels)}),
                                   Layer("retarget_prob", "softmax", ("retarget_fc",), {})],
                    name=f"{base.name}_retargeted", labels=list(labels),
                    meta=dict(base.meta, retarget=meta))
    g.weights.update({"retarget_fc.weight": w, "retarget_fc.bias": b})
    g.check_weights()
    return g


def retarget(g: Graph, data: str | Path, at: str | None = None, backend: str = "reference",
             holdout: float = 0.2, l2: float = 1e-3, seed: int = 0, flip: bool = True) -> Graph:
    """A new model: ``g`` cut at ``at`` with a head trained on ``data``'s class folders."""
    samples = find_samples(data, "train")
    labels = sorted({s.label for s in samples})
    if len(labels) < 2:
        raise EdgecnnError(f"{data}: retargeting needs at least two class folders (one per "
                           "category, each holding its images)")
    at = at or default_cut(g)
    base = cut(g, at)
    y_all = np.array([labels.index(s.label) for s in samples])
    paths = [s.path for s in samples]
    x, ok = features(base, paths, backend)
    y = y_all[ok]
    rng = np.random.default_rng(seed)
    test = rng.random(len(y)) < holdout if holdout > 0 else np.zeros(len(y), bool)
    train_x, train_y = x[~test], y[~test]
    if flip:  # mirrored images are more training examples for the same categories
        fx, fok = features(base, [paths[ok[i]] for i in np.flatnonzero(~test)], backend,
                           flip=True)
        train_x = np.concatenate([train_x, fx])
        train_y = np.concatenate([train_y, train_y[fok]])
    w, b = fit_softmax(train_x, train_y, len(labels), l2=l2)

    def acc(xs, ys):
        return float(((xs @ w.T + b).argmax(1) == ys).mean()) if len(ys) else None

    meta = {"data": str(data), "cut_at": at, "images": int(len(y)),
            "train_accuracy": acc(x[~test], y[~test]), "holdout_accuracy": acc(x[test], y[test]),
            "holdout_images": int(test.sum())}
    if holdout > 0 and test.any():  # the shipped head is refit on every image
        all_x, all_y = x, y
        if flip:
            fx, fok = features(base, [paths[i] for i in ok], backend, flip=True)
            all_x, all_y = np.concatenate([x, fx]), np.concatenate([y, y[fok]])
        w, b = fit_softmax(all_x, all_y, len(labels), l2=l2)
    return _append_head(base, labels, w, b, meta)


def read_groups(path: str | Path) -> dict[str, list[str]]:
    """Categories from JSON ``{"dog": ["n02085620", …], …}`` or lines ``dog: n02085620 …``.

    A WNID range ``n02085620-n02113978`` takes every ILSVRC2012 class between the two (in the
    standard order), as ELL's dog/cat example lists contiguous index ranges.
    """
    text = Path(path).read_text()
    try:
        raw = json.loads(text)
    except json.JSONDecodeError:
        raw = {}
        for i, line in enumerate(text.splitlines()):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if ":" not in line:
                raise EdgecnnError(f"{path}: line {i + 1} is not 'category: wnid …'") from None
            name, ids = line.split(":", 1)
            raw.setdefault(name.strip(), []).extend(ids.replace(",", " ").split())
    index = wnid_index()
    wnids = [w for w, _ in ilsvrc2012()]
    groups = {}
    for name, ids in raw.items():
        members = []
        for item in ids:
            lo, _, hi = item.partition("-")
            for wn in (lo, hi or lo):
                if wn not in index:
                    raise EdgecnnError(f"{path}: {wn!r} in category {name!r} is not an "
                                       "ILSVRC2012 WNID")
            members += wnids[index[lo]:index[hi or lo] + 1]
        groups[name] = members
    return groups


def group(g: Graph, groups: dict[str, list[str]], other: str | None = "other") -> Graph:
    """``g`` with its 1000 class probabilities summed into the given categories."""
    if g.labels != "ilsvrc2012" or g.num_classes != 1000:
        raise EdgecnnError(f"--group needs a model with the 1000 ILSVRC2012 classes; "
                           f"{g.name!r} has {g.num_classes} outputs")
    index = wnid_index()
    names = list(groups)
    w = np.zeros((len(names) + (other is not None), 1000), np.float32)
    for i, n in enumerate(names):
        w[i, [index[x] for x in groups[n]]] = 1
    if (w.sum(0) > 1).any():
        dup = [ilsvrc2012()[j][0] for j in np.flatnonzero(w.sum(0) > 1)[:3]]
        raise EdgecnnError(f"class(es) {', '.join(dup)} are in more than one category; list each "
                           "class in one category only")
    if other is not None:
        w[-1] = 1 - w[:-1].sum(0)
        names.append(other)
    probs = g.output.name
    prep = g
    if g.output.kind != "softmax":  # sum probabilities, so make them first
        prep = _with_layer(g, Layer("group_prob", "softmax", (probs,), {}))
        probs = "group_prob"
    out = prep.derive(prep.layers + [Layer("group_sum", "dense", (probs,),
                                           {"units": len(names), "bias": False})],
                      name=f"{g.name}_grouped", labels=names,
                      meta=dict(g.meta, output="probabilities",
                                grouped={n: len(groups.get(n, [])) for n in names}))
    out.weights["group_sum.weight"] = w
    out.check_weights()
    return out


def _with_layer(g: Graph, layer: Layer) -> Graph:
    return g.derive(g.layers + [layer])
