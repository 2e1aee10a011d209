"""Tests of lrtheory.results.balancing (Wang, Chen, Zhao, Tao 2022): derivations, batched GD, analysis.

The claims, their failure tests and the seeds are in tests/test_balancing_claims.py.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch

from lrtheory.results.balancing import CHAPTER, CONFIGS
from lrtheory.results.balancing import analysis as A
from lrtheory.results.balancing import derivation as D
from lrtheory.results.balancing import measurements as M
from lrtheory.results.balancing import simulate as S
from lrtheory.results.balancing.analysis import EndState

CONVERGED, DIVERGED, PERIODIC = EndState.CONVERGED, EndState.DIVERGED, EndState.PERIODIC


# ---------------------------------------------------------------- symbolic ----------

def test_scalar_gradient_matches_autograd():
    # exact up to round-off (1e-12 relative): both are the same polynomial evaluated in float64
    s = D.symbols()
    gx, gy = D.derive_scalar_gd().grad
    fx = sp.lambdify((s.x, s.y, s.mu), gx)
    fy = sp.lambdify((s.x, s.y, s.mu), gy)
    z = torch.tensor([1.7, -0.3], dtype=torch.float64, requires_grad=True)
    f = 0.5 * (2.0 - z[0] * z[1]) ** 2
    g = torch.autograd.grad(f, z)[0]
    assert math.isclose(fx(1.7, -0.3, 2.0), g[0].item(), rel_tol=1e-12)
    assert math.isclose(fy(1.7, -0.3, 2.0), g[1].item(), rel_tol=1e-12)


@pytest.mark.parametrize("x0,y0,mu", [(9.0, 1.0, 2.0), (19.0, 1.0, 2.0), (0.3, -2.0, 1.5)])
def test_top_eigenvalue_closed_form_matches_dense_hessian(x0, y0, mu):
    # sympy closed form vs torch eigvalsh of the dense Hessian: 1e-10 relative (round-off in sqrt)
    assert math.isclose(D.top_eigenvalue(x0, y0, mu), S.scalar_top_eigenvalue(x0, y0, mu), rel_tol=1e-10)


def test_imbalance_recursion_is_exact_and_has_the_expected_form():
    d = D.derive_imbalance_recursion()
    s = D.symbols()
    assert d.remainder == 0
    # the derived factor in terms of the residual r is 1 - eta^2 r^2 (exact symbolic identity)
    assert sp.expand(d.factor_r - (1 - s.eta ** 2 * s.r ** 2)) == 0


def test_minimum_hessian_and_flattest_minimum():
    s = D.symbols()
    mh = D.derive_minimum_hessian()
    assert sp.simplify(mh.top - (s.x ** 2 + s.y ** 2)) == 0
    assert sp.simplify(mh.eta_max - 2 / (s.x ** 2 + s.y ** 2)) == 0
    fm = D.derive_flattest_minimum()
    assert sp.simplify(fm.sharpness - 2 * s.mu) == 0
    assert sp.simplify(fm.eta_max - 1 / s.mu) == 0
    assert D.flattest_edge_eta_mu() == 1.0 and D.stability_index_bound() == 1.0


def test_paper_range_tends_to_four_over_L():
    d = D.derive_convergence_range()
    assert d.h0L_limit == 4
    s = D.symbols()
    val = float(d.h0L.subs({s.x0: 9, s.y0: 1, s.mu: 2}))
    assert 2 < val < 4  # beyond the classical 2/L, below 4/L
    assert math.isclose(D.h0L(9.0, 1.0, 2.0), val, rel_tol=1e-12)


def test_balancing_bound_solves_the_stability_edge():
    s = D.symbols()
    rb = D.derive_balancing_bound().rho_bound
    for eta, mu in [(0.1, 2.0), (0.3, 1.0), (0.01, 5.0)]:
        rho = float(rb.subs({s.eta: eta, s.mu: mu}))
        # on the edge: mu (rho + 1/rho) = 2/eta, to 1e-12 relative
        assert math.isclose(mu * (rho + 1 / rho), 2 / eta, rel_tol=1e-12)
        assert rho >= 1
        assert math.isclose(float(D.rho_bound(eta, mu)), rho, rel_tol=1e-12)


def test_gradient_flow_conserves_the_imbalance_and_its_limit():
    d = D.derive_gradient_flow_limit()
    assert d.rate == 0
    # the limit lies on x y = mu with x^2 - y^2 = x0^2 - y0^2 (1e-12 relative, round-off in sqrt)
    for x0, y0, mu in [(9.0, 1.0, 2.0), (1.0, 19.0, 2.0), (3.0, 2.0, 0.5)]:
        rho = D.gradient_flow_ratio(x0, y0, mu)
        big, small = math.sqrt(mu * rho), math.sqrt(mu / rho)
        assert math.isclose(big * small, mu, rel_tol=1e-12)
        assert math.isclose(big ** 2 - small ** 2, abs(x0 ** 2 - y0 ** 2), rel_tol=1e-12)
    # integrating gradient flow (tiny-step GD) ends there: 1e-3 relative (O(eta) discretization)
    run = S.scalar_gd(9.0, 1.0, [1e-4], mu=2.0, steps=20000, device="cpu")
    assert math.isclose(float(A.imbalance_ratio(run.x, run.y)[0]), D.gradient_flow_ratio(9.0, 1.0, 2.0), rel_tol=1e-3)


def test_matrix_gradient_and_imbalance_recursion():
    assert D.derive_matrix_gd(2, 3, 2).matches
    d = D.derive_matrix_imbalance_recursion()
    sy = d.symbols
    eta = D.symbols().eta
    expected = eta ** 2 * (sy.Yt * sy.Rt * sy.R * sy.Y - sy.Xt * sy.R * sy.Rt * sy.X)
    assert sp.expand(d.increment - expected) == 0
    # numeric check of the same identity on random matrices (float64 round-off: 1e-10 absolute)
    A_, X, Y = S.make_matrix_problem(4, 3, 2, seed=3)
    h = 0.07
    R = A_ - X @ Y.T
    Xn, Yn = X + h * R @ Y, Y + h * R.T @ X
    lhs = Xn.T @ Xn - Yn.T @ Yn
    rhs = X.T @ X - Y.T @ Y + h ** 2 * (Y.T @ R.T @ R @ Y - X.T @ R @ R.T @ X)
    assert np.abs(lhs - rhs).max() < 1e-10


def test_matrix_hessian_lower_bound_at_a_minimum():
    # at a global minimum, lambda_max(Hessian) >= lambda_max(X^T X + Y^T Y) (used by the matrix bound)
    rng = np.random.default_rng(0)
    for _ in range(5):
        X, Y = rng.normal(size=(4, 2)) * 2, rng.normal(size=(3, 2)) * 0.5
        A_ = X @ Y.T
        lam_h = S.matrix_top_eigenvalue(A_, X, Y)
        lam_g = np.linalg.eigvalsh(X.T @ X + Y.T @ Y)[-1]
        assert lam_h >= lam_g * (1 - 1e-12)


def test_derivations_return_frozen_dataclasses():
    import dataclasses

    for d in (D.derive_scalar_gd(), D.derive_scalar_hessian(), D.derive_imbalance_recursion(),
              D.derive_minimum_hessian(), D.derive_flattest_minimum(), D.derive_convergence_range(),
              D.derive_balancing_bound(), D.derive_gradient_flow_limit(), D.derive_matrix_gd(2, 2, 2),
              D.derive_matrix_imbalance_recursion(), D.derive_matrix_balancing_bound(),
              D.derive_mode_reduction()):
        assert dataclasses.is_dataclass(d) and type(d).__dataclass_params__.frozen


# ---------------------------------------------------------------- numeric -----------

def test_scalar_gd_matches_autograd_step():
    run = S.scalar_gd(3.0, 0.5, [0.01, 0.02], mu=2.0, steps=1, record=True, device="cpu")
    for k, eta in enumerate([0.01, 0.02]):
        z = torch.tensor([3.0, 0.5], dtype=torch.float64, requires_grad=True)
        g = torch.autograd.grad(0.5 * (2.0 - z[0] * z[1]) ** 2, z)[0]
        z1 = (z - eta * g).detach()
        assert abs(run.x[k] - z1[0].item()) < 1e-14 and abs(run.y[k] - z1[1].item()) < 1e-14


def test_divergence_is_frozen_and_does_not_leak():
    run = S.scalar_gd(9.0, 1.0, [0.01, 10.0], mu=2.0, steps=200, device="cpu")
    assert run.status.tolist() == [CONVERGED, DIVERGED]
    assert np.all(np.isfinite(run.x)) and np.all(np.isfinite(run.y)) and np.all(np.isfinite(run.loss))
    assert run.diverged_at[1] > 0 and run.diverged_at[0] == -1
    alone = S.scalar_gd(9.0, 1.0, [0.01], mu=2.0, steps=200, device="cpu")
    assert alone.x[0] == run.x[0] and alone.y[0] == run.y[0]  # bitwise: runs do not interact


def test_a_batch_that_diverges_entirely_keeps_its_shapes():
    # run_gd stops when no model is left: the trajectories are padded with NaN to T+1 rows
    run = S.scalar_gd(9.0, 1.0, [10.0, 20.0], mu=2.0, steps=200, record=True, device="cpu")
    assert run.status.tolist() == [DIVERGED, DIVERGED] and run.diverged_at.tolist() == [2, 2]
    assert run.traj_x.shape == (201, 2) and run.tail_x.shape == (17, 2)
    assert np.all(np.isfinite(run.x)) and np.all(np.isnan(run.traj_x[-1]))


def test_periodic_orbits_are_classified_not_converged():
    mu = 2.0
    x0, y0 = 1.2 * math.sqrt(mu), 0.8 * math.sqrt(mu)
    run = S.scalar_gd(x0, y0, np.array([0.9, 1.1, 1.26]) / mu, mu=mu, steps=6000, device="cpu")
    assert run.status.tolist() == [CONVERGED, PERIODIC, PERIODIC]
    assert run.period.tolist() == [0, 2, 4]
    # the period-2 orbit straddles the minimum manifold: x y != mu on it
    assert run.loss[1] > 1e-6


def test_matrix_gd_balances_and_freezes():
    A_, X0, Y0 = S.make_matrix_problem(seed=0)
    L = S.matrix_top_eigenvalue(A_, X0, Y0)
    run = S.matrix_gd(A_, X0, Y0, np.array([1.5, 3.0, 8.0]) / L, steps=6000, device="cpu")
    assert run.status.tolist() == [CONVERGED, CONVERGED, DIVERGED]
    assert np.all(np.isfinite(run.X)) and np.all(np.isfinite(run.Y))
    D0 = np.linalg.norm(X0.T @ X0 - Y0.T @ Y0)
    # a small step nearly conserves X^T X - Y^T Y (as gradient flow does); a large one removes most of it
    assert run.imbalance[0] > 0.9 * D0 and run.imbalance[1] < 0.5 * D0
    assert max(run.norm_ratio[1], 1 / run.norm_ratio[1]) < 0.5 * run.norm_ratio[0]


def test_convergence_edge_helper():
    g = np.array([1.0, 2.0, 3.0, 4.0])
    assert A.convergence_edge(g, [1, 1, -1, 1]) == 2.0
    assert A.convergence_edge(g, [1, 1, 1, 1]) == 4.0
    assert math.isnan(A.convergence_edge(g, [2, 1, 1, 1]))
    with pytest.raises(ValueError, match="status"):
        A.convergence_edge(g, [1, 1])
    with pytest.raises(ValueError, match="eta_L"):
        A.convergence_edge([2.0, 1.0], [1, 1])
    # an extra run joins the grid as one node: here it closes the gap at 2.5
    assert A.edge_with_extra_node(g, [1, 1, -1, 1], 2.5, CONVERGED) == 2.5
    assert A.edge_with_extra_node(g, [1, 1, 1, 1], 2.0, CONVERGED) == 4.0


def test_end_state_labels():
    assert A.end_state_label(CONVERGED) == "converged"
    assert A.end_state_label(PERIODIC, 4) == "period 4"
    assert A.end_state_label(EndState.BOUNDED) == "bounded, not periodic"
    assert A.first_change_points([0.1, 0.2, 0.3], ["a", "a", "b"]) == [(0.1, "a"), (0.3, "b")]


# ---------------------------------------------------------------- bad input ---------

@pytest.mark.parametrize("eta", [0.0, -0.1, float("nan"), float("inf"), [0.1, -1.0]])
def test_bad_eta_raises(eta):
    with pytest.raises(ValueError, match="eta"):
        S.scalar_gd(1.0, 1.0, eta, device="cpu")
    with pytest.raises(ValueError, match="eta"):
        S.matrix_gd(np.eye(2), np.eye(2), np.eye(2), eta, device="cpu")


def test_bad_scalar_input_raises():
    with pytest.raises(ValueError, match="x0"):
        S.scalar_gd(float("nan"), 1.0, 0.1, device="cpu")
    with pytest.raises(ValueError, match="y0"):
        S.scalar_gd(1.0, [1.0, float("inf")], 0.1, device="cpu")
    with pytest.raises(ValueError, match="mu"):
        S.scalar_gd(1.0, 1.0, 0.1, mu=0.0, device="cpu")
    with pytest.raises(ValueError, match="steps"):
        S.scalar_gd(1.0, 1.0, 0.1, steps=0, device="cpu")
    with pytest.raises(ValueError, match="x0, y0, eta"):
        S.scalar_gd([1.0, 2.0], 1.0, [0.1, 0.2, 0.3], device="cpu")


def test_bad_matrix_input_raises():
    A_ = np.ones((4, 3))
    with pytest.raises(ValueError, match="X0"):
        S.matrix_gd(A_, np.ones((3, 2)), np.ones((3, 2)), 0.1, device="cpu")
    with pytest.raises(ValueError, match="Y0"):
        S.matrix_gd(A_, np.ones((4, 2)), np.ones((4, 2)), 0.1, device="cpu")
    with pytest.raises(ValueError, match="Y0"):
        S.matrix_gd(A_, np.ones((4, 2)), np.ones((3, 3)), 0.1, device="cpu")
    with pytest.raises(ValueError, match="A"):
        S.matrix_gd(np.ones(4), np.ones((4, 2)), np.ones((3, 2)), 0.1, device="cpu")
    bad = A_.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="A"):
        S.matrix_gd(bad, np.ones((4, 2)), np.ones((3, 2)), 0.1, device="cpu")
    with pytest.raises(ValueError, match="rank"):
        S.make_matrix_problem(2, 2, 3, singular_values=(1.0, 1.0, 1.0))


def test_unknown_scale_raises():
    with pytest.raises(ValueError, match="scale"):
        M.measure_scalar_sweep("huge", "cpu")


# ---------------------------------------------------------------- config ------------

def test_configs_are_frozen_and_complete():
    import dataclasses

    assert set(CONFIGS) == {"ci", "reference", "full"} and CHAPTER.config("ci") is CONFIGS["ci"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        CONFIGS["ci"].scalar.steps = 1  # type: ignore[misc]
    ci, ref = CONFIGS["ci"], CONFIGS["reference"]
    assert ci.scalar.grid.values()[0] == 0.5 and ci.scalar.grid.values()[-1] == 4.5
    assert ci.orbit.grid.values()[0] == 0.8 and ci.orbit.grid.values().size == 71
    # the paper's scalar grid, at both scales: (9,1), (19,1), (99,1), mu = 2, eta = k h0 / 7
    for cfg in (ci, ref):
        assert cfg.paper.inits == ((9.0, 1.0), (19.0, 1.0), (99.0, 1.0)) and cfg.paper.mu == 2.0
        assert np.allclose(cfg.paper.fractions, [1, 6 / 7, 5 / 7, 4 / 7, 3 / 7, 2 / 7])
    assert ref.matrix.ns == (2, 4, 8, 16)


# ---------------------------------------------------------------- derivation checks (were claims) --

def test_imbalance_recursion_holds_along_torch_gd_runs():
    # D' = (1 - eta^2 r^2) D along float64 torch GD from the paper's starts, at small and large steps
    # (the last one diverges; its steps up to divergence count): round-off only, 1e-12 of x^2 + y^2
    for x0, y0 in ((9.0, 1.0), (19.0, 1.0), (99.0, 1.0)):
        L = S.scalar_top_eigenvalue(x0, y0, 2.0)
        eta_L = np.array([0.5, 1.5, 2.5, 3.0, D.paper_step_size(x0, y0, 2.0) * L, 4.5])
        run = S.scalar_gd(x0, y0, eta_L / L, 2.0, 300, record=True, device="cpu")
        tx, ty = run.traj_x, run.traj_y
        ok = np.isfinite(tx[1:]) & np.isfinite(tx[:-1])
        Dk = tx ** 2 - ty ** 2
        fac = D.imbalance_factor(tx[:-1], ty[:-1], 2.0, run.eta[None, :])
        err = np.abs(Dk[1:] - fac * Dk[:-1]) / (tx[1:] ** 2 + ty[1:] ** 2 + np.abs(fac) * (tx[:-1] ** 2 + ty[:-1] ** 2))
        assert ok.sum() > 1000 and np.nanmax(np.where(ok, err, 0.0)) < 1e-12
        assert run.status[-1] == DIVERGED


def test_reduced_map_and_its_constraint():
    rm = D.derive_reduced_map()
    assert sp.expand(rm.s_next - (rm.s * (1 + rm.rho ** 2) + 4 * rm.rho * (rm.m - rm.rho))) == 0
    assert sp.expand(rm.d_next - rm.d * (1 - rm.rho ** 2)) == 0
    # numerically, on one GD step from (9, 1): the scaled coordinates follow the derived map
    x, y, mu, eta = 9.0, 1.0, 2.0, 0.03
    r = mu - x * y
    xn, yn = x + eta * y * r, y + eta * x * r
    vals = {rm.rho: eta * r, rm.s: eta * (x * x + y * y), rm.m: eta * mu, rm.d: eta * (x * x - y * y)}
    assert math.isclose(float(rm.rho_next.subs(vals)), eta * (mu - xn * yn), rel_tol=1e-12)
    assert math.isclose(float(rm.s_next.subs(vals)), eta * (xn * xn + yn * yn), rel_tol=1e-12)
    assert abs(float(rm.constraint.subs(vals))) < 1e-12


def test_edge_invariant_is_exact_along_gd():
    ei = D.derive_edge_invariant()
    rm = D.derive_reduced_map()
    assert sp.expand(ei.w - (4 - rm.s - rm.m * rm.rho)) == 0
    assert sp.expand(ei.factor - (1 + rm.rho ** 2 - rm.m * rm.rho)) == 0
    assert sp.expand(ei.on_curve - (rm.rho ** 3 - 3 * rm.rho)) == 0
    assert ei.two_cycle_on_curve and str(ei.factor_positive_if) == "m < 2"
    # along torch GD: w_{k+1} = w_k (1 + rho^2 - m rho) to round-off (1e-10 of 4 + |w|), sign never changes
    eta = 0.9 * D.edge_eta(9.0, 1.0, 2.0)
    run = S.scalar_gd(9.0, 1.0, [eta, 1.01 * D.edge_eta(9.0, 1.0, 2.0)], 2.0, 60, record=True, device="cpu")
    for j in range(2):
        tx, ty = run.traj_x[:, j], run.traj_y[:, j]
        keep = np.isfinite(tx) & (np.abs(tx) < 1e3)
        tx, ty = tx[keep], ty[keep]
        h = run.eta[j]
        w = D.edge_w(tx, ty, 2.0, h)
        rho = h * (2.0 - tx * ty)
        pred = w[:-1] * (1 + rho[:-1] ** 2 - h * 2.0 * rho[:-1])
        assert np.max(np.abs(w[1:] - pred) / (4 + np.abs(w[1:]))) < 1e-10
        assert np.all(np.sign(w) == np.sign(w[0]))
    # the edge: the smallest positive root, exact at (4, 1) with mu = 2 (-4 eta^2 + 17 eta - 4 = 0)
    assert math.isclose(D.edge_eta(4.0, 1.0, 2.0), 0.25, rel_tol=1e-12)
    assert abs(D.edge_w(9.0, 1.0, 2.0, D.edge_eta(9.0, 1.0, 2.0))) < 1e-12


def test_limit_invariant_and_prediction():
    li = D.derive_limit_invariant()
    rm = D.derive_reduced_map()
    assert sp.expand(li.product_factor - (1 - rm.rho ** 2) * (1 + rm.rho ** 2 - rm.m * rm.rho)) == 0
    # the prediction solves g(s) = |d0| w0 on the stable branch s <= 2
    x0, y0, mu = 19.0, 1.0, 2.0
    eta = 4 / 7 * D.paper_step_size(x0, y0, mu)
    Dinf = D.predicted_limit_imbalance(x0, y0, mu, eta)
    m, d = eta * mu, eta * Dinf
    s = math.sqrt(d * d + 4 * m * m)
    assert s <= 2 and math.isclose(d * (4 - s), eta * (x0 ** 2 - y0 ** 2) * D.edge_w(x0, y0, mu, eta), rel_tol=1e-9)
    # beyond the edge nothing is predicted; far below it, the imbalance is (nearly) conserved
    assert math.isnan(D.predicted_limit_imbalance(x0, y0, mu, 1.01 * D.edge_eta(x0, y0, mu)))
    assert math.isclose(D.predicted_limit_imbalance(x0, y0, mu, 1e-4), x0 ** 2 - y0 ** 2, rel_tol=1e-3)
    assert math.isclose(float(D.limit_ratio(x0 ** 2 - y0 ** 2, mu)), D.gradient_flow_ratio(x0, y0, mu), rel_tol=1e-12)


def test_divergence_edge_brackets_a_threshold():
    lo, hi, found = S.divergence_edge(lambda g: g > 0.3141, [0.0, 0.0, 0.5], [1.0, 0.2, 1.0], 11, 4)
    assert found.tolist() == [True, False, False]
    assert lo[0] <= 0.3141 < hi[0] and hi[0] - lo[0] < 1e-3
    assert lo[1] == hi[1] == 0.2 and lo[2] == hi[2] == 0.5
    with pytest.raises(ValueError, match="points"):
        S.divergence_edge(lambda g: g > 0, [0.0], [1.0], 2, 1)


def test_gaussian_problem_is_square_and_seeded():
    a = S.make_gaussian_problem(4, 4, x_scale=3.0, y_scale=0.3, seed=7)
    b = S.make_gaussian_problem(4, 4, x_scale=3.0, y_scale=0.3, seed=7)
    assert all(np.array_equal(u, v) for u, v in zip(a, b)) and a[0].shape == (4, 4)
    assert np.linalg.norm(a[1]) > 3 * np.linalg.norm(a[2])
    with pytest.raises(ValueError, match="x_scale"):
        S.make_gaussian_problem(2, 2, x_scale=0.0, y_scale=1.0, seed=0)


# ---------------------------------------------------------------- determinism -------

def test_same_seed_same_result():
    a = S.make_matrix_problem(seed=5)
    b = S.make_matrix_problem(seed=5)
    c = S.make_matrix_problem(seed=6)
    for u, v in zip(a, b):
        assert np.array_equal(u, v)
    assert not np.array_equal(a[0], c[0])
    r1 = S.matrix_gd(*a, [0.01, 0.05], steps=300, device="cpu")
    r2 = S.matrix_gd(*b, [0.01, 0.05], steps=300, device="cpu")
    # batched matmuls go through BLAS, whose kernel choice may depend on memory alignment:
    # equal to 1e-12 relative (observed: equal or within a few ulp); elementwise scalar GD is bitwise equal
    assert np.allclose(r1.X, r2.X, rtol=1e-12, atol=0) and np.allclose(r1.Y, r2.Y, rtol=1e-12, atol=0)
    s1 = S.scalar_gd(9.0, 1.0, [0.01, 0.03], steps=500, device="cpu")
    s2 = S.scalar_gd(9.0, 1.0, [0.01, 0.03], steps=500, device="cpu")
    assert np.array_equal(s1.x, s2.x) and np.array_equal(s1.y, s2.y)


# ---------------------------------------------------------------- matrix limit (frozen-factor mode sum) ----------

def test_matrix_residual_step_symbolic_and_numeric():
    st = D.derive_matrix_residual_step()
    X, Y, R, Xt, Yt = sp.symbols("X Y R X^T Y^T", commutative=False)
    eta = D.symbols().eta
    assert sp.expand(st.R_next - (R - eta * (X * Xt * R + R * Y * Yt) - eta ** 2 * R * Y * Xt * R)) == 0
    assert sp.expand(st.R_next - (R + st.linear + st.second)) == 0
    # on random matrices: the residual after one GD step (float64 round-off: 1e-10 absolute)
    A_, X0, Y0 = S.make_gaussian_problem(4, 3, x_scale=3.0, y_scale=0.3, seed=5)
    h = 0.03
    R0 = A_ - X0 @ Y0.T
    Xn, Yn = X0 + h * R0 @ Y0, Y0 + h * R0.T @ X0
    rhs = R0 - h * (X0 @ X0.T @ R0 + R0 @ Y0 @ Y0.T) - h ** 2 * R0 @ Y0 @ X0.T @ R0
    assert np.abs((A_ - Xn @ Yn.T) - rhs).max() < 1e-10


def test_frozen_mode_sum_hand_steps_and_closed_form():
    d = D.derive_frozen_mode_sum()
    e, lam, gam, r2 = d.eta, d.lam, d.gam, d.r2
    assert sp.simplify(d.increment_sum - e * r2 * (gam - lam) / ((lam + gam) * (2 - e * (lam + gam)))) == 0
    A_, X0, Y0 = S.make_gaussian_problem(5, 5, x_scale=3.0, y_scale=0.3, seed=7)
    lam_, gam_, r2_ = D.frozen_modes(A_, X0, Y0)
    R = A_ - X0 @ Y0.T
    K, G = X0 @ X0.T, Y0 @ Y0.T
    # hand steps: ||R^T X||^2 = sum lambda_i r_ij^2, ||R Y||^2 = sum gamma_j r_ij^2 (round-off: 1e-10 relative)
    assert math.isclose(np.sum((R.T @ X0) ** 2), np.sum(lam_[:, None] * r2_), rel_tol=1e-10)
    assert math.isclose(np.sum((R @ Y0) ** 2), np.sum(gam_[None, :] * r2_), rel_tol=1e-10)
    # the frozen linear model R' = R - eta (K R + R G), its increments summed step by step, equals the
    # closed form (4000 steps: the slowest mode's q^(2t) is below 1e-30 by then)
    Smax = lam_.max() + gam_.max()
    for eta_S in (0.5, 1.5):
        h = eta_S / Smax
        total, Rt = 0.0, R.copy()
        for _ in range(4000):
            total += h ** 2 * (np.sum((Rt @ Y0) ** 2) - np.sum((Rt.T @ X0) ** 2))
            Rt = Rt - h * (K @ Rt + Rt @ G)
        assert math.isclose(total, D.predicted_matrix_imbalance_change(A_, X0, Y0, h), rel_tol=1e-9)
    # no prediction where a mode does not decay; the small-step limit is -eta/2 sum r2 (lam - gam)/(lam + gam),
    # close to -eta f0 when ||Y0|| << ||X0|| (here 0.93 of it: the small eigenvalues of X0 X0^T)
    assert math.isnan(D.predicted_matrix_imbalance_change(A_, X0, Y0, 2.01 / Smax))
    h = 1e-4 / Smax
    p = D.predicted_matrix_imbalance_change(A_, X0, Y0, h)
    S_ = lam_[:, None] + gam_[None, :]
    assert math.isclose(p, -h / 2 * np.sum(r2_ * (lam_[:, None] - gam_[None, :]) / S_), rel_tol=1e-3)
    assert math.isclose(p / (-h * 0.5 * np.sum(R ** 2)), 1.0, rel_tol=0.1)


def test_frozen_mode_prediction_against_gd_below_two_over_L():
    # a problem not in the chapter (n = 6): GD's change of ||X||^2 - ||Y||^2 at eta L0 = 0.5, 1.0 within 10 %
    A_, X0, Y0 = S.make_gaussian_problem(6, 6, x_scale=3.0, y_scale=0.3, seed=11)
    L0 = S.matrix_top_eigenvalue(A_, X0, Y0)
    etas = np.array([0.5, 1.0]) / L0
    run = S.matrix_gd(A_, X0, Y0, etas, steps=6000, device="cpu")
    assert (run.status == CONVERGED).all()
    meas = (run.X ** 2).sum(axis=(1, 2)) - (run.Y ** 2).sum(axis=(1, 2)) - (np.sum(X0 ** 2) - np.sum(Y0 ** 2))
    pred = D.predicted_matrix_imbalance_change(A_, X0, Y0, etas)
    assert np.all(np.abs(meas / pred - 1) < 0.1), (meas, pred)


# ---------------------------------------------------------------- matrix limit beyond 2/L (mode reduction) ----------

def _aligned_problem(s, a, b, seed=0):
    """``A = U diag(s) V^T``, ``X0 = U diag(a) Q^T``, ``Y0 = V diag(b) Q^T``: GD decouples exactly into scalar problems."""
    rng = np.random.default_rng(seed)
    n = len(s)
    U, V, Q = (np.linalg.qr(rng.normal(size=(n, n)))[0] for _ in range(3))
    return U @ np.diag(s) @ V.T, U @ np.diag(a) @ Q.T, V @ np.diag(b) @ Q.T


def test_mode_reduction_symbolic():
    d = D.derive_mode_reduction()
    x, p, z, mu, eta = d.x, d.p, d.z, d.mu, d.eta
    assert sp.expand(d.f - ((mu - x * p) ** 2 / 2 + x ** 2 * z ** 2 / 2)) == 0
    assert sp.expand(d.z_factor - (1 - eta * x ** 2)) == 0
    assert sp.expand(d.x_next - (x + eta * ((mu - x * p) * p - x * z ** 2))) == 0
    assert sp.expand(d.p_next - (p + eta * x * (mu - x * p))) == 0
    assert sp.expand(d.imbalance - (x ** 2 - p ** 2 - z ** 2)) == 0
    assert d.scalar_at_z0


def test_mode_reduction_step_matches_autograd_on_a_vector_problem():
    # one GD step on ||a - x y||^2/2 with a, y in R^5 (torch autograd), then split y' along a and across it:
    # the derived (x', p', z') of the plane, to round-off (1e-12 relative)
    rng = np.random.default_rng(4)
    a, y0 = rng.normal(size=5), rng.normal(size=5)
    x0, eta = 1.7, 0.05
    xt = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    yt = torch.tensor(y0, dtype=torch.float64, requires_grad=True)
    loss = 0.5 * ((torch.tensor(a) - xt * yt) ** 2).sum()
    gx, gy = torch.autograd.grad(loss, (xt, yt))
    xn, yn = x0 - eta * gx.item(), y0 - eta * gy.numpy()
    ah = a / np.linalg.norm(a)
    p0 = y0 @ ah
    z0 = np.linalg.norm(y0 - p0 * ah)
    d = D.derive_mode_reduction()
    step = sp.lambdify((d.x, d.p, d.z, d.mu, d.eta), (d.x_next, d.p_next, d.z_next))
    xs, ps, zs = step(x0, p0, z0, np.linalg.norm(a), eta)
    assert math.isclose(xs, xn, rel_tol=1e-12)
    assert math.isclose(ps, yn @ ah, rel_tol=1e-12)
    assert math.isclose(abs(zs), np.linalg.norm(yn - (yn @ ah) * ah), rel_tol=1e-12)
    # the loss in the plane equals the vector loss
    f = sp.lambdify((d.x, d.p, d.z, d.mu), d.f)
    assert math.isclose(f(x0, p0, z0, np.linalg.norm(a)), loss.item(), rel_tol=1e-12)


def test_mode_reduction_hand_steps_on_random_matrices():
    # ||A - X Y^T||^2 = sum_i ||A^T u_i - sigma_i Y w_i||^2 for X = U diag(sigma) W^T (exact), and the
    # derivative of the loss in sigma_i is u_i^T grad_X w_i (the restricted gradient): round-off only
    A_, X0, Y0 = S.make_gaussian_problem(5, 5, x_scale=3.0, y_scale=0.3, seed=9)
    U, sig, Wt = np.linalg.svd(X0)
    W = Wt.T
    total = sum(np.sum((A_.T @ U[:, i] - sig[i] * (Y0 @ W[:, i])) ** 2) for i in range(5))
    assert math.isclose(total, np.sum((A_ - X0 @ Y0.T) ** 2), rel_tol=1e-12)
    gX = -(A_ - X0 @ Y0.T) @ Y0
    for i in range(5):
        ds = -(A_.T @ U[:, i] - sig[i] * (Y0 @ W[:, i])) @ (Y0 @ W[:, i])
        assert math.isclose(ds, U[:, i] @ gX @ W[:, i], rel_tol=1e-10, abs_tol=1e-12)
    md = D.matrix_modes(A_, X0, Y0)
    assert np.allclose(md.sigma, sig, rtol=1e-12)
    assert np.allclose(md.mu, np.linalg.norm(A_.T @ U, axis=0), rtol=1e-12)
    # the modes hold all of Y0: sum (p^2 + z^2) = ||Y0||_F^2
    assert math.isclose(np.sum(md.p ** 2 + md.z ** 2), np.sum(Y0 ** 2), rel_tol=1e-12)
    assert np.all(md.z >= 0)


def test_matrix_modes_of_an_aligned_problem():
    # aligned SVDs: the modes are (a_i, s_i, b_i) with no transverse part
    s, a, b = np.array([1.5, 1.0, 0.5]), np.array([4.0, 3.0, 2.0]), np.array([0.3, 0.2, 0.1])
    md = D.matrix_modes(*_aligned_problem(s, a, b))
    assert np.allclose(md.sigma, a, rtol=1e-12) and np.allclose(md.mu, s, rtol=1e-12)
    assert np.allclose(md.p, b, rtol=1e-10) and np.all(md.z < 1e-10)
    one = D.matrix_modes(np.array([[2.0]]), np.array([[-3.0]]), np.array([[0.5]]))
    assert (float(one.sigma[0]), float(one.mu[0]), float(one.p[0])) == (3.0, 2.0, -0.5)


def test_mode_prediction_is_exact_where_the_modes_decouple():
    # an aligned problem stays aligned under GD: the mode prediction equals matrix GD to round-off, below and
    # beyond 2/L (eta L0 = 1.0, 2.8), and it is the scalar GD of each mode
    s, a, b = np.array([1.2, 0.7]), np.array([3.0, 1.5]), np.array([0.2, 0.1])
    A_, X0, Y0 = _aligned_problem(s, a, b, seed=2)
    L0 = S.matrix_top_eigenvalue(A_, X0, Y0)
    etas = np.array([1.0, 2.8]) / L0
    run = S.matrix_gd(A_, X0, Y0, etas, steps=6000, device="cpu")
    assert (run.status == CONVERGED).all()
    meas = (run.X ** 2).sum(axis=(1, 2)) - (run.Y ** 2).sum(axis=(1, 2)) - (np.sum(X0 ** 2) - np.sum(Y0 ** 2))
    pred = D.predicted_matrix_imbalance_change_modes(A_, X0, Y0, etas, 6000)
    assert np.allclose(pred, meas, rtol=1e-8, atol=1e-10), (pred, meas)
    change = 0.0
    for i in range(2):
        r = S.scalar_gd(a[i], b[i], etas, mu=float(s[i]), steps=6000, device="cpu")
        change = change + (r.x ** 2 - r.y ** 2) - (a[i] ** 2 - b[i] ** 2)
    assert np.allclose(pred, change, rtol=1e-8, atol=1e-10)
    # beyond 2/L the top mode balances: most of the start's imbalance is lost
    assert -pred[1] > 0.5 * (a[0] ** 2 - b[0] ** 2)


def test_mode_gd_diverges_beyond_the_edge_and_stops_at_a_fixed_point():
    A_, X0, Y0 = S.make_gaussian_problem(3, 3, x_scale=3.0, y_scale=0.3, seed=1)
    edge = D.predicted_matrix_edge(A_, X0, Y0)
    out = D.predicted_matrix_imbalance_change_modes(A_, X0, Y0, np.array([0.5 * edge, 1.2 * edge]), 5000)
    assert np.isfinite(out[0]) and np.isnan(out[1])
    # a converged run is a floating-point fixed point: more steps change nothing
    md = D.matrix_modes(A_, X0, Y0)
    r1, r2 = D.mode_gd(md, [0.5 * edge], 5000), D.mode_gd(md, [0.5 * edge], 50000)
    assert all(np.array_equal(u, v) for u, v in zip(r1, r2))
    assert float(D.predicted_matrix_imbalance_change_modes(A_, X0, Y0, 0.5 * edge, 5000)) == out[0]


def test_mode_edges_solve_the_invariant_curve_and_bound_convergence():
    # each mode's edge is a root of eta (sigma^2 + p^2) + eta^2 mu (mu - sigma p) = 4 (typed here, not derived)
    A_, X0, Y0 = S.make_gaussian_problem(4, 4, x_scale=3.0, y_scale=0.3, seed=3)
    md = D.matrix_modes(A_, X0, Y0)
    e = D.mode_edges(A_, X0, Y0)
    lhs = e * (md.sigma ** 2 + md.p ** 2) + e ** 2 * md.mu * (md.mu - md.sigma * md.p)
    assert np.allclose(lhs, 4.0, rtol=1e-10)
    assert D.predicted_matrix_edge(A_, X0, Y0) == e.min()
    # the smallest positive root: below it w > 0 at the start
    for i in range(4):
        h = 0.999 * e[i]
        assert h * (md.sigma[i] ** 2 + md.p[i] ** 2) + h ** 2 * md.mu[i] * (md.mu[i] - md.sigma[i] * md.p[i]) < 4
    # on an aligned one-mode problem (exactly the scalar problem) matrix GD converges just below the edge
    # and diverges just above it
    A1, X1, Y1 = np.array([[2.0]]), np.array([[9.0]]), np.array([[1.0]])
    edge = D.predicted_matrix_edge(A1, X1, Y1)
    assert math.isclose(edge, D.edge_eta(9.0, 1.0, 2.0), rel_tol=1e-12)
    run = S.matrix_gd(A1, X1, Y1, [0.999 * edge, 1.001 * edge], steps=20000, device="cpu")
    assert run.status.tolist() == [CONVERGED, DIVERGED]
    # a mode with mu (mu - sigma p) = 0 has the linear edge 4 / (sigma^2 + p^2)
    A2, X2, Y2 = np.array([[2.0]]), np.array([[4.0]]), np.array([[0.5]])
    assert math.isclose(D.predicted_matrix_edge(A2, X2, Y2), 4 / 16.25, rel_tol=1e-12)


def test_mode_prediction_against_gd_beyond_two_over_L_on_a_new_problem():
    # a problem not in the chapter (n = 6): GD's change of ||X||^2 - ||Y||^2 at eta L0 = 2.4, 2.8 within 20 %
    A_, X0, Y0 = S.make_gaussian_problem(6, 6, x_scale=3.0, y_scale=0.3, seed=11)
    L0 = S.matrix_top_eigenvalue(A_, X0, Y0)
    etas = np.array([2.4, 2.8]) / L0
    run = S.matrix_gd(A_, X0, Y0, etas, steps=8000, device="cpu")
    assert (run.status == CONVERGED).all()
    meas = (run.X ** 2).sum(axis=(1, 2)) - (run.Y ** 2).sum(axis=(1, 2)) - (np.sum(X0 ** 2) - np.sum(Y0 ** 2))
    pred = D.predicted_matrix_imbalance_change_modes(A_, X0, Y0, etas, 8000)
    assert np.all(np.abs(meas / pred - 1) < 0.2), (meas, pred)


# ---------------------------------------------------------------- formulas without a check before ----------

def test_q_bound_solves_its_constraint():
    # nu (q + 1/q) = 2 r / eta at q = q_bound, q >= 1 (the larger root), element-wise (1e-12 relative)
    for eta, nu, r in [(0.1, 2.0, 3), (0.05, 1.0, 1), (0.3, 0.5, 4)]:
        q = float(D.q_bound(eta, nu, r))
        assert q >= 1 and math.isclose(nu * (q + 1 / q), 2 * r / eta, rel_tol=1e-12)
    qs = D.q_bound(np.array([0.1, 0.2]), 2.0, 3)
    assert qs.shape == (2,) and qs[0] > qs[1]
    mb = D.derive_matrix_balancing_bound()
    assert sp.simplify(mb.constraint.lhs - mb.nu * (mb.q + 1 / mb.q)) == 0


def test_limit_invariant_peak_and_hessian_eigenvalues():
    # g(s) = sqrt(s^2 - 4 m^2) (4 - s) peaks where s (4 - s) = s^2 - 4 m^2: s = 1 + sqrt(1 + 2 m^2)
    li = D.derive_limit_invariant()
    rm = D.derive_reduced_map()
    for m in (0.01, 0.1, 0.5):
        sp_ = float(li.s_peak.subs(rm.m, m))
        assert math.isclose(sp_, 1 + math.sqrt(1 + 2 * m * m), rel_tol=1e-12)
        g = lambda s: math.sqrt(s * s - 4 * m * m) * (4 - s)  # noqa: E731
        assert g(sp_) > g(sp_ - 1e-3) and g(sp_) > g(sp_ + 1e-3)
    # the scalar Hessian's eigenvalues at a point, against numpy (1e-12 relative)
    hs = D.derive_scalar_hessian()
    s = D.symbols()
    pt = {s.x: 1.3, s.y: -0.4, s.mu: 2.0}
    ev = sorted(float(e.subs(pt)) for e in hs.eigenvalues)
    H = np.array([[0.16, -(2.0 - 2 * 1.3 * -0.4)], [-(2.0 - 2 * 1.3 * -0.4), 1.69]])
    assert np.allclose(ev, np.linalg.eigvalsh(H), rtol=1e-12)


def test_balanced_minimum_sharpness_is_twice_the_top_singular_value():
    # the regime condition of the mode edge: at X = U S^(1/2), Y = V S^(1/2) the Hessian's top eigenvalue is
    # 2 s1(A) (hand step: the eigenvalues at an aligned minimum are a_i^2 + b_j^2), dense Hessian, 1e-10 relative
    A_, _, _ = S.make_gaussian_problem(4, 4, x_scale=1.0, y_scale=1.0, seed=2)
    U, s, Vt = np.linalg.svd(A_)
    X, Y = U * np.sqrt(s), Vt.T * np.sqrt(s)
    assert math.isclose(S.matrix_top_eigenvalue(A_, X, Y), 2 * s[0], rel_tol=1e-10)


def test_every_field_of_the_scalar_derivations():
    # each field checked against a value worked out by hand (not read off the code's output)
    s = D.symbols()
    x, y, mu, eta = s.x, s.y, s.mu, s.eta
    gd = D.derive_scalar_gd()
    assert sp.expand(gd.f - (mu - x * y) ** 2 / 2) == 0
    assert sp.expand(gd.grad[0] + (mu - x * y) * y) == 0 and sp.expand(gd.grad[1] + (mu - x * y) * x) == 0
    assert sp.expand(gd.y_next - (y + eta * x * (mu - x * y))) == 0
    hs = D.derive_scalar_hessian()
    assert sp.expand(hs.hessian - sp.Matrix([[y ** 2, 2 * x * y - mu], [2 * x * y - mu, x ** 2]])) == sp.zeros(2, 2)
    assert len(hs.eigenvalues) == 2
    pt = {x: 9, y: 1, mu: 2}
    assert math.isclose(float(hs.L.subs(pt)), max(np.linalg.eigvalsh(np.array([[1.0, 16.0], [16.0, 81.0]]))),
                        rel_tol=1e-12)
    rec = D.derive_imbalance_recursion()
    assert sp.expand(rec.difference - (gd.x_next ** 2 - gd.y_next ** 2)) == 0
    assert sp.expand(rec.factor - (1 - eta ** 2 * (mu - x * y) ** 2)) == 0
    assert math.isclose(float(D.imbalance_factor(3.0, 0.5, 2.0, 0.1)), 1 - 0.01 * 0.25, rel_tol=1e-12)
    gf = D.derive_gradient_flow_limit()
    u = gf.u.subs({gf.D0: 3, mu: 2})  # u^2 - 3 u - 4 = 0: u = 4
    assert sp.simplify(u - 4) == 0 and sp.simplify(gf.ratio.subs({gf.D0: 3, mu: 2}) - 2) == 0
    mh = D.derive_minimum_hessian()
    assert sp.expand(mh.multiplier - (1 - eta * (x ** 2 + y ** 2))) == 0
    assert 0 in [sp.simplify(e) for e in mh.eigenvalues]
    assert sp.simplify(mh.top_x - (x ** 2 + mu ** 2 / x ** 2)) == 0
    assert sp.simplify(mh.hessian - sp.Matrix([[mu ** 2 / x ** 2, mu], [mu, x ** 2]])) == sp.zeros(2, 2)
    fm = D.derive_flattest_minimum()
    assert sp.simplify(fm.x_star - sp.sqrt(mu)) == 0 and sp.simplify(fm.y_star - sp.sqrt(mu)) == 0
    cr = D.derive_convergence_range()
    assert cr.classical == 2
    assert sp.simplify(cr.h0 - 4 / (s.x0 ** 2 + s.y0 ** 2 + 4 * mu)) == 0
    assert math.isclose(float(cr.L0.subs({s.x0: 9, s.y0: 1, mu: 2})), D.top_eigenvalue(9.0, 1.0, 2.0), rel_tol=1e-12)
    assert math.isclose(D.paper_step_size(9.0, 1.0, 2.0), 4 / 90, rel_tol=1e-15)
    assert math.isclose(D.h0L(9.0, 1.0, 2.0), 4 / 90 * D.top_eigenvalue(9.0, 1.0, 2.0), rel_tol=1e-12)


def test_every_field_of_the_bounds():
    s = D.symbols()
    bb = D.derive_balancing_bound()
    # at the stability edge eta (x^2 + y^2) = 2 on x y = mu: (x - y)^2 = 2/eta - 2 mu
    assert sp.simplify(bb.diff_bound - (2 / s.eta - 2 * s.mu)) == 0
    assert sp.simplify(bb.constraint.lhs - s.mu * (s.rho + 1 / s.rho)) == 0
    assert sp.simplify(bb.constraint.rhs - 2 / s.eta) == 0 and isinstance(bb.constraint, sp.LessThan)
    mb = D.derive_matrix_balancing_bound()
    assert sp.simplify(mb.constraint.rhs - 2 * mb.rank / s.eta) == 0 and isinstance(mb.constraint, sp.LessThan)
    # q_bound at eta = 1/4, nu = 1, r_A = 1: q + 1/q = 8, q = 4 + sqrt(15)
    assert sp.simplify(mb.q_bound.subs({s.eta: sp.Rational(1, 4), mb.nu: 1, mb.rank: 1}) - (4 + sp.sqrt(15))) == 0
    assert math.isclose(float(D.q_bound(0.25, 1.0, 1)), 4 + math.sqrt(15), rel_tol=1e-12)
    # rho_bound at eta mu = 1/2: rho + 1/rho = 4, rho = 2 + sqrt(3)
    assert math.isclose(float(D.rho_bound(0.25, 2.0)), 2 + math.sqrt(3), rel_tol=1e-12)


def test_every_field_of_the_matrix_derivations():
    d = D.derive_matrix_gd()
    assert d.matches and d.grad_X.shape == (2, 2) and d.grad_Y.shape == (2, 2)
    # the loss of the default 2 x 2 problem at A = I, X = Y = 0 is ||I||^2 / 2 = 1
    zero = {v: 0 for v in d.f.free_symbols if not str(v).startswith("a_")}
    ident = {sp.Symbol("a_00"): 1, sp.Symbol("a_11"): 1, sp.Symbol("a_01"): 0, sp.Symbol("a_10"): 0}
    assert d.f.subs({**zero, **ident}) == 1
    d32 = D.derive_matrix_gd(3, 2, 1)
    assert d32.grad_X.shape == (3, 1) and d32.grad_Y.shape == (2, 1) and d32.matches
    mr = D.derive_matrix_imbalance_recursion()
    sy = mr.symbols
    assert sp.expand(mr.D_next - (sy.Xt * sy.X - sy.Yt * sy.Y) - mr.increment) == 0


def test_symbols_names_and_assumptions():
    # the names are what the chapter prints; the assumptions decide sympy's simplifications
    s = D.symbols()
    names = [str(v) for v in (s.x, s.y, s.mu, s.eta, s.r, s.rho, s.x0, s.y0)]
    assert names == ["x", "y", "mu", "eta", "r", "rho", "x_0", "y_0"]
    assert s.x.is_real and s.y.is_real and s.r.is_real and s.x.is_positive is None and s.r.is_positive is None
    assert s.mu.is_positive and s.eta.is_positive and s.rho.is_positive and s.x0.is_positive and s.y0.is_positive
    assert D.symbols() == s  # one set, shared (equal symbols: sympy compares names and assumptions)


def test_paper_step_size_off_the_papers_y0():
    # y0 = 1 hides y0**2 vs y0 * 2 or y0**3: a start with y0 = 2 (4 / (9 + 4 + 2))
    assert math.isclose(D.paper_step_size(3.0, 2.0, 0.5), 4 / 15, rel_tol=1e-15)
    s = D.symbols()
    assert sp.simplify(D.paper_step_size(s.x0, s.y0, s.mu) - 4 / (s.x0 ** 2 + s.y0 ** 2 + 4 * s.mu)) == 0
    with pytest.raises(KeyError, match="nope"):
        D._fn("nope")


def test_printed_symbols_of_the_derivations():
    # the names the chapter prints and the assumptions the results rest on
    gf = D.derive_gradient_flow_limit()
    assert str(gf.D0) == "D_0" and gf.D0.is_nonnegative
    mb = D.derive_matrix_balancing_bound()
    assert [str(v) for v in (mb.q, mb.nu, mb.rank)] == ["q", "nu", "r_A"]
    assert mb.q.is_positive and mb.nu.is_positive and mb.rank.is_positive
    sy = D.derive_matrix_imbalance_recursion().symbols
    assert [str(v) for v in (sy.X, sy.Y, sy.R, sy.Xt, sy.Yt, sy.Rt)] == ["X", "Y", "R", "X^T", "Y^T", "R^T"]
    assert not any(v.is_commutative for v in (sy.X, sy.Y, sy.R, sy.Xt, sy.Yt, sy.Rt))


# ---------------------------------------------------------------- invariants: gaps found by mutation ----------

def _limit_by_hand(x0, y0, mu, eta):
    """|d_inf| / eta from g(s) = |d0| w0 solved by scipy's brentq on [2m, s_peak], g and w typed here."""
    from scipy.optimize import brentq

    m = eta * mu
    w0 = 4 - eta * (x0 ** 2 + y0 ** 2) - eta ** 2 * mu * (mu - x0 * y0)
    c = eta * abs(x0 ** 2 - y0 ** 2) * w0
    g = lambda s: math.sqrt(max(s * s - 4 * m * m, 0.0)) * (4 - s)  # noqa: E731
    s = brentq(lambda s: g(s) - c, 2 * m, 1 + math.sqrt(1 + 2 * m * m), xtol=1e-15)
    return math.sqrt(max(s * s - 4 * m * m, 0.0)) / eta


