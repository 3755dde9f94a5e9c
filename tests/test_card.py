"""Model cards and the gallery: computed figures, reproducible bytes, clear errors."""

import json
import os

import pytest

from edgecnn.apps.evaluate import evaluate
from edgecnn.cli.main import main
from edgecnn.core.accounting import summarize
from edgecnn.errors import EdgecnnError
from edgecnn.formats.modelfile import save
from edgecnn.publish.bench import bench
from edgecnn.publish.card import build, read_bench, render_html, render_markdown, write
from edgecnn.publish.site import build_site, pareto
from edgecnn.zoo import get
from testutil import make_shapes_dataset, small_d_model

SEED = "dr_I256x256x3CMCMCMCMCMCMCMC1AS"


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """A model file with a real eval report and a real bench report (reference backend)."""
    d = tmp_path_factory.mktemp("reports")
    g = small_d_model()
    model = save(g, d / "small.safetensors")
    data = make_shapes_dataset(d / "val", per_class=5)
    (d / "eval.json").write_text(json.dumps(evaluate(g, data)))
    (d / "bench.json").write_text(json.dumps(bench(g, backends=("reference",), repeats=2,
                                                   warmup=1, min_time=0.0)))
    return d, model, g


def test_seed_card_without_measurements_says_so(tmp_path):
    g = get(SEED).init_weights(0)
    g.meta["weights"] = "untrained: He-initialized (seed 0)"
    card = build(g)
    assert card["accuracy"]["measured"] is False and "untrained" in card["accuracy"]["note"]
    md = render_markdown(card)
    assert "accuracy needs a trained model" in md and "Performance | not measured" in md
    rows = [(r["layer"], r["output"]) for r in card["architecture"]]
    assert rows[0] == ("Input", "256x256x{B,G,R}")
    assert rows[1] == ("Convolution", "256x256x16") and rows[2] == ("Pooling", "130x130x16")
    assert rows[-1] == ("Softmax", "1x1x1000")


def test_card_figures_equal_summary(reports):
    d, model, g = reports
    card = build(g, model, d / "eval.json", [d / "bench.json"])
    s = summarize(g)
    assert card["totals"]["params"] == s.total_params and card["totals"]["macs"] == s.total_macs
    assert sum(r["params"] for r in card["architecture"]) == s.total_params
    assert sum(r["macs"] for r in card["architecture"]) == s.total_macs
    ev = json.loads((d / "eval.json").read_text())
    assert card["accuracy"]["top1"] == ev["top1"] and card["accuracy"]["images"] == 20
    assert card["performance"][0]["backend"] == "reference"
    assert card["size"]["model_file_bytes"] == model.stat().st_size
    assert f"{ev['top1']:.2%} top-1" in render_html(card)


