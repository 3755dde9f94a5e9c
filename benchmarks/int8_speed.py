"""Integer MobileNets on one and two host cores: the portable INT8 kernels, the fast integer
kernels, and LiteRT (XNNPACK) on the same .tflite, in ms per frame.

Every engine runs in a process of its own, at each thread count, and the rounds are
interleaved: each round asks every engine in turn to time `--repeats` frames, so that a noisy
neighbour or a clock change hits them alike; the table gives the minimum and the median per
frame over all rounds. Own processes, because thread pools sharing one process fight: LiteRT's
pthreadpool workers and the compiled model's OpenMP threads each spin-wait between jobs, and
with two of each on two cores a waiting engine's spinning threads take the cores the other
needs (measured: 0.5 ms frames becoming 130 ms). Our models take the uint8 input
(predict_quantized, as LiteRT's interpreter does) and are built for `host` in a fresh cache;
"portable" is the same build with the reference kernels (every integer layer on ec_int8.c, the
code before the fast integer kernels), timed at one thread. LiteRT runs with num_threads equal
to ours and its default delegate (XNNPACK). ONNX Runtime, when installed (the `bench` extra),
runs two int8 models with intra-op threads equal to ours: "ORT QDQ export", edgecnn's integer
graph exported as QDQ ONNX (`edgecnn export`), and "ORT quantize_static", the float graph of
the same .tflite exported to ONNX and quantized by onnxruntime.quantization.quantize_static
(QDQ, per-channel int8 weights, uint8 activations, MinMax calibration on 8 random inputs: a
speed figure, its accuracy is not measured). Both take the float input (NCHW) and quantize it
themselves, which our uint8-input timings do not include: about 0.01 ms of MobileNet v1's and
0.03 ms of v2's frame, at our kernels' speed.

    python benchmarks/int8_speed.py [--rounds 25] [--repeats 4] [--threads 1,2]
        [--models A.tflite,B.tflite] [--data DIR] [--out benchmarks/int8.md]

DIR holds the shared tflite/ folder: $EDGECNN_DATA, else ../shared/data beside the repository.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from edgecnn.compiler import api, targets
from edgecnn.core import reference
from edgecnn.formats.importers import import_model

MODELS = ["mobilenet_v1_0.25_128_quant.tflite", "mobilenet_v2_1.0_224_quant.tflite"]
ENGINES = ["portable INT8", "fast int8", "LiteRT XNNPACK", "ORT QDQ export", "ORT quantize_static"]
ORT_ENGINES = ENGINES[3:]


def default_data() -> Path:
    env = os.environ.get("EDGECNN_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


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


def litert(path: Path, threads: int):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=threads)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]

    def run(q: np.ndarray) -> np.ndarray:
        it.set_tensor(inp["index"], q[None])
        it.invoke()
        return it.get_tensor(out["index"])
    return run


def onnxruntime_int8(path: Path, g, engine: str, threads: int, tmp: Path):
    """ONNX Runtime on edgecnn's QDQ export of the integer graph, or on its own quantize_static
    of the float graph; both take float NCHW input."""
    import onnxruntime as ort

    from edgecnn.formats.onnx_export import export

    if engine == "ORT QDQ export":
        onnx_path = export(g, tmp / "qdq.onnx")
    else:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            QuantFormat,
            QuantType,
            quantize_static,
        )

        float_path = export(import_model(path, as_float=True), tmp / "float.onnx")
        name = ort.InferenceSession(str(float_path)).get_inputs()[0].name
        rng = np.random.default_rng(1)
        h, w, c = g.input_shape

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.left = [rng.uniform(-1, 1, (1, c, h, w)).astype(np.float32)
                             for _ in range(8)]

            def get_next(self):
                return {name: self.left.pop()} if self.left else None

        onnx_path = tmp / "ort_static.onnx"
        quantize_static(str(float_path), str(onnx_path), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    first = g.layers[1].attrs  # the input's quantize: its scale and zero point
    feeds: dict = {}  # the float input of each uint8 input, converted once (not timed)

    def run(q: np.ndarray) -> np.ndarray:
        if id(q) not in feeds:
            x = (q.astype(np.float32) - first["zero_point"]) * first["scale"]
            feeds[id(q)] = {name: np.ascontiguousarray(x.transpose(2, 0, 1)[None])}
        return sess.run(None, feeds[id(q)])[0]
    return run


def ort_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def time_frames(fn, q: np.ndarray, repeats: int) -> float:
    """Seconds per frame over ``repeats`` back-to-back frames."""
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn(q)
    return (time.perf_counter() - t0) / repeats


def compiled(g, threads: int, cache: Path, portable: bool):
    return api.compile(g, "host", threads=threads, ref_kernels=portable, cache_dir=cache)


def worker(conn, path: Path, engine: str, threads: int, cache: Path) -> None:
    """One engine in its own process: answers each request for n frames with ms per frame."""
    g = import_model(path)
    if engine == "LiteRT XNNPACK":
        fn = litert(path, threads)
    elif engine in ORT_ENGINES:
        work = cache / f"{engine.replace(' ', '_')}-{threads}"
        work.mkdir(exist_ok=True)
        fn = onnxruntime_int8(path, g, engine, threads, work)
    else:
        fn = compiled(g, threads, cache, engine == "portable INT8").predict_quantized
    q = np.random.default_rng(0).integers(0, 256, g.input_shape, dtype=np.uint8)
    time_frames(fn, q, 2)  # warm up
    conn.send("ready")
    while (n := conn.recv()) is not None:
        conn.send(time_frames(fn, q, n) * 1e3)


def check_and_profile(g, cache: Path) -> list[dict]:
    """The compiled models equal the reference bit for bit (checked, not timed); the fast
    build's per-op profile at one thread."""
    rng = np.random.default_rng(0)
    first = g.layers[1].name
    x = rng.uniform(-1, 1, (1, *g.input_shape)).astype(np.float32)
    qx = reference.run(g, x, outputs=[first])[first][0]
    want = reference.predict(g, x)
    for portable in (True, False):
        for threads in (1, 2):
            m = compiled(g, threads, cache, portable)
            assert np.array_equal(m.predict_quantized(qx), want), \
                f"{'portable' if portable else 'fast'} at {threads} threads differs"
    return compiled(g, 1, cache, False).profile(x, repeats=10)


