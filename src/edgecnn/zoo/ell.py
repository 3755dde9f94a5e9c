"""ELL architecture strings: the name code of the Embedded Learning Library's model gallery.

Grammar (one string, no spaces)::

    <family>_I<H>x<W>x<C><layers>          e.g. dr_I256x256x3CMCMCMCMCMCMCMC1AS

family   d   Darknet-like, relu              channels 16 * 2**p
         dr  Darknet reference, leaky relu   channels 16 * 2**p   (slope 0.1, as in Darknet)
         v   VGG-like, relu                  channels min(64 * 2**p, 512)
         where p is the number of M letters before the convolution. This is the literal
         reading. A whole gallery network of a family (its letters have the family's gallery
         form, e.g. CM(CM)*(BM)*C1AS for d, and it pools at least 5 times) is built instead by
         the family's gallery rules, ``GalleryRules`` in ``FAMILIES`` below (applied by
         ``edgecnn.zoo.rules``): what ELL published for such names, e.g. 64 channels in d's
         second convolution and a 3x3x1024 convolution before the classifier.
I<H>x<W>x<C>  the input image, H x W pixels, C = 3 channels (B, G, R as ELL feeds them).
layers, read left to right:
    C      3x3 convolution, stride 1, padding 1, no bias -> batchnorm -> family activation
    C1     1x1 convolution, no bias -> batchnorm -> family activation
    B      binary (XNOR) 3x3 convolution, padding 1 -> batchnorm -> parametric relu
    B1     binary 1x1 convolution -> batchnorm -> parametric relu
    M      2x2 max pool, stride 2, "same" style: output ceil(in / 2) (ceil_mode)
    A      average pool over what is left (kernel = remaining H x W, stride 1) -> 1 x 1
    F<n>   dense layer with n outputs (flattens any input); followed by the family activation
           unless it is the last layer or the one before S (then it is the classifier)
    S      softmax; only as the last letter
The convolution directly before A has 1000 outputs (the ILSVRC2012 classes); every other one
follows its family's channel rule. Numbers are written without leading zeros.

The names are lossy: the gallery's published tables depart from what they say (see
``edgecnn.zoo.rules``), so the networks the rules build are written in the detailed spec below,
which this module parses with a second lookup table. Detailed spec: tokens separated by spaces::

    C3/16  C1/1000  B3/64  B1/1000   convolution k x k with n outputs; ":none", ":relu",
                                     ":leaky" or ":prelu" overrides the activation
    M2     2x2 max pool, stride 2, ceil mode (as M above)
    M3     3x3 max pool, stride 2, padding 1 (output ceil(in / 2), as after ELL's binary layers)
    A  S   as above;  F<n>[:act]  as above

``parse`` and ``format`` work on :class:`Arch` (the architecture as data; ``format(parse(s)) ==
s`` for every valid s); :func:`to_graph` turns an Arch into a Graph.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ..core.graph import Graph, GraphBuilder, Preprocessing
from ..errors import EdgecnnError, GraphError
from ..layers import get_kind

CLASSES = 1000  # ILSVRC2012
LEAKY_SLOPE = 0.1  # Darknet's leaky relu


@dataclass(frozen=True)
class GalleryRules:
    """How ELL's gallery built a network of a family from its name (see ``edgecnn.zoo.rules``).

    Inferred from the 18 published tables in ``../shared/data/ell_gallery.json``; each field
    says which tables show it. A name of the family's gallery ``form`` is built by these rules,
    any other string literally.
    """

    form: str  # regex over the letters after the input size: a whole gallery network
    schedule: tuple[int, ...]  # conv outputs by the number of pools before it; the last repeats
    activation: str | None = None  # of the float convolutions and hidden dense layers; None:
    #                                the family's (Family.activation)
    binary_pool: str = "M3"  # the pool written M after a binary convolution
    feature_width: int = 0  # the last conv before the classifier has this many outputs; if the
    #                         name's last conv has fewer, ``extra`` adds one (0: never)
    extra: tuple[tuple[str, str], ...] = ()  # (type of the name's last conv, detailed spec)
    classifier: str = "conv"  # "conv": [CB]1 before A is a float 1x1 conv with CLASSES outputs;
    #                           "dense": the name's F<n> is hidden and a dense CLASSES follows
    classifier_act: str = "unless-binary"  # "unless-binary": the activation of a float net's
    #                                        classifier conv, none with binary layers; "none"
    page_pools: str = "padded"  # how the gallery page prints Pooling rows (gallery.py)
    page_pools_binary: str = "padded-2x2"  # the same, for a network with binary layers
    min_pools: int = 5  # a gallery network pools at least this often (ILSVRC2012 at 64..256)
    words: str = ""  # the rules in words, where they differ from Family.words

    def extra_for(self, conv_type: str) -> str:
        return dict(self.extra).get(conv_type, "")


@dataclass(frozen=True)
class Family:
    activation: str
    channels: Callable[[int], int]  # literal reading: pools before the convolution -> outputs
    words: str
    formula: str  # the literal channel rule in words, with {p} for the pool count
    gallery: GalleryRules


# The gallery's name forms: d and dr start conv+pool blocks (float, then optionally binary) and
# end with the 1x1 classifier, A and S; v is VGG's blocks of convs and pools, F<n> and S.
_DARKNET_FORM = r"CM(?:CM)*(?:BM)*[CB]1AS?"
_VGG_FORM = r"(?:C+M)+F[1-9][0-9]*S?"

FAMILIES = {
    # d (14 tables): 16, 64, 64, 128 ... (the second conv is 64 in 13 of 14, from 6 CM stacks
    # of float and binary kinds); relu in 11 of 14; a 1024-wide 3x3 conv of the last conv's
    # type before the classifier when the name stops short of 1024 (10 of 12 tables that stop
    # short; Darknet's reference cfg ends the same way), with a 3x3/2 pool after a binary one
    # (9 of 10) and none after a float one (3 of 4); pools after binary convs 3x3/2 (10 of 10);
    # the classifier is a float 1x1 conv (also where the name writes B1: 3 of 3), with relu in
    # float nets (3 of 4) and no activation beside binary layers (10 of 10).
    "d": Family("relu", lambda p: 16 * 2**p, "Darknet-like, relu, channels 16·2^pools",
                "16·2^{p}", GalleryRules(
                    form=_DARKNET_FORM, schedule=(16, 64, 64, 128, 256, 512, 1024),
                    feature_width=1024, extra=(("C", "C3/1024"), ("B", "B3/1024 M3")),
                    page_pools="unpadded",
                    words="Darknet-like, relu, channels 16, 64, 64, 128 ... 1024 by pools, "
                          "a 1024-wide conv before the classifier")),
    # dr (1 table): the literal reading; it shares d's Darknet tail (the 1024-wide conv, the
    # binary pools and classifier), which its one table does not exercise.
    "dr": Family("leaky_relu", lambda p: 16 * 2**p,
                 "Darknet reference, leaky relu (0.1), channels 16·2^pools", "16·2^{p}",
                 GalleryRules(form=_DARKNET_FORM, schedule=(16, 32, 64, 128, 256, 512, 1024),
                              feature_width=1024, extra=(("C", "C3/1024"), ("B", "B3/1024 M3")))),
    # v (3 tables): VGG channels min(64·2^p, 512), relu; the name's F<n> is a hidden dense
    # layer and a dense 1000-way classifier follows it (the pages print no dense rows, but
    # their file sizes need exactly one n x 1000 classifier: see tests/test_zoo_rules.py).
    "v": Family("relu", lambda p: min(64 * 2**p, 512),
                "VGG-like, relu, channels min(64·2^pools, 512)", "min(64·2^{p}, 512)",
                GalleryRules(form=_VGG_FORM, schedule=(64, 128, 256, 512),
                             classifier="dense")),
}


def ell_preprocessing() -> Preprocessing:
    """ELL feeds B, G, R pixels 0..255 unnormalized, from the central square resized."""
    return Preprocessing(channel_order="BGR", pixel_range=(0.0, 255.0), mean=(0.0, 0.0, 0.0),
                         std=(1.0, 1.0, 1.0), resize="center_crop", crop_fraction=1.0)


@dataclass(frozen=True)
class Op:
    """One layer group: code C, C1, B, B1, M, M3, A, F or S; n outputs; activation or None."""

    code: str
    n: int = 0
    act: str | None = None
    pos: int = field(default=0, compare=False)  # where it was written (for error messages)


@dataclass(frozen=True)
class Arch:
    family: str
    shape: tuple[int, int, int]
    ops: tuple[Op, ...]


def _err(text: str, pos: int, msg: str) -> EdgecnnError:
    return EdgecnnError(f"architecture {text!r}, position {pos}: {msg}")


# ---- the name code ------------------------------------------------------------------------------

NUM = r"([1-9][0-9]*)"  # no leading zeros, so format(parse(s)) == s
HEAD_RE = re.compile(r"(?P<family>[a-z]+)_I(?P<h>[1-9][0-9]*)x(?P<w>[1-9][0-9]*)"
                     r"x(?P<c>[1-9][0-9]*)")

# token regex -> code; tried in order, so C1 comes before C
NAME_TOKENS: list[tuple[re.Pattern, str]] = [
    (re.compile("C1"), "C1"), (re.compile("C"), "C"), (re.compile("B1"), "B1"),
    (re.compile("B"), "B"), (re.compile("M"), "M"), (re.compile("A"), "A"),
    (re.compile("F" + NUM), "F"), (re.compile("S"), "S"),
]
EXPECTED = "C, C1, B, B1, M, A, F<n> or S"


def looks_like_ell(text: str) -> bool:
    """True for strings shaped like ``<letters>_I<digits>...`` (parse them to validate)."""
    return re.match(r"[a-z]+_I[0-9]", text) is not None


def parse_head(text: str) -> tuple[str, tuple[int, int, int], int]:
    m = HEAD_RE.match(text)
    if not m:
        raise _err(text, 0, "expected <family>_I<H>x<W>x<C>, e.g. dr_I256x256x3 "
                   "(numbers without leading zeros)")
    family = m["family"]
    if family not in FAMILIES:
        raise _err(text, 0, f"unknown family {family!r} (known: {', '.join(FAMILIES)})")
    shape = (int(m["h"]), int(m["w"]), int(m["c"]))
    if shape[2] != 3:
        raise _err(text, m.start("c"), f"ELL strings describe 3-channel (B, G, R) images, "
                   f"got {shape[2]} channels")
    return family, shape, m.end()


def parse(text: str) -> Arch:
    """The literal reading of the name code, every channel count and activation filled in
    (``rules.graph`` builds a gallery-form name by its family's rules instead)."""
    family, shape, pos = parse_head(text)
    codes: list[tuple[str, int, int]] = []  # (code, n, position)
    while pos < len(text):
        for rx, code in NAME_TOKENS:
            m = rx.match(text, pos)
            if m:
                codes.append((code, int(m[1]) if m.groups() else 0, pos))
                pos = m.end()
                break
        else:
            raise _err(text, pos, f"unexpected {text[pos]!r} (expected {EXPECTED})")
    if not codes:
        raise _err(text, pos, f"no layers after the input size (expected {EXPECTED})")
    arch = Arch(family, shape, tuple(_name_ops(family, codes)))
    check(arch, text)
    return arch


def _name_ops(family: str, codes: list[tuple[str, int, int]]) -> list[Op]:
    fam = FAMILIES[family]
    ops, pools = [], 0
    for i, (code, n, pos) in enumerate(codes):
        nxt = codes[i + 1][0] if i + 1 < len(codes) else None
        if code in ("C", "C1", "B", "B1"):
            n = CLASSES if nxt == "A" else fam.channels(pools)
            ops.append(Op(code, n, fam.activation if code[0] == "C" else "prelu", pos))
        elif code == "F":
            ops.append(Op(code, n, None if nxt in (None, "S") else fam.activation, pos))
        else:
            pools += code == "M"
            ops.append(Op(code, 0, None, pos))
    return ops


def format(arch: Arch) -> str:  # noqa: A001 - the inverse of parse, named as in the grammar
    """The name code of an Arch: ``format(parse(s)) == s``. M3 is written M (names are lossy)."""
    h, w, c = arch.shape
    parts = [f"{arch.family}_I{h}x{w}x{c}"]
    for op in arch.ops:
        parts.append(f"F{op.n}" if op.code == "F" else "M" if op.code == "M3" else op.code)
    return "".join(parts)


# ---- the detailed spec --------------------------------------------------------------------------

ACTS = {"none": None, "relu": "relu", "leaky": "leaky_relu", "prelu": "prelu"}
ACT_RE = r"(?::(none|relu|leaky|prelu))?"
DETAIL_TOKENS: list[tuple[re.Pattern, str]] = [
    (re.compile(r"C([13])/" + NUM + ACT_RE), "C"), (re.compile(r"B([13])/" + NUM + ACT_RE), "B"),
    (re.compile(r"M2"), "M"), (re.compile(r"M3"), "M3"), (re.compile(r"A"), "A"),
    (re.compile(r"F" + NUM + ACT_RE), "F"), (re.compile(r"S"), "S"),
]


def _match_detail(tok: str, spec: str) -> tuple[str, re.Match]:
    for rx, code in DETAIL_TOKENS:
        m = rx.fullmatch(tok)
        if m:
            return code, m
    raise EdgecnnError(f"detailed spec {spec!r}: unknown token {tok!r}")


def parse_detailed(family: str, shape: tuple[int, int, int], spec: str,
                   activation: str | None = None) -> Arch:
    """An Arch from the detailed spec (see the module docstring), e.g. ``"C3/16 M2 ... A S"``.

    ``activation`` replaces the family's as the default of C and F tokens.
    """
    arch = Arch(family, shape, tuple(detail_ops(family, spec, activation)))
    check(arch, spec)
    return arch


def detail_ops(family: str, spec: str, activation: str | None = None,
               last: bool = True) -> list[Op]:
    """The Ops of a detailed spec, unchecked. ``last``: the spec ends the network (so a final
    F token is the classifier, without an activation)."""
    fam_act = activation or FAMILIES[family].activation
    found = list(re.finditer(r"\S+", spec))
    tokens = [m.group() for m in found]
    ops = []
    for i, tok in enumerate(tokens):
        pos = found[i].start()
        code, m = _match_detail(tok, spec)
        ends = (last and i + 1 == len(tokens)) or (i + 1 < len(tokens) and tokens[i + 1] == "S")
        if code in ("C", "B"):
            k, n, act = m.groups()
            code = code if k == "3" else code + "1"
            default = fam_act if code[0] == "C" else "prelu"
            ops.append(Op(code, int(n), default if act is None else ACTS[act], pos))
        elif code == "F":
            n, act = m.groups()
            default = None if ends else fam_act
            ops.append(Op(code, int(n), default if act is None else ACTS[act], pos))
        else:
            ops.append(Op(code, 0, None, pos))
    return ops


def format_detailed(arch: Arch) -> str:
    """The detailed spec of an Arch (activations written out when not the default)."""
    fam = FAMILIES[arch.family]
    inverse = {v: k for k, v in ACTS.items()}
    out = []
    for i, op in enumerate(arch.ops):
        if op.code in ("C", "C1", "B", "B1", "F"):
            last = i + 1 == len(arch.ops) or arch.ops[i + 1].code == "S"
            if op.code == "F":
                tok, default = f"F{op.n}", None if last else fam.activation
            else:
                k = "1" if op.code.endswith("1") else "3"
                tok = f"{op.code[0]}{k}/{op.n}"
                default = fam.activation if op.code[0] == "C" else "prelu"
            out.append(tok if op.act == default else f"{tok}:{inverse[op.act]}")
        else:
            out.append({"M": "M2"}.get(op.code, op.code))
    return " ".join(out)


# ---- Arch -> Graph ------------------------------------------------------------------------------

class _Net:
    """A GraphBuilder that knows the current shape and which op it is building."""

    def __init__(self, name: str, arch: Arch, text: str, **graph_kw):
        self.b = GraphBuilder(name, arch.shape, **graph_kw)
        self.shape = arch.shape
        self.text = text
        self.op = Op("", pos=0)
        self.convs = self.pools = self.fcs = self.avgpools = 0

    def add(self, kind: str, name: str, **attrs) -> None:
        k = get_kind(kind)
        try:
            a = k.normalize_attrs(attrs, f"layer {name!r}")
            self.shape = tuple(k.output_shape(a, [self.shape]))
        except GraphError as e:
            raise _err(self.text, self.op.pos, f"{self.op.code or 'layer'} on a "
                       f"{self.shape[0]}x{self.shape[1]}x{self.shape[2]} input: {e}") from None
        if min(self.shape) < 1:
            raise _err(self.text, self.op.pos, f"{self.op.code} leaves an empty output")
        self.b.add(kind, name, **attrs)


def _activation(net: _Net, base: str, act: str | None) -> None:
    if act is None:
        return
    extra = {"slope": LEAKY_SLOPE} if act == "leaky_relu" else {}
    net.add("activation", f"{base}_act", function=act, **extra)


def _conv(net: _Net, op: Op) -> None:
    net.convs += 1
    base = f"conv{net.convs}"
    k = 1 if op.code.endswith("1") else 3
    if op.code[0] == "B":
        net.add("binary_conv2d", base, filters=op.n, kernel=k, padding=k // 2)
    else:
        net.add("conv2d", base, filters=op.n, kernel=k, padding=k // 2, bias=False)
    net.add("batchnorm", f"{base}_bn")
    _activation(net, base, op.act)


def _maxpool(net: _Net, op: Op) -> None:
    net.pools += 1
    if op.code == "M":  # 2x2/2, output ceil(in / 2)
        net.add("maxpool", f"pool{net.pools}", kernel=2, stride=2, ceil_mode=True)
    else:  # 3x3/2 padding 1, output ceil(in / 2)
        net.add("maxpool", f"pool{net.pools}", kernel=3, stride=2, padding=1)


def _avgpool(net: _Net, op: Op) -> None:
    h, w, _ = net.shape
    net.avgpools += 1
    name = "avgpool" if net.avgpools == 1 else f"avgpool{net.avgpools}"
    net.add("avgpool", name, kernel=(h, w), stride=1)


def _dense(net: _Net, op: Op) -> None:
    net.fcs += 1
    base = f"fc{net.fcs}"
    net.add("dense", base, units=op.n)
    _activation(net, base, op.act)


def _softmax(net: _Net, op: Op) -> None:
    net.add("softmax", "softmax")


BUILDERS: dict[str, Callable[[_Net, Op], None]] = {
    "C": _conv, "C1": _conv, "B": _conv, "B1": _conv, "M": _maxpool, "M3": _maxpool,
    "A": _avgpool, "F": _dense, "S": _softmax,
}


def check(arch: Arch, text: str) -> None:
    """Shapes fit and S comes last; errors name the position in ``text``."""
    for op in arch.ops[:-1]:
        if op.code == "S":
            raise _err(text, op.pos, "S (softmax) may only be the last layer")
    to_graph(arch, name="check", text=text)


def to_graph(arch: Arch, name: str | None = None, meta: dict | None = None,
             text: str | None = None) -> Graph:
    """The Graph of an Arch (no weights), with ELL's preprocessing and the ILSVRC2012 labels."""
    name = name or format(arch)
    if meta is None:
        meta = {"description": f"ELL architecture string read literally, family {arch.family} "
                               f"({FAMILIES[arch.family].words})",
                "family": arch.family, "departures": []}
    net = _Net(name, arch, text or name, preprocessing=ell_preprocessing(),
               labels="ilsvrc2012", meta=meta)
    for op in arch.ops:
        net.op = op
        BUILDERS[op.code](net, op)
    return net.b.build()
