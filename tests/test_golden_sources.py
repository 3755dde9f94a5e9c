"""The golden summary files are not their own oracle: every figure they hold that has a source
outside edgecnn is checked against that source, and the seed model's derived figures (padded
shapes, weight bytes, peak activation bytes) are computed here by hand, arithmetic written out.

Sources: ELL's gallery page of the seed model (../shared/data/ell_gallery.json: layer, output,
details per row) and the AlexNet counts of the ImageNet lecture (Krizhevsky et al. 2012 as
taught: conv1 55x55x96 with 34,944 parameters, and so on).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"
SEED = "dr_I256x256x3CMCMCMCMCMCMCMC1AS"


def golden(name: str) -> dict:
    return json.loads((GOLDEN / f"summary_{name}.json").read_text())


# ---- the seed model ----------------------------------------------------------------------------

@pytest.mark.data
def test_seed_golden_rows_are_the_gallery_page(shared_data):
    page = json.loads((shared_data / "ell_gallery.json").read_text())["models"][SEED]
    rows = golden(SEED)["rows"]
    assert rows[0]["output"] == "256x256x{B,G,R}"
    assert [{k: r[k] for k in ("layer", "output", "details")} for r in rows[1:]] == \
        page["architecture"]


# (cin, cout, k) of the seed model's convolutions: 3x3 convs doubling 16 .. 1024, then a 1x1
# classifier conv of 1000; each followed by batch norm (scale, shift, mean, var) and leaky ReLU
SEED_CONVS = [(3, 16, 3), (16, 32, 3), (32, 64, 3), (64, 128, 3), (128, 256, 3), (256, 512, 3),
              (512, 1024, 3), (1024, 1000, 1)]


def test_seed_params_and_macs_by_hand():
    g = golden(SEED)
    convs = [r for r in g["rows"] if r["layer"] == "Convolution"]
    sizes = [256, 128, 64, 32, 16, 8, 4, 2]  # output H = W of each conv (pad 1, then pool /2)
    for r, (cin, cout, k), hw in zip(convs, SEED_CONVS, sizes, strict=True):
        # weights: the kernel k*k*cin*cout plus the batch-norm scale (cout); biases: bn shift
        assert r["weights"] == k * k * cin * cout + cout
        assert r["biases"] == cout
        assert r["macs"] == hw * hw * cout * k * k * cin
    assert g["total_macs"] == sum(hw * hw * co * k * k * ci
                                  for (ci, co, k), hw in zip(SEED_CONVS, sizes, strict=True))
    assert g["total_params"] == sum(k * k * ci * co + 2 * co for ci, co, k in SEED_CONVS)


def test_seed_padded_shapes_by_hand():
    """ELL's padded buffers: a tensor read by a 3x3 convolution with padding 1 carries a
    1-pixel zero border: the input (258 = 256 + 2) and pools 1-6 (their outputs feed 3x3
    convs); the conv outputs feed 2x2 pools without padding and pool7 feeds the 1x1 conv, so
    they carry none."""
    rows = golden(SEED)["rows"]
    assert rows[0]["padded_output_shape"] == [256 + 2, 256 + 2, 3]
    pools = [r for r in rows if r["layer"] == "Pooling"]
    for i, (r, c) in enumerate(zip(pools[:6], (16, 32, 64, 128, 256, 512), strict=True)):
        hw = 256 // 2 ** (i + 1)
        assert r["output_shape"] == [hw, hw, c]
        assert r["padded_output_shape"] == [hw + 2, hw + 2, c]
    assert pools[6]["padded_output_shape"] == pools[6]["output_shape"] == [2, 2, 1024]
    for r in rows:
        if r["layer"] == "Convolution":
            assert r["padded_output_shape"] == r["output_shape"]


def test_seed_weight_bytes_by_hand():
    """Every stored float32 tensor: kernels, and batch norm's scale, shift, running mean and
    running variance (4 x cout); 4 bytes each.

    kernels: 9 * (3*16 + 16*32 + 32*64 + 64*128 + 128*256 + 256*512 + 512*1024) + 1024*1000
           = 9 * 698,928 + 1,024,000 = 7,314,352 floats
    batch norm: 4 * (16 + 32 + 64 + 128 + 256 + 512 + 1024 + 1000) = 4 * 3,032 = 12,128 floats
    bytes: 4 * (7,314,352 + 12,128) = 29,305,920"""
    kernels = sum(k * k * ci * co for ci, co, k in SEED_CONVS)
    bn = 4 * sum(co for _, co, _ in SEED_CONVS)
    assert kernels == 7_314_352 and bn == 12_128
    assert golden(SEED)["weight_bytes"] == 4 * (kernels + bn) == 29_305_920


def test_seed_peak_activation_bytes_by_hand():
    """Activations are float32 and the elementwise layers (batch norm, leaky ReLU) run in place,
    so the largest pair of live tensors is conv1's output (256x256x16) while pool1 writes its
    128x128x16 result: 4 * (1,048,576 + 262,144) = 5,242,880 bytes. (Logical shapes: the
    borders are a compiler layout, counted by the compiler's arena, not here.)"""
    conv1 = 256 * 256 * 16
    pool1 = 128 * 128 * 16
    assert golden(SEED)["peak_activation_bytes"] == 4 * (conv1 + pool1) == 5_242_880


# ---- AlexNet: the lecture's counts ---------------------------------------------------------------

# (output shape, weights, biases) per layer with parameters, from the lecture:
# the single-tower network (no groups): conv1 11x11x3x96, conv2 5x5x96x256, conv3 3x3x256x384,
# conv4 3x3x384x384, conv5 3x3x384x256, FC6 9216x4096, FC7 4096x4096, FC8 4096x1000
ALEXNET = [("55x55x96", 11 * 11 * 3 * 96, 96), ("27x27x256", 5 * 5 * 96 * 256, 256),
           ("13x13x384", 3 * 3 * 256 * 384, 384), ("13x13x384", 3 * 3 * 384 * 384, 384),
           ("13x13x256", 3 * 3 * 384 * 256, 256), ("1x1x4096", 6 * 6 * 256 * 4096, 4096),
           ("1x1x4096", 4096 * 4096, 4096), ("1x1x1000", 4096 * 1000, 1000)]


def test_alexnet_golden_is_the_lecture():
    g = golden("alexnet")
    rows = [r for r in g["rows"] if r["params"]]
    got = [(r["output"], r["weights"], r["biases"]) for r in rows]
    assert got == ALEXNET
    # the lecture's per-layer figures
    assert [w + b for _, w, b in got[:5]] == [34_944, 614_656, 885_120, 1_327_488, 884_992]
    # the lecture's 62,369,152 counts every weight and the conv biases, not the FC biases
    conv_biases = sum(b for _, _, b in ALEXNET[:5])
    assert sum(w for _, w, _ in ALEXNET) + conv_biases == 62_369_152
    assert g["total_params"] == 62_369_152 + 4096 + 4096 + 1000
    pools = [r["output"] for r in g["rows"] if r["layer"] == "Pooling"]
    assert pools == ["27x27x96", "13x13x256", "6x6x256"]
