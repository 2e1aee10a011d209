"""Chapter 02, the large-width limits of the derived maps (numpy only), derived here.

The sympy maps of :mod:`~lrtheory.results.catapult.derivation` close in a few width-free
variables (the uv model, the quadratic model with bias at ``psi^2 = 1``) or in the
distribution of the units (the two-layer homogeneous net). As the width grows the only
trace of it left is an infinitesimal initial output; these functions iterate the limit
maps from such a seed and return what the claims predict: the final ``eta lambda`` of the
uv catapult, the upper catapult edge of the homogeneous net and of the quadratic model
with bias, and the fraction of dead units of the two-layer ReLU net.

Each is deterministic (the edges are cached); ``tests/test_catapult_derivation.py`` checks
each against a separate route (the exact finite-width map, a closed form at a limit, or the
paper's).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Tuple

import numpy as np

__all__ = ["UVPeak", "derive_uv_peak", "uv_peak_phase_mean", "derive_spread_upper_edge", "uv_final_eta_lam", "HomogeneousLimit", "homogeneous_limit", "bias_upper_edge", "bias_final_eta_lam",
           "bracket_edge"]


# ----------------------------------------------------------------------------------------
# the uv peak: the width-free map of (w, g) = (eta lambda, eta^2 f^2 / n)
# ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UVPeak:
    """The catapult peak of the uv model at ``w0 = eta * lambda_0`` in ``(2, 4)``, derived here.

    In ``w = eta lambda`` and ``g = eta^2 f^2 / n`` the exact uv maps (Lewkowycz et al. 2020,
    Theorem 1) read ``g' = (1 - w + g)^2 g`` and ``w' = w - g (4 - w)``: no width left. The
    width enters only through ``g_0 = eta^2 f_0^2 / n``. As ``g_0 -> 0`` the trajectory
    follows ``g_t = (w0 - 1)^(2t) g_0`` until ``g`` is O(1), then a fixed curve; so

    * the peak ``g* = max_t g_t`` tends to a constant and the peak loss
      ``L* = f*^2 / 2 = g* n lambda_0^2 / (2 w0^2)`` grows like ``n`` (log-log slope 1; the
      paper's ``Omega(n / log n)`` is a lower bound);
    * the step of the peak grows like ``ln(1/g_0) / (2 ln(w0 - 1))``: slope
      ``1 / (2 ln(w0 - 1))`` against ``ln n``.

    Attributes
    ----------
    w0 : float
    g_star : float
        ``max_t g_t`` from ``g0`` (``1e-14`` by default). It has no ``g0 -> 0`` limit: it is
        periodic in ``ln g0`` (:func:`uv_peak_phase_mean` averages it over the phase).
    peak_slope : float
        Log-log slope of ``L*`` against ``n`` (1).
    time_slope : float
        ``d t* / d ln n = 1 / (2 ln(w0 - 1))``.
    """

    w0: float
    g_star: float
    peak_slope: float
    time_slope: float


def derive_uv_peak(w0: float, g0: float = 1e-14, max_steps: int = 10_000) -> UVPeak:
    """:class:`UVPeak` at ``w0`` (``2 < w0 < 4``), iterating the width-free map from ``g0``.

    Examples
    --------
    >>> p = derive_uv_peak(3.0)
    >>> round(p.time_slope, 4), p.peak_slope
    (0.7213, 1.0)
    """
    w0 = float(w0)
    if not 2.0 < w0 < 4.0:
        raise ValueError(f"w0: expected 2 < w0 < 4 (the catapult phase), got {w0!r}")
    w, g, best = w0, float(g0), float(g0)
    for _ in range(max_steps):
        w, g = w - g * (4.0 - w), (1.0 - w + g) ** 2 * g
        if g < best and w < 2.0:
            break
        best = max(best, g)
    return UVPeak(w0=w0, g_star=best, peak_slope=1.0, time_slope=1.0 / (2.0 * math.log(w0 - 1.0)))


def uv_peak_phase_mean(w0: float, g0: float = 1e-14, nodes: int = 64) -> float:
    """Mean of the uv peak ``max_t g_t`` over the phase of ``ln g0``, derived here.

    ``g0 -> (w0 - 1)^2 g0`` starts the same run one step later, so the peak of
    :func:`derive_uv_peak` is periodic in ``ln g0`` with period ``2 ln(w0 - 1)`` and has no
    ``g0 -> 0`` limit (at ``w0 = 3`` it swings between 0.66 and 0.83). Runs started from
    random initializations spread ``ln g0 = ln(eta^2 f0^2 / n)`` over more than a period
    (``ln f0^2`` of a Gaussian output has a standard deviation of 2.2), so their mean peak is
    the mean over the phase: the midpoint rule with ``nodes`` points on one period starting
    at ``g0``.

    Examples
    --------
    >>> round(uv_peak_phase_mean(3.0), 3)
    0.77
    """
    if not (isinstance(nodes, int) and nodes >= 1):
        raise ValueError(f"nodes: expected a positive integer, got {nodes!r}")
    w0 = float(w0)
    period = (w0 - 1.0) ** 2  # derive_uv_peak refuses w0 outside (2, 4)
    return float(np.mean([derive_uv_peak(w0, g0=float(g0) * period ** ((k + 0.5) / nodes)).g_star
                          for k in range(nodes)]))


@functools.lru_cache(maxsize=None)
def derive_spread_upper_edge(lo: float, hi: float, *, lo_w: float = 3.5025, hi_w: float = 4.5, step: float = 0.005,
                             nodes: int = 100, steps: int = 2000, seed_delta: float = 1e-9) -> float:
    """Upper catapult edge of the pure quadratic model with moduli ``s ~ U(lo, hi)`` as ``N -> inf``, derived here.

    In the eigenbasis GD multiplies each ``theta_i^2`` by ``(1 - u s_i)^2`` with
    ``u = eta zeta z`` (signed ``s_i``, eigenvalues in ``+-`` pairs). As ``N -> inf`` the
    sums ``zeta^2/2 sum_i (.)`` become averages over the spectrum: ``u = eta E[s theta^2]``,
    ``eta lambda = 2 eta E[s^2 theta^2]``, with ``theta_0^2 = 1`` and an infinitesimal seed
    ``1 + seed_delta sign(s)`` (``z_0 = O(N^-1/2)``): a deterministic map on the ``nodes``
    Gauss-Legendre points of ``(lo, hi)``. The edge is the midpoint between the last
    ``eta lambda_0`` of the grid ``lo_w : step : hi_w`` (its last point the one nearest ``hi_w``)
    whose run stays bounded and the first that blows up (``theta^2 > 1e12``). For ``lo == hi``
    it is 4 (the uv edge).

    Examples
    --------
    >>> round(derive_spread_upper_edge(1.0, 1.0), 2)
    4.0
    """
    lo, hi = float(lo), float(hi)
    if not 0 < lo <= hi:
        raise ValueError(f"lo, hi: expected 0 < lo <= hi, got {lo!r}, {hi!r}")
    x, wq = np.polynomial.legendre.leggauss(nodes)
    s = lo + (hi - lo) * (x + 1) / 2
    S = np.concatenate([s, -s])[None, :]
    # the quadrature weights of E[.] over the +-s pairs, unnormalized: their scale cancels from the
    # map (eta is w over one weighted sum, u is eta times another)
    Wt = np.concatenate([wq, wq])[None, :]
    w = np.round(np.arange(lo_w, hi_w + step / 2, step), 10)
    # theta_0^2 = 1 + seed_delta sign(s): 1 + seed_delta on the +s half, 1 - seed_delta on the -s half
    th = np.ones((w.size, 1)) * np.concatenate([np.full(nodes, 1.0 + seed_delta), np.full(nodes, 1.0 - seed_delta)])
    eta = (w / (2 * np.sum(Wt * S**2 * th, axis=1)))[:, None]

    def bounded(th):  # (a NaN max is not)
        return th.max(1) < 1e12

    for _ in range(steps):
        u = eta * np.sum(Wt * S * th, axis=1, keepdims=True)
        # a run is frozen once it passes 1e12, so it never overflows
        th = np.where(bounded(th)[:, None], th * (1 - u * S) ** 2, th)
    bad = np.flatnonzero(~bounded(th))
    if bad.size == 0 or bad[0] == 0:
        return math.nan
    return float(0.5 * (w[bad[0] - 1] + w[bad[0]]))


def uv_final_eta_lam(w0: float, g0: float = 1e-14, max_steps: int = 100_000) -> float:
    """``lim_{g0 -> 0}`` of the final ``eta lambda`` of the uv model started at ``w0 = eta lambda_0``.

    Iterates the width-free uv map ``w' = w - g (4 - w)``, ``g' = (1 - w + g)^2 g``
    (:class:`~lrtheory.results.catapult.derivation.UVPeak`) from ``(w0, g0)`` until ``g``
    is below ``1e-30`` with ``w < 2`` (converged; ``w`` then moves by less than ``1e-29``).
    NaN if it diverges (``g > 1e10``) or does not settle in ``max_steps``.

    Examples
    --------
    >>> round(uv_final_eta_lam(1.5), 9)  # lazy: lambda moves by O(g0) only
    1.5
    >>> round(uv_final_eta_lam(2.5), 3)
    1.282
    """
    w, g = float(w0), float(g0)
    for _ in range(max_steps):
        if g < 1e-30 and w < 2.0:
            return w
        w, g = w - g * (4.0 - w), (1.0 - w + g) ** 2 * g
        if not (g < 1e10):
            return math.nan
    return math.nan


def bracket_edge(diverges, lo: float, hi: float, step: float, tol: float = 1e-3) -> float:
    """The first ``w`` in ``lo, lo + step, ..., hi`` with ``diverges(w)`` true, refined by
    bisection against the point before it to ``tol``; NaN if none diverges or the first does.
    The grid's last point is the one nearest ``hi`` (``hi`` itself when it is on the grid)."""
    grid = np.round(np.arange(lo, hi + step / 2, step), 10)
    prev = None
    for w in grid:
        if diverges(float(w)):
            if prev is None:
                return math.nan
            a, b = prev, float(w)
            while b - a > tol:
                m = 0.5 * (a + b)
                a, b = (a, m) if diverges(m) else (m, b)
            return 0.5 * (a + b)
        prev = float(w)
    return math.nan


# ----------------------------------------------------------------------------------------
# two-layer homogeneous net f = n^-1/2 sum_i v_i sigma(u_i), x = 1, y = 0
# ----------------------------------------------------------------------------------------
def _homogeneous_run(slope: float, w0: float, K: int, steps: int, eps: float):
    """One mean-field run: units on ``K`` equally spaced directions of the plane (the
    Gaussian init is a uniform direction times an independent radius; every moment the
    map needs is of degree 2, so the radius integrates out to ``E r^2 = 2``).
    Returns ``(diverged, final eta lambda, fraction of units with u < 0)``."""
    phi = (np.arange(K) + 0.5) * (2 * math.pi / K)
    u, v = np.cos(phi), np.sin(phi)
    s = np.where(u > 0, 1.0, slope)
    u, v = u + eps * s * v, v + eps * s * u  # seed along grad f: output eps * lambda
    # the units' weight 2 / K (E r^2 / K) is left out of lambda and of c = eta f / sqrt(n): it
    # cancels (eta is w0 over one sum, c eta times another; exactly so for K a power of 2)

    def lam(u, v):
        s = np.where(u > 0, 1.0, slope)
        return np.sum(s * s * (u * u + v * v))

    eta = w0 / lam(u, v)
    for _ in range(steps):
        s = np.where(u > 0, 1.0, slope)
        c = eta * np.sum(v * s * u)  # eta f / sqrt(n)
        if not abs(c) < 1e4:
            return True, math.nan, math.nan
        if abs(c) < 1e-13 and eta * lam(u, v) < 2.0:
            break
        u, v = u - c * s * v, v - c * s * u
    return False, float(eta * lam(u, v)), float(np.mean(u < 0))


@dataclass(frozen=True)
class HomogeneousLimit:
    """The width -> infinity limit of the two-layer homogeneous net at one slope, see
    :func:`homogeneous_limit`.

    Attributes
    ----------
    slope : float
        Leaky-ReLU slope ``a`` on the negative side (1: the uv model; 0: ReLU).
    upper : float
        Upper catapult edge in ``eta lambda_0`` (first divergent, bisected to 1e-3); NaN if
        none below ``hi``.
    w0 : ndarray
        The ``eta lambda_0`` at which the final state was computed.
    final_eta_lam, dead : ndarray
        Final ``eta lambda`` and fraction of units with ``u < 0`` at each ``w0``.
    """

    slope: float
    upper: float
    w0: np.ndarray
    final_eta_lam: np.ndarray
    dead: np.ndarray


@functools.lru_cache(maxsize=None)
def homogeneous_limit(slope: float, w0: Tuple[float, ...] = (), *, K: int = 4096, steps: int = 4000,
                      eps: float = 1e-9, lo: float = 2.05, hi: float = 6.0, step: float = 0.1) -> HomogeneousLimit:
    """Mean-field limit of GD on ``f = n^-1/2 sum_i v_i sigma(u_i)`` (``x = 1, y = 0``,
    ``u, v ~ N(0, 1)``), ``sigma(u) = u`` for ``u > 0`` and ``slope * u`` below, derived here.

    Per unit the GD step is ``u' = u - c sigma'(u) v``, ``v' = v - c sigma(u)`` with
    ``c = eta f / sqrt(n) = eta E[v sigma(u)]`` (the step of
    :func:`~lrtheory.results.catapult.derivation.derive_homogeneous_range`):
    at large ``n`` the empirical law of the units follows this deterministic map; the width
    enters only through ``f_0 = O(1)``, i.e. ``c_0 = O(n^-1/2)``: here an infinitesimal seed
    ``eps`` along ``grad f``. Units may change sign (the map is exact per step).

    Returns
    -------
    HomogeneousLimit
    """
    slope = float(slope)
    if not 0.0 <= slope <= 1.0:
        raise ValueError(f"slope: expected 0 <= slope <= 1, got {slope!r}")
    upper = bracket_edge(lambda w: _homogeneous_run(slope, w, K, steps, eps)[0], lo, hi, step)
    runs = [_homogeneous_run(slope, float(w), K, steps, eps) for w in w0]
    return HomogeneousLimit(slope=slope, upper=upper, w0=np.asarray(w0, dtype=float),
                            final_eta_lam=np.array([r[1] for r in runs]), dead=np.array([r[2] for r in runs]))


# ----------------------------------------------------------------------------------------
# quadratic model with bias z = a.phi + zeta/2 theta^T psi theta, psi^2 = 1, x = 1, y = 0
# ----------------------------------------------------------------------------------------
def _bias_run(rho: float, w0: float, steps: int, eps: float):
    """Width-free map of the model with bias (psi^2 = 1): ``P = eta zeta p``,
    ``R = eta zeta q``, ``l = eta lambda_q``, ``F = eta |phi|^2``, ``Z = P + R``:
    ``P' = P - Z F``, ``R' = R (1 + Z^2) - Z l``, ``l' = l (1 + Z^2) - 4 Z R``
    (``width_free`` of :func:`~lrtheory.results.catapult.derivation.derive_bias_model`), seeded along the
    linear growth direction ``(P, R) ~ (F, l)``. Returns ``(diverged, final eta lambda)``."""
    F, l = rho * w0, (1.0 - rho) * w0
    P, R = eps * F, eps * l
    for _ in range(steps):
        Z = P + R
        if not abs(Z) < 1e4:
            return True, math.nan
        if abs(Z) < 1e-13 and F + l < 2.0:
            break
        P, R, l = P - Z * F, R * (1 + Z * Z) - Z * l, l * (1 + Z * Z) - 4 * Z * R
    return False, F + l


@functools.lru_cache(maxsize=None)
def bias_upper_edge(rho: float, *, steps: int = 4000, eps: float = 1e-9, lo: float = 2.05, hi: float = 6.0,
                    step: float = 0.05) -> float:
    """Upper catapult edge (in ``eta lambda_0``) of the quadratic model with bias at
    ``psi^2 = 1`` as the width of the quadratic part grows, derived here; ``rho`` is the
    feature share ``|phi|^2 / lambda_0`` of the initial NTK (0: the uv model, edge 4).

    Examples
    --------
    >>> round(bias_upper_edge(0.0), 2)
    4.0
    """
    rho = float(rho)
    if not 0.0 <= rho < 1.0:
        raise ValueError(f"rho: expected 0 <= rho < 1, got {rho!r}")
    return bracket_edge(lambda w: _bias_run(rho, w, steps, eps)[0], lo, hi, step)


def bias_final_eta_lam(rho: float, w0: float, *, steps: int = 4000, eps: float = 1e-9) -> float:
    """Final ``eta lambda`` of the width-free map of :func:`bias_upper_edge` (NaN if it diverges)."""
    return _bias_run(float(rho), float(w0), steps, eps)[1]  # NaN when it diverges
