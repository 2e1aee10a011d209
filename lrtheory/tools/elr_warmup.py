"""Learning-rate schedulers derived from the theory in the book.

:class:`ELRWarmup` is the hyper-parameter-free warm-up of Mehmeti-Gopel & Wand
(2024, "On the Weight Dynamics of Deep Normalized Networks", ICML, arXiv
2306.00700), derived in chapter 04 (:mod:`lrtheory.results.elr`).

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

    Example
    -------
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


def _sgd_gain(group: dict) -> float:
    """Steady-state factor by which SGD momentum multiplies the step: ``(1-d)/(1-m)``
    for heavy ball, ``1 + m(1-d)/(1-m)`` for Nesterov (both ``1/(1-m)`` when ``d = 0``)."""
    m = float(group.get("momentum", 0.0) or 0.0)
    if m == 0.0:
        return 1.0
    d = float(group.get("dampening", 0.0) or 0.0)
    if group.get("nesterov", False):
        return 1.0 + m * (1.0 - d) / (1.0 - m)
    return (1.0 - d) / (1.0 - m)


class ELRWarmup(LRScheduler):
    """Hyper-parameter-free warm-up that equalizes the layers' effective learning rates.

    The optimizer's learning rates are the *targets*. At every step the scheduler
    predicts each tracked layer's ELR per unit LR at the coming step,
    ``b_l = lr_l * gain_l * ||g_l|| ||W_l^prev|| / ||W_l||^2`` (``g_l`` the gradient
    just used, ``W_l^prev`` the weights it was taken at, ``||g|| ~ 1/||W||`` by
    scale invariance, ``gain_l`` the steady-state momentum gain of the layer's
    group), and scales every group's LR by

    .. math::

        \\lambda = \\min\\Bigl(1, \\frac{1}{\\sqrt{b_{\\max} b_{\\min}}}\\Bigr),

    the critical learning rate of the two extreme layers (Mehmeti-Gopel & Wand
    2024): it sends their ELRs to the same value in one step. Once
    ``lambda`` reaches 1 the warm-up is over and the LRs stay at their targets.
    The warm-up length is not a parameter; it follows from the network.

    Parameters
    ----------
    optimizer : torch.optim.SGD
        With or without momentum (heavy ball or Nesterov), any number of groups.
        The groups' ``lr`` values at construction are the target LRs.
    params : iterable of Tensor, optional
        The scale-invariant weight tensors (layers followed by a normalization) whose
        ELRs are equalized. Default: every tensor with 2 or more dimensions in the
        optimizer (weight matrices, convolution kernels). Biases, normalization gains
        and an un-normalized read-out layer are not scale-invariant: pass ``params``
        explicitly to leave the read-out out.
    last_epoch : int
        As for every ``LRScheduler`` (``-1``: a fresh run).

    Raises
    ------
    ValueError
        If ``optimizer`` is not ``torch.optim.SGD``, a group's ``lr`` is not a
        positive finite number, no tensor is tracked, or ``params`` holds a tensor
        that the optimizer does not train.

    Notes
    -----
    * Call ``scheduler.step()`` after ``optimizer.step()`` and before the gradients
      are cleared (the usual order: ``zero_grad``, ``backward``, ``optimizer.step``,
      ``scheduler.step``). If the gradients are gone (``None``), the LR is left
      unchanged for that step.
    * If the tracked tensors have no gradients when the scheduler is built, the
      first step runs at ``lr = 0``: it only measures the gradients. Call
      ``loss.backward()`` once before building the scheduler to avoid it.
    * The model behind the rule assumes plain SGD steps on scale-invariant weights;
      momentum enters only through its steady-state gain, weight decay not at all.
    * :attr:`elr_spread` is the predicted ratio ``b_max / b_min`` at the last step
      and :attr:`factor` the current ``lambda``; both are in the state dict.

    Example
    -------
    >>> import torch
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = torch.nn.Sequential(
    ...     torch.nn.Linear(8, 16, bias=False), torch.nn.BatchNorm1d(16), torch.nn.ReLU(),
    ...     torch.nn.Linear(16, 16, bias=False), torch.nn.BatchNorm1d(16), torch.nn.ReLU(),
    ...     torch.nn.Linear(16, 3))
    >>> x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    >>> opt = torch.optim.SGD(net.parameters(), lr=5.0, momentum=0.9)
    >>> sched = ELRWarmup(opt, params=[net[0].weight, net[3].weight])
    >>> for _ in range(20):
    ...     opt.zero_grad()
    ...     torch.nn.functional.cross_entropy(net(x), y).backward()
    ...     opt.step()
    ...     sched.step()
    >>> 0 < sched.get_last_lr()[0] <= 5.0
    True
    >>> state = sched.state_dict()   # save with the optimizer's state; restore with
    >>> sched.load_state_dict(state)  # a scheduler built on the restored optimizer
    """

    def __init__(self, optimizer: torch.optim.Optimizer, params: Optional[Iterable[torch.Tensor]] = None,
                 last_epoch: int = -1) -> None:
        if not isinstance(optimizer, torch.optim.SGD):
            raise ValueError(
                f"optimizer: ELRWarmup models plain or momentum SGD steps; got {type(optimizer).__name__}"
            )
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
        self._index: List[Tuple[int, int]] = self._resolve(optimizer, params)
        self._gains: List[float] = [_sgd_gain(g) for g in optimizer.param_groups]
        self._prev_norms: Optional[List[float]] = None
        self.factor: float = 0.0
        self.elr_spread: float = math.nan
        self._done: bool = False
        super().__init__(optimizer, last_epoch)

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

    def get_lr(self) -> List[float]:
        """Learning rates for the coming step (called by :meth:`step`)."""
        base = [float(b) for b in self.base_lrs]
        tracked = self._tracked()
        with torch.no_grad():
            norms = [float(p.detach().double().norm()) for _, p in tracked]
        if self._done:
            self._prev_norms = norms
            return base
        factor = self.factor
        grads = [p.grad for _, p in tracked]
        if all(g is not None for g in grads):
            prev = norms if self._prev_norms is None else self._prev_norms
            b = []
            with torch.no_grad():
                for (gi, _), g, n, n0 in zip(tracked, grads, norms, prev):
                    gn = float(g.detach().double().norm())
                    val = base[gi] * self._gains[gi] * gn * n0 / (n * n) if n > 0 else math.nan
                    if math.isfinite(val) and val > 0:
                        b.append(val)
            if b:
                bmax, bmin = max(b), min(b)
                self.elr_spread = bmax / bmin
                factor = min(1.0, 1.0 / math.sqrt(bmax * bmin))
        self._prev_norms = norms
        if factor >= 1.0:
            factor, self._done = 1.0, True
        self.factor = factor
        return [factor * b for b in base]

    @property
    def done(self) -> bool:
        """True once the warm-up has reached the target LRs (they then stay there)."""
        return self._done

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a state saved by :meth:`state_dict`.

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
        super().load_state_dict(state_dict)
        self._index = index
        # building a scheduler on a restored optimizer ran an initial step that set the LRs;
        # put back the ones in force when the state was saved
        for group, lr in zip(groups, self._last_lr):
            group["lr"] = lr
