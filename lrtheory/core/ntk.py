"""Jacobian curvature: the top eigenvalue of the empirical NTK and of the Gauss-Newton matrix.

:func:`ntk_top_eig` is the one NTK entry point of the library: any ``torch.nn.Module`` on
a batch of inputs, or the K models of a batched core MLP (:mod:`lrtheory.core.mlp`), with
optional per-tensor learning-rate weights.

Normalization
-------------
With ``J`` the ``(m d_out, P)`` Jacobian of the ``m`` examples' outputs (not summed over
outputs) with respect to the ``P`` trainable parameters, ``Theta = J J^T`` is the empirical
NTK Gram matrix. ``normalize="batch"`` (the default) returns the top eigenvalue
``lambda_0`` of ``Theta / m``: the kernel averaged over the ``m`` training examples, as
in Lewkowycz et al. 2020, so that full-batch GD with learning rate ``eta`` on
``L = 1/(2m) sum_i ||f(x_i) - y_i||^2`` moves the outputs by
``f_{t+1} - f_t = -eta (Theta / m) (f_t - y)`` to first order, and the lazy phase ends at
``eta = 2 / lambda_0``. ``normalize="none"`` returns the top eigenvalue of ``Theta``.

For that loss the Gauss-Newton matrix is ``G = J^T J / m``, whose non-zero eigenvalues
are those of ``J J^T / m``: the batch-normalized NTK top eigenvalue **equals** the
Gauss-Newton top eigenvalue (:func:`gauss_newton_top_eig`, tested).

Per-layer learning rates
------------------------
GD with a learning rate ``eta c_p`` on parameter tensor ``p`` moves the outputs with the
kernel ``J diag(c) J^T`` (``c`` repeated over the entries of each tensor): pass
``lr_weights=[c_1, ..., c_P]`` (non-negative), or ``lr_weights="spec"`` for a core MLP to
use the spec's own LR multipliers (:func:`lrtheory.core.mlp.lr_multipliers`: the kernel
that :func:`lrtheory.core.train.train` sees). It is computed as ``J' J'^T`` with
``J' = J diag(sqrt(c))``.

Methods
-------
``"dense"`` builds per-example Jacobians (``torch.func.vmap(jacrev)``) and the Gram matrix,
then ``eigvalsh``: exact, memory ``m d_out P``. ``"lanczos"`` runs Lanczos on
``diag(sqrt c) J^T J diag(sqrt c)`` (same non-zero spectrum) with Jacobian-vector products
built from reverse mode only, no Jacobian in memory. ``"auto"`` picks dense when
``K m d_out P <= 2e7``.

Examples
--------
>>> import torch
>>> from lrtheory.core.mlp import MLPSpec, init_params, to_module
>>> spec = MLPSpec(d_in=3, width=16, depth=1, d_out=1, parametrization="ntk")
>>> P = init_params(spec, 2, seed=0)
>>> x = torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
>>> lam = ntk_top_eig(spec, P, x)                  # (K,): one per model
>>> lam.shape
(2,)
>>> bool(abs(ntk_top_eig(to_module(spec, P, 1), x) - lam[1]) < 1e-10 * lam[1])   # any nn.Module
True
"""
from __future__ import annotations

import math
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor, nn

from lrtheory.core.device import make_generator
from lrtheory.core.lanczos import lanczos_top_eig
from lrtheory.core.mlp import MLPSpec, _check_params, forward, lr_multipliers
from lrtheory.core.train import LOSSES
from lrtheory.core.validate import choice, positive_int, positive_real

__all__ = ["ntk_top_eig", "gauss_newton_top_eig", "NTK_METHODS"]

#: Methods accepted by :func:`ntk_top_eig`.
NTK_METHODS = ("auto", "dense", "lanczos")
_DENSE_LIMIT = 2e7


# ----------------------------------------------------------------------------- stacked parameters
def _flat(ts: Sequence[Tensor]) -> Tensor:
    return torch.cat([t.reshape(t.shape[0], -1) for t in ts], dim=1)


def _unflat_fn(params: Sequence[Tensor]):
    K = params[0].shape[0]
    shapes = [p.shape[1:] for p in params]
    sizes = [int(np.prod(s)) if len(s) else 1 for s in shapes]

    def unflat(V: Tensor) -> List[Tensor]:
        return [c.reshape((K,) + tuple(s)) for c, s in zip(torch.split(V, sizes, dim=1), shapes)]

    return unflat, sum(sizes)


