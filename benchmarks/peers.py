"""edgecnn's compiled C against every inference engine that installs from the package registry.

Engines: ONNX Runtime, OpenVINO, ncnn (pnnx converts), MNN (its converter), LiteRT (for models
imported from .tflite) and PyTorch; see ``edgecnn.publish.peers`` for how each gets the model.
Models: the seed model, AlexNet (both He-initialized, seed 0: speed does not depend on the
values) and the two shared MobileNets imported as float graphs; at 1 and 2 threads, batch 1.

Every engine runs the graph without its final softmax (1,000 exponentials, a few µs), so that
outputs are compared as logits: before any timing, each engine's output on the same input must
be edgecnn's numpy reference's within ``--tol`` x max(1, max |logit|), or the engine is listed
as not run with the difference. Then ``edgecnn.publish.bench`` times interleaved rounds (every
engine once per round, the order rotating). The table gives ms/frame median and min, the ratio
edgecnn / best peer of both, GFLOP/s = 2 x MACs / median time and its share of the machine's
FMA peak (``fma_peak.py``: measured, and nominal from the ISA and clock).

    python benchmarks/peers.py [--models A,B] [--threads 1,2] [--isa avx2] [--json FILE]
        [-o FILE.md] [--repeats 20] [--min-time 0.5] [--tol 1e-4]

``--isa avx2`` builds edgecnn with EDGECNN_HOST_ISA=avx2 (-march=x86-64-v3, 8-float vectors)
on an AVX-512 machine; the peers keep their own dispatch (they still use AVX-512).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
from pathlib import Path

import fma_peak

REPO = Path(__file__).resolve().parents[1]
MODELS = ("dr_I256x256x3CMCMCMCMCMCMCMC1AS", "alexnet",
          "tflite/mobilenet_v1_0.25_128_quant.tflite", "tflite/mobilenet_v2_1.0_224_quant.tflite")
PEERS = ("onnxruntime", "openvino", "ncnn", "mnn", "litert", "torch")
LABELS = {"compiled": "edgecnn", "onnxruntime": "ONNX Runtime", "openvino": "OpenVINO",
          "ncnn": "ncnn", "mnn": "MNN", "litert": "LiteRT", "torch": "PyTorch"}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.isa:  # before anything resolves the host target
        os.environ["EDGECNN_HOST_ISA"] = args.isa
    machine = describe_machine(args.isa)
    print(machine_line(machine), file=sys.stderr)
    threads = [int(t) for t in args.threads.split(",")]
    peers = [p for p in args.engines.split(",") if p]
    results, failed = [], []
    for spec in args.models.split(","):
        print(f"{spec}: converting, checking outputs, timing ...", file=sys.stderr)
        try:
            results.append(run_model(spec, peers, threads, args))
        except Exception as e:  # report the model, go on with the others
            failed.append({"model": spec, "error": f"{type(e).__name__}: {e}"})
            print(f"{spec}: FAILED: {e}", file=sys.stderr)
    doc = {"machine": machine, "tolerance": args.tol, "results": results, "failed": failed,
           "summary": [row for r in results for row in summary_rows(r, machine)]}
    text = markdown(doc)
    _write(args.output, text) if args.output else print(text, end="")
    if args.json:
        _write(args.json, json.dumps(doc, indent=2) + "\n")
    return 1 if failed else 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS),
                   help="zoo names or model files (.tflite/.onnx paths may be relative to the "
                        "shared data folder, EDGECNN_DATA or ../shared/data)")
    p.add_argument("--engines", default=",".join(PEERS), help="peers, comma-separated")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--isa", choices=("avx2", "native"), help="the ISA edgecnn's host build uses")
    p.add_argument("--repeats", type=int, default=20, help="interleaved rounds (default 20)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--min-time", type=float, default=0.5,
                   help="seconds each engine spends in the timed rounds at least")
    p.add_argument("--tol", type=float, default=1e-4,
                   help="largest max |engine - reference| / max(1, max |reference|) accepted")
    p.add_argument("-o", "--output", help="write the Markdown here instead of stdout")
    p.add_argument("--json", help="also write the results (JSON) here")
    return p


def _write(path: str, text: str) -> None:
    from edgecnn.core.fileio import write_text_atomic

    write_text_atomic(path, text)


# ---- the machine ------------------------------------------------------------------------------

def describe_machine(isa: str | None) -> dict:
    """CPU, the ISA of edgecnn's host build, and the FMA peak per core (see fma_peak)."""
    from edgecnn.compiler import targets
    from edgecnn.publish.bench import machine_info

    m = machine_info()
    host = targets.get("host")
    lanes = host.nb
    try:
        measured = fma_peak.measured_gflops(host.cflags, lanes, host.cc)
    except (OSError, RuntimeError) as e:  # no C compiler: the nominal peak only
        measured, m["peak_error"] = None, str(e)
    ghz, fpc = fma_peak.clock_ghz(), fma_peak.flop_per_cycle(lanes)
    m.update({
        "avx512": "avx512f" in m["simd"], "cpu_family_model": fma_peak.family_model(),
        "isa_requested": isa or "native",
        "host_target": {"cflags": list(host.cflags), "EC_NB": host.nb},
        "peak": {"vector_floats": lanes, "flop_per_cycle_per_core": fpc, "clock_ghz_cpuinfo": ghz,
                 "nominal_gflops_per_core": fma_peak.nominal(lanes, ghz),
                 "measured_gflops_per_core": measured,
                 "effective_clock_ghz": measured / fpc if measured else None}})
    m["peers_dispatch"] = _dispatch(m)
    return m


