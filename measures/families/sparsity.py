"""Sparsity of hidden representations, as complexity measures (one number per model).

Per-layer definitions live in ``measures.stats.representations`` (after Potgieter, Mouton & Davel, arXiv
2501.14441, who found sparsity NOT changed by BatchNorm and not what makes it generalize better).

Sign: the literature does not say whether sparser representations predict a smaller or a larger
generalization gap. We chose -1 (sparser predicts a smaller gap): fewer units active per sample is
a smaller effective capacity, the argument of Glorot, Bordes & Bengio (AISTATS 2011) for rectifier
sparsity. Treat the sign as a hypothesis that the benchmark tests, not a finding.

Sparsity counts exact zeros, so it is meaningful for ReLU-family hidden layers; a tanh or sigmoid
layer (as in some PGDL MLPs) scores about 0 on channel/element sparsity and dead units.

Parameters shared by every measure here: ``layer`` (default "all") and ``n``, read by
``per_layer.layer_average``, whose docstring says what they accept.
"""

from __future__ import annotations

from ..stats import representations as rep
from .per_layer import layer_average
from ..citations import POTGIETER
from ..model_view import ModelView
from ..registry import measure

_SOURCE = f"{POTGIETER} (BatchNorm and representations)"


@measure("channel_sparsity", source=_SOURCE + ", average channel sparsity", sign=-1)
def channel_sparsity(view: ModelView, layer="all", n=None) -> float:
    """Fraction of all-zero feature maps per sample of the hidden representations (sign -1: chosen).

    Default layer: "all", the mean over ``view.hidden_layers`` (module docstring).

    See ``representations.channel_sparsity``; a dense layer's channels are its units.
    """
    return layer_average(view, "channel_sparsity", layer, n, lambda h, _: rep.channel_sparsity(h))


@measure("element_sparsity", source=_SOURCE + ", fraction of zero activations", sign=-1)
def element_sparsity(view: ModelView, layer="all", n=None) -> float:
    """Fraction of exactly-zero activations of the hidden representations (sign -1: chosen).

    Default layer: "all", the mean over ``view.hidden_layers`` (module docstring).
    """
    return layer_average(view, "element_sparsity", layer, n, lambda h, _: rep.element_sparsity(h))


@measure("dead_units", source=_SOURCE + ", dead units", sign=-1)
def dead_units(view: ModelView, layer="all", n=None) -> float:
    """Fraction of channels that are zero for every sample of the training sample (sign -1: chosen).

    Default layer: "all", the mean over ``view.hidden_layers`` (module docstring).

    Dead on the sample, not provably dead: a larger ``n`` can only lower it.
    """
    return layer_average(view, "dead_units", layer, n, lambda h, _: rep.dead_units(h))


@measure("hoyer_sparsity", source="Hoyer, JMLR 5 (2004), sparseness measure; applied as in " + _SOURCE, sign=-1)
def hoyer_sparsity(view: ModelView, layer="all", n=None) -> float:
    """Hoyer's sparsity of each sample's hidden representation, averaged (sign -1: chosen).

    Default layer: "all", the mean over ``view.hidden_layers`` (module docstring).

    (sqrt(n) - |x|_1/|x|_2) / (sqrt(n) - 1) over the flattened representation; an all-zero sample
    scores 1. See ``representations.hoyer_sparsity``.
    """
    return layer_average(view, "hoyer_sparsity", layer, n, lambda h, _: rep.hoyer_sparsity(h))
