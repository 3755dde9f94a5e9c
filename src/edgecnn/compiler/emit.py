"""C emission: ``model.c`` / ``model.h`` = the weights as data plus calls into the C runtime.

The generated API (``<p>`` is the C prefix, see :func:`c_prefix`)::

    int  <p>_predict(const float *input_hwc, float *output);   /* static arena; 0 = success */
    int  <p>_predict_with_arena(const float *input_hwc, float *output, void *arena);
    void <p>_input_shape(int *h, int *w, int *c);
    int  <p>_output_size(void);
    size_t <p>_arena_size(void);                                /* bytes */
    const char *<p>_metadata(void);                             /* JSON */
    void <p>_set_threads(int n);
    int  <p>_load_weights(const char *path);                    /* weights="file" only */

With ``arena="caller"`` no static arena is compiled in and ``<p>_predict`` does not exist. With
``weights="file"`` the weights are one static array filled by ``<p>_load_weights`` from
``weights.bin`` (little-endian float32 after a 16-byte header: magic "ECW1", float count,
model id, 0); otherwise they are ``const`` data in model.c (flash on a microcontroller).

All weight tensors live in one blob, each at a 64-byte aligned offset, so both storage modes
emit the same kernel calls (``W + offset``).
"""

from __future__ import annotations

import functools
import json
import re
import zlib
from dataclasses import dataclass, field

import numpy as np

from ..core.graph import Graph
from ..errors import EdgecnnError
from .kernels import OPERATION_HEADERS, RUNTIME_DIR, Kernel
from .passes import ACT_CODES, Op, Program, quantized_input
from .plan import ALIGN, Plan
from .templates import (
    CONST_WEIGHTS_C,
    MODEL_C,
    MODEL_H,
    PREDICT_FN,
    PREDICT_FN_QUANTIZED,
    PREDICT_STATIC,
    WEIGHTS_FILE_C,
)

C_KEYWORDS = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
    "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
    "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef",
    "union", "unsigned", "void", "volatile", "while", "_Bool", "_Complex", "_Imaginary"}
C_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
WEIGHTS_MAGIC = b"ECW1"


def c_prefix(model_name: str, given: str | None = None) -> str:
    """The C prefix: ``given`` if it is a valid identifier (else an error), or one derived from
    the model name (non-identifier characters become '_', a leading digit gets 'm_')."""
    if given is not None:
        if not C_IDENT.match(given) or given in C_KEYWORDS:
            raise EdgecnnError(f"--name {given!r} is not a valid C identifier: use letters, "
                               "digits and '_', not starting with a digit, at most 63 "
                               "characters, not a C keyword")
        return given
    name = re.sub(r"[^A-Za-z0-9_]", "_", model_name).strip("_") or "model"
    if name[0].isdigit():
        name = "m_" + name
    name = name[:48]
    return name + "_model" if name in C_KEYWORDS else name


@dataclass
class Options:
    name: str  # C prefix
    arena: str = "static"  # "static" or "caller"
    weights: str = "const"  # "const" or "file"
    nb: int = 4  # EC_NB the packed weights were made for
    ref_only: bool = False
    portable: bool = False  # the c99 target: weights as a number list, not one long string

    def __post_init__(self):
        if self.arena not in ("static", "caller"):
            raise EdgecnnError(f"arena must be 'static' or 'caller', got {self.arena!r}")
        if self.weights not in ("const", "file"):
            raise EdgecnnError(f"weights must be 'const' or 'file', got {self.weights!r}")


@dataclass
class Blob:
    """All weights in one float32 array; ``add`` returns a tensor's offset (floats)."""

    parts: list[np.ndarray] = field(default_factory=list)
    size: int = 0

    def add(self, a: np.ndarray) -> int:
        """Float32 tensors as floats; integer ones (int8, uint8, int32) as their little-endian
        bytes, padded to whole floats (the blob holds their bit patterns)."""
        if a.dtype != np.float32 and a.dtype.kind in "iu":
            raw = np.ascontiguousarray(a, a.dtype.newbyteorder("<")).ravel().view(np.uint8)
            a = np.concatenate([raw, np.zeros(-len(raw) % 4, np.uint8)]).view("<f4")
        a = np.ascontiguousarray(a, dtype=np.float32).ravel()
        off = self.size
        pad = -len(a) % ALIGN
        self.parts.append(a)
        if pad:
            self.parts.append(np.zeros(pad, np.float32))
        self.size += len(a) + pad
        return off

    def array(self) -> np.ndarray:
        if not self.parts:
            return np.zeros(ALIGN, np.float32)
        return np.concatenate(self.parts)

    def model_id(self) -> int:
        return zlib.crc32(self.array().tobytes())


