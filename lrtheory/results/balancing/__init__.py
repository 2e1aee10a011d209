"""Chapter 05: large learning rate and balancing (Wang, Chen, Zhao, Tao, ICLR 2022, arXiv 2110.03677).

Gradient descent with a constant step ``eta`` on the homogeneous problems

* scalar: ``f(x, y) = (mu - x y)^2 / 2``,
* matrix: ``f(X, Y) = ||A - X Y^T||_F^2 / 2`` with ``X`` of shape ``(m, r)``, ``Y`` of shape ``(n, r)``,

converges for steps well beyond ``2/L`` (``L`` the top Hessian eigenvalue at the
initialization), and its limit is *balanced*: ``|x|`` close to ``|y|`` (``||X||_F`` close
to ``||Y||_F``) even from a strongly unbalanced start.

``config`` (settings per scale), ``derivation`` (sympy), ``simulate`` (batched torch GD),
``analysis`` (end states, edges), ``measurements`` and ``claims`` (prefix ``balancing``).
"""
from lrtheory.results.balancing.config import CONFIGS
from lrtheory.verify.chapter import Chapter

CHAPTER = Chapter("balancing", module=__name__, notebook="05_balancing",
                  title="Large learning rate and balancing", configs=CONFIGS)

from lrtheory.results.balancing import measurements, claims  # noqa: E402,F401  (declare them)

__all__ = ["CHAPTER", "CONFIGS"]
