"""Layer kinds. Importing this package registers every kind (one module each)."""

from . import (  # noqa: F401 - imported to register the kinds
    activation,
    batchnorm,
    binary_conv2d,
    conv2d,
    dense,
    dropout,
    fake_quant,
    flatten,
    input,
    lrn,
    merge,
    pool,
    qactivation,
    qconv2d,
    qdense,
    qmerge,
    qpool,
    qsoftmax,
    quantize,
    scale_bias,
    softmax,
)
from .base import Attr, LayerKind, Shape, TensorSpec, all_kinds, get_kind, register

__all__ = ["Attr", "LayerKind", "Shape", "TensorSpec", "all_kinds", "get_kind", "register"]
