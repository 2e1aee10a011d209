"""Chapter 05 claims: each prediction reads :mod:`derivation` only; each measurement a ``measure_*``.

Ids are stable (``balancing.scalar.convergence_edge``, ...). One-sided bounds use the
``"upper"``/``"lower"`` tolerance kinds; only the flattest-edge claim, which places two
measured grid points on either side of one predicted edge, keeps its own comparison.
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

from lrtheory.results.balancing import CHAPTER
from lrtheory.results.balancing import analysis as A
from lrtheory.results.balancing import derivation as D
from lrtheory.results.balancing import measurements as M
from lrtheory.results.balancing.simulate import matrix_top_eigenvalue
from lrtheory.verify.claims import Tolerance

__all__ = ["init_key"]

PAPER = "Wang, Chen, Zhao, Tao 2022 (arXiv 2110.03677)"


def init_key(x0: float, y0: float) -> str:
    """The name of a start in a claim's values: ``"(9,1)"``."""
    return f"({x0:g},{y0:g})"


# ----------------------------------------------------------------------------- imbalance recursion
def _measure_recursion(cfg, device) -> float:
    # round-off (~1e-15, its last digit set by the CPU's kernels) is reported at the config's floor
    err = M.measure_imbalance_recursion.of(cfg, device).max_error
    return float(max(err, cfg.recursion.floor)) if np.isfinite(err) else float(err)


CHAPTER.claim(
    "balancing.scalar.imbalance_recursion",
    statement="One GD step on (mu - x y)^2/2 multiplies the imbalance x^2 - y^2 exactly by "
              "1 - eta^2 (mu - x y)^2: the max normalized per-step deviation along torch GD runs is 0 "
              "(measured: the worst deviation, reported at a resolution floor of 1e-13).",
    source="derived here with sympy from the GD step (an identity of our algebra; paper: "
           f"{PAPER}, Sec. 3, studies the same imbalance)",
    tolerance=Tolerance(1e-12, "abs", "float64 round-off: each side is a few O(1) products with relative error "
                                      "~1e-16, normalized by x^2 + y^2; 1e-12 leaves a 1000x margin"),
    predict=lambda cfg: 0.0,
    measure=_measure_recursion,
)


# ----------------------------------------------------------------------------- convergence edge
def _predict_edge(cfg) -> Dict[str, float]:
    c = cfg.scalar
    return {init_key(x0, y0): D.h0L(x0, y0, c.mu) for x0, y0 in c.inits}


def _measure_edge(cfg, device) -> Dict[str, float]:
    sw = M.measure_scalar_sweep.of(cfg, device)
    return {init_key(*p): A.edge_with_extra_node(sw.eta_L, run.status, h0 * L, int(at.status[0]))
            for p, L, h0, run, at in zip(sw.inits, sw.L, sw.h0, sw.runs, sw.at_h0)}


CHAPTER.claim(
    "balancing.scalar.convergence_edge",
    statement="GD converges for every eta*L up to the paper's h0*L = 4L/(x0^2+y0^2+4mu) (well beyond 2), "
              "i.e. the measured edge of the convergent range lies at or above h0*L.",
    source=f"{PAPER}, Theorem 3.1 (a sufficient condition), in the setting of their scalar experiments (mu = 2)",
    tolerance=Tolerance(0.0, "lower", "one-sided: measured edge >= proved h0*L (the theorem is sufficient only; "
                                      "grid step 0.01 in eta*L, h0 run separately)"),
    predict=_predict_edge,
    measure=_measure_edge,
)


# ----------------------------------------------------------------------------- scalar balanced limit
def _predict_balanced(cfg) -> Dict[str, float]:
    c = cfg.scalar
    out = {init_key(x0, y0): float(D.rho_bound(D.paper_step_size(x0, y0, c.mu), c.mu)) for x0, y0 in c.inits}
    out["stab"] = D.stability_index_bound()
    return out


def _measure_balanced(cfg, device) -> Dict[str, float]:
    sw = M.measure_scalar_sweep.of(cfg, device)
    out, stab = {}, 0.0
    for p, run, at in zip(sw.inits, sw.runs, sw.at_h0):
        converged = int(at.status[0]) == A.EndState.CONVERGED
        out[init_key(*p)] = float(A.imbalance_ratio(at.x, at.y)[0]) if converged else float("inf")
        sel = (run.status == A.EndState.CONVERGED) & (sw.eta_L > 2.0)
        if sel.any():
            stab = max(stab, float(np.max(A.stability_index(run.eta[sel], run.x[sel] ** 2 + run.y[sel] ** 2))))
    out["stab"] = stab
    return out


