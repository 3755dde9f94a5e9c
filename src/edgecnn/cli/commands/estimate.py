"""`edgecnn estimate MODEL --device pi3,pi4,pi5`: estimated speed on a board (not measured)."""

import json
import sys

from ...apps.resolve import resolve
from ...core.fileio import write_text_atomic
from ...errors import EdgecnnError
from ...publish.estimate import DEVICES, MAX_PUBLISHED_ERROR, estimate, read_validation, report

HELP = "estimate batch-1 speed on a Raspberry Pi: instruction counts under qemu x llvm-mca"


def add_arguments(p):
    p.add_argument("model", help="model file, zoo name or ELL architecture string")
    p.add_argument("--device", default="pi3", help=f"comma-separated, from {', '.join(DEVICES)}")
    p.add_argument("--validation", metavar="JSON",
                   help="the x86 validation table (benchmarks/estimate_validation.py writes it): "
                        "its error travels with the estimate")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("-o", "--output", help="also write the JSON report (`edgecnn card --bench` "
                                          "reads it) to this file")


def run(args) -> int:
    devices = [d.strip() for d in args.device.split(",") if d.strip()]
    unknown = [d for d in devices if d not in DEVICES]
    if unknown or not devices:
        raise EdgecnnError(f"estimate: unknown device {', '.join(unknown) or '(none)'}; use "
                           f"{', '.join(DEVICES)}")
    error = read_validation(args.validation) if args.validation else None
    g = resolve(args.model)
    results = [estimate(g, DEVICES[d], progress=lambda s: print(s, file=sys.stderr))
               for d in devices]
    r = report(g, results, error)
    text = json.dumps(r, indent=2)
    if args.output:
        write_text_atomic(args.output, text + "\n")
    if args.format == "json":
        print(text)
        return 0
    print(f"{g.name}: ESTIMATED, not measured ({r['entries'][0]['method']})")
    for e in results:
        print(f"  {e['label']:<22} {e['ms']:9.1f} ms/frame  ({e['compute_ms']:.1f} compute + "
              f"{e['memory_ms']:.1f} memory; {e['instructions'] / 1e6:.1f} M instructions, "
              f"-mcpu={e['mcpu']} at {e['ghz']} GHz){'; ' + e['note'] if e['note'] else ''}")
    if error is None:
        print("not validated: pass --validation (the x86 validation table); without it these "
              "are no figures to publish")
    else:
        verdict = ("within" if error <= MAX_PUBLISHED_ERROR else "WORSE than")
        print(f"x86 validation error of the method: ±{error:.0%} ({verdict} the "
              f"±{MAX_PUBLISHED_ERROR:.0%} needed to publish these as figures)")
    return 0
