"""edgecnn's per-layer times beside ONNX Runtime's, for one float model at one thread count.

Both run the same graph (without its final softmax): edgecnn's compiled model through its
profile entry point (per-op timers), ONNX Runtime on ``edgecnn export``'s ONNX with its own
profiler (``enable_profiling``: per-node kernel times). The exporter names each ONNX node after
the edgecnn layer it comes from (a layer may become several nodes: LRN, a fused activation),
so the nodes' times are summed per layer. Rounds alternate between the two; each layer's time
is its minimum over the rounds. Prints the layers sorted by what edgecnn loses (ms), the sums,
and the totals by kernel.

    python benchmarks/layer_profile.py MODEL [--threads 1] [--rounds 5] [--frames 20]

MODEL: a zoo name or model file; .tflite paths may be relative to the shared data folder (as
peers.py; quantized files import as float graphs). Needs the `bench` (or `onnx`) extra.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile

import numpy as np
import peers


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--frames", type=int, default=20, help="frames per round and engine")
    args = p.parse_args(argv)

    import onnxruntime as ort

    from edgecnn.compiler.api import compile as ec_compile
    from edgecnn.formats.onnx_export import export

    g, _, name = peers.load_model(args.model)
    x = np.random.default_rng(0).random((1, *g.input_shape), np.float32)
    m = ec_compile(g, threads=args.threads)
    ours: dict[str, float] = {}
    kernel_of: dict[str, str] = {}
    theirs: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.onnx")
        export(g, path)
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = args.threads, 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        layers = [l.name for l in g.layers]
        for r in range(args.rounds):
            rows = m.profile(x, repeats=args.frames)
            for row in rows:
                ours[row["layer"]] = min(ours.get(row["layer"], 1e9), row["ms"])
                kernel_of[row["layer"]] = row["kernel"]
            so.enable_profiling, so.profile_file_prefix = True, os.path.join(tmp, f"ort{r}")
            sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
            feed = {sess.get_inputs()[0].name: x.transpose(0, 3, 1, 2).copy()}
            for _ in range(3):
                sess.run(None, feed)
            for _ in range(args.frames):
                sess.run(None, feed)
            per = _ort_layers(sess.end_profiling(), layers, args.frames)
            for k, v in _onto(per, ours, g).items():
                theirs[k] = min(theirs.get(k, 1e9), v)
    _print(name, args.threads, ours, theirs, kernel_of)
    return 0


def _ort_layers(trace: str, layers: list[str], frames: int) -> dict[str, float]:
    """ms per frame of each edgecnn layer: its nodes' kernel times over the last `frames` runs
    (ORT names fused nodes after their first node; a node is matched to the longest layer
    name it starts with)."""
    with open(trace) as f:
        events = json.load(f)
    runs = [e for e in events if e.get("name") == "model_run"]
    start = runs[-frames]["ts"] if len(runs) >= frames else 0
    by_len = sorted(layers, key=len, reverse=True)
    out: dict[str, float] = collections.defaultdict(float)
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time") or e["ts"] < start:
            continue
        node = e["name"][: -len("_kernel_time")]
        layer = next((l for l in by_len if node.startswith(l)), None)
        out[layer or "(other)"] += e["dur"] / 1000 / frames
    return out


def _onto(per: dict[str, float], ours: dict[str, float], g) -> dict[str, float]:
    """ORT's times per layer moved onto edgecnn's ops: a layer edgecnn fused into the one it
    reads (an activation after a convolution; ORT names the fused node after either) counts as
    that one."""
    known = {l.name for l in g.layers}
    out: dict[str, float] = collections.defaultdict(float)
    for name, ms in per.items():
        while name not in ours and name in known and g.layer(name).inputs:
            name = g.layer(name).inputs[0]
        out[name] += ms
    return out


def _print(name: str, threads: int, ours: dict, theirs: dict, kernel_of: dict) -> None:
    names = list(dict.fromkeys([*ours, *theirs]))
    rows = sorted(names, key=lambda n: ours.get(n, 0) - theirs.get(n, 0), reverse=True)
    print(f"{name}, {threads} thread(s): ms per frame per layer, min over rounds "
          f"(edgecnn profile timers; ONNX Runtime profiler kernel times)")
    print(f"{'layer':44s} {'kernel':14s} {'edgecnn':>8s} {'ORT':>8s} {'diff':>8s}")
    for n in rows:
        a, b = ours.get(n), theirs.get(n)
        fa = f"{a:8.3f}" if a is not None else "       -"
        fb = f"{b:8.3f}" if b is not None else "       -"
        d = f"{(a or 0) - (b or 0):+8.3f}"
        print(f"{n[-44:]:44s} {kernel_of.get(n, ''):14s} {fa} {fb} {d}")
    print(f"{'sum':59s} {sum(ours.values()):8.3f} {sum(theirs.values()):8.3f}")
    by = collections.defaultdict(lambda: [0.0, 0.0])
    for n in names:
        by[kernel_of.get(n, "(ORT only)")][0] += ours.get(n, 0)
        by[kernel_of.get(n, "(ORT only)")][1] += theirs.get(n, 0)
    print("by edgecnn kernel: " + ", ".join(f"{k} {a:.3f} vs {b:.3f}" for k, (a, b) in
                                            sorted(by.items(), key=lambda kv: -kv[1][0])))


if __name__ == "__main__":
    sys.exit(main())
