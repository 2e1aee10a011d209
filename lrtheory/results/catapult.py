"""Chapter 02: the catapult phase (Lewkowycz et al. 2020; Meltzer, Chen & Liu 2023).

Three models, one question: how far can the learning rate go past the linear
stability edge ``eta = 2 / lambda_0`` (``lambda_0`` the top eigenvalue of the NTK at
initialization, normalised by the number of examples) and what happens there?

* **uv model** (Lewkowycz et al. 2020, Sec. 2): ``f = v^T u x / sqrt(n)`` with
  ``u, v in R^n``, loss ``(f - y)^2 / 2`` on one example. :func:`derive_uv_updates`
  derives with sympy the exact one-step maps of ``f_t`` and ``lambda_t``;
  :func:`derive_uv_phases` the phases ``eta lambda_0 < 2`` (lazy),
  ``2 < eta lambda_0 < 4`` (catapult), ``> 4`` (divergent) and the finite-width
  shift of the lower edge.
* **pure quadratic model** (Meltzer, Chen & Liu 2023): ``z = zeta/2 theta^T psi theta``
  with a symmetric meta-feature matrix ``psi``; :func:`derive_quadratic_updates`
  gives its update maps in the moments ``M_p = theta^T psi^p theta``,
  :func:`derive_weight_norm_change` the exact change of ``|theta|^2`` (it falls at
  large loss iff ``eta lambda_t < 4``) and :func:`derive_quadratic_range` the
  guaranteed catapult range; :func:`derive_uv_quadratic_match` shows the uv model is
  the case ``psi^2 = 1``.
* **ReLU MLPs** in NTK parametrization on scikit-learn digits: where training
  diverges in units of ``1/lambda_0`` (Lewkowycz et al. report about 12) and how
  the fraction of active ReLUs after training falls with ``eta`` (Meltzer et al.).

Numerics (``measure_*``) are torch float64, batched over a grid of
``eta * lambda_0`` x seeds (x widths by a short loop); a run that diverges is
frozen and reported, never raised. Claims registered here:
``catapult.uv.lower_boundary``, ``catapult.uv.upper_boundary``,
``catapult.uv.finite_width``, ``catapult.uv.lambda_drop``,
``catapult.quadratic.range``, ``catapult.relu.upper_boundary``,
``catapult.relu.sparsity``.
"""
from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import sympy as sp
import torch
from scipy import stats

from lrtheory.sweeps import stored_measurement
from lrtheory.claims import Claim, Tolerance, check_scale, register
from lrtheory.core.device import DeviceLike, make_generator, resolve_device

__all__ = [
    "PHASES",
    "UVUpdates",
    "QuadraticUpdates",
    "derive_uv_updates",
    "derive_uv_phases",
    "derive_quadratic_updates",
    "derive_weight_norm_change",
    "derive_quadratic_range",
    "derive_uv_quadratic_match",
    "finite_width_lower_edge",
    "PhaseSweep",
    "Trajectories",
    "ReluSweep",
    "classify_runs",
    "phase_boundaries",
    "simulate_uv",
    "simulate_quadratic",
    "uv_trajectories",
    "ntk_top_eigenvalue",
    "relu_sweep",
    "sparsity_trend",
    "trained_edge",
    "measure_uv_sweep",
    "measure_quadratic_sweep",
    "measure_relu_sweep",
    "measure_trajectories",
    "config",
    "CatapultRange",
    "catapult_range",
]

#: Phase codes used by :func:`classify_runs`.
PHASES = {0: "lazy", 1: "catapult", 2: "divergent"}
LAZY, CATAPULT, DIVERGENT = 0, 1, 2

CHAPTER = "02_catapult"
SRC_LEWKOWYCZ = "Lewkowycz et al. 2020 (arXiv 2003.02218)"
SRC_MELTZER = "Meltzer, Chen & Liu 2023 (arXiv 2301.07737)"

# ----------------------------------------------------------------------------------------
# Symbols
# ----------------------------------------------------------------------------------------
eta_s = sp.Symbol("eta", positive=True)
n_s = sp.Symbol("n", positive=True)
x_s = sp.Symbol("x", positive=True)
y_s = sp.Symbol("y", real=True)
f_s = sp.Symbol("f", real=True)
lam_s = sp.Symbol("lambda", positive=True)
z_s = sp.Symbol("z", real=True)
zeta_s = sp.Symbol("zeta", positive=True)
r_s = sp.Symbol("r", real=True)
Q_s = sp.Symbol("Q", positive=True)  # |theta|^2
w_s = sp.Symbol("w", positive=True)  # eta * lambda
M = sp.symbols("M_0:5", real=True)  # moments theta^T psi^p theta


# ----------------------------------------------------------------------------------------
# Symbolic part: uv model
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UVUpdates:
    """Exact one-step GD maps of the uv model (sympy expressions).

    Attributes
    ----------
    f_next : sympy.Expr
        ``f_{t+1}`` in terms of ``f = f_t``, ``lambda = lambda_t``, ``eta``, ``n``, ``x``, ``y``.
    lam_next : sympy.Expr
        ``lambda_{t+1}``.
    residual_next : sympy.Expr
        ``r_{t+1} = f_{t+1} - y`` in terms of ``r = f_t - y``.
    delta_lam : sympy.Expr
        ``lambda_{t+1} - lambda_t`` in terms of ``r = f_t - y``, factored.
    f_next_simple, lam_next_simple, delta_lam_simple : sympy.Expr
        The same for the paper's setting ``x = 1, y = 0``.
    """

    f_next: sp.Expr
    lam_next: sp.Expr
    residual_next: sp.Expr
    delta_lam: sp.Expr
    f_next_simple: sp.Expr
    lam_next_simple: sp.Expr
    delta_lam_simple: sp.Expr


def _sum_over_components(expr: sp.Expr, a: sp.Symbol, b: sp.Symbol, sq_sum: sp.Expr, cross_sum: sp.Expr) -> sp.Expr:
    """Sum a per-component quadratic form ``alpha a^2 + alpha b^2 + gamma a b`` over the
    components: ``alpha * sum(a_i^2 + b_i^2) + gamma * sum(a_i b_i)``."""
    poly = sp.Poly(sp.expand(expr), a, b)
    allowed = {(2, 0), (0, 2), (1, 1)}
    if set(poly.as_dict()) - allowed:
        raise AssertionError(f"not a homogeneous quadratic form in {a}, {b}: {expr}")
    alpha = poly.coeff_monomial(a**2)
    if sp.simplify(alpha - poly.coeff_monomial(b**2)) != 0:
        raise AssertionError("the update is not symmetric under u <-> v")
    gamma = poly.coeff_monomial(a * b)
    return alpha * sq_sum + gamma * cross_sum


@functools.lru_cache(maxsize=None)
def derive_uv_updates() -> UVUpdates:
    """Derive the exact one-step updates of the uv model.

    Model: ``f(x) = v^T u x / sqrt(n)``, ``u, v in R^n``, one example ``(x, y)``,
    loss ``L = (f - y)^2 / 2``, GD with step ``eta``. The NTK of one example is
    ``lambda = x^2 (|u|^2 + |v|^2) / n``. GD acts on each component pair
    ``(u_i, v_i)`` alike, so the new sums ``|u'|^2 + |v'|^2`` and ``u'.v'`` follow
    from the per-component update by linearity (no step by hand).

    Returns
    -------
    UVUpdates

    Example
    -------
    >>> upd = derive_uv_updates()
    >>> upd.delta_lam_simple
    eta*f**2*(eta*lambda - 4)/n
    """
    ui, vi = sp.symbols("u_i v_i", real=True)
    r = f_s - y_s
    # dL/du_i = r * x v_i / sqrt(n),  dL/dv_i = r * x u_i / sqrt(n)
    k = eta_s * r * x_s / sp.sqrt(n_s)
    ui1, vi1 = ui - k * vi, vi - k * ui
    sq_sum = n_s * lam_s / x_s**2  # sum_i (u_i^2 + v_i^2)
    cross_sum = sp.sqrt(n_s) * f_s / x_s  # sum_i u_i v_i
    cross_next = _sum_over_components(ui1 * vi1, ui, vi, sq_sum, cross_sum)
    sq_next = _sum_over_components(ui1**2 + vi1**2, ui, vi, sq_sum, cross_sum)
    f_next = sp.expand(x_s * cross_next / sp.sqrt(n_s))
    lam_next = sp.expand(x_s**2 * sq_next / n_s)
    delta = sp.factor(sp.expand(lam_next - lam_s).subs(f_s, r_s + y_s))
    simple = {x_s: 1, y_s: 0}
    f_simple = sp.factor(f_next.subs(simple))
    lam_simple = sp.expand(lam_next.subs(simple))
    delta_simple = sp.factor(lam_simple - lam_s)
    return UVUpdates(
        f_next=sp.collect(f_next, eta_s),
        lam_next=sp.collect(lam_next, eta_s),
        residual_next=sp.factor(sp.expand(f_next - y_s).subs(f_s, r_s + y_s)),
        delta_lam=delta,
        f_next_simple=f_simple,
        lam_next_simple=lam_simple,
        delta_lam_simple=delta_simple,
    )


