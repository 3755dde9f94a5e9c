"""``edgecnn.compile(model)``: build a model into a shared library and run it through ctypes.

Builds are cached in ``$EDGECNN_CACHE/compiled/<key>`` (default ``~/.cache/edgecnn``), the key
hashing the graph JSON, the weights, the target, the options, the runtime sources and the
compiler's own modules, so compiling the same model again only loads the library. The library
is built with weights in ``weights.bin`` (much quicker to compile than const data) and a
caller-provided arena (one per CompiledModel), and with per-op timing (``profile``).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..core.fileio import cache_dir
from ..core.graph import Graph
from ..core.reference import check_input
from ..errors import EdgecnnError
from . import build, targets


def cache_root() -> Path:
    return cache_dir() / "compiled"


def cache_key(g: Graph, t: targets.Target, options: dict) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(g.to_json(), sort_keys=True).encode())
    for k in sorted(g.weights):
        a = np.ascontiguousarray(g.weights[k], np.float32)
        h.update(k.encode() + str(a.shape).encode() + a.tobytes())
    h.update(repr((t, sorted(options.items()))).encode())
    # the runtime and the compiler itself: a changed pass or kernel means a new build
    sources = [f for f in build.RUNTIME_DIR.iterdir() if f.suffix in (".c", ".h")]
    sources += list(Path(__file__).parent.glob("*.py"))
    for f in sorted(sources):
        h.update(f.name.encode() + f.read_bytes())
    h.update(build._version().encode())
    return h.hexdigest()[:24]


class CompiledModel:
    """A model built into ``lib<name>.so``; ``predict`` runs it on NHWC float32 batches.

    One activation arena per object: use one object per Python thread. ``set_threads`` sets
    the OpenMP threads of the library (shared by every object of the same build)."""

    def __init__(self, g: Graph, gen: build.Generated, threads: int | None = None,
                 library: str | os.PathLike | None = None):
        """Load ``gen``'s library (or ``library``, e.g. one holding several models)."""
        self.graph = g
        self.name = gen.name
        self.target = gen.target.name
        self.dir = gen.dir
        self.arena_bytes = gen.arena_bytes
        self.algorithms = gen.algos
        self.ops = gen.ops
        self.input_shape = g.input_shape
        self.num_classes = g.num_classes
        self._lib = ctypes.CDLL(str(library or gen.library))
        p = self.name
        fp = ctypes.POINTER(ctypes.c_float)
        self._predict = getattr(self._lib, f"{p}_predict_with_arena")
        self._predict.argtypes = [fp, fp, ctypes.c_void_p]
        self._predict.restype = ctypes.c_int
        getattr(self._lib, f"{p}_arena_size").restype = ctypes.c_size_t
        if getattr(self._lib, f"{p}_arena_size")() != self.arena_bytes:
            raise EdgecnnError(f"{gen.library}: arena size differs from the plan: rebuild it")
        meta = getattr(self._lib, f"{p}_metadata")
        meta.restype = ctypes.c_char_p
        self.metadata = json.loads(meta().decode())
        load = getattr(self._lib, f"{p}_load_weights", None)
        if load is not None:
            load.argtypes = [ctypes.c_char_p]
            rc = load(str(gen.dir / "weights.bin").encode())
            if rc != 0:
                raise EdgecnnError(f"{gen.dir / 'weights.bin'}: cannot load the weights "
                                   f"(code {rc}); delete {gen.dir} to rebuild")
        # 64 extra bytes so the arena can start on a 64-byte boundary
        self._arena = np.zeros(self.arena_bytes + 64, np.uint8)
        skip = -self._arena.ctypes.data % 64
        self._arena_ptr = ctypes.c_void_p(self._arena.ctypes.data + skip)
        if threads is not None:
            self.set_threads(threads)

    def set_threads(self, n: int) -> None:
        if int(n) < 1:
            raise EdgecnnError(f"threads must be at least 1, got {n}")
        getattr(self._lib, f"{self.name}_set_threads")(ctypes.c_int(int(n)))

    def _check(self, x) -> np.ndarray:
        return check_input(self.graph, x, "compiled model")

    def predict(self, x) -> np.ndarray:
        """(N, H, W, C) or (H, W, C) preprocessed float input -> (N, classes) float32."""
        x = self._check(x)
        return self._run(self._predict, x, lambda a: a.ctypes.data_as(ctypes.POINTER(
            ctypes.c_float)))

    def predict_quantized(self, q) -> np.ndarray:
        """(N, H, W, C) or (H, W, C) input already quantized (the uint8/int8 type and the scale
        and zero point of the model's first ``quantize`` layer) -> (N, classes) float32."""
        fn = getattr(self._lib, f"{self.name}_predict_quantized_with_arena", None)
        first = self.graph.layers[1] if len(self.graph.layers) > 1 else None
        if fn is None or first is None or first.kind != "quantize":
            raise EdgecnnError(f"compiled model {self.graph.name!r} takes float input only: "
                               "its input is not quantized by its first layer")
        want = np.dtype(first.attrs["dtype"])
        q = np.asarray(q)
        if q.dtype != want:
            raise EdgecnnError(f"compiled model {self.graph.name!r}: quantized input must be "
                               f"{want}, got {q.dtype}")
        q = np.ascontiguousarray(q.reshape(-1, *self.input_shape))
        return self._run(fn, q, lambda a: ctypes.c_void_p(a.ctypes.data))

    def _run(self, fn, batch: np.ndarray, as_arg) -> np.ndarray:
        """``fn(input, output, arena)`` for each frame of ``batch``: (N, classes) float32."""
        out = np.empty((batch.shape[0], self.num_classes), np.float32)
        fp = ctypes.POINTER(ctypes.c_float)
        for i in range(batch.shape[0]):
            rc = fn(as_arg(batch[i]), out[i].ctypes.data_as(fp), self._arena_ptr)
            if rc != 0:
                raise EdgecnnError(f"compiled model {self.graph.name!r} failed (code {rc}); "
                                   "rebuild it (delete the build folder) or use --backend "
                                   "reference")
        return out

    def profile(self, x, repeats: int = 5) -> list[dict]:
        """Milliseconds per op (mean of ``repeats`` runs on the first image of ``x``), in
        execution order: rows {"layer", "op", "kernel", "ms"}. The first op's time includes
        copying the input into the arena."""
        fn = getattr(self._lib, f"{self.name}_profile", None)
        if fn is None or not self.ops:
            raise EdgecnnError(f"{self.dir}: built without per-op timing (EC_PROFILE); build it "
                               "with edgecnn.compile(), which adds it")
        x = self._check(x)[:1]
        out = np.empty(self.num_classes, np.float32)
        ms = np.zeros(len(self.ops), np.float64)
        fp = ctypes.POINTER(ctypes.c_float)
        fn.argtypes = [fp, fp, ctypes.c_void_p, ctypes.POINTER(ctypes.c_double)]
        self.predict(x)  # warm the caches
        for _ in range(max(1, repeats)):
            rc = fn(x[0].ctypes.data_as(fp), out.ctypes.data_as(fp), self._arena_ptr,
                    ms.ctypes.data_as(ctypes.POINTER(ctypes.c_double)))
            if rc != 0:
                raise EdgecnnError(f"compiled model {self.graph.name!r} failed (code {rc}); "
                                   "rebuild it (delete the build folder) or use --backend "
                                   "reference")
        return [{"layer": name, "op": what, "kernel": algo, "ms": float(t) / max(1, repeats)}
                for (name, what, algo), t in zip(self.ops, ms, strict=True)]

    def __repr__(self) -> str:
        return (f"CompiledModel({self.graph.name!r}, target={self.target!r}, "
                f"arena_bytes={self.arena_bytes}, dir={str(self.dir)!r})")