CHAPTER.claim(
    "balancing.scalar.balanced_limit",
    statement="At eta = h0 the limit's ratio max(|x|,|y|)/min(|x|,|y|) obeys the stability bound "
              "mu(rho + 1/rho) <= 2/eta, and eta (x^2+y^2)/2 <= 1 at every converged eta*L > 2.",
    source=f"derived here from linear stability at the limit (paper: {PAPER}, Sec. 3, proves balancing "
           "with its own constants)",
    tolerance=Tolerance(1e-9, "upper", "upper bounds: measured <= bound + 1e-9, the slack covering "
                                       "round-off in the limit"),
    predict=_predict_balanced,
    measure=_measure_balanced,
)


# ----------------------------------------------------------------------------- flattest edge
def _predict_flattest(cfg) -> Dict[str, float]:
    edge = D.flattest_edge_eta_mu()
    return {"last_converged": edge, "first_period2": edge}


def _measure_flattest(cfg, device) -> Dict[str, float]:
    sw = M.measure_orbit_sweep.of(cfg, device)
    st, per = sw.run.status, sw.run.period
    conv = sw.eta_mu[st == A.EndState.CONVERGED]
    p2 = sw.eta_mu[(st == A.EndState.PERIODIC) & (per == 2)]
    return {"last_converged": float(conv.max()) if conv.size else float("nan"),
            "first_period2": float(p2.min()) if p2.size else float("nan")}


#: The flattest edge from both sides: the last converged step lies in [edge - w, edge], the first
#: period-2 orbit in [edge, edge + w] (each is a one-sided bound on each side).
_SIDES = {"last_converged": (Tolerance(0.0, "upper", "at or below the edge"), "lower"),
          "first_period2": (Tolerance(0.0, "lower", "at or above the edge"), "upper")}


def _compare_flattest(predicted, measured, tol: Tolerance) -> Tuple[bool, dict]:
    details, ok = {}, True
    for key, (side, within) in _SIDES.items():
        p, m = predicted[key], measured[key]
        good = side.passes(p, m) and Tolerance(tol.value, within, tol.reason).passes(p, m)
        details[key] = {"edge": p, "measured": m, "passed": good}
        ok &= good
    return ok, details


CHAPTER.claim(
    "balancing.scalar.flattest_edge",
    statement="No minimum is stable beyond eta = 1/mu (flattest minimum, sharpness 2 mu): from a near-balanced "
              "start GD converges up to eta*mu = 1 and lands on a period-2 orbit just beyond it.",
    source=f"derived here with sympy (the flattest minimum and its stability edge; paper: {PAPER}, Sec. 3, "
           "on flat minima and periodic orbits)",
    tolerance=Tolerance(0.02, "custom", "two CI grid steps of 0.01 in eta*mu: converged in [1 - 0.02, 1], "
                                        "first period-2 orbit in [1, 1 + 0.02] "
                                        "(convergence at eta*mu = 1 is marginal)"),
    predict=_predict_flattest,
    measure=_measure_flattest,
    compare=_compare_flattest,
)


# ----------------------------------------------------------------------------- matrix balanced limit
def _ratio_key(cfg) -> str:
    return f"ratio@{cfg.matrix.report_eta_L:g}/L"


def _predict_matrix(cfg) -> Dict[str, float]:
    c = cfg.matrix
    A_, X0, Y0 = M.matrix_problem(cfg)
    L = matrix_top_eigenvalue(A_, X0, Y0)  # of the problem instance: the setting, not a GD run
    nuc = float(np.linalg.norm(A_, "nuc"))
    return {_ratio_key(cfg): float(D.q_bound(c.report_eta_L / L, nuc, c.rank)), "stab": D.stability_index_bound()}


def _measure_matrix(cfg, device) -> Dict[str, float]:
    sw = M.measure_matrix_sweep.of(cfg, device)
    run = sw.run
    i = int(np.argmin(np.abs(sw.eta_L - cfg.matrix.report_eta_L)))
    r = float(run.norm_ratio[i])
    q = max(r, 1 / r) if run.status[i] == A.EndState.CONVERGED else float("inf")
    sel = (run.status == A.EndState.CONVERGED) & (sw.eta_L > 2.0)
    stab = float(np.max(A.stability_index(run.eta[sel], run.lam_gram[sel]))) if sel.any() else float("inf")
    return {_ratio_key(cfg): q, "stab": stab}


CHAPTER.claim(
    "balancing.matrix.balanced_limit",
    statement="Matrix case (A of rank >= 2, start ||X||/||Y|| = 20): at a large step (eta L = 3 at CI scale) "
              "the limit's ||X||_F/||Y||_F obeys the stability bound, and eta lambda_max(X'X+Y'Y)/2 <= 1 "
              "at every converged eta*L > 2.",
    source="derived here from linear stability at the limit and ||A||_* <= ||X||_F ||Y||_F (paper: "
           f"{PAPER}, Sec. 4, matrix factorization, with its own constants)",
    tolerance=Tolerance(1e-9, "upper", "upper bounds: measured <= bound + 1e-9, the slack covering "
                                       "round-off in the limit"),
    predict=_predict_matrix,
    measure=_measure_matrix,
)
