"""Algorithms on a curvature operator: extreme eigenpairs, the trace, the spectral density.

Each takes a :class:`lrtheory.tools.operators.CurvatureOperator` (Hessian, Gauss-Newton, or
your own subclass) and only multiplies vectors with it. Lanczos and power iteration are those of
:mod:`lrtheory.core.lanczos`; ``scipy.sparse.linalg.eigsh`` (ARPACK) finds ``k`` eigenpairs.

Tolerances follow the dtype (:func:`default_tol`): a float32 Hessian-vector product is only
accurate to about ``1e-6`` relative, so asking for ``1e-10`` there only buys iterations. A result
is called converged only when the residual ``||A v - theta v|| <= tol |theta|`` of the returned
pair, recomputed with one more product, says so; for a symmetric operator this bounds the
relative error of the eigenvalue by ``tol``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from lrtheory.core.lanczos import lanczos_top_eig, power_iteration_top_eig
from lrtheory.core import validate as V
from lrtheory.core.device import make_generator
from lrtheory.tools._batches import dense_fits
from lrtheory.tools.operators import CurvatureOperator

__all__ = ["default_tol", "EigsResult", "TraceResult", "DensityResult", "top_eig", "eigs", "trace", "density",
           "TOP_METHODS", "EIGS_METHODS", "WHICH"]

TOP_METHODS = ("lanczos", "power", "eigsh", "dense")
EIGS_METHODS = ("eigsh", "dense")
#: largest algebraic, smallest algebraic, largest magnitude (as in ``scipy.sparse.linalg.eigsh``)
WHICH = ("LA", "SA", "LM")


def default_tol(dtype: torch.dtype) -> float:
    """Default relative tolerance for an operator of this dtype: ``1e-10`` in float64, ``1e-5`` in
    float32, ``1e-2`` in half precision (about ``eps^(2/3)``: well above the round-off of a
    product, well below any difference that matters).

    Examples
    --------
    >>> default_tol(torch.float32)
    1e-05
    """
    return {torch.float64: 1e-10, torch.float32: 1e-5}.get(dtype, 1e-2)


def _tol(tol, dtype) -> float:
    if tol is None:
        return default_tol(dtype)
    tol = V.positive_real(tol, "tol")
    eps = float(torch.finfo(dtype).eps)
    if tol < eps:
        raise ValueError(f"tol: {tol!r} is below the {dtype} machine epsilon {eps:.1e}; products in this dtype "
                         f"cannot resolve it (default for {dtype}: {default_tol(dtype):.0e})")
    return float(tol)


def _start(op: CurvatureOperator, seed: int, rademacher: bool = False) -> Tensor:
    g = make_generator(V.nonneg_int(seed, "seed"), "cpu")
    if rademacher:
        v = torch.randint(0, 2, (op.size,), generator=g, dtype=torch.int64).to(torch.float64) * 2 - 1
    else:
        v = torch.randn(op.size, generator=g, dtype=torch.float64)
    return v.to(dtype=op.dtype, device=op.device)


def _residual(op: CurvatureOperator, theta: float, v: Tensor) -> float:
    v = v / v.norm()
    return float((op.matvec(v) - theta * v).norm())


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not results
class EigsResult:
    """Eigenpairs of a curvature operator (see :func:`eigs`).

    Attributes
    ----------
    values : ndarray ``(k,)``
        Ordered by ``which``: descending for "LA", ascending for "SA", by descending magnitude for "LM".
    vectors : Tensor ``(k, P)``
        Unit eigenvectors (rows) in the flattened parameter order; ``operator.unflatten(vectors[i])``
        gives them per parameter.
    residuals : ndarray ``(k,)``
        ``||A v_i - lambda_i v_i||`` recomputed for each pair.
    converged : bool
        Every residual within ``tol |lambda_i|``.
    n_matvec : int
    which, method : str
    """

    values: np.ndarray
    vectors: Tensor
    residuals: np.ndarray
    converged: bool
    n_matvec: int
    which: str
    method: str


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not results
class TraceResult:
    """Hutchinson trace estimate: ``value`` with its standard error ``se`` over ``n_samples`` probes
    (``samples`` holds each ``z^T A z``)."""

    value: float
    se: float
    n_samples: int
    n_matvec: int
    samples: np.ndarray = field(repr=False)


@dataclass(frozen=True, eq=False)  # holds arrays: compare fields, not results
class DensityResult:
    """Spectral density by stochastic Lanczos quadrature, ready to plot: ``grid`` and ``density``
    (integrates to 1 over the grid); ``nodes`` and ``weights`` ``(n_probes, m)`` are the quadrature
    rules (Ritz values and squared first components) the curve smooths with a Gaussian of width ``sigma``."""

    grid: np.ndarray
    density: np.ndarray
    nodes: np.ndarray = field(repr=False)
    weights: np.ndarray = field(repr=False)
    sigma: float
    n_matvec: int

    def plot(self, ax=None, *, log: bool = True, **kwargs):
        """Draw the density on ``ax`` (a new figure's axes when None); returns the axes."""
        import matplotlib.pyplot as plt

        ax = plt.gca() if ax is None else ax
        (ax.semilogy if log else ax.plot)(self.grid, self.density, **kwargs)
        ax.set_xlabel(r"eigenvalue $\lambda$")
        ax.set_ylabel("density")
        return ax


# ----------------------------------------------------------------------------- top eigenvalue
def top_eig(op: CurvatureOperator, *, method: str = "lanczos", tol: Optional[float] = None,
            max_iter: Optional[int] = None, seed: int = 0) -> Tuple[float, Tensor, bool, float]:
    """Largest algebraic eigenvalue: ``(value, unit vector, converged, residual)``; see :func:`eigs`."""
    V.choice(method, "method", TOP_METHODS)
    tol = _tol(tol, op.dtype)
    if max_iter is not None:
        max_iter = V.positive_int(max_iter, "max_iter")
    if method in ("eigsh", "dense"):
        r = eigs(op, k=1, which="LA", method=method, tol=tol, max_iter=max_iter, seed=seed)
        return float(r.values[0]), r.vectors[0], r.converged, float(r.residuals[0])
    fn = lanczos_top_eig if method == "lanczos" else power_iteration_top_eig
    r = fn(op.matvec, _start(op, seed), tol=tol, max_iter=max_iter or (300 if method == "lanczos" else 1000))
    value = float(r.value)
    res = _residual(op, value, r.vector)
    ok = bool(math.isfinite(value) and res <= tol * max(abs(value), torch.finfo(op.dtype).tiny))
    return value, r.vector / r.vector.norm(), ok, res


# ----------------------------------------------------------------------------- k eigenpairs
def eigs(op: CurvatureOperator, k: int = 1, which: str = "LA", *, method: str = "eigsh",
         tol: Optional[float] = None, max_iter: Optional[int] = None, seed: int = 0) -> EigsResult:
    """``k`` extreme eigenpairs of a curvature operator.

    Parameters
    ----------
    op : CurvatureOperator
    k : int
        Number of eigenpairs (``< P`` for "eigsh").
    which : {"LA", "SA", "LM"}
        Largest algebraic (the sharpness and what follows it), smallest algebraic (the most
        negative curvature), largest magnitude (what power iteration finds).
    method : {"eigsh", "dense"}
        ARPACK's implicitly restarted Lanczos on Hessian-vector products, or the dense matrix
        and ``eigh`` (small models only; a ValueError says when it would not fit in memory).
    tol : float, optional
        Relative accuracy of the values; default :func:`default_tol` of the operator's dtype.
    max_iter : int, optional
        ARPACK's restart limit (default ``10 P``).
    seed : int
        Seed of ARPACK's start vector.

    Returns
    -------
    EigsResult
    """
    k = V.positive_int(k, "k")
    V.choice(which, "which", WHICH)
    V.choice(method, "method", EIGS_METHODS)
    tol = _tol(tol, op.dtype)
    P = op.size
    if k > P or (method == "eigsh" and k >= P):
        raise ValueError(f"k: {k} eigenpairs of a {P}-parameter operator need k < {P} with method='eigsh' "
                         f"(k <= {P} with method='dense')")
    n0 = op.n_matvec
    if method == "dense":
        dense_fits(P, op.dtype, op.device)
        M = op.dense().double()
        if not bool(torch.isfinite(M).all()):
            raise ValueError("model: the loss or its Hessian is not finite at these parameters")
        vals, vecs = torch.linalg.eigh(M)
        vals, vecs = vals.cpu().numpy(), vecs.T.to(op.dtype)
    else:
        from scipy.sparse.linalg import ArpackNoConvergence, eigsh

        v0 = _start(op, seed).detach().cpu().double().numpy()
        try:
            vals, W = eigsh(op.to_scipy(), k=k, which=which, tol=tol, v0=v0, maxiter=max_iter)
        except ArpackNoConvergence as exc:
            vals, W = exc.eigenvalues, exc.eigenvectors
        vecs = torch.as_tensor(W.T.copy()).to(dtype=op.dtype, device=op.device)
    order = {"LA": np.argsort(-vals), "SA": np.argsort(vals), "LM": np.argsort(-np.abs(vals))}[which][:k]
    vals = np.asarray(vals, dtype=np.float64)[order]
    vecs = vecs[torch.as_tensor(order.copy(), device=vecs.device)]
    vecs = vecs / vecs.norm(dim=1, keepdim=True)
    res = np.array([_residual(op, float(t), v) for t, v in zip(vals, vecs)])
    tiny = torch.finfo(op.dtype).tiny
    ok = bool(vals.size == k and np.all(np.isfinite(vals)) and np.all(res <= tol * np.maximum(np.abs(vals), tiny)))
    return EigsResult(vals, vecs, res, ok, op.n_matvec - n0, which, method)


# ----------------------------------------------------------------------------- trace
def trace(op: CurvatureOperator, *, n_samples: int = 100, seed: int = 0) -> TraceResult:
    """Hutchinson's estimate of ``tr A`` with Rademacher probes ``z``: the mean of ``z^T A z``,
    unbiased, with the standard error of that mean (one product per probe)."""
    n = V.positive_int(n_samples, "n_samples")
    if n < 2:
        raise ValueError("n_samples: expected at least 2 probes (the standard error needs two)")
    g = make_generator(V.nonneg_int(seed, "seed"), "cpu")
    n0 = op.n_matvec
    s = np.empty(n)
    for i in range(n):
        z = (torch.randint(0, 2, (op.size,), generator=g).to(torch.float64) * 2 - 1).to(op.dtype).to(op.device)
        s[i] = float((z.double() * op.matvec(z).double()).sum())
    if not np.all(np.isfinite(s)):
        raise ValueError("model: the loss or its Hessian is not finite at these parameters")
    return TraceResult(float(s.mean()), float(s.std(ddof=1) / math.sqrt(n)), n, op.n_matvec - n0, s)


# ----------------------------------------------------------------------------- density
def _lanczos_tridiagonal(op: CurvatureOperator, v: Tensor, m: int) -> Tuple[np.ndarray, np.ndarray]:
    """``m`` Lanczos steps (full reorthogonalization) from ``v``: the Ritz values and the squared
    first components of the eigenvectors of the tridiagonal matrix (Gauss quadrature nodes and
    weights of the spectral measure seen from ``v``). Stops early when the Krylov space closes."""
    Q = [v / v.norm()]
    a, b = [], []
    for j in range(m):
        w = op.matvec(Q[-1])
        a.append(float((w * Q[-1]).sum()))
        Qm = torch.stack(Q)
        for _ in range(2):
            w = w - Qm.T @ (Qm @ w)
        beta = float(w.norm())
        if j + 1 == m or beta <= 1e3 * torch.finfo(op.dtype).eps * max(abs(x) for x in a):
            break
        b.append(beta)
        Q.append(w / beta)
    T = np.diag(a) + np.diag(b, 1) + np.diag(b, -1)
    if not np.all(np.isfinite(T)):
        raise ValueError("model: the loss or its Hessian is not finite at these parameters")
    theta, S = np.linalg.eigh(T)
    return theta, S[0] ** 2


def density(op: CurvatureOperator, *, n_probes: int = 10, steps: int = 80, sigma: Optional[float] = None,
            n_points: int = 1000, seed: int = 0) -> DensityResult:
    """Spectral density of ``A`` by stochastic Lanczos quadrature (Ghorbani, Krishnan & Xiao 2019).

    Each of ``n_probes`` random unit vectors gives an ``m``-point Gauss quadrature of the
    spectral measure (``m = min(steps, P)`` Lanczos steps, one product each); their average,
    smoothed by a Gaussian of width ``sigma`` (default 1% of the spectral range), is the curve.
    """
    n_probes, steps, n_points = (V.positive_int(n_probes, "n_probes"), V.positive_int(steps, "steps"),
                                 V.positive_int(n_points, "n_points"))
    g = make_generator(V.nonneg_int(seed, "seed"), "cpu")
    n0 = op.n_matvec
    m = min(steps, op.size)
    nodes = np.full((n_probes, m), np.nan)
    weights = np.zeros((n_probes, m))
    for i in range(n_probes):
        v = torch.randn(op.size, generator=g, dtype=torch.float64).to(dtype=op.dtype, device=op.device)
        th, w = _lanczos_tridiagonal(op, v, m)
        nodes[i, : th.size], weights[i, : th.size] = th, w
    lo, hi = float(np.nanmin(nodes)), float(np.nanmax(nodes))
    if sigma is None:
        sigma = 0.01 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 1e-3
    else:
        sigma = V.positive_real(sigma, "sigma")
    grid = np.linspace(lo - 5 * sigma, hi + 5 * sigma, n_points)
    ok = np.isfinite(nodes)
    t, w = nodes[ok], weights[ok] / n_probes
    dens = (w[None, :] * np.exp(-0.5 * ((grid[:, None] - t[None, :]) / sigma) ** 2)).sum(1) / (sigma * math.sqrt(2 * math.pi))
    return DensityResult(grid, dens, nodes, weights, float(sigma), op.n_matvec - n0)