@dataclass
class Emitted:
    model_c: str
    model_h: str
    weights: np.ndarray  # the blob (written to weights.bin in file mode)
    model_id: int
    uses_fast: bool
    uses_int: bool = False  # calls the integer kernels (ec_int8.c)


def flt(x: float) -> str:
    """A float32 literal that round-trips."""
    v = float(np.float32(x))
    s = repr(v)
    if "e" not in s and "." not in s:
        s += ".0"
    return s + "f"


def emit(g: Graph, prog: Program, chosen: dict[str, Kernel], plan: Plan,
         packed: dict[str, dict[str, np.ndarray]], opt: Options, version: str) -> Emitted:
    """model.c and model.h: the kernels ``chosen`` called in order on the ``plan``'s buffers,
    reading the ``packed`` weights (all stages before this one)."""
    blob = Blob()
    external = {prog.input: "input_hwc"} if prog.external_input else {}
    _t = _tensor_names(plan, external)
    calls = []
    uses_fast = any(k.fast for k in chosen.values())
    packed_for_nb = any("vector" in k.needs for k in chosen.values())  # blocks of EC_NB
    uses_int = any(t != "float32" for t in prog.dtypes.values())
    for i, op in enumerate(prog.ops):
        kernel = chosen[op.name]
        calls.append(_comment(op, prog, kernel.name))
        if op.output in plan.zero_border and op.name not in plan.in_place:
            calls.append(f"    ec_zero_border(&{_t(op.output)});")
        c = CallContext([_t(v) for v in op.inputs], _t(op.output), blob, prog, plan, packed,
                        external)
        calls.append(kernel.call(op, c))
        calls.append(f"    EC_TICK({i});")
    model_id = blob.model_id()
    p = opt.name
    h, w, c = prog.input_shape
    out_floats = int(np.prod(prog.shapes[prog.output]))
    views = "\n".join(_view_c(_t(v), vw, prog.dtype(v)) for v, vw in plan.views.items())
    body = [views]
    if blob.size == 0:
        body.append("    (void)W; /* this model has no weights */")
    qin = quantized_input(prog) if prog.external_input else None
    if qin is None:
        inp = _t(prog.input)
        if prog.input in plan.zero_border:
            body.append(f"    ec_zero_border(&{inp});")
        body.append(f"    ec_load_hwc(&{inp}, input_hwc);")
        body += calls
    else:  # the first op quantizes the caller's input: skipped when it gives integers
        first = calls[:calls.index("    EC_TICK(0);")]
        n_in = int(np.prod(prog.input_shape))
        body += ["    if (input_q != NULL) {",
                 f"        ec_qcopy(input_q, {_t(qin.output)}, {n_in});",
                 "    } else {",
                 *("    " + line for line in "\n".join(first).split("\n")),
                 "    }", *calls[len(first):]]
    if prog.dtype(prog.output) == "float32":
        body.append(f"    ec_store_hwc(&{_t(prog.output)}, output);")
    else:  # an integer output: its raw values
        body.append(f"    ec_{C_SUFFIX[prog.dtype(prog.output)]}_to_float({_t(prog.output)}, "
                    f"{out_floats}, output);")
    meta = _metadata(g, prog, plan, opt, version)
    weights_check = ("    if (!ec_w_loaded) return 1; /* call " + p + "_load_weights first */\n"
                     if opt.weights == "file" else "")
    if qin is None:
        predict_fn = PREDICT_FN.format(p=p, weights_check=weights_check, body="\n".join(body))
    else:
        predict_fn = PREDICT_FN_QUANTIZED.format(
            p=p, weights_check=weights_check, body="\n".join(body), n=n_in,
            t=C_TYPES[qin.attrs["dtype"]], scale=repr(qin.attrs["scale"]),
            zp=qin.attrs["zero_point"])
    src = MODEL_C.format(
        banner=_banner(g, version, plan, opt), p=p, nb=opt.nb,
        runtime_includes="".join(f'#include "{h}"\n' for h in runtime_headers(predict_fn)),
        nb_check=_nb_check(opt.nb) if packed_for_nb else "",
        weights=_weights_c(blob, opt, model_id), arena=_arena_c(plan, opt),
        h=h, w=w, c=c, out=out_floats, arena_bytes=plan.arena_bytes,
        meta=_c_string(meta),
        stdio="#include <stdio.h> /* fopen, fread: the weights file */\n"
        if opt.weights == "file" else "",
        predict=(PREDICT_STATIC.format(p=p) if opt.arena == "static" else ""),
        nops=len(prog.ops), predict_fn=predict_fn)
    hdr = MODEL_H.format(
        banner=_banner(g, version, plan, opt), p=p, P=p.upper(), h=h, w=w, c=c, out=out_floats,
        arena_bytes=plan.arena_bytes,
        predict_decl=(f"int {p}_predict(const float *input_hwc, float *output);\n"
                      if opt.arena == "static" else ""),
        stdint_include="#include <stdint.h>\n" if qin is not None else "",
        quantized_decl=(f"int {p}_predict_quantized_with_arena("
                        f"const {C_TYPES[qin.attrs['dtype']]} *input_q, float *output, "
                        "void *arena);\n" if qin is not None else ""),
        load_decl=(f"int {p}_load_weights(const char *path);\n" if opt.weights == "file" else ""),
        aliases=_aliases(g, opt))
    return Emitted(src, hdr, blob.array(), model_id, uses_fast, uses_int)


