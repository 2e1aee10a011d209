"""The derivation of chapter 03 (sympy): the one-step change of a mean-field ReLU MLP.

Setting (Jelassi et al. 2023, arXiv 2305.07810): a fully connected ReLU network with input
dimension and hidden width ``n``, ``L`` hidden layers and one output,

.. math::

    z^{(1)} = W^{(1)} x, \\quad z^{(\\ell)} = W^{(\\ell)} \\sigma(z^{(\\ell-1)}) \\;(2 \\le \\ell \\le L),
    \\quad f = W^{(L+1)} \\sigma(z^{(L)}),

with the *mean-field* initialization ``W^{(l)}_{ij} ~ N(0, 2/n)`` for ``l <= L`` and
``W^{(L+1)}_{j} ~ N(0, 1/n^2)``. One GD step with LR ``eta`` on ``(f(x) - y)^2 / 2`` changes
the pre-activations by ``Delta z^{(l)}``; the maximal-update LR is the largest ``eta`` for
which ``E[(Delta z_i^{(l)})^2]`` stays O(1) at large ``n`` and ``L``.

The paper's abstract gives ``eta* ~ L^{-3/2}``, independent of ``n`` except for the first and
last layers; Chen, Wu, Wang, Hanin (ICLR 2024) restate the growth ``Theta(eta^2 L^3)``. The
exact constant ``y^2 l (2 l^2 + 1) / 6`` is derived here:

* the large-``n`` moments of a ReLU layer (Gaussian integrals);
* the one-step recursion of the first-order change split into a *coherent* part (along the
  back-propagated gradient) and an *incoherent* part (fresh Gaussian noise injected by every
  layer), solved with ``rsolve`` and ``summation``;
* from it the maximal-update LR, its exponents in ``L`` and ``n``, and the width exponents of
  the first- and last-layer LRs.

The one step done by hand: the reduction of the finite-``n`` network to the layer-wise
Gaussian model (``W D W^T v = v + xi`` with ``xi`` a fresh Gaussian vector, and the incoherent
part passing through ``W D`` as if independent of it: the gradient-independence step of
large-``n`` analyses). The claim ``mup_depth.update_formula`` checks it numerically.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import sympy as sp

from lrtheory.core import validate

__all__ = [
    "Symbols",
    "symbols",
    "ReluMoments",
    "derive_relu_moments",
    "LayerRules",
    "derive_layer_rules",
    "UpdateRecursion",
    "derive_update_recursion",
    "UpdateVariance",
    "derive_update_variance",
    "MaxUpdateLR",
    "derive_max_update_lr",
    "LayerWidthExponents",
    "derive_layer_width_exponents",
    "OutputUpdate",
    "derive_output_update",
    "EdgeLayerLR",
    "derive_edge_layer_lr",
    "update_variance",
    "max_update_lr",
    "edge_layer_lr",
    "grid_depth_exponent",
]


@dataclass(frozen=True)
class Symbols:
    """The sympy symbols of the chapter.

    ``n`` width, ``L`` depth (hidden layers), ``l`` a layer index, ``k`` a summation index,
    ``eta`` the learning rate, ``y`` the target (taken positive: only ``y^2`` enters, so ``y``
    stands for ``|y|``), ``q`` the mean square ``||x||^2 / n`` of the input, ``lam`` a
    hidden-layer LR multiplier, ``tau`` the update target, ``sw2`` the weight variance times
    fan-in (2 for ReLU), ``v`` a variance, ``d`` an input dimension.
    """

    n: sp.Symbol
    L: sp.Symbol
    l: sp.Symbol  # noqa: E741 - the layer index of the paper
    k: sp.Symbol
    eta: sp.Symbol
    y: sp.Symbol
    q: sp.Symbol
    lam: sp.Symbol
    tau: sp.Symbol
    sw2: sp.Symbol
    v: sp.Symbol
    d: sp.Symbol


@functools.lru_cache(maxsize=None)
def symbols() -> Symbols:
    """The chapter's :class:`Symbols` (one set, cached)."""
    pos = dict(positive=True)
    return Symbols(
        n=sp.Symbol("n", **pos), L=sp.Symbol("L", **pos, integer=True), l=sp.Symbol("ell", **pos, integer=True),
        k=sp.Symbol("k", **pos, integer=True), eta=sp.Symbol("eta", **pos), y=sp.Symbol("y", **pos),
        q=sp.Symbol("q", **pos), lam=sp.Symbol("lambda", **pos), tau=sp.Symbol("tau", **pos),
        sw2=sp.Symbol("sigma_w^2", **pos), v=sp.Symbol("v", **pos), d=sp.Symbol("d", **pos))


