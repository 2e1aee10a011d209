"""Tests of lrtheory.results.balancing (Wang, Chen, Zhao, Tao 2022): derivations, batched GD, claims."""
from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch

from lrtheory.claims import select
from lrtheory.results import balancing as bal

CLAIM_IDS = [
    "balancing.scalar.imbalance_recursion",
    "balancing.scalar.convergence_edge",
    "balancing.scalar.balanced_limit",
    "balancing.scalar.flattest_edge",
    "balancing.matrix.balanced_limit",
]


def _claim(cid):
    (c,) = [c for c in select(["balancing"]) if c.id == cid]
    return c


def _clear_caches():
    for f in (bal._scalar_batch, bal._matrix_sweep, bal._recursion_check):
        f.cache_clear()


# ---------------------------------------------------------------- symbolic ----------

def test_scalar_gradient_matches_autograd():
    # exact up to round-off (1e-12 relative): both are the same polynomial evaluated in float64
    s = bal.symbols()
    gx, gy = bal.derive_scalar_gd()["grad"]
    fx = sp.lambdify((s["x"], s["y"], s["mu"]), gx)
    fy = sp.lambdify((s["x"], s["y"], s["mu"]), gy)
    z = torch.tensor([1.7, -0.3], dtype=torch.float64, requires_grad=True)
    f = 0.5 * (2.0 - z[0] * z[1]) ** 2
    g = torch.autograd.grad(f, z)[0]
    assert math.isclose(fx(1.7, -0.3, 2.0), g[0].item(), rel_tol=1e-12)
    assert math.isclose(fy(1.7, -0.3, 2.0), g[1].item(), rel_tol=1e-12)


@pytest.mark.parametrize("x0,y0,mu", [(9.0, 1.0, 2.0), (19.0, 1.0, 2.0), (0.3, -2.0, 1.5)])
def test_top_eigenvalue_closed_form_matches_dense_hessian(x0, y0, mu):
    # sympy closed form vs torch eigvalsh of the dense Hessian: 1e-10 relative (round-off in sqrt)
    s = bal.symbols()
    L = sp.lambdify((s["x"], s["y"], s["mu"]), bal.derive_scalar_hessian()["L"])(x0, y0, mu)
    assert math.isclose(L, bal.scalar_top_eigenvalue(x0, y0, mu), rel_tol=1e-10)


def test_imbalance_recursion_is_exact_and_has_the_expected_form():
    d = bal.derive_imbalance_recursion()
    s = bal.symbols()
    assert d["remainder"] == 0
    # the derived factor in terms of the residual r is 1 - eta^2 r^2 (exact symbolic identity)
    assert sp.expand(d["factor_r"] - (1 - s["eta"] ** 2 * s["r"] ** 2)) == 0


def test_minimum_hessian_and_flattest_minimum():
    s = bal.symbols()
    mh = bal.derive_minimum_hessian()
    assert sp.simplify(mh["top"] - (s["x"] ** 2 + s["y"] ** 2)) == 0
    assert sp.simplify(mh["eta_max"] - 2 / (s["x"] ** 2 + s["y"] ** 2)) == 0
    fm = bal.derive_flattest_minimum()
    assert sp.simplify(fm["sharpness"] - 2 * s["mu"]) == 0
    assert sp.simplify(fm["eta_max"] - 1 / s["mu"]) == 0


def test_paper_range_tends_to_four_over_L():
    d = bal.derive_convergence_range()
    assert d["h0L_limit"] == 4
    s = bal.symbols()
    val = float(d["h0L"].subs({s["x0"]: 9, s["y0"]: 1, s["mu"]: 2}))
    assert 2 < val < 4  # beyond the classical 2/L, below 4/L


def test_balancing_bound_solves_the_stability_edge():
    s = bal.symbols()
    rb = bal.derive_balancing_bound()["rho_bound"]
    for eta, mu in [(0.1, 2.0), (0.3, 1.0), (0.01, 5.0)]:
        rho = float(rb.subs({s["eta"]: eta, s["mu"]: mu}))
        # on the edge: mu (rho + 1/rho) = 2/eta, to 1e-12 relative
        assert math.isclose(mu * (rho + 1 / rho), 2 / eta, rel_tol=1e-12)
        assert rho >= 1


