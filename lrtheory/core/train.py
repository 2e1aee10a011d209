"""Train K core MLPs at once, one learning rate each, surviving divergence.

One step for all K models costs one batched forward and backward pass: the
gradient of ``sum_k L_k`` with respect to the stacked parameters is, slice by
slice, each model's own gradient ``dL_k/dtheta_k`` (the models share no
parameter). Without norm layers the backward pass is written out (the operations
autograd would run, in its order, into buffers reused every step: the same bits
as autograd, without its graph and allocations); with norm layers it is autograd. Model ``k`` then takes the step

    ``theta_k <- theta_k - etas[k] * c_p * g_p``  for each parameter tensor ``p``,

with ``c_p`` the spec's LR multiplier (:func:`lrtheory.core.mlp.lr_multipliers`)
times the optional ``layer_lr_mults[l]`` of its layer, and ``g_p`` the gradient
(plus ``weight_decay * p``; with ``momentum`` beta, heavy ball:
``v <- beta v + g``, step ``-eta c v``).

Losses (per model, a mean over the examples of the batch):

* ``"mse"``: ``L = 1/(2N) sum_i ||f(x_i) - y_i||^2``, i.e. **one half** of the
  squared error summed over outputs, averaged over examples (the catapult
  convention of Lewkowycz et al. 2020). Targets ``(N, d_out)`` (or ``(N,)`` when
  ``d_out = 1``); use :func:`lrtheory.core.data.one_hot` for classes.
* ``"ce"``: mean softmax cross-entropy; targets are int64 labels ``(N,)``.

Divergence, per model: at each step ``t`` (before its update) the loss of the
batch is checked. If it is not finite, or exceeds
``divergence_factor * max(L_k(0), 1)`` (``L_k(0)`` the model's first recorded
loss), or if the update would make a parameter non-finite, model ``k`` is marked
``diverged`` at that step ``t`` and **frozen**: its parameters stay at
``theta_t`` (the last finite values) and are never updated again. Its train
loss at step ``t`` is recorded as observed (possibly ``inf``, ``nan`` or huge);
its later train losses, and its other records (accuracies, test loss,
diagnostics) from the moment it is frozen, are ``NaN``. Each model's gradient
is computed from its own slice only (the written-out backward pass works slice by
slice; under autograd the loss is masked with ``torch.where`` before the sum over
models) and updates are applied with ``torch.where``, so a NaN or Inf in one
model never reaches another.

Minibatch SGD (``batch_size``): all K models see the same sequence of batches,
drawn from ``seed``: each epoch is a fresh random permutation of the ``N``
training examples cut into ``N // batch_size`` full batches (the remainder is
dropped). With ``batch_size=None`` it is full-batch GD. Recorded train loss is
always the loss on the full training set (for GD: the loss of the step).

Example
-------
>>> import torch
>>> from lrtheory.core.mlp import MLPSpec, init_params
>>> from lrtheory.core.train import train
>>> spec = MLPSpec(d_in=2, width=16, depth=1, d_out=1)
>>> x = torch.randn(32, 2, dtype=torch.float64); y = x[:, :1] * x[:, 1:]
>>> res = train(spec, init_params(spec, 3), x, y, etas=[0.01, 0.1, 100.0], steps=20)
>>> res.history["loss"].shape, res.diverged.tolist()
((21, 3), [False, False, True])
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from lrtheory.core import aten_ops
from lrtheory.core.device import make_generator
from lrtheory.core import validate as V
from lrtheory.core.gd import run_gd, sgd_update
from lrtheory.core.mlp import (MLPSpec, _backward, _buf, _check_params, _forward, _mults, lr_multipliers,
                               param_layers)

__all__ = [
    "LOSSES",
    "TrainResult",
    "per_model_loss",
    "per_model_accuracy",
    "train",
    "weight_norms",
    "preact_sparsity",
]

#: Supported losses.
LOSSES = ("mse", "ce")

Diagnostic = Callable[[List[Tensor], int], Tensor]


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    history : dict of str -> ndarray
        ``"step"`` ``(T,)`` the recorded step numbers (0 = before the first update,
        ``steps`` = after the last); ``"loss"`` ``(T, K)`` full-train loss;
        ``"train_acc"`` ``(T, K)`` when the targets are classes (CE, or MSE with
        ``d_out > 1`` read by argmax); ``"test_loss"``/``"test_acc"`` when test
        data are given; one entry per diagnostic, ``(T, K)`` or ``(T, K, m)``.
        Entries of a model after its divergence step are NaN.
    params : list of Tensor
        Final parameters (diverged models: their last finite values), detached.
    diverged : ndarray of bool, (K,)
    diverged_step : ndarray of int, (K,)
        Step ``t`` at which the model was frozen (-1 if never): its final parameters
        are ``theta_t``, the last finite ones.
    etas : ndarray, (K,)
    spec : MLPSpec
    """

    history: Dict[str, np.ndarray]
    params: List[Tensor]
    diverged: np.ndarray
    diverged_step: np.ndarray
    etas: np.ndarray
    spec: MLPSpec

    @property
    def final_loss(self) -> np.ndarray:
        """Last recorded train loss ``(K,)`` (NaN for diverged models)."""
        return self.history["loss"][-1]


