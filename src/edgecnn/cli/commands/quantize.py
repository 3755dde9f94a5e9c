"""`edgecnn quantize MODEL --calibrate DIR -o OUT`: post-training int8 quantization."""

import json

from ...apps.quantize import METHODS, Options, quantize_model

HELP = "quantize a float model to int8 with calibration images (post-training)"


def add_arguments(p):
    p.add_argument("model", help="model file, pretrained name, zoo name or ELL string")
    p.add_argument("--calibrate", required=True, metavar="DIR",
                   help="a folder of images (searched recursively, sorted by path)")
    p.add_argument("-o", "--output", required=True, help="the integer .safetensors to write")
    p.add_argument("--images", type=int, default=100, help="calibration images (default 100)")
    p.add_argument("--method", choices=METHODS, default="percentile",
                   help="activation range: min/max, a percentile, or entropy (KL)")
    p.add_argument("--percentile", type=float, default=99.99)
    p.add_argument("--per-tensor", action="store_true",
                   help="one weight scale per layer (default: one per output channel)")
    p.add_argument("--keep-float", default="",
                   help="comma list of layers to keep in float: names, 'first', 'last'")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--format", choices=("table", "json"), default="table")


def run(args) -> int:
    keep = tuple(k.strip() for k in args.keep_float.split(",") if k.strip())
    opts = Options(args.method, not args.per_tensor, keep, args.percentile)
    r = quantize_model(args.model, args.calibrate, args.output, args.images, opts,
                       args.batch_size)
    if args.format == "json":
        print(json.dumps(r, indent=1))
        return 0
    print(f"{'layer':40s} {'kind':14s} {'scale':>11s} {'zp':>5s} {'SQNR dB':>8s}")
    for row in r["layers"]:
        print(f"{row['layer']:40s} {row['kind']:14s} {row['scale']:11.5g} "
              f"{row['zero_point']:5d} {row['sqnr_db']:8.1f}")
    if "logits_sqnr_db" in r:
        print(f"SQNR at the scores ({r['logits']}): {r['logits_sqnr_db']:.1f} dB")
    print(f"SQNR at the output ({r['output_layer']}): {r['output_sqnr_db']:.1f} dB")
    print(f"wrote {r['output']}: weights "
          f"{r['int_weight_bytes']:,} bytes (float {r['float_weight_bytes']:,}); "
          f"{r['calibration_images']} calibration images, method {r['method']}")
    for s in r["skipped"]:
        print(f"skipped {s['image']}: {s['error']}")
    return 0
