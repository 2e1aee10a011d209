"""Top eigenvalues of symmetric operators given by a matvec: Lanczos, power iteration, ARPACK.

The algorithms know nothing of models: an operator is a function ``matvec(v)``, applied to
one vector ``(n,)`` or to K independent vectors ``(K, n)`` row by row (K operators in lock
step, e.g. the block-diagonal Hessian of K models that share no parameter). The curvature
operators that feed them are in :mod:`lrtheory.core.curvature` (Hessian-vector products)
and :mod:`lrtheory.core.ntk` (Jacobian products).

* :func:`lanczos_top_eig`: the largest **algebraic** eigenvalue, Lanczos with full
  reorthogonalization (twice per step), batched; the default everywhere.
* :func:`power_iteration_top_eig`: power iteration, for comparison. Plain power iteration
  (PyHessian's) converges to the eigenvalue of largest *magnitude*, which can be negative:
  a known trap. With ``algebraic=True`` a row whose dominant eigenvalue is negative is
  rerun on the shifted operator ``A - mu I``.
* :func:`eigsh_top_eig`: ``scipy.sparse.linalg.eigsh(which="LA")`` on a ``LinearOperator``:
  the CPU reference for one operator.

Convergence of Lanczos / power iteration: the Ritz residual ``||A v - theta v|| <= tol |theta|``
(for Lanczos estimated as ``beta_j |s_j|``). For a symmetric matrix the eigenvalue error is
at most the residual, so ``tol`` bounds the relative error of the value. ``n_matvec`` counts
matvec calls (a batched call of K rows counts once).

Example
-------
>>> A = torch.diag(torch.tensor([3.0, -5.0, 1.0], dtype=torch.float64))
>>> r = lanczos_top_eig(lambda v: A @ v, 3)
>>> round(r.value, 12), r.converged
(3.0, True)
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Callable, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from lrtheory.core.device import make_generator
from lrtheory.core.validate import positive_int, positive_real

__all__ = ["EigResult", "lanczos_top_eig", "power_iteration_top_eig", "eigsh_top_eig"]

Matvec = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class EigResult:
    """Result of :func:`lanczos_top_eig` / :func:`power_iteration_top_eig`.

    ``value`` and ``converged`` are floats/bools for a single vector ``v0`` of
    shape ``(n,)``, arrays ``(K,)`` for a batch ``(K, n)``; ``vector`` has the
    shape of ``v0`` (unit Ritz vectors); ``n_matvec`` counts matvec calls.
    """

    value: Union[float, np.ndarray]
    n_matvec: int
    converged: Union[bool, np.ndarray]
    vector: Tensor


# ----------------------------------------------------------------------------- Krylov
def _check_tol(tol, max_iter):
    positive_real(tol, "tol")
    positive_int(max_iter, "max_iter")


def _start_vector(n_or_v0, generator, dtype, device) -> Tuple[Tensor, bool]:
    if isinstance(n_or_v0, Tensor):
        v0 = n_or_v0
        if v0.dim() not in (1, 2) or v0.shape[-1] < 1:
            raise ValueError(f"v0: expected shape (n,) or (K, n), got {tuple(v0.shape)}")
        single = v0.dim() == 1
        v0 = v0.reshape(1, -1) if single else v0
        if not bool(torch.isfinite(v0).all()) or bool((v0.norm(dim=1) == 0).any()):
            raise ValueError("v0: start vectors must be finite and non-zero")
        return v0.detach().clone(), single
    if isinstance(n_or_v0, bool) or not isinstance(n_or_v0, numbers.Integral) or n_or_v0 < 1:
        raise ValueError(f"v0: expected a start tensor or a positive dimension n, got {n_or_v0!r}")
    g = generator if generator is not None else make_generator(0, "cpu")
    # drawn on the generator's device (CPU by default), not torch's default device
    v0 = torch.randn(1, int(n_or_v0), generator=g, dtype=torch.float64, device=g.device)
    return v0.to(dtype=dtype or torch.float64, device=device or "cpu"), True


def _pack(single: bool, value: Tensor, n: int, conv: Tensor, vec: Tensor) -> EigResult:
    v = value.detach().cpu().numpy().astype(np.float64)
    c = conv.detach().cpu().numpy().astype(bool)
    if single:
        return EigResult(float(v[0]), n, bool(c[0]), vec[0])
    return EigResult(v, n, c, vec)


def lanczos_top_eig(
    matvec: Matvec,
    v0: Union[int, Tensor],
    *,
    tol: float = 1e-10,
    max_iter: int = 200,
    generator: Optional[torch.Generator] = None,
    dtype: Optional[torch.dtype] = None,
    device=None,
) -> EigResult:
    """Largest algebraic eigenvalue of symmetric operator(s) by Lanczos with full
    reorthogonalization.

    Parameters
    ----------
    matvec : callable
        ``matvec(v)`` with ``v`` of the shape of the start vector: ``(n,)`` for one
        operator, ``(K, n)`` for K independent operators applied row by row.
    v0 : int or Tensor
        Start vector ``(n,)`` or ``(K, n)``, or the dimension ``n`` (a standard
        normal start from ``generator``, default seed 0).
    tol : float
        Stop a row when its Ritz residual ``beta_j |s_j| <= tol * |theta|``.
    max_iter : int
        Maximum Krylov dimension (capped at ``n``; reaching ``n`` is exact).
    generator : torch.Generator, optional
        For the random start when ``v0`` is an int.
    dtype, device : optional
        Of the random start when ``v0`` is an int (default float64, CPU).

    Returns
    -------
    EigResult
        ``value`` the top Ritz value (at the iteration the row converged), ``n_matvec``,
        ``converged``, ``vector`` the Ritz vector.

    Raises
    ------
    ValueError
        On a bad ``v0``, ``tol`` or ``max_iter``.

    Example
    -------
    >>> A = torch.diag(torch.tensor([3.0, -5.0, 1.0], dtype=torch.float64))
    >>> round(lanczos_top_eig(lambda v: A @ v, 3).value, 12)
    3.0
    """
    _check_tol(tol, max_iter)
    V0, single = _start_vector(v0, generator, dtype, device)
    K, n = V0.shape
    m = min(int(max_iter), n)
    mv = (lambda v: matvec(v[0]).reshape(1, -1)) if single else matvec
    # Krylov basis, grown by doubling (memory K * iterations * n, not K * max_iter * n)
    Q = torch.zeros(K, min(m + 1, 32), n, dtype=V0.dtype, device=V0.device)
    Q[:, 0] = V0 / V0.norm(dim=1, keepdim=True)
    alphas = torch.zeros(K, m, dtype=V0.dtype, device=V0.device)
    betas = torch.zeros(K, m, dtype=V0.dtype, device=V0.device)
    value = torch.full((K,), float("nan"), dtype=V0.dtype, device=V0.device)
    conv = torch.zeros(K, dtype=torch.bool, device=V0.device)
    coef = torch.zeros(K, m, dtype=V0.dtype, device=V0.device)  # Ritz vector coefficients at convergence
    n_mv = 0
    tiny = torch.finfo(V0.dtype).tiny
    broken = ~torch.isfinite(V0).all(dim=1)
    for j in range(m):
        w = mv(Q[:, j]).to(V0.dtype)
        n_mv += 1
        a = (w * Q[:, j]).sum(1)
        alphas[:, j] = a
        w = w - a[:, None] * Q[:, j]
        if j > 0:
            w = w - betas[:, j - 1, None] * Q[:, j - 1]
        Qj = Q[:, : j + 1]
        for _ in range(2):  # full reorthogonalization, twice is enough
            w = w - torch.einsum("kjn,kj->kn", Qj, torch.einsum("kjn,kn->kj", Qj, w))
        b = w.norm(dim=1)
        betas[:, j] = b
        T = torch.diag_embed(alphas[:, : j + 1])
        if j > 0:
            off = torch.diag_embed(betas[:, :j], offset=1)
            T = T + off + off.transpose(1, 2)
        broken = broken | ~torch.isfinite(a) | ~torch.isfinite(b)
        # rows with a non-finite operator (e.g. a diverged model) are blanked: they cannot
        # disturb the batched eigh, and are reported as NaN, not converged
        T = torch.where(broken[:, None, None], torch.zeros_like(T), T)
        evals, evecs = torch.linalg.eigh(T)
        theta = evals[:, -1]
        b = torch.where(broken, torch.zeros_like(b), b)
        resid = b * evecs[:, -1, -1].abs()
        scale = torch.clamp(evals.abs().amax(dim=1), min=tiny)
        ok = (resid <= tol * torch.clamp(theta.abs(), min=tiny)) | (b <= 10 * torch.finfo(V0.dtype).eps * scale)
        if j + 1 == n:
            ok = torch.ones_like(ok)
        ok = (ok & torch.isfinite(theta)) | broken
        new = ok & ~conv
        if bool(new.any()):
            value = torch.where(new, theta, value)
            pad = torch.zeros(K, m, dtype=V0.dtype, device=V0.device)
            pad[:, : j + 1] = evecs[:, :, -1]
            coef = torch.where(new[:, None], pad, coef)
            conv = conv | new
        if bool(conv.all()):
            break
        if j + 1 >= Q.shape[1]:
            grow = min(Q.shape[1], m + 1 - Q.shape[1])
            Q = torch.cat([Q, torch.zeros(K, grow, n, dtype=Q.dtype, device=Q.device)], dim=1)
        Q[:, j + 1] = w / torch.where(b > 0, b, torch.ones_like(b))[:, None]
    # rows that never converged: last Ritz pair
    last = ~conv
    if bool(last.any()):
        value = torch.where(last, theta, value)
        pad = torch.zeros(K, m, dtype=V0.dtype, device=V0.device)
        pad[:, : evecs.shape[1]] = evecs[:, :, -1]
        coef = torch.where(last[:, None], pad, coef)
    mm = min(m, Q.shape[1])
    vec = torch.einsum("kjn,kj->kn", Q[:, :mm], coef[:, :mm])
    value = torch.where(broken, torch.full_like(value, float("nan")), value)
    conv = conv & ~broken
    return _pack(single, value, n_mv, conv, vec)


def power_iteration_top_eig(
    matvec: Matvec,
    v0: Union[int, Tensor],
    *,
    tol: float = 1e-10,
    max_iter: int = 1000,
    generator: Optional[torch.Generator] = None,
    algebraic: bool = True,
    dtype: Optional[torch.dtype] = None,
    device=None,
) -> EigResult:
    """Top eigenvalue of symmetric operator(s) by power iteration (for comparison).

    Plain power iteration finds the eigenvalue of largest *magnitude* (PyHessian's
    behaviour). With ``algebraic=True`` (default) rows whose dominant eigenvalue
    ``mu`` is negative are rerun on ``A - mu I`` (spectrum shifted to ``>= 0``),
    giving the largest algebraic eigenvalue; ``n_matvec`` counts both phases.
    Stops a row when ``||A v - theta v|| <= tol * |theta|``.

    Parameters and return value as in :func:`lanczos_top_eig`.
    """
    _check_tol(tol, max_iter)
    V0, single = _start_vector(v0, generator, dtype, device)
    mv = (lambda v: matvec(v[0]).reshape(1, -1)) if single else matvec

    def run(op, v, shift_mask):
        K = v.shape[0]
        v = v / v.norm(dim=1, keepdim=True)
        value = torch.full((K,), float("nan"), dtype=v.dtype, device=v.device)
        conv = ~shift_mask
        vec = v.clone()
        count = 0
        broken = torch.zeros(K, dtype=torch.bool, device=v.device)
        for _ in range(int(max_iter)):
            w = op(v).to(v.dtype)
            count += 1
            theta = (w * v).sum(1)
            resid = (w - theta[:, None] * v).norm(dim=1)
            broken = broken | ~torch.isfinite(theta) | ~torch.isfinite(resid)
            ok = (resid <= tol * torch.clamp(theta.abs(), min=torch.finfo(v.dtype).tiny)) | broken
            new = ok & ~conv
            value = torch.where(new | ~conv, theta, value)
            vec = torch.where((new | ~conv)[:, None], v, vec)
            conv = conv | new
            if bool(conv.all()):
                break
            nw = w.norm(dim=1, keepdim=True)
            v = torch.where(nw > 0, w / torch.where(nw > 0, nw, torch.ones_like(nw)), v)
        value = torch.where(broken, torch.full_like(value, float("nan")), value)
        return value, conv & ~broken, vec, count

    K = V0.shape[0]
    all_rows = torch.ones(K, dtype=torch.bool, device=V0.device)
    mu, conv, vec, count = run(mv, V0, all_rows)
    if algebraic and bool((mu < 0).any()):
        neg = mu < 0
        shift = torch.where(neg, mu, torch.zeros_like(mu))
        op = lambda v: mv(v) - shift[:, None] * v  # noqa: E731
        lam, conv2, vec2, count2 = run(op, V0, neg)
        mu = torch.where(neg, lam + shift, mu)
        conv = torch.where(neg, conv2, conv)
        vec = torch.where(neg[:, None], vec2, vec)
        count += count2
    return _pack(single, mu, count, conv, vec)


def eigsh_top_eig(matvec: Matvec, v0: Union[int, Tensor], *, tol: float = 1e-10, max_iter: Optional[int] = None,
                  generator: Optional[torch.Generator] = None, dtype: Optional[torch.dtype] = None,
                  device=None) -> EigResult:
    """Largest algebraic eigenvalue of one symmetric operator by SciPy's ARPACK: the CPU reference.

    ``scipy.sparse.linalg.eigsh(which="LA", k=1)`` on a ``LinearOperator`` whose matvec
    calls ``matvec`` (float64 NumPy vectors in and out; the operator runs in ``v0``'s dtype
    and device).

    Parameters
    ----------
    matvec : callable ``(n,) -> (n,)``
    v0 : int or Tensor ``(n,)``
        Start vector, or the dimension (standard normal start, as in :func:`lanczos_top_eig`).
    tol : float
        ARPACK's relative tolerance.
    max_iter : int, optional
        ARPACK's ``maxiter`` (its default when None).
    generator, dtype, device : as in :func:`lanczos_top_eig`

    Returns
    -------
    EigResult
        ``converged`` False when ARPACK did not converge (``value`` then its best estimate,
        NaN if none).

    Examples
    --------
    >>> A = torch.diag(torch.tensor([3.0, -5.0, 1.0], dtype=torch.float64))
    >>> round(eigsh_top_eig(lambda v: A @ v, 3).value, 12)
    3.0
    """
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    positive_real(tol, "tol")
    if max_iter is not None:
        positive_int(max_iter, "max_iter")
    V0, single = _start_vector(v0, generator, dtype, device)
    if not single:
        raise ValueError(f"v0: eigsh_top_eig takes one start vector (n,), got shape {tuple(V0.shape)}")
    v = V0[0]
    n = v.numel()
    count = [0]

    def mv(t: Tensor) -> Tensor:
        count[0] += 1
        return matvec(t).reshape(-1)

    if n == 1:
        w = mv(torch.ones(1, dtype=v.dtype, device=v.device))
        return EigResult(float(w[0]), count[0], bool(torch.isfinite(w).all()), torch.ones(1, dtype=v.dtype,
                                                                                         device=v.device))

    def np_matvec(x):
        t = torch.as_tensor(np.asarray(x, dtype=np.float64).reshape(-1), device=v.device).to(v.dtype)
        return mv(t).detach().cpu().numpy().astype(np.float64)

    lin = LinearOperator((n, n), matvec=np_matvec, dtype=np.float64)
    kwargs = {} if max_iter is None else {"maxiter": int(max_iter)}
    try:
        vals, vecs = eigsh(lin, k=1, which="LA", tol=tol, v0=v.detach().cpu().numpy().astype(np.float64), **kwargs)
        vec = torch.as_tensor(vecs[:, 0], dtype=v.dtype, device=v.device)
        return EigResult(float(vals[0]), count[0], True, vec)
    except ArpackNoConvergence as exc:  # pragma: no cover - rare
        vals = exc.eigenvalues
        val = float(np.max(vals)) if len(vals) else float("nan")
        return EigResult(val, count[0], False, v / v.norm())
