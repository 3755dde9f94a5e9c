"""Darknet importer: .cfg shapes, .weights values, and Darknet's own arithmetic in C, H, W."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from edgecnn.core import reference
from edgecnn.core.accounting import summarize
from edgecnn.errors import ModelFileError
from edgecnn.formats.importers import UnsupportedModelError, import_model
from edgecnn.formats.importers.darknet import import_darknet

SMALL_CFG = """\
[net]
height=9
width=8
channels=3

[convolutional]
batch_normalize=1
filters=4
size=3
stride=1
pad=1
activation=leaky

[maxpool]
size=2
stride=2

# a 1x1 convolution keeps pad=1 meaning padding size/2 = 0
[convolutional]
filters=6
size=1
stride=1
pad=1
groups=2
activation=relu

[maxpool]
size=2
stride=1

[normalization]
size=3
alpha=0.01
beta=0.75
kappa=2

[connected]
batch_normalize=1
output=5
activation=logistic

[dropout]
probability=.5

[connected]
output=3
activation=linear

[softmax]
groups=1

[cost]
type=sse
"""

# the tensors in .weights order: (name, shape) — Darknet's C, H, W layouts
SMALL_TENSORS = [("conv1.biases", (4,)), ("conv1.scales", (4,)), ("conv1.mean", (4,)),
                 ("conv1.var", (4,)), ("conv1.weights", (4, 3, 3, 3)),
                 ("conv2.biases", (6,)), ("conv2.weights", (6, 2, 1, 1)),
                 ("fc1.biases", (5,)), ("fc1.weights", (5, 6 * 5 * 4)), ("fc1.scales", (5,)),
                 ("fc1.mean", (5,)), ("fc1.var", (5,)),
                 ("fc2.biases", (3,)), ("fc2.weights", (3, 5))]


def small_values(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, shape in SMALL_TENSORS:
        if name.endswith(".var"):
            out[name] = rng.uniform(0.5, 2.0, shape).astype(np.float32)
        else:
            out[name] = rng.normal(0, 0.5, shape).astype(np.float32)
    return out


def write_weights(path, values: dict, major=0, minor=2, revision=0, seen=12345, extra=b""):
    wide = major * 10 + minor >= 2
    header = np.array([major, minor, revision], "<i4").tobytes()
    header += np.array([seen], "<i8" if wide else "<i4").tobytes()
    body = b"".join(values[name].astype("<f4").tobytes() for name, _ in SMALL_TENSORS)
    path.write_bytes(header + body + extra)
    return path


@pytest.fixture
def small(tmp_path):
    cfg = tmp_path / "small.cfg"
    cfg.write_text(SMALL_CFG)
    return cfg


# ---- an independent model of Darknet's forward pass, in C, H, W (src/*_layer.c) ------------

def dn_conv(x, w, b, stride, pad, groups):
    c, h, wd = x.shape
    n, cg, k, _ = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    oh, ow = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    out = np.zeros((n, oh, ow))
    for o in range(n):
        g = o // (n // groups)
        for y in range(oh):
            for xx in range(ow):
                r, q = y * stride, xx * stride
                patch = xp[g * cg:(g + 1) * cg, r:r + k, q:q + k]
                out[o, y, xx] = (patch * w[o]).sum()
    return out + (0 if b is None else b[:, None, None])


def dn_bn(x, scales, mean, var, biases):
    shape = (-1,) + (1,) * (x.ndim - 1)
    return ((x - mean.reshape(shape)) / (np.sqrt(var.reshape(shape)) + 1e-6)
            * scales.reshape(shape) + biases.reshape(shape))


def dn_maxpool(x, size, stride, padding):
    c, h, w = x.shape
    oh, ow = (h + padding - size) // stride + 1, (w + padding - size) // stride + 1
    off = -(padding // 2)
    out = np.full((c, oh, ow), -np.inf)
    for y in range(oh):
        for xx in range(ow):
            for i in range(size):
                for j in range(size):
                    r, q = off + y * stride + i, off + xx * stride + j
                    if 0 <= r < h and 0 <= q < w:
                        out[:, y, xx] = np.maximum(out[:, y, xx], x[:, r, q])
    return out


def dn_lrn(x, size, alpha, beta, kappa):
    sq = x * x
    out = np.empty_like(x)
    for c in range(x.shape[0]):
        lo, hi = max(0, c - size // 2), min(x.shape[0], c + size // 2 + 1)
        out[c] = x[c] * (kappa + alpha * sq[lo:hi].sum(axis=0)) ** -beta
    return out


def darknet_forward(v: dict, img_chw: np.ndarray) -> np.ndarray:
    x = dn_conv(img_chw, v["conv1.weights"], None, 1, 1, 1)
    x = dn_bn(x, v["conv1.scales"], v["conv1.mean"], v["conv1.var"], v["conv1.biases"])
    x = np.where(x > 0, x, 0.1 * x)
    x = dn_maxpool(x, 2, 2, 1)
    x = np.maximum(dn_conv(x, v["conv2.weights"], v["conv2.biases"], 1, 0, 2), 0)
    x = dn_maxpool(x, 2, 1, 1)
    x = dn_lrn(x, 3, 0.01, 0.75, 2.0)
    y = v["fc1.weights"] @ x.reshape(-1)  # Darknet flattens C, H, W
    y = dn_bn(y, v["fc1.scales"], v["fc1.mean"], v["fc1.var"], v["fc1.biases"])
    y = 1 / (1 + np.exp(-y))
    y = v["fc2.weights"] @ y + v["fc2.biases"]
    e = np.exp(y - y.max())
    return e / e.sum()


# ---- tests -------------------------------------------------------------------------------

def test_weights_load_to_exactly_the_written_values(small, tmp_path):
    v = small_values()
    g = import_model(small, write_weights(tmp_path / "small.weights", v))
    w = g.weights
    assert [l.kind for l in g.layers] == [
        "input", "conv2d", "batchnorm", "activation", "maxpool", "conv2d", "activation",
        "maxpool", "lrn", "dense", "batchnorm", "activation", "dropout", "dense", "softmax"]
    np.testing.assert_array_equal(w["conv1.weight"], v["conv1.weights"])
    np.testing.assert_array_equal(w["conv1_bn.shift"], v["conv1.biases"])
    np.testing.assert_array_equal(w["conv1_bn.scale"], v["conv1.scales"])
    np.testing.assert_array_equal(w["conv1_bn.mean"], v["conv1.mean"])
    np.testing.assert_array_equal(w["conv1_bn.var"], v["conv1.var"])
    np.testing.assert_array_equal(w["conv2.weight"], v["conv2.weights"])
    np.testing.assert_array_equal(w["conv2.bias"], v["conv2.biases"])
    np.testing.assert_array_equal(w["fc1_bn.shift"], v["fc1.biases"])
    # dense columns: Darknet's C, H, W order (6 x 5 x 4) → edgecnn's H, W, C
    np.testing.assert_array_equal(
        w["fc1.weight"], v["fc1.weights"].reshape(5, 6, 5, 4).transpose(0, 2, 3, 1)
        .reshape(5, -1))
    np.testing.assert_array_equal(w["fc2.weight"], v["fc2.weights"])
    np.testing.assert_array_equal(w["fc2.bias"], v["fc2.biases"])
    assert g.meta["source"]["weights_header"] == {"major": 0, "minor": 2, "revision": 0,
                                                  "seen": 12345}
    assert "conv1.bias" not in w and "fc1.bias" not in w  # batch norm carries the biases


def test_forward_matches_darknet_arithmetic(small, tmp_path):
    v = small_values(1)
    g = import_model(small, write_weights(tmp_path / "small.weights", v))
    img = np.random.default_rng(2).uniform(0, 1, (2, 9, 8, 3)).astype(np.float32)
    got = reference.predict(g, img)
    want = np.stack([darknet_forward(v, im.transpose(2, 0, 1).astype(np.float64))
                     for im in img])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_old_header_with_int32_seen(small, tmp_path):
    v = small_values()
    g = import_model(small, write_weights(tmp_path / "old.weights", v, major=0, minor=1,
                                          seen=77))
    assert g.meta["source"]["weights_header"]["seen"] == 77
    np.testing.assert_array_equal(g.weights["fc2.bias"], v["fc2.biases"])


def test_weights_size_mismatch_says_where(small, tmp_path):
    v = small_values()
    full = write_weights(tmp_path / "full.weights", v).read_bytes()
    cut = tmp_path / "cut.weights"
    cut.write_bytes(full[:20 + 4 * (4 * 4 + 108 + 6)])  # conv1 and conv2's biases only
    with pytest.raises(ModelFileError) as e:
        import_model(small, cut)
    msg = str(e.value)
    assert f"expected {len(full)} bytes" in msg and f"the file has {len(cut.read_bytes())}" in msg
    assert "'conv2'" in msg and "weight" in msg
    long = write_weights(tmp_path / "long.weights", v, extra=b"\0" * 8)
    with pytest.raises(ModelFileError, match=r"8 bytes after the last layer"):
        import_model(small, long)
    tiny = tmp_path / "tiny.weights"
    tiny.write_bytes(b"\0" * 5)
    with pytest.raises(ModelFileError, match="too short"):
        import_model(small, tiny)


def test_without_weights_he_initialized(small):
    g = import_darknet(small, seed=3)
    g.check_weights()
    std = g.weights["conv1.weight"].std()
    assert 0.5 * np.sqrt(2 / 27) < std < 1.5 * np.sqrt(2 / 27)
    assert any("He-initialized" in n for n in g.meta["notes"])


def test_unsupported_sections_all_listed(tmp_path):
    cfg = tmp_path / "yolo.cfg"
    cfg.write_text("[net]\nheight=32\nwidth=32\nchannels=3\n\n[convolutional]\nfilters=8\n"
                   "size=3\npad=1\nactivation=mish\n\n[route]\nlayers=-1\n\n[shortcut]\n"
                   "from=-2\n\n[upsample]\nstride=2\n\n[softmax]\ngroups=2\n")
    with pytest.raises(UnsupportedModelError) as e:
        import_model(cfg)
    msg = str(e.value)
    assert "5 operator(s)" in msg
    for part in ("activation 'mish'", "[route]", "[shortcut]", "[upsample]", "groups=2"):
        assert part in msg


def test_bad_cfg_files(tmp_path):
    bad = tmp_path / "bad.cfg"
    bad.write_text("[convolutional]\nfilters=8\n")
    with pytest.raises(ModelFileError, match=r"starts with a \[net\]"):
        import_model(bad)
    bad.write_text("[net]\nheight=8\nwidth=8\nchannels=3\n[convolutional]\nfilters=eight\n")
    with pytest.raises(ModelFileError, match="filters='eight' is not an integer"):
        import_model(bad)
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ModelFileError, match="bad.cfg"):
        import_model(bad)


def test_maxpool_padding_rule(tmp_path):
    """size 2 stride 1 keeps the size (padding = size - 1, all of it after); size 3 stride 2
    padding 0 is AlexNet's."""
    cfg = tmp_path / "p.cfg"
    cfg.write_text("[net]\nheight=5\nwidth=7\nchannels=2\n[maxpool]\nsize=2\nstride=1\n"
                   "[maxpool]\nsize=3\nstride=2\npadding=0\n[maxpool]\nsize=3\nstride=2\n")
    g = import_model(cfg)
    assert [g.shapes[l.name] for l in g.layers[1:]] == [(5, 7, 2), (2, 3, 2), (1, 2, 2)]
    x = np.random.default_rng(0).normal(0, 1, (1, 5, 7, 2)).astype(np.float32)
    got = reference.run(g, x)[0].transpose(2, 0, 1)
    want = dn_maxpool(dn_maxpool(dn_maxpool(x[0].transpose(2, 0, 1), 2, 1, 1), 3, 2, 0), 3, 2, 2)
    np.testing.assert_array_equal(got, want.astype(np.float32))


