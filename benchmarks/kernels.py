"""Times the fast C kernels on the seed model's convolutions, each layer alone.

Seed model dr_I256x256x3CMCMCMCMCMCMCMC1AS: 3x3 stride-1 pad-1 convolutions 256x256x3->16,
128x128x16->32, ..., 4x4x512->1024, then a 1x1 conv 2x2x1024->1000 (485 M MACs). For each
layer and each kernel that applies (direct; Winograd F(4x4, 3x3) for 3x3 layers, F(2x2, 5x5)
for 5x5 ones) it prints
the best time over several repeats, GFLOP/s = 2 * MACs / time and the share of the peak
(default 238 GFLOP/s per core: 2 FMA units x 16 floats x 2 flops x 3.7 GHz on a Zen 5 core),
with 1 and 2 threads, then the sum over the layers. direct_f16 is the direct kernel with
half-precision weights (half the weight bytes). Each layer runs alone, so its weights may sit
in the last-level cache, unlike in a whole model whose weights exceed it.

    python benchmarks/kernels.py [--threads 1 2] [--nb 16] [--repeats 30] [--rounds 3] [--cc gcc]
                                 [--net seed|alexnet] [--layers 0 1 ...]
"""

from __future__ import annotations

import argparse
import ctypes
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edgecnn.compiler import packing
from edgecnn.compiler.kernels import conv_algorithm

RUNTIME = Path(__file__).resolve().parents[1] / "src" / "edgecnn" / "compiler" / "runtime"
SOURCES = ("ec_conv_direct.c", "ec_conv_depthwise.c", "ec_add_fast.c", "ec_winograd.c",
           "ec_dense_fast.c")
# (h, w, cin, cout, kernel, pad): the seed model's convolutions (input sizes)
SEED_CONVS = [(256, 256, 3, 16, 3, 1), (128, 128, 16, 32, 3, 1), (64, 64, 32, 64, 3, 1),
              (32, 32, 64, 128, 3, 1), (16, 16, 128, 256, 3, 1), (8, 8, 256, 512, 3, 1),
              (4, 4, 512, 1024, 3, 1), (2, 2, 1024, 1000, 1, 0)]
# AlexNet's stride-1 convolutions (conv2 5x5 on 27x27, conv3-5 3x3 on 13x13): --net alexnet
ALEXNET_CONVS = [(27, 27, 96, 256, 5, 2), (13, 13, 256, 384, 3, 1), (13, 13, 384, 384, 3, 1),
                 (13, 13, 384, 256, 3, 1)]
NETS = {"seed": SEED_CONVS, "alexnet": ALEXNET_CONVS}
EC_ACT_RELU = 1


class Tensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p)] + [(n, ctypes.c_int) for n in
                                              ("h", "w", "c", "row_stride", "pad_h", "pad_w")]


class Params(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int) for n in
                ("kh", "kw", "sh", "sw", "dh", "dw", "pad_t", "pad_l", "pad_b", "pad_r",
                 "groups", "act")] + [("act_alpha", ctypes.c_float), ("act_slope", ctypes.c_void_p)]


def build(cc: str, nb: int, tmp: Path, cflags: list[str]) -> ctypes.CDLL:
    if shutil.which(cc) is None:
        sys.exit(f"benchmarks/kernels.py: compiler {cc!r} not found")
    out = tmp / f"kernels_nb{nb}.so"
    subprocess.run([cc, "-O3", "-march=native", "-ffp-contract=fast", "-fopenmp", "-DEC_OPENMP",
                    f"-DEC_NB={nb}", "-shared", "-fPIC", *cflags,
                    *[str(RUNTIME / s) for s in SOURCES], "-o", str(out), "-lm"], check=True)
    lib = ctypes.CDLL(str(out))
    lib.ec_winograd_scratch_floats.restype = ctypes.c_size_t
    return lib


