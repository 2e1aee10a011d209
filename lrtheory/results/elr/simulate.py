"""Chapter 04, the experiments (torch): scale-invariant weights on random losses, a deep
BatchNorm MLP and a small BatchNorm CNN on digits, with and without the warm-up.

Every model draws its initial weights from its own :func:`lrtheory.core.device.seed_for`
seed. Nothing here knows the derivation: the model's predictions are made in
:mod:`~lrtheory.results.elr.derivation` and set beside these runs in
:mod:`~lrtheory.results.elr.measurements`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch

from lrtheory.core import validate as V
from lrtheory.core.device import DeviceLike, make_generator, resolve_device, seed_for
from lrtheory.core.gd import run_gd
from lrtheory.results.elr.analysis import spread
from lrtheory.tools.elr_warmup import ELRWarmup, unit_elrs

__all__ = [
    "ScaleInvariantRun",
    "simulate_scale_invariant",
    "MLPSetting",
    "mlp_setting",
    "mlp_unit_elrs",
    "MLPTrace",
    "train_mlp",
    "OneStepScan",
    "RampRun",
    "ramp_mlp",
    "WarmupComparison",
    "WarmupRun",
    "run_mlp_module",
    "make_cnn",
    "run_cnn",
    "NET_ARCHS",
    "RatioTrace",
    "run_net_ratio",
]

#: Seed of the digits train/test split (the data, shared by every run; not a model's init).
DATA_SEED = 0


# --------------------------------------------------------------------------- the model's premise


@dataclass(frozen=True)
class ScaleInvariantRun:
    """Trajectories of scale-invariant weights trained by autograd on random losses.

    Attributes
    ----------
    S : ndarray ``(T + 1, L)``
        Squared weight norms.
    grad_norm : ndarray ``(T + 1, L)``
        Gradient norms at each step (the last row is taken at the final weights).
    elr : ndarray ``(T + 1, L)``
        ``eta ||grad|| / ||W||``.
    eta : float
    c : ndarray ``(L,)``
        The gradient scales the losses were built with.
    """

    S: np.ndarray
    grad_norm: np.ndarray
    elr: np.ndarray
    eta: float
    c: np.ndarray


def simulate_scale_invariant(c: Sequence[float], eta: float, steps: int, *, S0: float = 1.0, dim: int = 512,
                             seed: int = 0, device: DeviceLike = None) -> ScaleInvariantRun:
    """Train ``L`` independent scale-invariant weight vectors with SGD on random losses.

    Layer ``l`` has weights ``w_l`` in ``R^dim`` and at each step the loss
    ``L_t = sum_l c_l <v_{l,t}, w_l / ||w_l||> / sqrt(dim - 1)`` with fresh
    ``v_{l,t} ~ N(0, I)``: a scale-invariant loss whose gradient, computed by
    autograd, is orthogonal to ``w_l`` with ``E ||grad||^2 = c_l^2 / ||w_l||^2``. It
    is the model's premise (fixed gradient scale, SGD-like random directions) and
    nothing more: the recursion is not used. One layer is one model of
    :func:`lrtheory.core.gd.run_gd`, the random directions its batches.

    Parameters
    ----------
    c : sequence of float, > 0
        Gradient scale of each layer (``L`` values; unequal values mimic gradient explosion).
    eta : float, > 0
        Constant learning rate.
    steps : int, >= 1
    S0 : float, > 0
        Initial squared norm of every layer.
    dim : int, >= 2
    seed : int, >= 0
        Seed of the initial weights and of the random losses (pass a
        :func:`~lrtheory.core.device.seed_for` value).
    device : str, torch.device or None

    Returns
    -------
    ScaleInvariantRun

    Raises
    ------
    ValueError
        On a bad argument (the message names it).

    Example
    -------
    >>> run = simulate_scale_invariant([1.0, 0.1], eta=0.1, steps=10, dim=64)
    >>> run.S.shape
    (11, 2)
    """
    c_arr = V.positive_array(c, "c").ravel()
    eta = V.positive_real(eta, "eta")
    S0 = V.positive_real(S0, "S0")
    steps = V.positive_int(steps, "steps")
    dim = V.integer(dim, "dim", minimum=2)
    seed = V.nonneg_int(seed, "seed")
    dev = resolve_device(device)
    gen = make_generator(seed, dev)
    L = len(c_arr)
    dt = torch.float64
    cs = torch.tensor(c_arr, dtype=dt, device=dev)
    w = torch.randn(L, dim, generator=gen, dtype=dt, device=dev)
    w = w / w.norm(dim=1, keepdim=True) * math.sqrt(S0)
    scale = 1.0 / math.sqrt(dim - 1)

    def loss_fn(P, v):  # one model per layer: L_l = c_l <v_l, w_l / ||w_l||> / sqrt(dim - 1)
        wr = P[0]
        return cs * (v * (wr / wr.norm(dim=1, keepdim=True))).sum(1) * scale

    res = run_gd(loss_fn, [w], eta, steps,
                 batches=lambda t: torch.randn(L, dim, generator=gen, dtype=dt, device=dev),
                 record=lambda st: {"S": st.params[0].pow(2).sum(1), "G": st.grads[0].norm(dim=1)},
                 final_grads=True, divergence_factor=None)  # a scale-invariant loss cannot diverge
    S_np, G_np = res.records["S"], res.records["G"]
    return ScaleInvariantRun(S=S_np, grad_norm=G_np, elr=eta * G_np / np.sqrt(S_np), eta=eta, c=c_arr)


# --------------------------------------------------------------------------- the BatchNorm MLP


@dataclass(frozen=True)
class MLPSetting:
    """The BatchNorm MLP of the chapter: spec, initial parameters, data, trained tensors.

    Attributes
    ----------
    spec : lrtheory.core.mlp.MLPSpec
    params : tuple of Tensor
        Initial parameters of one model (leading model axis of length 1).
    x, y : Tensor
        Training digits and labels.
    weight_index : tuple of int
        Positions of the trained (scale-invariant) hidden weights in ``params``.
    a0 : ndarray ``(depth,)``
        Per-unit-LR ELRs ``||grad|| / ||W||`` of the hidden layers at init.
    """

    spec: object
    params: tuple
    x: torch.Tensor
    y: torch.Tensor
    weight_index: tuple
    a0: np.ndarray


def mlp_setting(depth: int, width: int, n_train: int, device: DeviceLike = None, seed_index: int = 0,
                norm: str = "batchnorm") -> MLPSetting:
    """The chapter's deep normalized MLP on digits, at initialization.

    Hidden layers ``Linear(bias=False) -> norm (BatchNorm: batch statistics; or LayerNorm) -> ReLU``
    (:mod:`lrtheory.core.mlp`, He init); only the hidden weight matrices are trained,
    the normalization gains and the read-out stay at their initial values, so every trained
    tensor is scale-invariant. The init is drawn from
    ``seed_for("elr", "mlp", norm, depth, width, seed_index)``.

    Parameters
    ----------
    depth, width : int, >= 1
        Normalized hidden layers and their width.
    n_train : int, >= 1
        Training digits.
    device : str, torch.device or None
    seed_index : int, >= 0
    norm : "batchnorm" or "layernorm"

    Returns
    -------
    MLPSetting

    Raises
    ------
    ValueError
        On a bad argument (the message names it).
    """
    from lrtheory.core.data import digits
    from lrtheory.core.mlp import MLPSpec, init_params, param_names

    depth = V.positive_int(depth, "depth")
    width = V.positive_int(width, "width")
    n_train = V.positive_int(n_train, "n_train")
    seed_index = V.nonneg_int(seed_index, "seed_index")
    norm = V.choice(norm, "norm", ("batchnorm", "layernorm"))
    dev = resolve_device(device)
    data = digits(seed=DATA_SEED, device=dev, n_train=n_train)
    spec = MLPSpec(d_in=data.d_in, width=width, depth=depth, d_out=data.d_out, norm=norm)
    params = init_params(spec, 1, seeds=[seed_for("elr", "mlp", norm, depth, width, seed_index)], device=dev)
    names = param_names(spec)
    widx = tuple(i for i, n in enumerate(names) if n.startswith("W"))[: spec.depth]
    a0 = mlp_unit_elrs(spec, params, widx, data.x_train, data.y_train)[0][0]
    return MLPSetting(spec=spec, params=tuple(params), x=data.x_train, y=data.y_train, weight_index=widx, a0=a0)


def mlp_unit_elrs(spec, params, widx, x, y):
    """Per-unit-LR ELRs ``(K, depth)``, losses ``(K,)``, gradients of the hidden weights and
    the parameters they were taken at (the hidden weights with ``requires_grad``)."""
    from lrtheory.core.train import per_model_loss

    ps = [p.detach().requires_grad_(i in widx) for i, p in enumerate(params)]
    loss = per_model_loss(spec, ps, x, y, "ce")
    grads = torch.autograd.grad(loss.sum(), [ps[i] for i in widx])
    with torch.no_grad():
        a = torch.stack([g.flatten(1).norm(dim=1) / ps[i].flatten(1).norm(dim=1) for g, i in zip(grads, widx)], 1)
    return a.cpu().numpy(), loss.detach().cpu().numpy(), grads, ps


@dataclass(frozen=True)
class MLPTrace:
    """Full-batch SGD of the BatchNorm MLP at several constant LRs (one model per LR).

    Attributes
    ----------
    etas : ndarray ``(K,)``
    a : ndarray ``(K, T + 1, depth)``
        Per-unit-LR ELRs ``||grad|| / ||W||`` of the hidden layers at each step.
    S : ndarray ``(K, T + 1, depth)``
        Squared weight norms.
    loss : ndarray ``(K, T + 1)``
    eta_c : float
        Critical LR at init (extreme layers).
    """

    etas: np.ndarray
    a: np.ndarray
    S: np.ndarray
    loss: np.ndarray
    eta_c: float

    @property
    def elr(self) -> np.ndarray:
        """ELRs ``eta a``, ``(K, T + 1, depth)``."""
        return self.etas[:, None, None] * self.a

    @property
    def spread(self) -> np.ndarray:
        """``(K, T + 1)`` max/min ELR across hidden layers."""
        return spread(self.a, axis=-1)


def train_mlp(setting: MLPSetting, etas, steps: int, lr_schedule=None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-batch GD of the hidden weights of ``setting``'s MLP, one model per LR of ``etas``
    (on :func:`lrtheory.core.gd.run_gd`: a diverged model is frozen, NaN never reaches another);
    ``lr_schedule(t)``, if given, multiplies every LR at step ``t`` (as in ``run_gd``).

    Returns
    -------
    a : ndarray ``(K, T + 1, depth)``
        Per-unit-LR ELRs at each step.
    S : ndarray ``(K, T + 1, depth)``
        Squared norms of the hidden weights.
    loss : ndarray ``(K, T + 1)``
    """
    from lrtheory.core.train import per_model_loss

    etas = V.positive_array(etas, "etas", ndim=1)
    steps = V.nonneg_int(steps, "steps")
    K = len(etas)
    widx = setting.weight_index
    frozen = [p.expand(K, *p.shape[1:]).clone() for p in setting.params]

    def full(P):  # the trained hidden weights in place, everything else frozen at init
        ps = list(frozen)
        for i, W in zip(widx, P):
            ps[i] = W
        return ps

    def record(st):
        a = torch.stack([g.flatten(1).norm(dim=1) / W.flatten(1).norm(dim=1) for g, W in zip(st.grads, st.params)], 1)
        S = torch.stack([W.flatten(1).pow(2).sum(1) for W in st.params], 1)
        return {"a": a, "S": S}

    # the setting's data were validated when it was made (mlp_setting's first loss): no check per step
    res = run_gd(lambda P: per_model_loss(setting.spec, full(P), setting.x, setting.y, "ce", check=False),
                 [frozen[i] for i in widx], etas, steps, record=record, final_grads=True, lr_schedule=lr_schedule)
    return (np.moveaxis(res.records["a"], 0, 1), np.moveaxis(res.records["S"], 0, 1),
            np.moveaxis(res.loss, 0, 1))


