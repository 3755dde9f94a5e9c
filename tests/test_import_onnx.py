"""ONNX importer: outputs equal ONNX Runtime's on the same file (and PyTorch's via ONNX)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from conftest import need_module
from edgecnn.core import reference
from edgecnn.errors import EdgecnnError, ModelFileError
from edgecnn.formats.importers import UnsupportedModelError, import_model

onnx = need_module("onnx", "onnx", "needs onnx (the onnx extra)")
ort = need_module("onnx", "onnxruntime", "needs onnxruntime (the onnx extra)")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402 - after the skip above

pytestmark = pytest.mark.onnx
ATOL = 2e-5  # float32 sums of a few hundred products, different summation orders


def ort_run(path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def edgecnn_run(g, x_nchw: np.ndarray) -> np.ndarray:
    """The graph on an NCHW batch (the ONNX input), normalized as the graph's preprocessing."""
    p = g.preprocessing
    x = x_nchw.transpose(0, 2, 3, 1)
    if x.shape[-1] == 3:  # the input arithmetic folded away (mean and std are RGB)
        x = (x - np.float32(p.mean)) / np.float32(p.std)
    return reference.run(g, x.astype(np.float32))


def assert_same(path, x: np.ndarray, atol: float = ATOL):
    g = import_model(path)
    want = ort_run(path, x)
    got = edgecnn_run(g, x)
    if want.ndim == 4:
        want = want.transpose(0, 2, 3, 1)
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=atol, rtol=1e-4)
    return g


def save(model, tmp_path, name="m.onnx"):
    onnx.checker.check_model(model)
    path = tmp_path / name
    onnx.save(model, path)
    return path


def init(name, arr):
    return numpy_helper.from_array(np.asarray(arr, np.float32), name)


def make_model(nodes, inits, in_shape, out_shape, opset=13):
    in_shape, out_shape = ["n", *in_shape[1:]], ["n", *out_shape[1:]]  # any batch size
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                     in_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
                          inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                             ir_version=8)  # one ONNX Runtime 1.17+ reads


# ---- models PyTorch exports ------------------------------------------------------------------

