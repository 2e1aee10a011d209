"""Chapter 01 (lrtheory.results.sharpness): derivations, kernel, fit, claims and their failure modes."""
import math

import numpy as np
import pytest
import sympy as sp
import torch

from lrtheory.claims import check_claims, select
from lrtheory.results import sharpness as S


# ---------------------------------------------------------------- symbolic side (exact)
def test_relu_moments_and_recursions():
    m = S.relu_gaussian_moments()
    assert sp.simplify(m["E_relu2"] - m["q"] / 2) == 0 and m["E_step"] == sp.Rational(1, 2)
    r = S.derive_moment_recursions()
    # He init preserves both second moments: constant in the layer index
    assert sp.simplify(r["A"] - r["n"] * r["X"] / r["d0"]) == 0
    assert sp.simplify(r["B"] - 1) == 0


def test_ntk_diagonal_closed_form_and_growth():
    d = S.derive_ntk_diagonal()
    L, n, d0, X, rho = d["L"], d["n"], d["d0"], d["X"], d["rho_in"]
    assert sp.simplify(d["theta"] - (rho * X + L * n * X / d0)) == 0
    g = S.derive_lambda1_growth()
    assert g["asymptotic_exponent"] == 1
    assert sp.simplify(g["slope"].subs({g["P"]: g["d0"] * g["rho_in"]}) - sp.Rational(1, 2)) == 0
    b = S.derive_lambda1_bounds()
    assert sp.simplify(b["upper"] - b["k"] * b["Xbar"] * (1 + b["L"] * b["n"] / b["d0"])) == 0


def test_gram_diagonal_matches_closed_form():
    x = np.random.default_rng(0).normal(size=(7, 5))
    for L, n, rho in [(1, 3, 1.0), (4, 16, 0.1)]:
        gram = S.ntk_gram_infinite_width(x, L, n, rho_in=rho)
        want = (x**2).sum(1) * (rho + L * n / x.shape[1])
        np.testing.assert_allclose(np.diag(gram), want, rtol=1e-12)  # round-off only
        assert np.all(np.linalg.eigvalsh(gram) > -1e-9 * want.max())  # a kernel: PSD


def test_infinite_width_ntk_against_monte_carlo():
    """Empirical NTK of wide He-init ReLU nets vs the arc-cosine formula (diagonal and one off-diagonal)."""
    from lrtheory.core.mlp import MLPSpec, forward, init_params

    d0, L, n, seeds = 6, 2, 256, 16
    x = torch.tensor(np.random.default_rng(1).normal(size=(2, d0)))
    spec = MLPSpec(d_in=d0, width=n, depth=L, d_out=1)
    P = [p.requires_grad_(True) for p in init_params(spec, seeds, seed=3)]
    out = forward(spec, P, x)[:, :, 0]  # (K, 2)
    J = [torch.autograd.grad(out[:, i].sum(), P, retain_graph=True) for i in range(2)]
    emp = np.zeros((seeds, 2, 2))
    for i in range(2):
        for j in range(2):
            emp[:, i, j] = sum((a * b).flatten(1).sum(1) for a, b in zip(J[i], J[j])).detach().numpy()
    theory = S.ntk_gram_infinite_width(x.numpy(), L, n)
    mean = emp.mean(0)
    se = emp.std(0, ddof=1) / math.sqrt(seeds)
    # 4 Monte Carlo standard errors plus 5% for the O(L/n) finite-width bias
    assert np.all(np.abs(mean - theory) <= 4 * se + 0.05 * np.abs(theory).max())


def test_predict_lambda1_orders_its_bounds():
    x = np.random.default_rng(2).normal(size=(20, 8))
    p = S.predict_lambda1(x, 3, 32, 10)
    assert p["lower"] <= p["point"] <= p["upper"]


# ---------------------------------------------------------------- power-law fit
def test_fit_power_law_exact_and_ci():
    f = S.fit_power_law([1, 2, 4, 8], [3, 1.5, 0.75, 0.375])
    assert f.slope == -1.0 and abs(f.r2 - 1) < 1e-12 and f.stderr < 1e-10
    rng = np.random.default_rng(0)
    x = np.geomspace(10, 1000, 30)
    y = 2 * x**-0.5 * np.exp(rng.normal(0, 0.05, x.size))
    f = S.fit_power_law(x, y)
    assert f.ci[0] < -0.5 < f.ci[1] and f.r2 > 0.95
    np.testing.assert_allclose(f.predict([100.0]), np.exp(f.intercept) * 100**f.slope)


@pytest.mark.parametrize("x, y, match", [([1, 2], [1, 2], "at least 3"), ([1, 2, 3], [1, 2], "shape"),
                                         ([1, -2, 3], [1, 2, 3], "positive")])
