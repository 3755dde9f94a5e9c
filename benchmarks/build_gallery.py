"""Build the gallery from measured cards: the seed model, AlexNet and the pretrained MobileNets.

For every model: `edgecnn bench` on this machine (compiled vs ONNX Runtime vs PyTorch, the
threads given), for the imported MobileNets `edgecnn eval` on the ImageNet sample images with
the compiled backend, then `edgecnn card`; finally `edgecnn gallery` with ELL's published
figures as a reference series. Every figure on the site is measured by this run.

Usage:  python benchmarks/build_gallery.py -o gallery-out [--threads 1,2] [--repeats 10]
Needs ../shared/data (or EDGECNN_DATA) for the MobileNets and the sample images.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ZOO = ["dr_I256x256x3CMCMCMCMCMCMCMC1AS", "alexnet"]
TFLITE = ["mobilenet_v1_0.25_128_quant", "mobilenet_v2_1.0_224_quant"]


def data_dir() -> Path:
    return Path(os.environ.get("EDGECNN_DATA") or
                Path(__file__).resolve().parents[2] / "shared" / "data")


def edgecnn(*args: str) -> None:
    cmd = [sys.executable, "-m", "edgecnn", *args]
    print("$ edgecnn " + " ".join(args), flush=True)
    subprocess.run(cmd, check=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", required=True, help="work folder (cards/, site/, json)")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--repeats", default="10")
    args = p.parse_args(argv)
    out = Path(args.output)
    data = data_dir()
    models: list[tuple[str, str]] = [(m, m) for m in ZOO]  # (name, MODEL argument)
    for name in TFLITE:
        src = data / "tflite" / f"{name}.tflite"
        if src.is_file():
            model = out / "models" / f"{name}.safetensors"
            edgecnn("import", str(src), "-o", str(model))
            models.append((name, str(model)))
        else:
            print(f"skipping {name}: {src} not found", file=sys.stderr)
    samples = data / "imagenet-samples"
    for name, model in models:
        bench = out / "json" / f"{name}-bench.json"
        edgecnn("bench", model, "--threads", args.threads, "--repeats", args.repeats,
                "-o", str(bench))
        card = ["card", model, "--bench", str(bench), "-o", str(out / "cards" / name)]
        if model.endswith(".safetensors") and samples.is_dir():
            ev = out / "json" / f"{name}-eval.json"
            edgecnn("eval", model, str(samples), "--backend", "compiled", "-o", str(ev))
            card += ["--eval", str(ev)]
        edgecnn(*card)
    ref = data / "ell_gallery.json"
    edgecnn("gallery", str(out / "cards"), "-o", str(out / "site"),
            *(["--reference", str(ref)] if ref.is_file() else []))
    return 0


if __name__ == "__main__":
    sys.exit(main())