@dataclass(frozen=True)
class OneStepScan:
    """Spread after one full-batch SGD step of the MLP, for a grid of LRs.

    Attributes
    ----------
    etas : ndarray ``(K,)``
    spread_before : float
    spread_after : ndarray ``(K,)``
        Measured (new gradients at the new weights).
    model_after : ndarray ``(K,)``
        The model's prediction (gradient scales ``c`` held fixed).
    eta_c : float
        Critical LR of the extreme layers before the step.
    grad_scale_change : ndarray ``(K, depth)``
        Each layer's gradient scale after the step over before it, ``c'/c`` with
        ``c = ||grad|| ||W||`` (the model holds ``c`` fixed: 1 everywhere).
    """

    etas: np.ndarray
    spread_before: float
    spread_after: np.ndarray
    model_after: np.ndarray
    eta_c: float
    grad_scale_change: np.ndarray


@dataclass(frozen=True)
class RampRun:
    """Full-batch GD of the BatchNorm MLP at a geometrically rising LR, ``eta_t = eta_0 r^t``.

    Attributes
    ----------
    etas : ndarray ``(T + 1,)``
        The LR of step ``t`` (the update from ``t`` to ``t + 1``; the last is never applied).
    a : ndarray ``(T + 1, depth)``
        Per-unit-LR ELRs ``||grad|| / ||W||`` of the hidden layers before the update of step ``t``
        (row 0: at init).
    loss : ndarray ``(T + 1,)``
    """

    etas: np.ndarray
    a: np.ndarray
    loss: np.ndarray

    @property
    def spread(self) -> np.ndarray:
        """``(T + 1,)`` max/min ELR across the hidden layers before each step's update."""
        return spread(self.a, axis=-1)


