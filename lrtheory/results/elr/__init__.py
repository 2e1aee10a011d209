"""Chapter 04: effective learning rates (ELRs) in normalized networks.

Mehmeti-Gopel & Wand (2024), "On the Weight Dynamics of Deep Normalized Networks", ICML 2024,
arXiv 2306.00700. Only the paper's abstract could be read: the ELR definition, the formulas,
the critical learning rate and the warm-up rule of this chapter are derived here
(:mod:`~lrtheory.results.elr.derivation`) from scale invariance alone.

Files: :mod:`~lrtheory.results.elr.config` (sizes per scale),
:mod:`~lrtheory.results.elr.derivation` (sympy), :mod:`~lrtheory.results.elr.simulate`
(torch runs), :mod:`~lrtheory.results.elr.analysis` (spread, read-outs),
:mod:`~lrtheory.results.elr.measurements` and :mod:`~lrtheory.results.elr.claims`
(``elr.ratio_converges``, ``elr.critical_lr``, ``elr.warmup_reduces_spread``,
``elr.warmup_lasting``, ``elr.deep_trainability``: the model's predictions against measured
BatchNorm/LayerNorm MLPs and a BatchNorm CNN; the model's own recursions are unit tests).
"""
from lrtheory.results.elr.config import CONFIGS
from lrtheory.verify.chapter import Chapter

CHAPTER = Chapter("elr", module=__name__, notebook="04_normalized_elr",
                  title="Effective learning rates in normalized networks", configs=CONFIGS)

from lrtheory.results.elr import measurements, claims  # noqa: E402,F401  declares them

__all__ = ["CHAPTER", "CONFIGS", "measurements", "claims"]
