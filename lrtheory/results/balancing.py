"""Large learning rate and balancing: Wang, Chen, Zhao, Tao (ICLR 2022, arXiv 2110.03677).

Gradient descent (GD) with a constant step ``eta`` on the homogeneous problems

* scalar: ``f(x, y) = (mu - x y)^2 / 2``,
* matrix: ``f(X, Y) = ||A - X Y^T||_F^2 / 2`` with ``X`` of shape ``(m, r)``, ``Y`` of shape ``(n, r)``,

converges for steps well beyond ``2/L`` (``L`` the top Hessian eigenvalue at the
initialization), and its limit is *balanced*: ``|x|`` close to ``|y|`` (``||X||_F`` close
to ``||Y||_F``) even from a strongly unbalanced start.

The module has three layers:

* ``derive_*`` functions: sympy derivations from the model's definition (GD map,
  Hessian at init and its top eigenvalue ``L``, the exact one-step recursion of the
  imbalance ``x^2 - y^2`` and of ``X^T X - Y^T Y``, the Hessian at a global minimum and
  the stability condition it puts on ``eta``, the flattest minimum, the balancing bound).
* ``scalar_gd`` / ``matrix_gd``: batched torch GD (one tensor of shape ``(K,)`` or
  ``(K, m, r)``, one ``eta`` per entry, all stepped together), with per-run divergence
  detection and freezing (a diverged run never produces NaN and never touches another),
  and a classification of the end state (converged / periodic orbit / bounded / diverged).
* ``measure_*`` sweeps (memoized per ``(scale, device)``) and the claims registered
  under the prefix ``balancing``.

The paper's convergence theorem (Theorem 3.1) covers step sizes up to
``h0 = 4 / (x0^2 + y0^2 + 4 mu)``; its experiments use ``mu = 2`` (``h0 = 4/(x0^2+y0^2+8)``)
and the initializations ``(x0, y0) = (9, 1), (19, 1), (99, 1)``. That range is a
*sufficient* condition, so the convergence-edge claim is one-sided.
"""
from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import sympy as sp
import torch

from lrtheory.sweeps import stored_measurement
from lrtheory.claims import Claim, Tolerance, check_scale, register
from lrtheory.core.device import DeviceLike, make_generator, resolve_device

__all__ = [
    # symbolic
    "symbols",
    "derive_scalar_gd",
    "derive_scalar_hessian",
    "derive_imbalance_recursion",
    "derive_minimum_hessian",
    "derive_flattest_minimum",
    "paper_step_size",
    "derive_convergence_range",
    "derive_balancing_bound",
    "derive_matrix_gd",
    "derive_matrix_imbalance_recursion",
    "derive_matrix_balancing_bound",
    # numeric
    "CONVERGED",
    "DIVERGED",
    "BOUNDED",
    "ScalarRun",
    "MatrixRun",
    "scalar_top_eigenvalue",
    "matrix_top_eigenvalue",
    "scalar_gd",
    "matrix_gd",
    "convergence_edge",
    "imbalance_ratio",
    "make_matrix_problem",
    "ScalarSweep",
    "MatrixSweep",
    "RecursionCheck",
    "measure_scalar_sweep",
    "measure_matrix_sweep",
    "measure_imbalance_recursion",
    "OrbitSweep",
    "ORBIT_INIT",
    "measure_orbit_sweep",
    "PAPER_MU",
    "PAPER_INITS",
    "CHAPTER",
    "SOURCE",
]

CHAPTER = "05_balancing"
SOURCE = "Wang, Chen, Zhao, Tao, ICLR 2022 (arXiv 2110.03677)"

#: The paper's scalar experiments: mu = 2 (their h0 = 4/(x0^2 + y0^2 + 8)) ...
PAPER_MU = 2.0
#: ... from these strongly unbalanced initializations.
PAPER_INITS: Tuple[Tuple[float, float], ...] = ((9.0, 1.0), (19.0, 1.0), (99.0, 1.0))

_CHECK_EVERY = 32  # steps between convergence checks (steps_to_converge resolution)

#: End-state codes of a GD run (a value p >= 2 means a periodic orbit of period p).
CONVERGED = 1
DIVERGED = -1
BOUNDED = 0  # neither converged, nor periodic (period <= max_period), nor diverged


# --------------------------------------------------------------------------------------
# Symbolic part
# --------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def symbols() -> Dict[str, sp.Symbol]:
    """The sympy symbols of the chapter: ``x, y, mu, eta`` (real; ``mu, eta`` positive),
    the residual ``r = mu - x y`` and the imbalance ratio ``rho`` (positive)."""
    x, y = sp.symbols("x y", real=True)
    mu, eta, rho = sp.symbols("mu eta rho", positive=True)
    r = sp.Symbol("r", real=True)
    x0, y0 = sp.symbols("x_0 y_0", positive=True)
    return {"x": x, "y": y, "mu": mu, "eta": eta, "r": r, "rho": rho, "x0": x0, "y0": y0}


@functools.lru_cache(maxsize=None)
def derive_scalar_gd() -> Dict[str, sp.Expr]:
    """GD on ``f(x, y) = (mu - x y)^2 / 2``.

    Returns
    -------
    dict
        ``f``; ``grad`` (a 2-tuple, the partial derivatives); ``x_next``, ``y_next``
        (one GD step ``z - eta grad f(z)``).

    Example
    -------
    >>> d = derive_scalar_gd()
    >>> d["x_next"]  # doctest: +SKIP
    eta*y*(mu - x*y) + x
    """
    s = symbols()
    x, y, mu, eta = s["x"], s["y"], s["mu"], s["eta"]
    f = (mu - x * y) ** 2 / 2
    gx, gy = sp.diff(f, x), sp.diff(f, y)
    return {"f": f, "grad": (sp.factor(gx), sp.factor(gy)), "x_next": x - eta * gx, "y_next": y - eta * gy}


@functools.lru_cache(maxsize=None)
def derive_scalar_hessian() -> Dict[str, sp.Expr]:
    """Hessian of ``f`` at a point ``(x, y)`` (e.g. the initialization) and its top eigenvalue ``L``.

    Returns
    -------
    dict
        ``hessian`` (2x2 sympy Matrix), ``eigenvalues`` (list), ``L`` (the larger one, closed form).
    """
    s = symbols()
    x, y = s["x"], s["y"]
    f = derive_scalar_gd()["f"]
    H = sp.hessian(f, (x, y))
    eig = [sp.simplify(e) for e in H.eigenvals()]
    # the larger root is the one with "+ sqrt(...)"; pick it by evaluation at a generic point
    probe = {x: sp.Rational(3), y: sp.Rational(1, 2), s["mu"]: sp.Rational(1)}
    L = max(eig, key=lambda e: float(e.subs(probe)))
    return {"hessian": H, "eigenvalues": eig, "L": L}


@functools.lru_cache(maxsize=None)
def derive_imbalance_recursion() -> Dict[str, sp.Expr]:
    """Exact one-step recursion of the imbalance ``D = x^2 - y^2`` under GD.

    sympy expands ``x'^2 - y'^2`` with ``(x', y')`` the GD step, divides by ``x^2 - y^2``
    (the quotient is a polynomial: the division is exact) and rewrites the quotient with
    the residual ``r = mu - x y``.

    Returns
    -------
    dict
        ``difference`` (``x'^2 - y'^2`` expanded), ``factor`` (``D'/D`` in ``x, y, mu, eta``),
        ``factor_r`` (the same in terms of ``r``), ``remainder`` (0: the division is exact).
    """
    s = symbols()
    x, y, mu, r = s["x"], s["y"], s["mu"], s["r"]
    gd = derive_scalar_gd()
    diff = sp.expand(gd["x_next"] ** 2 - gd["y_next"] ** 2)
    q, rem = sp.div(sp.Poly(diff, x, y), sp.Poly(x ** 2 - y ** 2, x, y))
    factor = sp.expand(q.as_expr())
    factor_r = sp.expand(factor.subs(mu, r + x * y))
    return {"difference": diff, "factor": factor, "factor_r": factor_r, "remainder": rem.as_expr()}