@dataclass(frozen=True)
class ReluMoments:
    """``p_active`` = P(z > 0), ``relu_sq`` = E[relu(z)^2] for ``z ~ N(0, v)``."""

    p_active: sp.Expr
    relu_sq: sp.Expr


@functools.lru_cache(maxsize=None)
def derive_relu_moments() -> ReluMoments:
    """Gaussian integrals of one ReLU unit with pre-activation ``z ~ N(0, v)``."""
    v = symbols().v
    z = sp.Symbol("z", real=True)
    pdf = sp.exp(-z ** 2 / (2 * v)) / sp.sqrt(2 * sp.pi * v)
    return ReluMoments(p_active=sp.simplify(sp.integrate(pdf, (z, 0, sp.oo))),
                       relu_sq=sp.simplify(sp.integrate(z ** 2 * pdf, (z, 0, sp.oo))))


@dataclass(frozen=True)
class LayerRules:
    """Large-``n`` rules of one hidden layer (general ``sw2``; ``*_relu``: at ``sw2 = 2``).

    ``forward_gain`` ``||relu(W h)||^2 / ||h||^2``; ``backward_gain`` ``||D W^T g||^2 / ||g||^2``;
    ``coherent_gain`` ``kappa`` in ``W D W^T v = kappa v + xi``; ``noise_var`` the mean square
    of ``xi`` per unit mean square of ``v``; ``incoherent_gain`` the mean square of ``W D rho``
    per unit mean square of ``rho`` (independent of ``D``); ``h_ms`` the pre-mask mean square of
    the back-propagated output gradient times ``n``, ``gamma_ms`` that of
    ``gamma = n dF/dz^{(l)}``.
    """

    p_active: sp.Expr
    forward_gain: sp.Expr
    backward_gain: sp.Expr
    coherent_gain: sp.Expr
    noise_var: sp.Expr
    incoherent_gain: sp.Expr
    h_ms: sp.Expr
    gamma_ms: sp.Expr
    forward_gain_relu: sp.Expr
    backward_gain_relu: sp.Expr
    coherent_gain_relu: sp.Expr
    noise_var_relu: sp.Expr
    incoherent_gain_relu: sp.Expr


