"""Settings of chapter 05 per scale: one frozen dataclass per experiment, one per scale.

Every number a measurement uses is here, so the store key (the hash of the full config)
changes whenever a setting does. ``ci`` is what CI recomputes on every run; ``reference``
is the paper's own scalar grid and its square Gaussian matrix problem, computed once by
``lrtheory sweep balancing --scale reference`` and stored in ``reference.jsonl``; ``full``
is a larger grid meant for a GPU.

What the reference setting changes against the paper's (Wang, Chen, Zhao, Tao 2022):

* scalar: the paper's starts (9, 1), (19, 1), (99, 1), ``mu = 2`` (their ``h0 = 4/(x0^2 +
  y0^2 + 8)``) and LRs ``h0, 6/7 h0, ...`` for six columns, read here as ``k h0 / 7`` for
  ``k = 7, ..., 2`` (the text lists only the first two); nothing else differs. 30000 steps.
* matrix: the paper draws a square ``A`` from a Gaussian and a random ``(X0, Y0)``; it does not
  say (in what could be read) the size, the scale or ``d``. Here ``A`` is ``n x n`` with
  i.i.d. ``N(0, 1/n)`` entries (``||A||_2`` near 2 at every ``n``), ``X, Y`` are ``n x n``
  (``d = n``), ``X0`` and ``Y0`` with i.i.d. ``N(0, 3^2/n)`` and ``N(0, 0.3^2/n)`` entries
  (``||X0||_F / ||Y0||_F`` near 10), at
  ``n = 2, 4, 8, 16``, LRs ``eta L = 0.5 ... 4.2`` (``L``: the top Hessian eigenvalue at the
  start). Cost: small ``n`` only (16 at most), one draw per ``n``.

Example
-------
>>> CONFIGS["ci"].scalar.grid.values()[:3]
array([0.5 , 0.55, 0.6 ])
>>> [round(k, 4) for k in CONFIGS["reference"].paper.fractions]
[1.0, 0.8571, 0.7143, 0.5714, 0.4286, 0.2857]
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Tuple

import numpy as np

__all__ = ["Grid", "EndStateRule", "ScalarConfig", "OrbitConfig", "PaperGridConfig", "EdgeConfig",
           "MatrixConfig", "BalancingConfig", "CONFIGS", "PAPER_MU", "PAPER_INITS", "PAPER_FRACTIONS"]

#: The paper's scalar experiments: mu = 2 (their h0 = 4/(x0^2 + y0^2 + 8)) ...
PAPER_MU = 2.0
#: ... from these strongly unbalanced initializations ...
PAPER_INITS: Tuple[Tuple[float, float], ...] = ((9.0, 1.0), (19.0, 1.0), (99.0, 1.0))
#: ... at LRs h0, 6/7 h0, ... (six columns, read as k h0 / 7, k = 7 ... 2).
PAPER_FRACTIONS: Tuple[float, ...] = tuple(k / 7 for k in (7, 6, 5, 4, 3, 2))


@dataclass(frozen=True)
class Grid:
    """An evenly spaced grid ``lo, lo + step, ..., hi`` (both ends included)."""

    lo: float
    hi: float
    step: float

    def values(self) -> np.ndarray:
        """The grid points, rounded to 10 decimals (so ``0.5 + 0.01 k`` prints as itself)."""
        n = int(round((self.hi - self.lo) / self.step))
        return np.round(self.lo + self.step * np.arange(n + 1), 10)


@dataclass(frozen=True)
class EndStateRule:
    """How the end state of a GD run is decided (see :func:`analysis.classify_end_states`).

    Attributes
    ----------
    bound : a run whose ``|x|`` or ``|y|`` (any entry of ``X``, ``Y``) exceeds it, or turns
        non-finite, is diverged and frozen at its last state inside the bound.
    loss_tol : a run whose final loss is ``<= loss_tol`` is converged.
    max_period, orbit_tol : a bounded, non-converged run whose state repeats after
        ``p <= max_period`` steps (relative tolerance ``orbit_tol``) is periodic of period ``p``.
    check_every : steps between convergence checks (the resolution of ``steps_to_converge``).
    """

    bound: float = 1e6
    loss_tol: float = 1e-20
    max_period: int = 16
    orbit_tol: float = 1e-9
    check_every: int = 32


@dataclass(frozen=True)
class ScalarConfig:
    """GD on ``(mu - x y)^2/2`` from each start over a grid of ``eta L`` (a figure: final imbalance vs LR)."""

    mu: float
    inits: Tuple[Tuple[float, float], ...]
    grid: Grid  # of eta * L
    steps: int


@dataclass(frozen=True)
class PaperGridConfig:
    """The paper's scalar grid: each start at ``eta = f h0`` for each fraction ``f``.

    ``record_steps``: the first steps kept as trajectories (the figure); ``claim_fractions``:
    where the limit-imbalance prediction is claimed (``eta (x0^2 + y0^2) <= 2.3`` there).
    """

    mu: float
    inits: Tuple[Tuple[float, float], ...]
    fractions: Tuple[float, ...]
    steps: int
    record_steps: int
    claim_fractions: Tuple[float, ...]


@dataclass(frozen=True)
class EdgeConfig:
    """The measured convergence edge of each start: ``rounds`` refinements of a ``points``-point
    bracket ``[lo h0, hi h0]`` (``h0`` the paper's step), ``steps`` GD steps per run."""

    mu: float
    inits: Tuple[Tuple[float, float], ...]
    lo: float
    hi: float
    points: int
    rounds: int
    steps: int


@dataclass(frozen=True)
class OrbitConfig:
    """GD from a near-balanced start ``init * sqrt(mu)`` over a grid of ``eta mu`` around 1."""

    mu: float
    init: Tuple[float, float]  # in units of sqrt(mu)
    grid: Grid  # of eta * mu
    steps: int


@dataclass(frozen=True)
class MatrixConfig:
    """GD on ``||A - X Y^T||_F^2/2`` with square Gaussian ``A`` (``n x n``, entries ``N(0, 1/n)``),
    ``X, Y`` of shape ``n x n``, ``X0, Y0`` with i.i.d. ``N(0, x_scale^2/n)``, ``N(0, y_scale^2/n)`` entries.

    ``grid``: the LRs ``eta L`` of the sweep; ``edge_*``: the bracket refinement of the
    convergence edge in ``eta L`` (``edge_lo .. edge_hi``, ``edge_points`` per round)."""

    ns: Tuple[int, ...]
    x_scale: float
    y_scale: float
    seed_index: int
    grid: Grid  # of eta * L
    steps: int
    edge_lo: float
    edge_hi: float
    edge_points: int
    edge_rounds: int
    edge_steps: int


@dataclass(frozen=True)
class BalancingConfig:
    """Everything chapter 05 runs at one scale."""

    paper: PaperGridConfig
    edges: EdgeConfig
    scalar: ScalarConfig
    orbit: OrbitConfig
    matrix: MatrixConfig
    end_state: EndStateRule = field(default_factory=EndStateRule)


_CLAIMED = tuple(k / 7 for k in (4, 3, 2))

CONFIGS = {
    "ci": BalancingConfig(
        paper=PaperGridConfig(mu=PAPER_MU, inits=PAPER_INITS, fractions=PAPER_FRACTIONS, steps=20000,
                              record_steps=60, claim_fractions=_CLAIMED),
        edges=EdgeConfig(mu=PAPER_MU, inits=PAPER_INITS, lo=1.0, hi=1.15, points=17, rounds=4, steps=6000),
        scalar=ScalarConfig(mu=PAPER_MU, inits=PAPER_INITS, grid=Grid(0.5, 4.5, 0.05), steps=10000),
        orbit=OrbitConfig(mu=PAPER_MU, init=(1.2, 0.8), grid=Grid(0.8, 1.5, 0.01), steps=15000),
        matrix=MatrixConfig(ns=(2, 4), x_scale=3.0, y_scale=0.3, seed_index=0, grid=Grid(0.5, 4.2, 0.1),
                            steps=8000, edge_lo=3.0, edge_hi=5.0, edge_points=17, edge_rounds=2, edge_steps=4000),
    ),
    "reference": BalancingConfig(
        paper=PaperGridConfig(mu=PAPER_MU, inits=PAPER_INITS, fractions=PAPER_FRACTIONS, steps=30000,
                              record_steps=60, claim_fractions=_CLAIMED),
        edges=EdgeConfig(mu=PAPER_MU, inits=PAPER_INITS, lo=1.0, hi=1.15, points=33, rounds=4, steps=20000),
        scalar=ScalarConfig(mu=PAPER_MU, inits=PAPER_INITS, grid=Grid(0.5, 4.5, 0.01), steps=20000),
        orbit=OrbitConfig(mu=PAPER_MU, init=(1.2, 0.8), grid=Grid(0.8, 1.5, 0.005), steps=20000),
        matrix=MatrixConfig(ns=(2, 4, 8, 16), x_scale=3.0, y_scale=0.3, seed_index=0, grid=Grid(0.5, 4.2, 0.05),
                            steps=20000, edge_lo=3.0, edge_hi=5.0, edge_points=33, edge_rounds=3, edge_steps=10000),
    ),
    "full": BalancingConfig(
        paper=PaperGridConfig(mu=PAPER_MU, inits=PAPER_INITS + ((49.0, 1.0), (199.0, 1.0)),
                              fractions=PAPER_FRACTIONS, steps=100000, record_steps=60, claim_fractions=_CLAIMED),
        edges=EdgeConfig(mu=PAPER_MU, inits=PAPER_INITS + ((49.0, 1.0), (199.0, 1.0)), lo=1.0, hi=1.15,
                         points=65, rounds=4, steps=50000),
        scalar=ScalarConfig(mu=PAPER_MU, inits=PAPER_INITS + ((49.0, 1.0), (199.0, 1.0)),
                            grid=Grid(0.1, 5.0, 0.001), steps=100000),
        orbit=OrbitConfig(mu=PAPER_MU, init=(1.2, 0.8), grid=Grid(0.5, 1.5, 0.001), steps=100000),
        matrix=MatrixConfig(ns=(2, 4, 8, 16, 32, 64), x_scale=3.0, y_scale=0.3, seed_index=0,
                            grid=Grid(0.5, 4.2, 0.01), steps=50000, edge_lo=3.0, edge_hi=5.0, edge_points=65,
                            edge_rounds=4, edge_steps=20000),
    ),
}
