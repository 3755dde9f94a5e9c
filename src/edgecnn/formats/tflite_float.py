"""A float32 copy of a quantized ``.tflite`` model: every quantized tensor dequantized.

What for: LiteRT is a peer in the benchmarks, and edgecnn imports a quantized ``.tflite`` as a
float graph (weights dequantized, float arithmetic). To time LiteRT on the *same* float
function, its input must be a float model; the copy keeps the ops, their options and the
tensor shapes and changes only the numbers' type:

- a constant tensor with quantization parameters (weights uint8/int8, biases int32) becomes
  float32: ``(q - zero_point) * scale``, per channel along ``quantized_dimension`` when the
  scales are per channel (the TFLite quantization spec);
- an activation tensor with quantization parameters becomes float32, without them (so no
  clamping to the quantized range: the float graph edgecnn imports does not clamp either);
- ``drop_softmax``: a final SOFTMAX is removed and its input becomes the model's output, so
  the copy gives logits, as the graph edgecnn compares on does.

Only ops whose float kernel takes the same options are accepted (``FLOAT_SAME_OPS``); a
QUANTIZE/DEQUANTIZE op or anything else is refused with one error naming it.

The object API of the flatbuffers schema shipped with LiteRT (``ai_edge_litert``,
``schema_py_generated``) reads and writes the file; nothing else is needed.
"""

from __future__ import annotations

import os

import numpy as np

from ..errors import EdgecnnError, require

# TFLite TensorType -> numpy dtype, for the constant data of quantized tensors
_QUANT_DTYPES = {3: np.uint8, 9: np.int8, 7: np.int16, 2: np.int32}
_FLOAT32 = 0
# ops that run in float with exactly the options of their quantized form
FLOAT_SAME_OPS = {"ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D",
                  "FULLY_CONNECTED", "MAX_POOL_2D", "MEAN", "MUL", "PAD", "RELU", "RELU6",
                  "RESHAPE", "SOFTMAX", "SQUEEZE", "LOGISTIC", "HARD_SWISH"}


def float_tflite(path: str | os.PathLike, drop_softmax: bool = False) -> bytes:
    """The float32 copy of the ``.tflite`` at ``path``, as bytes (see the module doc)."""
    schema = require("ai_edge_litert.schema_py_generated", "bench")
    flatbuffers = require("flatbuffers", "tflite")
    path = os.fspath(path)
    with open(path, "rb") as f:
        model = schema.ModelT.InitFromPackedBuf(f.read(), 0)
    if len(model.subgraphs or []) != 1:
        raise EdgecnnError(f"{path}: float copy: expected one subgraph, found "
                           f"{len(model.subgraphs or [])}")
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    sg = model.subgraphs[0]
    _check_ops(path, sg, model.operatorCodes, names)
    done: dict[int, int] = {}  # buffer index -> tensor that converted it
    for i, t in enumerate(sg.tensors):
        _dequantize_tensor(path, model, t, i, done)
    if drop_softmax:
        _drop_final_softmax(sg, model.operatorCodes, names)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _opname(code, names: dict) -> str:
    # builtinCode is the full enum; deprecatedBuiltinCode the int8 one of old files
    return names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")


def _check_ops(path: str, sg, codes, names: dict) -> None:
    bad = sorted({_opname(codes[op.opcodeIndex], names) for op in sg.operators} - FLOAT_SAME_OPS)
    if bad:
        raise EdgecnnError(f"{path}: float copy: op(s) {', '.join(bad)} have no float form with "
                           f"the same options (accepted: {', '.join(sorted(FLOAT_SAME_OPS))})")


def _dequantize_tensor(path: str, model, t, index: int, done: dict) -> None:
    q = t.quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        return  # a float tensor, or an integer one that is not quantized (a shape)
    if t.type not in _QUANT_DTYPES:
        raise EdgecnnError(f"{path}: float copy: tensor {t.name!r} has quantization but type "
                           f"{t.type}")
    buf = model.buffers[t.buffer] if t.buffer else None
    if buf is not None and buf.data is not None and len(buf.data):
        if t.buffer in done:
            raise EdgecnnError(f"{path}: float copy: buffer {t.buffer} is shared by tensors "
                               f"{done[t.buffer]} and {index}")
        q_values = np.frombuffer(bytes(buf.data), _QUANT_DTYPES[t.type]).reshape(t.shape)
        values = _dequantize(q_values, q)
        buf.data = np.frombuffer(values.astype("<f4").tobytes(), np.uint8)
        done[t.buffer] = index
    t.type = _FLOAT32
    t.quantization = None


def _dequantize(q_values: np.ndarray, q) -> np.ndarray:
    """(q - zero_point) * scale; per channel along quantizedDimension when several scales."""
    scale = np.asarray(q.scale, np.float64)
    zero = np.asarray(q.zeroPoint if q.zeroPoint is not None else [0], np.float64)
    if scale.size > 1:  # per channel: broadcast along the quantized axis
        shape = [1] * q_values.ndim
        shape[q.quantizedDimension] = scale.size
        scale, zero = scale.reshape(shape), zero.reshape(shape) if zero.size > 1 else zero
    return (q_values.astype(np.float64) - zero) * scale


def _drop_final_softmax(sg, codes, names: dict) -> None:
    out = sg.outputs[0]
    for k, op in enumerate(sg.operators):
        if out in list(op.outputs) and _opname(codes[op.opcodeIndex], names) == "SOFTMAX":
            sg.outputs = np.array([op.inputs[0], *list(sg.outputs)[1:]], np.int32)
            del sg.operators[k]
            return
