"""The experiments of chapter 03 (torch): the one-step change over random initializations, and
LR transfer across depth on digits, trained with :func:`lrtheory.core.train.train`.

Every network is drawn from its own seed (``init_params(..., seeds=...)`` with
:func:`lrtheory.core.device.seed_for` values, keys chosen by the caller in
:mod:`~lrtheory.results.mup_depth.measurements`), so no two networks share one.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch

from lrtheory.core import validate
from lrtheory.core.device import DeviceLike, resolve_device
from lrtheory.core.mlp import MLPSpec, init_params, lr_multipliers

__all__ = ["OneStepResult", "one_step", "train_transfer", "one_cpu_thread"]


@contextlib.contextmanager
def one_cpu_thread(device):
    """Run CPU measurements on one intra-op thread, restoring the setting afterwards.

    The batched matmuls here are small (width <= 256 at CI scale, tiny per-step ops in
    training); on a shared 2-core machine a second OpenMP thread mostly spins: measured 5.5 s
    CPU with one thread against 41 s with two for the CI Monte Carlo grid.
    """
    if torch.device(device).type != "cpu":
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@dataclass(frozen=True)
class OneStepResult:
    """One GD step on one datum, K random mean-field initializations.

    Attributes
    ----------
    width, depth : int
    etas : ndarray (G,)
        Learning rates of the exact steps.
    lin : ndarray (K, depth + 1)
        Per model, ``mean_i (d z_i^{(l)}/d eta)^2`` at ``eta = 0`` for the hidden layers
        ``l = 1..L`` (columns ``0..L-1``) and ``(d f/d eta)^2`` for the output (last
        column): the first-order update size per unit ``eta^2``.
    exact : ndarray (K, G, depth + 1)
        Per model and LR, ``mean_i (Delta z_i^{(l)})^2`` after the exact GD step.
    out_parts : ndarray (K, 2)
        ``d f/d eta`` split into the hidden layers' part and the readout's own part per unit
        readout LR multiplier: ``df/deta = out_parts[:, 0] + c_readout * out_parts[:, 1]``.
    """

    width: int
    depth: int
    etas: np.ndarray
    lin: np.ndarray
    exact: np.ndarray
    out_parts: np.ndarray

    def output_coefficient(self, readout_mult: float) -> np.ndarray:
        """Per model ``(df/deta)^2`` if the readout LR multiplier were ``readout_mult``, (K,)."""
        return (self.out_parts[:, 0] + readout_mult * self.out_parts[:, 1]) ** 2


def one_step(width: int, depth: int, seeds: Sequence[int], *, etas=(0.01,), y: float = 1.0,
             layer_lr_mults: Optional[Sequence[float]] = None, input_dim: Optional[int] = None,
             device: DeviceLike = None, max_chunk_bytes: int = 2 ** 28) -> OneStepResult:
    """The one-step pre-activation change of ``len(seeds)`` random mean-field networks.

    Network ``k`` is a mean-field MLP (``d_in = input_dim``, default ``width``; ``d_out = 1``)
    drawn by :func:`lrtheory.core.mlp.init_params` from ``seeds[k]``, fed the fixed input
    ``x = (1, ..., 1)`` (``||x||^2 = d_in``; by rotation invariance of the Gaussian weights any
    input of that norm has the same law), and given one GD step on ``(f(x) - y)^2 / 2``.
    Networks are processed in chunks (one batched matmul per layer); the result does not
    depend on the chunking.

    Parameters
    ----------
    width : int
        ``n`` (>= 1), the hidden width.
    depth : int
        Hidden layers ``L`` (>= 1).
    seeds : sequence of int
        One seed per network (at least 2, for a Monte Carlo error).
    etas : sequence of float
        LRs of the exact steps (positive, finite).
    y : float
        Target (finite).
    layer_lr_mults : sequence of ``depth + 1`` floats, optional
        Per-layer LR multipliers (default: those of the mean-field spec, all 1).
    input_dim : int, optional
        Input dimension ``d`` (default ``width``, the setting of the paper's analysis).
    device : str, torch.device or None
    max_chunk_bytes : int
        Memory bound of one chunk of weights.

    Returns
    -------
    OneStepResult

    Raises
    ------
    ValueError
        On a bad width, depth, seed list, LR, target or multiplier list.

    Examples
    --------
    >>> r = one_step(16, 2, seeds=[11, 12, 13, 14], etas=[0.1], device="cpu")
    >>> r.lin.shape, r.exact.shape
    ((4, 3), (4, 1, 3))
    """
    width = validate.positive_int(width, "width")
    depth = validate.positive_int(depth, "depth")
    seeds = validate.int_sequence(seeds, "seeds", minimum=0)
    if len(seeds) < 2:
        raise ValueError(f"seeds: need at least 2 networks for a Monte Carlo error, got {len(seeds)}")
    y = validate.finite_real(y, "y")
    etas = validate.positive_array(etas, "etas", ndim=1)
    d_in = width if input_dim is None else validate.positive_int(input_dim, "input_dim")
    dev = resolve_device(device)
    dt = torch.float64
    spec = MLPSpec(d_in=d_in, width=width, depth=depth, d_out=1, parametrization="mean_field")
    c = np.asarray(lr_multipliers(spec), dtype=np.float64)
    if layer_lr_mults is not None:
        lm = validate.positive_array(layer_lr_mults, "layer_lr_mults", ndim=1)
        if lm.size != depth + 1:
            raise ValueError(f"layer_lr_mults: expected {depth + 1} positive finite numbers, got {layer_lr_mults!r}")
        c = c * lm
    n_nets, G = len(seeds), etas.size
    eta_t = torch.as_tensor(etas, dtype=dt, device=dev)
    x = torch.ones(d_in, dtype=dt, device=dev)
    lin = np.zeros((n_nets, depth + 1))
    exact = np.zeros((n_nets, G, depth + 1))
    out_parts = np.zeros((n_nets, 2))
    chunk = max(1, int(max_chunk_bytes // (8 * (depth + 1) * width * width)))
    for k0 in range(0, n_nets, chunk):
        part = seeds[k0:k0 + chunk]
        W = init_params(spec, len(part), seeds=part, device=dev)
        K = W[0].shape[0]
        h = [x.expand(K, d_in)]
        z = []
        for l in range(depth):
            z.append(torch.bmm(W[l], h[-1].unsqueeze(2)).squeeze(2))
            h.append(torch.relu(z[-1]))
        f = torch.bmm(W[depth], h[-1].unsqueeze(2))[:, 0, 0]
        r = f - y
        act = [(zz > 0).to(dt) for zz in z]
        # g[l] = d f / d z^{(l)}
        g = [None] * depth
        gl = W[depth][:, 0, :] * act[-1]
        g[depth - 1] = gl
        for l in range(depth - 2, -1, -1):
            gl = torch.bmm(W[l + 1].transpose(1, 2), gl.unsqueeze(2)).squeeze(2) * act[l]
            g[l] = gl
        # first order: d/deta of z^{(l)} along the GD step
        d = torch.zeros(K, width, dtype=dt, device=dev)
        for l in range(depth):
            prev = torch.bmm(W[l], (d * act[l - 1]).unsqueeze(2)).squeeze(2) if l > 0 else 0.0
            d = prev - float(c[l]) * r[:, None] * (h[l] ** 2).sum(1, keepdim=True) * g[l]
            lin[k0:k0 + K, l] = (d ** 2).mean(1).cpu().numpy()
        hid = (W[depth][:, 0, :] * d * act[-1]).sum(1)
        own = -r * (h[depth] ** 2).sum(1)
        out_parts[k0:k0 + K, 0] = hid.cpu().numpy()
        out_parts[k0:k0 + K, 1] = own.cpu().numpy()
        lin[k0:k0 + K, depth] = ((hid + float(c[depth]) * own) ** 2).cpu().numpy()
        # exact step at every eta: W_l' = W_l - eta c_l r g_l h_{l-1}^T
        hp = h[0].unsqueeze(2).expand(K, d_in, G)
        for l in range(depth + 1):
            dot = (h[l].unsqueeze(2) * hp).sum(1)  # (K, G)
            gg = g[l] if l < depth else torch.ones(K, 1, dtype=dt, device=dev)
            zp = torch.bmm(W[l], hp) - float(c[l]) * eta_t[None, None, :] * r[:, None, None] \
                * gg.unsqueeze(2) * dot.unsqueeze(1)
            ref = z[l] if l < depth else f[:, None]
            exact[k0:k0 + K, :, l] = ((zp - ref.unsqueeze(2)) ** 2).mean(1).cpu().numpy()
            hp = torch.relu(zp)
        del W, h, z, g, act
    return OneStepResult(width, depth, etas, lin, exact, out_parts)


def train_transfer(width: int, depth: int, base_depth: Optional[int], seeds: np.ndarray,
                   log2_etas: Sequence[float], x: torch.Tensor, y: torch.Tensor, steps: int) -> np.ndarray:
    """Train the mean-field MLPs of one depth at every base LR, without or with depth scaling.

    Parameters
    ----------
    width, depth : int
    base_depth : int or None
        ``None``: no depth factor (``"unscaled"``); else the first and hidden layers train at
        ``(depth / base_depth)^{-3/2}`` times the base LR (``"scaled"``).
    seeds : int array (S, G)
        The seed of the network trained at seed index ``s`` and LR ``g`` (one per network).
    log2_etas : sequence of G floats
    x, y : Tensor
        Inputs ``(N, d_in)`` and one-hot targets ``(N, d_out)`` (MSE loss of core.train).
    steps : int

    The layers train at ``eta * layer_lr_multipliers(width, depth, d_in, base_depth=...)``
    (:mod:`lrtheory.tools.depth`).

    Returns
    -------
    ndarray (S, G)
        Final full-batch training loss (``inf`` for a diverged run).
    """
    from lrtheory.core.train import train
    from lrtheory.tools.depth import layer_lr_multipliers

    seeds = np.asarray(seeds)
    S, G = seeds.shape
    d_in, d_out = x.shape[1], y.shape[1]
    spec = MLPSpec(d_in=d_in, width=width, depth=depth, d_out=d_out, parametrization="mean_field")
    params = init_params(spec, S * G, seeds=seeds.reshape(-1).tolist(), device=x.device)  # model s * G + g
    etas = np.tile(2.0 ** np.asarray(log2_etas, dtype=np.float64), S)
    mults = layer_lr_multipliers(width, depth, d_in, base_depth=base_depth)
    res = train(spec, params, x, y, etas, steps, layer_lr_mults=mults, record_every=steps)
    return np.where(res.diverged, np.inf, res.final_loss).reshape(S, G)
