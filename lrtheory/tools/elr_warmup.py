"""A hyper-parameter-free warm-up for normalized networks, as a torch LR scheduler.

:class:`ELRWarmup` follows Mehmeti-Gopel & Wand (2024, "On the Weight Dynamics of Deep
Normalized Networks", ICML, arXiv 2306.00700) in its aim; its rule is derived here (chapter 04,
:mod:`lrtheory.results.elr.derivation`), since only the paper's abstract could be read. From the
abstract: that a critical LR depending only on the current ELRs exists, beyond which the layers'
ELR disparities widen, and that a warm-up without hyper-parameters reduces the ELR spread. Derived
here: everything below (the ELR definition, the one-step map, the formula of the critical LR, its
use for the two extreme layers, the momentum gain, when the warm-up ends). The class docstring
says so part by part; the paper's rule may differ.

The effective learning rate (ELR) of a scale-invariant weight tensor ``W`` (a
layer followed by a normalization) is the relative size of its SGD step,

.. math::

    E = \\eta \\, \\frac{\\lVert \\nabla_W L \\rVert}{\\lVert W \\rVert},

the definition under which the ratio of two layers' ELRs tends to 1 under a
constant LR. Because the gradient of a scale-invariant loss is orthogonal to
``W`` and scales like ``1/||W||``, one step maps ``E -> E / (1 + E^2)`` and two
layers with per-unit-LR ELRs ``a_l = ||grad_l|| / ||W_l||`` end the step with
equal ELRs exactly when ``eta = 1 / sqrt(a_l a_k)``: the *critical learning
rate*. Below it the step shrinks the disparity without reversing it; above it
the order of the two ELRs flips and the disparity left after the step grows
with ``eta``. The warm-up runs at the critical LR of the two extreme layers
(largest and smallest ELR) until that exceeds the target LR, then stays at the
target: no warm-up length, no start value, nothing to tune.
"""
from __future__ import annotations

import math
import numbers
import weakref
from typing import Iterable, List, Optional, Sequence, Tuple

import torch
from torch.optim.lr_scheduler import LRScheduler

__all__ = ["ELRWarmup", "unit_elrs"]


def unit_elrs(params: Sequence[torch.Tensor], grads: Optional[Sequence[torch.Tensor]] = None) -> List[float]:
    """ELR per unit learning rate of each tensor, ``||grad|| / ||W||``.

    Multiply by the learning rate to get the ELR ``E = eta ||grad|| / ||W||``.

    Parameters
    ----------
    params : sequence of Tensor
        Weight tensors (any shapes).
    grads : sequence of Tensor, optional
        Their gradients; default ``p.grad`` of each tensor.

    Returns
    -------
    list of float
        One value per tensor, in float64 arithmetic.

    Raises
    ------
    ValueError
        If ``params`` is empty, lengths or shapes differ, a gradient is missing, or a
        weight tensor has zero norm (its ELR is undefined).

    Examples
    --------
    >>> w = torch.tensor([3.0, 4.0], requires_grad=True)
    >>> (w / w.norm()).sum().backward()
    >>> round(unit_elrs([w])[0], 6)
    0.008
    """
    params = list(params)
    if not params:
        raise ValueError("params: expected at least one tensor")
    grads = [p.grad for p in params] if grads is None else list(grads)
    if len(grads) != len(params):
        raise ValueError(f"grads: expected {len(params)} tensors, got {len(grads)}")
    out = []
    for i, (p, g) in enumerate(zip(params, grads)):
        if g is None:
            raise ValueError(f"grads: tensor {i} has no gradient")
        if tuple(g.shape) != tuple(p.shape):
            raise ValueError(f"grads: tensor {i} has shape {tuple(g.shape)}, its weight {tuple(p.shape)}")
        wn = float(p.detach().double().norm())
        if not wn > 0:
            raise ValueError(f"params: tensor {i} has zero norm, its ELR is undefined")
        out.append(float(g.detach().double().norm()) / wn)
    return out


def _sgd_gain(group: dict, k: Optional[int] = None) -> float:
    """Factor by which SGD momentum multiplies the step of a constant gradient, at the step that
    follows ``k`` earlier steps of the momentum buffer (``k = 0``: the first, whose buffer is the
    gradient itself), or in the steady state (``k = None``).

    Heavy ball, ``buf <- m buf + (1 - d) g`` started at ``buf = g``:
    ``m^k + (1 - d)(1 - m^k)/(1 - m)``, i.e. ``(1 - m^(k+1))/(1 - m)`` without dampening, tending to
    ``(1 - d)/(1 - m)``. Nesterov steps along ``g + m buf``: one plus ``m`` times that.
    """
    m = float(group.get("momentum", 0.0) or 0.0)
    if m == 0.0:
        return 1.0
    d = float(group.get("dampening", 0.0) or 0.0)
    if k is None:
        heavy = (1.0 - d) / (1.0 - m)
    else:
        mk = m ** int(k)
        heavy = mk + (1.0 - d) * (1.0 - mk) / (1.0 - m)
    if group.get("nesterov", False):
        return 1.0 + m * heavy
    return heavy