def bench(path: Path, threads: list[int], rounds: int, repeats: int, cache: Path) -> dict:
    g = import_model(path)
    profile = check_and_profile(g, cache)
    ctx = mp.get_context("spawn")
    runs = {}  # (engine, threads) -> (process, connection)
    for t in threads:
        for e in ENGINES:
            if e == "portable INT8" and t != 1:
                continue  # the baseline of the fast kernels: one thread is enough
            if e in ORT_ENGINES and not ort_available():
                continue
            parent, child = ctx.Pipe()
            p = ctx.Process(target=worker, args=(child, path, e, t, cache), daemon=True)
            p.start()
            runs[e, t] = (p, parent)
    for _, conn in runs.values():
        assert conn.recv() == "ready"
    times: dict = {k: [] for k in runs}
    for _ in range(rounds):
        for k, (_, conn) in runs.items():
            # the slow portable build: fewer frames a round, as long as the others' rounds
            conn.send(1 if k[0] == "portable INT8" else repeats)
            times[k].append(conn.recv())
    for p, conn in runs.values():
        conn.send(None)
        p.join()
    return {"times": times, "profile": profile}


def kernel_shares(profile: list[dict]) -> str:
    total = sum(r["ms"] for r in profile)
    by: dict[str, float] = {}
    for r in profile:
        by[r["kernel"]] = by.get(r["kernel"], 0.0) + r["ms"]
    return ", ".join(f"{k} {v:.2f} ms ({100 * v / total:.0f}%)"
                     for k, v in sorted(by.items(), key=lambda kv: -kv[1]))


def table(name: str, r: dict, threads: list[int]) -> list[str]:
    t = r["times"]
    lines = [f"### {name}", "",
             "| engine | threads | min ms | median ms | median / LiteRT (same threads) |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for n in threads:
        lite = statistics.median(t["LiteRT XNNPACK", n])
        for (e, k), v in t.items():
            if k == n:
                med = statistics.median(v)
                lines.append(f"| {e} | {n} | {min(v):.3f} | {med:.3f} | {med / lite:.2f}x |")
    return lines + ["", f"fast int8 by kernel (profile, 1 thread): {kernel_shares(r['profile'])}",
                    ""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=25)
    ap.add_argument("--repeats", type=int, default=4, help="frames per engine per round")
    ap.add_argument("--threads", default="1,2", help="thread counts, comma-separated")
    ap.add_argument("--models", default=",".join(MODELS), help="tflite files, comma-separated")
    ap.add_argument("--data", type=Path, default=None, help="the shared data folder")
    ap.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = ap.parse_args()
    threads = [int(n) for n in args.threads.split(",")]
    data = (args.data or default_data()) / "tflite"
    model, flags = cpu()
    load = os.getloadavg()[0]
    lines = ["# Integer MobileNets on one and two cores: edgecnn's integer kernels and LiteRT", "",
             "Written by `python benchmarks/int8_speed.py` (see benchmarks/README.md). "
             "\"portable INT8\": every integer layer on ec_int8.c (the build before the fast "
             "kernels); \"fast int8\": the fast integer rows; both equal the numpy reference "
             "bit for bit (at 1 and 2 threads). Each engine runs in its own process. The "
             "per-kernel profile runs the float entry point (quantize included) with per-op "
             "timers, so its sum exceeds the frame time.", "",
             f"CPU: {model}; {flags}; {os.cpu_count()} logical cores; host target "
             f"EC_NB={targets.get('host').nb}",
             f"{args.rounds} interleaved rounds x {args.repeats} frames per engine (portable: 1); "
             "ms per frame (uint8 input to uint8/float output)", ""]
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            r = bench(data / name, threads, args.rounds, args.repeats, Path(tmp))
            part = table(name, r, threads)
            print("\n".join(part), flush=True)
            lines += part
    lines.append(f"1-minute load average: {load:.2f} before, {os.getloadavg()[0]:.2f} after "
                 "(other work on the machine slows every engine alike).")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