# ---- the shared Darknet .cfg files --------------------------------------------------------

CFGS = {  # name: (input H x W x C, first conv's output) — from the .cfg and Darknet's rules
    "alexnet": ((227, 227, 3), (55, 55, 96)),
    "darknet": ((256, 256, 3), (256, 256, 16)),
    "darknet19": ((256, 256, 3), (256, 256, 32)),
    "extraction": ((224, 224, 3), (112, 112, 64)),
    "tiny": ((224, 224, 3), (224, 224, 16)),
    "vgg-16": ((224, 224, 3), (224, 224, 64)),  # [crop] 224 of 256 became preprocessing
}


@pytest.mark.data
@pytest.mark.parametrize("name", sorted(CFGS))
def test_shared_cfgs_import(shared_data, name):
    path = shared_data / "darknet" / f"{name}.cfg"
    g = import_model(path)
    inp, first = CFGS[name]
    assert g.input_shape == inp
    assert g.shapes[next(l.name for l in g.layers if l.kind == "conv2d")] == first
    assert g.output_shape == (1, 1, 1000) and g.output.kind == "softmax"
    assert g.labels == "ilsvrc2012" and g.preprocessing.channel_order == "RGB"
    x = np.random.default_rng(0).uniform(0, 1, (1, *inp)).astype(np.float32)
    if summarize(g).total_macs < 1e9:  # run the cheaper ones once: shapes hold at run time
        y = reference.predict(g, x)
        assert y.shape == (1, 1000) and abs(float(y.sum()) - 1) < 1e-4