@functools.lru_cache(maxsize=None)
def derive_minimum_hessian() -> Dict[str, sp.Expr]:
    """Hessian on the manifold of global minima ``x y = mu`` and the stability condition.

    Returns
    -------
    dict
        ``hessian`` (at ``y = mu/x``), ``eigenvalues``, ``top`` (the nonzero eigenvalue,
        rewritten as ``x^2 + y^2``), ``eta_max`` (``2/top``: a minimum is linearly stable
        for GD only if ``eta < eta_max``), ``multiplier`` (``1 - eta top``, the GD
        multiplier along the top eigenvector; stability needs ``|multiplier| < 1``).
    """
    s = symbols()
    x, y, mu, eta = s["x"], s["y"], s["mu"], s["eta"]
    H = derive_scalar_hessian()["hessian"].subs(y, mu / x)
    eig = [sp.simplify(e) for e in H.eigenvals()]
    nonzero = [e for e in eig if not e.is_zero]
    top_x = sp.simplify(nonzero[0])
    top = sp.expand(top_x.subs(mu, x * y))  # on x y = mu, mu^2/x^2 = y^2: top = x^2 + y^2
    sol = sp.solve(sp.Eq(1 - eta * top, -1), eta)
    return {"hessian": H, "eigenvalues": eig, "top_x": top_x, "top": top,
            "multiplier": 1 - eta * top, "eta_max": sol[0]}


@functools.lru_cache(maxsize=None)
def derive_flattest_minimum() -> Dict[str, sp.Expr]:
    """The flattest global minimum: minimize the top eigenvalue ``x^2 + mu^2/x^2`` over ``x``.

    Returns
    -------
    dict
        ``x_star`` (positive root ``sqrt(mu)``), ``y_star``, ``sharpness`` (``2 mu``),
        ``eta_max`` (``1/mu``: above it no global minimum is linearly stable).
    """
    s = symbols()
    x, mu = s["x"], s["mu"]
    top_x = derive_minimum_hessian()["top_x"]
    crit = sp.solve(sp.diff(top_x, x), x)
    x_star = [c for c in crit if c.is_positive][0]
    sharp = sp.simplify(top_x.subs(x, x_star))
    return {"x_star": x_star, "y_star": sp.simplify(mu / x_star), "sharpness": sharp,
            "eta_max": sp.simplify(2 / sharp)}


def paper_step_size(x0, y0, mu):
    """The largest step of the paper's convergence theorem, ``h0 = 4 / (x0^2 + y0^2 + 4 mu)``.

    Quoted from the paper (Theorem 3.1's range; their experiments use ``mu = 2``), not derived:
    its proof is a dynamical-systems argument, not a formula manipulation. Works on sympy
    symbols and on numbers.
    """
    return 4 / (x0 ** 2 + y0 ** 2 + 4 * mu)


@functools.lru_cache(maxsize=None)
def derive_convergence_range() -> Dict[str, sp.Expr]:
    """The paper's step range in units of ``1/L``: ``h0 * L`` at ``(x0, y0)`` and its limit.

    Returns
    -------
    dict
        ``h0`` (sympy, in ``x_0, y_0, mu``), ``L0`` (top Hessian eigenvalue at the
        initialization), ``h0L`` (their product), ``h0L_limit`` (as ``x_0 -> oo`` with
        ``y_0, mu`` fixed: 4, i.e. "up to 4/L"), ``classical`` (2, the ``2/L`` rule).
    """
    s = symbols()
    x, y, x0, y0, mu = s["x"], s["y"], s["x0"], s["y0"], s["mu"]
    L0 = derive_scalar_hessian()["L"].subs({x: x0, y: y0})
    h0 = paper_step_size(x0, y0, mu)
    h0L = h0 * L0
    lim = sp.limit(h0L, x0, sp.oo)
    return {"h0": h0, "L0": L0, "h0L": h0L, "h0L_limit": lim, "classical": sp.Integer(2)}


@functools.lru_cache(maxsize=None)
def derive_balancing_bound() -> Dict[str, sp.Expr]:
    """The balancing bound a GD limit must satisfy, from linear stability at the minimum.

    A limit ``(x, y)`` of GD with step ``eta`` (for almost every initialization) is a global
    minimum that is not linearly unstable: ``eta (x^2 + y^2) <= 2``. With ``x y = mu`` and the
    imbalance ratio ``rho = max(|x|,|y|)/min(|x|,|y|)``, ``x^2 + y^2 = mu (rho + 1/rho)``.

    Returns
    -------
    dict
        ``diff_bound`` (bound on ``(|x| - |y|)^2``: ``2/eta - 2 mu``), ``rho_bound`` (largest
        ratio allowed: the larger root of ``mu (rho + 1/rho) = 2/eta``), ``constraint``
        (``mu (rho + 1/rho) <= 2/eta``).
    """
    s = symbols()
    x, y, mu, eta, rho = s["x"], s["y"], s["mu"], s["eta"], s["rho"]
    mh = derive_minimum_hessian()
    S = sp.Symbol("S", positive=True)  # S = x^2 + y^2, the top eigenvalue at the minimum
    S_max = sp.solve(sp.Eq(eta * S, 2), S)[0]  # stability edge eta * S = 2
    # on x y = mu: (|x| - |y|)^2 = x^2 + y^2 - 2 |x y| = S - 2 mu
    diff_bound = sp.simplify(S_max - 2 * mu)
    constraint_lhs = sp.simplify(mh["top"].subs({x: sp.sqrt(mu * rho), y: sp.sqrt(mu / rho)}))
    roots = sp.solve(sp.Eq(constraint_lhs, S_max), rho)
    probe = {mu: 1, eta: sp.Rational(1, 4)}
    rho_bound = max(roots, key=lambda e: float(e.subs(probe)))
    return {"diff_bound": diff_bound, "rho_bound": sp.simplify(rho_bound),
            "constraint": sp.Le(constraint_lhs, 2 / eta)}


@functools.lru_cache(maxsize=None)
def derive_matrix_gd(m: int = 2, n: int = 2, r: int = 2) -> Dict[str, object]:
    """GD on ``||A - X Y^T||_F^2 / 2`` with explicit ``m x n`` and ``m x r``, ``n x r`` symbol matrices.

    sympy differentiates the loss entry by entry; the result is compared with the
    matrix forms ``grad_X = -(A - X Y^T) Y`` and ``grad_Y = -(A - X Y^T)^T X``.

    Returns
    -------
    dict
        ``f``; ``grad_X``, ``grad_Y`` (entry-wise derivatives as matrices);
        ``matches`` (True when they equal ``-R Y`` and ``-R^T X``).
    """
    A = sp.Matrix(m, n, lambda i, j: sp.Symbol(f"a_{i}{j}"))
    X = sp.Matrix(m, r, lambda i, j: sp.Symbol(f"x_{i}{j}"))
    Y = sp.Matrix(n, r, lambda i, j: sp.Symbol(f"y_{i}{j}"))
    R = A - X * Y.T
    f = sum(e ** 2 for e in R) / 2
    gX = sp.Matrix(m, r, lambda i, j: sp.diff(f, X[i, j]))
    gY = sp.Matrix(n, r, lambda i, j: sp.diff(f, Y[i, j]))
    ok = sp.expand(gX + R * Y) == sp.zeros(m, r) and sp.expand(gY + R.T * X) == sp.zeros(n, r)
    return {"f": f, "grad_X": gX, "grad_Y": gY, "matches": bool(ok)}