Measurement = Tuple[List[float], List[float], List[float]]  # (||g||, ||W|| before, ||W|| after) per tensor


class ELRWarmup(LRScheduler):
    """Hyper-parameter-free warm-up that equalizes the layers' effective learning rates.

    The optimizer's learning rates are the *targets*. At every optimizer step the scheduler
    records, per tracked layer, the gradient norm ``||g_l||`` the step used and the weight norms
    before and after it (optimizer step hooks, so the order of ``zero_grad`` and
    ``scheduler.step()`` in the loop does not matter). ``scheduler.step()`` then predicts each
    layer's ELR per unit LR at the coming step, ``b_l = lr_l * gain_l(k) * ||g_l|| ||W_l^prev|| /
    ||W_l||^2`` (``k`` the optimizer steps taken so far, ``gain_l(k)`` the momentum gain below),
    and scales every group's LR by

    .. math::

        \\lambda = \\min\\Bigl(1, \\frac{1}{\\sqrt{b_{\\max} b_{\\min}}}\\Bigr),

    the critical learning rate of the two extreme layers: it sends their ELRs to the same value
    in one step. Momentum multiplies the step of an unchanged gradient by
    ``gain(k) = (1 - m^(k+1)) / (1 - m)`` at the step after ``k`` earlier ones (heavy ball from a
    zero buffer: 1 at the first step, ``1/(1 - m)`` in the steady state; with dampening and
    Nesterov as in :func:`_sgd_gain`), so the first step runs at the critical LR itself. Once
    the targets are below the critical LR even at the steady-state gain the warm-up is over and
    the LRs stay at their targets. The warm-up length is not a parameter; it follows from the
    network.

    **Whose rule this is.** From Mehmeti-Gopel & Wand (2024), of which only the abstract could
    be read: the ELR ratios of normalized layers converge to 1 under a constant LR; there is a
    critical LR that depends only on the current ELRs; a hyper-parameter-free warm-up reduces
    the ELR spread. *Derived here* (chapter 04, from scale invariance alone): the ELR definition
    ``E = eta ||g|| / ||W||``, the one-step map ``E -> E / (1 + E^2)``, the critical LR
    ``1 / sqrt(a_l a_k)`` of two layers, its use for the two extreme layers, the prediction
    ``||g|| ~ 1/||W||`` of the next gradient, the momentum gain of a buffer started at zero
    (aligned gradients), the end of the warm-up at the steady-state gain and the cap at the
    target. The paper's own rule may differ. (An earlier version took the steady-state gain
    ``1/(1 - m)`` from the first step: with ``m = 0.9`` its first steps ran 10x below the critical
    LR; chapter 04 measures both.)

    Parameters
    ----------
    optimizer : torch.optim.SGD
        With or without momentum (heavy ball or Nesterov), any number of groups, each with a
        target ``lr``. Adam, AdamW and other adaptive optimizers are refused: their step does
        not shrink with ``||W||``, so two layers' ELRs never cross and the critical LR the rule
        rests on does not exist (use ``torch.optim.lr_scheduler.LinearLR`` for them).
    params : iterable of Tensor, optional
        The scale-invariant weight tensors (layers followed by a normalization) whose ELRs are
        equalized. Default: every tensor with 2 or more dimensions in the optimizer. Biases,
        normalization gains and an un-normalized read-out layer are not scale-invariant: pass
        ``params`` explicitly to leave the read-out out.
    last_epoch : int
        As for every ``LRScheduler`` (``-1``: a fresh run).

    Raises
    ------
    ValueError
        If ``optimizer`` is not ``torch.optim.SGD``, a group's ``lr`` is not a positive finite
        number, no tensor is tracked, or ``params`` holds a tensor the optimizer does not train.

    Notes
    -----
    * The scheduler contract of ``torch.optim.lr_scheduler``: :meth:`get_lr` has no side
      effects (state advances in :meth:`step` only); in ``ChainedScheduler`` or beside other
      schedulers the factor multiplies whatever the others set (a cosine decay is kept); in
      ``SequentialLR`` it runs until its milestone; :meth:`state_dict` /
      :meth:`load_state_dict` resume identically from any step, including 0.
    * If the tracked tensors have gradients when the scheduler is built (one ``backward()``
      first), the first LR is the critical LR at once. Otherwise the LRs stay at their targets
      until the first ``optimizer.step()``, whose gradients set the first LR just before the
      update is applied; a tracked tensor without a gradient then is an error.
    * A later step at which a tracked tensor has no gradient leaves the factor unchanged.
    * The model behind the rule assumes SGD steps on scale-invariant weights; momentum enters
      only through the gain of aligned gradients, weight decay not at all. The buffer's stale
      gradients are not seen: when the LR rises several-fold in one step, the buffer still holds
      the large gradients of the first steps and the update can be far longer than the rule
      predicts. Chapter 04 measured it: in a 32-layer BatchNorm MLP on digits at LR 30 with momentum
      0.9 (full batch, 200 steps, 6 seeds) the constant LR trained every seed (training accuracy 0.54
      to 0.82) and the warm-up none (0.10 to 0.33), and without momentum too (a diagnostic of two seeds:
      0.23 and 0.20 against 0.69 and 0.81); the chapter's claims that the warm-up lowers the ELR
      spread, early or at the end of training, were not reproduced either.
    * If the momentum buffers exist when the scheduler is built (it joins a run in progress), they
      are taken to be in their steady state.
    * :attr:`elr_spread` is the predicted ratio ``b_max / b_min`` at the last measurement and
      :attr:`factor` the current ``lambda``; both are in the state dict.

    Examples
    --------
    >>> import torch
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = torch.nn.Sequential(
    ...     torch.nn.Linear(8, 16, bias=False), torch.nn.BatchNorm1d(16), torch.nn.ReLU(),
    ...     torch.nn.Linear(16, 16, bias=False), torch.nn.BatchNorm1d(16), torch.nn.ReLU(),
    ...     torch.nn.Linear(16, 3))
    >>> x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    >>> opt = torch.optim.SGD(net.parameters(), lr=5.0, momentum=0.9)
    >>> warm = ELRWarmup(opt, params=[net[0].weight, net[3].weight])
    >>> cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
    >>> sched = torch.optim.lr_scheduler.ChainedScheduler([warm, cosine])
    >>> for _ in range(20):
    ...     torch.nn.functional.cross_entropy(net(x), y).backward()
    ...     opt.step()
    ...     opt.zero_grad()
    ...     sched.step()
    >>> 0 < sched.get_last_lr()[0] < 5.0
    True
    >>> state = sched.state_dict()   # save with the model's and the optimizer's state; restore
    >>> sched.load_state_dict(state)  # into schedulers built on the restored optimizer
    """

    _NOT_STATE = ("optimizer", "_hooks", "_lr_at_build", "_lr_after_build")

    def __init__(self, optimizer: torch.optim.Optimizer, params: Optional[Iterable[torch.Tensor]] = None,
                 last_epoch: int = -1) -> None:
        if not isinstance(optimizer, torch.optim.SGD):
            kind = type(optimizer).__name__
            why = (" (its step does not shrink with the weight norm, so two layers' ELRs never cross and "
                   "there is no critical LR; use torch.optim.lr_scheduler.LinearLR for a warm-up)"
                   if isinstance(optimizer, torch.optim.Optimizer) else "")
            raise ValueError(f"optimizer: ELRWarmup's rule is derived for SGD steps (plain or momentum); "
                             f"got {kind}{why}")
        if isinstance(last_epoch, bool) or not isinstance(last_epoch, numbers.Integral) or last_epoch < -1:
            raise ValueError(f"last_epoch: expected an integer >= -1, got {last_epoch!r}")
        for gi, group in enumerate(optimizer.param_groups):
            lr = group["lr"]
            if isinstance(lr, torch.Tensor):
                if lr.numel() != 1:
                    raise ValueError(f"optimizer: param_groups[{gi}]['lr'] must be a scalar")
                lr = float(lr)
            if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not math.isfinite(lr) or lr <= 0:
                raise ValueError(f"optimizer: param_groups[{gi}]['lr'] (the target LR) must be a positive "
                                 f"finite number, got {lr!r}")
        self.optimizer = optimizer
        self._index: List[Tuple[int, int]] = self._resolve(optimizer, params)
        # optimizer steps the momentum buffers have taken (None: they existed before this scheduler,
        # so they are taken to be in their steady state)
        self._steps: Optional[int] = None if self._has_buffers() else 0
        self.factor: float = 1.0
        self.elr_spread: float = math.nan
        self._done: bool = False
        self._before: Optional[Tuple[List[float], List[float]]] = None  # set by the pre-step hook
        now = self._grad_and_weight_norms()
        # measured at construction: the first LR is the critical one at once; else wait for a step
        self._measurement: Optional[Measurement] = None if now is None else (now[0], now[1], now[1])
        self._pending: bool = now is None
        self._scale: List[float] = [1.0] * len(optimizer.param_groups)  # other schedulers' factors
        self._set: List[float] = []  # the LRs this scheduler set last
        self._initial = False
        self._lr_at_build = [float(g["lr"]) for g in optimizer.param_groups]
        super().__init__(optimizer, last_epoch)
        self._lr_after_build = [float(g["lr"]) for g in optimizer.param_groups]
        self._register_hooks()

    # ------------------------------------------------------------------ tracked tensors
    @staticmethod
    def _resolve(optimizer, params) -> List[Tuple[int, int]]:
        where = {}
        for gi, group in enumerate(optimizer.param_groups):
            for pi, p in enumerate(group["params"]):
                where[id(p)] = (gi, pi)
        if params is None:
            index = [(gi, pi) for gi, group in enumerate(optimizer.param_groups)
                     for pi, p in enumerate(group["params"]) if p.dim() >= 2]
        else:
            if isinstance(params, torch.Tensor):
                params = [params]
            index = []
            for i, p in enumerate(params):
                if not isinstance(p, torch.Tensor):
                    raise ValueError(f"params: entry {i} is a {type(p).__name__}, expected a Tensor")
                if id(p) not in where:
                    raise ValueError(f"params: entry {i} (shape {tuple(p.shape)}) is not trained by the optimizer")
                if where[id(p)] not in index:
                    index.append(where[id(p)])
        if not index:
            raise ValueError("params: no scale-invariant weight tensor to track (none with 2 or more dimensions); "
                             "pass params explicitly")
        return index

    def _tracked(self) -> List[Tuple[int, torch.Tensor]]:
        groups = self.optimizer.param_groups
        return [(gi, groups[gi]["params"][pi]) for gi, pi in self._index]

    def _weight_norms(self) -> List[float]:
        with torch.no_grad():
            return [float(p.detach().double().norm()) for _, p in self._tracked()]

    def _has_buffers(self) -> bool:
        state = self.optimizer.state
        return any(state.get(p, {}).get("momentum_buffer") is not None for _, p in self._tracked())

    def _grad_and_weight_norms(self) -> Optional[Tuple[List[float], List[float]]]:
        grads = [p.grad for _, p in self._tracked()]
        if any(g is None for g in grads):
            return None
        with torch.no_grad():
            return [float(g.detach().double().norm()) for g in grads], self._weight_norms()

    # ------------------------------------------------------------------ optimizer step hooks
    def _register_hooks(self) -> None:
        me = weakref.ref(self)

        def pre(optimizer, args, kwargs):
            s = me()
            if s is not None:
                s._pre_step()

        def post(optimizer, args, kwargs):
            s = me()
            if s is not None:
                s._post_step()

        self._hooks = (self.optimizer.register_step_pre_hook(pre), self.optimizer.register_step_post_hook(post))

    def _pre_step(self) -> None:
        if self._done:
            return
        self._before = self._grad_and_weight_norms()
        if not self._pending:
            return
        if self._before is None:
            missing = [i for i, (_, p) in enumerate(self._tracked()) if p.grad is None]
            raise ValueError(f"params: tracked tensor {missing[0]} has no gradient at the first optimizer.step(); "
                             "ELRWarmup needs a gradient for every tracked tensor (pass params= to track only "
                             "the normalized layers that get one)")
        # the first step's LR, set from its own gradients before the update is applied
        g, n = self._before
        f, finished = self._spread_and_factor((g, n, n))[1:]
        for gi, group in enumerate(self.optimizer.param_groups):
            group["lr"] = float(group["lr"]) * f
        self._commit(f, finished)
        self._pending = False
        self._last_lr = [float(group["lr"]) for group in self.optimizer.param_groups]
        self._set = list(self._last_lr)

    def _post_step(self) -> None:
        if self._done or self._before is None:
            self._before = None
            return
        g, n0 = self._before
        self._measurement = (g, n0, self._weight_norms())
        self._before = None
        if self._steps is not None:
            self._steps += 1

    # ------------------------------------------------------------------ the rule
    def _spread_and_factor(self, m: Measurement) -> Tuple[float, float, bool]:
        """``(b_max / b_min, lambda, finished)`` from a measurement: ``lambda`` with the momentum gain
        of the coming step, ``finished`` when ``lambda`` is 1 even at the steady-state gain (the
        longest steps momentum will make), so that the warm-up never ends while the buffer grows."""
        base = [float(b) for b in self.base_lrs]
        groups = self.optimizer.param_groups
        b, b_inf = [], []
        for (gi, _), gn, n0, n in zip(self._index, *m):
            unit = base[gi] * gn * n0 / (n * n) if n > 0 else math.nan
            val = unit * _sgd_gain(groups[gi], self._steps)
            if math.isfinite(val) and val > 0:
                b.append(val)
                b_inf.append(unit * _sgd_gain(groups[gi]))
        if not b:
            return math.nan, self.factor, self._done
        bmax, bmin = max(b), min(b)
        finished = math.sqrt(max(b_inf) * min(b_inf)) <= 1.0
        return bmax / bmin, min(1.0, 1.0 / math.sqrt(bmax * bmin)), finished

    def _next(self) -> Tuple[float, bool]:
        if self._done or self._pending or self._measurement is None:
            return self.factor, self._done
        return self._spread_and_factor(self._measurement)[1:]

    def _next_factor(self) -> float:
        return self._next()[0]

    def _commit(self, f: float, finished: bool) -> None:
        if self._measurement is not None:
            spread = self._spread_and_factor(self._measurement)[0]
            if math.isfinite(spread):
                self.elr_spread = spread
        elif self._before is not None:
            g, n = self._before
            spread = self._spread_and_factor((g, n, n))[0]
            if math.isfinite(spread):
                self.elr_spread = spread
        self._measurement = None
        if finished:
            f, self._done = 1.0, True
        self.factor = f

    def _others(self, initial: bool) -> List[float]:
        """Per group, the product of the other schedulers' factors (exactly 1.0 when alone)."""
        groups = self.optimizer.param_groups
        if initial or not self._set:  # an initial step: the LRs carry no factor of ours
            return [float(g["lr"]) / float(b) for g, b in zip(groups, self.base_lrs)]
        out = []
        for s, g, mine in zip(self._scale, groups, self._set):
            cur = float(g["lr"])
            out.append(s if cur == mine else s * (cur / mine))
        return out

    def get_lr(self) -> List[float]:
        """The learning rates :meth:`step` will set (no side effects)."""
        f = self._next_factor()
        return [f * float(b) * s for b, s in zip(self.base_lrs, self._others(self._initial))]

    def step(self, epoch: Optional[int] = None) -> None:
        """Advance the schedule: apply the factor measured at the last optimizer step."""
        f, finished = self._next()
        # an initial step (construction, SequentialLR's start) finds LRs without our factor
        self._initial = (self.last_epoch == -1) if epoch is None else (epoch == 0)
        scale = self._others(self._initial)
        try:
            super().step(epoch)
        finally:
            self._initial = False
        self._scale = scale
        if not self._pending:
            self._commit(f, finished)
        self._set = [float(g["lr"]) for g in self.optimizer.param_groups]

    @property
    def done(self) -> bool:
        """True once the warm-up has reached the target LRs (they then stay there)."""
        return self._done

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """The scheduler's state (everything but the optimizer and the hook handles)."""
        return {k: v for k, v in self.__dict__.items() if k not in self._NOT_STATE}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a state saved by :meth:`state_dict` into a scheduler built on the restored optimizer.

        Raises
        ------
        ValueError
            If the state was saved for a different set of tracked tensors or groups.
        """
        if not isinstance(state_dict, dict) or "_index" not in state_dict:
            raise ValueError("state_dict: not an ELRWarmup state")
        index = [tuple(ix) for ix in state_dict["_index"]]
        groups = self.optimizer.param_groups
        if len(state_dict.get("base_lrs", [])) != len(groups) or any(
            gi >= len(groups) or pi >= len(groups[gi]["params"]) for gi, pi in index
        ):
            raise ValueError("state_dict: saved for an optimizer with other parameter groups")
        self.__dict__.update({k: v for k, v in state_dict.items() if k not in self._NOT_STATE})
        self._index = index
        # Built on an optimizer restored first, this scheduler's initial step changed the restored
        # LRs (those in force at the save): put them back. An optimizer restored after the build
        # changed the LRs since: they are the saved ones already and stay.
        for group, before, after in zip(groups, self._lr_at_build, self._lr_after_build):
            if float(group["lr"]) == after:
                group["lr"] = before
