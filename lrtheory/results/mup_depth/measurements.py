"""What chapter 03 measures: the one-step Monte Carlo grid and the transfer training.

Both are decomposed into points for the sweep engine (one per (width, depth) of the grid, one
per depth of the transfer), so a long run resumes point by point and spreads over workers.
Every network has its own seed, ``seed_for("mup_depth", <measurement>, width, depth, index...)``:
no two networks of any measurement share one (``tests/test_mup_depth_claims.py`` checks it).
"""
from __future__ import annotations

import math

import numpy as np

from lrtheory.core.device import seed_for
from lrtheory.results.mup_depth import CHAPTER
from lrtheory.results.mup_depth.analysis import GridPoint, TransferResult, UpdateGrid, best_lr
from lrtheory.results.mup_depth.simulate import one_cpu_thread, one_step, train_transfer

__all__ = ["measure_update_grid", "measure_transfer"]


def _grid_parts(cfg):
    mc = cfg.mc
    return [{"width": n, "depth": L} for n in mc.widths for L in mc.depths if mc.runs(n, L)]


def _grid_combine(cfg, points):
    mc = cfg.mc
    return UpdateGrid.from_points(mc.widths, mc.depths, mc.etas, points, mc.n_seeds, mc.n_boot, mc.tau)


@CHAPTER.measurement(parts=_grid_parts, combine=_grid_combine)
def measure_update_grid(cfg, device, part) -> GridPoint:
    """The one-step Monte Carlo over the scale's (width, depth) grid (an :class:`UpdateGrid`).

    At every point run (``L <= max_depth_over_width * n``; one part each), ``n_seeds``
    independent networks (:func:`~lrtheory.results.mup_depth.simulate.one_step`); the exact
    steps over ``etas`` are recorded at the largest width, and every layer of the deepest net
    run there.
    """
    mc = cfg.mc
    n, L = part["width"], part["depth"]
    largest = n == mc.widths[-1]
    deepest = largest and L == max(Lq for Lq in mc.depths if mc.runs(n, Lq))
    seeds = [seed_for("mup_depth", "update_grid", n, L, k) for k in range(mc.n_seeds)]
    with one_cpu_thread(device):
        res = one_step(n, L, seeds, etas=mc.etas if largest else mc.etas[:1], y=mc.y, device=device)
    exact = res.exact[:, :, L - 1]
    return GridPoint(width=n, depth=L, top=res.lin[:, L - 1], out_lin=float(res.output_coefficient(1.0).mean()),
                     out_lin_scaled=float(res.output_coefficient(1.0 / n).mean()),
                     exact_top=exact.mean(0) if largest else None,
                     exact_top_se=exact.std(0, ddof=1) / math.sqrt(mc.n_seeds) if largest else None,
                     layers=res.lin[:, :L] if deepest else None)


def _transfer_combine(cfg, runs):
    t = cfg.transfer
    log2_etas = np.asarray(t.log2_etas, dtype=np.float64)
    loss = {mode: np.stack([r.loss[mode] for r in runs]) for mode in ("unscaled", "scaled")}
    best = {mode: np.array([[best_lr(log2_etas, arr[j, s]) for s in range(t.n_seeds)] for j in range(len(t.depths))])
            for mode, arr in loss.items()}
    return TransferResult(t.width, min(t.depths), t.steps, t.n_train, tuple(t.depths), log2_etas, loss, best)


@CHAPTER.measurement(parts=lambda cfg: [{"depth": L} for L in cfg.transfer.depths], combine=_transfer_combine)
def measure_transfer(cfg, device, part):
    """Train mean-field MLPs of several depths on digits over a grid of base LRs (a
    :class:`TransferResult`; one part per depth).

    Full-batch GD on the MSE loss to one-hot targets, ``steps`` steps
    (:func:`~lrtheory.results.mup_depth.simulate.train_transfer`). Layer LRs are
    ``eta * layer_lr_multipliers(...)``: ``"unscaled"`` without a depth factor, ``"scaled"``
    with ``(L / L_0)^{-3/2}`` on the first and hidden layers (``L_0`` the smallest depth). Every
    (depth, seed index, LR) trains its own network; both modes train the same networks. The
    best LR is found per seed index, and its drift with depth averaged over seed indices.
    """
    from lrtheory.core.data import digits, one_hot

    t = cfg.transfer
    L = part["depth"]
    G, S = len(t.log2_etas), t.n_seeds
    seeds = np.array([[seed_for("mup_depth", "transfer", t.width, L, s, g) for g in range(G)] for s in range(S)],
                     dtype=np.int64)
    with one_cpu_thread(device):
        ds = digits(seed=0, n_train=t.n_train, device=device)
        return train_transfer(t.width, L, min(t.depths), seeds, t.log2_etas, ds.x_train, one_hot(ds.y_train, 10),
                              t.steps)
