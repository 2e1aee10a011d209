"""Chapter 04 measurements: ``@CHAPTER.measurement`` functions of ``(cfg, device)``.

Each is memoized per (config, device) and served from the results store at the stored
scales (:mod:`lrtheory.verify.chapter`); ``lrtheory sweep elr`` computes and stores them.
The MLP measurements share one network, the init of ``seed_for("elr", "mlp", "batchnorm", depth,
width, 0)``, trained from the same state at every LR; ``measure_init_elrs`` and
``measure_widening_onsets`` also read the inits of ``seed_index`` 1 .. ``scan_seeds - 1``;
``measure_ramp_runs`` trains those inits at a rising LR;
``measure_net_ratios`` trains a BatchNorm MLP, a LayerNorm MLP and a CNN of their own,
``measure_deep_runs`` the very deep MLP at ``deep_seeds`` inits with and without the warm-up.
"""
from __future__ import annotations

import numpy as np

from lrtheory.core.device import seed_for
from lrtheory.results.elr import CHAPTER
from lrtheory.results.elr import derivation as D
from lrtheory.results.elr import simulate as S
from lrtheory.results.elr.analysis import spread, spread_minimizer

__all__ = [
    "measure_norm_run",
    "measure_ratio_run",
    "measure_init_elrs",
    "measure_mlp_trace",
    "measure_one_step_scan",
    "measure_widening_onsets",
    "measure_ramp_runs",
    "measure_warmup_comparison",
    "measure_cnn_warmup",
    "measure_net_ratios",
    "measure_deep_runs",
]


@CHAPTER.measurement
def measure_norm_run(cfg, device) -> S.ScaleInvariantRun:
    """The simulation behind ``elr.norm_recursion``: layers with initial ELRs ``cfg.norm_E0`` at
    ``eta = 1, S0 = 1`` for ``cfg.norm_steps`` steps."""
    return S.simulate_scale_invariant(cfg.norm_E0, eta=1.0, steps=cfg.norm_steps, S0=1.0, dim=cfg.sim_dim,
                                      seed=seed_for("elr", "norm_recursion", 0), device=device)


@CHAPTER.measurement
def measure_ratio_run(cfg, device) -> S.ScaleInvariantRun:
    """The simulation behind ``elr.ratio_converges``: ``cfg.ratio_pairs`` independent pairs of layers
    with initial ELRs ``cfg.ratio_E0`` (a 10x gap in gradient scale, standing for gradient explosion)
    at ``eta = 1, S0 = 1``; layers ``2i, 2i + 1`` are pair ``i``."""
    return S.simulate_scale_invariant(tuple(cfg.ratio_E0) * cfg.ratio_pairs, eta=1.0, steps=cfg.ratio_steps, S0=1.0,
                                      dim=cfg.sim_dim, seed=seed_for("elr", "ratio_converges", 0), device=device)


def _setting(cfg, device, seed_index: int = 0) -> S.MLPSetting:
    return S.mlp_setting(cfg.mlp_depth, cfg.mlp_width, cfg.mlp_n, device=device, seed_index=seed_index)


@CHAPTER.measurement
def measure_init_elrs(cfg, device) -> np.ndarray:
    """Per-unit-LR ELRs ``||grad|| / ||W||`` of the MLP's hidden layers at init, ``(scan_seeds, depth)``
    (row ``k``: the init of ``seed_index`` k; row 0 is the network of the figures and of the
    warm-up): the state the model's predictions start from (no training enters them)."""
    return np.stack([_setting(cfg, device, k).a0 for k in range(cfg.scan_seeds)])


def _eta_c(a0: np.ndarray) -> float:
    return float(D.critical_lr(a0.max(), a0.min()))


