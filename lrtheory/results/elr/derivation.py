"""Chapter 04, the derivation: weight-norm and ELR dynamics of scale-invariant layers (sympy).

Everything here is *derived here* from scale invariance alone: only the abstract of
Mehmeti-Gopel & Wand (ICML 2024, arXiv 2306.00700) could be read, so the definitions, the
formulas, the critical learning rate and the warm-up rule are ours, not transcribed.

Setting. A weight tensor ``W`` followed by a normalization (BatchNorm, LayerNorm) is
*scale-invariant*: the loss does not change when ``W`` is multiplied by a positive number.
Then the gradient is orthogonal to ``W`` and its norm scales like ``1/||W||``:
``||grad|| = c / ||W||`` with ``c`` the gradient norm the layer would have at unit weight
norm. The effective learning rate (ELR) used here is the *relative step*, the definition
under which the abstract's statement (layer-wise ELR ratios tend to 1) holds in this model:

.. math::

    E = \\eta \\, \\lVert \\nabla_W L \\rVert / \\lVert W \\rVert = \\eta c / S,
    \\qquad S = \\lVert W \\rVert^2 .

(The other common definition, ``eta / ||W||^2``, drops the gradient-norm factor; under it
the ratio of two layers' ELRs tends to ``c_k / c_l``, not to 1: :func:`derive_elr_model`
derives both limits.)

What :func:`derive_elr_model` derives:

* the norm recursion ``S' = S + eta^2 c^2 / S`` and the ELR map ``E' = E / (1 + E^2)``,
  equivalently ``1/E'^2 = 1/E^2 + 2 + E^2``;
* the gradient-flow limit ``dS/dt = eta^2 c^2 / S`` and its solution
  ``S(t) = sqrt(S0^2 + 2 eta^2 c^2 t)``, so ``E(t) = E0 / sqrt(1 + 2 E0^2 t)``;
* the ratio of two layers' ELRs tends to 1, ``log(E_l/E_k) ~ (1/E_k0^2 - 1/E_l0^2) / (4t)``;
* the critical learning rate ``eta_c = 1 / sqrt(a_l a_k) = eta / sqrt(E_l E_k)``
  (``a = E / eta`` the ELR per unit LR): a step at ``eta_c`` equalizes the two ELRs;
  below it the disparity left after the step shrinks as ``eta`` grows, above it the order
  flips and the disparity grows with ``eta``;
* the warm-up that runs at ``eta_c`` of the two extreme layers, which maps the spread
  ``s = E_max / E_min`` to at most ``(sqrt(s) + 1/sqrt(s)) / 2`` per step (implemented as
  :class:`lrtheory.tools.elr_warmup.ELRWarmup`).

The remaining functions evaluate these expressions (numpy, via ``sympy.lambdify``) and give
the claims' predictions; they never run a simulation.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np
import sympy as sp

from lrtheory.core import validate as V
from lrtheory.results.elr.analysis import decay_exponent, end_log_spread, log_spread_exponent, mean_log_spread

__all__ = [
    "ELRDerivation",
    "derive_elr_model",
    "elr_step",
    "elr_closed_form",
    "norm2_closed_form",
    "log_ratio_closed_form",
    "critical_lr",
    "critical_crossing_step",
    "model_spread_trace",
    "model_warmup_trace",
    "flow_elrs",
    "warmup_spread_bound",
    "ratio_times",
    "norm_prediction",
    "ratio_prediction",
    "warmup_gap_prediction",
    "ratio_exponent_prediction",
    "lasting_prediction",
    "TRAINABILITY_PREDICTION",
]


@dataclass(frozen=True)
class ELRDerivation:
    """The sympy objects of the chapter (all symbols positive).

    Attributes
    ----------
    symbols : dict
        ``eta, c, S, S0, t, E, E0, E_l0, E_k0, a_l, a_k, c_l, c_k, u``.
    S_next : sympy.Expr
        ``S + eta^2 c^2 / S``: squared norm after one step.
    E_def : sympy.Expr
        ``eta c / S``: the ELR (relative step) at squared norm ``S``.
    E_next : sympy.Expr
        ``E / (1 + E^2)``: ELR after one step, in terms of the current ELR.
    u_next : sympy.Expr
        ``u + 2 + 1/u`` with ``u = 1/E^2``.
    ode : sympy.Eq
        ``dS/dt = eta^2 c^2 / S`` (gradient-flow limit of the norm recursion).
    S_closed : sympy.Expr
        Its solution with ``S(0) = S0``.
    E_closed : sympy.Expr
        ``E(t)`` from ``E(0) = E0``.
    log_ratio : sympy.Expr
        ``log(E_l(t) / E_k(t))`` for two layers starting at ``E_l0, E_k0``.
    ratio_limit : sympy.Expr
        ``lim_{t->oo} E_l/E_k`` (= 1).
    classic_ratio_limit : sympy.Expr
        The same limit for the definition ``eta / ||W||^2`` (= ``c_k / c_l``).
    rate : sympy.Expr
        ``lim_{t->oo} t log(E_l/E_k)`` = ``(1/E_k0^2 - 1/E_l0^2) / 4``.
    next_ratio : sympy.Expr
        ``E_l'/E_k'`` after one step at LR ``eta`` from per-unit-LR ELRs ``a_l, a_k``.
    next_ratio_slope : sympy.Expr
        ``d next_ratio / d eta`` (negative when ``a_l > a_k``).
    critical_lr : sympy.Expr
        ``1 / sqrt(a_l a_k)``: the LR at which ``next_ratio = 1``.
    critical_lr_elr : sympy.Expr
        The same in terms of the current ELRs at LR ``eta``: ``eta / sqrt(E_l E_k)``.
    warmup_spread : sympy.Expr
        Spread after one step at ``critical_lr`` when a third layer sits at the
        geometric mean (the worst case): ``(s + 1) / (2 sqrt(s))`` for spread ``s``.
    S2_rate : sympy.Expr
        ``d(S^2)/dt = 2 eta^2 c^2`` along the gradient flow: free of ``S``, so with a gradient scale
        that changes in time ``S(t)^2 = S0^2 + 2 eta^2 int_0^t c^2`` (:func:`flow_elrs`).
    """

    symbols: Dict[str, sp.Symbol]
    S_next: sp.Expr
    E_def: sp.Expr
    E_next: sp.Expr
    u_next: sp.Expr
    ode: sp.Eq
    S_closed: sp.Expr
    E_closed: sp.Expr
    log_ratio: sp.Expr
    ratio_limit: sp.Expr
    classic_ratio_limit: sp.Expr
    rate: sp.Expr
    next_ratio: sp.Expr
    next_ratio_slope: sp.Expr
    critical_lr: sp.Expr
    critical_lr_elr: sp.Expr
    warmup_spread: sp.Expr
    S2_rate: sp.Expr


@functools.lru_cache(maxsize=1)
def derive_elr_model() -> ELRDerivation:
    """Derive the weight-norm and ELR dynamics of scale-invariant layers with sympy.

    Returns
    -------
    ELRDerivation

    Example
    -------
    >>> d = derive_elr_model()
    >>> d.E_next
    E/(E**2 + 1)
    >>> d.ratio_limit
    1
    """
    eta, c, S, S0, t, E, E0 = sp.symbols("eta c S S_0 t E E_0", positive=True)
    El0, Ek0, al, ak, cl, ck, u, s = sp.symbols("E_l0 E_k0 a_l a_k c_l c_k u s", positive=True)
    # scale invariance: grad orthogonal to W and ||grad|| = c / ||W|| = c / sqrt(S)
    grad_norm = c / sp.sqrt(S)
    S_next = S + eta**2 * grad_norm**2  # Pythagoras: ||W - eta g||^2 = ||W||^2 + eta^2 ||g||^2
    E_def = sp.simplify(eta * grad_norm / sp.sqrt(S))  # relative step eta ||g|| / ||W||
    E_after = E_def.subs(S, S_next)  # same c, new norm
    E_next = sp.simplify(E_after.subs(c, sp.solve(sp.Eq(E_def, E), c)[0]))
    u_next = sp.expand((1 / E_next**2).subs(E, 1 / sp.sqrt(u)))
    # gradient-flow limit: S_{t+1} - S_t -> dS/dt
    Sf = sp.Function("S")
    ode = sp.Eq(Sf(t).diff(t), (S_next - S).subs(S, Sf(t)))
    # one solution: with S(0) = S0 and positive symbols sympy returns the positive branch only
    S_closed = sp.simplify(sp.dsolve(ode, Sf(t), ics={Sf(0): S0}).rhs)
    E_closed = sp.simplify(E_def.subs(S, S_closed).subs(c, E0 * S0 / eta))
    El = E_closed.subs(E0, El0)
    Ek = E_closed.subs(E0, Ek0)
    log_ratio = sp.simplify(sp.log(El / Ek))
    ratio_limit = sp.limit(El / Ek, t, sp.oo)
    # classic definition eta / ||W||^2: the ratio of two layers is S_k / S_l
    Sl = S_closed.subs({c: cl})
    Sk = S_closed.subs({c: ck})
    classic_ratio_limit = sp.simplify(sp.limit((eta / Sl) / (eta / Sk), t, sp.oo))
    rate = sp.simplify(sp.limit(t * sp.log(El / Ek), t, sp.oo))
    # one step at LR eta from per-unit-LR ELRs a = c / S (so E = eta a)
    step_a = lambda a: a / (1 + eta**2 * a**2)  # noqa: E731  a' = c / S' = a / (1 + E^2)
    next_ratio = sp.simplify(step_a(al) / step_a(ak))
    next_ratio_slope = sp.factor(sp.diff(next_ratio, eta))
    critical_lr = sp.simplify(sp.solve(sp.Eq(next_ratio, 1), eta)[0])  # the one positive root
    Elc, Ekc = sp.symbols("E_l E_k", positive=True)
    critical_lr_elr = sp.simplify(critical_lr.subs({al: Elc / eta, ak: Ekc / eta}))
    # warm-up: after a step at eta_c the extremes sit at a_l a_k/(a_l+a_k); the top of
    # a -> a/(1 + eta_c^2 a^2) is at a = sqrt(a_l a_k) with value sqrt(a_l a_k)/2
    g = lambda a: a / (1 + critical_lr**2 * a**2)  # noqa: E731
    x = sp.Dummy(positive=True)
    a_star = sp.solve(sp.diff(g(x), x), x)[0]
    worst = sp.simplify(g(a_star) / g(al))
    warmup_spread = sp.simplify(worst.subs(al, s * ak))
    # d(S^2)/dt along the flow: S-free, so a time-varying c integrates (flow_elrs)
    S2_rate = sp.simplify(sp.diff(S_closed**2, t))
    return ELRDerivation(
        symbols=dict(eta=eta, c=c, S=S, S0=S0, t=t, E=E, E0=E0, E_l0=El0, E_k0=Ek0, a_l=al, a_k=ak,
                     c_l=cl, c_k=ck, u=u, s=s, E_l=Elc, E_k=Ekc),
        S_next=S_next, E_def=E_def, E_next=E_next, u_next=u_next, ode=ode, S_closed=S_closed,
        E_closed=E_closed, log_ratio=log_ratio, ratio_limit=ratio_limit,
        classic_ratio_limit=classic_ratio_limit, rate=rate, next_ratio=next_ratio,
        next_ratio_slope=next_ratio_slope, critical_lr=critical_lr, critical_lr_elr=critical_lr_elr,
        warmup_spread=warmup_spread, S2_rate=S2_rate,
    )


@functools.lru_cache(maxsize=None)
def _lambdified(name: str):
    d = derive_elr_model()
    y = d.symbols
    table = {
        "E_next": ((y["E"],), d.E_next),
        "E_closed": ((y["E0"], y["t"]), d.E_closed),
        "S_closed": ((y["S0"], y["eta"], y["c"], y["t"]), d.S_closed),
        "log_ratio": ((y["E_l0"], y["E_k0"], y["t"]), d.log_ratio),
        "critical_lr": ((y["a_l"], y["a_k"]), d.critical_lr),
    }
    args, expr = table[name]
    return sp.lambdify(args, expr, "numpy")


def _nonneg_array(x, name: str) -> np.ndarray:
    # core.validate has no non-negative array check yet
    arr = V.finite_array(x, name)
    if np.any(arr < 0):
        raise ValueError(f"{name}: every value must be >= 0, got min {float(arr.min())!r}")
    return arr


def elr_step(E, steps: int = 1) -> np.ndarray:
    """Iterate the derived ELR map ``E -> E / (1 + E^2)`` (constant LR) ``steps`` times.

    Parameters
    ----------
    E : float or array
        Current ELRs (> 0), any shape.
    steps : int
        Number of steps, >= 0.

    Returns
    -------
    ndarray
        ELRs after ``steps`` steps, same shape as ``E``.

    Raises
    ------
    ValueError
        On non-positive / non-finite ``E`` or a negative ``steps``.

    Example
    -------
    >>> float(elr_step(1.0))
    0.5
    """
    E = V.positive_array(E, "E")
    steps = V.nonneg_int(steps, "steps")
    f = _lambdified("E_next")
    for _ in range(int(steps)):
        E = f(E)
    return np.asarray(E)  # float64: validated so, and the map keeps it


def elr_closed_form(E0, t) -> np.ndarray:
    """Gradient-flow ELR ``E(t) = E0 / sqrt(1 + 2 E0^2 t)`` (from :func:`derive_elr_model`).

    Parameters
    ----------
    E0 : float or array, > 0
    t : float or array, >= 0 (broadcast against ``E0``)

    Returns
    -------
    ndarray

    Raises
    ------
    ValueError
        On non-positive ``E0`` or negative ``t``.

    Example
    -------
    >>> round(float(elr_closed_form(1.0, 4.0)), 6)
    0.333333
    """
    return np.asarray(_lambdified("E_closed")(V.positive_array(E0, "E0"), _nonneg_array(t, "t")))


def norm2_closed_form(S0, eta, c, t) -> np.ndarray:
    """Gradient-flow squared weight norm ``S(t) = sqrt(S0^2 + 2 eta^2 c^2 t)``.

    Parameters
    ----------
    S0 : float or array, > 0
        Squared weight norm at ``t = 0``.
    eta : float or array, > 0
        Learning rate.
    c : float or array, > 0
        Gradient norm at unit weight norm (``||grad|| = c / ||W||``).
    t : float or array, >= 0
        Number of steps.

    Returns
    -------
    ndarray

    Raises
    ------
    ValueError
        On non-positive ``S0, eta, c`` or negative ``t``.

    Example
    -------
    >>> float(norm2_closed_form(1.0, 1.0, 1.0, 4.0))
    3.0
    """
    return np.asarray(_lambdified("S_closed")(V.positive_array(S0, "S0"), V.positive_array(eta, "eta"),
                                              V.positive_array(c, "c"),
                                              _nonneg_array(t, "t")))


def log_ratio_closed_form(E_l0, E_k0, t) -> np.ndarray:
    """Gradient-flow ``log(E_l(t) / E_k(t)) = 1/2 log((1/E_k0^2 + 2t) / (1/E_l0^2 + 2t))``.

    Parameters
    ----------
    E_l0, E_k0 : float or array, > 0
        The two layers' ELRs at ``t = 0``.
    t : float or array, >= 0

    Returns
    -------
    ndarray

    Raises
    ------
    ValueError
        On non-positive ELRs or negative ``t``.

    Example
    -------
    >>> round(float(log_ratio_closed_form(1.0, 0.5, 0.0)), 6)
    0.693147
    """
    return np.asarray(_lambdified("log_ratio")(V.positive_array(E_l0, "E_l0"), V.positive_array(E_k0, "E_k0"),
                                               _nonneg_array(t, "t")))


def critical_lr(a_l, a_k) -> np.ndarray:
    """Critical learning rate ``1 / sqrt(a_l a_k)`` of two layers.

    ``a = ||grad|| / ||W||`` is a layer's ELR per unit learning rate (so at LR ``eta``
    the ELR is ``eta a`` and the critical LR is ``eta / sqrt(E_l E_k)``). A step at
    this LR leaves the two layers with equal ELRs.

    Parameters
    ----------
    a_l, a_k : float or array, > 0

    Returns
    -------
    ndarray

    Raises
    ------
    ValueError
        On non-positive or non-finite inputs.

    Example
    -------
    >>> float(critical_lr(4.0, 1.0))
    0.5
    """
    return np.asarray(_lambdified("critical_lr")(V.positive_array(a_l, "a_l"), V.positive_array(a_k, "a_k")))


def critical_crossing_step(etas, a) -> float:
    """The step at which widening starts, as the model predicts it from the current ELRs of a run:
    the first step ``t`` whose LR reaches the critical LR of that step's extreme layers,
    ``etas[t] >= 1 / sqrt(max_l a_l(t) min_l a_l(t))`` (:func:`critical_lr`); below it a step shrinks
    the disparity of the extreme layers, from it on it flips their order and leaves a disparity that
    grows with the LR. NaN if no step of the run reaches it.

    Parameters
    ----------
    etas : array ``(T + 1,)``, > 0
        The LR of each step.
    a : array ``(T + 1, L)``, > 0
        The per-unit-LR ELRs ``||grad|| / ||W||`` of the ``L`` layers before each step's update.

    Raises
    ------
    ValueError
        On non-positive inputs or shapes that do not match.

    Example
    -------
    >>> critical_crossing_step([0.5, 1.0, 2.0], [[1.0, 0.25], [1.0, 0.25], [1.0, 0.25]])  # eta_c = 2
    2.0
    """
    etas = V.positive_array(etas, "etas", ndim=1)
    a = V.positive_array(a, "a", ndim=2)
    if a.shape[0] != etas.shape[0]:
        raise ValueError(f"a: expected {etas.shape[0]} rows (one per step), got {a.shape[0]}")
    reached = etas >= critical_lr(a.max(axis=1), a.min(axis=1))
    return float(np.argmax(reached)) if reached.any() else math.nan


def _heavy_ball(a0, lr_of, steps: int, beta: float):
    """The model under heavy-ball momentum from a zero buffer: layer ``l`` has ``c_l = a0_l`` at
    ``S_l = 1`` (only the ratios matter), gradient norm ``c_l / sqrt(S_l)``, a buffer that sums its
    past gradient norms, ``m_l <- beta m_l + c_l / sqrt(S_l)`` (the gradients taken as aligned: the
    assumption behind the steady-state gain ``1/(1 - beta)``, which is this buffer's limit), and the
    orthogonal step ``S_l <- S_l + lr^2 m_l^2``. ``lr_of(a)`` is the LR of the coming step from the
    current per-unit-LR ELRs ``a = c / S``. At ``beta = 0`` this is the map ``a -> a / (1 + (lr a)^2)``."""
    c = V.positive_array(a0, "a0").ravel()  # a float64 copy; beta is checked by the callers
    S = np.ones_like(c)
    m = np.zeros_like(c)
    a = c.copy()
    spreads, lrs = [a.max() / a.min()], []
    for _ in range(int(steps)):
        eta = float(lr_of(a))
        if beta == 0.0:  # the plain map, exactly as derived
            a = a / (1.0 + (eta * a) ** 2)
        else:
            m = beta * m + c / np.sqrt(S)
            S = S + (eta * m) ** 2
            a = c / S
        spreads.append(a.max() / a.min())
        lrs.append(eta)
    return np.asarray(spreads), np.asarray(lrs)


def model_spread_trace(a0, lrs, momentum: float = 0.0) -> np.ndarray:
    """Spread predicted by the model when the layers start at per-unit-LR ELRs ``a0``
    and take steps at the learning rates ``lrs`` (``c`` held fixed per layer).

    Parameters
    ----------
    a0 : array ``(L,)``, > 0
    lrs : array ``(T,)``, > 0 (``lrs[t]`` used for step ``t``)
    momentum : float in [0, 1)
        Heavy-ball momentum ``beta`` of the optimizer, its buffer starting at zero (the first
        step has gain 1, step ``t`` gain ``(1 - beta^(t+1)) / (1 - beta)`` for a fixed gradient):
        see :func:`_heavy_ball`. 0: plain SGD, ``a -> a / (1 + (eta a)^2)``.

    Returns
    -------
    ndarray ``(T + 1,)``
        Spread before step 0 and after each step.

    Raises
    ------
    ValueError
        On non-positive inputs.

    Example
    -------
    >>> np.round(model_spread_trace([1.0, 0.25], [2.0]), 6)
    array([4., 1.])
    """
    lrs = V.positive_array(lrs, "lrs").ravel()
    beta = V.in_range(momentum, "momentum", 0.0, 1.0, inclusive=(True, False))
    return _heavy_ball(a0, lambda a, it=iter(lrs): next(it), len(lrs), beta)[0]


def model_warmup_trace(a0, lr: float, steps: int, momentum: float = 0.0):
    """Spread and LRs the model predicts for the critical-LR warm-up towards target ``lr``.

    Step ``k`` (``k = 0, 1, ...``) runs at ``min(lr, 1 / (G_k sqrt(a_max a_min)))`` with
    ``G_k = (1 - beta^(k+1)) / (1 - beta)``, the gain of a heavy-ball buffer started at zero after
    ``k`` earlier steps of an unchanged gradient: ELRWarmup's rule (the critical LR of the current
    extreme layers). The warm-up ends, and the LR stays at ``lr`` from then on, at the first step
    at which ``lr`` is below that critical LR even at the steady-state gain ``1 / (1 - beta)``. The
    layers move as in :func:`model_spread_trace` (the heavy-ball buffer from zero).

    Parameters
    ----------
    a0 : array ``(L,)``, > 0
        Per-unit-LR ELRs at the start.
    lr : float, > 0
        Target learning rate.
    steps : int, >= 0
    momentum : float in [0, 1)

    Returns
    -------
    spreads : ndarray ``(steps + 1,)``
    lrs : ndarray ``(steps,)``

    Raises
    ------
    ValueError
        On non-positive inputs or a negative ``steps``.

    Example
    -------
    >>> s, e = model_warmup_trace([1.0, 0.01], lr=100.0, steps=2)
    >>> np.round(s, 4).tolist(), np.round(e, 4).tolist()
    ([100.0, 1.0, 1.0], [10.0, 100.0])
    """
    lr = V.positive_real(lr, "lr")
    steps = V.nonneg_int(steps, "steps")
    beta = V.in_range(momentum, "momentum", 0.0, 1.0, inclusive=(True, False))
    state = {"k": 0}

    def rule(a):
        # no latch needed: the per-unit ELRs only fall (S only grows, also in floating point), so once the
        # warm-up has ended the test below holds at every later step
        k, g = state["k"], math.sqrt(a.max() * a.min())
        state["k"] += 1
        if lr * g / (1.0 - beta) <= 1.0:
            return lr
        return min(lr, 1.0 / (g * (1.0 - beta ** (k + 1)) / (1.0 - beta)))

    return _heavy_ball(a0, rule, steps, beta)


def flow_elrs(c, S0, eta: float) -> np.ndarray:
    """ELRs of the model's gradient flow when each layer's gradient scale changes from step to step.

    ``d(S^2)/dt = 2 eta^2 c^2`` does not depend on ``S`` (``S2_rate`` of :func:`derive_elr_model`),
    so with the gradient scale ``c_l(s)`` of step ``s`` the squared norm is
    ``S_l(t) = sqrt(S_l0^2 + 2 eta^2 sum_{s<t} c_l(s)^2)`` and the ELR ``E_l(t) = eta c_l(t) / S_l(t)``
    (with a fixed ``c`` this is :func:`elr_closed_form`). The ratio of two layers' ELRs tends to 1
    only if their gradient scales keep a fixed ratio: ``E_l(t) -> c_l(t) / sqrt(2 sum_s c_l(s)^2)``.

    Parameters
    ----------
    c : array ``(T + 1, L)``, > 0
        Gradient scales ``||grad|| ||W||`` of ``L`` layers at steps ``0..T``.
    S0 : array ``(L,)``, > 0
        Squared weight norms at step 0.
    eta : float, > 0
        The constant learning rate.

    Returns
    -------
    ndarray ``(T + 1, L)``

    Raises
    ------
    ValueError
        On a bad argument (the message names it).

    Example
    -------
    >>> np.round(flow_elrs([[1.0], [2.0]], [1.0], 1.0), 6).ravel().tolist()
    [1.0, 1.154701]
    """
    c = V.positive_array(c, "c")
    if c.ndim != 2:
        raise ValueError(f"c: expected a (T + 1, L) array, got shape {c.shape}")
    S0 = V.positive_array(S0, "S0").ravel()
    if S0.shape != c.shape[1:]:
        raise ValueError(f"S0: expected {c.shape[1]} values, got {S0.shape[0]}")
    eta = V.positive_real(eta, "eta")
    before = np.vstack([np.zeros((1, c.shape[1])), np.cumsum(c[:-1] ** 2, axis=0)])
    return eta * c / np.sqrt(S0**2 + 2.0 * eta**2 * before)


def warmup_spread_bound(s0: float, steps: int) -> list:
    """The worst-case spread under the warm-up, ``warmup_spread`` of :func:`derive_elr_model`
    iterated ``steps`` times from ``s0`` (exact sympy numbers, ``steps + 1`` of them).

    Example
    -------
    >>> [round(float(v), 3) for v in warmup_spread_bound(100, 3)]
    [100.0, 5.05, 1.346, 1.011]
    """
    d = derive_elr_model()
    out = [sp.nsimplify(V.positive_real(s0, "s0")) if not isinstance(s0, sp.Basic) else s0]
    for _ in range(V.nonneg_int(steps, "steps")):
        out.append(d.warmup_spread.subs(d.symbols["s"], out[-1]))
    return out


# --------------------------------------------------------------------------- the claims' predictions


def ratio_times(steps: int) -> Tuple[int, int]:
    """The two steps ``(T/4, T)`` at which ``elr.ratio_converges`` reads the log ratio.

    Example
    -------
    >>> ratio_times(3000)
    (750, 3000)
    """
    return steps // 4, steps


def norm_prediction(cfg) -> Dict[str, float]:
    """``S(T)/S0`` from the closed form for each initial ELR of ``cfg.norm_E0`` (``eta = S0 = 1``,
    so ``E0 = c``), keyed ``"E0=<value>"``.

    Example
    -------
    >>> from lrtheory.results.elr.config import CONFIGS
    >>> {k: round(v, 4) for k, v in norm_prediction(CONFIGS["ci"]).items()}
    {'E0=0.05': 1.7321, 'E0=0.1': 3.0, 'E0=0.2': 5.7446}
    """
    T = cfg.norm_steps
    return {f"E0={e:g}": float(norm2_closed_form(1.0, 1.0, e, T)) for e in cfg.norm_E0}


def ratio_prediction(cfg) -> Dict[str, float]:
    """Closed-form ``log(E_l/E_k)`` at ``T`` and its decay exponent between ``T/4`` and ``T``.

    Example
    -------
    >>> from lrtheory.results.elr.config import CONFIGS
    >>> {k: round(v, 4) for k, v in ratio_prediction(CONFIGS["ci"]).items()}
    {'log_ratio_T': 0.0319, 'rate_exponent': -0.9358}
    """
    El0, Ek0 = cfg.ratio_E0
    t1, t2 = ratio_times(cfg.ratio_steps)
    r1, r2 = (float(log_ratio_closed_form(El0, Ek0, t)) for t in (t1, t2))
    return {"log_ratio_T": r2, "rate_exponent": decay_exponent((t1, t2), (r1, r2))}


def warmup_gap_prediction(a0, lr: float, momentum: float, steps: int) -> float:
    """The model's gap in mean log spread (constant LR minus warm-up) over ``steps`` steps.

    The model is started from the per-unit-LR ELRs ``a0`` and run by heavy-ball momentum from a
    zero buffer, as the measured runs are (:func:`model_spread_trace`), once at the constant LR
    ``lr`` and once under the critical-LR warm-up (:func:`model_warmup_trace`); the mean of the
    log spread is over steps ``1..steps``. (Taking the steady-state gain ``1/(1 - momentum)``
    from the first step, as an earlier version did, makes the first steps up to ``1/(1 - beta)``
    times too long: 10x at ``beta = 0.9``.)

    Example
    -------
    >>> round(warmup_gap_prediction([1.0, 0.1, 0.01], lr=100.0, momentum=0.0, steps=2), 4)
    2.9909
    """
    lr = V.positive_real(lr, "lr")
    const = model_spread_trace(a0, np.full(int(steps), lr), momentum)
    warm, _ = model_warmup_trace(a0, lr, int(steps), momentum)
    return mean_log_spread(const) - mean_log_spread(warm)


def ratio_exponent_prediction(a0, eta: float, t: Tuple[int, int]) -> float:
    """The model's exponent ``p`` of ``log spread ~ t^p`` between the steps ``t = (t1, t2)`` for
    layers that start at per-unit-LR ELRs ``a0`` and train at the constant LR ``eta``: every
    layer on its gradient-flow ELR ``E_l(t) = E_l0 / sqrt(1 + 2 E_l0^2 t)`` (``E_l0 = eta a_l``),
    read like the measurement (:func:`~lrtheory.results.elr.analysis.log_spread_exponent`).

    Example
    -------
    >>> round(ratio_exponent_prediction([1.0, 0.1], 1.0, (100, 400)), 3)
    -0.89
    """
    a0 = V.positive_array(a0, "a0").ravel()
    eta = V.positive_real(eta, "eta")
    ts = np.arange(int(t[1]) + 1)  # made float64 by elr_closed_form
    E = elr_closed_form(eta * a0[None, :], ts[:, None])
    return log_spread_exponent(E.max(axis=1) / E.min(axis=1), t)


def lasting_prediction(a0, lr: float, momentum: float, steps: int, last: int) -> float:
    """The model's ratio of the spreads at the end of training (the mean log spread of the last
    ``last`` of ``steps + 1`` steps), constant LR over the critical-LR warm-up, both by heavy-ball
    momentum from a zero buffer (:func:`model_spread_trace`) and started from the per-unit-LR
    ELRs ``a0``.

    Example
    -------
    >>> round(lasting_prediction([1.0, 0.01], 100.0, 0.0, 50, 10), 3)
    10.335
    """
    lr = V.positive_real(lr, "lr")
    const = model_spread_trace(a0, np.full(int(steps), lr), momentum)
    warm, _ = model_warmup_trace(a0, lr, int(steps), momentum)
    return float(math.exp(end_log_spread(const, last) - end_log_spread(warm, last)))


#: The prediction of ``elr.deep_trainability``: equal final training accuracy with and without the
#: warm-up (ratio 1). Derived here: the model forgets the initial ELRs (every layer's ELR tends to
#: ``1/sqrt(2t)`` whatever its start), so the warm-up changes nothing lasting; the model says
#: nothing about accuracy itself, so this is the weakest prediction of the chapter.
TRAINABILITY_PREDICTION = 1.0
