"""Build compiled models with AddressSanitizer + UndefinedBehaviorSanitizer and run them on
real images: any sanitizer report, crash or wrong answer is a finding.

    python scripts/sanitize_sweep.py                      # the full sweep (every zoo model,
                                                          # both shared MobileNets), ~1 h
    python scripts/sanitize_sweep.py --models d_I64x64x3CMCMBMC1AS --images 1
    python scripts/sanitize_sweep.py --json sweep.json --jobs 1

For each model × kernels (reference, fast) × target (host, c99): generate the C, build the
`predict` program with ``-fsanitize=address,undefined -fno-sanitize-recover=all -O1 -g``, run
it on ImageNet sample images (PPMs cropped and resized by the model's preprocessing) and
compare its outputs with the numpy reference. The exit status is the number of findings.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SANITIZE = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g",
            "-fno-omit-frame-pointer")
ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0:exitcode=86",
       "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1:exitcode=87"}
MARKERS = ("runtime error:", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer")


def shared_data() -> Path:
    return Path(os.environ.get("EDGECNN_DATA") or
                Path(__file__).resolve().parents[2] / "shared" / "data")


def default_models() -> list[str]:
    """Every zoo architecture, then both shared MobileNets (the TFLite files)."""
    from edgecnn import zoo

    names = list(zoo.names())
    tfl = shared_data() / "tflite"
    return names + [str(p) for p in sorted(tfl.glob("mobilenet_*.tflite"))]


def load_model(spec: str):
    from edgecnn.apps.resolve import resolve
    from edgecnn.formats.importers import import_model

    return import_model(spec) if spec.endswith(".tflite") else resolve(spec)


def write_ppm(path: Path, pixels: np.ndarray) -> Path:
    h, w, _ = pixels.shape
    path.write_bytes(f"P6\n{w} {h}\n255\n".encode() + np.ascontiguousarray(pixels).tobytes())
    return path


def run_case(g, target: str, ref_kernels: bool, images: list[Path], work: Path) -> dict:
    """Build one sanitized `predict`, run it on ``images``; returns the case's record."""
    from edgecnn.compiler import build
    from edgecnn.core import reference
    from edgecnn.core.preprocess import load_image, normalize, to_pixels

    case = {"model": g.name, "target": target, "kernels": "reference" if ref_kernels else "fast",
            "images": 0, "findings": [], "max_abs_diff": 0.0, "top1_agree": 0}
    t0 = time.perf_counter()
    gen = build.generate(g, work, target, ref_kernels=ref_kernels)
    build.build_dir(gen, library=False, program=True, opt_level="-O1", jobs=1,
                    extra_flags=SANITIZE)
    case["build_seconds"] = round(time.perf_counter() - t0, 1)
    h, w, _ = g.input_shape
    env = dict(os.environ, **ENV)
    for k, img in enumerate(images):
        px = to_pixels(load_image(img), g.preprocessing, (h, w))
        ppm = write_ppm(work / f"in{k}.ppm", px)
        out = work / f"out{k}.f32"
        r = subprocess.run([str(gen.predict), "-t", "1", "-o", str(out), str(ppm)], cwd=work,
                           env=env, capture_output=True, text=True, timeout=3600)
        report = [line for line in r.stderr.splitlines() if any(m in line for m in MARKERS)]
        if r.returncode != 0 or report:
            case["findings"].append({"image": img.name, "exit": r.returncode,
                                     "report": (report or r.stderr.splitlines()[-5:])[:5]})
            continue
        got = np.fromfile(out, np.float32)
        want = reference.predict(g, normalize(px, g.preprocessing)[None])[0]
        case["images"] += 1
        case["max_abs_diff"] = max(case["max_abs_diff"], float(np.abs(got - want).max()))
        case["top1_agree"] += int(np.argmax(got) == np.argmax(want))
    case["seconds"] = round(time.perf_counter() - t0, 1)
    return case


def sweep(models: list[str], targets: list[str], kernels: list[str], n_images: int,
          log=sys.stderr) -> list[dict]:
    images = sorted((shared_data() / "imagenet-samples").glob("*.JPEG"))[:n_images]
    if not images:
        sys.exit(f"no ImageNet samples under {shared_data()}: set EDGECNN_DATA")
    records = []
    for spec in models:
        g = load_model(spec)
        for target in targets:
            for k in kernels:
                with tempfile.TemporaryDirectory(prefix="ec-sanitize-") as d:
                    rec = run_case(g, target, k == "reference", images, Path(d))
                rec["spec"] = spec
                records.append(rec)
                print(f"{g.name} {target} {k}: {rec['images']} image(s), "
                      f"{len(rec['findings'])} finding(s), max |diff| "
                      f"{rec['max_abs_diff']:.2e}, {rec['seconds']} s", file=log, flush=True)
    return records


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", help="zoo names / ELL strings / .tflite files "
                    "(default: every zoo model and the shared MobileNets)")
    ap.add_argument("--targets", nargs="+", default=["host", "c99"])
    ap.add_argument("--kernels", nargs="+", default=["reference", "fast"])
    ap.add_argument("--images", type=int, default=2, help="real images per build")
    ap.add_argument("--json", help="write the records here")
    args = ap.parse_args()
    os.environ.setdefault("EDGECNN_CACHE", tempfile.mkdtemp(prefix="ec-cache-"))
    records = sweep(args.models or default_models(), args.targets, args.kernels, args.images)
    findings = sum(len(r["findings"]) for r in records)
    print(f"{len(records)} sanitized builds, {sum(r['images'] for r in records)} runs on real "
          f"images: {findings} finding(s)")
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1))
    return min(findings, 100)


if __name__ == "__main__":
    sys.exit(main())
