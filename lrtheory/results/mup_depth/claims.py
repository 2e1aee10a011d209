"""The claims of chapter 03 (``mup_depth.*``): predictions from the derivation, measurements
from :mod:`~lrtheory.results.mup_depth.measurements`.

The claims concern the *first-order* one-step change, as the paper's analysis does.
"""
from __future__ import annotations

import math

from lrtheory.results.mup_depth import CHAPTER
from lrtheory.results.mup_depth import analysis as A
from lrtheory.results.mup_depth import derivation as D
from lrtheory.results.mup_depth.measurements import measure_transfer, measure_update_grid
from lrtheory.verify.claims import Tolerance

_PAPER = "Jelassi et al. 2023 (arXiv 2305.07810)"
#: Confidence multiplier of every Monte Carlo comparison (3 standard errors).
Z_MC = 3.0
#: Allowance for finite-width corrections (O(L/n)) to a log-log slope in n.
WIDTH_SLOPE_ALLOWANCE = 0.1
#: The readout claim uses the depths with L <= n_min / 16 (the output change has O(L/n) corrections).
READOUT_DEPTH_OVER_WIDTH = 1 / 16
#: Grid resolution allowance for the best-LR drift (1 octave over the 3-octave depth range).
TRANSFER_ALLOWANCE = 0.35


def _top_depths(cfg):
    """The depths run at the largest width (what the top-layer claims use)."""
    n = cfg.mc.widths[-1]
    return [L for L in cfg.mc.depths if cfg.mc.runs(n, L)]


# ----------------------------------------------------------------------------- update_formula
def _predict_update(cfg):
    return {f"L={L}": float(D.update_variance(L, y=cfg.mc.y)) for L in _top_depths(cfg)}


def _measure_update(cfg, device):
    g = measure_update_grid.of(cfg, device)
    m, se = g.mean_se()
    out = {}
    for j in g.run_depths():
        out[f"L={g.depths[j]}"] = float(m[-1, j])
        out[f"L={g.depths[j]}_se"] = float(se[-1, j])
    return out


CHAPTER.claim(
    "mup_depth.update_formula",
    statement=("The Monte Carlo mean over random mean-field initializations of the first-order one-step "
               "change E[(Delta z^{(L)})^2]/eta^2 of the top hidden layer matches the derived large-n "
               "value y^2 L (2 L^2 + 1)/6 at every depth."),
    source=("derived here: the exact constant y^2 L (2 L^2 + 1)/6 from the layer-wise Gaussian recursion "
            "(the paper's abstract gives the L^{-3/2} law; Chen, Wu, Wang, Hanin, ICLR 2024, restate its "
            "Theta(eta^2 L^3) growth)"),
    tolerance=Tolerance(Z_MC, "sigma", "3 Monte Carlo standard errors per depth (heavy-tailed over inits; "
                        "largest width, L <= n/8)"),
    predict=_predict_update,
    measure=_measure_update,
)


# ----------------------------------------------------------------------------- depth_exponent
def _predict_exponent(cfg):
    return {"exponent": D.grid_depth_exponent(_top_depths(cfg), tau=cfg.mc.tau, y=cfg.mc.y)}


def _measure_exponent(cfg, device):
    fit = A.top_layer_fit(measure_update_grid.of(cfg, device))
    return {"exponent": fit.exponent, "exponent_se": fit.se}


CHAPTER.claim(
    "mup_depth.depth_exponent",
    statement=("The measured maximal-update LR (first-order update of the top layer at the O(1) target) "
               "scales like L^p with the exponent of the derived eta*(L) on the same depth grid, which "
               "tends to -3/2 at large L."),
    source=_PAPER + ", abstract: eta* ~ L^{-3/2}; the finite-depth slope on this grid derived here",
    tolerance=Tolerance(Z_MC, "sigma", "3 bootstrap standard errors of the fitted slope (the networks of every "
                        "depth independent)"),
    predict=_predict_exponent,
    measure=_measure_exponent,
)


# ----------------------------------------------------------------------------- width_independence
def _predict_width(cfg):
    w0 = float(D.derive_max_update_lr().width_exponent)
    mc = cfg.mc
    return {f"L={L}": w0 for L in mc.depths if sum(mc.runs(n, L) for n in mc.widths) >= 2}


def _measure_width(cfg, device):
    slopes = A.width_slopes(measure_update_grid.of(cfg, device))
    out = {f"L={L}": v[0] for L, v in slopes.items()}
    out.update({f"L={L}_se": v[1] for L, v in slopes.items()})
    return out