def _targets_are_classes(spec: MLPSpec, y: Tensor, loss: str) -> bool:
    return loss == "ce" or (spec.d_out > 1 and y.dim() == 2)


def per_model_loss(spec: MLPSpec, params: Sequence[Tensor], x: Tensor, y: Tensor, loss: str = "mse", *,
                   check: bool = True) -> Tensor:
    """Loss of each model on ``(x, y)``, shape ``(K,)`` (conventions in the module docstring).

    Parameters
    ----------
    spec, params : see :func:`lrtheory.core.mlp.forward`
    x : Tensor ``(N, d_in)``
    y : Tensor
        MSE: ``(N, d_out)`` or ``(N,)`` when ``d_out == 1``; CE: int64 labels ``(N,)``.
    loss : "mse" or "ce"
    check : bool
        Validate the arguments (a ValueError naming the bad one); False in an inner loop whose
        arguments were validated once.
    """
    if check:
        _check_data(spec, params, x, y, loss)
    out = _forward(spec, params, x, False, None)  # forward(..., check=False): validated above
    return _loss_from_out(out, y, loss)


def _loss_from_out(out: Tensor, y: Tensor, loss: str) -> Tensor:
    if loss == "mse":
        yy = y if y.dim() == 2 else y.unsqueeze(1)
        return _loss_total((out - yy).pow(2), loss)
    logp = torch.log_softmax(out, dim=-1)  # (K, N, C)
    idx = y.unsqueeze(1).unsqueeze(0).expand(logp.shape[0], -1, 1)  # the labels (N,) as (K, N, 1)
    return _loss_total(logp.gather(-1, idx).squeeze(-1), loss)


def _loss_terms(out: Tensor, y: Tensor, loss: str, ws: Optional[dict]):
    # _loss_from_out's operations up to its reductions (the per-example terms: squares (K, N, d_out)
    # or log-likelihoods (K, N)), keeping what the output gradient needs (in buffers of ws). Without
    # ws (the compiled step) log_softmax is ATen's own, behind aten_ops: the same bits compiled
    if loss == "mse":
        yy = y if y.dim() == 2 else y.unsqueeze(1)
        d = torch.sub(out, yy, out=_buf(ws, "d", out.shape, out))
        sq = torch.pow(d, 2, out=_buf(ws, "sq", out.shape, out))  # d.pow(2), into a buffer
        return sq, (d, ws)
    logp = torch.log_softmax(out, dim=-1) if ws is not None else aten_ops.log_softmax(out)  # (K, N, C)
    idx = y.unsqueeze(1).unsqueeze(0).expand(logp.shape[0], -1, 1)  # the labels (N,) as (K, N, 1)
    return logp.gather(-1, idx).squeeze(-1), (logp, idx, ws)


def _loss_total(terms: Tensor, loss: str) -> Tensor:
    # the losses' reductions of their per-example terms, for every path (_loss_from_out under
    # autograd, the buffered eager step, the compiled step's caller): eager ATen always, so the same
    # kernels and bits, and no operator call out of compiled code
    return 0.5 * terms.sum(2).mean(1) if loss == "mse" else -terms.mean(1)


