"""`edgecnn summary` and `edgecnn list`: the rendered figures, golden files, the commands.

Golden files live in tests/golden/; regenerate them with EDGECNN_ACCEPT=1 (then review the diff).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from edgecnn import zoo
from edgecnn.cli.main import main
from edgecnn.core.accounting import summarize
from edgecnn.errors import EdgecnnError
from edgecnn.formats.modelfile import save
from edgecnn.publish.summary import render, render_catalog, rows

SEED = "dr_I256x256x3CMCMCMCMCMCMCMC1AS"
GOLDEN = Path(__file__).parent / "golden"
SUFFIX = {"table": "txt", "markdown": "md", "json": "json"}


def check_golden(filename: str, text: str) -> None:
    """Compare with tests/golden/<filename> byte for byte, or rewrite it when EDGECNN_ACCEPT=1."""
    path = GOLDEN / filename
    data = text.encode("utf-8")
    if os.environ.get("EDGECNN_ACCEPT") == "1":
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return
    if not path.exists():
        pytest.fail(f"golden file {path.name} is missing: run the tests with EDGECNN_ACCEPT=1")
    assert data == path.read_bytes(), f"{path.name} differs (EDGECNN_ACCEPT=1 regenerates it)"


def table_rows(text: str) -> list[list[str]]:
    """The cells of the rows of a rendered table (between the rule and the blank line)."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("---"))
    out = []
    for ln in lines[start + 1:]:
        if not ln.strip():
            break
        out.append([c.strip() for c in ln.split(" | ")])
    return out


# ---- the seed model reproduces its gallery page -------------------------------------------------

@pytest.mark.data
def test_seed_table_rows_equal_the_gallery_page(shared_data):
    page = json.loads((shared_data / "ell_gallery.json").read_text())["models"][SEED]
    cells = table_rows(render(zoo.get(SEED), "table"))
    assert cells[0][:3] == ["Input", "256x256x{B,G,R}", ""]
    got = [{"layer": c[0], "output": c[1], "details": c[2]} for c in cells[1:]]
    assert got == page["architecture"]


def test_seed_table_columns_add_up_to_the_totals():
    g = zoo.get(SEED)
    s = summarize(g)
    cells = table_rows(render(g, "table"))
    num = [[int(v.replace(",", "")) for v in c[3:]] for c in cells]
    assert [sum(col) for col in zip(*num, strict=True)] == [
        s.total_params, s.total_weights, s.total_biases, s.total_macs]
    # conv1: 3x3x3x16 weights, batchnorm scale + shift; 256*256*16 outputs of 27 MACs each
    assert num[1] == [3 * 3 * 3 * 16 + 2 * 16, 3 * 3 * 3 * 16 + 16, 16, 256 * 256 * 16 * 27]


def test_seed_totals_are_printed():
    s = summarize(zoo.get(SEED))
    text = render(zoo.get(SEED), "table")
    for label, value in [("total params", s.total_params), ("total MACs", s.total_macs),
                         ("weight bytes", s.weight_bytes),
                         ("peak activation bytes", s.peak_activation_bytes)]:
        assert any(ln.startswith(label) and ln.endswith(f"{value:,}") for ln in text.splitlines())


# ---- golden files -------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", sorted(SUFFIX))
@pytest.mark.parametrize("name", [SEED, "alexnet"])
def test_golden(name, fmt):
    check_golden(f"summary_{name}.{SUFFIX[fmt]}", render(zoo.get(name), fmt))


# ---- formats ------------------------------------------------------------------------------------

def test_json_has_one_entry_per_layer_and_the_totals():
    g = zoo.get("alexnet")
    d = json.loads(render(g, "json"))
    s = summarize(g)
    assert d["name"] == "alexnet" and d["input"] == [227, 227, 3]
    assert [l["name"] for l in d["layers"]] == [l.name for l in g.layers]
    for entry in d["layers"]:
        assert {"name", "kind", "output_shape", "padded_output_shape", "params", "weights",
                "biases", "macs"} <= set(entry)
    assert (d["total_params"], d["total_macs"], d["weight_bytes"],
            d["peak_activation_bytes"]) == (s.total_params, s.total_macs, s.weight_bytes,
                                             s.peak_activation_bytes)
    assert d["preprocessing"]["channel_order"] == "RGB" and d["departures"] == []