def _torch_models():
    torch = need_module("torch", "torch", "needs PyTorch (the torch extra)")
    nn = torch.nn

    class Inverted(nn.Module):  # MobileNet v2 block: expand, depthwise, project, residual
        def __init__(self, c, e):
            super().__init__()
            self.f = nn.Sequential(
                nn.Conv2d(c, c * e, 1, bias=False), nn.BatchNorm2d(c * e), nn.ReLU6(),
                nn.Conv2d(c * e, c * e, 3, padding=1, groups=c * e, bias=False),
                nn.BatchNorm2d(c * e), nn.ReLU6(),
                nn.Conv2d(c * e, c, 1, bias=False), nn.BatchNorm2d(c))

        def forward(self, x):
            return x + self.f(x)

    mobilenet = nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU6(),
        Inverted(16, 4), Inverted(16, 2),
        nn.Conv2d(16, 32, 3, stride=2, padding=1, groups=16), nn.ReLU(),  # multiplier 2
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10), nn.Softmax(1))

    alexnet = nn.Sequential(  # a small AlexNet: grouped conv, ceil pooling, C*H*W head
        nn.Conv2d(3, 24, 11, stride=4, padding=2), nn.ReLU(),
        nn.MaxPool2d(3, 2, ceil_mode=True), nn.Conv2d(24, 32, 5, padding=2, groups=2),
        nn.ReLU(), nn.MaxPool2d(3, 2), nn.Flatten(), nn.Dropout(), nn.Linear(32 * 3 * 3, 64),
        nn.ReLU(), nn.Linear(64, 10))

    class Fire(nn.Module):  # SqueezeNet: squeeze, two expands, concat
        def __init__(self, c, s, e):
            super().__init__()
            self.s = nn.Sequential(nn.Conv2d(c, s, 1), nn.PReLU(s))
            self.e1 = nn.Sequential(nn.Conv2d(s, e, 1), nn.LeakyReLU(0.2))
            self.e3 = nn.Sequential(nn.Conv2d(s, e, 3, padding=1), nn.Tanh())

        def forward(self, x):
            y = self.s(x)
            return torch.cat([self.e1(y), self.e3(y)], 1)

    class Squeeze(nn.Module):  # input normalization in the graph; explicit zero padding
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
            self.f = nn.Sequential(
                nn.ZeroPad2d((1, 2, 0, 1)), nn.Conv2d(3, 16, 3, stride=2), nn.Sigmoid(),
                Fire(16, 8, 8), nn.AvgPool2d(3, 2, padding=1, count_include_pad=False),
                Fire(16, 8, 16), nn.Conv2d(32, 7, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())

        def forward(self, x):
            return self.f((x - self.mean) / self.std)

    class Basic(nn.Module):  # ResNet basic block, with a strided 1x1 projection shortcut
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.f = nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
            self.short = nn.Sequential() if stride == 1 and cin == cout else nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            return torch.relu(self.f(x) + self.short(x))

    resnet = nn.Sequential(  # ResNet stem (7x7/2, max pool 3/2 pad 1), two stages, VGG-ish head
        nn.Conv2d(3, 16, 7, 2, 3, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        nn.MaxPool2d(3, 2, 1), Basic(16, 16, 1), Basic(16, 32, 2),
        nn.AdaptiveAvgPool2d((2, 2)), nn.Flatten(), nn.Linear(32 * 2 * 2, 12))

    return torch, {"mobilenet": (mobilenet, 32), "alexnet": (alexnet, 67),
                   "squeezenet": (Squeeze(), 30), "resnet": (resnet, 64)}


def _randomize_bn(torch, m):
    g = torch.Generator().manual_seed(1)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):  # non-trivial statistics, folded on export
            c = mod.num_features
            mod.running_mean.copy_(torch.rand(c, generator=g) - 0.5)
            mod.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            mod.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            mod.bias.data.copy_(torch.rand(c, generator=g) - 0.5)


@pytest.mark.torch
@pytest.mark.parametrize("which", ["mobilenet", "alexnet", "squeezenet", "resnet"])
def test_torch_exports_match_onnxruntime(which, tmp_path):
    torch, models = _torch_models()
    torch.manual_seed(0)
    m, size = models[which]
    _randomize_bn(torch, m)
    m.eval()
    x = torch.rand(3, 3, size, size)
    path = tmp_path / f"{which}.onnx"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, (x[:1],), str(path), dynamo=False, opset_version=13,
                          dynamic_axes={"input": {0: "n"}}, input_names=["input"])
    g = assert_same(path, x.numpy())
    with torch.no_grad():  # and PyTorch itself agrees
        want = m(x).numpy()
    got = edgecnn_run(g, x.numpy()).reshape(want.shape)
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=1e-4)
    if which == "squeezenet":  # (x - mean) / std became preprocessing, not layers
        np.testing.assert_allclose(g.preprocessing.mean, [0.485, 0.456, 0.406], rtol=1e-6)
        np.testing.assert_allclose(g.preprocessing.std, [0.229, 0.224, 0.225], rtol=1e-6)
        assert "scale_bias" not in {l.kind for l in g.layers}
    if which == "mobilenet":
        kinds = [l.kind for l in g.layers]
        assert kinds.count("add") == 2 and g.output_shape == (1, 1, 10)


@pytest.mark.torch
def test_import_torch(tmp_path):
    torch, models = _torch_models()
    from edgecnn.formats.importers.torch import import_torch

    m, size = models["alexnet"]
    torch.manual_seed(2)
    m.train()  # import_torch exports in eval mode and restores the mode
    x = torch.rand(2, 3, size, size)
    g = import_torch(m, x, name="small_alexnet")
    assert m.training and g.name == "small_alexnet"
    m.eval()
    with torch.no_grad():
        want = m(x).numpy()
    got = reference.predict(g, x.numpy().transpose(0, 2, 3, 1))
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=1e-4)


# ---- hand-built graphs: operators PyTorch's exporter folds or rarely writes ----------------

