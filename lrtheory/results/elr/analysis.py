"""Chapter 04, the analysis: ELR spread, where one step starts to widen it, ratio read-outs (numpy).

Nothing here trains or derives: these functions turn measured (or modelled) ELRs into the
numbers the claims compare.
"""
from __future__ import annotations

import math
from typing import Tuple

import numpy as np

from lrtheory.core import validate as V
from lrtheory.core.stats import loglog_fit

__all__ = ["spread", "mean_log_spread", "end_log_spread", "widening_onset", "spread_minimizer", "widening_onset_step",
           "log_ratio_from_norms",
           "window_mean", "decay_exponent", "log_spread_exponent"]


def spread(elrs, axis: int = -1) -> np.ndarray:
    """ELR spread: ``max / min`` of the layers' ELRs along ``axis``.

    Parameters
    ----------
    elrs : array, shape ``(..., L)``
        Positive ELRs (or ELRs per unit LR: the ratio is the same).
    axis : int

    Returns
    -------
    ndarray
        ``>= 1``; NaN where an entry is not finite (a diverged run).

    Raises
    ------
    ValueError
        If ``elrs`` is empty along ``axis``.

    Example
    -------
    >>> float(spread([0.1, 0.4, 0.2]))
    4.0
    """
    arr = np.asarray(elrs, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[axis] == 0:
        raise ValueError("elrs: expected at least one layer along axis")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = arr.max(axis=axis) / arr.min(axis=axis)
    bad = ~np.all(np.isfinite(arr), axis=axis) | ~(arr.min(axis=axis) > 0)
    return np.where(bad, np.nan, out)


def mean_log_spread(spreads) -> float:
    """Mean of ``log spread`` over steps ``1..T`` of a trace ``(T + 1,)`` (step 0, the common
    starting point, left out).

    Example
    -------
    >>> round(mean_log_spread([100.0, 1.0, np.e ** 2]), 6)
    1.0
    """
    s = np.asarray(spreads, dtype=np.float64)
    return float(np.mean(np.log(s[1:])))


def end_log_spread(spreads, last: int) -> float:
    """Mean of ``log spread`` over the last ``last`` entries of a trace (the state at the end of
    training, damped against step-to-step jitter).

    Example
    -------
    >>> round(end_log_spread([100.0, np.e, np.e ** 3], 2), 6)
    2.0
    """
    s = np.asarray(spreads, dtype=np.float64)
    return float(np.mean(np.log(s[-V.positive_int(last, "last"):])))


def spread_minimizer(etas, spread_after) -> float:
    """The LR at which the spread after one step is smallest: where widening starts (below it a
    larger LR leaves a smaller disparity, above it a larger one). A parabola in ``(log eta, log
    spread)`` through the grid minimum and its two neighbours (the grid point itself at an end
    of the grid or where the parabola does not open upward); non-finite spreads count as
    infinitely wide.

    Example
    -------
    >>> e = np.exp(np.linspace(-2, 2, 9))
    >>> round(spread_minimizer(e, np.exp((np.log(e) - 0.3) ** 2)), 6)
    1.349859
    """
    le = np.log(V.positive_array(etas, "etas", ndim=1, increasing=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        ls = np.log(np.asarray(spread_after, dtype=np.float64))
    if ls.shape != le.shape:
        raise ValueError(f"spread_after: expected shape {le.shape}, got {ls.shape}")
    ls = np.where(np.isfinite(ls), ls, np.inf)
    i = int(np.argmin(ls))
    if 0 < i < len(ls) - 1 and np.all(np.isfinite(ls[i - 1:i + 2])):
        x, y = le[i - 1:i + 2], ls[i - 1:i + 2]
        c2, c1, _ = np.polyfit(x, y, 2)
        if c2 > 0:
            return float(math.exp(min(max(-c1 / (2 * c2), x[0]), x[2])))
    return float(math.exp(le[i]))


def widening_onset_step(spreads, rise: float = 2.0) -> float:
    """The step at which widening starts in a run: the step of the smallest spread so far at the first
    step whose spread is ``rise`` times that smallest one (the update of that step is the first of the
    widening); NaN if the spread never rises so far.

    ``rise = 2``: a doubling, beyond the step-to-step jitter (up to about 1.4x) of the runs below
    their critical LR; where the smallest spread repeats, its first step counts.

    Parameters
    ----------
    spreads : array ``(T + 1,)``
        The spread before the update of each step (non-finite: counts as a rise, at that step).
    rise : float, > 1

    Example
    -------
    >>> widening_onset_step([16.0, 4.0, 1.5, 1.6, 2.5, 3.2, 1.0])
    2.0
    """
    s = np.asarray(spreads, dtype=np.float64)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"spreads: expected a non-empty 1-d trace, got shape {s.shape}")
    rise = V.positive_real(rise, "rise")
    if not rise > 1:
        raise ValueError(f"rise: expected a number > 1, got {rise!r}")
    best, at = math.inf, -1
    for t, v in enumerate(s):
        if not np.isfinite(v) or (at >= 0 and v >= rise * best):
            return float(at) if at >= 0 else math.nan
        if v < best:
            best, at = float(v), t
    return math.nan


def log_spread_exponent(spreads, t: Tuple[int, int]) -> float:
    """Exponent ``p`` of ``log spread ~ t^p`` between the steps ``t = (t1, t2)`` of a trace, each
    read as a :func:`window_mean`; NaN where a log spread is not positive (no power law).

    Example
    -------
    >>> tr = np.exp(1.0 / np.maximum(np.arange(401.0), 1))
    >>> round(log_spread_exponent(tr, (100, 400)), 2)
    -1.0
    """
    ls = np.log(np.asarray(spreads, dtype=np.float64))
    r = tuple(window_mean(ls, int(k)) for k in t)
    if not all(v > 0 for v in r):
        return math.nan
    return decay_exponent(t, r)


def widening_onset(etas, spread_before: float, spread_after) -> float:
    """Smallest LR above the grid's minimum at which the spread after one step exceeds the
    spread before it (log-linear interpolation between grid points); NaN if none.

    A non-finite spread after the step (a diverged step) counts as widening, at that grid LR.

    Parameters
    ----------
    etas : array ``(K,)``, increasing, > 0
    spread_before : float, > 0
    spread_after : array ``(K,)``

    Example
    -------
    >>> round(widening_onset([1.0, 2.0, 4.0], 4.0, [2.0, 1.0, 16.0]), 6)
    2.828427
    """
    le = np.log(V.positive_array(etas, "etas", ndim=1, increasing=True))
    lb = math.log(V.positive_real(spread_before, "spread_before"))
    with np.errstate(invalid="ignore", divide="ignore"):
        ls = np.log(np.asarray(spread_after, dtype=np.float64))
    if ls.shape != le.shape:
        raise ValueError(f"spread_after: expected shape {le.shape}, got {ls.shape}")
    i0 = int(np.nanargmin(ls))
    for i in range(i0 + 1, len(ls)):
        if not np.isfinite(ls[i]):
            return float(math.exp(le[i]))
        if ls[i] > lb:
            f = (lb - ls[i - 1]) / (ls[i] - ls[i - 1])
            return float(math.exp(le[i - 1] + f * (le[i] - le[i - 1])))
    return math.nan


def log_ratio_from_norms(S, c) -> np.ndarray:
    """``log(E_{2i}/E_{2i+1})`` of pairs of scale-invariant layers from their squared norms
    ``S (T+1, 2P)`` and their known gradient scales ``c (2P,)`` (``E = eta c / S``), one column per
    pair ``(T+1, P)``: free of the per-step noise of the gradient norms.

    Example
    -------
    >>> log_ratio_from_norms(np.array([[1.0, 1.0], [2.0, 4.0]]), [1.0, 1.0]).round(6).tolist()
    [[0.0], [0.693147]]
    """
    S = np.asarray(S, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)
    if S.ndim != 2 or S.shape[1] % 2 or c.shape != S.shape[1:]:
        raise ValueError(f"S: expected (T+1, 2P) norms with c of shape (2P,), got {S.shape} and {c.shape}")
    return np.log(S[:, 1::2] / S[:, 0::2]) + np.log(c[0::2] / c[1::2])


def window_mean(x, t: int) -> float:
    """Mean of ``x[t - w : t + 1]`` with ``w = max(1, t // 50)``: a short trailing window that
    damps step-to-step noise at step ``t``.

    Example
    -------
    >>> window_mean(np.arange(200.0), 100)
    99.0
    """
    w = max(1, int(t) // 50)
    return float(np.mean(np.asarray(x)[int(t) - w: int(t) + 1]))


def decay_exponent(t: Tuple[int, int], r: Tuple[float, float]) -> float:
    """Exponent ``p`` of ``r ~ t^p`` through the points ``t = (t1, t2, ...)``, ``r = (r1, r2, ...)``
    (a log-log least-squares line, :func:`lrtheory.core.stats.loglog_fit`; exact through two points).

    Example
    -------
    >>> round(decay_exponent((10, 100), (1.0, 0.1)), 12)
    -1.0
    """
    return float(loglog_fit(np.asarray(t, dtype=np.float64), np.asarray(r, dtype=np.float64)).slope)
