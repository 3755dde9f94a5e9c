from ...apps.classify import BACKENDS
from ...apps.resolve import resolve
from ...apps.retarget import group, read_groups, retarget
from ...errors import EdgecnnError
from ...formats.modelfile import save

HELP = "new categories from a pretrained classifier: a new head, or ILSVRC classes grouped"


def add_arguments(p):
    p.add_argument("model", help="model file (a trained classifier), zoo name or ELL string")
    p.add_argument("-o", "--output", required=True, help="the new .safetensors to write")
    p.add_argument("--data", help="images in one subfolder per new category")
    p.add_argument("--at", help="the layer to cut at (default: the one feeding the classifier)")
    p.add_argument("--backend", choices=BACKENDS, default="reference",
                   help="backend computing the features")
    p.add_argument("--holdout", type=float, default=0.2,
                   help="fraction of images held out to report accuracy (default 0.2)")
    p.add_argument("--group", metavar="FILE", help="instead of training: merge ILSVRC2012 "
                   "classes into the categories FILE lists (JSON or 'name: wnid …' lines)")
    p.add_argument("--no-other", action="store_true", help="with --group: no 'other' category")


def run(args) -> int:
    g = resolve(args.model)
    if args.group:
        new = group(g, read_groups(args.group), other=None if args.no_other else "other")
    elif args.data:
        new = retarget(g, args.data, at=args.at, backend=args.backend, holdout=args.holdout)
        m = new.meta["retarget"]
        held = (f", held-out accuracy {m['holdout_accuracy']:.1%} on {m['holdout_images']} "
                "images" if m["holdout_accuracy"] is not None else "")
        print(f"features from layer {m['cut_at']!r} of {g.name}: training accuracy "
              f"{m['train_accuracy']:.1%}{held}")
    else:
        raise EdgecnnError("give --data DIR (new categories) or --group FILE")
    save(new, args.output)
    print(f"wrote {args.output}: {len(new.labels)} categories ({', '.join(new.labels[:6])}"
          f"{', …' if len(new.labels) > 6 else ''})")
    return 0
