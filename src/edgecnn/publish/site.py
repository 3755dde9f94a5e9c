"""The gallery: a static site indexing model cards, with accuracy-versus-speed charts.

``build_site(cards_dir, site_dir)`` reads every ``card.json`` under ``cards_dir`` and writes
``index.html`` (a sortable table and the charts inline), one ``charts/<device>.svg`` per device
and a copy of each card's HTML page. A chart plots top-1 against ms/frame (log scale) on ONE
device only — milliseconds on an x86 server and on a Raspberry Pi are different axes — with a
series, marker and legend text for each kind of figure: measured by edgecnn bench (circles),
estimated by edgecnn estimate (triangles, with the estimate's x86 validation error) and ELL's
published gallery figures (squares, Raspberry Pi 3 only). Each series gets its Pareto frontier:
the models no other model of the series beats on both speed and accuracy. No server, no
external script or font: the site opens from the file system.
"""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path

from ..core.fileio import write_text_atomic
from ..errors import EdgecnnError

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b")


def load_cards(cards_dir: str | os.PathLike) -> list[dict]:
    paths = sorted(Path(cards_dir).rglob("card.json"))
    if not paths:
        raise EdgecnnError(f"{cards_dir}: no card.json files (write cards with `edgecnn card "
                           "MODEL -o DIR`)")
    cards = []
    for p in paths:
        try:
            c = json.loads(p.read_text())
            c["_dir"] = p.parent
            if "name" not in c or "totals" not in c:
                raise ValueError("not an edgecnn card")
        except (json.JSONDecodeError, ValueError) as e:
            raise EdgecnnError(f"{p}: not a model card ({e})") from None
        cards.append(c)
    return cards


BOARDS = {"pi3": "Raspberry Pi 3", "pi4": "Raspberry Pi 4", "pi5": "Raspberry Pi 5",
          "pizero2": "Raspberry Pi Zero 2 W"}
# kind of figure → (marker, legend text); the order is the legend's
KINDS = {"measured": ("circle", "edgecnn, measured"),
         "estimated": ("triangle", "edgecnn, estimated"),
         "published": ("square", "ELL, published")}


def device_name(e: dict) -> str:
    """The device a performance entry is about: a Raspberry Pi board (measured on one or
    estimated for one), an emulated userland, or the CPU it was measured on."""
    if e.get("board"):
        return BOARDS.get(e["board"], e["board"])
    if e.get("emulated"):
        return f"{e.get('arch') or 'ARM'} userland under qemu-user (emulator)"
    return e["device"]


def reference_points(gallery_json: str | os.PathLike) -> list[dict]:
    """ELL's published gallery: (name, top-1, Pi 3 ms/frame) of the models that list both."""
    d = json.loads(Path(gallery_json).read_text())
    return [{"name": n, "top1": m["top1"] / 100, "ms": m["pi3_s_per_frame"] * 1000,
             "device": BOARDS["pi3"], "kind": "published",
             "series": KINDS["published"][1] + " (ELL gallery)"}
            for n, m in sorted(d["models"].items())
            if m.get("top1") is not None and m.get("pi3_s_per_frame") is not None]


def best_entries(card: dict) -> dict[tuple[str, str], dict]:
    """Per (device, measured|estimated), the card's fastest edgecnn figure: the compiled backend
    at its best thread count (another backend only when the card has no compiled one there)."""
    best: dict[tuple[str, str], dict] = {}
    for e in card["performance"]:
        key = (device_name(e), e.get("kind", "measured"))
        rank = (e["backend"] != "compiled", e["ms_per_frame"])
        cur = best.get(key)
        if cur is None or rank < (cur["backend"] != "compiled", cur["ms_per_frame"]):
            best[key] = e
    return best


def _series(e: dict) -> str:
    kind = e.get("kind", "measured")
    text = KINDS[kind][1]
    if kind == "estimated" and e.get("validation_error") is not None:
        text += f" (x86 validation error ±{e['validation_error']:.0%})"
    return text


def card_points(cards: list[dict]) -> list[dict]:
    """One point per card, device and kind (see :func:`best_entries`)."""
    pts = []
    for c in cards:
        if c["accuracy"].get("top1") is None:
            continue
        for (dev, kind), e in sorted(best_entries(c).items()):
            pts.append({"name": c["name"], "top1": c["accuracy"]["top1"],
                        "ms": e["ms_per_frame"], "device": dev, "kind": kind,
                        "series": _series(e)})
    return pts


def pareto(points: list[dict]) -> list[dict]:
    """Points no other point beats on both ms (lower) and top-1 (higher), by ms."""
    front, best = [], -1.0
    for p in sorted(points, key=lambda p: (p["ms"], -p["top1"])):
        if p["top1"] > best:
            front.append(p)
            best = p["top1"]
    return front