@functools.lru_cache(maxsize=None)
def derive_uv_phases() -> Dict[str, sp.Expr]:
    """Phases of the uv model (``x = 1, y = 0``) from its exact updates.

    * growth factor ``f_{t+1}/f_t = 1 - eta lambda + eta^2 f^2 / n``; at infinite width
      (``f^2/n -> 0``) it is ``1 - eta lambda``, so the loss shrinks iff
      ``eta < 2/lambda`` (``eta_lazy``).
    * ``lambda_{t+1} - lambda_t = eta f^2 (eta lambda - 4) / n``: lambda falls whenever
      ``eta lambda_t < 4`` (``eta_max``) and grows above it, so for
      ``2 < eta lambda_0 < 4`` the loss first grows until ``f^2 / n = O(1)``, then lambda
      falls until ``eta lambda < 2`` and the loss converges (catapult); above ``4/lambda_0``
      both grow (divergence). ``lambda`` being proportional to ``|u|^2 + |v|^2``, the
      condition ``eta lambda_t < 4`` is also the condition for the weight norm to fall.
    * finite width: the loss grows at the first step iff ``|growth factor| > 1``, i.e.
      ``eta lambda_0 > 2 + eta^2 f_0^2 / n``; in ``w = eta lambda_0`` this is
      ``w > w_c = (1 - sqrt(1 - 8 a)) / (2 a)`` with ``a = f_0^2 / (n lambda_0^2)``,
      ``w_c = 2 + 4 a + O(a^2)``.

    Returns
    -------
    dict of str -> sympy.Expr
        ``growth``, ``growth_inf_width``, ``eta_lazy``, ``delta_lam``, ``eta_max``,
        ``lower_edge_finite_width`` (in ``a``), ``lower_edge_stable`` (the same root
        rationalized, ``4 / (1 + sqrt(1 - 8a))``), ``lower_edge_series``, ``lower`` (2),
        ``upper`` (4), both in units of ``1/lambda_0``, and the symbol ``a``.
    """
    upd = derive_uv_updates()
    growth = sp.expand(upd.f_next_simple / f_s)
    growth_inf = sp.limit(growth, n_s, sp.oo)
    # |1 - eta lam| = 1 at the edge of linear stability: the positive root eta > 0
    eta_lazy = [s for s in sp.solve(sp.Eq(growth_inf, -1), eta_s)][0]
    delta = upd.delta_lam_simple
    eta_max = [s for s in sp.solve(sp.Eq(delta / (eta_s * f_s**2 / n_s), 0), eta_s)][0]
    # finite width lower edge in w = eta * lam0: growth = 1 - w + w^2 a  with a = f0^2 / (n lam0^2)
    a = sp.Symbol("a", positive=True)
    growth_w = sp.expand(growth.subs(eta_s, w_s / lam_s).subs(f_s**2, a * n_s * lam_s**2))
    roots = sp.solve(sp.Eq(growth_w, -1), w_s)
    w_c = sorted(roots, key=lambda e: float(e.subs(a, sp.Rational(1, 100))))[0]
    # the same root without the cancellation 1 - sqrt(1 - 8a) at small a (rationalized)
    conj = 1 + sp.sqrt(1 - 8 * a)
    w_stable = sp.simplify(sp.expand(w_c * conj)) / conj
    if sp.simplify(w_stable - w_c) != 0:  # pragma: no cover - a sympy regression
        raise AssertionError("rationalized root differs from the root")
    return {
        "growth": growth,
        "growth_inf_width": growth_inf,
        "eta_lazy": eta_lazy,
        "delta_lam": delta,
        "eta_max": eta_max,
        "lower_edge_finite_width": sp.simplify(w_c),
        "lower_edge_stable": w_stable,
        "lower_edge_series": sp.series(w_c, a, 0, 3).removeO(),
        "lower": sp.simplify(eta_lazy * lam_s),
        "upper": sp.simplify(eta_max * lam_s),
        "a": a,
    }


