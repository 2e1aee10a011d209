"""Chapter 04: effective learning rates (ELRs) in normalized networks.

Mehmeti-Gopel & Wand (2024), "On the Weight Dynamics of Deep Normalized Networks",
ICML 2024, arXiv 2306.00700.

Setting. A weight tensor ``W`` followed by a normalization (BatchNorm, LayerNorm)
is *scale-invariant*: the loss does not change when ``W`` is multiplied by a
positive number. Then the gradient is orthogonal to ``W`` and its norm scales like
``1/||W||``: ``||grad|| = c / ||W||`` with ``c`` the gradient norm the layer would
have at unit weight norm. The effective learning rate used here is the *relative
step*, the definition under which the paper's abstract statement (layer-wise ELR
ratios tend to 1) holds in this model; the paper's full text was not consulted, so
the critical LR and the warm-up rule below are derived here, not transcribed:

.. math::

    E = \\eta \\, \\lVert \\nabla_W L \\rVert / \\lVert W \\rVert = \\eta c / S,
    \\qquad S = \\lVert W \\rVert^2 .

(The other common definition, ``eta / ||W||^2``, drops the gradient-norm factor;
under it the ratio of two layers' ELRs tends to ``c_k / c_l``, not to 1:
:func:`derive_elr_model` derives both limits.)

What the module derives (sympy, :func:`derive_elr_model`):

* the norm recursion ``S' = S + eta^2 c^2 / S`` and the ELR map ``E' = E / (1 + E^2)``,
  equivalently ``1/E'^2 = 1/E^2 + 2 + E^2``;
* the gradient-flow limit ``dS/dt = eta^2 c^2 / S`` and its solution
  ``S(t) = sqrt(S0^2 + 2 eta^2 c^2 t)``, so ``E(t) = E0 / sqrt(1 + 2 E0^2 t)``;
* the ratio of two layers' ELRs tends to 1, ``log(E_l/E_k) ~ (1/E_k0^2 - 1/E_l0^2) / (4t)``;
* the critical learning rate ``eta_c = 1 / sqrt(a_l a_k) = eta / sqrt(E_l E_k)``
  (``a = E / eta`` the ELR per unit LR): a step at ``eta_c`` equalizes the two ELRs;
  below it the disparity left after the step shrinks as ``eta`` grows, above it
  the order flips and the disparity grows with ``eta``;
* the warm-up that runs at ``eta_c`` of the two extreme layers, which maps the
  spread ``s = E_max / E_min`` to at most ``(sqrt(s) + 1/sqrt(s)) / 2`` per step
  (implemented as :class:`lrtheory.schedulers.ELRWarmup`).

What it measures (torch): scale-invariant weights trained through autograd on random
scale-invariant losses (the model's premise, with SGD-like noise), and a deep
BatchNorm MLP on scikit-learn digits (all hidden weight matrices trained by SGD,
norm gains and read-out frozen, so that every trained tensor is scale-invariant).

Claims registered: ``elr.norm_recursion``, ``elr.ratio_converges``,
``elr.critical_lr``, ``elr.warmup_reduces_spread``.
"""
from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass
from typing import Dict, Sequence, Tuple

import numpy as np
import sympy as sp
import torch

from lrtheory.sweeps import stored_measurement
from lrtheory.claims import Claim, Tolerance, check_scale, register
from lrtheory.core.device import DeviceLike, make_generator, resolve_device
from lrtheory.schedulers import ELRWarmup, unit_elrs

__all__ = [
    "ELRDerivation",
    "derive_elr_model",
    "elr_step",
    "elr_closed_form",
    "norm2_closed_form",
    "log_ratio_closed_form",
    "critical_lr",
    "spread",
    "model_spread_trace",
    "model_warmup_trace",
    "ScaleInvariantRun",
    "simulate_scale_invariant",
    "measure_norm_run",
    "measure_ratio_run",
    "MLPSetting",
    "mlp_setting",
    "MLPTrace",
    "measure_mlp_trace",
    "OneStepScan",
    "measure_one_step_scan",
    "WarmupComparison",
    "measure_warmup_comparison",
    "measure_cnn_warmup",
    "SCALE_PARAMS",
]

CHAPTER = "04_normalized_elr"
SOURCE = "Mehmeti-Gopel & Wand, ICML 2024 (arXiv 2306.00700)"


