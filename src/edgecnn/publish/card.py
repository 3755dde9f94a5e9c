"""Model cards: every row of an ELL gallery page, computed — never typed or copied.

A card is built from the model (architecture, params, MACs, sizes: edgecnn.core.accounting and
edgecnn.publish.summary), an ``eval --format json`` report (accuracy, with the data set and image
count) and any number of ``bench --format json`` reports (speed, each naming its device, CPU,
threads, target and date). A figure that was not measured says so. The same inputs give
byte-identical output (nothing depends on the time or the machine the card is made on).
"""

from __future__ import annotations

import hashlib
import html
import json
import os
from pathlib import Path

from ..core.accounting import summarize
from ..core.fileio import write_text_atomic
from ..core.graph import Graph, fingerprint
from ..errors import EdgecnnError
from .summary import input_str, rows

CARD_VERSION = 1
BENCH_ENTRY_FIELDS = ("backend", "threads", "available", "target", "device", "date", "ms_median")


def _read_json(path: str | os.PathLike, what: str) -> dict:
    try:
        d = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise EdgecnnError(f"{path}: no such {what} file; check the path") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise EdgecnnError(f"{path}: not a JSON {what} ({e})") from None
    if not isinstance(d, dict):
        raise EdgecnnError(f"{path}: not a JSON {what} (expected an object)")
    return d


def read_eval(path: str | os.PathLike, g: Graph) -> dict:
    """An eval report for this model: the accuracy rows of the card."""
    d = _read_json(path, "eval report")
    missing = [k for k in ("model", "top1", "top5", "images", "data") if k not in d]
    if missing:
        raise EdgecnnError(f"{path}: eval report lacks {', '.join(missing)} (write it with "
                           "`edgecnn eval MODEL DATA --format json`)")
    if d["model"] != g.name or d.get("fingerprint", fingerprint(g)) != fingerprint(g):
        raise EdgecnnError(f"{path}: this eval report is for model {d['model']!r}"
                           f"{' (other weights)' if d['model'] == g.name else ''}, not for "
                           f"{g.name!r}; evaluate this model with `edgecnn eval MODEL DATA "
                           "--format json`")
    return {"top1": d["top1"], "top5": d["top5"], "data": d["data"], "images": d["images"],
            "backend": d.get("backend", "reference"), "date": d.get("date"),
            "source": Path(path).name}


def read_bench(path: str | os.PathLike, g: Graph) -> list[dict]:
    """The measured entries of a bench report for this model (device, threads, target, date)."""
    d = _read_json(path, "bench report")
    if "entries" not in d or "model" not in d or not isinstance(d["entries"], list):
        raise EdgecnnError(f"{path}: bench report lacks 'model' or 'entries' (write it with "
                           "`edgecnn bench MODEL --format json`)")
    if d.get("graph_name", d["model"]) != g.name:
        raise EdgecnnError(f"{path}: this bench report is for model {d['model']!r}, not for "
                           f"{g.name!r}; run `edgecnn bench MODEL --format json` on this model")
    out = []
    for i, e in enumerate(d["entries"]):
        missing = [k for k in BENCH_ENTRY_FIELDS if k not in e]
        if missing:
            raise EdgecnnError(f"{path}: entry {i} lacks {', '.join(missing)}; write the report "
                               "again with `edgecnn bench MODEL --format json`")
        if not e["available"]:
            continue
        if e.get("estimated") and not e.get("publishable"):
            continue  # an estimate whose method is not validated well enough is no figure
        machine = d.get("machine", {})
        out.append({"backend": e["backend"], "target": e["target"], "threads": e["threads"],
                    "device": e["device"], "date": e["date"], "ms_per_frame": e["ms_median"],
                    "gflops": e.get("gflops"), "ratio_to_compiled": e.get("ratio"),
                    "arch": machine.get("arch"), "source": Path(path).name,
                    **_how(e, machine)})
    return out


def _how(e: dict, machine: dict) -> dict:
    """Whether an entry was measured or estimated, and on which board: an estimate report
    (`edgecnn estimate`) names its method and x86 validation error; a bench report made on a
    Raspberry Pi names the board, one made under qemu-user says it was emulated."""
    if e.get("estimated"):
        return {"kind": "estimated", "board": e.get("board", ""), "method": e.get("method", ""),
                "validation_error": e.get("validation_error")}
    return {"kind": "measured", "board": machine.get("board") or "",
            "emulated": bool(machine.get("emulated"))}


