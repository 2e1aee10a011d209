"""Chapter 04 claims: the model's predictions against measured normalized networks.

``predict`` reads the derivation only, started from the networks' ELRs at init (the state before
any training step, read from the measurement's record of it), except ``elr.norm_law``, whose
prediction feeds the model's norm law with the layers' gradient scales ``c_l(t) = ||g|| ||W||`` as the
run recorded them (the model's one input it cannot predict; the ELRs it predicts are not read), and
``elr.critical_lr``, whose prediction is the model's critical-LR test applied to the ELRs each run
recorded before each step (the "current ELRs" of the paper's statement; the spreads those steps led to,
which the measurement reads, are not read); ``measure`` reads what the trained networks did. No claim simulates the model that produced its
prediction (the model's own recursions are unit tests: ``tests/test_elr_derivation.py``,
``tests/test_elr_simulate.py``).

Sources are honest about what could be read: only the abstract of Mehmeti-Gopel & Wand
(ICML 2024, arXiv 2306.00700). It states, qualitatively, that ELR ratios converge to 1 under a
constant LR, that a critical LR set by the current ELRs exists beyond which disparities widen,
that a hyper-parameter-free warm-up reduces the spread, and that experiments link the spread
with trainability in very deep networks. The definitions, formulas, constants and the warm-up
rule checked here are derived in this chapter.

Every relative tolerance is below 1/3 (0.3 or tighter): then every measurement that passes fails with
the prediction doubled or halved. (A passing ``m`` lies within ``(1 +- tau) p``, so
``|m - 2p| >= (1 - tau) p > 2 tau p`` and ``|m - p/2| >= (1/2 - tau) p > tau p / 2`` exactly when
``tau < 1/3``; the earlier ``rel 0.4`` let ``elr.warmup_lasting`` pass with its prediction doubled.)
``elr.critical_lr`` compares steps, with an absolute tolerance of 1.5 steps.

Why the ratios do not converge (the diagnosis behind ``elr.ratio_converges``): the model's norm law
holds in the real networks to a few per cent once each layer's measured ``c_l(t)`` is used
(``elr.norm_law``), and then ``E_l(t) -> c_l(t) / sqrt(2 sum_s c_l(s)^2)``: the ratios tend to 1 only
if the layers' gradient scales keep fixed ratios. Measured, they move apart by factors 3 to 14 over
the run (``RatioTrace.c_drift``), from the first step on, so the spread follows the drift. A
diagnostic run (not stored) found the same after a transient: after 10 to 200 steps at
``0.3 eta_c``, one step of the depth-32 MLP at its current ``eta_c`` changes the layers' ``c`` by
factors 1.7 to 76, more than from init (0.13 to 1.3), so ``elr.critical_lr`` does not hold later in
training either.

Audit (before the verdicts were published): every tracked tensor is a bias-free weight followed by a
normalization (tested); ELR, time unit, read-out and windows are the same on both sides of each claim.
The warm-up claims' model ran momentum at its steady-state gain from the first step, while the runs
start from a zero buffer; it now runs the heavy-ball buffer from zero (derivation.model_spread_trace),
and ELRWarmup now counts the gain from a zero buffer too (derivation.model_warmup_trace).
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from lrtheory.results.elr import CHAPTER
from lrtheory.results.elr import analysis as A
from lrtheory.results.elr import derivation as D
from lrtheory.results.elr import measurements as M
from lrtheory.verify.claims import Tolerance

__all__ = ["ratio_converges", "norm_law", "critical_lr", "warmup_reduces_spread", "warmup_lasting",
           "deep_trainability"]

_PAPER = "Mehmeti-Gopel & Wand 2024 (arXiv 2306.00700), abstract"
_FACTOR2 = "; a factor-2 error of the prediction fails either way"


def _ratio_times(cfg):
    return cfg.net_steps // 4, cfg.net_steps


# elr.ratio_converges ----------------------------------------------------------


def _ratio_predict(cfg) -> Dict[str, float]:
    nets = M.measure_net_ratios.of(cfg)
    return {a: D.ratio_exponent_prediction(tr.a0, tr.eta, _ratio_times(cfg)) for a, tr in nets.items()}


def _ratio_measure(cfg, device) -> Dict[str, float]:
    nets = M.measure_net_ratios.of(cfg, device)
    return {a: A.log_spread_exponent(tr.spread, _ratio_times(cfg)) for a, tr in nets.items()}


ratio_converges = CHAPTER.claim(
    "elr.ratio_converges",
    statement="In a BatchNorm MLP, a LayerNorm MLP and a BatchNorm CNN trained by full-batch GD at a constant LR "
              "(0.3 times the critical LR at init) the log of the layer-wise ELR spread max E_l / min E_l decays "
              "like t^p with the exponent p of the model's closed form E_l(t) = E_l0/sqrt(1 + 2 E_l0^2 t) "
              "started from the measured ELRs at init (value: p between T/4 and T, per network; ELR = "
              "eta ||grad|| / ||W||).",
    source="derived here (ELR = relative step, gradient-flow solution with each layer's gradient scale fixed); "
           "paper: " + _PAPER + " (ELR ratios converge to 1 under any constant LR)",
    tolerance=Tolerance(0.3, "rel", "the exponent of a two-point read-out of a noisy trace (windowed means) "
                                    "scatters by about 0.1 in the model's own simulation" + _FACTOR2
                                    + "; a spread that does not fall has no exponent (NaN) and fails"),
    predict=_ratio_predict,
    measure=_ratio_measure,
    # not reproduced at either scale: the model's premise, each layer's gradient scale c fixed, fails (the
    # layers' c move apart by x3-x14 over the run: RatioTrace.c_drift); elr.norm_law shows the rest of the
    # model holds. The chapter reports it so.
    expect="fail",
)


# elr.norm_law -----------------------------------------------------------------


def _end_spread(E, last: int) -> float:
    return float(np.exp(A.end_log_spread(A.spread(E, axis=-1), last)))


def _norm_predict(cfg) -> Dict[str, float]:
    # the model's norm law fed with each layer's measured gradient scale c_l(t) and its norm at init
    last = cfg.net_steps // 20
    out = {}
    for a, tr in M.measure_net_ratios.of(cfg).items():
        out[a] = _end_spread(D.flow_elrs(tr.c, tr.c[0] / tr.a0, tr.eta), last)
    return out


def _norm_measure(cfg, device) -> Dict[str, float]:
    last = cfg.net_steps // 20
    return {a: float(np.exp(A.end_log_spread(tr.spread, last))) for a, tr in M.measure_net_ratios.of(cfg, device).items()}


norm_law = CHAPTER.claim(
    "elr.norm_law",
    statement="In the same three networks the ELRs follow the model's norm law once each layer's gradient scale "
              "c_l(t) = ||grad|| ||W|| is taken as measured instead of fixed: S_l(t)^2 = S_l0^2 + 2 eta^2 "
              "sum_{s<t} c_l(s)^2 and E_l = eta c_l / S_l give the ELR spread at the end of training (value: "
              "max/min ELR, geometric mean over the last T/20 steps, per network).",
    source="derived here (gradient-flow limit of the norm recursion, d(S^2)/dt = 2 eta^2 c^2, with a time-varying "
           "c); paper: " + _PAPER + " (a model of the expected weight and gradient norms of normalized layers)",
    tolerance=Tolerance(0.15, "rel", "the gradient-flow limit undercounts one step's norm growth by up to 15% at "
                                     "ELR 1, the largest ELR at init here" + _FACTOR2),
    predict=_norm_predict,
    measure=_norm_measure,
)


# elr.critical_lr --------------------------------------------------------------


def _finite_rows(run):
    ok = np.all(np.isfinite(run.a), axis=1) & np.all(run.a > 0, axis=1)
    n = int(np.argmin(ok)) if not ok.all() else len(ok)  # the steps before a diverged one
    return run.etas[:n], run.a[:n]


def _critical_predict(cfg) -> float:
    # the model's onset from the ELRs each run recorded before each step (not the spreads they led to); a
    # run that never reaches its critical LR counts as widening at the step after its last, a lower bound
    # (it moves the prediction towards the measured onsets, which come earlier)
    steps = []
    for r in M.measure_ramp_runs.of(cfg):
        etas, a = _finite_rows(r)
        t = D.critical_crossing_step(etas, a)
        steps.append(float(len(r.etas)) if np.isnan(t) else t)
    return float(np.mean(steps))


def _critical_measure(cfg, device) -> float:
    return float(np.mean([A.widening_onset_step(r.spread) for r in M.measure_ramp_runs.of(cfg, device)]))


critical_lr = CHAPTER.claim(
    "elr.critical_lr",
    statement="In a deep BatchNorm MLP trained by full-batch GD at a rising LR (from eta_c/16 at init, doubling "
              "every two steps) the ELR spread starts to widen at the first step whose LR reaches the critical "
              "LR 1/sqrt(a_max a_min) of that step's current ELRs (value: the onset step, mean over the "
              "initializations; measured: the step of the smallest spread so far when the spread first "
              "doubles it).",
    source="derived here (critical LR of the model, eta_c = 1/sqrt(a_l a_k), applied to the current ELRs of the "
           "run); paper: " + _PAPER + " (a critical LR that depends only on the current ELRs, beyond which "
           "disparities widen)",
    tolerance=Tolerance(1.5, "abs", "the onset is read to one step (a factor 1.41 of the LR) and the mean over "
                                    "the inits scatters by about half a step; a critical LR off by a factor 2 "
                                    "moves the onset by two steps, and a predicted step doubled or halved "
                                    "(onsets of 5 steps or more) fails"),
    predict=_critical_predict,
    measure=_critical_measure,
    # not reproduced at either scale: widening starts at step 5.25 (CI) / 8.25 (reference), when the LR is
    # 0.07-0.24 of the current critical LR; the current ELRs reach their critical LR only at step 20.75 /
    # 27.0 (one reference init never within its 48 steps, counted as 49), after the spread has widened.
    # (The model itself, each layer's c fixed, never reaches it on this ramp: E -> r E / (1 + E^2) settles
    # at sqrt(r - 1) = 0.64 < 1.) The chapter reports it so.
    expect="fail",
)


# elr.warmup_reduces_spread ----------------------------------------------------


def _warm_predict(cfg) -> float:
    # the model, started from the MLP's ELRs at init (no training run enters the prediction)
    return D.warmup_gap_prediction(M.measure_init_elrs.of(cfg)[0], cfg.warm_lr, cfg.warm_momentum, cfg.warm_steps)


def _warm_measure(cfg, device) -> float:
    w = M.measure_warmup_comparison.of(cfg, device)
    return A.mean_log_spread(w.spread_const) - A.mean_log_spread(w.spread_warm)


warmup_reduces_spread = CHAPTER.claim(
    "elr.warmup_reduces_spread",
    statement="Over the first steps of momentum SGD at a large target LR, ELRWarmup lowers the mean log ELR "
              "spread of a deep BatchNorm MLP by what the model predicts from the ELRs at init, the model run "
              "with the same heavy-ball momentum from a zero buffer (value: mean over steps 1..T of log spread, "
              "constant LR minus warm-up).",
    source="derived here (warm-up at the critical LR of the extreme layers; momentum as a heavy-ball buffer of "
           "aligned gradients from zero, whose limit is the gain 1/(1-beta) the warm-up's rule uses); "
           "paper: " + _PAPER + " (a hyper-parameter-free warm-up that reduces the ELR spread; its rule not read)",
    tolerance=Tolerance(0.3, "rel", "the measured log spread jitters from step to step by about 0.3, averaged "
                                    "over T steps" + _FACTOR2),
    predict=_warm_predict,
    measure=_warm_measure,
    # not reproduced at either scale (CI: -0.37 against 0.27; reference: -1.41 against 0.78): the warm-up's
    # first step, at the critical LR, cuts the spread tenfold (190 -> 19.5 at the reference scale), then it
    # hands over to the target LR at step 2 and the layers' gradient scales jump: the spread rises above the
    # constant-LR run's. (With the earlier rule, whose first steps ran 10x below its own critical LR because
    # it counted momentum's steady-state gain from step 0, the gap was 1.43 at CI and 0.73 at the reference
    # scale: a slower ramp, not the critical LR, lowered the spread.) The chapter reports it so.
    expect="fail",
)


# elr.warmup_lasting -----------------------------------------------------------


def _deep(cfg, device=None):
    return M.measure_deep_runs.of(cfg, device) if device is not None else M.measure_deep_runs.of(cfg)


def _lasting_predict(cfg) -> float:
    runs = _deep(cfg)["const"]  # their a0: the ELRs at init, before any step
    preds = [D.lasting_prediction(r.a0, cfg.warm_lr, cfg.warm_momentum, cfg.deep_steps, cfg.deep_last) for r in runs]
    return float(np.exp(np.mean(np.log(preds))))


def _lasting_measure(cfg, device) -> float:
    d = _deep(cfg, device)
    gaps = [A.end_log_spread(c.spread, cfg.deep_last) - A.end_log_spread(w.spread, cfg.deep_last)
            for c, w in zip(d["const"], d["warm"])]
    return float(np.exp(np.mean(gaps)))


warmup_lasting = CHAPTER.claim(
    "elr.warmup_lasting",
    statement="The warm-up's effect on the spread at the end of training: the ratio of the ELR spreads of the "
              "very deep BatchNorm MLP at the end of momentum SGD at the target LR, constant LR over ELRWarmup, "
              "is what the model predicts from the ELRs at init (value: geometric mean over seeds of the ratio "
              "of the spreads averaged over the last steps).",
    source="derived here (the model's constant-LR and warm-up traces under heavy-ball momentum from a zero "
           "buffer); paper: "
           + _PAPER + " (the warm-up reduces the spread; nothing said on how long)",
    tolerance=Tolerance(0.25, "rel", "the geometric mean over the seeds of the ratio of end spreads scatters by "
                                     "about 10% (CI: the log ratios of the two seeds are 0.23 and 0.35)"
                                     + _FACTOR2 + " (any rel tolerance below 1/3 makes a passing value fail "
                                     "with its prediction doubled or halved)"),
    predict=_lasting_predict,
    measure=_lasting_measure,
    # not reproduced at either scale. CI (16 layers, 2 seeds): 1.33 against 1.02, 31% off (with the earlier
    # rel 0.4 it passed, and passed with its prediction doubled too); reference (32 layers, 6 seeds): the
    # warm-up's end spread is 4.3x larger than without it (ratio 0.23 against 1.25). The chapter says so.
    expect="fail",
)


# elr.deep_trainability --------------------------------------------------------


def _train_measure(cfg, device) -> float:
    d = _deep(cfg, device)
    return float(np.mean([r.acc for r in d["warm"]]) / np.mean([r.acc for r in d["const"]]))


deep_trainability = CHAPTER.claim(
    "elr.deep_trainability",
    statement="At a large constant LR with momentum the very deep BatchNorm MLP reaches the same training "
              "accuracy with and without ELRWarmup, the warm-up handing over to the target LR within its first "
              "10 steps (value: mean final training accuracy over seeds, warm-up over constant LR).",
    source="derived here (the model forgets the initial ELRs, so the warm-up changes nothing lasting); paper: "
           + _PAPER + " (ELR spread linked with trainability, most evident in very deep networks)",
    tolerance=Tolerance(0.3, "rel", "the mean accuracy over the seeds scatters by about 15% between seed sets"
                                    + _FACTOR2),
    predict=lambda cfg: D.TRAINABILITY_PREDICTION,
    measure=_train_measure,
    # CI (16 layers, 60 steps): 0.81, a pass; reference (32 layers, 200 steps, 6 seeds): the constant LR
    # trains (accuracy 0.54-0.82, mean 0.67), the warm-up's arm hardly (0.10-0.33, mean 0.22), ratio 0.33.
    # (An earlier reference run at 64 layers trained in neither arm: 0.20 against 0.13.) The chapter says so.
    expect={"ci": "pass", "reference": "fail"},
)