def test_json_carries_the_departures_of_a_gallery_model():
    name = "d_I160x160x3CMCMBMBMBMBMC1AS"
    d = json.loads(render(zoo.get(name), "json"))
    assert d["departures"] == zoo.get(name).meta["departures"] != []
    md = render(zoo.get(name), "markdown")
    assert "## Departures from the name" in md
    assert "(3·3·512)·1024 + 4·1024 = 4,722,688" in md  # binary conv, scale, bn, prelu slope


def test_markdown_explains_alexnet_figures():
    md = render(zoo.get("alexnet"), "markdown")
    for formula in ["(227 \u2212 11 + 0 + 0)/4 + 1 = 55", "(11·11·3)·96 + 96 = 34,944",
                    "(55 \u2212 3 + 0 + 0)/2 + 1 = 27", "(27 \u2212 5 + 2 + 2)/1 + 1 = 27",
                    "(5·5·96)·256 + 256 = 614,656", "(13 \u2212 3 + 0 + 0)/2 + 1 = 6",
                    "(6·6·256)·4096 + 4096 = 37,752,832", "4096·1000 + 1000 = 4,097,000",
                    "| total weights | 62,367,776 |", "| total biases | 10,568 |"]:
        assert formula in md, formula


def test_markdown_rounds_up_where_ell_pools_do():
    md = render(zoo.get("d_I160x160x3CMCMCMCMCMCMC1AS"), "markdown")
    assert "\u2308(5 \u2212 2 + 0 + 0)/2\u2309 + 1 = 3" in md


def test_rows_group_convolutions_with_what_follows():
    g = zoo.get(SEED)
    first = rows(g)[1]
    assert first.layers == ["conv1", "conv1_bn", "conv1_act"]
    assert sum(len(r.layers) for r in rows(g)) == len(g.layers)


def test_a_bare_summary_renders_one_row_per_layer():
    s = summarize(zoo.get(SEED))
    lines = render(s, "table").splitlines()
    names = [ln.split(" | ")[2].strip() for ln in lines[2:2 + len(s.layers)]]
    assert names == [l.name for l in s.layers]
    assert json.loads(render(s, "json")) == s.to_json()


def test_unknown_format_is_a_clear_error():
    with pytest.raises(EdgecnnError, match="unknown summary format 'yaml'"):
        render(zoo.get("alexnet"), "yaml")


def test_catalog_lists_every_architecture():
    entries = zoo.catalog()
    assert [e["name"] for e in entries] == zoo.names()
    seed = next(e for e in entries if e["name"] == SEED)
    s = summarize(zoo.get(SEED))
    assert (seed["input"], seed["params"], seed["macs"]) == ([256, 256, 3], s.total_params,
                                                             s.total_macs)
    assert len(render_catalog(entries).splitlines()) == len(entries) + 1


# ---- commands -----------------------------------------------------------------------------------

def test_cli_summary_prints_the_table(capsys):
    assert main(["summary", SEED]) == 0
    out = capsys.readouterr().out
    assert out == render(zoo.get(SEED), "table")


def test_cli_summary_json_of_an_architecture_string(capsys):
    assert main(["summary", "v_I32x32x3CMF10S", "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["name"] == "v_I32x32x3CMF10S" and d["layers"][-1]["output_shape"] == [1, 1, 10]


def test_cli_summary_of_a_model_file(tmp_path, capsys):
    path = save(zoo.get("dr_I16x16x3CMC1AS").init_weights(0), tmp_path / "m.safetensors")
    assert main(["summary", str(path), "--format", "markdown"]) == 0
    assert capsys.readouterr().out.startswith("# dr_I16x16x3CMC1AS\n")


def test_cli_summary_unknown_name_exits_2(capsys):
    assert main(["summary", "alexnt"]) == 2
    err = capsys.readouterr().err
    assert "alexnet" in err and "edgecnn list" in err


def test_cli_summary_bad_string_names_the_position(capsys):
    assert main(["summary", "dr_I64x64x3CMX"]) == 2
    assert "position 13" in capsys.readouterr().err


def test_cli_list(capsys):
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "input", "params", "MACs"]
    assert [ln.split()[0] for ln in lines[1:]] == zoo.names()
    assert main(["list", "--format", "json"]) == 0
    assert [e["name"] for e in json.loads(capsys.readouterr().out)] == zoo.names()