def test_predicted_limit_imbalance_off_the_papers_starts():
    # y0 = 1 and mu = 2 hide y0**2 vs y0**3 and mu**2 vs mu*2: a start (5, 2), mu = 1.5, against the root found
    # by scipy (1e-9 relative) and against scalar GD (within 3 %: the neglected factor is O(eta^2) here)
    x0, y0, mu = 5.0, 2.0, 1.5
    for k in (0.5, 1.0):
        eta = k / (x0 ** 2 + y0 ** 2)
        got = D.predicted_limit_imbalance(x0, y0, mu, eta)
        assert isinstance(got, float) and math.isclose(got, _limit_by_hand(x0, y0, mu, eta), rel_tol=1e-9)
        run = S.scalar_gd(x0, y0, [eta], mu=mu, steps=20000, device="cpu")
        assert run.status.tolist() == [CONVERGED]
        assert math.isclose(abs(run.x[0] ** 2 - run.y[0] ** 2), got, rel_tol=0.03)
    # just below the edge (0 < w0 < 1 at the start) there is still a prediction: the same root
    eta = 0.99 * D.edge_eta(9.0, 1.0, 2.0)
    assert 0 < D.edge_w(9.0, 1.0, 2.0, eta) < 1
    assert math.isclose(D.predicted_limit_imbalance(9.0, 1.0, 2.0, eta), _limit_by_hand(9.0, 1.0, 2.0, eta), rel_tol=1e-9)
    # a start on the minimum x y = mu with a small imbalance (the root below s = 3m): GD stays, d is conserved
    assert math.isclose(D.predicted_limit_imbalance(2.0, 1.0, 2.0, 0.3), 3.0, rel_tol=1e-9)
    # element-wise in eta: an array in, an array out, each entry the scalar's
    etas = np.array([0.01, 0.02, 0.5])
    arr = D.predicted_limit_imbalance(9.0, 1.0, 2.0, etas)
    assert arr.shape == (3,) and np.isnan(arr[2])  # 0.5 is beyond the edge
    assert all(math.isclose(a, D.predicted_limit_imbalance(9.0, 1.0, 2.0, e), rel_tol=1e-15) for a, e in zip(arr[:2], etas))