def test_matrix_gradient_and_imbalance_recursion():
    assert bal.derive_matrix_gd(2, 3, 2)["matches"]
    inc = bal.derive_matrix_imbalance_recursion()["increment"]
    sy = bal.derive_matrix_imbalance_recursion()["symbols"]
    eta = bal.symbols()["eta"]
    expected = eta ** 2 * (sy["Yt"] * sy["Rt"] * sy["R"] * sy["Y"] - sy["Xt"] * sy["R"] * sy["Rt"] * sy["X"])
    assert sp.expand(inc - expected) == 0
    # numeric check of the same identity on random matrices (float64 round-off: 1e-10 absolute)
    A, X, Y = bal.make_matrix_problem(4, 3, 2, seed=3)
    h = 0.07
    R = A - X @ Y.T
    Xn, Yn = X + h * R @ Y, Y + h * R.T @ X
    lhs = Xn.T @ Xn - Yn.T @ Yn
    rhs = X.T @ X - Y.T @ Y + h ** 2 * (Y.T @ R.T @ R @ Y - X.T @ R @ R.T @ X)
    assert np.abs(lhs - rhs).max() < 1e-10


def test_matrix_hessian_lower_bound_at_a_minimum():
    # at a global minimum, lambda_max(Hessian) >= lambda_max(X^T X + Y^T Y) (used by the matrix bound)
    rng = np.random.default_rng(0)
    for _ in range(5):
        X, Y = rng.normal(size=(4, 2)) * 2, rng.normal(size=(3, 2)) * 0.5
        A = X @ Y.T
        lam_h = bal.matrix_top_eigenvalue(A, X, Y)
        lam_g = np.linalg.eigvalsh(X.T @ X + Y.T @ Y)[-1]
        assert lam_h >= lam_g * (1 - 1e-12)


# ---------------------------------------------------------------- numeric -----------

def test_scalar_gd_matches_autograd_step():
    run = bal.scalar_gd(3.0, 0.5, [0.01, 0.02], mu=2.0, steps=1, record=True, device="cpu")
    for k, eta in enumerate([0.01, 0.02]):
        z = torch.tensor([3.0, 0.5], dtype=torch.float64, requires_grad=True)
        g = torch.autograd.grad(0.5 * (2.0 - z[0] * z[1]) ** 2, z)[0]
        z1 = (z - eta * g).detach()
        assert abs(run.x[k] - z1[0].item()) < 1e-14 and abs(run.y[k] - z1[1].item()) < 1e-14


def test_divergence_is_frozen_and_does_not_leak():
    run = bal.scalar_gd(9.0, 1.0, [0.01, 10.0], mu=2.0, steps=200, device="cpu")
    assert run.status.tolist() == [bal.CONVERGED, bal.DIVERGED]
    assert np.all(np.isfinite(run.x)) and np.all(np.isfinite(run.y)) and np.all(np.isfinite(run.loss))
    assert run.diverged_at[1] > 0 and run.diverged_at[0] == -1
    alone = bal.scalar_gd(9.0, 1.0, [0.01], mu=2.0, steps=200, device="cpu")
    assert alone.x[0] == run.x[0] and alone.y[0] == run.y[0]  # bitwise: runs do not interact


def test_periodic_orbits_are_classified_not_converged():
    mu = 2.0
    x0, y0 = 1.2 * math.sqrt(mu), 0.8 * math.sqrt(mu)
    run = bal.scalar_gd(x0, y0, np.array([0.9, 1.1, 1.26]) / mu, mu=mu, steps=6000, device="cpu")
    assert run.status.tolist() == [bal.CONVERGED, 2, 4]
    # the period-2 orbit straddles the minimum manifold: x y != mu on it
    assert run.loss[1] > 1e-6


