"""Training checkpoints as safetensors + JSON: tensors only, never a pickle.

A checkpoint from elsewhere cannot run code when loaded (``torch.load`` of a pickle can).

Layout of one file:
- tensors ``model/<state-dict key>`` and ``optimizer/<param id>/<name>`` (e.g. the SGD
  momentum buffers);
- metadata ``edgecnn.checkpoint``: JSON ``{"format", "state": {...}, "optimizer":
  {"param_groups": [...], "scalars": {pid: {name: number}}}}`` where ``state`` is the
  caller's JSON-able dict (epoch, step, history, recipe).

Written atomically (temp file, then rename): a kill during the write leaves the previous
checkpoint in place and no partial file under the checkpoint's name.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from ..core.fileio import publish
from ..errors import EdgecnnError

FORMAT = "edgecnn.checkpoint/1"
KEY = "edgecnn.checkpoint"


class CheckpointError(EdgecnnError):
    """A checkpoint that cannot be resumed from."""


def save_checkpoint(path: str | os.PathLike, model_state: dict, optimizer_state: dict,
                    state: dict) -> Path:
    """Write the model and optimizer state dicts and ``state`` (JSON-able) to ``path``."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {f"model/{k}": v.detach().contiguous() for k, v in model_state.items()}
    scalars: dict[str, dict] = {}
    for pid, entry in optimizer_state["state"].items():
        for name, v in entry.items():
            if hasattr(v, "detach"):
                tensors[f"optimizer/{pid}/{name}"] = v.detach().contiguous()
            else:
                scalars.setdefault(str(pid), {})[name] = v
    meta = {"format": FORMAT, "state": state,
            "optimizer": {"param_groups": optimizer_state["param_groups"], "scalars": scalars}}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={KEY: json.dumps(meta)})
        publish(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_checkpoint(path: str | os.PathLike, device="cpu") -> tuple[dict, dict, dict]:
    """(model state dict, optimizer state dict, state) from ``path``; CheckpointError if bad."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    redo = "delete it and train again without --resume"
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint to resume from; train without --resume")
    with open(path, "rb") as f:
        if f.read(2) == b"PK":
            raise CheckpointError(f"{path}: an old pickle checkpoint, which is not loaded "
                                  f"because a pickle can run code; {redo}")
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            meta = json.loads((f.metadata() or {})[KEY])
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
    except (SafetensorError, OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"{path}: not a readable edgecnn checkpoint ({e}); {redo}") \
            from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {meta.get('format')!r} is not "
                              f"{FORMAT!r}; {redo}")
    model = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
    opt_state: dict = {}
    for pid, entry in meta["optimizer"]["scalars"].items():
        opt_state.setdefault(int(pid), {}).update(entry)
    for k, v in tensors.items():
        if k.startswith("optimizer/"):
            _, pid, name = k.split("/", 2)
            opt_state.setdefault(int(pid), {})[name] = v
    optimizer = {"state": opt_state, "param_groups": meta["optimizer"]["param_groups"]}
    return model, optimizer, meta["state"]
