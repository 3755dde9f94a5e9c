"""Write small full-integer (int8, per-channel) ``.tflite`` files without TensorFlow.

TensorFlow Lite Micro runs int8 models only, and the shared MobileNets are uint8, so the MCU
benchmark writes its own: a network is a list of layers with float weights (seeded random);
weights are quantized per output channel (symmetric int8, scale max|w| / 127), biases to int32
at input scale x weight scale, activations to int8 with scales calibrated on one input
(relu6 outputs: zero point -128 over [0, 6]; others symmetric). The float graph edgecnn
imports from the file (weights dequantized) is then the float counterpart of the same model.

Layers: ("conv", filters, k, stride, act), ("dw", k, stride, act), ("avgpool",), ("fc", n).
"""

from __future__ import annotations

import numpy as np

RELU6 = 3  # tflite ActivationFunctionType
TYPES = {np.float32: 0, np.int32: 2, np.int8: 9}

# MobileNet v1, width 0.25, 128 x 128: (pointwise filters, depthwise stride) per block
MOBILENET_V1_025 = [("conv", 8, 3, 2, "relu6")] + [
    layer for f, s in [(16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1),
                       (128, 1), (128, 1), (128, 1), (128, 1), (256, 2), (256, 1)]
    for layer in (("dw", 3, s, "relu6"), ("conv", f, 1, 1, "relu6"))] + [
    ("avgpool",), ("fc", 1001)]
SMALL = [("conv", 16, 3, 2, "relu6"), ("dw", 3, 1, "relu6"), ("conv", 32, 1, 1, "relu6"),
         ("dw", 3, 2, "relu6"), ("conv", 64, 1, 1, "relu6"), ("avgpool",), ("fc", 10)]


