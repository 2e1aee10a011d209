"""Fits with standard errors: straight lines, power laws (log-log lines), grid minima.

Every chapter that measures an exponent fits a line in log-log coordinates; this module
is the one place that does it, with the uncertainty a claim's tolerance needs:

* :func:`linear_fit` / :func:`loglog_fit`: ordinary least squares ``y = a + b x``
  (on ``log y`` against ``log x`` for the second), returning a frozen
  :class:`LinearFit` / :class:`LogLogFit` with the slope, intercept, their standard
  errors, ``r2`` and a confidence interval of the slope. The standard error of the
  slope is, depending on what you pass:

  ==========================  =======================================================
  ``method``                  ``slope_se`` and ``(ci_low, ci_high)``
  ==========================  =======================================================
  ``"ols"`` (default)         the OLS standard error from the residuals,
                              ``sqrt(s^2 / Sxx)`` with ``s^2 = RSS / (n - 2)``;
                              Student-t interval with ``n - 2`` degrees of freedom
  ``"propagated"`` (``y_se``)  known per-point errors of ``y`` propagated through the
                              OLS estimator, ``sqrt(sum xc_i^2 se_i^2) / Sxx``;
                              normal interval
  ``"bootstrap"`` (``n_boot``) standard deviation of the slope over ``n_boot``
                              resamples; percentile interval. With ``groups``, whole
                              groups are resampled (e.g. all points of one seed
                              together, when a seed's points are correlated);
                              without, single points
  ==========================  =======================================================

  ``ols_se`` always holds the OLS standard error.
* :func:`ols_lines`: vectorized slopes and intercepts of many lines on one ``x``
  (bootstrap replicates, one line per seed).
* :func:`argmin_on_grid`: the minimizer of a function sampled on a grid, optionally
  refined by a parabola through the best point and its neighbours.

The bootstrap draws from ``numpy.random.default_rng(seed)``; ``seed=None`` means 0, so
a fit is reproducible unless you pass other seeds.

Examples
--------
>>> fit = loglog_fit([1, 2, 4, 8], [3, 1.5, 0.75, 0.375])
>>> round(fit.slope, 12), round(fit.prefactor, 12), fit.n
(-1.0, 3.0, 4)
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

__all__ = ["LinearFit", "LogLogFit", "GridArgmin", "linear_fit", "loglog_fit", "ols_lines", "argmin_on_grid"]

_METHODS = ("ols", "propagated", "bootstrap")


@dataclass(frozen=True)
class LinearFit:
    """Least-squares line ``y = intercept + slope * x``.

    Attributes
    ----------
    slope, intercept : float
    slope_se : float
        Standard error of the slope by ``method`` (see the module docstring).
    intercept_se : float
        OLS (or, with ``y_se``, propagated) standard error of the intercept.
    ols_se : float
        OLS standard error of the slope (NaN with 2 points: no residual degree of freedom).
    r2 : float
        Coefficient of determination (NaN when all ``y`` are equal).
    n : int
        Number of points fitted.
    ci_low, ci_high : float
        Confidence interval of the slope at ``level``.
    level : float
    method : str
        ``"ols"``, ``"propagated"`` or ``"bootstrap"``.
    n_boot : int
        Bootstrap resamples used (0 without bootstrap; degenerate resamples, where all
        drawn ``x`` are equal, are left out).
    """

    slope: float
    intercept: float
    slope_se: float
    intercept_se: float
    ols_se: float
    r2: float
    n: int
    ci_low: float
    ci_high: float
    level: float
    method: str
    n_boot: int

    @property
    def ci(self) -> Tuple[float, float]:
        """``(ci_low, ci_high)``."""
        return (self.ci_low, self.ci_high)

    def predict(self, x) -> np.ndarray:
        """``intercept + slope * x``."""
        return self.intercept + self.slope * np.asarray(x, dtype=np.float64)


@dataclass(frozen=True)
class LogLogFit(LinearFit):
    """Power law ``y = prefactor * x**slope``: a :class:`LinearFit` of ``log y`` on ``log x``.

    ``intercept`` is ``log(prefactor)`` (natural log); standard errors are those of the line.
    """

    @property
    def prefactor(self) -> float:
        """``exp(intercept)``."""
        return math.exp(self.intercept)

    def predict(self, x) -> np.ndarray:
        """``prefactor * x**slope``."""
        return np.exp(self.intercept) * np.asarray(x, dtype=np.float64) ** self.slope


@dataclass(frozen=True)
class GridArgmin:
    """Minimizer of a sampled function.

    Attributes
    ----------
    x : float
        The minimizer: the best grid point, or the parabola's vertex when ``refined``.
    index : int
        Index of the best grid point.
    value : float
        The sampled value at ``index`` (not the parabola's).
    refined : bool
        Whether ``x`` is a parabola vertex rather than a grid point.
    """

    x: float
    index: int
    value: float
    refined: bool


def _vec(v, name: str) -> np.ndarray:
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected an array of real numbers, got {v!r}") from None
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-d array, got shape {a.shape}")
    return a


def ols_lines(x, Y) -> Tuple[np.ndarray, np.ndarray]:
    """Slopes and intercepts of the least-squares lines of every column of ``Y`` on ``x``.

    Parameters
    ----------
    x : array (m,)
    Y : array (m,) or (m, B)
        One line per column.

    Returns
    -------
    slope, intercept : ndarray (B,), or floats for 1-d ``Y``
        Same as ``numpy.polyfit(x, Y, 1)``, computed from centred sums.

    Raises
    ------
    ValueError
        If shapes disagree, fewer than 2 points, or all ``x`` are equal.

    Examples
    --------
    >>> s, c = ols_lines([0, 1, 2], [[1, 0], [3, 0], [5, 0]])
    >>> s.tolist(), c.tolist()
    ([2.0, 0.0], [1.0, 0.0])
    """
    x = _vec(x, "x")
    Ya = np.asarray(Y, dtype=np.float64)
    one = Ya.ndim == 1
    Y2 = Ya[:, None] if one else Ya
    if Y2.ndim != 2 or Y2.shape[0] != x.size:
        raise ValueError(f"Y: expected shape ({x.size},) or ({x.size}, B), got {Ya.shape}")
    if x.size < 2:
        raise ValueError(f"x: need at least 2 points, got {x.size}")
    xc = x - x.mean()
    sxx = float(xc @ xc)
    if not sxx > 0:
        raise ValueError("x: all x are equal, the slope is undefined")
    slope = (xc @ (Y2 - Y2.mean(0))) / sxx
    intercept = Y2.mean(0) - slope * x.mean()
    if one:
        return float(slope[0]), float(intercept[0])
    return slope, intercept


def _check_level(level) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) or not 0 < level < 1:
        raise ValueError(f"level: expected a number in (0, 1), got {level!r}")
    return float(level)


def _fit(x, y, *, groups, n_boot, seed, level, y_se, drop_nonfinite, log, cls):
    x = _vec(x, "x")
    y = _vec(y, "y")
    if y.shape != x.shape:
        raise ValueError(f"y: shape {y.shape} differs from x's {x.shape}")
    level = _check_level(level)
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0 or n_boot == 1:
        raise ValueError(f"n_boot: expected 0 (no bootstrap) or an integer >= 2, got {n_boot!r}")
    g = None
    if groups is not None:
        g = np.asarray(groups)
        if g.shape != x.shape:
            raise ValueError(f"groups: expected one label per point, shape {x.shape}, got {g.shape}")
        if n_boot == 0:
            raise ValueError("groups: only used by the bootstrap; pass n_boot >= 2")
    se = None
    if y_se is not None:
        if n_boot:
            raise ValueError("y_se: propagated errors and the bootstrap are two methods; pass one")
        se = _vec(y_se, "y_se")
        if se.shape != x.shape or not np.all(np.isfinite(se)) or np.any(se < 0):
            raise ValueError(f"y_se: expected {x.size} finite values >= 0, got {y_se!r}")
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.all():
        if not drop_nonfinite:
            raise ValueError("x: NaN or inf in x or y (pass drop_nonfinite=True to drop those points)")
        x, y = x[ok], y[ok]
        g = g[ok] if g is not None else None
        se = se[ok] if se is not None else None
    if log:
        if np.any(x <= 0):
            raise ValueError("x: a log-log fit needs positive x")
        if np.any(y <= 0):
            raise ValueError("y: a log-log fit needs positive y")
        if se is not None:
            se = se / y  # delta method: se(log y) = se(y) / y
        x, y = np.log(x), np.log(y)
    m = x.size
    if m < 2:
        raise ValueError(f"x: need at least 2 points, got {m}")
    slope, intercept = ols_lines(x, y)
    xc = x - x.mean()
    sxx = float(xc @ xc)
    res = y - (intercept + slope * x)
    rss = float(res @ res)
    sst = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - rss / sst if sst > 0 else math.nan
    s2 = rss / (m - 2) if m > 2 else math.nan
    ols_se = math.sqrt(s2 / sxx)
    int_se = math.sqrt(s2 * (1.0 / m + x.mean() ** 2 / sxx))
    from scipy import stats as st  # scipy.stats is slow to import; only fits need it

    if se is not None:
        method = "propagated"
        slope_se = math.sqrt(float((xc ** 2 * se ** 2).sum())) / sxx
        # intercept = ybar - slope xbar = sum_i (1/m - xbar xc_i / Sxx) y_i
        wi = 1.0 / m - x.mean() * xc / sxx
        int_se = math.sqrt(float((wi ** 2 * se ** 2).sum()))
        z = float(st.norm.ppf(0.5 + level / 2))
        lo, hi = slope - z * slope_se, slope + z * slope_se
        used = 0
    elif n_boot:
        method = "bootstrap"
        rng = np.random.default_rng(0 if seed is None else seed)
        if g is None:
            codes, G = np.arange(m), m
        else:
            _, codes = np.unique(g, return_inverse=True)
            codes = codes.reshape(-1)
            G = int(codes.max()) + 1
        draws = rng.integers(0, G, size=(n_boot, G))
        counts = np.zeros((n_boot, G))
        np.add.at(counts, (np.repeat(np.arange(n_boot), G), draws.reshape(-1)), 1.0)
        w = counts[:, codes]  # (B, m): how often each point enters each resample
        sw = w.sum(1, keepdims=True)
        xm = (w * x).sum(1, keepdims=True) / sw
        ym = (w * y).sum(1, keepdims=True) / sw
        bxx = (w * (x - xm) ** 2).sum(1)
        bxy = (w * (x - xm) * (y - ym)).sum(1)
        good = bxx > 1e-12 * sxx
        bs = bxy[good] / bxx[good]
        used = int(bs.size)
        if used < 2:
            raise ValueError(f"n_boot: fewer than 2 non-degenerate resamples out of {n_boot}")
        slope_se = float(np.std(bs, ddof=1))
        lo, hi = (float(v) for v in np.percentile(bs, [50 * (1 - level), 50 * (1 + level)]))
    else:
        method = "ols"
        slope_se = ols_se
        t = float(st.t.ppf(0.5 + level / 2, m - 2)) if m > 2 else math.nan
        lo, hi = slope - t * slope_se, slope + t * slope_se
        used = 0
    return cls(slope=float(slope), intercept=float(intercept), slope_se=float(slope_se), intercept_se=float(int_se),
               ols_se=float(ols_se), r2=float(r2), n=int(m), ci_low=float(lo), ci_high=float(hi), level=level,
               method=method, n_boot=used)


def linear_fit(x, y, *, groups=None, n_boot: int = 0, seed: Optional[int] = None, level: float = 0.95,
               y_se=None, drop_nonfinite: bool = False) -> LinearFit:
    """Least-squares line ``y = intercept + slope * x`` with the standard error of the slope.

    Parameters
    ----------
    x, y : array (n,)
        At least 2 points with distinct ``x`` (3 for an OLS standard error).
    groups : array (n,), optional
        Group label of each point (e.g. its seed index); the bootstrap resamples whole
        groups. Needs ``n_boot``.
    n_boot : int
        Bootstrap resamples (0: none; else >= 2). ``slope_se`` is then their standard
        deviation and the interval their percentiles.
    seed : int, optional
        Seed of the bootstrap's generator (None means 0).
    level : float
        Confidence level of ``(ci_low, ci_high)``, in (0, 1).
    y_se : array (n,), optional
        Known standard errors of ``y`` (Monte Carlo errors of each point), propagated
        into ``slope_se``; not combinable with ``n_boot``.
    drop_nonfinite : bool
        Drop points where ``x`` or ``y`` is NaN or inf (a diverged run) instead of raising.

    Returns
    -------
    LinearFit

    Raises
    ------
    ValueError
        Naming the argument: shapes that differ, fewer than 2 points, all ``x`` equal,
        non-finite values (unless dropped), a bad ``level`` or ``n_boot``.

    See Also
    --------
    loglog_fit : the same on ``(log x, log y)``.
    ols_lines : many lines at once, slopes only.

    Examples
    --------
    >>> fit = linear_fit([0, 1, 2, 3], [1, 3, 5, 7.5])
    >>> round(fit.slope, 10), round(fit.intercept, 10), fit.method
    (2.15, 0.9, 'ols')
    """
    return _fit(x, y, groups=groups, n_boot=n_boot, seed=seed, level=level, y_se=y_se,
                drop_nonfinite=drop_nonfinite, log=False, cls=LinearFit)


def loglog_fit(x, y, *, groups=None, n_boot: int = 0, seed: Optional[int] = None, level: float = 0.95,
               y_se=None, drop_nonfinite: bool = False) -> LogLogFit:
    """Power law ``y = prefactor * x**slope``: least squares of ``log y`` on ``log x``.

    Same arguments as :func:`linear_fit`; ``x`` and ``y`` must be positive, and
    ``y_se`` is the standard error of ``y`` itself (converted to that of ``log y`` as
    ``y_se / y``). Non-finite points are dropped only with ``drop_nonfinite``; a zero or
    negative value always raises.

    Returns
    -------
    LogLogFit
        ``slope`` is the exponent, ``prefactor`` = ``exp(intercept)``.

    Examples
    --------
    Bootstrap over seeds, each seed contributing one point per width:

    >>> widths = np.repeat([64.0, 128.0, 256.0], 4)
    >>> seeds = np.tile(np.arange(4), 3)
    >>> noise = 1 + 0.01 * np.cos(seeds + widths)
    >>> fit = loglog_fit(widths, 2.0 / widths * noise, groups=seeds, n_boot=200, seed=1)
    >>> fit.method, abs(fit.slope + 1) < 0.02, fit.ci_low <= fit.slope <= fit.ci_high
    ('bootstrap', True, True)
    """
    return _fit(x, y, groups=groups, n_boot=n_boot, seed=seed, level=level, y_se=y_se,
                drop_nonfinite=drop_nonfinite, log=True, cls=LogLogFit)


def argmin_on_grid(x, y, *, refine: Optional[str] = None, log_y: bool = False) -> GridArgmin:
    """The minimizer of ``y`` sampled at the grid ``x``; NaN and inf count as no value.

    Parameters
    ----------
    x : array (G,)
        Strictly increasing grid (e.g. ``log2`` learning rates).
    y : array (G,)
        Sampled values (``inf``/NaN for a diverged run).
    refine : None or "parabola"
        ``"parabola"``: the vertex of the parabola through the best point and its two
        neighbours (fitted to ``log y`` with ``log_y``), clipped to that 3-point window.
        The best grid point is returned unrefined when it lies at an edge, a neighbour
        has no finite value, or the parabola opens downward.
    log_y : bool
        Fit the parabola to ``log y`` (values floored at 1e-300).

    Returns
    -------
    GridArgmin

    Raises
    ------
    ValueError
        If shapes differ, ``x`` is not strictly increasing, no value is finite, or
        ``refine="parabola"`` with fewer than 3 points.

    Examples
    --------
    >>> argmin_on_grid([0, 1, 2, 3], [4.0, 1.0, 0.0, 1.0]).x
    2.0
    >>> round(argmin_on_grid([0, 1, 2, 3], [4.0, 1.0, 0.0, 1.0], refine="parabola").x, 12)
    2.0
    >>> round(argmin_on_grid([0, 1, 2], [1.0, 0.0, 0.5], refine="parabola").x, 12)  # vertex at 7/6
    1.166666666667
    """
    xg = _vec(x, "x")
    v = _vec(y, "y")
    if v.shape != xg.shape or xg.size == 0:
        raise ValueError(f"y: expected the shape of x {xg.shape}, got {v.shape}")
    if not np.all(np.isfinite(xg)) or np.any(np.diff(xg) <= 0):
        raise ValueError("x: expected a finite, strictly increasing grid")
    if refine not in (None, "parabola"):
        raise ValueError(f"refine: expected None or 'parabola', got {refine!r}")
    if refine == "parabola" and xg.size < 3:
        raise ValueError(f"y: a parabola needs at least 3 points, got {xg.size}")
    v = np.where(np.isfinite(v), v, np.inf)
    if not np.isfinite(v).any():
        raise ValueError("y: no finite value")
    i = int(np.argmin(v))
    best = GridArgmin(float(xg[i]), i, float(v[i]), False)
    if refine is None or i == 0 or i == xg.size - 1 or not np.all(np.isfinite(v[i - 1:i + 2])):
        return best
    w = v[i - 1:i + 2]
    yy = np.log(np.maximum(w, 1e-300)) if log_y else w
    a, b, _ = np.polyfit(xg[i - 1:i + 2], yy, 2)
    if a <= 0:
        return best
    return GridArgmin(float(np.clip(-b / (2 * a), xg[i - 1], xg[i + 1])), i, float(v[i]), True)