def test_batchnorm_lrn_prelu_pad_same_matmul(tmp_path):
    rng = np.random.default_rng(0)
    c = 6
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], "conv_same", kernel_shape=[3, 3],
                         strides=[2, 2], auto_pad="SAME_UPPER"),
        helper.make_node("BatchNormalization", ["c1", "s", "b", "m", "v"], ["bn"], "bn",
                         epsilon=1e-3),
        helper.make_node("PRelu", ["bn", "slope"], ["pr"], "prelu"),
        helper.make_node("LRN", ["pr"], ["lrn"], "lrn", size=3, alpha=0.01, beta=0.6, bias=1.5),
        helper.make_node("Pad", ["lrn", "pads"], ["padded"], "pad"),
        helper.make_node("AveragePool", ["padded"], ["ap"], "avg", kernel_shape=[2, 2],
                         strides=[2, 2]),
        helper.make_node("Clip", ["ap", "zero", "six"], ["r6"], "relu6"),
        helper.make_node("Flatten", ["r6"], ["flat"], "flatten"),
        helper.make_node("MatMul", ["flat", "wm"], ["mm"], "matmul"),
        helper.make_node("Add", ["mm", "bm"], ["logits"], "bias"),
        helper.make_node("Softmax", ["logits"], ["y"], "softmax"),
    ]
    inits = [init("w1", rng.normal(0, 0.3, (c, 3, 3, 3))), init("s", rng.uniform(.5, 2, c)),
             init("b", rng.normal(0, 1, c)), init("m", rng.normal(0, .2, c)),
             init("v", rng.uniform(.5, 2, c)), init("slope", rng.uniform(0, .5, (c, 1, 1))),
             numpy_helper.from_array(np.array([0, 0, 1, 0, 0, 0, 0, 1], np.int64), "pads"),
             init("zero", 0.0), init("six", 6.0),
             init("wm", rng.normal(0, 0.2, (c * 3 * 3, 5))), init("bm", rng.normal(0, 1, 5))]
    path = save(make_model(nodes, inits, [2, 3, 12, 12], [2, 5]), tmp_path)
    g = assert_same(path, rng.uniform(0, 1, (2, 3, 12, 12)).astype(np.float32))
    kinds = [l.kind for l in g.layers]
    assert kinds == ["input", "conv2d", "batchnorm", "activation", "lrn", "avgpool",
                     "activation", "flatten", "dense", "softmax"]
    assert g.layers[1].attrs["padding"] == (0, 0, 1, 1)  # SAME_UPPER: the extra row after


def test_gemm_transposed_maxpool_ceil_scale_bias_concat(tmp_path):
    rng = np.random.default_rng(1)
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["a"], "conv_a", kernel_shape=[1, 1]),
        helper.make_node("Mul", ["a", "k"], ["am"], "scale"),
        helper.make_node("Sub", ["am", "off"], ["as"], "shift"),
        helper.make_node("Conv", ["x", "w2"], ["c"], "conv_c", kernel_shape=[3, 3],
                         pads=[1, 0, 1, 2], dilations=[1, 1]),
        helper.make_node("Concat", ["as", "c"], ["cat"], "concat", axis=1),
        helper.make_node("MaxPool", ["cat"], ["mp"], "pool", kernel_shape=[3, 3],
                         strides=[2, 2], ceil_mode=1),
        helper.make_node("GlobalMaxPool", ["mp"], ["gm"], "gmax"),
        helper.make_node("Flatten", ["gm"], ["f"], "flat"),
        helper.make_node("Gemm", ["f", "wg", "bg"], ["y"], "fc", transB=1, alpha=0.5, beta=2.0),
    ]
    inits = [init("w1", rng.normal(0, .5, (4, 3, 1, 1))), init("b1", rng.normal(0, 1, 4)),
             init("k", rng.normal(0, 1, (4, 1, 1))), init("off", rng.normal(0, 1, (1, 4, 1, 1))),
             init("w2", rng.normal(0, .3, (5, 3, 3, 3))), init("wg", rng.normal(0, .3, (7, 9))),
             init("bg", rng.normal(0, 1, 7))]
    path = save(make_model(nodes, inits, [1, 3, 10, 9], [1, 7]), tmp_path)
    g = assert_same(path, rng.normal(0, 1, (3, 3, 10, 9)).astype(np.float32))
    assert [l.kind for l in g.layers].count("scale_bias") == 2