def test_card_is_reproducible(reports, tmp_path):
    d, model, g = reports
    args = ["card", str(model), "--eval", str(d / "eval.json"), "--bench", str(d / "bench.json")]
    assert main(args + ["-o", str(tmp_path / "a")]) == 0
    assert main(args + ["-o", str(tmp_path / "b")]) == 0
    for name in ("card.json", "card.md", "card.html"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_card_bad_inputs(reports, tmp_path, capsys):
    d, model, g = reports
    other = save(small_d_model(classes=4), tmp_path / "other.safetensors")
    other_g = small_d_model()
    other_g.weights["head.bias"] = other_g.weights["head.bias"] + 1
    save(other_g, other)
    assert main(["card", str(other), "--eval", str(d / "eval.json"), "-o",
                 str(tmp_path / "c")]) == 2
    assert "eval report is for model 'd_small' (other weights)" in capsys.readouterr().err
    bad = json.loads((d / "bench.json").read_text())
    del bad["entries"][0]["device"]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(EdgecnnError, match="entry 0 lacks device"):
        read_bench(tmp_path / "bad.json", g)
    (tmp_path / "junk.json").write_text("{")
    with pytest.raises(EdgecnnError, match="not a JSON bench report"):
        read_bench(tmp_path / "junk.json", g)


def test_pareto_frontier():
    pts = [{"ms": 1, "top1": 0.5}, {"ms": 2, "top1": 0.4}, {"ms": 3, "top1": 0.7},
           {"ms": 4, "top1": 0.6}, {"ms": 5, "top1": 0.8}]
    assert [p["ms"] for p in pareto(pts)] == [1, 3, 5]


def test_gallery_site(reports, tmp_path):
    d, model, g = reports
    write(build(g, model, d / "eval.json", [d / "bench.json"]), tmp_path / "cards" / "small")
    seed = get(SEED).init_weights(0)
    write(build(seed), tmp_path / "cards" / "seed")
    files = build_site(tmp_path / "cards", tmp_path / "site")
    index = (tmp_path / "site" / "index.html").read_text()
    assert "<table" in index and "<svg" in index and "d_small" in index and SEED in index
    assert (tmp_path / "site" / "cards" / "d_small.html").is_file()
    charts = sorted((tmp_path / "site" / "charts").glob("*.svg"))
    assert len(charts) == 1  # one device: this CPU
    svg = charts[0].read_text()
    assert svg.count("<circle") == 2  # one point + its legend mark
    assert "edgecnn, measured" in svg
    assert len(files) == 4
    with pytest.raises(EdgecnnError, match="no card.json"):
        build_site(tmp_path / "site" / "cards", tmp_path / "x")


def estimate_report(g, board: str, ms: float, error: float = 0.2) -> dict:
    """An `edgecnn estimate --format json` report (its documented shape) for the gallery."""
    return {"model": g.name, "graph_name": g.name, "date": "2026-01-01T00:00:00Z",
            "machine": {"arch": "x86_64", "cpu": "the estimating machine"},
            "entries": [{"backend": "compiled", "threads": 1, "available": True, "target": board,
                         "device": f"{board} (estimated)", "board": board,
                         "date": "2026-01-01T00:00:00Z", "ms_median": ms, "estimated": True,
                         "method": "instruction counts x llvm-mca block costs",
                         "validation_error": error, "publishable": error <= 0.35}]}


@pytest.fixture()
def pi_cards(reports, tmp_path):
    """Cards: d_small measured on this CPU and estimated for a Pi 3; ELL's gallery as
    reference; a second card estimated for a Pi 4 only."""
    d, model, g = reports
    (tmp_path / "est.json").write_text(json.dumps(estimate_report(g, "pi3", 123.0)))
    write(build(g, model, d / "eval.json", [d / "bench.json", tmp_path / "est.json"]),
          tmp_path / "cards" / "small")
    return d, g


def test_card_performance_rows_name_device_and_kind(pi_cards, tmp_path):
    d, g = pi_cards
    card = json.loads((tmp_path / "cards" / "small" / "card.json").read_text())
    kinds = {(e["kind"], e["board"]) for e in card["performance"]}
    # an estimate whose method's validation error exceeds ±35% is not shown
    (tmp_path / "bad.json").write_text(json.dumps(estimate_report(g, "pi4", 9.0, error=0.5)))
    assert read_bench(tmp_path / "bad.json", g) == []
    assert kinds == {("measured", ""), ("estimated", "pi3")}
    md = (tmp_path / "cards" / "small" / "card.md").read_text()
    cpu = json.loads((d / "bench.json").read_text())["entries"][0]["device"]
    assert f"— measured on {cpu}: reference" in md
    assert ("123.00 ms/frame — estimated for Raspberry Pi 3 (compiled, 1 thread; instruction "
            "counts x llvm-mca block costs; x86 validation error ±20%)") in md


def test_gallery_keeps_devices_apart(pi_cards, tmp_path, shared_data):
    d, g = pi_cards
    build_site(tmp_path / "cards", tmp_path / "site", shared_data / "ell_gallery.json")
    charts = {p.stem: p.read_text() for p in (tmp_path / "site" / "charts").glob("*.svg")}
    assert "raspberry-pi-3" in charts and len(charts) == 2
    pi3 = charts.pop("raspberry-pi-3")
    (here,) = charts.values()
    # this CPU's chart: the measured point only, no ELL figures, no estimates
    assert here.count('class="point measured"') == 1
    assert "ELL" not in here and "estimated" not in here and "Raspberry Pi" not in here
    # the Pi 3 chart: the estimate (triangle) and ELL's published points (squares), nothing
    # measured on this CPU
    ell = json.loads((shared_data / "ell_gallery.json").read_text())["models"]
    n_ell = sum(1 for m in ell.values() if m.get("top1") and m.get("pi3_s_per_frame"))
    assert pi3.count('class="point published"') == n_ell > 10
    assert pi3.count('<polygon points=') == 2  # the estimate + its legend mark
    assert 'class="point measured"' not in pi3
    assert "x86 validation error ±20%" in pi3 and "on Raspberry Pi 3 (log scale)" in pi3
    index = (tmp_path / "site" / "index.html").read_text()
    assert "ms/frame, Raspberry Pi 3, estimated" in index and index.count('class="chart"') == 2


def test_gallery_in_headless_chromium_shows_table_and_chart(reports, tmp_path, browser):
    import numpy as np
    from PIL import Image
    from selenium.webdriver.common.by import By

    d, model, g = reports
    write(build(g, model, d / "eval.json", [d / "bench.json"]), tmp_path / "cards" / "small")
    write(build(get("alexnet").init_weights(0)), tmp_path / "cards" / "alexnet")
    build_site(tmp_path / "cards", tmp_path / "site")
    browser.get((tmp_path / "site" / "index.html").as_uri())
    rows = browser.find_elements(By.CSS_SELECTOR, "table.sortable tbody tr")
    assert [r.find_elements(By.TAG_NAME, "td")[0].text for r in rows] == ["alexnet", "d_small"]
    (chart,) = browser.find_elements(By.CSS_SELECTOR, "div.chart svg")
    assert chart.size["width"] > 400 and chart.size["height"] > 300
    browser.find_elements(By.CSS_SELECTOR, "table.sortable th")[2].click()  # sort by top-1
    browser.execute_script("arguments[0].scrollIntoView()", chart)
    shot = tmp_path / "gallery.png"
    browser.save_screenshot(str(shot))
    if os.environ.get("EDGECNN_KEEP_SCREENSHOT"):
        browser.save_screenshot(os.environ["EDGECNN_KEEP_SCREENSHOT"])
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float32)
    assert pixels.std() > 10
    # the chart's point for the measured model is drawn in the first series colour
    assert np.all(np.abs(pixels - [0x1F, 0x77, 0xB4]) < 30, axis=-1).sum() > 20