# --------------------------------------------------------------------------- symbolic


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
    sols = sp.dsolve(ode, Sf(t), ics={Sf(0): S0})
    sols = sols if isinstance(sols, list) else [sols]
    S_closed = None
    for sol in sols:  # the branch that is positive at t = 0
        cand = sp.simplify(sol.rhs)
        if sp.simplify(cand.subs(t, 0) - S0) == 0 and cand.subs({t: 1, S0: 1, eta: 1, c: 1}).is_positive:
            S_closed = cand
    if S_closed is None:
        raise RuntimeError("sympy returned no positive solution of the norm ODE")
    E_closed = sp.simplify(E_def.subs(S, S_closed).subs(c, E0 * S0 / eta))
    El = E_closed.subs(E0, El0)
    Ek = E_closed.subs(E0, Ek0)
    log_ratio = sp.simplify(sp.expand_log(sp.log(El / Ek), force=True))
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
    crit = [r for r in sp.solve(sp.Eq(next_ratio, 1), eta) if r.is_positive is not False]
    crit = [sp.simplify(r) for r in crit if sp.simplify(r - 0) != 0]
    critical_lr = crit[0]
    Elc, Ekc = sp.symbols("E_l E_k", positive=True)
    critical_lr_elr = sp.simplify(critical_lr.subs({al: Elc / eta, ak: Ekc / eta}))
    # warm-up: after a step at eta_c the extremes sit at a_l a_k/(a_l+a_k); the top of
    # a -> a/(1 + eta_c^2 a^2) is at a = sqrt(a_l a_k) with value sqrt(a_l a_k)/2
    g = lambda a: a / (1 + critical_lr**2 * a**2)  # noqa: E731
    a_star = sp.solve(sp.diff(g(sp.Symbol("x", positive=True)), sp.Symbol("x", positive=True)),
                      sp.Symbol("x", positive=True))[0]
    worst = sp.simplify(g(a_star) / g(al))
    warmup_spread = sp.simplify(worst.subs(al, s * ak))
    return ELRDerivation(
        symbols=dict(eta=eta, c=c, S=S, S0=S0, t=t, E=E, E0=E0, E_l0=El0, E_k0=Ek0, a_l=al, a_k=ak,
                     c_l=cl, c_k=ck, u=u, s=s, E_l=Elc, E_k=Ekc),
        S_next=S_next, E_def=E_def, E_next=E_next, u_next=u_next, ode=ode, S_closed=S_closed,
        E_closed=E_closed, log_ratio=log_ratio, ratio_limit=ratio_limit,
        classic_ratio_limit=classic_ratio_limit, rate=rate, next_ratio=next_ratio,
        next_ratio_slope=next_ratio_slope, critical_lr=critical_lr, critical_lr_elr=critical_lr_elr,
        warmup_spread=warmup_spread,
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


def _pos_array(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name}: expected finite positive values, got {x!r}")
    return arr


def _nonneg_array(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"{name}: expected finite values >= 0, got {x!r}")
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
    E = _pos_array(E, "E")
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 0:
        raise ValueError(f"steps: expected an integer >= 0, got {steps!r}")
    f = _lambdified("E_next")
    for _ in range(int(steps)):
        E = f(E)
    return np.asarray(E, dtype=np.float64)


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
    return np.asarray(_lambdified("E_closed")(_pos_array(E0, "E0"), _nonneg_array(t, "t")), dtype=np.float64)


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
    return np.asarray(_lambdified("S_closed")(_pos_array(S0, "S0"), _pos_array(eta, "eta"), _pos_array(c, "c"),
                                              _nonneg_array(t, "t")), dtype=np.float64)


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
    return np.asarray(_lambdified("log_ratio")(_pos_array(E_l0, "E_l0"), _pos_array(E_k0, "E_k0"),
                                               _nonneg_array(t, "t")), dtype=np.float64)


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
    return np.asarray(_lambdified("critical_lr")(_pos_array(a_l, "a_l"), _pos_array(a_k, "a_k")), dtype=np.float64)


def spread(elrs, axis: int = -1) -> np.ndarray:
    """ELR spread: ``max / min`` of the layers' ELRs along ``axis``.

    Parameters
    ----------
    elrs : array, shape ``(..., L)``
        Positive ELRs (or ELRs per unit LR: the ratio is the same).
    axis : int

    Returns
    -------
    ndarray
        ``>= 1``; NaN where an entry is not finite (a diverged run).

    Raises
    ------
    ValueError
        If ``elrs`` is empty along ``axis``.

    Example
    -------
    >>> float(spread([0.1, 0.4, 0.2]))
    4.0
    """
    arr = np.asarray(elrs, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[axis] == 0:
        raise ValueError("elrs: expected at least one layer along axis")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = arr.max(axis=axis) / arr.min(axis=axis)
    bad = ~np.all(np.isfinite(arr), axis=axis) | ~(arr.min(axis=axis) > 0)
    return np.where(bad, np.nan, out)


def model_spread_trace(a0, lrs) -> np.ndarray:
    """Spread predicted by the model when the layers start at per-unit-LR ELRs ``a0``
    and take steps at the learning rates ``lrs`` (``c`` held fixed per layer).

    Parameters
    ----------
    a0 : array ``(L,)``, > 0
    lrs : array ``(T,)``, > 0 (``lrs[t]`` used for step ``t``)

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
    a = _pos_array(a0, "a0").copy()
    lrs = _pos_array(lrs, "lrs").ravel()
    out = [a.max() / a.min()]
    for eta in lrs:
        a = a / (1.0 + (eta * a) ** 2)
        out.append(a.max() / a.min())
    return np.asarray(out)


def model_warmup_trace(a0, lr: float, steps: int):
    """Spread and LRs the model predicts for the critical-LR warm-up towards target ``lr``.

    Each step runs at ``min(lr, 1 / sqrt(a_max a_min))`` (the critical LR of the current extreme
    layers), then the per-unit-LR ELRs move by ``a -> a / (1 + (eta a)^2)``.

    Parameters
    ----------
    a0 : array ``(L,)``, > 0
        Per-unit-LR ELRs at the start (for momentum SGD multiply by the gain ``1/(1-beta)``
        and pass the target LR unchanged, or pass the effective LR ``lr/(1-beta)``).
    lr : float, > 0
        Target learning rate.
    steps : int, >= 0

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
    a = _pos_array(a0, "a0").copy()
    lr = float(_pos_array(lr, "lr"))
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 0:
        raise ValueError(f"steps: expected an integer >= 0, got {steps!r}")
    spreads, lrs = [a.max() / a.min()], []
    for _ in range(int(steps)):
        eta = min(lr, 1.0 / math.sqrt(a.max() * a.min()))
        a = a / (1.0 + (eta * a) ** 2)
        spreads.append(a.max() / a.min())
        lrs.append(eta)
    return np.asarray(spreads), np.asarray(lrs)


# --------------------------------------------------------------------------- scales

#: Sizes per scale. ``sim_*``: scale-invariant weights on random losses; ``mlp_*``: the
#: BatchNorm MLP on digits (depth = number of normalized hidden layers).
SCALE_PARAMS = {
    "ci": dict(sim_dim=512, norm_steps=400, norm_E0=(0.05, 0.1, 0.2), ratio_steps=3000, ratio_E0=(0.5, 0.05),
               mlp_depth=16, mlp_width=64, mlp_n=256, scan_mults=tuple(np.round(np.geomspace(1 / 16, 16, 17), 6)),
               trace_mults=(0.1, 0.5, 1.0, 3.0, 10.0), trace_steps=40, warm_steps=20, warm_lr=30.0,
               warm_momentum=0.9, cnn_channels=8, cnn_blocks=16, cnn_n=128),
    "full": dict(sim_dim=4096, norm_steps=4000, norm_E0=(0.05, 0.1, 0.2), ratio_steps=30000, ratio_E0=(0.5, 0.05),
                 mlp_depth=32, mlp_width=256, mlp_n=1347, scan_mults=tuple(np.round(np.geomspace(1 / 16, 16, 33), 6)),
                 trace_mults=(0.1, 0.3, 0.5, 1.0, 2.0, 3.0, 10.0), trace_steps=400, warm_steps=100, warm_lr=30.0,
                 warm_momentum=0.9, cnn_channels=64, cnn_blocks=32, cnn_n=1347),
}


def _params(scale: str) -> dict:
    return SCALE_PARAMS[check_scale(scale)]


# --------------------------------------------------------------------------- numerics: model premise


@dataclass(frozen=True)
class ScaleInvariantRun:
    """Trajectories of scale-invariant weights trained by autograd on random losses.

    Attributes
    ----------
    S : ndarray ``(T + 1, L)``
        Squared weight norms.
    grad_norm : ndarray ``(T + 1, L)``
        Gradient norms at each step (the last row is taken at the final weights).
    elr : ndarray ``(T + 1, L)``
        ``eta ||grad|| / ||W||``.
    eta : float
    c : ndarray ``(L,)``
        The gradient scales the losses were built with.
    """

    S: np.ndarray
    grad_norm: np.ndarray
    elr: np.ndarray
    eta: float
    c: np.ndarray


def simulate_scale_invariant(c: Sequence[float], eta: float, steps: int, *, S0: float = 1.0, dim: int = 512,
                             seed: int = 0, device: DeviceLike = None) -> ScaleInvariantRun:
    """Train ``L`` independent scale-invariant weight vectors with SGD on random losses.

    Layer ``l`` has weights ``w_l`` in ``R^dim`` and at each step the loss
    ``L_t = sum_l c_l <v_{l,t}, w_l / ||w_l||> / sqrt(dim - 1)`` with fresh
    ``v_{l,t} ~ N(0, I)``: a scale-invariant loss whose gradient, computed by
    autograd, is orthogonal to ``w_l`` with ``E ||grad||^2 = c_l^2 / ||w_l||^2``. It
    is the model's premise (fixed gradient scale, SGD-like random directions) and
    nothing more: the recursion is not used.

    Parameters
    ----------
    c : sequence of float, > 0
        Gradient scale of each layer (``L`` values; unequal values mimic gradient explosion).
    eta : float, > 0
        Constant learning rate.
    steps : int, >= 1
    S0 : float, > 0
        Initial squared norm of every layer.
    dim : int, >= 2
    seed : int, >= 0
    device : str, torch.device or None

    Returns
    -------
    ScaleInvariantRun

    Raises
    ------
    ValueError
        On a bad argument (the message names it).

    Example
    -------
    >>> run = simulate_scale_invariant([1.0, 0.1], eta=0.1, steps=10, dim=64)
    >>> run.S.shape
    (11, 2)
    """
    c_arr = _pos_array(c, "c").ravel()
    _pos_array(eta, "eta")
    _pos_array(S0, "S0")
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise ValueError(f"steps: expected an integer >= 1, got {steps!r}")
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 2:
        raise ValueError(f"dim: expected an integer >= 2, got {dim!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed: expected an integer >= 0, got {seed!r}")
    dev = resolve_device(device)
    gen = make_generator(int(seed), dev)
    L = len(c_arr)
    dt = torch.float64
    cs = torch.tensor(c_arr, dtype=dt, device=dev)
    w = torch.randn(L, dim, generator=gen, dtype=dt, device=dev)
    w = w / w.norm(dim=1, keepdim=True) * math.sqrt(float(S0))
    S, G = [], []
    scale = 1.0 / math.sqrt(dim - 1)
    for t in range(int(steps) + 1):
        v = torch.randn(L, dim, generator=gen, dtype=dt, device=dev)
        wr = w.detach().requires_grad_(True)
        loss = (cs * (v * (wr / wr.norm(dim=1, keepdim=True))).sum(1)).sum() * scale
        (g,) = torch.autograd.grad(loss, wr)
        S.append(wr.detach().pow(2).sum(1))
        G.append(g.norm(dim=1))
        if t < steps:
            w = wr.detach() - eta * g
    S_np = torch.stack(S).cpu().numpy()
    G_np = torch.stack(G).cpu().numpy()
    return ScaleInvariantRun(S=S_np, grad_norm=G_np, elr=eta * G_np / np.sqrt(S_np), eta=float(eta), c=c_arr)


# --------------------------------------------------------------------------- numerics: normalized MLP


@dataclass(frozen=True)
class MLPSetting:
    """The BatchNorm MLP of the chapter: spec, initial parameters, data, trained tensors."""

    spec: object
    params: tuple
    x: torch.Tensor
    y: torch.Tensor
    weight_index: tuple  # positions of the trained (scale-invariant) hidden weights in params
    a0: np.ndarray  # per-unit-LR ELRs of the hidden layers at init, (depth,)
    eta_c: float  # critical LR of the two extreme layers at init (plain SGD)


def _check_device_scale(scale: str, device: DeviceLike) -> Tuple[dict, torch.device]:
    return _params(scale), resolve_device(device)


@functools.lru_cache(maxsize=4)
def _mlp_setting_cached(scale: str, device: str, seed: int) -> MLPSetting:
    from lrtheory.core.data import digits
    from lrtheory.core.mlp import MLPSpec, init_params, param_names

    P = _params(scale)
    dev = torch.device(device)
    data = digits(seed=seed, device=dev, n_train=P["mlp_n"])
    spec = MLPSpec(d_in=data.d_in, width=P["mlp_width"], depth=P["mlp_depth"], d_out=data.d_out, norm="batchnorm")
    params = init_params(spec, 1, seed=seed, device=dev)
    names = param_names(spec)
    widx = tuple(i for i, n in enumerate(names) if n.startswith("W"))[: spec.depth]
    a0 = _mlp_unit_elrs(spec, params, widx, data.x_train, data.y_train)[0][0]
    eta_c = float(critical_lr(a0.max(), a0.min()))
    return MLPSetting(spec=spec, params=tuple(params), x=data.x_train, y=data.y_train, weight_index=widx,
                      a0=a0, eta_c=eta_c)


def mlp_setting(scale: str = "ci", device: DeviceLike = None, seed: int = 0) -> MLPSetting:
    """The chapter's deep BatchNorm MLP on digits at a scale (memoized).

    Hidden layers ``Linear(bias=False) -> BatchNorm (batch statistics) -> ReLU``
    (:mod:`lrtheory.core.mlp`, He init); only the hidden weight matrices are trained,
    the BatchNorm gains and the read-out stay at their initial values, so every trained
    tensor is scale-invariant.

    Parameters
    ----------
    scale : {"ci", "full"}
    device : str, torch.device or None
    seed : int, >= 0

    Returns
    -------
    MLPSetting

    Raises
    ------
    ValueError
        On an unknown scale, device or a bad seed.
    """
    P, dev = _check_device_scale(scale, device)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed: expected an integer >= 0, got {seed!r}")
    return _mlp_setting_cached(scale, str(dev), int(seed))


def _mlp_unit_elrs(spec, params, widx, x, y):
    """Loss ``(K,)``, per-unit-LR ELRs ``(K, depth)`` and gradients of the hidden weights."""
    from lrtheory.core.train import per_model_loss

    ps = [p.detach().requires_grad_(i in widx) for i, p in enumerate(params)]
    loss = per_model_loss(spec, ps, x, y, "ce")
    grads = torch.autograd.grad(loss.sum(), [ps[i] for i in widx])
    with torch.no_grad():
        a = torch.stack([g.flatten(1).norm(dim=1) / ps[i].flatten(1).norm(dim=1) for g, i in zip(grads, widx)], 1)
    return a.cpu().numpy(), loss.detach().cpu().numpy(), grads, ps


@dataclass(frozen=True)
class MLPTrace:
    """Full-batch SGD of the BatchNorm MLP at several constant LRs (one model per LR).

    Attributes
    ----------
    etas : ndarray ``(K,)``
    a : ndarray ``(K, T + 1, depth)``
        Per-unit-LR ELRs ``||grad|| / ||W||`` of the hidden layers at each step.
    S : ndarray ``(K, T + 1, depth)``
        Squared weight norms.
    loss : ndarray ``(K, T + 1)``
    eta_c : float
        Critical LR at init (extreme layers).
    """

    etas: np.ndarray
    a: np.ndarray
    S: np.ndarray
    loss: np.ndarray
    eta_c: float

    @property
    def elr(self) -> np.ndarray:
        """ELRs ``eta a``, ``(K, T + 1, depth)``."""
        return self.etas[:, None, None] * self.a

    @property
    def spread(self) -> np.ndarray:
        """``(K, T + 1)`` max/min ELR across hidden layers."""
        return spread(self.a, axis=-1)


def _train_mlp(setting: MLPSetting, etas: np.ndarray, steps: int) -> MLPTrace:
    K = len(etas)
    dev = setting.x.device
    params = [p.expand(K, *p.shape[1:]).clone() for p in setting.params]
    eta_t = torch.tensor(etas, dtype=torch.float64, device=dev)
    A, S, Ls = [], [], []
    for t in range(steps + 1):
        a, loss, grads, ps = _mlp_unit_elrs(setting.spec, params, setting.weight_index, setting.x, setting.y)
        A.append(a)
        S.append(np.stack([ps[i].detach().flatten(1).pow(2).sum(1).cpu().numpy() for i in setting.weight_index], 1))
        Ls.append(loss)
        if t < steps:
            with torch.no_grad():
                for g, i in zip(grads, setting.weight_index):
                    params[i] = ps[i].detach() - eta_t.view(-1, 1, 1) * g
    return MLPTrace(etas=np.asarray(etas, dtype=np.float64), a=np.stack(A, 1), S=np.stack(S, 1),
                    loss=np.stack(Ls, 1), eta_c=setting.eta_c)


@functools.lru_cache(maxsize=4)
def _trace_cached(scale: str, device: str) -> MLPTrace:
    P = _params(scale)
    st = mlp_setting(scale, device)
    etas = st.eta_c * np.asarray(P["trace_mults"], dtype=np.float64)
    return _train_mlp(st, etas, P["trace_steps"])


@stored_measurement("elr")
def measure_mlp_trace(scale: str = "ci", device: DeviceLike = None) -> MLPTrace:
    """Train the chapter's MLP at constant LRs ``trace_mults x eta_c`` (memoized).

    Parameters
    ----------
    scale : {"ci", "full"}
    device : str, torch.device or None

    Returns
    -------
    MLPTrace

    Raises
    ------
    ValueError
        On an unknown scale or device.
    """
    _, dev = _check_device_scale(scale, device)
    return _trace_cached(scale, str(dev))


@dataclass(frozen=True)
class OneStepScan:
    """Spread after one full-batch SGD step of the MLP, for a grid of LRs.

    Attributes
    ----------
    etas : ndarray ``(K,)``
    spread_before : float
    spread_after : ndarray ``(K,)``
        Measured (new gradients at the new weights).
    model_after : ndarray ``(K,)``
        The model's prediction (gradient scales ``c`` held fixed).
    eta_c : float
        Critical LR of the extreme layers before the step.
    """

    etas: np.ndarray
    spread_before: float
    spread_after: np.ndarray
    model_after: np.ndarray
    eta_c: float

    def crossing(self, which: str = "measured") -> float:
        """Smallest LR on the grid above the minimum where the spread after the step
        exceeds the spread before it (log-linear interpolation); NaN if none."""
        s = self.spread_after if which == "measured" else self.model_after
        ls, lb, le = np.log(s), math.log(self.spread_before), np.log(self.etas)
        i0 = int(np.nanargmin(ls))
        for i in range(i0 + 1, len(ls)):
            if not np.isfinite(ls[i]) or ls[i] > lb:
                if not np.isfinite(ls[i]):
                    return float(self.etas[i])
                f = (lb - ls[i - 1]) / (ls[i] - ls[i - 1])
                return float(math.exp(le[i - 1] + f * (le[i] - le[i - 1])))
        return math.nan


@functools.lru_cache(maxsize=4)
def _scan_cached(scale: str, device: str) -> OneStepScan:
    P = _params(scale)
    st = mlp_setting(scale, device)
    etas = st.eta_c * np.asarray(P["scan_mults"], dtype=np.float64)
    tr = _train_mlp(st, etas, 1)
    before = float(spread(st.a0))
    model = np.array([model_spread_trace(st.a0, [e])[-1] for e in etas])
    return OneStepScan(etas=etas, spread_before=before, spread_after=tr.spread[:, 1], model_after=model,
                       eta_c=st.eta_c)


@stored_measurement("elr")
def measure_one_step_scan(scale: str = "ci", device: DeviceLike = None) -> OneStepScan:
    """One SGD step of the MLP at each LR of ``scan_mults x eta_c``; spread before and after.

    Parameters
    ----------
    scale : {"ci", "full"}
    device : str, torch.device or None

    Returns
    -------
    OneStepScan

    Raises
    ------
    ValueError
        On an unknown scale or device.
    """
    _, dev = _check_device_scale(scale, device)
    return _scan_cached(scale, str(dev))


@dataclass(frozen=True)
class WarmupComparison:
    """SGD on the MLP with and without :class:`~lrtheory.schedulers.ELRWarmup` (same target LR).

    Attributes
    ----------
    lr : float
        Target (final) LR.
    momentum : float
    spread_const, spread_warm : ndarray ``(T + 1,)``
        Measured spread at each step (before the update of that step).
    lr_warm : ndarray ``(T,)``
        LR the scheduler chose at each step.
    loss_const, loss_warm : ndarray ``(T + 1,)``
    model_const, model_warm : ndarray ``(T + 1,)``
        The model's spread for the same LR sequences (effective LR ``lr / (1 - momentum)``).
    """

    lr: float
    momentum: float
    spread_const: np.ndarray
    spread_warm: np.ndarray
    lr_warm: np.ndarray
    loss_const: np.ndarray
    loss_warm: np.ndarray
    model_const: np.ndarray
    model_warm: np.ndarray


def _run_module(setting: MLPSetting, lr: float, momentum: float, steps: int, warm: bool):
    from lrtheory.core.mlp import to_module

    net = to_module(setting.spec, list(setting.params), 0)
    for p in net.parameters():
        p.requires_grad_(False)
    Ws = [net.linears[l].weight for l in range(setting.spec.depth)]
    for W in Ws:
        W.requires_grad_(True)
    opt = torch.optim.SGD(Ws, lr=lr, momentum=momentum)
    lossf = torch.nn.functional.cross_entropy

    def grad_step():
        opt.zero_grad()
        loss = lossf(net(setting.x), setting.y)
        loss.backward()
        return loss.item()

    sched = None
    if warm:
        grad_step()
        sched = ELRWarmup(opt)
    spreads, lrs, losses = [], [], []
    for t in range(steps + 1):
        losses.append(grad_step())
        a = unit_elrs(Ws)
        spreads.append(max(a) / min(a))
        if t < steps:
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            if sched is not None:
                sched.step()
    return np.array(spreads), np.array(lrs), np.array(losses)


@functools.lru_cache(maxsize=4)
def _warm_cached(scale: str, device: str) -> WarmupComparison:
    P = _params(scale)
    st = mlp_setting(scale, device)
    lr, mom, T = float(P["warm_lr"]), float(P["warm_momentum"]), int(P["warm_steps"])
    sc, _, lc = _run_module(st, lr, mom, T, warm=False)
    sw, lw, lwl = _run_module(st, lr, mom, T, warm=True)
    gain = 1.0 / (1.0 - mom)
    model_const = model_spread_trace(st.a0, np.full(T, lr * gain))
    model_warm, _ = model_warmup_trace(st.a0, lr * gain, T)  # momentum: effective LR lr / (1 - beta)
    return WarmupComparison(lr=lr, momentum=mom, spread_const=sc, spread_warm=sw, lr_warm=lw, loss_const=lc,
                            loss_warm=lwl, model_const=model_const, model_warm=model_warm)


@stored_measurement("elr")
def measure_warmup_comparison(scale: str = "ci", device: DeviceLike = None) -> WarmupComparison:
    """Train the chapter's MLP with momentum SGD at the target LR, with and without ELRWarmup.

    Parameters
    ----------
    scale : {"ci", "full"}
    device : str, torch.device or None

    Returns
    -------
    WarmupComparison

    Raises
    ------
    ValueError
        On an unknown scale or device.
    """
    _, dev = _check_device_scale(scale, device)
    return _warm_cached(scale, str(dev))


def _make_cnn(channels: int, blocks: int, seed: int, device: torch.device) -> torch.nn.Sequential:
    """3x3 convolutions (no bias) -> BatchNorm2d (batch statistics, no affine) -> ReLU, ``blocks``
    times, then global average pooling and a frozen linear read-out; He-normal init from ``seed``."""
    gen = make_generator(int(seed), "cpu")
    layers, c_in = [], 1
    for _ in range(blocks):
        conv = torch.nn.Conv2d(c_in, channels, 3, padding=1, bias=False, dtype=torch.float64)
        with torch.no_grad():
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen, dtype=torch.float64)
                              * math.sqrt(2.0 / (c_in * 9)))
        layers += [conv, torch.nn.BatchNorm2d(channels, affine=False, track_running_stats=False,
                                              dtype=torch.float64), torch.nn.ReLU()]
        c_in = channels
    readout = torch.nn.Linear(channels, 10, bias=False, dtype=torch.float64)
    with torch.no_grad():
        readout.weight.copy_(torch.randn(readout.weight.shape, generator=gen, dtype=torch.float64)
                             / math.sqrt(channels))
    readout.weight.requires_grad_(False)
    net = torch.nn.Sequential(*layers, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), readout)
    return net.to(device)