@functools.lru_cache(maxsize=None)
def derive_layer_rules() -> LayerRules:
    """Large-``n`` rules of one hidden layer ``W`` (entries ``N(0, sw2/n)``), mask ``D``.

    With ``p = P(z > 0)`` from :func:`derive_relu_moments` and a vector ``v`` of mean square
    ``m`` independent of ``W`` (the hand step, see the module docstring):

    * ``forward_gain``: ``sw2 * E[relu(z)^2]/Var z``; ``backward_gain``: ``sw2 * p``;
    * ``coherent_gain``: ``kappa = (sw2/n) * n p``;
    * ``noise_var``: ``lim n * p * (sw2/n)^2 * n = sw2^2 p``;
    * ``incoherent_gain``: ``(sw2/n) * n p``;
    * ``gamma_ms``: from ``gamma^{(L)} = n W^{(L+1)} * D`` and ``W^{(L+1)} ~ N(0, 1/n^2)``,
      propagated down with ``backward_gain``.
    """
    s = symbols()
    n, sw2, v, lsym = s.n, s.sw2, s.v, s.l
    mom = derive_relu_moments()
    p = mom.p_active
    forward_gain = sp.simplify(sw2 * mom.relu_sq / v)
    backward_gain = sp.simplify(sw2 * p)
    coherent_gain = sp.limit((sw2 / n) * n * p, n, sp.oo)
    noise_var = sp.limit(n * p * (sw2 / n) ** 2 * n, n, sp.oo)
    incoherent_gain = sp.limit((sw2 / n) * n * p, n, sp.oo)
    # readout: gamma^{(L)}_i = n W^{(L+1)}_i D_i, E[(n W)^2] = n^2 / n^2 = 1
    readout_ms = sp.limit(n ** 2 * (1 / n ** 2), n, sp.oo)
    # backward recursion of the pre-mask mean square h: h_{l} = backward_gain * h_{l+1}
    hfun = sp.Function("h")
    h_ms = sp.simplify(sp.rsolve(hfun(lsym) - backward_gain.subs(sw2, 2) * hfun(lsym + 1), hfun(lsym),
                                 {hfun(0): readout_ms}))
    gamma_ms = sp.simplify(p * h_ms)

    def relu(e):
        return sp.nsimplify(e.subs(sw2, 2))

    return LayerRules(p_active=p, forward_gain=forward_gain, backward_gain=backward_gain,
                      coherent_gain=coherent_gain, noise_var=noise_var, incoherent_gain=incoherent_gain,
                      h_ms=h_ms, gamma_ms=gamma_ms, forward_gain_relu=relu(forward_gain),
                      backward_gain_relu=relu(backward_gain), coherent_gain_relu=relu(coherent_gain),
                      noise_var_relu=relu(noise_var), incoherent_gain_relu=relu(incoherent_gain))


@dataclass(frozen=True)
class UpdateRecursion:
    """``c`` (``c_l``), ``r`` (``r_l``), ``a`` (the per-layer drive ``lam * q``), and the
    equations ``c_recursion``, ``r_recursion`` (for display)."""

    c: sp.Expr
    r: sp.Expr
    a: sp.Expr
    c_recursion: sp.Eq
    r_recursion: sp.Eq


@functools.lru_cache(maxsize=None)
def derive_update_recursion() -> UpdateRecursion:
    """The first-order change ``Delta z^{(l)} = -eta (f - y) theta^{(l)}`` and its recursion.

    Differentiating ``z^{(l)} = W^{(l)} relu(z^{(l-1)})`` along the gradient step gives
    ``theta^{(l)} = W^{(l)} D^{(l-1)} theta^{(l-1)} + (||h^{(l-1)}||^2 / n) * lam * gamma^{(l)}``
    (per-layer LR ``eta * lam``). Write ``theta^{(l)} = c_l gamma^{(l)} + rho^{(l)}``: the
    coherent coefficient obeys ``c_l = kappa c_{l-1} + a`` (``a = lam q``), and the mean square
    of the incoherent part ``r_l = g r_{l-1} + noise_var * gamma_ms * c_{l-1}^2``. ``rsolve``
    solves the first recursion, ``summation`` the second (``r_1 = 0``).
    """
    s = symbols()
    rules = derive_layer_rules()
    l, k = s.l, s.k
    a = s.lam * s.q
    kappa, g_inc, nv, gms = (rules.coherent_gain_relu, rules.incoherent_gain_relu, rules.noise_var_relu,
                             rules.gamma_ms)
    cf = sp.Function("c")
    c_rec = sp.Eq(cf(l), kappa * cf(l - 1) + a)
    c_sol = sp.simplify(sp.rsolve(cf(l) - kappa * cf(l - 1) - a, cf(l), {cf(0): 0}))
    if g_inc != 1:  # pragma: no cover - the ReLU mean-field value is 1
        raise NotImplementedError("incoherent gain != 1 is not needed for ReLU")
    rf = sp.Function("r")
    r_rec = sp.Eq(rf(l), g_inc * rf(l - 1) + nv * gms * cf(l - 1) ** 2)
    r_sol = sp.factor(sp.summation((nv * gms * c_sol ** 2).subs(l, k), (k, 1, l - 1)))
    return UpdateRecursion(c=c_sol, r=r_sol, a=a, c_recursion=c_rec, r_recursion=r_rec)


