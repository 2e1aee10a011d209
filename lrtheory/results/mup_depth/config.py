"""Settings of chapter 03 per scale: frozen dataclasses, one per scale.

A stored measurement is keyed by the hash of the whole :class:`MupDepthConfig` of its
scale, so changing any value below makes the stored points of that scale stale.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

__all__ = ["MCConfig", "LayerConfig", "TransferConfig", "MupDepthConfig", "CONFIGS", "TARGET", "Y_TARGET"]

#: Target of the maximal-update criterion: mean squared pre-activation change equal to 1
#: (the pre-activations themselves have mean square 2 at init).
TARGET = 1.0
#: Regression target ``y`` of the one datum.
Y_TARGET = 1.0


@dataclass(frozen=True)
class MCConfig:
    """Monte Carlo of the one-step change of the hidden layers over random initializations.

    Attributes
    ----------
    series : tuple of (int, tuple of int)
        ``(ratio, depths)``: the points ``(n = ratio * L, L)`` for each depth. At a fixed ratio
        ``n / L`` the finite-width corrections (of relative order ``L / n``) are one constant
        factor at every depth, which a log-log slope in ``L`` does not see. The first series
        is the depth series (the exponent fit), the last (largest ratio, smallest ``L / n``)
        the update series (the derived constant); widths are compared at the depths the
        first and last share.
    n_seeds : int
        Independent networks per point.
    etas : tuple of float
        LRs of the exact GD step (recorded on the update series only).
    n_boot : int
        Bootstrap resamples of the fitted depth exponent.
    fit_min_depth : int
        The exponent is fitted over the depth series' depths ``>= fit_min_depth``.
    tau, y : float
        The update target and the regression target of the one datum.
    """

    series: Tuple[Tuple[int, Tuple[int, ...]], ...]
    n_seeds: int
    etas: Tuple[float, ...]
    n_boot: int
    fit_min_depth: int = 2
    tau: float = TARGET
    y: float = Y_TARGET

    def points(self) -> Tuple[Tuple[int, int], ...]:
        """Every ``(width, depth)`` run, once each, in series order."""
        out = []
        for ratio, depths in self.series:
            for L in depths:
                if (ratio * L, L) not in out:
                    out.append((ratio * L, L))
        return tuple(out)

    @property
    def depth_ratio(self) -> int:
        """``n / L`` of the depth series (the exponent fit)."""
        return self.series[0][0]

    @property
    def update_ratio(self) -> int:
        """``n / L`` of the update series (the derived constant)."""
        return self.series[-1][0]

    def fit_depths(self) -> Tuple[int, ...]:
        """The depths of the exponent fit."""
        return tuple(L for L in self.series[0][1] if L >= self.fit_min_depth)

    def width_depths(self) -> Tuple[int, ...]:
        """The depths run on both the depth series and the update series (the width comparison)."""
        return tuple(L for L in self.series[0][1] if L in self.series[-1][1])


@dataclass(frozen=True)
class LayerConfig:
    """The first and the last layer: one GD step of a real network (fixed input dimension).

    A mean-field MLP with input dimension ``input_dim`` held fixed, ``depth`` hidden layers of
    width ``n`` for each ``n`` of ``widths``, ``n_seeds`` independent networks per width, the
    input ``x = (1, ..., 1)`` of dimension ``input_dim``.
    """

    input_dim: int
    depth: int
    widths: Tuple[int, ...]
    n_seeds: int


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
        Independent initializations per (mode, depth, LR): every trained network has its own.
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
    layers: LayerConfig
    transfer: TransferConfig


def _grid(lo: float, hi: float, step: float) -> Tuple[float, ...]:
    n = int(round((hi - lo) / step))
    return tuple(float(2.0 ** (lo + i * step)) for i in range(n + 1))


def _log2_grid(lo: float, hi: float, step: float) -> Tuple[float, ...]:
    n = int(round((hi - lo) / step))
    return tuple(float(lo + i * step) for i in range(n + 1))


#: Grids per scale.
#:
#: ``ci``: the depth series ``n = 16 L`` for ``L = 2..16`` (widths 32..256) and the update
#: series ``n = 64 L`` for ``L = 1, 2, 4``, 64 networks per point; first/last layer at depth 2,
#: widths 32..256, input dimension 64; training at width 32 up to depth 8, 4 seeds.
#:
#: ``reference`` (``lrtheory sweep mup_depth --scale reference``: about 9 CPU-minutes, 47 minutes
#: of wall time on the shared 2-core machine). The paper states its law for ``n, L -> oo`` with
#: ``L << n``; here: depths up to 64 at ``n = 16 L`` (widths up to 1024), where the finite-width
#: excess of the one-step change is 11 to 32% (a constant factor along the series, so the exponent is
#: unaffected; it costs the update formula, checked at ``n = 64 L``); 128 networks per point
#: (the change is heavy-tailed over initializations: relative s.d. about 1), which puts the
#: exponent's Monte Carlo error below 0.02. The first/last layer: depth 2, widths 64..1024,
#: input dimension 64 (that of digits). Transfer: width 64 (the paper's networks are wider),
#: depths 1..8, 256 digits, 100 full-batch steps, 12 seeds per (mode, depth, LR): enough to separate the two drifts
#: by many standard errors; a wider net or more steps would not fit the budget.
#:
#: ``full``: the reference grids with 512 networks, training at width 256 up to depth 32 on
#: 1024 digits: for a GPU machine.
CONFIGS = {
    "ci": MupDepthConfig(
        mc=MCConfig(series=((16, (2, 4, 8, 16)), (64, (1, 2, 4))), n_seeds=64, etas=_grid(-10, 1, 0.5),
                    n_boot=400),
        layers=LayerConfig(input_dim=64, depth=2, widths=(32, 64, 128, 256), n_seeds=64),
        transfer=TransferConfig(width=32, depths=(1, 2, 4, 8), n_train=128, steps=60,
                                log2_etas=tuple(float(e) for e in range(-4, 8)), n_seeds=4),
    ),
    "reference": MupDepthConfig(
        mc=MCConfig(series=((16, (2, 4, 8, 16, 32, 64)), (32, (1, 2, 4, 8, 16)), (64, (1, 2, 4, 8, 16))),
                    n_seeds=128, etas=_grid(-12, 1, 0.5), n_boot=1000),
        layers=LayerConfig(input_dim=64, depth=2, widths=(64, 128, 256, 512, 1024), n_seeds=128),
        transfer=TransferConfig(width=64, depths=(1, 2, 4, 8), n_train=256, steps=100,
                                log2_etas=_log2_grid(-3.5, 6.5, 0.5), n_seeds=12),
    ),
    "full": MupDepthConfig(
        mc=MCConfig(series=((16, (2, 4, 8, 16, 32, 64)), (32, (1, 2, 4, 8, 16, 32)), (64, (1, 2, 4, 8, 16, 32))),
                    n_seeds=512, etas=_grid(-14, 1, 0.25), n_boot=2000),
        layers=LayerConfig(input_dim=64, depth=4, widths=(64, 128, 256, 512, 1024, 2048), n_seeds=512),
        transfer=TransferConfig(width=256, depths=(1, 2, 4, 8, 16, 32), n_train=1024, steps=500,
                                log2_etas=_log2_grid(-6.0, 8.0, 0.5), n_seeds=8),
    ),
}
