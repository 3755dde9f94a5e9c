"""`edgecnn list`: every registered architecture with its input size, params and MACs."""

from ... import zoo
from ...publish.summary import render_catalog

HELP = "list the registered architectures with their input size, params and MACs"


def add_arguments(p):
    p.add_argument("--format", choices=("table", "json"), default="table")


def run(args) -> int:
    print(render_catalog(zoo.catalog(), args.format), end="")
    return 0
