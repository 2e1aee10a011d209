"""Chapter 01's experiments (torch, on :mod:`lrtheory.core`): eta* searches, sharpness at init,
loss curves around eta*, and the exhaustive ``max_lr_grid`` sweep.

Every network is initialized from its own :func:`lrtheory.core.device.seed_for` seed, keyed by
what distinguishes it: the measurement, the architecture and the seed index (never the LR: the
candidates of one eta* search, and the runs of one loss-curve figure, are the *same* network
trained at different LRs). :func:`model_seed` is the one place those keys are put together.
"""
from __future__ import annotations

import time
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np
import torch

from lrtheory.core import validate
from lrtheory.core.device import seed_for
from lrtheory.core.sweep import Param
from lrtheory.results.sharpness.config import GRID_CONFIGS
from lrtheory.verify.claims import check_scale

__all__ = [
    "KEY",
    "model_seed",
    "batch_order_seed",
    "load_dataset",
    "eta_star_search",
    "sharpness_at_init",
    "run_archs",
    "run_loss_curves",
    "MAXLR_SCHEMA",
    "check_maxlr",
    "max_lr_grid_points",
    "run_max_lr_batch",
]

#: The chapter key, first key of every seed of this chapter.
KEY = "sharpness"

#: ``init_params`` of :mod:`lrtheory.core.mlp` seeds model ``k`` of a batch with
#: ``seed * 1_000_003 + k`` and must stay below 2**64; a 63-bit :func:`seed_for` seed is cut to
#: its top 40 bits until core takes full seeds (still one seed per model, from the keys only).
_INIT_SEED_SHIFT = 23


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
    return seed_for(KEY, measurement, int(depth), int(width), *extra, int(index)) >> _INIT_SEED_SHIFT


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
    """:func:`lrtheory.tools.max_lr.max_initial_lr` on one architecture, ``cfg.seeds`` networks.

    Candidates of a round are trained together on the batched trainer; network ``j`` is seeded
    by :func:`model_seed` ``(measurement, depth, width, j)``.
    """
    from lrtheory.core.mlp import MLPSpec
    from lrtheory.tools.max_lr import max_initial_lr

    spec = MLPSpec(d_in=ds.d_in, width=width, depth=depth, d_out=ds.d_out, input_lr_mult=input_lr_mult)
    seeds = [model_seed(measurement, depth, width, j) for j in range(cfg.seeds)]
    return max_initial_lr(
        spec, ds, threshold=cfg.threshold, steps=cfg.steps, seeds=seeds, grid=cfg.grid,
        rounds=cfg.rounds, points_per_round=cfg.points_per_round, batch_size=cfg.batch_size,
        eval_every=cfg.eval_every, loss="ce", seed=batch_order_seed(), device=device,
    )


def _init_models(spec, seeds: Sequence[int], device) -> List[torch.Tensor]:
    """One network per seed, stacked on the leading axis (each from its own generator)."""
    from lrtheory.core.mlp import init_params

    per_model = [init_params(spec, 1, seed=int(s), device=device) for s in seeds]
    return [torch.cat(ts, dim=0) for ts in zip(*per_model)]


def sharpness_at_init(cfg, ds, depth: int, width: int, device, measurement: str = "lambda1") -> Tuple[np.ndarray, np.ndarray]:
    """``lambda_1`` at init of the squared loss (one-hot targets) and of the CE loss, per seed.

    ``cfg.sharp_seeds`` networks (seeded by :func:`model_seed`), batched Lanczos on
    :func:`lrtheory.core.curvature.batched_sharpness` over the first ``cfg.n_sharp`` examples.
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
    return np.asarray(lam_mse, dtype=np.float64), np.asarray(lam_ce, dtype=np.float64)


def run_archs(cfg, archs, device, *, measurement: str, input_lr_mult=None, sharp: bool = True) -> Dict[str, Any]:
    """eta* (and, with ``sharp``, ``lambda_1``) for every ``(L, n)`` of ``archs``.

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
        ``eta`` (A,), ``bracket`` (A, 2); with ``sharp``: ``lam`` and ``lam_ce`` (A, S);
        ``seconds``.
    """
    ds = load_dataset(cfg, device)
    rho = cfg.input_lr_mult if input_lr_mult is None else validate.positive_real(input_lr_mult, "input_lr_mult")
    out: Dict[str, list] = {k: [] for k in ("eta", "bracket", "lam", "lam_ce")}
    t0 = time.perf_counter()
    for (L, n) in archs:
        r = eta_star_search(cfg, ds, L, n, rho, device, measurement=f"{measurement}/eta_star")
        out["eta"].append(r.eta_star)
        out["bracket"].append(r.bracket)
        if sharp:
            lam, lam_ce = sharpness_at_init(cfg, ds, L, n, device, measurement=f"{measurement}/lambda1")
            out["lam"].append(lam)
            out["lam_ce"].append(lam_ce)
    res = {k: np.asarray(v, dtype=np.float64) for k, v in out.items() if v}
    res["seconds"] = time.perf_counter() - t0
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
        {"depth": d, "width": w, "eta": float(f"{e:.6g}"), "seed": s, "steps": g.steps, "n_train": g.n_train}
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
