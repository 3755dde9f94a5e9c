"""The ELL family rules (``edgecnn.zoo.rules``, data in ``ell.FAMILIES``): they reproduce the
gallery tables with only the listed one-offs, they predict tables they were not fitted to
(leave one out), they give gallery names outside the 18 their family's network, and strings
that are not gallery networks stay literal."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from edgecnn import zoo
from edgecnn.cli.main import main
from edgecnn.core.accounting import summarize
from edgecnn.publish.summary import rows
from edgecnn.zoo import ell, rules
from edgecnn.zoo import ell_gallery as gallery
from test_summary import check_golden

GALLERY = [e.name for e in gallery.ENTRIES]
ONE_OFFS = {"d_I128x128x3CMCMCMCMCMCMC1AS", "d_I224x224x3CMCMBMBMBMBMB1AS",
            "d_I256x256x3CMCMCMCMCMCMCMC1AS"}


@pytest.fixture(scope="module")
def pages(shared_data):
    return json.loads((shared_data / "ell_gallery.json").read_text())["models"]


def mismatches(g, page: list[dict], page_pools: str) -> list[str]:
    """Where a graph's summary rows differ from a published table (as test_zoo compares them:
    Pooling rows printed padded or not as ``page_pools`` says, dense rows not on the page)."""
    ours = [r for r in rows(g)[1:] if r.title in {p["layer"] for p in page}]
    if [r.title for r in ours] != [p["layer"] for p in page]:
        return [f"rows {[r.title for r in ours]} != {[p['layer'] for p in page]}"]
    out = []
    for r, p in zip(ours, page, strict=True):
        output, details = r.output, r.details
        if r.title == "Pooling":
            padded = page_pools == "padded" or (page_pools == "padded-2x2"
                                                and "size=2x2, stride=2" in details)
            output = "x".join(map(str, r.padded_shape if padded else r.shape))
        want = p["details"].replace("type=int64", "type=binary")
        if (output, details) != (p["output"], want):
            out.append(f"{r.layers[0]}: {output} {details!r} != {p['output']} {want!r}")
    return out


# ---- the rules reproduce the gallery ------------------------------------------------------------

@pytest.mark.data
def test_the_rules_alone_reproduce_every_table_but_the_listed_one_offs(pages):
    failing = set()
    for name in GALLERY:
        named = ell.parse(name)
        assert rules.selects_rules(named), name
        pools = rules.page_pools(named, ell.FAMILIES[named.family].gallery)
        if mismatches(rules.graph(name), pages[name]["architecture"], pools):
            failing.add(name)
    assert failing == ONE_OFFS


def test_only_the_one_offs_carry_per_entry_records_and_each_replaces_a_rule():
    assert {e.name for e in gallery.ENTRIES if e.one_offs or e.why} == ONE_OFFS
    for e in gallery.ENTRIES:
        family_rules = ell.FAMILIES[e.family].gallery
        assert len(e.one_offs) <= 3 and bool(e.why) == bool(e.one_offs)
        for field, value in e.one_offs:
            assert getattr(family_rules, field) != value, (e.name, field)  # not a no-op
        if e.one_offs:
            assert any(d.startswith("one-off") for d in e.departures)


def test_gallery_models_are_the_rules_output_with_their_one_offs():
    for e in gallery.ENTRIES:
        registered, by_rules = zoo.get(e.name), rules.graph(e.name)
        same = [(l.kind, l.attrs) for l in registered.layers] == \
            [(l.kind, l.attrs) for l in by_rules.layers]
        assert same == (e.name not in ONE_OFFS), e.name


def test_d_and_dr_share_the_darknet_tail():
    d, dr = ell.FAMILIES["d"].gallery, ell.FAMILIES["dr"].gallery
    assert (d.form, d.extra, d.feature_width, d.binary_pool, d.classifier_act) == \
        (dr.form, dr.extra, dr.feature_width, dr.binary_pool, dr.classifier_act)


# ---- held out: infer the rules from the tables, leaving one out ---------------------------------
# Each table votes on the rule fields it shows; the majority is the inferred rule. The d and dr
# tails (the layers between the name's convolutions and the classifier) vote together.

DETAILS = re.compile(r"size=(\d+)x\d+, stride=\d+, type=(\w+)(?:, activation=(.+))?")
ACT = {"relu": "relu", "leaky relu": "leaky_relu", "parametric relu": "prelu", None: None}


def _conv_rows(page: list[dict]) -> list[dict]:
    """Convolution rows with the pools before them and the pool size after them (or None)."""
    out, pools = [], 0
    for i, row in enumerate(page):
        if row["layer"] == "Pooling" and "operation=max" in row["details"]:
            pools += 1
        if row["layer"] != "Convolution":
            continue
        k, typ, act = DETAILS.fullmatch(row["details"]).groups()
        nxt = page[i + 1] if i + 1 < len(page) else {"layer": "", "details": ""}
        after = nxt["details"].split("x")[0][5:] if "operation=max" in nxt["details"] else None
        out.append({"k": int(k), "type": "B" if typ == "int64" else "C", "act": ACT[act],
                    "n": int(row["output"].split("x")[2]), "p": pools, "pool_after": after,
                    "before_avg": "operation=average" in nxt["details"]})
    return out


def observe(name: str, page: list[dict]) -> dict:
    """The rule fields one table shows: key -> value."""
    named = ell.parse(name)
    fam, feats, convs = named.family, rules.features(named), _conv_rows(page)
    obs = {(fam, "activation"): next(c["act"] for c in convs if c["type"] == "C")}
    for c in convs[:len(feats)]:
        obs.setdefault((fam, "schedule", c["p"]), c["n"])
    pooled = [c["pool_after"] for c in convs if c["type"] == "B" and c["pool_after"]]
    if pooled:
        obs["binary_pool"] = pooled[0]
    cls = [i for i, c in enumerate(convs) if c["before_avg"]]
    if cls:
        last, binary = convs[len(feats) - 1], any(c["type"] == "B" for c in convs)
        tail = tuple((c["k"], c["type"], c["n"], c["pool_after"])
                     for c in convs[len(feats):cls[0]])
        obs[("tail", last["type"], last["n"] < 1024)] = tail
        obs[("classifier", binary)] = (convs[cls[0]]["k"], convs[cls[0]]["type"],
                                       convs[cls[0]]["act"] is not None)
    softmax = int(page[-1]["output"].split("x")[2])
    dense = [op.n for op in named.ops if op.code == "F"]
    if dense:
        obs[(fam, "dense_classifier")] = softmax != dense[-1]
    return obs


def infer(pages: dict) -> dict:
    """Each field's majority value over the tables (ties are left out)."""
    votes: dict = {}
    for name, page in pages.items():
        for key, value in observe(name, page["architecture"]).items():
            votes.setdefault(key, Counter())[value] += 1
    out = {}
    for key, counter in votes.items():
        top = counter.most_common(2)
        if len(top) == 1 or top[0][1] > top[1][1]:
            out[key] = top[0][0]
    return out