def build(g: Graph, model_file: str | os.PathLike | None = None,
          eval_json: str | os.PathLike | None = None,
          bench_jsons: list[str | os.PathLike] = (),
          compiled_bytes: int | None = None) -> dict:
    """The card as a JSON-ready dict."""
    s = summarize(g)
    arch = [r.to_json() for r in rows(g, s)]
    file_info = None
    if model_file is not None:
        data = Path(model_file).read_bytes()
        file_info = {"name": Path(model_file).name, "bytes": len(data),
                     "sha256": hashlib.sha256(data).hexdigest()}
    untrained = str(g.meta.get("weights", "")).startswith("untrained")
    accuracy = read_eval(eval_json, g) if eval_json else {
        "measured": False,
        "note": ("accuracy needs a trained model: these weights are untrained" if untrained
                 else "not measured: run `edgecnn eval MODEL DATA --format json` and pass "
                      "--eval")}
    perf = []
    for b in bench_jsons:
        perf += read_bench(b, g)
    perf.sort(key=lambda e: (e["backend"] != "compiled", e["device"], e["threads"],
                             e["backend"], e["date"]))
    training = g.meta.get("training")
    notes = []
    if training:
        r = training.get("recipe", {})
        fin = training.get("final", {})
        notes.append(f"Trained with edgecnn train on {training.get('images')} images of "
                     f"{training.get('data')} for {training.get('epochs')} epochs "
                     f"({r.get('source') or 'custom recipe'}; batch {r.get('batch_size')}, "
                     f"lr {r.get('lr')}, {training.get('processes', 1)} process(es) on "
                     f"{training.get('device')})" + (f"; final training loss "
                                                     f"{fin['loss']:.4f}" if 'loss' in fin
                                                     else ""))
    if g.meta.get("weights"):
        notes.append(f"Weights: {g.meta['weights']}")
    if g.meta.get("source"):
        notes.append(f"Source: {g.meta['source']}")
    for d in g.meta.get("departures", []):
        notes.append(f"Departure from the name: {d}")
    return {
        "card_version": CARD_VERSION,
        "name": g.name,
        "description": g.meta.get("description", ""),
        "model_file": file_info,
        "fingerprint": fingerprint(g) if g.weights else None,
        "input": {"shape": list(g.input_shape), "text": input_str(g),
                  "preprocessing": g.preprocessing.to_json()},
        "output": _output(g),
        "numbers": numbers(g),
        "architecture": arch,
        "totals": {"params": s.total_params, "weights": s.total_weights,
                   "biases": s.total_biases, "macs": s.total_macs,
                   "weight_bytes": s.weight_bytes,
                   "peak_activation_bytes": s.peak_activation_bytes},
        "size": {"model_file_bytes": file_info["bytes"] if file_info else None,
                 "weights_bytes": s.weight_bytes, "compiled_code_bytes": compiled_bytes},
        "accuracy": accuracy,
        "performance": perf,
        "notes": notes,
    }


def numbers(g: Graph) -> dict:
    """How the model computes: float32, or uint8/int8 integers (the int8 card beside the float
    one shows which is which, and its sizes and accuracy at that width)."""
    ints = [l for l in g.layers if l.spec.integer and "dtype" in l.attrs]
    if not ints:
        return {"dtype": "float32", "text": "float32 weights and activations"}
    dtype = ints[0].attrs["dtype"]
    per_channel = any(l.attrs.get("per_channel") for l in ints)
    floats = [l.name for l in g.layers[1:]
              if not l.spec.integer and l.kind not in ("flatten", "dropout", "softmax")]
    text = (f"{dtype}: 8-bit weights ({'per channel' if per_channel else 'per tensor'}) and "
            "activations, int32 biases, TFLite's integer arithmetic"
            + (f"; in float32: {', '.join(floats)}" if floats else ""))
    return {"dtype": dtype, "text": text}


def _output(g: Graph) -> dict:
    if g.labels == "ilsvrc2012":
        return {"classes": g.num_classes, "labels": "ILSVRC2012",
                "text": f"{g.num_classes} ImageNet (ILSVRC2012) classes"}
    return {"classes": g.num_classes, "labels": list(g.labels),
            "text": f"{g.num_classes} classes: {', '.join(g.labels[:8])}"
                    f"{', …' if len(g.labels) > 8 else ''}"}


# ---- rendering ----------------------------------------------------------------------------------

def _mb(n: int | None) -> str:
    return "not measured" if n is None else f"{n / 1e6:.1f} MB ({n:,} bytes)"


def _accuracy_text(a: dict) -> str:
    if not a.get("top1") and a.get("measured") is False:
        return a["note"]
    return (f"{a['top1']:.2%} top-1, {a['top5']:.2%} top-5 on {a['images']:,} images of "
            f"{a['data']} ({a['backend']} backend{', ' + a['date'] if a.get('date') else ''})")