def test_fit_power_law_rejects_bad_input(x, y, match):
    with pytest.raises(ValueError, match=match):
        S.fit_power_law(x, y)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="scale"):
        S.config("huge")
    with pytest.raises(ValueError, match="scale"):
        S.measure_grid("huge")
    with pytest.raises(ValueError, match="depth"):
        S.ntk_gram_infinite_width(np.ones((2, 3)), 0, 4)
    with pytest.raises(ValueError, match="width"):
        S.ntk_gram_infinite_width(np.ones((2, 3)), 1, -4)
    with pytest.raises(ValueError, match="x"):
        S.ntk_gram_infinite_width(np.ones(3), 1, 4)
    with pytest.raises(ValueError, match="rho_in"):
        S.ntk_gram_infinite_width(np.ones((2, 3)), 1, 4, rho_in=0.0)


# ---------------------------------------------------------------- claims at CI scale
IDS = ["sharpness.eta_star_power_law", "sharpness.lambda1_bounds", "sharpness.lambda1_growth",
       "sharpness.not_inverse"]


@pytest.fixture(scope="module")
def verdicts():
    return {v.id: v for v in check_claims("sharpness", scale="ci", device="cpu")}


def test_claims_registered():
    assert [c.id for c in select(["sharpness"])] == IDS


def test_all_claims_pass_at_ci_scale(verdicts):
    assert set(verdicts) == set(IDS)
    for v in verdicts.values():
        assert v.passed, (v.id, v.predicted, v.measured, v.details)


def test_measurements_are_deterministic():
    # one architecture of the grid, searched and measured twice: same seeds, same numbers, bit for bit
    cfg = S.config("ci")
    dev = torch.device("cpu")
    ds = S._dataset(cfg, dev)
    a, b = S._search(cfg, ds, 2, 16, cfg.input_lr_mult, dev), S._search(cfg, ds, 2, 16, cfg.input_lr_mult, dev)
    assert a.runs == b.runs and a.eta_star == b.eta_star
    la, lb = S._sharpness(cfg, ds, 2, 16, dev), S._sharpness(cfg, ds, 2, 16, dev)
    np.testing.assert_array_equal(la[0], lb[0])
    np.testing.assert_array_equal(la[1], lb[1])


def _claim(cid):
    return select([cid])[0]


def test_growth_fails_with_a_wrong_exponent(verdicts):
    v, c = verdicts["sharpness.lambda1_growth"], _claim("sharpness.lambda1_growth")
    assert c.compare(v.predicted, v.measured, c.tolerance)[0]
    assert not c.compare(v.predicted + 1.0, v.measured, c.tolerance)[0]  # e.g. lambda_1 ~ (Ln)^2
    assert not c.compare(v.predicted - 0.9, v.measured, c.tolerance)[0]  # lambda_1 flat in Ln


def test_bounds_fail_when_tightened(verdicts):
    v, c = verdicts["sharpness.lambda1_bounds"], _claim("sharpness.lambda1_bounds")
    up = {k: (x * 0.1 if k.startswith("upper/") else x) for k, x in v.predicted.items()}
    lo = {k: (x * 10.0 if k.startswith("lower/") else x) for k, x in v.predicted.items()}
    assert not c.compare(up, v.measured, c.tolerance)[0]
    assert not c.compare(lo, v.measured, c.tolerance)[0]


def test_power_law_fails_with_wrong_prediction(verdicts):
    v, c = verdicts["sharpness.eta_star_power_law"], _claim("sharpness.eta_star_power_law")
    assert not c.compare({**v.predicted, "exponent_max": 0.1}, v.measured, c.tolerance)[0]
    assert not c.compare({**v.predicted, "r2_min": 0.99}, v.measured, c.tolerance)[0]
    assert not c.compare(v.predicted, {**v.measured, "exponent": -0.2}, c.tolerance)[0]  # eta* growing


def test_not_inverse_fails_for_an_inverse_law(verdicts):
    v, c = verdicts["sharpness.not_inverse"], _claim("sharpness.not_inverse")
    # the edge above every measured product, a flat product, or uncorrelated quantities: each fails
    assert not c.compare(v.measured["max_product"] * 2, v.measured, c.tolerance)[0]
    assert not c.compare(v.predicted, {**v.measured, "slope": 0.0}, c.tolerance)[0]
    assert not c.compare(v.predicted, {**v.measured, "corr": 0.0}, c.tolerance)[0]


def test_growth_claim_fails_when_the_derivation_is_wrong(monkeypatch, verdicts):
    """Perturb a derived quantity: a kernel whose hidden layers do not scale with n."""
    c = _claim("sharpness.lambda1_growth")
    orig = S.ntk_gram_infinite_width
    monkeypatch.setattr(S, "ntk_gram_infinite_width", lambda x, L, n, rho_in=1.0: orig(x, L, 1, rho_in))
    S._predictions.cache_clear()
    try:
        v = c.check("ci", "cpu")
        assert not v.passed
    finally:
        monkeypatch.undo()
        S._predictions.cache_clear()


@pytest.mark.full
def test_claims_pass_at_full_scale():
    """Paper-sized grid (MNIST-1D, widths 128-1024, depths up to 16, 5 seeds): meant for a GPU."""
    for v in check_claims("sharpness", scale="full"):
        assert v.passed, (v.id, v.predicted, v.measured, v.details)
