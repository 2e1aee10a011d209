"""Chapter 03: the depth dependence of muP learning rates (Jelassi et al. 2023, arXiv 2305.07810).

* :mod:`~.config`: the grids per scale (:data:`CONFIGS`);
* :mod:`~.derivation`: sympy, the one-step change ``eta^2 y^2 l (2 l^2 + 1) / 6`` (derived
  here), the maximal-update LR ``eta* ~ L^{-3/2}`` and the width exponents of each layer;
* :mod:`~.simulate`: the one-step Monte Carlo over independent initializations and LR
  transfer training on digits;
* :mod:`~.analysis`: the fitted depth and width exponents, the best LR;
* :mod:`~.measurements` and :mod:`~.claims`: what the chapter measures and checks
  (claims ``mup_depth.*``).

The user tools (``depth_scaled_lr``, ``layer_lr_multipliers``) live in :mod:`lrtheory.tools.depth`.
"""
from lrtheory.results.mup_depth.config import CONFIGS
from lrtheory.verify.chapter import Chapter

CHAPTER = Chapter("mup_depth", module=__name__, notebook="03_mup_depth",
                  title="Depth dependence of muP learning rates", configs=CONFIGS)

from lrtheory.results.mup_depth import measurements, claims  # noqa: E402,F401 - declares them

__all__ = ["CHAPTER", "CONFIGS"]