def test_predicted_limit_imbalance_of_a_balanced_start_is_zero():
    # x0 = y0: d = 0 is multiplied by 1 - rho^2 at every step, so the limit is balanced exactly (not NaN)
    assert D.predicted_limit_imbalance(2.0, 2.0, 1.5, 0.1) == 0.0
    run = S.scalar_gd(2.0, 2.0, [0.1], mu=1.5, steps=5000, device="cpu")
    assert abs(run.x[0] ** 2 - run.y[0] ** 2) < 1e-12


def test_limit_ratio_by_hand():
    # x y = mu, x^2 - y^2 = D: x^2 = (D + sqrt(D^2 + 4 mu^2)) / 2; at D = 3, mu = 1.5: x^2 = (3 + sqrt(18)) / 2,
    # y^2 = mu^2 / x^2, ratio x / y = x^2 / mu
    x2 = (3 + math.sqrt(18)) / 2
    assert math.isclose(float(D.limit_ratio(3.0, 1.5)), x2 / 1.5, rel_tol=1e-14)
    assert math.isclose(float(D.limit_ratio(-3.0, 1.5)), x2 / 1.5, rel_tol=1e-14)
    assert np.allclose(D.limit_ratio(np.array([0.0, 3.0]), 1.5), [1.0, x2 / 1.5], rtol=1e-14)