@functools.lru_cache(maxsize=4)
def _cnn_cached(scale: str, device: str) -> WarmupComparison:
    from lrtheory.core.data import digits

    P = _params(scale)
    dev = torch.device(device)
    data = digits(seed=0, device=dev, n_train=P["cnn_n"])
    x = data.x_train.reshape(-1, 1, 8, 8)
    y = data.y_train
    lr, mom, T = float(P["warm_lr"]), float(P["warm_momentum"]), int(P["warm_steps"])
    out = {}
    for warm in (False, True):
        net = _make_cnn(P["cnn_channels"], P["cnn_blocks"], 0, dev)
        ws = [m.weight for m in net if isinstance(m, torch.nn.Conv2d)]
        opt = torch.optim.SGD(ws, lr=lr, momentum=mom)

        def grad_step():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(x), y)
            loss.backward()
            return loss.item()

        sched = None
        if warm:
            grad_step()
            sched = ELRWarmup(opt)
        spreads, lrs, losses, a0 = [], [], [], None
        for t in range(T + 1):
            losses.append(grad_step())
            a = unit_elrs(ws)
            a0 = np.array(a) if a0 is None else a0
            spreads.append(max(a) / min(a))
            if t < T:
                lrs.append(opt.param_groups[0]["lr"])
                opt.step()
                if sched is not None:
                    sched.step()
        out[warm] = (np.array(spreads), np.array(lrs), np.array(losses), a0)
    eff = lr / (1.0 - mom)
    a0 = out[False][3]
    model_warm, _ = model_warmup_trace(a0, eff, T)
    return WarmupComparison(lr=lr, momentum=mom, spread_const=out[False][0], spread_warm=out[True][0],
                            lr_warm=out[True][1], loss_const=out[False][2], loss_warm=out[True][2],
                            model_const=model_spread_trace(a0, np.full(T, eff)), model_warm=model_warm)


