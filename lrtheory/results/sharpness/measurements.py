"""Chapter 01's measurements: ``fn(cfg, device)``, memoized per (config, device) by the chapter.

Call them as ``measure_grid("ci", device)`` or ``measure_grid.of(cfg, device)``; at the stored
scales they are served from the results store (``lrtheory sweep sharpness`` computes them).
The long ones are decomposed into one part per architecture (``parts=``/``combine=``), so the
reference run resumes architecture by architecture and a recheck recomputes one cheap part.
The chapter's further sweep, ``max_lr_grid`` (the exhaustive eta x depth x width x seed grid),
is declared here too.
"""
from __future__ import annotations

import numpy as np

from lrtheory.core.sweep import SweepDef
from lrtheory.results.sharpness import CHAPTER
from lrtheory.results.sharpness import derivation as D
from lrtheory.results.sharpness import simulate as S
from lrtheory.results.sharpness.analysis import (BisectionMeasurement, GridMeasurement, LossCurves,
                                                 NarrowMeasurement, PlainMeasurement, TaskLawMeasurement,
                                                 TaskMeasurement, ThresholdStudy, WideMeasurement)
from lrtheory.results.sharpness.config import TASK_LAW_ARCHS, TASK_LAW_PLAIN_ARCHS, TASK_LAW_TASKS, scale_of

__all__ = ["measure_grid", "measure_plain", "measure_bisection", "measure_threshold", "measure_tasks",
           "measure_task_law", "measure_narrow", "measure_loss_curves", "MAX_LR_GRID", "ETA_STAR_WIDE", "wide"]


def _archs(archs):
    depth = np.array([a[0] for a in archs], dtype=np.int64)
    width = np.array([a[1] for a in archs], dtype=np.int64)
    return depth, width, (depth * width).astype(np.float64)


def _arch_parts(cfg):
    return [{"depth": int(L), "width": int(n)} for (L, n) in cfg.archs]


def _stack(results, key):
    return np.asarray([r[key] for r in results], dtype=np.float64)


# ---------------------------------------------------------------------------- main grid
def _combine_grid(cfg, results) -> GridMeasurement:
    preds = [p for _, p in D.predict_config(cfg)]
    depth, width, Ln = _archs(cfg.archs)
    return GridMeasurement(
        depth=depth, width=width, Ln=Ln, eta_star=_stack(results, "eta"), eta_bracket=_stack(results, "bracket"),
        lam1=_stack(results, "lam"), lam1_ce=_stack(results, "lam_ce"), lam1_w=_stack(results, "lam_w"),
        eta_lo=_stack(results, "lo"), eta_hi=_stack(results, "hi"), pred_lower=np.array([p.lower for p in preds]),
        pred_point=np.array([p.point for p in preds]), pred_upper=np.array([p.upper for p in preds]),
        pred_finite=np.array([p.finite for p in preds]), seconds=float(sum(r["seconds"] for r in results)),
    )


@CHAPTER.measurement(parts=_arch_parts, combine=_combine_grid)
def measure_grid(cfg, device, part) -> GridMeasurement:
    """The grid of ``eta*`` searches and sharpness measurements, one part per architecture.

    For every ``(L, n)`` of ``cfg.archs``: the grid-then-refine search of
    :func:`lrtheory.tools.max_lr.max_initial_lr` (called by :func:`~lrtheory.results.sharpness.simulate.grid_then_refine`) with
    the input layer at ``input_lr_mult`` (condition (ii)); ``lambda_1`` at init (squared loss,
    CE, and CE LR-weighted as the runs step on it) by batched Lanczos on ``n_sharp`` training
    examples for ``sharp_seeds`` fresh networks; the predictions on the same inputs.
    """
    ds = S.load_dataset(cfg, device)
    return S.run_arch(cfg, ds, part["depth"], part["width"], device, measurement="grid")


def _combine_plain(cfg, results) -> PlainMeasurement:
    return PlainMeasurement(eta_star=_stack(results, "eta"), eta_bracket=_stack(results, "bracket"))


