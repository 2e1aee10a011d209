"""The one masked, batched gradient-descent loop: K models at once, each at its own LR.

Every simulation of the library runs on :func:`run_gd`: MLP training
(:mod:`lrtheory.core.train`), the catapult's uv and quadratic models, the balancing
chapter's scalar and matrix factorizations, the scale-invariant ELR model. A chapter
writes its model (a loss, and a closed-form gradient if it has one) and its records;
the loop does the rest, the same way for all of them.

Models and shapes
-----------------
``etas`` has the *batch shape* ``B`` (``(K,)``, or e.g. ``(E, S)`` for a grid of LRs
times seeds); every parameter tensor has shape ``B + event_shape`` (the models share
no parameter), and ``loss_fn(params)`` returns the loss of every model, shape ``B``.
A scalar ``eta`` is used for every model, with ``B = params[0].shape[:1]``.

One step ``t = 0, 1, ..., steps``
---------------------------------
1. ``L_t = loss_fn(theta_t)`` (``loss_fn(theta_t, batch)`` with ``batches``);
   with ``eval_fn`` also the evaluation loss (e.g. the full training set under SGD) at
   every recorded step. At ``t = steps`` only the evaluation loss is taken when there is
   an ``eval_fn`` (no batch is drawn).
2. **Divergence check**, per model still training: it *diverges at step t* if ``L_t``
   (or, where evaluated, the evaluation loss) is not finite, exceeds
   ``divergence_factor * max(L_0, 1)`` (``L_0``: its recorded loss at step 0, a
   non-finite one counting as 1), exceeds ``max_loss``, or ``diverged(state)`` says so.
3. **Convergence check** (with ``converged``), per model still training:
   ``on_converged="freeze"``: a model with ``converged(state)`` true is *converged at
   step t*. ``"all"``: nothing stops until the first step at which every model has
   diverged or is converged at once; those converged then are converged at that step.
4. Gradients ``g_t`` (``grad_fn(theta_t)`` if given, else autograd of the sum of the
   losses of the models not diverged, masked with ``torch.where`` so that a diverged
   model's NaN never enters another's gradient), not at ``t = steps`` unless
   ``final_grads``.
5. **Record** (every ``record_every`` steps, at ``t = steps``, and at the step where the
   loop ends): the loss, and ``record(state)``.
6. ``callback(state)``, then (``t < steps``) the **update** of every model still
   training: ``g <- g + weight_decay * theta``; with momentum ``v <- momentum v + g``,
   ``g <- v`` (heavy ball, as ``torch.optim.SGD`` with ``dampening=0``); then
   ``theta <- theta - eta * c_p * g`` with ``c_p = lr_mults[p]`` (times
   ``lr_schedule(t)``). If the new parameters of a model are not finite, or an entry
   exceeds ``param_bound`` in absolute value, the update is **not** taken: the model
   *diverges at step t*.

A model that diverges or converges at step ``t`` is **frozen** at ``theta_t``: it is
never updated again, its ``status`` is ``DIVERGED``/``CONVERGED`` and its
``stop_step`` is ``t`` (its final parameters are ``theta_t``, finite for a diverged
model: the last finite ones). Updates are applied with ``torch.where``; nothing of one
model reaches another. The loop ends after ``t = steps``, or at the first step where no
model is left training (``steps_run`` says where; recorded arrays end there).

What is recorded
----------------
``loss[i]`` is the loss at ``step[i]`` (the evaluation loss with ``eval_fn``). For a
diverged model: **at its divergence step, the loss as observed** (possibly ``inf``,
``nan`` or huge: that is why it diverged), and ``NaN`` at every later step. Its
``record`` values are ``NaN`` from the step at which it is known to diverge: at its
divergence step too when the loss check caught it (step 2), and from the next step
when its update failed (step 6; the values at ``t`` were taken at the finite
``theta_t``). A converged model keeps being recorded at its frozen parameters.

Porting a loop
--------------
>>> import torch
>>> from lrtheory.core.gd import GDStatus, run_gd
>>> # scalar factorization (mu - x y)^2 / 2, closed-form gradient, 3 step sizes at once
>>> mu = 2.0
>>> def loss_fn(p):
...     x, y = p
...     return 0.5 * (mu - x * y) ** 2
>>> def grad_fn(p):
...     x, y = p
...     r = mu - x * y
...     return [-r * y, -r * x]
>>> x0 = torch.full((3,), 3.0, dtype=torch.float64); y0 = torch.full((3,), 1.0, dtype=torch.float64)
>>> res = run_gd(loss_fn, [x0, y0], [0.01, 0.1, 1.0], 2000, grad_fn=grad_fn, param_bound=1e6,
...              divergence_factor=None, converged=lambda s: s.loss <= 1e-20, record_every=100)
>>> [GDStatus(s).name for s in res.status]
['CONVERGED', 'CONVERGED', 'DIVERGED']
>>> bool(torch.isfinite(res.params[0]).all())  # the diverged model is frozen, finite
True

* **Own divergence rule** (catapult: ``eta^2 f^2 / n > div_g``): return ``f`` as the
  second element of ``loss_fn``'s output, ``(loss, aux)``, and pass
  ``diverged=lambda s: s.etas ** 2 * s.aux ** 2 / n > div_g``,
  ``divergence_factor=None``.
* **Stop when every run is settled** (catapult): ``converged=settled``,
  ``on_converged="all"``; ``settled(state)`` may return all-False except every 10th step.
* **Bound on the parameters** (balancing): ``param_bound=bound``; the frozen state is the
  last one inside the bound.
* **Trajectories, norms, tails**: ``record=lambda s: {"x": s.params[0], "gnorm": ...}``
  (``s.grads`` holds ``g_t``; pass ``final_grads=True`` to have them at ``t = steps``).
* **Per-layer LRs**: ``lr_mults=[c_1, ..., c_P]`` (floats, or tensors broadcastable to
  the parameter, e.g. shape ``B + (1, 1)`` for a per-model multiplier).
* **Random losses / SGD**: ``batches=lambda t: draw(t)`` and ``loss_fn(params, batch)``;
  ``eval_fn(params)`` for the loss to record and check (e.g. on the full data).
* **Train only some tensors**: pass those as ``params``; ``loss_fn`` closes over the rest.
* **One call per step** (e.g. a step compiled with ``torch.compile``): ``fused_step(params,
  batch, step_sizes, velocities)`` returns the loss and the parameters after step 6's update
  for every model, computed with :func:`sgd_update` (see ``run_gd``); the loop keeps every
  check, record and freeze.
* **Reuse the forward pass in a closed-form gradient**: at every step ``loss_fn`` is called
  exactly once, then ``grad_fn`` once on the same parameter tensors (``eval_fn`` in between
  at recorded steps), so ``grad_fn`` may reuse what ``loss_fn`` just computed; the
  gradients are read by the hooks of that step and its update only, so a ``grad_fn`` may
  return the same buffers every step.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from lrtheory.core import validate as V

__all__ = ["GDStatus", "GDState", "GDResult", "run_gd", "sgd_update"]

_NULL_CTX = contextlib.nullcontext()


class GDStatus(IntEnum):
    """How a model's run ended.

    ``BOUNDED``: ran every step without diverging or converging; ``CONVERGED``: the
    ``converged`` hook fired (frozen there); ``DIVERGED``: a divergence check fired
    (frozen at its last finite parameters).
    """

    BOUNDED = 0
    CONVERGED = 1
    DIVERGED = 2


@dataclass(frozen=True)
class GDState:
    """What the hooks (``diverged``, ``converged``, ``record``, ``callback``) see at step ``step``.

    Attributes
    ----------
    step : int
    params : list of Tensor
        ``theta_t`` of every model, shape ``B + event``; read only, and valid during the hook's
        call: the loop writes each step's new parameters into the buffers of the step before
        (clone what a hook keeps).
    loss : Tensor ``B``
        The step's loss ``L_t`` (detached).
    aux : object
        Second element of ``loss_fn``'s output when it returns ``(loss, aux)``, else None.
    eval_loss, eval_aux : Tensor ``B`` / object, or None
        From ``eval_fn`` at the steps where it is evaluated.
    grads : list of Tensor or None
        ``g_t`` (zero for diverged models under autograd); None in ``diverged`` and
        ``converged``, and at ``t = steps`` unless ``final_grads``.
    active : Tensor of bool ``B``
        Models still training after this step's checks.
    etas : Tensor ``B``
    batch : object
        This step's batch (None without ``batches``).
    """

    step: int
    params: List[Tensor]
    loss: Tensor
    aux: Any
    eval_loss: Optional[Tensor]
    eval_aux: Any
    grads: Optional[List[Tensor]]
    active: Tensor
    etas: Tensor
    batch: Any = None


@dataclass(frozen=True)
class GDResult:
    """What :func:`run_gd` returns.

    Attributes
    ----------
    params : list of Tensor
        Final parameters, detached: ``theta_{stop_step}`` of every model.
    status : ndarray of int8, ``B``
        :class:`GDStatus` values.
    stop_step : ndarray of int64, ``B``
        Step whose parameters are final: the divergence/convergence step, or the last
        step run for a model still training at the end (``steps`` after a full run).
    steps_run : int
        Last step of the loop (``steps`` unless every model stopped earlier).
    step : ndarray of int64 ``(T,)``
        The recorded steps.
    loss : ndarray ``(T,) + B``
        Recorded losses (see the module docstring for the divergence step).
    records : dict of str -> ndarray ``(T,) + B + ...``
        One entry per key of the ``record`` hook's dict.
    etas : ndarray ``B``
    """

    params: List[Tensor]
    status: np.ndarray
    stop_step: np.ndarray
    steps_run: int
    step: np.ndarray
    loss: np.ndarray
    records: Dict[str, np.ndarray] = field(default_factory=dict)
    etas: Optional[np.ndarray] = None

    @property
    def diverged(self) -> np.ndarray:
        """``status == DIVERGED``, bool ``B``."""
        return self.status == GDStatus.DIVERGED

    @property
    def converged(self) -> np.ndarray:
        """``status == CONVERGED``, bool ``B``."""
        return self.status == GDStatus.CONVERGED

    @property
    def final_loss(self) -> np.ndarray:
        """Last recorded loss ``B`` (NaN for models diverged before it)."""
        return self.loss[-1]


def _split(out) -> Tuple[Tensor, Any]:
    if isinstance(out, tuple):
        if len(out) != 2:
            raise ValueError(f"loss_fn: expected a loss tensor or a (loss, aux) pair, got a {len(out)}-tuple")
        return out[0], out[1]
    return out, None


def _as_params(params) -> List[Tensor]:
    ps = [params] if isinstance(params, Tensor) else list(params) if isinstance(params, (list, tuple)) else None
    if not ps:
        raise ValueError(f"params: expected a tensor or a non-empty sequence of tensors, got {type(params).__name__}")
    for i, p in enumerate(ps):
        if not isinstance(p, Tensor) or not p.dtype.is_floating_point:
            raise ValueError(f"params: entry {i} is not a floating point tensor")
        if p.dtype != ps[0].dtype or p.device != ps[0].device:
            raise ValueError(f"params: entry {i} has dtype/device {p.dtype}/{p.device}, entry 0 "
                             f"{ps[0].dtype}/{ps[0].device}")
    return ps


def _as_etas(etas, P: List[Tensor]) -> Tensor:
    if isinstance(etas, Tensor):
        etas = etas.detach().cpu().numpy()
    arr = V.positive_array(etas, "etas")
    dtype, device = P[0].dtype, P[0].device
    if arr.ndim == 0:
        if P[0].dim() == 0:
            raise ValueError("etas: with a scalar eta the parameters need a leading model axis")
        arr = np.full(P[0].shape[:1], float(arr))
    e = torch.as_tensor(arr, dtype=dtype, device=device)
    B = tuple(e.shape)
    for i, p in enumerate(P):
        if tuple(p.shape[:len(B)]) != B:
            raise ValueError(f"params: entry {i} has shape {tuple(p.shape)}; expected the batch shape of "
                             f"etas {B} in front")
    return e


def _update_tensor(p: Tensor, g: Tensor, h, v: Optional[Tensor], momentum: float, weight_decay: float,
                   hg_out: Optional[Tensor] = None, q_out: Optional[Tensor] = None):
    # step 6 for one tensor: g + wd * theta; heavy ball v <- momentum v + g; theta - h * g. A product,
    # then a difference: two IEEE roundings on every CPU kernel (a fused addcmul rounds once on
    # AVX2/AVX-512 and twice on the baseline kernel, so the same run would differ by machine; inductor
    # compiles with -ffp-contract=off, so a compiled step rounds twice too). Returns (theta', v').
    if weight_decay:
        g = g + weight_decay * p
    if v is not None:
        v = momentum * v + g
        g = v
    hg = torch.mul(h, g, out=hg_out)  # out=None: a fresh tensor
    q = torch.sub(p, hg, out=q_out)
    return q, v


def sgd_update(params: Sequence[Tensor], grads: Sequence[Tensor], step_sizes: Sequence, velocities=None, *,
               momentum: float = 0.0, weight_decay: float = 0.0, batch_dims: int = 1):
    """Step 6 of :func:`run_gd` as plain tensor operations, for a ``fused_step``.

    Returns ``(new_params, new_velocities, finite)``: ``theta - h_p * g_p`` per tensor (with
    ``g + weight_decay * theta`` and, with ``velocities``, the heavy-ball ``v <- momentum v + g``,
    ``g <- v``), the new velocities (None without), and ``finite`` (bool, the batch shape: the
    leading ``batch_dims`` axes), true for a model whose every new tensor has a finite sum: the
    loop's own test. The same operations as the loop's update, so the same bits, eager or under
    ``torch.compile``; no argument is checked (it runs inside a step).

    >>> import torch
    >>> new, vel, ok = sgd_update([torch.tensor([[1.0, 2.0]])], [torch.tensor([[0.5, float("inf")]])],
    ...                           [torch.tensor([[0.1]])])
    >>> new[0].tolist(), vel, ok.tolist()
    ([[0.949999988079071, -inf]], None, [False])
    """
    new, vel, sums = [], [] if velocities is not None else None, []
    for i, (p, g, h) in enumerate(zip(params, grads, step_sizes)):
        q, v = _update_tensor(p, g, h, None if velocities is None else velocities[i], momentum, weight_decay)
        new.append(q)
        if vel is not None:
            vel.append(v)
        sums.append(q.flatten(batch_dims).sum(dim=-1) if q.dim() > batch_dims else q)
    finite = torch.stack(sums).abs() < math.inf  # false for NaN and +-inf
    return new, vel, finite.all(dim=0)


def run_gd(
    loss_fn: Callable,
    params: Union[Tensor, Sequence[Tensor]],
    etas,
    steps: int,
    *,
    grad_fn: Optional[Callable] = None,
    lr_mults: Optional[Sequence[Union[float, Tensor]]] = None,
    lr_schedule: Optional[Callable[[int], Union[float, Tensor]]] = None,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    batches: Optional[Callable[[int], Any]] = None,
    eval_fn: Optional[Callable] = None,
    record: Optional[Callable[[GDState], Dict[str, Tensor]]] = None,
    record_every: int = 1,
    final_grads: bool = False,
    divergence_factor: Optional[float] = 1e6,
    max_loss: float = math.inf,
    param_bound: float = math.inf,
    diverged: Optional[Callable[[GDState], Tensor]] = None,
    converged: Optional[Callable[[GDState], Tensor]] = None,
    on_converged: str = "freeze",
    callback: Optional[Callable[[GDState], None]] = None,
    fused_step: Optional[Callable] = None,
) -> GDResult:
    """Run (S)GD on a batch of independent models; divergence and convergence freeze a model.

    The step, the checks and what is recorded are defined in the module docstring.

    Parameters
    ----------
    loss_fn : callable(params) or callable(params, batch) -> Tensor ``B`` or (Tensor ``B``, aux)
        Per-model loss. Differentiable in ``params`` unless ``grad_fn`` is given.
    params : Tensor or sequence of Tensor
        Initial parameters, each of shape ``B + event`` (not modified).
    etas : float or array of shape ``B``
        Learning rates, positive and finite.
    steps : int
        Number of updates (>= 0); steps ``0..steps`` are checked, the last is not updated.
    grad_fn : callable(params[, batch]) -> list of Tensor, optional
        Closed-form gradients, one per parameter tensor (autograd when None); called with
        the batch whenever ``batches`` is given (at ``t = steps`` with ``eval_fn`` and
        ``final_grads``: ``grad_fn(params)``, the gradient of the evaluation loss).
    lr_mults : sequence of float or Tensor, optional
        Per-tensor LR multipliers ``c_p`` (per-layer LRs); tensors broadcast to the parameter.
    lr_schedule : callable(t) -> float or Tensor ``B``, optional
        Factor on every LR at step ``t`` (warm-up).
    momentum : float in [0, 1)
        Heavy-ball coefficient.
    weight_decay : float >= 0
        L2 coefficient added to the gradient.
    batches : callable(t) -> batch, optional
        The batch (or random draw) of step ``t``, passed to ``loss_fn`` and ``grad_fn``
        (even when it is None).
    eval_fn : callable(params) -> Tensor ``B`` or (Tensor, aux), optional
        Evaluated (without gradient) at recorded steps: the recorded loss, and checked
        for divergence too. Its value at step 0 sets ``L_0``.
    record : callable(GDState) -> dict of str -> Tensor ``B + ...``, optional
        Extra records at recorded steps.
    record_every : int >= 1
    final_grads : bool
        Compute ``g_steps`` at the last step (for records that need gradients).
    divergence_factor : float > 1 or None
        Relative divergence threshold on the loss (None: no relative check).
    max_loss : float
        Absolute divergence threshold on the loss.
    param_bound : float > 0
        Bound on ``|theta|`` entries (an update beyond it is refused: divergence).
    diverged, converged : callable(GDState) -> bool Tensor ``B``, optional
        Extra divergence rule; convergence rule (see ``on_converged``).
    on_converged : "freeze" or "all"
        Freeze each model as it converges, or stop everything at the first step where
        every model has diverged or is converged.
    callback : callable(GDState), optional
        Called before each update (must not modify the state).
    fused_step : callable(params, batch, step_sizes, velocities) -> 5-tuple, optional
        ``(loss, aux, new_params, new_velocities, finite)``.
        One whole step in one call, used at every step ``t < steps`` (``loss_fn`` and ``grad_fn``
        are then called only at ``t = steps``): ``loss, aux`` as ``loss_fn(params, batch)`` returns
        them, and the update of step 6 for every model, as :func:`sgd_update` computes it from the
        gradient (``step_sizes[p]``: ``eta * c_p`` times ``lr_schedule(t)``, broadcastable to
        parameter ``p``; ``velocities``: None without momentum; ``batch``: None without
        ``batches``). It is called under ``torch.no_grad()``, for every model, frozen ones too (the
        loop keeps those where they are). The loop makes every check, record and freeze as
        without it; ``grads`` is None in the hooks' state at these steps.

    Returns
    -------
    GDResult

    Raises
    ------
    ValueError
        On a bad argument (the message names it), or a hook returning the wrong shape.
    """
    P0 = _as_params(params)
    eta = _as_etas(etas, P0)
    B = tuple(eta.shape)
    nb = len(B)
    dtype, device = P0[0].dtype, P0[0].device
    steps = V.nonneg_int(steps, "steps")
    record_every = V.positive_int(record_every, "record_every")
    momentum = V.in_range(momentum, "momentum", 0.0, 1.0, inclusive=(True, False))
    weight_decay = V.nonneg_real(weight_decay, "weight_decay")
    if divergence_factor is not None:
        divergence_factor = V.real(divergence_factor, "divergence_factor", allow_inf=True)
        if not divergence_factor > 1:
            raise ValueError(f"divergence_factor: expected a number > 1 or None, got {divergence_factor!r}")
    max_loss = V.real(max_loss, "max_loss", allow_inf=True)
    param_bound = V.real(param_bound, "param_bound", allow_inf=True)
    if not param_bound > 0:
        raise ValueError(f"param_bound: expected a number > 0, got {param_bound!r}")
    V.choice(on_converged, "on_converged", ("freeze", "all"))
    for name, fn in (("loss_fn", loss_fn), ("grad_fn", grad_fn), ("batches", batches), ("eval_fn", eval_fn),
                     ("record", record), ("diverged", diverged), ("converged", converged),
                     ("callback", callback), ("lr_schedule", lr_schedule)):
        if fn is not None and not callable(fn):
            raise ValueError(f"{name}: expected a callable, got {type(fn).__name__}")
    if not callable(loss_fn):
        raise ValueError("loss_fn: expected a callable")
    if fused_step is not None and not callable(fused_step):
        raise ValueError(f"fused_step: expected a callable, got {type(fused_step).__name__}")

    def bview(t: Tensor, p: Tensor) -> Tensor:  # a B-shaped tensor against a parameter
        return t.view(B + (1,) * (p.dim() - nb))

    if lr_mults is None:
        step_sizes = [bview(eta, p) for p in P0]
    else:
        if len(lr_mults) != len(P0):
            raise ValueError(f"lr_mults: expected {len(P0)} multipliers (one per tensor), got {len(lr_mults)}")
        step_sizes = []
        for i, (p, c) in enumerate(zip(P0, lr_mults)):
            if isinstance(c, Tensor):
                c = c.to(dtype=dtype, device=device)
                if not bool(torch.isfinite(c).all()) or bool((c < 0).any()):
                    raise ValueError(f"lr_mults: entry {i} must be finite and >= 0")
                try:
                    s = bview(eta, p) * c
                    fits = torch.broadcast_shapes(s.shape, p.shape) == p.shape
                except RuntimeError:  # shapes that do not broadcast at all
                    fits = False
                if not fits:
                    raise ValueError(f"lr_mults: entry {i} of shape {tuple(c.shape)} does not broadcast to "
                                     f"its parameter {tuple(p.shape)}")
                step_sizes.append(s)
            else:
                c = V.nonneg_real(c, f"lr_mults[{i}]")
                step_sizes.append(bview(eta * c, p))

    P = [p.detach().clone() for p in P0]
    # theta_{t+1} is written into `spare` (then P and spare swap) and h * g into `scratch`: no
    # allocation per step (fresh pages cost more than the arithmetic on small models)
    spare = [torch.empty_like(p) for p in P]
    scratch: List[Optional[Tensor]] = [None] * len(P)  # laid out like each gradient (set at the first update)
    active_v: List[Tensor] = []  # `active` viewed against each parameter (set when a model stops)
    inactive = None  # ~active (set when a model stops)
    bounded = math.isfinite(param_bound)
    # with a finite bound, |theta| <= bound everywhere implies finite sums when numel * bound cannot
    # overflow: the bound's check alone decides
    numel = max(math.prod(p.shape[nb:]) for p in P)
    bound_only = bounded and numel * param_bound < torch.finfo(dtype).max
    vel = [torch.zeros_like(p) for p in P] if momentum > 0 else None
    active = torch.ones(B, dtype=torch.bool, device=device)
    dead = torch.zeros(B, dtype=torch.bool, device=device)  # diverged so far
    status = torch.zeros(B, dtype=torch.int8, device=device)
    stop_step = torch.full(B, -1, dtype=torch.int64, device=device)
    nan_b = torch.full(B, float("nan"), dtype=dtype, device=device)
    thresh = None  # the divergence threshold min(divergence_factor * max(L_0, 1), max_loss), per model
    use_thresh = False  # False: every threshold is inf (no comparison needed)
    n_frozen = 0
    n_dead = 0
    steps_l: List[int] = []
    losses: List[np.ndarray] = []
    recs: Dict[str, List[np.ndarray]] = {}
    autograd = grad_fn is None

    def check_mask(v, name: str) -> Tensor:
        v = torch.as_tensor(v, device=device)
        if tuple(v.shape) != B:
            raise ValueError(f"{name}: returned shape {tuple(v.shape)}, expected the batch shape {B}")
        return v if v.dtype == torch.bool else v.to(torch.bool)

    def check_loss(L, name: str):
        if not isinstance(L, Tensor) or tuple(L.shape) != B:
            raise ValueError(f"{name}: returned shape {tuple(getattr(L, 'shape', ()))}, expected the batch "
                             f"shape {B}")

    def call_loss(fn, batch, grad: bool, with_batch: bool):
        if autograd:
            with torch.set_grad_enabled(grad):
                out = fn(P, batch) if with_batch else fn(P)
        else:  # inside the loop's no_grad
            out = fn(P, batch) if with_batch else fn(P)
        L, aux = _split(out)
        check_loss(L, "loss_fn")
        return L, aux

    def schedule_factor(t: int):
        factor = lr_schedule(t) if lr_schedule is not None else None
        if factor is not None and isinstance(factor, Tensor):
            factor = factor.to(dtype=dtype, device=device)
        return factor

    def step_size(i: int, p: Tensor, factor):
        h = step_sizes[i]
        if factor is not None:
            h = h * (bview(factor, p) if isinstance(factor, Tensor) and factor.dim() else factor)
        return h

    # with a closed-form gradient nothing needs autograd: one no_grad around the loop (not one per call)
    grad_before = torch.is_grad_enabled()
    if not autograd:
        torch.set_grad_enabled(False)
    try:
        t = 0
        any_active = True  # host-side copy of active.any(): updated where active changes (no extra sync)
        for t in range(steps + 1):
            last = t == steps
            is_rec = t % record_every == 0 or last
            need_grad = any_active and (not last or final_grads)
            fused = fused_step is not None and not last  # every step but the last: one call
            if autograd and need_grad:
                for p in P:
                    p.requires_grad_(True)
            batch = None
            ev_L = ev_aux = None
            if last and eval_fn is not None:
                Lk, aux = call_loss(eval_fn, None, autograd and need_grad, False)
                ev_L, ev_aux = Lk.detach(), aux
            else:
                if batches is not None:
                    batch = batches(t)
                if fused:
                    factor = schedule_factor(t)
                    with torch.no_grad():
                        H = step_sizes if factor is None else [step_size(i, p, factor) for i, p in enumerate(P)]
                        out = fused_step(P, batch, H, vel)
                    if not isinstance(out, tuple) or len(out) != 5:
                        raise ValueError("fused_step: expected (loss, aux, new_params, new_velocities, finite)")
                    Lk, aux, fused_P, fused_v, fused_ok = out
                    check_loss(Lk, "fused_step")
                else:
                    Lk, aux = call_loss(loss_fn, batch, autograd and need_grad, batches is not None)
                if eval_fn is not None and is_rec:
                    ev_L, ev_aux = call_loss(eval_fn, None, False, False)
                    ev_L = ev_L.detach()
            Ld = Lk.detach() if autograd else Lk
            rec_L = ev_L if ev_L is not None else Ld
            if thresh is None:
                if divergence_factor is None or math.isinf(divergence_factor):
                    thresh = torch.full(B, math.inf, dtype=dtype, device=device)
                else:
                    thresh = divergence_factor * torch.clamp(torch.nan_to_num(rec_L, nan=1.0, posinf=1.0), min=1.0)
                # L > thresh or L > max_loss  <=>  L > min(thresh, max_loss)
                thresh = torch.clamp(thresh, max=max_loss)
                use_thresh = bool(torch.isfinite(thresh).any())
            # --- divergence checks (step 2): not finite (|L| < inf is false for NaN and +-inf), or above
            # the threshold; `fine` is their negation (thresh is never NaN, so for a finite L, L <= thresh
            # is exactly not L > thresh)
            fine = Ld.abs() < math.inf
            if use_thresh:
                fine &= Ld <= thresh
            if ev_L is not None:
                fine &= ev_L.abs() < math.inf
                if use_thresh:
                    fine &= ev_L <= thresh
            if diverged is not None:
                st = GDState(t, P, Ld, aux, ev_L, ev_aux, None, active, eta, batch)
                fine &= ~check_mask(diverged(st), "diverged")
            dead_before = dead
            newly = None
            all_ok = False  # a fused step without a bound: the loss's tests and the update's in one reduction
            if fused and not bounded:
                both = fine & fused_ok
                all_ok = bool((both | inactive).all() if n_frozen else both.all())
            # one reduction when none is new
            if not all_ok and not bool((fine | inactive).all() if n_frozen else fine.all()):
                newly = active & ~fine
            if newly is not None and bool(newly.any()):
                stop_step = torch.where(newly, torch.full_like(stop_step, t), stop_step)
                status = torch.where(newly, torch.full_like(status, int(GDStatus.DIVERGED)), status)
                active = active & ~newly
                dead = dead | newly
                n_dead = 1
                n_frozen = 1
                any_active = bool(active.any())
                active_v, inactive = [bview(active, p) for p in P], ~active
            # --- convergence checks (step 3)
            if converged is not None and any_active:
                st = GDState(t, P, Ld, aux, ev_L, ev_aux, None, active, eta, batch)
                conv = check_mask(converged(st), "converged") & active
                if on_converged == "all" and not bool((conv | dead).all()):
                    conv = torch.zeros_like(conv)
                if bool(conv.any()):
                    stop_step = torch.where(conv, torch.full_like(stop_step, t), stop_step)
                    status = torch.where(conv, torch.full_like(status, int(GDStatus.CONVERGED)), status)
                    active = active & ~conv
                    n_frozen = 1
                    any_active = bool(active.any())
                    active_v, inactive = [bview(active, p) for p in P], ~active
            ending = last or not any_active
            # --- gradients (step 4)
            grads = None
            if need_grad and (any_active or final_grads) and not fused:
                if autograd:
                    # the masked sum: a diverged model's NaN cannot enter another model's gradient (with
                    # none diverged, the plain sum: the same gradients, one for every model)
                    total = torch.where(dead, torch.zeros_like(Lk), Lk).sum() if n_dead else Lk.sum()
                    gs = torch.autograd.grad(total, P, allow_unused=True)
                    grads = [torch.zeros_like(p) if g is None else g for p, g in zip(P, gs)]
                else:
                    with_batch = batches is not None and not (last and eval_fn is not None)
                    gs = grad_fn(P, batch) if with_batch else grad_fn(P)
                    if len(gs) != len(P):
                        raise ValueError(f"grad_fn: returned {len(gs)} gradients for {len(P)} parameter tensors")
                    grads = list(gs)
            # --- records (step 5)
            if is_rec or ending:
                steps_l.append(t)
                losses.append(torch.where(dead_before, nan_b, rec_L).cpu().numpy())
                if record is not None:
                    st = GDState(t, P, Ld, aux, ev_L, ev_aux, grads, active, eta, batch)
                    with torch.no_grad() if autograd else _NULL_CTX:
                        out = record(st)
                    if not isinstance(out, dict):
                        raise ValueError(f"record: expected a dict of tensors, got {type(out).__name__}")
                    for name, v in out.items():
                        if name in ("step", "loss"):
                            raise ValueError(f"record: name {name!r} is reserved")
                        v = torch.as_tensor(v, device=device)
                        if tuple(v.shape[:nb]) != B:
                            raise ValueError(f"record: {name!r} has shape {tuple(v.shape)}, expected {B} + (...)")
                        v = v.detach().to(dtype=dtype, device=device)
                        v = torch.where(dead.view(B + (1,) * (v.dim() - nb)), torch.full_like(v, float("nan")), v)
                        recs.setdefault(name, []).append(v.cpu().numpy())
            if ending:
                break
            if callback is not None:
                callback(GDState(t, P, Ld, aux, ev_L, ev_aux, grads, active, eta, batch))
            # --- update (step 6)
            with torch.no_grad() if autograd else _NULL_CTX:
                if not fused:
                    factor = schedule_factor(t)
                newP = []
                sums = []  # per tensor and model: a NaN or Inf anywhere makes the sum non-finite
                peaks = []  # per tensor and model: max |theta| (with a finite param_bound)
                for i, p in enumerate(P):
                    if fused:  # the step's call made theta_{t+1}, its velocity and its sums' test
                        q, v = fused_P[i], None if vel is None else fused_v[i]
                    else:
                        if autograd:
                            p = p.detach()
                        g, h = grads[i], step_size(i, p, factor)
                        hg = scratch[i]  # h * g in the gradient's own layout (a transposed one is read in order)
                        if hg is None or hg.shape != g.shape or hg.stride() != g.stride():
                            hg = None
                            if torch.broadcast_shapes(h.shape, g.shape) == g.shape:
                                hg = scratch[i] = torch.empty_like(g, memory_format=torch.preserve_format)
                        q, v = _update_tensor(p, g, h, None if vel is None else vel[i], momentum, weight_decay,
                                              hg, spare[i])
                    if vel is not None:
                        vel[i] = torch.where(active_v[i], v, vel[i]) if n_frozen else v
                    # one reduction per tensor and model (a finite sum overflowing to Inf means
                    # parameters near overflow: diverged too); a model's scalar is its own sum and peak
                    flat = q.flatten(nb) if q.dim() > nb and (bounded or not fused) else None
                    if not bound_only and not fused:
                        sums.append(q if flat is None else flat.sum(dim=-1))
                    if bounded:
                        peaks.append(q.abs() if flat is None else flat.abs().amax(dim=-1))
                    newP.append(q)
                ok = fused_ok if fused else None
                if sums:
                    ok = (sums[0] if len(sums) == 1 else torch.stack(sums)).abs() < math.inf  # false for NaN, +-inf
                    if len(sums) > 1:
                        ok = ok.all(dim=0)
                if peaks:  # amax propagates NaN: NaN <= bound is false
                    top = (peaks[0] if len(peaks) == 1 else torch.maximum(peaks[0], peaks[1]) if len(peaks) == 2
                           else torch.stack(peaks).amax(dim=0))  # maximum propagates NaN too
                    okb = top <= param_bound
                    ok = okb if ok is None else ok & okb
                newly = None
                # one reduction when none is new
                if not all_ok and not bool((ok | inactive).all() if n_frozen else ok.all()):
                    newly = active & ~ok
                if newly is not None and bool(newly.any()):
                    stop_step = torch.where(newly, torch.full_like(stop_step, t), stop_step)
                    status = torch.where(newly, torch.full_like(status, int(GDStatus.DIVERGED)), status)
                    active = active & ok
                    dead = dead | newly
                    n_dead = 1
                    n_frozen = 1
                    any_active = bool(active.any())
                    active_v, inactive = [bview(active, p) for p in P], ~active
                if n_frozen:  # some model stopped: keep it where it is
                    for p, q, a in zip(P, newP, active_v):
                        torch.where(a, q, p.detach(), out=q)
                # every model training: no masking pass needed
                if fused:  # the call's own outputs: nothing to swap
                    P = newP
                else:
                    P, spare = newP, ([p.detach() for p in P] if autograd else P)
    finally:
        torch.set_grad_enabled(grad_before)
    stop_step = torch.where(stop_step < 0, torch.full_like(stop_step, t), stop_step)
    return GDResult(
        params=[p.detach() for p in P],
        status=status.cpu().numpy(),
        stop_step=stop_step.cpu().numpy(),
        steps_run=t,
        step=np.asarray(steps_l, dtype=np.int64),
        loss=np.stack(losses) if losses else np.zeros((0,) + B),
        records={k: np.stack(v) for k, v in recs.items()},
        etas=eta.cpu().numpy(),
    )
