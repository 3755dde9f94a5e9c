"""Training with PyTorch: one CPU/GPU, or several processes under ``torchrun`` (DDP).

Reproducible and resumable by construction: the sample order of epoch e is a permutation drawn
from (seed, e); each sample's augmentation from (seed, e, index); torch's own RNG (dropout) is
reseeded from (seed, e) at the start of every epoch. A checkpoint written atomically at the end
of every epoch holds the model, optimizer and step count, so ``--resume`` continues exactly where
the last complete epoch ended (a run killed mid-epoch loses that epoch only).

Under torchrun (WORLD_SIZE > 1) every process trains on its shard of each epoch's permutation
with DistributedDataParallel (NCCL on GPUs, gloo on CPUs); rank 0 alone writes the log,
checkpoints and the model file.
"""

from __future__ import annotations

import dataclasses
import datetime
import gc
import io
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.datasets import Augment, Sample, find_samples, input_affine, label_indices
from ..core.fileio import write_text_atomic
from ..core.graph import Graph
from ..core.preprocess import load_image, to_pixels
from ..core.progress import Progress
from ..errors import EdgecnnError, require
from ..formats.modelfile import save
from .checkpoint import load_checkpoint, save_checkpoint


@dataclass
class Recipe:
    """Every hyperparameter of a run; recipes are presets, each field overridable."""

    epochs: int = 30
    batch_size: int = 64  # global: split over the processes of a distributed run
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4  # not applied to biases and batch-norm parameters
    schedule: str = "cosine"  # cosine | step | poly | constant
    step_every: float = 30.0  # step: epochs between decays
    step_gamma: float = 0.1
    poly_power: float = 4.0
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    amp: str = "auto"  # auto (bf16 on GPUs that have it) | bf16 | fp16 | none
    channels_last: bool = True
    workers: int = 4
    seed: int = 0
    crop_scale_min: float = 0.08
    hue: float = 0.1
    saturation: float = 1.5
    exposure: float = 1.5
    source: str = ""

    def override(self, **kw) -> Recipe:
        fields = {f.name: f for f in dataclasses.fields(self)}
        out = dataclasses.replace(self)
        for k, v in kw.items():
            if k not in fields:
                raise EdgecnnError(f"unknown training setting {k!r} (known: "
                                   f"{', '.join(sorted(fields))})")
            typ = type(getattr(self, k))
            try:
                v = (str(v).lower() in ("1", "true", "yes", "on")) if typ is bool else typ(v)
            except ValueError:
                raise EdgecnnError(f"training setting {k}={v!r} must be {typ.__name__}") from None
            setattr(out, k, v)
        if out.schedule not in ("cosine", "step", "poly", "constant"):
            raise EdgecnnError(f"schedule must be cosine, step, poly or constant, "
                               f"got {out.schedule!r}")
        if out.amp not in ("auto", "bf16", "fp16", "none"):
            raise EdgecnnError(f"amp must be auto, bf16, fp16 or none, got {out.amp!r}")
        if out.epochs < 1 or out.batch_size < 1 or out.lr <= 0:
            raise EdgecnnError("epochs, batch_size and lr must be positive: give --epochs, "
                               "--batch-size and --lr values above 0")
        return out


