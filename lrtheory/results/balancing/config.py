"""Settings of chapter 05 per scale: one frozen dataclass per experiment, one per scale.

Every number a measurement uses is here, so the store key (the hash of the full config)
changes whenever a setting does. ``ci`` is what the book shows and CI recomputes; ``full``
is the larger grid meant for a GPU.

Example
-------
>>> CONFIGS["ci"].scalar.grid.values()[:3]
array([0.5 , 0.51, 0.52])
>>> CONFIGS["ci"].scalar.grid.values().size
451
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Tuple

import numpy as np

__all__ = ["Grid", "EndStateRule", "ScalarConfig", "OrbitConfig", "RecursionConfig", "TrajectoryConfig",
           "MatrixConfig",
           "BalancingConfig", "CONFIGS", "PAPER_MU", "PAPER_INITS"]

#: The paper's scalar experiments: mu = 2 (their h0 = 4/(x0^2 + y0^2 + 8)) ...
PAPER_MU = 2.0
#: ... from these strongly unbalanced initializations.
PAPER_INITS: Tuple[Tuple[float, float], ...] = ((9.0, 1.0), (19.0, 1.0), (99.0, 1.0))


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
    """GD on ``(mu - x y)^2/2`` from each start over a grid of ``eta L``, plus one run at ``eta = h0``."""

    mu: float
    inits: Tuple[Tuple[float, float], ...]
    grid: Grid  # of eta * L
    steps: int
    report_eta_L: Tuple[float, ...] = (1.0, 2.0, 2.5, 3.0, 3.5)  # where the chapter prints the limit


@dataclass(frozen=True)
class OrbitConfig:
    """GD from a near-balanced start ``init * sqrt(mu)`` over a grid of ``eta mu`` around 1."""

    mu: float
    init: Tuple[float, float]  # in units of sqrt(mu)
    grid: Grid  # of eta * mu
    steps: int


@dataclass(frozen=True)
class RecursionConfig:
    """Trajectories on which the derived imbalance recursion is checked step by step.

    ``eta_L``: steps in units of ``1/L``, each start's ``h0 L`` added when ``with_h0``;
    ``floor``: the resolution at which the worst deviation is reported (round-off, ~1e-15,
    varies with the CPU's kernels; the claim only needs to know it is below the tolerance).
    """

    mu: float
    inits: Tuple[Tuple[float, float], ...]
    eta_L: Tuple[float, ...]
    with_h0: bool
    steps: int
    floor: float = 1e-13


@dataclass(frozen=True)
class TrajectoryConfig:
    """Recorded trajectories in the ``(x, y)`` plane from one start, at a few steps ``eta L`` (and ``h0``)."""

    mu: float
    init: Tuple[float, float]
    eta_L: Tuple[float, ...]
    with_h0: bool
    steps: int


@dataclass(frozen=True)
class MatrixConfig:
    """GD on ``||A - X Y^T||_F^2/2``: a fixed rank-``rank`` target, one unbalanced start, a grid of ``eta L``."""

    m: int
    n: int
    rank: int
    singular_values: Tuple[float, ...]
    x_scale: float  # ||X0||_F
    y_scale: float  # ||Y0||_F
    seed_index: int
    grid: Grid  # of eta * L
    steps: int
    report_eta_L: float  # where the balanced-limit claim reads the ratio


@dataclass(frozen=True)
class BalancingConfig:
    """Everything chapter 05 runs at one scale."""

    scalar: ScalarConfig
    orbit: OrbitConfig
    recursion: RecursionConfig
    trajectories: TrajectoryConfig
    matrix: MatrixConfig
    end_state: EndStateRule = field(default_factory=EndStateRule)


CONFIGS = {
    "ci": BalancingConfig(
        scalar=ScalarConfig(mu=PAPER_MU, inits=PAPER_INITS, grid=Grid(0.5, 5.0, 0.01), steps=15000),
        orbit=OrbitConfig(mu=PAPER_MU, init=(1.2, 0.8), grid=Grid(0.8, 1.5, 0.01), steps=15000),
        recursion=RecursionConfig(mu=PAPER_MU, inits=PAPER_INITS, eta_L=(0.5, 1.5, 2.5, 3.0, 4.5),
                                  with_h0=True, steps=400),
        trajectories=TrajectoryConfig(mu=PAPER_MU, init=(9.0, 1.0), eta_L=(1.0, 2.5, 3.25), with_h0=True, steps=400),
        matrix=MatrixConfig(m=4, n=3, rank=2, singular_values=(2.0, 1.0), x_scale=4.0, y_scale=0.2,
                            seed_index=0, grid=Grid(1.0, 4.6, 0.05), steps=6000, report_eta_L=3.0),
    ),
    "full": BalancingConfig(
        scalar=ScalarConfig(mu=PAPER_MU, inits=PAPER_INITS + ((49.0, 1.0), (199.0, 1.0)),
                            grid=Grid(0.1, 5.0, 0.001), steps=100000),
        orbit=OrbitConfig(mu=PAPER_MU, init=(1.2, 0.8), grid=Grid(0.5, 1.5, 0.001), steps=100000),
        recursion=RecursionConfig(mu=PAPER_MU, inits=PAPER_INITS + ((49.0, 1.0), (199.0, 1.0)),
                                  eta_L=(0.5, 1.5, 2.5, 3.0, 4.5), with_h0=True, steps=5000),
        trajectories=TrajectoryConfig(mu=PAPER_MU, init=(9.0, 1.0), eta_L=(1.0, 2.5, 3.25), with_h0=True, steps=400),
        matrix=MatrixConfig(m=10, n=8, rank=4, singular_values=(4.0, 3.0, 2.0, 1.0), x_scale=4.0, y_scale=0.2,
                            seed_index=0, grid=Grid(0.5, 5.0, 0.005), steps=50000, report_eta_L=2.5),
    ),
}