@functools.lru_cache(maxsize=None)
def derive_matrix_imbalance_recursion() -> Dict[str, sp.Expr]:
    """Exact one-step recursion of ``D = X^T X - Y^T Y`` under GD, with non-commutative symbols.

    With ``R = A - X Y^T``, GD is ``X' = X + eta R Y``, ``Y' = Y + eta R^T X``. sympy expands
    ``X'^T X' - Y'^T Y'`` treating ``X, Y, R`` and their transposes as non-commuting symbols:
    the first-order terms cancel and
    ``D' = D + eta^2 (Y^T R^T R Y - X^T R R^T X)``.

    Returns
    -------
    dict
        ``D_next`` (expanded), ``increment`` (``D' - D``), ``symbols`` (the non-commutative symbols).
    """
    X, Y, R, Xt, Yt, Rt = sp.symbols("X Y R X^T Y^T R^T", commutative=False)
    eta = symbols()["eta"]
    Xn, Yn = X + eta * R * Y, Y + eta * Rt * X
    Xnt, Ynt = Xt + eta * Yt * Rt, Yt + eta * Xt * R  # transposes of the updates
    D_next = sp.expand(Xnt * Xn - Ynt * Yn)
    inc = sp.expand(D_next - (Xt * X - Yt * Y))
    return {"D_next": D_next, "increment": inc,
            "symbols": {"X": X, "Y": Y, "R": R, "Xt": Xt, "Yt": Yt, "Rt": Rt}}


@functools.lru_cache(maxsize=None)
def derive_matrix_balancing_bound() -> Dict[str, sp.Expr]:
    """Bound on ``q = ||X||_F / ||Y||_F`` (or its inverse) at a stable global minimum ``X Y^T = A``.

    Two facts (the first by hand, checked numerically in the tests): at a global minimum,
    the top Hessian eigenvalue is at least ``lambda_max(X^T X + Y^T Y)`` (take the
    direction ``dX = a u p^T``, ``dY = b v p^T`` with ``p`` the top eigenvector); and
    ``||A||_* <= ||X||_F ||Y||_F``. Stability gives ``eta lambda_max(X^T X + Y^T Y) <= 2``,
    so ``||X||_F^2 + ||Y||_F^2 <= 2 r / eta`` and ``nu (q + 1/q) <= 2 r / eta`` with
    ``nu = ||A||_*``. sympy solves for the largest allowed ``q``.

    Returns
    -------
    dict
        ``q_bound`` (in ``eta, nu, rank``), ``constraint``.
    """
    eta = symbols()["eta"]
    q, nu, rk = sp.symbols("q nu r_A", positive=True)
    lhs = nu * (q + 1 / q)
    roots = sp.solve(sp.Eq(lhs, 2 * rk / eta), q)
    probe = {nu: 1, rk: 1, eta: sp.Rational(1, 4)}
    qb = max(roots, key=lambda e: float(e.subs(probe)))
    return {"q_bound": sp.simplify(qb), "constraint": sp.Le(lhs, 2 * rk / eta),
            "symbols": {"q": q, "nu": nu, "rank": rk}}


# numeric evaluation of the derived bounds --------------------------------------------

def _rho_bound_fn():
    s = symbols()
    return sp.lambdify((s["eta"], s["mu"]), derive_balancing_bound()["rho_bound"], "numpy")


def _q_bound_fn():
    d = derive_matrix_balancing_bound()
    sy = d["symbols"]
    return sp.lambdify((symbols()["eta"], sy["nu"], sy["rank"]), d["q_bound"], "numpy")


def _L_fn():
    s = symbols()
    return sp.lambdify((s["x"], s["y"], s["mu"]), derive_scalar_hessian()["L"], "math")


# --------------------------------------------------------------------------------------
# Numeric part
# --------------------------------------------------------------------------------------

def _check_real(value, name: str, positive: bool = False) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name}: expected a number, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: expected a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}: must be finite, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{name}: must be > 0, got {value!r}")
    return value


def _check_int(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def _as_eta(eta, device, dtype) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(eta, dtype=np.float64) if not isinstance(eta, torch.Tensor) else eta)
    t = t.to(device=device, dtype=dtype).reshape(-1)
    if t.numel() == 0:
        raise ValueError("eta: expected at least one step size")
    if not torch.isfinite(t).all():
        raise ValueError("eta: every step size must be finite (got NaN or inf)")
    if (t <= 0).any():
        raise ValueError(f"eta: every step size must be > 0, got min {t.min().item()!r}")
    return t


def scalar_top_eigenvalue(x0: float, y0: float, mu: float) -> float:
    """Top Hessian eigenvalue ``L`` of ``(mu - x y)^2/2`` at ``(x0, y0)``, from a dense torch Hessian.

    Independent of the sympy closed form (used to check it). Raises ValueError on NaN input.
    """
    x0, y0, mu = _check_real(x0, "x0"), _check_real(y0, "y0"), _check_real(mu, "mu", True)
    z = torch.tensor([x0, y0], dtype=torch.float64)
    H = torch.autograd.functional.hessian(lambda v: 0.5 * (mu - v[0] * v[1]) ** 2, z)
    return float(torch.linalg.eigvalsh(H)[-1])


def _classify(hist_x: torch.Tensor, hist_y: torch.Tensor, alive: torch.Tensor, loss: torch.Tensor,
              loss_tol: float, max_period: int, orbit_tol: float) -> torch.Tensor:
    """End-state codes from the last ``max_period + 1`` states, shape ``(P+1, K, ...)``."""
    K = alive.shape[0]
    status = torch.full((K,), BOUNDED, dtype=torch.int64, device=alive.device)
    conv = alive & (loss <= loss_tol)
    status[conv] = CONVERGED
    last_x, last_y = hist_x[-1], hist_y[-1]
    scale = 1.0 + last_x.reshape(K, -1).abs().amax(1) + last_y.reshape(K, -1).abs().amax(1)
    undecided = alive & ~conv
    for p in range(2, max_period + 1):
        dx = (last_x - hist_x[-1 - p]).reshape(K, -1).abs().amax(1)
        dy = (last_y - hist_y[-1 - p]).reshape(K, -1).abs().amax(1)
        hit = undecided & (torch.maximum(dx, dy) <= orbit_tol * scale)
        status[hit] = p
        undecided &= ~hit
    status[~alive] = DIVERGED
    return status