def _mse_scale(K: int, N: int, like: Tensor) -> Tensor:
    # d(sum_k L_k)/d(sum of squares) of 1/2-MSE, as autograd computes it: (1 * 0.5) / N, as (K, 1, 1)
    return ((torch.ones(K, dtype=like.dtype, device=like.device) * 0.5) / N).view(K, 1, 1)


def _output_grad(ctx, loss: str) -> Tensor:
    """d(sum_k L_k)/d out, by autograd's operations for _loss_from_out (bit-identical)."""
    if loss == "mse":
        d, ws = ctx
        K, N = d.shape[0], d.shape[1]
        # sum -> mul 0.5 -> mean over N (divide) -> sum over outputs (expand) -> pow 2: grad * (2 d^1)
        if ws is None:  # a compiled step: no buffers (the compiler fuses these products)
            return (d * 2.0) * _mse_scale(K, N, d)
        sig = (K, N, d.dtype, d.device)
        if ws.get("mse_c", (None,))[0] != sig:  # the same values, computed once per shape
            ws["mse_c"] = (sig, _mse_scale(K, N, d))
        g = torch.mul(d, 2.0, out=d)  # d^1 = d exactly; d is not read again: in place
        return g.mul_(ws["mse_c"][1])
    logp, idx, ws = ctx
    K, N = logp.shape[0], logp.shape[1]
    # sum -> neg -> mean over N -> unsqueeze -> gather's scatter_add -> log_softmax's backward
    c = torch.ones(K, dtype=logp.dtype, device=logp.device).neg() / N
    src = c.view(K, 1).expand(K, N).contiguous().unsqueeze(-1)
    g = torch.zeros_like(logp).scatter_add_(-1, idx, src)
    if ws is None:  # the compiled step: ATen's kernel (its reduction's order)
        return aten_ops.log_softmax_backward(g, logp)
    return torch._log_softmax_backward_data(g, logp, -1, logp.dtype)


def per_model_accuracy(spec: MLPSpec, params: Sequence[Tensor], x: Tensor, y: Tensor, *,
                       check: bool = True) -> Tensor:
    """Fraction of correct argmax predictions per model ``(K,)``; ``y`` int64 labels ``(N,)`` or
    one-hot / score targets ``(N, d_out)`` (read by argmax). ``check``: as in :func:`per_model_loss`."""
    if check:  # labels are CE targets, scores MSE targets
        _check_data(spec, params, x, y, "ce" if isinstance(y, Tensor) and y.dim() == 1 else "mse")
    out = _forward(spec, params, x, False, None)  # forward(..., check=False): validated above
    return _acc_from_out(out, y)


def _acc_from_out(out: Tensor, y: Tensor) -> Tensor:
    labels = y.argmax(1) if y.dim() == 2 else y
    return (out.argmax(-1) == labels).to(out.dtype).mean(1)


def weight_norms(spec: MLPSpec) -> Diagnostic:
    """Diagnostic factory: Frobenius norm of each weight matrix, ``(K, depth + 1)``.

    Example
    -------
    >>> from lrtheory.core.mlp import MLPSpec, init_params
    >>> spec = MLPSpec(d_in=2, width=4, depth=2, d_out=1)
    >>> weight_norms(spec)(init_params(spec, 3), 0).shape   # as diagnostics={"wnorm": weight_norms(spec)}
    torch.Size([3, 3])
    """
    idx = [i for i, layer in enumerate(param_layers(spec)) if i == 0 or param_layers(spec)[i - 1] != layer]

    def _diag(params, step):
        return torch.stack([params[i].flatten(1).norm(dim=1) for i in idx], dim=1)

    return _diag


def preact_sparsity(spec: MLPSpec, x: Tensor) -> Diagnostic:
    """Diagnostic factory: fraction of negative pre-activations per hidden layer on ``x``,
    ``(K, depth)`` (the sparsity measure of Meltzer & Liu)."""

    def _diag(params, step):
        _, z = _forward(spec, params, x, True, None)  # forward(..., return_preacts=True, check=False)
        return torch.stack([(zz < 0).to(zz.dtype).mean(dim=(-1, -2)) for zz in z], dim=1)

    return _diag


