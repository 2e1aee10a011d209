"""Chapter 02, the settings of every measurement at each scale (frozen dataclasses).

The uv and quadratic grids are offset by half a step so that no grid point sits exactly on
an edge (``eta * lambda_0 = 2`` or ``4``), where the phase of a run flips on round-off; the
measured edges are then midpoints equal to 2 and 4 whenever the theory holds.

``CONFIGS["ci"]`` is what CI recomputes (2 CPU cores, seconds); ``CONFIGS["full"]`` the
paper-sized grids for a GPU. A stored result is keyed by the hash of the whole
:class:`CatapultConfig`, so changing any value here makes the stored points stale.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

__all__ = ["Grid", "UVConfig", "QuadraticConfig", "ReluConfig", "TrajectoryConfig", "AuthorsReluConfig", "UVPeakConfig",
           "HomogeneousConfig", "BiasConfig", "LambdaTConfig", "CatapultConfig", "CONFIGS"]


@dataclass(frozen=True)
class Grid:
    """An evenly spaced grid of ``eta * lambda_0`` from ``lo`` to ``hi`` (inclusive) with ``step``."""

    lo: float
    hi: float
    step: float

    def values(self) -> np.ndarray:
        """The grid points, rounded to 10 decimals (so ``1.5 + k * 0.01`` prints as it reads).

        Examples
        --------
        >>> Grid(1.0, 2.0, 0.5).values()
        array([1. , 1.5, 2. ])
        """
        return np.round(np.arange(self.lo, self.hi + self.step / 2, self.step), 10)


@dataclass(frozen=True)
class UVConfig:
    """GD on the uv model over ``eta * lambda_0`` x widths x seed indices."""

    grid: Grid
    widths: Tuple[int, ...]
    seeds: Tuple[int, ...]
    steps: int
    div_g: float = 1e6  # divergence threshold on eta^2 f^2 / n


@dataclass(frozen=True)
class QuadraticConfig:
    """GD on the pure quadratic model, unit spectrum and the ``spread`` spectrum ``s_i ~ U(spread)``."""

    grid: Grid
    widths: Tuple[int, ...]  # parameter counts N
    seeds: Tuple[int, ...]
    steps: int
    spread: Tuple[float, float]
    div_g: float = 1e6


@dataclass(frozen=True)
class ReluConfig:
    """Full-batch GD on ReLU MLPs (NTK parametrization, no bias) on digits, one grid per depth."""

    depths: Tuple[int, ...]
    grids: Tuple[Grid, ...]  # one per depth, same order
    width: int
    seeds: Tuple[int, ...]
    steps: int
    n_train: int
    divergence_factor: float = 1e12

    def grid(self, depth: int) -> Grid:
        """The grid of ``depth``.

        Raises
        ------
        ValueError
            If ``depth`` is not one of :attr:`depths`.
        """
        if depth not in self.depths:
            raise ValueError(f"depth: expected one of {self.depths}, got {depth!r}")
        return self.grids[self.depths.index(depth)]


@dataclass(frozen=True)
class TrajectoryConfig:
    """Full uv trajectories for a few ``eta * lambda_0`` (one initialization)."""

    eta_lam0: Tuple[float, ...]
    width: int
    seed: int
    steps: int
    div_g: float = 1e6


@dataclass(frozen=True)
class AuthorsReluConfig:
    """ReLU MLPs at the authors' setting (Meltzer, Chen & Liu 2023, official code): ``N(0, 1)``
    weights, no biases (their notebook sets ``bias_value=False`` for every ReLU figure; with
    ``bias=True`` the biases start at zero and are trained), unscaled hidden layers and the output times
    ``(d_in width^L)^-1/2``; full-batch GD on 1/2 MSE over ``n_train`` digits 0/1 (targets
    -1/+1), until the loss is below ``conv_rel`` times its initial value or ``steps`` ran.
    One width per depth (same order)."""

    depths: Tuple[int, ...]
    widths: Tuple[int, ...]
    grid: Grid
    seeds: Tuple[int, ...]
    steps: int
    n_train: int = 128
    bias: bool = False
    conv_rel: float = 1e-3
    divergence_factor: float = 1e8

    def width(self, depth: int) -> int:
        """The width of ``depth``."""
        if depth not in self.depths:
            raise ValueError(f"depth: expected one of {self.depths}, got {depth!r}")
        return self.widths[self.depths.index(depth)]


@dataclass(frozen=True)
class UVPeakConfig:
    """The uv catapult peak (loss and step) at one ``eta * lambda_0`` across widths."""

    eta_lam0: float
    widths: Tuple[int, ...]
    seeds: Tuple[int, ...]
    steps: int


@dataclass(frozen=True)
class HomogeneousConfig:
    """The two-layer homogeneous net on ``x = 1, y = 0`` (Meltzer, Chen & Liu's toy setting),
    one sweep per leaky-ReLU ``slope`` (1/2: their Fig. 2 net; 0: ReLU, for the dead units)."""

    grid: Grid
    widths: Tuple[int, ...]
    seeds: Tuple[int, ...]
    steps: int
    slopes: Tuple[float, ...] = (0.5, 0.0)
    div_g: float = 1e6


@dataclass(frozen=True)
class BiasConfig:
    """The quadratic model with bias on ``x = 1, y = 0`` (their toy setting: 10 features,
    meta-feature eigenvalues +-1); ``widths`` are the sizes ``N`` of the quadratic part."""

    grid: Grid
    widths: Tuple[int, ...]
    seeds: Tuple[int, ...]
    steps: int
    feat_dim: int = 10
    div_g: float = 1e6


@dataclass(frozen=True)
class LambdaTConfig:
    """``lambda_t / lambda_0`` at fixed ``t eta`` (in units of ``1/lambda_0``) against
    ``eta lambda_0`` for the two-layer ReLU net on ``x = 1`` (Lewkowycz et al., Fig. 2c)."""

    grid: Grid
    width: int
    seed: int
    t_eta: Tuple[float, ...]


@dataclass(frozen=True)
class CatapultConfig:
    """Every setting of chapter 02 at one scale."""

    uv: UVConfig
    quadratic: QuadraticConfig
    relu: ReluConfig
    traj: TrajectoryConfig
    authors: AuthorsReluConfig
    peak: UVPeakConfig
    homogeneous: HomogeneousConfig
    bias: BiasConfig
    lambda_t: LambdaTConfig


CONFIGS = {
    "ci": CatapultConfig(
        uv=UVConfig(grid=Grid(1.505, 4.505, 0.01), widths=(16, 64, 256, 1024), seeds=tuple(range(8)), steps=3000),
        quadratic=QuadraticConfig(grid=Grid(1.51, 5.01, 0.02), widths=(32, 128, 512), seeds=(0, 1, 2, 3), steps=3000,
                                  spread=(0.8, 1.2)),
        relu=ReluConfig(depths=(1, 2), grids=(Grid(1.0, 6.0, 0.25), Grid(1.0, 20.0, 1.0)), width=128,
                        seeds=(0, 1, 2), steps=200, n_train=32),
        traj=TrajectoryConfig(eta_lam0=(1.5, 3.0, 4.2), width=1024, seed=0, steps=120),
        authors=AuthorsReluConfig(depths=(1, 2), widths=(1024, 128), grid=Grid(4.0, 28.0, 4.0), seeds=(0,), steps=600),
        peak=UVPeakConfig(eta_lam0=3.0, widths=tuple(2**k for k in range(6, 15)), seeds=tuple(range(32)), steps=40),
        homogeneous=HomogeneousConfig(grid=Grid(1.525, 5.025, 0.05), widths=(256, 1024), seeds=tuple(range(4)),
                                      steps=3000),
        bias=BiasConfig(grid=Grid(1.525, 5.025, 0.05), widths=(256, 1024), seeds=tuple(range(6)), steps=3000),
        lambda_t=LambdaTConfig(grid=Grid(0.5, 6.0, 0.25), width=1024, seed=0, t_eta=(20.0, 80.0)),
    ),
    # reference: the uv, quadratic, CI-ReLU and trajectory settings are the CI ones (they
    # already hold at CI and cost seconds); what is new is the authors' ReLU setting. Against
    # the paper: scikit-learn digits 0/1 (8x8, d_in = 64) instead of MNIST 0/1 (d_in = 784);
    # width 1024 for one hidden layer as the paper, 256 for two (the 1024^2 layer costs 16x
    # more, beyond the ~20 CPU-minute budget); 2 seeds; at most 1000 steps instead of
    # "until the loss stops changing" (runs stop at 1e-3 of the initial loss); the grid
    # goes past the paper's 12 to find the edge.
    "reference": CatapultConfig(
        uv=UVConfig(grid=Grid(1.505, 4.505, 0.01), widths=(16, 64, 256, 1024), seeds=tuple(range(8)), steps=3000),
        quadratic=QuadraticConfig(grid=Grid(1.51, 5.01, 0.02), widths=(32, 128, 512), seeds=(0, 1, 2, 3), steps=3000,
                                  spread=(0.8, 1.2)),
        relu=ReluConfig(depths=(1, 2), grids=(Grid(1.0, 6.0, 0.25), Grid(1.0, 20.0, 1.0)), width=128,
                        seeds=(0, 1, 2), steps=200, n_train=32),
        traj=TrajectoryConfig(eta_lam0=(1.5, 3.0, 4.2), width=1024, seed=0, steps=120),
        authors=AuthorsReluConfig(depths=(1, 2), widths=(1024, 256), grid=Grid(2.0, 32.0, 2.0), seeds=(0, 1),
                                  steps=1000),
        peak=UVPeakConfig(eta_lam0=3.0, widths=tuple(2**k for k in range(6, 15)), seeds=tuple(range(64)), steps=40),
        # the authors' toy settings: width 1024 as their Fig. 2 (and 256 for the width trend);
        # 8 seeds where they ran one; the grid steps 0.02 where theirs steps 0.1
        homogeneous=HomogeneousConfig(grid=Grid(1.51, 5.01, 0.02), widths=(256, 1024), seeds=tuple(range(8)),
                                      steps=3000),
        # the quadratic part 512 and 2048 wide where theirs is 100 (the width-free limit needs N >> 1)
        bias=BiasConfig(grid=Grid(1.51, 5.01, 0.02), widths=(512, 2048), seeds=tuple(range(8)), steps=3000),
        lambda_t=LambdaTConfig(grid=Grid(0.5, 6.0, 0.1), width=1024, seed=0, t_eta=(10.0, 20.0, 40.0, 80.0)),
    ),
    "full": CatapultConfig(
        uv=UVConfig(grid=Grid(1.50125, 4.50125, 0.0025), widths=(16, 64, 256, 1024, 4096, 16384), seeds=tuple(range(16)),
                    steps=10000),
        quadratic=QuadraticConfig(grid=Grid(1.5025, 5.0025, 0.005), widths=(32, 128, 512, 2048, 8192),
                                  seeds=tuple(range(16)), steps=10000, spread=(0.8, 1.2)),
        relu=ReluConfig(depths=(1, 2, 3), grids=(Grid(1.0, 8.0, 0.05), Grid(1.0, 24.0, 0.25), Grid(1.0, 24.0, 0.25)),
                        width=512, seeds=tuple(range(6)), steps=2000, n_train=256),
        traj=TrajectoryConfig(eta_lam0=(1.5, 3.0, 4.2), width=4096, seed=0, steps=200),
        authors=AuthorsReluConfig(depths=(1, 2), widths=(1024, 1024), grid=Grid(0.5, 24.0, 0.5), seeds=tuple(range(4)),
                                  steps=20000),
        peak=UVPeakConfig(eta_lam0=3.0, widths=tuple(2**k for k in range(6, 17)), seeds=tuple(range(256)), steps=60),
        homogeneous=HomogeneousConfig(grid=Grid(1.505, 5.005, 0.01), widths=(256, 1024, 4096, 16384),
                                      seeds=tuple(range(16)), steps=10000),
        bias=BiasConfig(grid=Grid(1.505, 5.005, 0.01), widths=(512, 2048, 8192), seeds=tuple(range(16)), steps=10000),
        lambda_t=LambdaTConfig(grid=Grid(0.5, 6.0, 0.05), width=4096, seed=0, t_eta=(10.0, 20.0, 40.0, 80.0)),
    ),
}