def ramp_mlp(setting: MLPSetting, eta0: float, rate: float, steps: int) -> RampRun:
    """Train ``setting``'s MLP by full-batch GD at the rising LR ``eta_t = eta0 * rate^t``
    (``run_gd``'s ``lr_schedule``), recording the per-unit-LR ELRs before every update.

    Example
    -------
    >>> run = ramp_mlp(mlp_setting(3, 8, 32, device="cpu"), 0.5, 2.0, 3)
    >>> run.a.shape, run.etas.tolist()
    ((4, 3), [0.5, 1.0, 2.0, 4.0])
    """
    eta0 = V.positive_real(eta0, "eta0")
    rate = V.positive_real(rate, "rate")
    steps = V.nonneg_int(steps, "steps")
    a, _, loss = train_mlp(setting, [eta0], steps, lr_schedule=lambda t: rate ** t)
    return RampRun(etas=eta0 * rate ** np.arange(steps + 1, dtype=np.float64), a=a[0], loss=loss[0])


# --------------------------------------------------------------------------- warm-up: torch modules


@dataclass(frozen=True)
class WarmupRun:
    """One momentum-SGD run of a torch module: spread and loss per step, LR per step, and the
    training accuracy at the end."""

    spread: np.ndarray  # (T + 1,), before the update of each step
    lr: np.ndarray  # (T,)
    loss: np.ndarray  # (T + 1,)
    a0: np.ndarray  # per-unit-LR ELRs of the tracked tensors at init
    acc: float  # training accuracy after the last step
    c: Optional[np.ndarray] = None  # (T + 1, L) gradient scales ||grad|| ||W||, when recorded