def rules_from(fields: dict, family: str) -> ell.GalleryRules:
    """GalleryRules built only from inferred fields; the literal grammar fills what no table
    of the family shows (the name's form and the page's printing are not fitted)."""
    fam = ell.FAMILIES[family]
    schedule = tuple(fields.get((family, "schedule", p), fam.channels(p)) for p in range(9))
    extra, width = [], 0
    for typ in "CB":
        tail = fields.get(("tail", typ, True), ())
        pool = {"3": " M3", "2": " M2", None: ""}
        extra.append((typ, " ".join(f"{t}{k}/{n}{pool[after[0] if after else None]}"
                                    for k, t, n, after in tail)))
        width = max([width] + [n for _, _, n, _ in tail])
    float_act = fields.get(("classifier", False), (1, "C", True))[2]
    return ell.GalleryRules(
        form=fam.gallery.form, schedule=schedule,
        activation=fields.get((family, "activation"), fam.activation),
        binary_pool="M3" if fields.get("binary_pool") == "3" else "M",
        feature_width=width, extra=tuple(extra),
        classifier="dense" if fields.get((family, "dense_classifier")) else "conv",
        classifier_act="unless-binary" if float_act else "none",
        page_pools=fam.gallery.page_pools, page_pools_binary=fam.gallery.page_pools_binary)


