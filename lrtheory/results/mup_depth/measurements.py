"""What chapter 03 measures: the one-step Monte Carlo grid and the transfer training.

Every network has its own seed, ``seed_for("mup_depth", <measurement>, width, depth, index...)``:
no two networks of any measurement share one (``tests/test_mup_depth_claims.py`` checks it).
"""
from __future__ import annotations

import math

import numpy as np

from lrtheory.core.device import seed_for
from lrtheory.results.mup_depth import CHAPTER
from lrtheory.results.mup_depth.analysis import TransferResult, UpdateGrid, best_lr
from lrtheory.results.mup_depth.simulate import one_cpu_thread, one_step, train_transfer

__all__ = ["measure_update_grid", "measure_transfer"]


@CHAPTER.measurement
def measure_update_grid(cfg, device) -> UpdateGrid:
    """The one-step Monte Carlo over the scale's (width, depth) grid.

    At every point run (``L <= max_depth_over_width * n``), ``n_seeds`` independent networks
    (:func:`~lrtheory.results.mup_depth.simulate.one_step`); the exact steps over ``etas``
    and every layer of the deepest net are recorded at the largest width.
    """
    mc = cfg.mc
    W_, D_, K = len(mc.widths), len(mc.depths), mc.n_seeds
    top = np.full((W_, D_, K), np.nan)
    out_lin = np.full((W_, D_), np.nan)
    out_lin_scaled = np.full((W_, D_), np.nan)
    exact_top = np.full((D_, len(mc.etas)), np.nan)
    exact_top_se = np.full((D_, len(mc.etas)), np.nan)
    layers = None
    with one_cpu_thread(device):
        for i, n in enumerate(mc.widths):
            run = [j for j, L in enumerate(mc.depths) if mc.runs(n, L)]
            for j in run:
                L = mc.depths[j]
                largest = i == W_ - 1
                seeds = [seed_for("mup_depth", "update_grid", n, L, k) for k in range(K)]
                res = one_step(n, L, seeds, etas=mc.etas if largest else mc.etas[:1], y=mc.y, device=device)
                top[i, j] = res.lin[:, L - 1]
                out_lin[i, j] = res.output_coefficient(1.0).mean()
                out_lin_scaled[i, j] = res.output_coefficient(1.0 / n).mean()
                if largest:
                    exact_top[j] = res.exact[:, :, L - 1].mean(0)
                    exact_top_se[j] = res.exact[:, :, L - 1].std(0, ddof=1) / math.sqrt(K)
                    if j == run[-1]:
                        layers = res.lin[:, :L]
    return UpdateGrid(tuple(mc.widths), tuple(mc.depths), np.asarray(mc.etas), top, layers, exact_top, exact_top_se,
                      out_lin, out_lin_scaled, K, mc.n_boot, mc.tau)


@CHAPTER.measurement
def measure_transfer(cfg, device) -> TransferResult:
    """Train mean-field MLPs of several depths on digits over a grid of base LRs.

    Full-batch GD on the MSE loss to one-hot targets, ``steps`` steps
    (:func:`~lrtheory.results.mup_depth.simulate.train_transfer`). Layer LRs are
    ``eta * layer_lr_multipliers(...)``: ``"unscaled"`` without a depth factor, ``"scaled"``
    with ``(L / L_0)^{-3/2}`` on the first and hidden layers (``L_0`` the smallest depth). Every
    (depth, seed index, LR) trains its own network; both modes train the same networks. The
    best LR is found per seed index, and its drift with depth averaged over seed indices.
    """
    from lrtheory.core.data import digits, one_hot

    t = cfg.transfer
    log2_etas = np.asarray(t.log2_etas, dtype=np.float64)
    G, S = log2_etas.size, t.n_seeds
    base_depth = min(t.depths)
    with one_cpu_thread(device):
        ds = digits(seed=0, n_train=t.n_train, device=device)
        x, y = ds.x_train, one_hot(ds.y_train, 10)
        runs = []
        for L in t.depths:
            seeds = np.array([[seed_for("mup_depth", "transfer", t.width, L, s, g) for g in range(G)]
                              for s in range(S)], dtype=np.int64)
            runs.append(train_transfer(t.width, L, base_depth, seeds, log2_etas, x, y, t.steps))
    loss = {mode: np.stack([r.loss[mode] for r in runs]) for mode in ("unscaled", "scaled")}
    best = {mode: np.array([[best_lr(log2_etas, arr[j, s]) for s in range(S)] for j in range(len(t.depths))])
            for mode, arr in loss.items()}
    return TransferResult(t.width, base_depth, t.steps, t.n_train, tuple(t.depths), log2_etas, loss, best)