def compile(model, target: str = "host", threads: int | None = None, ref_kernels: bool = False,
            cc: str | None = None, opt_level: str | None = None,
            cache_dir: str | os.PathLike | None = None) -> CompiledModel:  # noqa: A001
    """Build the Graph ``model`` for ``target`` and load it.

    ``ref_kernels`` forces the reference C kernels everywhere; ``cc`` picks the compiler (e.g.
    clang); ``opt_level`` overrides the target's -O flag.
    """
    if not isinstance(model, Graph):
        raise EdgecnnError(f"compile takes a Graph, not {type(model).__name__}: "
                           "edgecnn.compile(model) also takes a file or a name")
    g = model
    t = targets.get(target, cc)
    require_loadable(t)
    options = {"ref_kernels": ref_kernels, "opt_level": opt_level, "arena": "caller",
               "weights": "file"}
    root = Path(cache_dir) / "compiled" if cache_dir else cache_root()
    final = root / cache_key(g, t, options)
    gen = _cached(final)
    if gen is None:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
        try:
            gen = build.generate(g, tmp, t, arena="caller", weights="file",
                                 ref_kernels=ref_kernels)
            build.build_dir(gen, program=False, opt_level=opt_level,
                            extra_flags=("-DEC_PROFILE",))
            _write_info(tmp, gen)
            with contextlib.suppress(OSError):  # another process finished the same build first
                os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        gen = _cached(final)
        if gen is None:  # pragma: no cover - the rename failed and nobody else built it
            raise EdgecnnError(f"could not store the build in {final}; check that folder is "
                               "writable, or set EDGECNN_CACHE to one that is")
    return CompiledModel(g, gen, threads)


def require_loadable(t: targets.Target, m: targets.Machine | None = None) -> None:
    """Refuse a target whose code the running machine (or ``m``) cannot execute."""
    m = m or targets.this_machine()
    if t.runs_on(m):
        return
    here = [n for n in targets.TARGETS if targets.get(n, machine=m).runs_on(m)]
    why = (f"it is {t.arch} code and this machine is {m.arch}" if t.arch and t.arch != m.arch
           else f"this CPU lacks {', '.join(sorted(set(t.needs) - m.flags))}")
    raise EdgecnnError(f"a {t.name!r} library cannot run on this machine ({why}): use "
                       f"`edgecnn compile MODEL --target {t.name} -o DIR` and copy it to the "
                       f"device (loadable here: {', '.join(here)})")


def _write_info(d: Path, gen: build.Generated) -> None:
    info = {"name": gen.name, "target": gen.target.name, "cc": gen.target.cc,
            "arena_bytes": gen.arena_bytes, "algos": gen.algos, "sources": gen.sources,
            "weight_floats": gen.weight_floats, "ops": gen.ops}
    (d / "build.json").write_text(json.dumps(info, indent=1))


def _cached(d: Path) -> build.Generated | None:
    try:
        info = json.loads((d / "build.json").read_text())
    except (OSError, ValueError):
        return None
    if not (d / f"lib{info['name']}.so").is_file():
        return None
    t = targets.get(info["target"], info["cc"])
    from .emit import Options

    return build.Generated(d, info["name"], t, Options(info["name"], "caller", "file", t.nb),
                           info["arena_bytes"], info["weight_floats"], info["sources"],
                           info["algos"], ops=info.get("ops", []))