@stored_measurement("elr")
def measure_cnn_warmup(scale: str = "ci", device: DeviceLike = None) -> WarmupComparison:
    """Warm-up comparison on a small BatchNorm CNN on the 8x8 digit images (memoized).

    ``cnn_blocks`` blocks of 3x3 convolution (no bias) -> BatchNorm2d -> ReLU with
    ``cnn_channels`` channels, global average pooling, frozen linear read-out; every
    convolution kernel is trained by momentum SGD at the chapter's target LR, with and
    without :class:`~lrtheory.schedulers.ELRWarmup` (default tracking: all kernels).

    Parameters
    ----------
    scale : {"ci", "full"}
    device : str, torch.device or None

    Returns
    -------
    WarmupComparison

    Raises
    ------
    ValueError
        On an unknown scale or device.
    """
    _, dev = _check_device_scale(scale, device)
    return _cnn_cached(scale, str(dev))


# --------------------------------------------------------------------------- claims

# elr.norm_recursion -----------------------------------------------------------


def _norm_predict(scale: str) -> Dict[str, float]:
    P = _params(scale)
    T = P["norm_steps"]
    # eta = 1, S0 = 1 -> E0 = c: relative growth S(T)/S0 from the closed form
    return {f"E0={e:g}": float(norm2_closed_form(1.0, 1.0, e, T)) for e in P["norm_E0"]}


