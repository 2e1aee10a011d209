"""Chapter 01's symbolic side (sympy, numpy): moments, NTK diagonal, growth of lambda_1, bounds.

Notation: ``L`` hidden layers of width ``n`` (``L + 1`` weight matrices), input dimension
``d0``, ``k`` outputs, inputs ``x`` with ``X = ||x||^2``; every weight matrix is
``N(0, 2 / fan_in)`` (He init, readout included, as in :mod:`lrtheory.core.mlp`
``"standard"``). ``lambda_1`` is the largest eigenvalue of the Hessian of the training loss
at initialization.

The bounds and the growth exponent are derived here (Gauss-Newton structure and the
second-moment recursions); Iyer, Hanin & Rolnick (2023) bound ``lambda_1`` in terms of
``L n`` with constants of their own, which this module does not reproduce.

Every ``derive_*`` returns a frozen dataclass of sympy expressions (memoized); the numeric
predictions (:func:`ntk_gram_infinite_width`, :func:`predict_lambda1`, :func:`predict_grid`,
:func:`predict_growth_exponent`) evaluate them on the experiment's inputs.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence, Tuple

import numpy as np
import sympy as sp

from lrtheory.core import validate

__all__ = [
    "ReluMoments",
    "MomentRecursions",
    "NTKDiagonal",
    "Lambda1Growth",
    "Lambda1Bounds",
    "Lambda1Prediction",
    "relu_gaussian_moments",
    "derive_moment_recursions",
    "derive_ntk_diagonal",
    "derive_lambda1_growth",
    "derive_lambda1_bounds",
    "ntk_gram_infinite_width",
    "CALIBRATION_ARCHS",
    "FINITE_WIDTH_C",
    "finite_width_factor",
    "predict_lambda1",
    "predict_grid",
    "predict_growth_exponent",
    "experiment_inputs",
    "predict_config",
]


@dataclass(frozen=True)
class ReluMoments:
    """Gaussian moments of the ReLU for ``z ~ N(0, q)``: ``E_relu2 = E[relu(z)^2]``,
    ``E_step = E[relu'(z)^2] = P(z > 0)``, and the symbol ``q``."""

    E_relu2: sp.Expr
    E_step: sp.Expr
    q: sp.Symbol


@dataclass(frozen=True)
class MomentRecursions:
    """Forward (``A``) and backward (``B``) second-moment recursions and their solutions.

    ``A_rec``, ``A_init``, ``B_rec``, ``B_init`` are the recursions as equations; ``A`` and
    ``B`` the solutions as functions of the layer index ``l``; then the symbols.
    """

    A_rec: sp.Eq
    A_init: sp.Eq
    B_rec: sp.Eq
    B_init: sp.Eq
    A: sp.Expr
    B: sp.Expr
    l: sp.Symbol
    L: sp.Symbol
    n: sp.Symbol
    d0: sp.Symbol
    X: sp.Symbol


@dataclass(frozen=True)
class NTKDiagonal:
    """Expected NTK diagonal ``theta = input_term + hidden_term`` and its symbols."""

    theta: sp.Expr
    input_term: sp.Expr
    hidden_term: sp.Expr
    L: sp.Symbol
    n: sp.Symbol
    d0: sp.Symbol
    X: sp.Symbol
    rho_in: sp.Symbol


@dataclass(frozen=True)
class Lambda1Growth:
    """``theta_P`` (the NTK diagonal as a function of ``P = L n``), its local log-log ``slope``,
    the ``asymptotic_exponent`` (its limit) and the symbols."""

    theta_P: sp.Expr
    slope: sp.Expr
    asymptotic_exponent: sp.Expr
    P: sp.Symbol
    d0: sp.Symbol
    X: sp.Symbol
    rho_in: sp.Symbol


@dataclass(frozen=True)
class Lambda1Bounds:
    """``upper`` (trace bound, closed form in ``L, n, d0, k, Xbar``) and ``lower_diag`` (the
    diagonal part of the Gauss-Newton lower bound, ``Xbar (1 + L n/d0) / N``), with symbols."""

    upper: sp.Expr
    lower_diag: sp.Expr
    L: sp.Symbol
    n: sp.Symbol
    d0: sp.Symbol
    k: sp.Symbol
    N: sp.Symbol
    Xbar: sp.Symbol


@dataclass(frozen=True)
class Lambda1Prediction:
    """Infinite-width predictions of ``lambda_1`` (squared loss, at init) on given inputs.

    ``lower``: mean of the Gram matrix (the Gauss-Newton lower bound); ``point``:
    ``lambda_max(Theta)/N`` (the infinite-width Gauss-Newton top eigenvalue); ``upper``:
    ``k * mean_i Theta(x_i, x_i)`` (the trace bound); ``finite``: ``point`` times
    :func:`finite_width_factor` (the prediction the claim ``sharpness.lambda1_value`` checks).
    """

    lower: float
    point: float
    upper: float
    finite: float


# ----------------------------------------------------------------------------------------------
# derivations
# ----------------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def relu_gaussian_moments() -> ReluMoments:
    """Gaussian moments of the ReLU, integrated by sympy.

    For ``z ~ N(0, q)``: ``E[relu(z)^2] = q / 2`` and ``E[relu'(z)^2] = P(z > 0) = 1 / 2``.
    These two numbers are what makes the He gain 2 preserve second moments.

    Example
    -------
    >>> relu_gaussian_moments().E_step
    1/2
    """
    z = sp.Dummy()  # the integration variable
    q = sp.Symbol("q", positive=True)
    density = sp.exp(-z**2 / (2 * q)) / sp.sqrt(2 * sp.pi * q)
    e_relu2 = sp.simplify(sp.integrate(z**2 * density, (z, 0, sp.oo)))
    e_step = sp.simplify(sp.integrate(density, (z, 0, sp.oo)))
    return ReluMoments(E_relu2=e_relu2, E_step=e_step, q=q)


@lru_cache(maxsize=None)
def derive_moment_recursions(gain=2) -> MomentRecursions:
    """Forward and backward second-moment recursions of a He-initialized ReLU MLP, solved.

    Forward: ``A_l = E||h^(l)||^2`` of hidden layer ``l = 1..L``. With
    ``W^(1) ~ N(0, 2/d0)``: ``A_1 = n * E_relu2(2 X / d0)``; with ``W^(l+1) ~ N(0, 2/n)``:
    ``A_{l+1} = n * E_relu2(2 A_l / n)``.
    Backward: ``B_l = E||d f_o / d z^(l)||^2`` for one output ``o``; ``B_L = n * E_step * 2/n``
    (the readout row ``~ N(0, 2/n)``) and ``B_l = n * E_step * (2/n) * B_{l+1}``.
    Both recursions are solved with :func:`sympy.rsolve`.

    ``gain``: the weights' variance times their fan-in (2, He, everywhere in the chapter). Another
    gain makes the moments change from layer to layer (by ``gain / 2`` per layer), so that the
    tests can check the layer indices, which He init hides (every ``A_l`` and ``B_l`` equal).
    """
    mom = relu_gaussian_moments()
    q = mom.q
    l = sp.Symbol("l", integer=True, positive=True)
    L, n, d0 = sp.symbols("L n d_0", positive=True, integer=True)
    X = sp.Symbol("X", positive=True)  # ||x||^2
    A, B = sp.Function("A"), sp.Function("B")
    relu2 = sp.Lambda(q, mom.E_relu2)
    step = mom.E_step
    gain = sp.sympify(gain)
    A1 = sp.simplify(n * relu2(gain * X / d0))
    A_next = sp.simplify(n * relu2(gain * A(l) / n))
    B_last = sp.simplify(n * step * gain / n)
    B_prev_factor = sp.simplify(n * step * gain / n)
    A_sol = sp.simplify(sp.rsolve(A(l + 1) - A_next, A(l), {A(1): A1}))
    # backward recursion run in the index m = L - l (so that it starts at the readout)
    m = sp.Dummy()
    Bm_sol = sp.rsolve(B(m + 1) - B_prev_factor * B(m), B(m), {B(0): B_last})
    B_sol = sp.simplify(Bm_sol.subs(m, L - l))
    return MomentRecursions(
        A_rec=sp.Eq(A(l + 1), A_next), A_init=sp.Eq(A(1), A1),
        B_rec=sp.Eq(B(l), B_prev_factor * B(l + 1)), B_init=sp.Eq(B(L), B_last),
        A=A_sol, B=B_sol, l=l, L=L, n=n, d0=d0, X=X,
    )


@lru_cache(maxsize=None)
def derive_ntk_diagonal(gain=2) -> NTKDiagonal:
    """Expected NTK (Gauss-Newton) diagonal ``Theta(x, x)`` per output at He initialization.

    ``Theta(x, x) = sum_layers ||d f_o / d W||^2``. The layer ``W^(l+1)`` (reading hidden layer
    ``l``) contributes ``||h^(l)||^2 ||d f_o / d z^(l+1)||^2``; the input layer contributes
    ``X * B_1``. Taking the expectation of each product as the product of expectations (the
    infinite-width factorization; the finite-width correction is ``O(L / n)``) and summing with
    :func:`sympy.summation`:

    ``Theta(x, x) = rho_in * X + L * n * X / d0``,

    where ``rho_in`` is the input layer's LR multiplier (the LR-weighted kernel governs the GD
    step; ``rho_in = 1`` is the plain NTK). ``gain``: as in :func:`derive_moment_recursions`
    (another gain multiplies this by ``(gain / 2)^L``).
    """
    r = derive_moment_recursions(gain)
    l, L, n, d0, X = r.l, r.L, r.n, r.d0, r.X
    rho_in = sp.Symbol("rho_in", positive=True)
    A, B = sp.Lambda(l, r.A), sp.Lambda(l, r.B)
    # readout: d f_o / d W^(L+1)_o = h^(L)  (the "B" of the output itself is 1)
    hidden = sp.summation(A(l) * B(l + 1), (l, 1, L - 1)) + A(L)
    input_term = rho_in * X * B(1)
    theta = sp.simplify(input_term + hidden)
    return NTKDiagonal(theta=theta, input_term=sp.simplify(input_term), hidden_term=sp.simplify(hidden),
                       L=L, n=n, d0=d0, X=X, rho_in=rho_in)


@lru_cache(maxsize=None)
def derive_lambda1_growth() -> Lambda1Growth:
    """Growth of ``lambda_1`` with ``P = L * n`` implied by the NTK diagonal.

    ``lambda_1`` scales like ``Theta(x, x)`` (both bounds of :func:`derive_lambda1_bounds` are
    proportional to it or to the same sum over layers). As a function of ``P = L n``:
    ``Theta = X (rho_in + P / d0)``; its local log-log slope is
    ``d log Theta / d log P = P / (rho_in d0 + P)``, which tends to 1 when ``P >> rho_in d0``:
    ``lambda_1 ~ (L n)^1``. The input layer (``rho_in X``) is the part that does not grow with
    ``L n``; training it at a small LR removes it from the effective curvature.

    Example
    -------
    >>> derive_lambda1_growth().asymptotic_exponent
    1
    """
    d = derive_ntk_diagonal()
    P = sp.Symbol("P", positive=True)
    theta_P = sp.simplify(d.theta.subs(d.L, P / d.n))
    slope = sp.simplify(P * sp.diff(theta_P, P) / theta_P)
    return Lambda1Growth(theta_P=theta_P, slope=slope, asymptotic_exponent=sp.limit(slope, P, sp.oo),
                         P=P, d0=d.d0, X=d.X, rho_in=d.rho_in)


@lru_cache(maxsize=None)
def derive_lambda1_bounds() -> Lambda1Bounds:
    """Bounds on ``lambda_1`` at initialization in terms of ``L * n`` (derived here).

    For the squared loss ``(1/2N) sum_i ||f(x_i) - y_i||^2`` the Gauss-Newton matrix is
    ``G = (1/N) J^T J``, whose nonzero spectrum is that of the ``(Nk x Nk)`` Gram matrix
    ``Theta / N``. Hence, for any unit vector ``v``, ``v^T (Theta/N) v <= lambda_1(G) <= tr(G)``.
    Taking ``v`` uniform over the examples of one output and the expectation at initialization:

    * lower: ``lambda_1 >= (1/N^2) sum_{i,j} Theta(x_i, x_j)``, where the off-diagonal kernel
      follows the ReLU arc-cosine recursion (:func:`ntk_gram_infinite_width`); its diagonal part
      alone gives ``(1/N) * mean_i Theta(x_i, x_i)``;
    * upper: ``lambda_1 <= tr(G) = k * mean_i Theta(x_i, x_i) = k * (1 + L n / d0) * mean_i X_i``.

    Both grow linearly in ``L n`` once ``L n >> d0``, the shape of the paper's bounds (whose
    constants are the paper's own). The measured ``lambda_1`` is the Hessian's, which adds a
    residual term ``(1/N) sum_i r_i . D^2 f`` that vanishes in the infinite-width limit.
    """
    d = derive_ntk_diagonal()
    k, N, Xbar = sp.symbols("k N Xbar", positive=True)
    theta_mean = d.theta.subs({d.rho_in: 1, d.X: Xbar})
    return Lambda1Bounds(upper=sp.expand(k * theta_mean), lower_diag=sp.expand(theta_mean / N),
                         L=d.L, n=d.n, d0=d.d0, k=k, N=N, Xbar=Xbar)


@lru_cache(maxsize=None)
def _arccos_maps():
    """The ReLU correlation map and its derivative kernel (Cho & Saul 2009), as numpy functions."""
    rho = sp.Dummy()  # the correlation, lambdified away
    f = (sp.sqrt(1 - rho**2) + (sp.pi - sp.acos(rho)) * rho) / sp.pi
    fdot = (sp.pi - sp.acos(rho)) / sp.pi
    return sp.lambdify(rho, f), sp.lambdify(rho, fdot)  # NumPy functions (lambdify's default modules)


# ----------------------------------------------------------------------------------------------
# numeric predictions
# ----------------------------------------------------------------------------------------------
def ntk_gram_infinite_width(x, depth: int, width: int, rho_in: float = 1.0) -> np.ndarray:
    """Infinite-width NTK Gram matrix ``Theta(x_i, x_j)`` per output of the He ReLU MLP.

    With ``rho_1 = cos(x, x')``, ``rho_{l+1} = f(rho_l)`` (arc-cosine map) and
    ``fdot(rho) = (pi - arccos rho)/pi``:

    ``Theta = |x||x'| [ rho_in rho_1 prod_{m=1}^{L} fdot(rho_m)
    + (n/d0) sum_{l=2}^{L+1} rho_l prod_{m=l}^{L} fdot(rho_m) ]``.

    On the diagonal (``rho = 1``) this is :func:`derive_ntk_diagonal`'s closed form.

    Parameters
    ----------
    x : array ``(N, d0)``
    depth, width : int
        ``L`` and ``n`` (positive).
    rho_in : float
        Input-layer LR multiplier (1: the plain NTK).

    Returns
    -------
    ndarray ``(N, N)``

    Raises
    ------
    ValueError
        On a non-2D or non-finite ``x`` or a non-positive depth / width / rho_in.

    Example
    -------
    Two orthogonal unit inputs, one hidden layer of width 4 on ``d0 = 2``: the diagonal is
    ``1 + L n / d0 = 3``, the off-diagonal ``(n / d0) f(0) = 2 / pi``.

    >>> g = ntk_gram_infinite_width(np.eye(2), 1, 4)
    >>> g.diagonal().tolist(), round(float(g[0, 1]) * np.pi, 12)
    ([3.0, 3.0], 2.0)
    """
    x = validate.finite_array(x, "x", ndim=2)
    depth = validate.positive_int(depth, "depth")
    width = validate.positive_int(width, "width")
    rho_in = validate.positive_real(rho_in, "rho_in")
    f, fdot = _arccos_maps()
    d0 = x.shape[1]
    nr = np.linalg.norm(x, axis=1)
    nn_ = np.outer(nr, nr)
    # cosines, clipped against round-off (parallel inputs); a zero input's are 0 (0 / inf): its
    # row of the kernel is 0 whatever they are (the factor |x||x'|)
    rho = np.clip((x @ x.T) / np.where(nn_ > 0, nn_, np.inf), -1.0, 1.0)
    # the diagonal is exactly 1 (arccos is not Lipschitz at 1: round-off there would cost 1e-8)
    np.fill_diagonal(rho, 1.0)
    rhos = [rho]  # rhos[j] = rho_{j+1}
    for _ in range(depth):
        rhos.append(f(rhos[-1]))  # f maps [-1, 1] into [0, 1] (f(1) = 1 exactly): no clipping
    # tail[l] = prod_{m=l}^{L} fdot(rho_m), l = 1..L+1 (empty product 1)
    tail = {depth + 1: np.ones_like(rho)}
    for l in range(depth, 0, -1):
        tail[l] = tail[l + 1] * fdot(rhos[l - 1])
    theta = rho_in * rhos[0] * tail[1]
    for l in range(2, depth + 2):
        theta = theta + (width / d0) * rhos[l - 1] * tail[l]
    return nn_ * theta


#: The architectures :data:`FINITE_WIDTH_C` is fitted on (ours): the CI-scale grid's depths 2 and 3.
#: Claims check ``lambda_1`` only on other architectures (the fit is not a prediction of its own data).
CALIBRATION_ARCHS = ((2, 16), (2, 32), (2, 64), (3, 16), (3, 32), (3, 64))

#: The constant ``c`` of :func:`finite_width_factor` (ours, fitted: see there).
FINITE_WIDTH_C = 17.0


def finite_width_factor(width: int, depth: int) -> float:
    """``1 + c L / n``: the finite-width excess of ``lambda_1`` over its infinite-width value (ours).

    At infinite width the ``k`` outputs' kernels are equal and uncoupled, so the Gauss-Newton
    matrix has ``lambda_max(Theta)/N`` ``k`` times over. At width ``n`` each hidden layer's
    gradient of output ``o`` carries the ``o``-th row of the random readout, so on the top
    direction the ``k x k`` block of the Gram matrix is a random (Wishart-like) matrix, whose top
    eigenvalue exceeds its mean diagonal; the kernel's own fluctuations, of relative variance
    ``O(L / n)`` (they compound over layers), add to it. The excess is taken linear in ``L / n``
    (its form is ours, not derived) with a constant ``c`` = :data:`FINITE_WIDTH_C` that is
    **fitted, not derived**: the median over :data:`CALIBRATION_ARCHS` (the CI-scale grid's
    depths 2-3, widths 16-64, digits, six seeds) of ``(measured / infinite width - 1) n / L``
    (:func:`lrtheory.results.sharpness.analysis.finite_width_constants`; 16.8, rounded; a test
    recomputes it). Claims compare it only with other architectures: the CI grid's depths 4-6
    and the reference grid's architectures outside the calibration set.

    Example
    -------
    >>> finite_width_factor(34, 2)
    2.0
    """
    width = validate.positive_int(width, "width")
    depth = validate.positive_int(depth, "depth")
    return float(1.0 + FINITE_WIDTH_C * depth / width)


def predict_lambda1(x, depth: int, width: int, n_out: int) -> Lambda1Prediction:
    """Infinite-width predictions for ``lambda_1`` of the squared loss at init on inputs ``x``.

    ``lower`` = mean of the Gram matrix (bound of :func:`derive_lambda1_bounds`), ``point`` =
    ``lambda_max(Theta)/N``, ``upper`` = ``n_out * mean_i Theta(x_i, x_i)`` (the closed form,
    evaluated by sympy).
    """
    n_out = validate.positive_int(n_out, "n_out")
    gram = ntk_gram_infinite_width(x, depth, width)
    x = np.asarray(x, dtype=np.float64)
    N = len(gram)
    b = derive_lambda1_bounds()
    upper = float(b.upper.subs({b.L: depth, b.n: width, b.d0: x.shape[1], b.k: n_out,
                                b.Xbar: float(np.mean(np.sum(x * x, axis=1)))}))
    point = float(np.linalg.eigvalsh(gram)[-1] / N)
    return Lambda1Prediction(lower=float(gram.mean()), point=point, upper=upper,
                             finite=point * finite_width_factor(width, depth))


def predict_grid(x, archs: Sequence[Tuple[int, int]], n_out: int) -> Tuple[Tuple[Tuple[int, int], Lambda1Prediction], ...]:
    """:func:`predict_lambda1` for every ``(L, n)`` of ``archs`` on the inputs ``x`` (no training).

    Returns
    -------
    tuple of ((L, n), Lambda1Prediction)
    """
    return tuple(((int(L), int(n)), predict_lambda1(x, L, n, n_out)) for (L, n) in archs)


def experiment_inputs(cfg) -> Tuple[np.ndarray, int]:
    """The inputs the predictions are evaluated on: the first ``cfg.n_sharp`` training inputs of
    the chapter's data set (the ones ``lambda_1`` is measured on), and the number of outputs."""
    from lrtheory.core import data

    validate.choice(cfg.dataset, "dataset", ("digits", "mnist1d"))
    load = data.digits if cfg.dataset == "digits" else data.mnist1d
    ds = load(seed=0, n_train=cfg.n_train, device="cpu")
    return ds.x_train[: cfg.n_sharp].detach().cpu().numpy(), int(ds.d_out)


@lru_cache(maxsize=8)
def predict_config(cfg, which: str = "archs") -> Tuple[Tuple[Tuple[int, int], Lambda1Prediction], ...]:
    """:func:`predict_grid` for the architectures ``cfg.archs`` (or ``cfg.narrow`` with
    ``which="narrow"``) on :func:`experiment_inputs` ``(cfg)``: no training (memoized)."""
    validate.choice(which, "which", ("archs", "narrow"))
    x, n_out = experiment_inputs(cfg)
    return predict_grid(x, getattr(cfg, which), n_out)


def predict_growth_exponent(predictions) -> float:
    """Predicted exponent of ``lambda_1`` in ``L n``: the log-log slope of the infinite-width
    ``lambda_max(Theta)/N`` over the architectures of ``predictions`` (a :func:`predict_grid`
    result); below the asymptotic 1 of :func:`derive_lambda1_growth` because of the input term."""
    from lrtheory.core.stats import loglog_fit

    return float(loglog_fit([L * n for (L, n), _ in predictions], [p.point for _, p in predictions]).slope)