def _step(spec: MLPSpec, mults: tuple, loss: str, momentum: float, weight_decay: float, P, x, y, H, vel):
    # one whole GD step of the K models, the operations of train's eager step (forward, the written-out
    # backward, the update, the finiteness test) without buffers: what torch.compile fuses
    saved: list = []
    out = _forward(spec, P, x, False, saved, None, mults)
    terms, ctx = _loss_terms(out, y, loss, None)
    grads = _backward(spec, P, saved, _output_grad(ctx, loss), None, mults)
    new, new_vel, finite = sgd_update(P, grads, H, vel, momentum=momentum, weight_decay=weight_decay)
    return terms, out, new, new_vel, finite


_COMPILED: Dict[tuple, Callable] = {}
_RECOMPILE_LIMIT = 1024


def _compiled_step(spec: MLPSpec, loss: str, momentum: float, weight_decay: float) -> Callable:
    """``_step`` for one configuration under ``torch.compile``, made once per process and configuration.

    Inductor fuses the element-wise work (ReLU and its backward, the loss's differences, the update
    and its finiteness sums) into generated C++ loops, the wrapper too (``cpp_wrapper``); the products
    stay the same ATen ``bmm`` calls on the same layouts, the gradients' reductions are ATen's own
    (:mod:`lrtheory.core.aten_ops`), the loss's terms are returned for the caller to reduce eagerly
    (``_loss_total``), and the fused loops round as the eager operations do (inductor compiles with
    ``-ffp-contract=off``). Shapes are static: a new shape is a new compile (seconds). A
    configuration's function is reused across calls (no new compile).
    """
    key = (spec, loss, momentum, weight_decay)
    fn = _COMPILED.get(key)
    if fn is None:
        mults = _mults(spec)

        def step(P, x, y, H, vel):
            return _step(spec, mults, loss, momentum, weight_decay, P, x, y, H, vel)

        fn = _COMPILED[key] = torch.compile(step, dynamic=False, options={"cpp_wrapper": True})
    return fn


def _fused_step(cstep: Callable, x: Tensor, y: Tensor, loss: str) -> Callable:
    # run_gd's fused_step: the compiled step on the full data or on the step's batch, its loss terms
    # reduced by the eager step's own kernels
    def fused(P, batch, H, vel):
        xb, yb = (x, y) if batch is None else batch
        terms, out, new, new_vel, finite = cstep(P, xb, yb, H, vel)
        return _loss_total(terms, loss), out, new, new_vel, finite

    return fused


def _as_etas(etas, K: int, dtype, device) -> Tensor:
    if isinstance(etas, Tensor):
        etas = etas.detach().cpu().numpy()
    try:
        e = torch.as_tensor(np.asarray(etas, dtype=np.float64).reshape(-1), dtype=dtype, device=device)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"etas: expected a sequence of {K} positive numbers, got {etas!r}") from exc
    if e.numel() == 1 and K > 1:
        e = e.expand(K).clone()
    if e.numel() != K:
        raise ValueError(f"etas: expected {K} learning rates (one per model), got {e.numel()}")
    if not bool(torch.isfinite(e).all()) or bool((e <= 0).any()):
        raise ValueError(f"etas: every learning rate must be positive and finite, got {e.tolist()}")
    return e


