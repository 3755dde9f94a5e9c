"""Property tests of the shape rules and counts, against PyTorch and closed forms.

- conv2d and pooling output shapes equal what torch computes for the same attributes; where
  torch refuses (a kernel larger than the padded input, groups that do not divide) the kind
  raises GraphError;
- params of conv2d and dense equal the parameter count of the equivalent torch layer, MACs the
  closed form (output pixels x filters x kernel area x input channels per group);
- accounting.padded_shapes adds twice the largest border any reader reads.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import need_module
from edgecnn.core.accounting import padded_shapes, summarize
from edgecnn.core.graph import GraphBuilder
from edgecnn.errors import GraphError
from edgecnn.layers import get_kind

pytestmark = pytest.mark.usefixtures("torch_one_thread")

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _torch():
    return need_module("torch", "torch", "the torch extra is not installed")


def _shape_or_error(kind: str, attrs: dict, shape):
    """The kind's output shape, or None when it raises GraphError (whose message must say
    what does not fit)."""
    k = get_kind(kind)
    try:
        a = k.normalize_attrs(attrs, "test")
        return tuple(k.output_shape(a, [shape]))
    except GraphError as e:
        msg = str(e)
        assert ("does not fit input" in msg or "must divide" in msg
                or "smaller than the kernel" in msg), msg
        return None


def _torch_shape(fn):
    """(H, W, C) of fn()'s NCHW result, or None when torch refuses."""
    try:
        y = fn()
    except RuntimeError:
        return None
    n, c, h, w = y.shape
    return None if min(h, w, c) < 1 else (h, w, c)


pads = st.tuples(*[st.integers(0, 4)] * 4)


@pytest.mark.torch
@SETTINGS
@given(h=st.integers(1, 24), w=st.integers(1, 24), c=st.integers(1, 8),
       filters=st.integers(1, 8), groups=st.integers(1, 4),
       kernel=st.tuples(st.integers(1, 7), st.integers(1, 7)),
       stride=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)), padding=pads)