def bordered(h, w, c, pad, rng=None):
    """A zero-bordered buffer and its view; random interior when rng is given."""
    a = np.zeros((h + 2 * pad, w + 2 * pad, c), np.float32)
    if rng is not None:
        a[pad:pad + h, pad:pad + w] = rng.standard_normal((h, w, c))
    view = Tensor(a.ctypes.data + 4 * (pad * (w + 2 * pad) + pad) * c, h, w, c,
                  (w + 2 * pad) * c, pad, pad)
    return a, view


def best_time(fn, repeats: int, min_time: float = 0.004) -> float:
    """Best over `repeats` of the mean time of a batch of calls lasting >= min_time.

    Short batches and the minimum: on a machine shared with other jobs, some batches run
    without being preempted, and those measure the kernel."""
    fn()
    t0 = time.perf_counter()
    fn()
    n = max(1, int(min_time / max(time.perf_counter() - t0, 1e-6)))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def cold_time(fn, repeats: int, evict: np.ndarray) -> float:
    """Best time of single calls, each after writing `evict` (larger than the last-level
    cache) so that weights and activations come from memory, as in a whole model."""
    best = float("inf")
    for _ in range(repeats):
        evict += 1.0
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def layer_runner(lib, nb, layer, algo, rng):
    h, w, cin, cout, k, pad = layer
    src_a, src = bordered(h, w, cin, pad, rng)
    oh, ow = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    dst_a, dst = bordered(oh, ow, cout, 1)
    wt = (rng.standard_normal((cout, cin, k, k)) * np.sqrt(2 / (cin * k * k))).astype(np.float32)
    bias = np.zeros(cout, np.float32)
    p = Params(k, k, 1, 1, 1, 1, pad, pad, pad, pad, 1, EC_ACT_RELU, 0.0, None)
    args = (ctypes.byref(p), ctypes.byref(src), ctypes.byref(dst))
    keep = [src_a, dst_a, bias]  # the views point into these arrays
    if algo in ("direct", "direct_f16"):
        half = algo == "direct_f16"
        wp = packing.pack_direct(wt, nb, "float16" if half else "float32")
        keep.append(wp)
        fn = lib.ec_conv2d_direct_f16 if half else lib.ec_conv2d_direct
        return keep, lambda: fn(*args, ctypes.c_void_p(wp.ctypes.data),
                                ctypes.c_void_p(bias.ctypes.data))
    wp = packing.pack_winograd(wt, nb)
    scratch = np.zeros(lib.ec_winograd_scratch_floats(*args), np.float32)
    keep += [wp, scratch]
    wino = getattr(lib, f"ec_conv{k}x{k}_winograd")
    return keep, lambda: wino(
        *args, ctypes.c_void_p(wp.ctypes.data), ctypes.c_void_p(bias.ctypes.data),
        ctypes.c_void_p(scratch.ctypes.data))


def layer_macs(layer) -> int:
    h, w, cin, cout, k, _ = layer
    return h * w * cin * cout * k * k


ALGOS = ("direct", "winograd", "direct_f16")  # the table's columns for each thread count


def algorithms(layer, f16: bool = True) -> list[str]:
    """Kernels timed on a layer (direct_f16: half-precision weights, other numerics)."""
    return [a for a in ALGOS if (a != "winograd" or layer[4] in packing.WINOGRAD_FORMS)
            and (f16 or a != "direct_f16")]


