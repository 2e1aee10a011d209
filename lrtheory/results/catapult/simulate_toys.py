"""Chapter 02, the experiments on the other models of Meltzer, Chen & Liu 2023 (torch, float64):
the two-layer homogeneous (leaky-ReLU) net and the quadratic model with bias, both on their
toy dataset (one example ``x = 1``, ``y = 0``), full-batch GD over a grid of ``eta * lambda_0``.

As in :mod:`~lrtheory.results.catapult.simulate`: full vectors, closed-form gradients,
every run of one width one batched :func:`~lrtheory.core.gd.run_gd` call, a diverged run
frozen and reported; each model draws from its own :func:`~lrtheory.core.device.seed_for`.
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import numpy as np
import torch

from lrtheory.core import validate
from lrtheory.core.device import DeviceLike, make_generator, resolve_device, seed_for
from lrtheory.results.catapult.analysis import PhaseSweep, frozen
from lrtheory.results.catapult.simulate import DT, _finish_sweep, _grid, _run_scalar_model

__all__ = ["homogeneous_init", "simulate_homogeneous", "bias_init", "simulate_bias", "homogeneous_lambda_at"]


def homogeneous_init(width: int, seed: int, slope: float, what: str = "sweep") -> Tuple[torch.Tensor, torch.Tensor]:
    """``u, v ~ N(0, 1)^width`` of the two-layer net with ``slope`` (CPU, float64); ``what``
    keys the measurement (each slope and measurement draws its own nets)."""
    g = make_generator(seed_for("catapult", "homogeneous", what, float(slope), width, seed))
    return torch.randn(width, generator=g, dtype=DT), torch.randn(width, generator=g, dtype=DT)


def _homogeneous_model(n: int, slope: float):
    """Loss ``(f^2 / 2, f)`` and gradient of ``f = n^-1/2 sum_i v_i sigma(u_i)`` on ``(..., 2, n)``."""
    sq = math.sqrt(n)

    def act(u):
        return torch.where(u > 0, u, slope * u), torch.where(u > 0, torch.ones_like(u), torch.full_like(u, slope))

    def loss_fn(p):
        w = p[0]
        s, _ = act(w[..., 0, :])
        f = (w[..., 1, :] * s).sum(-1) / sq
        return 0.5 * f * f, f

    def grad_fn(p):
        w = p[0]
        s, ds = act(w[..., 0, :])
        f = (w[..., 1, :] * s).sum(-1) / sq
        c = (f / sq)[..., None]
        return [torch.stack([c * w[..., 1, :] * ds, c * s], -2)]

    def lam_fn(p):
        w = p[0]
        s, ds = act(w[..., 0, :])
        return (s * s + w[..., 1, :] ** 2 * ds * ds).sum(-1) / n

    return loss_fn, grad_fn, lam_fn


def simulate_homogeneous(eta_lam0, widths: Sequence[int], seeds: Sequence[int], steps: int, *, slope: float = 0.5,
                         device: DeviceLike = None, div_g: float = 1e6) -> Tuple[PhaseSweep, np.ndarray]:
    """GD on the two-layer homogeneous net of Meltzer, Chen & Liu (official code: width
    1024, ``N(0, 1)`` weights, no bias, output times ``(d_in width)^-1/2``, leaky ReLU with
    ``slope`` below 0, one example ``x = 1``, ``y = 0``) over a grid of ``eta * lambda_0``.

    Returns
    -------
    (PhaseSweep, dead) : the sweep (``model`` ``"homogeneous"``; ``kappa0`` is
        ``n lambda_0 / |theta_0|^2``) and the fraction of hidden units with ``u_i < 0`` (the
        authors' sparsity at ``x = 1``) after training, ``(W, E, S)``, NaN if diverged.
    """
    grid = _grid(eta_lam0)
    widths = validate.int_sequence(widths, "widths", minimum=1)
    seeds = validate.int_sequence(seeds, "seeds", minimum=0)
    steps = validate.positive_int(steps, "steps")
    slope = validate.in_range(slope, "slope", 0.0, 1.0)
    div_g = validate.positive_real(div_g, "div_g")
    dev = resolve_device(device)
    wt = torch.as_tensor(grid, dtype=DT, device=dev)
    per_width, dead = [], []
    for n in widths:
        draws = [homogeneous_init(n, s, slope) for s in seeds]
        w0 = torch.stack([torch.stack(d) for d in draws]).to(dev)  # (S, 2, n)
        loss_fn, grad_fn, lam_fn = _homogeneous_model(n, slope)
        _, f0 = loss_fn([w0])
        lam0 = lam_fn([w0])
        eta = wt[:, None] / lam0[None, :]
        E, S = eta.shape
        params = [w0.unsqueeze(0).expand(E, S, 2, n).clone()]
        l0, mx, fl, fw, dv, ran, pend = _run_scalar_model(loss_fn, grad_fn, lam_fn, params, eta, n, steps, div_g,
                                                          return_params=True)
        frac = (pend[0][..., 0, :] < 0).to(DT).mean(-1).cpu().numpy()
        dead.append(np.where(dv, np.nan, frac))
        per_width.append({
            "f0": f0.cpu().numpy(), "lam0": lam0.cpu().numpy(), "loss0": l0[0], "steps_run": ran,
            "kappa0": (n * lam0 / w0.pow(2).sum((-1, -2))).cpu().numpy(), "max_loss": mx, "final_loss": fl,
            "final_eta_lam": fw, "diverged": dv,
        })
    return _finish_sweep("homogeneous", grid, widths, seeds, steps, per_width), frozen(np.stack(dead))


def homogeneous_lambda_at(eta_lam0, width: int, seed: int, t_eta: float, *, slope: float = 0.0,
                          device: DeviceLike = None) -> np.ndarray:
    """``lambda_t / lambda_0`` at the step ``t = round(t_eta / (eta lambda_0))`` (fixed ``t eta``,
    the physical time of Lewkowycz et al. 2020, Fig. 2c, here in units of ``1/lambda_0``) of the two-layer net of
    :func:`simulate_homogeneous` (one initialization, ``what="lambda_t"``) for each ``eta``.
    NaN where the run diverged."""
    grid = _grid(eta_lam0)
    n = validate.positive_int(width, "width")
    t_eta = validate.positive_real(t_eta, "t_eta")
    dev = resolve_device(device)
    from lrtheory.core.gd import run_gd

    u, v = homogeneous_init(n, validate.nonneg_int(seed, "seed"), slope, "lambda_t")
    loss_fn, grad_fn, lam_fn = _homogeneous_model(n, slope)
    w0 = torch.stack([u, v]).to(dev)
    lam0 = float(lam_fn([w0]))
    eta = torch.as_tensor(grid, dtype=DT, device=dev) / lam0
    t_of = np.maximum(1, np.round(t_eta / grid)).astype(int)  # t eta lambda_0 = t_eta
    res = run_gd(loss_fn, [w0.expand(grid.size, 2, n).clone()], eta, int(t_of.max()), grad_fn=grad_fn,
                 divergence_factor=None, diverged=lambda st: ~(st.etas**2 * st.aux**2 / n < 1e6),
                 record=lambda st: {"lam": lam_fn(st.params)})
    lam = np.asarray(res.records["lam"])  # (T + 1, E)
    out = np.array([lam[min(t, lam.shape[0] - 1), k] for k, t in enumerate(t_of)]) / lam0
    return frozen(np.where(np.asarray(res.diverged), np.nan, out))


# ----------------------------------------------------------------------------------------
# quadratic model with bias
# ----------------------------------------------------------------------------------------
def bias_init(N: int, feat_dim: int, seed: int):
    """``phi = U / sqrt(feat_dim)`` (``U ~ N(0, 1)``, the authors' linear feature at ``x = 1``),
    the linear weights ``a ~ N(0, 1)^feat_dim``, the moduli ``s = +-1`` (``psi^2 = 1``)
    and ``theta ~ N(0, 1)^N`` of the quadratic part."""
    g = make_generator(seed_for("catapult", "bias", feat_dim, N, seed))
    phi = torch.randn(feat_dim, generator=g, dtype=DT) / math.sqrt(feat_dim)
    a = torch.randn(feat_dim, generator=g, dtype=DT)
    theta = torch.randn(N, generator=g, dtype=DT)
    s = torch.cat([torch.ones(N // 2, dtype=DT), -torch.ones(N // 2, dtype=DT)])
    return phi, a, s, theta


def simulate_bias(eta_lam0, widths: Sequence[int], seeds: Sequence[int], steps: int, *, feat_dim: int = 10,
                  device: DeviceLike = None, div_g: float = 1e6) -> Tuple[PhaseSweep, np.ndarray]:
    """GD on the quadratic model with bias ``z = a.phi + zeta/2 theta^T psi theta`` of
    Meltzer, Chen & Liu (official code, toy dataset: ``x = 1``, ``y = 0``, identity
    meta-feature with eigenvalues ``+-1``, ``zeta = (N/2)^-1/2``), in the eigenbasis of
    ``psi``, over a grid of ``eta * lambda_0``; ``widths`` are the sizes ``N`` of the
    quadratic part (even).

    Returns
    -------
    (PhaseSweep, rho0) : the sweep (``model`` ``"bias"``, ``kappa0`` 1) and the feature share
        ``|phi|^2 / lambda_0`` of each initialization, ``(W, S)``.
    """
    grid = _grid(eta_lam0)
    widths = validate.int_sequence(widths, "widths", minimum=2)
    if any(w % 2 for w in widths):
        raise ValueError(f"widths: the quadratic part needs even N (eigenvalues in +- pairs), got {widths}")
    seeds = validate.int_sequence(seeds, "seeds", minimum=0)
    steps = validate.positive_int(steps, "steps")
    feat_dim = validate.positive_int(feat_dim, "feat_dim")
    div_g = validate.positive_real(div_g, "div_g")
    dev = resolve_device(device)
    wt = torch.as_tensor(grid, dtype=DT, device=dev)
    per_width, rho = [], []
    for N in widths:
        draws = [bias_init(N, feat_dim, s) for s in seeds]
        phi, a0, sv, th0 = (torch.stack([d[k] for d in draws]).to(dev) for k in range(4))  # (S, .)
        zeta = (N / 2.0) ** -0.5
        F = phi.pow(2).sum(-1)

        def parts(p):
            return (p[0] * phi).sum(-1), 0.5 * zeta * (sv * p[1] * p[1]).sum(-1)

        def loss_fn(p):
            lin, quad = parts(p)
            z = lin + quad
            return 0.5 * z * z, z

        def grad_fn(p):
            lin, quad = parts(p)
            z = (lin + quad)[..., None]
            return [z * phi, z * zeta * sv * p[1]]

        def lam_fn(p):
            return F + zeta**2 * (sv * sv * p[1] * p[1]).sum(-1)

        _, z0 = loss_fn([a0, th0])
        lam0 = lam_fn([a0, th0])
        eta = wt[:, None] / lam0[None, :]
        E, S = eta.shape
        params = [a0.unsqueeze(0).expand(E, S, feat_dim).clone(), th0.unsqueeze(0).expand(E, S, N).clone()]
        l0, mx, fl, fw, dv, ran = _run_scalar_model(loss_fn, grad_fn, lam_fn, params, eta, 1.0 / zeta**2, steps,
                                                    div_g)
        rho.append((F / lam0).cpu().numpy())
        per_width.append({
            "f0": z0.cpu().numpy(), "lam0": lam0.cpu().numpy(), "loss0": l0[0], "steps_run": ran,
            "kappa0": np.ones(len(seeds)), "max_loss": mx, "final_loss": fl, "final_eta_lam": fw, "diverged": dv,
        })
    return _finish_sweep("bias", grid, widths, seeds, steps, per_width), frozen(np.stack(rho))
