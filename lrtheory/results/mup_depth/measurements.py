"""What chapter 03 measures: the one-step Monte Carlo of the hidden layers, the first and the
last layer over widths, and the transfer training.

All are decomposed into points for the sweep engine (one per (width, depth) of the grid, one
per width of the first/last-layer run, one per (mode, depth) of the transfer), so a long run
resumes point by point and spreads over workers. Every network has its own seed,
``seed_for("mup_depth", <measurement>, ...)`` with every key that distinguishes it: no two
networks of any measurement share one (``tests/test_mup_depth_claims.py`` checks it).
"""
from __future__ import annotations

import math

import numpy as np

from lrtheory.core.device import seed_for
from lrtheory.results.mup_depth import CHAPTER
from lrtheory.results.mup_depth.analysis import (GridPoint, LayerPoint, LayerWidths, TransferResult, UpdateGrid,
                                                 best_lr)
from lrtheory.results.mup_depth.simulate import one_cpu_thread, one_step, train_transfer

__all__ = ["measure_update_grid", "measure_layer_widths", "measure_transfer", "MODES"]

#: The two transfer modes: no depth factor, and the first and hidden layers' LRs times
#: ``(L / L_0)^{-3/2}``.
MODES = ("unscaled", "scaled")


def _grid_parts(cfg):
    return [{"width": n, "depth": L} for n, L in cfg.mc.points()]


def _grid_combine(cfg, points):
    mc = cfg.mc
    return UpdateGrid.from_points(mc.series, mc.etas, points, mc.fit_depths(), mc.n_boot, mc.tau)


@CHAPTER.measurement(parts=_grid_parts, combine=_grid_combine)
def measure_update_grid(cfg, device, part) -> GridPoint:
    """The one-step Monte Carlo over the scale's series of (width, depth) points (an
    :class:`UpdateGrid`).

    At every point (one part each), ``n_seeds`` independent networks
    (:func:`~lrtheory.results.mup_depth.simulate.one_step`, input dimension ``n``); the exact
    steps over ``etas`` are recorded on the update series, and every layer of the deepest net
    of the depth series.
    """
    mc = cfg.mc
    n, L = part["width"], part["depth"]
    on_update = n == mc.update_ratio * L and L in mc.series[-1][1]
    deepest = n == mc.depth_ratio * L and L == max(mc.series[0][1])
    seeds = [seed_for("mup_depth", "update_grid", n, L, k) for k in range(mc.n_seeds)]
    with one_cpu_thread(device):
        res = one_step(n, L, seeds, etas=mc.etas if on_update else mc.etas[:1], y=mc.y, device=device)
    exact = res.exact[:, :, L - 1]
    return GridPoint(width=n, depth=L, top=res.lin[:, L - 1],
                     exact_top=exact.mean(0) if on_update else None,
                     exact_top_se=exact.std(0, ddof=1) / math.sqrt(mc.n_seeds) if on_update else None,
                     layers=res.lin[:, :L] if deepest else None)


def _layer_combine(cfg, points):
    lc = cfg.layers
    return LayerWidths(lc.input_dim, lc.depth, tuple(lc.widths), tuple(points), cfg.mc.tau)


@CHAPTER.measurement(parts=lambda cfg: [{"width": n} for n in cfg.layers.widths], combine=_layer_combine)
def measure_layer_widths(cfg, device, part) -> LayerPoint:
    """The first and the last layer over widths at a fixed input dimension (a
    :class:`LayerWidths`; one part per width).

    ``n_seeds`` independent mean-field networks of depth ``layers.depth``, input dimension
    ``layers.input_dim``, one GD step at LR multiplier 1 on every layer: the first layer's own
    change of ``z^{(1)}`` (no other layer moves it), the top hidden layer's change, and the
    readout's own change of the output; then the same networks again with the first layer's
    LR multiplied by ``n / d`` (the top hidden layer's change under the rule): one step of
    two LR settings on each network, not two networks.
    """
    lc = cfg.layers
    n = part["width"]
    seeds = [seed_for("mup_depth", "layer_widths", lc.input_dim, n, lc.depth, k) for k in range(lc.n_seeds)]
    with one_cpu_thread(device):
        res = one_step(n, lc.depth, seeds, etas=cfg.mc.etas[:1], y=cfg.mc.y, input_dim=lc.input_dim, device=device)
        mults = [n / lc.input_dim] + [1.0] * lc.depth  # the same networks, the first layer at n / d
        rule = one_step(n, lc.depth, seeds, etas=cfg.mc.etas[:1], y=cfg.mc.y, input_dim=lc.input_dim,
                        layer_lr_mults=mults, device=device)
    return LayerPoint(width=n, first=res.lin[:, 0], hidden=res.lin[:, lc.depth - 1], last=res.out_parts[:, 1] ** 2,
                      hidden_rule=rule.lin[:, lc.depth - 1])


def _transfer_parts(cfg):
    return [{"mode": m, "depth": L} for m in MODES for L in cfg.transfer.depths]


def _transfer_combine(cfg, runs):
    t = cfg.transfer
    log2_etas = np.asarray(t.log2_etas, dtype=np.float64)
    D = len(t.depths)
    loss = {m: np.stack(runs[i * D:(i + 1) * D]) for i, m in enumerate(MODES)}
    best = {m: np.array([[best_lr(log2_etas, arr[j, s]) for s in range(t.n_seeds)] for j in range(D)])
            for m, arr in loss.items()}
    return TransferResult(t.width, min(t.depths), t.steps, t.n_train, tuple(t.depths), log2_etas, loss, best)


@CHAPTER.measurement(parts=_transfer_parts, combine=_transfer_combine)
def measure_transfer(cfg, device, part):
    """Train mean-field MLPs of several depths on digits over a grid of base LRs (a
    :class:`TransferResult`; one part per (mode, depth)).

    Full-batch GD on the MSE loss to one-hot targets, ``steps`` steps
    (:func:`~lrtheory.results.mup_depth.simulate.train_transfer`). Layer LRs are
    ``eta * layer_lr_multipliers(...)``: ``"unscaled"`` without a depth factor, ``"scaled"``
    with ``(L / L_0)^{-3/2}`` on the first and hidden layers (``L_0`` the smallest depth). Every
    (mode, depth, seed index, LR) trains its own network (at ``L_0`` the two modes train the
    same multipliers on different networks). The best LR is found per seed index, and its
    drift with depth averaged over seed indices.
    """
    from lrtheory.core.data import digits, one_hot

    t = cfg.transfer
    mode, L = part["mode"], part["depth"]
    G, S = len(t.log2_etas), t.n_seeds
    seeds = np.array([[seed_for("mup_depth", "transfer", mode, t.width, L, s, g) for g in range(G)]
                      for s in range(S)], dtype=np.int64)
    with one_cpu_thread(device):
        ds = digits(seed=0, n_train=t.n_train, device=device)
        return train_transfer(t.width, L, min(t.depths) if mode == "scaled" else None, seeds, t.log2_etas,
                              ds.x_train, one_hot(ds.y_train, 10), t.steps)
