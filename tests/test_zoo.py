"""The zoo: registry, the ELL name grammar, the 18 gallery models against their published tables,
and AlexNet's figures."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgecnn import zoo
from edgecnn.core import reference
from edgecnn.core.accounting import summarize
from edgecnn.errors import EdgecnnError
from edgecnn.layers import get_kind
from edgecnn.publish.summary import rows
from edgecnn.zoo import ell
from edgecnn.zoo import ell_gallery as gallery
from edgecnn.zoo.registry import register

SEED = "dr_I256x256x3CMCMCMCMCMCMCMC1AS"
GALLERY = [e.name for e in gallery.ENTRIES]


@pytest.fixture(scope="module")
def gallery_pages(shared_data):
    return json.loads((shared_data / "ell_gallery.json").read_text())["models"]


# ---- registry -----------------------------------------------------------------------------------

def test_registry_holds_the_gallery_and_alexnet():
    assert set(GALLERY) | {"alexnet"} <= set(zoo.names())
    assert len(GALLERY) == 18
    assert zoo.names() == sorted(zoo.names())


def test_registering_a_name_twice_raises():
    with pytest.raises(ValueError, match="already registered"):
        register("alexnet")(lambda: None)


def test_unknown_name_suggests_close_matches_and_the_list_command():
    with pytest.raises(EdgecnnError, match=r"did you mean alexnet.*edgecnn list"):
        zoo.get("alexnett")
    with pytest.raises(EdgecnnError, match="edgecnn list") as e:
        zoo.get("resnet50")
    assert "did you mean" not in str(e.value)


def test_get_returns_a_fresh_graph_without_weights():
    g = zoo.get(SEED)
    assert g.weights == {}
    g.init_weights(0)
    g.check_weights()
    assert zoo.get(SEED).weights == {}  # the registry hands out new graphs


def test_models_carry_their_preprocessing_and_labels():
    p = zoo.get(SEED).preprocessing
    assert (p.channel_order, p.pixel_range) == ("BGR", (0, 255))
    assert (p.mean, p.std) == ((0, 0, 0), (1, 1, 1))
    assert (p.resize, p.crop_fraction) == ("center_crop", 1.0)
    a = zoo.get("alexnet").preprocessing
    assert (a.channel_order, a.pixel_range, a.crop_fraction) == ("RGB", (0, 1), 0.875)
    assert a.mean == (0.485, 0.456, 0.406) and a.std == (0.229, 0.224, 0.225)
    for name in zoo.names():
        g = zoo.get(name)
        assert g.labels == "ilsvrc2012" and g.num_classes == 1000
        assert g.meta["description"] and isinstance(g.meta["departures"], list)


# ---- the ELL name grammar -----------------------------------------------------------------------

@st.composite
def ell_strings(draw):
    """Valid ELL strings: the head, then letters chosen so the shapes stay valid."""
    family = draw(st.sampled_from(sorted(ell.FAMILIES)))
    h, w = draw(st.integers(1, 70)), draw(st.integers(1, 70))
    out = [f"{family}_I{h}x{w}x3"]
    for _ in range(draw(st.integers(1, 8))):
        letters = ["C", "C1", "B", "B1", "A", "F"] + (["M"] if min(h, w) >= 2 else [])
        letter = draw(st.sampled_from(letters))
        if letter == "M":
            h, w = -(-h // 2), -(-w // 2)
        elif letter in ("A", "F"):
            h = w = 1
        out.append(f"F{draw(st.integers(1, 5000))}" if letter == "F" else letter)
    if draw(st.booleans()):
        out.append("S")
    return "".join(out)


@settings(max_examples=200, deadline=None)
@given(ell_strings())
def test_format_inverts_parse(s):
    assert ell.format(ell.parse(s)) == s


@settings(max_examples=25, deadline=None)
@given(ell_strings())
def test_every_valid_string_builds_a_graph(s):
    g = zoo.get(s)
    assert g.name == s and g.preprocessing.channel_order == "BGR"


@pytest.mark.parametrize("text, pos, words", [
    ("dr_I64x64x3CMQ", 13, "unexpected 'Q'"),
    ("dr_I64x64x3CMSC", 13, "S (softmax) may only be the last"),
    ("x_I64x64x3C", 0, "unknown family 'x'"),
    ("dr_I64x64x1C", 10, "3-channel"),
    ("dr_I064x64x3C", 0, "leading zeros"),
    ("dr_I64x64x3", 11, "no layers"),
    ("dr_I64x64x3CF0S", 12, "unexpected 'F'"),
    ("dr_I64x64x3CMcS", 13, "unexpected 'c'"),
])
def test_invalid_strings_name_the_position(text, pos, words):
    with pytest.raises(EdgecnnError, match=re.escape(f"position {pos}:")) as e:
        zoo.get(text)
    assert words in str(e.value) and text in str(e.value)


def _convs(g):
    return [(l.kind, l.attrs["kernel"][0], l.attrs["filters"]) for l in g.layers
            if l.kind in ("conv2d", "binary_conv2d")]


def test_channel_rules_and_the_classifier_before_A():
    d = zoo.get("d_I64x64x3CMCMBMC1AS")
    assert _convs(d) == [("conv2d", 3, 16), ("conv2d", 3, 32), ("binary_conv2d", 3, 64),
                         ("conv2d", 1, 1000)]
    v = zoo.get("v_I64x64x3CMCMCMCMCMCC1A")
    assert [f for _, _, f in _convs(v)] == [64, 128, 256, 512, 512, 512, 1000]
    acts = [l.attrs["function"] for l in zoo.get("dr_I8x8x3CBC1").layers if l.kind == "activation"]
    assert acts == ["leaky_relu", "prelu", "leaky_relu"]
    assert all(l.attrs["slope"] == 0.1 for l in zoo.get("dr_I8x8x3C").layers
               if l.kind == "activation")


def test_dense_layers_flatten_and_only_hidden_ones_get_an_activation():
    g = zoo.get("v_I32x32x3CMF64F10S")
    kinds = [l.kind for l in g.layers]
    assert kinds[-5:] == ["maxpool", "dense", "activation", "dense", "softmax"]
    assert g.output_shape == (1, 1, 10)


def test_pools_round_up_like_ell():
    # M: 2x2/2 "same" style, ceil(in / 2); A: the remaining H x W
    g = zoo.get("dr_I5x7x3MMA")
    shapes = [g.shapes[l.name] for l in g.layers]
    assert shapes == [(5, 7, 3), (3, 4, 3), (2, 2, 3), (1, 1, 3)]


def test_reference_run_agrees_with_the_declared_shapes():
    g = zoo.get("dr_I12x12x3CMBMC1AS").init_weights(1)
    x = np.random.default_rng(0).uniform(0, 255, (2, 12, 12, 3)).astype(np.float32)
    outs = reference.run(g, x, outputs=[l.name for l in g.layers])
    for l in g.layers:
        assert outs[l.name].shape[1:] == g.shapes[l.name], l.name
    np.testing.assert_allclose(outs["softmax"].sum(axis=-1), 1.0, rtol=1e-5)


# ---- the 18 gallery models ----------------------------------------------------------------------

@pytest.mark.data
def test_the_gallery_json_lists_exactly_the_registered_entries(gallery_pages):
    assert sorted(gallery_pages) == sorted(GALLERY)


def _page_prints_padded(row, page_pools: str) -> bool:
    if page_pools == "padded":
        return True
    return page_pools == "padded-2x2" and "size=2x2, stride=2" in row.details


@pytest.mark.data
@pytest.mark.parametrize("name", GALLERY)
def test_gallery_model_matches_its_published_table(name, gallery_pages):
    g = zoo.get(name)
    page_pools = g.meta["gallery"]["page_pools"]
    page = gallery_pages[name]["architecture"]
    ours = [r for r in rows(g)[1:] if r.title in {p["layer"] for p in page}]
    assert [r.title for r in ours] == [p["layer"] for p in page]
    for r, p in zip(ours, page, strict=True):
        if r.title == "Convolution":
            assert r.output == p["output"], (r.layers, p)
            want = p["details"].replace("type=int64", "type=binary")
            assert r.details == want, (r.layers, p)
        elif r.title == "Pooling":
            padded = _page_prints_padded(r, page_pools)
            shape = r.padded_shape if padded else r.shape
            assert "x".join(map(str, shape)) == p["output"], (r.layers, p, page_pools)
            assert r.details == p["details"]
        else:
            assert (r.output, r.details) == (p["output"], p["details"])


@pytest.mark.parametrize("entry", gallery.ENTRIES, ids=GALLERY)
def test_departures_are_recorded_exactly_where_the_table_differs_from_the_name(entry):
    by_name = ell.parse(entry.name)
    detailed = gallery.arch_of(entry)
    g = zoo.get(entry.name)
    same = by_name.ops == detailed.ops and entry.page_pools == "padded"
    assert (g.meta["departures"] == []) == same
    assert all(isinstance(d, str) and d for d in g.meta["departures"])


@pytest.mark.parametrize("entry", gallery.ENTRIES, ids=GALLERY)
def test_each_departure_text_matches_the_detailed_spec(entry):
    arch, named = gallery.arch_of(entry), ell.parse(entry.name)
    deps = set(entry.departures)
    convs = [op for op in arch.ops if op.code in ("C", "C1", "B", "B1")]
    named_convs = [op for op in named.ops if op.code in ("C", "C1", "B", "B1")]
    float_acts = {op.act for op in convs[:-1] if op.code[0] == "C"}
    assert (gallery.LEAKY in deps) == (arch.family == "d" and "leaky_relu" in float_acts)
    assert (gallery.SECOND_64 in deps) == (convs[1].n != named_convs[1].n)
    assert (gallery.POOL_3X3 in deps) == any(op.code == "M3" for op in arch.ops)
    assert (gallery.NO_ACT in deps) == (convs[-1].act is None and named_convs[-1].act is not None)
    assert (gallery.UNPADDED in deps) == (entry.page_pools == "unpadded")
    assert (gallery.UNPADDED_3X3 in deps) == (entry.page_pools == "padded-2x2")
    assert (gallery.B1_IS_FLOAT in deps) == (named_convs[-1].code == "B1")
    extra = {gallery.EXTRA_C1_1024, gallery.EXTRA_C3_1024, gallery.EXTRA_B, gallery.EXTRA_B_POOL}
    assert len(deps & extra) == len(convs) - len(named_convs)
    dense = [op for op in arch.ops if op.code == "F"]
    named_dense = [op for op in named.ops if op.code == "F"]
    assert any("dense classifier" in d for d in deps) == (len(dense) > len(named_dense))


def test_the_seed_model_is_its_name_exactly():
    assert zoo.get(SEED).meta["departures"] == []
    assert ell.format_detailed(ell.parse(SEED)) == gallery.ENTRIES[GALLERY.index(SEED)].spec


@pytest.mark.parametrize("entry", gallery.ENTRIES, ids=GALLERY)
def test_detailed_spec_round_trips(entry):
    arch = gallery.arch_of(entry)
    again = ell.parse_detailed(arch.family, arch.shape, ell.format_detailed(arch))
    assert again.ops == arch.ops


# ---- AlexNet ------------------------------------------------------------------------------------

ALEXNET_PARAMS = {"conv1": 34_944, "conv2": 614_656, "conv3": 885_120, "conv4": 1_327_488,
                  "conv5": 884_992, "fc6": 37_748_736 + 4_096, "fc7": 16_777_216 + 4_096,
                  "fc8": 4_096_000 + 1_000}
ALEXNET_SHAPES = {"conv1": (55, 55, 96), "pool1": (27, 27, 96), "conv2": (27, 27, 256),
                  "pool2": (13, 13, 256), "conv3": (13, 13, 384), "conv4": (13, 13, 384),
                  "conv5": (13, 13, 256), "pool5": (6, 6, 256), "fc6": (1, 1, 4096),
                  "fc7": (1, 1, 4096), "fc8": (1, 1, 1000), "prob": (1, 1, 1000)}


def test_alexnet_shapes_and_params():
    g = zoo.get("alexnet")
    s = summarize(g)
    stats = {l.name: l for l in s.layers}
    assert g.input_shape == (227, 227, 3)
    for name, shape in ALEXNET_SHAPES.items():
        assert g.shapes[name] == shape, name
    for name, params in ALEXNET_PARAMS.items():
        assert stats[name].params == params, name
    assert (stats["fc6"].weights, stats["fc6"].biases) == (37_748_736, 4_096)
    assert (stats["fc7"].weights, stats["fc7"].biases) == (16_777_216, 4_096)
    assert (stats["fc8"].weights, stats["fc8"].biases) == (4_096_000, 1_000)
    assert sum(stats[f"conv{i}"].params for i in range(1, 6)) == 3_747_200
    assert s.total_params == 62_378_344
    assert (s.total_weights, s.total_biases) == (62_367_776, 10_568)
    # the lecture's 62,369,152 is every weight plus the convolutions' biases (no dense biases)
    dense_biases = sum(stats[n].biases for n in ("fc6", "fc7", "fc8"))
    assert s.total_params - dense_biases == 62_369_152
    assert [l.attrs["rate"] for l in g.layers if l.kind == "dropout"] == [0.5, 0.5]


def test_alexnet_lrn_equals_the_papers_formula():
    # paper: b = a / (k + alpha * sum over n neighbours a^2) ** beta, k=2, n=5, alpha=1e-4
    lrn = next(l for l in zoo.get("alexnet").layers if l.kind == "lrn")
    x = np.random.default_rng(0).normal(0, 30, (1, 2, 3, 16)).astype(np.float32)
    got = get_kind("lrn").forward(lrn.attrs, [x], {})
    x64 = x.astype(np.float64)
    want = np.empty_like(x64)
    for c in range(16):
        window = x64[..., max(0, c - 2):min(16, c + 3)]
        want[..., c] = x64[..., c] / (2 + 1e-4 * (window ** 2).sum(-1)) ** 0.75
    np.testing.assert_allclose(got, want, rtol=1e-5)
