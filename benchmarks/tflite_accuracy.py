"""edgecnn's import of the pretrained TFLite MobileNets against LiteRT, on imagenet-samples.

For each uint8 model in ``<data>/tflite``: import it (a float graph, and with ``fake_quant``
layers that round activations as LiteRT does), run edgecnn's numpy reference and LiteRT
(1 thread) on the same preprocessed pixels (central 87.5% square crop, bilinear resize, RGB),
and print top-1 / top-5, the rate at which edgecnn's top-1 equals LiteRT's, and ms/frame.
The numpy reference is the correctness oracle, not a fast runtime: its ms/frame is
reported only to size test runs (the compiled C backend is what to time).

    python benchmarks/tflite_accuracy.py [--data ../shared/data] [--limit N] [--format json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from edgecnn.core import reference
from edgecnn.core.preprocess import load_image, normalize, to_pixels
from edgecnn.formats.importers import import_model

MODELS = ["mobilenet_v1_0.25_128_quant", "mobilenet_v2_1.0_224_quant"]
BATCH = 25


def samples(data: Path, limit: int | None):
    wnids = (data / "ilsvrc2012_wnids.txt").read_text().split()
    index = {w: i for i, w in enumerate(wnids)}
    paths = sorted((data / "imagenet-samples").glob("*.JPEG"))
    if limit:
        paths = paths[:: max(1, len(paths) // limit)][:limit]
    return paths, np.array([index[p.name.split("_")[0]] for p in paths])


def topk(scores: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """top-1 / top-5 of 1001-way scores; output i >= 1 is ILSVRC2012 class i - 1."""
    best = np.argsort(-scores[:, 1:], axis=1, kind="stable")[:, :5]
    return float((best[:, 0] == truth).mean()), float((best == truth[:, None]).any(1).mean())


def run_edgecnn(g, px: np.ndarray) -> tuple[np.ndarray, float]:
    x = normalize(px, g.preprocessing)
    t = time.perf_counter()
    out = np.concatenate([reference.predict(g, x[i:i + BATCH]) for i in range(0, len(x), BATCH)])
    return out, (time.perf_counter() - t) / len(x) * 1e3


def run_litert(path: Path, px: np.ndarray) -> tuple[np.ndarray, float]:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    out = []
    t = time.perf_counter()
    for x in px:
        it.set_tensor(i, x[None])
        it.invoke()
        out.append(it.get_tensor(o)[0].astype(np.float32))
    return np.array(out), (time.perf_counter() - t) / len(px) * 1e3


def evaluate(data: Path, limit: int | None) -> list[dict]:
    paths, truth = samples(data, limit)
    rows = []
    for model in MODELS:
        path = data / "tflite" / f"{model}.tflite"
        g = import_model(path, as_float=True)
        h, w, _ = g.input_shape
        px = np.stack([to_pixels(load_image(p), g.preprocessing, (h, w)) for p in paths])
        lite, lite_ms = run_litert(path, px)
        for fake_quant in (False, True):
            gq = import_model(path, fake_quant=True) if fake_quant else g
            ours, ms = run_edgecnn(gq, px)
            top = ours.argmax(1)
            rows.append({
                "model": model, "graph": "fake_quant" if fake_quant else "float",
                "images": len(paths), "edgecnn": topk(ours, truth), "litert": topk(lite, truth),
                "agreement": float((top == lite.argmax(1)).mean()),
                "agreement_ties": float((lite[np.arange(len(top)), top] == lite.max(1)).mean()),
                "edgecnn_ms": ms, "litert_ms": lite_ms})
    return rows


def table(rows: list[dict]) -> str:
    out = ["| model | graph | images | edgecnn top-1 / top-5 | LiteRT top-1 / top-5 | "
           "top-1 agreement (with ties) | edgecnn numpy ms/frame | LiteRT ms/frame |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        out.append(f"| {r['model']} | {r['graph']} | {r['images']} | "
                   f"{r['edgecnn'][0]:.3f} / {r['edgecnn'][1]:.3f} | "
                   f"{r['litert'][0]:.3f} / {r['litert'][1]:.3f} | "
                   f"{r['agreement']:.3f} ({r['agreement_ties']:.3f}) | "
                   f"{r['edgecnn_ms']:.1f} | {r['litert_ms']:.2f} |")
    out.append("\nagreement: edgecnn's top-1 equals LiteRT's first top-scoring output; in "
               "parentheses: it is one of LiteRT's top-scoring outputs (its uint8 softmax ties).\n"
               "edgecnn ms/frame is the numpy reference interpreter (batches of "
               f"{BATCH}), a correctness oracle, not a runtime; LiteRT runs 1 thread.")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = os.environ.get("EDGECNN_DATA") or str(Path(__file__).resolve().parents[1].parent
                                                    / "shared" / "data")
    ap.add_argument("--data", default=default, help="the shared data folder")
    ap.add_argument("--limit", type=int, help="an evenly spaced subset of the images")
    ap.add_argument("--format", choices=("table", "json"), default="table")
    args = ap.parse_args(argv)
    data = Path(args.data)
    if not (data / "tflite").is_dir():
        print(f"no TFLite models under {data}: pass --data or set EDGECNN_DATA", file=sys.stderr)
        return 2
    rows = evaluate(data, args.limit)
    print(json.dumps(rows, indent=2) if args.format == "json" else table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
