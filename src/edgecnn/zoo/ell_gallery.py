"""The 18 models of ELL's ILSVRC2012 gallery, as their published architecture tables show them.

Source: the ELL model gallery pages (Microsoft Embedded Learning Library, 2017-2018), one page
per model with a table of Convolution / Pooling / Softmax rows. The names are lossy, so each
entry gives the detailed spec (grammar in ``edgecnn.zoo.ell``) that reproduces its table, and
lists in words every way the table departs from what the name says; ``summary`` prints them.

``page_pools`` says how the page prints Pooling rows: "padded" (the output buffer with the zero
border the next 3x3 convolution reads, ELL's convention), "unpadded" (the logical shape), or
"padded-2x2" (2x2 pools padded, the 3x3/2 pools after binary layers unpadded).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.graph import Graph
from . import ell
from .registry import register


@dataclass(frozen=True)
class Entry:
    name: str
    spec: str
    departures: tuple[str, ...] = ()
    activation: str | None = None  # replaces the family's default activation of C and F
    page_pools: str = "padded"


# ---- the departures, in words ------------------------------------------------------------------
LEAKY = "float convolutions use leaky relu (slope 0.1), not the d family's relu"
SECOND_64 = "the second convolution has 64 channels, not 32 (16·2^1) as the d channel rule gives"
POOL_3X3 = ("every max pool after a binary convolution is 3x3 stride 2 padding 1 (output "
            "ceil(in/2)), not M's 2x2 stride 2")
NO_ACT = "the classifier (1x1 convolution, 1000 outputs) has no activation"
UNPADDED = ("the page prints Pooling rows unpadded (logical shape); summary prints the padded "
            "buffer the next 3x3 convolution reads")
UNPADDED_3X3 = ("the page prints the 3x3/2 Pooling rows unpadded (logical shape); summary prints "
                "the padded buffer the next binary convolution reads")
EXTRA_C1_1024 = "an extra 1x1 convolution with 1024 outputs comes before the classifier"
EXTRA_C3_1024 = ("an extra 3x3 convolution with 1024 outputs (no pool after it) comes before "
                 "the classifier")
EXTRA_B_POOL = ("an extra binary 3x3 convolution with 1024 outputs and a 3x3/2 max pool come "
                "before the classifier")
EXTRA_B = ("an extra binary 3x3 convolution with 1024 outputs (no pool after it) comes before "
           "the classifier")
B1_IS_FLOAT = ("the name's final B1 is the classifier: a float 1x1 convolution with 1000 "
               "outputs, not a binary one")
CLASSIFIER_FC = ("a dense classifier with 1000 outputs follows F{n} (the name ends F{n}S; the "
                 "page prints no FullyConnected rows)")

# the common layer stacks of the tables
_FLOAT6 = "C3/16 M2 C3/64 M2 C3/64 M2 C3/128 M2 C3/256 M2 C3/512 M2"
_BIN_CC = "C3/16 M2 C3/64 M2 B3/64 M3 B3/128 M3 B3/256 M3 B3/512 M3 B3/1024"
_BIN_CB = "C3/16 M2 B3/64 M3 B3/64 M3 B3/128 M3 B3/256 M3 B3/512 M3 B3/1024"
_VGG = "C3/64 C3/64 M2 C3/128 C3/128 M2 C3/256 C3/256 C3/256 M2 C3/512 C3/512 C3/512 M2 " \
       "C3/512 C3/512 C3/512 M2"

_BIN_DEPARTURES = (SECOND_64, POOL_3X3, EXTRA_B_POOL, NO_ACT, UNPADDED_3X3)

ENTRIES = [
    Entry("d_I128x128x3CMCMCMCMCMCMC1AS", f"{_FLOAT6} C1/1024 C1/1000:none A S",
          (LEAKY, SECOND_64, EXTRA_C1_1024, NO_ACT, UNPADDED), "leaky_relu", "unpadded"),
    Entry("d_I160x160x3CMCMBMBMBMBMC1AS", f"{_BIN_CC} M3 C1/1000:none A S", _BIN_DEPARTURES,
          page_pools="padded-2x2"),
    Entry("d_I160x160x3CMCMCMCMCMCMC1AS", f"{_FLOAT6} C3/1024 C1/1000 A S",
          (SECOND_64, EXTRA_C3_1024, UNPADDED), page_pools="unpadded"),
    Entry("d_I192x192x3CMCMBMBMBMBMB1AS", f"{_BIN_CC} M3 C1/1000:none A S",
          (*_BIN_DEPARTURES, B1_IS_FLOAT), page_pools="padded-2x2"),
    Entry("d_I192x192x3CMCMBMBMBMBMC1AS", f"{_BIN_CC} M3 C1/1000:none A S", _BIN_DEPARTURES,
          page_pools="padded-2x2"),
    Entry("d_I224x224x3CMCMBMBMBMBMB1AS", f"{_BIN_CC} C1/1000:none A S",
          (LEAKY, SECOND_64, POOL_3X3, EXTRA_B, NO_ACT, UNPADDED_3X3, B1_IS_FLOAT),
          "leaky_relu", "padded-2x2"),
    Entry("d_I224x224x3CMCMBMBMBMBMC1AS", f"{_BIN_CC} M3 C1/1000:none A S", _BIN_DEPARTURES,
          page_pools="padded-2x2"),
    Entry("d_I224x224x3CMCMCMCMCMCMC1AS", f"{_FLOAT6} C3/1024 C1/1000 A S",
          (SECOND_64, EXTRA_C3_1024, UNPADDED), page_pools="unpadded"),
    Entry("d_I256x256x3CMBMBMBMBMBMB1AS", f"{_BIN_CB} M3 C1/1000:none A S",
          (*_BIN_DEPARTURES, B1_IS_FLOAT), page_pools="padded-2x2"),
    Entry("d_I256x256x3CMBMBMBMBMBMC1AS", f"{_BIN_CB} M3 C1/1000:none A S", _BIN_DEPARTURES,
          page_pools="padded-2x2"),
    Entry("d_I256x256x3CMCMBMBMBMBMB1AS", f"{_BIN_CC} M3 C1/1000:none A S",
          (*_BIN_DEPARTURES, B1_IS_FLOAT), page_pools="padded-2x2"),
    Entry("d_I256x256x3CMCMBMBMBMBMC1AS", f"{_BIN_CC} M3 C1/1000:none A S", _BIN_DEPARTURES,
          page_pools="padded-2x2"),
    Entry("d_I256x256x3CMCMCMCMCMCMC1AS", f"{_FLOAT6} C3/1024 C1/1000 A S",
          (SECOND_64, EXTRA_C3_1024, UNPADDED), page_pools="unpadded"),
    Entry("d_I256x256x3CMCMCMCMCMCMCMC1AS",
          "C3/16 M2 C3/32 M2 C3/64 M2 C3/128 M2 C3/256 M2 C3/512 M2 C3/1024 M2 C1/1000 A S",
          (LEAKY, UNPADDED), "leaky_relu", "unpadded"),
    Entry("dr_I256x256x3CMCMCMCMCMCMCMC1AS",
          "C3/16 M2 C3/32 M2 C3/64 M2 C3/128 M2 C3/256 M2 C3/512 M2 C3/1024 M2 C1/1000 A S"),
    Entry("v_I160x160x3CCMCCMCCCMCCCMCCCMF2048S", f"{_VGG} F2048 F1000 S",
          (CLASSIFIER_FC.format(n=2048),)),
    Entry("v_I160x160x3CCMCCMCCCMCCCMCCCMF4096S", f"{_VGG} F4096 F1000 S",
          (CLASSIFIER_FC.format(n=4096),)),
    Entry("v_I64x64x3CCMCCMCCCMCCCMCCCMF2048S", f"{_VGG} F2048 F1000 S",
          (CLASSIFIER_FC.format(n=2048),)),
]

SEED = "dr_I256x256x3CMCMCMCMCMCMCMC1AS"


def arch_of(entry: Entry) -> ell.Arch:
    family, shape, _ = ell.parse_head(entry.name)
    return ell.parse_detailed(family, shape, entry.spec, entry.activation)


def build(entry: Entry) -> Graph:
    arch = arch_of(entry)
    meta = {
        "description": f"ELL gallery model {entry.name} (ILSVRC2012, family {arch.family}: "
                       f"{ell.FAMILIES[arch.family].words})",
        "family": arch.family,
        "departures": list(entry.departures),
        "gallery": {"spec": entry.spec, "page_pools": entry.page_pools},
    }
    return ell.to_graph(arch, name=entry.name, meta=meta)


def _register(entry: Entry) -> None:
    register(entry.name)(lambda: build(entry))


for _entry in ENTRIES:
    _register(_entry)
