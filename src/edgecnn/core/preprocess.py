"""Images to model inputs, with Pillow and numpy: decode, crop, resize, scale, normalize."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ImageError
from .graph import Preprocessing

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".gif", ".tif", ".tiff",
                  ".webp")
_RESAMPLE = {"bilinear": Image.BILINEAR, "nearest": Image.NEAREST, "bicubic": Image.BICUBIC}


def load_image(path: str | os.PathLike) -> Image.Image:
    """Decode an image file to RGB; a missing or corrupt file is one ImageError naming it."""
    try:
        with Image.open(path) as im:
            im.load()
            return im.convert("RGB")
    except FileNotFoundError:
        raise ImageError(f"{path}: no such image file; check the path") from None
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError,
            SyntaxError, EOFError, IndexError, TypeError, ZeroDivisionError, struct.error) as e:
        # Pillow's plugins raise all of these on malformed files (SyntaxError: a broken PNG
        # chunk, found by fuzzing; struct.error: short headers)
        raise ImageError(f"{path}: cannot decode image ({e}); the file is corrupt or "
                         "not an image: re-save it as JPEG or PNG") from None


def crop_box(width: int, height: int, p: Preprocessing) -> tuple[float, float, float, float]:
    """The (left, top, right, bottom) region of the image the resize policy keeps."""
    if p.resize == "stretch":
        return (0.0, 0.0, float(width), float(height))
    if p.resize == "center_crop":
        side = min(width, height) * p.crop_fraction
        cw = ch = side
    else:  # central_fraction
        cw, ch = width * p.crop_fraction, height * p.crop_fraction
    left, top = (width - cw) / 2, (height - ch) / 2
    return (left, top, left + cw, top + ch)


def to_pixels(im: Image.Image, p: Preprocessing, size: tuple[int, int]) -> np.ndarray:
    """Crop and resize to ``size`` (H, W); uint8 H x W x 3 in RGB order."""
    h, w = size
    box = crop_box(im.width, im.height, p)
    # integer crop boxes as TF-slim and torchvision take them
    box = tuple(int(round(v)) for v in box)
    im = im.crop(box).resize((w, h), _RESAMPLE[p.interpolation])
    return np.asarray(im, dtype=np.uint8)


def normalize(pixels: np.ndarray, p: Preprocessing) -> np.ndarray:
    """uint8 RGB (..., H, W, 3) → float32 model input in the model's channel order."""
    lo, hi = p.pixel_range
    x = pixels.astype(np.float32) * np.float32((hi - lo) / 255.0) + np.float32(lo)
    if p.channel_order == "BGR":
        x = x[..., ::-1]
    x = (x - np.asarray(p.mean, np.float32)) / np.asarray(p.std, np.float32)
    return np.ascontiguousarray(x, dtype=np.float32)


def preprocess(im: Image.Image, p: Preprocessing, size: tuple[int, int]) -> np.ndarray:
    """A decoded image → H x W x 3 float32 model input."""
    return normalize(to_pixels(im, p, size), p)


def list_images(paths: list[str | os.PathLike]) -> list[Path]:
    """Expand files and directories (recursively, sorted) into image paths; keep given files."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file()
                          and f.suffix.lower() in IMAGE_SUFFIXES)
        else:
            out.append(p)
    return out