@dataclass(frozen=True)
class WarmupComparison:
    """SGD on a network with and without :class:`~lrtheory.tools.elr_warmup.ELRWarmup`
    (same target LR).

    Attributes
    ----------
    lr : float
        Target (final) LR.
    momentum : float
    spread_const, spread_warm : ndarray ``(T + 1,)``
        Measured spread at each step (before the update of that step).
    lr_warm : ndarray ``(T,)``
        LR the scheduler chose at each step.
    loss_const, loss_warm : ndarray ``(T + 1,)``
    model_const, model_warm : ndarray ``(T + 1,)``
        The model's spread for the target LR, constant and under the warm-up rule (heavy-ball momentum from
        a zero buffer: :func:`~lrtheory.results.elr.derivation.model_spread_trace`).
    """

    lr: float
    momentum: float
    spread_const: np.ndarray
    spread_warm: np.ndarray
    lr_warm: np.ndarray
    loss_const: np.ndarray
    loss_warm: np.ndarray
    model_const: np.ndarray
    model_warm: np.ndarray


def _run_optimizer(net: torch.nn.Module, ws: List[torch.Tensor], x, y, lr: float, momentum: float, steps: int,
                   warm: bool, record_c: bool = False) -> WarmupRun:
    """Momentum SGD (``torch.optim.SGD``) on the tensors ``ws`` of ``net``, full batch, cross-entropy,
    with :class:`ELRWarmup` when ``warm``; records the spread of ``ws``' ELRs before every update
    (and, with ``record_c``, each tensor's gradient scale ``||grad|| ||W||``)."""
    opt = torch.optim.SGD(ws, lr=lr, momentum=momentum)

    def grad_step():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        return loss.item()

    sched = None
    if warm:
        grad_step()
        sched = ELRWarmup(opt)
    spreads, lrs, losses, a0, cs = [], [], [], None, []
    for t in range(steps + 1):
        losses.append(grad_step())
        a = unit_elrs(ws)
        a0 = np.array(a) if a0 is None else a0
        spreads.append(max(a) / min(a))
        if record_c:
            cs.append([ai * float(W.detach().double().norm()) ** 2 for ai, W in zip(a, ws)])
        if t < steps:
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            if sched is not None:
                sched.step()
    with torch.no_grad():
        acc = float((net(x).argmax(1) == y).double().mean())
    return WarmupRun(spread=np.array(spreads), lr=np.array(lrs), loss=np.array(losses), a0=a0, acc=acc,
                     c=np.array(cs) if record_c else None)


