"""Batch-1 speed of the seed model and AlexNet: edgecnn's compiled C vs ONNX Runtime vs PyTorch.

Runs ``edgecnn.publish.bench.bench`` on each model at 1 and 2 threads against onnxruntime and
torch (one run, same machine, same weights: He-initialized with seed 0; speed does not depend on
the values) and prints a Markdown table with a note on the machine. See benchmarks/README.md.

    python benchmarks/bench_models.py [-o results.md] [--json results.json]
        [--models NAME,...] [--threads 1,2] [--against onnxruntime,torch] [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
import sys

from edgecnn.apps.resolve import resolve
from edgecnn.core.fileio import write_text_atomic
from edgecnn.publish.bench import bench, busy_warning

MODELS = ("dr_I256x256x3CMCMCMCMCMCMCMC1AS", "alexnet")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS), help="zoo names or model files")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--against", default="onnxruntime,torch")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--min-time", type=float, default=0.5)
    p.add_argument("-o", "--output", help="write the Markdown here instead of stdout")
    p.add_argument("--json", help="also write the raw results (a list of bench JSONs)")
    args = p.parse_args(argv)
    threads = [int(t) for t in args.threads.split(",")]
    results = []
    for name in args.models.split(","):
        print(f"benchmarking {name} ...", file=sys.stderr)
        g = resolve(name, seed=0)
        results.append(bench(g, ["compiled", *args.against.split(",")], threads,
                             repeats=args.repeats, min_time=args.min_time, model_name=name))
    text = markdown(results)
    if args.output:
        write_text_atomic(args.output, text)
    else:
        print(text, end="")
    if args.json:
        write_text_atomic(args.json, json.dumps(results, indent=2) + "\n")
    return 0


def markdown(results: list[dict]) -> str:
    lines = ["| model | M MACs | backend | threads | ms/frame (median) | ms/frame (min) | "
             "GFLOP/s | compiled / this | max abs diff vs ORT |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        for e in r["entries"]:
            lines.append(_row(r, e))
    busy = [b for b in map(busy_warning, results) if b]
    note = machine_note(results[0]) + ("\n\n" + busy[0].replace("warning:", "**Warning**:")
                                       if busy else "")
    return "\n".join(lines) + "\n\n" + note + "\n"


def _row(r: dict, e: dict) -> str:
    head = f"| {r['model']} | {r['total_macs'] / 1e6:,.0f} | {e['backend']} | {e['threads']} |"
    if not e["available"]:
        return head + f" {e['reason']} | | | | |"
    ratio = "" if e["ratio"] is None else f"{e['ratio']:.2f}"
    diff = e["details"].get("max_abs_diff")
    diff_text = "" if diff is None or e["backend"] == "onnxruntime" else f"{diff:.1e}"
    return head + (f" {e['ms_median']:.2f} | {e['ms_min']:.2f} | {e['gflops']:.1f} | {ratio} |"
                   f" {diff_text} |")


def machine_note(r: dict) -> str:
    m, v, s = r["machine"], r["versions"], r["settings"]
    peers = ", ".join(f"{k} {v[k]}" for k in ("onnxruntime", "torch", "numpy") if v.get(k))
    return (f"Machine: {m['cpu']}, {m['usable_cores']} usable cores ({m['arch']}, "
            f"SIMD: {', '.join(m['simd']) or 'none detected'}), {m['os']}; edgecnn "
            f"{v['edgecnn']}, {peers}, Python {v['python']}; {r['date']}; 1-minute load "
            f"average {_load(m)}.\n"
            f"Batch 1, float32; {s['repeats']} interleaved rounds after {s['warmup']} warm-up "
            f"runs, each backend timed for at least {s['min_time_s']} s. GFLOP/s = 2 x MACs / "
            "median time. compiled / this < 1 means edgecnn's compiled model is faster than "
            "that backend.")


def _load(m: dict) -> str:
    load = m.get("load_average_1min") or {}
    return f"{load.get('before')} before, {load.get('after')} after"


if __name__ == "__main__":
    sys.exit(main())