def test_frozen_mode_sum_fields_by_hand_and_numerically():
    d = D.derive_frozen_mode_sum()
    e, lam, gam, r2 = d.eta, d.lam, d.gam, d.r2
    # the names the chapter prints and the assumptions its closed form rests on
    assert [str(v) for v in (lam, gam, r2)] == ["lambda", "gamma", "r2"] and all(v.is_positive for v in (lam, gam, r2))
    assert sp.expand(d.multiplier - (1 - e * (lam + gam))) == 0
    q, t = sp.Symbol("q", real=True), sp.Symbol("t", integer=True, nonnegative=True)
    assert sp.expand(d.increment - e ** 2 * (gam - lam) * r2 * q ** (2 * t)) == 0
    cases = {e: sp.Rational(1, 4), lam: 3, gam: 1}  # eta (lambda + gamma) = 1: q = 0
    assert d.converges_if.subs(cases) == sp.true
    assert d.converges_if.subs({e: sp.Rational(3, 4), lam: 3, gam: 1}) == sp.false  # q = -2
    assert d.converges_if.subs({e: sp.Rational(5, 8), lam: 3, gam: 1}) == sp.false  # q = -1.5
    assert d.converges_if.subs({e: sp.Rational(9, 20), lam: 3, gam: 1}) == sp.true  # q = -0.8
    # numerically on a frozen linear model: one mode r u v^T of R' = R - eta (K R + R G) is multiplied by the
    # multiplier, and its step-t increment of ||X||^2 - ||Y||^2 is eta^2 (gamma - lambda) r^2 q^(2t) (1e-12)
    rng = np.random.default_rng(5)
    X0, Y0 = rng.normal(size=(3, 3)), rng.normal(size=(3, 3))
    lam_, U = np.linalg.eigh(X0 @ X0.T)
    gam_, V = np.linalg.eigh(Y0 @ Y0.T)
    h, r = 0.3 / (lam_[-1] + gam_[-1]), 0.7
    R = r * np.outer(U[:, 2], V[:, 1])
    mult = float(d.multiplier.subs({e: h, lam: lam_[2], gam: gam_[1]}))
    for step in range(3):
        inc = h ** 2 * (np.sum((R @ Y0) ** 2) - np.sum((R.T @ X0) ** 2))
        want = float(d.increment.subs({e: h, lam: lam_[2], gam: gam_[1], r2: r * r, q: mult, t: step}))
        assert math.isclose(inc, want, rel_tol=1e-10, abs_tol=1e-14)
        R_next = R - h * (X0 @ X0.T @ R + R @ Y0 @ Y0.T)
        assert np.allclose(R_next, mult * R, rtol=1e-12, atol=1e-14)
        R = R_next