def test_input_arithmetic_becomes_preprocessing(tmp_path):
    rng = np.random.default_rng(2)
    nodes = [helper.make_node("Div", ["x", "d"], ["xd"], "to_unit"),
             helper.make_node("Sub", ["xd", "m"], ["xm"], "mean"),
             helper.make_node("Mul", ["xm", "k"], ["xk"], "inv_std"),
             helper.make_node("Conv", ["xk", "w"], ["y"], "conv", kernel_shape=[1, 1])]
    inits = [init("d", 255.0), init("m", np.array([0.5, 0.4, 0.3]).reshape(3, 1, 1)),
             init("k", 2.0), init("w", rng.normal(0, 1, (2, 3, 1, 1)))]
    path = save(make_model(nodes, inits, [1, 3, 4, 4], [1, 2, 4, 4]), tmp_path)
    g = assert_same(path, rng.uniform(0, 255, (2, 3, 4, 4)).astype(np.float32), atol=1e-4)
    # ((x / 255) - m) * 2 = (x - 255 m) / (255 / 2)
    np.testing.assert_allclose(g.preprocessing.mean, [127.5, 102.0, 76.5], rtol=1e-6)
    np.testing.assert_allclose(g.preprocessing.std, [127.5] * 3, rtol=1e-6)
    assert [l.kind for l in g.layers] == ["input", "conv2d"]


def test_dense_after_chw_flatten_permutes_columns(tmp_path):
    """Flatten of C x H x W: the dense columns must be reordered, else results differ."""
    rng = np.random.default_rng(3)
    nodes = [helper.make_node("Flatten", ["x"], ["f"], "flat"),
             helper.make_node("Gemm", ["f", "w"], ["y"], "fc", transB=1)]
    path = save(make_model(nodes, [init("w", rng.normal(0, 1, (4, 2 * 3 * 5)))], [1, 2, 3, 5],
                           [1, 4]), tmp_path)
    g = assert_same(path, rng.normal(0, 1, (2, 2, 3, 5)).astype(np.float32))
    w = numpy_helper.to_array(onnx.load(path).graph.initializer[0])
    got = g.weights[g.layers[-1].name + ".weight"]
    np.testing.assert_array_equal(got, w.reshape(4, 2, 3, 5).transpose(0, 2, 3, 1)
                                  .reshape(4, -1))


# ---- what the importer refuses, in one message -----------------------------------------------

def test_every_unsupported_operator_is_listed(tmp_path):
    nodes = [helper.make_node("Clip", ["x", "lo", "hi"], ["c"], "clip_weird"),  # attributes
             helper.make_node("Transpose", ["x"], ["t"], "swap", perm=[0, 1, 3, 2]),
             helper.make_node("Relu", ["x"], ["r0"], "ok_relu"),
             helper.make_node("HardSwish", ["r0"], ["h"], "hswish"),
             helper.make_node("Softmax", ["h"], ["s"], "softmax_w", axis=3),  # attributes
             helper.make_node("Add", ["t", "s"], ["a"], "add_after_refused"),
             helper.make_node("Resize", ["a", "", "sc"], ["y"], "upsample")]
    inits = [init("sc", [1, 1, 2, 2]), init("lo", -1.0), init("hi", 1.0)]
    path = save(make_model(nodes, inits, [1, 3, 4, 4], [1, 3, 8, 8], opset=14), tmp_path)
    with pytest.raises(UnsupportedModelError) as e:
        import_model(path)
    msg = str(e.value)
    for name, op in [("clip_weird", "Clip"), ("swap", "Transpose"), ("hswish", "HardSwish"),
                     ("upsample", "Resize")]:
        assert f"'{name}' ({op})" in msg
    assert "Clip to [-1.0, 1.0]" in msg
    assert "ok_relu" not in msg and "add_after_refused" not in msg
    assert "4 operator(s)" in msg and str(path) in msg


