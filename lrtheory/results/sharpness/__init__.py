"""Chapter 01: sharpness at initialization and the maximal initial learning rate.

Iyer, Hanin & Rolnick (2023), "Maximal Initial Learning Rates in Deep ReLU Networks"
(ICML 2023, arXiv 2212.07295). A constant-width ReLU MLP of depth ``L`` (hidden layers) and
width ``n``, He-initialized, is trained from scratch; ``eta*`` is the largest constant learning
rate at which it reaches a threshold accuracy within a fixed step budget. The paper finds
``eta*`` close to a power of ``L * n`` when ``n >> L`` and the input layer trains at a reduced
LR (condition (ii)), relates it to the sharpness ``lambda_1`` at initialization ("closely though
not inversely related") and bounds ``lambda_1`` in terms of ``L * n``.

* :mod:`~lrtheory.results.sharpness.config`: the settings per scale;
* :mod:`~lrtheory.results.sharpness.derivation`: moment recursions, NTK diagonal, growth
  exponent, bounds and the finite-width prediction of ``lambda_1`` (sympy, numpy), their values
  on the experiment's inputs;
* :mod:`~lrtheory.results.sharpness.simulate`: eta* searches (grid-then-refine and the paper's
  plain bisection), the threshold study, the paper's tasks, sharpness at init (plain and
  LR-weighted), loss curves, the ``max_lr_grid`` sweep's runner (torch);
* :mod:`~lrtheory.results.sharpness.analysis`: fits, eta* from a grid, result containers;
* :mod:`~lrtheory.results.sharpness.measurements` and
  :mod:`~lrtheory.results.sharpness.claims`: what the chapter measures and checks.
"""
from lrtheory.results.sharpness.config import CONFIGS
from lrtheory.verify.chapter import Chapter

CHAPTER = Chapter("sharpness", module=__name__, notebook="01_max_initial_lr",
                  title="Sharpness at initialization and the maximal initial learning rate", configs=CONFIGS)

from lrtheory.results.sharpness import measurements, claims  # noqa: E402,F401,I001  (declare them)
