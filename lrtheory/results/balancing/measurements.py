"""Chapter 05 measurements: each ``measure_*(cfg, device)`` runs one experiment of the chapter.

Declared with ``@CHAPTER.measurement``: memoized per (config, device), served from the
results store at the stored scales, one point of the ``balancing_measurements`` sweep.
Call them as ``measure_scalar_sweep("ci", device)`` or ``measure_scalar_sweep.of(cfg, device)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

from lrtheory.core.device import seed_for
from lrtheory.results.balancing import CHAPTER
from lrtheory.results.balancing import derivation as D
from lrtheory.results.balancing.simulate import (MatrixRun, ScalarRun, make_matrix_problem, matrix_gd,
                                                 matrix_top_eigenvalue, scalar_gd, scalar_top_eigenvalue)

__all__ = ["ScalarSweep", "OrbitSweep", "RecursionCheck", "Trajectories", "MatrixSweep", "matrix_problem",
           "measure_scalar_sweep", "measure_orbit_sweep", "measure_imbalance_recursion", "measure_trajectories",
           "measure_matrix_sweep"]


@dataclass(frozen=True)
class ScalarSweep:
    """Scalar sweep over a grid of ``eta * L`` for each initialization.

    Attributes
    ----------
    inits : tuple of (x0, y0).
    mu : float.
    L : (I,) top Hessian eigenvalue at each init (dense torch Hessian).
    h0 : (I,) the paper's largest step ``4/(x0^2+y0^2+4 mu)``.
    eta_L : (G,) the grid of ``eta * L`` (shared by every init).
    runs : tuple of I :class:`ScalarRun` (each of K = G runs).
    at_h0 : tuple of I :class:`ScalarRun` (one run each, exactly at ``eta = h0``).
    """

    inits: Tuple[Tuple[float, float], ...]
    mu: float
    L: np.ndarray
    h0: np.ndarray
    eta_L: np.ndarray
    runs: Tuple[ScalarRun, ...]
    at_h0: Tuple[ScalarRun, ...]


@CHAPTER.measurement
def measure_scalar_sweep(cfg, device) -> ScalarSweep:
    """GD from the paper's unbalanced initializations over a grid of ``eta * L``, and at ``h0``.

    At ``scale="ci"``: inits (9,1), (19,1), (99,1), ``mu = 2``, grid ``eta L = 0.5 ... 5.0``
    in steps of 0.01, 15000 GD steps. At ``"full"``: also (49,1), (199,1), grid step 0.001,
    100000 steps. Every (init, eta) pair is one entry of one batch.
    """
    c = cfg.scalar
    grid = c.grid.values()
    inits = c.inits
    L = np.array([scalar_top_eigenvalue(x0, y0, c.mu) for x0, y0 in inits])
    h0 = np.array([D.paper_step_size(x0, y0, c.mu) for x0, y0 in inits])
    G, I = grid.size, len(inits)
    x0s = np.concatenate([np.repeat([p[0] for p in inits], G), [p[0] for p in inits]])
    y0s = np.concatenate([np.repeat([p[1] for p in inits], G), [p[1] for p in inits]])
    etas = np.concatenate([(grid[None, :] / L[:, None]).reshape(-1), h0])
    big = scalar_gd(x0s, y0s, etas, c.mu, c.steps, rule=cfg.end_state, device=device)
    runs = tuple(big.select(slice(i * G, (i + 1) * G)) for i in range(I))
    at_h0 = tuple(big.select(slice(I * G + i, I * G + i + 1)) for i in range(I))
    return ScalarSweep(inits=tuple(inits), mu=c.mu, L=L, h0=h0, eta_L=grid, runs=runs, at_h0=at_h0)


@dataclass(frozen=True)
class OrbitSweep:
    """GD from a near-balanced start over a grid of ``eta * mu`` around the flattest minimum's edge.

    Attributes
    ----------
    mu : float.
    init : (x0, y0), the start ``init * sqrt(mu)``.
    eta_mu : (G,) grid of ``eta * mu``.
    run : :class:`ScalarRun` (its ``tail_x``, ``tail_y`` hold the orbits).
    """

    mu: float
    init: Tuple[float, float]
    eta_mu: np.ndarray
    run: ScalarRun


@CHAPTER.measurement
def measure_orbit_sweep(cfg, device) -> OrbitSweep:
    """End states of GD near ``eta = 1/mu`` from ``(1.2, 0.8) sqrt(mu)``.

    At ``scale="ci"``: ``eta mu = 0.80 ... 1.50`` in steps of 0.01, 15000 steps; ``"full"``:
    ``0.5 ... 1.5`` in steps of 0.001, 100000 steps.
    """
    c = cfg.orbit
    grid = c.grid.values()
    x0, y0 = c.init[0] * np.sqrt(c.mu), c.init[1] * np.sqrt(c.mu)
    run = scalar_gd(np.full(grid.size, x0), np.full(grid.size, y0), grid / c.mu, c.mu, c.steps,
                    rule=cfg.end_state, device=device)
    return OrbitSweep(mu=c.mu, init=(float(x0), float(y0)), eta_mu=grid, run=run)


@dataclass(frozen=True)
class RecursionCheck:
    """Per-step check of the derived imbalance recursion on torch trajectories.

    ``max_error``: max over runs and steps of
    ``|D_{k+1} - F(x_k, y_k) D_k| / (x_{k+1}^2 + y_{k+1}^2 + |F| (x_k^2 + y_k^2))``
    with ``D = x^2 - y^2`` and ``F`` the derived factor; ``n_steps`` the number of (run, step)
    pairs compared (steps of diverged runs after divergence excluded); ``eta_L`` every run's step.
    """

    max_error: float
    n_steps: int
    eta_L: np.ndarray


def _with_h0(eta_L, h0L: float, with_h0: bool) -> np.ndarray:
    """The steps ``eta_L`` with ``h0 L`` inserted in increasing order (when ``with_h0``)."""
    g = np.asarray(eta_L, dtype=np.float64)
    return np.sort(np.append(g, h0L), kind="stable") if with_h0 else g


@CHAPTER.measurement
def measure_imbalance_recursion(cfg, device) -> RecursionCheck:
    """Check ``x'^2 - y'^2 = F (x^2 - y^2)`` (``F`` from :func:`derivation.derive_imbalance_recursion`)
    along torch GD runs from every start of the scale at ``eta L`` in
    ``{0.5, 1.5, 2.5, 3.0, h0 L, 4.5}`` (the last one diverges: its steps up to divergence count)."""
    c = cfg.recursion
    worst, count, grids = 0.0, 0, []
    for x0, y0 in c.inits:
        L = scalar_top_eigenvalue(x0, y0, c.mu)
        grid = _with_h0(c.eta_L, D.paper_step_size(x0, y0, c.mu) * L, c.with_h0)
        grids.append(grid)
        run = scalar_gd(x0, y0, grid / L, c.mu, c.steps, rule=cfg.end_state, record=True, device=device)
        tx, ty = run.traj_x, run.traj_y  # (T+1, K)
        steps_idx = np.arange(1, tx.shape[0])[:, None]
        div = run.diverged_at
        ok = (div[None, :] < 0) | (steps_idx < div[None, :])
        Dk = tx ** 2 - ty ** 2
        fac = D.imbalance_factor(tx[:-1], ty[:-1], c.mu, run.eta[None, :])
        err = np.abs(Dk[1:] - fac * Dk[:-1]) / (tx[1:] ** 2 + ty[1:] ** 2 + np.abs(fac) * (tx[:-1] ** 2 + ty[:-1] ** 2))
        err = np.where(ok, err, 0.0)
        worst = max(worst, float(np.max(err)))
        count += int(ok.sum())
    return RecursionCheck(max_error=worst, n_steps=count, eta_L=np.concatenate(grids))


@dataclass(frozen=True)
class Trajectories:
    """Recorded GD trajectories from one start: ``eta`` (K,), ``eta_L`` (K,), ``run`` (with ``traj_x/y``)."""

    mu: float
    init: Tuple[float, float]
    L: float
    h0: float
    eta_L: np.ndarray
    run: ScalarRun


@CHAPTER.measurement
def measure_trajectories(cfg, device) -> Trajectories:
    """GD trajectories from ``(9, 1)`` at ``eta L = 1, 2.5, 3.25`` and at ``eta = h0`` (400 steps, recorded)."""
    c = cfg.trajectories
    x0, y0 = c.init
    L = scalar_top_eigenvalue(x0, y0, c.mu)
    h0 = float(D.paper_step_size(x0, y0, c.mu))
    grid = np.append(np.asarray(c.eta_L, dtype=np.float64), h0 * L) if c.with_h0 else np.asarray(c.eta_L, float)
    run = scalar_gd(x0, y0, grid / L, c.mu, c.steps, rule=cfg.end_state, record=True, device=device)
    return Trajectories(mu=c.mu, init=(x0, y0), L=L, h0=h0, eta_L=grid, run=run)


@dataclass(frozen=True)
class MatrixSweep:
    """Matrix sweep: problem, ``L`` at the initialization, ``||A||_*``, grid of ``eta * L``, runs."""

    A: np.ndarray
    X0: np.ndarray
    Y0: np.ndarray
    L: float
    nuclear: float
    rank: int
    eta_L: np.ndarray
    run: MatrixRun


def matrix_problem(cfg):
    """``(A, X0, Y0)`` of the matrix experiment of ``cfg``: its own seed, from ``seed_for``."""
    c = cfg.matrix
    seed = seed_for("balancing", "matrix_problem", c.m, c.n, c.rank, c.seed_index)
    return make_matrix_problem(c.m, c.n, c.rank, singular_values=c.singular_values, x_scale=c.x_scale,
                               y_scale=c.y_scale, seed=seed)


@CHAPTER.measurement
def measure_matrix_sweep(cfg, device) -> MatrixSweep:
    """GD on ``||A - X Y^T||_F^2/2`` from an unbalanced start over a grid of ``eta * L``.

    At ``scale="ci"``: ``A`` 4x3 of rank 2 (singular values 2, 1), ``X, Y`` with 2 columns,
    ``||X0||_F / ||Y0||_F = 20``, grid ``eta L = 1.0 ... 4.6`` in steps of 0.05, 6000 steps.
    At ``"full"``: ``A`` 10x8 of rank 4, grid step 0.005, 50000 steps.
    """
    c = cfg.matrix
    A, X0, Y0 = matrix_problem(cfg)
    L = matrix_top_eigenvalue(A, X0, Y0)
    grid = c.grid.values()
    run = matrix_gd(A, X0, Y0, grid / L, c.steps, rule=cfg.end_state, device=device)
    nuc = float(np.linalg.norm(A, "nuc"))
    return MatrixSweep(A=A, X0=X0, Y0=Y0, L=L, nuclear=nuc, rank=c.rank, eta_L=grid, run=run)
