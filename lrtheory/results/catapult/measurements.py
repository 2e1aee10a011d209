"""Chapter 02, the measurements: each ``measure_*(cfg, device)`` runs one experiment of
:mod:`~lrtheory.results.catapult.simulate` with the settings of ``cfg`` (a
:class:`~lrtheory.results.catapult.config.CatapultConfig`).

Call them as ``measure_uv_sweep("ci", device)`` or ``measure_uv_sweep.of(cfg, device)``:
memoized per config and device, served from the results store at the stored scales.
"""
from __future__ import annotations

from typing import Tuple

from lrtheory.results.catapult import CHAPTER
from lrtheory.results.catapult.analysis import PhaseSweep, ReluSweep, Trajectories
from lrtheory.results.catapult import simulate, simulate_toys

__all__ = ["measure_uv_sweep", "measure_quadratic_sweep", "measure_relu_sweep", "measure_trajectories",
           "measure_authors_relu", "measure_uv_peaks", "measure_homogeneous", "measure_bias", "measure_lambda_t"]


@CHAPTER.measurement
def measure_uv_sweep(cfg, device) -> PhaseSweep:
    """The uv model over the grid x widths x seeds of ``cfg.uv``."""
    c = cfg.uv
    return simulate.simulate_uv(c.grid.values(), c.widths, c.seeds, c.steps, device=device, div_g=c.div_g)


def _quadratic_parts(cfg):
    return [{"spectrum": "unit"}, {"spectrum": "spread"}]


def _quadratic_combine(cfg, results) -> Tuple[PhaseSweep, PhaseSweep]:
    return tuple(results)


@CHAPTER.measurement(parts=_quadratic_parts, combine=_quadratic_combine)
def measure_quadratic_sweep(cfg, device, part) -> Tuple[PhaseSweep, PhaseSweep]:
    """The quadratic model over ``cfg.quadratic``: ``(psi^2 = 1, spread spectrum)``, one part each."""
    c = cfg.quadratic
    spectrum = (1.0, 1.0) if part["spectrum"] == "unit" else tuple(c.spread)
    return simulate.simulate_quadratic(c.grid.values(), c.widths, c.seeds, c.steps, spectrum=spectrum,
                                       device=device, div_g=c.div_g)


def _relu_parts(cfg):
    return [{"depth": d} for d in cfg.relu.depths]


def _relu_combine(cfg, results) -> Tuple[ReluSweep, ...]:
    return tuple(results)


@CHAPTER.measurement(parts=_relu_parts, combine=_relu_combine)
def measure_relu_sweep(cfg, device, part) -> Tuple[ReluSweep, ...]:
    """ReLU MLPs over ``cfg.relu``, one :class:`ReluSweep` per depth (one part each)."""
    c = cfg.relu
    d = int(part["depth"])
    return simulate.relu_sweep(c.grid(d).values(), d, c.width, c.seeds, c.steps, n_train=c.n_train,
                               device=device, divergence_factor=c.divergence_factor)


@CHAPTER.measurement
def measure_trajectories(cfg, device) -> Trajectories:
    """uv trajectories for one ``eta * lambda_0`` in each phase (``cfg.traj``)."""
    c = cfg.traj
    return simulate.uv_trajectories(c.eta_lam0, c.width, c.seed, c.steps, device=device, div_g=c.div_g)


def _authors_parts(cfg):
    return [{"depth": d} for d in cfg.authors.depths]


@CHAPTER.measurement(parts=_authors_parts, combine=_relu_combine)
def measure_authors_relu(cfg, device, part) -> Tuple[ReluSweep, ...]:
    """ReLU MLPs at the authors' setting (``cfg.authors``), one :class:`ReluSweep` per depth."""
    c = cfg.authors
    d = int(part["depth"])
    return simulate.authors_relu_sweep(c.grid.values(), d, c.width(d), c.seeds, c.steps, n_train=c.n_train,
                                       bias=c.bias, conv_rel=c.conv_rel, device=device,
                                       divergence_factor=c.divergence_factor)


@CHAPTER.measurement
def measure_uv_peaks(cfg, device):
    """uv peak loss, its step and ``lambda_0`` ``(W, S)`` at ``cfg.peak.eta_lam0`` (``cfg.peak``)."""
    c = cfg.peak
    return simulate.uv_peaks(c.eta_lam0, c.widths, c.seeds, c.steps, device=device)


def _homogeneous_parts(cfg):
    return [{"slope": float(a)} for a in cfg.homogeneous.slopes]


@CHAPTER.measurement(parts=_homogeneous_parts, combine=_relu_combine)
def measure_homogeneous(cfg, device, part):
    """The two-layer homogeneous net over ``cfg.homogeneous``, one ``(PhaseSweep, dead)`` per slope."""
    c = cfg.homogeneous
    return simulate_toys.simulate_homogeneous(c.grid.values(), c.widths, c.seeds, c.steps, slope=part["slope"],
                                              device=device, div_g=c.div_g)


@CHAPTER.measurement
def measure_bias(cfg, device):
    """The quadratic model with bias over ``cfg.bias``: ``(PhaseSweep, rho0)``."""
    c = cfg.bias
    return simulate_toys.simulate_bias(c.grid.values(), c.widths, c.seeds, c.steps, feat_dim=c.feat_dim,
                                       device=device, div_g=c.div_g)


@CHAPTER.measurement
def measure_lambda_t(cfg, device):
    """``lambda_t / lambda_0`` at each fixed ``t eta`` of ``cfg.lambda_t``, ``(T, E)``."""
    c = cfg.lambda_t
    import numpy as np

    return np.stack([simulate_toys.homogeneous_lambda_at(c.grid.values(), c.width, c.seed, t, slope=0.0,
                                                         device=device) for t in c.t_eta])