def float_weights(layers, in_shape, seed=0):
    """He-initialized float weights (TFLite layouts) and the output shape of every layer."""
    rng = np.random.default_rng(seed)
    h, w, c = in_shape
    out = []
    for layer in layers:
        kind = layer[0]
        if kind == "conv":
            _, f, k, s, _ = layer
            wt = rng.normal(0, np.sqrt(2 / (k * k * c)), (f, k, k, c))
            h, w, c = -(-h // s), -(-w // s), f
            out.append((wt, rng.normal(0, 0.1, f), (h, w, c)))
        elif kind == "dw":
            _, k, s, _ = layer
            wt = rng.normal(0, np.sqrt(2 / (k * k)), (1, k, k, c))
            h, w = -(-h // s), -(-w // s)
            out.append((wt, rng.normal(0, 0.1, c), (h, w, c)))
        elif kind == "avgpool":
            h, w = 1, 1
            out.append((None, None, (1, 1, c)))
        else:  # fc
            wt = rng.normal(0, np.sqrt(1 / c), (layer[1], c))
            c = layer[1]
            out.append((wt, rng.normal(0, 0.1, c), (1, 1, c)))
    return out


def _qweights(wt, axis):
    amax = np.abs(wt).max(axis=tuple(i for i in range(wt.ndim) if i != axis))
    scale = np.maximum(amax, 1e-8) / 127.0
    shape = [1] * wt.ndim
    shape[axis] = -1
    q = np.clip(np.round(wt / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


def write(layers, in_shape, act_ranges=None, seed=0) -> bytes:
    """The .tflite bytes. ``act_ranges``: max |activation| after each layer (calibration);
    None: 6 for relu6 layers, 8 for the others (a first pass, to calibrate on)."""
    fw = float_weights(layers, in_shape, seed)
    t = _Writer()
    in_scale = 1 / 128
    x = t.tensor("input", (1, *in_shape), np.int8, scale=[in_scale], zp=[0])
    cur, cur_scale = x, in_scale
    for i, (layer, (wt, b, shape)) in enumerate(zip(layers, fw, strict=True)):
        kind, act = layer[0], layer[-1] if layer[0] in ("conv", "dw") else None
        rng_ = (act_ranges[i] if act_ranges else (6.0 if act == "relu6" else 8.0))
        if act == "relu6":
            o_scale, o_zp = min(rng_, 6.0) / 255, -128
        else:
            o_scale, o_zp = max(rng_, 1e-6) / 127, 0
        name = f"layer{i}_{kind}"
        if kind == "avgpool":  # keeps the input's quantization, as TFLite's AVERAGE_POOL does
            o_scale, o_zp = cur_scale, t.tensors[cur]["zp"][0]
        out = t.tensor(name, (1, *shape), np.int8, scale=[o_scale], zp=[o_zp])
        if kind in ("conv", "dw", "fc"):
            axis = 3 if kind == "dw" else 0
            qw, ws = _qweights(wt, axis)
            wi = t.tensor(f"{name}/weights", qw.shape, np.int8, qw, list(ws), [0] * len(ws),
                          axis)
            bs = cur_scale * ws
            qb = np.round(b / bs).astype(np.int32)
            bi = t.tensor(f"{name}/bias", qb.shape, np.int32, qb, list(bs), [0] * len(bs))
        if kind == "conv":
            t.op("CONV_2D", [cur, wi, bi], [out], "Conv2DOptions", Padding=0,
                 StrideH=layer[3], StrideW=layer[3], FusedActivationFunction=RELU6)
        elif kind == "dw":
            t.op("DEPTHWISE_CONV_2D", [cur, wi, bi], [out], "DepthwiseConv2DOptions",
                 Padding=0, StrideH=layer[2], StrideW=layer[2], DepthMultiplier=1,
                 FusedActivationFunction=RELU6)
        elif kind == "avgpool":
            h, w, _ = fw[i - 1][2]
            t.op("AVERAGE_POOL_2D", [cur], [out], "Pool2DOptions", Padding=1, StrideH=1,
                 StrideW=1, FilterHeight=h, FilterWidth=w)
        else:
            flat = t.tensor(f"{name}/flat", (1, wt.shape[1]), np.int8, scale=[cur_scale],
                            zp=[t.tensors[cur]["zp"][0]])
            t.op("RESHAPE", [cur, t.tensor(f"{name}/shape", (2,), np.int32,
                                           np.array([1, wt.shape[1]], np.int32))], [flat])
            out = t.tensor(f"{name}/logits", (1, wt.shape[0]), np.int8, scale=[o_scale],
                           zp=[o_zp])
            t.op("FULLY_CONNECTED", [flat, wi, bi], [out], "FullyConnectedOptions")
        cur, cur_scale = out, o_scale
    return t.build([x], [cur])


class _Writer:
    """One subgraph, its tensors (with quantization) and operators, as flatbuffers."""

    def __init__(self):
        self.tensors: list[dict] = []
        self.ops: list[tuple] = []

    def tensor(self, name, shape, dtype, data=None, scale=None, zp=None, axis=0) -> int:
        self.tensors.append({"name": name, "shape": [int(s) for s in shape], "dtype": dtype,
                             "data": data, "scale": scale, "zp": zp, "axis": axis})
        return len(self.tensors) - 1

    def op(self, code, inputs, outputs, options=None, **fields):
        self.ops.append((code, inputs, outputs, options, fields))

    def build(self, inputs, outputs) -> bytes:
        import flatbuffers
        import tflite

        b = flatbuffers.Builder(1 << 16)

        def vec(start, values, prepend):
            start(b, len(values))
            for v in reversed(values):
                prepend(v)
            return b.EndVector()

        def ivec(start, values):
            return vec(start, [int(v) for v in values], b.PrependInt32)

        def ovec(start, offsets):
            return vec(start, offsets, b.PrependUOffsetTRelative)

        tflite.BufferStart(b)
        bufs = [tflite.BufferEnd(b)]  # buffer 0: empty, for tensors without data
        index = {}
        for i, t in enumerate(self.tensors):
            if t["data"] is not None:
                data = b.CreateByteVector(np.ascontiguousarray(t["data"]).tobytes())
                tflite.BufferStart(b)
                tflite.BufferAddData(b, data)
                index[i] = len(bufs)
                bufs.append(tflite.BufferEnd(b))
        tensors = []
        for i, t in enumerate(self.tensors):
            q = None
            if t["scale"] is not None:
                sv = vec(tflite.QuantizationParametersStartScaleVector,
                         [float(s) for s in t["scale"]], b.PrependFloat32)
                zv = vec(tflite.QuantizationParametersStartZeroPointVector,
                         [int(z) for z in t["zp"]], b.PrependInt64)
                tflite.QuantizationParametersStart(b)
                tflite.QuantizationParametersAddScale(b, sv)
                tflite.QuantizationParametersAddZeroPoint(b, zv)
                tflite.QuantizationParametersAddQuantizedDimension(b, t["axis"])
                q = tflite.QuantizationParametersEnd(b)
            name = b.CreateString(t["name"])
            shape = ivec(tflite.TensorStartShapeVector, t["shape"])
            tflite.TensorStart(b)
            tflite.TensorAddName(b, name)
            tflite.TensorAddShape(b, shape)
            tflite.TensorAddType(b, TYPES[t["dtype"]])
            tflite.TensorAddBuffer(b, index.get(i, 0))
            if q is not None:
                tflite.TensorAddQuantization(b, q)
            tensors.append(tflite.TensorEnd(b))
        codes = sorted({op[0] for op in self.ops})
        ops = []
        for code, ins, outs, options, fields in self.ops:
            opt = None
            if options:
                getattr(tflite, f"{options}Start")(b)
                for k, v in fields.items():
                    getattr(tflite, f"{options}Add{k}")(b, v)
                opt = getattr(tflite, f"{options}End")(b)
            iv = ivec(tflite.OperatorStartInputsVector, ins)
            ov = ivec(tflite.OperatorStartOutputsVector, outs)
            tflite.OperatorStart(b)
            tflite.OperatorAddOpcodeIndex(b, codes.index(code))
            tflite.OperatorAddInputs(b, iv)
            tflite.OperatorAddOutputs(b, ov)
            if opt is not None:
                tflite.OperatorAddBuiltinOptionsType(b, getattr(tflite.BuiltinOptions, options))
                tflite.OperatorAddBuiltinOptions(b, opt)
            ops.append(tflite.OperatorEnd(b))
        code_offsets = []
        for code in codes:
            n = getattr(tflite.BuiltinOperator, code)
            tflite.OperatorCodeStart(b)
            tflite.OperatorCodeAddBuiltinCode(b, n)
            tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(n, 127))
            tflite.OperatorCodeAddVersion(b, 1)
            code_offsets.append(tflite.OperatorCodeEnd(b))
        tv = ovec(tflite.SubGraphStartTensorsVector, tensors)
        opv = ovec(tflite.SubGraphStartOperatorsVector, ops)
        iv = ivec(tflite.SubGraphStartInputsVector, inputs)
        outv = ivec(tflite.SubGraphStartOutputsVector, outputs)
        tflite.SubGraphStart(b)
        tflite.SubGraphAddTensors(b, tv)
        tflite.SubGraphAddOperators(b, opv)
        tflite.SubGraphAddInputs(b, iv)
        tflite.SubGraphAddOutputs(b, outv)
        sg = tflite.SubGraphEnd(b)
        sgv = ovec(tflite.ModelStartSubgraphsVector, [sg])
        cv = ovec(tflite.ModelStartOperatorCodesVector, code_offsets)
        bv = ovec(tflite.ModelStartBuffersVector, bufs)
        tflite.ModelStart(b)
        tflite.ModelAddVersion(b, 3)
        tflite.ModelAddOperatorCodes(b, cv)
        tflite.ModelAddSubgraphs(b, sgv)
        tflite.ModelAddBuffers(b, bv)
        b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())
