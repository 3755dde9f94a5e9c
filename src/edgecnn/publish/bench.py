"""Batch-1 inference speed of one model on several backends, in one run on one machine.

Backends (all run the same weights on the same input):
- ``compiled``: ``edgecnn.compiler.api.compile(graph, target="host")`` then ``.predict``
  (the generated C);
- ``onnxruntime``: the model exported by :mod:`edgecnn.formats.onnx_export`, one session per thread
  count (intra-op threads = threads, inter-op 1, all graph optimizations, sequential execution);
- ``torch``: ``edgecnn.train.torch_module.to_module(graph)`` in eval mode under
  ``torch.inference_mode()`` with ``torch.set_num_threads(threads)``; channels-last memory
  format is used when the warm-up finds it faster;
- ``reference``: the numpy interpreter (the oracle; its thread count is numpy's own);
- ``openvino``, ``ncnn``, ``mnn``, ``litert``: the peers of :mod:`edgecnn.publish.peers` (the
  ``bench`` extra), each running the exported ONNX model converted its own way, LiteRT a float
  copy of the ``.tflite`` the model was imported from.

Method. After ``warmup`` untimed runs per backend, ``repeats`` rounds are timed; in each round
every backend runs once in turn (the order rotates between rounds), so machine noise hits all
alike. A round's sample is the mean of ``inner`` back-to-back frames, ``inner`` chosen so that a
backend spends at least ``min_time`` seconds in total. Reported: median and min ms/frame,
GFLOP/s = 2 x MACs / median time (MACs from :func:`edgecnn.core.accounting.summarize`), and for
every peer the ratio compiled / peer of the medians (< 1 means edgecnn's compiled model is
faster). Each backend's output is compared with the ONNX Runtime (else the first) backend's.
With ``check_tol``, each backend's output is also compared with the numpy reference before any
timing: max |y - reference| / max(1, max |reference|) above ``check_tol`` drops the backend,
listed as not available with the error (an engine that computes something else has no time).

The result (what ``edgecnn bench --format json`` prints and model cards read): ``model``,
``total_macs``, ``input_shape``, ``date`` (ISO 8601, UTC), ``machine`` (CPU model, cores, SIMD,
OS, load average; no host name), ``versions``, ``settings`` and ``entries``, one per (backend,
threads): ``backend``, ``threads``, ``available`` (else ``reason``), ``target``, ``device`` (the
CPU model), ``date``, ``ms_median``, ``ms_min``, ``gflops``, ``fps``, ``ratio`` (compiled / this,
peers only) and ``details`` (e.g. ``max_abs_diff``, torch's memory format, compiled kernels).
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import math
import os
import platform
import re
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..compiler import armhost
from ..core.accounting import summarize
from ..core.graph import Graph
from ..errors import EdgecnnError, require

BACKENDS = ("compiled", "onnxruntime", "torch", "reference", "openvino", "ncnn", "mnn", "litert")
DEFAULT_BACKENDS = ("compiled", "onnxruntime", "torch")
# Pause before each sample, so the previous backend's worker threads (ONNX Runtime's pool,
# OpenMP teams), which spin for a while after a run, are idle again; measured on the seed model
# at 2 threads on 2 cores: with 2 ms pauses the compiled and ONNX Runtime medians were 1.4-2x
# their values alone, with 50 ms they matched. One thread runs no worker threads.
PAUSE_S = 0.002  # one thread
PAUSE_MULTI_S = 0.05  # several


class BackendUnavailable(Exception):
    """A backend that cannot run here (reported as an entry, not raised to the user)."""


@dataclass
class _Runner:
    backend: str
    threads: int
    run: Callable  # the backend's own input (from prepare) -> its output
    prepare: Callable = lambda x: x  # (1, H, W, C) float32 -> the backend's own input, untimed
    nhwc: Callable = lambda y: y  # the backend's output -> NHWC order, for the agreement check
    details: dict = field(default_factory=dict)
    samples: list[float] = field(default_factory=list)  # seconds per frame
    inner: int = 1
    handle: object = None  # the compiled model, for its profile


def bench(graph: Graph, backends: Sequence[str] = DEFAULT_BACKENDS,
          threads: Sequence[int] = (1,), repeats: int = 20, warmup: int = 3,
          min_time: float = 0.3, profile: bool = False, seed: int = 0,
          model_name: str | None = None, check_tol: float | None = None,
          sources: dict | None = None) -> dict:
    """Time batch-1 inference of ``graph`` on each backend at each thread count; a JSON dict.

    ``sources``: files the model came from, for peers that run them (``{"tflite": path}``)."""
    backends = check_backends(backends)
    threads = check_threads(threads)
    if repeats < 1 or warmup < 0 or min_time < 0:
        raise EdgecnnError("bench: repeats must be >= 1, warmup >= 0 and min_time >= 0")
    graph.check_weights(f"model {graph.name!r}")
    macs = summarize(graph).total_macs
    x = np.random.default_rng(seed).normal(0, 1, (1, *graph.input_shape)).astype(np.float32)
    machine = machine_info()
    load_before = _load_average()
    date = datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()
    entries, prof = [], None
    ref = None if check_tol is None else _reference_output(graph, x)
    with tempfile.TemporaryDirectory(prefix="edgecnn-bench-") as tmp:
        for t in threads:
            runners, missing = _make_runners(graph, backends, t, tmp, sources or {})
            missing += _measure(runners, x, t, repeats, warmup, min_time, ref, check_tol)
            entries += [_entry(r, macs, machine, date) for r in runners] + [
                _missing_entry(b, t, why, machine, date) for b, why in missing]
            if profile and prof is None:
                prof = _profile(runners, x)
    _add_ratios(entries)
    # other work on the machine slows every backend; the 1-minute load average says how busy
    machine["load_average_1min"] = {"before": load_before, "after": _load_average()}
    entries.sort(key=lambda e: (e["threads"], BACKENDS.index(e["backend"])))
    result = {"model": model_name or graph.name, "graph_name": graph.name,
              "input_shape": list(graph.input_shape), "batch": 1, "total_macs": macs,
              "date": date, "machine": machine, "versions": versions(),
              "settings": {"repeats": repeats, "warmup": warmup, "min_time_s": min_time,
                           "input": f"normal(0, 1), seed {seed}", "check_tol": check_tol},
              "entries": entries}
    if profile:
        result["profile"] = prof or {"available": False,
                                     "reason": "the compiled backend did not run"}
    return result


def check_backends(backends: Sequence[str]) -> tuple[str, ...]:
    backends = tuple(dict.fromkeys(b.strip() for b in backends if b.strip()))
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        raise EdgecnnError(f"bench: unknown backend(s) {', '.join(map(repr, unknown)) or 'none'}"
                           f" (known: {', '.join(BACKENDS)})")
    return backends


def check_threads(threads: Sequence[int]) -> tuple[int, ...]:
    out = tuple(dict.fromkeys(int(t) for t in threads))
    if not out or min(out) < 1:
        raise EdgecnnError(f"bench: thread counts must be positive integers, got {list(threads)}")
    return out


# ---- the backends -----------------------------------------------------------------------------

def _make_runners(graph: Graph, backends, t: int, tmp: str, sources: dict):
    runners, missing = [], []
    for b in backends:
        try:
            runners.append(_factory(b)(graph, t, tmp, sources))
        except BackendUnavailable as e:
            missing.append((b, str(e)))
    return runners, missing


def _compiled(graph: Graph, t: int, tmp: str, sources: dict) -> _Runner:
    from ..compiler import api

    try:
        model = api.compile(graph, target="host", threads=t)
        if hasattr(model, "set_threads"):
            model.set_threads(t)
    except EdgecnnError as e:  # e.g. a layer kind the compiler cannot emit yet
        raise BackendUnavailable(f"not available: {e}") from None
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:  # a failed C build
        raise BackendUnavailable(f"not available: {type(e).__name__}: {e}") from None
    details = {"target": getattr(model, "target", "host")}
    algos = getattr(model, "algorithms", None)  # layer -> kernel, e.g. "winograd"
    if isinstance(algos, dict):
        details["kernels"] = dict(sorted(Counter(map(str, algos.values())).items()))
        details["kernel_per_layer"] = {str(k): str(v) for k, v in algos.items()}
    if isinstance(getattr(model, "arena_bytes", None), int):
        details["arena_bytes"] = model.arena_bytes
    return _Runner("compiled", t, model.predict, details=details, handle=model)


def _onnxruntime(graph: Graph, t: int, tmp: str, sources: dict) -> _Runner:
    ort = require("onnxruntime", "onnx")
    from ..formats.onnx_export import DEFAULT_OPSET

    path = onnx_file(graph, tmp)
    so = ort.SessionOptions()
    so.intra_op_num_threads = t
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

    def prepare(x):  # NHWC → the exported model's NCHW
        return {"input": np.ascontiguousarray(x.transpose(0, 3, 1, 2))}

    def run(feed):
        return sess.run(None, feed)[0]

    return _Runner("onnxruntime", t, run, prepare=prepare, nhwc=_nchw_to_nhwc,
                   details={"target": "cpu", "provider": "CPUExecutionProvider",
                            "opset": DEFAULT_OPSET})


def _torch(graph: Graph, t: int, tmp: str, sources: dict) -> _Runner:
    torch = require("torch", "torch")
    from ..train.torch_module import to_module

    torch.set_num_threads(t)
    module = to_module(graph).eval()
    x0 = torch.zeros((1, graph.input_shape[2], *graph.input_shape[:2]))
    fmt, module = _pick_memory_format(torch, module, x0)

    def prepare(x):  # NHWC → NCHW in the chosen memory format
        return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=fmt)

    def run(xt):
        with torch.inference_mode():
            return module(xt).numpy()

    return _Runner("torch", t, run, prepare=prepare, nhwc=_nchw_to_nhwc,
                   details={"target": "cpu", "mode": "eager",
                            "memory_format": str(fmt).replace("torch.", "")})


def onnx_file(graph: Graph, tmp: str) -> str:
    """``graph`` exported to ONNX once per run (``tmp/model.onnx``: input "input", NCHW), for
    ONNX Runtime and the peers that convert ONNX."""
    from ..formats.onnx_export import export

    path = os.path.join(tmp, "model.onnx")
    if not os.path.exists(path):
        export(graph, path)
    return path


def _nchw_to_nhwc(y: np.ndarray) -> np.ndarray:
    return y.transpose(0, 2, 3, 1)


def _pick_memory_format(torch, module, x0, tries: int = 3):
    """channels_last when a few timed runs find it faster than contiguous NCHW."""
    best = None
    for fmt in (torch.contiguous_format, torch.channels_last):
        m = module.to(memory_format=fmt)
        x = x0.contiguous(memory_format=fmt)
        with torch.inference_mode():
            m(x)
            start = time.perf_counter()
            for _ in range(tries):
                m(x)
            dt = time.perf_counter() - start
        if best is None or dt < best[0]:
            best = (dt, fmt)
    return best[1], module.to(memory_format=best[1])


def _reference(graph: Graph, t: int, tmp: str, sources: dict) -> _Runner:
    from ..core.reference import predict

    return _Runner("reference", t, lambda x: predict(graph, x),
                   details={"target": "numpy", "note": "threads are numpy's own, not set"})


_FACTORIES = {"compiled": _compiled, "onnxruntime": _onnxruntime, "torch": _torch,
              "reference": _reference}


def _factory(backend: str) -> Callable:
    if backend in _FACTORIES:
        return _FACTORIES[backend]
    from . import peers  # the bench extra's engines, imported only when asked for

    return peers.FACTORIES[backend]


# ---- measuring --------------------------------------------------------------------------------

def _measure(runners: list[_Runner], x: np.ndarray, t: int, repeats: int, warmup: int,
             min_time: float, ref: np.ndarray | None = None,
             check_tol: float | None = None) -> list[tuple[str, str]]:
    """Warm up, check agreement, then time ``repeats`` interleaved rounds (see the docstring).

    With ``ref`` (the reference output, flattened), runners whose output differs from it by
    more than ``check_tol`` (relative to the output's scale) are removed from ``runners`` and
    returned as (backend, reason), untimed."""
    feeds = {r.backend: r.prepare(x) for r in runners}  # layout changes are not timed
    outputs = {}
    for r in runners:  # warm up, keep an output for the agreement check, pick `inner`
        _set_threads_for(r)
        y = r.nhwc(np.asarray(r.run(feeds[r.backend]), dtype=np.float32))
        outputs[r.backend] = y.reshape(-1)  # H, W, C order, as compiled and reference give
        start = time.perf_counter()
        for _ in range(warmup):
            r.run(feeds[r.backend])
        per = (time.perf_counter() - start) / warmup if warmup else 0.0
        r.inner = max(1, math.ceil(min_time / repeats / per)) if per > 0 else 1
    rejected = [] if ref is None else _check_reference(runners, outputs, ref, check_tol)
    _agreement(runners, outputs)
    for i in range(repeats):
        k = i % len(runners) if runners else 0
        for r in runners[k:] + runners[:k]:  # rotate the order: none always runs first
            _set_threads_for(r)
            feed = feeds[r.backend]
            time.sleep(PAUSE_S if r.threads == 1 else PAUSE_MULTI_S)
            start = time.perf_counter()
            for _ in range(r.inner):
                r.run(feed)
            r.samples.append((time.perf_counter() - start) / r.inner)
    return rejected


def _reference_output(graph: Graph, x: np.ndarray) -> np.ndarray:
    from ..core.reference import predict

    return np.asarray(predict(graph, x), np.float64).reshape(-1)


def _check_reference(runners: list[_Runner], outputs: dict[str, np.ndarray], ref: np.ndarray,
                     tol: float) -> list[tuple[str, str]]:
    """Drop (in place) the runners whose output is not the reference's within ``tol``: max abs
    difference / max(1, max |reference|). Returns the dropped ones with the reason."""
    scale = max(1.0, float(np.abs(ref).max()))
    rejected = []
    for r in list(runners):
        y = outputs.pop(r.backend)
        if y.shape != ref.shape:
            err, why = math.inf, f"output shape {y.shape} is not the reference's {ref.shape}"
        else:
            err = float(np.abs(y - ref).max()) / scale
            why = f"max abs difference {err * scale:.3g} = {err:.2e} x scale {scale:.3g}"
        r.details["reference_rel_err"] = err
        if not err <= tol:  # also catches NaN
            runners.remove(r)
            rejected.append((r.backend, f"output differs from edgecnn's reference: {why} "
                                        f"(tolerance {tol:g} x scale)"))
        else:
            outputs[r.backend] = y
    return rejected


def _set_threads_for(r: _Runner) -> None:
    """Thread counts of torch and of the compiled library (OpenMP) are global to the process,
    shared by the runners of every thread count: set them before each sample."""
    if r.backend == "torch":
        import torch

        if torch.get_num_threads() != r.threads:
            torch.set_num_threads(r.threads)
    elif r.backend == "compiled" and hasattr(r.handle, "set_threads"):
        r.handle.set_threads(r.threads)


def _agreement(runners: list[_Runner], outputs: dict[str, np.ndarray]) -> None:
    if not outputs:
        return
    base = "onnxruntime" if "onnxruntime" in outputs else next(iter(outputs))
    for r in runners:
        y = outputs[r.backend]
        same = y.shape == outputs[base].shape
        r.details["max_abs_diff"] = float(np.abs(y - outputs[base]).max()) if same else None
        r.details["compared_with"] = base


def _entry(r: _Runner, macs: int, machine: dict, date: str) -> dict:
    med, lo = statistics.median(r.samples), min(r.samples)
    return {"backend": r.backend, "threads": r.threads, "available": True,
            "target": r.details.get("target", "cpu"), "device": machine["cpu"],
            "date": date, "ms_median": med * 1e3, "ms_min": lo * 1e3,
            "gflops": 2 * macs / med / 1e9, "fps": 1.0 / med, "samples": len(r.samples),
            "frames_per_sample": r.inner, "ratio": None,
            "details": {k: v for k, v in r.details.items() if k != "target"}}


def _missing_entry(backend: str, t: int, why: str, machine: dict, date: str) -> dict:
    return {"backend": backend, "threads": t, "available": False, "reason": why,
            "target": "host" if backend == "compiled" else "cpu", "device": machine["cpu"],
            "date": date, "ms_median": None, "ms_min": None, "gflops": None, "fps": None,
            "ratio": None}


def _add_ratios(entries: list[dict]) -> None:
    """ratio = compiled median / this entry's median at the same thread count."""
    compiled = {e["threads"]: e["ms_median"] for e in entries
                if e["backend"] == "compiled" and e["available"]}
    for e in entries:
        c = compiled.get(e["threads"])
        if e["available"] and e["backend"] != "compiled" and c is not None:
            e["ratio"] = c / e["ms_median"]


def _profile(runners: list[_Runner], x: np.ndarray) -> dict:
    """Per-layer times of the compiled model, when the compiled object can give them.

    The hook: ``CompiledModel.profile(x)`` for one (1, H, W, C) input, returning rows
    ``{"layer": name, "ms": time, ...}`` (any further keys, e.g. the kernel, are kept) or a
    dict layer name -> ms.
    """
    r = next((r for r in runners if r.backend == "compiled"), None)
    if r is None:
        return {"available": False, "reason": "the compiled backend did not run"}
    fn = getattr(r.handle, "profile", None)
    if fn is None:
        return {"available": False,
                "reason": "not available: the compiled model exposes no per-layer timing"}
    layers = fn(x)
    return {"available": True, "threads": r.threads, "layers": _profile_rows(layers)}


def _profile_rows(layers) -> list[dict]:
    if isinstance(layers, dict):
        layers = [{"layer": k, "ms": v} for k, v in layers.items()]
    return [dict(row) for row in layers]


# ---- the machine ----------------------------------------------------------------------------

def machine_info() -> dict:
    """CPU model, core count, architecture, SIMD and OS; nothing that names this host."""
    cpu, flags = _cpuinfo()
    simd = [f for f in ("avx512f", "avx2", "fma", "neon", "asimd") if f in flags]
    info = {"cpu": cpu or platform.processor() or platform.machine(),
            "logical_cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "arch": platform.machine(), "simd": simd,
            "os": f"{platform.system()} {platform.release()}"}
    return info | arm_machine(info["arch"], info["cpu"])


def arm_machine(arch: str, cpu: str) -> dict:
    """On ARM: the board (a Raspberry Pi names itself) and whether this is user-mode emulation
    (an ARM userland whose /proc/cpuinfo is an x86 host's): its times are no device's speed."""
    if not arch.lower().startswith(("arm", "aarch64")):
        return {}
    arm = armhost.detect()
    if arm.source == "emulated":
        return {"emulated": True, "board": "",
                "cpu": f"{arch} under qemu-user emulation on {cpu} (emulator figures, "
                       f"not a device's speed)"}
    return {"emulated": False, "board": arm.board,
            "cpu": armhost.describe(arm).replace("(", f"({cpu}; ", 1)}


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # not on every platform
        return None


def _cpuinfo() -> tuple[str, set[str]]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return "", set()
    name = re.search(r"^(?:model name|Model|Hardware|cpu model)\s*:\s*(.+)$", text, re.M)
    flags = re.search(r"^(?:flags|Features)\s*:\s*(.+)$", text, re.M)
    return (name.group(1).strip() if name else "",
            set(flags.group(1).split()) if flags else set())


def versions() -> dict:
    from .._version import __version__

    out = {"edgecnn": __version__, "python": platform.python_version(), "numpy": np.__version__}
    for mod in ("onnxruntime", "torch"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            out[mod] = None
    # the bench extra's peers: from their installed metadata, without importing them
    for dist in ("openvino", "ncnn", "pnnx", "MNN", "ai-edge-litert"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[dist] = importlib.metadata.version(dist)
    return out


# ---- printing -----------------------------------------------------------------------------------

def _ms(v: float) -> str:
    return f"{v:.2f}" if v >= 1 else f"{v:.3g}"


def format_table(result: dict) -> str:
    """A plain-text table: backend, threads, ms/frame median and min, GFLOP/s, ratio."""
    head = ["backend", "threads", "ms median", "ms min", "GFLOP/s", "compiled/this"]
    rows = [head]
    for e in result["entries"]:
        if not e["available"]:
            rows.append([e["backend"], str(e["threads"]), e["reason"], "", "", ""])
            continue
        ratio = "" if e["ratio"] is None else f"{e['ratio']:.2f}"
        rows.append([e["backend"], str(e["threads"]), _ms(e["ms_median"]), _ms(e["ms_min"]),
                     f"{e['gflops']:.1f}", ratio])
    widths = [max(len(r[i]) for r in rows if len(r[i]) < 40) for i in range(len(head))]
    lines = [f"{result['model']}: {result['total_macs'] / 1e6:,.1f} M MACs, batch 1, "
             f"{result['machine']['cpu']} ({result['machine']['usable_cores']} cores), "
             f"{result['date']}"]
    for r in rows:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip())
    lines.append("compiled/this < 1: the compiled model is faster than that backend")
    busy = busy_warning(result)
    if busy:
        lines.append(busy)
    return "\n".join(lines)


def busy_warning(result: dict) -> str:
    """A warning when other work kept the machine busy while timing ("" when it was quiet)."""
    m = result["machine"]
    load = m.get("load_average_1min") or {}
    worst = max((v for v in (load.get("before"), load.get("after")) if v is not None),
                default=None)
    if worst is None or worst < 0.5 * (m.get("usable_cores") or 1):
        return ""
    return (f"warning: the machine was busy (1-minute load average up to {worst:g} on "
            f"{m.get('usable_cores')} cores): medians, multi-threaded ones most, are inflated; "
            "the min column is the better guide")
