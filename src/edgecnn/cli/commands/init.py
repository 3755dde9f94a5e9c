from ...apps.resolve import resolve
from ...formats.modelfile import save

HELP = "write a model file with He-initialized weights for an architecture"


def add_arguments(p):
    p.add_argument("name", help="zoo name or ELL architecture string (see `edgecnn list`)")
    p.add_argument("-o", "--output", required=True, help="the .safetensors file to write")
    p.add_argument("--seed", type=int, default=0, help="random seed for the weights")


def run(args) -> int:
    g = resolve(args.name, seed=args.seed)
    path = save(g, args.output)
    print(f"wrote {path} ({g.name}, {sum(v.size for v in g.weights.values()):,} values)")
    return 0