@functools.lru_cache(maxsize=4)
def _norm_run(scale: str, device: str) -> ScaleInvariantRun:
    P = _params(scale)
    return simulate_scale_invariant(P["norm_E0"], eta=1.0, steps=P["norm_steps"], S0=1.0, dim=P["sim_dim"],
                                    seed=1, device=device)


@stored_measurement("elr")
def measure_norm_run(scale: str = "ci", device: DeviceLike = None) -> ScaleInvariantRun:
    """The simulation behind ``elr.norm_recursion`` (memoized): layers with initial ELRs
    ``norm_E0`` at ``eta = 1, S0 = 1``.

    Raises
    ------
    ValueError
        On an unknown scale or device.
    """
    _, dev = _check_device_scale(scale, device)
    return _norm_run(scale, str(dev))


def _norm_measure(scale: str, device) -> Dict[str, float]:
    P = _params(scale)
    run = _norm_run(scale, str(resolve_device(device)))
    return {f"E0={e:g}": float(run.S[-1, i]) for i, e in enumerate(P["norm_E0"])}


register(Claim(
    id="elr.norm_recursion",
    chapter=CHAPTER,
    statement="The squared weight norm of a scale-invariant layer under constant LR follows the closed form "
              "S(t) = sqrt(S0^2 + 2 eta^2 c^2 t) (values: S(T)/S0 for three initial ELRs E0).",
    source=SOURCE + ", weight-norm model (gradient-flow solution)",
    tolerance=Tolerance(0.02, "rel", "the discrete recursion adds sum_t E_t^2 eta^2 c^2 <= E0^2 ln(1+2E0^2 T)/2 "
                                     "(relative, < 0.3% here) and the random losses add ~sqrt(2/(dim T)) noise"),
    predict=_norm_predict,
    measure=_norm_measure,
))