def test_frozen_mode_prediction_with_rank_deficient_factors():
    # X0, Y0 of shape (3, 1): X0 X0^T and Y0 Y0^T have two zero eigenvalues each, which eigh returns as
    # round-off (1e-15, of either sign); those modes never decay and carry no increment. The closed form
    # against the frozen linear model summed step by step (4000 steps; 1e-8 relative). Before the round-off
    # was set to 0 such modes counted, eta r2 (gamma - lambda) / (2 (lambda + gamma)) each: up to 4x off.
    rng = np.random.default_rng(0)
    for _ in range(3):
        A_, X0, Y0 = rng.normal(size=(3, 3)), 3 * rng.normal(size=(3, 1)), 0.3 * rng.normal(size=(3, 1))
        lam_, gam_, r2_ = D.frozen_modes(A_, X0, Y0)
        assert np.sum(lam_ == 0) == 2 and np.sum(gam_ == 0) == 2
        R, K, G = A_ - X0 @ Y0.T, X0 @ X0.T, Y0 @ Y0.T
        h = 0.5 / (lam_.max() + gam_.max())
        total, Rt = 0.0, R.copy()
        for _ in range(4000):
            total += h ** 2 * (np.sum((Rt @ Y0) ** 2) - np.sum((Rt.T @ X0) ** 2))
            Rt = Rt - h * (K @ Rt + Rt @ G)
        with np.errstate(invalid="ignore", divide="ignore"):
            assert math.isclose(D.predicted_matrix_imbalance_change(A_, X0, Y0, h), total, rel_tol=1e-8)