def _check_xy(spec: MLPSpec, params, x, y, loss, need_y=True):
    K = _check_params(spec, params)
    if loss not in LOSSES:
        raise ValueError(f"loss: unknown {loss!r}; expected one of {LOSSES}")
    if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != spec.d_in:
        raise ValueError(f"x: expected shape (N, {spec.d_in}), got {getattr(x, 'shape', type(x))}")
    if x.dtype != params[0].dtype or x.device != params[0].device:
        raise ValueError("x: dtype/device differ from the parameters'")
    if need_y:
        if not isinstance(y, Tensor) or y.shape[0] != x.shape[0]:
            raise ValueError(f"y: expected a tensor with {x.shape[0]} rows, got {getattr(y, 'shape', type(y))}")
        if loss == "ce" and (y.dtype != torch.int64 or y.dim() != 1):
            raise ValueError("y: CE targets must be int64 labels of shape (N,)")
        if loss == "mse" and not (
            (y.dim() == 2 and y.shape[1] == spec.d_out) or (y.dim() == 1 and spec.d_out == 1)
        ):
            raise ValueError(f"y: MSE targets must have shape (N, {spec.d_out})")
    return K


def _batched_start(K: int, n: int, seed: int, dtype, device) -> Tensor:
    # row k is the start vector of model k whatever K is: same seed -> batched == solo
    rows = [torch.randn(n, generator=make_generator((int(seed) * 1_000_003 + k) % 2 ** 63, "cpu"),
                        dtype=torch.float64) for k in range(K)]
    return torch.stack(rows).to(dtype=dtype, device=device)


def _check_lanczos(tol, max_iter) -> None:
    positive_real(tol, "tol")
    positive_int(max_iter, "max_iter")


# ----------------------------------------------------------------------------- Jacobian products
def _jvp_vjp_ops(f: Callable[[List[Tensor]], Tensor], params: Sequence[Tensor]):
    """``J v`` and ``J^T u`` of ``f`` at ``params``, by reverse mode only: ``J^T u`` is a VJP
    through a retained graph, and ``J v = d/du <J^T u, v>`` (the "double-VJP" trick; ``J^T u``
    is linear in ``u``, so one graph built at ``u = 0`` serves every product)."""
    P0 = [p.detach().clone().requires_grad_(True) for p in params]
    with torch.enable_grad():
        out = f(P0)
        u = torch.zeros_like(out, requires_grad=True)
        JTu = torch.autograd.grad(out, P0, grad_outputs=u, create_graph=True, allow_unused=True)
    used = [g is not None for g in JTu]
    JTu_used = [g for g in JTu if g is not None]

    def jvp(V: Sequence[Tensor]) -> Tensor:
        return torch.autograd.grad(JTu_used, u, grad_outputs=[v for v, k in zip(V, used) if k],
                                   retain_graph=True)[0].detach()

    def vjp(U: Tensor) -> List[Tensor]:
        gs = torch.autograd.grad(out, P0, grad_outputs=U, retain_graph=True, allow_unused=True)
        return [torch.zeros_like(p) if g is None else g.detach() for p, g in zip(P0, gs)]

    return out.detach(), jvp, vjp


def _gn_like_top(f, params, apply_out_hessian, sqrt_w, *, tol, max_iter, seed):
    """Lanczos on ``D J^T H_out J D`` (``D = diag(sqrt_w)`` per tensor) for K stacked models."""
    K = params[0].shape[0]
    unflat, n = _unflat_fn(params)
    out, jvp, vjp = _jvp_vjp_ops(f, params)

    def weigh(vs):
        return vs if sqrt_w is None else [v * w for v, w in zip(vs, sqrt_w)]

    def matvec(V: Tensor) -> Tensor:
        Jv = jvp(weigh(unflat(V)))
        return _flat(weigh(vjp(apply_out_hessian(out, Jv))))

    v0 = _batched_start(K, n, seed, params[0].dtype, params[0].device)
    r = lanczos_top_eig(matvec, v0, tol=tol, max_iter=max_iter)
    return np.asarray(r.value, dtype=np.float64), r


def _weights(lr_weights, n_tensors: int, names: Optional[List[str]], spec: Optional[MLPSpec]) -> Optional[List[float]]:
    if lr_weights is None:
        return None
    if isinstance(lr_weights, str):
        if lr_weights != "spec" or spec is None:
            raise ValueError(f"lr_weights: the string form is 'spec' (a core MLP's own LR multipliers), got "
                             f"{lr_weights!r}")
        return [float(c) for c in lr_multipliers(spec)]
    if isinstance(lr_weights, Mapping):
        if names is None:
            raise ValueError("lr_weights: a dict (parameter name -> weight) needs an nn.Module")
        unknown = sorted(set(lr_weights) - set(names))
        if unknown:
            raise ValueError(f"lr_weights: unknown parameter names {unknown}; trainable ones are {names}")
        ws = [lr_weights.get(nm, 1.0) for nm in names]
    else:
        try:
            ws = list(lr_weights)
        except TypeError:
            raise ValueError(f"lr_weights: expected None, 'spec', a sequence or a dict, got {lr_weights!r}") from None
        if len(ws) != n_tensors:
            raise ValueError(f"lr_weights: expected {n_tensors} weights (one per parameter tensor), got {len(ws)}")
    out = []
    for w in ws:
        if isinstance(w, bool) or not isinstance(w, (int, float, np.floating, np.integer)) or not math.isfinite(w) \
                or w < 0:
            raise ValueError(f"lr_weights: expected finite numbers >= 0, got {w!r}")
        out.append(float(w))
    return out


