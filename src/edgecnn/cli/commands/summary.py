"""`edgecnn summary`: shapes, params, MACs and memory of a model, ELL-gallery style."""

from ...apps.resolve import resolve
from ...publish.summary import FORMATS, render

HELP = "print a model's layers with output shapes, params, MACs and memory"


def add_arguments(p):
    p.add_argument("model", metavar="NAME|MODEL",
                   help="zoo name, ELL architecture string or model file")
    p.add_argument("--format", choices=FORMATS, default="table",
                   help="table (default), markdown (with the formula behind each figure) or json")


def run(args) -> int:
    print(render(resolve(args.model, weights=False), args.format), end="")
    return 0