@CHAPTER.measurement(parts=_arch_parts, combine=_combine_plain)
def measure_plain(cfg, device, part) -> PlainMeasurement:
    """``eta*`` and its bracket on the main grid *without* condition (ii): every layer at the same LR."""
    ds = S.load_dataset(cfg, device)
    return S.run_arch(cfg, ds, part["depth"], part["width"], device, measurement="plain", input_lr_mult=1.0,
                      sharp=False)


# ---------------------------------------------------------------------------- Algorithm 1
def _combine_bisection(cfg, results) -> BisectionMeasurement:
    depth, width, Ln = _archs(cfg.archs)
    return BisectionMeasurement(depth=depth, width=width, Ln=Ln, lo=_stack(results, "lo"), hi=_stack(results, "hi"),
                                etas=_stack(results, "etas"), success=_stack(results, "success").astype(bool),
                                bracket=tuple(float(b) for b in cfg.bisect_bracket))


@CHAPTER.measurement(parts=_arch_parts, combine=_combine_bisection)
def measure_bisection(cfg, device, part) -> BisectionMeasurement:
    """The paper's Algorithm 1 (plain bisection from ``cfg.bisect_bracket``) on the very networks
    of :func:`measure_grid`'s searches (same seeds, condition (ii), same budget and threshold)."""
    from lrtheory.core.mlp import MLPSpec

    ds = S.load_dataset(cfg, device)
    L, n = part["depth"], part["width"]
    spec = MLPSpec(d_in=ds.d_in, width=n, depth=L, d_out=ds.d_out, input_lr_mult=cfg.input_lr_mult)
    seeds = [S.model_seed("grid/eta_star", L, n, j) for j in range(cfg.seeds)]
    return S.bisection(spec, ds, seeds, threshold=cfg.threshold, bracket=cfg.bisect_bracket, iters=cfg.bisect_iters,
                       steps=cfg.steps, batch_size=cfg.batch_size, eval_every=cfg.eval_every, device=device)


# ---------------------------------------------------------------------------- eta* against t
def _t_parts(cfg):
    return [{"depth": int(L), "width": int(n)} for (L, n) in cfg.t_archs]


def _combine_threshold(cfg, results) -> ThresholdStudy:
    depth, width, Ln = _archs(cfg.t_archs)
    return ThresholdStudy(depth=depth, width=width, Ln=Ln, etas=np.asarray(cfg.t_grid, dtype=np.float64),
                          best=np.asarray(results, dtype=np.float64),
                          thresholds=np.asarray(cfg.thresholds, dtype=np.float64))


@CHAPTER.measurement(parts=_t_parts, combine=_combine_threshold)
def measure_threshold(cfg, device, part) -> np.ndarray:
    """Best validation accuracy of every LR of ``cfg.t_grid`` x seed at ``cfg.t_archs`` (the main
    grid's networks, condition (ii)): eta*(t) for every threshold of ``cfg.thresholds``."""
    ds = S.load_dataset(cfg, device)
    return S.threshold_study(cfg, ds, part["depth"], part["width"], device)


# ---------------------------------------------------------------------------- the paper's tasks
def _task_parts(cfg):
    return [{"task": t.name, "depth": int(L), "width": int(n)} for t in cfg.tasks for (L, n) in t.archs]


def _combine_tasks(cfg, results):
    out, i = [], 0
    for t in cfg.tasks:
        rs = results[i:i + len(t.archs)]
        i += len(t.archs)
        depth, width, Ln = _archs(t.archs)
        out.append(TaskMeasurement(name=t.name, depth=depth, width=width, Ln=Ln, threshold=float(t.threshold),
                                   grid_lo=_stack(rs, "grid_lo"), grid_hi=_stack(rs, "grid_hi"),
                                   bis_lo=_stack(rs, "bis_lo"), bis_hi=_stack(rs, "bis_hi"),
                                   bracket=tuple(float(b) for b in cfg.bisect_bracket)))
    return tuple(out)