def _dense_top(J: Tensor, scale: float) -> Tensor:
    """Top eigenvalue of ``J J^T * scale`` per model, ``J`` ``(K, rows, P)``; NaN where not finite."""
    G = J @ J.transpose(1, 2) * scale
    bad = ~torch.isfinite(G.flatten(1)).all(dim=1)
    G = torch.where(bad[:, None, None], torch.zeros_like(G), G)
    top = torch.linalg.eigvalsh(G)[:, -1]
    return torch.where(bad, torch.full_like(top, float("nan")), top)


# ----------------------------------------------------------------------------- the entry point
def ntk_top_eig(
    model: Union[MLPSpec, nn.Module],
    params_or_inputs,
    x: Optional[Tensor] = None,
    *,
    lr_weights: Union[None, str, Sequence[float], Mapping[str, float]] = None,
    normalize: str = "batch",
    method: str = "auto",
    tol: float = 1e-10,
    max_iter: int = 300,
    seed: int = 0,
) -> Union[np.ndarray, float]:
    """Top eigenvalue of the empirical NTK Gram matrix (normalization in the module docstring).

    Two forms:

    * ``ntk_top_eig(spec, params, x)``: the K models of a core MLP, returns ``(K,)``;
      ``J`` is taken with respect to the raw tensors of :mod:`lrtheory.core.mlp` (the
      forward multipliers enter ``J``).
    * ``ntk_top_eig(model, inputs)``: any ``torch.nn.Module`` mapping ``(m, ...)`` to
      ``(m,)`` or ``(m, d_out)``, with respect to its parameters with ``requires_grad``;
      returns a float. Buffers are used as they are, the module in its current mode:
      layers that mix examples (BatchNorm in training mode) need ``model.eval()``.

    Parameters
    ----------
    model : MLPSpec or torch.nn.Module
    params_or_inputs : list of Tensor (with a spec) or Tensor ``(m, ...)`` (with a module)
    x : Tensor ``(m, d_in)``
        The inputs (spec form only).
    lr_weights : None, "spec", sequence of float or dict name -> float
        Per-tensor LR weights ``c`` (kernel ``J diag(c) J^T``); None: all 1. A sequence has
        one weight per parameter tensor (the spec's list, or the module's trainable
        parameters in ``named_parameters()`` order); a dict (module only) maps names to
        weights, 1 for names it omits. ``"spec"``: the spec's LR multipliers.
    normalize : "batch" or "none"
        ``Theta / m`` (Lewkowycz et al.'s ``lambda_0``) or ``Theta``.
    method : "auto", "dense" or "lanczos"
    tol, max_iter, seed : Lanczos settings (``seed`` of the start vectors).

    Returns
    -------
    ndarray ``(K,)`` (spec) or float (module)
        NaN for a model whose Jacobian is not finite.

    Raises
    ------
    ValueError
        On bad shapes, an unknown option, bad weights, or a module without trainable
        parameters.
    """
    choice(normalize, "normalize", ("batch", "none"))
    choice(method, "method", NTK_METHODS)
    _check_lanczos(tol, max_iter)
    if isinstance(model, MLPSpec):
        if x is None:
            raise ValueError("x: the spec form is ntk_top_eig(spec, params, x)")
        return _ntk_spec(model, params_or_inputs, x, lr_weights, normalize, method, tol, max_iter, seed)
    if isinstance(model, nn.Module):
        if x is not None:
            raise ValueError("x: the module form is ntk_top_eig(model, inputs); pass the inputs second")
        return _ntk_module(model, params_or_inputs, lr_weights, normalize, method, tol, max_iter, seed)
    raise ValueError(f"model: expected an MLPSpec or a torch.nn.Module, got {type(model).__name__}")


