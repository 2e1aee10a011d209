"""Chapter 02, the experiments (torch, float64): uv model, quadratic model, ReLU MLPs.

Every run is full-batch GD on the 1/2-MSE loss with a learning rate ``eta = w / lambda_0``
per run, batched over a grid of ``w = eta * lambda_0`` (and seeds). A run that diverges is
frozen and reported, never raised. Models draw their initialization from their own
:func:`lrtheory.core.device.seed_for` keys.
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import numpy as np
import torch

from lrtheory.core import validate
from lrtheory.core.device import DeviceLike, make_generator, resolve_device, seed_for
from lrtheory.core.gd import run_gd
from lrtheory.results.catapult.analysis import (Phase, PhaseSweep, ReluSweep, Trajectories, classify_runs,
                                                frozen, phase_boundaries)

__all__ = ["uv_init", "quadratic_init", "simulate_uv", "simulate_quadratic", "uv_trajectories", "relu_sweep",
           "digits_binary", "relu_init"]

DT = torch.float64


def _grid(eta_lam0) -> np.ndarray:
    return validate.positive_array(eta_lam0, "eta_lam0", ndim=1, increasing=True)


# ----------------------------------------------------------------------------------------
# initializations (shared by the simulations and the predictions that need f_0, lambda_0)
# ----------------------------------------------------------------------------------------
def uv_init(width: int, seed: int, what: str = "sweep") -> Tuple[torch.Tensor, torch.Tensor]:
    """``u, v ~ N(0, 1)^width`` of the uv model with seed index ``seed`` (CPU, float64).

    ``what`` names the measurement (``"sweep"`` or ``"traj"``): a key of the seed, so the
    trajectories and the sweep draw independent models.
    """
    g = make_generator(seed_for("catapult", "uv", what, width, seed))
    u = torch.randn(width, generator=g, dtype=DT)
    v = torch.randn(width, generator=g, dtype=DT)
    return u, v


def quadratic_init(N: int, seed: int, spectrum: Tuple[float, float]) -> Tuple[torch.Tensor, torch.Tensor]:
    """Moduli ``s`` (eigenvalues ``+-s_i`` of ``psi``, ``s_i ~ U(spectrum)``) and ``theta_0 ~ N(0, 1)^N``."""
    lo, hi = spectrum
    g = make_generator(seed_for("catapult", "quadratic", (float(lo), float(hi)), N, seed))
    s = lo + (hi - lo) * torch.rand(N // 2, generator=g, dtype=DT)
    theta = torch.randn(N, generator=g, dtype=DT)
    return torch.cat([s, -s]), theta


# ----------------------------------------------------------------------------------------
# scalar-output models over a grid of eta * lambda_0
# ----------------------------------------------------------------------------------------
def _finish_sweep(model, grid, widths, seeds, steps, per_width) -> PhaseSweep:
    keys = ("f0", "lam0", "loss0", "kappa0", "max_loss", "final_loss", "final_eta_lam", "diverged", "steps_run")
    arr = {k: np.stack([pw[k] for pw in per_width]) for k in keys}
    phase = classify_runs(arr["loss0"][:, None, :], arr["max_loss"], arr["final_loss"], arr["diverged"])
    lower, upper = phase_boundaries(grid, phase, axis=1)
    arr = {k: frozen(v) for k, v in arr.items()}
    return PhaseSweep(model=model, eta_lam0=frozen(grid), widths=tuple(widths), seeds=tuple(seeds),
                      steps=int(steps), phase=frozen(phase), lower=frozen(lower), upper=frozen(upper), **arr)


class _Settled:
    """``converged`` hook of :func:`~lrtheory.core.gd.run_gd` (``on_converged="all"``): every
    run is settled once it has converged (loss below ``settle * loss0``, whichever phase), or
    never grew (lazy) and its loss is shrinking; checked every 10th step from ``min_steps``.
    Keeps the running peak loss of every run on the way (``max_loss``)."""

    def __init__(self, settle: float = 1e-2, min_steps: int = 20, every: int = 10) -> None:
        self.settle, self.min_steps, self.every = settle, min_steps, every
        self.loss0 = self.max_loss = None

    def __call__(self, st):
        L = st.loss
        if self.loss0 is None:
            self.loss0, self.max_loss = L.clone(), L.clone()
        else:
            self.max_loss = torch.maximum(self.max_loss, L)
        if st.step < self.min_steps or st.step % self.every:
            return torch.zeros_like(st.active)
        grew = self.max_loss > self.loss0
        return (L < self.settle * self.loss0) | (~grew & (L < self.loss0))


def _run_scalar_model(loss_fn, grad_fn, lam_fn, params, eta, n_eff, steps, div_g, return_params=False):
    """GD on a scalar-output model (``loss_fn(params) -> (loss, f)``) with :func:`run_gd`.

    A run diverges when ``eta^2 f^2 / n_eff > div_g`` (a width-free variable) or its loss is
    not finite; the loop stops once every run is settled (:class:`_Settled`).
    Returns ``(loss0, max_loss, final_loss, final_eta_lam, diverged, steps_run)`` (and the
    final parameters with ``return_params``).
    """
    settled = _Settled()
    res = run_gd(loss_fn, params, eta, steps, grad_fn=grad_fn, divergence_factor=None, record_every=steps,
                 diverged=lambda st: st.etas * st.etas * st.aux * st.aux / n_eff > div_g,
                 converged=settled, on_converged="all")
    dv = res.diverged
    with torch.no_grad():
        lam = lam_fn(res.params).cpu().numpy()
    final_loss = np.where(dv, np.nan, res.loss[-1])
    final_w = np.where(dv, np.nan, res.etas * lam)
    max_loss = np.where(dv, np.inf, settled.max_loss.cpu().numpy())
    out = (res.loss[0], max_loss, final_loss, final_w, dv, res.steps_run)
    return out + (res.params,) if return_params else out


def _uv_model(n: int):
    """Loss ``(f^2 / 2, f)`` and closed-form gradient of the uv model on a ``(..., 2, n)``
    tensor ``[u; v]`` (``x = 1, y = 0``); the gradient reuses the ``f`` of the loss just
    computed on the same tensor (run_gd calls them in that order) and is written into one
    buffer reused every step (run_gd reads it once, in the update; allocating ``2 E S n``
    numbers per step costs more than the arithmetic)."""
    sq = math.sqrt(n)
    last = {}
    buf = {}

    def loss_fn(p):
        w = p[0]
        f = (w[..., 0, :] * w[..., 1, :]).sum(-1) / sq
        last["w"], last["f"] = w, f
        return 0.5 * f * f, f

    def grad_fn(p):
        w = p[0]
        f = last["f"] if last.get("w") is w else (w[..., 0, :] * w[..., 1, :]).sum(-1) / sq
        # dL/du = (f - y) x v / sqrt(n), dL/dv = (f - y) x u / sqrt(n), y = 0, x = 1
        g = buf.get("g")
        if g is None or g.shape != w.shape:
            g = buf["g"] = torch.empty_like(w)
        c = (f / sq)[..., None]
        torch.mul(w[..., 1, :], c, out=g[..., 0, :])
        torch.mul(w[..., 0, :], c, out=g[..., 1, :])
        return [g]

    return loss_fn, grad_fn


def _quadratic_model(zeta: float, sv: torch.Tensor):
    """Loss ``(z^2 / 2, z)`` and gradient ``z zeta psi theta`` of the quadratic model in the
    eigenbasis of ``psi`` (moduli ``sv``), reusing the ``z`` of the loss and one gradient
    buffer as in :func:`_uv_model`."""
    last = {}
    buf = {}

    def loss_fn(p):
        th = p[0]
        z = 0.5 * zeta * (sv * th * th).sum(-1)
        last["th"], last["z"] = th, z
        return 0.5 * z * z, z

    def grad_fn(p):
        th = p[0]
        z = last["z"] if last.get("th") is th else 0.5 * zeta * (sv * th * th).sum(-1)
        g = buf.get("g")
        if g is None or g.shape != th.shape:
            g = buf["g"] = torch.empty_like(th)
        torch.mul(sv, th, out=g)
        return [g.mul_((z * zeta)[..., None])]  # grad = (z - y) zeta psi theta

    return loss_fn, grad_fn


def simulate_uv(eta_lam0, widths: Sequence[int], seeds: Sequence[int], steps: int, *,
                device: DeviceLike = None, div_g: float = 1e6) -> PhaseSweep:
    """GD on the uv model ``f = v^T u / sqrt(n)`` (x = 1, y = 0) over a grid of ``eta * lambda_0``.

    ``u, v ~ N(0, 1)^n`` per seed (:func:`uv_init`; the same draw for every ``eta``),
    ``eta = w / lambda_0`` per run, full vectors simulated (the closed-form maps are never
    used). All ``E x S`` runs of one width are one batched computation. A run is frozen as
    diverged when ``eta^2 f^2 / n > div_g`` or the loss is not finite.

    Parameters
    ----------
    eta_lam0 : array_like (E,)
        Strictly increasing positive grid of ``w = eta * lambda_0``.
    widths : sequence of int
        Widths ``n >= 1``.
    seeds : sequence of int
        Seed indices ``>= 0``.
    steps : int
        GD steps (>= 1).
    device : str, torch.device or None
    div_g : float
        Divergence threshold on ``eta^2 f^2 / n`` (> 0).

    Returns
    -------
    PhaseSweep

    Raises
    ------
    ValueError
        On a bad grid, width, seed, step count or threshold.

    Examples
    --------
    >>> sw = simulate_uv([1.0, 3.0, 5.0], [64], [0], 300, device="cpu")
    >>> [Phase(p).name for p in sw.phase[0, :, 0]]
    ['LAZY', 'CATAPULT', 'DIVERGENT']
    """
    grid = _grid(eta_lam0)
    widths = validate.int_sequence(widths, "widths", minimum=1)
    seeds = validate.int_sequence(seeds, "seeds", minimum=0)
    steps = validate.positive_int(steps, "steps")
    div_g = validate.positive_real(div_g, "div_g")
    dev = resolve_device(device)
    wt = torch.as_tensor(grid, dtype=DT, device=dev)
    per_width = []
    for n in widths:
        draws = [uv_init(n, s) for s in seeds]
        u0 = torch.stack([d[0] for d in draws]).to(dev)
        v0 = torch.stack([d[1] for d in draws]).to(dev)
        sq = math.sqrt(n)
        f0 = (u0 * v0).sum(-1) / sq
        lam0 = (u0.pow(2) + v0.pow(2)).sum(-1) / n
        eta = wt[:, None] / lam0[None, :]  # (E, S)
        E, S = eta.shape
        # one tensor (E, S, 2, n): u = [..., 0, :], v = [..., 1, :] (one update pass for both)
        params = [torch.stack([u0, v0], 1).unsqueeze(0).expand(E, S, 2, n).clone()]
        loss_fn, grad_fn = _uv_model(n)

        def lam_fn(p):
            return p[0].pow(2).sum((-1, -2)) / n

        l0, mx, fl, fw, dv, ran = _run_scalar_model(loss_fn, grad_fn, lam_fn, params, eta, n, steps, div_g)
        per_width.append({
            "f0": f0.cpu().numpy(), "lam0": lam0.cpu().numpy(), "loss0": l0[0], "steps_run": ran,
            "kappa0": np.ones(len(seeds)), "max_loss": mx, "final_loss": fl, "final_eta_lam": fw, "diverged": dv,
        })
    return _finish_sweep("uv", grid, widths, seeds, steps, per_width)


def simulate_quadratic(eta_lam0, widths: Sequence[int], seeds: Sequence[int], steps: int, *,
                       spectrum: Tuple[float, float] = (1.0, 1.0), device: DeviceLike = None,
                       div_g: float = 1e6) -> PhaseSweep:
    """GD on the pure quadratic model ``z = zeta/2 theta^T psi theta`` (x = 1, y = 0).

    As in Meltzer, Chen & Liu: ``theta ~ N(0, 1)^N``, ``zeta = (N/2)^(-1/2)``, ``psi``
    symmetric with eigenvalues ``+-s_i`` in pairs, ``s_i ~ U(spectrum)``
    (``(1, 1)``: the paper's default, ``psi^2 = 1``). GD is equivariant under rotations
    and ``theta_0`` is isotropic, so the runs are done in the eigenbasis of ``psi``
    (``psi`` diagonal); the tests check this against a dense rotated ``psi``.

    Parameters
    ----------
    eta_lam0, widths, seeds, steps, device, div_g : as in :func:`simulate_uv`
        ``widths`` are the parameter counts ``N`` (even, >= 2).
    spectrum : (float, float)
        ``0 < lo <= hi``: range of the moduli ``s_i``.

    Returns
    -------
    PhaseSweep
        ``model`` is ``"quadratic-unit"`` when ``lo == hi == 1`` else ``"quadratic-spread"``.
    """
    grid = _grid(eta_lam0)
    widths = validate.int_sequence(widths, "widths", minimum=2)
    if any(w % 2 for w in widths):
        raise ValueError(f"widths: the quadratic model needs even N (eigenvalues in +- pairs), got {widths}")
    seeds = validate.int_sequence(seeds, "seeds", minimum=0)
    steps = validate.positive_int(steps, "steps")
    try:
        lo, hi = (float(v) for v in spectrum)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"spectrum: expected (lo, hi), got {spectrum!r}") from exc
    if not (0 < lo <= hi and math.isfinite(hi)):
        raise ValueError(f"spectrum: expected 0 < lo <= hi < inf, got {spectrum!r}")
    div_g = validate.positive_real(div_g, "div_g")
    dev = resolve_device(device)
    wt = torch.as_tensor(grid, dtype=DT, device=dev)
    per_width = []
    for N in widths:
        draws = [quadratic_init(N, s, (lo, hi)) for s in seeds]
        svals = torch.stack([d[0] for d in draws]).to(dev)  # (S, N)
        th0 = torch.stack([d[1] for d in draws]).to(dev)
        zeta = (N / 2.0) ** -0.5
        z0 = 0.5 * zeta * (svals * th0.pow(2)).sum(-1)
        lam0 = zeta**2 * (svals.pow(2) * th0.pow(2)).sum(-1)
        kappa0 = lam0 / (zeta**2 * svals.pow(2).max(-1).values * th0.pow(2).sum(-1))
        eta = wt[:, None] / lam0[None, :]
        E, S = eta.shape
        params = [th0.unsqueeze(0).expand(E, S, N).clone()]
        sv = svals.unsqueeze(0)

        loss_fn, grad_fn = _quadratic_model(zeta, sv)

        def lam_fn(p):
            return zeta**2 * (sv.pow(2) * p[0].pow(2)).sum(-1)

        # width-free divergence variable: eta^2 z^2 zeta^2
        l0, mx, fl, fw, dv, ran = _run_scalar_model(loss_fn, grad_fn, lam_fn, params, eta, 1.0 / zeta**2, steps,
                                                    div_g)
        per_width.append({
            "f0": z0.cpu().numpy(), "lam0": lam0.cpu().numpy(), "loss0": l0[0], "steps_run": ran,
            "kappa0": kappa0.cpu().numpy(), "max_loss": mx, "final_loss": fl, "final_eta_lam": fw, "diverged": dv,
        })
    model = "quadratic-unit" if lo == hi == 1.0 else "quadratic-spread"
    return _finish_sweep(model, grid, widths, seeds, steps, per_width)


def uv_trajectories(eta_lam0, width: int, seed: int, steps: int, *, device: DeviceLike = None,
                    div_g: float = 1e6) -> Trajectories:
    """Full trajectories of the uv model (x = 1, y = 0) for a few ``eta * lambda_0``.

    One initialization (:func:`uv_init` with ``what="traj"``) for every ``eta``.

    Parameters
    ----------
    eta_lam0 : array_like (E,), strictly increasing
    width : int
    seed : int
        Seed index.
    steps : int
    device : str, torch.device or None
    div_g : float
        As in :func:`simulate_uv`.

    Returns
    -------
    Trajectories
    """
    grid = _grid(eta_lam0)
    n = validate.positive_int(width, "width")
    seed = validate.nonneg_int(seed, "seed")
    steps = validate.positive_int(steps, "steps")
    div_g = validate.positive_real(div_g, "div_g")
    dev = resolve_device(device)
    u, v = uv_init(n, seed, "traj")
    params = [torch.stack([u, v]).to(dev).expand(grid.size, 2, n).clone()]
    lam0 = (u.pow(2) + v.pow(2)).sum() / n
    eta = torch.as_tensor(grid, dtype=DT, device=dev) / lam0.to(dev)
    loss_fn, grad_fn = _uv_model(n)
    res = run_gd(loss_fn, params, eta, steps, grad_fn=grad_fn, divergence_factor=None,
                 diverged=lambda st: st.etas * st.etas * st.aux * st.aux / n > div_g,
                 record=lambda st: {"L": st.loss, "eta_lam": st.etas * st.params[0].pow(2).sum((-1, -2)) / n})
    return Trajectories(frozen(grid), frozen(res.records["L"]), frozen(res.records["eta_lam"]), n, seed)



# ----------------------------------------------------------------------------------------
# ReLU MLPs in NTK parametrization on digits
# ----------------------------------------------------------------------------------------
def digits_binary(n_train: int, device=None) -> Tuple[torch.Tensor, torch.Tensor]:
    """Digits subset (:func:`lrtheory.core.data.digits`, standardized pixels), each input
    rescaled to ``|x|^2 = d``; target ``+1`` for even digits and ``-1`` for odd ones
    (one scalar output, as in the uv analysis)."""
    from lrtheory.core.data import digits

    ds = digits(seed=0, n_train=n_train, device=device)
    x, lab = ds.x_train, ds.y_train
    x = x / x.norm(dim=1, keepdim=True) * math.sqrt(x.shape[1])
    y = torch.where(lab % 2 == 0, 1.0, -1.0).to(DT)
    return x, y


def relu_init(spec, seeds: Sequence[int], device=None):
    """Initial parameters ``(S, ...)`` of the ReLU nets of ``spec`` with seed indices ``seeds``."""
    from lrtheory.core.mlp import init_params

    keys = [seed_for("catapult", "relu", spec.depth, spec.width, s) for s in seeds]
    return init_params(spec, len(keys), seeds=keys, device=device)


def relu_sweep(eta_lam0, depth: int, width: int, seeds: Sequence[int], steps: int, *,
               n_train: int = 32, device: DeviceLike = None, divergence_factor: float = 1e12) -> ReluSweep:
    """Train ReLU MLPs (NTK parametrization, no bias) with full-batch GD on digits.

    The ``E x S`` models (grid of ``eta * lambda_0`` x init seeds) are trained at once
    with :func:`lrtheory.core.train.train` on the MSE loss ``1/(2N) sum (f - y)^2``,
    ``eta = w / lambda_0`` per seed with ``lambda_0`` the top eigenvalue of the empirical
    NTK ``Theta / N`` (:func:`lrtheory.core.ntk.ntk_top_eig`). A run whose loss
    exceeds ``divergence_factor * max(L_0, 1)`` or turns non-finite is frozen as diverged
    (the catapult peak grows with the width, so the factor is large).

    Parameters
    ----------
    eta_lam0 : array_like (E,)
        Strictly increasing grid of ``eta * lambda_0``.
    depth : int
        Number of hidden layers (>= 1).
    width : int
    seeds : sequence of int
        Seed indices.
    steps : int
    n_train : int
        Training examples (full batch), 2..1347.
    device : str, torch.device or None
    divergence_factor : float > 1

    Returns
    -------
    ReluSweep

    Raises
    ------
    ValueError
        On a bad grid, depth, width, seed, step count or factor.
    """
    from lrtheory.core.ntk import ntk_top_eig
    from lrtheory.core.mlp import MLPSpec, forward
    from lrtheory.core.train import train

    grid = _grid(eta_lam0)
    depth = validate.positive_int(depth, "depth")
    width = validate.positive_int(width, "width")
    seeds = validate.int_sequence(seeds, "seeds", minimum=0)
    steps = validate.positive_int(steps, "steps")
    n_train = validate.integer(n_train, "n_train", minimum=2)
    divergence_factor = validate.in_range(divergence_factor, "divergence_factor", 1.0, math.inf, inclusive=False)
    dev = resolve_device(device)
    x, y = digits_binary(n_train, dev)
    E, S = grid.size, len(seeds)
    spec = MLPSpec(d_in=x.shape[1], width=width, depth=depth, d_out=1, parametrization="ntk")
    p0 = relu_init(spec, seeds, dev)  # (S, ...)
    # Theta / N with the spec's LR multipliers: the kernel core.train's GD sees
    lam0 = torch.as_tensor(ntk_top_eig(spec, p0, x, lr_weights="spec", normalize="batch", method="dense"),
                           dtype=DT, device=dev)
    params = [p.unsqueeze(0).expand(E, *p.shape).reshape(E * S, *p.shape[1:]).clone() for p in p0]
    etas = (torch.as_tensor(grid, dtype=DT, device=dev)[:, None] / lam0[None, :]).reshape(-1)
    peak = {"v": None}

    def callback(step, ps, loss, active):
        cur = torch.where(active, loss, torch.full_like(loss, -math.inf))
        peak["v"] = cur if peak["v"] is None else torch.maximum(peak["v"], cur)

    res = train(spec, params, x, y, etas.cpu().numpy(), steps, record_every=steps,
                divergence_factor=divergence_factor, callback=callback)
    dv = np.asarray(res.diverged, dtype=bool)
    with torch.no_grad():
        _, z_end = forward(spec, res.params, x, return_preacts=True)
        _, z_0 = forward(spec, p0, x, return_preacts=True)
    act = torch.stack([(z > 0).to(DT).mean(dim=(-1, -2)) for z in z_end], -1).cpu().numpy()
    act = np.where(dv[:, None], np.nan, act)
    act0 = torch.stack([(z > 0).to(DT).mean(dim=(-1, -2)) for z in z_0], -1).cpu().numpy()
    hist = res.history["loss"]
    final = np.where(dv, np.nan, hist[-1])
    mx = np.where(dv, np.inf, np.maximum(peak["v"].cpu().numpy(), hist[-1]))
    phase = np.where(dv.reshape(E, S), Phase.DIVERGENT, Phase.CATAPULT)
    _, upper = phase_boundaries(grid, phase, axis=0)
    return ReluSweep(depth=depth, width=width, n_train=n_train, steps=steps, eta_lam0=frozen(grid), seeds=seeds,
                     lam0=frozen(lam0.detach().cpu().numpy()), loss0=frozen(hist[0].reshape(E, S)),
                     max_loss=frozen(mx.reshape(E, S)), final_loss=frozen(final.reshape(E, S)),
                     diverged=frozen(dv.reshape(E, S)), active=frozen(act.reshape(E, S, depth)),
                     active0=frozen(act0), upper=frozen(upper))


# ----------------------------------------------------------------------------------------
# ReLU nets at the authors' setting (Meltzer, Chen & Liu 2023, official code)
# ----------------------------------------------------------------------------------------
def digits01(n_train: int, device=None) -> Tuple[torch.Tensor, torch.Tensor]:
    """The first ``n_train`` training images of digits 0 and 1 (:func:`lrtheory.core.data.digits`,
    pixels in [0, 1], not standardized), target ``-1`` for 0 and ``+1`` for 1: the
    stand-in for the authors' 128-image two-class MNIST (MNIST01_small)."""
    from lrtheory.core.data import digits

    ds = digits(seed=0, standardize=False, device=device)
    keep = (ds.y_train == 0) | (ds.y_train == 1)
    x, lab = ds.x_train[keep][:n_train], ds.y_train[keep][:n_train]
    if x.shape[0] < n_train:
        raise ValueError(f"n_train: only {x.shape[0]} training images of 0 and 1, asked {n_train}")
    return x.to(DT), torch.where(lab == 1, 1.0, -1.0).to(DT)


def _authors_forward(params, x, depth: int, bias: bool, scale: float, return_preacts: bool = False):
    """``f(x) = scale * (W_L h_{L-1} + b_L)``, ``h_l = relu(W_l h_{l-1} + b_l)``, ``h_{-1} = x``:
    the authors' MLP (N(0,1) weights, unscaled hidden layers, output times
    ``(d_in width^L)^-1/2``). ``params`` ``[W_0, (b_0), ..., W_L, (b_L)]`` with a leading
    model axis; returns ``(K, m)`` (and the hidden pre-activations)."""
    h, i, pre = x, 0, []
    for l in range(depth + 1):
        W = params[i]
        i += 1
        z = torch.matmul(h, W.transpose(-1, -2))
        if bias:
            z = z + params[i].unsqueeze(-2)
            i += 1
        if l < depth:
            pre.append(z)
            h = torch.relu(z)
    out = scale * z[..., 0]
    return (out, pre) if return_preacts else out


class _AuthorsNet(torch.nn.Module):
    """One model of :func:`_authors_forward` as a module (for :func:`~lrtheory.core.ntk.ntk_top_eig`)."""

    def __init__(self, params, depth: int, bias: bool, scale: float) -> None:
        super().__init__()
        self.ps = torch.nn.ParameterList([torch.nn.Parameter(p.detach().clone()) for p in params])
        self.depth, self.bias, self.scale = depth, bias, scale

    def forward(self, x):  # noqa: D102
        return _authors_forward(list(self.ps), x, self.depth, self.bias, self.scale)


def authors_init(depth: int, width: int, d_in: int, seeds: Sequence[int], bias: bool, device=None):
    """``N(0, 1)`` weights and zero biases of the authors' MLP, ``(S, ...)`` per tensor."""
    dims = [d_in] + [width] * depth + [1]
    per_seed = []
    for s in seeds:
        g = make_generator(seed_for("catapult", "relu-authors", depth, width, "bias" if bias else "nobias", s))
        ps = []
        for l in range(depth + 1):
            ps.append(torch.randn(dims[l + 1], dims[l], generator=g, dtype=DT))
            if bias:
                ps.append(torch.zeros(dims[l + 1], dtype=DT))
        per_seed.append(ps)
    return [torch.stack([ps[k] for ps in per_seed]).to(device) for k in range(len(per_seed[0]))]


def authors_relu_sweep(eta_lam0, depth: int, width: int, seeds: Sequence[int], steps: int, *,
                       n_train: int = 128, bias: bool = True, conv_rel: float = 1e-4,
                       device: DeviceLike = None, divergence_factor: float = 1e8) -> ReluSweep:
    """Full-batch GD on 1/2 MSE for the authors' ReLU MLP (:func:`_authors_forward`) on
    digits 0/1 (:func:`digits01`), batched over ``eta * lambda_0`` x seeds with
    :func:`lrtheory.core.gd.run_gd` (autograd). ``lambda_0``: top eigenvalue of the
    empirical NTK / ``n_train`` (:func:`~lrtheory.core.ntk.ntk_top_eig`), per seed. A run
    is converged (frozen) once its loss is below ``conv_rel * L_0``, diverged once above
    ``divergence_factor * max(L_0, 1)``. Records the final loss, the peak loss, the
    final ``eta * lambda_T`` and per hidden layer the *active* fraction (one minus the
    authors' sparsity, the fraction of negative pre-activations) before and after.

    Returns
    -------
    ReluSweep
        ``steps`` is ``steps``; :attr:`ReluSweep.final_eta_lam` and
        :attr:`ReluSweep.steps_run` are filled.
    """
    from lrtheory.core.ntk import ntk_top_eig

    grid = _grid(eta_lam0)
    depth = validate.positive_int(depth, "depth")
    width = validate.positive_int(width, "width")
    seeds = validate.int_sequence(seeds, "seeds", minimum=0)
    steps = validate.positive_int(steps, "steps")
    conv_rel = validate.in_range(conv_rel, "conv_rel", 0.0, 1.0, inclusive=False)
    dev = resolve_device(device)
    x, y = digits01(n_train, dev)
    d_in = x.shape[1]
    scale = (d_in * width**depth) ** -0.5
    E, S = grid.size, len(seeds)
    p0 = authors_init(depth, width, d_in, seeds, bias, dev)

    def lam_of(ps, k):
        return ntk_top_eig(_AuthorsNet([p[k] for p in ps], depth, bias, scale), x, normalize="batch")

    lam0 = np.array([lam_of(p0, j) for j in range(S)])
    params = [p.unsqueeze(0).expand(E, *p.shape).reshape(E * S, *p.shape[1:]).clone() for p in p0]
    etas = (torch.as_tensor(grid, dtype=DT, device=dev)[:, None] / torch.as_tensor(lam0, dtype=DT, device=dev)[None, :]).reshape(-1)
    peak = {}

    def loss_fn(ps):
        return 0.5 * (_authors_forward(ps, x, depth, bias, scale) - y).pow(2).mean(-1)

    def converged(st):
        if "l0" not in peak:
            peak["l0"], peak["max"] = st.loss.clone(), st.loss.clone()
        live = torch.where(torch.isfinite(st.loss), st.loss, peak["max"])
        peak["max"] = torch.where(st.active, torch.maximum(peak["max"], live), peak["max"])
        return st.loss < conv_rel * peak["l0"]

    res = run_gd(loss_fn, params, etas, steps, divergence_factor=divergence_factor, record_every=steps,
                 converged=converged, on_converged="freeze")
    dv = np.asarray(res.diverged, dtype=bool)
    with torch.no_grad():
        out, z_end = _authors_forward(res.params, x, depth, bias, scale, return_preacts=True)
        _, z_0 = _authors_forward(p0, x, depth, bias, scale, return_preacts=True)
        final = (0.5 * (out - y).pow(2).mean(-1)).cpu().numpy()
    act = torch.stack([(z > 0).to(DT).mean(dim=(-1, -2)) for z in z_end], -1).cpu().numpy()
    act0 = torch.stack([(z > 0).to(DT).mean(dim=(-1, -2)) for z in z_0], -1).cpu().numpy()
    lam_end = np.array([math.nan if dv[k] else lam_of(res.params, k) for k in range(E * S)])
    final = np.where(dv, np.nan, final)
    act = np.where(dv[:, None], np.nan, act)
    mx = np.where(dv, np.inf, peak["max"].cpu().numpy())
    phase = np.where(dv.reshape(E, S), Phase.DIVERGENT, Phase.CATAPULT)
    _, upper = phase_boundaries(grid, phase, axis=0)
    l0 = peak["l0"].cpu().numpy()
    return ReluSweep(depth=depth, width=width, n_train=n_train, steps=steps, eta_lam0=frozen(grid), seeds=seeds,
                     lam0=frozen(lam0), loss0=frozen(l0.reshape(E, S)), max_loss=frozen(mx.reshape(E, S)),
                     final_loss=frozen(final.reshape(E, S)), diverged=frozen(dv.reshape(E, S)),
                     active=frozen(act.reshape(E, S, depth)), active0=frozen(act0), upper=frozen(upper),
                     final_eta_lam=frozen((etas.cpu().numpy() * lam_end).reshape(E, S)),
                     steps_run=frozen(np.asarray(res.stop_step).reshape(E, S)))


def uv_peaks(eta_lam0: float, widths: Sequence[int], seeds: Sequence[int], steps: int, *,
             device: DeviceLike = None):
    """Peak loss and the step it is reached, uv model at one ``eta * lambda_0``, per width and seed.

    Each width's ``S`` runs (``u, v`` from :func:`uv_init` with ``what="peak"``) are one batched
    :func:`~lrtheory.core.gd.run_gd` call; the loss is recorded every step.

    Returns
    -------
    (peak, t_peak, lam0) : ndarrays (W, S)
        ``peak = max_t L_t``, ``t_peak = argmax_t L_t``, ``lambda_0`` of each run.
    """
    w0 = validate.positive_real(eta_lam0, "eta_lam0")
    widths = validate.int_sequence(widths, "widths", minimum=1)
    seeds = validate.int_sequence(seeds, "seeds", minimum=0)
    steps = validate.positive_int(steps, "steps")
    dev = resolve_device(device)
    peak, tpk, lam = (np.zeros((len(widths), len(seeds))) for _ in range(3))
    for i, n in enumerate(widths):
        draws = [uv_init(n, s, "peak") for s in seeds]
        w = torch.stack([torch.stack(d) for d in draws]).to(dev)  # (S, 2, n)
        lam0 = w.pow(2).sum((-1, -2)) / n
        loss_fn, grad_fn = _uv_model(n)
        res = run_gd(loss_fn, [w.clone()], w0 / lam0, steps, grad_fn=grad_fn, divergence_factor=None,
                     diverged=lambda st: ~torch.isfinite(st.loss), record=lambda st: {"L": st.loss})
        L = np.asarray(res.records["L"])  # (T + 1, S)
        peak[i], tpk[i], lam[i] = L.max(0), L.argmax(0), lam0.cpu().numpy()
    return frozen(peak), frozen(tpk), frozen(lam)
