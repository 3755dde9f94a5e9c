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

import json
import re
import zlib
from dataclasses import dataclass, field

import numpy as np

from ..core.graph import Graph
from ..errors import EdgecnnError
from .passes import ACT_CODES, Op, Program
from .plan import ALIGN, Plan
from .templates import CONST_WEIGHTS_C, MODEL_C, MODEL_H, PREDICT_STATIC, WEIGHTS_FILE_C

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


def flt(x: float) -> str:
    """A float32 literal that round-trips."""
    v = float(np.float32(x))
    s = repr(v)
    if "e" not in s and "." not in s:
        s += ".0"
    return s + "f"


def emit(g: Graph, prog: Program, plan: Plan, opt: Options, version: str) -> Emitted:
    blob = Blob()
    _t = _tensor_names(plan)
    calls = []
    uses_fast = False
    for i, op in enumerate(prog.ops):
        algo = plan.algos[op.name]
        uses_fast |= algo not in ("ref", "vector")
        calls.append(_comment(op, prog, algo))
        if op.output in plan.zero_border and op.name not in plan.in_place:
            calls.append(f"    ec_zero_border(&{_t(op.output)});")
        calls.append(_call(op, prog, plan, algo, blob, opt, _t))
        calls.append(f"    EC_TICK({i});")
    model_id = blob.model_id()
    p = opt.name
    h, w, c = prog.input_shape
    out_floats = int(np.prod(prog.shapes[prog.output]))
    views = "\n".join(
        f"    ec_tensor {_t(v)} = ec_view(A, {vw.offset}, {vw.h}, {vw.w}, {vw.c}, "
        f"{vw.pad_h}, {vw.pad_w});" for v, vw in plan.views.items())
    inp = _t(prog.input)
    body = [views]
    if blob.size == 0:
        body.append("    (void)W; /* this model has no weights */")
    if prog.input in plan.zero_border:
        body.append(f"    ec_zero_border(&{inp});")
    body.append(f"    ec_load_hwc(&{inp}, input_hwc);")
    body += calls
    body.append(f"    ec_store_hwc(&{_t(prog.output)}, output);")
    meta = _metadata(g, prog, plan, opt, version)
    src = MODEL_C.format(
        banner=_banner(g, version, plan, opt), p=p, nb=opt.nb,
        fast_include='#include "ec_fast.h"\n' if uses_fast else "",
        nb_check=_nb_check(opt.nb) if uses_fast else "",
        weights=_weights_c(blob, opt, model_id), arena=_arena_c(plan, opt),
        h=h, w=w, c=c, out=out_floats, arena_bytes=plan.arena_bytes,
        meta=_c_string(meta), body="\n".join(body),
        stdio="#include <stdio.h> /* fopen, fread: the weights file */\n"
        if opt.weights == "file" else "",
        predict=(PREDICT_STATIC.format(p=p) if opt.arena == "static" else ""),
        nops=len(prog.ops),
        weights_check=("    if (!ec_w_loaded) return 1; /* call " + p + "_load_weights first */\n"
                       if opt.weights == "file" else ""))
    hdr = MODEL_H.format(
        banner=_banner(g, version, plan, opt), p=p, P=p.upper(), h=h, w=w, c=c, out=out_floats,
        arena_bytes=plan.arena_bytes,
        predict_decl=(f"int {p}_predict(const float *input_hwc, float *output);\n"
                      if opt.arena == "static" else ""),
        load_decl=(f"int {p}_load_weights(const char *path);\n" if opt.weights == "file" else ""),
        aliases=_aliases(g, opt))
    return Emitted(src, hdr, blob.array(), model_id, uses_fast)


# ---- one op -----------------------------------------------------------------------------------

def _tensor_names(plan: Plan):
    """value -> its C variable: t_<name> with '.' and '-' as '_', made unique ("a.b", "a_b")."""
    names: dict[str, str] = {}
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


def _ptr(blob: Blob, a: np.ndarray | None) -> str:
    return "NULL" if a is None else f"W + {blob.add(a)}"


def _conv_params(op: Op, slope: str) -> str:
    a = op.attrs
    kh, kw = a["kernel"]
    sh, sw = a["stride"]
    dh, dw = a.get("dilation", (1, 1))
    t, l, b, r = a["padding"]
    return (f"{{{kh}, {kw}, {sh}, {sw}, {dh}, {dw}, {t}, {l}, {b}, {r}, {a.get('groups', 1)}, "
            f"{ACT_CODES[op.act]}, {flt(op.act_alpha)}, {slope}}}")


