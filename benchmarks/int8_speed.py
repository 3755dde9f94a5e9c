"""Integer MobileNets on one host core: the portable INT8 kernels, the fast integer kernels, and
LiteRT (XNNPACK) on the same .tflite, in ms per frame.

The three run in interleaved rounds (each round times every engine once, `--repeats` frames
each) so that a noisy neighbour or a clock change hits them alike; the table gives the minimum
and the median per frame over all rounds. Our models take the uint8 input (predict_quantized,
as LiteRT's interpreter does) and are built for `host` in a fresh cache; "portable" is the same
build with the reference kernels (every integer layer on ec_int8.c, the code before the fast
integer kernels). LiteRT runs with num_threads=1 and its default delegate (XNNPACK).

    python benchmarks/int8_speed.py [--rounds 25] [--repeats 4] [--out benchmarks/int8.md]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from edgecnn.compiler import api, targets
from edgecnn.core import reference
from edgecnn.formats.importers import import_model

DATA = Path("/work/shared/data/tflite")
MODELS = ["mobilenet_v1_0.25_128_quant.tflite", "mobilenet_v2_1.0_224_quant.tflite"]


def cpu() -> tuple[str, str]:
    """The CPU model (with its family / model numbers: a hypervisor may shorten the name) and
    its integer-relevant vector flags."""
    model = platform.processor() or platform.machine()
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    if "model name" in info:
        model = f"{info['model name']} (family {info.get('cpu family')}, model {info.get('model')})"
    flags = targets.this_machine().flags
    shown = ["avx2", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "asimddp"]
    return model, ", ".join(f"{f}={'yes' if f in flags else 'no'}" for f in shown)


def litert(path: Path):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]

    def run(q: np.ndarray) -> np.ndarray:
        it.set_tensor(inp["index"], q[None])
        it.invoke()
        return it.get_tensor(out["index"])
    return run


def time_frames(fn, q: np.ndarray, repeats: int) -> float:
    """Seconds per frame over ``repeats`` back-to-back frames."""
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn(q)
    return (time.perf_counter() - t0) / repeats


def bench(name: str, rounds: int, repeats: int, cache: Path) -> dict:
    path = DATA / name
    g = import_model(path)
    engines = {
        "portable INT8": api.compile(g, "host", threads=1, ref_kernels=True, cache_dir=cache),
        "fast int8": api.compile(g, "host", threads=1, cache_dir=cache),
    }
    rng = np.random.default_rng(0)
    q = rng.integers(0, 256, g.input_shape, dtype=np.uint8)
    runs = {k: m.predict_quantized for k, m in engines.items()}
    runs["LiteRT XNNPACK"] = litert(path)
    # the compiled models equal the reference bit for bit on this input (checked, not timed)
    first = g.layers[1].name
    x = rng.uniform(-1, 1, (1, *g.input_shape)).astype(np.float32)
    qx = reference.run(g, x, outputs=[first])[first][0]
    want = reference.predict(g, x)
    for k, m in engines.items():
        assert np.array_equal(m.predict_quantized(qx), want), f"{k} differs from the reference"
    for fn in runs.values():  # warm up
        time_frames(fn, q, 2)
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(rounds):
        for k, fn in runs.items():
            times[k].append(time_frames(fn, q, repeats) * 1e3)
    profile = engines["fast int8"].profile(x, repeats=10)
    return {"times": times, "profile": profile}


def kernel_shares(profile: list[dict]) -> str:
    total = sum(r["ms"] for r in profile)
    by: dict[str, float] = {}
    for r in profile:
        by[r["kernel"]] = by.get(r["kernel"], 0.0) + r["ms"]
    return ", ".join(f"{k} {v:.2f} ms ({100 * v / total:.0f}%)"
                     for k, v in sorted(by.items(), key=lambda kv: -kv[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=25)
    ap.add_argument("--repeats", type=int, default=4, help="frames per engine per round")
    ap.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = ap.parse_args()
    model, flags = cpu()
    lines = ["# Integer MobileNets on one core: edgecnn's integer kernels and LiteRT", "",
             "Written by `python benchmarks/int8_speed.py` (see benchmarks/README.md). "
             "\"portable INT8\": every integer layer on ec_int8.c (the build before the fast "
             "kernels); \"fast int8\": the fast integer rows; both equal the numpy reference "
             "bit for bit. The per-kernel profile runs the float entry point (quantize "
             "included) with per-op timers, so its sum exceeds the frame time.", "",
             f"CPU: {model}; {flags}; host target EC_NB={targets.get('host').nb}, 1 thread",
             f"{args.rounds} interleaved rounds x {args.repeats} frames per engine; "
             "ms per frame (uint8 input to uint8/float output)", ""]
    with tempfile.TemporaryDirectory() as tmp:
        for name in MODELS:
            r = bench(name, args.rounds, args.repeats, Path(tmp))
            t = r["times"]
            lite = statistics.median(t["LiteRT XNNPACK"])
            lines += [f"### {name}", "",
                      "| engine | min ms | median ms | median / LiteRT |",
                      "| --- | ---: | ---: | ---: |"]
            for k, v in t.items():
                med = statistics.median(v)
                lines.append(f"| {k} | {min(v):.3f} | {med:.3f} | {med / lite:.2f}x |")
            lines += ["", f"fast int8 by kernel (profile): {kernel_shares(r['profile'])}", ""]
            print("\n".join(lines[-(len(t) + 6):]), flush=True)
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