@CHAPTER.measurement
def measure_mlp_trace(cfg, device) -> S.MLPTrace:
    """Full-batch GD of the MLP at the constant LRs ``cfg.trace_mults x eta_c`` for
    ``cfg.trace_steps`` steps (``eta_c`` the critical LR at init)."""
    st = _setting(cfg, device)
    eta_c = _eta_c(st.a0)
    etas = eta_c * np.asarray(cfg.trace_mults, dtype=np.float64)
    a, S_, loss = S.train_mlp(st, etas, cfg.trace_steps)
    return S.MLPTrace(etas=etas, a=a, S=S_, loss=loss, eta_c=eta_c)


def _scan(cfg, device, seed_index: int) -> S.OneStepScan:
    st = _setting(cfg, device, seed_index)
    eta_c = _eta_c(st.a0)
    etas = eta_c * np.asarray(cfg.scan_mults, dtype=np.float64)
    a, S2, _ = S.train_mlp(st, etas, 1)
    model = np.array([D.model_spread_trace(st.a0, [e])[-1] for e in etas])
    c = a * S2  # ||grad|| ||W|| = (||grad|| / ||W||) ||W||^2
    return S.OneStepScan(etas=etas, spread_before=float(spread(st.a0)), spread_after=spread(a, axis=-1)[:, 1],
                         model_after=model, eta_c=eta_c, grad_scale_change=c[:, 1] / c[:, 0])


@CHAPTER.measurement
def measure_one_step_scan(cfg, device) -> S.OneStepScan:
    """One full-batch step of the MLP (``seed_index`` 0) from init at each LR of
    ``cfg.scan_mults x eta_c``: the spread before and after, measured and as the model predicts it, and
    each layer's change of gradient scale ``c'/c`` (the model's premise: 1)."""
    return _scan(cfg, device, 0)


def _onset_parts(cfg):
    return [{"seed_index": k} for k in range(cfg.scan_seeds)]


def _onset_combine(cfg, values) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


@CHAPTER.measurement(parts=_onset_parts, combine=_onset_combine)
def measure_widening_onsets(cfg, device, part) -> float:
    """The LR at which widening starts: the LR whose one step from init leaves the smallest spread
    (:func:`~lrtheory.results.elr.analysis.spread_minimizer` of the one-step scan; beyond it a
    larger LR leaves a larger disparity), for each of the ``cfg.scan_seeds`` initializations of
    the MLP: one sweep point per initialization, combined into ``(scan_seeds,)``."""
    scan = _scan(cfg, device, int(part["seed_index"]))
    return spread_minimizer(scan.etas, scan.spread_after)


def _ramp_parts(cfg):
    return [{"seed_index": k} for k in range(cfg.ramp_seeds)]


def _ramp_combine(cfg, values) -> list:
    return list(values)


@CHAPTER.measurement(parts=_ramp_parts, combine=_ramp_combine)
def measure_ramp_runs(cfg, device, part) -> S.RampRun:
    """The runs of ``elr.critical_lr``: full-batch GD of the MLP from the init of ``seed_index`` k at
    the rising LR ``eta_t = cfg.ramp_start * eta_c0 * cfg.ramp_rate^t`` (``eta_c0`` that init's critical LR)
    for ``cfg.ramp_steps`` steps, recording every layer's ELR before each update (one sweep point
    per init, combined into a list)."""
    st = _setting(cfg, device, int(part["seed_index"]))
    return S.ramp_mlp(st, float(cfg.ramp_start) * _eta_c(st.a0), float(cfg.ramp_rate), int(cfg.ramp_steps))


def _comparison(const: S.WarmupRun, warm: S.WarmupRun, lr: float, momentum: float, steps: int):
    # the model under heavy-ball momentum from a zero buffer, as the runs are (derivation.model_spread_trace)
    model_warm, _ = D.model_warmup_trace(const.a0, lr, steps, momentum)
    return S.WarmupComparison(lr=lr, momentum=momentum, spread_const=const.spread, spread_warm=warm.spread,
                              lr_warm=warm.lr, loss_const=const.loss, loss_warm=warm.loss,
                              model_const=D.model_spread_trace(const.a0, np.full(steps, lr), momentum),
                              model_warm=model_warm)