def _call(op: Op, prog: Program, plan: Plan, algo: str, blob: Blob, opt: Options,
          _t) -> str:
    ins = [_t(v) for v in op.inputs]
    out = _t(op.output)
    k = op.kind
    wt = op.weights
    if k in ("conv2d", "binary_conv2d"):
        slope = _ptr(blob, wt.get("act_slope"))
        params = f"        const ec_conv_params p = {_conv_params(op, slope)};\n"
        if k == "binary_conv2d" and algo == "bits":
            off, _ = plan.scratch[op.name]
            call = (f"ec_binary_conv2d_bits(&p, &{ins[0]}, &{out}, "
                    f"{_ptr(blob, pack_sign_bits(wt['weight']))}, {_ptr(blob, wt['scale'])}, "
                    f"{_ptr(blob, wt.get('bias'))}, A + {off});")
        elif k == "binary_conv2d":
            wsign = np.where(wt["weight"] > 0, 1.0, -1.0)
            call = (f"ec_binary_conv2d_ref(&p, &{ins[0]}, &{out}, {_ptr(blob, wsign)}, "
                    f"{_ptr(blob, wt['scale'])}, {_ptr(blob, wt.get('bias'))});")
        else:
            call = _conv_call(op, algo, ins[0], out, blob, opt, plan)
        return f"    {{\n{params}        {call}\n    }}"
    if k in ("maxpool", "avgpool"):
        a = op.attrs
        pad = ", ".join(map(str, a["padding"]))
        params = (f"        const ec_conv_params p = {{{a['kernel'][0]}, {a['kernel'][1]}, "
                  f"{a['stride'][0]}, {a['stride'][1]}, 1, 1, {pad}, 1, EC_ACT_NONE, 0.0f, "
                  f"NULL}};\n")
        fn = f"ec_{k}" + ("_ref" if algo == "ref" else "")  # ec_pool.c's or the reference
        call = (f"{fn}(&p, &{ins[0]}, &{out});" if k == "maxpool" else
                f"{fn}(&p, &{ins[0]}, &{out}, {int(a['count_include_pad'])});")
        return f"    {{\n{params}        {call}\n    }}"
    if k == "global_avgpool":
        return f"    ec_global_avgpool_ref(&{ins[0]}, &{out});"
    if k == "dense":
        return _dense_call(op, algo, ins[0], out, prog, plan, blob, opt)
    if k == "activation":
        f = op.attrs["function"]
        alpha = flt(op.attrs["slope"]) if f == "leaky_relu" else "0.0f"
        return (f"    ec_activation_ref(&{ins[0]}, &{out}, {ACT_CODES[f]}, {alpha}, "
                f"{_ptr(blob, wt.get('slope'))});")
    if k == "scale_bias":
        return (f"    ec_scale_bias_ref(&{ins[0]}, &{out}, {_ptr(blob, wt.get('scale'))}, "
                f"{_ptr(blob, wt.get('bias'))});")
    if k == "softmax":
        return f"    ec_softmax_ref(&{ins[0]}, &{out});"
    if k == "fake_quant":
        a = op.attrs
        return (f"    ec_fake_quant_ref(&{ins[0]}, &{out}, {float(a['scale'])!r}, "
                f"{a['zero_point']}, {a['qmin']}, {a['qmax']});")
    if k == "lrn":
        a = op.attrs
        return (f"    ec_lrn_ref(&{ins[0]}, &{out}, {a['size']}, {flt(a['alpha'])}, "
                f"{flt(a['beta'])}, {flt(a['k'])});")
    if k == "add":
        slope = _ptr(blob, wt.get("act_slope"))
        act = f"{ACT_CODES[op.act]}, {flt(op.act_alpha)}, {slope}"
        fn = "ec_add_fast" if algo == "add_fast" else "ec_add_ref"
        lines = [f"    {fn}(&{ins[0]}, &{ins[1]}, &{out}, "
                 f"{act if len(ins) == 2 else 'EC_ACT_NONE, 0.0f, NULL'});"]
        for j, v in enumerate(ins[2:], start=2):
            a = act if j == len(ins) - 1 else "EC_ACT_NONE, 0.0f, NULL"
            lines.append(f"    {fn}(&{out}, &{v}, &{out}, {a});")
        return "\n".join(lines)
    if k == "concat":
        lines, c0 = [], 0
        for v, name in zip(ins, op.inputs, strict=True):
            lines.append(f"    ec_copy_channels(&{v}, &{out}, {c0});")
            c0 += prog.shapes[name][2]
        return "\n".join(lines)
    if k == "flatten":
        return f"    ec_store_hwc(&{ins[0]}, {out}.data);"
    raise EdgecnnError(f"not yet supported by the compiler: layer {op.name!r} of kind {k!r}")


