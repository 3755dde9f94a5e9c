"""`edgecnn compile`: a model into dependency-free C for a target, built when possible."""

from ...compiler import targets

HELP = "compile a model into C (model.c, runtime, Makefile) and build it for a target"


def add_arguments(p):
    p.add_argument("model", metavar="MODEL", help="model file, zoo name or ELL architecture string")
    p.add_argument("--target", default="host", choices=list(targets.TARGETS),
                   help="what to build for (default host: this machine, -march=native)")
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="directory for the sources, Makefile and built files")
    p.add_argument("--name", help="C prefix of the API (<name>_predict ...); default: derived "
                                  "from the model name")
    p.add_argument("--arena", choices=("static", "caller"), default="static",
                   help="activation memory: a static array (default) or passed by the caller "
                        "to <name>_predict_with_arena (always the caller's on cortex-m*)")
    p.add_argument("--weights", choices=("const", "file"), default="const",
                   help="weights as const arrays in model.c (default) or in weights.bin, "
                        "read by <name>_load_weights")
    p.add_argument("--ref-kernels", action="store_true",
                   help="use the reference C kernels everywhere (slow; for checking)")
    p.add_argument("--no-build", action="store_true", help="write the sources only")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="microcontroller targets: the flash/RAM report as text or JSON")


def run(args) -> int:
    from ...apps.resolve import resolve
    from ...compiler.build import compile_to_dir

    g = resolve(args.model)
    if targets.TARGETS[args.target].board:
        return _run_mcu(g, args)
    gen = compile_to_dir(g, args.output, args.target, args.name, args.arena, args.weights,
                         args.ref_kernels, build=not args.no_build, progress=print)
    print(f"arena: {gen.arena_bytes} bytes; weights: {4 * gen.weight_floats} bytes; "
          f"C prefix: {gen.name}")
    return 0


def _run_mcu(g, args) -> int:
    """A Cortex-M target: the model (caller arena, const weights) plus the example image for the
    emulated board, built, measured and run once; flash and RAM printed and in mcu.json."""
    import json
    import sys

    from ...compiler import mcu
    from ...errors import EdgecnnError

    if args.weights == "file":
        raise EdgecnnError(f"--target {args.target} keeps the weights in flash as const data: "
                           "drop --weights file")
    if args.no_build:
        gen = mcu.generate(g, args.output, args.target, args.name, progress=print)
        print(f"arena: {gen.arena_bytes} bytes (caller-provided); C prefix: {gen.name}")
        return 0
    say = print if args.format == "text" else (lambda s: print(s, file=sys.stderr))
    rep = mcu.compile_mcu(g, args.output, args.target, args.name, progress=say)
    if args.format == "json":
        print(json.dumps(rep, indent=2))
    else:
        print(mcu.format_report(rep))
        print(f"C prefix: {rep['c_prefix']}; figures in {args.output}/mcu.json")
    return 0
