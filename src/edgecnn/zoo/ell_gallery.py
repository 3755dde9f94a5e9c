"""The 18 models of ELL's ILSVRC2012 gallery, as their published architecture tables show them.

Source: the ELL model gallery pages (Microsoft Embedded Learning Library, 2017-2018), one page
per model with a table of Convolution / Pooling / Softmax rows. The names are lossy; the
family's rules (``GalleryRules`` in ``edgecnn.zoo.ell``, applied by ``edgecnn.zoo.rules``)
reproduce 15 of the 18 tables. An entry records only what its page does differently from its
family's rules (three d pages); its departures from the literal name are computed, and
``summary`` prints them.

``page_pools`` says how the page prints Pooling rows: "padded" (the output buffer with the zero
border the next 3x3 convolution reads, ELL's convention), "unpadded" (the logical shape), or
"padded-2x2" (2x2 pools padded, the 3x3/2 pools after binary layers unpadded).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.graph import Graph
from . import ell, rules
from .registry import register


@dataclass(frozen=True)
class Entry:
    """A gallery model: its name, and the rule fields its page replaces (genuine one-offs)."""

    name: str
    one_offs: tuple[tuple[str, object], ...] = ()  # GalleryRules field -> this page's value
    why: str = ""  # the one-offs in words

    @property
    def family(self) -> str:
        return ell.parse_head(self.name)[0]

    @property
    def rules(self) -> ell.GalleryRules:
        return rules.rules_of(self.family, **dict(self.one_offs))

    @property
    def spec(self) -> str:
        """The detailed spec of the published table."""
        return ell.format_detailed(arch_of(self))

    @property
    def page_pools(self) -> str:
        return rules.page_pools(ell.parse(self.name), self.rules)

    @property
    def departures(self) -> tuple[str, ...]:
        return tuple(build(self).meta["departures"])


# The departures from the literal reading, in words (computed by rules.departures; named here
# for the tests and for readers).
LEAKY = "float convolutions use leaky relu (slope 0.1), not the d family's relu"
SECOND_64 = "the second convolution has 64 channels, not 32 (16·2^1) as the d channel rule gives"
POOL_3X3, NO_ACT, B1_IS_FLOAT = rules.POOL_3X3, rules.NO_ACT, rules.B1_IS_FLOAT
UNPADDED, UNPADDED_3X3, CLASSIFIER_FC = rules.UNPADDED, rules.UNPADDED_3X3, rules.CLASSIFIER_FC
EXTRA_C1_1024 = "an extra 1x1 convolution with 1024 outputs comes before the classifier"
EXTRA_C3_1024 = ("an extra 3x3 convolution with 1024 outputs (no pool after it) comes before "
                 "the classifier")
EXTRA_B_POOL = ("an extra binary 3x3 convolution with 1024 outputs and a 3x3/2 max pool come "
                "before the classifier")
EXTRA_B = ("an extra binary 3x3 convolution with 1024 outputs (no pool after it) comes before "
           "the classifier")

_LEAKY = ("activation", "leaky_relu")

ENTRIES = [
    # Three d pages depart from their family's rules; each is also the only leaky one among its
    # siblings (the same name with B1 for C1, or the same stack at other sizes, follows the rules).
    Entry("d_I128x128x3CMCMCMCMCMCMC1AS",
          (_LEAKY, ("extra", (("C", "C1/1024"),)), ("classifier_act", "none")),
          "leaky relu, a 1x1 (not 3x3) 1024-wide conv, no activation on the classifier"),
    Entry("d_I160x160x3CMCMBMBMBMBMC1AS"),
    Entry("d_I160x160x3CMCMCMCMCMCMC1AS"),
    Entry("d_I192x192x3CMCMBMBMBMBMB1AS"),
    Entry("d_I192x192x3CMCMBMBMBMBMC1AS"),
    Entry("d_I224x224x3CMCMBMBMBMBMB1AS", (_LEAKY, ("extra", (("B", "B3/1024"),))),
          "leaky relu, no pool after the 1024-wide binary conv"),
    Entry("d_I224x224x3CMCMBMBMBMBMC1AS"),
    Entry("d_I224x224x3CMCMCMCMCMCMC1AS"),
    Entry("d_I256x256x3CMBMBMBMBMBMB1AS"),
    Entry("d_I256x256x3CMBMBMBMBMBMC1AS"),
    Entry("d_I256x256x3CMCMBMBMBMBMB1AS"),
    Entry("d_I256x256x3CMCMBMBMBMBMC1AS"),
    Entry("d_I256x256x3CMCMCMCMCMCMC1AS"),
    Entry("d_I256x256x3CMCMCMCMCMCMCMC1AS",
          (_LEAKY, ("schedule", ell.FAMILIES["dr"].gallery.schedule)),
          "the dr network (leaky relu, channels 16·2^pools) under a d name"),
    Entry("dr_I256x256x3CMCMCMCMCMCMCMC1AS"),
    Entry("v_I160x160x3CCMCCMCCCMCCCMCCCMF2048S"),
    Entry("v_I160x160x3CCMCCMCCCMCCCMCCCMF4096S"),
    Entry("v_I64x64x3CCMCCMCCCMCCCMCCCMF2048S"),
]

SEED = "dr_I256x256x3CMCMCMCMCMCMCMC1AS"


def arch_of(entry: Entry) -> ell.Arch:
    """The published table's network: the family's rules with the entry's one-offs."""
    return rules.expand(ell.parse(entry.name), entry.rules)


def build(entry: Entry) -> Graph:
    named = ell.parse(entry.name)
    one_off = (f"one-off (this page, not the {entry.family} family's rules): {entry.why}",)
    return rules.build(named, entry.name, entry.rules, f"ELL gallery model {entry.name}",
                       one_off if entry.one_offs else ())


def _register(entry: Entry) -> None:
    register(entry.name)(lambda: build(entry))


for _entry in ENTRIES:
    _register(_entry)
