"""The graph's input: an H x W x C image tensor (already preprocessed)."""

from .base import Attr, LayerKind, register


@register
class Input(LayerKind):
    kind = "input"
    title = "Input"
    attrs = (Attr("shape", "int3", doc="H, W, C"),)
    min_inputs = 0
    max_inputs = 0

    def output_shape(self, a, ins):
        return a["shape"]

    def forward(self, a, xs, w):  # pragma: no cover - the interpreter feeds the input itself
        raise AssertionError("input layers are fed, not run")