def test_gallery_charts_per_device_in_headless_chromium(pi_cards, tmp_path, browser,
                                                        shared_data):
    import numpy as np
    from PIL import Image
    from selenium.webdriver.common.by import By

    build_site(tmp_path / "cards", tmp_path / "site", shared_data / "ell_gallery.json")
    browser.set_window_size(1000, 1400)
    browser.get((tmp_path / "site" / "index.html").as_uri())
    charts = browser.find_elements(By.CSS_SELECTOR, "div.chart")
    devices = [c.get_attribute("data-device") for c in charts]
    assert len(devices) == 2 and devices[1] == "Raspberry Pi 3"
    pi3 = charts[1].find_element(By.TAG_NAME, "svg")
    legend = [t.text for t in pi3.find_elements(By.TAG_NAME, "text") if "," in t.text]
    assert "edgecnn, estimated (x86 validation error ±20%)" in legend
    assert "ELL, published (ELL gallery)" in legend
    browser.execute_script("arguments[0].scrollIntoView()", charts[0])
    shot = tmp_path / "charts.png"
    browser.save_screenshot(str(shot))
    if os.environ.get("EDGECNN_KEEP_SCREENSHOT"):
        browser.save_screenshot(os.environ["EDGECNN_KEEP_SCREENSHOT"])
    pixels = np.asarray(Image.open(shot).convert("RGB"), dtype=np.float32)
    # ELL's squares are drawn in the third series colour, the estimate in the second
    for color in ([0x2C, 0xA0, 0x2C], [0xD6, 0x27, 0x28]):
        assert np.all(np.abs(pixels - color) < 30, axis=-1).sum() > 20, color


def test_integer_card_says_its_numbers_and_counts_bytes_at_their_width(tmp_path):
    """The int8 card beside the float one: its type, and weights at one byte each."""
    from conftest import need_module
    from int_models import small_model

    need_module("tflite", "tflite")
    from edgecnn.formats.importers import import_model

    path = tmp_path / "small.tflite"
    path.write_bytes(small_model("int8"))
    gi, gf = import_model(path), import_model(path, as_float=True)
    ci, cf = build(gi), build(gf)
    assert ci["numbers"]["dtype"] == "int8" and "per channel" in ci["numbers"]["text"]
    assert cf["numbers"] == {"dtype": "float32", "text": "float32 weights and activations"}
    assert ci["size"]["weights_bytes"] == sum(v.nbytes for v in gi.weights.values())
    assert ci["size"]["weights_bytes"] < 0.4 * cf["size"]["weights_bytes"]
    assert "| Numbers | int8: 8-bit weights (per channel)" in render_markdown(ci)
