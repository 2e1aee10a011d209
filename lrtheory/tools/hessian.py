"""The Hessian spectrum of any model's loss over a data set: sharpness, eigenpairs, trace, density.

Every function takes ``model, loss_fn, data``: any ``torch.nn.Module``, a loss
``loss_fn(outputs, targets)`` returning the batch mean, and one ``(inputs, targets)`` batch or an
iterable of them (a DataLoader), whose Hessian is that of the mean loss over all examples
(batches weighted by their size). The *sharpness* is the largest **algebraic** eigenvalue
``lambda_1``; power iteration alone (PyHessian's method) finds the largest-*magnitude* one, which
can be negative.

Each builds a :class:`~lrtheory.tools.operators.HessianOperator` and runs an algorithm of
:mod:`lrtheory.tools.spectrum` on it; pass ``operator=`` (e.g. a
:class:`~lrtheory.tools.operators.GaussNewtonOperator`) to analyse another matrix.

Examples
--------
>>> import torch
>>> import lrtheory
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)).double()
>>> x, y = torch.randn(64, 4, dtype=torch.float64), torch.randint(0, 3, (64,))
>>> loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)
>>> top = lrtheory.hessian_eigs(net, torch.nn.functional.cross_entropy, loader, k=3)
>>> full = lrtheory.hessian_eigs(net, torch.nn.functional.cross_entropy, (x, y), k=3)
>>> bool(abs(top.values - full.values).max() < 1e-10 * full.values[0]), top.vectors.shape
(True, torch.Size([3, 131]))
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np  # noqa: F401 - the examples use it
from torch import Tensor, nn

from lrtheory.core import validate as V
from lrtheory.tools._batches import _MISSING
from lrtheory.tools.operators import CurvatureOperator, GaussNewtonOperator, HessianOperator, as_operator
from lrtheory.tools.spectrum import (DensityResult, EigsResult, TraceResult, default_tol, density, eigs, top_eig,
                                     trace)

__all__ = ["SharpnessResult", "sharpness", "hessian_eigs", "hessian_trace", "hessian_density", "dense_hessian",
           "HessianOperator", "GaussNewtonOperator", "EigsResult", "TraceResult", "DensityResult", "default_tol",
           "SHARPNESS_METHODS"]

#: Methods accepted by :func:`sharpness`.
SHARPNESS_METHODS = ("lanczos", "power", "eigsh", "dense")


@dataclass(frozen=True)
class SharpnessResult:
    """Top algebraic Hessian eigenvalue of one model (see :func:`sharpness`).

    Attributes
    ----------
    value : float
    n_hvp : int
        Hessian-vector products used (with the one that checks the residual).
    method : str
    converged : bool
        The recomputed residual ``||H v - value v||`` is within ``tol |value|``.
    vector : Tensor ``(P,)``
        The unit eigenvector, flattened in the order of ``model.named_parameters()``.
    residual : float
    """

    value: float
    n_hvp: int
    method: str
    converged: bool
    vector: Optional[Tensor] = field(default=None, repr=False, compare=False)
    residual: float = float("nan")


def sharpness(model: nn.Module, loss_fn: Callable, data, targets=_MISSING, *, method: str = "lanczos",
              tol: Optional[float] = None, max_iter: Optional[int] = None, seed: int = 0,
              operator: Optional[CurvatureOperator] = None) -> SharpnessResult:
    """Sharpness: the largest algebraic eigenvalue of the Hessian of the mean loss over ``data``.

    Parameters
    ----------
    model : torch.nn.Module
        Any module, in its current mode; its parameters with ``requires_grad`` are the
        variables. float64 for numbers you compare; call ``model.eval()`` when it has Dropout.
    loss_fn : callable
        ``loss_fn(outputs, targets) -> scalar``, the mean over the batch (torch's default).
    data : batch or iterable of batches
        ``(inputs, targets)`` or an iterable of such pairs (a DataLoader); ``inputs`` a Tensor
        or a tuple of Tensors. The two-argument form ``sharpness(model, loss_fn, inputs,
        targets)`` is accepted too.
    method : {"lanczos", "power", "eigsh", "dense"}
        Lanczos with full reorthogonalization (default, fewest products); power iteration with
        a shift when the dominant eigenvalue is negative; ARPACK (the CPU reference); the dense
        Hessian (small models only).
    tol : float, optional
        Relative accuracy; default follows the dtype (:func:`~lrtheory.tools.spectrum.default_tol`:
        1e-10 in float64, 1e-5 in float32).
    max_iter : int, optional
        Iteration cap (Lanczos 300, power 1000, ARPACK ``10 P``).
    seed : int
        Seed of the start vector.

    Returns
    -------
    SharpnessResult

    Other Parameters
    ----------------
    operator : CurvatureOperator, optional
        Analyse this operator instead (``model``, ``loss_fn`` and ``data`` are then ignored).

    Raises
    ------
    ValueError
        On an unknown method or a bad tolerance; on an empty batch, NaN/Inf in the inputs or
        the parameters, a Dropout module in training mode, or a dense Hessian too large for memory.

    See Also
    --------
    hessian_eigs : several eigenpairs, or the smallest eigenvalue.

    Examples
    --------
    Least squares: the Hessian of ``mean_i (w . x_i + b)^2`` on ``x = I_2`` is
    ``[[1, 0, 1], [0, 1, 1], [1, 1, 2]]``, with eigenvalues 3, 1, 0.

    >>> import torch
    >>> net = torch.nn.Linear(2, 1).double()
    >>> x, y = torch.eye(2, dtype=torch.float64), torch.zeros(2, 1, dtype=torch.float64)
    >>> r = sharpness(net, torch.nn.functional.mse_loss, (x, y))
    >>> round(r.value, 10), r.converged
    (3.0, True)
    """
    V.choice(method, "method", SHARPNESS_METHODS)
    op = as_operator(operator, model, loss_fn, data, targets)
    n0 = op.n_matvec
    value, vec, ok, res = top_eig(op, method=method, tol=tol, max_iter=max_iter, seed=seed)
    return SharpnessResult(value, op.n_matvec - n0, method, ok, vec.detach(), res)


def hessian_eigs(model: nn.Module, loss_fn: Callable, data, targets=_MISSING, *, k: int = 1, which: str = "LA",
                 method: str = "eigsh", tol: Optional[float] = None, max_iter: Optional[int] = None, seed: int = 0,
                 operator: Optional[CurvatureOperator] = None) -> EigsResult:
    """``k`` extreme eigenvalues of the Hessian over ``data``, with their eigenvectors.

    Parameters
    ----------
    model, loss_fn, data, targets
        As for :func:`sharpness`.
    k : int
        Number of eigenpairs.
    which : {"LA", "SA", "LM"}
        Largest algebraic (top of the spectrum), smallest algebraic (most negative curvature),
        largest magnitude.
    method : {"eigsh", "dense"}
        ARPACK on Hessian-vector products (default), or the dense Hessian.
    tol, max_iter, seed
        As for :func:`lrtheory.tools.spectrum.eigs`.

    Returns
    -------
    EigsResult
        ``values (k,)``, ``vectors (k, P)`` (use ``HessianOperator.unflatten`` for per-parameter
        tensors), ``residuals``, ``converged``, ``n_matvec``.

    Other Parameters
    ----------------
    operator : CurvatureOperator, optional
        Analyse this operator instead of the Hessian.

    Raises
    ------
    ValueError
        As for :func:`sharpness`; also when ``k`` is not below the number of parameters.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Linear(2, 1).double()
    >>> x, y = torch.eye(2, dtype=torch.float64), torch.zeros(2, 1, dtype=torch.float64)
    >>> r = hessian_eigs(net, torch.nn.functional.mse_loss, (x, y), k=2)
    >>> np.round(r.values, 10).tolist(), r.converged
    ([3.0, 1.0], True)
    """
    op = as_operator(operator, model, loss_fn, data, targets)
    return eigs(op, k=k, which=which, method=method, tol=tol, max_iter=max_iter, seed=seed)


def hessian_trace(model: nn.Module, loss_fn: Callable, data, targets=_MISSING, *, n_samples: int = 100,
                  seed: int = 0, operator: Optional[CurvatureOperator] = None) -> TraceResult:
    """Trace of the Hessian over ``data`` by Hutchinson's estimator, with its standard error.

    ``n_samples`` Rademacher probes, one Hessian-vector product each; ``value`` is unbiased and
    ``se`` the standard error of the mean, so ``value +- 3 se`` covers the trace (CLT).

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Linear(2, 1).double()
    >>> x, y = torch.eye(2, dtype=torch.float64), torch.zeros(2, 1, dtype=torch.float64)
    >>> r = hessian_trace(net, torch.nn.functional.mse_loss, (x, y), n_samples=50)
    >>> abs(r.value - 4.0) <= 3 * r.se
    True
    """
    op = as_operator(operator, model, loss_fn, data, targets)
    return trace(op, n_samples=n_samples, seed=seed)


def hessian_density(model: nn.Module, loss_fn: Callable, data, targets=_MISSING, *, n_probes: int = 10,
                    steps: int = 80, sigma: Optional[float] = None, n_points: int = 1000, seed: int = 0,
                    operator: Optional[CurvatureOperator] = None) -> DensityResult:
    """Spectral density of the Hessian over ``data`` by stochastic Lanczos quadrature.

    Returns a :class:`~lrtheory.tools.spectrum.DensityResult`: ``plt.semilogy(d.grid, d.density)``
    or ``d.plot()`` draws it. ``n_probes`` x ``min(steps, P)`` Hessian-vector products.

    Examples
    --------
    >>> import torch
    >>> net = torch.nn.Linear(2, 1).double()
    >>> x, y = torch.eye(2, dtype=torch.float64), torch.zeros(2, 1, dtype=torch.float64)
    >>> d = hessian_density(net, torch.nn.functional.mse_loss, (x, y), n_probes=4, sigma=0.05)
    >>> bool(abs(np.trapezoid(d.density, d.grid) - 1) < 1e-6)
    True
    """
    op = as_operator(operator, model, loss_fn, data, targets)
    return density(op, n_probes=n_probes, steps=steps, sigma=sigma, n_points=n_points, seed=seed)


def dense_hessian(model: nn.Module, loss_fn: Callable, data, targets=_MISSING) -> Tensor:
    """The dense ``(P, P)`` Hessian over ``data`` (small models; a ValueError when it would not fit)."""
    return HessianOperator(model, loss_fn, data, targets).dense()
