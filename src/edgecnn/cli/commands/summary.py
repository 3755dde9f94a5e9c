"""`edgecnn summary`: shapes, params, MACs and memory of a model, ELL-gallery style."""

from ...apps.resolve import resolve
from ...compiler import targets
from ...errors import EdgecnnError
from ...publish.summary import FORMATS, render

HELP = "print a model's layers with output shapes, params, MACs and memory"


def add_arguments(p):
    p.add_argument("model", metavar="NAME|MODEL",
                   help="zoo name, ELL architecture string or model file")
    p.add_argument("--format", choices=FORMATS, default="table",
                   help="table (default), markdown (with the formula behind each figure) or json")
    p.add_argument("--target", choices=[n for n, t in targets.TARGETS.items() if t.board],
                   help="a microcontroller: also say whether the model fits its flash and RAM")
    p.add_argument("--flash", metavar="SIZE", help="flash available, e.g. 1M (with --target)")
    p.add_argument("--ram", metavar="SIZE", help="RAM available, e.g. 256K (with --target)")


def run(args) -> int:
    if args.target is None:
        if args.flash or args.ram:
            raise EdgecnnError("--flash and --ram need --target (e.g. --target cortex-m4)")
        print(render(resolve(args.model, weights=False), args.format), end="")
        return 0
    return _run_fit(args)


def _run_fit(args) -> int:
    """The summary, then the fit on the microcontroller; exit status 1 when it does not fit."""
    import json

    from ...compiler.fit import fit, format_fit, parse_size

    g = resolve(args.model)
    flash = parse_size(args.flash) if args.flash else None
    ram = parse_size(args.ram) if args.ram else None
    rep = fit(g, args.target, flash, ram)
    if args.format == "json":
        print(json.dumps({"summary": json.loads(render(g, "json")), "fit": rep}, indent=2))
    else:
        print(render(g, args.format), end="")
        print(format_fit(rep), end="")
    return 0 if rep["fits"] else 1
