"""Times the fast C kernels on the seed model's convolutions, each layer alone.

Seed model dr_I256x256x3CMCMCMCMCMCMCMC1AS: 3x3 stride-1 pad-1 convolutions 256x256x3->16,
128x128x16->32, ..., 4x4x512->1024, then a 1x1 conv 2x2x1024->1000 (485 M MACs). For each
layer and each kernel that applies (direct; Winograd F(4x4, 3x3) for 3x3 layers) it prints
the best time over several repeats, GFLOP/s = 2 * MACs / time and the share of the peak
(default 238 GFLOP/s per core: 2 FMA units x 16 floats x 2 flops x 3.7 GHz on a Zen 5 core),
with 1 and 2 threads, then the sum over the layers of the faster kernel.

    python benchmarks/kernels.py [--threads 1 2] [--nb 16] [--repeats 5] [--cc gcc]
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

RUNTIME = Path(__file__).resolve().parents[1] / "src" / "edgecnn" / "runtime"
SOURCES = ("ec_conv_fast.c", "ec_winograd.c", "ec_dense_fast.c")
# (h, w, cin, cout, kernel, pad): the seed model's convolutions (input sizes)
SEED_CONVS = [(256, 256, 3, 16, 3, 1), (128, 128, 16, 32, 3, 1), (64, 64, 32, 64, 3, 1),
              (32, 32, 64, 128, 3, 1), (16, 16, 128, 256, 3, 1), (8, 8, 256, 512, 3, 1),
              (4, 4, 512, 1024, 3, 1), (2, 2, 1024, 1000, 1, 0)]
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
    if algo == "direct":
        wp = packing.pack_direct(wt, nb)
        keep.append(wp)
        return keep, lambda: lib.ec_conv2d_direct(*args, ctypes.c_void_p(wp.ctypes.data),
                                                  ctypes.c_void_p(bias.ctypes.data))
    wp = packing.pack_winograd(wt, nb)
    scratch = np.zeros(lib.ec_winograd_scratch_floats(*args), np.float32)
    keep += [wp, scratch]
    return keep, lambda: lib.ec_conv3x3_winograd(
        *args, ctypes.c_void_p(wp.ctypes.data), ctypes.c_void_p(bias.ctypes.data),
        ctypes.c_void_p(scratch.ctypes.data))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--nb", type=int, default=16, help="EC_NB (16 AVX-512, 8 AVX2, 4 NEON)")
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--cc", default="gcc")
    ap.add_argument("--cflags", default="", help="extra compiler flags, e.g. -DEC_TW=12")
    ap.add_argument("--layers", type=int, nargs="+", help="indices into the seed layers (0-7)")
    ap.add_argument("--peak", type=float, default=238.0, help="GFLOP/s of one core")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        lib = build(args.cc, args.nb, Path(tmp), args.cflags.split())
        print(f"EC_NB={args.nb}, {args.cc}; peak {args.peak:.0f} GFLOP/s per core; "
              f"best of {args.repeats}; ms and GFLOP/s (% of peak for the threads used)")
        head = f"{'layer':<22}{'MMAC':>6}"
        for t in args.threads:
            head += f" | {t}T direct{'':>14} | {t}T winograd{'':>12}"
        print(head)
        totals = {t: 0.0 for t in args.threads}
        layers = [SEED_CONVS[i] for i in args.layers] if args.layers else SEED_CONVS
        for layer in layers:
            h, w, cin, cout, k, pad = layer
            macs = h * w * cin * cout * k * k
            row = f"{h}x{w}x{cin}->{cout} {k}x{k}".ljust(22) + f"{macs / 1e6:6.1f}"
            algos = ["direct", "winograd"] if k == 3 else ["direct"]
            for t in args.threads:
                lib.omp_set_num_threads(t)
                best = float("inf")
                for algo in ("direct", "winograd"):
                    if algo not in algos:
                        row += f" | {'':>22}"
                        continue
                    keep, fn = layer_runner(lib, args.nb, layer, algo, rng)
                    s = best_time(fn, args.repeats)
                    del keep
                    gf = 2 * macs / s / 1e9
                    best = min(best, s)
                    row += f" | {s * 1e3:6.3f} {gf:6.1f} {100 * gf / (args.peak * t):5.1f}%  "
                totals[t] += best
            print(row, flush=True)
        total_macs = sum(h * w * ci * co * k * k for h, w, ci, co, k, _ in layers)
        for t in args.threads:
            gf = 2 * total_macs / totals[t] / 1e9
            print(f"sum of the faster kernel per layer, {t} thread(s): {totals[t] * 1e3:.3f} ms "
                  f"({gf:.1f} GFLOP/s, {100 * gf / (args.peak * t):.1f}% of peak)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
