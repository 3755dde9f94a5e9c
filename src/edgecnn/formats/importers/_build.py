"""Helpers the importers share: default labels and TF/ONNX "SAME" padding.

The importers build their graphs through :class:`edgecnn.core.build.Build`.
"""

from __future__ import annotations

from ...errors import ModelFileError

MAX_CLASSES = 100_000


def default_labels(classes: int) -> str | list[str]:
    """ILSVRC2012 for 1000 outputs, with "background" first for 1001, else numbered classes."""
    if classes == 1000:
        return "ilsvrc2012"
    if classes == 1001:
        from . import ilsvrc2012_with_background

        return ilsvrc2012_with_background()
    if classes > MAX_CLASSES:  # found by fuzzing: 224x224x1000 outputs = 50 M label strings
        raise ModelFileError(f"the model's output has {classes:,} values, too many for a "
                             f"classifier (at most {MAX_CLASSES:,}); a classifier ends in "
                             "1x1xclasses: end the network with a global average pool or a "
                             "fully connected layer")
    return [f"class_{i}" for i in range(classes)]


def same_padding(size: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """TF "SAME" / ONNX SAME_UPPER padding (before, after): out = ceil(size / s), the odd extra
    pad after (bottom/right)."""
    out = -(-size // s)
    total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
    return total // 2, total - total // 2