def canon(r: ell.GalleryRules, family: str) -> dict:
    """The fields of a family's rules that the tables can show, comparable across sources."""
    out = {"schedule": tuple(r.schedule[min(p, len(r.schedule) - 1)] for p in range(7)),
           "activation": r.activation or ell.FAMILIES[family].activation,
           "binary_pool": r.binary_pool, "classifier": r.classifier}
    if r.classifier == "conv":
        out.update(feature_width=r.feature_width, extra={t: s for t, s in r.extra if s},
                   classifier_act=r.classifier_act)
    return out


@pytest.mark.data
def test_rules_inferred_from_all_tables_are_the_data_table(pages):
    fields = infer(pages)
    for family, fam in ell.FAMILIES.items():
        assert canon(rules_from(fields, family), family) == canon(fam.gallery, family), family
    assert fields[("classifier", True)][:2] == fields[("classifier", False)][:2] == (1, "C")
    assert fields[("tail", "C", False)] == ()  # a name that reaches 1024 gets no extra layer


@pytest.mark.data
@pytest.mark.parametrize("held_out", GALLERY)
def test_rules_inferred_without_a_table_predict_it(held_out, pages):
    """Leave one out: infer the rules from the other 17 tables and build the held-out name.
    The prediction matches the published table for all but the three one-offs, and the
    inferred rules are the data table's whichever table is left out."""
    fields = infer({n: p for n, p in pages.items() if n != held_out})
    named = ell.parse(held_out)
    fitted = rules_from(fields, named.family)
    g = rules.build(named, held_out, fitted)
    wrong = mismatches(g, pages[held_out]["architecture"], rules.page_pools(named, fitted))
    assert bool(wrong) == (held_out in ONE_OFFS), wrong
    for family, fam in ell.FAMILIES.items():
        assert canon(rules_from(fields, family), family) == canon(fam.gallery, family), family


@pytest.mark.data
def test_float_models_file_sizes_fit_the_rules_parameter_counts(pages):
    """A quantity the rules were not read from: the published uncompressed model size. ELL's
    model files hold the float weights as text, 3.1-3.6 bytes per parameter byte on every float
    gallery model; the literal reading of the d names is off by 3x (11.4)."""
    for name in GALLERY:
        if "B" in rules.letters(ell.parse(name)):
            continue  # binary models' files grow with the input size: not a parameter count
        size = float(pages[name]["uncompressed_size"].removesuffix("MB")) * 2**20
        params = summarize(zoo.get(name)).total_params
        assert 3.1 <= size / (4 * params) <= 3.6, name
    literal = summarize(ell.to_graph(ell.parse("d_I224x224x3CMCMCMCMCMCMC1AS"))).total_params
    assert 91 * 2**20 / (4 * literal) > 11


# ---- which strings select the rules -------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "d_I64x64x3CMCMBMC1AS",          # the d form, but 3 pools: a free design
    "dr_I16x16x3CMC1AS",
    "v_I32x32x3CMF10S",
    "v_I64x64x3CMCMCMCMCMCC1A",      # 5 pools, but not the v form (no F<n>)
    "d_I256x256x3CMCMCMCMCMCMCC1AS",  # two convolutions in a block: not the d form
    "d_I256x256x3CMCMCMCMCMCMBC1AS",
])
def test_strings_that_are_not_gallery_networks_stay_literal(text):
    named = ell.parse(text)
    assert not rules.selects_rules(named)
    g, literal = zoo.get(text), ell.to_graph(named)
    assert [(l.kind, l.attrs) for l in g.layers] == [(l.kind, l.attrs) for l in literal.layers]
    assert g.meta["departures"] == [] and "read literally" in g.meta["description"]


@pytest.mark.parametrize("text", [
    "d_I64x64x3CMCMCMCMCMCMC1AS", "d_I128x128x3CMCMBMBMBMBMC1A", "dr_I160x160x3CMCMCMCMCMCMC1AS",
    "d_I96x96x3CMBMBMBMBMBMB1AS", "v_I224x224x3CCMCCMCCCMCCCMCCCMF4096S",
])
def test_gallery_names_select_the_rules_and_still_format_back(text):
    named = ell.parse(text)
    assert rules.selects_rules(named) and ell.format(named) == text
    g = zoo.get(text)
    assert g.name == text and g.meta["departures"] and g.num_classes == 1000
    assert g.meta["gallery"]["spec"] == ell.format_detailed(rules.expand(named))