def train(
    spec: MLPSpec,
    params: Sequence[Tensor],
    x: Tensor,
    y: Tensor,
    etas,
    steps: int,
    *,
    loss: str = "mse",
    batch_size: Optional[int] = None,
    seed: int = 0,
    x_test: Optional[Tensor] = None,
    y_test: Optional[Tensor] = None,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    record_every: int = 1,
    diagnostics: Optional[Mapping[str, Diagnostic]] = None,
    divergence_factor: float = 1e6,
    layer_lr_mults: Optional[Sequence[float]] = None,
    callback: Optional[Callable[[int, List[Tensor], Tensor, Tensor], None]] = None,
    compile: bool = False,
) -> TrainResult:
    """Train K models with GD / SGD, each at its own learning rate.

    Parameters
    ----------
    spec : MLPSpec
    params : list of Tensor
        Initial parameters with leading axis K (not modified in place).
    x : Tensor ``(N, d_in)``
        Training inputs, shared by the K models.
    y : Tensor
        Targets: MSE ``(N, d_out)`` (or ``(N,)`` if ``d_out == 1``); CE int64 ``(N,)``.
    etas : float or sequence of K floats
        Learning rates, positive and finite (a scalar is used for every model).
    steps : int
        Number of updates (>= 0).
    loss : "mse" or "ce"
        See the module docstring (MSE carries the factor 1/2).
    batch_size : int or None
        None: full-batch GD; else minibatch SGD with this batch size (<= N).
    seed : int
        Seed of the batch order (SGD).
    x_test, y_test : Tensor, optional
        Test data, recorded as ``test_loss`` (and ``test_acc`` for classes).
    momentum : float in [0, 1)
        Heavy-ball coefficient.
    weight_decay : float >= 0
        L2 coefficient added to the gradient (``g + wd * theta``).
    record_every : int
        Record every this many steps (step ``steps`` is always recorded).
    diagnostics : dict name -> callable(params, step) -> Tensor ``(K,)`` or ``(K, m)``
        Evaluated at each recorded step on the current parameters.
    divergence_factor : float > 1
        A model diverges when its loss exceeds ``divergence_factor * max(L_k(0), 1)``.
    layer_lr_mults : sequence of ``depth + 1`` floats, optional
        Extra per-layer LR multipliers (on top of the spec's).
    callback : callable(step, params, loss, active), optional
        Called before each update with the current params, batch loss ``(K,)`` and
        the bool mask of models still training (for custom records; must not modify them).
    compile : bool
        Run each step (forward, backward, update, finiteness test) as one function compiled by
        ``torch.compile`` (networks without norm layers; needs a C++ compiler, as inductor does).
        The same operations as the eager step, so the same run to the bit (parameters, losses,
        divergence steps, records: ``tests/test_train_compiled.py``): the products are the same
        ATen calls, every reduction ATen's own (:mod:`lrtheory.core.aten_ops`; the loss reduced
        eagerly), the fused element-wise loops round as the eager kernels do. The first call for
        a new configuration or shape compiles it (seconds); later calls in the process reuse it.
        Worth it for long runs: ~5-15 % less time per step on CPU (benchmarks/README.md).

    Returns
    -------
    TrainResult

    Raises
    ------
    ValueError
        On a bad argument (message names it): wrong shapes, non-positive or
        non-finite LR, unknown loss, ``batch_size`` out of range, ...

    Example
    -------
    See the module docstring.
    """
    K, N = _check_data(spec, params, x, y, loss)
    dtype, device = params[0].dtype, params[0].device
    if not isinstance(compile, bool):
        raise ValueError(f"compile: expected True or False, got {compile!r}")
    if compile and spec.norm is not None:
        raise ValueError(f"compile: the compiled step covers networks without norm layers (norm={spec.norm!r})")
    if (x_test is None) != (y_test is None):
        raise ValueError("x_test: x_test and y_test must be given together")
    if x_test is not None:
        if not isinstance(x_test, Tensor) or x_test.dim() != 2 or x_test.shape[1] != spec.d_in:
            raise ValueError(f"x_test: expected shape (M, {spec.d_in}), got {getattr(x_test, 'shape', None)}")
        if x_test.dtype != dtype or x_test.device != device:
            raise ValueError("x_test: dtype/device differ from the parameters'")
        _check_targets(spec, y_test, x_test.shape[0], loss, "y_test", dtype, device)
    steps = V.nonneg_int(steps, "steps")
    record_every = V.positive_int(record_every, "record_every")
    if batch_size is not None:
        batch_size = V.integer(batch_size, "batch_size", minimum=1, maximum=N)
    # momentum: run_gd checks it (the same range [0, 1), the same message)
    weight_decay = V.nonneg_real(weight_decay, "weight_decay")
    if not V.real(divergence_factor, "divergence_factor", allow_inf=True) > 1:
        raise ValueError(f"divergence_factor: expected a number > 1, got {divergence_factor!r}")
    eta = _as_etas(etas, K, dtype, device)
    mults = lr_multipliers(spec)
    layers = param_layers(spec)
    if layer_lr_mults is not None:
        try:
            lm = np.asarray(layer_lr_mults, dtype=np.float64)
        except (TypeError, ValueError) as exc:  # strings, ragged lists
            raise ValueError(f"layer_lr_mults: expected {spec.n_layers} positive finite numbers, got "
                             f"{layer_lr_mults!r}") from exc
        if lm.ndim > 1:  # a nested list is not read flat
            raise ValueError(f"layer_lr_mults: expected a flat sequence of {spec.n_layers} numbers, got shape "
                             f"{lm.shape}")
        lm = lm.reshape(-1)
        if lm.size != spec.n_layers or not np.all(np.isfinite(lm)) or np.any(lm <= 0):
            raise ValueError(
                f"layer_lr_mults: expected {spec.n_layers} positive finite numbers, got {lm.tolist()}"
            )
        mults = [m * float(lm[l]) for m, l in zip(mults, layers)]
    diagnostics = dict(diagnostics or {})
    for name in diagnostics:
        if name in ("step", "loss", "train_acc", "test_loss", "test_acc"):
            raise ValueError(f"diagnostics: name {name!r} is reserved")

    classes = _targets_are_classes(spec, y, loss)

    gen = make_generator(seed, "cpu") if batch_size is not None else None
    perm: List[Tensor] = []

    def next_batch(t: int):
        nonlocal perm
        if not perm:
            order = torch.randperm(N, generator=gen, device="cpu")
            perm = [order[i * batch_size:(i + 1) * batch_size].to(device) for i in range(N // batch_size)][::-1]
        idx = perm.pop()
        return x.index_select(0, idx), y.index_select(0, idx)

    def loss_on(P, xb, yb):
        out = _forward(spec, P, xb, False, None)  # inputs validated above
        return _loss_from_out(out, yb, loss), out

    # networks without norm layers: the closed-form gradient (the same operations as autograd, so
    # the same bits; no graph, no engine), from what the step's forward pass kept
    closed_form = spec.norm is None
    kept: Dict[str, object] = {}
    ws: dict = {}  # the step's buffers, reused every step (the same shapes every step)

    def step_loss(P, batch=None):
        xb, yb = (x, y) if batch is None else batch
        if not closed_form:
            return loss_on(P, xb, yb)
        saved: list = []
        out = _forward(spec, P, xb, False, saved, ws)
        terms, ctx = _loss_terms(out, yb, loss, ws)
        kept.update(saved=saved, ctx=ctx)
        return _loss_total(terms, loss), out

    def grad_fn(P, batch=None):
        # run_gd calls grad_fn once after each call of loss_fn, on the same parameters and batch (its
        # documented contract; train asks for no final gradient): the last forward pass is this one's
        g_out = _output_grad(kept["ctx"], loss)
        grads = _backward(spec, P, kept["saved"], g_out, ws)
        kept.clear()
        return grads

    def full_loss(P):
        return loss_on(P, x, y)

    def rec(s):
        out = {}
        if classes:
            if s.eval_aux is not None:
                o = s.eval_aux
            elif s.batch is None:  # full-batch GD: the step's own outputs are on all of x
                o = s.aux
            else:  # a minibatch step recorded without the full-data evaluation (the run ends early)
                o = _forward(spec, s.params, x, False, None)
            out["train_acc"] = _acc_from_out(o.detach(), y)
        if x_test is not None:
            out_t = _forward(spec, s.params, x_test, False, None)
            out["test_loss"] = _loss_from_out(out_t, y_test, loss)
            if classes:
                out["test_acc"] = _acc_from_out(out_t, y_test)
        for name, fn in diagnostics.items():
            v = torch.as_tensor(fn(s.params, s.step), device=device)
            if v.shape[:1] != (K,):
                raise ValueError(f"diagnostics: {name!r} returned shape {tuple(v.shape)}, expected (K, ...)")
            out[name] = v
        return out

    def cb(s):
        callback(s.step, s.params, s.loss, s.active)

    fused = _fused_step(_compiled_step(spec, loss, momentum, weight_decay), x, y, loss) if compile else None

    # every configuration and shape is one more compiled entry of the same function: lift dynamo's
    # per-function limit (8; beyond it the step would silently run eagerly) while this run compiles
    with torch._dynamo.config.patch(recompile_limit=_RECOMPILE_LIMIT) if compile else contextlib.nullcontext():
        res = run_gd(
            step_loss, list(params), eta, steps, grad_fn=grad_fn if closed_form else None,
            lr_mults=mults, momentum=momentum, weight_decay=weight_decay,
            batches=next_batch if batch_size is not None else None,
            eval_fn=full_loss if batch_size is not None else None,
            record=rec if (classes or x_test is not None or diagnostics) else None,
            record_every=record_every, divergence_factor=divergence_factor,
            callback=cb if callback is not None else None, fused_step=fused,
        )
    # the record schedule of train: every record_every steps and the last; run_gd also records
    # the step where it ends early (every model diverged): keep the schedule, pad with NaN
    schedule = np.array(sorted(set(range(0, steps + 1, record_every)) | {steps}), dtype=np.int64)
    keep = np.isin(res.step, schedule)
    hist: Dict[str, np.ndarray] = {"step": schedule, "loss": _pad(res.loss[keep], schedule.size)}
    for name in (["train_acc"] if classes else []) + (["test_loss"] + (["test_acc"] if classes else [])
                                                      if x_test is not None else []) + list(diagnostics):
        hist[name] = _pad(res.records[name][keep], schedule.size)
    diverged_step = np.where(res.diverged, res.stop_step, -1).astype(np.int64)
    return TrainResult(
        history=hist,
        params=res.params,
        diverged=res.diverged,
        diverged_step=diverged_step,
        etas=eta.cpu().numpy(),
        spec=spec,
    )


def _pad(a: np.ndarray, n: int) -> np.ndarray:
    if a.shape[0] == n:
        return a
    return np.concatenate([a, np.full((n - a.shape[0],) + a.shape[1:], np.nan, dtype=a.dtype)])


def _check_data(spec: MLPSpec, params: Sequence[Tensor], x, y, loss: str):
    # params, the loss's name, the inputs x (N, d_in) and the targets y: (K, N), or a ValueError naming one
    K = _check_params(spec, params)
    if loss not in LOSSES:
        raise ValueError(f"loss: unknown {loss!r}; expected one of {LOSSES}")
    if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != spec.d_in:
        raise ValueError(f"x: expected a tensor of shape (N, {spec.d_in}), got {getattr(x, 'shape', type(x))}")
    dtype, device = params[0].dtype, params[0].device
    if x.dtype != dtype or x.device != device:
        raise ValueError(f"x: dtype/device {x.dtype}/{x.device} differ from the parameters' {dtype}/{device}")
    _check_targets(spec, y, x.shape[0], loss, "y", dtype, device)
    return K, x.shape[0]


def _check_targets(spec: MLPSpec, y, N: int, loss: str, name: str, dtype, device) -> None:
    if not isinstance(y, Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(y).__name__}")
    if y.device != device:
        raise ValueError(f"{name}: device {y.device} differs from the parameters' {device}")
    if loss == "ce":
        if y.dim() != 1 or y.shape[0] != N or y.dtype != torch.int64:
            raise ValueError(f"{name}: CE targets must be int64 labels of shape ({N},), got {y.dtype} {tuple(y.shape)}")
        if N and (int(y.min()) < 0 or int(y.max()) >= spec.d_out):
            raise ValueError(f"{name}: labels must lie in [0, {spec.d_out})")
    else:
        ok_shape = (y.dim() == 2 and tuple(y.shape) == (N, spec.d_out)) or (
            y.dim() == 1 and spec.d_out == 1 and y.shape[0] == N
        )
        if not ok_shape:
            raise ValueError(f"{name}: MSE targets must have shape ({N}, {spec.d_out}), got {tuple(y.shape)}")
        if y.dtype != dtype:
            raise ValueError(f"{name}: dtype {y.dtype} differs from the parameters' {dtype}")