RECIPES = {
    # ELL's gallery models: CNTK, SGD momentum 0.9, minibatch 96, 112 epochs.
    "ell": Recipe(epochs=112, batch_size=96, lr=0.0375, momentum=0.9, weight_decay=5e-4,
                  schedule="step", step_every=28, step_gamma=0.1, warmup_epochs=1,
                  source="ELL gallery (CNTK): SGD, momentum 0.9, minibatch 96, 112 epochs"),
    # Krizhevsky et al. 2012: batch 128, momentum 0.9, weight decay 5e-4, lr 0.01 divided by 10
    # three times (about every 30 epochs), 90 epochs.
    "alexnet": Recipe(epochs=90, batch_size=128, lr=0.01, momentum=0.9, weight_decay=5e-4,
                      schedule="step", step_every=30, step_gamma=0.1, crop_scale_min=0.08,
                      hue=0.0, saturation=1.0, exposure=1.0,
                      source="AlexNet paper: SGD, batch 128, momentum 0.9, wd 5e-4, lr 0.01 /10"),
    # Darknet reference (darknet.cfg): batch 128, lr 0.1, poly power 4, momentum 0.9,
    # decay 5e-4, hue .1, saturation/exposure 1.5.
    "darknet": Recipe(epochs=50, batch_size=128, lr=0.1, momentum=0.9, weight_decay=5e-4,
                      schedule="poly", poly_power=4.0, hue=0.1, saturation=1.5, exposure=1.5,
                      source="Darknet reference: batch 128, lr 0.1, poly 4, momentum 0.9"),
    "default": Recipe(source="edgecnn default: SGD momentum 0.9, cosine"),
}


def recipe_for(g: Graph) -> str:
    if g.name.startswith(("d_", "dr_", "v_")):
        return "ell"
    if g.name.startswith("alexnet"):
        return "alexnet"
    return "default"


def lr_at(r: Recipe, step: int, steps_per_epoch: int) -> float:
    """Learning rate of a (0-based) optimizer step: warm-up, then the schedule."""
    epoch = step / steps_per_epoch
    if r.warmup_epochs > 0 and epoch < r.warmup_epochs:
        return r.lr * (step + 1) / (r.warmup_epochs * steps_per_epoch)
    t = (epoch - r.warmup_epochs) / max(r.epochs - r.warmup_epochs, 1e-9)
    if r.schedule == "cosine":
        return r.lr * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
    if r.schedule == "poly":
        return r.lr * max(1 - t, 0.0) ** r.poly_power
    if r.schedule == "step":
        return r.lr * r.step_gamma ** int(epoch // r.step_every)
    return r.lr


# ---- data -----------------------------------------------------------------------------------

class _TrainSet:
    """Samples → (H x W x 3 uint8 RGB pixels, label); the augmentation RNG comes from
    (seed, epoch, i). Pixels travel as uint8 (a quarter of the bytes between processes) and are
    normalized on the device (see :func:`_normalizer`)."""

    def __init__(self, g: Graph, samples: list[Sample], targets: np.ndarray, r: Recipe,
                 epoch: int, train: bool):
        self.samples, self.targets, self.epoch, self.train = samples, targets, epoch, train
        self.pre = g.preprocessing
        self.size = g.input_shape[:2]
        self.seed = r.seed
        self.augment = Augment(scale=(r.crop_scale_min, 1.0), hue=r.hue,
                               saturation=r.saturation, exposure=r.exposure)

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i: int):
        s = self.samples[i]
        try:
            im = load_image(s.path)
        except EdgecnnError as e:
            print(f"edgecnn train: skipped {e}", file=sys.stderr)
            return None
        if self.train:
            px = self.augment(im, self.size, np.random.default_rng([self.seed, self.epoch, i]))
        else:
            px = to_pixels(im, self.pre, self.size)
        return np.ascontiguousarray(px), int(self.targets[i])


def _collate(items):
    import torch

    items = [it for it in items if it is not None]
    if not items:
        return None
    x = torch.from_numpy(np.stack([x for x, _ in items]))
    y = torch.tensor([t for _, t in items], dtype=torch.int64)
    return x, y