def measure(lib, args, layers, rng) -> dict:
    """{(layer index, algo, threads): best seconds} over args.rounds rounds of the table.

    Rounds go through every cell in turn, so a burst of load from other jobs spoils one
    round's cells, not all measurements of one cell."""
    best: dict = {}
    evict = np.zeros((64 << 20) // 4, np.float32) if args.cold else None
    for _ in range(args.rounds):
        for i, layer in enumerate(layers):
            for algo in algorithms(layer, args.f16):
                keep, fn = layer_runner(lib, args.nb, layer, algo, rng)
                for t in args.threads:
                    lib.omp_set_num_threads(t)
                    s = (cold_time(fn, args.repeats, evict) if args.cold
                         else best_time(fn, args.repeats))
                    best[i, algo, t] = min(best.get((i, algo, t), s), s)
                del keep
    return best


def report(args, layers, best) -> None:
    def cell(s, macs, t):
        gf = 2 * macs / s / 1e9
        return f" | {s * 1e3:6.3f} {gf:6.1f} {100 * gf / (args.peak * t):5.1f}%  "

    cols = ALGOS if args.f16 else ALGOS[:2]
    head = f"{'layer':<22}{'MMAC':>6}"
    for t in args.threads:
        head += "".join(f" | {f'{t}T {a}':<22}" for a in cols)
    print(head)
    faster = {t: 0.0 for t in args.threads}  # the faster kernel of each layer
    chosen = {t: 0.0 for t in args.threads}  # the kernel conv_algorithm picks
    for i, layer in enumerate(layers):
        h, w, cin, cout, k, _ = layer
        attrs = {"kernel": (k, k), "stride": (1, 1), "dilation": (1, 1), "groups": 1}
        pick = conv_algorithm(attrs, (h, w, cin), (h, w, cout), args.nb)
        row = f"{h}x{w}x{cin}->{cout} {k}x{k}".ljust(22) + f"{layer_macs(layer) / 1e6:6.1f}"
        for t in args.threads:
            for algo in cols:
                s = best.get((i, algo, t))
                row += f" | {'':>22}" if s is None else cell(s, layer_macs(layer), t)
            faster[t] += min(best[i, a, t] for a in algorithms(layer, f16=False))
            chosen[t] += best[i, pick, t]
        print(row)
    total_macs = sum(layer_macs(layer) for layer in layers)
    for t in args.threads:
        for what, total in (("the kernel conv_algorithm picks", chosen[t]),
                            ("the faster float32 kernel", faster[t])):
            gf = 2 * total_macs / total / 1e9
            print(f"sum over the layers, {t} thread(s), {what}: {total * 1e3:.3f} ms "
                  f"({gf:.1f} GFLOP/s effective, {100 * gf / (args.peak * t):.1f}% of peak)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--nb", type=int, default=16, help="EC_NB (16 AVX-512, 8 AVX2, 4 NEON)")
    ap.add_argument("--repeats", type=int, default=30, help="timed batches per cell and round")
    ap.add_argument("--rounds", type=int, default=1, help="passes over the table (best kept)")
    ap.add_argument("--cc", default="gcc")
    ap.add_argument("--cflags", default="", help="extra compiler flags, e.g. -DEC_TW=12")
    ap.add_argument("--net", choices=sorted(NETS), default="seed", help="the layers' network")
    ap.add_argument("--layers", type=int, nargs="+", help="indices into the network's layers")
    ap.add_argument("--cold", action="store_true",
                    help="evict the caches (64 MB written) before every timed call")
    ap.add_argument("--no-f16", dest="f16", action="store_false",
                    help="skip the direct kernel with half-precision weights")
    ap.add_argument("--peak", type=float, default=238.0, help="GFLOP/s of one core")
    args = ap.parse_args(argv)
    net = NETS[args.net]
    layers = [net[i] for i in args.layers] if args.layers else net
    with tempfile.TemporaryDirectory() as tmp:
        lib = build(args.cc, args.nb, Path(tmp), args.cflags.split())
        print(f"EC_NB={args.nb}, {args.cc}; peak {args.peak:.0f} GFLOP/s per core; best of "
              f"{args.repeats} x {args.rounds}; ms, GFLOP/s (2 MACs / time; Winograd's are "
              f"effective), % of the peak of the threads used")
        best = measure(lib, args, layers, np.random.default_rng(0))
    report(args, layers, best)
    return 0


if __name__ == "__main__":
    sys.exit(main())