def _marker(kind: str, cx: float, cy: float, color: str, extra: str = "",
            opacity: float = 0.75) -> str:
    """The kind's marker at (cx, cy); ``extra`` closes the tag (attributes, children)."""
    shape = KINDS.get(kind, KINDS["measured"])[0]
    fill = f'fill="{color}" fill-opacity="{opacity:g}"'
    if shape == "square":
        return f'<rect x="{cx - 4:.1f}" y="{cy - 4:.1f}" width="8" height="8" {fill}{extra}'
    if shape == "triangle":
        return (f'<polygon points="{cx:.1f},{cy - 5:.1f} {cx - 5:.1f},{cy + 4:.1f} '
                f'{cx + 5:.1f},{cy + 4:.1f}" {fill}{extra}')
    return f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" {fill}{extra}'


def chart_svg(points: list[dict], device: str = "", width: int = 760,
              height: int = 440) -> str:
    """Top-1 against ms/frame (log x) on one device; a series (colour, marker, legend text) per
    kind of figure, a frontier per series."""
    e = html.escape
    left, right, top, bottom = 64, 290, 30, 50
    pw, ph = width - left - right, height - top - bottom
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    if not points:
        svg.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no card has '
                   "both accuracy and speed measured</text></svg>")
        return "\n".join(svg) + "\n"
    lo = 10 ** math.floor(math.log10(min(p["ms"] for p in points)))
    hi = 10 ** math.ceil(math.log10(max(p["ms"] for p in points) * 1.0001))
    ylo = max(0.0, math.floor(min(p["top1"] for p in points) * 10) / 10 - 0.1)
    yhi = min(1.0, math.ceil(max(p["top1"] for p in points) * 10) / 10 + 0.05)

    def x(ms):
        return left + pw * (math.log10(ms) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    def y(t):
        return top + ph * (1 - (t - ylo) / (yhi - ylo))

    svg.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" '
               'stroke="#999"/>')
    decade = lo
    while decade <= hi * 1.0001:
        xx = x(decade)
        svg.append(f'<line x1="{xx:.1f}" y1="{top}" x2="{xx:.1f}" y2="{top + ph}" '
                   'stroke="#eee"/>')
        svg.append(f'<text x="{xx:.1f}" y="{top + ph + 15}" text-anchor="middle">'
                   f'{decade:g}</text>')
        decade *= 10
    t = ylo
    while t <= yhi + 1e-9:
        yy = y(t)
        svg.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{left + pw}" y2="{yy:.1f}" '
                   'stroke="#eee"/>')
        svg.append(f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{t:.0%}</text>')
        t += 0.1
    svg.append(f'<text x="{left}" y="18" font-size="13" font-weight="bold">'
               f'{e(device)}</text>')
    svg.append(f'<text x="{left + pw / 2}" y="{height - 12}" text-anchor="middle">'
               f'milliseconds per frame{" on " + e(device) if device else ""} (log scale)'
               "</text>")
    svg.append(f'<text x="16" y="{top + ph / 2}" text-anchor="middle" '
               f'transform="rotate(-90 16 {top + ph / 2})">top-1 accuracy</text>')
    order = list(KINDS)
    series = sorted({(p.get("kind", "measured"), p["series"]) for p in points},
                    key=lambda ks: (order.index(ks[0]) if ks[0] in order else 9, ks[1]))
    for i, (kind, s) in enumerate(series):
        color = PALETTE[order.index(kind) if kind in order else i % len(PALETTE)]
        pts = [p for p in points if p["series"] == s]
        front = pareto(pts)
        if len(front) > 1:
            path = " ".join(f"{x(p['ms']):.1f},{y(p['top1']):.1f}" for p in front)
            svg.append(f'<polyline points="{path}" fill="none" stroke="{color}" '
                       'stroke-dasharray="4 3"/>')
        tag = {"circle": "circle", "square": "rect", "triangle": "polygon"}[
            KINDS.get(kind, KINDS["measured"])[0]]
        for p in pts:
            svg.append(_marker(kind, x(p["ms"]), y(p["top1"]), color,
                               f' class="point {kind}"><title>{e(p["name"])}: '
                               f'{p["top1"]:.1%}, {p["ms"]:.3g} ms ({e(s)})</title></{tag}>'))
        ly = top + 14 + 18 * i
        svg.append(_marker(kind, left + pw + 14, ly - 4, color, ' class="legend"/>', 1.0))
        svg.append(f'<text x="{left + pw + 24}" y="{ly}">{e(s[:48])}</text>')
    svg.append(f'<text x="{left + pw + 14}" y="{top + 18 * len(series) + 24}" fill="#555">'
               "dashed: Pareto frontier</text>")
    svg.append("</svg>")
    return "\n".join(svg) + "\n"


_CSS = ("body{font-family:system-ui,sans-serif;margin:2rem;color:#222}table{border-collapse:"
        "collapse}td,th{border:1px solid #ccc;padding:.3rem .6rem}th{background:#f3f3f3;"
        "cursor:pointer}td.n{text-align:right;font-variant-numeric:tabular-nums}")
_SORT_JS = """
document.querySelectorAll('table.sortable th').forEach(function (th, col) {
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var rows = Array.from(body.rows);
    var dir = th.dataset.dir === 'asc' ? -1 : 1;
    th.dataset.dir = dir === 1 ? 'asc' : 'desc';
    rows.sort(function (a, b) {
      var x = a.cells[col].dataset.v, y = b.cells[col].dataset.v;
      var nx = parseFloat(x), ny = parseFloat(y);
      if (!isNaN(nx) && !isNaN(ny)) return dir * (nx - ny);
      if (isNaN(nx) !== isNaN(ny)) return isNaN(nx) ? 1 : -1;
      return dir * x.localeCompare(y);
    });
    rows.forEach(function (r) { body.appendChild(r); });
  });
});
"""


def _cell(text: str, value=None, numeric: bool = False) -> str:
    v = "" if value is None else value
    cls = ' class="n"' if numeric else ""
    return f'<td{cls} data-v="{html.escape(str(v))}">{html.escape(text)}</td>'


def index_html(cards: list[dict], charts: dict[str, str],
               columns: list[tuple[str, str]]) -> str:
    """The table (a ms/frame column per device and kind) and one chart per device."""
    head = (["Model", "Input", "Type", "Top-1", "Top-5"]
            + [f"ms/frame, {d}, {k}" for d, k in columns] + ["Size (MB)", "Params", "MACs"])
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           "<title>edgecnn model gallery</title>", f"<style>{_CSS}</style></head><body>",
           "<h1>edgecnn model gallery</h1>",
           "<p>Every figure comes from a model card computed by edgecnn: accuracy from "
           "<code>edgecnn eval</code>, speed from <code>edgecnn bench</code> (the compiled "
           "model at its fastest thread count) on the device the column names, or estimated by "
           "<code>edgecnn estimate</code> where the column says so. A dash means not measured. "
           "Click a column to sort.</p>",
           '<table class="sortable"><thead><tr>' + "".join(f"<th>{html.escape(h)}</th>"
                                                           for h in head)
           + "</tr></thead><tbody>"]
    for c in sorted(cards, key=lambda c: c["name"]):
        acc = c["accuracy"]
        h, w, _ = c["input"]["shape"]
        cells = [f'<td data-v="{html.escape(c["name"])}"><a href="cards/{html.escape(c["name"])}'
                 f'.html">{html.escape(c["name"])}</a></td>',
                 _cell(c["input"]["text"], h * w, True),
                 _cell(c.get("numbers", {}).get("dtype", "float32"))]
        for k in ("top1", "top5"):
            v = acc.get(k)
            cells.append(_cell("—" if v is None else f"{v:.1%}", v, True))
        best = best_entries(c)
        for col in columns:
            e = best.get(col)
            text = "—" if e is None else (f"{e['ms_per_frame']:.2f} ({e['threads']} thr"
                                          + ("" if e["backend"] == "compiled"
                                             else f", {e['backend']}") + ")")
            cells.append(_cell(text, e and e["ms_per_frame"], True))
        size = c["size"]["model_file_bytes"] or c["size"]["weights_bytes"]
        cells += [_cell(f"{size / 1e6:.3g}", size, True),
                  _cell(f"{c['totals']['params']:,}", c["totals"]["params"], True),
                  _cell(f"{c['totals']['macs'] / 1e6:,.0f} M", c["totals"]["macs"], True)]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out += ["</tbody></table>", "<h2>Accuracy against speed, one chart per device</h2>",
            "<p>Times on different devices are not comparable: each chart holds the figures "
            "of one device only. Circles are measured, triangles estimated, squares ELL's "
            "published figures.</p>"]
    for dev, chart in charts.items():
        out += [f'<div class="chart" data-device="{html.escape(dev)}">', chart, "</div>"]
    out += [f"<script>{_SORT_JS}</script>", "</body></html>"]
    return "\n".join(out) + "\n"


