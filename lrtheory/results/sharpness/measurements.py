"""Chapter 01's measurements: ``fn(cfg, device)``, memoized per (config, device) by the chapter.

Call them as ``measure_grid("ci", device)`` or ``measure_grid.of(cfg, device)``; at the stored
scales they are served from the results store (``lrtheory sweep sharpness`` computes them).
The chapter's further sweep, ``max_lr_grid`` (the exhaustive eta x depth x width x seed grid),
is declared here too.
"""
from __future__ import annotations

import numpy as np

from lrtheory.core.sweep import SweepDef
from lrtheory.results.sharpness import CHAPTER
from lrtheory.results.sharpness import derivation as D
from lrtheory.results.sharpness import simulate as S
from lrtheory.results.sharpness.analysis import GridMeasurement, LossCurves, NarrowMeasurement, PlainMeasurement

__all__ = ["measure_grid", "measure_plain", "measure_narrow", "measure_loss_curves", "MAX_LR_GRID"]


def _archs(archs):
    depth = np.array([a[0] for a in archs], dtype=np.int64)
    width = np.array([a[1] for a in archs], dtype=np.int64)
    return depth, width, (depth * width).astype(np.float64)


@CHAPTER.measurement
def measure_grid(cfg, device) -> GridMeasurement:
    """The grid of ``eta*`` searches and sharpness measurements.

    For every ``(L, n)`` of ``cfg.archs``: :func:`lrtheory.tools.max_lr.max_initial_lr` with
    the input layer at ``input_lr_mult`` (condition (ii); candidates of a round trained together
    on the batched trainer); ``lambda_1`` at init by batched Lanczos on ``n_sharp`` training
    examples for ``sharp_seeds`` fresh networks; the infinite-width predictions on the same inputs.
    """
    out = S.run_archs(cfg, cfg.archs, device, measurement="grid")
    preds = [p for _, p in D.predict_config(cfg)]
    depth, width, Ln = _archs(cfg.archs)
    return GridMeasurement(
        depth=depth, width=width, Ln=Ln, eta_star=out["eta"], eta_bracket=out["bracket"], lam1=out["lam"],
        lam1_ce=out["lam_ce"], pred_lower=np.array([p.lower for p in preds]),
        pred_point=np.array([p.point for p in preds]), pred_upper=np.array([p.upper for p in preds]),
        seconds=float(out["seconds"]),
    )


@CHAPTER.measurement
def measure_plain(cfg, device) -> PlainMeasurement:
    """``eta*`` and its bracket on the main grid *without* condition (ii): every layer at the same LR."""
    out = S.run_archs(cfg, cfg.archs, device, measurement="plain", input_lr_mult=1.0, sharp=False)
    return PlainMeasurement(eta_star=out["eta"], eta_bracket=out["bracket"])


@CHAPTER.measurement
def measure_narrow(cfg, device) -> NarrowMeasurement:
    """The measurements of :func:`measure_grid` on ``cfg.narrow`` (width not large against depth)."""
    out = S.run_archs(cfg, cfg.narrow, device, measurement="narrow")
    depth, width, Ln = _archs(cfg.narrow)
    pred = np.array([p.point for _, p in D.predict_config(cfg, "narrow")])
    return NarrowMeasurement(depth=depth, width=width, Ln=Ln, eta_star=out["eta"], lam1=out["lam"], pred_point=pred)


@CHAPTER.measurement(depends=("measure_grid",))
def measure_loss_curves(cfg, device) -> LossCurves:
    """Loss curves at ``eta*/2``, at the bracket's lower end, and above it.

    Uses the middle architecture of the grid and its bracket from :func:`measure_grid`.
    """
    g = measure_grid.of(cfg, device)
    i = len(cfg.archs) // 2
    L, n = cfg.archs[i]
    lo, hi = (float(v) for v in g.eta_bracket[i])
    etas = np.array([lo / 2.0, lo, hi * 1.25, hi * 2.0])
    h = S.run_loss_curves(cfg, L, n, etas, device)
    return LossCurves(depth=int(L), width=int(n), eta_star=float(g.eta_star[i]), etas=etas, step=h["step"],
                      loss=h["loss"], test_acc=h["test_acc"], threshold=float(cfg.threshold))


#: eta x depth x width x seed on digits (full-batch GD): final loss / accuracy / divergence,
#: read back by :func:`~lrtheory.results.sharpness.analysis.eta_star_from_grid`.
MAX_LR_GRID = CHAPTER.add_sweep(SweepDef(
    name="max_lr_grid",
    chapter="sharpness",
    description="eta x depth x width x seed on digits: final loss / accuracy / divergence (eta* search)",
    points=S.max_lr_grid_points,
    run_batch=S.run_max_lr_batch,
    schema=S.MAXLR_SCHEMA,
    group_by=("depth", "width", "steps", "n_train", "parametrization", "loss", "data_seed"),
    batch_size=64,
    check=S.check_maxlr,
))