def machine_line(m: dict) -> str:
    pk, ht = m["peak"], m["host_target"]
    meas = f"{pk['measured_gflops_per_core']:.0f}" if pk["measured_gflops_per_core"] else "n/a"
    nominal = pk["nominal_gflops_per_core"]
    return (f"CPU: {m['cpu']} ({m['cpu_family_model']}), {m['usable_cores']} usable cores, "
            f"AVX-512: {'yes' if m['avx512'] else 'no'}. edgecnn built with "
            f"{' '.join(ht['cflags'])}, "
            f"EC_NB={ht['EC_NB']} (EDGECNN_HOST_ISA={m['isa_requested']}); {_dispatch(m)}. "
            f"FMA peak per core: measured {meas} GFLOP/s ({pk['vector_floats']}"
            f"-float FMA loop), nominal {pk['flop_per_cycle_per_core']} FLOP/cycle x "
            f"{pk['clock_ghz_cpuinfo'] or 0:.2f} GHz (/proc/cpuinfo) = "
            f"{nominal or 0:.0f} GFLOP/s")


def _dispatch(m: dict) -> str:
    if m["isa_requested"] == "avx2" and m["avx512"]:
        return ("the peers keep their own dispatch: they use AVX-512 here, edgecnn does not, "
                "and the peak is that of 8-float AVX2 FMAs")
    return "the peers use their own dispatch"


# ---- one model ------------------------------------------------------------------------------

def run_model(spec: str, peers: list[str], threads: list[int], args) -> dict:
    from edgecnn.publish.bench import bench

    g, sources, name = load_model(spec)
    return bench(g, ["compiled", *peers], threads, repeats=args.repeats, warmup=args.warmup,
                 min_time=args.min_time, model_name=name, check_tol=args.tol, sources=sources)


def load_model(spec: str):
    """(graph without its final softmax, {"tflite": path} or {}, display name)."""
    from edgecnn.apps.resolve import resolve
    from edgecnn.core.surgery import cut

    path = _data_path(spec)
    if path is None:
        g, sources, name = resolve(spec, seed=0), {}, spec
    else:
        g, name = _import_float(path), path.stem
        sources = {"tflite": str(path)} if path.suffix == ".tflite" else {}
    if g.output.kind == "softmax":
        g = cut(g, g.output.inputs[0])
    return g, sources, name


def _data_path(spec: str) -> Path | None:
    """A model file: as given, else under the shared data folder; None for a zoo name."""
    if not spec.endswith((".tflite", ".onnx", ".cfg", ".safetensors")):
        return None
    data = Path(os.environ.get("EDGECNN_DATA") or REPO.parent / "shared" / "data")
    for p in (Path(spec), data / spec):
        if p.is_file():
            return p
    raise FileNotFoundError(f"{spec}: no such file (nor under {data}; set EDGECNN_DATA)")


def _import_float(path: Path):
    """The float graph of a model file: ``as_float`` where the importer has integer graphs."""
    from edgecnn.formats.importers import import_model
    from edgecnn.formats.modelfile import load

    if path.suffix == ".safetensors":
        return load(path)
    if "as_float" in inspect.signature(import_model).parameters:
        return import_model(path, as_float=True)
    return import_model(path)  # this version imports every .tflite as a float graph


# ---- the summary and the table ------------------------------------------------------------

