"""The ELL gallery's family rules: from a gallery name to the network ELL published for it.

ELL's names are lossy: its gallery pages show, per family, the same departures from the
literal reading of the letters (a 64-wide second convolution in ``d``, a 1024-wide convolution
before the classifier, 3x3/2 pools after binary layers, a dense classifier after ``F<n>``...).
The rules are data, one ``GalleryRules`` row per family in ``ell.FAMILIES``; this module
applies them.

How a string selects the rules: a name whose letters (after ``I<H>x<W>x<C>``) have its
family's gallery form and which pools at least ``min_pools`` times is a gallery network and is
built by the rules; any other string (the grammar used freely, e.g. ``d_I64x64x3CMCMBMC1AS``)
is read literally. The forms::

    d, dr   CM (CM)* (BM)* C1|B1 A [S]     conv+pool blocks, float then binary, the classifier
    v       (C+ M)+ F<n> [S]               VGG blocks, a hidden dense layer

``ell.parse`` always gives the literal reading (so ``format(parse(s)) == s``); ``expand``
turns it into the rules' network and ``departures`` says, in words, where the two differ.
"""

from __future__ import annotations

import dataclasses
import re

from ..core.graph import Graph
from . import ell
from .ell import CLASSES, Arch, GalleryRules, Op

CONVS = ("C", "C1", "B", "B1")

# ---- the departures from the literal reading, in words -----------------------------------------
POOL_3X3 = ("every max pool after a binary convolution is 3x3 stride 2 padding 1 (output "
            "ceil(in/2)), not M's 2x2 stride 2")
NO_ACT = "the classifier (1x1 convolution, 1000 outputs) has no activation"
UNPADDED = ("the page prints Pooling rows unpadded (logical shape); summary prints the padded "
            "buffer the next 3x3 convolution reads")
UNPADDED_3X3 = ("the page prints the 3x3/2 Pooling rows unpadded (logical shape); summary prints "
                "the padded buffer the next binary convolution reads")
B1_IS_FLOAT = ("the name's final B1 is the classifier: a float 1x1 convolution with 1000 "
               "outputs, not a binary one")
CLASSIFIER_FC = ("a dense classifier with 1000 outputs follows F{n} (the name ends F{n}S; the "
                 "page prints no FullyConnected rows)")
ACT_WORDS = {"relu": "relu", "leaky_relu": f"leaky relu (slope {ell.LEAKY_SLOPE})",
             "prelu": "parametric relu"}
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
            "ninth", "tenth")


def letters(arch: Arch) -> str:
    """The name's letters after the input size, e.g. ``CMCMBMBMBMBMC1AS``."""
    return "".join(f"F{op.n}" if op.code == "F" else op.code for op in arch.ops)


def selects_rules(named: Arch) -> bool:
    """True when a literal reading is a whole gallery network of its family (module docstring)."""
    rules = ell.FAMILIES[named.family].gallery
    pools = sum(op.code == "M" for op in named.ops)
    return re.fullmatch(rules.form, letters(named)) is not None and pools >= rules.min_pools


def rules_of(family: str, **one_offs) -> GalleryRules:
    """The family's rules, with the fields one model's page replaces (its genuine one-offs)."""
    return dataclasses.replace(ell.FAMILIES[family].gallery, **one_offs)


def is_binary(named: Arch) -> bool:
    """A network with binary feature layers (a final B1 before A is the float classifier)."""
    return any(op.code in ("B", "B1") for op in features(named))


def features(arch: Arch) -> list[Op]:
    """The convolutions that are not the classifier (the conv directly before A)."""
    ops = arch.ops
    return [op for i, op in enumerate(ops) if op.code in CONVS
            and not (i + 1 < len(ops) and ops[i + 1].code == "A")]


def classifier(arch: Arch) -> Op | None:
    ops = arch.ops
    return next((op for i, op in enumerate(ops[:-1]) if op.code in CONVS
                 and ops[i + 1].code == "A"), None)


def page_pools(named: Arch, rules: GalleryRules) -> str:
    return rules.page_pools_binary if is_binary(named) else rules.page_pools


# ---- the rules ----------------------------------------------------------------------------------

def expand(named: Arch, rules: GalleryRules | None = None) -> Arch:
    """The network the family's rules give for a literal reading of a gallery name."""
    rules = rules or ell.FAMILIES[named.family].gallery
    act = rules.activation or ell.FAMILIES[named.family].activation
    ops, out, pools, last = named.ops, [], 0, Op("C", 0)
    for i, op in enumerate(ops):
        nxt = ops[i + 1].code if i + 1 < len(ops) else None
        if op.code in CONVS and nxt == "A" and rules.classifier == "conv":
            out += _feature_tail(named, rules, act, last, op.pos)
            cls_act = act if rules.classifier_act == "unless-binary" and not is_binary(named) \
                else None
            out.append(Op("C1", CLASSES, cls_act, op.pos))
        elif op.code in CONVS:
            n = rules.schedule[min(pools, len(rules.schedule) - 1)]
            last = Op(op.code, n, act if op.code[0] == "C" else "prelu", op.pos)
            out.append(last)
        elif op.code == "M":
            pools += 1
            out.append(Op(rules.binary_pool if last.code[0] == "B" else "M", pos=op.pos))
        elif op.code == "F" and nxt in (None, "S") and rules.classifier == "dense":
            out += [Op("F", op.n, act, op.pos), Op("F", CLASSES, None, op.pos)]
        elif op.code == "F":
            out.append(Op("F", op.n, None if nxt in (None, "S") else act, op.pos))
        else:
            out.append(op)
    return Arch(named.family, named.shape, tuple(out))