@dataclass(frozen=True)
class ScalarRun:
    """Result of :func:`scalar_gd` (numpy arrays, float64; ``K`` runs).

    Attributes
    ----------
    eta : (K,) step sizes.
    x, y : (K,) final iterates (for a diverged run: the last state before it left the bound).
    loss : (K,) final ``(mu - x y)^2 / 2``.
    status : (K,) int, :data:`CONVERGED`, :data:`DIVERGED`, :data:`BOUNDED` or a period ``p >= 2``.
    steps_to_converge : (K,) first step with ``loss <= loss_tol``, checked every 32 steps (-1 if never).
    diverged_at : (K,) step at which the run left the bound (-1 if never).
    tail_x, tail_y : (max_period + 1, K) the last states (the orbit of a periodic run).
    traj_x, traj_y : (T+1, K) trajectories, or None when not recorded.
    """

    eta: np.ndarray
    x: np.ndarray
    y: np.ndarray
    loss: np.ndarray
    status: np.ndarray
    steps_to_converge: np.ndarray
    diverged_at: np.ndarray
    tail_x: Optional[np.ndarray] = None
    tail_y: Optional[np.ndarray] = None
    traj_x: Optional[np.ndarray] = None
    traj_y: Optional[np.ndarray] = None


def scalar_gd(x0, y0, eta, mu: float = PAPER_MU, steps: int = 10000, *, bound: float = 1e6,
              loss_tol: float = 1e-20, max_period: int = 16, orbit_tol: float = 1e-9,
              record: bool = False, device: DeviceLike = None) -> ScalarRun:
    """GD on ``(mu - x y)^2 / 2`` for ``K`` step sizes at once, float64.

    Parameters
    ----------
    x0, y0 : float or array of shape (K,)
        Initialization (broadcast against ``eta``).
    eta : float or array of shape (K,)
        Step sizes, all > 0.
    mu : float
        Target, > 0.
    steps : int
        Number of GD steps T.
    bound : float
        A run whose ``|x|`` or ``|y|`` exceeds ``bound`` (or turns non-finite) is marked
        diverged and frozen at its last state inside the bound.
    loss_tol : float
        A run with final loss ``<= loss_tol`` is converged.
    max_period, orbit_tol : int, float
        Bounded, non-converged runs whose state repeats after ``p <= max_period`` steps
        (relative tolerance ``orbit_tol``) are classified as periodic orbits of period ``p``.
    record : bool
        Keep the trajectories (T+1, K).
    device : str, torch.device or None

    Returns
    -------
    ScalarRun

    Raises
    ------
    ValueError
        If ``eta <= 0`` or NaN, ``mu <= 0``, non-finite ``x0``/``y0``, ``steps < 1``, or
        ``x0``, ``y0``, ``eta`` do not broadcast to one shape ``(K,)``.

    Example
    -------
    >>> run = scalar_gd(9.0, 1.0, [0.01, 0.04], mu=2.0, steps=2000, device="cpu")
    >>> run.status.tolist()
    [1, 1]
    """
    dev = resolve_device(device)
    dt = torch.float64
    mu = _check_real(mu, "mu", positive=True)
    steps = _check_int(steps, "steps")
    bound = _check_real(bound, "bound", positive=True)
    eta_t = _as_eta(eta, dev, dt)
    xs, ys = [], []
    for val, name in ((x0, "x0"), (y0, "y0")):
        t = torch.as_tensor(np.asarray(val, dtype=np.float64)).to(device=dev, dtype=dt).reshape(-1)
        if not torch.isfinite(t).all():
            raise ValueError(f"{name}: must be finite (got NaN or inf)")
        xs.append(t)
    try:
        x, y, h = torch.broadcast_tensors(xs[0], xs[1], eta_t)
    except RuntimeError as exc:
        raise ValueError(f"x0, y0, eta: shapes {tuple(xs[0].shape)}, {tuple(xs[1].shape)}, "
                         f"{tuple(eta_t.shape)} do not broadcast") from exc
    del ys
    x, y, h = x.clone(), y.clone(), h.clone()
    K = x.shape[0]
    alive = torch.ones(K, dtype=torch.bool, device=dev)
    diverged_at = torch.full((K,), -1, dtype=torch.int64, device=dev)
    first_conv = torch.full((K,), -1, dtype=torch.int64, device=dev)
    h_eff = h.clone()  # a diverged run gets step 0: it stays frozen at its last state
    keep = max_period + 1
    hist_x, hist_y = [], []
    traj_x = [x.clone()] if record else None
    traj_y = [y.clone()] if record else None
    for t in range(steps):
        res = mu - x * y
        # hand-written gradient of (mu - x y)^2 / 2: d/dx = -(mu - x y) y, d/dy = -(mu - x y) x
        xn = x + h_eff * res * y
        yn = y + h_eff * res * x
        ok = torch.maximum(xn.abs(), yn.abs()) <= bound  # False for NaN and inf
        if not bool(ok.all()):  # only runs that leave the bound at this step
            diverged_at = torch.where(ok, diverged_at, torch.full_like(diverged_at, t + 1))
            alive = alive & ok
            h_eff = torch.where(alive, h_eff, torch.zeros_like(h_eff))
            xn = torch.where(ok, xn, x)
            yn = torch.where(ok, yn, y)
        x, y = xn, yn
        if (t + 1) % _CHECK_EVERY == 0 or t == steps - 1:
            loss = 0.5 * (mu - x * y) ** 2
            first_conv = torch.where((first_conv < 0) & alive & (loss <= loss_tol),
                                     torch.full_like(first_conv, t + 1), first_conv)
        if t >= steps - keep:
            hist_x.append(x.clone())
            hist_y.append(y.clone())
        if record:
            traj_x.append(x.clone())
            traj_y.append(y.clone())
    while len(hist_x) < keep:  # fewer steps than the classification window
        hist_x.insert(0, hist_x[0] if hist_x else x.clone())
        hist_y.insert(0, hist_y[0] if hist_y else y.clone())
    loss = 0.5 * (mu - x * y) ** 2
    hx, hy = torch.stack(hist_x), torch.stack(hist_y)
    status = _classify(hx, hy, alive, loss, loss_tol, max_period, orbit_tol)
    first_conv = torch.where(status == CONVERGED, first_conv, torch.full_like(first_conv, -1))
    np_ = lambda t: t.detach().cpu().numpy()  # noqa: E731
    return ScalarRun(eta=np_(h), x=np_(x), y=np_(y), loss=np_(loss), status=np_(status),
                     steps_to_converge=np_(first_conv), diverged_at=np_(diverged_at),
                     tail_x=np_(hx), tail_y=np_(hy),
                     traj_x=np_(torch.stack(traj_x)) if record else None,
                     traj_y=np_(torch.stack(traj_y)) if record else None)