def test_matrix_predictions_element_wise_and_by_hand():
    # predicted_matrix_imbalance_change: an eta beyond 2 / max(lambda + gamma) first, then one below: NaN, then the
    # scalar call's value (each entry on its own); a scalar eta gives a float
    A_, X0, Y0 = S.make_gaussian_problem(3, 3, x_scale=3.0, y_scale=0.3, seed=4)
    lam_, gam_, _ = D.frozen_modes(A_, X0, Y0)
    Smax = lam_.max() + gam_.max()
    one = D.predicted_matrix_imbalance_change(A_, X0, Y0, 0.5 / Smax)
    both = D.predicted_matrix_imbalance_change(A_, X0, Y0, np.array([2.5 / Smax, 0.5 / Smax]))
    assert isinstance(one, float) and np.isnan(both[0]) and both[1] == one
    # the mode edge where the quadratic's leading coefficient is exactly 1: mu = 1, sigma = 2, p = 1 gives
    # eta^2 - 5 eta + 4 = 0 (w = 4 - 5 eta + eta^2), roots 1 and 4: the edge is 1 (by hand)
    assert D.predicted_matrix_edge(np.array([[1.0]]), np.array([[2.0]]), np.array([[1.0]])) == pytest.approx(1.0, rel=1e-12)