@CHAPTER.measurement(parts=_task_parts, combine=_combine_tasks)
def measure_tasks(cfg, device, part):
    """Our grid-then-refine search and plain bisection on the paper's tasks (two Gaussians,
    MNIST-1D), on the same networks, one part per (task, architecture)."""
    from lrtheory.core.mlp import MLPSpec

    t = next(t for t in cfg.tasks if t.name == part["task"])
    ds = S.load_task(t, device)
    L, n = part["depth"], part["width"]
    spec = MLPSpec(d_in=ds.d_in, width=n, depth=L, d_out=ds.d_out, input_lr_mult=cfg.input_lr_mult)
    seeds = [S.model_seed(f"task/{t.name}", L, n, j) for j in range(t.seeds)]
    r = S.grid_then_refine(spec, ds, seeds, threshold=t.threshold, steps=t.steps, grid=t.grid, rounds=t.rounds,
                           points_per_round=t.points_per_round, batch_size=t.batch_size, eval_every=t.eval_every,
                           device=device)
    b = S.bisection(spec, ds, seeds, threshold=t.threshold, bracket=cfg.bisect_bracket, iters=cfg.bisect_iters,
                    steps=t.steps, batch_size=t.batch_size, eval_every=t.eval_every, device=device)
    return {"grid_lo": np.asarray(r.lo, dtype=np.float64), "grid_hi": np.asarray(r.hi, dtype=np.float64),
            "bis_lo": b["lo"], "bis_hi": b["hi"]}


# ---------------------------------------------------------------------------- the eta* law on the paper's tasks
def _task_law_parts(cfg):
    # task by task: every architecture with condition (ii), then those also run with every layer at
    # the same LR (a part's index is in its stored key: a task added at the end leaves the others' valid)
    # A task of TASK_LAW_TASKS (not in cfg.tasks, so not in the config's hash) carries its settings in
    # each of its parts ("settings"): changing them makes that task's stored parts stale, no other.
    from dataclasses import asdict

    s = scale_of(cfg)
    rho = float(cfg.input_lr_mult)
    plain = TASK_LAW_PLAIN_ARCHS.get(s, {})
    own = {t.name: asdict(t) for t in TASK_LAW_TASKS.get(s, ())}
    return [dict({"task": name, "depth": int(L), "width": int(n), "input_lr_mult": r},
                 **({"settings": own[name]} if name in own else {}))
            for name, aa in TASK_LAW_ARCHS.get(s, {}).items()
            for r, archs in ((rho, aa), (1.0, plain.get(name, ()))) for (L, n) in archs]


def _combine_task_law(cfg, results):
    by = {(p["task"], p["depth"], p["width"], p["input_lr_mult"]): r for p, r in zip(_task_law_parts(cfg), results)}
    rho = float(cfg.input_lr_mult)
    out = []
    for name, aa in TASK_LAW_ARCHS.get(scale_of(cfg), {}).items():
        cond = [by[(name, int(L), int(n), rho)] for (L, n) in aa]
        seeds = len(cond[0]["lo"])
        nan = {"eta": np.nan, "lo": np.full(seeds, np.nan)}
        plain = [by.get((name, int(L), int(n), 1.0), nan) for (L, n) in aa]  # NaN: not run without (ii)
        depth, width, Ln = _archs(aa)
        out.append(TaskLawMeasurement(name=name, depth=depth, width=width, Ln=Ln, eta_star=_stack(cond, "eta"),
                                      eta_lo=_stack(cond, "lo"), eta_plain=_stack(plain, "eta"),
                                      plain_lo=_stack(plain, "lo"), lam1_w=_stack(cond, "lam_w")))
    return tuple(out)


@CHAPTER.measurement(parts=_task_law_parts, combine=_combine_task_law)
def measure_task_law(cfg, device, part):
    """The eta* law on the paper's own tasks: our search at every architecture of
    :data:`~lrtheory.results.sharpness.config.TASK_LAW_ARCHS` (the scale's entry) with the input
    layer at ``input_lr_mult``, and at those of ``TASK_LAW_PLAIN_ARCHS`` with every layer at one LR,
    on the networks of :func:`measure_tasks`; one part per (task, architecture, input-layer LR). A tuple of
    :class:`~lrtheory.results.sharpness.analysis.TaskLawMeasurement`, one per task."""
    return S.task_law_part(cfg, part["task"], part["depth"], part["width"], part["input_lr_mult"], device)