def test_matrix_gd_balances_and_freezes():
    A, X0, Y0 = bal.make_matrix_problem(seed=0)
    L = bal.matrix_top_eigenvalue(A, X0, Y0)
    run = bal.matrix_gd(A, X0, Y0, np.array([1.5, 3.0, 8.0]) / L, steps=6000, device="cpu")
    assert run.status.tolist() == [bal.CONVERGED, bal.CONVERGED, bal.DIVERGED]
    assert np.all(np.isfinite(run.X)) and np.all(np.isfinite(run.Y))
    D0 = np.linalg.norm(X0.T @ X0 - Y0.T @ Y0)
    # a small step nearly conserves X^T X - Y^T Y (as gradient flow does); a large one removes most of it
    assert run.imbalance[0] > 0.9 * D0 and run.imbalance[1] < 0.5 * D0
    assert max(run.norm_ratio[1], 1 / run.norm_ratio[1]) < 0.5 * run.norm_ratio[0]


def test_convergence_edge_helper():
    g = np.array([1.0, 2.0, 3.0, 4.0])
    assert bal.convergence_edge(g, [1, 1, -1, 1]) == 2.0
    assert bal.convergence_edge(g, [1, 1, 1, 1]) == 4.0
    assert math.isnan(bal.convergence_edge(g, [2, 1, 1, 1]))
    with pytest.raises(ValueError, match="status"):
        bal.convergence_edge(g, [1, 1])
    with pytest.raises(ValueError, match="eta_L"):
        bal.convergence_edge([2.0, 1.0], [1, 1])


# ---------------------------------------------------------------- bad input ---------

@pytest.mark.parametrize("eta", [0.0, -0.1, float("nan"), float("inf"), [0.1, -1.0]])
def test_bad_eta_raises(eta):
    with pytest.raises(ValueError, match="eta"):
        bal.scalar_gd(1.0, 1.0, eta, device="cpu")
    with pytest.raises(ValueError, match="eta"):
        bal.matrix_gd(np.eye(2), np.eye(2), np.eye(2), eta, device="cpu")


def test_bad_scalar_input_raises():
    with pytest.raises(ValueError, match="x0"):
        bal.scalar_gd(float("nan"), 1.0, 0.1, device="cpu")
    with pytest.raises(ValueError, match="y0"):
        bal.scalar_gd(1.0, [1.0, float("inf")], 0.1, device="cpu")
    with pytest.raises(ValueError, match="mu"):
        bal.scalar_gd(1.0, 1.0, 0.1, mu=0.0, device="cpu")
    with pytest.raises(ValueError, match="steps"):
        bal.scalar_gd(1.0, 1.0, 0.1, steps=0, device="cpu")
    with pytest.raises(ValueError, match="x0, y0, eta"):
        bal.scalar_gd([1.0, 2.0], 1.0, [0.1, 0.2, 0.3], device="cpu")


def test_bad_matrix_input_raises():
    A = np.ones((4, 3))
    with pytest.raises(ValueError, match="X0"):
        bal.matrix_gd(A, np.ones((3, 2)), np.ones((3, 2)), 0.1, device="cpu")
    with pytest.raises(ValueError, match="Y0"):
        bal.matrix_gd(A, np.ones((4, 2)), np.ones((4, 2)), 0.1, device="cpu")
    with pytest.raises(ValueError, match="Y0"):
        bal.matrix_gd(A, np.ones((4, 2)), np.ones((3, 3)), 0.1, device="cpu")
    with pytest.raises(ValueError, match="A"):
        bal.matrix_gd(np.ones(4), np.ones((4, 2)), np.ones((3, 2)), 0.1, device="cpu")
    bad = A.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="A"):
        bal.matrix_gd(bad, np.ones((4, 2)), np.ones((3, 2)), 0.1, device="cpu")
    with pytest.raises(ValueError, match="rank"):
        bal.make_matrix_problem(2, 2, 3, singular_values=(1.0, 1.0, 1.0))


def test_unknown_scale_raises():
    with pytest.raises(ValueError, match="scale"):
        bal.measure_scalar_sweep("huge", "cpu")


# ---------------------------------------------------------------- determinism -------