C_TYPES = {"uint8": "uint8_t", "int8": "int8_t", "int16": "int16_t", "int32": "int32_t"}
C_SUFFIX = {"uint8": "u8", "int8": "i8"}


def _view_c(name: str, vw, dtype: str) -> str:
    """A value's C variable: an ec_tensor view of a float buffer, or a pointer to the first
    element of a contiguous integer one."""
    if dtype == "float32":
        return (f"    ec_tensor {name} = ec_view(A, {vw.offset}, {vw.h}, {vw.w}, {vw.c}, "
                f"{vw.pad_h}, {vw.pad_w});")
    t = C_TYPES[dtype]
    return f"    {t} *const {name} = ({t} *)(void *)(A + {vw.offset});"


# ---- one op -----------------------------------------------------------------------------------

def _tensor_names(plan: Plan, external: dict[str, str]):
    """value -> its C variable: t_<name> with '.' and '-' as '_', made unique ("a.b", "a_b");
    an external value's C expression."""
    names: dict[str, str] = dict(external)
    used: set[str] = set()
    for v in plan.views:
        base = "t_" + re.sub(r"[^A-Za-z0-9_]", "_", v)
        name, k = base, 1
        while name in used:
            k += 1
            name = f"{base}_{k}"
        names[v] = name
        used.add(name)
    return names.__getitem__


def _comment(op: Op, prog: Program, algo: str) -> str:
    ins = ", ".join("x".join(map(str, prog.shapes[v])) for v in op.inputs)
    out = "x".join(map(str, prog.shapes[op.output]))
    extra = f", +{'+'.join(op.folded)}" if op.folded else ""
    act = f", {op.act}" if op.act else ""
    return f"    /* {op.name} ({op.kind}{act}{extra}): {ins} -> {out} [{algo}] */"


