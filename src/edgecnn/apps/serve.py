"""A local demo page: drop an image, see the top-5 (standard library HTTP server only).

``GET /`` is a self-contained page; ``POST /classify`` takes the image file's bytes as the body
and answers ``{"top": [{"id", "name", "probability"}, …], "ms": …}``. The server binds to
127.0.0.1 unless told otherwise. Bad requests, limits and concurrency: :mod:`.serve_http`.
"""

from __future__ import annotations

import html
import io
import threading
import time

import numpy as np
from PIL import Image

from ..core.graph import Graph
from ..core.labels import class_names
from ..core.preprocess import preprocess
from .classify import backend_fn, probabilities, top_k
from .serve_http import BoundedServer, JsonHandler, Limits, RequestError, bind, read_body

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


MAX_PIXELS = 24_000_000  # a 6000x4000 camera photo; decoding it takes 72 MB of RGB


def decode_upload(data: bytes, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Uploaded bytes → RGB image, or a RequestError (400 undecodable, 413 too many pixels).

    The size is checked from the header, before any pixel is decoded, so a small file that
    declares a huge image (a decompression bomb) costs nothing.
    """
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise RequestError(413, f"image of {w}x{h} pixels is more than the limit of "
                                        f"{max_pixels / 1e6:g} Mpixels: send a smaller image")
            return im.convert("RGB")
    except Image.DecompressionBombError:  # Pillow's own limit, checked in open()
        raise RequestError(413, f"image has more pixels than the limit of {max_pixels / 1e6:g} "
                                "Mpixels (a decompression bomb?): send a smaller image") from None
    except RequestError:
        raise
    except Exception as e:  # Pillow raises many kinds on malformed data (OSError, SyntaxError…)
        raise RequestError(400, f"cannot decode the image ({type(e).__name__}: {e}); send a "
                                "JPEG, PNG, BMP, GIF, TIFF, WebP or PPM file") from None


class Classifier:
    """Decode, preprocess and classify one uploaded image (the model runs one at a time)."""

    def __init__(self, g: Graph, backend: str = "reference", top: int = 5,
                 max_pixels: int = MAX_PIXELS):
        self.g, self.top, self.max_pixels = g, top, max_pixels
        self.run = backend_fn(g, backend)
        self.names = class_names(g.labels, g.num_classes)
        self.lock = threading.Lock()
        h, w, c = g.input_shape
        self.page = PAGE.format(name=html.escape(g.name), input=f"{h}x{w}x{c}",
                                classes=g.num_classes, backend=html.escape(backend))

    def __call__(self, data: bytes) -> dict:
        """Top-k of one upload: {"top": [...], "ms": model time}; RequestError if bad."""
        im = decode_upload(data, self.max_pixels)
        h, w, _ = self.g.input_shape
        x = preprocess(im, self.g.preprocessing, (h, w))[None]
        with self.lock:
            t0 = time.perf_counter()
            p = probabilities(self.g, self.run(x))[0]
            ms = (time.perf_counter() - t0) * 1e3
        return {"top": top_k(np.asarray(p), self.names, self.top), "ms": ms}


def make_handler(clf: Classifier, limits: Limits) -> type[JsonHandler]:
    """The request handler class: GET / (the page), POST /classify (JSON)."""

    def page(h: JsonHandler):
        return 200, clf.page.encode(), "text/html; charset=utf-8"

    def classify(h: JsonHandler):
        return 200, clf(read_body(h.headers, h.rfile, limits.max_upload)), None

    routes = {("GET", "/"): page, ("GET", "/index.html"): page,
              ("POST", "/classify"): classify}
    return type("Handler", (JsonHandler,), {"routes": routes, "limits": limits})


def make_server(g: Graph, host: str = "127.0.0.1", port: int = 8000,
                backend: str = "reference", limits: Limits | None = None) -> BoundedServer:
    """A server bound to (host, port), not yet serving: call ``serve_forever()``.

    ``limits`` bounds concurrency, timeouts and upload size (see :mod:`edgecnn.serve_http`).
    A port in use is one ServeError.
    """
    limits = limits or Limits()
    return bind(host, port, make_handler(Classifier(g, backend), limits), limits)
