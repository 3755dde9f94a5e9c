"""Which labels `train` uses: the model's, or the data's class folders (``--own-labels``).

An ILSVRC2012 architecture with no trained weights, given folders none of which is a WNID,
trains on the folders' labels (nothing would be lost, and the user plainly meant it). A model
with trained weights is never re-headed silently: the error names ``--own-labels`` and
``retarget``.
"""

from __future__ import annotations

import os

from ..core.datasets import WNID_RE, find_samples
from ..core.graph import Graph
from ..core.labels import class_names
from ..core.surgery import with_classes
from ..errors import EdgecnnError


def untrained(g: Graph) -> bool:
    """Are the weights only initialized (a zoo name or `edgecnn init`), not trained?"""
    return str(g.meta.get("weights", "")).startswith("untrained")


def choose_labels(g: Graph, data: str | os.PathLike, own_labels: bool,
                  seed: int = 0) -> tuple[Graph, str | None]:
    """The graph to train (re-headed when the data's labels are used) and a one-line note
    saying so, or None when the model's labels are kept."""
    folder_labels = sorted({s.label for s in find_samples(data, "train")})
    if own_labels:
        return with_classes(g, folder_labels, seed=seed), None
    known = {cid for cid, _ in class_names(g.labels, g.num_classes)}
    unknown = [x for x in folder_labels if x not in known]
    if not unknown:
        return g, None
    shown = ", ".join(unknown[:5]) + (" …" if len(unknown) > 5 else "")
    if (untrained(g) and g.labels == "ilsvrc2012"
            and not any(WNID_RE.match(x) for x in folder_labels)):
        note = (f"the class folders of {data} are not ILSVRC2012 WNIDs: training on their "
                f"{len(folder_labels)} labels ({', '.join(folder_labels[:5])}"
                f"{' …' if len(folder_labels) > 5 else ''}) as --own-labels does")
        return with_classes(g, folder_labels, seed=seed), note
    expects = ("ILSVRC2012 WNIDs (e.g. n01440764)" if g.labels == "ilsvrc2012"
               else "its own labels")
    raise EdgecnnError(
        f"{data}: class(es) {shown} unknown to model {g.name!r}, which expects {expects}. "
        "To train on your own classes, add --own-labels (a new classifier, trained with the "
        "rest of the model), or keep the trained features with `edgecnn retarget MODEL "
        f"--data {data}`")