@dataclass(frozen=True)
class UpdateVariance:
    """``V`` (general ``lam``, ``q``), ``V_uniform`` (``lam = q = 1``), its ``coherent`` and
    ``incoherent`` parts, ``leading`` (the ``l -> oo`` leading term), its ``degree`` in ``l``
    and ``ratio_to_leading`` (limit of ``V / leading``, equal to 1)."""

    V: sp.Expr
    V_uniform: sp.Expr
    coherent: sp.Expr
    incoherent: sp.Expr
    leading: sp.Expr
    degree: sp.Integer
    ratio_to_leading: sp.Expr


@functools.lru_cache(maxsize=None)
def derive_update_variance() -> UpdateVariance:
    """Leading large-``n`` mean squared one-step change of layer ``l``'s pre-activations.

    ``V_l = eta^2 y^2 (gamma_ms * c_l^2 + r_l)`` (``(f - y)^2 -> y^2`` since
    ``f = O(n^{-1/2})`` under the mean-field readout).
    """
    s = symbols()
    l, eta, y = s.l, s.eta, s.y
    rec = derive_update_recursion()
    gms = derive_layer_rules().gamma_ms
    coherent = sp.factor(eta ** 2 * y ** 2 * gms * rec.c ** 2)
    incoherent = sp.factor(eta ** 2 * y ** 2 * rec.r)
    V = sp.factor(coherent + incoherent)
    Vu = sp.factor(V.subs({s.lam: 1, s.q: 1}))
    poly = sp.Poly(sp.expand(Vu), l)
    lead = sp.LT(poly).as_expr()
    return UpdateVariance(V=V, V_uniform=Vu, coherent=coherent, incoherent=incoherent, leading=lead,
                          degree=sp.Integer(poly.degree()), ratio_to_leading=sp.limit(Vu / lead, l, sp.oo))


@dataclass(frozen=True)
class MaxUpdateLR:
    """``eta_star`` (``lam = q = 1``), ``eta_star_general``, ``depth_exponent``
    (``lim_{L->oo} d log eta*/d log L = -3/2``), ``width_exponent`` (``d log eta*/d log n = 0``),
    ``asymptote`` (``eta* ~ sqrt(3 tau)/|y| L^{-3/2}``), ``local_exponent``
    (``d log eta*/d log L`` at finite ``L``)."""

    eta_star: sp.Expr
    eta_star_general: sp.Expr
    depth_exponent: sp.Expr
    width_exponent: sp.Expr
    asymptote: sp.Expr
    local_exponent: sp.Expr


@functools.lru_cache(maxsize=None)
def derive_max_update_lr() -> MaxUpdateLR:
    """Maximal-update LR of a depth-``L`` net and its exponents in ``L`` and ``n``.

    ``V_l`` grows with ``l``, so the binding layer is ``l = L``; solving ``V_L(eta) = tau``
    for ``eta > 0`` gives ``eta*(L)``.
    """
    s = symbols()
    L, eta, tau, n = s.L, s.eta, s.tau, s.n
    Vg = derive_update_variance().V.subs(s.l, L)
    sols = [e for e in sp.solve(sp.Eq(Vg, tau), eta) if e.is_positive is not False]
    eta_gen = sp.simplify(sols[0])
    eta_star = sp.simplify(eta_gen.subs({s.lam: 1, s.q: 1}))
    local = sp.simplify(L * sp.diff(sp.log(eta_star), L))
    asym = sp.simplify(sp.limit(eta_star * L ** sp.Rational(3, 2), L, sp.oo)) * L ** sp.Rational(-3, 2)
    return MaxUpdateLR(eta_star=eta_star, eta_star_general=eta_gen, depth_exponent=sp.limit(local, L, sp.oo),
                       width_exponent=sp.simplify(n * sp.diff(sp.log(eta_star), n)), asymptote=asym,
                       local_exponent=local)


@dataclass(frozen=True)
class LayerWidthExponents:
    """Exponent ``e`` of the LR multiplier ``n^e`` per layer kind (``hidden``, ``input``,
    ``readout``) and the ``contributions`` (sizes in powers of ``n``) they come from."""

    hidden: sp.Expr
    input: sp.Expr
    readout: sp.Expr
    contributions: dict