def run_mlp_module(setting: MLPSetting, lr: float, momentum: float, steps: int, warm: bool) -> WarmupRun:
    """Train ``setting``'s MLP as a torch module (hidden weights only) by momentum SGD at ``lr``,
    with or without :class:`ELRWarmup`."""
    from lrtheory.core.mlp import to_module

    net = to_module(setting.spec, list(setting.params), 0)
    for p in net.parameters():
        p.requires_grad_(False)
    Ws = [net.linears[l].weight for l in range(setting.spec.depth)]
    for W in Ws:
        W.requires_grad_(True)
    return _run_optimizer(net, Ws, setting.x, setting.y, lr, momentum, steps, warm)


def make_cnn(channels: int, blocks: int, seed: int, device: DeviceLike = None) -> torch.nn.Sequential:
    """3x3 convolutions (no bias) -> BatchNorm2d (batch statistics, no affine) -> ReLU, ``blocks``
    times, then global average pooling and a frozen linear read-out; He-normal init from ``seed``.

    Example
    -------
    >>> net = make_cnn(4, 2, seed=0, device="cpu")
    >>> net(torch.zeros(3, 1, 8, 8, dtype=torch.float64)).shape
    torch.Size([3, 10])
    """
    channels = V.positive_int(channels, "channels")
    blocks = V.positive_int(blocks, "blocks")
    gen = make_generator(V.nonneg_int(seed, "seed"), "cpu")
    layers, c_in = [], 1
    for _ in range(blocks):
        conv = torch.nn.Conv2d(c_in, channels, 3, padding=1, bias=False, dtype=torch.float64)
        with torch.no_grad():
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen, dtype=torch.float64)
                              * math.sqrt(2.0 / (c_in * 9)))
        layers += [conv, torch.nn.BatchNorm2d(channels, affine=False, track_running_stats=False,
                                              dtype=torch.float64), torch.nn.ReLU()]
        c_in = channels
    readout = torch.nn.Linear(channels, 10, bias=False, dtype=torch.float64)
    with torch.no_grad():
        readout.weight.copy_(torch.randn(readout.weight.shape, generator=gen, dtype=torch.float64)
                             / math.sqrt(channels))
    readout.weight.requires_grad_(False)
    net = torch.nn.Sequential(*layers, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), readout)
    return net.to(resolve_device(device))