def test_mode_gd_flags_and_freezes_a_diverged_eta_alone():
    # mode_gd's contract: a diverged eta is flagged and its modes are frozen within the bound (finite); the other
    # etas of the batch run on, as they do alone
    A_, X0, Y0 = S.make_gaussian_problem(3, 3, x_scale=3.0, y_scale=0.3, seed=1)
    edge = D.predicted_matrix_edge(A_, X0, Y0)
    md = D.matrix_modes(A_, X0, Y0)
    x, p, z, div = D.mode_gd(md, [0.5 * edge, 1.2 * edge], 3000)
    assert div.tolist() == [False, True]
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(p)) and np.all(np.isfinite(z))
    assert max(np.abs(x[1]).max(), np.abs(p[1]).max(), np.abs(z[1]).max()) <= 1e6
    alone = D.mode_gd(md, [0.5 * edge], 3000)
    assert np.array_equal(alone[0][0], x[0]) and np.array_equal(alone[1][0], p[0]) and not alone[3][0]


def test_matrix_modes_by_hand_on_thin_and_degenerate_starts():
    # X0 of shape (3, 2) (the thin SVD: two modes), each mode's p and z from its definition (1e-12)
    rng = np.random.default_rng(8)
    A_, X0, Y0 = rng.normal(size=(3, 3)), rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    md = D.matrix_modes(A_, X0, Y0)
    U, sig, Wt = np.linalg.svd(X0, full_matrices=False)
    assert md.sigma.shape == md.mu.shape == md.p.shape == md.z.shape == (2,)
    for i in range(2):
        a, y = A_.T @ U[:, i], Y0 @ Wt[i]
        p = a @ y / np.linalg.norm(a)
        assert math.isclose(md.mu[i], np.linalg.norm(a), rel_tol=1e-12) and math.isclose(md.p[i], p, rel_tol=1e-12)
        assert math.isclose(md.z[i], np.linalg.norm(y - p * a / np.linalg.norm(a)), rel_tol=1e-12)
    # a mode whose a_i = A^T u_i is 0 (A = 0): no part along a_i, all of y_i across it
    md0 = D.matrix_modes(np.zeros((2, 2)), np.diag([2.0, 1.0]), np.array([[0.3, 0.4], [0.0, 0.5]]))
    assert np.all(md0.mu == 0) and np.all(md0.p == 0) and np.allclose(md0.z, [0.3, np.hypot(0.4, 0.5)], rtol=1e-12)
    # the printed symbols of the mode reduction
    d = D.derive_mode_reduction()
    assert [str(d.p), str(d.z)] == ["p", "z"] and d.p.is_real and d.z.is_real


def test_mode_prediction_of_a_one_by_one_problem_is_scalar_gd():
    # n = 1: z = 0 exactly at every step; the mode prediction is the scalar problem's GD (1e-10 relative)
    A1, X1, Y1 = np.array([[2.0]]), np.array([[9.0]]), np.array([[1.0]])
    eta = 0.5 * D.edge_eta(9.0, 1.0, 2.0)
    pred = D.predicted_matrix_imbalance_change_modes(A1, X1, Y1, eta, 5000)
    run = S.scalar_gd(9.0, 1.0, [eta], mu=2.0, steps=5000, device="cpu")
    assert math.isclose(pred, (run.x[0] ** 2 - run.y[0] ** 2) - 80.0, rel_tol=1e-10)


# ---------------------------------------------------------------- invariants: every field by hand (session 5) ----------

def test_reduced_map_every_field_by_hand_and_along_gd():
    # the names the chapter prints (w = -m*rho - s + 4) and the assumption (real) of the scaled coordinates
    rm = D.derive_reduced_map()
    assert [str(v) for v in (rm.rho, rm.s, rm.d, rm.m)] == ["rho", "s", "d", "m"]
    assert all(v.is_real for v in (rm.rho, rm.s, rm.d, rm.m))
    # rho' = eta (mu - x' y') with x' y' = p + eta r S + eta^2 r^2 p (the hand step): rho (1 - s - rho (m - rho))
    assert sp.expand(rm.rho_next - rm.rho * (1 - rm.s - rm.rho * (rm.m - rm.rho))) == 0
    # (x^2 + y^2)^2 - (x^2 - y^2)^2 = 4 x^2 y^2: s^2 - d^2 = 4 (m - rho)^2
    assert sp.expand(rm.constraint - (rm.s ** 2 - rm.d ** 2 - 4 * (rm.m - rm.rho) ** 2)) == 0
    # 25 GD steps (numpy, typed here) from a start off the paper's (y0 < 0, mu = 1/2): the map iterated in
    # (rho, s, d) follows GD's scaled coordinates, and the constraint vanishes on every state (1e-10: round-off)
    step = sp.lambdify((rm.rho, rm.s, rm.d, rm.m), (rm.rho_next, rm.s_next, rm.d_next))
    cons = sp.lambdify((rm.rho, rm.s, rm.d, rm.m), rm.constraint)
    x, y, mu, eta = 1.3, -0.7, 0.5, 0.4
    state = (eta * (mu - x * y), eta * (x * x + y * y), eta * (x * x - y * y))
    for _ in range(25):
        r = mu - x * y
        x, y = x + eta * y * r, y + eta * x * r
        state = step(*state, eta * mu)
        want = (eta * (mu - x * y), eta * (x * x + y * y), eta * (x * x - y * y))
        assert np.allclose(state, want, rtol=1e-10, atol=1e-12), (state, want)
        assert abs(cons(*state, eta * mu)) < 1e-10


def test_edge_invariant_every_field_by_hand():
    ei = D.derive_edge_invariant()
    s = D.symbols()
    x, y, mu, eta = s.x, s.y, s.mu, s.eta
    assert sp.expand(ei.w_xy - (4 - eta * (x ** 2 + y ** 2) - eta ** 2 * mu * (mu - x * y))) == 0
    # the edge at starts off the paper's, both signs of mu - x0 y0 (the smallest positive root, by hand):
    # (3, 2), mu = 1/2: 4 - 13 eta + 11/4 eta^2 = 0, eta = (13 - sqrt(125)) / (11/2);
    # (1, 1/2), mu = 2: 4 - 5/4 eta - 3 eta^2 = 0, eta = (-5/4 + sqrt(25/16 + 48)) / 6
    cases = [((3, 2, sp.Rational(1, 2)), (13 - math.sqrt(125)) / 5.5),
             ((1, sp.Rational(1, 2), 2), (-1.25 + math.sqrt(1.5625 + 48)) / 6)]
    for (x0, y0, m_), want in cases:
        assert math.isclose(float(ei.eta_edge.subs({s.x0: x0, s.y0: y0, s.mu: m_})), want, rel_tol=1e-12)
        assert math.isclose(D.edge_eta(float(x0), float(y0), float(m_)), want, rel_tol=1e-12)
    # and it is the edge: scalar GD converges at 0.99 of it and diverges at 1.01 of it (two starts off the paper's)
    for x0, y0, m_ in [(3.0, 2.0, 0.5), (5.0, -1.0, 1.0)]:
        e = D.edge_eta(x0, y0, m_)
        run = S.scalar_gd(x0, y0, [0.99 * e, 1.01 * e], mu=m_, steps=2000, device="cpu")
        assert run.status.tolist() == [CONVERGED, DIVERGED]
    # on w = 0 one GD step maps rho to rho^3 - 3 rho (numpy GD from a start on its edge, 1e-9 relative)
    x0, y0, m_ = 3.0, 2.0, 0.5
    e = D.edge_eta(x0, y0, m_)
    rho0 = e * (m_ - x0 * y0)
    x1, y1 = x0 + e * y0 * (m_ - x0 * y0), y0 + e * x0 * (m_ - x0 * y0)
    assert math.isclose(e * (m_ - x1 * y1), rho0 ** 3 - 3 * rho0, rel_tol=1e-9)
    assert math.isclose(float(ei.on_curve.subs(sp.Symbol("rho", real=True), rho0)), rho0 ** 3 - 3 * rho0, rel_tol=1e-12)
    # the balanced period-2 orbit x = y = sqrt(mu + 2/eta): one GD step negates it, and it lies on w = 0
    m_, h = 0.5, 0.3
    c = math.sqrt(m_ + 2 / h)
    assert math.isclose(c + h * c * (m_ - c * c), -c, rel_tol=1e-12)
    assert abs(D.edge_w(c, c, m_, h)) < 1e-12
    # factor = 1 + rho^2 - m rho > 0 for every rho exactly when m < 2: its minimum over rho is 1 - m^2/4
    f = sp.lambdify((sp.Symbol("rho", real=True), sp.Symbol("m", real=True)), ei.factor)
    grid = np.linspace(-5, 5, 100001)
    assert f(grid, 1.99).min() > 0 and f(grid, 2.01).min() < 0
    assert math.isclose(f(0.7, 1.4), 1 + 0.49 - 0.98, rel_tol=1e-12)