@functools.lru_cache(maxsize=None)
def derive_layer_width_exponents() -> LayerWidthExponents:
    """Width exponent ``e`` of the LR multiplier ``n^e`` each layer needs for an O(1) update.

    Sizes at init (powers of ``n``): a hidden activation vector has ``||h||^2 = q n``, the
    back-propagated output gradient ``dF/dz`` has entries ``O(1/n)`` (``gamma_ms / n^2``), an
    input of fixed dimension ``d`` has ``||x||^2 = d``. A layer with LR ``eta n^e`` moves the
    pre-activations above it by ``eta n^e ||input||^2 |dF/dz|`` and the output through its own
    weights by ``eta n^e ||input||^2 |dF/dout|``. Requiring each to be ``Theta(n^0)``:

    * ``hidden``: ``n * n^{-1} -> e = 0`` (width independent);
    * ``input`` (fixed ``d``): ``d * n^{-1} -> e = 1`` (LR ``~ n/d``);
    * ``readout``: ``n * 1 -> e = -1`` (LR ``~ 1/n``); it changes no hidden pre-activation.
    """
    s = symbols()
    n, q, d = s.n, s.q, s.d
    e = sp.Symbol("e", real=True)
    grad_entry = sp.sqrt(derive_layer_rules().gamma_ms) / n  # |dF/dz_i| at a hidden layer
    contrib = {"hidden": n ** e * (q * n) * grad_entry, "input": n ** e * d * grad_entry,
               "readout": n ** e * (q * n) * 1}
    out = {name: sp.solve(sp.Eq(sp.limit(sp.log(expr) / sp.log(n), n, sp.oo), 0), e)[0]
           for name, expr in contrib.items()}
    return LayerWidthExponents(contributions=contrib, **out)


@dataclass(frozen=True)
class OutputUpdate:
    """``coefficient`` (``(df/deta)^2``, general ``lam_out``), ``coefficient_mf``
    (``lam_out = 1/n``: ``y^2 (1 + L/2)^2``, width independent), ``coefficient_plain``
    (``lam_out = 1``), ``width_exponent_plain`` (its power of ``n``, 2), ``lambda_out``."""

    coefficient: sp.Expr
    coefficient_mf: sp.Expr
    coefficient_plain: sp.Expr
    width_exponent_plain: sp.Expr
    lambda_out: sp.Symbol


@functools.lru_cache(maxsize=None)
def derive_output_update() -> OutputUpdate:
    """First-order change of the output ``f`` per unit ``eta``, and the readout's role.

    ``df/deta = -(f - y) [lam_out ||h^{(L)}||^2 + sum_l lam ||h^{(l-1)}||^2 ||dF/dz^{(l)}||^2]``
    with ``||h||^2 = q n`` and ``||dF/dz^{(l)}||^2 = gamma_ms / n``. sympy sums the hidden
    layers; the readout term is ``lam_out q n``.
    """
    s = symbols()
    n, L, l, q, y, lam = s.n, s.L, s.l, s.q, s.y, s.lam
    lam_out = sp.Symbol("lambda_out", positive=True)
    hidden = sp.summation(lam * (q * n) * derive_layer_rules().gamma_ms / n, (l, 1, L))
    coef = y ** 2 * (lam_out * q * n + hidden) ** 2
    plain = sp.factor(coef.subs({lam_out: 1, lam: 1, q: 1}))
    return OutputUpdate(coefficient=coef, coefficient_mf=sp.factor(coef.subs({lam_out: 1 / n, lam: 1, q: 1})),
                        coefficient_plain=plain, width_exponent_plain=sp.limit(sp.log(plain) / sp.log(n), n, sp.oo),
                        lambda_out=lam_out)


@dataclass(frozen=True)
class EdgeLayerLR:
    """The max-update LRs of the first and the last layer of a network with input dimension
    ``d`` held fixed (derived here).

    ``first_coefficient`` ``E[(dz^{(1)}_i/deta)^2]`` from the first layer's own step,
    ``first_lr`` its max-update LR ``sqrt(2 tau) n / (y d)``; ``last_coefficient``
    ``(df/deta)^2`` from the readout's own step, ``last_lr`` ``sqrt(tau) / (y n)``; the
    ``*_width_exponent`` their powers of ``n`` (+1 and -1; the hidden layers' is 0).
    """

    first_coefficient: sp.Expr
    first_lr: sp.Expr
    first_width_exponent: sp.Expr
    last_coefficient: sp.Expr
    last_lr: sp.Expr
    last_width_exponent: sp.Expr


