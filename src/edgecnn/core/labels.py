"""Class labels: the 1000 ILSVRC2012 classes (shipped in the package) or a model's own list."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def ilsvrc2012() -> tuple[tuple[str, str], ...]:
    """The 1000 ILSVRC2012 classes as (WNID, readable name), index = standard class index."""
    text = resources.files("edgecnn").joinpath("data/ilsvrc2012_classes.tsv").read_text("utf-8")
    rows = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            wnid, lemmas = line.split("\t", 1)
            rows.append((wnid, lemmas.split(",")[0].strip()))
    assert len(rows) == 1000, "the packaged ILSVRC2012 class list is damaged"
    return tuple(rows)


@cache
def wnid_index() -> dict[str, int]:
    return {wnid: i for i, (wnid, _) in enumerate(ilsvrc2012())}


def class_names(labels: str | list[str], count: int) -> list[tuple[str, str]]:
    """(id, readable name) for each of a model's ``count`` outputs.

    ``labels`` is "ilsvrc2012" or a list of names; names that are ILSVRC2012 WNIDs get their
    readable name. Outputs beyond the list are named by index.
    """
    if labels == "ilsvrc2012":
        base = list(ilsvrc2012())
    else:
        known = dict(ilsvrc2012())
        base = [(n, known.get(n, n)) for n in labels]
    base += [(str(i), f"class {i}") for i in range(len(base), count)]
    return base[:count]