def run_cnn(channels: int, blocks: int, n_train: int, lr: float, momentum: float, steps: int, warm: bool,
            device: DeviceLike = None, seed_index: int = 0) -> WarmupRun:
    """Train the BatchNorm CNN (every convolution kernel) on the 8x8 digit images by momentum SGD at
    ``lr``, with or without :class:`ELRWarmup`; init from ``seed_for("elr", "cnn", channels, blocks,
    seed_index)`` (the same network with and without the warm-up)."""
    from lrtheory.core.data import digits

    dev = resolve_device(device)
    data = digits(seed=DATA_SEED, device=dev, n_train=V.positive_int(n_train, "n_train"))
    x = data.x_train.reshape(-1, 1, 8, 8)
    net = make_cnn(channels, blocks, seed_for("elr", "cnn", channels, blocks, seed_index), dev)
    ws = [m.weight for m in net if isinstance(m, torch.nn.Conv2d)]
    return _run_optimizer(net, ws, x, data.y_train, V.positive_real(lr, "lr"),
                          V.in_range(momentum, "momentum", 0.0, 1.0, inclusive=(True, False)),
                          V.nonneg_int(steps, "steps"), warm)


# --------------------------------------------------------------------------- ratios in real networks

#: The normalized networks of ``elr.ratio_converges``.
NET_ARCHS = ("batchnorm", "layernorm", "cnn")


@dataclass(frozen=True)
class RatioTrace:
    """A normalized network trained by full-batch GD (no momentum) at a constant LR.

    Attributes
    ----------
    arch : str
        One of :data:`NET_ARCHS`.
    eta : float
        The constant LR (``mult`` times the critical LR of the extreme layers at init).
    a0 : ndarray ``(L,)``
        Per-unit-LR ELRs ``||grad|| / ||W||`` of the trained tensors at init.
    spread : ndarray ``(T + 1,)``
        ELR spread (max/min across the trained tensors) before the update of each step.
    loss : ndarray ``(T + 1,)``
    c : ndarray ``(T + 1, L)``
        Each tensor's gradient scale ``c = ||grad|| ||W||`` before the update of each step (the
        model holds it fixed).
    """

    arch: str
    eta: float
    a0: np.ndarray
    spread: np.ndarray
    loss: np.ndarray
    c: np.ndarray

    @property
    def c_drift(self) -> np.ndarray:
        """``(T + 1,)`` max/min across tensors of ``c_l(t) / c_l(0)``: how far the layers' gradient
        scales have moved apart since init (1 where the model's premise holds)."""
        return spread(self.c / self.c[0], axis=-1)


def run_net_ratio(arch: str, depth: int, width: int, n_train: int, mult: float, steps: int,
                  device: DeviceLike = None) -> RatioTrace:
    """Train a normalized network of :data:`NET_ARCHS` (MLP: ``depth`` hidden layers of ``width``
    units; CNN: ``depth`` blocks of ``width`` channels) on digits by full-batch GD at
    ``mult / sqrt(a_max a_min)`` (its critical LR at init), recording the ELR spread.

    Example
    -------
    >>> tr = run_net_ratio("layernorm", 2, 8, 32, 0.5, 3, device="cpu")
    >>> tr.spread.shape, tr.a0.shape
    ((4,), (2,))
    """
    arch = V.choice(arch, "arch", NET_ARCHS)
    mult = V.positive_real(mult, "mult")
    steps = V.nonneg_int(steps, "steps")
    dev = resolve_device(device)
    if arch == "cnn":
        from lrtheory.core.data import digits

        data = digits(seed=DATA_SEED, device=dev, n_train=V.positive_int(n_train, "n_train"))
        x, y = data.x_train.reshape(-1, 1, 8, 8), data.y_train
        net = make_cnn(width, depth, seed_for("elr", "ratio_net", arch, depth, width, 0), dev)
        ws = [m.weight for m in net if isinstance(m, torch.nn.Conv2d)]
    else:
        from lrtheory.core.mlp import to_module

        st = mlp_setting(depth, width, n_train, device=dev, norm=arch)
        net = to_module(st.spec, list(st.params), 0)
        for p in net.parameters():
            p.requires_grad_(False)
        ws = [net.linears[l].weight for l in range(st.spec.depth)]
        for W in ws:
            W.requires_grad_(True)
        x, y = st.x, st.y
    net.zero_grad()
    torch.nn.functional.cross_entropy(net(x), y).backward()
    a0 = np.array(unit_elrs(ws))
    eta = mult / math.sqrt(a0.max() * a0.min())
    run = _run_optimizer(net, ws, x, y, eta, 0.0, steps, warm=False, record_c=True)
    return RatioTrace(arch=arch, eta=float(eta), a0=run.a0, spread=run.spread, loss=run.loss, c=run.c)
