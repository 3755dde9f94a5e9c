"""edgecnn's post-training quantizer on the shared images: accuracy and SQNR per range method.

1. The float MobileNet v2 1.0/224 (``import --float`` of the shared uint8 ``.tflite``) is
   quantized to int8 with the first 100 imagenet-samples images (sorted by name) as the
   calibration set, once per range method; its top-1 on the other 400 images is printed beside
   the float graph's and LiteRT's own uint8 model's (XNNPACK, 1 thread) on the same 400.
2. The seed model ``dr_I256x256x3CMCMCMCMCMCMCMC1AS`` with He-initialized weights (seed 0) is
   quantized the same way; the SQNR of its scores (the input of the softmax) is printed.

The numpy reference runs everything (slow: about 15 minutes on a loaded 2-core machine).

    python benchmarks/quantize_accuracy.py [--data ../shared/data] [--methods minmax,entropy]
        [--eval N] [--format json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from edgecnn.apps import quantize as ptq
from edgecnn.apps.resolve import resolve
from edgecnn.core import reference
from edgecnn.core.preprocess import load_image, normalize, to_pixels
from edgecnn.formats.importers import import_model

V2 = "mobilenet_v2_1.0_224_quant"
SEED = "dr_I256x256x3CMCMCMCMCMCMCMC1AS"
CALIBRATION = 100
BATCH = 20


def pixels(g, paths) -> np.ndarray:
    h, w, _ = g.input_shape
    return np.stack([to_pixels(load_image(p), g.preprocessing, (h, w)) for p in paths])


def batches(g, px: np.ndarray):
    for i in range(0, len(px), BATCH):
        yield normalize(px[i:i + BATCH], g.preprocessing)


def top1(g, px: np.ndarray, truth: np.ndarray, offset: int) -> float:
    scores = np.concatenate([reference.predict(g, x) for x in batches(g, px)])
    return float((scores[:, offset:].argmax(1) == truth).mean())


def litert_top1(path: Path, px: np.ndarray, truth: np.ndarray) -> float:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=1)
    it.allocate_tensors()
    i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
    best = []
    for x in px:
        it.set_tensor(i, x[None])
        it.invoke()
        best.append(it.get_tensor(o)[0, 1:].argmax())
    return float((np.array(best) == truth).mean())


def main(argv=None) -> int:
    default = os.environ.get("EDGECNN_DATA") or Path(__file__).resolve().parents[2] / "shared" \
        / "data"
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path(default))
    p.add_argument("--methods", default=",".join(ptq.METHODS))
    p.add_argument("--eval", type=int, default=400, help="evaluation images (of the 400)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    args = p.parse_args(argv)
    wnids = (args.data / "ilsvrc2012_wnids.txt").read_text().split()
    paths = sorted((args.data / "imagenet-samples").glob("*.JPEG"))
    truth = np.array([wnids.index(f.name.split("_")[0]) for f in paths])
    cal, rest = slice(0, CALIBRATION), slice(CALIBRATION, CALIBRATION + args.eval)
    tfl = args.data / "tflite" / f"{V2}.tflite"
    gf = import_model(tfl, as_float=True)
    px = pixels(gf, paths)
    out = {"images": {"calibration": CALIBRATION, "evaluation": len(truth[rest])},
           "litert_uint8_top1": litert_top1(tfl, px[rest], truth[rest]),
           "float_top1": top1(gf, px[rest], truth[rest], 1), "methods": {}}
    seed = resolve(SEED)
    spx = pixels(seed, paths[cal])
    # calibrate once per model; each method only chooses ranges from the same statistics
    prepared = {}
    for name, g, images in (("v2", gf, px[cal]), ("seed", seed, spx)):
        f = ptq.prepare(g)
        prepared[name] = (f, ptq.calibrate(f, batches(f, images)), normalize(images[:8],
                                                                             g.preprocessing))
    for method in args.methods.split(","):
        opts = ptq.Options(method=method)
        r = {}
        for name, (f, stats, held) in prepared.items():
            gi, b = ptq.build(f, stats, opts)
            rep = ptq.report(f, gi, b, held)
            r[f"{name}_logits_sqnr_db"] = rep["logits_sqnr_db"]
            r[f"{name}_int_weight_bytes"] = int(sum(v.nbytes for v in gi.weights.values()))
            if name == "v2":
                r["v2_top1"] = top1(gi, px[rest], truth[rest], 1)
        out["methods"][method] = r
        print(method, r, file=sys.stderr, flush=True)
    out["v2_float_weight_bytes"] = int(sum(v.size * 4 for v in gf.weights.values()))
    out["seed_float_weight_bytes"] = int(sum(v.size * 4 for v in seed.weights.values()))
    if args.format == "json":
        print(json.dumps(out, indent=1))
        return 0
    print(f"MobileNet v2 1.0/224 on {out['images']['evaluation']} images (calibrated on "
          f"{CALIBRATION}): LiteRT uint8 top-1 {out['litert_uint8_top1']:.3f}, float graph "
          f"{out['float_top1']:.3f}")
    print("| method | v2 int8 top-1 | v2 logits SQNR dB | seed logits SQNR dB |")
    print("| --- | --- | --- | --- |")
    for m, r in out["methods"].items():
        print(f"| {m} | {r['v2_top1']:.3f} | {r['v2_logits_sqnr_db']:.1f} | "
              f"{r['seed_logits_sqnr_db']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