def _compare_width(predicted, measured, tol):
    # |slope - 0| <= 3 s.e. + an allowance for finite width: a k-s.e. check plus an absolute
    # allowance, which no single Tolerance kind expresses.
    details, failed = {}, []
    for key, p in predicted.items():
        m, se = measured[key], measured[key + "_se"]
        limit = Z_MC * se + tol.value
        if not (math.isfinite(m - p) and abs(m - p) <= limit):
            failed.append(key)
        details[f"error[{key}]"] = m - p
        details[f"limit[{key}]"] = limit
    details["failed"] = failed
    return not failed, details


CHAPTER.claim(
    "mup_depth.width_independence",
    statement=("At every depth the measured maximal-update LR of the hidden layers does not depend on the "
               "width n: its log-log slope in n is 0."),
    source=_PAPER + ", abstract (independent of n for all but the first and last layer weights)",
    tolerance=Tolerance(WIDTH_SLOPE_ALLOWANCE, "custom", "|slope| <= 3 Monte Carlo standard errors + 0.1 for "
                        "O(L/n) finite-width corrections"),
    predict=_predict_width,
    measure=_measure_width,
    compare=_compare_width,
)


# ----------------------------------------------------------------------------- transfer
def _predict_transfer(cfg):
    # if the best LR tracks the maximal-update LR: flat with the scaling, L^{-3/2} without
    return {"scaled": 0.0, "unscaled": float(D.derive_max_update_lr().depth_exponent)}


def _measure_transfer(cfg, device):
    r = measure_transfer.of(cfg, device)
    return {"scaled": r.drift("scaled"), "unscaled": r.drift("unscaled"),
            "scaled_se": r.drift_se("scaled"), "unscaled_se": r.drift_se("unscaled")}


def _compare_transfer(predicted, measured, tol):
    # A joint condition: the scaled drift within the grid allowance of 0, AND the unscaled drift
    # below -allowance AND 3 standard errors apart from the scaled one. predicted["unscaled"] =
    # -3/2 is shown for reference: the readout, whose LR has no depth factor, also limits the
    # step, so the unscaled drift is weaker at small depth.
    s, u = measured["scaled"], measured["unscaled"]
    se = math.sqrt(measured["scaled_se"] ** 2 + measured["unscaled_se"] ** 2)
    stable = Tolerance(tol.value, "abs", tol.reason).passes(predicted["scaled"], s)
    drifts = math.isfinite(u) and u <= predicted["scaled"] - tol.value and (s - u) >= Z_MC * se
    return stable and drifts, {
        "scaled": {"error": s - predicted["scaled"], "limit": tol.value, "passed": stable},
        "unscaled": {"value": u, "limit": predicted["scaled"] - tol.value, "separation": s - u,
                     "separation_limit": Z_MC * se, "passed": drifts},
    }


CHAPTER.claim(
    "mup_depth.transfer",
    statement=("Training mean-field MLPs on digits, the best base LR is stable across depth when the "
               "first and hidden layers' LRs are scaled by (L/L0)^{-3/2}, and falls with depth without it."),
    source="our experiment: a practical consequence of eta* ~ L^{-3/2} (" + _PAPER + ", abstract)",
    tolerance=Tolerance(TRANSFER_ALLOWANCE, "custom", "mean per-seed drift of log best LR vs log L: scaled "
                        "within 0.35 of 0 (1 grid octave over 3 octaves of depth), unscaled below -0.35 and "
                        "3 standard errors apart"),
    predict=_predict_transfer,
    measure=_measure_transfer,
    compare=_compare_transfer,
)


# ----------------------------------------------------------------------------- readout_width
def _predict_readout(cfg):
    return {"slope_lr1": float(D.derive_output_update().width_exponent_plain), "slope_lr1/n": 0.0}


def _measure_readout(cfg, device):
    return A.readout_slopes(measure_update_grid.of(cfg, device), READOUT_DEPTH_OVER_WIDTH)


CHAPTER.claim(
    "mup_depth.readout_width",
    statement=("The readout needs an LR ~ 1/n: with LR multiplier 1 the output's first-order one-step "
               "change squared grows like n^2, with multiplier 1/n it is flat in n."),
    source=("derived here (the readout LR ~ 1/n of muP, Yang & Hu 2021); " + _PAPER
            + ", abstract, excludes the last layer from width independence"),
    tolerance=Tolerance(0.25, "abs", "log-log slope over widths 64..256 at depths L <= n_min/16: Monte "
                        "Carlo error plus O(L/n) finite-width corrections (||h||^2 has relative variance ~5L/n)"),
    predict=_predict_readout,
    measure=_measure_readout,
)