@functools.lru_cache(maxsize=None)
def derive_edge_layer_lr() -> EdgeLayerLR:
    """The first and the last layer's max-update LR at LR multiplier 1, input dimension ``d``.

    The first layer's step ``Delta W^{(1)} = -eta (f - y) g^{(1)} x^T`` moves ``z^{(1)}`` by
    ``-eta (f - y) ||x||^2 g^{(1)}`` with ``||x||^2 = q d`` and ``E[(g^{(1)}_i)^2] =
    gamma_ms / n^2`` (``g = dF/dz``); the readout's step moves the output by
    ``-eta (f - y) ||h^{(L)}||^2`` with ``||h^{(L)}||^2 = q n``. ``(f - y)^2 -> y^2`` at
    large ``n``. Each max-update LR solves ``coefficient * eta^2 = tau``.
    """
    s = symbols()
    n, d, q, y, tau, eta = s.n, s.d, s.q, s.y, s.tau, s.eta
    gms = derive_layer_rules().gamma_ms
    first = sp.simplify((y * q * d) ** 2 * gms / n ** 2)
    last = sp.simplify((y * q * n) ** 2)

    def lr(coef):
        (sol,) = [e for e in sp.solve(sp.Eq(coef.subs(q, 1) * eta ** 2, tau), eta) if e.is_positive is not False]
        return sp.simplify(sol)

    f_lr, l_lr = lr(first), lr(last)
    return EdgeLayerLR(first_coefficient=first, first_lr=f_lr,
                       first_width_exponent=sp.simplify(n * sp.diff(sp.log(f_lr), n)),
                       last_coefficient=last, last_lr=l_lr,
                       last_width_exponent=sp.simplify(n * sp.diff(sp.log(l_lr), n)))


# ----------------------------------------------------------------------------- numbers
_PARTS = ("total", "coherent", "incoherent")


@functools.lru_cache(maxsize=None)
def _V_fn(part: str = "total"):
    s = symbols()
    v = derive_update_variance()
    expr = {"total": v.V_uniform, "coherent": v.coherent, "incoherent": v.incoherent}[part]
    return sp.lambdify((s.l, s.eta, s.y), expr.subs({s.lam: 1, s.q: 1}), "numpy")


@functools.lru_cache(maxsize=None)
def _eta_fn(asymptote: bool = False):
    s = symbols()
    m = derive_max_update_lr()
    return sp.lambdify((s.L, s.tau, s.y), m.asymptote if asymptote else m.eta_star, "numpy")


def _positive_ints(value, name: str) -> np.ndarray:
    """``value`` (an int or an array of ints >= 1) as a float array of the same shape."""
    arr = np.asarray(value)
    validate.int_sequence(arr.reshape(-1), name, minimum=1)
    return arr.astype(np.float64)


def update_variance(layer, eta: float = 1.0, y: float = 1.0, part: str = "total") -> np.ndarray:
    """Derived large-``n`` mean squared one-step change ``E[(Delta z^{(l)}_i)^2]`` (first order in eta).

    Parameters
    ----------
    layer : int or array of int
        Layer index ``l >= 1`` (1 = first hidden layer).
    eta : float
        Learning rate (> 0), the same on every hidden layer.
    y : float
        Target of the one datum (finite).
    part : {"total", "coherent", "incoherent"}
        The whole change, or its coherent part ``eta^2 y^2 l^2 / 2`` (along the back-propagated
        gradient) or incoherent part (the noise injected by the layers below).

    Returns
    -------
    ndarray
        ``eta^2 y^2 l (2 l^2 + 1) / 6`` (``part="total"``), same shape as ``layer``.

    Raises
    ------
    ValueError
        If a layer is not a positive integer, ``eta <= 0``, ``y`` is not finite or ``part``
        is unknown.

    Examples
    --------
    >>> float(update_variance(16, eta=1.0)), float(update_variance(16, part="coherent"))
    (1368.0, 128.0)
    """
    arr = _positive_ints(layer, "layer")
    eta = validate.positive_real(eta, "eta")
    y = validate.finite_real(y, "y")
    part = validate.choice(part, "part", _PARTS)
    return np.asarray(_V_fn(part)(arr, eta, y), dtype=np.float64)


