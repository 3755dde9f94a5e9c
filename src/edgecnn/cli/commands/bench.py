"""`edgecnn bench MODEL`: batch-1 speed of the compiled model against its peers, one run."""

import json
import os

from ...apps.resolve import resolve
from ...core.fileio import write_text_atomic
from ...errors import EdgecnnError
from ...publish.bench import BACKENDS, bench, format_table

HELP = "time batch-1 inference: compiled vs ONNX Runtime vs PyTorch on this machine"


def add_arguments(p):
    p.add_argument("model", help="model file, zoo name or ELL architecture string, or a .tflite "
                                 "file (imported: an integer graph for a quantized file)")
    p.add_argument("--threads", default="1", help="thread counts, comma-separated (e.g. 1,2)")
    p.add_argument("--against", default="onnxruntime,torch",
                   help=f"peer backends, comma-separated, from {', '.join(BACKENDS[1:])}; "
                        "'none' times the compiled model alone")
    p.add_argument("--no-compiled", action="store_true", help="time the peers only")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--repeats", type=int, default=20, help="timed rounds (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    p.add_argument("--min-time", type=float, default=0.3,
                   help="seconds each backend spends in the timed rounds at least (default 0.3)")
    p.add_argument("--profile", action="store_true",
                   help="per-layer times of the compiled model, when it provides them")
    p.add_argument("--seed", type=int, default=0,
                   help="weight seed when MODEL is an architecture (He initialization)")
    p.add_argument("--tflite", help="the .tflite file MODEL was imported from: LiteRT runs it "
                                    "(as integers, for an integer graph)")
    p.add_argument("-o", "--output", help="also write the JSON result to this file")


def run(args) -> int:
    backends = _backends(args)
    threads = _ints(args.threads)
    tflite = args.tflite or (args.model if str(args.model).endswith(".tflite") else None)
    if tflite and not os.path.isfile(tflite):
        raise EdgecnnError(f"bench: {tflite}: no such .tflite file")
    if str(args.model).endswith(".tflite"):
        from ...formats.importers import import_model

        g = import_model(args.model)
    else:
        g = resolve(args.model, seed=args.seed)
    result = bench(g, backends, threads, repeats=args.repeats, warmup=args.warmup,
                   min_time=args.min_time, profile=args.profile,
                   sources={"tflite": tflite} if tflite else None)
    text = json.dumps(result, indent=2)
    if args.output:
        write_text_atomic(args.output, text + "\n")
    print(text if args.format == "json" else format_table(result))
    if args.profile and args.format == "table":
        print(_profile_text(result["profile"]))
    return 0


def _backends(args) -> list[str]:
    peers = [] if args.against.strip() == "none" else args.against.split(",")
    backends = ([] if args.no_compiled else ["compiled"]) + peers
    if not backends:
        raise EdgecnnError("bench: nothing to time (--no-compiled and --against none)")
    return backends


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise EdgecnnError(f"bench: --threads takes integers separated by commas, got {text!r}"
                           ) from None


def _profile_text(prof: dict) -> str:
    if not prof.get("available"):
        return f"profile: {prof.get('reason', 'not available')}"
    lines = [f"per-layer times of the compiled model ({prof['threads']} thread(s)):"]
    for row in prof["layers"]:
        lines.append("  " + "  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                                      for k, v in row.items()))
    return "\n".join(lines)
