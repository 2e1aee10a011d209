"""Chapter 02: the catapult phase (Lewkowycz et al. 2020; Meltzer, Chen & Liu 2023).

Three models, one question: how far can the learning rate go past the linear stability
edge ``eta = 2 / lambda_0`` (``lambda_0`` the top eigenvalue of the NTK at initialization,
normalised by the number of examples) and what happens there?

* :mod:`.derivation` (sympy): the uv model's exact maps and phases, the quadratic model's
  maps, weight-norm change and guaranteed catapult range, the same argument for the
  two-layer homogeneous net and the quadratic model with bias;
* :mod:`.limits` (numpy): the large-width limits of those maps (the uv peak and end point,
  the spread-spectrum, homogeneous and bias-model edges, the dead units of the ReLU net);
* :mod:`.simulate` (torch): GD on the uv and quadratic models over a grid of
  ``eta * lambda_0``, and on ReLU MLPs on digits; :mod:`.simulate_toys`: the homogeneous net
  and the quadratic model with bias on one example;
* :mod:`.analysis` (numpy): phases, edges, the edge of training, the sparsity trend;
* :mod:`.measurements` and :mod:`.claims`: what the chapter measures and checks;
* :mod:`.config`: the settings per scale.

The user tool ``catapult_range`` is :mod:`lrtheory.tools.catapult`.
"""
from lrtheory.results.catapult.config import CONFIGS
from lrtheory.verify.chapter import Chapter

CHAPTER = Chapter("catapult", module=__name__, notebook="02_catapult", title="The catapult phase", configs=CONFIGS)

from lrtheory.results.catapult import measurements, claims  # noqa: E402,F401  declares them

__all__ = ["CHAPTER", "CONFIGS"]