def test_limit_invariant_every_field_by_hand_and_along_gd():
    li = D.derive_limit_invariant()
    rm = D.derive_reduced_map()
    # g at a minimum x y = mu (off the paper's: x = 2.5, mu = 1/2, eta = 0.3): |d| (4 - s) from the point itself
    x, mu, eta = 2.5, 0.5, 0.3
    y = mu / x
    sv, dv, mv = eta * (x * x + y * y), eta * (x * x - y * y), eta * mu
    assert math.isclose(float(li.g.subs({rm.s: sv, rm.m: mv})), abs(dv) * (4 - sv), rel_tol=1e-12)
    # the product factor along scalar GD (numpy, w typed here): (d w)_{k+1} / (d w)_k at each of 20 steps (1e-9)
    fac = sp.lambdify((rm.rho, rm.m), li.product_factor)
    x, y, mu, eta = 3.0, 2.0, 0.5, 0.2
    w = lambda x, y: 4 - eta * (x * x + y * y) - eta ** 2 * mu * (mu - x * y)  # noqa: E731
    for _ in range(20):
        r = mu - x * y
        dw = (x * x - y * y) * w(x, y)
        xn, yn = x + eta * y * r, y + eta * x * r
        dw_next = (xn * xn - yn * yn) * w(xn, yn)
        assert math.isclose(dw_next / dw, fac(eta * r, eta * mu), rel_tol=1e-9)
        x, y = xn, yn


def test_matrix_residual_step_and_mode_reduction_each_part_by_hand():
    # each power of eta of R' on its own (typed here): linear -eta (X X^T R + R Y Y^T), second -eta^2 R Y X^T R
    st = D.derive_matrix_residual_step()
    X, Y, R, Xt, Yt = sp.symbols("X Y R X^T Y^T", commutative=False)
    eta = D.symbols().eta
    assert sp.expand(st.linear + eta * (X * Xt * R + R * Y * Yt)) == 0
    assert sp.expand(st.second + eta ** 2 * R * Y * Xt * R) == 0
    # the transverse step of a mode: z' = z - eta df/dz = (1 - eta x^2) z
    d = D.derive_mode_reduction()
    assert sp.expand(d.z_next - (1 - d.eta * d.x ** 2) * d.z) == 0


def test_predictions_compute_in_float64_whatever_the_input_dtype():
    # float32 inputs give the float64 computation on the same numbers (each float32 is a float64 exactly)
    e32 = np.array([0.01, 0.02, 0.04], dtype=np.float32)
    got = D.predicted_limit_imbalance(9.0, 1.0, 2.0, e32)
    assert got.dtype == np.float64 and np.array_equal(got, D.predicted_limit_imbalance(9.0, 1.0, 2.0, e32.astype(np.float64)))
    d32 = np.array([0.3, 3.0, 70.0], dtype=np.float32)
    got = D.limit_ratio(d32, 1.5)
    assert got.dtype == np.float64 and np.array_equal(got, D.limit_ratio(d32.astype(np.float64), 1.5))
    A_, X0, Y0 = S.make_gaussian_problem(3, 3, x_scale=3.0, y_scale=0.3, seed=4)
    A32, X32, Y32 = (v.astype(np.float32) for v in (A_, X0, Y0))
    A64, X64, Y64 = (v.astype(np.float64) for v in (A32, X32, Y32))
    for u, v in zip(D.frozen_modes(A32, X32, Y32), D.frozen_modes(A64, X64, Y64)):
        assert u.dtype == np.float64 and np.array_equal(u, v)
    m32, m64 = D.matrix_modes(A32, X32, Y32), D.matrix_modes(A64, X64, Y64)
    for f in ("sigma", "mu", "p", "z"):
        assert getattr(m32, f).dtype == np.float64 and np.array_equal(getattr(m32, f), getattr(m64, f))


def test_predicted_limit_imbalance_exactly_on_the_edge_is_nan():
    # (4, 1), mu = 2, eta = 1/4: w0 = 4 - 17/4 + 1/4 = 0 exactly in floating point. w = 0 is invariant
    # (w' = w (1 + rho^2 - m rho)) and a limit needs w = 4 - s >= 2: no limit, no prediction
    assert D.edge_w(4.0, 1.0, 2.0, 0.25) == 0.0
    assert math.isnan(D.predicted_limit_imbalance(4.0, 1.0, 2.0, 0.25))


def _mode(x, p, z, mu):
    return D.MatrixModes(sigma=np.array([x]), mu=np.array([mu]), p=np.array([p]), z=np.array([z]))


def _mode_step_by_hand(x, p, z, mu, eta):
    """One GD step on (mu - x p)^2/2 + x^2 z^2/2, typed here."""
    return x + eta * ((mu - x * p) * p - x * z * z), p + eta * x * (mu - x * p), z - eta * x * x * z


def test_mode_gd_bound_contract_coordinate_by_coordinate():
    # mode_gd's contract with bound = 1: an eta whose step takes any one of |x|, |p|, |z| beyond it is flagged and
    # frozen at its last state (here the start); the batch's other eta (a small one) takes its step (by hand)
    cases = [((0.0, 0.9, 0.0, 2.0), 1.0),   # x' = 1.8 alone beyond 1
             ((0.9, 0.0, 0.0, 2.0), 1.0),   # p' = 1.8 alone
             ((0.9, 0.0, 0.8, 0.3), 3.0)]   # z' = -1.144 alone (x' = -0.828, p' = 0.81)
    for (x, p, z, mu), eta in cases:
        nxt = _mode_step_by_hand(x, p, z, mu, eta)
        assert sum(abs(v) > 1 for v in nxt) == 1, nxt
        xs, ps, zs, div = D.mode_gd(_mode(x, p, z, mu), [eta, 0.05], 1, bound=1.0)
        assert div.tolist() == [True, False]
        assert (xs[0, 0], ps[0, 0], zs[0, 0]) == (x, p, z)
        assert np.allclose([xs[1, 0], ps[1, 0], zs[1, 0]], _mode_step_by_hand(x, p, z, mu, 0.05), rtol=1e-14, atol=0)
    # exactly at the bound is inside: (1, 0, 2), mu = 2, eta = 1/2 steps to (-1, 1, 1) exactly (the start may be outside)
    assert _mode_step_by_hand(1.0, 0.0, 2.0, 2.0, 0.5) == (-1.0, 1.0, 1.0)
    xs, ps, zs, div = D.mode_gd(_mode(1.0, 0.0, 2.0, 2.0), [0.5], 1, bound=1.0)
    assert not div[0] and (xs[0, 0], ps[0, 0], zs[0, 0]) == (-1.0, 1.0, 1.0)
    # no step: the start, one row per eta
    md = _mode(3.0, 0.1, 0.2, 1.0)
    xs, ps, zs, div = D.mode_gd(md, [0.1, 0.2], 0)
    assert xs.shape == ps.shape == zs.shape == (2, 1) and np.all(xs == 3.0) and np.all(zs == 0.2) and not div.any()


def test_mode_gd_stops_only_at_a_fixed_point(monkeypatch):
    # a start whose first step leaves x unchanged (p = 0) and one that leaves p unchanged (x = 0): the run goes on,
    # as GD typed here does (1e-12 relative over 300 steps)
    for x, p, z, mu in [(2.0, 0.0, 0.0, 1.0), (0.0, 0.5, 0.0, 1.0), (1.5, 0.0, 0.0, 2.0)]:
        eta = 0.05
        want = (x, p, z)
        for _ in range(300):
            want = _mode_step_by_hand(*want, mu, eta)
        xs, ps, zs, div = D.mode_gd(_mode(x, p, z, mu), [eta], 300)
        assert not div[0] and np.allclose([xs[0, 0], ps[0, 0], zs[0, 0]], want, rtol=1e-12, atol=1e-300)
    # a converging run stops once a step changes no number: far fewer steps than asked, the same state
    from lrtheory.results.balancing import matrix_invariant as MI

    real, calls = MI._mode_step_fn(), []
    monkeypatch.setattr(MI, "_mode_step_fn", lambda: (lambda *a: calls.append(1) or real(*a)))
    md = _mode(3.0, 0.1, 0.0, 1.0)
    xs, ps, zs, div = D.mode_gd(md, [0.05], 200000)
    assert 0 < len(calls) < 20000 and not div[0]
    assert math.isclose(xs[0, 0] * ps[0, 0], 1.0, rel_tol=1e-12)  # at the minimum x p = mu


def test_frozen_mode_prediction_exactly_at_the_mode_edge_is_nan():
    # X0 = 2, Y0 = 0 (1 x 1): lambda = 4, gamma = 0; at eta = 1/2 the mode's q = 1 - eta (lambda + gamma) = -1
    # exactly: |q| = 1, the series does not converge, no prediction (the closed form there is r2 (4) / 0)
    assert math.isnan(D.predicted_matrix_imbalance_change(np.array([[1.0]]), np.array([[2.0]]), np.array([[0.0]]), 0.5))
    # just inside, by hand: R = 1 decays by q = 1 - 4 eta per step and each step adds eta^2 (gamma - lambda) R^2, so
    # the sum is -4 eta^2 / (1 - q^2)
    h = 0.49
    want = -4 * h * h / (1 - (1 - 4 * h) ** 2)
    got = D.predicted_matrix_imbalance_change(np.array([[1.0]]), np.array([[2.0]]), np.array([[0.0]]), h)
    assert math.isclose(got, want, rel_tol=1e-12)


def test_psd_round_off_zeroes_what_matrix_rank_does_and_a_dead_mode_never_diverges():
    # the eigenvalues kept are those numpy.linalg.matrix_rank counts (tol = size * eps * max): on a factor whose
    # largest eigenvalue is below 1 (1e-2) a genuine 1e-17 is kept and an exact 0 is not
    X0 = np.diag([0.1, math.sqrt(1e-17), 0.0])
    lam, _, _ = D.frozen_modes(np.eye(3), X0, np.eye(3))
    assert np.sum(lam > 0) == np.linalg.matrix_rank(X0 @ X0.T) == 2
    # a mode with sigma = p = mu = 0 (A = 0, a zero column of X0, Y0 = 0): w = 4 at every eta, no edge (inf)
    with np.errstate(divide="ignore"):  # its linear edge -c0 / c1 is -4 / 0
        e = D.mode_edges(np.zeros((2, 2)), np.diag([2.0, 0.0]), np.zeros((2, 2)))
    assert np.isinf(e[1]) and math.isclose(e[0], 1.0, rel_tol=1e-12)  # mode 0: eta 4 = 4, w = 4 - 4 eta
