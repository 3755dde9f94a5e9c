"""Labelled image sets on disk, and the image transforms for evaluation and training.

Layouts understood (a folder given to ``eval``, ``train`` or ``retarget``):
- class folders: ``<root>/<class>/*.JPEG`` (ImageNet's ``train/`` and ``val/`` after the usual
  reorganisation; for ILSVRC2012 models the class folders are WNIDs);
- a split root holding ``train/`` or ``val/`` of that form (``--data imagenet`` then uses
  ``imagenet/val`` for evaluation and ``imagenet/train`` for training);
- the flat validation folder ``ILSVRC2012_val_*.JPEG`` with ``LOC_val_solution.csv`` beside it
  (or in its parent): ``ImageId,PredictionString`` where the first word is the WNID;
- a flat folder of ``<WNID>_<anything>.JPEG`` files (one image per class samples).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import EdgecnnError
from .graph import Graph, Preprocessing
from .labels import class_names
from .preprocess import IMAGE_SUFFIXES

WNID_RE = re.compile(r"^n\d{8}$")
WNID_PREFIX_RE = re.compile(r"^(n\d{8})_")


@dataclass
class Sample:
    path: Path
    label: str  # a class id: WNID for ILSVRC2012, else the class folder's name


def _images(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def find_samples(root: str | Path, split: str = "val") -> list[Sample]:
    """All labelled images under ``root`` (see the module docstring for the layouts)."""
    root = Path(root)
    if not root.is_dir():
        raise EdgecnnError(f"{root}: no such data folder; check the path given to --data")
    if (root / split).is_dir():
        root = root / split
    for csv_path in (root / "LOC_val_solution.csv", root.parent / "LOC_val_solution.csv"):
        if csv_path.is_file() and any(f.suffix.lower() in IMAGE_SUFFIXES
                                      for f in root.iterdir() if f.is_file()):
            return _from_solution_csv(root, csv_path)
    subdirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if subdirs:
        samples = [Sample(f, d.name) for d in subdirs for f in _images(d)]
    else:
        samples = []
        for f in _images(root):
            m = WNID_PREFIX_RE.match(f.name)
            if m:
                samples.append(Sample(f, m.group(1)))
    if not samples:
        raise EdgecnnError(f"{root}: no labelled images found (expected class folders "
                           "<class>/*.JPEG, a flat folder with LOC_val_solution.csv, or "
                           "<WNID>_*.JPEG files)")
    return samples


def _from_solution_csv(root: Path, csv_path: Path) -> list[Sample]:
    truth = {}
    with open(csv_path, newline="") as f:
        for i, row in enumerate(csv.DictReader(f)):
            try:
                truth[row["ImageId"]] = row["PredictionString"].split()[0]
            except (KeyError, IndexError):
                raise EdgecnnError(f"{csv_path}: line {i + 2} is not 'ImageId,PredictionString "
                                   "<WNID> …'; fix or delete that line") from None
    samples = [Sample(f, truth[f.stem]) for f in _images(root) if f.stem in truth]
    if not samples:
        raise EdgecnnError(f"{root}: none of its images is listed in {csv_path}; put the "
                           "CSV that belongs to these images beside them")
    return samples


def label_indices(g: Graph, samples: list[Sample], where: str) -> np.ndarray:
    """Each sample's output index in the model; a label the model does not know is an error."""
    ids = [cid for cid, _ in class_names(g.labels, g.num_classes)]
    if g.labels != "ilsvrc2012" and len(g.labels) != g.num_classes:
        raise EdgecnnError(f"model {g.name!r} has {g.num_classes} outputs but "
                           f"{len(g.labels)} labels; the model file is inconsistent: re-create it"
                           )
    index = {cid: i for i, cid in enumerate(ids)}
    unknown = sorted({s.label for s in samples} - set(index))
    if unknown:
        expects = ("ILSVRC2012 WNIDs (e.g. n01440764)" if g.labels == "ilsvrc2012"
                   else f"its labels ({', '.join(ids[:5])}{', …' if len(ids) > 5 else ''})")
        raise EdgecnnError(f"{where}: class(es) {', '.join(unknown[:5])}"
                           f"{' …' if len(unknown) > 5 else ''} unknown to model {g.name!r}, "
                           f"which expects {expects}")
    return np.array([index[s.label] for s in samples], dtype=np.int64)


# ---- transforms -----------------------------------------------------------------------------

@dataclass
class Augment:
    """Training augmentation: random-resized crop, horizontal flip, colour jitter.

    The colour jitter follows Darknet: hue shift (fraction of the hue circle), saturation and
    exposure (value) scaled by a random factor in [1/s, s].
    """

    scale: tuple[float, float] = (0.08, 1.0)  # area fraction of the crop
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = True
    hue: float = 0.1
    saturation: float = 1.5
    exposure: float = 1.5

    def __call__(self, im: Image.Image, size: tuple[int, int], rng: np.random.Generator
                 ) -> np.ndarray:
        box = self._crop_box(im.width, im.height, rng)
        im = im.crop(box).resize((size[1], size[0]), Image.BILINEAR)
        if self.flip and rng.random() < 0.5:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        if self.hue or self.saturation > 1 or self.exposure > 1:
            im = self._jitter(im, rng)
        return np.asarray(im, dtype=np.uint8)

    def _crop_box(self, w: int, h: int, rng) -> tuple[int, int, int, int]:
        area = w * h
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            aspect = np.exp(rng.uniform(np.log(self.ratio[0]), np.log(self.ratio[1])))
            cw = int(round(np.sqrt(target * aspect)))
            ch = int(round(np.sqrt(target / aspect)))
            if 0 < cw <= w and 0 < ch <= h:
                x = int(rng.integers(0, w - cw + 1))
                y = int(rng.integers(0, h - ch + 1))
                return (x, y, x + cw, y + ch)
        side = min(w, h)  # fallback: the central square
        return ((w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2)

    def _jitter(self, im: Image.Image, rng) -> Image.Image:
        """HSV jitter with 256-entry lookup tables (uint8 all the way: fast in Pillow)."""
        def factor(s):
            f = rng.uniform(1, s)
            return f if rng.random() < 0.5 else 1 / f
        shift = int(round(rng.uniform(-self.hue, self.hue) * 256))
        fs = factor(self.saturation) if self.saturation > 1 else 1.0
        fv = factor(self.exposure) if self.exposure > 1 else 1.0
        i = np.arange(256)
        luts = [((i + shift) % 256).tolist(),
                np.clip(np.round(i * fs), 0, 255).astype(int).tolist(),
                np.clip(np.round(i * fv), 0, 255).astype(int).tolist()]
        h, s, v = im.convert("HSV").split()
        return Image.merge("HSV", [b.point(lut) for b, lut in zip((h, s, v), luts, strict=True)]
                           ).convert("RGB")


def input_affine(p: Preprocessing) -> tuple[np.ndarray, np.ndarray, bool]:
    """uint8 pixel → model input as ``x = pixel * a + b`` per channel (in the model's order),
    and whether the RGB channels are reversed first (BGR models)."""
    lo, hi = p.pixel_range
    std = np.asarray(p.std, np.float64)
    a = (hi - lo) / 255.0 / std
    b = (lo - np.asarray(p.mean, np.float64)) / std
    return a.astype(np.float32), b.astype(np.float32), p.channel_order == "BGR"
