"""Training input pipeline throughput: images/s per worker process (decode + augment + normalize).

On real hardware the JPEG decode and augmentation, not the GPU, often bounds training speed:
this measures what one data-loading worker delivers (uint8 pixels; normalization runs on
the training device) at the seed model's 256x256 input, and what
N workers deliver together through the same torch DataLoader `edgecnn train` uses, so the
workers a GPU needs can be estimated:

    workers needed ≈ GPU images/s ÷ images/s per worker

Usage:  python benchmarks/input_pipeline.py [DATA_DIR] [--workers 1,2] [--images 200]
DATA_DIR defaults to ../shared/data/imagenet-samples (real ILSVRC2012 JPEGs, <WNID>_*.JPEG).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from edgecnn.core.datasets import find_samples, label_indices
from edgecnn.train.loop import RECIPES, _collate, _TrainSet
from edgecnn.zoo import get

SEED_MODEL = "dr_I256x256x3CMCMCMCMCMCMCMC1AS"


def default_data() -> Path:
    root = Path(os.environ.get("EDGECNN_DATA") or Path(__file__).resolve().parents[2] /
                "shared" / "data")
    return root / "imagenet-samples"


def single_process(ds, n: int) -> float:
    """Images/s of one process doing everything itself (what one worker can deliver)."""
    t0 = time.perf_counter()
    for i in range(n):
        ds[i % len(ds)]
    return n / (time.perf_counter() - t0)


def loader(ds, n: int, workers: int, batch: int = 32) -> float:
    import torch

    order = [i % len(ds) for i in range(n)]
    dl = torch.utils.data.DataLoader(ds, batch_size=batch, sampler=order, num_workers=workers,
                                     collate_fn=_collate)
    it = iter(dl)
    first = next(it)  # worker start-up is not throughput
    t0 = time.perf_counter()
    count = 0
    for b in it:
        count += len(b[1])
    del first
    return count / (time.perf_counter() - t0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("data", nargs="?", default=str(default_data()))
    p.add_argument("--workers", default="1,2", help="DataLoader worker counts to try")
    p.add_argument("--images", type=int, default=200)
    p.add_argument("--json", help="also write the results as JSON")
    args = p.parse_args(argv)
    if not Path(args.data).is_dir():
        print(f"{args.data}: no such folder (give an ImageNet-layout folder)", file=sys.stderr)
        return 2
    g = get(SEED_MODEL)
    samples = find_samples(args.data, "train")
    targets = label_indices(g, samples, args.data)
    ds = _TrainSet(g, samples, targets, RECIPES["ell"], epoch=0, train=True)
    results = {"model": SEED_MODEL, "input": list(g.input_shape), "data": args.data,
               "images": args.images, "cpu": os.cpu_count(),
               "single_process_images_per_second": single_process(ds, args.images),
               "loader": {}}
    print(f"decode + random-resized crop + flip + HSV jitter to "
          f"{g.input_shape[0]}x{g.input_shape[1]}, {len(samples)} source images")
    rate = results["single_process_images_per_second"]
    print(f"  one process (decode + augment, uint8):{rate:7.1f} images/s")
    for w in (int(x) for x in args.workers.split(",")):
        rate = loader(ds, args.images, w)
        results["loader"][w] = rate
        print(f"  DataLoader {w} worker{'s' if w > 1 else ' '}: {rate:7.1f} images/s "
              f"({rate / w:.1f} per worker)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
