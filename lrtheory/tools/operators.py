"""Curvature operators of a model's loss over a data set: the Hessian and the Gauss-Newton matrix.

An operator knows how to multiply a flat parameter-space vector; the algorithms of
:mod:`lrtheory.tools.spectrum` (eigenpairs, trace, spectral density) know nothing else about it
(the shape of hessian-eigenthings v1). Both operators here act on the mean loss over ``data``,

.. math::

    L(\\theta) = \\sum_b \\frac{n_b}{N} \\ell_b(\\theta), \\qquad
    H v = \\sum_b \\frac{n_b}{N} \\nabla^2 \\ell_b(\\theta) v,

where ``l_b = loss_fn(model(inputs_b), targets_b)`` is the *mean* loss of batch ``b`` (the default
reduction of torch's losses) and ``n_b`` its number of examples: the Hessian of a DataLoader equals
the Hessian of the whole data set in one batch.

The model is evaluated through ``torch.func.functional_call`` in its current mode with copies of
its buffers (BatchNorm running statistics are left untouched), inside the math kernel of
``scaled_dot_product_attention`` (the fused CPU and GPU kernels have no double backward, so
``nn.MultiheadAttention`` and Transformer layers would fail otherwise).
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence

import torch
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from lrtheory.core.curvature import _RetainedHVP
from lrtheory.tools._batches import _MISSING, DataSet, as_dataset, check_deterministic, dense_fits, trainable

__all__ = ["CurvatureOperator", "HessianOperator", "GaussNewtonOperator"]


class CurvatureOperator:
    """A symmetric linear operator on the flattened trainable parameters of a model.

    Attributes
    ----------
    size : int
        Number of parameters ``P`` (the operator is ``P x P``).
    dtype, device
        Of the parameters, hence of the vectors :meth:`matvec` takes and returns.
    names : list of str
        Parameter names, in the flattening order (that of ``model.named_parameters()``).
    n_matvec : int
        Products computed so far.
    """

    def __init__(self, model: nn.Module, loss_fn: Callable, data, targets=_MISSING):
        if not callable(loss_fn):
            raise ValueError("loss_fn: expected a callable loss_fn(outputs, targets) -> scalar tensor")
        self.names, self.params = trainable(model)
        check_deterministic(model)
        self.model, self.loss_fn = model, loss_fn
        self.dtype, self.device = self.params[0].dtype, self.params[0].device
        self.data: DataSet = as_dataset(data, targets, self.dtype, self.device)
        self.shapes = [p.shape for p in self.params]
        self.sizes = [p.numel() for p in self.params]
        self.size = sum(self.sizes)
        self.n_matvec = 0
        self._buffers = {n: b.detach().clone() for n, b in model.named_buffers()}

    # ---- plumbing shared by the operators
    def unflatten(self, flat: Tensor) -> List[Tensor]:
        """Split a flat ``(P,)`` vector into tensors of the parameters' shapes."""
        return [c.view(s) for c, s in zip(torch.split(flat, self.sizes), self.shapes)]

    def flatten(self, tensors: Sequence[Tensor]) -> Tensor:
        return torch.cat([t.reshape(-1) for t in tensors])

    def _outputs(self, plist: Sequence[Tensor], inputs):
        state = dict(zip(self.names, plist))
        state.update({n: b.clone() for n, b in self._buffers.items()})
        with sdpa_kernel([SDPBackend.MATH]):
            return torch.func.functional_call(self.model, state, inputs)

    def _loss(self, out, targets) -> Tensor:
        with sdpa_kernel([SDPBackend.MATH]):
            val = self.loss_fn(out, targets)
        if not isinstance(val, Tensor) or val.numel() != 1:
            raise ValueError("loss_fn: must return a scalar tensor (the mean loss of the batch)")
        return val.reshape(())

    def loss(self) -> float:
        """The mean loss over the data set at the current parameters."""
        with torch.no_grad():
            return float(sum(w * self._loss(self._outputs(self.params, b[0]), b[1]) for b, w in self.data.weights()))

    def _check(self, v: Tensor) -> Tensor:
        if not isinstance(v, Tensor) or v.shape != (self.size,):
            raise ValueError(f"v: expected a tensor of shape ({self.size},), got {getattr(v, 'shape', type(v))}")
        return v.to(dtype=self.dtype, device=self.device)

    def matvec(self, v: Tensor) -> Tensor:
        """The product of the operator with a flat vector ``v`` of shape ``(P,)``."""
        v = self._check(v)
        self.n_matvec += 1
        return self._apply(v)

    __matmul__ = matvec

    def _apply(self, v: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def dense(self) -> Tensor:
        """The ``(P, P)`` matrix, one product per column (raises when it would not fit in memory)."""
        dense_fits(self.size, self.dtype, self.device, f"a dense {type(self).__name__[:-8]} matrix")
        eye = torch.eye(self.size, dtype=self.dtype, device=self.device)
        M = torch.stack([self.matvec(eye[i]) for i in range(self.size)], dim=1)
        return 0.5 * (M + M.T)

    def to_scipy(self):
        """A ``scipy.sparse.linalg.LinearOperator`` (float64 NumPy vectors) of this operator."""
        import numpy as np
        from scipy.sparse.linalg import LinearOperator

        def mv(x):
            t = torch.as_tensor(np.asarray(x, dtype=np.float64).reshape(-1)).to(dtype=self.dtype, device=self.device)
            return self.matvec(t).detach().cpu().double().numpy()

        return LinearOperator((self.size, self.size), matvec=mv, dtype=np.float64)


class HessianOperator(CurvatureOperator):
    """The Hessian of the mean loss over ``data`` with respect to the trainable parameters.

    Parameters
    ----------
    model : torch.nn.Module
        Any module, evaluated in its current mode (call ``model.eval()`` first when it has
        Dropout: a random loss has no Hessian).
    loss_fn : callable
        ``loss_fn(outputs, targets) -> scalar``, the mean loss of a batch.
    data : batch or iterable of batches
        ``(inputs, targets)`` or an iterable of them (a DataLoader); see the module docstring.

    Raises
    ------
    ValueError
        On an empty batch or data set, NaN/Inf in the inputs or the parameters, a stochastic
        module in training mode, or a model without trainable parameters.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Linear(2, 1).double()
    >>> x, y = torch.eye(2, dtype=torch.float64), torch.zeros(2, 1, dtype=torch.float64)
    >>> H = HessianOperator(net, torch.nn.functional.mse_loss, (x, y))
    >>> H.dense()
    tensor([[1., 0., 1.],
            [0., 1., 1.],
            [1., 1., 2.]], dtype=torch.float64)
    """

    def __init__(self, model, loss_fn, data, targets=_MISSING):
        super().__init__(model, loss_fn, data, targets)
        self._retained = None
        if self.data.single:  # one batch: one graph, retained for every product
            (ins, tg, _), = list(self.data)
            self._retained = _RetainedHVP(lambda pl: self._loss(self._outputs(pl, ins), tg), self.params)

    def _apply(self, v: Tensor) -> Tensor:
        vs = self.unflatten(v)
        if self._retained is not None:
            return self.flatten(self._retained(vs))
        out = torch.zeros(self.size, dtype=self.dtype, device=self.device)
        for (ins, tg, _), w in self.data.weights():  # one graph per batch, freed after use
            hv = _RetainedHVP(lambda pl: self._loss(self._outputs(pl, ins), tg), self.params)(vs)
            out += w * self.flatten(hv)
        return out


class GaussNewtonOperator(CurvatureOperator):
    """The generalized Gauss-Newton matrix ``G = sum_b (n_b/N) J_b^T H_out,b J_b`` of the mean loss.

    ``J_b`` is the Jacobian of the model's outputs on batch ``b`` with respect to the parameters
    and ``H_out,b`` the Hessian of ``loss_fn`` with respect to the outputs: positive
    semi-definite for a convex loss (MSE, cross-entropy), and equal to the Hessian of a linear
    model. Products use reverse mode only (``J v`` by the double-VJP trick). Arguments as for
    :class:`HessianOperator`; the outputs must be one tensor.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Linear(2, 1).double()
    >>> x, y = torch.eye(2, dtype=torch.float64), torch.zeros(2, 1, dtype=torch.float64)
    >>> G = GaussNewtonOperator(net, torch.nn.functional.mse_loss, (x, y))
    >>> torch.allclose(G.dense(), HessianOperator(net, torch.nn.functional.mse_loss, (x, y)).dense())
    True
    """

    def __init__(self, model, loss_fn, data, targets=_MISSING):
        super().__init__(model, loss_fn, data, targets)
        self._graphs = [self._graph(b) for b in self.data] if self.data.single else None

    def _graph(self, batch):
        ins, tg, _ = batch
        P0 = [p.detach().clone().requires_grad_(True) for p in self.params]
        with torch.enable_grad():
            out = self._outputs(P0, ins)
            if not isinstance(out, Tensor):
                raise ValueError("model: GaussNewtonOperator needs a model that returns one tensor")
            u = torch.zeros_like(out, requires_grad=True)
            JTu = torch.autograd.grad(out, P0, grad_outputs=u, create_graph=True, allow_unused=True)
            JTu = [torch.zeros_like(p) if g is None else g for p, g in zip(P0, JTu)]
            o = out.detach().requires_grad_(True)
            g_out = torch.autograd.grad(self._loss(o, tg), o, create_graph=True)[0]
        return out, P0, u, JTu, o, g_out

    def _product(self, graph, vs):
        out, P0, u, JTu, o, g_out = graph
        need = [g.requires_grad for g in JTu]
        if not any(need):
            return torch.zeros(self.size, dtype=self.dtype, device=self.device)
        Jv = torch.autograd.grad([g for g, r in zip(JTu, need) if r], u,
                                 grad_outputs=[v for v, r in zip(vs, need) if r], retain_graph=True)[0]
        if g_out.requires_grad:
            HJv = torch.autograd.grad(g_out, o, grad_outputs=Jv, retain_graph=True)[0]
        else:  # loss linear in the outputs
            HJv = torch.zeros_like(Jv)
        g = torch.autograd.grad(out, P0, grad_outputs=HJv, retain_graph=True, allow_unused=True)
        return self.flatten([torch.zeros_like(p) if t is None else t.detach() for p, t in zip(P0, g)])

    def _apply(self, v: Tensor) -> Tensor:
        vs = self.unflatten(v)
        if self._graphs is not None:
            return self._product(self._graphs[0], vs)
        out = torch.zeros(self.size, dtype=self.dtype, device=self.device)
        for b, w in self.data.weights():
            out += w * self._product(self._graph(b), vs)
        return out


def as_operator(operator: Optional[CurvatureOperator], model, loss_fn, data, targets) -> CurvatureOperator:
    """The operator an algorithm runs on: the one given, else the Hessian of ``model`` on ``data``."""
    if operator is not None:
        if not isinstance(operator, CurvatureOperator):
            raise ValueError(f"operator: expected a CurvatureOperator, got {type(operator).__name__}")
        return operator
    return HessianOperator(model, loss_fn, data, targets)
