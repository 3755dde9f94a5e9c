"""The model file: one safetensors file.

Tensors are named ``"<layer>.<tensor>"`` (float32, or I8/U8/I32 where an integer layer kind
declares that type: stored natively, at their real width); the safetensors metadata holds
``edgecnn.graph`` (the graph JSON: layers, preprocessing, labels, notes) and
``edgecnn.format`` (the file format version).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ..core.fileio import publish
from ..core.graph import Graph
from ..errors import MALFORMED, GraphError, ModelFileError, malformed

FORMAT_VERSION = "1"
SUFFIX = ".safetensors"


def save(g: Graph, path: str | os.PathLike) -> Path:
    """Write ``g`` (its weights must be complete) atomically: temp file, then rename."""
    from safetensors.numpy import save_file

    path = Path(path)
    g.check_weights(f"model {g.name!r}")
    specs = g.tensor_specs()
    tensors = {k: np.ascontiguousarray(v, dtype=specs[k].dtype) for k, v in g.weights.items()}
    meta = {"edgecnn.format": FORMAT_VERSION, "edgecnn.graph": json.dumps(g.to_json())}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=meta)
        publish(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load(path: str | os.PathLike) -> Graph:
    """Read a model file; any problem is one ModelFileError naming the file."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise ModelFileError(f"{where}: no such model file")
    try:
        with safe_open(str(path), framework="np") as f:
            meta = f.metadata() or {}
            weights = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelFileError(f"{where}: not a readable safetensors file ({_first_line(e)}); "
                             "it may be truncated or corrupt") from None
    if "edgecnn.graph" not in meta:
        raise ModelFileError(f"{where}: a safetensors file, but not an edgecnn model (no "
                             "'edgecnn.graph' metadata); import other formats with "
                             "`edgecnn import`")
    version = meta.get("edgecnn.format")
    if version != FORMAT_VERSION:
        raise ModelFileError(f"{where}: model file format {version!r} is not supported by this "
                             f"edgecnn (it reads format {FORMAT_VERSION!r}); upgrade edgecnn, or "
                             "re-create the file with this version")
    try:
        desc = json.loads(meta["edgecnn.graph"])
    except json.JSONDecodeError as e:
        raise ModelFileError(f"{where}: the graph description is not valid JSON ({e}); the file is "
                             "corrupt: re-create or re-download it") from None
    try:
        g = Graph.from_json(desc, weights)
        specs = g.tensor_specs()
        for k, v in weights.items():
            want = specs[k].dtype if k in specs else "float32"
            if v.dtype != np.dtype(want):
                raise ModelFileError(f"{where}: tensor {k!r} is {v.dtype}, expected {want}; write "
                                     "edgecnn models with edgecnn (`edgecnn import` for others)")
        g.check_weights()
    except GraphError as e:
        raise ModelFileError(f"{where}: {e}") from None
    except MALFORMED as e:  # a graph description of the wrong structure
        raise ModelFileError(malformed(where, "graph description", e)) from None
    for k, v in g.weights.items():
        if not np.all(np.isfinite(v)):
            raise ModelFileError(f"{where}: tensor {k!r} holds NaN or infinite values (training "
                                 "diverged?); retrain with a lower --lr, or use another file")
    return g


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def looks_like_path(spec: str) -> bool:
    return spec.endswith(SUFFIX) or os.sep in spec or (os.altsep or os.sep) in spec