def test_same_seed_same_result():
    a = bal.make_matrix_problem(seed=5)
    b = bal.make_matrix_problem(seed=5)
    c = bal.make_matrix_problem(seed=6)
    for u, v in zip(a, b):
        assert np.array_equal(u, v)
    assert not np.array_equal(a[0], c[0])
    r1 = bal.matrix_gd(*a, [0.01, 0.05], steps=300, device="cpu")
    r2 = bal.matrix_gd(*b, [0.01, 0.05], steps=300, device="cpu")
    # batched matmuls go through BLAS, whose kernel choice may depend on memory alignment:
    # equal to 1e-12 relative (observed: equal or within a few ulp); elementwise scalar GD is bitwise equal
    assert np.allclose(r1.X, r2.X, rtol=1e-12, atol=0) and np.allclose(r1.Y, r2.Y, rtol=1e-12, atol=0)
    s1 = bal.scalar_gd(9.0, 1.0, [0.01, 0.03], steps=500, device="cpu")
    s2 = bal.scalar_gd(9.0, 1.0, [0.01, 0.03], steps=500, device="cpu")
    assert np.array_equal(s1.x, s2.x) and np.array_equal(s1.y, s2.y)


# ---------------------------------------------------------------- claims ------------

def test_all_claims_registered():
    assert sorted(c.id for c in select(["balancing"])) == sorted(CLAIM_IDS)


@pytest.mark.parametrize("cid", CLAIM_IDS)
def test_claim_passes_at_ci_scale(cid):
    v = _claim(cid).check("ci", "cpu")
    assert v.passed, v.details


def test_recursion_claim_fails_with_wrong_sign(monkeypatch):
    s = bal.symbols()
    wrong = dict(bal.derive_imbalance_recursion())
    wrong["factor"] = 1 + s["eta"] ** 2 * (s["mu"] - s["x"] * s["y"]) ** 2  # sign flipped
    monkeypatch.setattr(bal, "derive_imbalance_recursion", lambda: wrong)
    bal._recursion_check.cache_clear()
    try:
        v = _claim("balancing.scalar.imbalance_recursion").check("ci", "cpu")
    finally:
        bal._recursion_check.cache_clear()
    assert not v.passed
    assert v.measured > 1e-3


def test_edge_claim_fails_when_predicted_edge_is_moved(monkeypatch):
    orig = bal.paper_step_size
    monkeypatch.setattr(bal, "paper_step_size", lambda x0, y0, mu: 1.05 * orig(x0, y0, mu))
    v = _claim("balancing.scalar.convergence_edge").check("ci", "cpu")
    assert not v.passed


def test_balanced_limit_claim_fails_with_a_wrong_stability_constant():
    c = _claim("balancing.scalar.balanced_limit")
    pred, meas = c.predict("ci"), c.measure("ci", torch.device("cpu"))
    # a stability edge eta * lambda = 1 instead of 2 halves c = 2/(eta mu): the bound drops below the data
    s = bal.symbols()
    rb = sp.lambdify((s["eta"], s["mu"]), bal.derive_balancing_bound()["rho_bound"].subs(s["eta"], 2 * s["eta"]))
    wrong = {k: (float(rb(bal.paper_step_size(*eval(k), bal.PAPER_MU), bal.PAPER_MU)) if k != "stab" else 0.5)
             for k in pred}
    assert c.compare(pred, meas, c.tolerance)[0]
    assert not c.compare(wrong, meas, c.tolerance)[0]


def test_flattest_claim_fails_when_edge_is_moved():
    c = _claim("balancing.scalar.flattest_edge")
    pred, meas = c.predict("ci"), c.measure("ci", torch.device("cpu"))
    assert c.compare(pred, meas, c.tolerance)[0]
    assert not c.compare({k: 0.9 for k in pred}, meas, c.tolerance)[0]
    assert not c.compare({k: 1.1 for k in pred}, meas, c.tolerance)[0]


def test_matrix_claim_fails_with_a_tighter_bound():
    c = _claim("balancing.matrix.balanced_limit")
    pred, meas = c.predict("ci"), c.measure("ci", torch.device("cpu"))
    assert c.compare(pred, meas, c.tolerance)[0]
    assert not c.compare({**pred, "stab": 0.5}, meas, c.tolerance)[0]
    assert not c.compare({**pred, "ratio@3/L": 1.0}, meas, c.tolerance)[0]


@pytest.mark.full
def test_claims_pass_at_full_scale():
    for cid in CLAIM_IDS:
        v = _claim(cid).check("full")
        assert v.passed, (cid, v.details)
