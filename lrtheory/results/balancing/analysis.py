"""Chapter 05 analysis (numpy): end states of GD runs, the convergent range, imbalance ratios.

The end state of a run is decided from its last ``max_period + 1`` states, the divergence
mask and the final loss (:func:`classify_end_states`); the chapter's measurements and
figures read these codes.

Example
-------
>>> convergence_edge([1.0, 2.0, 3.0], [EndState.CONVERGED, EndState.CONVERGED, EndState.DIVERGED])
2.0
>>> float(imbalance_ratio(3.0, -0.5))
6.0
"""
from __future__ import annotations

import enum
from typing import Sequence, Tuple

import numpy as np

from lrtheory.core import validate

__all__ = ["EndState", "end_state_label", "classify_end_states", "imbalance_ratio", "convergence_edge",
           "edge_with_extra_node", "stability_index", "first_change_points"]


class EndState(enum.IntEnum):
    """How a GD run ended (``status`` of a run; a periodic run also has its ``period``).

    * ``DIVERGED``: left the bound (or turned non-finite); frozen at its last state inside.
    * ``BOUNDED``: inside the bound, not converged, no period ``<= max_period`` found: a
      marginal run still creeping to its limit, or non-periodic (chaotic) motion.
    * ``CONVERGED``: final loss ``<= loss_tol``.
    * ``PERIODIC``: the state repeats after ``period`` steps (a period-``p`` orbit).
    """

    DIVERGED = -1
    BOUNDED = 0
    CONVERGED = 1
    PERIODIC = 2


def end_state_label(status: int, period: int = 0) -> str:
    """Words for an end state: ``"converged"``, ``"diverged"``, ``"bounded, not periodic"``, ``"period 2"``."""
    st = EndState(int(status))
    if st is EndState.PERIODIC:
        return f"period {int(period)}"
    return {EndState.CONVERGED: "converged", EndState.DIVERGED: "diverged",
            EndState.BOUNDED: "bounded, not periodic"}[st]


def classify_end_states(tail_x: np.ndarray, tail_y: np.ndarray, diverged: np.ndarray, loss: np.ndarray,
                        loss_tol: float, max_period: int, orbit_tol: float) -> Tuple[np.ndarray, np.ndarray]:
    """End states of ``K`` runs from their last states.

    Parameters
    ----------
    tail_x, tail_y : arrays of shape ``(max_period + 1, K, ...)``
        The last ``max_period + 1`` states of each run, oldest first (``...``: matrix entries).
    diverged : (K,) bool
    loss : (K,) final loss
    loss_tol, max_period, orbit_tol
        See :class:`~lrtheory.results.balancing.config.EndStateRule`.

    Returns
    -------
    (status, period) : two (K,) int arrays
        ``status`` holds :class:`EndState` codes; ``period`` the smallest ``p`` with
        ``max |z_T - z_{T-p}| <= orbit_tol (1 + max|x_T| + max|y_T|)`` for periodic runs, else 0.
    """
    K = diverged.shape[0]
    alive = ~np.asarray(diverged, dtype=bool)
    status = np.full(K, int(EndState.BOUNDED), dtype=np.int64)
    period = np.zeros(K, dtype=np.int64)
    conv = alive & (np.asarray(loss) <= loss_tol)
    status[conv] = int(EndState.CONVERGED)
    tx, ty = np.asarray(tail_x).reshape(tail_x.shape[0], K, -1), np.asarray(tail_y).reshape(tail_y.shape[0], K, -1)
    last_x, last_y = tx[-1], ty[-1]
    scale = 1.0 + np.abs(last_x).max(axis=1) + np.abs(last_y).max(axis=1)
    undecided = alive & ~conv
    for p in range(2, max_period + 1):
        dx = np.abs(last_x - tx[-1 - p]).max(axis=1)
        dy = np.abs(last_y - ty[-1 - p]).max(axis=1)
        hit = undecided & (np.maximum(dx, dy) <= orbit_tol * scale)
        status[hit] = int(EndState.PERIODIC)
        period[hit] = p
        undecided &= ~hit
    status[~alive] = int(EndState.DIVERGED)
    return status, period


def imbalance_ratio(a, b) -> np.ndarray:
    """``max(|a|,|b|) / min(|a|,|b|)`` element-wise (>= 1; inf where one is 0)."""
    a, b = np.abs(np.asarray(a, dtype=np.float64)), np.abs(np.asarray(b, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.maximum(a, b) / np.minimum(a, b)


def convergence_edge(eta_L: Sequence[float], status: Sequence[int]) -> float:
    """End of the contiguous convergent range of an increasing grid.

    Parameters
    ----------
    eta_L : (K,) increasing grid of ``eta * L``.
    status : (K,) end states (:attr:`EndState.CONVERGED` counts as convergent).

    Returns
    -------
    float
        The largest grid value ``g`` such that every grid point ``<= g`` converged;
        ``nan`` if the first point did not converge.

    Raises
    ------
    ValueError
        If the shapes differ or the grid is not strictly increasing.
    """
    s = np.asarray(status).reshape(-1)
    g = np.asarray(eta_L, dtype=np.float64).reshape(-1)
    if g.shape != s.shape:
        raise ValueError(f"status: shape {s.shape} does not match eta_L {g.shape}")
    try:
        g = validate.finite_array(g, "eta_L", ndim=1, increasing=True)
    except ValueError as exc:
        raise ValueError(f"eta_L: expected a finite, strictly increasing grid ({exc})") from None
    bad = np.nonzero(s != int(EndState.CONVERGED))[0]
    if bad.size == 0:
        return float(g[-1])
    if bad[0] == 0:
        return float("nan")
    return float(g[bad[0] - 1])


def edge_with_extra_node(eta_L: Sequence[float], status: Sequence[int], extra: float, extra_status: int) -> float:
    """:func:`convergence_edge` of the grid with one more run (``extra``, e.g. the run at ``h0``)
    joined in as a node (a grid point equal to it is kept once)."""
    g = np.append(np.asarray(eta_L, dtype=np.float64), float(extra))
    st = np.append(np.asarray(status).reshape(-1), int(extra_status))
    order = np.argsort(g, kind="stable")
    g, st = g[order], st[order]
    keep = np.concatenate([[True], np.diff(g) > 0])
    return convergence_edge(g[keep], st[keep])


def stability_index(eta, top) -> np.ndarray:
    """``eta * lambda_top / 2``: below 1 at a linearly stable minimum (``top``: ``x^2 + y^2`` or
    ``lambda_max(X^T X + Y^T Y)``)."""
    return np.asarray(eta, dtype=np.float64) * np.asarray(top, dtype=np.float64) / 2


def first_change_points(grid: Sequence[float], labels: Sequence[str]):
    """``[(g, label), ...]``: each grid value where the label differs from the one before it."""
    out, prev = [], None
    for g, lab in zip(grid, labels):
        if lab != prev:
            out.append((float(g), lab))
            prev = lab
    return out
