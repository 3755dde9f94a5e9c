"""Run one coverage-guided fuzz target with atheris (libFuzzer for Python).

    python fuzz/run.py TARGET [--seconds 30] [--corpus DIR] [--artifacts DIR] [-- LIBFUZZER ARGS]
    python fuzz/run.py TARGET --replay FILE...     run saved inputs once (regressions, crashes)

TARGET is one of fuzz/harnesses.py's TARGETS (model_file, onnx, tflite, darknet, image,
serve). The corpus starts from the target's seeds (tiny valid files) and grows in DIR. A
finding stops the run with a non-zero status and leaves ``crash-*`` / ``timeout-*`` /
``oom-*`` in the artifacts folder; the summary line reports the cases run.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def write_seeds(corpus: Path, seeds: list[bytes]) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    for s in seeds:
        (corpus / f"seed-{hashlib.sha1(s).hexdigest()[:16]}").write_bytes(s)


def preload(name: str) -> None:
    """Import the edgecnn code the target runs (inside instrument_imports: covered)."""
    import edgecnn.core.graph  # noqa: F401
    import edgecnn.core.preprocess  # noqa: F401
    import edgecnn.core.reference  # noqa: F401
    import edgecnn.formats.modelfile  # noqa: F401

    if name in ("onnx", "tflite", "darknet"):
        import edgecnn.formats.importers  # noqa: F401
        import edgecnn.formats.importers.darknet  # noqa: F401
    if name == "onnx":
        import edgecnn.formats.importers.onnx  # noqa: F401
    if name == "tflite":
        import edgecnn.formats.importers.tflite  # noqa: F401
    if name == "serve":
        import edgecnn.apps.serve  # noqa: F401


def third_party(name: str) -> None:
    """Import the big dependencies first, uninstrumented: instrumenting numpy, protobuf and
    onnx takes minutes and guides nothing in our code."""
    import numpy  # noqa: F401

    if name == "onnx":
        import onnx  # noqa: F401
    if name == "tflite":
        import flatbuffers  # noqa: F401
        import tflite  # noqa: F401
    if name not in ("image", "serve"):  # there Pillow's header parsers are worth covering
        import PIL.Image  # noqa: F401


def main() -> int:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("target")
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--corpus", type=Path)
    ap.add_argument("--artifacts", type=Path, default=Path("."))
    ap.add_argument("--replay", nargs="+", type=Path)
    args = ap.parse_args(argv)

    if args.replay:
        from harnesses import TARGETS

        one_input = TARGETS[args.target][0]
        for path in args.replay:
            one_input(path.read_bytes())
        print(f"replayed {len(args.replay)} input(s): no finding")
        return 0

    import atheris

    third_party(args.target)
    with atheris.instrument_imports(include=["edgecnn", "PIL"]):
        from harnesses import TARGETS

        if args.target not in TARGETS:
            sys.exit(f"unknown target {args.target!r}; choose from {', '.join(TARGETS)}")
        preload(args.target)
    one_input, seeds = TARGETS[args.target]
    corpus = args.corpus or Path(tempfile.mkdtemp(prefix=f"corpus-{args.target}-"))
    write_seeds(corpus, seeds())
    args.artifacts.mkdir(parents=True, exist_ok=True)
    fuzz_args = [sys.argv[0], str(corpus), f"-max_total_time={args.seconds}", "-timeout=20",
                 "-rss_limit_mb=3072", "-print_final_stats=1",
                 f"-artifact_prefix={args.artifacts}/", *extra]
    atheris.Setup(fuzz_args, one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
