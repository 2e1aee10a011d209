"""Chapter 05 experiments (torch, float64): batched GD on the scalar and the matrix problem.

``scalar_gd`` steps ``K`` runs of ``(mu - x y)^2/2`` (one ``eta`` per run) together,
``matrix_gd`` ``K`` runs of ``||A - X Y^T||_F^2/2`` with batched matmuls, both on the one
masked GD loop :func:`lrtheory.core.gd.run_gd` with the closed-form gradients. A run that
leaves the bound is frozen at its last state inside it and never touches another; the end state
(converged / periodic orbit / bounded / diverged) is decided by
:func:`~lrtheory.results.balancing.analysis.classify_end_states`.

Example
-------
>>> run = scalar_gd(9.0, 1.0, [0.01, 0.04], mu=2.0, steps=2000, device="cpu")
>>> [EndState(s).name for s in run.status]
['CONVERGED', 'CONVERGED']
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
import torch

from lrtheory.core import validate
from lrtheory.core.device import DeviceLike, make_generator, resolve_device
from lrtheory.core.gd import run_gd
from lrtheory.results.balancing.analysis import EndState, classify_end_states
from lrtheory.results.balancing.config import EndStateRule

__all__ = ["ScalarRun", "MatrixRun", "scalar_top_eigenvalue", "matrix_top_eigenvalue", "scalar_gd", "matrix_gd",
           "make_matrix_problem", "make_gaussian_problem", "divergence_edge", "EndState"]

_RULE = EndStateRule()


def _etas(eta, device, dtype) -> torch.Tensor:
    arr = validate.positive_array(np.asarray(eta.detach().cpu() if isinstance(eta, torch.Tensor) else eta,
                                             dtype=np.float64), "eta").reshape(-1)
    return torch.as_tensor(arr).to(device=device, dtype=dtype)


def scalar_top_eigenvalue(x0: float, y0: float, mu: float) -> float:
    """Top Hessian eigenvalue ``L`` of ``(mu - x y)^2/2`` at ``(x0, y0)``, from a dense torch Hessian.

    Independent of the sympy closed form (the tests check one against the other).

    Raises
    ------
    ValueError
        On a non-finite ``x0``/``y0`` or ``mu <= 0``.
    """
    x0, y0 = validate.finite_real(x0, "x0"), validate.finite_real(y0, "y0")
    mu = validate.positive_real(mu, "mu")
    z = torch.tensor([x0, y0], dtype=torch.float64)
    H = torch.autograd.functional.hessian(lambda v: 0.5 * (mu - v[0] * v[1]) ** 2, z)
    return float(torch.linalg.eigvalsh(H)[-1])


@dataclass(frozen=True)
class ScalarRun:
    """Result of :func:`scalar_gd` (numpy arrays, float64; ``K`` runs).

    Attributes
    ----------
    eta : (K,) step sizes.
    x, y : (K,) final iterates (for a diverged run: the last state before it left the bound).
    loss : (K,) final ``(mu - x y)^2 / 2``.
    status : (K,) :class:`EndState` codes.
    period : (K,) the period of a periodic run, else 0.
    steps_to_converge : (K,) first step with ``loss <= loss_tol``, checked every ``check_every`` steps (-1 if never).
    diverged_at : (K,) step at which the run left the bound (-1 if never).
    tail_x, tail_y : (max_period + 1, K) the last states (the orbit of a periodic run).
    traj_x, traj_y : (T+1, K) trajectories (NaN after a run's divergence), or None when not recorded.
    """

    eta: np.ndarray
    x: np.ndarray
    y: np.ndarray
    loss: np.ndarray
    status: np.ndarray
    period: np.ndarray
    steps_to_converge: np.ndarray
    diverged_at: np.ndarray
    tail_x: Optional[np.ndarray] = None
    tail_y: Optional[np.ndarray] = None
    traj_x: Optional[np.ndarray] = None
    traj_y: Optional[np.ndarray] = None

    def select(self, sl: slice) -> "ScalarRun":
        """The runs ``sl`` of this batch (per-run arrays are on the last axis)."""
        return ScalarRun(**{k: None if getattr(self, k) is None else getattr(self, k)[..., sl]
                            for k in self.__dataclass_fields__})


def _run(loss_fn, grad_fn, params, eta: torch.Tensor, steps: int, rule: EndStateRule, trajectory: bool):
    """:func:`~lrtheory.core.gd.run_gd` with a parameter bound and no loss-based divergence rule, every step run.

    Returns ``(res, final_loss, tails, first_conv, traj)``: ``final_loss`` at the final parameters
    (finite for a diverged model, frozen inside the bound), ``tails`` the last ``max_period + 1`` states of
    each parameter (numpy, oldest first, the final one last), ``first_conv`` the first multiple of
    ``check_every`` (or the last step) at which a model still inside the bound had
    ``loss <= loss_tol`` (-1: never), ``traj`` the recorded parameters ``(T+1, K, ...)`` or None.
    """
    keep = rule.max_period + 1
    first = max(1, steps - keep + 1)
    hist: list = []
    K = eta.shape[0]
    first_conv = torch.full((K,), -1, dtype=torch.int64, device=eta.device)

    def callback(st):  # sees theta_t before the update of step t (t < steps)
        nonlocal first_conv
        if st.step >= first:
            hist.append([p.detach().clone() for p in st.params])
        if st.step and st.step % rule.check_every == 0:
            hit = (first_conv < 0) & st.active & (st.loss <= rule.loss_tol)
            first_conv = torch.where(hit, torch.full_like(first_conv, st.step), first_conv)

    record = (lambda st: {f"p{i}": p for i, p in enumerate(st.params)}) if trajectory else None
    res = run_gd(loss_fn, params, eta, steps, grad_fn=grad_fn, divergence_factor=None, param_bound=rule.bound,
                 record=record, record_every=1 if trajectory else max(steps, 1), callback=callback)
    alive = torch.as_tensor(~res.diverged, device=eta.device)
    with torch.no_grad():
        final_loss = loss_fn(res.params)
    hit = (first_conv < 0) & alive & (final_loss <= rule.loss_tol)
    first_conv = torch.where(hit, torch.full_like(first_conv, steps), first_conv)
    hist.append(res.params)
    while len(hist) < keep:  # fewer steps than the classification window (or every model diverged early)
        hist.insert(0, hist[0])
    tails = [torch.stack([h[i] for h in hist]).cpu().numpy() for i in range(len(params))]
    traj = None
    if trajectory:
        traj = [res.records[f"p{i}"] for i in range(len(params))]
        short = steps + 1 - traj[0].shape[0]  # every model diverged before the end: nothing left to record
        traj = [np.concatenate([t, np.full((short,) + t.shape[1:], np.nan)]) if short else t for t in traj]
    return res, final_loss, tails, first_conv, traj


def scalar_gd(x0, y0, eta, mu: float = 2.0, steps: int = 10000, *, rule: EndStateRule = _RULE,
              record: bool = False, device: DeviceLike = None) -> ScalarRun:
    """GD on ``(mu - x y)^2 / 2`` for ``K`` step sizes at once, float64, on :func:`~lrtheory.core.gd.run_gd`.

    Parameters
    ----------
    x0, y0 : float or array of shape (K,)
        Initialization (broadcast against ``eta``).
    eta : float or array of shape (K,)
        Step sizes, all > 0.
    mu : float
        Target, > 0.
    steps : int
        Number of GD steps T.
    rule : EndStateRule
        Divergence bound, convergence threshold, orbit detection (defaults: ``|x|, |y| <= 1e6``,
        loss ``<= 1e-20``, periods up to 16 at relative tolerance ``1e-9``).
    record : bool
        Keep the trajectories (T+1, K).
    device : str, torch.device or None

    Returns
    -------
    ScalarRun

    Raises
    ------
    ValueError
        If ``eta <= 0`` or NaN, ``mu <= 0``, non-finite ``x0``/``y0``, ``steps < 1``, or
        ``x0``, ``y0``, ``eta`` do not broadcast to one shape ``(K,)``.
    """
    dev = resolve_device(device)
    dt = torch.float64
    mu = validate.positive_real(mu, "mu")
    steps = validate.positive_int(steps, "steps")
    validate.positive_real(rule.bound, "rule.bound")
    eta_t = _etas(eta, dev, dt)
    starts = [torch.as_tensor(validate.finite_array(v, name, nonempty=True).reshape(-1)).to(device=dev, dtype=dt)
              for v, name in ((x0, "x0"), (y0, "y0"))]
    try:
        x, y, h = torch.broadcast_tensors(starts[0], starts[1], eta_t)
    except RuntimeError as exc:
        raise ValueError(f"x0, y0, eta: shapes {tuple(starts[0].shape)}, {tuple(starts[1].shape)}, "
                         f"{tuple(eta_t.shape)} do not broadcast") from exc

    def loss_fn(p):
        return 0.5 * (mu - p[0] * p[1]) ** 2

    def grad_fn(p):  # closed form: d/dx = -(mu - x y) y, d/dy = -(mu - x y) x
        r = mu - p[0] * p[1]
        return [-r * p[1], -r * p[0]]

    res, loss, (tail_x, tail_y), first_conv, traj = _run(loss_fn, grad_fn, [x.clone(), y.clone()], h.clone(),
                                                          steps, rule, record)
    diverged = res.diverged
    status, period = classify_end_states(tail_x, tail_y, diverged, loss.cpu().numpy(), rule.loss_tol,
                                         rule.max_period, rule.orbit_tol)
    steps_to_converge = np.where(status == int(EndState.CONVERGED), first_conv.cpu().numpy(), -1)
    # run_gd's stop_step is the step whose update was refused; the state after it would be step + 1
    diverged_at = np.where(diverged, res.stop_step + 1, -1)
    xs, ys = (p.cpu().numpy() for p in res.params)
    return ScalarRun(eta=res.etas, x=xs, y=ys, loss=loss.cpu().numpy(), status=status, period=period,
                     steps_to_converge=steps_to_converge, diverged_at=diverged_at, tail_x=tail_x, tail_y=tail_y,
                     traj_x=traj[0] if record else None, traj_y=traj[1] if record else None)


# ----------------------------------------------------------------------------- matrix case
def _matrix_problem(A, X0, Y0, device, dtype) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    out = []
    for val, name in ((A, "A"), (X0, "X0"), (Y0, "Y0")):
        t = torch.as_tensor(val if isinstance(val, torch.Tensor) else np.asarray(val, dtype=np.float64))
        t = validate.finite_tensor(t.to(device=device, dtype=dtype), name)
        if t.ndim != 2:
            raise ValueError(f"{name}: expected a 2-d matrix, got shape {tuple(t.shape)}")
        out.append(t)
    A, X0, Y0 = out
    m, n = A.shape
    if X0.shape[0] != m:
        raise ValueError(f"X0: expected {m} rows to match A of shape {tuple(A.shape)}, got {tuple(X0.shape)}")
    if Y0.shape[0] != n:
        raise ValueError(f"Y0: expected {n} rows to match A of shape {tuple(A.shape)}, got {tuple(Y0.shape)}")
    if X0.shape[1] != Y0.shape[1]:
        raise ValueError(f"Y0: expected {X0.shape[1]} columns to match X0 {tuple(X0.shape)}, got {tuple(Y0.shape)}")
    return A, X0, Y0


def matrix_top_eigenvalue(A, X, Y) -> float:
    """Top Hessian eigenvalue of ``||A - X Y^T||_F^2 / 2`` at ``(X, Y)`` (dense torch Hessian, eigvalsh).

    Raises
    ------
    ValueError
        On non-matching shapes or non-finite entries.
    """
    A, X, Y = _matrix_problem(A, X, Y, torch.device("cpu"), torch.float64)
    m, r = X.shape
    n = Y.shape[0]

    def f(z):
        Xz, Yz = z[: m * r].reshape(m, r), z[m * r:].reshape(n, r)
        return 0.5 * ((A - Xz @ Yz.T) ** 2).sum()

    H = torch.autograd.functional.hessian(f, torch.cat([X.reshape(-1), Y.reshape(-1)]))
    return float(torch.linalg.eigvalsh(H)[-1])


@dataclass(frozen=True)
class MatrixRun:
    """Result of :func:`matrix_gd` (numpy, float64; ``K`` runs).

    Attributes
    ----------
    eta : (K,) step sizes.
    X : (K, m, r), Y : (K, n, r) final iterates.
    loss : (K,) final loss.
    status, period : (K,) end states (see :class:`ScalarRun`).
    norm_ratio : (K,) ``||X||_F / ||Y||_F``.
    imbalance : (K,) ``||X^T X - Y^T Y||_F``.
    lam_gram : (K,) ``lambda_max(X^T X + Y^T Y)``.
    """

    eta: np.ndarray
    X: np.ndarray
    Y: np.ndarray
    loss: np.ndarray
    status: np.ndarray
    period: np.ndarray
    norm_ratio: np.ndarray
    imbalance: np.ndarray
    lam_gram: np.ndarray


def matrix_gd(A, X0, Y0, eta, steps: int = 5000, *, rule: EndStateRule = _RULE,
              device: DeviceLike = None) -> MatrixRun:
    """GD on ``||A - X Y^T||_F^2 / 2`` for ``K`` step sizes at once (float64, batched matmuls).

    Parameters
    ----------
    A : (m, n) target.
    X0 : (m, r), Y0 : (n, r) initialization (the same for every run).
    eta : float or (K,) step sizes, all > 0.
    steps, rule, device
        As in :func:`scalar_gd` (``rule.loss_tol`` is absolute, ``rule.bound`` on every entry).

    Returns
    -------
    MatrixRun

    Raises
    ------
    ValueError
        On ``eta <= 0`` / NaN, non-finite or non-matching ``A``, ``X0``, ``Y0``, ``steps < 1``.

    Example
    -------
    >>> A = np.eye(2); run = matrix_gd(A, 2 * np.eye(2), 0.5 * np.eye(2), [0.05], steps=3000, device="cpu")
    >>> EndState(run.status[0]).name
    'CONVERGED'
    """
    dev = resolve_device(device)
    dt = torch.float64
    h = _etas(eta, dev, dt)
    A, X0, Y0 = _matrix_problem(A, X0, Y0, dev, dt)
    steps = validate.positive_int(steps, "steps")
    validate.positive_real(rule.bound, "rule.bound")
    K = h.shape[0]

    def loss_fn(p):
        return 0.5 * ((A - p[0] @ p[1].transpose(1, 2)) ** 2).sum(dim=(1, 2))

    def grad_fn(p):  # closed form (derive_matrix_gd): grad_X = -R Y, grad_Y = -R^T X
        R = A - p[0] @ p[1].transpose(1, 2)
        return [-(R @ p[1]), -(R.transpose(1, 2) @ p[0])]

    params = [X0.expand(K, *X0.shape).clone(), Y0.expand(K, *Y0.shape).clone()]
    res, loss, (tail_x, tail_y), _, _ = _run(loss_fn, grad_fn, params, h, steps, rule, False)
    status, period = classify_end_states(tail_x, tail_y, res.diverged, loss.cpu().numpy(), rule.loss_tol,
                                         rule.max_period, rule.orbit_tol)
    X, Y = res.params
    XtX, YtY = X.transpose(1, 2) @ X, Y.transpose(1, 2) @ Y
    ratio = torch.linalg.matrix_norm(X) / torch.linalg.matrix_norm(Y)
    imb = torch.linalg.matrix_norm(XtX - YtY)
    lam = torch.linalg.eigvalsh(XtX + YtY)[:, -1]
    np_ = lambda t: t.detach().cpu().numpy()  # noqa: E731
    return MatrixRun(eta=res.etas, X=np_(X), Y=np_(Y), loss=np_(loss), status=status, period=period,
                     norm_ratio=np_(ratio), imbalance=np_(imb), lam_gram=np_(lam))


def make_matrix_problem(m: int = 4, n: int = 3, rank: int = 2, *, singular_values: Sequence[float] = (2.0, 1.0),
                        x_scale: float = 4.0, y_scale: float = 0.2, seed: int = 0):
    """A rank-``rank`` target ``A`` (m, n) and an unbalanced initialization ``X0`` (m, rank), ``Y0`` (n, rank).

    ``A = U diag(singular_values) V^T`` with random orthonormal ``U, V``; ``X0``, ``Y0`` are
    Gaussian, rescaled to Frobenius norms ``x_scale`` and ``y_scale`` (initial ratio
    ``x_scale / y_scale``). Every draw comes from one generator seeded with ``seed`` (the
    chapter passes ``core.device.seed_for(...)``). Returns numpy arrays ``(A, X0, Y0)``.

    Raises
    ------
    ValueError
        If ``rank > min(m, n)``, ``len(singular_values) != rank`` or a scale is not > 0.
    """
    m, n, rank = validate.positive_int(m, "m"), validate.positive_int(n, "n"), validate.positive_int(rank, "rank")
    if rank > min(m, n):
        raise ValueError(f"rank: must be <= min(m, n) = {min(m, n)}, got {rank}")
    if len(singular_values) != rank:
        raise ValueError(f"singular_values: expected {rank} values, got {len(singular_values)}")
    x_scale = validate.positive_real(x_scale, "x_scale")
    y_scale = validate.positive_real(y_scale, "y_scale")
    g = make_generator(validate.nonneg_int(seed, "seed"), "cpu")
    U, _ = torch.linalg.qr(torch.randn(m, m, generator=g, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    s = torch.tensor([float(v) for v in singular_values], dtype=torch.float64)
    A = U[:, :rank] @ torch.diag(s) @ V[:, :rank].T
    X0 = torch.randn(m, rank, generator=g, dtype=torch.float64)
    Y0 = torch.randn(n, rank, generator=g, dtype=torch.float64)
    X0 = X0 * (x_scale / torch.linalg.matrix_norm(X0))
    Y0 = Y0 * (y_scale / torch.linalg.matrix_norm(Y0))
    return A.numpy(), X0.numpy(), Y0.numpy()


def make_gaussian_problem(n: int, d: int, *, x_scale: float, y_scale: float, seed: int):
    """The paper's matrix setting: ``A`` (n, n) with i.i.d. ``N(0, 1/n)`` entries, ``X0``, ``Y0`` (n, d)
    with i.i.d. ``N(0, x_scale^2/n)`` and ``N(0, y_scale^2/n)`` entries (unbalanced when
    ``x_scale >> y_scale``). One generator seeded with ``seed``. Returns numpy ``(A, X0, Y0)``.

    Raises
    ------
    ValueError
        If ``n``, ``d`` are not positive integers or a scale is not > 0.

    Example
    -------
    >>> A, X0, Y0 = make_gaussian_problem(3, 3, x_scale=3.0, y_scale=0.3, seed=1)
    >>> A.shape, X0.shape, Y0.shape
    ((3, 3), (3, 3), (3, 3))
    """
    n, d = validate.positive_int(n, "n"), validate.positive_int(d, "d")
    x_scale = validate.positive_real(x_scale, "x_scale")
    y_scale = validate.positive_real(y_scale, "y_scale")
    g = make_generator(validate.nonneg_int(seed, "seed"), "cpu")
    A = torch.randn(n, n, generator=g, dtype=torch.float64) / np.sqrt(n)
    X0 = torch.randn(n, d, generator=g, dtype=torch.float64) * (x_scale / np.sqrt(n))
    Y0 = torch.randn(n, d, generator=g, dtype=torch.float64) * (y_scale / np.sqrt(n))
    return A.numpy(), X0.numpy(), Y0.numpy()


def divergence_edge(diverges, lo, hi, points: int, rounds: int):
    """Bracket the first LR at which runs diverge, by ``rounds`` refinements of a ``points``-point grid.

    Parameters
    ----------
    diverges : callable
        ``diverges(etas)`` for an array ``(B, points)`` of LRs (one row per problem) returns a
        bool array of the same shape (True: that run left the bound).
    lo, hi : (B,) arrays, the starting bracket of each problem.
    points, rounds : grid points per round (>= 3), number of rounds (>= 1).

    Returns
    -------
    (lo, hi, found) : (B,) arrays. Each round keeps the cell ``[last non-diverged, first
        diverged]`` of the grid; ``found`` is False where no run of the first grid diverged
        (then ``lo = hi`` = the top of the bracket) or the first one already did (``lo = hi`` = its bottom).
    """
    points = validate.positive_int(points, "points")
    rounds = validate.positive_int(rounds, "rounds")
    if points < 3:
        raise ValueError(f"points: expected >= 3, got {points}")
    lo, hi = np.array(lo, dtype=np.float64).reshape(-1), np.array(hi, dtype=np.float64).reshape(-1)
    found = np.ones(lo.shape, dtype=bool)
    for k in range(rounds):
        t = np.linspace(0.0, 1.0, points)
        grid = lo[:, None] + (hi - lo)[:, None] * t[None, :]
        div = np.asarray(diverges(grid), dtype=bool).reshape(grid.shape)
        first = np.where(div.any(axis=1), div.argmax(axis=1), points)
        if k == 0:
            found = (first > 0) & (first < points)
        idx = np.clip(first, 1, points - 1)
        new_lo = grid[np.arange(len(lo)), idx - 1]
        new_hi = grid[np.arange(len(lo)), idx]
        new_lo = np.where(first == points, grid[:, -1], np.where(first == 0, grid[:, 0], new_lo))
        new_hi = np.where(first == points, grid[:, -1], np.where(first == 0, grid[:, 0], new_hi))
        lo, hi = new_lo, new_hi
    return lo, hi, found