def _ntk_spec(spec, params, x, lr_weights, normalize, method, tol, max_iter, seed) -> np.ndarray:
    K = _check_xy(spec, params, x, None, "mse", need_y=False)
    w = _weights(lr_weights, len(params), None, spec)
    N = x.shape[0]
    _, n = _unflat_fn(params)
    if method == "auto":
        method = "dense" if K * N * spec.d_out * n <= _DENSE_LIMIT else "lanczos"
    scale = 1.0 / N if normalize == "batch" else 1.0
    if method == "dense":
        def f_single(*p):
            return forward(spec, [q.unsqueeze(0) for q in p], x, check=False)[0]  # (N, d_out)

        jac = torch.func.vmap(torch.func.jacrev(f_single, argnums=tuple(range(len(params)))))(
            *[p.detach() for p in params]
        )
        blocks = [j.reshape(K, N * spec.d_out, -1) for j in jac]
        if w is not None:
            blocks = [b * math.sqrt(c) for b, c in zip(blocks, w)]
        return _dense_top(torch.cat(blocks, dim=2), scale).detach().cpu().numpy().astype(np.float64)
    sqrt_w = None if w is None else [math.sqrt(c) for c in w]
    vals, _ = _gn_like_top(lambda P: forward(spec, P, x, check=False), params, lambda out, Jv: Jv * scale, sqrt_w,
                           tol=tol, max_iter=max_iter, seed=seed)
    return vals


def _ntk_module(model: nn.Module, inputs, lr_weights, normalize, method, tol, max_iter, seed) -> float:
    if not isinstance(inputs, Tensor) or inputs.dim() < 1 or inputs.shape[0] < 1:
        raise ValueError("inputs: expected a tensor of shape (m, ...) with m >= 1")
    named = [(k, v) for k, v in model.named_parameters() if v.requires_grad]
    if not named:
        raise ValueError("model: has no parameter with requires_grad=True")
    names = [k for k, _ in named]
    w = _weights(lr_weights, len(named), names, None)
    params: Dict[str, Tensor] = {k: v.detach() for k, v in named}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    m = inputs.shape[0]
    scale = 1.0 / m if normalize == "batch" else 1.0
    n_par = sum(v.numel() for v in params.values())
    if method == "auto":
        with torch.no_grad():
            d_out = torch.func.functional_call(model, (params, buffers), (inputs[:1],)).numel()
        method = "dense" if m * d_out * n_par <= _DENSE_LIMIT else "lanczos"
    if method == "dense":
        def f_single(p, xi):
            return torch.func.functional_call(model, (p, buffers), (xi.unsqueeze(0),)).reshape(-1)

        jac = torch.func.vmap(torch.func.jacrev(f_single), in_dims=(None, 0))(params, inputs)
        blocks = [jac[k].reshape(jac[k].shape[0] * jac[k].shape[1], -1) for k in names]  # (m d_out, numel)
        if w is not None:
            blocks = [b * math.sqrt(c) for b, c in zip(blocks, w)]
        J = torch.cat(blocks, dim=1)
        return float(_dense_top(J.unsqueeze(0), scale)[0])

    def f(P: List[Tensor]) -> Tensor:  # one "model" of the batch of 1: outputs (1, m d_out)
        state = {k: p[0] for k, p in zip(names, P)}
        return torch.func.functional_call(model, (state, buffers), (inputs,)).reshape(1, -1)

    stacked = [params[k].unsqueeze(0) for k in names]
    sqrt_w = None if w is None else [math.sqrt(c) for c in w]
    vals, _ = _gn_like_top(f, stacked, lambda out, Jv: Jv * scale, sqrt_w, tol=tol, max_iter=max_iter, seed=seed)
    return float(vals[0])


def gauss_newton_top_eig(
    spec: MLPSpec,
    params: Sequence[Tensor],
    x: Tensor,
    y: Optional[Tensor] = None,
    *,
    loss: str = "mse",
    tol: float = 1e-10,
    max_iter: int = 300,
    seed: int = 0,
) -> np.ndarray:
    """Top eigenvalue of the Gauss-Newton matrix ``G = J^T H_out J`` of each core MLP, ``(K,)``.

    ``H_out`` is the Hessian of the loss with respect to the outputs: ``I / N`` for
    the 1/2-MSE (so ``G = J^T J / N``, ``y`` unused), and per example
    ``(diag(p) - p p^T) / N`` with ``p = softmax(f(x))`` for CE (``y`` unused too:
    ``H_out`` does not depend on the labels). Lanczos with JVP/VJP products.

    Raises
    ------
    ValueError
        On bad shapes or an unknown loss.
    """
    _check_xy(spec, params, x, None, loss, need_y=False)
    _check_lanczos(tol, max_iter)
    N = x.shape[0]
    if loss == "mse":
        def Hout(out, Jv):
            return Jv / N
    else:
        def Hout(out, Jv):
            p = torch.softmax(out, dim=-1)
            return (p * Jv - p * (p * Jv).sum(-1, keepdim=True)) / N
    vals, _ = _gn_like_top(lambda P: forward(spec, P, x, check=False), params, Hout, None, tol=tol,
                           max_iter=max_iter, seed=seed)
    return vals