# elr.ratio_converges ----------------------------------------------------------


def _ratio_times(T: int) -> Tuple[int, int]:
    return T // 4, T


def _ratio_predict(scale: str) -> Dict[str, float]:
    P = _params(scale)
    El0, Ek0 = P["ratio_E0"]
    t1, t2 = _ratio_times(P["ratio_steps"])
    r1, r2 = (float(log_ratio_closed_form(El0, Ek0, t)) for t in (t1, t2))
    return {"log_ratio_T": r2, "rate_exponent": math.log(r2 / r1) / math.log(t2 / t1)}


@functools.lru_cache(maxsize=4)
def _ratio_run(scale: str, device: str) -> ScaleInvariantRun:
    P = _params(scale)
    El0, Ek0 = P["ratio_E0"]
    # eta = 1, S0 = 1: E0 = c; a 10x gap in gradient scale stands for gradient explosion
    return simulate_scale_invariant([El0, Ek0], eta=1.0, steps=P["ratio_steps"], S0=1.0, dim=P["sim_dim"],
                                    seed=2, device=device)


@stored_measurement("elr")
def measure_ratio_run(scale: str = "ci", device: DeviceLike = None) -> ScaleInvariantRun:
    """The simulation behind ``elr.ratio_converges`` (memoized): two layers with initial
    ELRs ``ratio_E0`` (a 10x gap in gradient scale) at ``eta = 1, S0 = 1``.

    Raises
    ------
    ValueError
        On an unknown scale or device.
    """
    _, dev = _check_device_scale(scale, device)
    return _ratio_run(scale, str(dev))