def _feature_tail(named: Arch, rules: GalleryRules, act: str, last: Op, pos: int) -> list[Op]:
    """The layers added before the classifier when the name's last conv is narrower than the
    family's feature width (Darknet's reference ends conv 3x3/1024 -> conv 1x1/1000)."""
    if not rules.feature_width or last.n >= rules.feature_width:
        return []
    spec = rules.extra_for(last.code[0])
    tail = ell.detail_ops(named.family, spec, act, last=False)
    return [dataclasses.replace(op, pos=pos) for op in tail]


def build(named: Arch, name: str, rules: GalleryRules | None = None, what: str = "",
          one_offs: tuple[str, ...] = ()) -> Graph:
    """The Graph of a gallery name by its family's rules; meta records the departures."""
    rules = rules or ell.FAMILIES[named.family].gallery
    built = expand(named, rules)
    ell.check(built, name)
    pages = page_pools(named, rules)
    fam = ell.FAMILIES[named.family]
    what = what or f"ELL gallery-form name, built by the {named.family} family's rules"
    words = rules.words or fam.words
    meta = {"description": f"{what} (ILSVRC2012, family {named.family}: {words})",
            "family": named.family,
            "departures": departures(named, built, pages) + list(one_offs),
            "gallery": {"spec": ell.format_detailed(built), "page_pools": pages}}
    return ell.to_graph(built, name=name, meta=meta)


def graph(text: str) -> Graph:
    """An ELL string: by its family's rules when it has the gallery form, else literally."""
    named = ell.parse(text)
    if selects_rules(named):
        return build(named, text)
    return ell.to_graph(named)


# ---- the departures, computed -------------------------------------------------------------------

def departures(named: Arch, built: Arch, pages: str = "padded") -> list[str]:
    """Every way ``built`` (and its page) departs from the literal reading ``named``, in words."""
    out = (_activation_texts(named, built) + _channel_texts(named, built)
           + _pool_texts(named, built) + _extra_texts(named, built)
           + _classifier_texts(named, built) + _dense_texts(named, built))
    if not out and built.ops != named.ops:
        out.append(f"the layers are {ell.format_detailed(built)}")
    out += {"unpadded": [UNPADDED], "padded-2x2": [UNPADDED_3X3]}.get(pages, [])
    return out


def _activation_texts(named: Arch, built: Arch) -> list[str]:
    family = named.family
    fam_act = ell.FAMILIES[family].activation
    acts = {op.act for op in features(built) if op.code[0] == "C"} - {fam_act}
    return [f"float convolutions use {ACT_WORDS.get(a, a)}, not the {family} family's "
            f"{ACT_WORDS[fam_act]}" for a in sorted(acts, key=str)]


def _channel_texts(named: Arch, built: Arch) -> list[str]:
    fam = ell.FAMILIES[named.family]
    out, pools, index = [], 0, 0
    feats, named_feats = features(built), {id(op) for op in features(named)}
    for op in named.ops:
        pools += op.code == "M"
        if id(op) not in named_feats or index >= len(feats):
            continue
        n = feats[index].n
        if n != op.n:
            nth = ORDINALS[index] if index < len(ORDINALS) else f"{index + 1}th"
            out.append(f"the {nth} convolution has {n} channels, not {op.n} "
                       f"({fam.formula.format(p=pools)}) as the {named.family} channel rule "
                       "gives")
        index += 1
    return out


def _pool_texts(named: Arch, built: Arch) -> list[str]:
    m3 = any(op.code == "M3" for op in built.ops) and not any(op.code == "M3" for op in named.ops)
    return [POOL_3X3] if m3 else []


def _extra_texts(named: Arch, built: Arch) -> list[str]:
    out, ops = [], built.ops
    extra = features(built)[len(features(named)):]
    for i, op in enumerate(ops):
        if not any(op is e for e in extra):
            continue
        kind = "binary " if op.code[0] == "B" else ""
        k = "1x1" if op.code.endswith("1") else "3x3"
        pool = ops[i + 1].code if i + 1 < len(ops) and ops[i + 1].code in ("M", "M3") else None
        what = f"an extra {kind}{k} convolution with {op.n} outputs"
        if pool:
            size = "3x3/2" if pool == "M3" else "2x2/2"
            out.append(f"{what} and a {size} max pool come before the classifier")
        elif k == "3x3":
            out.append(f"{what} (no pool after it) comes before the classifier")
        else:
            out.append(f"{what} comes before the classifier")
    return out


def _classifier_texts(named: Arch, built: Arch) -> list[str]:
    a, b = classifier(named), classifier(built)
    if a is None or b is None:
        return []
    out = [B1_IS_FLOAT] if a.code == "B1" and b.code == "C1" else []
    if b.act is None and a.act is not None:
        out.append(NO_ACT)
    elif b.act != a.act:
        out.append(f"the classifier uses {ACT_WORDS.get(b.act, b.act)}, not "
                   f"{ACT_WORDS.get(a.act, a.act)}")
    return out


def _dense_texts(named: Arch, built: Arch) -> list[str]:
    a = [op for op in named.ops if op.code == "F"]
    b = [op for op in built.ops if op.code == "F"]
    return [CLASSIFIER_FC.format(n=a[-1].n)] if a and len(b) > len(a) else []
