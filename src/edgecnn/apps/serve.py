"""A local demo page: drop an image, see the top-5 (standard library HTTP server only).

``GET /`` is a self-contained page; ``POST /classify`` takes the image file's bytes as the body
and answers ``{"top": [{"id", "name", "probability"}, …], "ms": …}``. The server binds to
127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import html
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..core.graph import Graph
from ..core.labels import class_names
from ..core.preprocess import preprocess
from .classify import backend_fn, probabilities, top_k

MAX_UPLOAD = 32 << 20

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>edgecnn — {name}</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;color:#222}}
#drop{{border:2px dashed #888;border-radius:8px;padding:2rem;text-align:center;color:#555}}
#drop.over{{background:#eef}}#preview{{max-width:100%;max-height:16rem;margin-top:1rem}}
#results{{list-style:none;padding:0}}#results li{{margin:.3rem 0}}
.bar{{display:inline-block;height:.8rem;background:#1f77b4;margin-right:.5rem;vertical-align:middle}}
.err{{color:#b00}}
</style></head><body>
<h1>{name}</h1>
<p>{input} input, {classes} classes, {backend} backend. Drop an image below or choose a file.</p>
<div id="drop">Drop an image here<br><input type="file" id="file" accept="image/*"></div>
<img id="preview" alt="">
<ol id="results"></ol>
<p id="status"></p>
<script>
const drop = document.getElementById('drop'), input = document.getElementById('file');
const results = document.getElementById('results'), status = document.getElementById('status');
function send(file) {{
  document.getElementById('preview').src = URL.createObjectURL(file);
  status.textContent = 'classifying…'; status.className = ''; results.innerHTML = '';
  fetch('classify', {{method: 'POST', body: file}}).then(r => r.json()).then(d => {{
    if (d.error) {{ status.textContent = d.error; status.className = 'err'; return; }}
    for (const t of d.top) {{
      const li = document.createElement('li');
      const bar = document.createElement('span');
      bar.className = 'bar'; bar.style.width = (t.probability * 12) + 'rem';
      li.appendChild(bar);
      li.appendChild(document.createTextNode(
        (t.probability * 100).toFixed(1) + '%  ' + t.name + ' (' + t.id + ')'));
      results.appendChild(li);
    }}
    status.textContent = d.ms.toFixed(1) + ' ms';
  }}).catch(e => {{ status.textContent = String(e); status.className = 'err'; }});
}}
input.addEventListener('change', () => input.files[0] && send(input.files[0]));
drop.addEventListener('dragover', e => {{ e.preventDefault(); drop.classList.add('over'); }});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', e => {{
  e.preventDefault(); drop.classList.remove('over');
  if (e.dataTransfer.files[0]) send(e.dataTransfer.files[0]);
}});
</script></body></html>
"""


class Classifier:
    """Decode, preprocess and classify one uploaded image (one at a time: a lock)."""

    def __init__(self, g: Graph, backend: str = "reference", top: int = 5):
        self.g, self.top = g, top
        self.run = backend_fn(g, backend)
        self.names = class_names(g.labels, g.num_classes)
        self.lock = threading.Lock()
        h, w, c = g.input_shape
        self.page = PAGE.format(name=html.escape(g.name), input=f"{h}x{w}x{c}",
                                classes=g.num_classes, backend=html.escape(backend))

    def __call__(self, data: bytes) -> dict:
        try:
            with Image.open(io.BytesIO(data)) as im:
                im = im.convert("RGB")
        except (UnidentifiedImageError, OSError, ValueError) as e:
            return {"error": f"cannot decode the image ({e})"}
        h, w, _ = self.g.input_shape
        x = preprocess(im, self.g.preprocessing, (h, w))[None]
        with self.lock:
            t0 = time.perf_counter()
            p = probabilities(self.g, self.run(x))[0]
            ms = (time.perf_counter() - t0) * 1e3
        return {"top": top_k(np.asarray(p), self.names, self.top), "ms": ms}


def make_server(g: Graph, host: str = "127.0.0.1", port: int = 8000,
                backend: str = "reference") -> ThreadingHTTPServer:
    clf = Classifier(g, backend)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):  # quiet: one line per request is noise here
            pass

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path in ("/", "/index.html"):
                self._send(200, clf.page.encode(), "text/html; charset=utf-8")
            else:
                self._send(404, b"not found", "text/plain")

        def do_POST(self):
            if self.path != "/classify":
                self._send(404, b"not found", "text/plain")
                return
            n = int(self.headers.get("Content-Length") or 0)
            if n <= 0 or n > MAX_UPLOAD:
                out = {"error": f"send one image of at most {MAX_UPLOAD >> 20} MB"}
            else:
                out = clf(self.rfile.read(n))
            self._send(400 if "error" in out else 200, json.dumps(out).encode(),
                       "application/json")

    return ThreadingHTTPServer((host, port), Handler)