def test_unsupported_softmax_axis(tmp_path):
    nodes = [helper.make_node("Softmax", ["x"], ["y"], "softmax_w", axis=3)]
    path = save(make_model(nodes, [], [1, 3, 4, 4], [1, 3, 4, 4]), tmp_path)
    with pytest.raises(UnsupportedModelError, match=r"'softmax_w' \(Softmax\): axis 3"):
        import_model(path)


def test_unsupported_attribute_names_the_node(tmp_path):
    nodes = [helper.make_node("Clip", ["x", "lo", "hi"], ["y"], "clip_weird")]
    path = save(make_model(nodes, [init("lo", -1.0), init("hi", 1.0)], [1, 3, 4, 4],
                           [1, 3, 4, 4]), tmp_path)
    with pytest.raises(UnsupportedModelError, match=r"clip_weird.*Clip to \[-1.0, 1.0\]"):
        import_model(path)


def test_truncated_and_garbage_files(tmp_path):
    rng = np.random.default_rng(4)
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], "conv", kernel_shape=[3, 3])]
    path = save(make_model(nodes, [init("w", rng.normal(0, 1, (8, 3, 3, 3)))], [1, 3, 8, 8],
                           [1, 8, 6, 6]), tmp_path)
    data = path.read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="cut.onnx: .*truncated or corrupt"):
        import_model(cut)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\xff" * 100)
    with pytest.raises(ModelFileError, match="junk.onnx"):
        import_model(junk)
    with pytest.raises(EdgecnnError, match="unknown model file type"):
        import_model(_touch(tmp_path / "model.h5"))


def _touch(p):
    p.write_bytes(b"")
    return p


# ---- round trip through edgecnn's own exporter -----------------------------------------------

def test_round_trip_export_import(tmp_path):
    export = importlib.import_module("edgecnn.formats.onnx_export")
    from testutil import tiny_cnn

    g = tiny_cnn(classes=10, size=16, seed=3, labels=[f"c{i}" for i in range(10)])
    path = export.export(g, tmp_path / "tiny.onnx")
    back = import_model(path)
    x = np.random.default_rng(5).normal(0, 1, (2, *g.input_shape)).astype(np.float32)
    np.testing.assert_allclose(reference.run(back, x), reference.run(g, x), atol=1e-5)
    assert back.preprocessing == g.preprocessing and back.labels == g.labels
    assert back.name == g.name


@pytest.mark.torch
@pytest.mark.slow
@pytest.mark.parametrize("name", ["dr_I256x256x3CMCMCMCMCMCMCMC1AS", "alexnet"])
def test_zoo_models_round_trip_through_pytorch_onnx(name, tmp_path):
    """zoo graph → torch module → torch.onnx.export → import → edgecnn export: every step
    agrees with ONNX Runtime on the file PyTorch wrote."""
    import warnings

    torch = need_module("torch", "torch")
    from edgecnn.formats.onnx_export import export
    from edgecnn.train.torch_module import to_module
    from edgecnn.zoo import get

    g = get(name).init_weights(0)
    rng = np.random.default_rng(1)
    for k in g.weights:  # non-trivial batch-norm statistics, folded or kept on the way
        if k.endswith((".mean", ".shift")):
            g.weights[k] = rng.normal(0, 0.1, g.weights[k].shape).astype(np.float32)
        elif k.endswith((".var", ".scale")):
            g.weights[k] = rng.uniform(0.5, 1.5, g.weights[k].shape).astype(np.float32)
    m = to_module(g).eval()
    x = rng.normal(0, 1, (1, g.input_shape[2], *g.input_shape[:2])).astype(np.float32)
    src = tmp_path / "torch.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, (torch.from_numpy(x),), str(src), dynamo=False, opset_version=13,
                          input_names=["input"])
    want = ort_run(src, x).reshape(1, -1)
    back = import_model(src)
    got = edgecnn_run(back, x).reshape(1, -1)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4)
    again = export(back, tmp_path / "again.onnx")
    np.testing.assert_allclose(ort_run(again, x).reshape(1, -1), want, atol=1e-5, rtol=1e-4)
