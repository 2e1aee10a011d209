"""Chapter 04 configs: one frozen dataclass instance per scale.

``sim_*``/``norm_*``/``ratio_*``: scale-invariant weights trained on random losses (the model's
premise); ``mlp_*``/``scan_mults``/``trace_*``: the deep BatchNorm MLP on digits (``mlp_depth``
normalized hidden layers); ``warm_*``: the warm-up comparison (momentum SGD at a target LR);
``cnn_*``: the small BatchNorm CNN on the 8x8 digit images.

Example
-------
>>> CONFIGS["ci"].mlp_depth, CONFIGS["full"].mlp_depth
(16, 32)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

__all__ = ["ELRConfig", "CONFIGS"]


def _geomspace(lo: float, hi: float, n: int) -> Tuple[float, ...]:
    """``n`` log-spaced numbers from ``lo`` to ``hi``, rounded to 6 decimals (stable config JSON)."""
    import math

    a, b = math.log(lo), math.log(hi)
    return tuple(round(math.exp(a + (b - a) * i / (n - 1)), 6) for i in range(n))


@dataclass(frozen=True)
class ELRConfig:
    """Sizes of chapter 04's experiments at one scale.

    Attributes
    ----------
    sim_dim : int
        Dimension of each scale-invariant weight vector of the random-loss simulations.
    norm_steps : int
        Steps of the ``elr.norm_recursion`` simulation.
    norm_E0 : tuple of float
        Initial ELRs of its layers (``eta = 1``, ``S0 = 1``, so ``E0 = c``).
    ratio_steps : int
        Steps of the ``elr.ratio_converges`` simulation.
    ratio_E0 : (float, float)
        Initial ELRs of its two layers (a 10x gap in gradient scale).
    ratio_pairs : int
        Independent pairs of such layers simulated at once; their log ratios are averaged.
    mlp_depth, mlp_width, mlp_n : int
        Normalized hidden layers, their width, training digits of the MLP.
    scan_mults : tuple of float
        LRs of the one-step scan, in units of the critical LR at init.
    scan_seeds : int
        Initializations of the MLP (``seed_index`` 0, 1, ...) the ``elr.critical_lr`` claim
        scans; the figures show ``seed_index`` 0.
    trace_mults : tuple of float
        Constant LRs of the training traces, in units of the critical LR at init.
    trace_steps : int
    warm_steps : int
        Steps of the warm-up comparison.
    warm_lr : float
        Its target LR.
    warm_momentum : float
        Its heavy-ball momentum.
    cnn_channels, cnn_blocks, cnn_n : int
        Channels, conv -> BatchNorm -> ReLU blocks and training images of the CNN.
    """

    sim_dim: int
    norm_steps: int
    norm_E0: Tuple[float, ...]
    ratio_steps: int
    ratio_E0: Tuple[float, float]
    ratio_pairs: int
    mlp_depth: int
    mlp_width: int
    mlp_n: int
    scan_mults: Tuple[float, ...]
    scan_seeds: int
    trace_mults: Tuple[float, ...]
    trace_steps: int
    warm_steps: int
    warm_lr: float
    warm_momentum: float
    cnn_channels: int
    cnn_blocks: int
    cnn_n: int


CONFIGS = {
    "ci": ELRConfig(sim_dim=512, norm_steps=400, norm_E0=(0.05, 0.1, 0.2), ratio_steps=3000, ratio_E0=(0.5, 0.05),
                    ratio_pairs=8, mlp_depth=16, mlp_width=64, mlp_n=256, scan_mults=_geomspace(1 / 16, 16, 17),
                    scan_seeds=8, trace_mults=(0.1, 0.5, 1.0, 3.0, 10.0), trace_steps=40, warm_steps=20,
                    warm_lr=30.0, warm_momentum=0.9, cnn_channels=8, cnn_blocks=16, cnn_n=128),
    "full": ELRConfig(sim_dim=4096, norm_steps=4000, norm_E0=(0.05, 0.1, 0.2), ratio_steps=30000,
                      ratio_E0=(0.5, 0.05), ratio_pairs=8, mlp_depth=32, mlp_width=256, mlp_n=1347,
                      scan_mults=_geomspace(1 / 16, 16, 33), scan_seeds=8,
                      trace_mults=(0.1, 0.3, 0.5, 1.0, 2.0, 3.0, 10.0), trace_steps=400, warm_steps=100,
                      warm_lr=30.0, warm_momentum=0.9, cnn_channels=64, cnn_blocks=32, cnn_n=1347),
}
