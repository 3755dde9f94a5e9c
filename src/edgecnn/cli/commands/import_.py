"""`edgecnn import FILE -o model.safetensors`: ONNX, TFLite or Darknet → an edgecnn model."""

import json

from ...formats.importers import convert

HELP = "import an .onnx, .tflite or Darknet .cfg (+ .weights) model as an edgecnn model file"


def add_arguments(p):
    p.add_argument("file", help="the model: .onnx, .tflite, or a Darknet .cfg")
    p.add_argument("-o", "--output", required=True, help="the .safetensors file to write")
    p.add_argument("--weights", help="Darknet .weights for a .cfg (without: He-initialized)")
    p.add_argument("--fake-quant", action="store_true",
                   help="quantized .tflite: round activations as LiteRT does (fake_quant layers)")
    p.add_argument("--float", dest="as_float", action="store_true",
                   help="quantized .tflite: a float graph (default: an integer graph that "
                        "computes as LiteRT's reference kernels)")
    p.add_argument("--format", choices=("text", "json"), default="text")


def run(args) -> int:
    r = convert(args.file, args.output, args.weights, args.fake_quant, args.as_float)
    if args.format == "json":
        print(json.dumps(r, indent=2))
        return 0
    h, w, c = r["input"]
    print(f"wrote {r['output']} ({r['name']}: {r['layers']} layers, input {h}x{w}x{c}, "
          f"{r['outputs']} outputs, {r['params']:,} params, {r['macs']:,} MACs)")
    p = r["preprocessing"]
    print(f"preprocessing: {p['channel_order']}, pixels in {p['pixel_range']}, mean {p['mean']}, "
          f"std {p['std']}, {p['resize']} {p['crop_fraction']:g}; labels: {r['labels']}")
    for note in r["notes"]:
        print(f"note: {note}")
    return 0
