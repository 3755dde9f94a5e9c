"""Pretrained models: a registry of downloads, fetched with resume and checked by sha256.

``fetch(name)`` downloads the registered file into the cache (``$EDGECNN_CACHE`` or
``~/.cache/edgecnn``) with a progress line, resumes a partial download (HTTP Range), verifies
the checksum, imports it with :mod:`edgecnn.formats.importers` and keeps the resulting model file.
Further entries can be registered in a JSON file named by ``$EDGECNN_MODEL_REGISTRY``:
``{"name": {"url": …, "sha256": …, "format": "tflite", "license": …, "description": …}}``.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from ..core.fileio import cache_dir
from ..core.progress import Progress
from ..errors import EdgecnnError

FORMATS = {"tflite": ".tflite", "onnx": ".onnx", "cfg": ".cfg"}


@dataclass(frozen=True)
class Pretrained:
    name: str
    url: str
    sha256: str
    format: str  # the importer: tflite | onnx
    license: str
    description: str
    size: int | None = None  # bytes, when known


BUILTIN = [
    Pretrained("mobilenet_v1_0.25_128_quant",
               "https://github.com/google-coral/test_data/raw/master/"
               "mobilenet_v1_0.25_128_quant.tflite",
               "cb273c23ee76374b05b9583177e28aa19744858a7679c56a250e83d0333da785", "tflite",
               "Apache-2.0", "MobileNet v1, width 0.25, 128x128 RGB, uint8 quantized; 1001 "
               "outputs (0 = background); ImageNet (ILSVRC2012)", 525598),
    Pretrained("mobilenet_v2_1.0_224_quant",
               "https://github.com/google-coral/test_data/raw/master/"
               "mobilenet_v2_1.0_224_quant.tflite",
               "7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776", "tflite",
               "Apache-2.0", "MobileNet v2, width 1.0, 224x224 RGB, uint8 quantized; 1001 "
               "outputs (0 = background); ImageNet (ILSVRC2012)", 3610798),
]


def registry() -> dict[str, Pretrained]:
    reg = {p.name: p for p in BUILTIN}
    extra = os.environ.get("EDGECNN_MODEL_REGISTRY")
    if extra:
        try:
            entries = json.loads(Path(extra).read_text())
            for name, e in entries.items():
                reg[name] = Pretrained(name=name, **e)
        except (OSError, json.JSONDecodeError, TypeError) as err:
            raise EdgecnnError(f"{extra} (EDGECNN_MODEL_REGISTRY): not a registry of "
                               f"pretrained models ({err})") from None
    for p in reg.values():
        if p.format not in FORMATS:
            raise EdgecnnError(f"pretrained model {p.name!r}: unknown format {p.format!r}; "
                               f"fix its entry in the registry ({', '.join(FORMATS)})")
    return reg


def get(name: str) -> Pretrained:
    reg = registry()
    if name not in reg:
        raise EdgecnnError(f"no pretrained model {name!r} (registered: {', '.join(sorted(reg))})")
    return reg[name]


def cached_model(name: str) -> Path | None:
    """The imported model file of a fetched model, if it is in the cache."""
    path = cache_dir() / "models" / f"{name}.safetensors"
    return path if path.is_file() else None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download(p: Pretrained, dest: Path, timeout: float = 30.0) -> Path:
    """Download ``p`` to ``dest``, resuming ``dest.part``; verify the sha256."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(p.url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the partial file is already whole
            resp = None
        else:
            raise EdgecnnError(f"downloading {p.name} from {p.url}: HTTP {e.code} "
                               f"{e.reason}") from None
    except (urllib.error.URLError, OSError) as e:
        raise EdgecnnError(f"downloading {p.name} from {p.url}: {getattr(e, 'reason', e)}; "
                           "run fetch again to resume") from None
    if resp is not None:
        with resp:
            resumed = resp.status == 206
            if not resumed:
                have = 0
            length = resp.headers.get("Content-Length")
            expected = int(length) if length is not None else None
            total = (expected or 0) + have or (p.size or 0)
            got = 0
            with open(part, "ab" if resumed else "wb") as f, \
                    Progress(total, f"fetch {p.name}", "B") as bar:
                bar.update(have)
                try:
                    for block in iter(lambda: resp.read(1 << 16), b""):
                        f.write(block)
                        got += len(block)
                        bar.update(len(block))
                except (OSError, urllib.error.URLError, http.client.HTTPException) as e:
                    raise EdgecnnError(f"downloading {p.name}: interrupted ({e}); run fetch "
                                       "again to resume") from None
            if expected is not None and got < expected:
                raise EdgecnnError(f"downloading {p.name}: interrupted after {have + got:,} of "
                                   f"{have + expected:,} bytes; run fetch again to resume")
    digest = sha256_of(part)
    if digest != p.sha256:
        part.unlink()
        raise EdgecnnError(f"checksum mismatch for {p.name}: expected sha256 {p.sha256}, got "
                           f"{digest}; the download was removed, run fetch again")
    os.replace(part, dest)
    return dest


def fetch(name: str, force: bool = False) -> Path:
    """The imported model file of a registered pretrained model (downloaded when needed)."""
    p = get(name)
    model = cache_dir() / "models" / f"{name}.safetensors"
    if model.is_file() and not force:
        return model
    raw = cache_dir() / "downloads" / f"{name}{FORMATS[p.format]}"
    if force or not raw.is_file() or sha256_of(raw) != p.sha256:
        download(p, raw)
    from ..formats.importers import import_model
    from ..formats.modelfile import save

    g = import_model(raw, as_float=True)  # float until the C compiler has integer kernels
    g.meta["source"] = f"{p.url} (sha256 {p.sha256[:12]}…, {p.license})"
    g.meta["pretrained"] = asdict(p)
    save(g, model)
    return model
