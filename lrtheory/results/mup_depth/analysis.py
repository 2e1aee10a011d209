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

__all__ = ["GridPoint", "UpdateGrid", "DepthFit", "fit_depth_exponent", "top_layer_fit", "LayerPoint",
           "LayerWidths", "TransferResult", "best_lr"]


@dataclass(frozen=True)
class GridPoint:
    """The Monte Carlo of one (width, depth) point: one part of :class:`UpdateGrid`.

    ``top`` (K,) the top-layer first-order coefficient per network; ``exact_top``,
    ``exact_top_se`` (G,) the exact step's mean and standard error, and ``layers`` (K, depth)
    every layer's coefficient, where recorded (else None).
    """

    width: int
    depth: int
    top: np.ndarray
    exact_top: Optional[np.ndarray] = None
    exact_top_se: Optional[np.ndarray] = None
    layers: Optional[np.ndarray] = None

    def mean_se(self) -> Tuple[float, float]:
        """Mean and standard error over the networks of ``top``."""
        return float(self.top.mean()), float(self.top.std(ddof=1) / math.sqrt(self.top.size))

    def eta_star(self, tau: float = 1.0) -> Tuple[float, float]:
        """Measured maximal-update LR ``sqrt(tau / mean)`` and its standard error (delta method)."""
        m, se = self.mean_se()
        eta = math.sqrt(tau / m)
        return eta, 0.5 * eta * se / m


@dataclass(frozen=True)
class UpdateGrid:
    """Monte Carlo over the series of (width, depth) points of :class:`~.config.MCConfig`.

    Attributes
    ----------
    series : tuple of (ratio, depths)
        As in the config: the points ``(ratio * L, L)``.
    points : dict (width, depth) -> GridPoint
    etas : ndarray (G,)
        LRs of the exact steps (recorded on the update series).
    fit_depths : tuple of int
        The depths of the exponent fit (on the depth series).
    n_boot : int
    tau : float
        The update target of the maximal-update LR.
    """

    series: Tuple[Tuple[int, Tuple[int, ...]], ...]
    points: Dict[Tuple[int, int], GridPoint]
    etas: np.ndarray
    fit_depths: Tuple[int, ...]
    n_boot: int
    tau: float = 1.0

    @classmethod
    def from_points(cls, series, etas, points: Sequence[GridPoint], fit_depths, n_boot: int,
                    tau: float = 1.0) -> "UpdateGrid":
        """Assemble the grid from its points."""
        ser = tuple((int(r), tuple(int(L) for L in ds)) for r, ds in series)
        return cls(ser, {(p.width, p.depth): p for p in points}, np.asarray(etas, dtype=np.float64),
                   tuple(int(L) for L in fit_depths), int(n_boot), float(tau))

    def series_points(self, ratio: int) -> list:
        """The points of the series ``n = ratio * L``, in depth order."""
        (depths,) = [ds for r, ds in self.series if r == ratio]
        return [self.points[(ratio * L, L)] for L in depths]

    @property
    def depth_ratio(self) -> int:
        return self.series[0][0]

    @property
    def update_ratio(self) -> int:
        return self.series[-1][0]

    def width_ratios(self) -> Dict[int, Tuple[float, float]]:
        """Per depth of both the depth and the update series: ``eta*(update_ratio L) /
        eta*(depth_ratio L)`` and its standard error (independent networks)."""
        lo, hi = self.depth_ratio, self.update_ratio
        depths = [L for L in dict(self.series)[lo] if L in dict(self.series)[hi]]
        out = {}
        for L in depths:
            a, sa = self.points[(lo * L, L)].eta_star(self.tau)
            b, sb = self.points[(hi * L, L)].eta_star(self.tau)
            r = b / a
            out[int(L)] = (r, r * math.hypot(sa / a, sb / b))
        return out

    def deepest(self) -> GridPoint:
        """The point whose every layer was recorded (the deepest of the depth series)."""
        (p,) = [p for p in self.points.values() if p.layers is not None]
        return p


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
    """The depth exponent on the depth series (``n = depth_ratio * L``), over its fit depths
    (what the claim ``mup_depth.depth_exponent`` measures)."""
    r = grid.depth_ratio
    pts = [grid.points[(r * L, L)] for L in grid.fit_depths]
    return fit_depth_exponent(grid.fit_depths, np.stack([p.top for p in pts]), tau=grid.tau, n_boot=grid.n_boot,
                              seed=seed)


@dataclass(frozen=True)
class LayerPoint:
    """One width of the first/last-layer Monte Carlo (one part of :class:`LayerWidths`):
    per network the first-order coefficients of the first layer's own change of
    ``z^{(1)}`` (``first``), of the top hidden layer (``hidden``) and of the readout's own
    change of the output (``last``), each per unit ``eta^2`` at LR multiplier 1; and the top
    hidden layer's again with the first layer's LR multiplied by ``n / d`` (``hidden_rule``,
    the rule of :func:`lrtheory.tools.depth.layer_lr_multipliers`)."""

    width: int
    first: np.ndarray
    hidden: np.ndarray
    last: np.ndarray
    hidden_rule: np.ndarray


@dataclass(frozen=True)
class LayerWidths:
    """The first/last-layer Monte Carlo over widths at fixed input dimension and depth."""

    input_dim: int
    depth: int
    widths: Tuple[int, ...]
    points: Tuple[LayerPoint, ...]
    tau: float = 1.0

    def eta_star(self, layer: str) -> Tuple[np.ndarray, np.ndarray]:
        """Per width, the measured max-update LR of ``layer`` ("first", "hidden", "last",
        "hidden_rule") and its standard error: ``sqrt(tau / mean coefficient)`` (delta method)."""
        validate.choice(layer, "layer", ("first", "hidden", "last", "hidden_rule"))
        eta, se = [], []
        for p in self.points:
            v = getattr(p, layer)
            m, s = v.mean(), v.std(ddof=1) / math.sqrt(v.size)
            e = math.sqrt(self.tau / m)
            eta.append(e)
            se.append(0.5 * e * s / m)
        return np.array(eta), np.array(se)

    def width_exponent(self, layer: str) -> Tuple[float, float]:
        """The log-log slope of :meth:`eta_star` in ``n`` and its standard error."""
        eta, se = self.eta_star(layer)
        fit = loglog_fit(np.asarray(self.widths, dtype=np.float64), eta, y_se=se)
        return fit.slope, fit.slope_se


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

    def seed_drifts(self, mode: str, min_depth: int = 1) -> np.ndarray:
        """Per seed, the slope of ``log2 best LR`` against ``log2 L`` over the depths
        ``>= min_depth``, ``(S,)``."""
        keep = np.asarray(self.depths) >= min_depth
        if keep.sum() < 2:
            raise ValueError(f"min_depth: fewer than 2 depths >= {min_depth} in {self.depths}")
        L = np.asarray(self.depths, dtype=np.float64)[keep]
        return np.atleast_1d(ols_lines(np.log2(L), self.best[mode][keep])[0])

    def drift(self, mode: str, min_depth: int = 1) -> float:
        """Mean over seeds of the drift (0 = the best LR transfers across depth)."""
        return float(np.mean(self.seed_drifts(mode, min_depth)))

    def drift_se(self, mode: str, min_depth: int = 1) -> float:
        """Standard error over seeds of :meth:`drift`."""
        d = self.seed_drifts(mode, min_depth)
        return float(np.std(d, ddof=1) / math.sqrt(d.size)) if d.size > 1 else float("nan")