@pytest.mark.data
def test_vgg16_params(shared_data):
    # VGG-16 (configuration D) has 138,357,544 parameters (Simonyan & Zisserman 2014; the
    # count torchvision's vgg16 reports); Darknet's cfg is the same network
    g = import_model(shared_data / "darknet" / "vgg-16.cfg")
    assert summarize(g).total_params == 138_357_544
    assert g.preprocessing.pixel_range == (-1.0, 1.0)  # Darknet's crop layer maps to [-1, 1]
    assert g.preprocessing.crop_fraction == 224 / 256


@pytest.mark.data
def test_darknet_reference_against_ell_zoo(shared_data):
    """darknet.cfg against the ELL gallery's dr_I256x256x3CMCMCMCMCMCMCMC1AS.

    They agree layer for layer through the seventh convolution (4x4x1024). The tails differ:
    the ELL model has a seventh max pool, then the 1x1 convolution to 1000 classes (with batch
    norm and leaky relu) and a 2x2 average pool; darknet.cfg averages the 4x4x1024 globally and
    ends with a linear 1x1 convolution (with bias).
    """
    zoo = importlib.import_module("edgecnn.zoo")
    ours = summarize(import_model(shared_data / "darknet" / "darknet.cfg")).layers
    ell = summarize(zoo.get("dr_I256x256x3CMCMCMCMCMCMCMC1AS")).layers
    end = next(i for i, r in enumerate(ours) if r.output_shape == (4, 4, 1024)
               and r.kind == "activation") + 1
    assert end == 28  # input + 6 x (conv, bn, act, pool) + conv, bn, act
    for a, b in zip(ours[:end], ell[:end], strict=True):
        assert (a.kind, a.output_shape, a.params, a.macs) == (b.kind, b.output_shape, b.params,
                                                              b.macs)
    assert [(r.kind, r.output_shape) for r in ours[end:]] == [
        ("global_avgpool", (1, 1, 1024)), ("conv2d", (1, 1, 1000)), ("softmax", (1, 1, 1000))]
    assert [(r.kind, r.output_shape) for r in ell[end:end + 2]] == [
        ("maxpool", (2, 2, 1024)), ("conv2d", (2, 2, 1000))]