@CHAPTER.measurement
def measure_warmup_comparison(cfg, device) -> S.WarmupComparison:
    """The MLP trained by momentum SGD at the target LR ``cfg.warm_lr``, with and without ELRWarmup."""
    st = _setting(cfg, device)
    lr, mom, T = float(cfg.warm_lr), float(cfg.warm_momentum), int(cfg.warm_steps)
    const = S.run_mlp_module(st, lr, mom, T, warm=False)
    warm = S.run_mlp_module(st, lr, mom, T, warm=True)
    return _comparison(const, warm, lr, mom, T)


@CHAPTER.measurement
def measure_cnn_warmup(cfg, device) -> S.WarmupComparison:
    """The warm-up comparison on the small BatchNorm CNN on the 8x8 digit images: ``cfg.cnn_blocks``
    blocks of 3x3 convolution (no bias) -> BatchNorm2d -> ReLU with ``cfg.cnn_channels`` channels,
    global average pooling, frozen read-out; every kernel trained by momentum SGD at the target LR."""
    lr, mom, T = float(cfg.warm_lr), float(cfg.warm_momentum), int(cfg.warm_steps)
    runs = [S.run_cnn(cfg.cnn_channels, cfg.cnn_blocks, cfg.cnn_n, lr, mom, T, warm=w, device=device)
            for w in (False, True)]
    return _comparison(runs[0], runs[1], lr, mom, T)


def _net_parts(cfg):
    return [{"arch": a} for a in S.NET_ARCHS]


def _net_combine(cfg, values) -> dict:
    return {v.arch: v for v in values}


@CHAPTER.measurement(parts=_net_parts, combine=_net_combine)
def measure_net_ratios(cfg, device, part) -> S.RatioTrace:
    """A BatchNorm MLP, a LayerNorm MLP and a BatchNorm CNN on digits, each trained by full-batch
    GD at ``cfg.net_mult`` times its critical LR at init for ``cfg.net_steps`` steps (one sweep
    point per network, combined into ``{arch: RatioTrace}``)."""
    arch = part["arch"]
    if arch == "cnn":
        return S.run_net_ratio(arch, cfg.net_cnn_blocks, cfg.net_cnn_channels, cfg.net_cnn_n, cfg.net_mult,
                               cfg.net_steps, device=device)
    return S.run_net_ratio(arch, cfg.net_depth, cfg.net_width, cfg.net_n, cfg.net_mult, cfg.net_steps,
                           device=device)


def _deep_parts(cfg):
    return [{"seed_index": k, "warm": w} for k in range(cfg.deep_seeds) for w in (False, True)]


def _deep_combine(cfg, values) -> dict:
    """``{"const": [WarmupRun per seed], "warm": [...]}``."""
    parts = _deep_parts(cfg)
    out = {"const": [], "warm": []}
    for p, v in zip(parts, values):
        out["warm" if p["warm"] else "const"].append(v)
    return out


@CHAPTER.measurement(parts=_deep_parts, combine=_deep_combine)
def measure_deep_runs(cfg, device, part) -> S.WarmupRun:
    """The trainability experiment: the very deep BatchNorm MLP (``cfg.deep_depth`` layers) trained
    by momentum SGD (``cfg.warm_momentum``) at the large constant LR ``cfg.warm_lr`` for
    ``cfg.deep_steps`` steps, with and without ELRWarmup, at ``cfg.deep_seeds`` inits (one sweep
    point per seed and arm)."""
    st = S.mlp_setting(cfg.deep_depth, cfg.deep_width, cfg.deep_n, device=device,
                       seed_index=int(part["seed_index"]))
    return S.run_mlp_module(st, float(cfg.warm_lr), float(cfg.warm_momentum), int(cfg.deep_steps),
                            warm=bool(part["warm"]))
