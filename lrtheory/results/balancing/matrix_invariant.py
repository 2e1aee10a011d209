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
           "frozen_modes", "predicted_matrix_imbalance_change"]


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
    return sp.lambdify((d.eta, d.lam, d.gam, d.r2), d.increment_sum, "numpy")


def frozen_modes(A, X0, Y0):
    """``(lam, gam, r2)``: eigenvalues of ``X0 X0^T`` (m,), of ``Y0 Y0^T`` (n,), and the squared
    modes ``(u_i^T R0 v_j)^2`` (m, n) of the start's residual ``R0 = A - X0 Y0^T``."""
    A, X0, Y0 = (np.asarray(a, dtype=np.float64) for a in (A, X0, Y0))
    lam, U = np.linalg.eigh(X0 @ X0.T)
    gam, V = np.linalg.eigh(Y0 @ Y0.T)
    r2 = (U.T @ (A - X0 @ Y0.T) @ V) ** 2
    return np.clip(lam, 0.0, None), np.clip(gam, 0.0, None), r2


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
    eta = np.asarray(eta, dtype=np.float64)
    out = np.empty(eta.shape)
    f = _mode_sum_fn()
    for idx, e in np.ndenumerate(eta):
        if e * S.max() >= 2:
            out[idx] = np.nan
            continue
        out[idx] = float(np.sum(f(e, lam[:, None], gam[None, :], r2)[live]))
    return out if out.ndim else float(out)
