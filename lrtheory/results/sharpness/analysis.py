"""Chapter 01's analysis (numpy): the measured values' containers, power-law fits, eta* from grids.

Fits are :func:`lrtheory.core.stats.loglog_fit` (OLS on log-log axes, Student-t interval);
:func:`fit_power_law` only fixes the chapter's conventions (a diverged point is dropped, an
exponent needs at least three points).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np

from lrtheory.core import validate
from lrtheory.core.stats import LogLogFit, loglog_fit

__all__ = [
    "GridMeasurement",
    "PlainMeasurement",
    "NarrowMeasurement",
    "LossCurves",
    "BisectionMeasurement",
    "ThresholdStudy",
    "TaskMeasurement",
    "TaskLawMeasurement",
    "eta_star_by_threshold",
    "procedure_gap",
    "BoundsSummary",
    "fit_power_law",
    "geo_mean",
    "chapter_fits",
    "bounds_summary",
    "eta_star_from_grid",
    "WideMeasurement",
    "DepthWidthFit",
    "depth_width_fit",
    "VarianceSources",
    "variance_sources",
    "finite_width_constants",
]


@dataclass(frozen=True)
class GridMeasurement:
    """The main grid: ``eta*`` under condition (ii), ``lambda_1`` at init, predictions.

    Arrays are ``(A,)`` over the architectures ``cfg.archs`` (``(A, S)`` where per seed).

    Attributes
    ----------
    depth, width, Ln : ndarray (A,)
    eta_star : ndarray (A,)
        ``eta*`` with the input layer at ``input_lr_mult`` (condition (ii)); NaN where no LR of
        the grid succeeded.
    eta_bracket : ndarray (A, 2)
    lam1 : ndarray (A, S)
        Hessian top eigenvalue of the squared loss (one-hot targets) at init, per seed.
    lam1_ce : ndarray (A, S)
        The same for the cross-entropy loss the runs are trained with.
    lam1_w : ndarray (A, S)
        The CE Hessian as the runs step on it: ``C^(1/2) H C^(1/2)`` with the input layer's LR
        multiplier in ``C`` (:func:`~lrtheory.results.sharpness.simulate.weighted_sharpness`).
    eta_lo : ndarray (A, S)
        Each seed's largest successful LR (NaN: none).
    eta_hi : ndarray (A, S)
        Each seed's smallest failed LR above it (inf: none failed above).
    pred_lower, pred_point, pred_upper, pred_finite : ndarray (A,)
        :func:`~lrtheory.results.sharpness.derivation.predict_lambda1` on the same inputs.
    seconds : float
    """

    depth: np.ndarray
    width: np.ndarray
    Ln: np.ndarray
    eta_star: np.ndarray
    eta_bracket: np.ndarray
    lam1: np.ndarray
    lam1_ce: np.ndarray
    lam1_w: np.ndarray
    eta_lo: np.ndarray
    eta_hi: np.ndarray
    pred_lower: np.ndarray
    pred_point: np.ndarray
    pred_upper: np.ndarray
    pred_finite: np.ndarray
    seconds: float

    @property
    def lam1_w_geo(self) -> np.ndarray:
        """Geometric mean of ``lam1_w`` over seeds ``(A,)``."""
        return geo_mean(self.lam1_w)

    @property
    def lam1_geo(self) -> np.ndarray:
        """Geometric mean of ``lam1`` over seeds ``(A,)``."""
        return geo_mean(self.lam1)

    @property
    def lam1_ce_geo(self) -> np.ndarray:
        """Geometric mean of ``lam1_ce`` over seeds ``(A,)``."""
        return geo_mean(self.lam1_ce)

    @property
    def product(self) -> np.ndarray:
        """``eta* x lambda_1`` of the CE loss (geometric mean over seeds), ``(A,)``."""
        return self.eta_star * self.lam1_ce_geo


@dataclass(frozen=True)
class PlainMeasurement:
    """``eta*`` and its bracket on the main grid *without* condition (ii) (every layer at one LR)."""

    eta_star: np.ndarray
    eta_bracket: np.ndarray


@dataclass(frozen=True)
class NarrowMeasurement:
    """``eta*`` and ``lambda_1`` where width is not large compared with depth.

    Attributes
    ----------
    depth, width, Ln : ndarray (B,)
    eta_star : ndarray (B,)
        With condition (ii); NaN where no LR reached the threshold.
    lam1 : ndarray (B, S)
    pred_point : ndarray (B,)
    """

    depth: np.ndarray
    width: np.ndarray
    Ln: np.ndarray
    eta_star: np.ndarray
    lam1: np.ndarray
    pred_point: np.ndarray

    @property
    def spread(self) -> np.ndarray:
        """Largest over smallest ``lambda_1`` across seeds, per architecture ``(B,)``."""
        return self.lam1.max(1) / self.lam1.min(1)


@dataclass(frozen=True)
class LossCurves:
    """Training curves just below and just above ``eta*`` for one architecture.

    Attributes
    ----------
    depth, width : int
    eta_star : float
    etas : ndarray (E,)
        The learning rates run (fractions and multiples of ``eta*``).
    step : ndarray (T,)
    loss : ndarray (T, E)
        Full training loss (NaN after divergence); one initialization.
    test_acc : ndarray (T, E)
    threshold : float
    """

    depth: int
    width: int
    eta_star: float
    etas: np.ndarray
    step: np.ndarray
    loss: np.ndarray
    test_acc: np.ndarray
    threshold: float


@dataclass(frozen=True)
class BisectionMeasurement:
    """The paper's Algorithm 1 (plain bisection) on the networks of the main grid's searches.

    Attributes
    ----------
    depth, width, Ln : ndarray (A,)
    lo, hi : ndarray (A, S)
        Final bracket per seed (``lo`` succeeded, or is the start's lower end if nothing did).
    etas, success : ndarray (A, I, S)
        The midpoints tried, step by step, and whether each reached the threshold.
    bracket : (float, float)
        The start bracket.
    """

    depth: np.ndarray
    width: np.ndarray
    Ln: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    etas: np.ndarray
    success: np.ndarray
    bracket: Tuple[float, float]

    @property
    def eta_star(self) -> np.ndarray:
        """Geometric mean over seeds of the bisection's estimate ``lo`` ``(A,)``."""
        return geo_mean(self.lo)


@dataclass(frozen=True)
class ThresholdStudy:
    """Best validation accuracy of every (LR, seed) run at fixed architectures, for eta*(t).

    Attributes
    ----------
    depth, width, Ln : ndarray (A,)
    etas : ndarray (E,)
    best : ndarray (A, E, S)
    thresholds : ndarray (T,)
    """

    depth: np.ndarray
    width: np.ndarray
    Ln: np.ndarray
    etas: np.ndarray
    best: np.ndarray
    thresholds: np.ndarray

    def eta_star(self, t: float) -> np.ndarray:
        """eta* at threshold ``t`` per architecture ``(A,)`` (:func:`eta_star_by_threshold`)."""
        return eta_star_by_threshold(self.etas, self.best, t)

    def fits(self) -> Dict[float, LogLogFit]:
        """The power law of eta*(t) in ``L n`` for every threshold."""
        return {float(t): fit_power_law(self.Ln, self.eta_star(t)) for t in self.thresholds}


@dataclass(frozen=True)
class TaskMeasurement:
    """Both eta* procedures on one of the paper's tasks, on the same networks.

    Attributes
    ----------
    name : str
    depth, width, Ln : ndarray (A,)
    threshold : float
    grid_lo, grid_hi : ndarray (A, S)
        Our grid-then-refine search, per seed.
    bis_lo, bis_hi : ndarray (A, S)
        Plain bisection, per seed.
    bracket : (float, float)
        Bisection's start bracket.
    """

    name: str
    depth: np.ndarray
    width: np.ndarray
    Ln: np.ndarray
    threshold: float
    grid_lo: np.ndarray
    grid_hi: np.ndarray
    bis_lo: np.ndarray
    bis_hi: np.ndarray
    bracket: Tuple[float, float]


@dataclass(frozen=True)
class TaskLawMeasurement:
    """The eta* search on one of the paper's tasks at many architectures, with and without condition (ii).

    Attributes
    ----------
    name : str
    depth, width, Ln : ndarray (A,)
    eta_star, eta_lo : ndarray (A,), (A, S)
        The input layer at ``input_lr_mult`` (condition (ii)): eta* and each seed's largest success.
    eta_plain, plain_lo : ndarray (A,), (A, S)
        Every layer at the same LR, the same networks (NaN where not run so).
    lam1_w : ndarray (A, S)
        LR-weighted CE sharpness at init of the searched networks (condition (ii)).
    """

    name: str
    depth: np.ndarray
    width: np.ndarray
    Ln: np.ndarray
    eta_star: np.ndarray
    eta_lo: np.ndarray
    eta_plain: np.ndarray
    plain_lo: np.ndarray
    lam1_w: np.ndarray

    @property
    def lam1_w_geo(self) -> np.ndarray:
        """Geometric mean of ``lam1_w`` over seeds ``(A,)``."""
        return geo_mean(self.lam1_w)


def eta_star_by_threshold(etas, best, t: float) -> np.ndarray:
    """eta* at threshold ``t`` from a grid of runs: per seed the largest LR whose best accuracy
    reached ``t``, geometric mean over the seeds that reached it at some LR (NaN if none).

    Parameters
    ----------
    etas : (E,)
    best : (A, E, S) best validation accuracy per run

    Example
    -------
    >>> best = np.array([[[0.9], [0.95], [0.5]]])
    >>> eta_star_by_threshold([0.5, 1.0, 2.0], best, 0.9).tolist()
    [1.0]
    """
    etas = np.asarray(etas, dtype=np.float64)
    ok = np.asarray(best, dtype=np.float64) >= float(t)  # (A, E, S)
    top = np.where(ok, etas[None, :, None], np.nan)
    with np.errstate(all="ignore"):
        per_seed = np.nanmax(np.where(ok.any(1, keepdims=True), top, 0.0), axis=1)  # (A, S)
    per_seed = np.where(ok.any(1), per_seed, np.nan)
    out = np.full(per_seed.shape[0], np.nan)
    for a in range(per_seed.shape[0]):
        v = per_seed[a][np.isfinite(per_seed[a])]
        if v.size:
            out[a] = float(np.exp(np.mean(np.log(v))))
    return out


def procedure_gap(search_lo, bisection_lo) -> np.ndarray:
    """Per architecture and seed, the bisection's estimate over the search's ``(A, S)`` (NaN where
    the search found nothing).

    Example
    -------
    >>> procedure_gap([[1.0, 2.0]], [[0.25, 2.0]]).tolist()
    [[0.25, 1.0]]
    """
    a = np.asarray(search_lo, dtype=np.float64)
    b = np.asarray(bisection_lo, dtype=np.float64)
    with np.errstate(all="ignore"):
        return np.where(np.isfinite(a) & (a > 0), b / a, np.nan)


@dataclass(frozen=True)
class BoundsSummary:
    """How the measured ``lambda_1`` sits against its prediction and bounds.

    Attributes
    ----------
    ratio : ndarray (A,)
        Geometric mean over seeds / the infinite-width point prediction.
    inside : bool
        Every seed's ``lambda_1`` within [lower, upper].
    lower_gap : (float, float)
        Range over architectures of (smallest seed / lower bound).
    upper_gap : (float, float)
        Range over architectures of (upper bound / largest seed).
    wide_spread : float
        Largest over architectures of (largest / smallest seed).
    """

    ratio: np.ndarray
    inside: bool
    lower_gap: Tuple[float, float]
    upper_gap: Tuple[float, float]
    wide_spread: float


def fit_power_law(x, y) -> LogLogFit:
    """Fit ``y = c * x**slope`` (:func:`lrtheory.core.stats.loglog_fit`), dropping non-finite pairs.

    Raises
    ------
    ValueError
        If shapes differ, a value is non-positive, or fewer than 3 finite pairs remain (two
        points leave no residual for a standard error).

    Example
    -------
    >>> round(fit_power_law([1, 2, 4, 8], [3, 1.5, 0.75, 0.375]).slope, 12)
    -1.0
    """
    fx, fy = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if fx.shape == fy.shape:
        m = int(np.sum(np.isfinite(fx) & np.isfinite(fy)))
        if m < 3:
            raise ValueError(f"x: need at least 3 finite points, got {m}")
    return loglog_fit(fx, fy, drop_nonfinite=True)


def geo_mean(a, axis: int = 1) -> np.ndarray:
    """Geometric mean along ``axis`` (over seeds)."""
    return np.exp(np.mean(np.log(np.asarray(a, dtype=np.float64)), axis=axis))


def chapter_fits(grid: GridMeasurement, plain: PlainMeasurement) -> Dict[str, LogLogFit]:
    """The chapter's power laws in ``L n``: eta* with and without condition (ii), ``lambda_1``
    of both losses, and the product ``eta* lambda_1`` (CE)."""
    return {
        "eta* (input layer at rho_in)": fit_power_law(grid.Ln, grid.eta_star),
        "eta* (all layers same LR)": fit_power_law(grid.Ln, plain.eta_star),
        "lambda_1 (squared loss)": fit_power_law(grid.Ln, grid.lam1_geo),
        "lambda_1 (cross-entropy)": fit_power_law(grid.Ln, grid.lam1_ce_geo),
        "lambda_1 (CE, LR-weighted)": fit_power_law(grid.Ln, grid.lam1_w_geo),
        "eta* x lambda_1 (CE)": fit_power_law(grid.Ln, grid.product),
    }


def bounds_summary(grid: GridMeasurement) -> BoundsSummary:
    """Where the measured ``lambda_1`` lies against the prediction and the two bounds."""
    lo_gap = grid.lam1.min(1) / grid.pred_lower
    up_gap = grid.pred_upper / grid.lam1.max(1)
    inside = bool(np.all((grid.lam1 >= grid.pred_lower[:, None]) & (grid.lam1 <= grid.pred_upper[:, None])))
    return BoundsSummary(ratio=grid.lam1_geo / grid.pred_point, inside=inside,
                         lower_gap=(float(lo_gap.min()), float(lo_gap.max())),
                         upper_gap=(float(up_gap.min()), float(up_gap.max())),
                         wide_spread=float(np.max(grid.lam1.max(1) / grid.lam1.min(1))))


def eta_star_from_grid(rows, *, min_test_acc: Optional[float] = None) -> Dict[tuple, Dict[str, float]]:
    """eta* per architecture from ``max_lr_grid`` rows (e.g. :func:`~lrtheory.core.sweep.load_results`).

    A grid eta *succeeds* at an architecture when every seed run at it succeeds: does
    not diverge and, if ``min_test_acc`` is given, ends with ``test_acc >= min_test_acc``.
    eta* is the largest succeeding eta below the first failing one (the failures above
    it bracket the edge).

    Parameters
    ----------
    rows : sequence of (config, result)
    min_test_acc : float in (0, 1], optional

    Returns
    -------
    dict (depth, width) -> {"eta_star": float, "eta_fail": float}
        NaN where no eta succeeds (``eta_star``) or none fails (``eta_fail``).

    Raises
    ------
    ValueError
        If ``min_test_acc`` is outside (0, 1].

    Example
    -------
    >>> rows = [({"depth": 1, "width": 8, "eta": e, "seed": 0}, {"diverged": e > 1, "test_acc": 0.9})
    ...         for e in (0.5, 1.0, 2.0)]
    >>> eta_star_from_grid(rows)[(1, 8)]
    {'eta_star': 1.0, 'eta_fail': 2.0}
    """
    if min_test_acc is not None:
        min_test_acc = validate.in_range(min_test_acc, "min_test_acc", 0.0, 1.0, inclusive=(False, True))
    ok: Dict[tuple, Dict[float, bool]] = {}
    for config, result in rows:
        good = not result.get("diverged", False)
        if good and min_test_acc is not None:
            acc = result.get("test_acc")
            good = acc is not None and acc >= min_test_acc
        per_eta = ok.setdefault((config["depth"], config["width"]), {})
        per_eta[config["eta"]] = per_eta.get(config["eta"], True) and good
    out = {}
    for arch, per_eta in ok.items():
        etas = sorted(per_eta)
        fail = next((e for e in etas if not per_eta[e]), math.nan)
        below = [e for e in etas if per_eta[e] and not e > fail]
        out[arch] = {"eta_star": max(below) if below else math.nan, "eta_fail": fail}
    return out


@dataclass(frozen=True)
class WideMeasurement:
    """The main grid's eta* searches and sharpness at widths well above depths (``eta_star_wide``).

    Attributes
    ----------
    depth, width, Ln : ndarray (W,)
    eta_star : ndarray (W,)
        Condition (ii) (the input layer at ``input_lr_mult``).
    eta_lo : ndarray (W, S)
        Per seed (NaN: no success).
    eta_plain : ndarray (W,)
        Every layer at the same LR.
    lam1, lam1_w : ndarray (W, S')
        ``lambda_1`` at init per seed: squared loss, and CE LR-weighted.
    """

    depth: np.ndarray
    width: np.ndarray
    Ln: np.ndarray
    eta_star: np.ndarray
    eta_lo: np.ndarray
    eta_plain: np.ndarray
    lam1: np.ndarray
    lam1_w: np.ndarray

    @property
    def lam1_geo(self) -> np.ndarray:
        """Geometric mean of ``lam1`` over seeds ``(W,)``."""
        return geo_mean(self.lam1)

    @property
    def lam1_w_geo(self) -> np.ndarray:
        """Geometric mean of ``lam1_w`` over seeds ``(W,)``."""
        return geo_mean(self.lam1_w)


@dataclass(frozen=True)
class DepthWidthFit:
    """OLS fit ``log y = a + b_L log L + b_n log n`` (separate exponents of depth and width).

    The paper's law ``c (L n)^(-p)`` is the special case ``b_L = b_n = -p``; ``diff`` is
    ``b_L - b_n`` with its standard error, the test of that special case.

    Attributes
    ----------
    depth_exp, width_exp : float
        ``b_L`` and ``b_n``.
    depth_se, width_se : float
    diff, diff_se : float
        ``b_L - b_n`` and its standard error (from the covariance of the two).
    r2 : float
        Fraction of the variance of ``log y`` explained (two exponents).
    n : int
    """

    depth_exp: float
    width_exp: float
    depth_se: float
    width_se: float
    diff: float
    diff_se: float
    r2: float
    n: int


def depth_width_fit(depth, width, y) -> DepthWidthFit:
    """Fit ``y = c L^b_L n^b_n`` by OLS on logs, dropping non-finite ``y``.

    Raises
    ------
    ValueError
        If fewer than 4 finite points remain (three coefficients need a residual).

    Example
    -------
    >>> L = np.array([1, 2, 4, 1, 2, 4]); n = np.array([8, 8, 8, 32, 32, 32])
    >>> f = depth_width_fit(L, n, 3.0 / (L ** 1.0 * n ** 0.5))
    >>> round(f.depth_exp, 12), round(f.width_exp, 12), round(f.r2, 12)
    (-1.0, -0.5, 1.0)
    """
    L = np.asarray(depth, dtype=np.float64).ravel()
    n = np.asarray(width, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if not (L.shape == n.shape == y.shape):
        raise ValueError(f"y: depth, width and y must have the same shape, got {L.shape}, {n.shape}, {y.shape}")
    ok = np.isfinite(y) & (y > 0)
    if ok.sum() < 4:
        raise ValueError(f"y: need at least 4 finite positive points, got {int(ok.sum())}")
    X = np.column_stack([np.ones(int(ok.sum())), np.log(L[ok]), np.log(n[ok])])
    t = np.log(y[ok])
    beta, *_ = np.linalg.lstsq(X, t, rcond=None)
    r = t - X @ beta
    m = t.size
    s2 = float(r @ r) / (m - 3) if m > 3 else math.nan
    cov = s2 * np.linalg.pinv(X.T @ X)
    tc = t - t.mean()
    r2 = 1.0 - float(r @ r) / float(tc @ tc) if float(tc @ tc) > 0 else math.nan
    diff_var = cov[1, 1] + cov[2, 2] - 2 * cov[1, 2]
    return DepthWidthFit(depth_exp=float(beta[1]), width_exp=float(beta[2]), depth_se=float(np.sqrt(cov[1, 1])),
                         width_se=float(np.sqrt(cov[2, 2])), diff=float(beta[1] - beta[2]),
                         diff_se=float(np.sqrt(max(diff_var, 0.0))), r2=float(r2), n=int(m))


@dataclass(frozen=True)
class VarianceSources:
    """Where the scatter of ``log eta*`` about the ``(L n)`` power law comes from.

    Attributes
    ----------
    residual_var : float
        Mean squared residual of ``log eta*`` (seed geometric means) about the ``L n`` fit.
    seed_var : float
        The part the seeds explain: pooled within-architecture variance of each seed's
        ``log eta*`` divided by the number of seeds (the variance of a seed mean).
    bracket_var : float
        The part the bracket resolution explains: ``(log(hi / lo))^2 / 12`` (a uniform position
        within the final bracket), averaged over seeds and architectures, divided by the seeds.
    two_factor_var : float
        Mean squared residual about the fit with separate depth and width exponents.
    """

    residual_var: float
    seed_var: float
    bracket_var: float
    two_factor_var: float


def variance_sources(grid: "GridMeasurement") -> VarianceSources:
    """The scatter of the reference eta* law split into seeds, bracket resolution and architecture.

    If the seeds and the brackets explained the scatter, ``seed_var + bracket_var`` would be
    about ``residual_var``; what is left is architecture (``eta*`` is not a function of ``L n``
    alone), which ``two_factor_var`` shows: separate exponents of depth and width remove it.
    """
    lo = np.asarray(grid.eta_lo, dtype=np.float64)
    good = np.isfinite(grid.eta_star)
    fit = fit_power_law(grid.Ln[good], grid.eta_star[good])
    res = np.log(grid.eta_star[good]) - (fit.intercept + fit.slope * np.log(grid.Ln[good]))
    ll = np.log(lo[good])
    S = ll.shape[1]
    within = float(np.nanmean(np.nanvar(ll, axis=1, ddof=1))) if S > 1 else math.nan
    hi = np.asarray(grid.eta_hi, dtype=np.float64)[good]
    with np.errstate(all="ignore"):
        span = np.log(hi / lo[good])
    bracket = float(np.mean(np.where(np.isfinite(span), span, 0.0) ** 2) / 12.0) / S
    tf = depth_width_fit(grid.depth[good], grid.width[good], grid.eta_star[good])
    tf_res = (1.0 - tf.r2) * float(np.var(np.log(grid.eta_star[good])))
    return VarianceSources(residual_var=float(np.mean(res ** 2)), seed_var=within / S, bracket_var=bracket,
                           two_factor_var=float(tf_res))


def finite_width_constants(depth, width, measured, point) -> np.ndarray:
    """Per architecture, the constant ``c`` of ``1 + c L / n`` that would make the prediction exact:
    ``(measured / point - 1) n / L`` (how :data:`~lrtheory.results.sharpness.derivation.FINITE_WIDTH_C`
    is calibrated, on :data:`~lrtheory.results.sharpness.derivation.CALIBRATION_ARCHS` only).

    Example
    -------
    >>> finite_width_constants([2], [32], [3.0], [1.5]).tolist()
    [16.0]
    """
    L = np.asarray(depth, dtype=np.float64)
    n = np.asarray(width, dtype=np.float64)
    return (np.asarray(measured, dtype=np.float64) / np.asarray(point, dtype=np.float64) - 1.0) * n / L
