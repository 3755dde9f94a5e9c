"""Every registered layer kind lowers to every backend that claims it.

The backends (torch module, ONNX export, the C compiler) claim every float kind but ``input``
(which each of them feeds itself). The integer kinds (``kind.integer``, TFLite's arithmetic) are
claimed by the C compiler (ec_int8.c) and the ONNX export (QDQ, layers/_qdq.py); torch refuses an
integer graph. A kind added without one of its lowerings fails here, naming it.
"""

from edgecnn.compiler import passes
from edgecnn.layers import LOWERINGS, LayerKind, all_kinds, lowers_to
from edgecnn.layers.base import Attr

NOT_CLAIMED = {"input"}  # the input layer is the backends' own: no lowering


def _missing(kinds: dict[str, LayerKind]) -> list[str]:
    out = []
    for name, kind in sorted(kinds.items()):
        if name in NOT_CLAIMED:
            continue
        for backend in ["c", "onnx"] if kind.integer else LOWERINGS:
            if backend == "c" and name in passes.REWRITTEN:
                continue  # a compiler pass removes or rewrites it before the C calls
            if not lowers_to(kind, backend):
                out.append(f"{name}: no {backend} lowering ({LOWERINGS[backend]})")
    return out


def test_every_kind_lowers_to_every_backend():
    assert _missing(all_kinds()) == []


def test_a_kind_without_lowerings_is_reported():
    class Bare(LayerKind):  # not registered: the registry stays as it is
        kind = "bare"
        attrs = (Attr("n", "int", 1),)

        def to_torch(self, a, ins):
            return None

    assert _missing({"bare": Bare()}) == ["bare: no onnx lowering (to_onnx)",
                                          "bare: no c lowering (c_call)"]


def test_supported_is_the_registry():
    lowered = {k for k, kind in all_kinds().items() if lowers_to(kind, "c")}
    assert lowered | set(passes.REWRITTEN) == passes.SUPPORTED
    assert "input" not in passes.SUPPORTED and "conv2d" in passes.SUPPORTED


def test_kinds_are_discovered_from_the_package():
    import pkgutil

    import edgecnn.layers as layers

    modules = {m.name for m in pkgutil.iter_modules(layers.__path__)
               if m.name != "base" and not m.name.startswith("_")}
    defined = {type(k).__module__.rsplit(".", 1)[1] for k in all_kinds().values()}
    assert defined == modules
