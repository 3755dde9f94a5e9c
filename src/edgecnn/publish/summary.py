"""Rendering of a model summary (edgecnn.core.accounting) as a table, Markdown or JSON.

The table follows the ELL gallery pages: one row per convolution (or dense layer) together with
the batchnorm / scale_bias / activation layers that follow it, Pooling rows with the padded
output buffer (``accounting.padded_shapes``), other rows with the logical shape; then columns
for params, weights, biases and MACs and the totals. Markdown adds, for every convolution,
pooling and dense layer, the formula behind its output size, params and MACs. JSON is
``Summary.to_json()`` (one entry per graph layer) plus the graph's description, preprocessing,
departures and the grouped rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..core.accounting import Summary, summarize
from ..core.graph import Graph, Layer
from ..errors import EdgecnnError
from ..layers import get_kind
from ..layers.activation import WORDS

FORMATS = ("table", "markdown", "json")
GROUP_TAILS = ("batchnorm", "scale_bias", "activation")
POOLS = ("maxpool", "avgpool", "global_avgpool")


@dataclass
class Row:
    """One table row: a layer, or a convolution / dense layer with what follows it."""

    title: str
    output: str  # as printed: padded for pooling rows, logical otherwise
    details: str
    layers: list[str]
    shape: tuple[int, int, int]
    padded_shape: tuple[int, int, int]
    params: int = 0
    weights: int = 0
    biases: int = 0
    macs: int = 0
    formulas: dict = field(default_factory=dict)  # "output", "params", "macs" (Markdown)

    def to_json(self) -> dict:
        return {"layer": self.title, "output": self.output, "details": self.details,
                "layers": self.layers, "output_shape": list(self.shape),
                "padded_output_shape": list(self.padded_shape), "params": self.params,
                "weights": self.weights, "biases": self.biases, "macs": self.macs}


def shape_str(s: tuple[int, int, int]) -> str:
    return "x".join(str(v) for v in s)


def input_str(g: Graph) -> str:
    """The input as ELL prints it: 256x256x{B,G,R} for a 3-channel image."""
    h, w, c = g.input_shape
    if c == 3:
        return f"{h}x{w}x{{{','.join(g.preprocessing.channel_order)}}}"
    return f"{h}x{w}x{c}"


# ---- grouping ---------------------------------------------------------------------------------

def _groups(g: Graph) -> list[list[Layer]]:
    """Layers in order, a conv/dense head followed by its single-reader tail layers."""
    groups: list[list[Layer]] = []
    for l in g.layers:
        if groups and l.kind in GROUP_TAILS and groups[-1][0].spec.linear:
            prev = groups[-1][-1]
            if l.inputs == (prev.name,) and g.consumers[prev.name] == [l.name]:
                groups[-1].append(l)
                continue
        groups.append([l])
    return groups


def _details(group: list[Layer]) -> str:
    head = group[0]
    parts = [head.spec.describe(head.attrs)]
    if head.kind == "conv2d":
        parts.append("type=float32")
    for l in group[1:]:
        if l.kind == "activation":
            parts.append(f"activation={WORDS[l.attrs['function']]}")
    return ", ".join(p for p in parts if p)


def rows(g: Graph, s: Summary | None = None) -> list[Row]:
    """The table rows of a graph, the first being the input."""
    s = s or summarize(g)
    stats = {st.name: st for st in s.layers}
    out = []
    for group in _groups(g):
        head, last = group[0], group[-1]
        st = [stats[l.name] for l in group]
        shape, padded = stats[last.name].output_shape, stats[last.name].padded_output_shape
        if head.kind == "input":
            title, printed, details = "Input", input_str(g), ""
        else:
            title, details = head.spec.title, _details(group)
            printed = shape_str(padded if head.kind in POOLS else shape)
        row = Row(title, printed, details, [l.name for l in group], shape, padded,
                  sum(x.params for x in st), sum(x.weights for x in st),
                  sum(x.biases for x in st), sum(x.macs for x in st))
        row.formulas = _formulas(g, group, row)
        out.append(row)
    return out


# ---- formulas (Markdown) ------------------------------------------------------------------------

MINUS = "\u2212"


def _window_formula(size: int, k: int, s: int, lo: int, hi: int, ceil: bool, out: int) -> str:
    num = size - k + lo + hi
    core = f"({size} {MINUS} {k} + {lo} + {hi})/{s}"
    if num % s:
        core = f"\u2308{core}\u2309" if ceil else f"\u230a{core}\u230b"
    return f"{core} + 1 = {out}"


def _output_formula(g: Graph, head: Layer, row: Row) -> str:
    a = head.attrs
    ins = g.input_shapes(head)
    if head.kind in ("conv2d", "binary_conv2d", "maxpool", "avgpool"):
        h, w, _ = ins[0]
        t, l, b, r = a["padding"]
        ceil = a.get("ceil_mode", False)
        oh, ow = row.shape[0], row.shape[1]
        fh = _window_formula(h, a["kernel"][0], a["stride"][0], t, b, ceil, oh)
        fw = _window_formula(w, a["kernel"][1], a["stride"][1], l, r, ceil, ow)
        text = fh if fh == fw else f"H: {fh}; W: {fw}"
        if head.kind in POOLS and row.padded_shape != row.shape:
            border = (row.padded_shape[0] - oh) // 2
            text += (f", plus a {border}-pixel border for the next layer = "
                     f"{shape_str(row.padded_shape)}")
        return text
    if head.kind == "dense":
        h, w, c = ins[0]
        flat = f"{h}·{w}·{c} = {h * w * c:,} inputs" if h * w > 1 else f"{c:,} inputs"
        return f"{flat} \u2192 {a['units']:,} units"
    if head.kind == "global_avgpool":
        return "global average: 1x1"
    return ""


def _tensor_term(shape: tuple[int, ...], in_shape: tuple[int, int, int]) -> str:
    if len(shape) == 4:  # (C_out, C_in/groups, kh, kw)
        return f"({shape[2]}·{shape[3]}·{shape[1]})·{shape[0]}"
    if len(shape) == 2:  # dense (units, H*W*C)
        h, w, c = in_shape
        fan = f"({h}·{w}·{c})" if h * w > 1 and h * w * c == shape[1] else f"{shape[1]}"
        return f"{fan}·{shape[0]}"
    return "·".join(str(v) for v in shape)


def _params_formula(g: Graph, group: list[Layer], row: Row) -> str:
    terms = []
    for l in group:
        ins = g.input_shapes(l)
        for spec in l.spec.tensors(l.attrs, ins).values():
            if spec.role in ("weight", "bias"):
                terms.append(_tensor_term(spec.shape, ins[0]))
    if not terms:
        return ""
    return f"{' + '.join(_merge_repeats(terms))} = {row.params:,}"


def _merge_repeats(terms: list[str]) -> list[str]:
    """["16", "16", "16"] -> ["3·16"]: per-channel vectors (bias, batchnorm, slope) read better."""
    out: list[list] = []
    for t in terms:
        if out and out[-1][0] == t and "(" not in t:
            out[-1][1] += 1
        else:
            out.append([t, 1])
    return [t if n == 1 else f"{n}·{t}" for t, n in out]


def _macs_formula(g: Graph, head: Layer, row: Row) -> str:
    if head.kind in ("conv2d", "binary_conv2d"):
        w = next(iter(head.spec.tensors(head.attrs, g.input_shapes(head)).values())).shape
        h_, w_, c = g.shapes[head.name]
        return f"{h_}·{w_}·{c}·({w[2]}·{w[3]}·{w[1]}) = {row.macs:,}"
    if head.kind == "dense":
        h, w, c = g.input_shapes(head)[0]
        return f"{h * w * c:,}·{head.attrs['units']:,} = {row.macs:,}"
    return f"{row.macs:,}" if row.macs else ""


def _formulas(g: Graph, group: list[Layer], row: Row) -> dict:
    head = group[0]
    if head.kind == "input":
        return {}
    return {"output": _output_formula(g, head, row), "params": _params_formula(g, group, row),
            "macs": _macs_formula(g, head, row)}


# ---- the three formats ---------------------------------------------------------------------------

def _preprocessing_line(g: Graph) -> str:
    p = g.preprocessing
    crop = ("central square" if p.crop_fraction == 1 else f"central {p.crop_fraction:.1%} crop") \
        if p.resize == "center_crop" else "whole image stretched"
    labels = g.labels if isinstance(g.labels, str) else f"{len(g.labels)} own labels"
    return (f"{p.channel_order} pixels in [{p.pixel_range[0]:g}, {p.pixel_range[1]:g}], "
            f"mean ({', '.join(f'{v:g}' for v in p.mean)}), "
            f"std ({', '.join(f'{v:g}' for v in p.std)}); {crop} resized {p.interpolation}; "
            f"labels {labels}")


def _totals(s: Summary) -> list[tuple[str, str]]:
    return [("total params", f"{s.total_params:,}"),
            ("total weights", f"{s.total_weights:,}"),
            ("total biases", f"{s.total_biases:,}"),
            ("total MACs", f"{s.total_macs:,}"),
            ("weight bytes", f"{s.weight_bytes:,}"),
            ("peak activation bytes", f"{s.peak_activation_bytes:,}")]


TABLE_COLUMNS = ("layer", "output", "details", "params", "weights", "biases", "MACs")


def _table_cells(rs: list[Row]) -> list[list[str]]:
    return [[r.title, r.output, r.details, f"{r.params:,}", f"{r.weights:,}", f"{r.biases:,}",
             f"{r.macs:,}"] for r in rs]


def render_table(g: Graph, s: Summary) -> str:
    cells = [list(TABLE_COLUMNS), *_table_cells(rows(g, s))]
    widths = [max(len(row[i]) for row in cells) for i in range(len(TABLE_COLUMNS))]

    def line(row: list[str]) -> str:
        parts = [c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths,
                                                                                  strict=True))]
        return " | ".join(parts).rstrip()

    out = [f"{g.name}: {g.meta.get('description', '')}".rstrip(": "),
           f"input {input_str(g)}: {_preprocessing_line(g)}", ""]
    out.append(line(cells[0]))
    out.append("-+-".join("-" * w for w in widths))
    out.extend(line(r) for r in cells[1:])
    out.append("")
    label_w = max(len(k) for k, _ in _totals(s))
    out.extend(f"{k.ljust(label_w)}  {v}" for k, v in _totals(s))
    out.extend(_departure_lines(g, "  - "))
    return "\n".join(out) + "\n"


def _departure_lines(g: Graph, bullet: str) -> list[str]:
    deps = g.meta.get("departures") or []
    if not deps:
        return []
    return ["", "departures from the name:", *(bullet + d for d in deps)]


def render_markdown(g: Graph, s: Summary) -> str:
    out = [f"# {g.name}", ""]
    if g.meta.get("description"):
        out += [str(g.meta["description"]), ""]
    out += [f"Input {input_str(g)}: {_preprocessing_line(g)}.", ""]
    out.append("| layer | output | details | output size | params | weights | biases | MACs |")
    out.append("| --- | --- | --- | --- | ---: | ---: | ---: | ---: |")
    for r in rows(g, s)[1:]:
        f = r.formulas
        out.append(f"| {r.title} | {r.output} | {r.details} | {f.get('output', '')} | "
                   f"{f.get('params') or f'{r.params:,}'} | {r.weights:,} | {r.biases:,} | "
                   f"{f.get('macs') or f'{r.macs:,}'} |")
    out += ["", "| total | |", "| --- | ---: |"]
    out += [f"| {k} | {v} |" for k, v in _totals(s)]
    deps = g.meta.get("departures") or []
    if deps:
        out += ["", "## Departures from the name", "", *(f"- {d}" for d in deps)]
    out.append("")
    out.append("Params count weights and biases (batch-norm scale and shift included, running "
               "statistics not); MACs are multiply-accumulates at batch 1; Pooling rows show "
               "the output buffer with the zero border the next layer reads.")
    return "\n".join(out) + "\n"


def to_json(g: Graph, s: Summary) -> dict:
    d = s.to_json()
    layer_details = {l.name: (l.spec.title, l.spec.describe(l.attrs)) for l in g.layers}
    for entry in d["layers"]:
        entry["title"], entry["details"] = layer_details[entry["name"]]
    return {"name": d.pop("name"), "description": g.meta.get("description", ""),
            "input": d.pop("input"), "preprocessing": g.preprocessing.to_json(),
            "labels": g.labels if isinstance(g.labels, str) else list(g.labels),
            "departures": list(g.meta.get("departures") or []),
            **d, "rows": [r.to_json() for r in rows(g, s)]}


def render_json(g: Graph, s: Summary) -> str:
    return json.dumps(to_json(g, s), indent=2) + "\n"


RENDERERS = {"table": render_table, "markdown": render_markdown, "json": render_json}


def render(obj: Graph | Summary, fmt: str = "table") -> str:
    """The summary of a graph (or a bare Summary, as one row per layer) in ``fmt``."""
    if fmt not in RENDERERS:
        raise EdgecnnError(f"unknown summary format {fmt!r} (choose from {', '.join(FORMATS)})")
    if isinstance(obj, Summary):
        return _render_bare(obj, fmt)
    return RENDERERS[fmt](obj, summarize(obj))


def _render_bare(s: Summary, fmt: str) -> str:
    """A Summary without its graph: one row per layer, no details or formulas."""
    if fmt == "json":
        return json.dumps(s.to_json(), indent=2) + "\n"
    cells = [[get_kind(l.kind).title, shape_str(l.padded_output_shape if l.kind in POOLS
                                                else l.output_shape), l.name,
              f"{l.params:,}", f"{l.weights:,}", f"{l.biases:,}", f"{l.macs:,}"]
             for l in s.layers]
    head = ["layer", "output", "name", "params", "weights", "biases", "MACs"]
    if fmt == "markdown":
        lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
        lines += ["| " + " | ".join(c) + " |" for c in cells]
        lines += ["", *(f"- {k}: {v}" for k, v in _totals(s))]
        return f"# {s.name}\n\n" + "\n".join(lines) + "\n"
    widths = [max(len(r[i]) for r in [head, *cells]) for i in range(len(head))]
    lines = [" | ".join(c.ljust(w) if i < 3 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
             for r in [head, *cells]]
    return "\n".join([s.name, *lines, "", *(f"{k}: {v}" for k, v in _totals(s))]) + "\n"


def render_catalog(entries: list[dict], fmt: str = "table") -> str:
    """`edgecnn list`: one line per architecture with its input size, params and MACs."""
    if fmt == "json":
        return json.dumps(entries, indent=2) + "\n"
    if fmt != "table":
        raise EdgecnnError(f"unknown list format {fmt!r} (choose from table, json)")
    cells = [["name", "input", "params", "MACs"]]
    cells += [[e["name"], shape_str(e["input"]), f"{e['params']:,}", f"{e['macs']:,}"]
              for e in entries]
    widths = [max(len(r[i]) for r in cells) for i in range(4)]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
             for r in cells]
    return "\n".join(lines) + "\n"
