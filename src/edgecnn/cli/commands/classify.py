import json
import sys

from ...apps.classify import BACKENDS, classify
from ...apps.resolve import resolve
from ...errors import EdgecnnError

HELP = "classify images (files or folders) and print the top-k classes"


def add_arguments(p):
    p.add_argument("model", help="model file, zoo name or ELL architecture string")
    p.add_argument("images", nargs="*", help="image files (JPEG, PNG, BMP, …) or folders")
    p.add_argument("--top", type=int, default=5, help="how many classes to show (default 5)")
    p.add_argument("--backend", choices=BACKENDS,
                   help="default: reference for images, compiled for video and camera")
    frames = p.add_argument_group("video and camera (needs the video extra: OpenCV)")
    frames.add_argument("--video", metavar="FILE", help="classify the frames of a video file")
    frames.add_argument("--camera", type=int, metavar="N", help="classify camera N's frames")
    frames.add_argument("--every", type=int, default=1, help="classify every N-th frame")
    frames.add_argument("--max-frames", type=int, help="stop after N classified frames")
    frames.add_argument("--headless", action="store_true",
                        help="no window: print a line per frame (or write --csv)")
    frames.add_argument("--csv", metavar="FILE", help="write one CSV row per classified frame")
    p.add_argument("--format", choices=("text", "json"), default="text")


def run(args) -> int:
    g = resolve(args.model)
    if args.video is not None or args.camera is not None:
        return _frames(g, args)
    if not args.images:
        raise EdgecnnError("give image files or folders, --video FILE or --camera N")
    args.backend = args.backend or "reference"
    results = classify(g, args.images, top=args.top, backend=args.backend)
    if args.format == "json":
        print(json.dumps({"model": g.name, "backend": args.backend,
                          "results": [r.to_json() for r in results]}, indent=1))
    else:
        if str(g.meta.get("weights", "")).startswith("untrained"):
            print(f"note: {g.name} has untrained weights (He-initialized): predictions are "
                  "arbitrary; train it or pass a trained model file")
        for r in results:
            if r.error:
                continue
            print(r.image)
            for t in r.top:
                print(f"  {t['probability']:7.2%}  {t['id']:>10}  {t['name']}")
    bad = [r for r in results if r.error]
    for r in bad:
        print(f"edgecnn classify: skipped {r.error}", file=sys.stderr)
    return 1 if bad and len(bad) == len(results) else 0


def _frames(g, args) -> int:
    from ...apps.frames import classify_frames, print_results, show, write_csv

    if args.video is not None and args.camera is not None:
        raise EdgecnnError("give --video or --camera, not both")
    source = args.video if args.video is not None else args.camera
    results = classify_frames(g, source, backend=args.backend or "compiled", every=args.every,
                              top=args.top, max_frames=args.max_frames)
    if args.csv:
        n = write_csv(results, args.csv, args.top)
        print(f"wrote {args.csv}: {n} frames")
    elif args.headless:
        print_results(results)
    else:
        show(results)
    return 0