def epoch_order(n: int, seed: int, epoch: int, rank: int, world: int, batch: int) -> list[int]:
    """This process's sample indices for an epoch: a seeded permutation, sharded by rank.

    Each process gets the same number of whole batches (the permutation's tail that does not
    fill a batch on every process is dropped, as DistributedSampler with drop_last does).
    """
    perm = np.random.default_rng([seed, epoch, 7]).permutation(n)
    per_rank = (n // world) // batch * batch
    if per_rank == 0:
        raise EdgecnnError(f"{n} images are fewer than one batch of {batch} per process: "
                           "lower --batch-size")
    return perm[rank * per_rank:(rank + 1) * per_rank].tolist()


def _normalizer(torch, p, dev, channels_last: bool):
    """uint8 (N, H, W, 3) RGB batch on the device → the model's float32 NCHW input."""
    a, b, bgr = input_affine(p)
    a = torch.from_numpy(a).to(dev)[None, :, None, None]
    b = torch.from_numpy(b).to(dev)[None, :, None, None]

    def norm(x):
        x = x.permute(0, 3, 1, 2).float()  # NHWC -> NCHW
        if bgr:
            x = x.flip(1)
        x = x * a + b
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    return norm


def _loader(ds, order: list[int], batch: int, workers: int):
    import torch

    return torch.utils.data.DataLoader(ds, batch_size=batch, sampler=order, num_workers=workers,
                                       collate_fn=_collate, persistent_workers=False)


# ---- the loop -------------------------------------------------------------------------------

@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(torch, device_kind: str) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    backend = "nccl" if device_kind == "cuda" else "gloo"
    torch.distributed.init_process_group(backend)
    return _Dist(torch.distributed.get_rank(), world, int(os.environ.get("LOCAL_RANK", "0")))


def training_graph(g: Graph) -> Graph:
    """The graph whose output is the logits: a final softmax is left out of training."""
    if g.output.kind != "softmax":
        return g
    return g.derive(g.layers[:-1])


@dataclass
class TrainResult:
    epochs_run: int
    history: list[dict] = field(default_factory=list)
    output: str = ""


def train(g: Graph, data: str | Path, output: str | Path, recipe: Recipe,
          val: str | Path | None = None, resume: bool = False, device: str = "auto",
          checkpoint: str | Path | None = None, log_path: str | Path | None = None,
          max_steps: int | None = None) -> TrainResult:
    """Train ``g`` on ``data``; write the trained model to ``output``.

    ``max_steps`` stops after that many optimizer steps of this call without writing a
    checkpoint for the unfinished epoch (used to test what a killed run loses).
    """
    torch = require("torch", "torch")
    output = Path(output)
    checkpoint = Path(checkpoint or output.with_suffix(".ckpt"))
    log_path = Path(log_path or output.with_suffix(".log.jsonl"))
    device_kind = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    dist = _init_distributed(torch, device_kind)
    result = _train(torch, dist, device_kind, g, data, output, recipe, val, resume, checkpoint,
                    log_path, max_steps)
    if dist.world > 1:
        # _train has returned, so the DistributedDataParallel wrapper and its reducer are gone
        # (collected now, not at interpreter exit, where gloo's threads abort the process);
        # every rank then leaves together. On an error the group is not torn down: the
        # launcher stops the other ranks.
        gc.collect()
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return result


def _train(torch, dist: _Dist, device_kind: str, g: Graph, data, output: Path, r: Recipe, val,
           resume: bool, checkpoint: Path, log_path: Path, max_steps: int | None) -> TrainResult:
    from .torch_module import to_module, update_graph

    dev = torch.device(f"cuda:{dist.local_rank}" if device_kind == "cuda" else device_kind)
    if device_kind == "cuda":
        torch.cuda.set_device(dev)

    samples = find_samples(data, "train")
    targets = label_indices(g, samples, str(data))
    val_samples = find_samples(val, "val") if val else []
    val_targets = label_indices(g, val_samples, str(val)) if val else None
    if g.weights == {}:
        g.init_weights(r.seed)
    tg = training_graph(g)

    torch.manual_seed(r.seed)
    model = to_module(tg).to(dev)
    if r.channels_last and device_kind == "cuda":
        model = model.to(memory_format=torch.channels_last)
    decay, no_decay = [], []
    for p in model.parameters():
        (decay if p.ndim > 1 else no_decay).append(p)
    opt = torch.optim.SGD([{"params": decay, "weight_decay": r.weight_decay},
                           {"params": no_decay, "weight_decay": 0.0}],
                          lr=r.lr, momentum=r.momentum, nesterov=r.nesterov)
    start_epoch, step, history = 0, 0, []
    if dist.main:
        _remove_stale_temps(checkpoint, output)
    if resume and not checkpoint.exists():  # killed before its first checkpoint
        print(f"no checkpoint {checkpoint} yet: starting from epoch 1", file=sys.stderr)
        resume = False
    if resume:
        model_state, opt_state, ck = load_checkpoint(checkpoint, dev)
        try:
            model.load_state_dict(model_state)
            opt.load_state_dict(opt_state)
        except (RuntimeError, KeyError, ValueError) as e:
            raise EdgecnnError(f"{checkpoint}: does not fit model {g.name!r} ({e}); resume "
                               "with the model and settings it was made with") from None
        start_epoch, step, history = ck["epoch"], ck["step"], ck["history"]
    if dist.main:  # the log restarts from the checkpoint (drops lines of a cut epoch) or empty
        write_text_atomic(log_path, "".join(json.dumps(e) + "\n" for e in history))
        if dist.main:
            print(f"resuming {g.name} after epoch {start_epoch} (step {step})", file=sys.stderr)
    net = model
    if dist.world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if device_kind == "cuda" else None)

    amp_dtype = None
    if device_kind == "cuda" and r.amp != "none":
        bf16_ok = torch.cuda.is_bf16_supported()
        amp_dtype = torch.float16 if r.amp == "fp16" or (r.amp == "auto" and not bf16_ok) \
            else torch.bfloat16
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)

    per_proc_batch = max(1, r.batch_size // dist.world)
    steps_per_epoch = len(samples) // dist.world // per_proc_batch
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=r.label_smoothing)
    normalize = _normalizer(torch, tg.preprocessing, dev,
                            r.channels_last and device_kind == "cuda")
    step_ctx = _Step(torch, net, opt, scaler, loss_fn, normalize, dev, device_kind, amp_dtype)
    budget = max_steps
    for epoch in range(start_epoch, r.epochs):
        torch.manual_seed(r.seed * 1000003 + epoch)
        order = epoch_order(len(samples), r.seed, epoch, dist.rank, dist.world, per_proc_batch)
        ds = _TrainSet(tg, samples, targets, r, epoch, train=True)
        t0 = time.perf_counter()
        stats, step, budget = _run_epoch(step_ctx, _loader(ds, order, per_proc_batch, r.workers),
                                         r, epoch, step, steps_per_epoch, dist, budget)
        if budget == 0:  # stopped mid-epoch (max_steps): no checkpoint for it
            return TrainResult(epoch - start_epoch, history)
        stats = _reduce(torch, dist, dev, stats)
        entry = {"epoch": epoch + 1, "step": step, "lr": lr_at(r, step - 1, steps_per_epoch),
                 "loss": stats[0] / max(stats[2], 1), "train_top1": stats[1] / max(stats[2], 1),
                 "images": int(stats[2]),
                 "images_per_second": stats[2] / (time.perf_counter() - t0),
                 "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
        if val:
            entry["val_top1"], entry["val_top5"] = _validate(torch, model, tg, val_samples,
                                                             val_targets, r, dev, dist)
        history.append(entry)
        if dist.main:
            _append_log(log_path, entry)
            save_checkpoint(checkpoint, model.state_dict(), opt.state_dict(),
                            {"epoch": epoch + 1, "step": step, "history": history,
                             "recipe": dataclasses.asdict(r)})
            print(f"epoch {epoch + 1}/{r.epochs}: loss {entry['loss']:.4f} train top-1 "
                  f"{entry['train_top1']:.3f}" + (f" val top-1 {entry['val_top1']:.3f}"
                                                   if val else "")
                  + f", {entry['images_per_second']:.0f} images/s", file=sys.stderr)
    if dist.main:
        update_graph(tg, model)
        g.weights.update(tg.weights)
        g.meta["training"] = {"recipe": dataclasses.asdict(r), "data": str(data),
                              "images": len(samples), "epochs": r.epochs,
                              "processes": dist.world, "device": device_kind,
                              "final": history[-1] if history else {}}
        g.meta["weights"] = f"trained with edgecnn train ({r.epochs} epochs)"
        save(g, output)
    return TrainResult(r.epochs - start_epoch, history, str(output))


@dataclass
class _Step:
    """What one optimizer step needs."""

    torch: object
    net: object
    opt: object
    scaler: object
    loss_fn: object
    normalize: object
    dev: object
    device_kind: str
    amp_dtype: object

    def __call__(self, batch, lr: float) -> tuple[float, int, int]:
        """One step on a batch; returns (summed loss, correct, images)."""
        torch = self.torch
        x, y = (t.to(self.dev, non_blocking=True) for t in batch)
        x = self.normalize(x)
        for group in self.opt.param_groups:
            group["lr"] = lr
        with torch.autocast(self.device_kind, dtype=self.amp_dtype,
                            enabled=self.amp_dtype is not None):
            logits = self.net(x).flatten(1)
            loss = self.loss_fn(logits.float(), y)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        return float(loss.detach()) * len(y), int((logits.argmax(1) == y).sum()), len(y)


def _run_epoch(do_step: _Step, loader, r: Recipe, epoch: int, step: int, steps_per_epoch: int,
               dist: _Dist, budget: int | None) -> tuple[list[float], int, int | None]:
    """Train one epoch; returns ([loss sum, correct, images], step, remaining step budget)."""
    do_step.net.train()
    loss_sum = correct = seen = 0
    t0 = time.perf_counter()
    with Progress(steps_per_epoch, f"epoch {epoch + 1}/{r.epochs}", "step",
                  stream=sys.stderr if dist.main else io.StringIO()) as bar:
        for batch in loader:
            if batch is None:
                continue
            l_sum, c, n = do_step(batch, lr_at(r, step, steps_per_epoch))
            step += 1
            loss_sum, correct, seen = loss_sum + l_sum, correct + c, seen + n
            rate = seen * dist.world / (time.perf_counter() - t0)
            bar.update(1, f"loss {loss_sum / seen:.3f} acc {correct / seen:.3f} "
                          f"{rate:.0f} img/s")
            if budget is not None:
                budget -= 1
                if budget == 0:
                    break
    return [loss_sum, correct, seen], step, budget


def _reduce(torch, dist: _Dist, dev, values: list[float]) -> list[float]:
    if dist.world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=dev)
    torch.distributed.all_reduce(t)
    return t.tolist()