@dataclass
class CallContext:
    """What a kind's or kernel's C call reads: the op's value names, the weight blob, the packed
    weights, the plan's shapes and scratch, and the number format."""

    ins: list[str]  # the C variables of the op's inputs
    out: str  # the C variable of its output
    blob: Blob
    prog: Program
    plan: Plan
    packed_weights: dict[str, dict[str, np.ndarray]]  # op → weights as its kernel reads them
    # values read where the caller holds them (the model input of an integer model): the
    # C expression of their contiguous H x W x C floats
    external: dict[str, str] = field(default_factory=dict)
    flt = staticmethod(flt)

    def ptr(self, a: np.ndarray | None) -> str:
        """``W + offset`` of ``a`` placed in the weight blob (cast to the element type of an
        integer tensor); NULL for an absent tensor."""
        if a is None:
            return "NULL"
        if a.dtype == np.float32 or a.dtype.kind not in "iu":
            return f"W + {self.blob.add(a)}"
        t = C_TYPES[a.dtype.name]
        return f"(const {t} *)(const void *)(W + {self.blob.add(a)})"

    def dtype(self, value: str) -> str:
        """The element type of a value: float32, uint8 or int8."""
        return self.prog.dtype(value)

    def packed(self, op: Op) -> dict[str, np.ndarray]:
        return self.packed_weights[op.name]

    def shape(self, value: str) -> tuple[int, int, int]:
        return self.prog.shapes[value]

    def scratch(self, op: Op) -> tuple[int, int]:
        """(offset, floats) of the op's planned scratch in the arena."""
        return self.plan.scratch[op.name]

    @staticmethod
    def act_code(function: str | None) -> str:
        return ACT_CODES[function]

    def fused_act(self, op: Op, slope: bool = True) -> str:
        """The fused activation's C arguments: code, leaky slope (and PReLU slopes pointer)."""
        args = f"{ACT_CODES[op.act]}, {flt(op.act_alpha)}"
        return f"{args}, {self.ptr(op.weights.get('act_slope'))}" if slope else args

    def flat_input(self, op: Op) -> tuple[list[str], str]:
        """(C lines, pointer) of op's input as contiguous H, W, C floats: gathered into the
        op's scratch when the input buffer has a border."""
        src = self.ins[0]
        if op.name not in self.plan.scratch:
            return [], f"{src}.data"
        off, _ = self.plan.scratch[op.name]
        return [f"    ec_store_hwc(&{src}, A + {off});"], f"A + {off}"

    @staticmethod
    def block(params: str, *calls: str, ctype: str = "ec_conv_params") -> str:
        """A C block declaring ``ctype p`` (``params``: its initializer) for calls."""
        body = "".join(f"        {c}\n" for c in calls)
        return f"    {{\n        const {ctype} p = {params};\n{body}    }}"


# ---- file pieces ------------------------------------------------------------------------------

def _banner(g: Graph, version: str, plan: Plan, opt: Options) -> str:
    h, w, c = g.input_shape
    name = g.name.replace("*/", "* /")
    return (f"/* Generated by edgecnn {version} from model '{name}' ({h}x{w}x{c} input, "
            f"{g.num_classes} outputs).\n"
            f" * Arena {plan.arena_bytes} bytes ({opt.arena}), weights {opt.weights}, "
            f"EC_NB={opt.nb}{', reference kernels only' if opt.ref_only else ''}.\n"
            f" * Do not edit: regenerate with `edgecnn compile`. */")


@functools.cache
def _declared() -> dict[str, frozenset[str]]:
    """Each operation header of the runtime -> the functions it declares."""
    return {h: frozenset(re.findall(r"\b(ec_\w+)\(", (RUNTIME_DIR / h).read_text()))
            for h in OPERATION_HEADERS}


def runtime_headers(code: str) -> list[str]:
    """The operation headers declaring the runtime functions ``code`` calls."""
    called = set(re.findall(r"\b(ec_\w+)\(", code))
    return [h for h, names in _declared().items() if called & names]


def _nb_check(nb: int) -> str:
    return (f"#if EC_NB != {nb}\n#error \"weights were packed for EC_NB={nb}: build with "
            f"-DEC_NB={nb}\"\n#endif\n")


_OCTAL = np.array([f"\\{i:03o}".encode() for i in range(256)], dtype="S4")


def string_bytes(a: np.ndarray, per_line: int = 64) -> str:
    """A float32 array as C string-literal lines of its little-endian bytes ("\\ooo" escapes).

    Compilers read a long string literal about five times faster than the same data as a
    brace list of numbers (the seed model's 29 MB: 5 s instead of 27 s with gcc)."""
    data = np.ascontiguousarray(a, "<f4").view(np.uint8)
    pad = -len(data) % per_line
    esc = _OCTAL[np.concatenate([data, np.zeros(pad, np.uint8)])].view(np.uint8)
    rows = esc.reshape(-1, 4 * per_line)
    if pad:  # the last row is shorter: emit it separately
        body = _quote_rows(rows[:-1])
        last = rows[-1][:4 * (per_line - pad)].tobytes().decode()
        return body + ("\n" if body else "") + f'"{last}"'
    return _quote_rows(rows)


