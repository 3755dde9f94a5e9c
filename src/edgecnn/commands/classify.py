import json
import sys

from ..classify import BACKENDS, classify
from ..modelfile import resolve

HELP = "classify images (files or folders) and print the top-k classes"


def add_arguments(p):
    p.add_argument("model", help="model file, zoo name or ELL architecture string")
    p.add_argument("images", nargs="+", help="image files (JPEG, PNG, BMP, …) or folders")
    p.add_argument("--top", type=int, default=5, help="how many classes to show (default 5)")
    p.add_argument("--backend", choices=BACKENDS, default="reference")
    p.add_argument("--format", choices=("text", "json"), default="text")


def run(args) -> int:
    g = resolve(args.model)
    results = classify(g, args.images, top=args.top, backend=args.backend)
    if args.format == "json":
        print(json.dumps({"model": g.name, "backend": args.backend,
                          "results": [r.to_json() for r in results]}, indent=1))
    else:
        if str(g.meta.get("weights", "")).startswith("untrained"):
            print(f"note: {g.name} has untrained weights (He-initialized): predictions are "
                  "arbitrary; train it or pass a trained model file")
        for r in results:
            if r.error:
                continue
            print(r.image)
            for t in r.top:
                print(f"  {t['probability']:7.2%}  {t['id']:>10}  {t['name']}")
    bad = [r for r in results if r.error]
    for r in bad:
        print(f"edgecnn classify: skipped {r.error}", file=sys.stderr)
    return 1 if bad and len(bad) == len(results) else 0
