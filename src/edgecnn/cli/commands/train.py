import json

from ...apps.resolve import resolve
from ...train.labels import choose_labels
from ...train.loop import RECIPES, recipe_for, train

HELP = "train a model on an ImageNet-layout folder (PyTorch; one device or torchrun)"


def add_arguments(p):
    p.add_argument("model", help="zoo name, ELL architecture string or model file")
    p.add_argument("--data", required=True, help="training images: <class>/*.JPEG or a root "
                   "holding train/")
    p.add_argument("-o", "--output", required=True, help="the trained .safetensors to write")
    p.add_argument("--val", help="validation folder evaluated after every epoch")
    p.add_argument("--recipe", choices=sorted(RECIPES), help="hyperparameter preset (default: "
                   "ell for ELL names, alexnet for AlexNet, else default)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--workers", type=int, help="data-loading processes per training process")
    p.add_argument("--seed", type=int)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any recipe setting, e.g. --set schedule=cosine")
    p.add_argument("--own-labels", action="store_true",
                   help="take the labels from the data's class folders and resize the "
                        "classifier to them (for data that is not ILSVRC2012)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--show-recipe", action="store_true", help="print the settings and exit")


def run(args) -> int:
    g = resolve(args.model)
    recipe = RECIPES[args.recipe or recipe_for(g)]
    overrides = dict(s.split("=", 1) for s in args.set if "=" in s)
    for key in ("epochs", "batch_size", "lr", "workers", "seed"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    recipe = recipe.override(**overrides)
    if args.show_recipe:
        print(json.dumps(recipe.__dict__, indent=1))
        return 0
    g, note = choose_labels(g, args.data, args.own_labels, seed=recipe.seed)
    if note:
        print(note, flush=True)
    result = train(g, args.data, args.output, recipe, val=args.val, resume=args.resume,
                   device=args.device)
    if result.output:
        print(f"wrote {result.output}")
    return 0