def hex_words(a: np.ndarray, per_line: int = 8) -> str:
    """float32 array -> "0x3f800000u, ..." lines: the portable form (C99 guarantees string
    literals of only 4095 characters), slower to compile than :func:`string_bytes`."""
    data = np.ascontiguousarray(a, np.float32).view("<u4").astype(">u4").tobytes()
    step = 4 * per_line
    return ",\n".join("0x" + data[i:i + step].hex(",", 4).replace(",", "u,0x") + "u"
                       for i in range(0, len(data), step))


def _quote_rows(rows: np.ndarray) -> str:
    if len(rows) == 0:
        return ""
    out = np.empty((rows.shape[0], rows.shape[1] + 3), np.uint8)
    out[:, 0] = out[:, -2] = ord('"')
    out[:, 1:-2] = rows
    out[:, -1] = ord("\n")
    return out.tobytes().decode()[:-1]


def _weights_c(blob: Blob, opt: Options, model_id: int) -> str:
    n = max(blob.size, ALIGN)
    if opt.weights == "const" and opt.portable:
        return (f"/* {blob.size} floats of weights (their bit patterns) */\n"
                f"static const union {{ uint32_t u[{n}]; float f[{n}]; }} ec_w EC_ALIGN64 = "
                f"{{{{\n{hex_words(blob.array())}\n}}}};\n#define W (ec_w.f)\n")
    if opt.weights == "const":
        return CONST_WEIGHTS_C.format(floats=blob.size, n=n, bytes=4 * n,
                                      data=string_bytes(blob.array()))
    return WEIGHTS_FILE_C.format(n=n, p=opt.name, model_id=model_id)


def _arena_c(plan: Plan, opt: Options) -> str:
    if opt.arena == "caller":
        return "/* the caller provides the arena (no static arena in this build) */\n"
    return (f"/* the activation arena: {plan.arena_bytes} bytes */\n"
            f"static float ec_arena[{max(plan.arena_floats, 1)}] EC_ALIGN64;\n")


def _metadata(g: Graph, prog: Program, plan: Plan, opt: Options, version: str) -> str:
    labels = g.labels if isinstance(g.labels, str) else f"custom:{len(g.labels)}"
    return json.dumps({"name": g.name, "edgecnn": version, "input": list(g.input_shape),
                       "outputs": g.num_classes, "labels": labels,
                       "preprocessing": g.preprocessing.to_json(),
                       "arena_bytes": plan.arena_bytes, "weights": opt.weights,
                       "nb": opt.nb}, separators=(",", ":"), ensure_ascii=True)


def _c_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _aliases(g: Graph, opt: Options) -> str:
    """Generic names for programs built with one model (the predict program)."""
    pp = g.preprocessing
    p = opt.name

    def arr(v):
        return "{" + ", ".join(flt(x) for x in v) + "}"

    lines = [f"#define ec_model_{f} {p}_{f}" for f in
             ("predict_with_arena", "predict_checked", "input_shape", "output_size",
              "arena_size", "metadata", "set_threads")]
    lines += [f"#define EC_MODEL_{f} {p.upper()}_{f}" for f in
              ("INPUT_H", "INPUT_W", "INPUT_C", "OUTPUT_SIZE", "ARENA_BYTES")]
    if opt.arena == "static":
        lines.append(f"#define ec_model_predict {p}_predict")
    else:
        lines.append("#define EC_MODEL_CALLER_ARENA 1")
    if opt.weights == "file":
        lines += [f"#define ec_model_load_weights {p}_load_weights",
                  "#define EC_MODEL_WEIGHTS_FILE 1"]
    lines += [f"#define EC_MODEL_BGR {int(pp.channel_order == 'BGR')}",
              f"#define EC_MODEL_PIXEL_RANGE {arr(pp.pixel_range)}",
              f"#define EC_MODEL_MEAN {arr(pp.mean)}",
              f"#define EC_MODEL_STD {arr(pp.std)}"]
    return "\n".join(lines)


def weights_file_bytes(e: Emitted) -> bytes:
    """weights.bin: "ECW1", float count, model id, 0 (little-endian uint32), then the floats."""
    n = max(len(e.weights), ALIGN)
    data = np.zeros(n, "<f4")
    data[:len(e.weights)] = e.weights
    hdr = WEIGHTS_MAGIC + np.array([n, e.model_id, 0], "<u4").tobytes()
    return hdr + data.tobytes()


__all__ = ["CallContext", "Emitted", "Options", "c_prefix", "emit", "weights_file_bytes"]
