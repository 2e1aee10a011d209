"""The maximal initial learning rate ``eta*`` of Iyer, Hanin & Rolnick (2023).

``eta*`` is the largest constant learning rate at which a *freshly initialized*
network reaches a threshold validation accuracy (or, for regression, a threshold
validation loss) within a fixed budget of steps. The paper estimates it by
bisection on the learning rate (their Algorithm 1: train at the midpoint, move
the lower end up when the threshold is reached, the upper end down otherwise).

A plain bisection from a wide bracket is unreliable under a step budget: very
small learning rates *also* miss the threshold (they are too slow), so
"failure" does not mean "too large". :func:`max_initial_lr` therefore

1. trains every LR of a coarse geometric grid at once (round 0) and, per seed,
   takes as bracket the largest grid LR that succeeded and the next grid LR
   above it (which failed);
2. refines each seed's bracket for ``rounds`` rounds, training
   ``points_per_round`` geometrically spaced interior LRs of every seed at once
   (an open bracket, where the top of the grid succeeded, is extended upward).

For a :class:`lrtheory.core.mlp.MLPSpec` all candidates of a round are one
batched computation (:func:`lrtheory.core.train.train`); for a user's own
factory (a callable returning a fresh ``torch.nn.Module``) each candidate is
trained by a plain SGD loop.

Examples
--------
>>> from lrtheory.core.data import digits
>>> from lrtheory.core.mlp import MLPSpec
>>> ds = digits(n_train=300)
>>> spec = MLPSpec(d_in=64, width=32, depth=2, d_out=10, input_lr_mult=0.1)
>>> r = max_initial_lr(spec, ds, threshold=0.7, steps=60, seeds=2, batch_size=50, rounds=1)
>>> bool(r.bracket[0] <= r.eta_star < r.bracket[1])
True
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor, nn

from lrtheory.core import validate as V
from lrtheory.core.device import DeviceLike, resolve_device
from lrtheory.tools._module_runs import Loaders, Progress, gather, train_module

__all__ = ["LRRun", "MaxLRResult", "max_initial_lr", "DEFAULT_GRID", "METRICS"]

#: Default coarse grid: powers of two from 2^-10 to 2^4.
DEFAULT_GRID = tuple(2.0 ** k for k in range(-10, 5))
#: Success criteria: validation accuracy >= threshold, or validation loss <= threshold.
METRICS = ("accuracy", "loss")


@dataclass(frozen=True)
class LRRun:
    """One training run of the search.

    Attributes
    ----------
    eta : float
    seed : int
        Seed of the initialization.
    round : int
        0 for the coarse grid, then 1, 2, ...
    success : bool
        Whether the metric reached the threshold at some evaluation within the budget.
    diverged : bool
    best_metric : float
        Best validation accuracy (highest) or loss (lowest) seen; NaN if none finite.
    hit_step : int
        First evaluated step at which the threshold was met, -1 if never.
    """

    eta: float
    seed: int
    round: int
    success: bool
    diverged: bool
    best_metric: float
    hit_step: int


@dataclass(frozen=True)
class MaxLRResult:
    """What :func:`max_initial_lr` returns.

    Attributes
    ----------
    eta_star : float
        Geometric mean, over the seeds that succeeded at some LR, of each seed's largest
        successful LR (NaN if no seed succeeded at any LR tried).
    bracket : (float, float)
        Geometric means over the successful seeds of the bracket ends ``(lo, hi)``: ``lo``
        succeeded, ``hi`` (> lo) failed; ``hi = inf`` if the search never saw a failure above.
    lo, hi : ndarray ``(S,)``
        Per-seed bracket ends (NaN ``lo`` for a seed that never succeeded).
    seeds : tuple of int
    runs : tuple of LRRun
        Every run, in order.
    threshold : float
    steps : int
    metric : str
    """

    eta_star: float
    bracket: Tuple[float, float]
    lo: np.ndarray
    hi: np.ndarray
    seeds: Tuple[int, ...]
    runs: Tuple[LRRun, ...]
    threshold: float
    steps: int
    metric: str

    @property
    def found(self) -> bool:
        """True when at least one seed reached the threshold at some LR."""
        return bool(np.isfinite(self.eta_star))

    def success_table(self) -> Tuple[np.ndarray, np.ndarray]:
        """All tried LRs ``(M,)`` (sorted) and success per seed ``(M, S)`` (NaN = not tried)."""
        etas = np.array(sorted({r.eta for r in self.runs}))
        tab = np.full((etas.size, len(self.seeds)), np.nan)
        col = {s: j for j, s in enumerate(self.seeds)}
        for r in self.runs:
            tab[np.searchsorted(etas, r.eta), col[r.seed]] = float(r.success)
        return etas, tab


# ----------------------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------------------
def _is_int(v) -> bool:
    return isinstance(v, (numbers.Integral, np.integer)) and not isinstance(v, bool)


def _check_data(data, any_shape: bool):
    """-> (x_train, y_train, x_val, y_val), or Loaders for a pair of iterables of batches."""
    if hasattr(data, "x_train") and hasattr(data, "x_test"):
        parts = (data.x_train, data.y_train, data.x_test, data.y_test)
    elif isinstance(data, (tuple, list)) and len(data) == 4:
        parts = tuple(data)
    elif (isinstance(data, (tuple, list)) and len(data) == 2 and not any(isinstance(d, Tensor) for d in data)
          and all(hasattr(d, "__iter__") for d in data)):
        if not any_shape:  # the batched trainer samples its own minibatches from tensors
            return _check_data((*gather(data[0], "training"), *gather(data[1], "validation")), any_shape)
        for name, d in zip(("training", "validation"), data):
            if iter(d) is d:
                raise ValueError(f"data: the {name} data is a one-shot iterator; pass a DataLoader or a list "
                                 "(every candidate iterates it again)")
        return Loaders(data[0], data[1])
    else:
        raise ValueError("data: expected a lrtheory.core.data.Dataset, a tuple (x_train, y_train, x_val, y_val) "
                         "or a pair (train_loader, val_loader) of iterables of (inputs, targets) batches")
    names = ("x_train", "y_train", "x_val", "y_val")
    for name, t in zip(names, parts):
        if not isinstance(t, Tensor):
            raise ValueError(f"data: {name} must be a torch.Tensor, got {type(t).__name__}")
    xt, yt, xv, yv = parts
    if any_shape:
        if xt.dim() < 1 or xv.dim() < 1 or xt.shape[1:] != xv.shape[1:]:
            raise ValueError(f"data: x_train and x_val must be (N, ...) with the same example shape, got "
                             f"{tuple(xt.shape)}, {tuple(xv.shape)}")
    elif xt.dim() != 2 or xv.dim() != 2 or xt.shape[1] != xv.shape[1]:
        raise ValueError(f"data: x_train and x_val must be (N, d) with the same d, got {tuple(xt.shape)}, {tuple(xv.shape)}")
    if yt.shape[0] != xt.shape[0] or yv.shape[0] != xv.shape[0]:
        raise ValueError("data: x and y must have the same number of examples")
    if xt.shape[0] < 1 or xv.shape[0] < 1:
        raise ValueError("data: empty training or validation set")
    if not torch.isfinite(xt).all() or not torch.isfinite(xv).all():
        raise ValueError("data: inputs contain NaN or Inf")
    return parts


def _check_args(threshold, steps, seeds, grid, rounds, points_per_round, metric, loss, eval_every, batch_size, n_train):
    V.choice(metric, "metric", METRICS)
    if metric == "accuracy":
        V.in_range(threshold, "threshold", 0.0, 1.0, inclusive=(False, True))
    else:
        V.positive_real(threshold, "threshold")
    V.positive_int(steps, "steps")
    if _is_int(seeds):
        V.positive_int(seeds, "seeds")
        seed_list = None
    else:
        seed_list = list(V.int_sequence(seeds, "seeds", minimum=0, distinct=True))
    g = np.unique(V.positive_array(grid, "grid", ndim=1))
    if g.size < 2:
        raise ValueError(f"grid: expected at least 2 distinct positive learning rates, got {grid!r}")
    V.nonneg_int(rounds, "rounds")
    V.positive_int(points_per_round, "points_per_round")
    V.choice(loss, "loss", (None, "ce", "mse"))
    if eval_every is not None:
        V.positive_int(eval_every, "eval_every")
    if batch_size is not None:
        V.integer(batch_size, "batch_size", minimum=1, maximum=n_train)
    return seed_list, g


# ----------------------------------------------------------------------------------------------
# training one round of candidates
# ----------------------------------------------------------------------------------------------
def _outcome(vals: np.ndarray, steps_rec: np.ndarray, metric: str, threshold: float):
    """vals (T, K) metric history (NaN after divergence) -> success, best, hit_step per model."""
    keep = steps_rec >= 1  # the network must be trained: step 0 is the initialization
    v = vals[keep]
    s = steps_rec[keep]
    if metric == "accuracy":
        hit = np.nan_to_num(v, nan=-np.inf) >= threshold
        best = np.where(np.isfinite(v).any(0), np.nanmax(np.where(np.isfinite(v), v, -np.inf), axis=0), np.nan)
    else:
        hit = np.nan_to_num(v, nan=np.inf) <= threshold
        best = np.where(np.isfinite(v).any(0), np.nanmin(np.where(np.isfinite(v), v, np.inf), axis=0), np.nan)
    success = hit.any(0)
    first = np.where(success, s[np.argmax(hit, axis=0)], -1)
    return success, best, first


def _train_spec(spec, parts, etas, seeds, *, steps, loss, metric, threshold, batch_size, eval_every, data_seed, device):
    from lrtheory.core.mlp import init_params
    from lrtheory.core.train import train

    xt, yt, xv, yv = parts
    cache = {}
    params = None
    for s in seeds:
        if s not in cache:
            cache[s] = init_params(spec, 1, seed=int(s), device=device)
    params = [torch.cat([cache[s][i] for s in seeds], dim=0) for i in range(len(cache[seeds[0]]))]
    res = train(spec, params, xt, yt, etas=list(map(float, etas)), steps=steps, loss=loss, batch_size=batch_size,
                seed=data_seed, x_test=xv, y_test=yv, record_every=eval_every)
    key = "test_acc" if metric == "accuracy" else "test_loss"
    success, best, first = _outcome(res.history[key], res.history["step"], metric, threshold)
    return success, best, first, res.diverged


# ----------------------------------------------------------------------------------------------
# the search
# ----------------------------------------------------------------------------------------------
def max_initial_lr(
    make_model_or_spec: Union[Callable[[], nn.Module], "object"],
    data,
    *,
    threshold: float,
    steps: int,
    seeds: Union[int, Sequence[int]] = 3,
    grid: Sequence[float] = DEFAULT_GRID,
    rounds: int = 3,
    points_per_round: int = 3,
    batch_size: Optional[int] = None,
    eval_every: Optional[int] = None,
    loss: Optional[str] = None,
    metric: str = "accuracy",
    seed: int = 0,
    device: DeviceLike = None,
    progress: Optional[bool] = None,
    callback: Optional[Callable[[LRRun], None]] = None,
) -> MaxLRResult:
    """Estimate the maximal initial learning rate ``eta*`` (Iyer, Hanin & Rolnick 2023).

    ``eta*`` is the largest constant LR at which a fresh network reaches ``threshold`` (validation
    accuracy >= threshold, or validation loss <= threshold) at some evaluation within ``steps``
    SGD steps. Coarse grid first (all candidates at once), then per-seed refinement of the
    bracket (see the module docstring).

    Parameters
    ----------
    make_model_or_spec : MLPSpec or callable
        A :class:`lrtheory.core.mlp.MLPSpec` (He init etc. as the spec says; its
        ``input_lr_mult`` gives condition (ii)), trained batched; or a zero-argument callable
        returning a *fresh* ``torch.nn.Module`` of any architecture (a CNN, a Transformer;
        called under ``torch.manual_seed(seed_s)`` for seed ``s``, so default inits are
        reproducible), trained one candidate at a time by plain SGD and validated in eval mode
        (Dropout off, BatchNorm on its running statistics).
    data : Dataset, tuple of 4 tensors, or pair of DataLoaders
        A :class:`lrtheory.core.data.Dataset` (its test split is the validation set);
        ``(x_train, y_train, x_val, y_val)`` with inputs of any shape ``(N, ...)`` for a factory
        (``(N, d)`` for an MLPSpec); or ``(train_loader, val_loader)``, two re-iterable sources
        of ``(inputs, targets)`` batches: a factory trains on the loader's batches (cycled,
        in the same order for every candidate), an MLPSpec on their examples gathered into
        tensors. Targets: int64 labels for "ce", floats ``(N, d_out)`` for "mse".
    threshold : float
        In (0, 1] for ``metric="accuracy"``; > 0 for ``metric="loss"``.
    steps : int
        Step budget, >= 1.
    seeds : int or sequence of int
        Number of initializations (seeds ``0 .. seeds-1``) or the seeds themselves.
    grid : sequence of float
        Coarse LR grid (at least two positive values; sorted and deduplicated).
    rounds : int
        Refinement rounds after the grid (>= 0). Each shrinks a bracket's log-width by
        ``points_per_round + 1``.
    points_per_round : int
        Candidates per seed per refinement round (>= 1).
    batch_size : int or None
        SGD minibatch size (None: full-batch GD; with DataLoaders, their batches).
    eval_every : int or None
        Evaluate the metric every this many steps (and at the last); default ``max(1, steps // 10)``.
    loss : {"ce", "mse"} or None
        Training loss; None picks "ce" for int64 labels, else "mse" (``1/2`` mean squared error).
    metric : {"accuracy", "loss"}
    seed : int
        Seed of the minibatch order (shared by all candidates).
    device : str, torch.device or None
    progress : bool or None
        Report progress on stderr (runs done in the round, largest successful eta so far);
        None: only when stderr is a terminal.
    callback : callable, optional
        ``callback(run)`` with each finished :class:`LRRun`, in order (e.g. to log or plot live).

    Returns
    -------
    MaxLRResult

    Raises
    ------
    ValueError
        On a bad argument (the message names it): threshold outside its range, steps < 1,
        empty or non-positive grid, a model instance instead of a factory, mismatched data.

    Examples
    --------
    >>> import torch
    >>> x = torch.linspace(-1, 1, 32, dtype=torch.float64).reshape(-1, 1); y = 3 * x
    >>> def make():
    ...     m = torch.nn.Linear(1, 1, bias=False).double(); torch.nn.init.zeros_(m.weight); return m
    >>> r = max_initial_lr(make, (x, y, x, y), threshold=1e-3, steps=20, seeds=1, metric="loss")
    >>> r.bracket[0] <= r.eta_star < r.bracket[1]
    True
    """
    from lrtheory.core.mlp import MLPSpec

    if isinstance(make_model_or_spec, nn.Module):
        raise ValueError("make_model_or_spec: pass a factory returning a fresh nn.Module (eta* is about fresh "
                         "networks), or an MLPSpec, not a model instance")
    is_spec = isinstance(make_model_or_spec, MLPSpec)
    if not is_spec and not callable(make_model_or_spec):
        raise ValueError(f"make_model_or_spec: expected an MLPSpec or a callable, got {type(make_model_or_spec).__name__}")
    parts = _check_data(data, any_shape=not is_spec)
    if isinstance(parts, Loaders):
        if batch_size is not None:
            raise ValueError("batch_size: leave it None with DataLoaders (their own batches are used)")
        x0, y0 = gather([next(iter(parts.train))], "training")
        n_train = x0.shape[0]
    else:
        y0, n_train = parts[1], parts[0].shape[0]
    seed_list, g = _check_args(threshold, steps, seeds, grid, rounds, points_per_round, metric, loss, eval_every,
                               batch_size, n_train)
    if callback is not None and not callable(callback):
        raise ValueError(f"callback: expected a callable callback(run), got {type(callback).__name__}")
    V.nonneg_int(seed, "seed")
    dev = resolve_device(device)
    seed_list = list(range(int(seeds))) if seed_list is None else [int(s) for s in seed_list]
    S = len(seed_list)
    if loss is None:
        loss = "ce" if y0.dtype == torch.int64 else "mse"
    if loss == "ce" and (y0.dtype != torch.int64 or y0.dim() != 1):
        raise ValueError("data: cross-entropy needs int64 labels of shape (N,)")
    eval_every = int(eval_every) if eval_every is not None else max(1, int(steps) // 10)
    if is_spec:
        spec = make_model_or_spec
        dt = torch.float64
        xt, yt, xv, yv = parts
        yt = yt.to(dev) if loss == "ce" else yt.to(device=dev, dtype=dt)
        yv = yv.to(dev) if loss == "ce" else yv.to(device=dev, dtype=dt)
        parts = (xt.to(device=dev, dtype=dt), yt, xv.to(device=dev, dtype=dt), yv)
        if parts[0].shape[1] != spec.d_in:
            raise ValueError(f"data: inputs have dimension {parts[0].shape[1]}, the spec expects {spec.d_in}")
        def runner(e, s, on_run):
            return _train_spec(spec, parts, e, s, steps=int(steps), loss=loss, metric=metric,
                               threshold=float(threshold), batch_size=batch_size, eval_every=eval_every,
                               data_seed=int(seed), device=dev)
    else:
        def runner(e, s, on_run):
            return train_module(make_model_or_spec, parts, e, s, steps=int(steps), loss=loss, metric=metric,
                                threshold=float(threshold), batch_size=batch_size, eval_every=eval_every,
                                data_seed=int(seed), device=dev, on_run=on_run)

    runs: List[LRRun] = []
    tried = [dict() for _ in range(S)]  # per seed: eta -> success
    bar = Progress(progress, int(rounds))

    def best_so_far() -> float:
        ok = [r.eta for r in runs if r.success]
        return max(ok) if ok else math.nan

    def run_round(r: int, cand: List[Tuple[int, float]]):
        if not cand:
            return
        etas = [e for _, e in cand]
        sds = [seed_list[j] for j, _ in cand]
        bar.update(r, 0, len(cand), best_so_far())
        success, best, first, div = runner(etas, sds, lambda k: bar.update(r, k + 1, len(cand), best_so_far()))
        for (j, e), ok, b, f, d in zip(cand, success, best, first, div):
            tried[j][float(e)] = bool(ok)
            runs.append(LRRun(float(e), seed_list[j], r, bool(ok), bool(d), float(b), int(f)))
            if callback is not None:
                callback(runs[-1])
        bar.update(r, len(cand), len(cand), best_so_far(), final=True)

    def bracket(j: int) -> Tuple[float, float]:
        items = sorted(tried[j].items())
        ok = [e for e, s in items if s]
        if not ok:
            return math.nan, math.nan
        lo = max(ok)
        above = [e for e, s in items if e > lo]
        return lo, (min(above) if above else math.inf)

    run_round(0, [(j, float(e)) for e in g for j in range(S)])
    ratio = float(np.exp(np.mean(np.diff(np.log(g)))))
    for r in range(1, int(rounds) + 1):
        cand = []
        for j in range(S):
            lo, hi = bracket(j)
            if not math.isfinite(lo):
                continue
            if math.isfinite(hi):
                cand += [(j, lo * (hi / lo) ** (i / (points_per_round + 1))) for i in range(1, points_per_round + 1)]
            else:  # open bracket: step upward with the grid's ratio
                cand += [(j, lo * ratio ** i) for i in range(1, points_per_round + 1)]
        run_round(r, cand)

    br = np.array([bracket(j) for j in range(S)], dtype=np.float64).reshape(S, 2)
    lo, hi = br[:, 0], br[:, 1]
    good = np.isfinite(lo)
    if good.any():
        eta_star = float(np.exp(np.mean(np.log(lo[good]))))
        hi_g = hi[good]
        hi_mean = float(np.exp(np.mean(np.log(hi_g)))) if np.all(np.isfinite(hi_g)) else math.inf
        brk = (eta_star, hi_mean)
    else:
        eta_star, brk = math.nan, (math.nan, math.nan)
    return MaxLRResult(eta_star=eta_star, bracket=brk, lo=lo, hi=hi, seeds=tuple(seed_list), runs=tuple(runs),
                       threshold=float(threshold), steps=int(steps), metric=metric)