def summary_rows(r: dict, machine: dict) -> list[dict]:
    """Per thread count: every engine's times, the best peer, ratios, GFLOP/s, % of peak."""
    peak = machine["peak"]["measured_gflops_per_core"]
    rows = []
    for t in sorted({e["threads"] for e in r["entries"]}):
        es = {e["backend"]: e for e in r["entries"] if e["threads"] == t}
        ours = es.get("compiled")
        timed = {b: e for b, e in es.items() if e["available"] and b != "compiled"}
        row = {"model": r["model"], "threads": t, "macs": r["total_macs"],
               "ms": {b: (e["ms_median"], e["ms_min"]) for b, e in es.items() if e["available"]},
               "not_run": {b: e["reason"] for b, e in es.items() if not e["available"]},
               "best_peer": None, "ratio_median": None, "ratio_min": None,
               "gflops": {b: e["gflops"] for b, e in es.items() if e["available"]},
               "percent_of_peak": {b: 100 * e["gflops"] / (peak * t) if peak else None
                                   for b, e in es.items() if e["available"]}}
        if timed:
            best = min(timed, key=lambda b: timed[b]["ms_median"])
            row["best_peer"] = best
            if ours and ours["available"]:
                row["ratio_median"] = ours["ms_median"] / timed[best]["ms_median"]
                row["ratio_min"] = ours["ms_min"] / min(e["ms_min"] for e in timed.values())
        rows.append(row)
    return rows


def markdown(doc: dict) -> str:
    present = {b for row in doc["summary"] for b in [*row["ms"], *row["not_run"]]}
    engines = [b for b in LABELS if b in present] + sorted(present - set(LABELS))
    head = (["model", "M MACs", "threads"] + [LABELS.get(b, b) for b in engines]
            + ["best peer", "edgecnn / best (median)", "edgecnn / best (min)",
               "edgecnn GFLOP/s", "% of peak"])
    lines = ["| " + " | ".join(head) + " |",
             "|---|" + "---:|" * 2 + "---:|" * len(engines) + "---|" + "---:|" * 4]
    for row in doc["summary"]:
        lines.append(_table_row(row, engines))
    return "\n".join(lines) + "\n\n" + _notes(doc) + "\n"


def _table_row(row: dict, engines: list[str]) -> str:
    def cell(b):
        if b in row["ms"]:
            med, lo = row["ms"][b]
            return f"{_ms(med)} ({_ms(lo)})"
        return "not run" if b in row["not_run"] else ""

    def ratio(v):
        return "" if v is None else f"{v:.2f}"

    g, pct = row["gflops"].get("compiled"), row["percent_of_peak"].get("compiled")
    cells = ([row["model"], f"{row['macs'] / 1e6:,.0f}", str(row["threads"])]
             + [cell(b) for b in engines]
             + [LABELS.get(row["best_peer"], row["best_peer"] or ""), ratio(row["ratio_median"]),
                ratio(row["ratio_min"]), "" if g is None else f"{g:.1f}",
                "" if pct is None else f"{pct:.0f}%"])
    return "| " + " | ".join(cells) + " |"


def _ms(v: float) -> str:
    return f"{v:.2f}" if v >= 1 else f"{v:.3f}"


def _notes(doc: dict) -> str:
    from edgecnn.publish.bench import busy_warning

    notes = ["ms/frame, median (min) over interleaved rounds, batch 1; ratios below 1: edgecnn "
             "is faster. GFLOP/s = 2 x MACs / median time; % of peak = that / (measured FMA "
             "peak per core x threads).", machine_line(doc["machine"]) + "."]
    if doc["results"]:
        v = doc["results"][0]["versions"]
        notes.append("Versions: " + ", ".join(f"{k} {x}" for k, x in v.items() if x) + ".")
        notes.append(f"Outputs checked against edgecnn's numpy reference before timing: max abs "
                     f"difference <= {doc['tolerance']:g} x max(1, max |logit|).")
    notes += _kernel_notes(doc["results"]) + _not_run_notes(doc["summary"])
    notes += [f"Model {f['model']} failed: {f['error']}" for f in doc["failed"]]
    busy = [b for b in map(busy_warning, doc["results"]) if b]
    if busy:
        notes.append("**" + busy[0].replace("warning: ", "Taken on a loaded machine: ") + "**")
    return "\n\n".join(notes)


def _kernel_notes(results: list[dict]) -> list[str]:
    out = []
    for r in results:
        e = next((e for e in r["entries"] if e["backend"] == "compiled" and e["available"]),
                 None)
        if e and e["details"].get("kernels"):
            ks = ", ".join(f"{k} x{n}" for k, n in e["details"]["kernels"].items())
            out.append(f"Kernels chosen for {r['model']}: {ks}.")
    return out


def _not_run_notes(summary: list[dict]) -> list[str]:
    seen = {}
    for row in summary:
        for b, why in row["not_run"].items():
            seen.setdefault((row["model"], b, why), []).append(str(row["threads"]))
    return [f"Not run: {LABELS.get(b, b)} on {m} ({', '.join(t)} thread(s)): {why}"
            for (m, b, why), t in seen.items()]


if __name__ == "__main__":
    sys.exit(main())