def imbalance_ratio(a, b) -> np.ndarray:
    """``max(|a|,|b|) / min(|a|,|b|)`` element-wise (>= 1; inf where one is 0)."""
    a, b = np.abs(np.asarray(a, dtype=np.float64)), np.abs(np.asarray(b, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.maximum(a, b) / np.minimum(a, b)


def convergence_edge(eta_L: Sequence[float], status: Sequence[int]) -> float:
    """End of the contiguous convergent range of an increasing grid.

    Parameters
    ----------
    eta_L : (K,) increasing grid of ``eta * L``.
    status : (K,) end states (:data:`CONVERGED` counts as convergent).

    Returns
    -------
    float
        The largest grid value ``g`` such that every grid point ``<= g`` converged;
        ``nan`` if the first point did not converge.

    Raises
    ------
    ValueError
        If the shapes differ or the grid is not strictly increasing.
    """
    g = np.asarray(eta_L, dtype=np.float64).reshape(-1)
    s = np.asarray(status).reshape(-1)
    if g.shape != s.shape:
        raise ValueError(f"status: shape {s.shape} does not match eta_L {g.shape}")
    if g.size == 0 or np.any(np.diff(g) <= 0) or not np.all(np.isfinite(g)):
        raise ValueError("eta_L: expected a finite, strictly increasing grid")
    bad = np.nonzero(s != CONVERGED)[0]
    if bad.size == 0:
        return float(g[-1])
    if bad[0] == 0:
        return float("nan")
    return float(g[bad[0] - 1])


# matrix case ----------------------------------------------------------------------------

def _check_matrix_problem(A, X0, Y0, device, dtype) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    out = []
    for val, name in ((A, "A"), (X0, "X0"), (Y0, "Y0")):
        t = torch.as_tensor(val if isinstance(val, torch.Tensor) else np.asarray(val, dtype=np.float64))
        t = t.to(device=device, dtype=dtype)
        if t.ndim != 2:
            raise ValueError(f"{name}: expected a 2-d matrix, got shape {tuple(t.shape)}")
        if not torch.isfinite(t).all():
            raise ValueError(f"{name}: must be finite (got NaN or inf)")
        out.append(t)
    A, X0, Y0 = out
    m, n = A.shape
    if X0.shape[0] != m:
        raise ValueError(f"X0: expected {m} rows to match A of shape {tuple(A.shape)}, got {tuple(X0.shape)}")
    if Y0.shape[0] != n:
        raise ValueError(f"Y0: expected {n} rows to match A of shape {tuple(A.shape)}, got {tuple(Y0.shape)}")
    if X0.shape[1] != Y0.shape[1]:
        raise ValueError(f"Y0: expected {X0.shape[1]} columns to match X0 {tuple(X0.shape)}, got {tuple(Y0.shape)}")
    return A, X0, Y0


def matrix_top_eigenvalue(A, X, Y) -> float:
    """Top Hessian eigenvalue of ``||A - X Y^T||_F^2 / 2`` at ``(X, Y)`` (dense torch Hessian, eigvalsh).

    Raises
    ------
    ValueError
        On non-matching shapes or non-finite entries.
    """
    A, X, Y = _check_matrix_problem(A, X, Y, torch.device("cpu"), torch.float64)
    m, r = X.shape
    n = Y.shape[0]

    def f(z):
        Xz, Yz = z[: m * r].reshape(m, r), z[m * r:].reshape(n, r)
        return 0.5 * ((A - Xz @ Yz.T) ** 2).sum()

    H = torch.autograd.functional.hessian(f, torch.cat([X.reshape(-1), Y.reshape(-1)]))
    return float(torch.linalg.eigvalsh(H)[-1])


@dataclass(frozen=True)
class MatrixRun:
    """Result of :func:`matrix_gd` (numpy, float64; ``K`` runs).

    Attributes
    ----------
    eta : (K,) step sizes.
    X : (K, m, r), Y : (K, n, r) final iterates.
    loss : (K,) final loss.
    status : (K,) end states (see :func:`scalar_gd`).
    norm_ratio : (K,) ``||X||_F / ||Y||_F``.
    imbalance : (K,) ``||X^T X - Y^T Y||_F``.
    lam_gram : (K,) ``lambda_max(X^T X + Y^T Y)``.
    """

    eta: np.ndarray
    X: np.ndarray
    Y: np.ndarray
    loss: np.ndarray
    status: np.ndarray
    norm_ratio: np.ndarray
    imbalance: np.ndarray
    lam_gram: np.ndarray


def matrix_gd(A, X0, Y0, eta, steps: int = 5000, *, bound: float = 1e6, loss_tol: float = 1e-20,
              max_period: int = 16, orbit_tol: float = 1e-9, device: DeviceLike = None) -> MatrixRun:
    """GD on ``||A - X Y^T||_F^2 / 2`` for ``K`` step sizes at once (float64, batched matmuls).

    Parameters
    ----------
    A : (m, n) target.
    X0 : (m, r), Y0 : (n, r) initialization (the same for every run).
    eta : float or (K,) step sizes, all > 0.
    steps, bound, loss_tol, max_period, orbit_tol, device
        As in :func:`scalar_gd` (``loss_tol`` is absolute).

    Returns
    -------
    MatrixRun

    Raises
    ------
    ValueError
        On ``eta <= 0`` / NaN, non-finite or non-matching ``A``, ``X0``, ``Y0``, ``steps < 1``.

    Example
    -------
    >>> A = np.eye(2); run = matrix_gd(A, 2 * np.eye(2), 0.5 * np.eye(2), [0.05], steps=3000, device="cpu")
    >>> int(run.status[0])
    1
    """
    dev = resolve_device(device)
    dt = torch.float64
    A, X0, Y0 = _check_matrix_problem(A, X0, Y0, dev, dt)
    steps = _check_int(steps, "steps")
    bound = _check_real(bound, "bound", positive=True)
    h = _as_eta(eta, dev, dt)
    K = h.shape[0]
    hb = h[:, None, None]
    X = X0.expand(K, *X0.shape).clone()
    Y = Y0.expand(K, *Y0.shape).clone()
    alive = torch.ones(K, dtype=torch.bool, device=dev)
    h_eff = hb.clone()  # a diverged run gets step 0: it stays frozen at its last state
    keep = max_period + 1
    hist_x, hist_y = [], []
    for t in range(steps):
        R = A - X @ Y.transpose(1, 2)
        # hand-written gradient: grad_X = -R Y, grad_Y = -R^T X
        Xn = torch.baddbmm(X, R, Y, alpha=1.0).sub_(X).mul_(h_eff).add_(X)  # X + eta R Y
        Yn = torch.baddbmm(Y, R.transpose(1, 2), X, alpha=1.0).sub_(Y).mul_(h_eff).add_(Y)
        ok = torch.maximum(Xn.abs().amax(dim=(1, 2)), Yn.abs().amax(dim=(1, 2))) <= bound  # False for NaN/inf
        if not bool(ok.all()):
            alive = alive & ok
            h_eff = torch.where(alive[:, None, None], h_eff, torch.zeros_like(h_eff))
            Xn = torch.where(ok[:, None, None], Xn, X)
            Yn = torch.where(ok[:, None, None], Yn, Y)
        X, Y = Xn, Yn
        if t >= steps - keep:
            hist_x.append(X.clone())
            hist_y.append(Y.clone())
    while len(hist_x) < keep:
        hist_x.insert(0, hist_x[0])
        hist_y.insert(0, hist_y[0])
    loss = 0.5 * ((A - X @ Y.transpose(1, 2)) ** 2).sum(dim=(1, 2))
    status = _classify(torch.stack(hist_x), torch.stack(hist_y), alive, loss, loss_tol, max_period, orbit_tol)
    XtX, YtY = X.transpose(1, 2) @ X, Y.transpose(1, 2) @ Y
    ratio = torch.linalg.matrix_norm(X) / torch.linalg.matrix_norm(Y)
    imb = torch.linalg.matrix_norm(XtX - YtY)
    lam = torch.linalg.eigvalsh(XtX + YtY)[:, -1]
    np_ = lambda t: t.detach().cpu().numpy()  # noqa: E731
    return MatrixRun(eta=np_(h), X=np_(X), Y=np_(Y), loss=np_(loss), status=np_(status),
                     norm_ratio=np_(ratio), imbalance=np_(imb), lam_gram=np_(lam))


def make_matrix_problem(m: int = 4, n: int = 3, rank: int = 2, *, singular_values: Sequence[float] = (2.0, 1.0),
                        x_scale: float = 4.0, y_scale: float = 0.2, seed: int = 0):
    """A rank-``rank`` target ``A`` (m, n) and an unbalanced initialization ``X0`` (m, rank), ``Y0`` (n, rank).

    ``A = U diag(singular_values) V^T`` with random orthonormal ``U, V``; ``X0``, ``Y0`` are
    Gaussian, rescaled to Frobenius norms ``x_scale`` and ``y_scale`` (initial ratio
    ``x_scale / y_scale``). Returns numpy arrays ``(A, X0, Y0)``.

    Raises
    ------
    ValueError
        If ``rank > min(m, n)``, ``len(singular_values) != rank`` or a scale is not > 0.
    """
    m, n, rank = _check_int(m, "m"), _check_int(n, "n"), _check_int(rank, "rank")
    if rank > min(m, n):
        raise ValueError(f"rank: must be <= min(m, n) = {min(m, n)}, got {rank}")
    if len(singular_values) != rank:
        raise ValueError(f"singular_values: expected {rank} values, got {len(singular_values)}")
    x_scale = _check_real(x_scale, "x_scale", positive=True)
    y_scale = _check_real(y_scale, "y_scale", positive=True)
    g = make_generator(seed, "cpu")
    U, _ = torch.linalg.qr(torch.randn(m, m, generator=g, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    s = torch.tensor([float(v) for v in singular_values], dtype=torch.float64)
    A = U[:, :rank] @ torch.diag(s) @ V[:, :rank].T
    X0 = torch.randn(m, rank, generator=g, dtype=torch.float64)
    Y0 = torch.randn(n, rank, generator=g, dtype=torch.float64)
    X0 = X0 * (x_scale / torch.linalg.matrix_norm(X0))
    Y0 = Y0 * (y_scale / torch.linalg.matrix_norm(Y0))
    return A.numpy(), X0.numpy(), Y0.numpy()


# --------------------------------------------------------------------------------------
# Sweeps (memoized) and claims
# --------------------------------------------------------------------------------------

_SCALES = {
    "ci": dict(grid=(0.5, 5.0, 0.01), steps=15000, inits=PAPER_INITS,
               mgrid=(1.0, 4.6, 0.05), msteps=6000, mshape=(4, 3, 2), msv=(2.0, 1.0), mreport=3.0,
               rsteps=400, rgrid=(0.5, 1.5, 2.5, 3.0, -1.0, 4.5),  # -1.0 stands for h0*L
               ogrid=(0.8, 1.5, 0.01)),
    "full": dict(grid=(0.1, 5.0, 0.001), steps=100000, inits=PAPER_INITS + ((49.0, 1.0), (199.0, 1.0)),
                 mgrid=(0.5, 5.0, 0.005), msteps=50000, mshape=(10, 8, 4), msv=(4.0, 3.0, 2.0, 1.0), mreport=2.5,
                 rsteps=5000, rgrid=(0.5, 1.5, 2.5, 3.0, -1.0, 4.5),
                 ogrid=(0.5, 1.5, 0.001)),
}


def _scale_cfg(scale: str) -> dict:
    return _SCALES[check_scale(scale)]


def _grid(lo: float, hi: float, step: float) -> np.ndarray:
    n = int(round((hi - lo) / step))
    return np.round(lo + step * np.arange(n + 1), 10)


def _init_key(x0: float, y0: float) -> str:
    return f"({x0:g},{y0:g})"


@dataclass(frozen=True)
class ScalarSweep:
    """Scalar sweep over a grid of ``eta * L`` for each initialization.

    Attributes
    ----------
    inits : tuple of (x0, y0).
    mu : float.
    L : (I,) top Hessian eigenvalue at each init (dense torch Hessian).
    h0 : (I,) the paper's largest step ``4/(x0^2+y0^2+4 mu)``, from :func:`paper_step_size`.
    eta_L : (G,) the grid of ``eta * L`` (shared by every init).
    runs : tuple of I :class:`ScalarRun` (each of K = G runs).
    at_h0 : tuple of I :class:`ScalarRun` (one run each, exactly at ``eta = h0``).
    """

    inits: Tuple[Tuple[float, float], ...]
    mu: float
    L: np.ndarray
    h0: np.ndarray
    eta_L: np.ndarray
    runs: Tuple[ScalarRun, ...]
    at_h0: Tuple[ScalarRun, ...]


#: Near-balanced start of the orbit sweep, in units of sqrt(mu).
ORBIT_INIT = (1.2, 0.8)


@dataclass(frozen=True)
class OrbitSweep:
    """GD from a near-balanced start over a grid of ``eta * mu`` around the flattest minimum's edge.

    Attributes
    ----------
    mu : float.
    init : (x0, y0), the start ``ORBIT_INIT * sqrt(mu)``.
    eta_mu : (G,) grid of ``eta * mu``.
    run : :class:`ScalarRun` (its ``tail_x``, ``tail_y`` hold the orbits).
    """

    mu: float
    init: Tuple[float, float]
    eta_mu: np.ndarray
    run: ScalarRun


def _slice_run(run: ScalarRun, sl: slice) -> ScalarRun:
    """The runs ``sl`` of a batched :class:`ScalarRun` (per-run arrays are the last axis)."""
    kw = {}
    for k in ScalarRun.__dataclass_fields__:
        v = getattr(run, k)
        kw[k] = None if v is None else v[..., sl]
    return ScalarRun(**kw)


@functools.lru_cache(maxsize=8)
def _scalar_batch(scale: str, device: str):
    """Every scalar run of a scale in one batch: the grid for each init, the runs at h0, the orbit sweep."""
    cfg = _scale_cfg(scale)
    mu = PAPER_MU
    grid = _grid(*cfg["grid"])
    inits = cfg["inits"]
    L = np.array([scalar_top_eigenvalue(x0, y0, mu) for x0, y0 in inits])
    h0 = np.array([paper_step_size(x0, y0, mu) for x0, y0 in inits])
    ogrid = _grid(*cfg["ogrid"])
    ox0, oy0 = ORBIT_INIT[0] * math.sqrt(mu), ORBIT_INIT[1] * math.sqrt(mu)
    # one tensor of shape (I*G + I + G_orbit,): all inits, all etas, stepped together
    x0s = np.concatenate([np.repeat([p[0] for p in inits], grid.size), [p[0] for p in inits],
                          np.full(ogrid.size, ox0)])
    y0s = np.concatenate([np.repeat([p[1] for p in inits], grid.size), [p[1] for p in inits],
                          np.full(ogrid.size, oy0)])
    etas = np.concatenate([(grid[None, :] / L[:, None]).reshape(-1), h0, ogrid / mu])
    big = scalar_gd(x0s, y0s, etas, mu, cfg["steps"], device=device)
    G, I = grid.size, len(inits)
    runs = tuple(_slice_run(big, slice(i * G, (i + 1) * G)) for i in range(I))
    at_h0 = tuple(_slice_run(big, slice(I * G + i, I * G + i + 1)) for i in range(I))
    sweep = ScalarSweep(inits=tuple(inits), mu=mu, L=L, h0=h0, eta_L=grid, runs=runs, at_h0=at_h0)
    orbits = OrbitSweep(mu=mu, init=(ox0, oy0), eta_mu=ogrid, run=_slice_run(big, slice(I * G + I, None)))
    return sweep, orbits


@stored_measurement("balancing")
def measure_scalar_sweep(scale: str = "ci", device: DeviceLike = None) -> ScalarSweep:
    """GD from the paper's unbalanced initializations over a grid of ``eta * L`` (memoized).

    At ``scale="ci"``: inits (9,1), (19,1), (99,1), ``mu = 2``, grid ``eta L = 0.5 ... 5.0``
    in steps of 0.01, 15000 GD steps. At ``"full"``: also (49,1), (199,1), grid step 0.001,
    100000 steps.
    """
    return _scalar_batch(scale, str(resolve_device(device)))[0]


@dataclass(frozen=True)
class MatrixSweep:
    """Matrix sweep: problem, ``L`` at the initialization, grid of ``eta * L``, runs, and small-step reference."""

    A: np.ndarray
    X0: np.ndarray
    Y0: np.ndarray
    L: float
    nuclear: float
    rank: int
    eta_L: np.ndarray
    run: MatrixRun


@functools.lru_cache(maxsize=8)
def _matrix_sweep(scale: str, device: str) -> MatrixSweep:
    cfg = _scale_cfg(scale)
    m, n, rk = cfg["mshape"]
    A, X0, Y0 = make_matrix_problem(m, n, rk, singular_values=cfg["msv"], seed=0)
    L = matrix_top_eigenvalue(A, X0, Y0)
    grid = _grid(*cfg["mgrid"])
    run = matrix_gd(A, X0, Y0, grid / L, cfg["msteps"], device=device)
    nuc = float(np.linalg.norm(A, "nuc"))
    return MatrixSweep(A=A, X0=X0, Y0=Y0, L=L, nuclear=nuc, rank=rk, eta_L=grid, run=run)


@stored_measurement("balancing")
def measure_matrix_sweep(scale: str = "ci", device: DeviceLike = None) -> MatrixSweep:
    """GD on ``||A - X Y^T||_F^2/2`` from an unbalanced start over a grid of ``eta * L`` (memoized).

    At ``scale="ci"``: ``A`` 4x3 of rank 2 (singular values 2, 1), ``X, Y`` with 2 columns,
    ``||X0||_F / ||Y0||_F = 20``, grid ``eta L = 1.0 ... 4.6`` in steps of 0.05, 6000 steps.
    At ``"full"``: ``A`` 10x8 of rank 4, grid step 0.005, 50000 steps.
    """
    return _matrix_sweep(scale, str(resolve_device(device)))


@dataclass(frozen=True)
class RecursionCheck:
    """Per-step check of the derived imbalance recursion on torch trajectories.

    ``max_error``: max over runs and steps of
    ``|D_{k+1} - F(x_k, y_k) D_k| / (x_{k+1}^2 + y_{k+1}^2 + |F| (x_k^2 + y_k^2))``
    with ``D = x^2 - y^2`` and ``F`` the lambdified sympy factor; ``n_steps`` the number
    of (run, step) pairs compared (steps of diverged runs after divergence excluded).
    """

    max_error: float
    n_steps: int
    eta_L: np.ndarray


@functools.lru_cache(maxsize=8)
def _recursion_check(scale: str, device: str) -> RecursionCheck:
    cfg = _scale_cfg(scale)
    mu = PAPER_MU
    s = symbols()
    F = sp.lambdify((s["x"], s["y"], s["mu"], s["eta"]), derive_imbalance_recursion()["factor"], "numpy")
    worst, count = 0.0, 0
    grid_all = []
    for x0, y0 in cfg["inits"]:
        L = scalar_top_eigenvalue(x0, y0, mu)
        h0L = paper_step_size(x0, y0, mu) * L
        grid = np.array([h0L if g < 0 else g for g in cfg["rgrid"]])
        grid_all.append(grid)
        run = scalar_gd(x0, y0, grid / L, mu, cfg["rsteps"], record=True, device=device)
        tx, ty = run.traj_x, run.traj_y  # (T+1, K)
        ok = np.ones_like(tx[1:], dtype=bool)
        div = run.diverged_at
        steps_idx = np.arange(1, tx.shape[0])[:, None]
        ok &= (div[None, :] < 0) | (steps_idx < div[None, :])
        D = tx ** 2 - ty ** 2
        fac = F(tx[:-1], ty[:-1], mu, run.eta[None, :])
        err = np.abs(D[1:] - fac * D[:-1]) / (tx[1:] ** 2 + ty[1:] ** 2 + np.abs(fac) * (tx[:-1] ** 2 + ty[:-1] ** 2))
        err = np.where(ok, err, 0.0)
        worst = max(worst, float(np.max(err)))
        count += int(ok.sum())
    return RecursionCheck(max_error=worst, n_steps=count, eta_L=np.concatenate(grid_all))


@stored_measurement("balancing")
def measure_imbalance_recursion(scale: str = "ci", device: DeviceLike = None) -> RecursionCheck:
    """Check ``x'^2 - y'^2 = F (x^2 - y^2)`` (F from :func:`derive_imbalance_recursion`) along torch GD runs.

    Runs from every initialization of the scale at step sizes ``eta L`` in
    ``{0.5, 1.5, 2.5, 3.0, h0 L, 4.5}`` (the last one diverges: its steps up to divergence count).
    """
    return _recursion_check(scale, str(resolve_device(device)))


@stored_measurement("balancing")
def measure_orbit_sweep(scale: str = "ci", device: DeviceLike = None) -> OrbitSweep:
    """End states of GD near ``eta = 1/mu`` from ``(1.2, 0.8) sqrt(mu)`` (memoized).

    Computed in the same batch as :func:`measure_scalar_sweep` (same number of steps).
    At ``scale="ci"``: ``eta mu = 0.80 ... 1.50`` in steps of 0.01; ``"full"``: ``0.5 ... 1.5``
    in steps of 0.001.
    """
    return _scalar_batch(scale, str(resolve_device(device)))[1]


# claims -------------------------------------------------------------------------------

def _stability_index_bound() -> float:
    """Largest ``eta * lambda_top / 2`` of a linearly stable minimum: ``eta_max * top / 2`` (= 1)."""
    mh = derive_minimum_hessian()
    return float(sp.simplify(mh["eta_max"] * mh["top"] / 2))


def _predict_recursion(scale: str) -> float:
    _scale_cfg(scale)
    return 0.0


def _measure_recursion(scale: str, device) -> float:
    # round-off has no meaningful digits: report the power of ten just above the worst deviation
    err = measure_imbalance_recursion(scale, device).max_error
    if not math.isfinite(err):
        return err
    return 0.0 if err == 0 else float(10.0 ** math.ceil(math.log10(err)))


def _predict_edge(scale: str) -> Dict[str, float]:
    cfg = _scale_cfg(scale)
    Lf = _L_fn()
    return {_init_key(x0, y0): float(paper_step_size(x0, y0, PAPER_MU) * Lf(x0, y0, PAPER_MU))
            for x0, y0 in cfg["inits"]}


def _measure_edge(scale: str, device) -> Dict[str, float]:
    sw = measure_scalar_sweep(scale, device)
    out = {}
    for p, L, h0, run, at in zip(sw.inits, sw.L, sw.h0, sw.runs, sw.at_h0):
        # the run exactly at h0 joins the grid as one more node
        g = np.append(sw.eta_L, h0 * L)
        st = np.append(run.status, at.status)
        order = np.argsort(g, kind="stable")
        g, st = g[order], st[order]
        keep = np.concatenate([[True], np.diff(g) > 0])
        out[_init_key(*p)] = convergence_edge(g[keep], st[keep])
    return out


def _compare_edge(predicted, measured, tol: Tolerance):
    details, ok = {}, True
    for k, p in predicted.items():
        m = measured[k]
        good = math.isfinite(m) and m >= p
        details[k] = {"proved_edge": p, "measured_edge": m, "margin": m - p, "passed": good}
        ok &= good
    return ok, details


def _predict_balanced(scale: str) -> Dict[str, float]:
    cfg = _scale_cfg(scale)
    rho = _rho_bound_fn()
    out = {_init_key(x0, y0): float(rho(paper_step_size(x0, y0, PAPER_MU), PAPER_MU)) for x0, y0 in cfg["inits"]}
    out["stab"] = _stability_index_bound()
    return out


def _measure_balanced(scale: str, device) -> Dict[str, float]:
    sw = measure_scalar_sweep(scale, device)
    out = {}
    stab = 0.0
    for p, run, at in zip(sw.inits, sw.runs, sw.at_h0):
        if int(at.status[0]) != CONVERGED:
            out[_init_key(*p)] = float("inf")
        else:
            out[_init_key(*p)] = float(imbalance_ratio(at.x, at.y)[0])
        sel = (run.status == CONVERGED) & (sw.eta_L > 2.0)
        if sel.any():
            stab = max(stab, float(np.max(run.eta[sel] * (run.x[sel] ** 2 + run.y[sel] ** 2) / 2)))
    out["stab"] = stab
    return out


def _compare_upper(predicted, measured, tol: Tolerance):
    details, ok = {}, True
    for k, p in predicted.items():
        m = measured[k]
        good = math.isfinite(m) and m <= p * (1 + tol.value)
        details[k] = {"bound": p, "measured": m, "passed": good}
        ok &= good
    return ok, details


def _predict_flattest(scale: str) -> Dict[str, float]:
    _scale_cfg(scale)
    s = symbols()
    edge = float(sp.simplify(derive_flattest_minimum()["eta_max"] * s["mu"]))
    return {"last_converged": edge, "first_period2": edge}


def _measure_flattest(scale: str, device) -> Dict[str, float]:
    sw = measure_orbit_sweep(scale, device)
    st = sw.run.status
    conv = sw.eta_mu[st == CONVERGED]
    p2 = sw.eta_mu[st == 2]
    return {"last_converged": float(conv.max()) if conv.size else float("nan"),
            "first_period2": float(p2.min()) if p2.size else float("nan")}


def _compare_flattest(predicted, measured, tol: Tolerance):
    lc, fp = measured["last_converged"], measured["first_period2"]
    e1, e2 = predicted["last_converged"], predicted["first_period2"]
    ok1 = math.isfinite(lc) and e1 - tol.value <= lc <= e1
    ok2 = math.isfinite(fp) and e2 <= fp <= e2 + tol.value
    return ok1 and ok2, {"last_converged": {"edge": e1, "measured": lc, "passed": ok1},
                         "first_period2": {"edge": e2, "measured": fp, "passed": ok2}}


def _predict_matrix(scale: str) -> Dict[str, float]:
    cfg = _scale_cfg(scale)
    m, n, rk = cfg["mshape"]
    A, X0, Y0 = make_matrix_problem(m, n, rk, singular_values=cfg["msv"], seed=0)
    L = matrix_top_eigenvalue(A, X0, Y0)
    nuc = float(np.linalg.norm(A, "nuc"))
    qb = _q_bound_fn()
    g = cfg["mreport"]
    return {f"ratio@{g:g}/L": float(qb(g / L, nuc, rk)),
            "stab": _stability_index_bound()}


def _measure_matrix(scale: str, device) -> Dict[str, float]:
    sw = measure_matrix_sweep(scale, device)
    run = sw.run
    g = _scale_cfg(scale)["mreport"]
    i = int(np.argmin(np.abs(sw.eta_L - g)))
    q = float(max(run.norm_ratio[i], 1 / run.norm_ratio[i])) if run.status[i] == CONVERGED else float("inf")
    sel = (run.status == CONVERGED) & (sw.eta_L > 2.0)
    stab = float(np.max(run.eta[sel] * run.lam_gram[sel] / 2)) if sel.any() else float("inf")
    return {f"ratio@{g:g}/L": q, "stab": stab}


register(Claim(
    id="balancing.scalar.imbalance_recursion",
    chapter=CHAPTER,
    statement="One GD step on (mu - x y)^2/2 multiplies the imbalance x^2 - y^2 exactly by "
              "1 - eta^2 (mu - x y)^2: max normalized per-step deviation along torch GD runs is 0 "
              "(measured: the power of ten just above it).",
    source=SOURCE + ", Sec. 3 (scalar case); recursion derived with sympy",
    tolerance=Tolerance(1e-12, "abs", "float64 round-off: each side is a few O(1) products with relative error "
                                      "~1e-16, normalized by x^2 + y^2; 1e-12 leaves a 1000x margin"),
    predict=_predict_recursion,
    measure=_measure_recursion,
))

register(Claim(
    id="balancing.scalar.convergence_edge",
    chapter=CHAPTER,
    statement="GD converges for every eta*L up to the paper's h0*L = 4L/(x0^2+y0^2+4mu) (well beyond 2), "
              "i.e. the measured edge of the convergent range lies at or above h0*L.",
    source=SOURCE + ", Theorem 3.1 (sufficient condition) and Fig. 2 setting (mu = 2)",
    tolerance=Tolerance(0.0, "custom", "one-sided: measured edge >= proved h0*L (the theorem is sufficient only; "
                                       "grid step 0.01 in eta*L, h0 run separately)"),
    predict=_predict_edge,
    measure=_measure_edge,
    compare=_compare_edge,
))

register(Claim(
    id="balancing.scalar.balanced_limit",
    chapter=CHAPTER,
    statement="At eta = h0 the limit's ratio max(|x|,|y|)/min(|x|,|y|) obeys the stability bound "
              "mu(rho + 1/rho) <= 2/eta, and eta (x^2+y^2)/2 <= 1 at every converged eta*L > 2.",
    source=SOURCE + ", balancing theorem (Sec. 3); bound derived from linear stability at the limit",
    tolerance=Tolerance(1e-9, "custom", "upper bounds: measured <= bound (1 + 1e-9), the slack covering "
                                        "round-off in the limit"),
    predict=_predict_balanced,
    measure=_measure_balanced,
    compare=_compare_upper,
))

register(Claim(
    id="balancing.scalar.flattest_edge",
    chapter=CHAPTER,
    statement="No minimum is stable beyond eta = 1/mu (flattest minimum, sharpness 2 mu): from a near-balanced "
              "start GD converges up to eta*mu = 1 and lands on a period-2 orbit just beyond it.",
    source=SOURCE + ", Sec. 3 (flat minima and periodic orbits); edge derived with sympy",
    tolerance=Tolerance(0.02, "custom", "two CI grid steps of 0.01 in eta*mu: converged in [1 - 0.02, 1], "
                                        "first period-2 orbit in [1, 1 + 0.02] "
                                        "(convergence at eta*mu = 1 is marginal)"),
    predict=_predict_flattest,
    measure=_measure_flattest,
    compare=_compare_flattest,
))

register(Claim(
    id="balancing.matrix.balanced_limit",
    chapter=CHAPTER,
    statement="Matrix case (A of rank >= 2, start ||X||/||Y|| = 20): at a large step (eta L = 3 at CI scale) "
              "the limit's ||X||_F/||Y||_F obeys the stability bound, and eta lambda_max(X'X+Y'Y)/2 <= 1 "
              "at every converged eta*L > 2.",
    source=SOURCE + ", Sec. 4 (matrix factorization); bound derived from linear stability at the limit",
    tolerance=Tolerance(1e-9, "custom", "upper bounds: measured <= bound (1 + 1e-9), the slack covering "
                                        "round-off in the limit"),
    predict=_predict_matrix,
    measure=_measure_matrix,
    compare=_compare_upper,
))
