"""`edgecnn export MODEL --format onnx -o FILE`: the model as an ONNX file."""

from ...apps.resolve import resolve
from ...formats.onnx_export import DEFAULT_OPSET, export

HELP = "export a model to ONNX (input 'input': preprocessed float32 NCHW; output 'output')"


def add_arguments(p):
    p.add_argument("model", help="model file, zoo name or ELL architecture string")
    p.add_argument("--format", choices=["onnx"], default="onnx", help="the file format")
    p.add_argument("-o", "--output", required=True, help="the file to write (e.g. model.onnx)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET,
                   help=f"ONNX opset version (default {DEFAULT_OPSET})")
    p.add_argument("--seed", type=int, default=0,
                   help="weight seed when MODEL is an architecture (He initialization)")


def run(args) -> int:
    g = resolve(args.model, seed=args.seed)
    path = export(g, args.output, opset=args.opset)
    h, w, c = g.input_shape
    print(f"wrote {path} ({g.name}, opset {args.opset}, input 'input' Nx{c}x{h}x{w} NCHW float32, "
          f"output 'output')")
    return 0