def _ratio_measure(scale: str, device) -> Dict[str, float]:
    P = _params(scale)
    run = _ratio_run(scale, str(resolve_device(device)))
    t1, t2 = _ratio_times(P["ratio_steps"])
    # the ELR from the weight norms with c known (E = c/S at eta = 1): removes per-step gradient noise
    lr = np.log(run.S[:, 1] / run.S[:, 0]) + math.log(run.c[0] / run.c[1])

    def at(t):  # average over a short window to damp the random-loss noise
        w = max(1, t // 50)
        return float(np.mean(lr[t - w: t + 1]))

    r1, r2 = at(t1), at(t2)
    return {"log_ratio_T": r2, "rate_exponent": math.log(r2 / r1) / math.log(t2 / t1)}


register(Claim(
    id="elr.ratio_converges",
    chapter=CHAPTER,
    statement="Under a constant LR the ratio of two scale-invariant layers' ELRs tends to 1 despite a 10x gap "
              "in gradient scale, as log(E_l/E_k) = 1/2 log((1/E_k0^2+2t)/(1/E_l0^2+2t)) ~ 1/t.",
    source=SOURCE + ", ELR-ratio convergence (gradient-flow solution)",
    tolerance=Tolerance(0.05, "rel", "discrete steps shift 1/E^2 by sum 1/u_s ~ ln(t)/2 against the 2t of the "
                                     "flow (about 1% at these E0) plus random-loss noise of about 1%"),
    predict=_ratio_predict,
    measure=_ratio_measure,
))


# elr.critical_lr --------------------------------------------------------------


def _critical_predict(scale: str) -> float:
    st = mlp_setting(scale)  # only the ELRs at init enter the prediction
    return float(critical_lr(st.a0.max(), st.a0.min()))


def _critical_measure(scale: str, device) -> float:
    return measure_one_step_scan(scale, device).crossing("measured")


def _critical_compare(predicted: float, measured: float, tol: Tolerance):
    r = measured / predicted if predicted > 0 else math.nan
    ok = math.isfinite(r) and 1.0 <= r <= tol.value
    return ok, {"crossing/eta_c": r, "allowed": (1.0, tol.value)}


register(Claim(
    id="elr.critical_lr",
    chapter=CHAPTER,
    statement="In a deep BatchNorm MLP one SGD step shrinks the ELR spread at every LR below the critical LR "
              "1/sqrt(a_max a_min) set by the current ELRs, and widens it beyond (value: the LR at which the "
              "spread after the step first exceeds the spread before it).",
    source=SOURCE + ", critical learning rate",
    tolerance=Tolerance(4.0, "custom", "widening must start between eta_c and 4 eta_c: the model keeps each "
                                       "layer's gradient scale c fixed, but a step near eta_c turns the "
                                       "fastest layer by about atan(sqrt(spread)) and changes c by O(1)"),
    predict=_critical_predict,
    measure=_critical_measure,
    compare=_critical_compare,
))


# elr.warmup_reduces_spread ----------------------------------------------------


def _mean_log(s: np.ndarray) -> float:
    return float(np.mean(np.log(s[1:])))


def _warm_predict(scale: str) -> float:
    # the model, started from the MLP's ELRs at init (no training run enters the prediction)
    st = mlp_setting(scale)
    P = _params(scale)
    lr, mom, T = float(P["warm_lr"]), float(P["warm_momentum"]), int(P["warm_steps"])
    eff = lr / (1.0 - mom)
    const = model_spread_trace(st.a0, np.full(T, eff))
    warm, _ = model_warmup_trace(st.a0, eff, T)
    return _mean_log(const) - _mean_log(warm)


def _warm_measure(scale: str, device) -> float:
    w = measure_warmup_comparison(scale, device)
    return _mean_log(w.spread_const) - _mean_log(w.spread_warm)


def _warm_compare(predicted: float, measured: float, tol: Tolerance):
    ok = predicted > 0 and math.isfinite(measured) and measured > tol.value
    return ok, {"predicted_sign": math.copysign(1.0, predicted), "margin": tol.value}


register(Claim(
    id="elr.warmup_reduces_spread",
    chapter=CHAPTER,
    statement="With ELRWarmup the ELR spread of a deep BatchNorm MLP trained by momentum SGD falls faster than "
              "at the same constant target LR (value: mean over steps of log spread, constant minus warm-up).",
    source=SOURCE + ", hyper-parameter-free warm-up",
    tolerance=Tolerance(0.2, "custom", "the model predicts a positive gap; the measured gap must exceed 0.2 "
                                       "(a 22% lower geometric-mean spread), well above the step-to-step "
                                       "fluctuation of the measured log spread"),
    predict=_warm_predict,
    measure=_warm_measure,
    compare=_warm_compare,
))
