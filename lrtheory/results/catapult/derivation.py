"""Chapter 02, the derivations (sympy only): the uv model, the pure quadratic model, the
two-layer homogeneous net and the quadratic model with bias.

Every prediction of the chapter's claims comes from here:

* :func:`derive_uv_updates`: the exact one-step GD maps of ``f_t`` and ``lambda_t`` of the
  uv model ``f = v^T u x / sqrt(n)`` (Lewkowycz et al. 2020, Sec. 2);
* :func:`derive_uv_phases`: its phases ``eta lambda_0 < 2`` (lazy), ``2 < eta lambda_0 < 4``
  (catapult), ``> 4`` (divergent), and the finite-width shift of the lower edge;
* :func:`derive_quadratic_updates`: the maps of the pure quadratic model
  ``z = zeta/2 theta^T psi theta`` (Meltzer, Chen & Liu 2023) in the moments
  ``M_p = theta^T psi^p theta``; :func:`derive_weight_norm_change` the exact change of
  ``|theta|^2`` (it falls at large loss iff ``eta lambda_t < 4``);
  :func:`derive_quadratic_range` the guaranteed catapult range and
  :func:`derive_spread_kappa` its value for a spread spectrum;
  :func:`derive_uv_quadratic_match` shows the uv model is the case ``psi^2 = 1``;
* :func:`finite_width_lower_edge` evaluates the finite-width root numerically;
* :func:`derive_homogeneous_range`: the weight-norm argument for the two-layer leaky-ReLU
  net (its guaranteed range ``(2, 4 kappa_0)``, ``kappa_0 -> (1 + a^2)/2``);
* :func:`derive_bias_model`: the quadratic model with bias, the quantity that falls
  (``|theta|^2 + 2 p^2 / F``), its guaranteed range and its width-free map at ``psi^2 = 1``.

The numeric limits of these maps (the uv peak and end point, the spread-spectrum,
homogeneous and bias-model edges) live in :mod:`~lrtheory.results.catapult.limits`;
``derive_uv_peak`` and ``derive_spread_upper_edge`` are re-exported here.

Each ``derive_*`` returns a frozen dataclass of sympy expressions and is cached.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Tuple

import numpy as np
import sympy as sp

__all__ = [
    "eta_s", "n_s", "x_s", "y_s", "f_s", "lam_s", "z_s", "zeta_s", "r_s", "Q_s", "w_s", "a_s", "mu_max_s", "M",
    "UVUpdates", "UVPhases", "QuadraticUpdates", "WeightNormChange", "QuadraticRange", "UVQuadraticMatch",
    "derive_uv_updates", "derive_uv_phases", "derive_quadratic_updates", "derive_weight_norm_change",
    "derive_quadratic_range", "derive_spread_kappa", "derive_uv_quadratic_match", "finite_width_lower_edge",
    "RELU_LITERATURE_UPPER", "slope_s", "HomogeneousRange", "derive_homogeneous_range", "p_s", "q_s", "F_s",
    "P_s", "R_s", "l_s", "Z_s", "Ft_s", "BiasModel", "derive_bias_model", "UVPeak", "derive_uv_peak",
    "derive_spread_upper_edge",
]

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
a_s = sp.Symbol("a", positive=True)  # f0^2 / (n lambda0^2)
mu_max_s = sp.Symbol("mu_max", positive=True)  # top eigenvalue of psi^2
M = sp.symbols("M_0:5", real=True)  # moments theta^T psi^p theta

#: Literature value of the maximal learning rate of ReLU nets, in units of 1/lambda_0: an
#: empirical observation of Lewkowycz et al. 2020 (not derived here).
RELU_LITERATURE_UPPER = 12.0


# ----------------------------------------------------------------------------------------
# uv model
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
    if set(poly.as_dict()) - {(2, 0), (0, 2), (1, 1)}:
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

    Examples
    --------
    >>> derive_uv_updates().delta_lam_simple
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
    return UVUpdates(
        f_next=sp.collect(f_next, eta_s),
        lam_next=sp.collect(lam_next, eta_s),
        residual_next=sp.factor(sp.expand(f_next - y_s).subs(f_s, r_s + y_s)),
        delta_lam=delta,
        f_next_simple=f_simple,
        lam_next_simple=lam_simple,
        delta_lam_simple=sp.factor(lam_simple - lam_s),
    )


@dataclass(frozen=True)
class UVPhases:
    """Phases of the uv model (``x = 1, y = 0``), see :func:`derive_uv_phases`.

    Attributes
    ----------
    growth : sympy.Expr
        ``f_{t+1} / f_t = 1 - eta lambda + eta^2 f^2 / n``.
    growth_inf_width : sympy.Expr
        Its limit ``n -> oo``: ``1 - eta lambda``.
    eta_lazy : sympy.Expr
        ``2 / lambda``: the linear stability edge.
    delta_lam : sympy.Expr
        ``lambda_{t+1} - lambda_t = eta f^2 (eta lambda - 4) / n``.
    eta_max : sympy.Expr
        ``4 / lambda``: lambda falls iff ``eta lambda_t < 4``.
    lower_edge_finite_width : sympy.Expr
        The finite-width lower edge ``w_c(a)`` in ``w = eta lambda_0``, ``a = f_0^2/(n lambda_0^2)``.
    lower_edge_stable : sympy.Expr
        The same root rationalized, ``4 / (1 + sqrt(1 - 8a))`` (no cancellation at small ``a``).
    lower_edge_series : sympy.Expr
        ``2 + 4a + 16a^2`` (to ``O(a^3)``).
    lower, upper : sympy.Integer
        2 and 4: the edges in units of ``1/lambda_0``.
    """

    growth: sp.Expr
    growth_inf_width: sp.Expr
    eta_lazy: sp.Expr
    delta_lam: sp.Expr
    eta_max: sp.Expr
    lower_edge_finite_width: sp.Expr
    lower_edge_stable: sp.Expr
    lower_edge_series: sp.Expr
    lower: sp.Expr
    upper: sp.Expr


@functools.lru_cache(maxsize=None)
def derive_uv_phases() -> UVPhases:
    """Phases of the uv model (``x = 1, y = 0``) from its exact updates.

    * growth factor ``f_{t+1}/f_t = 1 - eta lambda + eta^2 f^2 / n``; at infinite width
      (``f^2/n -> 0``) it is ``1 - eta lambda``, so the loss shrinks iff
      ``eta < 2/lambda`` (``eta_lazy``).
    * ``lambda_{t+1} - lambda_t = eta f^2 (eta lambda - 4) / n``: lambda falls whenever
      ``eta lambda_t < 4`` (``eta_max``) and grows above it, so for
      ``2 < eta lambda_0 < 4`` the loss first grows until ``f^2 / n = O(1)``, then lambda
      falls until ``eta lambda < 2`` and the loss converges (catapult); above ``4/lambda_0``
      both grow (divergence).
    * finite width: the loss grows at the first step iff ``|growth factor| > 1``, i.e.
      ``eta lambda_0 > 2 + eta^2 f_0^2 / n``; in ``w = eta lambda_0`` this is
      ``w > w_c = (1 - sqrt(1 - 8 a)) / (2 a)`` with ``a = f_0^2 / (n lambda_0^2)``,
      ``w_c = 2 + 4 a + O(a^2)`` (derived here; the map is the paper's).

    Returns
    -------
    UVPhases

    Examples
    --------
    >>> ph = derive_uv_phases()
    >>> ph.lower, ph.upper
    (2, 4)
    """
    upd = derive_uv_updates()
    growth = sp.expand(upd.f_next_simple / f_s)
    growth_inf = sp.limit(growth, n_s, sp.oo)
    # |1 - eta lam| = 1 at the edge of linear stability: the positive root eta > 0
    eta_lazy = sp.solve(sp.Eq(growth_inf, -1), eta_s)[0]
    delta = upd.delta_lam_simple
    eta_max = sp.solve(sp.Eq(delta / (eta_s * f_s**2 / n_s), 0), eta_s)[0]
    # finite width lower edge in w = eta * lam0: growth = 1 - w + w^2 a  with a = f0^2 / (n lam0^2)
    a = a_s
    growth_w = sp.expand(growth.subs(eta_s, w_s / lam_s).subs(f_s**2, a * n_s * lam_s**2))
    roots = sp.solve(sp.Eq(growth_w, -1), w_s)
    w_c = sorted(roots, key=lambda e: float(e.subs(a, sp.Rational(1, 100))))[0]
    # the same root without the cancellation 1 - sqrt(1 - 8a) at small a (rationalized)
    conj = 1 + sp.sqrt(1 - 8 * a)
    w_stable = sp.simplify(sp.expand(w_c * conj)) / conj
    if sp.simplify(w_stable - w_c) != 0:  # pragma: no cover - a sympy regression
        raise AssertionError("rationalized root differs from the root")
    return UVPhases(
        growth=growth,
        growth_inf_width=growth_inf,
        eta_lazy=eta_lazy,
        delta_lam=delta,
        eta_max=eta_max,
        lower_edge_finite_width=sp.simplify(w_c),
        lower_edge_stable=w_stable,
        lower_edge_series=sp.series(w_c, a, 0, 3).removeO(),
        lower=sp.simplify(eta_lazy * lam_s),
        upper=sp.simplify(eta_max * lam_s),
    )


@functools.lru_cache(maxsize=None)
def _lower_edge_fn():
    return sp.lambdify(a_s, derive_uv_phases().lower_edge_stable, "numpy")


def finite_width_lower_edge(f0, lam0, n) -> np.ndarray:
    """Finite-width lower edge ``w_c`` (in units of ``1/lambda_0``) of the uv model.

    Evaluates the sympy root :attr:`UVPhases.lower_edge_stable` at
    ``a = f_0^2 / (n lambda_0^2)``, element-wise.

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

    Examples
    --------
    >>> float(finite_width_lower_edge(1e-6, 2.0, 10**6))
    2.0
    """
    f0 = np.asarray(f0, dtype=np.float64)
    lam0 = np.asarray(lam0, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    if np.any(~(lam0 > 0)):
        raise ValueError("lam0: must be positive")
    if np.any(~(n > 0)):
        raise ValueError("n: must be positive")
    a = f0**2 / (n * lam0**2)
    with np.errstate(invalid="ignore"):
        out = _lower_edge_fn()(np.minimum(a, 0.125))
    return np.where(a > 0.125, np.nan, out)


# ----------------------------------------------------------------------------------------
# pure quadratic model of Meltzer, Chen & Liu
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


@dataclass(frozen=True)
class WeightNormChange:
    """Change of ``|theta|^2`` in one step of the quadratic model, see :func:`derive_weight_norm_change`.

    Attributes
    ----------
    exact : ``|theta'|^2 - |theta|^2 = eta r (eta lambda r - 4 z)``
    y0 : the same at ``y = 0`` (``r = z``): ``eta z^2 (eta lambda - 4)``
    large_loss : the coefficient of ``r^2`` (leading when ``|r| >> |y|``): ``eta (eta lambda - 4)``
    eta_max : its root in ``eta``, ``4 / lambda``
    expanded_in_r : ``exact`` with ``z = r + y``, expanded
    """

    exact: sp.Expr
    y0: sp.Expr
    large_loss: sp.Expr
    eta_max: sp.Expr
    expanded_in_r: sp.Expr


@functools.lru_cache(maxsize=None)
def derive_weight_norm_change() -> WeightNormChange:
    """Change of the squared weight norm in one step of the quadratic model.

    The norm falls at large loss iff ``eta lambda_t < 4`` (the mechanism of Meltzer, Chen & Liu).

    Returns
    -------
    WeightNormChange
    """
    q = derive_quadratic_updates()
    exact = sp.factor(q.norm_next - Q_s)
    y0 = sp.factor(exact.subs(r_s, z_s))
    in_r = sp.expand(exact.subs(z_s, r_s + y_s))
    lead = sp.factor(sp.Poly(in_r, r_s).coeff_monomial(r_s**2))
    eta_max = sp.solve(sp.Eq(lead, 0), eta_s)[0]
    return WeightNormChange(exact=exact, y0=y0, large_loss=lead, eta_max=eta_max, expanded_in_r=in_r)


@dataclass(frozen=True)
class QuadraticRange:
    """Guaranteed catapult range of the pure quadratic model, see :func:`derive_quadratic_range`.

    Attributes
    ----------
    lower : 2 (in units of ``1/lambda_0``)
    kappa : ``lambda / (zeta^2 mu_max Q)``
    upper : ``4 kappa``
    upper_unit : 4, the upper edge at ``psi^2 = 1``
    """

    lower: sp.Expr
    kappa: sp.Expr
    upper: sp.Expr
    upper_unit: sp.Expr


@functools.lru_cache(maxsize=None)
def derive_quadratic_range() -> QuadraticRange:
    """Guaranteed catapult range of the pure quadratic model (``y = 0``).

    With ``mu_max`` the top eigenvalue of ``psi^2``, ``lambda_t = zeta^2 theta^T psi^2 theta
    <= zeta^2 mu_max |theta_t|^2`` (Rayleigh quotient; the one step taken by hand, checked
    numerically in the tests). If ``eta zeta^2 mu_max |theta_0|^2 < 4`` then by
    :func:`derive_weight_norm_change` the norm falls at every step, so ``eta lambda_t < 4``
    for all ``t``; the decrease ``eta z_t^2 (4 - eta lambda_t)`` is summable, so ``z_t -> 0``:
    GD converges. With the linear growth for ``eta lambda_0 > 2`` this gives the catapult
    range ``2 < eta lambda_0 < 4 kappa_0``, ``kappa_0 = lambda_0 / (zeta^2 mu_max |theta_0|^2)
    <= 1``. For ``psi^2 = 1`` (the uv model) ``kappa_0 = 1``: the range is exactly ``(2, 4)``.

    Returns
    -------
    QuadraticRange
    """
    q = derive_quadratic_updates()
    # linear growth factor of z at y = 0 to first order in z: 1 - eta lambda
    growth_lin = sp.expand(q.z_next.subs(r_s, z_s) / z_s).subs(z_s, 0)
    lower = sp.solve(sp.Eq(growth_lin, -1), eta_s)[0] * lam_s
    wn = derive_weight_norm_change()
    eta_norm = wn.eta_max.subs(lam_s, zeta_s**2 * mu_max_s * Q_s)  # bound lambda by its maximum
    kappa = lam_s / (zeta_s**2 * mu_max_s * Q_s)
    upper = sp.simplify(eta_norm * lam_s)
    unit = sp.simplify(upper.subs(mu_max_s, 1).subs(lam_s, zeta_s**2 * Q_s))
    return QuadraticRange(lower=sp.simplify(lower), kappa=kappa, upper=upper, upper_unit=unit)


@functools.lru_cache(maxsize=None)
def derive_spread_kappa(lo: float, hi: float) -> sp.Expr:
    """Large-``N`` value of ``kappa_0`` for moduli ``s_i ~ U(lo, hi)`` (derived here).

    ``lambda_0 ~ zeta^2 E[s^2] |theta_0|^2`` at large ``N`` (law of large numbers over the
    isotropic ``theta_0``) and ``mu_max = hi^2``, so ``kappa_0 -> E[s^2] / hi^2``; the
    expectation is integrated by sympy.

    Examples
    --------
    >>> derive_spread_kappa(1.0, 1.0)
    1
    >>> round(float(4 * derive_spread_kappa(0.8, 1.2)), 4)
    2.8148
    """
    lo_r, hi_r = sp.nsimplify(lo), sp.nsimplify(hi)
    s = sp.Symbol("s", positive=True)
    mean_s2 = sp.integrate(s**2, (s, lo_r, hi_r)) / (hi_r - lo_r) if hi_r != lo_r else lo_r**2
    kappa = derive_quadratic_range().kappa.subs({lam_s: zeta_s**2 * mean_s2 * Q_s, mu_max_s: hi_r**2})
    return sp.simplify(kappa)


@dataclass(frozen=True)
class UVQuadraticMatch:
    """Quadratic maps at ``psi^2 = 1`` minus the uv maps, see :func:`derive_uv_quadratic_match`.

    Attributes
    ----------
    z_diff, lam_diff : both 0
    z_next_unit, lam_next_unit : the quadratic maps at ``psi^2 = 1``
    """

    z_diff: sp.Expr
    lam_diff: sp.Expr
    z_next_unit: sp.Expr
    lam_next_unit: sp.Expr


@functools.lru_cache(maxsize=None)
def derive_uv_quadratic_match() -> UVQuadraticMatch:
    """The uv model is the pure quadratic model with ``psi = [[0, 1], [1, 0]]`` (``psi^2 = 1``).

    Then ``M_3 = M_1``, ``M_4 = M_2 = M_0`` and ``zeta = 1/sqrt(n)``: the quadratic maps
    reduce to the uv maps of :func:`derive_uv_updates` (``x = 1``, ``y = 0``).

    Returns
    -------
    UVQuadraticMatch

    Examples
    --------
    >>> m = derive_uv_quadratic_match()
    >>> (m.z_diff, m.lam_diff)
    (0, 0)
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
    return UVQuadraticMatch(z_diff=z_diff, lam_diff=lam_diff, z_next_unit=z_next, lam_next_unit=lam_next)


# ----------------------------------------------------------------------------------------
# two-layer homogeneous net f = n^-1/2 sum_i v_i sigma(u_i x), sigma leaky ReLU (x = 1)
# ----------------------------------------------------------------------------------------
slope_s = sp.Symbol("a", nonnegative=True)  # leaky-ReLU slope below 0


@dataclass(frozen=True)
class HomogeneousRange:
    """Weight-norm argument for the two-layer homogeneous net, see :func:`derive_homogeneous_range`.

    Attributes
    ----------
    norm_change : ``|theta'|^2 - |theta|^2 = eta r (eta lambda r - 4 f)`` (the quadratic model's)
    y0 : the same at ``y = 0``: ``eta f^2 (eta lambda - 4)``
    kappa_inf : ``lim_{n -> oo} kappa_0 = (1 + a^2) / 2`` for ``u, v ~ N(0, 1)``
    upper : the guaranteed edge ``4 kappa_0``
    upper_inf : ``2 (1 + a^2)``
    """

    norm_change: sp.Expr
    y0: sp.Expr
    kappa_inf: sp.Expr
    upper: sp.Expr
    upper_inf: sp.Expr


@functools.lru_cache(maxsize=None)
def derive_homogeneous_range() -> HomogeneousRange:
    """Guaranteed catapult range of ``f = n^-1/2 sum_i v_i sigma(u_i)`` (``x = 1``, slope
    ``a`` in ``[0, 1]`` below 0), the weight-norm argument of Meltzer, Chen & Liu 2023.

    On the side of 0 where it is, unit ``i`` has ``sigma(u_i) = s_i u_i`` (``s_i = 1`` or
    ``a``), so one GD step is ``u' = u - c s v``, ``v' = v - c s u`` with
    ``c = eta r / sqrt(n)``. Summed over units by linearity (``sum s u v = sqrt(n) f``,
    ``sum s^2 (u^2 + v^2) = n lambda``) the norm changes by ``eta r (eta lambda r - 4 f)``:
    the quadratic model's (degree-2 homogeneity, ``theta . grad f = 2 f``). As
    ``lambda <= |theta|^2 / n`` (``s_i <= 1``; the one step taken by hand, checked in the
    tests), ``eta |theta_0|^2 / n < 4`` keeps ``eta lambda_t < 4`` and the norm falling at
    every step: the catapult range ``2 < eta lambda_0 < 4 kappa_0``,
    ``kappa_0 = n lambda_0 / |theta_0|^2``, whose large-``n`` value sympy integrates over
    the Gaussian init. Unlike the pure quadratic model the units may change side, so
    ``f`` and ``lambda`` have no closed map: the actual edge is
    :func:`~lrtheory.results.catapult.limits.homogeneous_limit`.

    Examples
    --------
    >>> derive_homogeneous_range().upper_inf
    2*a**2 + 2
    """
    u, v, s, c = sp.symbols("u v s c", real=True)
    per_unit = sp.Poly(sp.expand((u - c * s * v) ** 2 + (v - c * s * u) ** 2 - u**2 - v**2), u, v)
    sq = sp.cancel(per_unit.coeff_monomial(u**2) / s**2)  # coefficient of s^2 (u^2 + v^2)
    if sp.simplify(per_unit.coeff_monomial(v**2) - sq * s**2) != 0 or set(per_unit.as_dict()) - {(2, 0), (0, 2), (1, 1)}:
        raise AssertionError("the per-unit norm change is not c^2 s^2 (u^2 + v^2) + gamma s u v")
    cross = sp.cancel(per_unit.coeff_monomial(u * v) / s)
    total = (sq * n_s * lam_s + cross * sp.sqrt(n_s) * f_s).subs(c, eta_s * r_s / sp.sqrt(n_s))
    change = sp.factor(sp.expand(total))
    gauss = sp.exp(-(u**2 + v**2) / 2) / (2 * sp.pi)
    half = sp.integrate(sp.integrate((u**2 + v**2) * gauss, (u, 0, sp.oo)), (v, -sp.oo, sp.oo))  # each side: 1
    kappa_inf = sp.simplify((half + slope_s**2 * half) / (2 * half))
    kappa0 = n_s * lam_s / Q_s
    wn = sp.solve(sp.Eq(sp.factor(change.subs(r_s, f_s) / (eta_s * f_s**2)).subs(lam_s, Q_s / n_s), 0), eta_s)[0]
    upper = sp.simplify(wn * lam_s)
    if sp.simplify(upper - 4 * kappa0) != 0:  # pragma: no cover - a sympy regression
        raise AssertionError("the guaranteed edge is not 4 kappa_0")
    return HomogeneousRange(norm_change=change, y0=sp.factor(change.subs(r_s, f_s)), kappa_inf=kappa_inf,
                            upper=upper, upper_inf=sp.expand(4 * kappa_inf))


# ----------------------------------------------------------------------------------------
# quadratic model with bias z = a.phi + zeta/2 theta^T psi theta (x = 1)
# ----------------------------------------------------------------------------------------
p_s, q_s, F_s = sp.symbols("p q F", real=True)  # linear output a.phi, quadratic output, |phi|^2
P_s, R_s, l_s, Z_s, Ft_s = sp.symbols("P R ell Z Ftilde", real=True)  # width-free variables


@dataclass(frozen=True)
class BiasModel:
    """The quadratic model with bias, see :func:`derive_bias_model`.

    Attributes
    ----------
    p_next : ``p' = p - eta r F`` (``p = a.phi``, ``F = |phi|^2``)
    lyapunov_change : change of ``V = |theta|^2 + 2 p^2 / F``: ``eta r (eta (lambda + F) r - 4 z)``
    upper : guaranteed edge ``4 lambda / (2 F + zeta^2 mu_max V)`` in units of ``1/lambda``
    upper_unit_inf : at ``psi^2 = 1``, ``N -> oo``: ``4 / (1 + rho)``, ``rho = F / lambda_0``
    width_free : ``(P', R', ell')`` of ``P = eta zeta p``, ``R = eta zeta q``,
        ``ell = eta lambda_q``, ``Ftilde = eta F``, ``Z = P + R`` at ``psi^2 = 1``
    """

    p_next: sp.Expr
    lyapunov_change: sp.Expr
    upper: sp.Expr
    upper_unit_inf: sp.Expr
    width_free: Tuple[sp.Expr, sp.Expr, sp.Expr]


@functools.lru_cache(maxsize=None)
def derive_bias_model() -> BiasModel:
    """GD maps and guaranteed catapult range of ``z = a.phi + zeta/2 theta^T psi theta``
    (one example, ``x = 1``), derived here after Meltzer, Chen & Liu 2023.

    ``grad_a z = phi``, so ``p = a.phi`` moves by ``-eta r F``; the quadratic part moves as
    in :func:`derive_quadratic_updates` (``z -> q``, ``lambda -> lambda_q = lambda - F``).
    ``V = |theta|^2 + 2 p^2 / F`` then changes by ``eta r (eta (lambda + F) r - 4 z)``: at
    ``y = 0`` it falls iff ``eta (lambda + F) < 4``. With ``lambda + F <= 2 F + zeta^2 mu_max V``
    (Rayleigh, as for the pure model) the range is ``2 < eta lambda_0 <
    4 lambda_0 / (2 F + zeta^2 mu_max V_0)``; at ``psi^2 = 1`` (``zeta^2 |theta|^2 =
    lambda_q``) and large ``N`` (``zeta^2 p_0^2 -> 0``) it is ``4 / (1 + rho)``. (The
    authors' code bounds with ``|a|^2`` and the overlap ``(a.phi)^2/F`` instead, a tighter
    range.) At ``psi^2 = 1`` the maps close in the width-free ``(P, R, ell)``.

    Examples
    --------
    >>> derive_bias_model().upper_unit_inf
    4/(rho + 1)
    """
    q = derive_quadratic_updates()
    wn = derive_weight_norm_change()
    p_next = p_s - eta_s * r_s * F_s
    quad = {z_s: q_s, lam_s: lam_s - F_s}
    dV = wn.exact.subs(quad, simultaneous=True) + 2 * (p_next**2 - p_s**2) / F_s
    dV = sp.factor(sp.expand(dV.subs(q_s, z_s - p_s)))
    rho = sp.Symbol("rho", positive=True)
    upper = 4 * lam_s / (2 * F_s + zeta_s**2 * mu_max_s * (Q_s + 2 * p_s**2 / F_s))
    unit = upper.subs(mu_max_s, 1).subs(Q_s, (lam_s - F_s) / zeta_s**2)
    unit_inf = sp.simplify(sp.limit(unit, zeta_s, 0).subs(F_s, rho * lam_s))
    # width-free map at psi^2 = 1 (M_3 = M_1, M_4 = M_2 = M_0), the residual r the total output
    back = {M[0]: Q_s, M[1]: 2 * q_s / zeta_s, M[2]: (lam_s - F_s) / zeta_s**2}
    unit_m = {M[3]: M[1], M[4]: M[2]}
    qn = sp.expand(zeta_s / 2 * q.moments_next[1].subs(unit_m).subs(back))
    ln = sp.expand(zeta_s**2 * q.moments_next[2].subs(unit_m).subs(back))  # lambda_q'
    to_wf = {r_s: Z_s / (eta_s * zeta_s), p_s: P_s / (eta_s * zeta_s), q_s: R_s / (eta_s * zeta_s),
             lam_s: (l_s + Ft_s) / eta_s, F_s: Ft_s / eta_s}
    P_next = sp.expand(eta_s * zeta_s * p_next.subs(to_wf))
    R_next = sp.expand(eta_s * zeta_s * qn.subs(to_wf))
    l_next = sp.expand(eta_s * ln.subs(to_wf))
    return BiasModel(p_next=p_next, lyapunov_change=dV, upper=upper, upper_unit_inf=unit_inf,
                     width_free=(P_next, R_next, l_next))


from lrtheory.results.catapult.limits import UVPeak, derive_spread_upper_edge, derive_uv_peak  # noqa: E402,F401
