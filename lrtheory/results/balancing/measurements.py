"""Chapter 05 measurements: each ``measure_*(cfg, device)`` runs one experiment of the chapter.

Declared with ``@CHAPTER.measurement``: memoized per (config, device), read from
``reference.jsonl`` at the reference scale, one point (or one point per part) of the
``balancing_measurements`` sweep. Call them as ``measure_paper_grid("ci", device)`` or
``measure_paper_grid.of(cfg, device)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

from lrtheory.core.device import seed_for
from lrtheory.results.balancing import CHAPTER
from lrtheory.results.balancing import derivation as D
from lrtheory.results.balancing.analysis import EndState
from lrtheory.results.balancing.simulate import (MatrixRun, ScalarRun, divergence_edge, make_gaussian_problem,
                                                 matrix_gd, matrix_top_eigenvalue, scalar_gd, scalar_top_eigenvalue)

__all__ = ["PaperGrid", "ScalarEdges", "ScalarSweep", "OrbitSweep", "MatrixPart", "MatrixSweep", "MatrixEdges",
           "matrix_problem", "matrix_problem_of", "measure_paper_grid", "measure_scalar_edges", "measure_scalar_sweep",
           "measure_orbit_sweep", "measure_matrix_sweep", "measure_matrix_edges"]


def _settled(run):
    """``run`` with the states of its bounded, non-periodic runs replaced by NaN (their end state kept).

    Such a run is chaotic: a last-bit difference in round-off (another CPU kernel, another memory
    layout) grows to O(1) over its steps, so its final state is not reproducible and is not stored.
    """
    keep = (run.status != int(EndState.BOUNDED))
    if keep.all():
        return run
    if isinstance(run, MatrixRun):
        fields = {k: getattr(run, k) for k in run.__dataclass_fields__}
        for k in ("X", "Y", "loss", "norm_ratio", "imbalance", "lam_gram"):
            v = np.array(fields[k], dtype=np.float64)
            v[~keep] = np.nan
            fields[k] = v
        return MatrixRun(**fields)
    fields = {k: getattr(run, k) for k in run.__dataclass_fields__}
    for k in ("x", "y", "loss", "tail_x", "tail_y", "traj_x", "traj_y"):
        if fields[k] is not None:
            v = np.array(fields[k], dtype=np.float64)
            v[..., ~keep] = np.nan
            fields[k] = v
    return ScalarRun(**fields)


def _flat(inits, per: int):
    x0 = np.repeat([p[0] for p in inits], per).astype(np.float64)
    y0 = np.repeat([p[1] for p in inits], per).astype(np.float64)
    return x0, y0


@dataclass(frozen=True)
class PaperGrid:
    """The paper's scalar grid: every start at ``eta = f h0`` for every fraction ``f``.

    Attributes
    ----------
    inits, mu, fractions : the setting; h0 : (I,) the paper's step per start.
    eta : (I, F) the LRs; x, y : (I, F) the final iterates; status : (I, F) :class:`EndState` codes.
    traj_x, traj_y : (T+1, I, F) the first ``record_steps`` steps of every run (the figure).
    """

    inits: Tuple[Tuple[float, float], ...]
    mu: float
    fractions: Tuple[float, ...]
    h0: np.ndarray
    eta: np.ndarray
    x: np.ndarray
    y: np.ndarray
    status: np.ndarray
    traj_x: np.ndarray
    traj_y: np.ndarray


@CHAPTER.measurement
def measure_paper_grid(cfg, device) -> PaperGrid:
    """GD from (9, 1), (19, 1), (99, 1) at ``eta = h0, 6/7 h0, ..., 2/7 h0`` (``mu = 2``), as in the paper.

    20000 steps at ``ci``, 30000 at ``reference`` (every run has settled long before); the
    first 60 steps are kept as trajectories.
    """
    c = cfg.paper
    I, F = len(c.inits), len(c.fractions)
    h0 = np.array([D.paper_step_size(x0, y0, c.mu) for x0, y0 in c.inits])
    eta = h0[:, None] * np.asarray(c.fractions)[None, :]
    x0, y0 = _flat(c.inits, F)
    run = scalar_gd(x0, y0, eta.reshape(-1), c.mu, c.steps, rule=cfg.end_state, device=device)
    rec = scalar_gd(x0, y0, eta.reshape(-1), c.mu, c.record_steps, rule=cfg.end_state, record=True, device=device)
    T = rec.traj_x.shape[0]
    return PaperGrid(inits=tuple(c.inits), mu=c.mu, fractions=tuple(c.fractions), h0=h0, eta=eta,
                     x=run.x.reshape(I, F), y=run.y.reshape(I, F), status=run.status.reshape(I, F),
                     traj_x=rec.traj_x.reshape(T, I, F), traj_y=rec.traj_y.reshape(T, I, F))


@dataclass(frozen=True)
class ScalarEdges:
    """The measured edge of the convergent range of each start, as a bracket of LRs.

    ``lo`` (I,): the largest LR of the last grid at which GD did not diverge; ``hi`` (I,):
    the smallest at which it did; ``found`` (I,): the first bracket ``[lo h0, hi h0]`` held the edge;
    ``converged_lo`` (I,): the run at ``lo`` converged (not only stayed bounded)."""

    inits: Tuple[Tuple[float, float], ...]
    mu: float
    h0: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    found: np.ndarray
    converged_lo: np.ndarray


@CHAPTER.measurement
def measure_scalar_edges(cfg, device) -> ScalarEdges:
    """Bracket the LR where GD from each start stops converging: 4 refinements of a 17-point (``ci``)
    or 33-point (``reference``) grid of ``[h0, 1.15 h0]``, a run diverging when it leaves ``|x|, |y| <= 1e6``."""
    c = cfg.edges
    h0 = np.array([D.paper_step_size(x0, y0, c.mu) for x0, y0 in c.inits])
    x0, y0 = _flat(c.inits, c.points)

    def diverges(etas):
        run = scalar_gd(x0, y0, etas.reshape(-1), c.mu, c.steps, rule=cfg.end_state, device=device)
        return (run.status == int(EndState.DIVERGED)).reshape(etas.shape)

    lo, hi, found = divergence_edge(diverges, c.lo * h0, c.hi * h0, c.points, c.rounds)
    at_lo = scalar_gd(_flat(c.inits, 1)[0], _flat(c.inits, 1)[1], lo, c.mu, c.steps, rule=cfg.end_state,
                      device=device)
    return ScalarEdges(inits=tuple(c.inits), mu=c.mu, h0=h0, lo=lo, hi=hi, found=found,
                       converged_lo=at_lo.status == int(EndState.CONVERGED))


@dataclass(frozen=True)
class ScalarSweep:
    """Scalar sweep over a grid of ``eta * L`` for each start: ``L`` (I,), ``h0`` (I,), ``eta_L`` (G,),
    ``runs`` (I :class:`ScalarRun` of G runs each)."""

    inits: Tuple[Tuple[float, float], ...]
    mu: float
    L: np.ndarray
    h0: np.ndarray
    eta_L: np.ndarray
    runs: Tuple[ScalarRun, ...]


@CHAPTER.measurement
def measure_scalar_sweep(cfg, device) -> ScalarSweep:
    """GD from the paper's starts over ``eta L = 0.5 ... 4.5`` (step 0.05 at ``ci``, 0.01 at
    ``reference``): the final imbalance against the LR (a figure). One batch."""
    c = cfg.scalar
    grid = c.grid.values()
    L = np.array([scalar_top_eigenvalue(x0, y0, c.mu) for x0, y0 in c.inits])
    h0 = np.array([D.paper_step_size(x0, y0, c.mu) for x0, y0 in c.inits])
    G, I = grid.size, len(c.inits)
    x0, y0 = _flat(c.inits, G)
    big = scalar_gd(x0, y0, (grid[None, :] / L[:, None]).reshape(-1), c.mu, c.steps, rule=cfg.end_state,
                    device=device)
    runs = tuple(_settled(big.select(slice(i * G, (i + 1) * G))) for i in range(I))
    slim = tuple(ScalarRun(**{k: (None if k.startswith("t") else getattr(r, k)) for k in r.__dataclass_fields__})
                 for r in runs)
    return ScalarSweep(inits=tuple(c.inits), mu=c.mu, L=L, h0=h0, eta_L=grid, runs=slim)


@dataclass(frozen=True)
class OrbitSweep:
    """GD from a near-balanced start over a grid of ``eta * mu`` around the flattest minimum's edge
    (``run.tail_x``, ``run.tail_y`` hold the orbits)."""

    mu: float
    init: Tuple[float, float]
    eta_mu: np.ndarray
    run: ScalarRun


@CHAPTER.measurement
def measure_orbit_sweep(cfg, device) -> OrbitSweep:
    """End states of GD near ``eta = 1/mu`` from ``(1.2, 0.8) sqrt(mu)`` (``eta mu = 0.80 ... 1.50``);
    the states of chaotic (bounded, non-periodic) runs are not kept (:func:`_settled`)."""
    c = cfg.orbit
    grid = c.grid.values()
    x0, y0 = c.init[0] * np.sqrt(c.mu), c.init[1] * np.sqrt(c.mu)
    run = _settled(scalar_gd(np.full(grid.size, x0), np.full(grid.size, y0), grid / c.mu, c.mu, c.steps,
                             rule=cfg.end_state, device=device))
    return OrbitSweep(mu=c.mu, init=(float(x0), float(y0)), eta_mu=grid, run=run)


# ----------------------------------------------------------------------------- matrix case
def matrix_problem(cfg, n: int):
    """``(A, X0, Y0)`` of size ``n`` of ``cfg``: square Gaussian ``A``, ``X, Y`` of shape ``(n, n)``, its own seed."""
    return matrix_problem_of(cfg.matrix, n)


def matrix_problem_of(c, n: int):
    """:func:`matrix_problem` from the matrix settings ``c`` (a :class:`~lrtheory.results.balancing.config.MatrixConfig`)."""
    seed = seed_for("balancing", "gaussian_matrix_problem", n, c.seed_index)
    return make_gaussian_problem(n, n, x_scale=c.x_scale, y_scale=c.y_scale, seed=seed)


@dataclass(frozen=True)
class MatrixPart:
    """The sweep at one ``n``: ``L`` (top Hessian eigenvalue at the start), the start's
    ``||X0||_F``, ``||Y0||_F``, the grid ``eta_L`` and the runs."""

    n: int
    L: float
    x0_norm: float
    y0_norm: float
    eta_L: np.ndarray
    run: MatrixRun


@dataclass(frozen=True)
class MatrixSweep:
    """The matrix sweep at every ``n`` of the config (one :class:`MatrixPart` each)."""

    parts: Tuple[MatrixPart, ...]


def _matrix_parts(cfg):
    return [{"n": int(n)} for n in cfg.matrix.ns]


def _combine_sweep(cfg, results):
    return MatrixSweep(parts=tuple(results))


@CHAPTER.measurement(parts=_matrix_parts, combine=_combine_sweep)
def measure_matrix_sweep(cfg, device, part) -> MatrixPart:
    """GD on ``||A - X Y^T||_F^2/2`` (square Gaussian ``A``) over ``eta L = 0.5 ... 4.2`` at one ``n``.

    ``n = 2, 4`` at ``ci`` (8000 steps), ``2, 4, 8, 16`` at ``reference`` (20000 steps); one part per ``n``.
    """
    n = int(part["n"])
    c = cfg.matrix
    A, X0, Y0 = matrix_problem(cfg, n)
    L = matrix_top_eigenvalue(A, X0, Y0)
    grid = c.grid.values()
    run = _settled(matrix_gd(A, X0, Y0, grid / L, c.steps, rule=cfg.end_state, device=device))
    return MatrixPart(n=n, L=L, x0_norm=float(np.linalg.norm(X0)), y0_norm=float(np.linalg.norm(Y0)),
                      eta_L=grid, run=run)


@dataclass(frozen=True)
class MatrixEdges:
    """Measured convergence edges in ``eta L`` per ``n``: brackets ``lo``, ``hi`` (N,), ``found`` (N,)."""

    ns: Tuple[int, ...]
    L: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    found: np.ndarray


def _combine_edges(cfg, results):
    return MatrixEdges(ns=tuple(int(r["n"]) for r in results), L=np.array([r["L"] for r in results]),
                       lo=np.array([r["lo"] for r in results]), hi=np.array([r["hi"] for r in results]),
                       found=np.array([r["found"] for r in results]))


@CHAPTER.measurement(parts=_matrix_parts, combine=_combine_edges)
def measure_matrix_edges(cfg, device, part) -> dict:
    """Bracket, in ``eta L``, the LR where GD on the Gaussian problem of size ``n`` starts to diverge
    (refinements of a grid of ``eta L = 3 ... 5``); one part per ``n``."""
    n = int(part["n"])
    c = cfg.matrix
    A, X0, Y0 = matrix_problem(cfg, n)
    L = matrix_top_eigenvalue(A, X0, Y0)

    def diverges(eta_L):
        run = matrix_gd(A, X0, Y0, eta_L.reshape(-1) / L, c.edge_steps, rule=cfg.end_state, device=device)
        return (run.status == int(EndState.DIVERGED)).reshape(eta_L.shape)

    lo, hi, found = divergence_edge(diverges, [c.edge_lo], [c.edge_hi], c.edge_points, c.edge_rounds)
    return {"n": n, "L": float(L), "lo": float(lo[0]), "hi": float(hi[0]), "found": bool(found[0])}
