"""Chapter 05 derivations (sympy): GD on ``(mu - x y)^2/2`` and ``||A - X Y^T||_F^2/2``.

Each ``derive_*`` works on the model's definition and returns a frozen dataclass of sympy
expressions; the functions after them evaluate those expressions numerically (lambdified
once), so claims and the chapter use the derived formulas, never re-typed ones.

Wang, Chen, Zhao, Tao (ICLR 2022, arXiv 2110.03677) prove convergence for steps up to
``h0 = 4 / (x0^2 + y0^2 + 4 mu)`` (Theorem 3.1; quoted, not derived here: its proof is a
dynamical-systems argument) and that the limit is balanced. The stability bounds below are
derived here from linear stability at the limit; they are not the paper's constants.

Example
-------
>>> d = derive_imbalance_recursion()
>>> d.remainder
0
>>> s = symbols()
>>> sp.expand(d.factor_r - (1 - s.eta**2 * s.r**2))
0
>>> round(float(rho_bound(0.1, 2.0)), 6)
9.898979
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Tuple

import sympy as sp

__all__ = [
    "Symbols", "symbols",
    "ScalarGD", "derive_scalar_gd",
    "ScalarHessian", "derive_scalar_hessian",
    "ImbalanceRecursion", "derive_imbalance_recursion",
    "GradientFlowLimit", "derive_gradient_flow_limit",
    "MinimumHessian", "derive_minimum_hessian",
    "FlattestMinimum", "derive_flattest_minimum",
    "paper_step_size",
    "ConvergenceRange", "derive_convergence_range",
    "BalancingBound", "derive_balancing_bound",
    "MatrixGD", "derive_matrix_gd",
    "MatrixImbalanceRecursion", "derive_matrix_imbalance_recursion",
    "MatrixBalancingBound", "derive_matrix_balancing_bound",
    # numeric evaluation of the derived expressions
    "top_eigenvalue", "h0L", "rho_bound", "q_bound", "gradient_flow_ratio", "imbalance_factor",
    "stability_index_bound", "flattest_edge_eta_mu",
]


@dataclass(frozen=True)
class Symbols:
    """The chapter's sympy symbols: ``x, y`` (real), ``mu, eta, rho`` (positive), the residual
    ``r = mu - x y`` (real), the start ``x0, y0`` (positive)."""

    x: sp.Symbol
    y: sp.Symbol
    mu: sp.Symbol
    eta: sp.Symbol
    r: sp.Symbol
    rho: sp.Symbol
    x0: sp.Symbol
    y0: sp.Symbol


@functools.lru_cache(maxsize=None)
def symbols() -> Symbols:
    """The sympy symbols of the chapter (one set, shared by every derivation)."""
    x, y = sp.symbols("x y", real=True)
    mu, eta, rho = sp.symbols("mu eta rho", positive=True)
    r = sp.Symbol("r", real=True)
    x0, y0 = sp.symbols("x_0 y_0", positive=True)
    return Symbols(x=x, y=y, mu=mu, eta=eta, r=r, rho=rho, x0=x0, y0=y0)


# ----------------------------------------------------------------------------- scalar case
@dataclass(frozen=True)
class ScalarGD:
    """``f``; ``grad`` (the two partial derivatives, factored); one GD step ``x_next``, ``y_next``."""

    f: sp.Expr
    grad: Tuple[sp.Expr, sp.Expr]
    x_next: sp.Expr
    y_next: sp.Expr


@functools.lru_cache(maxsize=None)
def derive_scalar_gd() -> ScalarGD:
    """GD on ``f(x, y) = (mu - x y)^2 / 2``: sympy differentiates, one step is ``z - eta grad f(z)``.

    Example
    -------
    >>> s = symbols()
    >>> sp.expand(derive_scalar_gd().x_next - (s.x + s.eta * s.y * (s.mu - s.x * s.y)))
    0
    """
    s = symbols()
    f = (s.mu - s.x * s.y) ** 2 / 2
    gx, gy = sp.diff(f, s.x), sp.diff(f, s.y)
    return ScalarGD(f=f, grad=(sp.factor(gx), sp.factor(gy)), x_next=s.x - s.eta * gx, y_next=s.y - s.eta * gy)


@dataclass(frozen=True)
class ScalarHessian:
    """The Hessian at ``(x, y)``, its eigenvalues and the larger one ``L`` (closed form)."""

    hessian: sp.Matrix
    eigenvalues: Tuple[sp.Expr, ...]
    L: sp.Expr


@functools.lru_cache(maxsize=None)
def derive_scalar_hessian() -> ScalarHessian:
    """Hessian of ``f`` at a point ``(x, y)`` (e.g. the initialization) and its top eigenvalue ``L``."""
    s = symbols()
    H = sp.hessian(derive_scalar_gd().f, (s.x, s.y))
    eig = tuple(sp.simplify(e) for e in H.eigenvals())
    # the larger root is the one with "+ sqrt(...)"; pick it by evaluation at a generic point
    probe = {s.x: sp.Rational(3), s.y: sp.Rational(1, 2), s.mu: sp.Rational(1)}
    L = max(eig, key=lambda e: float(e.subs(probe)))
    return ScalarHessian(hessian=H, eigenvalues=eig, L=L)


@dataclass(frozen=True)
class ImbalanceRecursion:
    """``difference`` (``x'^2 - y'^2`` expanded), ``factor`` (``D'/D`` in ``x, y, mu, eta``),
    ``factor_r`` (the same in terms of ``r``), ``remainder`` (0: the division is exact)."""

    difference: sp.Expr
    factor: sp.Expr
    factor_r: sp.Expr
    remainder: sp.Expr


@functools.lru_cache(maxsize=None)
def derive_imbalance_recursion() -> ImbalanceRecursion:
    """Exact one-step recursion of the imbalance ``D = x^2 - y^2`` under GD.

    sympy expands ``x'^2 - y'^2`` with ``(x', y')`` the GD step, divides by ``x^2 - y^2``
    (the quotient is a polynomial: the division is exact) and rewrites the quotient with
    the residual ``r = mu - x y``: ``D' = (1 - eta^2 r^2) D``.
    """
    s = symbols()
    gd = derive_scalar_gd()
    diff = sp.expand(gd.x_next ** 2 - gd.y_next ** 2)
    q, rem = sp.div(sp.Poly(diff, s.x, s.y), sp.Poly(s.x ** 2 - s.y ** 2, s.x, s.y))
    factor = sp.expand(q.as_expr())
    factor_r = sp.expand(factor.subs(s.mu, s.r + s.x * s.y))
    return ImbalanceRecursion(difference=diff, factor=factor, factor_r=factor_r, remainder=rem.as_expr())


@dataclass(frozen=True)
class GradientFlowLimit:
    """Gradient flow from ``(x0, y0)``: ``rate`` (``d(x^2 - y^2)/dt``, 0), ``u`` (``x_inf^2`` on the
    minimum manifold with ``x^2 - y^2 = D0``), ``ratio`` (its ``rho_inf`` for ``x0 >= y0``)."""

    rate: sp.Expr
    D0: sp.Symbol
    u: sp.Expr
    ratio: sp.Expr


@functools.lru_cache(maxsize=None)
def derive_gradient_flow_limit() -> GradientFlowLimit:
    """The limit gradient flow would reach: the reference a small step keeps.

    Along ``z' = -grad f`` the imbalance ``x^2 - y^2`` is conserved (sympy: its rate is 0),
    so the limit is the point of ``x y = mu`` with ``x^2 - y^2 = D0 = x0^2 - y0^2``. With
    ``u = x^2`` and ``y = mu/x``: ``u^2 - D0 u - mu^2 = 0``, whose positive root sympy
    takes; the ratio is ``x/y = u/mu`` (for ``x0 >= y0``; swap the roles otherwise).

    Example
    -------
    >>> round(gradient_flow_ratio(9.0, 1.0, 2.0), 2)
    40.02
    """
    s = symbols()
    gd = derive_scalar_gd()
    rate = sp.simplify(2 * s.x * (-gd.grad[0]) - 2 * s.y * (-gd.grad[1]))
    D0 = sp.Symbol("D_0", nonnegative=True)
    u = sp.Symbol("u", positive=True)
    roots = sp.solve(sp.Eq(u - s.mu ** 2 / u, D0), u)
    (u_pos,) = [e for e in roots if e.subs({D0: 1, s.mu: 1}).is_positive]
    return GradientFlowLimit(rate=rate, D0=D0, u=sp.simplify(u_pos), ratio=sp.simplify(u_pos / s.mu))


@dataclass(frozen=True)
class MinimumHessian:
    """Hessian on ``x y = mu`` (at ``y = mu/x``), its eigenvalues, the nonzero one as ``top_x`` (in
    ``x``) and ``top`` (``x^2 + y^2``), ``multiplier`` ``1 - eta top`` and ``eta_max = 2/top``."""

    hessian: sp.Matrix
    eigenvalues: Tuple[sp.Expr, ...]
    top_x: sp.Expr
    top: sp.Expr
    multiplier: sp.Expr
    eta_max: sp.Expr


@functools.lru_cache(maxsize=None)
def derive_minimum_hessian() -> MinimumHessian:
    """Hessian on the manifold of global minima ``x y = mu`` and the stability condition.

    A minimum is linearly stable for GD only if ``|1 - eta top| < 1``, i.e. ``eta < eta_max``.
    """
    s = symbols()
    H = derive_scalar_hessian().hessian.subs(s.y, s.mu / s.x)
    eig = tuple(sp.simplify(e) for e in H.eigenvals())
    nonzero = [e for e in eig if not e.is_zero]
    top_x = sp.simplify(nonzero[0])
    top = sp.expand(top_x.subs(s.mu, s.x * s.y))  # on x y = mu, mu^2/x^2 = y^2: top = x^2 + y^2
    sol = sp.solve(sp.Eq(1 - s.eta * top, -1), s.eta)
    return MinimumHessian(hessian=H, eigenvalues=eig, top_x=top_x, top=top, multiplier=1 - s.eta * top,
                          eta_max=sol[0])


@dataclass(frozen=True)
class FlattestMinimum:
    """``x_star`` (``sqrt(mu)``), ``y_star``, ``sharpness`` (``2 mu``), ``eta_max`` (``1/mu``)."""

    x_star: sp.Expr
    y_star: sp.Expr
    sharpness: sp.Expr
    eta_max: sp.Expr


@functools.lru_cache(maxsize=None)
def derive_flattest_minimum() -> FlattestMinimum:
    """The flattest global minimum: minimize the top eigenvalue ``x^2 + mu^2/x^2`` over ``x``.

    Above ``eta_max = 1/mu`` no global minimum is linearly stable.
    """
    s = symbols()
    top_x = derive_minimum_hessian().top_x
    crit = sp.solve(sp.diff(top_x, s.x), s.x)
    x_star = [c for c in crit if c.is_positive][0]
    sharp = sp.simplify(top_x.subs(s.x, x_star))
    return FlattestMinimum(x_star=x_star, y_star=sp.simplify(s.mu / x_star), sharpness=sharp,
                           eta_max=sp.simplify(2 / sharp))


def paper_step_size(x0, y0, mu):
    """The largest step of the paper's convergence theorem, ``h0 = 4 / (x0^2 + y0^2 + 4 mu)``.

    Quoted from the paper (Theorem 3.1's range; their experiments use ``mu = 2``), not derived:
    its proof is a dynamical-systems argument, not a formula manipulation. Works on sympy
    symbols and on numbers.

    Example
    -------
    >>> round(paper_step_size(9.0, 1.0, 2.0), 6)
    0.044444
    """
    return 4 / (x0 ** 2 + y0 ** 2 + 4 * mu)


@dataclass(frozen=True)
class ConvergenceRange:
    """``h0`` (in ``x_0, y_0, mu``), ``L0`` (top Hessian eigenvalue at the start), ``h0L`` (their
    product), ``h0L_limit`` (as ``x_0 -> oo``: 4), ``classical`` (2, the ``2/L`` rule)."""

    h0: sp.Expr
    L0: sp.Expr
    h0L: sp.Expr
    h0L_limit: sp.Expr
    classical: sp.Expr


@functools.lru_cache(maxsize=None)
def derive_convergence_range() -> ConvergenceRange:
    """The paper's step range in units of ``1/L``: ``h0 * L`` at ``(x0, y0)`` and its unbalanced limit."""
    s = symbols()
    L0 = derive_scalar_hessian().L.subs({s.x: s.x0, s.y: s.y0})
    h0 = paper_step_size(s.x0, s.y0, s.mu)
    h0L = h0 * L0
    return ConvergenceRange(h0=h0, L0=L0, h0L=h0L, h0L_limit=sp.limit(h0L, s.x0, sp.oo), classical=sp.Integer(2))


@dataclass(frozen=True)
class BalancingBound:
    """``diff_bound`` (on ``(|x| - |y|)^2``: ``2/eta - 2 mu``), ``rho_bound`` (the largest ratio
    allowed), ``constraint`` (``mu (rho + 1/rho) <= 2/eta``)."""

    diff_bound: sp.Expr
    rho_bound: sp.Expr
    constraint: sp.Rel


@functools.lru_cache(maxsize=None)
def derive_balancing_bound() -> BalancingBound:
    """The balancing bound a GD limit must satisfy, from linear stability at the minimum.

    A limit ``(x, y)`` of GD with step ``eta`` (for almost every initialization) is a global
    minimum that is not linearly unstable: ``eta (x^2 + y^2) <= 2``. With ``x y = mu`` and the
    imbalance ratio ``rho = max(|x|,|y|)/min(|x|,|y|)``, ``x^2 + y^2 = mu (rho + 1/rho)``;
    sympy solves the edge for the larger root.
    """
    s = symbols()
    mh = derive_minimum_hessian()
    S = sp.Symbol("S", positive=True)  # S = x^2 + y^2, the top eigenvalue at the minimum
    S_max = sp.solve(sp.Eq(s.eta * S, 2), S)[0]  # stability edge eta * S = 2
    # on x y = mu: (|x| - |y|)^2 = x^2 + y^2 - 2 |x y| = S - 2 mu
    diff_bound = sp.simplify(S_max - 2 * s.mu)
    lhs = sp.simplify(mh.top.subs({s.x: sp.sqrt(s.mu * s.rho), s.y: sp.sqrt(s.mu / s.rho)}))
    roots = sp.solve(sp.Eq(lhs, S_max), s.rho)
    probe = {s.mu: 1, s.eta: sp.Rational(1, 4)}
    rho_b = max(roots, key=lambda e: float(e.subs(probe)))
    return BalancingBound(diff_bound=diff_bound, rho_bound=sp.simplify(rho_b), constraint=sp.Le(lhs, 2 / s.eta))


# ----------------------------------------------------------------------------- matrix case
@dataclass(frozen=True)
class MatrixGD:
    """``f``; entry-wise ``grad_X``, ``grad_Y``; ``matches`` (they equal ``-R Y`` and ``-R^T X``)."""

    f: sp.Expr
    grad_X: sp.Matrix
    grad_Y: sp.Matrix
    matches: bool


@functools.lru_cache(maxsize=None)
def derive_matrix_gd(m: int = 2, n: int = 2, r: int = 2) -> MatrixGD:
    """GD on ``||A - X Y^T||_F^2 / 2`` with explicit ``m x n`` and ``m x r``, ``n x r`` symbol matrices.

    sympy differentiates the loss entry by entry; the result is compared with the matrix
    forms ``grad_X = -(A - X Y^T) Y`` and ``grad_Y = -(A - X Y^T)^T X``.

    Example
    -------
    >>> derive_matrix_gd(2, 3, 2).matches
    True
    """
    A = sp.Matrix(m, n, lambda i, j: sp.Symbol(f"a_{i}{j}"))
    X = sp.Matrix(m, r, lambda i, j: sp.Symbol(f"x_{i}{j}"))
    Y = sp.Matrix(n, r, lambda i, j: sp.Symbol(f"y_{i}{j}"))
    R = A - X * Y.T
    f = sum(e ** 2 for e in R) / 2
    gX = sp.Matrix(m, r, lambda i, j: sp.diff(f, X[i, j]))
    gY = sp.Matrix(n, r, lambda i, j: sp.diff(f, Y[i, j]))
    ok = sp.expand(gX + R * Y) == sp.zeros(m, r) and sp.expand(gY + R.T * X) == sp.zeros(n, r)
    return MatrixGD(f=f, grad_X=gX, grad_Y=gY, matches=bool(ok))


@dataclass(frozen=True)
class NonCommutingSymbols:
    """``X, Y, R`` and their transposes ``Xt, Yt, Rt`` as non-commutative sympy symbols."""

    X: sp.Symbol
    Y: sp.Symbol
    R: sp.Symbol
    Xt: sp.Symbol
    Yt: sp.Symbol
    Rt: sp.Symbol


@dataclass(frozen=True)
class MatrixImbalanceRecursion:
    """``D_next`` (``X'^T X' - Y'^T Y'`` expanded), ``increment`` (``D' - D``), ``symbols``."""

    D_next: sp.Expr
    increment: sp.Expr
    symbols: NonCommutingSymbols


@functools.lru_cache(maxsize=None)
def derive_matrix_imbalance_recursion() -> MatrixImbalanceRecursion:
    """Exact one-step recursion of ``D = X^T X - Y^T Y`` under GD, with non-commutative symbols.

    With ``R = A - X Y^T``, GD is ``X' = X + eta R Y``, ``Y' = Y + eta R^T X``. sympy expands
    ``X'^T X' - Y'^T Y'``: the first-order terms cancel and
    ``D' = D + eta^2 (Y^T R^T R Y - X^T R R^T X)``.
    """
    X, Y, R, Xt, Yt, Rt = sp.symbols("X Y R X^T Y^T R^T", commutative=False)
    eta = symbols().eta
    Xn, Yn = X + eta * R * Y, Y + eta * Rt * X
    Xnt, Ynt = Xt + eta * Yt * Rt, Yt + eta * Xt * R  # transposes of the updates
    D_next = sp.expand(Xnt * Xn - Ynt * Yn)
    inc = sp.expand(D_next - (Xt * X - Yt * Y))
    return MatrixImbalanceRecursion(D_next=D_next, increment=inc,
                                    symbols=NonCommutingSymbols(X=X, Y=Y, R=R, Xt=Xt, Yt=Yt, Rt=Rt))


@dataclass(frozen=True)
class MatrixBalancingBound:
    """``q_bound`` (in ``eta, nu, r_A``), ``constraint``, and the symbols ``q``, ``nu``, ``rank``."""

    q_bound: sp.Expr
    constraint: sp.Rel
    q: sp.Symbol
    nu: sp.Symbol
    rank: sp.Symbol


@functools.lru_cache(maxsize=None)
def derive_matrix_balancing_bound() -> MatrixBalancingBound:
    """Bound on ``q = ||X||_F / ||Y||_F`` (or its inverse) at a stable global minimum ``X Y^T = A``.

    Two facts (the first by hand, checked numerically in the tests): at a global minimum,
    the top Hessian eigenvalue is at least ``lambda_max(X^T X + Y^T Y)`` (take the
    direction ``dX = a u p^T``, ``dY = b v p^T`` with ``p`` the top eigenvector); and
    ``||A||_* <= ||X||_F ||Y||_F``. Stability gives ``eta lambda_max(X^T X + Y^T Y) <= 2``,
    so ``||X||_F^2 + ||Y||_F^2 <= 2 r / eta`` and ``nu (q + 1/q) <= 2 r / eta`` with
    ``nu = ||A||_*``. sympy solves for the largest allowed ``q``.
    """
    eta = symbols().eta
    q, nu, rk = sp.symbols("q nu r_A", positive=True)
    lhs = nu * (q + 1 / q)
    roots = sp.solve(sp.Eq(lhs, 2 * rk / eta), q)
    probe = {nu: 1, rk: 1, eta: sp.Rational(1, 4)}
    qb = max(roots, key=lambda e: float(e.subs(probe)))
    return MatrixBalancingBound(q_bound=sp.simplify(qb), constraint=sp.Le(lhs, 2 * rk / eta), q=q, nu=nu, rank=rk)


# ----------------------------------------------------------------------------- numeric evaluation
@functools.lru_cache(maxsize=None)
def _fn(name: str) -> Any:
    s = symbols()
    if name == "L":
        return sp.lambdify((s.x, s.y, s.mu), derive_scalar_hessian().L, "math")
    if name == "rho":
        return sp.lambdify((s.eta, s.mu), derive_balancing_bound().rho_bound, "numpy")
    if name == "q":
        d = derive_matrix_balancing_bound()
        return sp.lambdify((s.eta, d.nu, d.rank), d.q_bound, "numpy")
    if name == "flow":
        d = derive_gradient_flow_limit()
        return sp.lambdify((d.D0, s.mu), d.ratio, "math")
    if name == "factor":
        return sp.lambdify((s.x, s.y, s.mu, s.eta), derive_imbalance_recursion().factor, "numpy")
    raise KeyError(name)


def top_eigenvalue(x: float, y: float, mu: float) -> float:
    """``L(x, y)``: the derived top Hessian eigenvalue of ``(mu - x y)^2/2``, evaluated.

    Example
    -------
    >>> round(top_eigenvalue(9.0, 1.0, 2.0), 2)
    84.08
    """
    return float(_fn("L")(x, y, mu))


def h0L(x0: float, y0: float, mu: float) -> float:
    """The paper's range ``h0 L`` at the start ``(x0, y0)`` (``L`` the derived closed form)."""
    return float(paper_step_size(x0, y0, mu) * top_eigenvalue(x0, y0, mu))


def rho_bound(eta, mu):
    """The derived bound ``rho_max(eta)`` on the limit's ratio (numpy, element-wise in ``eta``)."""
    return _fn("rho")(eta, mu)


def q_bound(eta, nu, rank):
    """The derived bound on ``max(q, 1/q)``, ``q = ||X||_F/||Y||_F``, with ``nu = ||A||_*`` (numpy)."""
    return _fn("q")(eta, nu, rank)


def gradient_flow_ratio(x0: float, y0: float, mu: float) -> float:
    """``rho_inf`` of the gradient-flow limit from ``(x0, y0)`` (:func:`derive_gradient_flow_limit`)."""
    return float(_fn("flow")(abs(x0 ** 2 - y0 ** 2), mu))


def imbalance_factor(x, y, mu, eta):
    """The derived ``(x'^2 - y'^2)/(x^2 - y^2)`` of one GD step, evaluated (numpy, broadcasting)."""
    return _fn("factor")(x, y, mu, eta)


def stability_index_bound() -> float:
    """Largest ``eta lambda_top / 2`` of a linearly stable minimum: ``eta_max * top / 2`` (= 1)."""
    mh = derive_minimum_hessian()
    return float(sp.simplify(mh.eta_max * mh.top / 2))


def flattest_edge_eta_mu() -> float:
    """``eta_max * mu`` of the flattest minimum (= 1): beyond it no minimum is stable."""
    return float(sp.simplify(derive_flattest_minimum().eta_max * symbols().mu))


# The dynamics derivations (reduced map, edge invariant, limit prediction) live in
# ``invariants.py`` (for size) and are part of this module's namespace.
from lrtheory.results.balancing.invariants import *  # noqa: E402,F401,F403
from lrtheory.results.balancing.invariants import __all__ as _inv_all  # noqa: E402

__all__ += list(_inv_all)

# The matrix-limit derivation (frozen-factor mode sum) lives in ``matrix_invariant.py``.
from lrtheory.results.balancing.matrix_invariant import *  # noqa: E402,F401,F403
from lrtheory.results.balancing.matrix_invariant import __all__ as _mat_all  # noqa: E402

__all__ += list(_mat_all)
