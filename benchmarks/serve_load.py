"""`edgecnn serve` under load: requests/s and latency percentiles with N concurrent clients.

The server runs as its own process (`python -m edgecnn serve MODEL --port 0`, on 127.0.0.1),
so client threads do not share its interpreter. Each client posts real images (the ImageNet
samples when found, else generated PNGs) back to back; every answer is checked (200 with a
top-5, or 503 busy when past --max-active), and nothing may go unanswered.

Usage:  python benchmarks/serve_load.py [--model NAME] [--clients 16] [--requests 400]
        [--max-active 4] [--backend reference] [--json out.json]

Figures from a loaded, shared machine are indicative only; compare runs made together.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image


def sample_images(n: int) -> list[bytes]:
    root = Path(os.environ.get("EDGECNN_DATA") or Path(__file__).resolve().parents[2] /
                "shared" / "data") / "imagenet-samples"
    files = sorted(root.glob("*.JPEG"))[:n]
    if files:
        return [f.read_bytes() for f in files]
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)).save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def start_server(args) -> tuple[subprocess.Popen, int]:
    cmd = [sys.executable, "-m", "edgecnn", "serve", args.model, "--port", "0",
           "--backend", args.backend, "--max-active", str(args.max_active)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    m = re.search(r":(\d+)/", line)
    if not m:
        proc.kill()
        sys.exit(f"the server did not start: {line!r}")
    return proc, int(m.group(1))


def one_request(port: int, body: bytes) -> tuple[int, float]:
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("POST", "/classify", body, {"Content-Type": "application/octet-stream"})
        r = conn.getresponse()
        out = json.loads(r.read())
    finally:
        conn.close()
    if r.status == 200:
        assert len(out["top"]) == 5, out
    else:
        assert r.status == 503 and "busy" in out["error"], (r.status, out)
    return r.status, time.perf_counter() - t0


def run_load(port: int, images: list[bytes], clients: int, total: int) -> dict:
    per_client = total // clients

    def client(c):
        return [one_request(port, images[(c + i) % len(images)]) for i in range(per_client)]

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = [r for rs in pool.map(client, range(clients)) for r in rs]
    wall = time.perf_counter() - t0
    ok = [t for s, t in results if s == 200]
    lat = np.array(ok) * 1e3 if ok else np.zeros(1)
    return {"clients": clients, "requests": len(results), "answered_200": len(ok),
            "answered_503": sum(s == 503 for s, _ in results), "seconds": wall,
            "requests_per_second": len(results) / wall, "ok_per_second": len(ok) / wall,
            "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="d_I64x64x3CMCMCMC1AS")
    ap.add_argument("--backend", default="reference")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--max-active", type=int, default=4)
    ap.add_argument("--json")
    args = ap.parse_args()
    images = sample_images(16)
    proc, port = start_server(args)
    try:
        one_request(port, images[0])  # warm up
        res = run_load(port, images, args.clients, args.requests)
    finally:
        proc.terminate()
        proc.wait(10)
    res.update(model=args.model, backend=args.backend, max_active=args.max_active,
               cpus=os.cpu_count(), load_average=os.getloadavg()[0])
    print(f"{res['requests']} requests from {res['clients']} clients in {res['seconds']:.1f} s: "
          f"{res['requests_per_second']:.1f} req/s ({res['answered_200']} answered 200, "
          f"{res['answered_503']} 503 busy); 200s: p50 {res['p50_ms']:.1f} ms, "
          f"p99 {res['p99_ms']:.1f} ms  [load average {res['load_average']:.1f} on "
          f"{res['cpus']} CPUs: indicative only]")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
