"""Chapter 02, the analysis (numpy): result containers, phases, boundaries, trends.

The simulations of :mod:`~lrtheory.results.catapult.simulate` return the frozen containers
defined here (:class:`PhaseSweep`, :class:`Trajectories`, :class:`ReluSweep`); the
functions below turn runs into phases (:class:`Phase`), phase edges and trends.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
from scipy import stats

from lrtheory.core import validate

__all__ = ["Phase", "PhaseSweep", "Trajectories", "ReluSweep", "classify_runs", "phase_boundaries",
           "trained_edge", "sparsity_trend", "frozen", "largest_width_median"]


class Phase(enum.IntEnum):
    """Phase of one GD run, as :func:`classify_runs` reads it from the loss.

    * ``LAZY``: the loss never grew above its initial value (``eta lambda_0 < 2`` in the uv model);
    * ``CATAPULT``: it grew, then came back below the initial value;
    * ``DIVERGENT``: it blew up, or never came back.
    """

    LAZY = 0
    CATAPULT = 1
    DIVERGENT = 2


def frozen(a) -> np.ndarray:
    """A read-only copy: memoized results are shared between claims and figures."""
    a = np.array(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True)
class PhaseSweep:
    """Runs of one scalar-output model over ``eta * lambda_0`` x widths x seeds.

    Attributes
    ----------
    model : str
        ``"uv"``, ``"quadratic-unit"`` or ``"quadratic-spread"``.
    eta_lam0 : ndarray (E,)
        The grid of ``eta * lambda_0`` (sorted).
    widths : tuple of int (W,)
        ``n`` for the uv model, ``N`` (number of parameters) for the quadratic model.
    seeds : tuple of int (S,)
        Seed indices (the seed of each model is ``seed_for`` of its keys).
    steps : int
        Maximum number of GD steps.
    f0, lam0, loss0 : ndarray (W, S)
        Initial output, NTK eigenvalue, loss.
    kappa0 : ndarray (W, S)
        ``lambda_0 / (zeta^2 mu_max |theta_0|^2)`` (1 for the uv model).
    max_loss, final_loss, final_eta_lam : ndarray (W, E, S)
        Peak loss, last loss, ``eta * lambda_T`` (NaN after divergence).
    diverged : ndarray of bool (W, E, S)
    phase : ndarray of int8 (W, E, S)
        :class:`Phase` codes.
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
    final_eta_lam : ndarray (E, S) or None
        ``eta * lambda_T`` at the end of training (authors' setting only; NaN if diverged).
    steps_run : ndarray of int (E, S) or None
        Step at which each run stopped (converged, diverged or out of steps; authors' setting).
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
    final_eta_lam: Optional[np.ndarray] = None
    steps_run: Optional[np.ndarray] = None


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
        :class:`Phase` codes.

    Examples
    --------
    >>> [Phase(p).name for p in classify_runs(1.0, [1.0, 5.0, 5.0], [0.5, 0.1, 2.0], False)]
    ['LAZY', 'CATAPULT', 'DIVERGENT']
    """
    rtol = validate.nonneg_real(rtol, "rtol")
    loss0, max_loss, final_loss = (np.asarray(a, dtype=np.float64) for a in (loss0, max_loss, final_loss))
    diverged = np.asarray(diverged, dtype=bool)
    grew = ~(max_loss <= loss0 * (1.0 + rtol))
    back = final_loss < loss0
    out = np.full(np.broadcast(loss0, max_loss, final_loss, diverged).shape, Phase.CATAPULT, dtype=np.int8)
    out[~grew] = Phase.LAZY
    out[diverged | (grew & ~back)] = Phase.DIVERGENT
    return out


def phase_boundaries(eta_lam0, phase, axis: int = -1) -> Tuple[np.ndarray, np.ndarray]:
    """Lower and upper phase boundaries along the grid axis.

    ``lower``: midpoint between the first non-lazy grid point and the point before it;
    ``upper``: midpoint between the first divergent point and the point before it.
    NaN where the boundary is not bracketed by the grid.

    Parameters
    ----------
    eta_lam0 : array_like (E,)
        Strictly increasing positive grid.
    phase : ndarray with an axis of length E
    axis : int
        The grid axis of ``phase``.

    Returns
    -------
    (lower, upper) : ndarrays with ``axis`` removed

    Examples
    --------
    >>> [float(b) for b in phase_boundaries([1.0, 2.0, 3.0, 4.0], np.array([0, 1, 1, 2]))]
    [1.5, 3.5]
    """
    g = validate.positive_array(eta_lam0, "eta_lam0", ndim=1, increasing=True)
    ph = np.moveaxis(np.asarray(phase), axis, -1)
    if ph.shape[-1] != g.size:
        raise ValueError(f"phase: grid axis has length {ph.shape[-1]}, expected {g.size}")

    def edge(mask):
        has = mask.any(-1)
        i = np.argmax(mask, axis=-1)
        ok = has & (i > 0)
        return np.where(ok, 0.5 * (g[np.maximum(i - 1, 0)] + g[i]), np.nan)

    return edge(ph != Phase.LAZY), edge(ph == Phase.DIVERGENT)


def _check_relu_sweep(sweep) -> ReluSweep:
    if not isinstance(sweep, ReluSweep):
        raise ValueError(f"sweep: expected a ReluSweep, got {type(sweep).__name__}")
    return sweep


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
    _check_relu_sweep(sweep)
    rel = validate.in_range(rel, "rel", 0.0, 1.0, inclusive=False)
    trained = np.isfinite(sweep.final_loss) & (sweep.final_loss < rel * sweep.loss0)
    _, edge = phase_boundaries(sweep.eta_lam0, np.where(trained, Phase.CATAPULT, Phase.DIVERGENT), axis=0)
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
        If ``sweep`` is not a :class:`ReluSweep`, ``min_eta_lam0`` is not finite or
        ``layer`` is not a hidden-layer index.
    """
    _check_relu_sweep(sweep)
    min_eta_lam0 = validate.finite_real(min_eta_lam0, "min_eta_lam0")
    if layer is None:
        a = sweep.active.mean(-1)  # (E, S), NaN if diverged
    else:
        a = sweep.active[:, :, validate.integer(layer, "layer", minimum=0, maximum=sweep.depth - 1)]
    rho = np.full(len(sweep.seeds), np.nan)
    for j in range(len(sweep.seeds)):
        keep = (sweep.eta_lam0 >= min_eta_lam0) & np.isfinite(a[:, j])
        if keep.sum() >= 4:
            rho[j] = stats.spearmanr(sweep.eta_lam0[keep], a[keep, j]).statistic
    return rho


def largest_width_median(sweep: PhaseSweep, field: str) -> float:
    """Median over seeds of ``sweep.<field>`` (``"lower"`` or ``"upper"``) at the largest width."""
    return float(np.nanmedian(getattr(sweep, field)[-1]))