# ---------------------------------------------------------------------------- narrow, loss curves
@CHAPTER.measurement
def measure_narrow(cfg, device) -> NarrowMeasurement:
    """The measurements of :func:`measure_grid` on ``cfg.narrow`` (width not large against depth)."""
    out = S.run_archs(cfg, cfg.narrow, device, measurement="narrow")
    depth, width, Ln = _archs(cfg.narrow)
    pred = np.array([p.point for _, p in D.predict_config(cfg, "narrow")])
    return NarrowMeasurement(depth=depth, width=width, Ln=Ln, eta_star=out["eta"], lam1=out["lam"], pred_point=pred)


@CHAPTER.measurement
def measure_loss_curves(cfg, device) -> LossCurves:
    """Loss curves at ``eta*/2``, at the bracket's lower end, and above it.

    The middle architecture of the grid: its eta* search is run again here (the same networks
    and numbers as :func:`measure_grid`'s part, which a decomposed measurement cannot share).
    """
    i = len(cfg.archs) // 2
    L, n = cfg.archs[i]
    ds = S.load_dataset(cfg, device)
    r = S.eta_star_search(cfg, ds, L, n, cfg.input_lr_mult, device, measurement="grid/eta_star")
    lo, hi = (float(v) for v in r.bracket)
    etas = np.array([lo / 2.0, lo, hi * 1.25, hi * 2.0])
    h = S.run_loss_curves(cfg, L, n, etas, device)
    return LossCurves(depth=int(L), width=int(n), eta_star=float(r.eta_star), etas=etas, step=h["step"],
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
    group_by=("depth", "width", "steps", "n_train", "parametrization", "loss", "data_seed", "init"),
    batch_size=64,
    check=S.check_maxlr,
))


#: The main grid's measurements at widths well above depths (256 and 512 at depths 1 and 2 at the
#: reference scale), with and without condition (ii): a sweep of its own, whose points carry the
#: settings they were run with (:func:`~lrtheory.results.sharpness.simulate.wide_points`).
ETA_STAR_WIDE = CHAPTER.add_sweep(SweepDef(
    name="eta_star_wide",
    chapter="sharpness",
    description="eta* searches and lambda_1 at widths well above depths (depths 1-2, widths 256-512)",
    points=S.wide_points,
    run_batch=S.run_wide_batch,
    schema=S.WIDE_SCHEMA,
    group_by=("depth", "width", "input_lr_mult"),
    batch_size=1,
))


def wide(scale: str = "reference") -> WideMeasurement:
    """The ``eta_star_wide`` results at ``scale``, read from the chapter's store (nothing is computed).

    Raises
    ------
    lrtheory.verify.chapter.MissingResults
        If a point is not stored (``lrtheory sweep eta_star_wide --scale reference`` computes them).
    """
    from lrtheory.core.sweep import load_results
    from lrtheory.verify.chapter import MissingResults

    rows = load_results(ETA_STAR_WIDE, scale, CHAPTER.store_for(scale))
    if rows is None:
        raise MissingResults(f"sharpness: eta_star_wide at scale={scale} is not (completely) stored; "
                             f"`lrtheory sweep eta_star_wide --scale {scale}` computes it")
    cond = [(c, r) for c, r in rows if c["input_lr_mult"] < 1.0]
    plain = {(c["depth"], c["width"]): r for c, r in rows if c["input_lr_mult"] == 1.0}
    depth, width, Ln = _archs([(c["depth"], c["width"]) for c, _ in cond])

    def arr(rs, key):
        return np.asarray([[np.nan if v is None else v for v in r[key]] for r in rs], dtype=np.float64)

    rs = [r for _, r in cond]
    return WideMeasurement(depth=depth, width=width, Ln=Ln,
                           eta_star=np.asarray([np.nan if r["eta"] is None else r["eta"] for r in rs], dtype=np.float64),
                           eta_lo=arr(rs, "lo"),
                           eta_plain=np.asarray([plain[(int(L), int(n))]["eta"] for L, n in zip(depth, width)],
                                                dtype=np.float64),
                           lam1=arr(rs, "lam"), lam1_w=arr(rs, "lam_w"))
