"""Curvature of the loss: Hessian-vector products, top Hessian eigenvalue (sharpness),
dense Hessians, and the top eigenvalues of the empirical NTK and the Gauss-Newton matrix.

The *sharpness* is the largest **algebraic** eigenvalue ``lambda_1`` of the Hessian of
the training loss with respect to the parameters. Hessians of non-convex losses
have negative eigenvalues; plain power iteration (as in PyHessian) converges to
the eigenvalue of largest *magnitude*, which can be negative: a known trap. Here
Lanczos (the default) and ``scipy.sparse.linalg.eigsh(which="LA")`` give the top
algebraic eigenvalue directly, and :func:`power_iteration_top_eig` shifts the
spectrum when the dominant eigenvalue comes out negative.

Entry points
------------
* :func:`sharpness` (exported as ``lrtheory.sharpness``): any ``torch.nn.Module``
  (biases, convolutions, tanh, ... ) and any scalar ``loss_fn(outputs, targets)``;
  parameters are those with ``requires_grad``; the model is evaluated through
  ``torch.func.functional_call`` in its current mode, and its buffers are passed
  as copies (BatchNorm running statistics are left untouched). Methods:
  ``"lanczos"`` (torch, full reorthogonalization), ``"power"``, ``"eigsh"``
  (SciPy ARPACK on a ``LinearOperator`` of HVPs: the CPU reference) and
  ``"dense"`` (dense Hessian + ``eigvalsh``, small models only).
* :func:`batched_sharpness`: the K models of a core MLP at once. The models share
  no parameters, so the Hessian of ``sum_k L_k`` is block diagonal and one HVP of
  the sum with stacked vectors is K independent HVPs; Lanczos runs one Krylov
  space per model in lock step.
* :func:`ntk_top_eig`, :func:`gauss_newton_top_eig`: for core MLPs, ``(K,)``.

Conventions
-----------
* Convergence of Lanczos / power iteration: the Ritz residual
  ``||H v - theta v|| <= tol * |theta|`` (for Lanczos estimated as
  ``beta_j |s_j|``). For a symmetric matrix the eigenvalue error is at most the
  residual, so ``tol`` bounds the relative error of the value.
* ``n_hvp`` counts Hessian-vector products per model (a batched HVP of K
  models counts once). ``"dense"`` reports ``n_hvp = P`` (the number of
  parameters), the cost of a dense Hessian in HVPs.
* NTK normalisation: with ``J_k`` the ``(N d_out, P)`` Jacobian of model ``k``'s
  outputs on the ``N`` inputs, ``normalize="batch"`` returns the top eigenvalue of
  ``J J^T / N`` (as in Lewkowycz et al.'s ``lambda_0``), ``"none"`` of ``J J^T``.
  For the loss ``1/(2N) sum_i ||f(x_i) - y_i||^2`` (the MSE of
  :mod:`lrtheory.core.train`) the Gauss-Newton matrix is ``G = J^T J / N``, whose
  non-zero eigenvalues are those of ``J J^T / N``: the batch-normalised NTK top
  eigenvalue **equals** the Gauss-Newton top eigenvalue.

Example
-------
>>> import torch
>>> from lrtheory.core.curvature import sharpness
>>> net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1)).double()
>>> x, y = torch.randn(16, 3, dtype=torch.float64), torch.randn(16, 1, dtype=torch.float64)
>>> res = sharpness(net, torch.nn.functional.mse_loss, x, y)
>>> res.method, res.converged
('lanczos', True)
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor, nn

from lrtheory.core.device import make_generator
from lrtheory.core.validate import positive_int, positive_real
from lrtheory.core.mlp import MLPSpec, _check_params, forward
from lrtheory.core.train import LOSSES, _loss_from_out

__all__ = [
    "SHARPNESS_METHODS",
    "EigResult",
    "SharpnessResult",
    "BatchedSharpnessResult",
    "hvp",
    "lanczos_top_eig",
    "power_iteration_top_eig",
    "dense_hessian",
    "sharpness",
    "batched_sharpness",
    "ntk_top_eig",
    "gauss_newton_top_eig",
]

#: Methods accepted by :func:`sharpness`.
SHARPNESS_METHODS = ("lanczos", "power", "eigsh", "dense")

Matvec = Callable[[Tensor], Tensor]


# ----------------------------------------------------------------------------- results
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


@dataclass(frozen=True)
class SharpnessResult:
    """Top algebraic Hessian eigenvalue of one model (see :func:`sharpness`)."""

    value: float
    n_hvp: int
    method: str
    converged: bool


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
    v0 = torch.randn(1, int(n_or_v0), generator=g, dtype=torch.float64)
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
    jconv = torch.zeros(K, dtype=torch.long, device=V0.device)
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
            jconv = torch.where(new, torch.full_like(jconv, j + 1), jconv)
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


# ----------------------------------------------------------------------------- core MLPs, batched
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
    rows = [torch.randn(n, generator=make_generator(int(seed) * 1_000_003 + k, "cpu"), dtype=torch.float64)
            for k in range(K)]
    return torch.stack(rows).to(dtype=dtype, device=device)


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
    tol, max_iter, seed : as in :func:`sharpness` (start vector of model ``k`` depends
        on ``(seed, k)`` only, so a model gets the same start alone or in a batch).
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


def _jvp_vjp_ops(spec: MLPSpec, params: Sequence[Tensor], x: Tensor):
    """``J v`` and ``J^T u`` for the stacked models, by reverse mode only: ``J^T u`` is a VJP
    through a retained graph, and ``J v = d/du <J^T u, v>`` (the "double-VJP" trick; ``J^T u``
    is linear in ``u``, so one graph built at ``u = 0`` serves every product)."""
    P0 = [p.detach().clone().requires_grad_(True) for p in params]
    with torch.enable_grad():
        out = forward(spec, P0, x, check=False)
        u = torch.zeros_like(out, requires_grad=True)
        JTu = torch.autograd.grad(out, P0, grad_outputs=u, create_graph=True)

    def jvp(V: Sequence[Tensor]) -> Tensor:
        return torch.autograd.grad(JTu, u, grad_outputs=list(V), retain_graph=True)[0].detach()

    def vjp(U: Tensor) -> List[Tensor]:
        return [g.detach() for g in torch.autograd.grad(out, P0, grad_outputs=U, retain_graph=True)]

    return out.detach(), jvp, vjp


def _gn_like_top(spec, params, x, apply_out_hessian, *, tol, max_iter, seed):
    K = params[0].shape[0]
    unflat, n = _unflat_fn(params)
    out, jvp, vjp = _jvp_vjp_ops(spec, params, x)
    count = [0]

    def matvec(V: Tensor) -> Tensor:
        count[0] += 1
        Jv = jvp(unflat(V))
        return _flat(vjp(apply_out_hessian(out, Jv)))

    v0 = _batched_start(K, n, seed, params[0].dtype, params[0].device)
    r = lanczos_top_eig(matvec, v0, tol=tol, max_iter=max_iter)
    return np.asarray(r.value, dtype=np.float64), r


def ntk_top_eig(
    spec: MLPSpec,
    params: Sequence[Tensor],
    x: Tensor,
    *,
    normalize: str = "batch",
    method: str = "auto",
    tol: float = 1e-10,
    max_iter: int = 300,
    seed: int = 0,
) -> np.ndarray:
    """Top eigenvalue of each model's empirical NTK Gram matrix on ``x``, ``(K,)``.

    The Gram matrix is ``Theta = J J^T`` of size ``(N d_out, N d_out)``, ``J`` the
    Jacobian of the flattened outputs ``(N, d_out)`` with respect to all trainable
    parameters (the raw tensors of :mod:`lrtheory.core.mlp`, so the forward
    multipliers enter ``J``).

    Parameters
    ----------
    spec, params : batch of core MLPs
    x : Tensor ``(N, d_in)``
    normalize : "batch" or "none"
        ``"batch"``: eigenvalue of ``Theta / N`` (= the Gauss-Newton top eigenvalue
        of the 1/2-MSE loss, and Lewkowycz et al.'s ``lambda_0``); ``"none"``: of ``Theta``.
    method : "auto", "dense" or "lanczos"
        ``"dense"`` builds per-example Jacobians (``torch.func.vmap(jacrev)``) and the
        Gram matrix, then ``eigvalsh``; ``"lanczos"`` runs Lanczos on ``J^T J`` with
        JVP/VJP products (same non-zero spectrum, no Jacobian in memory);
        ``"auto"`` picks dense when ``K N d_out P <= 2e7``.
    tol, max_iter, seed : Lanczos settings.

    Returns
    -------
    ndarray ``(K,)``

    Raises
    ------
    ValueError
        On bad shapes or an unknown option.
    """
    K = _check_xy(spec, params, x, None, "mse", need_y=False)
    if normalize not in ("batch", "none"):
        raise ValueError(f"normalize: expected 'batch' or 'none', got {normalize!r}")
    if method not in ("auto", "dense", "lanczos"):
        raise ValueError(f"method: expected 'auto', 'dense' or 'lanczos', got {method!r}")
    _check_tol(tol, max_iter)
    N = x.shape[0]
    _, n = _unflat_fn(params)
    if method == "auto":
        method = "dense" if K * N * spec.d_out * n <= 2e7 else "lanczos"
    scale = 1.0 / N if normalize == "batch" else 1.0
    if method == "dense":
        def f_single(*p):
            return forward(spec, [q.unsqueeze(0) for q in p], x, check=False)[0]  # (N, d_out)

        jac = torch.func.vmap(torch.func.jacrev(f_single, argnums=tuple(range(len(params)))))(
            *[p.detach() for p in params]
        )
        J = torch.cat([j.reshape(K, N * spec.d_out, -1) for j in jac], dim=2)
        G = J @ J.transpose(1, 2) * scale
        bad = ~torch.isfinite(G.flatten(1)).all(dim=1)
        G = torch.where(bad[:, None, None], torch.zeros_like(G), G)
        top = torch.linalg.eigvalsh(G)[:, -1]
        top = torch.where(bad, torch.full_like(top, float("nan")), top)
        return top.detach().cpu().numpy().astype(np.float64)
    vals, _ = _gn_like_top(spec, params, x, lambda out, Jv: Jv * scale, tol=tol, max_iter=max_iter, seed=seed)
    return vals


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
    """Top eigenvalue of the Gauss-Newton matrix ``G = J^T H_out J`` of each model, ``(K,)``.

    ``H_out`` is the Hessian of the loss with respect to the outputs: ``I / N`` for
    the 1/2-MSE (so ``G = J^T J / N``, ``y`` unused), and per example
    ``(diag(p) - p p^T) / N`` with ``p = softmax(f(x))`` for CE (``y`` unused too:
    ``H_out`` does not depend on the labels). Lanczos with JVP/VJP products.

    Raises
    ------
    ValueError
        On bad shapes or an unknown loss.
    """
    K = _check_xy(spec, params, x, None, loss, need_y=False)
    _check_tol(tol, max_iter)
    N = x.shape[0]
    if loss == "mse":
        def Hout(out, Jv):
            return Jv / N
    else:
        def Hout(out, Jv):
            p = torch.softmax(out, dim=-1)
            return (p * Jv - p * (p * Jv).sum(-1, keepdim=True)) / N
    vals, _ = _gn_like_top(spec, params, x, Hout, tol=tol, max_iter=max_iter, seed=seed)
    return vals