def _perf_lines(perf: list[dict]) -> list[str]:
    if not perf:
        return ["not measured: run `edgecnn bench MODEL --format json` and pass --bench"]
    return [_perf_line(e) for e in perf]


def _perf_line(e: dict) -> str:
    from .site import device_name  # the gallery's device names (site imports nothing from here)
    threads = f"{e['threads']} thread{'s' if e['threads'] != 1 else ''}"
    if e.get("kind") == "estimated":
        err = e.get("validation_error")
        return (f"{e['ms_per_frame']:.2f} ms/frame — estimated for {device_name(e)} "
                f"({e['backend']}, {threads}; {e.get('method') or 'estimate'}"
                + (f"; x86 validation error ±{err:.0%}" if err is not None else "")
                + f"), {e['date']}")
    how = "measured under emulation (not a device's speed)" if e.get("emulated") else "measured"
    return (f"{e['ms_per_frame']:.2f} ms/frame — {how} on {device_name(e)}: {e['backend']} "
            f"({e['target']} target), {threads}, {e['date']}")


def _summary_rows(card: dict) -> list[tuple[str, list[str]]]:
    t, size = card["totals"], card["size"]
    f = card["model_file"]
    return [
        ("Download", [f"{f['name']} (sha256 {f['sha256'][:16]}…)" if f else
                      "no model file (built from the architecture name)"]),
        ("Accuracy", [_accuracy_text(card["accuracy"])]),
        ("Performance", _perf_lines(card["performance"])),
        ("Size", [f"model file: {_mb(size['model_file_bytes'])}",
                  f"weights: {_mb(size['weights_bytes'])}",
                  f"compiled library (code + weights): {_mb(size['compiled_code_bytes'])}"]),
        ("Input", [card["input"]["text"]]),
        ("Numbers", [card.get("numbers", {}).get("text", "float32 weights and activations")]),
        ("Parameters", [f"{t['params']:,} ({t['weights']:,} weights + {t['biases']:,} biases)"]),
        ("MACs", [f"{t['macs']:,} per frame ({2 * t['macs'] / 1e9:.3f} GFLOP)"]),
        ("Peak activations", [_mb(t["peak_activation_bytes"])]),
        ("Output", [card["output"]["text"]]),
        ("Notes", card["notes"] or ["none"]),
    ]


def render_markdown(card: dict) -> str:
    out = [f"# {card['name']}", ""]
    if card["description"]:
        out += [card["description"], ""]
    out += ["| | |", "|---|---|"]
    for k, vals in _summary_rows(card):
        out.append(f"| {k} | {'<br>'.join(v.replace('|', '/') for v in vals)} |")
    out += ["", "## Architecture", "",
            "| Layer | Output | Details | Params | MACs |", "|---|---|---|--:|--:|"]
    for r in card["architecture"]:
        out.append(f"| {r['layer']} | {r['output']} | {r['details']} | {r['params']:,} | "
                   f"{r['macs']:,} |")
    return "\n".join(out) + "\n"


_CSS = ("body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;"
        "color:#222}table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;"
        "padding:.3rem .6rem;text-align:left;vertical-align:top}th{background:#f3f3f3}"
        "td.n{text-align:right;font-variant-numeric:tabular-nums}h1{font-size:1.5rem}")


def render_html(card: dict) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{e(card['name'])} — edgecnn model card</title>",
           f"<style>{_CSS}</style></head><body>", f"<h1>{e(card['name'])}</h1>"]
    if card["description"]:
        out.append(f"<p>{e(card['description'])}</p>")
    out.append('<table class="card">')
    for k, vals in _summary_rows(card):
        out.append(f"<tr><th>{e(k)}</th><td>{'<br>'.join(e(v) for v in vals)}</td></tr>")
    out += ["</table>", "<h2>Architecture</h2>", '<table class="arch">',
            "<tr><th>Layer</th><th>Output</th><th>Details</th><th>Params</th><th>MACs</th></tr>"]
    for r in card["architecture"]:
        out.append(f"<tr><td>{e(r['layer'])}</td><td>{e(r['output'])}</td>"
                   f"<td>{e(r['details'])}</td><td class=n>{r['params']:,}</td>"
                   f"<td class=n>{r['macs']:,}</td></tr>")
    out += ["</table>", "</body></html>"]
    return "\n".join(out) + "\n"


def write(card: dict, out_dir: str | os.PathLike) -> list[Path]:
    """card.json, card.md and card.html in ``out_dir`` (written atomically)."""
    d = Path(out_dir)
    return [write_text_atomic(d / "card.json", json.dumps(card, indent=1, sort_keys=False)
                              + "\n"),
            write_text_atomic(d / "card.md", render_markdown(card)),
            write_text_atomic(d / "card.html", render_html(card))]
