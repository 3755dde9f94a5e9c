from ...apps.resolve import resolve
from ...publish.card import build, write

HELP = "write the model card (Markdown, HTML, JSON) from the model, eval and bench reports"


def add_arguments(p):
    p.add_argument("model", help="model file, zoo name or ELL architecture string")
    p.add_argument("--eval", help="an `edgecnn eval --format json` report for this model")
    p.add_argument("--bench", action="append", default=[],
                   help="an `edgecnn bench --format json` report (repeat for several devices)")
    p.add_argument("--compiled-size", action="store_true",
                   help="compile for this machine to measure the compiled library's size "
                        "(code and weights)")
    p.add_argument("-o", "--output", required=True, help="folder for card.md/.html/.json")


def run(args) -> int:
    g = resolve(args.model)
    import os

    model_file = args.model if os.path.isfile(args.model) else None
    compiled = None
    if args.compiled_size:
        from pathlib import Path

        from ...compiler.api import compile as compile_model

        libs = sorted(Path(compile_model(g).dir).glob("lib*.so"))
        compiled = libs[0].stat().st_size if libs else None
    card = build(g, model_file, args.eval, args.bench, compiled_bytes=compiled)
    for path in write(card, args.output):
        print(f"wrote {path}")
    return 0
