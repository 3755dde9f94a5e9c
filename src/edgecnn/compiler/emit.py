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

from ..errors import EdgecnnError
from ..graph import Graph
from .passes import ACT_CODES, Op, Program
from .plan import ALIGN, Plan

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
    calls = []
    uses_fast = False
    for i, op in enumerate(prog.ops):
        algo = plan.algos[op.name]
        uses_fast |= algo != "ref"
        calls.append(_comment(op, prog, algo))
        if op.output in plan.zero_border and op.name not in plan.in_place:
            calls.append(f"    ec_zero_border(&{_t(op.output)});")
        calls.append(_call(op, i, prog, plan, algo, blob, opt))
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
        predict=(PREDICT_STATIC.format(p=p) if opt.arena == "static" else ""),
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

def _t(value: str) -> str:
    return "t_" + re.sub(r"[^A-Za-z0-9_]", "_", value)


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


def _call(op: Op, i: int, prog: Program, plan: Plan, algo: str, blob: Blob,
          opt: Options) -> str:
    ins = [_t(v) for v in op.inputs]
    out = _t(op.output)
    k = op.kind
    wt = op.weights
    if k in ("conv2d", "binary_conv2d"):
        slope = _ptr(blob, wt.get("act_slope"))
        params = f"        const ec_conv_params p = {_conv_params(op, slope)};\n"
        if k == "binary_conv2d":
            wsign = np.where(wt["weight"] > 0, 1.0, -1.0)
            call = (f"ec_binary_conv2d_ref(&p, &{ins[0]}, &{out}, {_ptr(blob, wsign)}, "
                    f"{_ptr(blob, wt['scale'])});")
        else:
            call = _conv_call(op, algo, ins[0], out, blob, opt, plan)
        return f"    {{\n{params}        {call}\n    }}"
    if k in ("maxpool", "avgpool"):
        a = op.attrs
        pad = ", ".join(map(str, a["padding"]))
        params = (f"        const ec_conv_params p = {{{a['kernel'][0]}, {a['kernel'][1]}, "
                  f"{a['stride'][0]}, {a['stride'][1]}, 1, 1, {pad}, 1, EC_ACT_NONE, 0.0f, "
                  f"NULL}};\n")
        call = (f"ec_maxpool_ref(&p, &{ins[0]}, &{out});" if k == "maxpool" else
                f"ec_avgpool_ref(&p, &{ins[0]}, &{out}, {int(a['count_include_pad'])});")
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
        lines = [f"    ec_add_ref(&{ins[0]}, &{ins[1]}, &{out}, "
                 f"{act if len(ins) == 2 else 'EC_ACT_NONE, 0.0f, NULL'});"]
        for j, v in enumerate(ins[2:], start=2):
            a = act if j == len(ins) - 1 else "EC_ACT_NONE, 0.0f, NULL"
            lines.append(f"    ec_add_ref(&{out}, &{v}, &{out}, {a});")
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


def scratch_floats(op: Op, algo: str, prog: Program, views: dict, nb: int = 4,
                   openmp: bool = True) -> int:
    """Kernel scratch an op needs (the memory planner adds it to the arena)."""
    if op.kind == "dense":
        vw = views[op.inputs[0]]
        return vw.h * vw.w * vw.c if (vw.pad_h or vw.pad_w) else 0
    if algo == "winograd":
        return winograd_scratch_floats(prog.shapes[op.inputs[0]][2], prog.shapes[op.output], nb,
                                       openmp)
    return 0


# ec_winograd.c's chunking constants (EC_WINO_CHUNK_FLOATS, EC_MAX_THREADS, EC_TW)
WINO_CHUNK_FLOATS = 96 * 1024
WINO_MAX_THREADS = 4
WINO_TILE_WIDTHS = (6, 8)  # EC_TW: 8 with AVX-512 or AArch64, else 6