def test_conv2d_shape_matches_torch(h, w, c, filters, groups, kernel, stride, dilation, padding):
    torch = _torch()
    F = torch.nn.functional
    attrs = {"filters": filters, "kernel": kernel, "stride": stride, "dilation": dilation,
             "padding": padding, "groups": groups}
    t, l, b, r = padding

    def run():
        if c % groups:  # torch's weight shape needs whole groups; it refuses such a conv too
            raise RuntimeError("groups must divide the input channels")
        x = F.pad(torch.zeros(1, c, h, w), (l, r, t, b))
        return F.conv2d(x, torch.zeros(filters, c // groups, *kernel), stride=stride,
                        dilation=dilation, groups=groups)

    assert _shape_or_error("conv2d", attrs, (h, w, c)) == _torch_shape(run)


@pytest.mark.torch
@SETTINGS
@given(kind=st.sampled_from(["maxpool", "avgpool"]), h=st.integers(1, 20), w=st.integers(1, 20),
       k=st.tuples(st.integers(1, 6), st.integers(1, 6)),
       stride=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       pad=st.tuples(st.integers(0, 3), st.integers(0, 3)), ceil=st.booleans())
def test_pool_shape_matches_torch(kind, h, w, k, stride, pad, ceil):
    """Symmetric padding of at most half the kernel: torch's own pooling, ceil mode both ways."""
    torch = _torch()
    F = torch.nn.functional
    pad = (min(pad[0], k[0] // 2), min(pad[1], k[1] // 2))  # torch's limit
    attrs = {"kernel": k, "stride": stride, "padding": pad, "ceil_mode": ceil}
    pool = F.max_pool2d if kind == "maxpool" else F.avg_pool2d

    def run():
        return pool(torch.zeros(1, 2, h, w), k, stride, pad, ceil_mode=ceil)

    assert _shape_or_error(kind, attrs, (h, w, 2)) == _torch_shape(run)


@pytest.mark.torch
@SETTINGS
@given(kind=st.sampled_from(["maxpool", "avgpool"]), h=st.integers(1, 20), w=st.integers(1, 20),
       k=st.tuples(st.integers(1, 6), st.integers(1, 6)),
       stride=st.tuples(st.integers(1, 4), st.integers(1, 4)), padding=pads)
def test_pool_shape_with_any_padding_matches_explicit_padding(kind, h, w, k, stride, padding):
    """Floor mode with asymmetric or wide padding = torch pooling of an explicitly padded input;
    padding as wide as the kernel is refused (a window could hold padding only)."""
    torch = _torch()
    F = torch.nn.functional
    t, l, b, r = padding
    attrs = {"kernel": k, "stride": stride, "padding": padding}
    got = _shape_or_error(kind, attrs, (h, w, 2))
    if max(t, b) >= k[0] or max(l, r) >= k[1]:
        assert got is None
        return

    def run():
        return F.max_pool2d(F.pad(torch.zeros(1, 2, h, w), (l, r, t, b)), k, stride)

    assert got == _torch_shape(run)


@pytest.mark.torch
@SETTINGS
@given(h=st.integers(1, 16), w=st.integers(1, 16), cg=st.integers(1, 4), fg=st.integers(1, 4),
       groups=st.integers(1, 4), kernel=st.tuples(st.integers(1, 5), st.integers(1, 5)),
       stride=st.integers(1, 3), padding=st.integers(0, 2), bias=st.booleans())
def test_conv2d_params_and_macs(h, w, cg, fg, groups, kernel, stride, padding, bias):
    torch = _torch()
    c, filters = cg * groups, fg * groups
    b = GraphBuilder("conv", (h, w, c))
    try:
        b.add("conv2d", filters=filters, kernel=kernel, stride=stride, padding=padding,
              groups=groups, bias=bias)
        g = b.build()
    except GraphError:
        return  # the kernel does not fit; shapes are tested above
    row = summarize(g).layers[1]
    ref = torch.nn.Conv2d(c, filters, kernel, stride, padding, groups=groups, bias=bias)
    assert row.params == sum(p.numel() for p in ref.parameters())
    oh, ow, _ = g.output_shape
    assert row.macs == oh * ow * filters * kernel[0] * kernel[1] * cg
    assert row.weight_bytes == 4 * row.params


@pytest.mark.torch
@SETTINGS
@given(h=st.integers(1, 8), w=st.integers(1, 8), c=st.integers(1, 16), units=st.integers(1, 50),
       bias=st.booleans())
def test_dense_params_and_macs(h, w, c, units, bias):
    torch = _torch()
    b = GraphBuilder("dense", (h, w, c))
    b.add("dense", units=units, bias=bias)
    row = summarize(b.build()).layers[1]
    linear = torch.nn.Linear(h * w * c, units, bias)
    assert row.params == sum(p.numel() for p in linear.parameters())
    assert row.macs == h * w * c * units


reader = st.one_of(
    st.builds(lambda k, p: ("conv2d", {"filters": 2, "kernel": k, "padding": p}),
              st.integers(1, 5), pads),
    st.builds(lambda k, p: ("maxpool", {"kernel": k, "stride": 1, "padding": p}),
              st.integers(1, 5), pads),
    st.just(("activation", {"function": "relu"})),
    st.just(("global_avgpool", {})),
)


@SETTINGS
@given(readers=st.lists(reader, min_size=1, max_size=4), h=st.integers(8, 12),
       w=st.integers(8, 12))
def test_padded_shape_adds_the_widest_border_of_the_readers(readers, h, w):
    b = GraphBuilder("pads", (h, w, 3))
    src = b.add("activation", "src", function="relu")
    borders = []
    for i, (kind, attrs) in enumerate(readers):
        if kind == "maxpool":  # the pool refuses padding as wide as its kernel
            k = attrs["kernel"]
            attrs = dict(attrs, padding=tuple(min(p, k - 1) for p in attrs["padding"]))
        b.add(kind, f"r{i}", inputs=src, **attrs)
        t, l, bot, r = attrs.get("padding", (0, 0, 0, 0))
        borders.append((max(t, bot), max(l, r)))
    try:
        g = b.build()
    except GraphError:
        return  # a reader's window does not fit; not this test's business
    padded = padded_shapes(g)
    bh = max(x[0] for x in borders)
    bw = max(x[1] for x in borders)
    assert padded["src"] == (h + 2 * bh, w + 2 * bw, 3)
    # the input is read by one relu (no border); the readers themselves have no readers
    assert padded["input"] == (h, w, 3)
    for i in range(len(readers)):
        assert padded[f"r{i}"] == g.shapes[f"r{i}"]

