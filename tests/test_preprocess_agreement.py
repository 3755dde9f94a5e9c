"""One preprocessing: classify, serve, eval and retarget feed a model the same input.

A bicubic model is where they used to disagree (eval resized bilinearly whatever the model
said, up to 12/255 apart). Each application runs with a recording backend that keeps what it
was fed; every recorded input must equal an independent computation with Pillow and numpy
(crop, resize with the model's filter, scale, BGR, mean/std), exactly.
"""

import numpy as np
import pytest
from PIL import Image

from edgecnn.apps import classify, evaluate, retarget, serve
from edgecnn.core.datasets import Sample
from edgecnn.core.graph import GraphBuilder, Preprocessing


def _model(interpolation: str):
    p = Preprocessing(channel_order="BGR", pixel_range=(0.0, 255.0), mean=(104.0, 117.0, 124.0),
                      std=(58.0, 57.0, 57.5), resize="center_crop", crop_fraction=0.875,
                      interpolation=interpolation)
    b = GraphBuilder("probe", (24, 20, 3), preprocessing=p, labels=["a", "b"])
    b.add("global_avgpool")
    b.add("dense", units=2)
    g = b.build()
    g.init_weights(0)
    return g


def _image(path):
    """High-frequency content, so bilinear and bicubic resizing differ."""
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (75, 61, 3), dtype=np.uint8)).save(path)
    return path


def _expected(path, g) -> np.ndarray:
    """The model input computed here, from the graph's preprocessing fields only."""
    p = g.preprocessing
    with Image.open(path) as im:
        im = im.convert("RGB")
        side = min(im.width, im.height) * p.crop_fraction
        left, top = (im.width - side) / 2, (im.height - side) / 2
        box = tuple(int(round(v)) for v in (left, top, left + side, top + side))
        filt = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}[p.interpolation]
        px = np.asarray(im.crop(box).resize((20, 24), filt), np.float64)
    x = px[..., ::-1] * (255.0 / 255.0)
    return ((x - np.array(p.mean)) / np.array(p.std)).astype(np.float32)


class _Recorder:
    def __init__(self):
        self.inputs = []

    def backend(self, g, backend):
        def run(x):
            self.inputs += list(np.asarray(x))
            return np.zeros((len(x), 2), np.float32)
        return run


@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
def test_every_app_feeds_the_same_input(tmp_path, monkeypatch, interpolation):
    g, path = _model(interpolation), _image(tmp_path / "x.png")
    fed = {}
    for name, module in [("classify", classify), ("serve", serve), ("retarget", retarget)]:
        rec = _Recorder()
        monkeypatch.setattr(module, "backend_fn", rec.backend)
        if name == "classify":
            classify.classify(g, [path])
        elif name == "serve":
            serve.Classifier(g)(path.read_bytes())
        else:
            retarget.features(g, [path])
        assert len(rec.inputs) == 1, name
        fed[name] = rec.inputs[0]
    fed["eval"] = evaluate._load(g, Sample(path, "a"))
    want = _expected(path, g)
    for name, x in fed.items():
        np.testing.assert_allclose(x, want, rtol=0, atol=2e-6, err_msg=name)
    # the filter matters on this image: a bilinear input is far from a bicubic one
    other = _model("bilinear" if interpolation == "bicubic" else "bicubic")
    assert np.abs(_expected(path, other) - want).max() > 0.05

