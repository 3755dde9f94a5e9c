import json

from ...apps.classify import BACKENDS
from ...apps.evaluate import evaluate
from ...apps.resolve import resolve

HELP = "top-1 / top-5 accuracy on a labelled image folder (ImageNet layout)"


def add_arguments(p):
    p.add_argument("model", help="model file, zoo name or ELL architecture string")
    p.add_argument("data", help="class folders <WNID>/*.JPEG, a split root with val/, the flat "
                   "validation folder with LOC_val_solution.csv, or <WNID>_*.JPEG files")
    p.add_argument("--backend", choices=BACKENDS, default="reference")
    p.add_argument("--limit", type=int, help="evaluate N images spread evenly over the set")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("-o", "--output", help="also write the JSON report to this file")


def run(args) -> int:
    report = evaluate(resolve(args.model), args.data, backend=args.backend, limit=args.limit,
                      batch_size=args.batch_size)
    text = json.dumps(report, indent=1)
    if args.output:
        from ...core.fileio import write_text_atomic

        write_text_atomic(args.output, text + "\n")
    if args.format == "json":
        print(text)
    else:
        print(f"{report['model']} on {report['data']} ({report['backend']} backend): "
              f"{report['images']} images")
        print(f"  top-1 {report['top1']:.2%}   top-5 {report['top5']:.2%}   "
              f"{report['images_per_second']:.1f} images/s")
        if report["skipped"]:
            print(f"  {len(report['skipped'])} unreadable image(s) skipped")
    return 0