def winograd_scratch_floats(cin: int, out_shape: tuple, nb: int, openmp: bool) -> int:
    """ec_winograd_scratch_floats(), computed here because the arena size is fixed at compile
    time: the largest over the tile widths a build may pick (a safe bound). The generated
    code compares it with the kernel's own count and fails with code 3 rather than overrun;
    tests/test_compiler_cc.py checks the two agree."""
    def blocks(n, b):
        return -(-n // b)

    cout = out_shape[2]
    coutp = blocks(cout, nb) * nb
    ntiles = blocks(out_shape[0], 4) * blocks(out_shape[1], 4)
    best = 0
    for tw in WINO_TILE_WIDTHS:
        tc = max(WINO_CHUNK_FLOATS // (36 * (cin + coutp)) // tw * tw, tw)
        tc = min(tc, blocks(ntiles, tw) * tw)
        nt = min(blocks(ntiles, tc), WINO_MAX_THREADS if openmp else 1)
        best = max(best, nt * 36 * tc * (cin + coutp))
    return best


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
             ("predict_with_arena", "input_shape", "output_size", "arena_size", "metadata",
              "set_threads")]
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


MODEL_C = """{banner}
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "model.h"
#include "ec_ref.h"
{fast_include}#ifdef EC_OPENMP
#include <omp.h>
#endif

{nb_check}#if defined(__GNUC__) || defined(__clang__)
#define EC_ALIGN64 __attribute__((aligned(64)))
#else
#define EC_ALIGN64
#endif

{weights}
{arena}
void {p}_input_shape(int *h, int *w, int *c) {{ *h = {h}; *w = {w}; *c = {c}; }}
int {p}_output_size(void) {{ return {out}; }}
size_t {p}_arena_size(void) {{ return {arena_bytes}u; }}
const char *{p}_metadata(void) {{
    return {meta};
}}

void {p}_set_threads(int n) {{
#ifdef EC_OPENMP
    if (n > 0) omp_set_num_threads(n);
#else
    (void)n;
#endif
}}

/* input_hwc: the preprocessed H x W x C input; output: {out} floats; arena: {arena_bytes}
 * bytes, float-aligned (64-byte alignment is faster). Returns 0; 1 if the weights are not loaded;
 * 3 if a kernel wants more scratch than planned (a compiler bug, reported instead of overrun). */
int {p}_predict_with_arena(const float *input_hwc, float *output, void *arena) {{
    float *A = (float *)arena;
{weights_check}{body}
    return 0;
}}
{predict}"""

CONST_WEIGHTS_C = """/* {floats} floats of weights: their little-endian bytes, one string literal */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) \\
    && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the weights are stored little-endian; this target is big-endian"
#endif
static const union {{ unsigned char bytes[{bytes}]; float f[{n}]; }} ec_w EC_ALIGN64 = {{
{data}
}};
#define W (ec_w.f)
"""

PREDICT_STATIC = """
int {p}_predict(const float *input_hwc, float *output) {{
    return {p}_predict_with_arena(input_hwc, output, ec_arena);
}}
"""

WEIGHTS_FILE_C = """/* weights: {n} floats read from weights.bin by {p}_load_weights */
static float ec_w[{n}] EC_ALIGN64;
static int ec_w_loaded;
#define W ec_w
#define EC_MODEL_ID {model_id}u

static uint32_t ec_le32(const unsigned char *b) {{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}}

/* Returns 0 on success, 1 if the file cannot be opened, 2 if it is not this model's weights
 * file, 3 if it is truncated. The floats are little-endian, as on every supported target. */
int {p}_load_weights(const char *path) {{
    unsigned char hdr[16];
    FILE *f = fopen(path, "rb");
    size_t got;
    if (!f) return 1;
    if (fread(hdr, 1, 16, f) != 16 || hdr[0] != 'E' || hdr[1] != 'C' || hdr[2] != 'W'
        || hdr[3] != '1' || ec_le32(hdr + 4) != {n}u || ec_le32(hdr + 8) != EC_MODEL_ID) {{
        fclose(f);
        return 2;
    }}
    got = fread(ec_w, sizeof(float), {n}, f);
    fclose(f);
    if (got != {n}) return 3;
    ec_w_loaded = 1;
    return 0;
}}
"""

MODEL_H = """{banner}
#ifndef {P}_MODEL_H
#define {P}_MODEL_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {{
#endif

#define {P}_INPUT_H {h}
#define {P}_INPUT_W {w}
#define {P}_INPUT_C {c}
#define {P}_OUTPUT_SIZE {out}
#define {P}_ARENA_BYTES {arena_bytes}

{predict_decl}int {p}_predict_with_arena(const float *input_hwc, float *output, void *arena);
void {p}_input_shape(int *h, int *w, int *c);
int {p}_output_size(void);
size_t {p}_arena_size(void);
const char *{p}_metadata(void);
void {p}_set_threads(int n);
{load_decl}
#ifdef __cplusplus
}}
#endif

/* generic names for a program built with one model (predict.c defines EC_MODEL_ALIASES) */
#ifdef EC_MODEL_ALIASES
{aliases}
#endif

#endif
"""


def weights_file_bytes(e: Emitted) -> bytes:
    """weights.bin: "ECW1", float count, model id, 0 (little-endian uint32), then the floats."""
    n = max(len(e.weights), ALIGN)
    data = np.zeros(n, "<f4")
    data[:len(e.weights)] = e.weights
    hdr = WEIGHTS_MAGIC + np.array([n, e.model_id, 0], "<u4").tobytes()
    return hdr + data.tobytes()


__all__ = ["Emitted", "Options", "c_prefix", "emit", "scratch_floats",
           "weights_file_bytes"]
