"""Layer conformance: numpy reference ⇄ PyTorch, case by case (tests/conformance.py).

Each case is checked twice against the reference:
1. an independent torch computation written here with torch.nn.functional (float64, so the
   difference measures the reference's own rounding);
2. the graph through ``edgecnn.train.torch_module.to_module`` (float32, as the backend runs).
Then whole graphs (a chain, a DAG, the zoo) go through to_module, and training details
(batch-norm statistics, the straight-through estimator, weight write-back) are checked.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import conformance as C
from conftest import need_module
from edgecnn.core import reference
from edgecnn.core.graph import Graph, Layer
from edgecnn.errors import GraphError
from edgecnn.layers import all_kinds

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def test_every_layer_kind_has_a_conformance_case():
    """Every float kind; the integer kinds (no torch lowering) are covered bit for bit by the
    integer graphs of test_int8_compile (test_the_graphs_cover_every_integer_kind)."""
    covered = {c.kind for c in C.CASES}
    floats = {k for k, kind in all_kinds().items() if not kind.integer}
    missing = sorted(floats - {"input"} - covered)
    assert not missing, f"layer kinds without a conformance case: {missing}"


# ---- the independent torch computation of one layer --------------------------------------------

def _torch():
    return need_module("torch", "torch", "the torch extra is not installed")


def _pads_native(pad, kernel) -> bool:
    """torch pooling pads symmetrically, at most half the kernel."""
    t, l, b, r = pad
    return t == b and l == r and 2 * t <= kernel[0] and 2 * l <= kernel[1]


def torch_op(kind: str, a: dict, xs: list, w: dict):
    """One layer with torch.nn.functional: NCHW tensors in, NCHW out."""
    torch = _torch()
    F = torch.nn.functional
    x = xs[0]
    t, l, b, r = a.get("padding", (0, 0, 0, 0))

    def sign(v):
        return torch.where(v > 0, 1.0, -1.0).to(v.dtype)

    def chan(v):  # a per-channel vector broadcast over NCHW
        return v.view(1, -1, 1, 1)

    if kind == "conv2d":
        return F.conv2d(F.pad(x, (l, r, t, b)), w["weight"], w.get("bias"), a["stride"],
                        dilation=a["dilation"], groups=a["groups"])
    if kind == "binary_conv2d":
        y = F.conv2d(F.pad(sign(x), (l, r, t, b)), sign(w["weight"]), stride=a["stride"])
        return y * chan(w["scale"])
    if kind == "batchnorm":
        return F.batch_norm(x, w["mean"], w["var"], w["scale"], w["shift"], training=False,
                            eps=a["eps"])
    if kind == "scale_bias":
        y = x * chan(w["scale"]) if a["scale"] else x
        return y + chan(w["bias"]) if a["bias"] else y
    if kind == "activation":
        f = a["function"]
        fns = {"relu": F.relu, "relu6": F.relu6, "sigmoid": torch.sigmoid, "tanh": torch.tanh,
               "leaky_relu": lambda v: F.leaky_relu(v, a["slope"]),
               "prelu": lambda v: F.prelu(v, w["slope"])}
        return fns[f](x)
    if kind == "maxpool":
        if _pads_native(a["padding"], a["kernel"]):
            return F.max_pool2d(x, a["kernel"], a["stride"], (t, l), ceil_mode=a["ceil_mode"])
        assert not a["ceil_mode"], "no independent torch form of ceil mode with these pads"
        return F.max_pool2d(F.pad(x, (l, r, t, b), value=float("-inf")), a["kernel"],
                            a["stride"])
    if kind == "avgpool":
        if _pads_native(a["padding"], a["kernel"]):
            return F.avg_pool2d(x, a["kernel"], a["stride"], (t, l), ceil_mode=a["ceil_mode"],
                                count_include_pad=a["count_include_pad"])
        assert not a["ceil_mode"], "no independent torch form of ceil mode with these pads"
        mean_with_pad = F.avg_pool2d(F.pad(x, (l, r, t, b)), a["kernel"], a["stride"])
        if a["count_include_pad"]:
            return mean_with_pad
        real = F.pad(torch.ones_like(x[:1, :1]), (l, r, t, b))  # 1 on real cells, 0 on pads
        return mean_with_pad / F.avg_pool2d(real, a["kernel"], a["stride"])
    if kind == "global_avgpool":
        return F.adaptive_avg_pool2d(x, 1)
    if kind == "lrn":
        args = (a["size"], a["alpha"], a["beta"], a["k"])
        if a["size"] % 2:
            return F.local_response_norm(x, *args)
        # even size: torch's window has size//2 channels before, ONNX's (ours) size//2 after;
        # reversing the channel order swaps the two.
        return F.local_response_norm(x.flip(1), *args).flip(1)
    if kind == "fake_quant":
        # torch rounds ties to even, the reference away from zero: random inputs hit no ties
        y = torch.fake_quantize_per_tensor_affine(x.float(), a["scale"], a["zero_point"],
                                                  a["qmin"], a["qmax"])
        return y.to(x.dtype)
    if kind == "dropout":
        return F.dropout(x, a["rate"], training=False)
    if kind in ("dense", "flatten"):
        flat = x.permute(0, 2, 3, 1).flatten(1)  # H, W, C order
        y = flat if kind == "flatten" else F.linear(flat, w["weight"], w.get("bias"))
        return y[:, :, None, None]
    if kind == "softmax":
        return F.softmax(x, dim=1)
    if kind == "add":
        return torch.stack(xs).sum(0)
    if kind == "concat":
        return torch.cat(xs, dim=1)
    raise AssertionError(f"no torch computation for kind {kind!r}: add one to torch_op")


def nchw(x: np.ndarray):
    return _torch().from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def nhwc(t) -> np.ndarray:
    return t.detach().cpu().numpy().transpose(0, 2, 3, 1)


# ---- per case --------------------------------------------------------------------------------

@pytest.mark.torch
@pytest.mark.parametrize("case", C.CASES, ids=C.IDS)
def test_reference_matches_torch_functional(case):
    torch = _torch()
    g, x = C.build(case)
    expected_ref = reference.run(g, x)
    xs = [nchw(v.astype(np.float64)) for v in C.op_inputs(g, x, case)]
    w = {k: torch.from_numpy(v.astype(np.float64)) for k, v in C.op_weights(g).items()}
    op = g.layer(C.OP)
    got = nhwc(torch_op(case.kind, op.attrs, xs, w))
    assert expected_ref.shape == (case.batch, *g.output_shape)
    C.assert_close(expected_ref, got, case, "reference vs torch.nn.functional")


@pytest.mark.torch
@pytest.mark.parametrize("case", C.CASES, ids=C.IDS)
def test_torch_module_matches_reference(case):
    torch = _torch()
    from edgecnn.train.torch_module import to_module

    g, x = C.build(case)
    expected = reference.run(g, x)
    m = to_module(g).eval()
    with torch.no_grad():
        got = nhwc(m(nchw(x)))
    C.assert_close(got, expected, case, "to_module vs reference")


# ---- whole graphs ------------------------------------------------------------------------------

def _check_graph_against_reference(g, x, atol=1e-4):
    """The torch module against the reference, on logits (C.logits)."""
    torch = _torch()
    from edgecnn.train.torch_module import to_module

    g = C.logits(g)
    expected = reference.run(g, x)
    m = to_module(g).eval()
    with torch.no_grad():
        got = nhwc(m(nchw(x)))
    assert got.shape == expected.shape
    scale = max(1.0, float(np.abs(expected).max()))
    err = float(np.abs(got - expected).max())
    assert err <= atol * scale, f"{g.name}: max abs error {err:.3g} (scale {scale:.3g})"
    return err


@pytest.mark.torch
@pytest.mark.parametrize("build", C.GRAPHS, ids=[f.__name__ for f in C.GRAPHS])
def test_whole_graph_matches_reference(build):
    g = build()
    rng = np.random.default_rng(1)
    g.weights = C.random_weights(g, rng)
    x = rng.standard_normal((3, *g.input_shape)).astype(np.float32)
    _check_graph_against_reference(g, x)


def shrink(g: Graph, size: int) -> Graph:
    """The same architecture on a size x size input (weights unset): an average pool that
    covered its whole input keeps covering it; every other attribute stays."""
    whole = {l.name for l in g.layers if l.kind == "avgpool"
             and tuple(l.attrs["kernel"]) == g.input_shapes(l)[0][:2]}
    layers = [Layer("input", "input", (), {"shape": (size, size, g.input_shape[2])})]
    for l in g.layers[1:]:
        layers.append(Layer(l.name, l.kind, l.inputs, dict(l.attrs)))
        if l.name in whole:  # its kernel is the new input's H x W (the shapes so far decide)
            h, w, _ = Graph(g.name, layers[:-1]).shapes[l.inputs[0]]
            layers[-1].attrs.update(kernel=(h, w), stride=1)
    return Graph(g.name, layers)


def _small_zoo_graphs() -> list:
    """Each zoo architecture at the smallest of a few input sizes it accepts; repeats (the
    same architecture registered at several sizes) once."""
    from edgecnn import zoo

    names = list(zoo.names())
    params, seen = [], set()
    for name in names:
        g = zoo.get(name)
        for size in (32, 64, 96, 128, 160, 192, 227, 256):
            try:
                small = shrink(g, min(size, g.input_shape[0]))
                break
            except GraphError:
                continue
        else:
            small = g
        key = json.dumps(small.to_json()["layers"])
        if key not in seen:
            seen.add(key)
            params.append(pytest.param(small, id=name))
    return params


@pytest.mark.torch
@pytest.mark.parametrize("g", _small_zoo_graphs())
def test_zoo_architecture_matches_reference(g):
    rng = np.random.default_rng(2)
    g.weights = C.random_weights(g, rng)
    x = rng.standard_normal((1, *g.input_shape)).astype(np.float32)
    _check_graph_against_reference(g, x, atol=1e-3)


# ---- training details --------------------------------------------------------------------------

@pytest.mark.torch
def test_state_keys_map_one_to_one_onto_graph_tensors():
    from edgecnn.train.torch_module import to_module

    g = C.chain_graph().init_weights(0)
    m = to_module(g)
    assert set(m.state_keys) == set(g.tensor_specs())
    assert len(set(m.state_keys.values())) == len(m.state_keys)
    state = m.state_dict()
    for key, tkey in m.state_keys.items():
        assert tuple(state[tkey].shape) == tuple(g.weights[key].shape), key
    # every learnable torch parameter is a graph tensor (nothing trains that is not saved)
    assert {n for n, _ in m.named_parameters()} <= set(m.state_keys.values())


@pytest.mark.torch
def test_training_step_updates_weights_and_batchnorm_statistics():
    torch = _torch()
    from edgecnn.train.torch_module import to_graph_weights, to_module, update_graph

    g = C.chain_graph()
    g.weights = C.random_weights(g, np.random.default_rng(3))
    before = {k: v.copy() for k, v in g.weights.items()}
    m = to_module(g).train()
    x = torch.randn(4, 3, 17, 16) * 2 + 1
    loss = -torch.log(m(x).flatten(1)[:, 0] + 1e-6).mean()
    loss.backward()
    # the straight-through estimator lets the gradient reach the binary conv and below it
    assert m.layers["binary_conv2d1"].weight.grad.abs().sum() > 0
    assert m.layers["conv2d1"].conv.weight.grad.abs().sum() > 0
    with torch.no_grad():  # one plain SGD step (torch.optim's first import costs 1.5 s)
        for p in m.parameters():
            p -= 0.1 * p.grad
    new = to_graph_weights(m, g)
    assert set(new) == set(before)
    for key in ("batchnorm1.mean", "batchnorm1.var", "conv2d1.weight", "dense1.weight",
                "binary_conv2d1.weight", "activation2.slope"):
        assert not np.allclose(new[key], before[key]), f"{key} did not change in training"
    update_graph(g, m)
    # the written-back graph computes what the module computes in eval mode, compared on the
    # logits (the input of the final softmax, caught by a hook)
    m.eval()
    before_softmax = g.output.inputs[0]
    caught = []
    m.layers[m.key_of[before_softmax]].register_forward_hook(
        lambda mod, inp, out: caught.append(out))
    xe = np.random.default_rng(4).standard_normal((2, 17, 16, 3)).astype(np.float32)
    with torch.no_grad():
        m(nchw(xe))
    want = reference.run(g, xe, outputs=[before_softmax])[before_softmax]
    np.testing.assert_allclose(nhwc(caught[0]), want, atol=1e-5, rtol=1e-4)


@pytest.mark.torch
def test_module_rejects_a_wrong_input_shape():
    torch = _torch()
    from edgecnn.errors import EdgecnnError
    from edgecnn.train.torch_module import to_module

    m = to_module(C.dag_graph().init_weights(0))
    with pytest.raises(EdgecnnError, match=r"\(N, 3, 12, 12\)"):
        m(torch.zeros(1, 12, 12, 3))


@pytest.mark.torch
def test_to_module_rejects_missing_weights():
    from edgecnn.errors import GraphError
    from edgecnn.train.torch_module import to_module

    g = C.dag_graph().init_weights(0)
    del g.weights["left.weight"]
    with pytest.raises(GraphError, match="left.weight"):
        to_module(g)


# ---- pooling over random attributes ------------------------------------------------------------

@pytest.mark.torch
@settings(max_examples=120, deadline=None)
@given(kind=st.sampled_from(["maxpool", "avgpool"]), h=st.integers(1, 9), w=st.integers(1, 9),
       k=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       pad=st.tuples(*[st.integers(0, 3)] * 4), ceil=st.booleans(), include=st.booleans())
def test_pool_values_over_random_attributes(kind, h, w, k, stride, pad, ceil, include):
    """Reference = torch.nn.functional where torch has an independent form (symmetric pads of
    at most half the kernel, or floor mode), and = to_module everywhere."""
    torch = _torch()
    from edgecnn.train.torch_module import to_module

    pad = tuple(min(p, k[i % 2] - 1) for i, p in enumerate(pad))  # pads < kernel, or refused
    attrs = {"kernel": k, "stride": stride, "padding": pad, "ceil_mode": ceil}
    if kind == "avgpool":
        attrs["count_include_pad"] = include
    case = C.Case(f"{kind}-random", kind, attrs, ((h, w, 3),), seed=h * 31 + w)
    try:
        g, x = C.build(case)
    except GraphError:
        return  # no window fits; the shape tests cover the refusal
    expected = reference.run(g, x)
    op = g.layer(C.OP)
    if _pads_native(op.attrs["padding"], k) or not ceil:
        got = nhwc(torch_op(kind, op.attrs, [nchw(x.astype(np.float64))], {}))
        C.assert_close(expected, got, case, "reference vs torch.nn.functional")
    with torch.no_grad():
        got = nhwc(to_module(g)(nchw(x)))
    C.assert_close(got, expected, case, "to_module vs reference")


@pytest.mark.torch
@settings(max_examples=80, deadline=None)
@given(h=st.integers(1, 9), w=st.integers(1, 9), cg=st.integers(1, 3), fg=st.integers(1, 3),
       groups=st.sampled_from([1, 2, 3, "depthwise"]),
       k=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       pad=st.tuples(*[st.integers(0, 3)] * 4), bias=st.booleans(), binary=st.booleans())
def test_conv_values_over_random_attributes(h, w, cg, fg, groups, k, stride, dilation, pad,
                                            bias, binary):
    """conv2d (grouped, depthwise with multipliers, dilated, asymmetric padding) and
    binary_conv2d: reference = torch.nn.functional = to_module."""
    torch = _torch()
    from edgecnn.train.torch_module import to_module

    if groups == "depthwise":
        groups, cg = 4, 1  # 4 channels, one per group, fg filters each
    c = cg * groups
    if binary:
        kind, attrs, c = "binary_conv2d", {"filters": fg * groups, "kernel": k,
                                           "stride": stride, "padding": pad}, cg
    else:
        kind, attrs = "conv2d", {"filters": fg * groups, "kernel": k, "stride": stride,
                                 "padding": pad, "dilation": dilation, "groups": groups,
                                 "bias": bias}
    case = C.Case(f"{kind}-random", kind, attrs, ((h, w, c),), seed=h * 31 + w, atol=1e-5)
    try:
        g, x = C.build(case)
    except GraphError:
        return  # the kernel does not fit; the shape tests cover the refusal
    expected = reference.run(g, x)
    w64 = {n: torch.from_numpy(v.astype(np.float64)) for n, v in C.op_weights(g).items()}
    got = nhwc(torch_op(kind, g.layer(C.OP).attrs, [nchw(x.astype(np.float64))], w64))
    C.assert_close(expected, got, case, "reference vs torch.nn.functional")
    with torch.no_grad():
        got = nhwc(to_module(g)(nchw(x)))
    C.assert_close(got, expected, case, "to_module vs reference")