def _conv_call(op: Op, algo: str, src: str, out: str, blob: Blob, opt: Options,
               plan: Plan) -> str:
    """The conv2d kernel call for the chosen algorithm (kernels.choose decides)."""
    wt = op.weights
    bias = _ptr(blob, wt.get("bias"))
    if algo == "ref":
        return f"ec_conv2d_ref(&p, &{src}, &{out}, {_ptr(blob, wt['weight'])}, {bias});"
    from . import packing

    if algo == "direct":
        w = _ptr(blob, packing.pack_direct(wt["weight"], opt.nb))
        return f"ec_conv2d_direct(&p, &{src}, &{out}, {w}, {bias});"
    if algo == "depthwise":
        w = _ptr(blob, packing.pack_depthwise(wt["weight"], opt.nb))
        return f"ec_conv2d_depthwise(&p, &{src}, &{out}, {w}, {bias});"
    if algo == "winograd":
        w = _ptr(blob, packing.pack_winograd(wt["weight"], opt.nb))
        off, n = plan.scratch[op.name]
        # the planned scratch must match the kernel's own count (else: error 3, no overrun)
        return (f"if (ec_winograd_scratch_floats(&p, &{src}, &{out}) > {n}u) return 3;\n"
                f"        ec_conv3x3_winograd(&p, &{src}, &{out}, {w}, {bias}, A + {off});")
    raise AssertionError(algo)


def _dense_call(op: Op, algo: str, src: str, out: str, prog: Program, plan: Plan, blob: Blob,
                opt: Options) -> str:
    wt = op.weights
    n_in = int(np.prod(prog.shapes[op.inputs[0]]))
    units = op.attrs["units"]
    bias = _ptr(blob, wt.get("bias"))
    lines = []
    x = f"{src}.data"
    if op.name in plan.scratch:  # the input has a border: gather it into contiguous scratch
        off, _ = plan.scratch[op.name]
        lines.append(f"    ec_store_hwc(&{src}, A + {off});")
        x = f"A + {off}"
    act = f"{ACT_CODES[op.act]}, {flt(op.act_alpha)}"
    if algo == "dense_fast":
        from . import packing

        w = _ptr(blob, packing.pack_dense(wt["weight"], opt.nb))
        lines.append(f"    ec_dense_fast({n_in}, {units}, {x}, {out}.data, {w}, {bias}, {act});")
    else:
        w = _ptr(blob, wt["weight"])
        lines.append(f"    ec_dense_ref({n_in}, {units}, {x}, {out}.data, {w}, {bias}, {act});")
    return "\n".join(lines)


def pack_sign_bits(w_oihw: np.ndarray) -> np.ndarray:
    """Weight signs as bits for ec_binary_conv2d_bits: (O, I, kh, kw) -> [O][kh][kw][words]
    little-endian 64-bit words (bit b of word j: input channel 64 j + b, 1 = positive), returned
    as their float32 bit patterns (two per word) to sit in the weight blob."""
    o, i, kh, kw = w_oihw.shape
    words = -(-i // 64)
    bits = np.zeros((o, kh, kw, words * 64), np.uint8)
    bits[..., :i] = (np.asarray(w_oihw) > 0).transpose(0, 2, 3, 1)
    packed = np.packbits(bits, axis=-1, bitorder="little")  # (o, kh, kw, words * 8) bytes
    return np.ascontiguousarray(packed).view("<f4")


def scratch_floats(op: Op, algo: str, prog: Program, views: dict, nb: int = 4,
                   openmp: bool = True) -> int:
    """Kernel scratch an op needs (the memory planner adds it to the arena)."""
    if op.kind == "dense":
        vw = views[op.inputs[0]]
        return vw.h * vw.w * vw.c if (vw.pad_h or vw.pad_w) else 0
    if algo == "bits":  # the input's signs, [h][w][ceil(c / 64)] 64-bit words
        h, w, c = prog.shapes[op.inputs[0]]
        return h * w * -(-c // 64) * 2
    if algo == "winograd":  # the kernel's own count, mirrored in Python by its packer
        from . import packing

        return int(packing.winograd_scratch_floats(prog.shapes[op.inputs[0]],
                                                   prog.shapes[op.output], nb, openmp))
    return 0


# ---- file pieces ------------------------------------------------------------------------------

def _banner(g: Graph, version: str, plan: Plan, opt: Options) -> str:
    h, w, c = g.input_shape
    name = g.name.replace("*/", "* /")
    return (f"/* Generated by edgecnn {version} from model '{name}' ({h}x{w}x{c} input, "
            f"{g.num_classes} outputs).\n"
            f" * Arena {plan.arena_bytes} bytes ({opt.arena}), weights {opt.weights}, "
            f"EC_NB={opt.nb}{', reference kernels only' if opt.ref_only else ''}.\n"
            f" * Do not edit: regenerate with `edgecnn compile`. */")


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
    data = np.ascontiguousarray(a, np.float32).astype(">f4").tobytes()
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


__all__ = ["Emitted", "Options", "c_prefix", "emit", "scratch_floats",
           "weights_file_bytes"]
