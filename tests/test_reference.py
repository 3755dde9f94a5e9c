"""The numpy reference interpreter: batching, DAG plumbing, input checks, and a direct-sum check
of convolution on a seed-size input (numpy only; no torch needed)."""

from __future__ import annotations

import numpy as np
import pytest

import conformance as C
from edgecnn.core import reference
from edgecnn.core.graph import GraphBuilder
from edgecnn.errors import EdgecnnError


def _graph_with_weights(build, seed=0):
    g = build()
    g.weights = C.random_weights(g, np.random.default_rng(seed))
    return g


@pytest.mark.parametrize("build", C.GRAPHS, ids=[f.__name__ for f in C.GRAPHS])
def test_a_batch_equals_each_image_alone(build):
    g = _graph_with_weights(build)
    x = np.random.default_rng(1).standard_normal((5, *g.input_shape)).astype(np.float32)
    batch = reference.run(g, x)
    assert batch.shape == (5, *g.output_shape)
    for i in range(5):
        alone = reference.run(g, x[i])  # (H, W, C) is a batch of one
        np.testing.assert_allclose(batch[i], alone[0], rtol=1e-5, atol=1e-6)


def _branch(shape, name, **conv):
    """input -> one conv2d, as its own graph (the DAG's branch computed alone)."""
    b = GraphBuilder(name, shape)
    b.add("conv2d", name, **conv)
    return b.build()


def test_dag_add_and_concat_equal_their_branches_computed_alone():
    shape = (9, 9, 3)
    b = GraphBuilder("dag", shape)
    b.add("conv2d", "a", inputs="input", filters=4, kernel=3, padding=1)
    b.add("conv2d", "b", inputs="input", filters=4, kernel=1)
    b.add("conv2d", "c", inputs="input", filters=2, kernel=3, stride=1, padding=(0, 0, 2, 2))
    b.add("add", "sum", inputs=["a", "b", "a"])  # a read twice, and again below
    b.add("concat", "cat", inputs=["c", "sum", "a", "input"])
    g = b.build()
    g.weights = C.random_weights(g, np.random.default_rng(5))
    x = np.random.default_rng(6).standard_normal((2, *shape)).astype(np.float32)

    alone = {}
    for name in "abc":
        layer = g.layer(name)
        branch = _branch(shape, name, **layer.attrs)
        branch.weights = {f"{name}.{t}": v for t, v in g.layer_weights(layer).items()}
        alone[name] = reference.run(branch, x)
    expected = np.concatenate([alone["c"], alone["a"] + alone["b"] + alone["a"], alone["a"], x],
                              axis=-1)
    got = reference.run(g, x)
    assert got.shape == (2, 9, 9, 2 + 4 + 4 + 3)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # intermediate tensors on request, the output included
    outs = reference.run(g, x, outputs=["a", "sum", "cat", "input"])
    np.testing.assert_allclose(outs["a"], alone["a"], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(outs["cat"], got)
    np.testing.assert_array_equal(outs["input"], x)


def test_integer_input_is_accepted_as_float():
    g = _graph_with_weights(C.dag_graph)
    x8 = np.random.default_rng(2).integers(0, 256, (2, *g.input_shape), dtype=np.uint8)
    np.testing.assert_array_equal(reference.run(g, x8), reference.run(g, x8.astype(np.float32)))


@pytest.mark.parametrize("bad, words", [
    (np.zeros((12, 12, 4), np.float32), "(N, 12, 12, 3) or (12, 12, 3), got (12, 12, 4)"),
    (np.zeros((1, 3, 12, 12), np.float32), "got (1, 3, 12, 12)"),
    (np.zeros((12, 12), np.float32), "got (12, 12)"),
    (np.zeros((1, 1, 12, 12, 3), np.float32), "got (1, 1, 12, 12, 3)"),
    (np.zeros((12, 12, 3), bool), "numeric input, got dtype bool"),
    (np.full((12, 12, 3), "a"), "numeric input, got dtype <U1"),
    (np.zeros((12, 12, 3), complex), "numeric input, got dtype complex128"),
])
def test_a_wrong_input_is_a_clear_error(bad, words):
    g = _graph_with_weights(C.dag_graph)
    with pytest.raises(EdgecnnError) as e:
        reference.run(g, bad)
    msg = str(e.value)
    assert "model 'dag'" in msg and words in msg, msg


def test_seed_size_convolutions_equal_the_direct_sum():
    """A 256x256x3 image through a few convolutions (the interpreter is vectorized, so this is
    quick); output pixels checked against the docstring's sum, written as loops."""
    b = GraphBuilder("seed-size", (256, 256, 3))
    b.add("conv2d", "c1", filters=16, kernel=3, padding=1)
    b.add("activation", "r1", function="relu")
    b.add("conv2d", "c2", filters=32, kernel=3, stride=2, padding=1)
    b.add("conv2d", "c3", filters=32, kernel=3, padding=(0, 1, 2, 1), groups=32)
    b.add("conv2d", "c4", filters=8, kernel=5, stride=3, dilation=2, padding=4, groups=4)
    g = b.build()
    g.weights = C.random_weights(g, np.random.default_rng(7))
    x = np.random.default_rng(8).standard_normal((1, 256, 256, 3)).astype(np.float32)
    acts = reference.run(g, x, outputs=["input", "c1", "r1", "c2", "c3", "c4"])
    np.testing.assert_array_equal(acts["r1"], np.maximum(acts["c1"], 0))
    rng = np.random.default_rng(9)
    for src, name in [("input", "c1"), ("r1", "c2"), ("c2", "c3"), ("c3", "c4")]:
        _check_direct(g, name, acts[src], acts[name], rng)


def _check_direct(g, name, inp, out, rng, points=40):
    """out[0, y, x, o] == bias[o] + sum w[o, i, ky, kx] * in_pad[y*sh + ky*dh, x*sw + kx*dw,
    g*cin_g + i] at random output points, in float64."""
    layer = g.layer(name)
    a, w = layer.attrs, g.layer_weights(layer)
    t, l, b, r = a["padding"]
    xp = np.pad(inp[0].astype(np.float64), ((t, b), (l, r), (0, 0)))
    oh, ow, co = g.shapes[name]
    kh, kw = a["kernel"]
    (sh, sw), (dh, dw) = a["stride"], a["dilation"]
    cin_g, cout_g = inp.shape[-1] // a["groups"], co // a["groups"]
    for _ in range(points):
        y, x, o = rng.integers(oh), rng.integers(ow), rng.integers(co)
        grp = o // cout_g
        acc = float(w["bias"][o]) if a["bias"] else 0.0
        for ky in range(kh):
            for kx in range(kw):
                for i in range(cin_g):
                    acc += (float(w["weight"][o, i, ky, kx])
                            * xp[y * sh + ky * dh, x * sw + kx * dw, grp * cin_g + i])
        assert abs(out[0, y, x, o] - acc) <= 1e-4 * max(1.0, abs(acc)), (name, y, x, o)
