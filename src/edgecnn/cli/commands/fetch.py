import json

from ...apps.pretrained import cached_model, fetch, registry

HELP = "download a registered pretrained model (checksummed, resumable) and import it"


def add_arguments(p):
    p.add_argument("name", nargs="?", help="the model to fetch (omit to list them)")
    p.add_argument("--force", action="store_true", help="download and import again")
    p.add_argument("--format", choices=("text", "json"), default="text")


def run(args) -> int:
    if not args.name:
        reg = registry()
        if args.format == "json":
            print(json.dumps({n: {**p.__dict__, "cached": str(cached_model(n) or "")}
                              for n, p in sorted(reg.items())}, indent=1))
        else:
            for n, p in sorted(reg.items()):
                mark = "cached" if cached_model(n) else "      "
                print(f"{n:32} {mark}  {p.format:6} {p.license:12} {p.description}")
        return 0
    path = fetch(args.name, force=args.force)
    print(path)
    return 0