def max_update_lr(depth, tau: float = 1.0, y: float = 1.0, asymptote: bool = False) -> np.ndarray:
    """Derived maximal-update LR ``eta*(L)``: ``V_L(eta*) = tau``.

    Parameters
    ----------
    depth : int or array of int
        Number of hidden layers ``L >= 1``.
    tau : float
        Target mean squared change (> 0).
    y : float
        Target of the datum (non-zero, finite).
    asymptote : bool
        Return the large-``L`` asymptote ``sqrt(3 tau) / |y| L^{-3/2}`` instead.

    Returns
    -------
    ndarray
        ``sqrt(6 tau / (L (2 L^2 + 1))) / |y|``.

    Raises
    ------
    ValueError
        On a non-positive depth or ``tau``, or ``y`` zero / not finite.

    Examples
    --------
    >>> round(float(max_update_lr(2)), 4), round(float(max_update_lr(2, asymptote=True)), 4)
    (0.5774, 0.6124)
    """
    arr = _positive_ints(depth, "depth")
    tau = validate.positive_real(tau, "tau")
    y = validate.finite_real(y, "y")
    if y == 0:
        raise ValueError(f"y: expected a non-zero finite number, got {y!r}")
    return np.asarray(_eta_fn(bool(asymptote))(arr, tau, abs(y)), dtype=np.float64)


def grid_depth_exponent(depths, tau: float = 1.0, y: float = 1.0) -> float:
    """The log-log slope of the derived ``eta*(L)`` on the depth grid ``depths``.

    What a least-squares fit of ``log eta*`` on ``log L`` over these depths gives when the
    derived formula holds exactly: slightly shallower than the asymptotic ``-3/2``, since the
    local exponent tends to ``-3/2`` from above (``-25/18`` at ``L = 2``).

    Examples
    --------
    >>> round(grid_depth_exponent([2, 4, 8, 16]), 4)
    -1.4733
    """
    from lrtheory.core.stats import loglog_fit

    L = _positive_ints(depths, "depths")
    return float(loglog_fit(L, max_update_lr(L.astype(int), tau, y)).slope)


@functools.lru_cache(maxsize=None)
def _edge_fn(layer: str):
    s = symbols()
    e = derive_edge_layer_lr()
    return sp.lambdify((s.n, s.d, s.tau, s.y), e.first_lr if layer == "first" else e.last_lr, "numpy")


def edge_layer_lr(layer: str, width, input_dim: int, tau: float = 1.0, y: float = 1.0) -> np.ndarray:
    """Derived max-update LR of the first (``layer="first"``) or the last (``"last"``) layer.

    Parameters
    ----------
    layer : {"first", "last"}
    width : int or array of int
        Hidden width ``n``.
    input_dim : int
        Input dimension ``d`` (held fixed; the input is ``(1, ..., 1)``).
    tau, y : float
        The update target (> 0) and the regression target (non-zero).

    Returns
    -------
    ndarray
        ``sqrt(2 tau) n / (|y| d)`` (first), ``sqrt(tau) / (|y| n)`` (last).

    Examples
    --------
    >>> round(float(edge_layer_lr("first", 256, 64)), 4), float(edge_layer_lr("last", 256, 64))
    (5.6569, 0.00390625)
    """
    layer = validate.choice(layer, "layer", ("first", "last"))
    n = _positive_ints(width, "width")
    d = validate.positive_int(input_dim, "input_dim")
    tau = validate.positive_real(tau, "tau")
    y = validate.finite_real(y, "y")
    if y == 0:
        raise ValueError(f"y: expected a non-zero finite number, got {y!r}")
    return np.asarray(_edge_fn(layer)(n, float(d), tau, abs(y)), dtype=np.float64)