def _validate(torch, model, g: Graph, samples, targets, r: Recipe, dev, dist: _Dist):
    """Top-1 / top-5 on the validation set (sharded over processes, summed)."""
    ds = _TrainSet(g, samples, targets, r, 0, train=False)
    normalize = _normalizer(torch, g.preprocessing, dev, False)
    order = list(range(dist.rank, len(samples), dist.world))
    model.eval()
    c1 = c5 = n = 0
    with torch.inference_mode():
        for batch in _loader(ds, order, 64, r.workers):
            if batch is None:
                continue
            x, y = (t.to(dev) for t in batch)
            top = model(normalize(x)).flatten(1).topk(min(5, g.num_classes), dim=1).indices
            c1 += int((top[:, 0] == y).sum())
            c5 += int((top == y[:, None]).any(1).sum())
            n += len(y)
    c1, c5, n = _reduce(torch, dist, dev, [c1, c5, n])
    return c1 / max(n, 1), c5 / max(n, 1)


def _append_log(path: Path, entry: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(entry) + "\n")


def _remove_stale_temps(*paths: Path) -> None:
    """Delete temp files a killed run left beside ``paths`` (``.<name>.<random>.tmp``)."""
    for path in paths:
        for tmp in path.parent.glob(f".{path.name}.*.tmp"):
            tmp.unlink(missing_ok=True)