def build_site(cards_dir: str | os.PathLike, site_dir: str | os.PathLike,
               reference: str | os.PathLike | None = None) -> list[Path]:
    cards = load_cards(cards_dir)
    names = [c["name"] for c in cards]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise EdgecnnError(f"{cards_dir}: more than one card for {', '.join(dup)}; keep one "
                           "card.json per model")
    points = card_points(cards) + (reference_points(reference) if reference else [])
    devices = sorted({p["device"] for p in points}, key=_device_order)
    charts = {d: chart_svg([p for p in points if p["device"] == d], d) for d in devices}
    if not charts:
        charts = {"": chart_svg([])}
    columns = sorted({k for c in cards for k in best_entries(c)},
                     key=lambda dk: (_device_order(dk[0]), list(KINDS).index(dk[1])))
    site = Path(site_dir)
    written = [write_text_atomic(site / "charts" / f"{_slug(d) or 'none'}.svg", svg)
               for d, svg in charts.items()]
    written.insert(0, write_text_atomic(site / "index.html",
                                        index_html(cards, charts, columns)))
    for c in cards:
        page = c["_dir"] / "card.html"
        if page.is_file():
            written.append(write_text_atomic(site / "cards" / f"{c['name']}.html",
                                             page.read_text()))
    return written


def _device_order(device: str) -> tuple[int, str]:
    """Measured CPUs first, then the Raspberry Pi boards in order, then emulators."""
    boards = list(BOARDS.values())
    if device in boards:
        return (1 + boards.index(device), device)
    return (9 if "emulator" in device else 0, device)


def _slug(device: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in device.lower()).strip("-")
