"""Chapter 05 derivations, continued (sympy/numpy): GD on ``(mu - x y)^2/2`` as a map of scaled
coordinates, its exact invariant curve (the convergence edge) and an approximate invariant (the
limit's imbalance). Re-exported by :mod:`~lrtheory.results.balancing.derivation` (use it as ``D``).

Example
-------
>>> from lrtheory.results.balancing import derivation as D
>>> D.derive_edge_invariant().w
-m*rho - s + 4
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import sympy as sp

from lrtheory.results.balancing.derivation import derive_imbalance_recursion, derive_scalar_gd, paper_step_size, symbols

__all__ = ["ReducedMap", "derive_reduced_map", "EdgeInvariant", "derive_edge_invariant",
           "LimitInvariant", "derive_limit_invariant", "edge_eta", "edge_w", "predicted_limit_imbalance",
           "limit_ratio"]


@dataclass(frozen=True)
class ReducedMap:
    """One GD step in the scaled coordinates ``rho = eta (mu - x y)``, ``s = eta (x^2 + y^2)``,
    ``d = eta (x^2 - y^2)`` with ``m = eta mu``: ``rho_next``, ``s_next``, ``d_next`` (in
    ``rho, s, d, m`` only), and ``constraint = s^2 - d^2 - 4 (m - rho)^2`` (0 on every state)."""

    rho: sp.Symbol
    s: sp.Symbol
    d: sp.Symbol
    m: sp.Symbol
    rho_next: sp.Expr
    s_next: sp.Expr
    d_next: sp.Expr
    constraint: sp.Expr


@functools.lru_cache(maxsize=None)
def derive_reduced_map() -> ReducedMap:
    """GD on ``(mu - x y)^2/2`` as a map of ``(rho, s)`` (``d`` follows): the LR scales out.

    Hand step (sympy checks it by expanding both sides): with ``p = x y``, ``S = x^2 + y^2``,
    ``r = mu - p``, one step gives ``x' y' = p + eta r S + eta^2 r^2 p`` and
    ``x'^2 + y'^2 = S (1 + eta^2 r^2) + 4 eta r p``. sympy then substitutes
    ``r = rho/eta``, ``S = s/eta``, ``p = (m - rho)/eta``, ``mu = m/eta`` and simplifies;
    ``d_next`` is :func:`derive_imbalance_recursion` in these coordinates.

    Example
    -------
    >>> rm = derive_reduced_map()
    >>> sp.expand(rm.rho_next - rm.rho * (1 - rm.s - rm.rho * (rm.m - rm.rho)))
    0
    """
    s_ = symbols()
    gd = derive_scalar_gd()
    p, S, r = s_.x * s_.y, s_.x ** 2 + s_.y ** 2, s_.mu - s_.x * s_.y
    e = s_.eta
    ok = all(sp.expand(v) == 0 for v in (gd.x_next * gd.y_next - (p + e * r * S + e ** 2 * r ** 2 * p),
                                         gd.x_next ** 2 + gd.y_next ** 2 - (S * (1 + e ** 2 * r ** 2) + 4 * e * r * p)))
    if not ok:  # pragma: no cover - the identities are exact
        raise AssertionError("hand step of derive_reduced_map does not hold")
    rho, s, m = sp.symbols("rho s m", real=True)
    d = sp.Symbol("d", real=True)
    Rg, Sg, Pg = sp.Dummy(), sp.Dummy(), sp.Dummy()  # x y's residual, x^2 + y^2, x y: substituted away below
    p_next = Pg + e * Rg * Sg + e ** 2 * Rg ** 2 * Pg
    S_next = Sg * (1 + e ** 2 * Rg ** 2) + 4 * e * Rg * Pg
    scaled = {Rg: rho / e, Sg: s / e, Pg: (m - rho) / e, s_.mu: m / e}
    rho_next = sp.factor(sp.expand((e * (s_.mu - p_next)).subs(scaled)))
    s_next = sp.expand((e * S_next).subs(scaled))
    fac = derive_imbalance_recursion().factor_r.subs(s_.r, rho / e)
    d_next = sp.expand(d * fac)
    constraint = s ** 2 - d ** 2 - 4 * (m - rho) ** 2
    return ReducedMap(rho=rho, s=s, d=d, m=m, rho_next=rho_next, s_next=s_next, d_next=d_next,
                      constraint=constraint)


@dataclass(frozen=True)
class EdgeInvariant:
    """The invariant curve of GD that separates convergence from its failure.

    ``w`` (``4 - s - m rho``) and ``factor`` (``w_next / w = 1 + rho^2 - m rho``: positive for
    every ``rho`` when ``m < 2``, so GD never changes the sign of ``w``); ``w_xy`` (``w`` in
    ``x, y, eta, mu``); ``eta_edge`` (the positive root of ``w(x0, y0) = 0`` in ``eta``);
    ``on_curve`` (the map on ``w = 0``: ``rho -> rho^3 - 3 rho``); ``two_cycle_on_curve``
    (True: the balanced period-2 orbit ``x = y = +-sqrt(mu + 2/eta)`` lies on ``w = 0``)."""

    w: sp.Expr
    factor: sp.Expr
    w_xy: sp.Expr
    eta_edge: sp.Expr
    on_curve: sp.Expr
    factor_positive_if: sp.Rel
    two_cycle_on_curve: bool


@functools.lru_cache(maxsize=None)
def derive_edge_invariant() -> EdgeInvariant:
    """Find the curve ``w = 4 - s + alpha m rho`` that GD maps to itself, and the edge it gives.

    Ansatz (the hand step): ``w_next = w (1 + rho^2 + beta m rho)`` identically in ``rho, s, m``;
    sympy solves the coefficient equations for ``alpha, beta`` (``alpha = -1, beta = -1``: the one solution).
    As ``m < 2`` keeps the factor positive, ``w`` keeps its sign along every run. A limit
    (``rho = 0``) that GD can reach is a minimum with ``s <= 2`` (linear stability), so
    ``w = 4 - s >= 2 > 0`` there: a start with ``w < 0`` never converges. The edge of the
    convergent range is where the start's ``w`` vanishes: ``eta (x0^2 + y0^2) +
    eta^2 mu (mu - x0 y0) = 4``, solved by sympy for ``eta``. On ``w = 0`` the map is
    ``rho -> rho^3 - 3 rho`` (Chebyshev, chaotic on ``[-2, 2]``) and carries the balanced
    period-2 orbit ``x = y = sqrt(mu + 2/eta)``, ``rho = -2``, whose transverse multiplier
    ``5 + 2 m`` repels: the edge is the stable set of this invariant curve.

    Example
    -------
    >>> round(edge_eta(4.0, 1.0, 2.0), 12)
    0.25
    """
    rm = derive_reduced_map()
    s_ = symbols()
    alpha, beta = sp.Dummy(), sp.Dummy()  # solved away
    w = alpha * rm.m * rm.rho + 4 - rm.s
    w_next = w.subs({rm.rho: rm.rho_next, rm.s: rm.s_next}, simultaneous=True)
    resid = sp.expand(w_next - w * (1 + rm.rho ** 2 + beta * rm.m * rm.rho))
    # its coefficients as a polynomial in rho, s, m (every symbol but alpha, beta) vanish: solved for alpha, beta
    (sol,) = sp.solve(sp.Poly(resid, *(resid.free_symbols - {alpha, beta})).coeffs(), dict=True)
    w = w.subs(sol)
    factor = sp.expand(1 + rm.rho ** 2 + sol[beta] * rm.m * rm.rho)
    disc = sp.discriminant(factor, rm.rho)  # m^2 - 4: no real root (factor > 0) when m < 2
    positive_if = sp.Lt(rm.m, max(sp.solve(sp.Eq(disc, 0))))  # m is disc's only symbol; roots -2, 2
    e = s_.eta
    w_xy = sp.expand(w.subs({rm.rho: e * (s_.mu - s_.x * s_.y), rm.s: e * (s_.x ** 2 + s_.y ** 2),
                             rm.m: e * s_.mu}))
    w0 = w_xy.subs({s_.x: s_.x0, s_.y: s_.y0})
    roots = sp.solve(sp.Eq(w0, 0), e)
    probe = {s_.x0: 9, s_.y0: 1, s_.mu: 2}
    # w = 4 > 0 at eta = 0: the edge is the smallest positive root; at the probe (x0 y0 > mu) both roots are
    # positive, so it is the smaller there (the same branch for either sign of mu - x0 y0: tests/test_balancing.py)
    edge = min(roots, key=lambda z: complex(z.subs(probe)).real)
    on_curve = sp.factor(rm.rho_next.subs(rm.s, sp.solve(sp.Eq(w, 0), rm.s)[0]))
    c = sp.sqrt(s_.mu + 2 / e)
    gd = derive_scalar_gd()
    cyc = {s_.x: c, s_.y: c}
    two_cycle = all(sp.simplify(v) == 0 for v in (gd.x_next.subs(cyc) + c, w_xy.subs(cyc)))
    return EdgeInvariant(w=w, factor=factor, w_xy=w_xy, eta_edge=edge, on_curve=on_curve,
                         factor_positive_if=positive_if, two_cycle_on_curve=bool(two_cycle))


@dataclass(frozen=True)
class LimitInvariant:
    """``product_factor``: ``(d w)_next / (d w) = (1 - rho^2)(1 + rho^2 - m rho)`` (1 up to
    ``m rho`` and ``rho^4``); ``g``: ``d (4 - s)`` at a minimum (``rho = 0``) as a function of
    ``s`` (``sqrt(s^2 - 4 m^2) (4 - s)``); ``s_peak``: where ``g`` peaks (the stable branch is
    ``2 m <= s <= s_peak``)."""

    product_factor: sp.Expr
    g: sp.Expr
    s_peak: sp.Expr


@functools.lru_cache(maxsize=None)
def derive_limit_invariant() -> LimitInvariant:
    """A prediction of the limit: ``|d| w`` is conserved up to the factor ``(1 - rho^2)(1 + rho^2 - m rho)``.

    ``d`` is multiplied by ``1 - rho^2`` per step (exact), ``w`` by ``1 + rho^2 - m rho``
    (exact, :func:`derive_edge_invariant`); their product differs from 1 by ``-m rho`` (whose
    sign alternates with ``rho``'s along the oscillation, so it largely cancels) and
    ``O(rho^4)``. Neglecting it (the approximation; it holds while the oscillation stays small,
    ``eta (x0^2 + y0^2) <= 2.3`` on the paper's grid, and fails beyond about 2.5) gives
    ``|d_inf| (4 - s_inf) = |d_0| w_0`` with ``s_inf^2 = d_inf^2 + 4 m^2`` at the minimum. Of
    its two roots the limit is the linearly stable one (``s_inf <= 2``): for
    ``eta (x0^2 + y0^2) < 2`` the root near the start (no balancing), above 2 the mirror root
    near ``4 - eta (x0^2 + y0^2)`` (balancing).
    """
    rm = derive_reduced_map()
    ei = derive_edge_invariant()
    w_next = ei.w.subs({rm.rho: rm.rho_next, rm.s: rm.s_next}, simultaneous=True)
    prod = sp.factor(sp.cancel(rm.d_next * w_next / (rm.d * ei.w)))
    s = rm.s
    g = sp.sqrt(s ** 2 - 4 * rm.m ** 2) * (4 - s)
    crit = sp.solve(sp.Eq(sp.diff(g, s), 0), s)  # 1 -+ sqrt(1 + 2 m^2): the peak is the larger (the other is < 0)
    s_peak = sp.Max(*crit)
    return LimitInvariant(product_factor=prod, g=g, s_peak=s_peak)


@functools.lru_cache(maxsize=None)
def _edge_fns():
    s_ = symbols()
    ei = derive_edge_invariant()
    li = derive_limit_invariant()
    rm = derive_reduced_map()
    # sympy's default modules (NumPy's functions: scipy's, where installed, are the same for these expressions)
    edge = sp.lambdify((s_.x0, s_.y0, s_.mu), ei.eta_edge)
    w = sp.lambdify((s_.x, s_.y, s_.mu, s_.eta), ei.w_xy)
    g = sp.lambdify((rm.s, rm.m), li.g)
    peak = sp.lambdify((rm.m,), li.s_peak)
    return edge, w, g, peak


def edge_eta(x0: float, y0: float, mu: float) -> float:
    """The derived convergence edge ``eta_edge(x0, y0)``: the root of ``w(x0, y0) = 0`` (:func:`derive_edge_invariant`).

    Example
    -------
    >>> round(edge_eta(9.0, 1.0, 2.0) / paper_step_size(9.0, 1.0, 2.0), 4)
    1.1069
    """
    return float(_edge_fns()[0](float(x0), float(y0), float(mu)))


def edge_w(x, y, mu, eta):
    """``w = 4 - eta (x^2 + y^2) - eta^2 mu (mu - x y)`` evaluated (numpy, broadcasting)."""
    return _edge_fns()[1](x, y, mu, eta)


def predicted_limit_imbalance(x0, y0, mu: float, eta):
    """``|x_inf^2 - y_inf^2|`` predicted by :func:`derive_limit_invariant` (numpy, element-wise in ``eta``).

    The stable root of ``g(s) = |d_0| w_0`` on ``[2 m, s_peak]`` (``g`` increases there) by
    bisection to round-off; ``nan`` where ``w_0 <= 0`` (beyond the edge) or ``|d_0| w_0``
    exceeds ``g(s_peak)`` (no stable limit); 0 for a balanced start (``d_0 = 0`` stays 0).

    Example
    -------
    >>> round(float(predicted_limit_imbalance(9.0, 1.0, 2.0, 4 / 7 * paper_step_size(9.0, 1.0, 2.0))), 2)
    67.56
    """
    _, w, g, peak = _edge_fns()
    eta = np.asarray(eta, dtype=np.float64)
    m = eta * mu
    w0 = w(x0, y0, mu, eta)
    c = eta * abs(x0 ** 2 - y0 ** 2) * w0
    lo, hi = 2 * m, peak(m)
    ok = (w0 > 0) & (c <= g(hi, m))  # c = 0 with w0 > 0: a balanced start, the root s = 2 m (d = 0)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        below = g(mid, m) < c
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    s = 0.5 * (lo + hi)
    d = np.sqrt(np.maximum(s ** 2 - 4 * m ** 2, 0.0))
    out = np.where(ok, d / eta, np.nan)
    return out if out.ndim else float(out)


def limit_ratio(D, mu):
    """``max(|x|,|y|)/min(|x|,|y|)`` of the minimum ``x y = mu`` with ``|x^2 - y^2| = |D|`` (numpy)."""
    D = np.abs(np.asarray(D, dtype=np.float64))
    return (D + np.sqrt(D ** 2 + 4 * mu ** 2)) / (2 * mu)
