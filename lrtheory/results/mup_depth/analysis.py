"""Analysis of chapter 03 (numpy): the Monte Carlo grid, the fitted exponents, the best LR.

The fits are those of :mod:`lrtheory.core.stats`. The networks behind every (width, depth)
point are independent (each drawn from its own seed), so the bootstrap of the depth exponent
resamples the networks of each depth independently.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from lrtheory.core import validate
from lrtheory.core.stats import argmin_on_grid, loglog_fit, ols_lines

__all__ = ["GridPoint", "UpdateGrid", "DepthFit", "fit_depth_exponent", "top_layer_fit", "width_slopes",
           "readout_slopes", "TransferResult", "best_lr"]


@dataclass(frozen=True)
class GridPoint:
    """The Monte Carlo of one (width, depth) point: one part of :class:`UpdateGrid`.

    ``top`` (K,) the top-layer first-order coefficient per network; ``out_lin``,
    ``out_lin_scaled`` the mean output coefficients (readout LR multiplier 1 and ``1/n``);
    ``exact_top``, ``exact_top_se`` (G,) the exact step's mean and standard error, and
    ``layers`` (K, depth) every layer's coefficient, where recorded (else None).
    """

    width: int
    depth: int
    top: np.ndarray
    out_lin: float
    out_lin_scaled: float
    exact_top: Optional[np.ndarray] = None
    exact_top_se: Optional[np.ndarray] = None
    layers: Optional[np.ndarray] = None


@dataclass(frozen=True)
class UpdateGrid:
    """Monte Carlo over a (width, depth) grid.

    Attributes
    ----------
    widths, depths : tuple of int
    etas : ndarray (G,)
    top : ndarray (W, D, K)
        First-order coefficient of the top hidden layer ``l = L`` per network (NaN where
        ``L > max_depth_over_width * n`` was not run).
    layers : ndarray (K, Lmax)
        First-order coefficient of every layer of the deepest net at the largest width.
    exact_top : ndarray (D, G)
        Mean over networks of the exact top-layer change vs eta at the largest width.
    exact_top_se : ndarray (D, G)
    out_lin : ndarray (W, D)
        Mean first-order output change coefficient ``(df/deta)^2`` with all LR multipliers 1.
    out_lin_scaled : ndarray (W, D)
        The same with the readout LR multiplied by ``1/n``.
    n_seeds, n_boot : int
    tau : float
        The update target of the maximal-update LR.
    """

    widths: Tuple[int, ...]
    depths: Tuple[int, ...]
    etas: np.ndarray
    top: np.ndarray
    layers: np.ndarray
    exact_top: np.ndarray
    exact_top_se: np.ndarray
    out_lin: np.ndarray
    out_lin_scaled: np.ndarray
    n_seeds: int
    n_boot: int
    tau: float = 1.0

    @classmethod
    def from_points(cls, widths: Sequence[int], depths: Sequence[int], etas, points: Sequence[GridPoint],
                    n_seeds: int, n_boot: int, tau: float = 1.0) -> "UpdateGrid":
        """Assemble the grid from its points (NaN where a (width, depth) was not run)."""
        W_, D_ = len(widths), len(depths)
        top = np.full((W_, D_, n_seeds), np.nan)
        out_lin = np.full((W_, D_), np.nan)
        out_lin_scaled = np.full((W_, D_), np.nan)
        exact_top = np.full((D_, len(etas)), np.nan)
        exact_top_se = np.full((D_, len(etas)), np.nan)
        layers = None
        for p in points:
            i, j = list(widths).index(p.width), list(depths).index(p.depth)
            top[i, j] = p.top
            out_lin[i, j], out_lin_scaled[i, j] = p.out_lin, p.out_lin_scaled
            if p.exact_top is not None:
                exact_top[j], exact_top_se[j] = p.exact_top, p.exact_top_se
            if p.layers is not None:
                layers = p.layers
        return cls(tuple(widths), tuple(depths), np.asarray(etas, dtype=np.float64), top, layers, exact_top,
                   exact_top_se, out_lin, out_lin_scaled, int(n_seeds), int(n_boot), float(tau))

    def mean_se(self) -> Tuple[np.ndarray, np.ndarray]:
        """Mean and standard error over networks of ``top``: two ``(W, D)`` arrays."""
        m = np.full(self.top.shape[:2], np.nan)
        se = np.full(self.top.shape[:2], np.nan)
        run = np.isfinite(self.top).all(axis=2)
        m[run] = self.top[run].mean(axis=1)
        se[run] = self.top[run].std(axis=1, ddof=1) / math.sqrt(self.top.shape[2])
        return m, se

    def eta_star(self) -> Tuple[np.ndarray, np.ndarray]:
        """Measured maximal-update LR ``sqrt(tau / mean)`` and its standard error (delta method)."""
        m, se = self.mean_se()
        eta = np.sqrt(self.tau / m)
        return eta, 0.5 * eta * se / m

    def run_depths(self, i: int = -1) -> np.ndarray:
        """Indices of the depths run at width index ``i`` (default: the largest width)."""
        return np.array([j for j in range(len(self.depths)) if np.isfinite(self.top[i, j]).all()], dtype=int)

    def layer_mean_se(self) -> Tuple[np.ndarray, np.ndarray]:
        """Mean and standard error over networks of ``layers`` (every layer of the deepest net)."""
        return self.layers.mean(0), self.layers.std(0, ddof=1) / math.sqrt(self.layers.shape[0])


@dataclass(frozen=True)
class DepthFit:
    """``eta*(L) = prefactor * L^exponent`` with the bootstrap standard error ``se`` and the
    ``(ci_low, ci_high)`` percentile interval of the exponent."""

    exponent: float
    se: float
    ci_low: float
    ci_high: float
    prefactor: float
    depths: Tuple[int, ...]


def fit_depth_exponent(depths: Sequence[int], samples: np.ndarray, *, tau: float = 1.0, n_boot: int = 400,
                       seed: int = 0) -> DepthFit:
    """Fit ``eta*(L) = A L^p`` by least squares in log-log, with a bootstrap over networks.

    ``eta*(L) = sqrt(tau / mean_k samples[L, k])``: the maximal-update LR from the Monte Carlo
    mean of the first-order top-layer coefficient. The networks of different depths are
    independent (their own seeds), so each bootstrap resample redraws the networks of every
    depth independently and refits the line (:func:`lrtheory.core.stats.ols_lines`).

    Parameters
    ----------
    depths : sequence of int, (D,)
    samples : ndarray (D, K)
        Per-network coefficients (finite, positive mean).
    tau : float
    n_boot : int
        Bootstrap resamples (>= 2).
    seed : int
        Seed of the bootstrap's generator.

    Returns
    -------
    DepthFit

    Raises
    ------
    ValueError
        On mismatched shapes, fewer than 2 depths, or non-finite samples.
    """
    L = np.asarray(depths, dtype=np.float64)
    S = np.asarray(samples, dtype=np.float64)
    if S.ndim != 2 or S.shape[0] != L.size or L.size < 2:
        raise ValueError(f"samples: expected shape ({L.size}, K) with at least 2 depths, got {S.shape}")
    if not np.all(np.isfinite(S)) or np.any(L <= 0):
        raise ValueError("samples: expected finite values and positive depths")
    n_boot = validate.integer(n_boot, "n_boot", minimum=2)
    tau = validate.positive_real(tau, "tau")
    fit = loglog_fit(L, np.sqrt(tau / S.mean(1)))
    rng = np.random.default_rng(validate.nonneg_int(seed, "seed"))
    K = S.shape[1]
    idx = rng.integers(0, K, size=(n_boot, L.size, K))
    boot_means = np.take_along_axis(S[None, :, :].repeat(n_boot, 0), idx, axis=2).mean(2)  # (B, D)
    bs, _ = ols_lines(np.log(L), 0.5 * np.log(tau / boot_means.T))
    lo, hi = np.percentile(bs, [2.5, 97.5])
    return DepthFit(exponent=fit.slope, se=float(np.std(bs, ddof=1)), ci_low=float(lo), ci_high=float(hi),
                    prefactor=fit.prefactor, depths=tuple(int(v) for v in L))


def top_layer_fit(grid: UpdateGrid, seed: int = 0) -> DepthFit:
    """The depth exponent at the largest width, over the depths run there (what the claim
    ``mup_depth.depth_exponent`` measures)."""
    js = grid.run_depths()
    return fit_depth_exponent(np.array(grid.depths)[js], grid.top[-1][js], tau=grid.tau, n_boot=grid.n_boot,
                              seed=seed)


def width_slopes(grid: UpdateGrid) -> Dict[int, Tuple[float, float]]:
    """Per depth run at >= 2 widths: the log-log slope of the measured ``eta*`` in ``n`` and its
    standard error (the Monte Carlo errors of the points propagated through the fit)."""
    eta, es = grid.eta_star()
    out = {}
    for j, L in enumerate(grid.depths):
        ok = np.isfinite(eta[:, j])
        if ok.sum() < 2:
            continue
        fit = loglog_fit(np.asarray(grid.widths, dtype=np.float64)[ok], eta[ok, j], y_se=es[ok, j])
        out[int(L)] = (fit.slope, fit.slope_se)
    return out


def readout_slopes(grid: UpdateGrid, max_depth_over_width: float) -> Dict[str, float]:
    """Mean over the depths ``L <= max_depth_over_width * min(widths)`` of the log-log slope in
    ``n`` of the output's first-order change: readout LR multiplier 1 (``"slope_lr1"``) and
    ``1/n`` (``"slope_lr1/n"``)."""
    w = np.asarray(grid.widths, dtype=np.float64)
    shallow = [j for j, L in enumerate(grid.depths) if L <= min(grid.widths) * max_depth_over_width]
    return {key: float(np.mean([loglog_fit(w, arr[:, j]).slope for j in shallow]))
            for key, arr in (("slope_lr1", grid.out_lin), ("slope_lr1/n", grid.out_lin_scaled))}


def best_lr(log2_etas, losses) -> float:
    """``log2`` of the LR with the lowest loss, refined by a parabola through its neighbours.

    Parameters
    ----------
    log2_etas : array (G,)
        Increasing, evenly spaced ``log2`` learning rates (>= 3).
    losses : array (G,)
        Final losses (``inf``/NaN for diverged runs).

    Returns
    -------
    float
        The vertex of the parabola through ``log loss`` at the best grid point and its two
        neighbours (clipped to that 3-point window), or the best grid point at an edge
        (:func:`lrtheory.core.stats.argmin_on_grid`).

    Raises
    ------
    ValueError
        On mismatched shapes, fewer than 3 points, or no finite loss.

    Examples
    --------
    >>> round(best_lr([0.0, 1.0, 2.0, 3.0], [4.0, 1.0, 0.5, 2.0]), 6)
    1.833333
    """
    return argmin_on_grid(log2_etas, losses, refine="parabola", log_y=True).x


@dataclass(frozen=True)
class TransferResult:
    """Final training loss vs base LR for several depths, with and without depth scaling.

    Attributes
    ----------
    width, base_depth, steps, n_train : int
    depths : tuple of int, (D,)
    log2_etas : ndarray (G,)
        ``log2`` of the base LR.
    loss : dict {"unscaled", "scaled"} -> ndarray (D, S, G)
        Final full-batch training loss per depth, seed and LR (``inf`` for a diverged run).
    best : dict {"unscaled", "scaled"} -> ndarray (D, S)
        ``log2`` of the best base LR per depth and seed (:func:`best_lr`).
    """

    width: int
    base_depth: int
    steps: int
    n_train: int
    depths: Tuple[int, ...]
    log2_etas: np.ndarray
    loss: Dict[str, np.ndarray]
    best: Dict[str, np.ndarray]

    def median_loss(self, mode: str) -> np.ndarray:
        """Median over seeds of the final loss, ``(D, G)`` (robust to a diverged seed)."""
        return np.median(self.loss[mode], axis=1)

    def seed_drifts(self, mode: str) -> np.ndarray:
        """Per seed, the slope of ``log2 best LR`` against ``log2 L``, ``(S,)``."""
        return np.atleast_1d(ols_lines(np.log2(np.asarray(self.depths, dtype=np.float64)), self.best[mode])[0])

    def drift(self, mode: str) -> float:
        """Mean over seeds of the drift (0 = the best LR transfers across depth)."""
        return float(np.mean(self.seed_drifts(mode)))

    def drift_se(self, mode: str) -> float:
        """Standard error over seeds of :meth:`drift`."""
        d = self.seed_drifts(mode)
        return float(np.std(d, ddof=1) / math.sqrt(d.size)) if d.size > 1 else float("nan")