def finite_width_lower_edge(f0, lam0, n) -> np.ndarray:
    """Finite-width lower edge ``w_c`` (in units of ``1/lambda_0``) of the uv model.

    Evaluates the sympy root of :func:`derive_uv_phases` (``lower_edge_finite_width``)
    at ``a = f_0^2 / (n lambda_0^2)``, element-wise.

    Parameters
    ----------
    f0, lam0 : array_like
        Initial output and NTK eigenvalue (``lam0 > 0``), broadcastable.
    n : int or array_like
        Width (> 0).

    Returns
    -------
    ndarray
        ``w_c``; NaN where ``a > 1/8`` (no real root: the loss never grows at step 1).

    Raises
    ------
    ValueError
        If ``lam0`` or ``n`` is not positive.
    """
    f0 = np.asarray(f0, dtype=np.float64)
    lam0 = np.asarray(lam0, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    if np.any(~(lam0 > 0)):
        raise ValueError("lam0: must be positive")
    if np.any(~(n > 0)):
        raise ValueError("n: must be positive")
    ph = derive_uv_phases()
    fn = sp.lambdify(ph["a"], ph["lower_edge_stable"], "numpy")
    a = f0**2 / (n * lam0**2)
    with np.errstate(invalid="ignore"):
        out = fn(np.minimum(a, 0.125))
    return np.where(a > 0.125, np.nan, out)


# ----------------------------------------------------------------------------------------
# Symbolic part: quadratic model of Meltzer, Chen & Liu
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QuadraticUpdates:
    """Exact one-step maps of the pure quadratic model ``z = zeta/2 theta^T psi theta``.

    Written with ``r = z - y`` (residual), ``Q = |theta|^2``,
    ``M_p = theta^T psi^p theta`` (so ``z = zeta M_1 / 2``, ``lambda = zeta^2 M_2``).

    Attributes
    ----------
    z_next, lam_next, norm_next : sympy.Expr
    moments_next : tuple of sympy.Expr
        ``M_p`` after the step for ``p = 0..2`` in terms of ``M_0..M_4``.
    """

    z_next: sp.Expr
    lam_next: sp.Expr
    norm_next: sp.Expr
    moments_next: Tuple[sp.Expr, ...]


@functools.lru_cache(maxsize=None)
def derive_quadratic_updates() -> QuadraticUpdates:
    """Derive the GD maps of the pure quadratic model (one example, loss ``(z - y)^2/2``).

    ``grad_theta z = zeta psi theta``, so ``theta' = (1 - eta r zeta psi) theta``. In the
    eigenbasis of ``psi`` (eigenvalue ``s``, coordinate ``t``) each mode is multiplied by
    ``1 - eta r zeta s``; a moment ``sum_i s_i^p t_i^2`` after the step is read off the
    per-mode polynomial in ``s`` (linearity over modes, no step by hand).

    Returns
    -------
    QuadraticUpdates
    """
    s, t = sp.symbols("s t", real=True)
    t1 = t * (1 - eta_s * r_s * zeta_s * s)

    def moment_after(p: int) -> sp.Expr:
        poly = sp.Poly(sp.expand(s**p * t1**2 / t**2), s)
        return sum(c * M[k] for (k,), c in poly.as_dict().items())

    m_next = tuple(sp.expand(moment_after(p)) for p in range(3))
    back = {M[0]: Q_s, M[1]: 2 * z_s / zeta_s, M[2]: lam_s / zeta_s**2}
    z_next = sp.expand(zeta_s / 2 * m_next[1]).subs(back)
    lam_next = sp.expand(zeta_s**2 * m_next[2]).subs(back)
    norm_next = sp.expand(m_next[0]).subs(back)
    return QuadraticUpdates(
        z_next=sp.collect(sp.expand(z_next), eta_s),
        lam_next=sp.collect(sp.expand(lam_next), eta_s),
        norm_next=sp.collect(sp.expand(norm_next), eta_s),
        moments_next=m_next,
    )


@functools.lru_cache(maxsize=None)
def derive_weight_norm_change() -> Dict[str, sp.Expr]:
    """Change of the squared weight norm in one step of the quadratic model.

    Returns
    -------
    dict
        ``exact``: ``|theta'|^2 - |theta|^2 = eta r (eta lambda r - 4 z)``;
        ``y0``: the same at ``y = 0`` (``r = z``): ``eta z^2 (eta lambda - 4)``;
        ``large_loss``: the coefficient of ``r^2`` (the leading term when
        ``|r| >> |y|``, with ``z = r + y``): ``eta (eta lambda - 4)``;
        ``eta_max``: the root in ``eta`` (``4/lambda``): the norm falls at large loss iff
        ``eta lambda_t < 4``.
    """
    q = derive_quadratic_updates()
    exact = sp.factor(q.norm_next - Q_s)
    y0 = sp.factor(exact.subs(r_s, z_s))
    in_r = sp.expand(exact.subs(z_s, r_s + y_s))
    lead = sp.factor(sp.Poly(in_r, r_s).coeff_monomial(r_s**2))
    eta_max = [e for e in sp.solve(sp.Eq(lead, 0), eta_s)][0]
    return {"exact": exact, "y0": y0, "large_loss": lead, "eta_max": eta_max, "expanded_in_r": in_r}


@functools.lru_cache(maxsize=None)
def derive_quadratic_range() -> Dict[str, sp.Expr]:
    """Guaranteed catapult range of the pure quadratic model (``y = 0``).

    With ``mu_max`` the top eigenvalue of ``psi^2``, ``lambda_t = zeta^2 theta^T psi^2 theta
    <= zeta^2 mu_max |theta_t|^2`` (Rayleigh quotient; the one step taken by hand, checked
    numerically in the tests). If ``eta zeta^2 mu_max |theta_0|^2 < 4`` then by
    :func:`derive_weight_norm_change` the norm falls at every step, so ``eta lambda_t < 4``
    for all ``t``; the decrease ``eta z_t^2 (4 - eta lambda_t)`` is summable, so ``z_t -> 0``:
    GD converges. With the linear growth for ``eta lambda_0 > 2`` this gives the catapult
    range ``2 < eta lambda_0 < 4 kappa_0``, ``kappa_0 = lambda_0 / (zeta^2 mu_max |theta_0|^2)
    <= 1``. For ``psi^2 = 1`` (eigenvalues +-1, the uv model) ``kappa_0 = 1``: the range is
    exactly ``(2, 4)``.

    Returns
    -------
    dict
        ``lower`` (2), ``kappa`` (in ``lambda, mu_max, Q``), ``upper`` (``4 kappa``),
        ``upper_unit`` (4, at ``psi^2 = 1``), ``mu_max`` (the symbol).
    """
    mu_max = sp.Symbol("mu_max", positive=True)
    q = derive_quadratic_updates()
    # linear growth factor of z at y = 0 to first order in z: 1 - eta lambda
    growth = sp.expand(q.z_next.subs(r_s, z_s) / z_s)
    growth_lin = growth.subs(z_s, 0)
    lower = sp.solve(sp.Eq(growth_lin, -1), eta_s)[0] * lam_s
    wn = derive_weight_norm_change()
    eta_norm = wn["eta_max"].subs(lam_s, zeta_s**2 * mu_max * Q_s)  # bound lambda by its maximum
    kappa = lam_s / (zeta_s**2 * mu_max * Q_s)
    upper = sp.simplify(eta_norm * lam_s)
    unit = sp.simplify(upper.subs(mu_max, 1).subs(lam_s, zeta_s**2 * Q_s))
    return {"lower": sp.simplify(lower), "kappa": kappa, "upper": upper, "upper_unit": unit, "mu_max": mu_max}


@functools.lru_cache(maxsize=None)
def derive_uv_quadratic_match() -> Dict[str, sp.Expr]:
    """The uv model is the pure quadratic model with ``psi = [[0, 1], [1, 0]]`` (``psi^2 = 1``).

    Then ``M_3 = M_1``, ``M_4 = M_2 = M_0`` and ``zeta = 1/sqrt(n)``: the quadratic maps
    reduce to the uv maps of :func:`derive_uv_updates` (``x = 1``, ``y = 0``).

    Returns
    -------
    dict
        ``z_diff``, ``lam_diff``: the differences quadratic minus uv, both simplifying to 0.
    """
    q = derive_quadratic_updates()
    uv = derive_uv_updates()
    unit = {M[3]: M[1], M[4]: M[2]}
    back = {M[0]: Q_s, M[1]: 2 * z_s / zeta_s, M[2]: lam_s / zeta_s**2}
    z_next = sp.expand(q.z_next.subs(unit).subs(back))
    lam_next = sp.expand(q.lam_next.subs(unit).subs(back))
    sub = {r_s: z_s, zeta_s: 1 / sp.sqrt(n_s)}
    to_uv = {f_s: z_s}
    z_diff = sp.simplify(z_next.subs(sub) - uv.f_next_simple.subs(to_uv))
    lam_diff = sp.simplify(lam_next.subs(sub) - uv.lam_next_simple.subs(to_uv))
    return {"z_diff": z_diff, "lam_diff": lam_diff, "z_next_unit": z_next, "lam_next_unit": lam_next}


# ----------------------------------------------------------------------------------------
# Numeric part: scalar-output models over a grid of eta * lambda_0
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PhaseSweep:
    """Runs of one model over ``eta * lambda_0`` x widths x seeds.

    Attributes
    ----------
    model : str
        ``"uv"``, ``"quadratic-unit"`` or ``"quadratic-spread"``.
    eta_lam0 : ndarray (E,)
        The grid of ``eta * lambda_0`` (sorted).
    widths : tuple of int (W,)
        ``n`` for the uv model, ``N`` (number of parameters) for the quadratic model.
    seeds : tuple of int (S,)
    steps : int
        Maximum number of GD steps.
    f0, lam0, loss0 : ndarray (W, S)
        Initial output, NTK eigenvalue, loss.
    kappa0 : ndarray (W, S)
        ``lambda_0 / (zeta^2 mu_max |theta_0|^2)`` (1 for the uv model).
    max_loss, final_loss, final_eta_lam : ndarray (W, E, S)
        Peak loss, last loss, ``eta * lambda_T`` (NaN after divergence).
    diverged : ndarray of bool (W, E, S)
    phase : ndarray of int (W, E, S)
        Codes of :data:`PHASES`.
    lower, upper : ndarray (W, S)
        Measured boundaries (midpoints between grid points, :func:`phase_boundaries`).
    steps_run : ndarray of int (W,)
        Steps actually run per width (the loop stops once every run has settled).
    """

    model: str
    eta_lam0: np.ndarray
    widths: Tuple[int, ...]
    seeds: Tuple[int, ...]
    steps: int
    f0: np.ndarray
    lam0: np.ndarray
    loss0: np.ndarray
    kappa0: np.ndarray
    max_loss: np.ndarray
    final_loss: np.ndarray
    final_eta_lam: np.ndarray
    diverged: np.ndarray
    phase: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    steps_run: np.ndarray


def _check_grid(eta_lam0) -> np.ndarray:
    try:
        g = np.asarray(eta_lam0, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"eta_lam0: expected a sequence of positive numbers, got {eta_lam0!r}") from exc
    if g.size == 0 or not np.all(np.isfinite(g)) or np.any(g <= 0):
        raise ValueError(f"eta_lam0: every value must be positive and finite, got {g}")
    if np.any(np.diff(g) <= 0):
        raise ValueError("eta_lam0: must be strictly increasing")
    return g


def _check_int(v, name: str, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {v!r}")
    return int(v)


def _check_seeds(seeds) -> Tuple[int, ...]:
    try:
        s = tuple(seeds)
    except TypeError as exc:
        raise ValueError(f"seeds: expected a sequence of non-negative integers, got {seeds!r}") from exc
    if not s:
        raise ValueError("seeds: expected at least one seed")
    for v in s:
        if isinstance(v, bool) or not isinstance(v, (numbers.Integral, np.integer)) or v < 0:
            raise ValueError(f"seeds: expected non-negative integers, got {v!r}")
    return tuple(int(v) for v in s)


def classify_runs(loss0, max_loss, final_loss, diverged, rtol: float = 1e-9) -> np.ndarray:
    """Phase of each run from its trajectory summary.

    * divergent: flagged diverged, or its loss never came back below the initial loss
      after growing (``final_loss >= loss0``);
    * lazy: the loss never exceeded ``loss0 * (1 + rtol)``;
    * catapult: the loss grew above ``loss0`` and came back below it.

    Parameters
    ----------
    loss0, max_loss, final_loss : array_like, broadcastable
    diverged : array_like of bool
    rtol : float
        Relative slack for "never grew" (round-off), >= 0.

    Returns
    -------
    ndarray of int8
        Codes of :data:`PHASES`.
    """
    if not (isinstance(rtol, numbers.Real) and math.isfinite(rtol) and rtol >= 0):
        raise ValueError(f"rtol: expected a finite number >= 0, got {rtol!r}")
    loss0, max_loss, final_loss = (np.asarray(a, dtype=np.float64) for a in (loss0, max_loss, final_loss))
    diverged = np.asarray(diverged, dtype=bool)
    grew = ~(max_loss <= loss0 * (1.0 + rtol))
    back = final_loss < loss0
    out = np.full(np.broadcast(loss0, max_loss, final_loss, diverged).shape, CATAPULT, dtype=np.int8)
    out[~grew] = LAZY
    out[diverged | (grew & ~back)] = DIVERGENT
    return out


def phase_boundaries(eta_lam0, phase: np.ndarray, axis: int = -1) -> Tuple[np.ndarray, np.ndarray]:
    """Lower and upper phase boundaries along the grid axis.

    ``lower``: midpoint between the first non-lazy grid point and the point before it;
    ``upper``: midpoint between the first divergent point and the point before it.
    NaN where the boundary is not bracketed by the grid.

    Parameters
    ----------
    eta_lam0 : array_like (E,)
    phase : ndarray with an axis of length E
    axis : int
        The grid axis of ``phase``.

    Returns
    -------
    (lower, upper) : ndarrays with ``axis`` removed
    """
    g = _check_grid(eta_lam0)
    ph = np.moveaxis(np.asarray(phase), axis, -1)
    if ph.shape[-1] != g.size:
        raise ValueError(f"phase: grid axis has length {ph.shape[-1]}, expected {g.size}")

    def edge(mask):
        has = mask.any(-1)
        i = np.argmax(mask, axis=-1)
        ok = has & (i > 0)
        mid = np.where(ok, 0.5 * (g[np.maximum(i - 1, 0)] + g[i]), np.nan)
        return mid

    return edge(ph != LAZY), edge(ph == DIVERGENT)


def _frozen(a) -> np.ndarray:
    """A read-only copy: memoized results are shared between claims and figures."""
    a = np.array(a)
    a.setflags(write=False)
    return a


def _finish_sweep(model, grid, widths, seeds, steps, per_width) -> PhaseSweep:
    keys = ("f0", "lam0", "loss0", "kappa0", "max_loss", "final_loss", "final_eta_lam", "diverged", "steps_run")
    arr = {k: np.stack([pw[k] for pw in per_width]) for k in keys}
    phase = classify_runs(arr["loss0"][:, None, :], arr["max_loss"], arr["final_loss"], arr["diverged"])
    lower, upper = phase_boundaries(grid, phase, axis=1)
    arr = {k: _frozen(v) for k, v in arr.items()}
    return PhaseSweep(model=model, eta_lam0=_frozen(grid), widths=tuple(widths), seeds=tuple(seeds),
                      steps=int(steps), phase=_frozen(phase), lower=_frozen(lower), upper=_frozen(upper), **arr)


def _run_scalar_model(out_fn, update_fn, lam_fn, state, eta, n_eff, steps, div_g, settle=1e-2, min_steps=20):
    """Shared GD loop for the scalar-output models.

    ``out_fn(state) -> f (E, S)``, ``update_fn(state, coef) -> state`` with
    ``coef = eta * (f - 0)`` (zero for frozen runs), ``lam_fn(state) -> lambda (E, S)``.
    Stops early once every run is settled: diverged, or its loss is below
    ``settle * loss0`` (converged, whichever phase), or it never grew (lazy) and has
    run ``min_steps`` steps with a shrinking loss.
    Returns ``(loss0, max_loss, final_loss, final_eta_lam, diverged, steps_run)``.
    """
    f = out_fn(state)
    loss = 0.5 * f * f
    loss0 = loss.clone()
    max_loss = loss.clone()
    diverged = torch.zeros_like(loss, dtype=torch.bool)
    zero = torch.zeros_like(eta)
    t = 0
    for t in range(1, steps + 1):
        coef = torch.where(diverged, zero, eta * f)
        state = update_fn(state, coef)
        f = out_fn(state)
        new = 0.5 * f * f
        # divergence in the width-free variable g = eta^2 f^2 / n
        bad = ~torch.isfinite(new) | (eta * eta * f * f / n_eff > div_g)
        bad &= ~diverged
        diverged |= bad
        loss = torch.where(diverged, loss, new)
        max_loss = torch.maximum(max_loss, torch.where(bad, torch.full_like(loss, math.inf), loss))
        if t >= min_steps and t % 10 == 0:
            grew = max_loss > loss0
            settled = diverged | (loss < settle * loss0) | (~grew & (loss < loss0))
            if bool(settled.all()):
                break
    lam = lam_fn(state)
    nan = torch.full_like(loss, math.nan)
    final_loss = torch.where(diverged, nan, loss)
    final_w = torch.where(diverged, nan, eta * lam)
    max_loss = torch.where(diverged, torch.full_like(loss, math.inf), max_loss)
    return loss0, max_loss, final_loss, final_w, diverged, t


def simulate_uv(eta_lam0, widths: Sequence[int], seeds: Sequence[int], steps: int, *,
                device: DeviceLike = None, div_g: float = 1e6) -> PhaseSweep:
    """GD on the uv model ``f = v^T u / sqrt(n)`` (x = 1, y = 0) over a grid of ``eta * lambda_0``.

    ``u, v ~ N(0, 1)^n`` per seed (the same draw for every ``eta``), ``eta = w / lambda_0``
    per run, full vectors simulated (the closed-form maps are never used). All
    ``E x S`` runs of one width are one batched computation. A run is frozen as
    diverged when ``eta^2 f^2 / n > div_g`` or the loss is not finite.

    Parameters
    ----------
    eta_lam0 : array_like (E,)
        Strictly increasing positive grid of ``w = eta * lambda_0``.
    widths : sequence of int
        Widths ``n >= 1``.
    seeds : sequence of int
    steps : int
        GD steps (>= 1).
    device : str, torch.device or None
    div_g : float
        Divergence threshold on ``eta^2 f^2 / n`` (> 0).

    Returns
    -------
    PhaseSweep

    Raises
    ------
    ValueError
        On a bad grid, width, seed, step count or threshold.

    Example
    -------
    >>> sw = simulate_uv([1.0, 3.0, 5.0], [64], [0], 300, device="cpu")
    >>> [PHASES[int(p)] for p in sw.phase[0, :, 0]]
    ['lazy', 'catapult', 'divergent']
    """
    grid = _check_grid(eta_lam0)
    widths = [_check_int(w, "widths") for w in widths]
    if not widths:
        raise ValueError("widths: expected at least one width")
    seeds = _check_seeds(seeds)
    steps = _check_int(steps, "steps")
    if not (isinstance(div_g, numbers.Real) and div_g > 0):
        raise ValueError(f"div_g: expected a positive number, got {div_g!r}")
    dev = resolve_device(device)
    dt = torch.float64
    wt = torch.as_tensor(grid, dtype=dt, device=dev)
    per_width = []
    for n in widths:
        gens = [make_generator(1000 * s + 1, "cpu") for s in seeds]
        u0 = torch.stack([torch.randn(n, generator=g, dtype=dt) for g in gens]).to(dev)
        v0 = torch.stack([torch.randn(n, generator=g, dtype=dt) for g in gens]).to(dev)
        sq = math.sqrt(n)
        f0 = (u0 * v0).sum(-1) / sq
        lam0 = (u0.pow(2) + v0.pow(2)).sum(-1) / n
        eta = wt[:, None] / lam0[None, :]  # (E, S)
        E, S = eta.shape
        state = (u0.unsqueeze(0).expand(E, S, n).clone(), v0.unsqueeze(0).expand(E, S, n).clone())

        def out_fn(st):
            return (st[0] * st[1]).sum(-1) / sq

        def update_fn(st, coef):
            c = (coef / sq).unsqueeze(-1)  # dL/du = (f - y) x v / sqrt(n), y = 0, x = 1
            u, v = st
            return (torch.addcmul(u, c, v, value=-1.0), torch.addcmul(v, c, u, value=-1.0))

        def lam_fn(st):
            return (st[0].pow(2) + st[1].pow(2)).sum(-1) / n

        l0, mx, fl, fw, dv, ran = _run_scalar_model(out_fn, update_fn, lam_fn, state, eta, n, steps, div_g)
        per_width.append({
            "f0": f0.cpu().numpy(), "lam0": lam0.cpu().numpy(), "loss0": l0[0].cpu().numpy(), "steps_run": ran,
            "kappa0": np.ones(len(seeds)), "max_loss": mx.cpu().numpy(), "final_loss": fl.cpu().numpy(),
            "final_eta_lam": fw.cpu().numpy(), "diverged": dv.cpu().numpy(),
        })
    return _finish_sweep("uv", grid, widths, seeds, steps, per_width)


def _quadratic_spectrum(N: int, spectrum: Tuple[float, float], gen: torch.Generator) -> torch.Tensor:
    lo, hi = spectrum
    half = N // 2
    s = lo + (hi - lo) * torch.rand(half, generator=gen, dtype=torch.float64)
    return torch.cat([s, -s])


def simulate_quadratic(eta_lam0, widths: Sequence[int], seeds: Sequence[int], steps: int, *,
                       spectrum: Tuple[float, float] = (1.0, 1.0), device: DeviceLike = None,
                       div_g: float = 1e6) -> PhaseSweep:
    """GD on the pure quadratic model ``z = zeta/2 theta^T psi theta`` (x = 1, y = 0).

    As in Meltzer, Chen & Liu: ``theta ~ N(0, 1)^N``, ``zeta = (N/2)^(-1/2)``, ``psi``
    symmetric with eigenvalues ``+-s_i`` in pairs, ``s_i ~ U(spectrum)``
    (``(1, 1)``: the paper's default, ``psi^2 = 1``). GD is equivariant under rotations
    and ``theta_0`` is isotropic, so the runs are done in the eigenbasis of ``psi``
    (``psi`` diagonal); the tests check this against a dense rotated ``psi``.

    Parameters
    ----------
    eta_lam0, widths, seeds, steps, device, div_g : as in :func:`simulate_uv`
        ``widths`` are the parameter counts ``N`` (even, >= 2).
    spectrum : (float, float)
        ``0 < lo <= hi``: range of the moduli ``s_i``.

    Returns
    -------
    PhaseSweep
        ``model`` is ``"quadratic-unit"`` when ``lo == hi == 1`` else ``"quadratic-spread"``.
    """
    grid = _check_grid(eta_lam0)
    widths = [_check_int(w, "widths", 2) for w in widths]
    if not widths:
        raise ValueError("widths: expected at least one width")
    if any(w % 2 for w in widths):
        raise ValueError(f"widths: the quadratic model needs even N (eigenvalues in +- pairs), got {widths}")
    seeds = _check_seeds(seeds)
    steps = _check_int(steps, "steps")
    try:
        lo, hi = (float(v) for v in spectrum)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"spectrum: expected (lo, hi), got {spectrum!r}") from exc
    if not (0 < lo <= hi and math.isfinite(hi)):
        raise ValueError(f"spectrum: expected 0 < lo <= hi < inf, got {spectrum!r}")
    if not (isinstance(div_g, numbers.Real) and div_g > 0):
        raise ValueError(f"div_g: expected a positive number, got {div_g!r}")
    dev = resolve_device(device)
    dt = torch.float64
    wt = torch.as_tensor(grid, dtype=dt, device=dev)
    per_width = []
    for N in widths:
        gens = [make_generator(1000 * s + 2, "cpu") for s in seeds]
        svals = torch.stack([_quadratic_spectrum(N, (lo, hi), g) for g in gens]).to(dev)  # (S, N)
        th0 = torch.stack([torch.randn(N, generator=g, dtype=dt) for g in gens]).to(dev)
        zeta = (N / 2.0) ** -0.5
        z0 = 0.5 * zeta * (svals * th0.pow(2)).sum(-1)
        lam0 = zeta**2 * (svals.pow(2) * th0.pow(2)).sum(-1)
        kappa0 = lam0 / (zeta**2 * svals.pow(2).max(-1).values * th0.pow(2).sum(-1))
        eta = wt[:, None] / lam0[None, :]
        E, S = eta.shape
        state = th0.unsqueeze(0).expand(E, S, N).clone()
        sv = svals.unsqueeze(0)

        def out_fn(th):
            return 0.5 * zeta * (sv * th * th).sum(-1)

        def update_fn(th, coef):
            return th * (1.0 - (coef * zeta).unsqueeze(-1) * sv)  # grad = (z - y) zeta psi theta

        def lam_fn(th):
            return zeta**2 * (sv.pow(2) * th.pow(2)).sum(-1)

        # width-free divergence variable: eta^2 z^2 zeta^2
        l0, mx, fl, fw, dv, ran = _run_scalar_model(out_fn, update_fn, lam_fn, state, eta, 1.0 / zeta**2, steps,
                                                    div_g)
        per_width.append({
            "f0": z0.cpu().numpy(), "lam0": lam0.cpu().numpy(), "loss0": l0[0].cpu().numpy(), "steps_run": ran,
            "kappa0": kappa0.cpu().numpy(), "max_loss": mx.cpu().numpy(), "final_loss": fl.cpu().numpy(),
            "final_eta_lam": fw.cpu().numpy(), "diverged": dv.cpu().numpy(),
        })
    model = "quadratic-unit" if lo == hi == 1.0 else "quadratic-spread"
    return _finish_sweep(model, grid, widths, seeds, steps, per_width)


@dataclass(frozen=True)
class Trajectories:
    """Loss and ``eta * lambda_t`` along GD for a few values of ``eta * lambda_0``.

    Attributes
    ----------
    eta_lam0 : ndarray (E,)
    loss : ndarray (T + 1, E)
        NaN after divergence.
    eta_lam : ndarray (T + 1, E)
    width : int
    seed : int
    """

    eta_lam0: np.ndarray
    loss: np.ndarray
    eta_lam: np.ndarray
    width: int
    seed: int


def uv_trajectories(eta_lam0, width: int, seed: int, steps: int, *, device: DeviceLike = None,
                    div_g: float = 1e6) -> Trajectories:
    """Full trajectories of the uv model (x = 1, y = 0) for a few ``eta * lambda_0``.

    Parameters
    ----------
    eta_lam0 : array_like (E,), strictly increasing
    width : int
    seed : int
    steps : int
    device : str, torch.device or None
    div_g : float
        As in :func:`simulate_uv`.

    Returns
    -------
    Trajectories
    """
    grid = _check_grid(eta_lam0)
    n = _check_int(width, "width")
    seed = _check_seeds([seed])[0]
    steps = _check_int(steps, "steps")
    dev = resolve_device(device)
    dt = torch.float64
    g = make_generator(1000 * seed + 1, "cpu")
    u = torch.randn(n, generator=g, dtype=dt)
    v = torch.randn(n, generator=g, dtype=dt)
    u, v = u.to(dev).expand(grid.size, n).clone(), v.to(dev).expand(grid.size, n).clone()
    sq = math.sqrt(n)
    lam0 = (u[0].pow(2) + v[0].pow(2)).sum() / n
    eta = torch.as_tensor(grid, dtype=dt, device=dev) / lam0
    losses, lams = [], []
    alive = torch.ones(grid.size, dtype=torch.bool, device=dev)
    for t in range(steps + 1):
        f = (u * v).sum(-1) / sq
        lam = (u.pow(2) + v.pow(2)).sum(-1) / n
        loss = 0.5 * f.pow(2)
        alive &= torch.isfinite(loss) & (eta.pow(2) * f.pow(2) / n <= div_g)
        nan = torch.full_like(loss, math.nan)
        losses.append(torch.where(alive, loss, nan))
        lams.append(torch.where(alive, eta * lam, nan))
        if t == steps:
            break
        c = torch.where(alive, eta * f / sq, torch.zeros_like(f)).unsqueeze(-1)
        u, v = u - c * v, v - c * u
    return Trajectories(_frozen(grid), _frozen(torch.stack(losses).cpu().numpy()),
                        _frozen(torch.stack(lams).cpu().numpy()), n, seed)


# ----------------------------------------------------------------------------------------
# Numeric part: ReLU MLPs in NTK parametrization on digits
# ----------------------------------------------------------------------------------------
def ntk_top_eigenvalue(spec, params: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Top eigenvalue of the empirical NTK ``Theta / N`` of K scalar-output core MLPs.

    ``Theta(x, x') = sum_l c_l m_l^2 (delta_l(x).delta_l(x')) (h_{l-1}(x).h_{l-1}(x'))``
    with ``delta_l = df/dz_l``, ``h_{l-1}`` the layer input, ``m_l`` the forward
    multiplier and ``c_l`` the LR multiplier of layer ``l`` (weights only, no bias or
    norm): the kernel GD with learning rate ``eta`` sees, so that
    ``f' - f = -eta (Theta / N) (f - y)`` to first order for the loss ``1/(2N) sum (f-y)^2``.

    Parameters
    ----------
    spec : lrtheory.core.mlp.MLPSpec
        ``d_out == 1``, no bias, no norm.
    params : list of Tensor
        Leading axis K.
    x : Tensor ``(N, d_in)``

    Returns
    -------
    Tensor ``(K,)``

    Raises
    ------
    ValueError
        If the spec has a bias, a norm layer or ``d_out != 1``.
    """
    from lrtheory.core.mlp import forward, forward_multipliers, lr_multipliers, param_layers

    if spec.d_out != 1 or spec.bias or spec.norm is not None:
        raise ValueError("spec: ntk_top_eigenvalue needs d_out == 1, bias=False and norm=None")
    ps = [p.detach().clone().requires_grad_(True) for p in params]
    out, pre = forward(spec, ps, x, return_preacts=True)
    deltas = torch.autograd.grad(out.sum(), pre) if pre else ()
    mults = forward_multipliers(spec)
    lrm = lr_multipliers(spec)
    layer_of = param_layers(spec)
    c = {layer_of[i]: lrm[i] for i in range(len(ps))}
    K, N = out.shape[0], x.shape[0]
    theta = torch.zeros(K, N, N, dtype=x.dtype, device=x.device)
    for l in range(spec.n_layers):
        h = x.unsqueeze(0).expand(K, N, x.shape[1]) if l == 0 else torch.relu(pre[l - 1]).detach()
        hh = torch.bmm(h, h.transpose(1, 2))
        if l < spec.depth:
            d = deltas[l].detach()
            dd = torch.bmm(d, d.transpose(1, 2))
        else:
            dd = torch.ones(K, N, N, dtype=x.dtype, device=x.device)
        theta += c[l] * mults[l] ** 2 * dd * hh
    return torch.linalg.eigvalsh(theta / N)[:, -1].detach()


@dataclass(frozen=True)
class CatapultRange:
    """The learning-rate phases of a model at its current parameters, from its NTK.

    Attributes
    ----------
    lam0 : float
        Top eigenvalue of the empirical NTK divided by the number of examples
        (``Theta / N``): the sharpness of the 1/2-MSE loss near a minimum, and
        Lewkowycz et al.'s ``lambda_0``.
    lazy_max : float
        ``2 / lam0``: below it GD on the linearised model converges monotonically (lazy phase).
    catapult_max : float
        ``4 / lam0``: the uv model's divergence edge; between ``lazy_max`` and this the
        loss first grows, the NTK's top eigenvalue falls, then training converges.
    relu_literature_max : float
        ``12 / lam0``: the edge Lewkowycz et al. report for deep ReLU nets (an empirical
        value, not derived; chapter 02 measures where it lies at CI scale).
    """

    lam0: float
    lazy_max: float
    catapult_max: float
    relu_literature_max: float

    def phase(self, eta: float) -> str:
        """"lazy", "catapult" or "divergent" as the uv model predicts for learning rate ``eta``."""
        eta = _check_positive_lr(eta)
        if eta < self.lazy_max:
            return "lazy"
        return "catapult" if eta < self.catapult_max else "divergent"


def _check_positive_lr(eta) -> float:
    if isinstance(eta, bool) or not isinstance(eta, numbers.Real) or not math.isfinite(eta) or eta <= 0:
        raise ValueError(f"eta: expected a finite learning rate > 0, got {eta!r}")
    return float(eta)


def catapult_range(model: torch.nn.Module, inputs: torch.Tensor) -> CatapultRange:
    """Catapult range of any ``torch.nn.Module`` for full-batch GD on the 1/2-MSE loss.

    Builds the empirical NTK Gram matrix ``Theta = J J^T`` on ``inputs`` from
    per-example Jacobians (``torch.func.vmap(jacrev)`` over the trainable parameters,
    so the cost is ``N * d_out`` Jacobian rows of the parameter count: meant for the
    small batches the catapult analysis is about), and returns the phase edges
    ``2 / lambda_0`` and ``4 / lambda_0`` with ``lambda_0`` the top eigenvalue of
    ``Theta / N`` (the normalisation of Lewkowycz et al. 2020).

    Parameters
    ----------
    model : torch.nn.Module
        Any module mapping ``(N, ...)`` to ``(N,)`` or ``(N, d_out)``. Layers whose output
        for one example depends on the others (BatchNorm in training mode) are not
        supported: call ``model.eval()`` first.
    inputs : Tensor ``(N, ...)``
        The training batch, ``N >= 1``, finite.

    Returns
    -------
    CatapultRange

    Raises
    ------
    ValueError
        If ``model`` is not a module or has no trainable parameters, or ``inputs`` is empty
        or not finite, or the NTK is not finite.

    Example
    -------
    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1)).double()
    >>> x = torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> r = catapult_range(net, x)
    >>> r.catapult_max == 2 * r.lazy_max
    True
    >>> r.phase(3.0 / r.lam0)
    'catapult'
    """
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(inputs, torch.Tensor) or inputs.dim() < 1 or inputs.shape[0] < 1:
        raise ValueError("inputs: expected a tensor of shape (N, ...) with N >= 1")
    if not torch.isfinite(inputs).all():
        raise ValueError("inputs: contains NaN or Inf")
    params = {k: v.detach() for k, v in model.named_parameters() if v.requires_grad}
    if not params:
        raise ValueError("model: has no trainable parameters")
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def f_single(p, x):
        return torch.func.functional_call(model, (p, buffers), (x.unsqueeze(0),)).reshape(-1)

    jac = torch.func.vmap(torch.func.jacrev(f_single), in_dims=(None, 0))(params, inputs)
    N = inputs.shape[0]
    J = torch.cat([j.reshape(j.shape[0] * j.shape[1], -1) for j in jac.values()], dim=1)  # (N d_out, P)
    gram = (J @ J.T) / N
    if not torch.isfinite(gram).all():
        raise ValueError("model: the NTK at these parameters is not finite")
    lam0 = float(torch.linalg.eigvalsh(gram)[-1])
    return CatapultRange(lam0=lam0, lazy_max=2.0 / lam0, catapult_max=4.0 / lam0,
                         relu_literature_max=12.0 / lam0)


@dataclass(frozen=True)
class ReluSweep:
    """GD runs of one ReLU MLP architecture (NTK parametrization) on digits over ``eta * lambda_0``.

    Attributes
    ----------
    depth : int
        Number of hidden layers (1: the two-layer net).
    width : int
    n_train : int
    steps : int
    eta_lam0 : ndarray (E,)
    seeds : tuple of int (S,)
    lam0 : ndarray (S,)
        Top NTK eigenvalue at init, normalised by ``n_train``.
    loss0, max_loss, final_loss : ndarray (E, S)
        ``max_loss`` inf and ``final_loss`` NaN for diverged runs.
    diverged : ndarray of bool (E, S)
    active : ndarray (E, S, depth)
        Fraction of positive pre-activations of each hidden layer on the training inputs
        after training (one minus the sparsity of Meltzer et al.); NaN for diverged runs.
    active0 : ndarray (S, depth)
        The same at initialization.
    upper : ndarray (S,)
        Midpoint between the first diverging grid point and the one before it.
    """

    depth: int
    width: int
    n_train: int
    steps: int
    eta_lam0: np.ndarray
    seeds: Tuple[int, ...]
    lam0: np.ndarray
    loss0: np.ndarray
    max_loss: np.ndarray
    final_loss: np.ndarray
    diverged: np.ndarray
    active: np.ndarray
    active0: np.ndarray
    upper: np.ndarray


def _digits_binary(n_train: int, device) -> Tuple[torch.Tensor, torch.Tensor]:
    """Digits subset (:func:`lrtheory.core.data.digits`, standardized pixels), each input
    rescaled to ``|x|^2 = d``; target ``+1`` for even digits and ``-1`` for odd ones
    (one scalar output, as in the uv analysis)."""
    from lrtheory.core.data import digits

    ds = digits(seed=0, n_train=n_train, device=device)
    x, lab = ds.x_train, ds.y_train
    x = x / x.norm(dim=1, keepdim=True) * math.sqrt(x.shape[1])
    y = torch.where(lab % 2 == 0, 1.0, -1.0).to(torch.float64)
    return x, y


def relu_sweep(eta_lam0, depth: int, width: int, seeds: Sequence[int], steps: int, *,
               n_train: int = 32, device: DeviceLike = None, divergence_factor: float = 1e12) -> ReluSweep:
    """Train ReLU MLPs (NTK parametrization, no bias) with full-batch GD on digits.

    The ``E x S`` models (grid of ``eta * lambda_0`` x init seeds) are trained at once
    with :func:`lrtheory.core.train.train` on the MSE loss ``1/(2N) sum (f - y)^2``,
    ``eta = w / lambda_0`` per seed with ``lambda_0`` from :func:`ntk_top_eigenvalue`.
    A run whose loss exceeds ``divergence_factor * max(L_0, 1)`` or turns non-finite is
    frozen as diverged (the catapult peak grows with the width, so the factor is large).

    Parameters
    ----------
    eta_lam0 : array_like (E,)
        Strictly increasing grid of ``eta * lambda_0``.
    depth : int
        Number of hidden layers (>= 1).
    width : int
    seeds : sequence of int
    steps : int
    n_train : int
        Training examples (full batch), 2..1347.
    device : str, torch.device or None
    divergence_factor : float > 1

    Returns
    -------
    ReluSweep

    Raises
    ------
    ValueError
        On a bad grid, depth, width, seed, step count or factor.
    """
    from lrtheory.core.mlp import MLPSpec, forward, init_params
    from lrtheory.core.train import train

    grid = _check_grid(eta_lam0)
    depth = _check_int(depth, "depth")
    width = _check_int(width, "width")
    seeds = _check_seeds(seeds)
    steps = _check_int(steps, "steps")
    n_train = _check_int(n_train, "n_train", 2)
    if not (isinstance(divergence_factor, numbers.Real) and divergence_factor > 1):
        raise ValueError(f"divergence_factor: expected a number > 1, got {divergence_factor!r}")
    dev = resolve_device(device)
    x, y = _digits_binary(n_train, dev)
    E, S = grid.size, len(seeds)
    spec = MLPSpec(d_in=x.shape[1], width=width, depth=depth, d_out=1, parametrization="ntk")
    inits = [init_params(spec, 1, seed=s, device=dev) for s in seeds]
    p0 = [torch.cat(ts) for ts in zip(*inits)]  # (S, ...)
    lam0 = ntk_top_eigenvalue(spec, p0, x)  # (S,)
    params = [p.unsqueeze(0).expand(E, *p.shape).reshape(E * S, *p.shape[1:]).clone() for p in p0]
    etas = (torch.as_tensor(grid, dtype=torch.float64, device=dev)[:, None] / lam0[None, :]).reshape(-1)
    peak = {"v": None}

    def callback(step, ps, loss, active):
        cur = torch.where(active, loss, torch.full_like(loss, -math.inf))
        peak["v"] = cur if peak["v"] is None else torch.maximum(peak["v"], cur)

    res = train(spec, params, x, y, etas.cpu().numpy(), steps, record_every=steps,
                divergence_factor=divergence_factor, callback=callback)
    dv = np.asarray(res.diverged, dtype=bool)
    with torch.no_grad():
        _, z_end = forward(spec, res.params, x, return_preacts=True)
        _, z_0 = forward(spec, p0, x, return_preacts=True)
    act = torch.stack([(z > 0).to(torch.float64).mean(dim=(-1, -2)) for z in z_end], -1).cpu().numpy()
    act = np.where(dv[:, None], np.nan, act)
    act0 = torch.stack([(z > 0).to(torch.float64).mean(dim=(-1, -2)) for z in z_0], -1).cpu().numpy()
    hist = res.history["loss"]
    final = np.where(dv, np.nan, hist[-1])
    mx = np.where(dv, np.inf, np.maximum(peak["v"].cpu().numpy(), hist[-1]))
    phase = np.where(dv.reshape(E, S), DIVERGENT, CATAPULT)
    _, upper = phase_boundaries(grid, phase, axis=0)
    return ReluSweep(depth=depth, width=width, n_train=n_train, steps=steps, eta_lam0=_frozen(grid), seeds=seeds,
                     lam0=_frozen(lam0.detach().cpu().numpy()), loss0=_frozen(hist[0].reshape(E, S)),
                     max_loss=_frozen(mx.reshape(E, S)), final_loss=_frozen(final.reshape(E, S)),
                     diverged=_frozen(dv.reshape(E, S)), active=_frozen(act.reshape(E, S, depth)),
                     active0=_frozen(act0), upper=_frozen(upper))


def trained_edge(sweep: ReluSweep, rel: float = 1e-2) -> np.ndarray:
    """Edge of *training* (not only of divergence): per seed, the midpoint between the first
    grid point whose final loss is not below ``rel * loss0`` (diverged, stalled or dead) and
    the point before it.

    Parameters
    ----------
    sweep : ReluSweep
    rel : float in (0, 1)

    Returns
    -------
    ndarray (S,)
    """
    if not isinstance(sweep, ReluSweep):
        raise ValueError(f"sweep: expected a ReluSweep, got {type(sweep).__name__}")
    if not (isinstance(rel, numbers.Real) and 0 < rel < 1):
        raise ValueError(f"rel: expected a number in (0, 1), got {rel!r}")
    trained = np.isfinite(sweep.final_loss) & (sweep.final_loss < rel * sweep.loss0)
    _, edge = phase_boundaries(sweep.eta_lam0, np.where(trained, CATAPULT, DIVERGENT), axis=0)
    return edge


def sparsity_trend(sweep: ReluSweep, min_eta_lam0: float = 2.0, layer: Optional[int] = None) -> np.ndarray:
    """Spearman rank correlation between ``eta * lambda_0`` and the active fraction, per seed.

    Over the non-diverged runs with ``eta * lambda_0 >= min_eta_lam0`` (the super-critical
    range; below 2 the weights barely move), the active fraction (averaged over the hidden
    layers, or of one ``layer``) is ranked against ``eta * lambda_0``.

    Parameters
    ----------
    sweep : ReluSweep
    min_eta_lam0 : float
    layer : int or None
        Hidden layer index ``0 .. depth-1``; None averages over layers.

    Returns
    -------
    ndarray (S,)
        Spearman rho; NaN where fewer than 4 runs qualify.

    Raises
    ------
    ValueError
        If ``sweep`` is not a :class:`ReluSweep` or ``min_eta_lam0`` is not finite.
    """
    if not isinstance(sweep, ReluSweep):
        raise ValueError(f"sweep: expected a ReluSweep, got {type(sweep).__name__}")
    if not (isinstance(min_eta_lam0, numbers.Real) and math.isfinite(min_eta_lam0)):
        raise ValueError(f"min_eta_lam0: expected a finite number, got {min_eta_lam0!r}")
    if layer is None:
        a = sweep.active.mean(-1)  # (E, S), NaN if diverged
    elif isinstance(layer, numbers.Integral) and 0 <= layer < sweep.depth:
        a = sweep.active[:, :, int(layer)]
    else:
        raise ValueError(f"layer: expected None or an index in [0, {sweep.depth}), got {layer!r}")
    rho = np.full(len(sweep.seeds), np.nan)
    for j in range(len(sweep.seeds)):
        keep = (sweep.eta_lam0 >= min_eta_lam0) & np.isfinite(a[:, j])
        if keep.sum() >= 4:
            rho[j] = stats.spearmanr(sweep.eta_lam0[keep], a[keep, j]).statistic
    return rho


# ----------------------------------------------------------------------------------------
# Scales and memoized measurements
# ----------------------------------------------------------------------------------------
_CONFIG = {
    "ci": {
        "uv": {"grid": (1.5, 4.5, 0.01), "widths": (16, 64, 256, 1024), "seeds": tuple(range(8)), "steps": 3000},
        "quadratic": {"grid": (1.5, 5.0, 0.02), "widths": (32, 128, 512), "seeds": (0, 1, 2, 3), "steps": 3000,
                      "spread": (0.8, 1.2)},
        "relu": {"depths": (1, 2), "grids": {1: (1.0, 6.0, 0.25), 2: (1.0, 20.0, 1.0)}, "width": 128,
                 "seeds": (0, 1, 2), "steps": 200, "n_train": 32},
        "traj": {"eta_lam0": (1.5, 3.0, 4.2), "width": 1024, "seed": 0, "steps": 120},
    },
    "full": {
        "uv": {"grid": (1.5, 4.5, 0.0025), "widths": (16, 64, 256, 1024, 4096, 16384),
               "seeds": tuple(range(16)), "steps": 10000},
        "quadratic": {"grid": (1.5, 5.0, 0.005), "widths": (32, 128, 512, 2048, 8192), "seeds": tuple(range(16)),
                      "steps": 10000, "spread": (0.8, 1.2)},
        "relu": {"depths": (1, 2, 3), "grids": {1: (1.0, 8.0, 0.05), 2: (1.0, 24.0, 0.25), 3: (1.0, 24.0, 0.25)},
                 "width": 512, "seeds": tuple(range(6)), "steps": 2000, "n_train": 256},
        "traj": {"eta_lam0": (1.5, 3.0, 4.2), "width": 4096, "seed": 0, "steps": 200},
    },
}


def config(scale: str) -> dict:
    """The settings of each measurement at ``scale`` ("ci" or "full")."""
    check_scale(scale)
    return _CONFIG[scale]


def _grid(spec) -> np.ndarray:
    lo, hi, step = spec
    return np.round(np.arange(lo, hi + step / 2, step), 10)


@stored_measurement("catapult")
def measure_uv_sweep(scale: str = "ci", device: DeviceLike = None) -> PhaseSweep:
    """uv sweep at ``scale`` (memoized per scale and resolved device)."""
    check_scale(scale)
    return _uv_sweep_cached(scale, resolve_device(device))


@functools.lru_cache(maxsize=None)
def _uv_sweep_cached(scale: str, device: torch.device) -> PhaseSweep:
    c = config(scale)["uv"]
    return simulate_uv(_grid(c["grid"]), c["widths"], c["seeds"], c["steps"], device=device)


@stored_measurement("catapult")
def measure_quadratic_sweep(scale: str = "ci", device: DeviceLike = None) -> Tuple[PhaseSweep, PhaseSweep]:
    """Quadratic-model sweeps at ``scale``: (``psi^2 = 1``, spread spectrum), memoized."""
    check_scale(scale)
    return _quadratic_sweep_cached(scale, resolve_device(device))


@functools.lru_cache(maxsize=None)
def _quadratic_sweep_cached(scale: str, device: torch.device) -> Tuple[PhaseSweep, PhaseSweep]:
    c = config(scale)["quadratic"]
    g = _grid(c["grid"])
    unit = simulate_quadratic(g, c["widths"], c["seeds"], c["steps"], spectrum=(1.0, 1.0), device=device)
    spread = simulate_quadratic(g, c["widths"], c["seeds"], c["steps"], spectrum=c["spread"], device=device)
    return unit, spread


@stored_measurement("catapult")
def measure_relu_sweep(scale: str = "ci", device: DeviceLike = None) -> Tuple[ReluSweep, ...]:
    """ReLU sweeps at ``scale``, one per depth (memoized)."""
    check_scale(scale)
    return _relu_sweep_cached(scale, resolve_device(device))


@functools.lru_cache(maxsize=None)
def _relu_sweep_cached(scale: str, device: torch.device) -> Tuple[ReluSweep, ...]:
    c = config(scale)["relu"]
    return tuple(relu_sweep(_grid(c["grids"][d]), d, c["width"], c["seeds"], c["steps"], n_train=c["n_train"],
                            device=device) for d in c["depths"])


@stored_measurement("catapult")
def measure_trajectories(scale: str = "ci", device: DeviceLike = None) -> Trajectories:
    """uv trajectories for one ``eta * lambda_0`` in each phase (memoized)."""
    check_scale(scale)
    return _trajectories_cached(scale, resolve_device(device))


@functools.lru_cache(maxsize=None)
def _trajectories_cached(scale: str, device: torch.device) -> Trajectories:
    c = config(scale)["traj"]
    return uv_trajectories(c["eta_lam0"], c["width"], c["seed"], c["steps"], device=device)


# ----------------------------------------------------------------------------------------
# Predictions (sympy only) and measurements (torch only) behind the claims
# ----------------------------------------------------------------------------------------
def _largest(sweep: PhaseSweep, field: str) -> float:
    return float(np.nanmedian(getattr(sweep, field)[-1]))


def _grid_step(name: str, scale: str) -> float:
    return float(config(scale)[name]["grid"][2])


def predict_uv_lower(scale: str = "ci") -> float:
    """``eta lambda_0`` at the lazy/catapult edge for ``n -> infinity``: 2 (from sympy)."""
    check_scale(scale)
    return float(derive_uv_phases()["lower"])


def predict_uv_upper(scale: str = "ci") -> float:
    """``eta lambda_0`` at the catapult/divergent edge: 4 (from sympy)."""
    check_scale(scale)
    return float(derive_uv_phases()["upper"])


def measure_uv_lower(scale: str = "ci", device: DeviceLike = None) -> float:
    """Median over seeds of the measured lower edge at the largest width."""
    return _largest(measure_uv_sweep(scale, device), "lower")


def measure_uv_upper(scale: str = "ci", device: DeviceLike = None) -> float:
    """Median over seeds of the measured upper edge at the largest width."""
    return _largest(measure_uv_sweep(scale, device), "upper")


def _uv_init(scale: str) -> Tuple[np.ndarray, np.ndarray, Tuple[int, ...]]:
    """``f_0`` and ``lambda_0`` of the sweep's initializations (same generators, no training)."""
    c = config(scale)["uv"]
    f0s, lam0s = [], []
    for n in c["widths"]:
        row_f, row_l = [], []
        for s in c["seeds"]:
            g = make_generator(1000 * s + 1, "cpu")
            u = torch.randn(n, generator=g, dtype=torch.float64)
            v = torch.randn(n, generator=g, dtype=torch.float64)
            row_f.append(float((u * v).sum() / math.sqrt(n)))
            row_l.append(float((u.pow(2) + v.pow(2)).sum() / n))
        f0s.append(row_f)
        lam0s.append(row_l)
    return np.array(f0s), np.array(lam0s), tuple(c["widths"])


def predict_uv_finite_width(scale: str = "ci") -> Dict[str, float]:
    """Finite-width lower edge ``w_c`` (sympy root) averaged over the seeds, per width."""
    check_scale(scale)
    f0, lam0, widths = _uv_init(scale)
    wc = finite_width_lower_edge(f0, lam0, np.array(widths)[:, None])
    return {f"n={n}": float(np.mean(wc[i])) for i, n in enumerate(widths)}


def measure_uv_finite_width(scale: str = "ci", device: DeviceLike = None) -> Dict[str, float]:
    """Measured lower edge averaged over the seeds, per width."""
    sw = measure_uv_sweep(scale, device)
    return {f"n={n}": float(np.mean(sw.lower[i])) for i, n in enumerate(sw.widths)}


def predict_lambda_drop(scale: str = "ci") -> float:
    """Bound on the final ``eta lambda_T`` of a converged run: the linear-stability edge 2."""
    check_scale(scale)
    return float(derive_uv_phases()["eta_lazy"] * lam_s)


def measure_lambda_drop(scale: str = "ci", device: DeviceLike = None) -> float:
    """Largest final ``eta lambda_T`` over every catapult run (all widths and seeds)."""
    sw = measure_uv_sweep(scale, device)
    cat = sw.phase == CATAPULT
    if not cat.any():
        return math.nan
    return float(np.max(sw.final_eta_lam[cat]))


def predict_quadratic_range(scale: str = "ci") -> Dict[str, float]:
    """Derived edges of the quadratic model: lower 2; upper 4 for ``psi^2 = 1``; and for the
    spread spectrum the guaranteed ``4 kappa`` with ``kappa -> E[s^2] / s_max^2`` at large N
    (``s ~ U(lo, hi)``), integrated with sympy."""
    check_scale(scale)
    rng = derive_quadratic_range()
    lo, hi = (sp.nsimplify(v) for v in config(scale)["quadratic"]["spread"])
    s = sp.Symbol("s", positive=True)
    mean_s2 = sp.integrate(s**2, (s, lo, hi)) / (hi - lo)
    # kappa = lambda / (zeta^2 mu_max Q) with lambda ~ zeta^2 E[s^2] Q and mu_max = hi^2
    kappa = rng["kappa"].subs({lam_s: zeta_s**2 * mean_s2 * Q_s, rng["mu_max"]: hi**2})
    return {"lower": float(rng["lower"]), "upper_unit": float(rng["upper_unit"]),
            "upper_spread": float(sp.simplify(4 * kappa))}


def measure_quadratic_range(scale: str = "ci", device: DeviceLike = None) -> Dict[str, float]:
    """Measured edges at the largest N (median over seeds): lower edge pooled over both
    spectra, upper edge of each spectrum."""
    unit, spread = measure_quadratic_sweep(scale, device)
    lower = float(np.nanmedian(np.concatenate([unit.lower[-1], spread.lower[-1]])))
    return {"lower": lower, "upper_unit": _largest(unit, "upper"), "upper_spread": _largest(spread, "upper")}


#: Literature value of the maximal learning rate of deep ReLU nets, units of 1/lambda_0.
RELU_LITERATURE_UPPER = 12.0


def predict_relu_upper(scale: str = "ci") -> Dict[str, float]:
    """Reference values: the literature maximum for deep ReLU nets (12, Lewkowycz et al.)
    and the uv-model edge (4, from sympy)."""
    check_scale(scale)
    return {"literature": RELU_LITERATURE_UPPER, "uv": float(derive_uv_phases()["upper"])}


def measure_relu_upper(scale: str = "ci", device: DeviceLike = None) -> Dict[str, float]:
    """Median over seeds of the first diverging ``eta lambda_0`` for each depth."""
    return {f"depth{sw.depth}": float(np.nanmedian(sw.upper)) for sw in measure_relu_sweep(scale, device)}


def predict_relu_sparsity(scale: str = "ci") -> float:
    """Sign of the trend of the active fraction with ``eta``: -1 (decreasing)."""
    check_scale(scale)
    return -1.0


def measure_relu_sparsity(scale: str = "ci", device: DeviceLike = None) -> float:
    """Mean Spearman rho (``eta lambda_0`` vs active fraction) over depths and seeds."""
    rhos = np.concatenate([sparsity_trend(sw) for sw in measure_relu_sweep(scale, device)])
    return float(np.nanmean(rhos)) if np.isfinite(rhos).any() else math.nan


# ----------------------------------------------------------------------------------------
# Comparisons for the custom tolerances
# ----------------------------------------------------------------------------------------
#: Half a grid step of the uv grid: the midpoint estimate of an edge is within it.
UV_HALF_STEP = 0.005
#: Tolerance of the uv lower edge: half a grid step plus the finite-width shift at n = 1024.
UV_LOWER_TOL = 0.02
#: Tolerance of the uv upper edge: half a grid step (no finite-width shift at y = 0) plus round-off.
UV_UPPER_TOL = 0.006
#: Quadratic grid step is 0.02: edges within half a step, plus the finite-N shift on the lower edge.
QUAD_TOL = {"lower": 0.03, "upper_unit": 0.011, "upper_spread": 0.011}
#: ReLU: deep nets within a factor of this of the literature value; shallow nets within the uv band.
RELU_FACTOR = 1.5
RELU_SHALLOW_SLACK = 0.25
#: Sparsity: mean Spearman rho times the predicted sign must reach this.
SPARSITY_THRESHOLD = 0.5


def compare_uv_finite_width(predicted, measured, tol: Tolerance):
    """Per width, the seed-mean measured edge is within ``tol.value`` of the seed-mean ``w_c``."""
    details, ok = {}, True
    for k in predicted:
        err = abs(measured[k] - predicted[k])
        good = math.isfinite(err) and err <= tol.value
        details[k] = {"error": err, "limit": tol.value, "passed": good}
        ok &= good
    return ok, details


def compare_lambda_drop(predicted, measured, tol: Tolerance):
    """Every catapult run ends with ``eta lambda_T`` strictly below the bound."""
    ok = math.isfinite(measured) and measured < predicted
    return ok, {"max_final_eta_lam": measured, "bound": predicted, "passed": ok}


def compare_quadratic_range(predicted, measured, tol: Tolerance):
    """``lower`` and ``upper_unit`` equal their prediction within :data:`QUAD_TOL`;
    ``upper_spread`` is at least the guaranteed bound (minus half a grid step)."""
    details = {}
    for k in ("lower", "upper_unit"):
        err = abs(measured[k] - predicted[k])
        details[k] = {"error": err, "limit": QUAD_TOL[k], "passed": bool(math.isfinite(err) and err <= QUAD_TOL[k])}
    slack = measured["upper_spread"] - predicted["upper_spread"]
    details["upper_spread"] = {"margin": slack, "limit": -QUAD_TOL["upper_spread"],
                               "passed": bool(math.isfinite(slack) and slack >= -QUAD_TOL["upper_spread"])}
    return all(d["passed"] for d in details.values()), details


def compare_relu_upper(predicted, measured, tol: Tolerance):
    """The one-hidden-layer net diverges inside the uv catapult band (``2 < w <= 4 + slack``);
    every deeper net diverges beyond the uv edge and within a factor :data:`RELU_FACTOR` of the
    literature value."""
    details, ok = {}, True
    lit, uv = predicted["literature"], predicted["uv"]
    for k, m in measured.items():
        if k == "depth1":
            good = math.isfinite(m) and 2.0 < m <= uv + RELU_SHALLOW_SLACK
            details[k] = {"measured": m, "band": (2.0, uv + RELU_SHALLOW_SLACK), "passed": good}
        else:
            good = math.isfinite(m) and m > uv and lit / RELU_FACTOR <= m <= lit * RELU_FACTOR
            details[k] = {"measured": m, "band": (max(uv, lit / RELU_FACTOR), lit * RELU_FACTOR), "passed": good}
        ok &= good
    return ok, details


def compare_sparsity(predicted, measured, tol: Tolerance):
    """``predicted_sign * mean_rho >= SPARSITY_THRESHOLD``."""
    score = predicted * measured
    ok = math.isfinite(score) and score >= SPARSITY_THRESHOLD
    return ok, {"signed_rho": score, "threshold": SPARSITY_THRESHOLD, "passed": ok}


# ----------------------------------------------------------------------------------------
# Claims
# ----------------------------------------------------------------------------------------
register(Claim(
    id="catapult.uv.lower_boundary",
    chapter=CHAPTER,
    statement="In the uv model the loss first grows (catapult) iff eta*lambda_0 exceeds 2, the linear stability "
              "edge, up to a finite-width shift that vanishes as n grows.",
    source=SRC_LEWKOWYCZ + " (uv model, phases)",
    tolerance=Tolerance(UV_LOWER_TOL, "abs", "grid spacing 0.01 (midpoint within 0.005) plus the finite-width shift "
                        "4 f0^2/(n lambda0^2) ~ f0^2/n <= 0.01 at n = 1024"),
    predict=predict_uv_lower,
    measure=measure_uv_lower,
))

register(Claim(
    id="catapult.uv.upper_boundary",
    chapter=CHAPTER,
    statement="In the uv model GD converges for eta*lambda_0 < 4 and diverges above: lambda falls while the loss "
              "is large iff eta*lambda_t < 4.",
    source=SRC_LEWKOWYCZ + " (uv model, maximal learning rate)",
    tolerance=Tolerance(UV_UPPER_TOL, "abs", "half the grid spacing 0.01; the derived edge eta*lambda_t < 4 has no "
                        "finite-width correction at y = 0"),
    predict=predict_uv_upper,
    measure=measure_uv_upper,
))

register(Claim(
    id="catapult.uv.finite_width",
    chapter=CHAPTER,
    statement="At finite width the lazy/catapult edge sits at the root w_c = 2 + 4a + 16a^2 + ... of "
              "|1 - w + w^2 a| = 1, a = f0^2/(n lambda0^2): the shift shrinks like 1/n.",
    source=SRC_LEWKOWYCZ + " (uv update of f at finite n; root derived here)",
    tolerance=Tolerance(UV_HALF_STEP, "custom", "per width, seed-mean measured edge within half a grid step "
                        "(0.005) of the seed-mean derived root"),
    predict=predict_uv_finite_width,
    measure=measure_uv_finite_width,
    compare=compare_uv_finite_width,
))

register(Claim(
    id="catapult.uv.lambda_drop",
    chapter=CHAPTER,
    statement="Inside the catapult phase the NTK eigenvalue ends below 2/eta: every catapult run ends with "
              "eta*lambda_T < 2.",
    source=SRC_LEWKOWYCZ + " (catapult: curvature ends below 2/eta)",
    tolerance=Tolerance(0.0, "custom", "strict bound: the largest final eta*lambda over all catapult runs must lie "
                        "below 2"),
    predict=predict_lambda_drop,
    measure=measure_lambda_drop,
    compare=compare_lambda_drop,
))

register(Claim(
    id="catapult.quadratic.range",
    chapter=CHAPTER,
    statement="The pure quadratic model has a catapult phase 2 < eta*lambda_0 < 4*kappa_0 (weight norm falls "
              "while the loss is large); for psi^2 = 1 it is exactly the uv range (2, 4).",
    source=SRC_MELTZER + " (pure quadratic model, weight-norm argument)",
    tolerance=Tolerance(0.03, "custom", "grid spacing 0.02: edges within 0.011 (lower edge 0.03: finite-N shift "
                        "at N = 512); spread spectrum: measured edge >= guaranteed 4*kappa bound"),
    predict=predict_quadratic_range,
    measure=measure_quadratic_range,
    compare=compare_quadratic_range,
))

register(Claim(
    id="catapult.relu.upper_boundary",
    chapter=CHAPTER,
    statement="ReLU nets in NTK parametrization need not diverge at the uv edge: with two hidden layers GD "
              "diverges only near 12/lambda_0, while the one-hidden-layer net diverges within the uv band (2, 4].",
    source="Lewkowycz et al. 2020 (arXiv 2003.02218), ReLU experiments (eta_max ~ 12/lambda_0)",
    tolerance=Tolerance(RELU_FACTOR, "custom", "CI scale (width 128, 32 digits, 3 seeds): deep nets within a "
                        "factor 1.5 of 12 and above 4; one hidden layer in (2, 4.25]"),
    predict=predict_relu_upper,
    measure=measure_relu_upper,
    compare=compare_relu_upper,
))

register(Claim(
    id="catapult.relu.sparsity",
    chapter=CHAPTER,
    statement="Beyond eta*lambda_0 = 2 the fraction of active ReLUs after training falls as eta grows.",
    source=SRC_MELTZER + " (ReLU sparsity beyond the proven range)",
    tolerance=Tolerance(SPARSITY_THRESHOLD, "custom", "mean Spearman rho(eta, active fraction) over depths and "
                        "seeds <= -0.5 (about 4 null standard deviations for 6 series of 8-15 points)"),
    predict=predict_relu_sparsity,
    measure=measure_relu_sparsity,
    compare=compare_sparsity,
))
