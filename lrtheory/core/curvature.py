"""Curvature of the loss: Hessian-vector products, dense Hessians, batched sharpness.

The *sharpness* is the largest **algebraic** eigenvalue ``lambda_1`` of the Hessian of
the training loss with respect to the parameters. Hessians of non-convex losses have
negative eigenvalues; the algorithms of :mod:`lrtheory.core.lanczos` (Lanczos, power
iteration with the negative-shift fix, ARPACK's ``eigsh(which="LA")``) find the top
algebraic one.

This module holds the Hessian operators and the batched sharpness of core MLPs; the
sharpness of a user's ``nn.Module`` over a data set is the tool
:func:`lrtheory.sharpness` (:mod:`lrtheory.tools.hessian`), built on these pieces.

* :func:`hvp`: one Hessian-vector product of a scalar function (reverse over reverse).
* :func:`module_hvp`: the Hessian of ``loss_fn(model(inputs), targets)`` of any
  ``nn.Module`` as a matvec on flat vectors, for the algorithms of
  :mod:`lrtheory.core.lanczos`; :func:`dense_hessian` the dense matrix (small models,
  the reference of the tests).
* :func:`batched_sharpness`: the K models of a core MLP at once. The models share no
  parameters, so the Hessian of ``sum_k L_k`` is block diagonal and one HVP of the sum
  with stacked vectors is K independent HVPs; Lanczos runs one Krylov space per model
  in lock step.
* The NTK and Gauss-Newton top eigenvalues are in :mod:`lrtheory.core.ntk`
  (:func:`ntk_top_eig`, :func:`gauss_newton_top_eig`, re-exported here).

``n_hvp`` counts Hessian-vector products per model (a batched HVP of K models counts once).

Example
-------
>>> import torch
>>> from lrtheory.core.lanczos import lanczos_top_eig
>>> net = torch.nn.Linear(2, 1).double()
>>> x = torch.eye(2, dtype=torch.float64); y = torch.zeros(2, 1, dtype=torch.float64)
>>> H = module_hvp(net, torch.nn.functional.mse_loss, x, y)   # Hessian [[1,0,1],[0,1,1],[1,1,2]]
>>> round(lanczos_top_eig(H.matvec, H.n, dtype=H.dtype).value, 10)
3.0
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from lrtheory.core.lanczos import (EigResult, _check_tol, eigsh_top_eig, lanczos_top_eig,  # noqa: F401 - re-exported
                                   power_iteration_top_eig)
from lrtheory.core.mlp import MLPSpec, forward
from lrtheory.core.ntk import (_batched_start, _check_xy, _flat, _unflat_fn, gauss_newton_top_eig,  # noqa: F401
                               ntk_top_eig)
from lrtheory.core.train import _loss_from_out

__all__ = [
    "BatchedSharpnessResult",
    "ModuleHVP",
    "hvp",
    "module_hvp",
    "dense_hessian",
    "batched_sharpness",
    # re-exported from lrtheory.core.lanczos and lrtheory.core.ntk
    "EigResult",
    "lanczos_top_eig",
    "power_iteration_top_eig",
    "eigsh_top_eig",
    "ntk_top_eig",
    "gauss_newton_top_eig",
]


@dataclass(frozen=True)
class BatchedSharpnessResult:
    """Per-model sharpness of a batch of core MLPs: ``values`` and ``converged`` ``(K,)``."""

    values: np.ndarray
    n_hvp: int
    method: str
    converged: np.ndarray


# ----------------------------------------------------------------------------- HVP
def hvp(f: Callable, params: Tuple[Tensor, ...], v: Tuple[Tensor, ...]) -> Tuple[Tensor, ...]:
    """Hessian-vector product ``H(params) v`` of a scalar function, reverse-over-reverse
    (``torch.func.vjp`` of ``torch.func.grad``; the Hessian is symmetric, so ``v^T H = H v``).

    Forward-mode AD is avoided on purpose: its first use in a process makes torch
    compile decompositions through the deprecated ``torch.jit.script`` (a warning).

    Parameters
    ----------
    f : callable
        ``f(params) -> scalar tensor``, ``params`` a tuple of tensors.
    params, v : tuple of Tensor
        Point and direction (same shapes).

    Returns
    -------
    tuple of Tensor
        ``H v`` with the shapes of ``params``.

    Example
    -------
    >>> f = lambda p: (p[0] ** 3).sum()
    >>> hvp(f, (torch.tensor([1.0, 2.0]),), (torch.tensor([1.0, 0.0]),))[0]
    tensor([6., 0.])
    """
    params, v = tuple(params), tuple(v)
    _, vjp_fn = torch.func.vjp(torch.func.grad(f), params)
    return tuple(vjp_fn(v)[0])


class _RetainedHVP:
    """Repeated HVPs at a fixed point: one forward + backward with ``create_graph``,
    then each product is one double-backward through the retained graph."""

    def __init__(self, loss_of: Callable[[List[Tensor]], Tensor], params: Sequence[Tensor]):
        self.params = [p.detach().clone().requires_grad_(True) for p in params]
        with torch.enable_grad():
            loss = loss_of(self.params)
            self.grads = torch.autograd.grad(loss, self.params, create_graph=True, allow_unused=True)
        self.grads = [torch.zeros_like(p) if g is None else g for p, g in zip(self.params, self.grads)]
        self.count = 0

    def __call__(self, vs: Sequence[Tensor]) -> List[Tensor]:
        self.count += 1
        needs = [g.requires_grad for g in self.grads]
        if not any(needs):  # loss linear in every parameter
            return [torch.zeros_like(v) for v in vs]
        outs = torch.autograd.grad(
            [g for g, r in zip(self.grads, needs) if r],
            self.params,
            grad_outputs=[v for v, r in zip(vs, needs) if r],
            retain_graph=True,
            allow_unused=True,
        )
        return [torch.zeros_like(p) if o is None else o.detach() for p, o in zip(self.params, outs)]


# ----------------------------------------------------------------------------- any nn.Module
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


class ModuleHVP:
    """The Hessian of a module's loss at its current parameters, as a matvec on flat vectors.

    Made by :func:`module_hvp`. ``matvec(v)`` takes and returns ``(n,)`` tensors in the
    flattened order of ``model.named_parameters()`` (those with ``requires_grad``);
    ``count`` counts the products so far.

    Attributes
    ----------
    n : int
        Number of trainable parameters.
    dtype, device
        Of the parameters (``matvec`` computes in them).
    """

    def __init__(self, model: nn.Module, loss_fn: Callable, inputs, targets):
        params, loss_of, self._unflatten, self.n = _module_closure(model, loss_fn, inputs, targets)
        self.dtype, self.device = params[0].dtype, params[0].device
        self._op = _RetainedHVP(loss_of, params)

    @property
    def count(self) -> int:
        return self._op.count

    def matvec(self, flat: Tensor) -> Tensor:
        return torch.cat([h.reshape(-1) for h in self._op(self._unflatten(flat.to(self.dtype)))])


def module_hvp(model: nn.Module, loss_fn: Callable, inputs, targets) -> ModuleHVP:
    """Hessian of ``loss_fn(model(inputs), targets)`` w.r.t. the trainable parameters, as an operator.

    One forward and backward pass with ``create_graph``, then each product is a
    double-backward through the retained graph. The model is evaluated through
    ``torch.func.functional_call`` in its current mode, with copies of its buffers
    (BatchNorm running statistics are left untouched).

    Parameters
    ----------
    model : torch.nn.Module
    loss_fn : callable ``(outputs, targets) -> scalar tensor``
    inputs : Tensor or tuple of Tensor
        Passed to ``model`` (a tuple is unpacked as positional arguments).
    targets : object
        Passed to ``loss_fn``.

    Returns
    -------
    ModuleHVP

    Raises
    ------
    ValueError
        On a model without trainable parameters, mixed dtypes, or a loss that is not a scalar.
    """
    return ModuleHVP(model, loss_fn, inputs, targets)


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


# ----------------------------------------------------------------------------- core MLPs, batched
def batched_sharpness(
    spec: MLPSpec,
    params: Sequence[Tensor],
    x: Tensor,
    y: Tensor,
    *,
    loss: str = "mse",
    method: str = "lanczos",
    tol: float = 1e-10,
    max_iter: Optional[int] = None,
    seed: int = 0,
    return_info: bool = False,
):
    """Sharpness of each of the K core MLPs on ``(x, y)`` (loss conventions of
    :mod:`lrtheory.core.train`: MSE with the factor 1/2, or mean CE).

    Parameters
    ----------
    spec, params : the batch of models (leading axis K)
    x : Tensor ``(N, d_in)``
    y : Tensor
        Targets as in :func:`lrtheory.core.train.train`.
    loss : "mse" or "ce"
    method : "lanczos" or "power"
    tol : float
        Relative tolerance on the Ritz residual (:mod:`lrtheory.core.lanczos`).
    max_iter : int, optional
        Iteration cap (default: 300 for Lanczos, 5000 for power iteration).
    seed : int
        Seed of the start vectors: model ``k``'s depends on ``(seed, k)`` only, so a model
        gets the same start alone or in a batch.
    return_info : bool
        Return a :class:`BatchedSharpnessResult` instead of the values.

    Returns
    -------
    ndarray ``(K,)`` (or BatchedSharpnessResult)
        NaN for models whose loss or parameters are not finite.

    Raises
    ------
    ValueError
        On mismatched shapes, an unknown loss or method.
    """
    K = _check_xy(spec, params, x, y, loss)
    if method not in ("lanczos", "power"):
        raise ValueError(f"method: expected 'lanczos' or 'power', got {method!r}")
    mi = max_iter or (300 if method == "lanczos" else 5000)
    _check_tol(tol, mi)
    unflat, n = _unflat_fn(params)

    def loss_of(P):
        return _loss_from_out(forward(spec, P, x, check=False), y, loss).sum()

    op = _RetainedHVP(loss_of, params)

    def matvec(V: Tensor) -> Tensor:
        return _flat(op(unflat(V)))

    v0 = _batched_start(K, n, seed, params[0].dtype, params[0].device)
    fn = lanczos_top_eig if method == "lanczos" else power_iteration_top_eig
    r = fn(matvec, v0, tol=tol, max_iter=mi)
    vals = np.asarray(r.value, dtype=np.float64)
    finite = torch.isfinite(_flat(params)).all(dim=1).cpu().numpy()
    vals = np.where(finite, vals, np.nan)
    if return_info:
        return BatchedSharpnessResult(vals, r.n_matvec, method, np.asarray(r.converged) & finite)
    return vals