# ---- summary of gallery names that are not among the 18 -----------------------------------------
# Written by hand from the rules (logical shapes, as ELL's float pages print them).

F, R = "type=float32", "activation=relu"
CONV3, CONV1, MAX2 = "size=3x3, stride=1, ", "size=1x1, stride=1, ", "size=2x2, stride=2, "
BIN = f"{CONV3}type=binary, activation=parametric relu"
MAX3 = "size=3x3, stride=2, operation=max"


def _tower(sizes, channels, conv, pool) -> list[tuple[str, str, str]]:
    out = []
    for (h, n), h2 in zip(zip(sizes, channels, strict=True), sizes[1:] + [None], strict=True):
        out.append(("Convolution", f"{h}x{h}x{n}", conv))
        if h2:
            out.append(("Pooling", f"{h2}x{h2}x{n}", pool))
    return out


NEW_NAMES = {
    # d, float, an input size the 18 do not have
    "d_I192x192x3CMCMCMCMCMCMC1AS": [
        *_tower([192, 96, 48, 24, 12, 6, 3], [16, 64, 64, 128, 256, 512, 1024],
                f"{CONV3}{F}, {R}", f"{MAX2}operation=max"),
        ("Convolution", "3x3x1000", f"{CONV1}{F}, {R}"),
        ("Pooling", "1x1x1000", "size=3x3, stride=1, operation=average"),
        ("Softmax", "1x1x1000", "")],
    # d, binary, at 128 (the 18 have binary models from 160 up)
    "d_I128x128x3CMCMBMBMBMBMC1AS": [
        *_tower([128, 64, 32], [16, 64, 0], f"{CONV3}{F}, {R}", f"{MAX2}operation=max")[:-1],
        *_tower([32, 16, 8, 4, 2, 1], [64, 128, 256, 512, 1024, 1024], BIN, MAX3)[:-1],
        ("Convolution", "1x1x1000", f"{CONV1}{F}"),
        ("Pooling", "1x1x1000", "size=1x1, stride=1, operation=average"),
        ("Softmax", "1x1x1000", "")],
    # dr, the reference network at another input size
    "dr_I224x224x3CMCMCMCMCMCMCMC1AS": [
        *_tower([224, 112, 56, 28, 14, 7, 4, 2], [16, 32, 64, 128, 256, 512, 1024, 1024],
                f"{CONV3}{F}, activation=leaky relu", f"{MAX2}operation=max")[:-1],
        ("Convolution", "2x2x1000", f"{CONV1}{F}, activation=leaky relu"),
        ("Pooling", "1x1x1000", "size=2x2, stride=1, operation=average"),
        ("Softmax", "1x1x1000", "")],
    # dr with six conv+pool blocks: Darknet's 3x3x1024 convolution completes it
    "dr_I160x160x3CMCMCMCMCMCMC1AS": [
        *_tower([160, 80, 40, 20, 10, 5, 3], [16, 32, 64, 128, 256, 512, 1024],
                f"{CONV3}{F}, activation=leaky relu", f"{MAX2}operation=max"),
        ("Convolution", "3x3x1000", f"{CONV1}{F}, activation=leaky relu"),
        ("Pooling", "1x1x1000", "size=3x3, stride=1, operation=average"),
        ("Softmax", "1x1x1000", "")],
}


@pytest.mark.parametrize("name", sorted(NEW_NAMES))
def test_summary_of_a_gallery_name_not_among_the_18(name, capsys):
    assert name not in zoo.names()
    assert main(["summary", name, "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    got = [(r["layer"], "x".join(map(str, r["output_shape"])), r["details"]) for r in d["rows"][1:]]
    assert got == NEW_NAMES[name]
    # the dr rules are its literal reading; a d name or a short dr name departs from it
    assert d["departures"] == zoo.get(name).meta["departures"]
    assert bool(d["departures"]) == (name != "dr_I224x224x3CMCMCMCMCMCMCMC1AS")


def test_summary_of_a_new_d_name_golden(capsys):
    assert main(["summary", "d_I192x192x3CMCMCMCMCMCMC1AS"]) == 0
    check_golden("summary_d_I192x192x3CMCMCMCMCMCMC1AS.txt", capsys.readouterr().out)
