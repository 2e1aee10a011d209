"""Curvature of a user's model: the sharpness (top Hessian eigenvalue) of any ``nn.Module``.

Built on the algorithms of :mod:`lrtheory.core.curvature` (HVPs, Lanczos, power iteration).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from lrtheory.core.curvature import _check_tol, _RetainedHVP, lanczos_top_eig, power_iteration_top_eig
from lrtheory.core.device import make_generator

__all__ = ["SHARPNESS_METHODS", "SharpnessResult", "sharpness", "dense_hessian"]

#: Methods accepted by :func:`sharpness`.
SHARPNESS_METHODS = ("lanczos", "power", "eigsh", "dense")


@dataclass(frozen=True)
class SharpnessResult:
    """Top algebraic Hessian eigenvalue of one model (see :func:`sharpness`)."""

    value: float
    n_hvp: int
    method: str
    converged: bool


def _module_closure(model: nn.Module, loss_fn: Callable, inputs, targets):
    if not isinstance(model, nn.Module):
        raise ValueError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if not callable(loss_fn):
        raise ValueError("loss_fn: expected a callable loss_fn(outputs, targets) -> scalar")
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    if not names:
        raise ValueError("model: has no parameter with requires_grad=True")
    params = [p for n, p in model.named_parameters() if p.requires_grad]
    dtypes = {p.dtype for p in params}
    if len(dtypes) != 1:
        raise ValueError(f"model: parameters must share one dtype, got {sorted(map(str, dtypes))}")
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
    shapes = [p.shape for p in params]
    sizes = [p.numel() for p in params]
    ins = inputs if isinstance(inputs, tuple) else (inputs,)

    def loss_of(plist: Sequence[Tensor]) -> Tensor:
        state = dict(zip(names, plist))
        state.update({n: b.clone() for n, b in buffers.items()})
        out = torch.func.functional_call(model, state, ins)
        val = loss_fn(out, targets)
        if not isinstance(val, Tensor) or val.numel() != 1:
            raise ValueError("loss_fn: must return a scalar tensor")
        return val.reshape(())

    def unflatten(flat: Tensor) -> List[Tensor]:
        return [c.view(s) for c, s in zip(torch.split(flat, sizes), shapes)]

    return params, loss_of, unflatten, sum(sizes)


def dense_hessian(model: nn.Module, loss_fn: Callable, inputs, targets) -> Tensor:
    """Dense Hessian ``(P, P)`` of ``loss_fn(model(inputs), targets)`` in the flattened
    order of ``model.named_parameters()`` (those with ``requires_grad``); via
    ``torch.func.jacrev(torch.func.grad(.))``. For small models only (memory ``P^2``).

    Raises
    ------
    ValueError
        On a bad model or loss.
    """
    params, loss_of, unflatten, P = _module_closure(model, loss_fn, inputs, targets)
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    H = torch.func.jacrev(torch.func.grad(lambda th: loss_of(unflatten(th))))(flat)
    return H.detach()


def sharpness(
    model: nn.Module,
    loss_fn: Callable,
    inputs,
    targets,
    *,
    method: str = "lanczos",
    tol: float = 1e-10,
    max_iter: Optional[int] = None,
    seed: int = 0,
) -> SharpnessResult:
    """Sharpness: top **algebraic** eigenvalue of the Hessian of ``loss_fn(model(inputs), targets)``
    with respect to the model's trainable parameters, at their current values.

    Parameters
    ----------
    model : torch.nn.Module
        Any module; its parameters with ``requires_grad`` are the variables. Use
        float64 for checked numbers (the computation runs in the model's dtype).
    loss_fn : callable
        ``loss_fn(outputs, targets) -> scalar tensor``, e.g. ``torch.nn.functional.cross_entropy``.
    inputs : Tensor or tuple of Tensor
        Passed to ``model`` (a tuple is unpacked as positional arguments).
    targets : object
        Passed to ``loss_fn``.
    method : {"lanczos", "power", "eigsh", "dense"}
        Lanczos with full reorthogonalization (default); power iteration with a
        negative-shift fix; SciPy ``eigsh(which="LA")`` on a ``LinearOperator``
        (CPU reference); dense Hessian + ``eigvalsh``.
    tol : float
        Relative tolerance on the Ritz residual (``eigsh``: its ``tol``).
    max_iter : int, optional
        Iteration cap (default: 300 for Lanczos, 5000 for power, ARPACK's default for eigsh).
    seed : int
        Seed of the random start vector.

    Returns
    -------
    SharpnessResult
        ``value`` (float), ``n_hvp`` (HVPs used), ``method``, ``converged``.

    Raises
    ------
    ValueError
        On an unknown method, bad tolerance, a model without trainable parameters,
        or a loss that is not a scalar.

    Example
    -------
    Least squares: the Hessian of ``mean_i (w . x_i + b)^2`` on ``x = I_2`` is
    ``[[1, 0, 1], [0, 1, 1], [1, 1, 2]]``, with eigenvalues 3, 1, 0.

    >>> net = torch.nn.Linear(2, 1).double()
    >>> x = torch.eye(2, dtype=torch.float64); y = torch.zeros(2, 1, dtype=torch.float64)
    >>> round(sharpness(net, torch.nn.functional.mse_loss, x, y).value, 10)
    3.0
    """
    if method not in SHARPNESS_METHODS:
        raise ValueError(f"method: unknown {method!r}; expected one of {SHARPNESS_METHODS}")
    default_iter = {"lanczos": 300, "power": 5000, "eigsh": None, "dense": 1}[method]
    _check_tol(tol, max_iter if max_iter is not None else (default_iter or 1))
    params, loss_of, unflatten, P = _module_closure(model, loss_fn, inputs, targets)
    dtype, device = params[0].dtype, params[0].device
    if method == "dense":
        H = dense_hessian(model, loss_fn, inputs, targets)
        ev = torch.linalg.eigvalsh(H)
        return SharpnessResult(float(ev[-1]), P, "dense", bool(torch.isfinite(ev[-1])))
    op = _RetainedHVP(loss_of, params)

    def matvec(flat: Tensor) -> Tensor:
        return torch.cat([h.reshape(-1) for h in op(unflatten(flat.to(dtype)))])

    g = make_generator(seed, "cpu")
    v0 = torch.randn(P, generator=g, dtype=torch.float64).to(dtype=dtype, device=device)
    if method == "lanczos":
        r = lanczos_top_eig(matvec, v0, tol=tol, max_iter=max_iter or default_iter)
        return SharpnessResult(r.value, r.n_matvec, "lanczos", r.converged)
    if method == "power":
        r = power_iteration_top_eig(matvec, v0, tol=tol, max_iter=max_iter or default_iter)
        return SharpnessResult(r.value, r.n_matvec, "power", r.converged)
    # eigsh: SciPy ARPACK reference on CPU, float64
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    if P == 1:
        val = float(matvec(torch.ones(1, dtype=dtype, device=device))[0])
        return SharpnessResult(val, 1, "eigsh", True)

    def np_matvec(v):
        t = torch.as_tensor(np.asarray(v, dtype=np.float64).reshape(-1), device=device).to(dtype)
        return matvec(t).detach().cpu().numpy().astype(np.float64)

    lin = LinearOperator((P, P), matvec=np_matvec, dtype=np.float64)
    kwargs = {} if max_iter is None else {"maxiter": int(max_iter)}
    try:
        vals = eigsh(lin, k=1, which="LA", tol=tol, v0=v0.detach().cpu().numpy().astype(np.float64),
                     return_eigenvectors=False, **kwargs)
        return SharpnessResult(float(np.max(vals)), op.count, "eigsh", True)
    except ArpackNoConvergence as exc:  # pragma: no cover - rare
        vals = exc.eigenvalues
        val = float(np.max(vals)) if len(vals) else float("nan")
        return SharpnessResult(val, op.count, "eigsh", False)
