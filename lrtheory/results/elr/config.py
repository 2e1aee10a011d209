"""Chapter 04 configs: one frozen dataclass instance per scale.

``sim_*``/``norm_*``/``ratio_*``: scale-invariant weights trained on random losses (the model's
premise: figures and unit tests, no claim); ``mlp_*``/``scan_*``/``trace_*``: the deep BatchNorm
MLP on digits (``mlp_depth`` normalized hidden layers); ``warm_*``: the warm-up comparison
(momentum SGD at a target LR); ``cnn_*``: the small BatchNorm CNN on the 8x8 digit images;
``net_*``: the BatchNorm MLP, LayerNorm MLP and CNN of ``elr.ratio_converges``; ``deep_*``: the
trainability experiment (a very deep BatchNorm MLP, several seeds, with and without the warm-up).

The reference scale and the paper. Only the abstract of Mehmeti-Gopel & Wand (2024) could be
read, so its architectures, data sets, learning rates and run lengths are unknown: the reference
setting is not the paper's. It fits the chapter's CPU budget (about 10 CPU-minutes for the whole
sweep): the one-step scans and the LR ramps on a BatchNorm MLP of depth 32 (8 inits), the
trainability experiment on one of depth 32 (the abstract's effects are "most evident in very deep
networks"; an earlier reference run at depth 64 trained in neither arm), width 64, 512 training
digits (8x8 images, not the paper's data sets), 200 steps of full-batch momentum SGD (no data
augmentation, no mini-batches, no weight decay) and 6 seeds; the ratio networks run 1000 steps,
long after their loss has stopped falling. What that costs: short training (a network that trains
in 200 steps is trainable; one that does not might in 2000) and a small data set (training
accuracy only; the test digits under batch statistics say nothing at this size).

Example
-------
>>> CONFIGS["ci"].deep_depth, CONFIGS["reference"].deep_depth
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
        Steps of the norm-recursion simulation (a unit test of the derivation and a figure).
    norm_E0 : tuple of float
        Initial ELRs of its layers (``eta = 1``, ``S0 = 1``, so ``E0 = c``).
    ratio_steps : int
        Steps of the ratio simulation (a unit test of the derivation and a figure).
    ratio_E0 : (float, float)
        Initial ELRs of its two layers (a 10x gap in gradient scale).
    ratio_pairs : int
        Independent pairs of such layers simulated at once; their log ratios are averaged.
    mlp_depth, mlp_width, mlp_n : int
        Normalized hidden layers, their width, training digits of the BatchNorm MLP of the
        one-step scans, the traces and the warm-up comparison.
    scan_mults : tuple of float
        LRs of the one-step scan, in units of the critical LR at init.
    scan_seeds : int
        Initializations of the MLP (``seed_index`` 0, 1, ...) the ``elr.critical_lr`` claim
        scans; the figures show ``seed_index`` 0.
    trace_mults : tuple of float
        Constant LRs of the training traces, in units of the critical LR at init.
    trace_steps : int
    ramp_start, ramp_rate : float
        The LR ramp of ``elr.critical_lr``: full-batch GD of the MLP at ``eta_t = ramp_start * eta_c0 *
        ramp_rate^t`` (``eta_c0`` its critical LR at init).
    ramp_steps, ramp_seeds : int
        Its length and its initializations (``seed_index`` 0, 1, ...).
    warm_steps : int
        Steps of the warm-up comparison (``elr.warmup_reduces_spread``: the early phase).
    warm_lr : float
        Its target LR (also the deep runs' LR).
    warm_momentum : float
        Its heavy-ball momentum (also the deep runs').
    cnn_channels, cnn_blocks, cnn_n : int
        Channels, conv -> BatchNorm -> ReLU blocks and training images of the CNN warm-up figure.
    net_depth, net_width, net_n : int
        Depth and width of the MLPs of ``elr.ratio_converges`` and their training digits.
    net_cnn_blocks, net_cnn_channels, net_cnn_n : int
        The same for its CNN.
    net_mult : float
        Their constant LR in units of the critical LR at init.
    net_steps : int
    deep_depth, deep_width, deep_n : int
        The very deep BatchNorm MLP of ``elr.deep_trainability`` and ``elr.warmup_lasting``.
    deep_steps : int
    deep_seeds : int
    deep_last : int
        Steps at the end of training over which the end-of-training spread is averaged.
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
    ramp_start: float
    ramp_rate: float
    ramp_steps: int
    ramp_seeds: int
    warm_steps: int
    warm_lr: float
    warm_momentum: float
    cnn_channels: int
    cnn_blocks: int
    cnn_n: int
    net_depth: int
    net_width: int
    net_n: int
    net_cnn_blocks: int
    net_cnn_channels: int
    net_cnn_n: int
    net_mult: float
    net_steps: int
    deep_depth: int
    deep_width: int
    deep_n: int
    deep_steps: int
    deep_seeds: int
    deep_last: int


_SIM = dict(sim_dim=512, norm_steps=400, norm_E0=(0.05, 0.1, 0.2), ratio_steps=3000, ratio_E0=(0.5, 0.05),
            ratio_pairs=8)
# the LR ramp of elr.critical_lr: from eta_c0 / 16, doubling every two steps (a factor 2 in LR is two steps)
_RAMP = dict(ramp_start=0.0625, ramp_rate=1.414214)

CONFIGS = {
    "ci": ELRConfig(**_SIM, mlp_depth=16, mlp_width=64, mlp_n=256, scan_mults=_geomspace(1 / 16, 16, 25),
                    scan_seeds=4, trace_mults=(0.1, 0.5, 1.0, 3.0, 10.0), trace_steps=40, **_RAMP, ramp_steps=40,
                    ramp_seeds=4, warm_steps=20,
                    warm_lr=30.0, warm_momentum=0.9, cnn_channels=8, cnn_blocks=16, cnn_n=128,
                    net_depth=8, net_width=32, net_n=256, net_cnn_blocks=4, net_cnn_channels=4, net_cnn_n=128,
                    net_mult=0.3, net_steps=200, deep_depth=16, deep_width=32, deep_n=256, deep_steps=60,
                    deep_seeds=2, deep_last=10),
    # the model-premise simulations (figures, no claim) at a size that keeps the stored file small
    "reference": ELRConfig(**dict(_SIM, ratio_steps=1000, ratio_pairs=2), mlp_depth=32, mlp_width=64, mlp_n=512,
                           scan_mults=_geomspace(1 / 16, 16, 25),
                           scan_seeds=8, trace_mults=(0.1, 1.0, 10.0), trace_steps=60, **_RAMP, ramp_steps=48,
                           ramp_seeds=8, warm_steps=20,
                           warm_lr=30.0, warm_momentum=0.9, cnn_channels=8, cnn_blocks=16, cnn_n=128,
                           net_depth=16, net_width=64, net_n=512, net_cnn_blocks=8, net_cnn_channels=8,
                           net_cnn_n=128, net_mult=0.3, net_steps=1000, deep_depth=32, deep_width=64, deep_n=512,
                           deep_steps=200, deep_seeds=6, deep_last=20),
    "full": ELRConfig(sim_dim=4096, norm_steps=4000, norm_E0=(0.05, 0.1, 0.2), ratio_steps=30000,
                      ratio_E0=(0.5, 0.05), ratio_pairs=8, mlp_depth=32, mlp_width=256, mlp_n=1347,
                      scan_mults=_geomspace(1 / 16, 16, 33), scan_seeds=8,
                      trace_mults=(0.1, 0.3, 0.5, 1.0, 2.0, 3.0, 10.0), trace_steps=400, **_RAMP,
                      ramp_steps=48, ramp_seeds=8, warm_steps=100,
                      warm_lr=30.0, warm_momentum=0.9, cnn_channels=64, cnn_blocks=32, cnn_n=1347,
                      net_depth=32, net_width=256, net_n=1347, net_cnn_blocks=16, net_cnn_channels=32,
                      net_cnn_n=1347, net_mult=0.3, net_steps=2000, deep_depth=64, deep_width=256, deep_n=1347,
                      deep_steps=2000, deep_seeds=8, deep_last=200),
}
