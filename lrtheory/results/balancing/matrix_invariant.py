"""Chapter 05 derivations, matrix case (sympy/numpy): how much of ``||X||_F^2 - ||Y||_F^2`` GD on
``||A - X Y^T||_F^2/2`` loses below ``2/L``. Re-exported by :mod:`~lrtheory.results.balancing.derivation`.

Gradient flow conserves ``D = X^T X - Y^T Y``; GD changes it by ``eta^2 (Y^T R^T R Y - X^T R R^T X)``
per step (:func:`~lrtheory.results.balancing.derivation.derive_matrix_imbalance_recursion`),
so its trace, ``||X||_F^2 - ||Y||_F^2``, moves by ``eta^2 (||R Y||_F^2 - ||R^T X||_F^2)``.
Summing it over the run needs the residual's path. Here the factors are frozen at the start
(``K = X0 X0^T``, ``G = Y0 Y0^T``) and the residual's second-order term dropped: then
``R`` decays mode by mode, and the sum is a geometric series sympy sums in closed form.

Example
-------
>>> from lrtheory.results.balancing import derivation as D
>>> D.derive_frozen_mode_sum().increment_sum
-eta*r2*(gamma - lambda)/((gamma + lambda)*(eta*gamma + eta*lambda - 2))
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import sympy as sp

__all__ = ["MatrixResidualStep", "derive_matrix_residual_step", "FrozenModeSum", "derive_frozen_mode_sum",
           "frozen_modes", "predicted_matrix_imbalance_change",
           "ModeReduction", "derive_mode_reduction", "MatrixModes", "matrix_modes", "mode_gd",
           "predicted_matrix_imbalance_change_modes", "mode_edges", "predicted_matrix_edge"]


@dataclass(frozen=True)
class MatrixResidualStep:
    """One GD step of the residual ``R = A - X Y^T`` (non-commutative symbols): ``R_next``
    (expanded in ``R, X, Y``), ``linear`` (``-eta (X X^T R + R Y Y^T)``), ``second`` (the rest:
    ``-eta^2 R Y X^T R``)."""

    R_next: sp.Expr
    linear: sp.Expr
    second: sp.Expr


@functools.lru_cache(maxsize=None)
def derive_matrix_residual_step() -> MatrixResidualStep:
    """``R' = R - eta (X X^T R + R Y Y^T) - eta^2 R Y X^T R``, expanded by sympy.

    GD is ``X' = X + eta R Y``, ``Y'^T = Y^T + eta X^T R``; sympy expands ``A - X' Y'^T`` with
    ``A = R + X Y^T`` (non-commutative symbols) and splits it by the power of ``eta``.

    Example
    -------
    >>> st = derive_matrix_residual_step()
    >>> st.second
    -eta**2*R*Y*X^T*R
    """
    from lrtheory.results.balancing.derivation import symbols

    X, Y, R, Xt, Yt = sp.symbols("X Y R X^T Y^T", commutative=False)
    eta = symbols().eta
    A = R + X * Yt
    R_next = sp.expand(A - (X + eta * R * Y) * (Yt + eta * Xt * R))
    poly = sp.collect(R_next, eta, evaluate=False)
    return MatrixResidualStep(R_next=R_next, linear=eta * poly[eta], second=eta ** 2 * poly[eta ** 2])


@dataclass(frozen=True)
class FrozenModeSum:
    """The frozen-factor sum for one mode ``R = r u v^T`` (``K u = lambda u``, ``G v = gamma v``).

    ``multiplier`` (``1 - eta (lambda + gamma)``: the mode's factor per step), ``increment``
    (the step-``t`` change of ``||X||^2 - ||Y||^2``, ``eta^2 (gamma - lambda) r2 q^(2t)``),
    ``increment_sum`` (its sum over ``t >= 0``, closed form), ``converges_if`` (``|q| < 1``)."""

    eta: sp.Symbol
    lam: sp.Symbol
    gam: sp.Symbol
    r2: sp.Symbol
    multiplier: sp.Expr
    increment: sp.Expr
    increment_sum: sp.Expr
    converges_if: sp.Rel


@functools.lru_cache(maxsize=None)
def derive_frozen_mode_sum() -> FrozenModeSum:
    """The change of ``||X||_F^2 - ||Y||_F^2`` over a whole run, with the factors frozen at the start.

    Hand steps (checked numerically in tests/test_balancing.py): with ``X, Y`` fixed and the
    ``eta^2`` term of :func:`derive_matrix_residual_step` dropped, ``R' = R - eta (K R + R G)``.
    In the eigenbases ``K = sum lambda_i u_i u_i^T``, ``G = sum gamma_j v_j v_j^T`` the mode
    ``r_ij = u_i^T R v_j`` is multiplied by ``q_ij = 1 - eta (lambda_i + gamma_j)`` per step, and
    ``||R^T X||_F^2 = sum lambda_i r_ij^2``, ``||R Y||_F^2 = sum gamma_j r_ij^2``. So the trace of
    the exact increment is ``eta^2 sum (gamma_j - lambda_i) r_ij^2 q_ij^(2t)``; sympy sums the
    geometric series of one mode (it converges for ``|q| < 1``, i.e. ``eta (lambda + gamma) < 2``).

    The approximation holds while the factors barely move: a strongly unbalanced start (the
    change is a few per cent of ``||X0||_F^2``) and ``eta L0`` clear of 2, where the slowest mode
    ``q -> -1`` lets the factors drift for many steps (measured: within 7 % up to ``eta L0 = 1.5``
    on the chapter's Gaussian problems, 25 % off at 1.9, wrong beyond 2).
    """
    from lrtheory.results.balancing.derivation import symbols

    eta = symbols().eta
    lam, gam, r2 = sp.symbols("lambda gamma r2", positive=True)
    q, t = sp.Symbol("q", real=True), sp.Symbol("t", integer=True, nonnegative=True)
    mult = 1 - eta * (lam + gam)
    inc = eta ** 2 * (gam - lam) * r2 * q ** (2 * t)
    geo = sp.summation(q ** (2 * t), (t, 0, sp.oo))  # Piecewise: 1/(1 - q^2) where |q| < 1
    (geo_closed, cond), _ = geo.args
    if sp.simplify(cond.subs(q, sp.Rational(1, 2))) is not sp.true:  # pragma: no cover - sympy's form
        raise AssertionError(f"unexpected convergence condition {cond}")
    closed = sp.factor(sp.simplify((inc / q ** (2 * t) * geo_closed).subs(q, mult)))
    return FrozenModeSum(eta=eta, lam=lam, gam=gam, r2=r2, multiplier=mult, increment=inc,
                         increment_sum=closed, converges_if=sp.Lt(sp.Abs(mult), 1))


@functools.lru_cache(maxsize=None)
def _mode_sum_fn():
    d = derive_frozen_mode_sum()
    return sp.lambdify((d.eta, d.lam, d.gam, d.r2), d.increment_sum)  # sympy's default modules: NumPy's functions


def _psd_eigh(M):
    """Eigenvalues and vectors of a positive semi-definite ``M``; those within round-off of 0 (below
    ``size * eps * max``, as ``numpy.linalg.matrix_rank``) set to 0 exactly."""
    ev, vec = np.linalg.eigh(M)
    return np.where(ev > ev.size * np.finfo(np.float64).eps * max(ev.max(), 0.0), ev, 0.0), vec


def frozen_modes(A, X0, Y0):
    """``(lam, gam, r2)``: eigenvalues of ``X0 X0^T`` (m,), of ``Y0 Y0^T`` (n,), and the squared
    modes ``(u_i^T R0 v_j)^2`` (m, n) of the start's residual ``R0 = A - X0 Y0^T``. Eigenvalues
    within round-off of 0 (a factor of rank below ``m`` or ``n``) are 0 exactly: such a mode has
    ``lambda + gamma = 0`` when both are, and no increment."""
    A, X0, Y0 = (np.asarray(a, dtype=np.float64) for a in (A, X0, Y0))
    lam, U = _psd_eigh(X0 @ X0.T)
    gam, V = _psd_eigh(Y0 @ Y0.T)
    r2 = (U.T @ (A - X0 @ Y0.T) @ V) ** 2
    return lam, gam, r2


def predicted_matrix_imbalance_change(A, X0, Y0, eta):
    """Predicted ``(||X_inf||_F^2 - ||Y_inf||_F^2) - (||X0||_F^2 - ||Y0||_F^2)`` (numpy, element-wise in ``eta``).

    The sum over modes of :func:`derive_frozen_mode_sum`'s closed form; ``nan`` where some
    mode has ``eta (lambda + gamma) >= 2`` (the series diverges: no prediction). Modes with
    ``lambda + gamma = 0`` never decay and carry no increment (dropped).

    Example
    -------
    >>> A = np.array([[1.0]]); X0 = np.array([[3.0]]); Y0 = np.array([[0.1]])
    >>> round(float(predicted_matrix_imbalance_change(A, X0, Y0, 0.05)), 6)
    -0.015776
    """
    lam, gam, r2 = frozen_modes(A, X0, Y0)
    S = lam[:, None] + gam[None, :]
    live = S > 0
    eta = np.asarray(eta)  # each entry is taken against float64 arrays below
    out = np.empty(eta.shape)
    f = _mode_sum_fn()
    for idx, e in np.ndenumerate(eta):
        if e * S.max() >= 2:
            out[idx] = np.nan
            continue
        out[idx] = float(np.sum(f(e, lam[:, None], gam[None, :], r2)[live]))
    return out if out.ndim else float(out)


# ----------------------------------------------------------------------------- beyond 2/L: one problem per mode
@dataclass(frozen=True)
class ModeReduction:
    """One singular mode of ``X`` with its singular vectors frozen: the problem ``||a - x y||^2/2``
    (``x`` a scalar, ``y`` a vector) in the plane of ``a`` and ``y``.

    ``x, p, z, mu, eta``: the symbols (``p``, ``z``: the parts of ``y`` along ``a`` and across it,
    ``mu = |a|``); ``f`` (``(mu - x p)^2/2 + x^2 z^2/2``); ``x_next``, ``p_next``, ``z_next`` (one
    GD step); ``z_factor`` (``z_next / z = 1 - eta x^2``: ``y``'s transverse part keeps its
    direction, so the plane is invariant); ``imbalance`` (``x^2 - p^2 - z^2``, the mode's share of
    ``||X||_F^2 - ||Y||_F^2``); ``scalar_at_z0`` (True: at ``z = 0`` the step is the scalar
    problem's, :func:`~lrtheory.results.balancing.derivation.derive_scalar_gd`, with ``y = p``)."""

    x: sp.Symbol
    p: sp.Symbol
    z: sp.Symbol
    mu: sp.Symbol
    eta: sp.Symbol
    f: sp.Expr
    x_next: sp.Expr
    p_next: sp.Expr
    z_next: sp.Expr
    z_factor: sp.Expr
    imbalance: sp.Expr
    scalar_at_z0: bool


@functools.lru_cache(maxsize=None)
def derive_mode_reduction() -> ModeReduction:
    """GD on ``||A - X Y^T||_F^2/2`` as one small problem per singular mode of ``X0`` (the reduction used
    beyond ``2/L``).

    Hand steps (checked numerically in tests/test_balancing.py): with ``X = U diag(sigma) W^T``
    (``U``, ``W`` orthogonal), ``||A - X Y^T||_F^2 = sum_i ||a_i - sigma_i y_i||^2`` where
    ``a_i = A^T u_i`` and ``y_i = Y w_i`` (the Frobenius norm is invariant under ``U^T``, and row ``i`` of
    ``U^T (A - X Y^T)`` is ``u_i^T A - sigma_i (Y w_i)^T``). The approximation: ``U`` and ``W`` stay those
    of ``X0`` (GD's step of ``X`` has an off-diagonal part ``u_i^T R Y w_j``, ``i != j``, that rotates
    them; it is dropped). Then the modes are independent problems ``||a - x y||^2/2``. sympy writes one in
    the plane of ``a = (mu, 0)`` and ``y = (p, z)``, differentiates and steps; the step of ``z``
    is ``(1 - eta x^2) z``, so ``y``'s part across ``a`` keeps its direction and the plane holds
    the whole run (exact). At ``z = 0`` the mode is the paper's scalar problem with ``mu = |a|``.
    """
    from lrtheory.results.balancing.derivation import derive_scalar_gd, symbols

    s = symbols()
    x, eta, mu = s.x, s.eta, s.mu
    p, z = sp.symbols("p z", real=True)
    a, y = sp.Matrix([mu, 0]), sp.Matrix([p, z])
    res = a - x * y
    f = sp.expand((res.T * res)[0, 0] / 2)
    x_next, p_next, z_next = (v - eta * sp.diff(f, v) for v in (x, p, z))
    z_factor = sp.factor(sp.cancel(z_next / z))
    gd = derive_scalar_gd()
    at0 = {z: 0}
    sc = {s.y: p}
    scalar = all(sp.expand(v) == 0 for v in (x_next.subs(at0) - gd.x_next.subs(sc), p_next.subs(at0) - gd.y_next.subs(sc)))
    return ModeReduction(x=x, p=p, z=z, mu=mu, eta=eta, f=f, x_next=sp.expand(x_next), p_next=sp.expand(p_next),
                         z_next=sp.expand(z_next), z_factor=z_factor, imbalance=x ** 2 - p ** 2 - z ** 2,
                         scalar_at_z0=bool(scalar))


@dataclass(frozen=True)
class MatrixModes:
    """The modes of a start ``(A, X0, Y0)``: ``sigma`` (singular values of ``X0``, descending), ``mu``
    (``|A^T u_i|``), ``p`` (``Y0 w_i`` along ``A^T u_i``), ``z`` (the length of its part across ``A^T u_i``),
    all (r,). ``sum(p^2 + z^2) = ||Y0||_F^2`` when ``W`` is square (``X0`` of shape ``(m, r)``, ``r <= m``)."""

    sigma: np.ndarray
    mu: np.ndarray
    p: np.ndarray
    z: np.ndarray


def matrix_modes(A, X0, Y0) -> MatrixModes:
    """The start ``(A, X0, Y0)`` as :func:`derive_mode_reduction`'s modes (numpy).

    ``X0 = U diag(sigma) W^T`` (thin SVD, ``X0`` of shape ``(m, r)``); mode ``i`` has ``a_i = A^T u_i``,
    ``mu_i = |a_i|``, ``y_i = Y0 w_i = p_i a_i / mu_i + (across)``, ``z_i = |across| >= 0``.

    Example
    -------
    >>> md = matrix_modes(np.array([[2.0]]), np.array([[3.0]]), np.array([[0.5]]))
    >>> float(md.sigma[0]), float(md.mu[0]), float(md.p[0]), float(md.z[0])
    (3.0, 2.0, 0.5, 0.0)
    """
    A, X0, Y0 = (np.asarray(v, dtype=np.float64) for v in (A, X0, Y0))
    U, sig, Wt = np.linalg.svd(X0, full_matrices=False)
    a = A.T @ U  # (n, r): column i is a_i
    y = Y0 @ Wt.T  # (n, r): column i is y_i
    mu = np.linalg.norm(a, axis=0)
    safe = np.where(mu > 0, mu, np.inf)  # a mode with a_i = 0: no part along it (p = 0), all of y_i across it
    p = np.sum(a * y, axis=0) / safe
    across = y - (p / safe)[None, :] * a  # y_i minus its part along a_i
    z = np.linalg.norm(across, axis=0)
    return MatrixModes(sigma=sig, mu=mu, p=p, z=z)


@functools.lru_cache(maxsize=None)
def _mode_step_fn():
    d = derive_mode_reduction()
    return sp.lambdify((d.x, d.p, d.z, d.mu, d.eta), (d.x_next, d.p_next, d.z_next))


def mode_gd(modes: MatrixModes, eta, steps: int, bound: float = 1e6):
    """Iterate :func:`derive_mode_reduction`'s step for every mode and every ``eta`` (numpy).

    Returns ``(x, p, z, diverged)``: arrays ``(E, r)`` of the final states and ``(E,)`` bool (some
    mode of that ``eta`` left ``|x|, |p|, |z| <= bound``; its modes are frozen there). It stops early
    once a step changes no number (a floating-point fixed point), with the result all ``steps`` give."""
    eta = np.atleast_1d(np.asarray(eta))[:, None]  # taken against the float64 states
    shape = (eta.shape[0], modes.sigma.shape[0])
    x, p, z = (np.broadcast_to(v, shape).astype(np.float64) for v in (modes.sigma, modes.p, modes.z))
    mu = np.broadcast_to(modes.mu, shape)
    step = _mode_step_fn()
    live = np.ones(eta.shape[0], dtype=bool)
    for _ in range(int(steps)):
        xn, pn, zn = step(x, p, z, mu, eta)
        # NaN and inf fail the bound too (a row's max is NaN if any entry is)
        ok = (np.abs(xn).max(1) <= bound) & (np.abs(pn).max(1) <= bound) & (np.abs(zn).max(1) <= bound)
        live &= ok
        keep = live[:, None]
        xn, pn, zn = np.where(keep, xn, x), np.where(keep, pn, p), np.where(keep, zn, z)
        if np.array_equal(xn, x) and np.array_equal(pn, p) and np.array_equal(zn, z):
            break  # a fixed point in floating point: every later step would return it unchanged
        x, p, z = xn, pn, zn
    return x, p, z, ~live


def predicted_matrix_imbalance_change_modes(A, X0, Y0, eta, steps: int):
    """Predicted change of ``||X||_F^2 - ||Y||_F^2`` over ``steps`` GD steps, from the modes of the start.

    The sum over modes of the change of ``x^2 - p^2 - z^2`` along :func:`mode_gd` (numpy,
    element-wise in ``eta``); ``nan`` where a mode diverges (no limit). Valid below and beyond
    ``2/L``; the error is the rotation of ``X``'s singular vectors it neglects.

    Example
    -------
    >>> A = np.array([[1.0]]); X0 = np.array([[3.0]]); Y0 = np.array([[0.1]])
    >>> round(float(predicted_matrix_imbalance_change_modes(A, X0, Y0, 0.05, 2000)), 6)
    -0.015731
    """
    md = matrix_modes(A, X0, Y0)
    d = derive_mode_reduction()
    imb = sp.lambdify((d.x, d.p, d.z), d.imbalance)
    x, p, z, div = mode_gd(md, eta, steps)
    change = np.sum(imb(x, p, z) - imb(md.sigma, md.p, md.z)[None, :], axis=1)
    out = np.where(div, np.nan, change)
    return out if np.ndim(eta) else float(out[0])


def mode_edges(A, X0, Y0) -> np.ndarray:
    """The convergence edge of every mode, with its transverse part ``z`` dropped (numpy, (r,)).

    At ``z = 0`` mode ``i`` is the scalar problem from ``(sigma_i, p_i)`` with ``mu = mu_i``; its
    edge is where that start lies on the invariant curve ``w = 0`` (the stable set of the mode's
    balanced period-2 orbit, :func:`~lrtheory.results.balancing.derivation.derive_edge_invariant`):
    ``eta (sigma^2 + p^2) + eta^2 mu (mu - sigma p) = 4``, its smallest positive root.
    """
    md = matrix_modes(A, X0, Y0)
    c2, c1, c0 = (np.broadcast_to(c(md.sigma, md.p, md.mu), md.sigma.shape)  # c0 = 4: an int, broadcast
                  for c in _edge_coeff_fns())
    out = np.empty(md.sigma.shape)
    for i in range(out.size):
        roots = np.roots([c2[i], c1[i], c0[i]]) if c2[i] != 0 else np.array([-c0[i] / c1[i]])
        pos = roots.real[(np.abs(roots.imag) < 1e-12) & (roots.real > 0)]
        out[i] = pos.min() if pos.size else np.inf
    return out


@functools.lru_cache(maxsize=None)
def _edge_coeff_fns():
    """The coefficients of ``w(x0, y0; eta)`` as a quadratic in ``eta`` (highest first), lambdified in ``(x, y, mu)``."""
    from lrtheory.results.balancing.derivation import derive_edge_invariant, symbols

    s = symbols()
    coeffs = sp.Poly(derive_edge_invariant().w_xy, s.eta).all_coeffs()
    if len(coeffs) != 3:  # pragma: no cover - w is quadratic in eta
        raise AssertionError(f"w is not quadratic in eta: {coeffs}")
    return tuple(sp.lambdify((s.x, s.y, s.mu), c) for c in coeffs)


def predicted_matrix_edge(A, X0, Y0) -> float:
    """The derived convergence edge of GD on ``||A - X Y^T||_F^2/2`` from ``(X0, Y0)``: the first mode
    edge (:func:`mode_edges`), the LR at which the first mode's start lies on its curve ``w = 0``."""
    return float(np.min(mode_edges(A, X0, Y0)))
