"""The contract every layer kind fulfils.

A layer kind is one module holding its whole meaning: attributes, shape rule, stored tensors
(with their role for the parameter count), MACs, the border it reads from its input, and the
numpy reference. Kinds register themselves with :func:`register`; every backend dispatches on
the registry.

Conventions (shared by all kinds):
- Shapes are ``(H, W, C)`` tuples; a batch inside the reference interpreter is ``(N, H, W, C)``.
- Spatial padding is ``(top, left, bottom, right)``.
- Convolution weights are ``(C_out, C_in / groups, kh, kw)`` (the ONNX/PyTorch layout);
  dense weights are ``(units, H*W*C)`` with the input flattened in H, W, C order.
- "params" counts tensors whose role is ``weight`` or ``bias``; ``state`` tensors (batch-norm
  running statistics) are stored but not counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..errors import GraphError

Shape = tuple[int, int, int]

REQUIRED = object()
INT_LIMIT = (1 << 31) - 1  # integer attributes are C ints in the compiled model


@dataclass(frozen=True)
class Attr:
    """One attribute of a layer kind: its type, default and allowed values."""

    name: str
    type: str  # "int", "float", "str", "bool", "int2" (a pair), "pad4" (top, left, bottom, right)
    default: Any = REQUIRED
    choices: tuple = ()
    doc: str = ""

    def normalize(self, value: Any, where: str) -> Any:
        try:
            if self.type == "int":
                if isinstance(value, bool) or int(value) != value:
                    raise ValueError
                value = int(value)
            elif self.type == "float":
                value = float(value)
            elif self.type == "bool":
                if not isinstance(value, bool):
                    raise ValueError
            elif self.type == "str":
                if not isinstance(value, str):
                    raise ValueError
            elif self.type == "int2":
                value = _int_tuple(value, 2)
            elif self.type == "pad4":
                value = _int_tuple(value, 4)
            elif self.type == "int3":
                value = _int_tuple(value, 3)
                if isinstance(value, int) or min(value) < 1:
                    raise ValueError
            else:  # pragma: no cover - a programming error in a kind definition
                raise AssertionError(self.type)
        except (TypeError, ValueError):
            raise GraphError(f"{where}: attribute {self.name!r} must be {_TYPE_WORDS[self.type]}, "
                             f"got {value!r}") from None
        ints = (value,) if isinstance(value, int) else value if isinstance(value, tuple) else ()
        if any(isinstance(v, int) and abs(v) > INT_LIMIT for v in ints):
            raise GraphError(f"{where}: attribute {self.name!r} is {str(value)[:40]}..., beyond "
                             f"any real layer (at most {INT_LIMIT:,} in magnitude): a corrupt or "
                             "mistyped value")
        if self.choices and value not in self.choices:
            raise GraphError(f"{where}: attribute {self.name!r} must be one of "
                             f"{', '.join(map(str, self.choices))}, got {value!r}")
        return value


_TYPE_WORDS = {"int": "an integer", "float": "a number", "bool": "true or false",
               "str": "a string", "int2": "an integer or a pair of integers",
               "int3": "three positive integers (H, W, C)",
               "pad4": "an integer, a pair (h, w) or four integers (top, left, bottom, right)"}


def _int_tuple(value: Any, n: int) -> tuple[int, ...]:
    if isinstance(value, bool | str):
        raise ValueError
    if isinstance(value, int | np.integer) and n != 3:
        return (int(value),) * n
    vals = [int(v) if int(v) == v and not isinstance(v, bool) else _bad() for v in value]
    if n == 4 and len(vals) == 2:
        vals = [vals[0], vals[1], vals[0], vals[1]]
    if len(vals) != n:
        raise ValueError
    return tuple(vals)


def _bad():
    raise ValueError


@dataclass(frozen=True)
class TensorSpec:
    """A tensor a layer stores. ``role`` decides whether it counts as a parameter.

    ``dtype`` is how the model file stores it: float32, or int8 / uint8 / int32 for the
    integer kinds (whose ``bits`` is then the type's width)."""

    shape: tuple[int, ...]
    role: str  # "weight", "bias" or "state"
    init: str  # "he", "zeros", "ones", "uniform_scale" (see Graph.init_weights)
    bits: int = 32  # storage width used for weight bytes (1 for binary weights)
    dtype: str = "float32"

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return (self.size * self.bits + 7) // 8


class LayerKind:
    """Base class of layer kinds; subclasses are stateless and registered once."""

    kind: ClassVar[str]
    title: ClassVar[str]  # the row name in ELL-style tables, e.g. "Convolution"
    attrs: ClassVar[tuple[Attr, ...]] = ()
    min_inputs: ClassVar[int] = 1
    max_inputs: ClassVar[int | None] = 1
    elementwise: ClassVar[bool] = False  # output has the input's shape and may be computed in place
    # a learned linear map (a convolution or dense): it heads a group of rows in ELL tables,
    # can be a classifier head, and its C kernels apply a fused activation
    linear: ClassVar[bool] = False
    integer: ClassVar[bool] = False  # reads or writes integer tensors (see edgecnn.quant)

    def normalize_attrs(self, attrs: dict, where: str) -> dict:
        known = {a.name for a in self.attrs}
        unknown = sorted(set(attrs) - known)
        if unknown:
            raise GraphError(f"{where}: unknown attribute(s) {', '.join(unknown)} for kind "
                             f"{self.kind!r} (known: {', '.join(sorted(known)) or 'none'})")
        out = {}
        for a in self.attrs:
            if a.name in attrs:
                out[a.name] = a.normalize(attrs[a.name], where)
            elif a.default is REQUIRED:
                raise GraphError(f"{where}: missing attribute {a.name!r} for kind {self.kind!r}")
            else:
                out[a.name] = None if a.default is None else a.normalize(a.default, where)
        return out

    # ---- accounting -------------------------------------------------------------------------
    def output_shape(self, a: dict, ins: list[Shape]) -> Shape:
        return ins[0]

    def tensors(self, a: dict, ins: list[Shape]) -> dict[str, TensorSpec]:
        return {}

    def macs(self, a: dict, ins: list[Shape], out: Shape) -> int:
        return 0

    def output_dtype(self, a: dict, in_dtypes: list[str]) -> str:
        """The output's element type: float32, or an integer kind's uint8/int8 (``dtype``)."""
        return a["dtype"] if self.integer else "float32"

    def border(self, a: dict) -> tuple[int, int]:
        """The zero border (rows, columns) this layer reads around its input (ELL padding)."""
        return (0, 0)

    def describe(self, a: dict) -> str:
        """The 'details' column of an ELL-style table row."""
        return ""

    # ---- reference --------------------------------------------------------------------------
    def forward(self, a: dict, xs: list[np.ndarray], w: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    # ---- lowerings: every backend dispatches on these; none keeps its own list of kinds -------
    def to_torch(self, a: dict, ins: list[Shape]):
        """An ``nn.Module`` computing this layer on NCHW tensors. torch is imported lazily
        (from ``layers/_torch.py``) so that importing a kind needs numpy only."""
        raise NotImplementedError

    def torch_names(self, a: dict) -> dict[str, str]:
        """Graph tensor name → the torch module's state_dict name, where they differ."""
        return {}

    def to_onnx(self, b, l, ins: list[str], out: str) -> str:
        """Add the layer's ONNX nodes to ``b`` (formats.onnx_export's builder); ``ins`` are the
        input value names, ``out`` the name to write. Returns the value that holds the result."""
        raise NotImplementedError

    def c_call(self, op, c) -> str:
        """The C statement(s) calling the reference kernel (``ec_ref.c``) for a compiler op;
        ``c`` is the emitter's context (value names, weight pointers, number format)."""
        raise NotImplementedError


# a backend name → the LayerKind method that lowers a kind to it
LOWERINGS = {"torch": "to_torch", "onnx": "to_onnx", "c": "c_call"}


def lowers_to(kind: LayerKind, backend: str) -> bool:
    """Whether ``kind`` defines its lowering to ``backend`` (one of :data:`LOWERINGS`)."""
    method = LOWERINGS[backend]
    return getattr(type(kind), method) is not getattr(LayerKind, method)


_REGISTRY: dict[str, LayerKind] = {}


def register(cls: type[LayerKind]) -> type[LayerKind]:
    """Class decorator: register a layer kind under ``cls.kind``."""
    if cls.kind in _REGISTRY:
        raise AssertionError(f"layer kind {cls.kind!r} registered twice")
    _REGISTRY[cls.kind] = cls()
    return cls


def get_kind(kind: str, where: str = "") -> LayerKind:
    try:
        return _REGISTRY[kind]
    except KeyError:
        prefix = f"{where}: " if where else ""
        raise GraphError(f"{prefix}unknown layer kind {kind!r} (known: "
                         f"{', '.join(sorted(_REGISTRY))})") from None


def all_kinds() -> dict[str, LayerKind]:
    return dict(_REGISTRY)


# ---- helpers shared by spatial kinds ----------------------------------------------------------

def window_out(size: int, k: int, s: int, pad_lo: int, pad_hi: int, ceil: bool = False,
               dilation: int = 1) -> int:
    """Output length of a sliding window: floor or ceil of (size + pads - span) / s, plus 1."""
    if min(k, s, dilation) < 1 or min(pad_lo, pad_hi) < 0:
        raise GraphError(f"window of kernel {k}, stride {s}, dilation {dilation}, padding "
                         f"({pad_lo}, {pad_hi}): kernel, stride and dilation must be at least 1 "
                         "and padding not negative")
    span = dilation * (k - 1) + 1
    num = size + pad_lo + pad_hi - span  # negative when the window is wider than the input
    # with ceil, a window wider than the input still yields one (partial) window when
    # s > -num, as in PyTorch and ONNX: e.g. size 1, k 2, s 2 gives 1
    out = -(-num // s) + 1 if ceil else num // s + 1
    # PyTorch/ONNX rule: with ceil, the last window must start inside the input or left padding.
    if ceil and (out - 1) * s >= size + pad_lo:
        out -= 1
    return max(out, 0)


def pad_nhwc(x: np.ndarray, pad: tuple[int, int, int, int], value: float = 0.0) -> np.ndarray:
    t, l, b, r = pad
    if not any(pad):
        return x
    return np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=value)


def windows(x: np.ndarray, k: tuple[int, int], s: tuple[int, int], out_hw: tuple[int, int],
            dilation: tuple[int, int] = (1, 1)) -> np.ndarray:
    """All sliding windows of a padded NHWC batch: (N, OH, OW, kh, kw, C), a strided view."""
    n, _, _, c = x.shape
    sn, sh, sw, sc = x.strides
    oh, ow = out_hw
    return np.lib.stride_tricks.as_strided(
        x, shape=(n, oh, ow, k[0], k[1], c),
        strides=(sn, sh * s[0], sw * s[1], sh * dilation[0], sw * dilation[1], sc),
        writeable=False)


def fmt_hw(p: tuple[int, int]) -> str:
    return f"{p[0]}x{p[1]}"
