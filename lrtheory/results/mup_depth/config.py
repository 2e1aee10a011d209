"""Settings of chapter 03 per scale: frozen dataclasses, one per scale.

A stored measurement is keyed by the hash of the whole :class:`MupDepthConfig` of its
scale, so changing any value below makes the stored points of that scale stale.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

__all__ = ["MCConfig", "TransferConfig", "MupDepthConfig", "CONFIGS", "TARGET", "Y_TARGET"]

#: Target of the maximal-update criterion: mean squared pre-activation change equal to 1
#: (the pre-activations themselves have mean square 2 at init).
TARGET = 1.0
#: Regression target ``y`` of the one datum.
Y_TARGET = 1.0


@dataclass(frozen=True)
class MCConfig:
    """Monte Carlo of the one-step change over random initializations.

    Attributes
    ----------
    widths, depths : tuple of int
        The (width n, depth L) grid; a point is run only when ``L <= max_depth_over_width * n``
        (the corrections to the large-``n`` limit grow like ``L / n``).
    n_seeds : int
        Independent networks per (n, L) point.
    max_depth_over_width : float
    etas : tuple of float
        LRs of the exact GD step (recorded at the largest width only).
    n_boot : int
        Bootstrap resamples of the fitted depth exponent.
    tau, y : float
        The update target and the regression target of the one datum.
    """

    widths: Tuple[int, ...]
    depths: Tuple[int, ...]
    n_seeds: int
    max_depth_over_width: float
    etas: Tuple[float, ...]
    n_boot: int
    tau: float = TARGET
    y: float = Y_TARGET

    def runs(self, width: int, depth: int) -> bool:
        """Whether the grid point (``width``, ``depth``) is run (``L <= max_depth_over_width * n``)."""
        return depth <= self.max_depth_over_width * width


@dataclass(frozen=True)
class TransferConfig:
    """LR transfer across depth: mean-field MLPs trained on digits over a grid of base LRs.

    Attributes
    ----------
    width : int
    depths : tuple of int
        The smallest is the base depth ``L_0`` of the depth scaling.
    n_train : int
        Training digits (full-batch GD).
    steps : int
    log2_etas : tuple of float
        ``log2`` of the base LRs (evenly spaced).
    n_seeds : int
        Independent initializations per (depth, LR).
    """

    width: int
    depths: Tuple[int, ...]
    n_train: int
    steps: int
    log2_etas: Tuple[float, ...]
    n_seeds: int


@dataclass(frozen=True)
class MupDepthConfig:
    """Everything chapter 03 measures at one scale."""

    mc: MCConfig
    transfer: TransferConfig


def _grid(lo: float, hi: float, step: float) -> Tuple[float, ...]:
    n = int(round((hi - lo) / step))
    return tuple(float(2.0 ** (lo + i * step)) for i in range(n + 1))


#: Grids per scale. ``ci``: widths 64..256, depths 2..16 with ``L <= n/8``, 64 networks per
#: point, and training at width 32 up to depth 8. ``full``: widths 256..1024, depths 2..64 with
#: ``L <= n/16``, 256 networks per point (about 4e10 Gaussian draws, made on the CPU by
#: ``init_params``), and training at width 256 up to depth 32: for a GPU machine.
CONFIGS = {
    "ci": MupDepthConfig(
        mc=MCConfig(widths=(64, 128, 256), depths=(2, 4, 8, 16), n_seeds=64, max_depth_over_width=1 / 8,
                    etas=_grid(-10, 1, 0.5), n_boot=400),
        transfer=TransferConfig(width=32, depths=(1, 2, 4, 8), n_train=128, steps=60,
                                log2_etas=tuple(float(e) for e in range(-4, 8)), n_seeds=4),
    ),
    "full": MupDepthConfig(
        mc=MCConfig(widths=(256, 512, 1024), depths=(2, 4, 8, 16, 32, 64), n_seeds=256,
                    max_depth_over_width=1 / 16, etas=_grid(-14, 1, 0.25), n_boot=2000),
        transfer=TransferConfig(width=256, depths=(1, 2, 4, 8, 16, 32), n_train=1024, steps=500,
                                log2_etas=tuple(float(-6 + 0.5 * i) for i in range(29)), n_seeds=8),
    ),
}
