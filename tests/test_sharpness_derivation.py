"""Chapter 01 (lrtheory.results.sharpness): derivations, infinite-width kernel, power-law fit."""
import math

import numpy as np
import pytest
import sympy as sp
import torch

from lrtheory.results.sharpness import CHAPTER, analysis as A, derivation as D


# ---------------------------------------------------------------- symbolic side (exact)
def test_relu_moments_and_recursions():
    m = D.relu_gaussian_moments()
    assert sp.simplify(m.E_relu2 - m.q / 2) == 0 and m.E_step == sp.Rational(1, 2)
    r = D.derive_moment_recursions()
    # He init preserves both second moments: constant in the layer index
    assert sp.simplify(r.A - r.n * r.X / r.d0) == 0
    assert sp.simplify(r.B - 1) == 0


def test_ntk_diagonal_closed_form_and_growth():
    d = D.derive_ntk_diagonal()
    L, n, d0, X, rho = d.L, d.n, d.d0, d.X, d.rho_in
    assert sp.simplify(d.theta - (rho * X + L * n * X / d0)) == 0
    g = D.derive_lambda1_growth()
    assert g.asymptotic_exponent == 1
    assert sp.simplify(g.slope.subs({g.P: g.d0 * g.rho_in}) - sp.Rational(1, 2)) == 0
    b = D.derive_lambda1_bounds()
    assert sp.simplify(b.upper - b.k * b.Xbar * (1 + b.L * b.n / b.d0)) == 0


def test_derivations_are_frozen_dataclasses():
    import dataclasses

    for fn in (D.relu_gaussian_moments, D.derive_moment_recursions, D.derive_ntk_diagonal,
               D.derive_lambda1_growth, D.derive_lambda1_bounds):
        out = fn()
        assert dataclasses.is_dataclass(out) and type(out).__dataclass_params__.frozen
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(out, dataclasses.fields(out)[0].name, None)


def test_gram_diagonal_matches_closed_form():
    x = np.random.default_rng(0).normal(size=(7, 5))
    for L, n, rho in [(1, 3, 1.0), (4, 16, 0.1)]:
        gram = D.ntk_gram_infinite_width(x, L, n, rho_in=rho)
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
    theory = D.ntk_gram_infinite_width(x.numpy(), L, n)
    mean = emp.mean(0)
    se = emp.std(0, ddof=1) / math.sqrt(seeds)
    # 4 Monte Carlo standard errors plus 5% for the O(L/n) finite-width bias
    assert np.all(np.abs(mean - theory) <= 4 * se + 0.05 * np.abs(theory).max())


def test_predict_lambda1_orders_its_bounds():
    x = np.random.default_rng(2).normal(size=(20, 8))
    p = D.predict_lambda1(x, 3, 32, 10)
    assert p.lower <= p.point <= p.upper


def test_predictions_of_the_ci_config_need_no_training():
    cfg = CHAPTER.config("ci")
    preds = D.predict_config(cfg)
    assert [a for a, _ in preds] == list(cfg.archs)
    x, k = D.experiment_inputs(cfg)
    assert x.shape == (cfg.n_sharp, 64) and k == 10
    # the exponent of the point prediction lies below the asymptotic 1 (the input term bends it)
    assert 0.8 < D.predict_growth_exponent(preds) < 1.0


# ---------------------------------------------------------------- power-law fit
def test_fit_power_law_exact_and_ci():
    f = A.fit_power_law([1, 2, 4, 8], [3, 1.5, 0.75, 0.375])
    assert abs(f.slope + 1.0) < 1e-12 and abs(f.r2 - 1) < 1e-12 and f.slope_se < 1e-10
    rng = np.random.default_rng(0)
    x = np.geomspace(10, 1000, 30)
    y = 2 * x**-0.5 * np.exp(rng.normal(0, 0.05, x.size))
    f = A.fit_power_law(x, y)
    assert f.ci[0] < -0.5 < f.ci[1] and f.r2 > 0.95
    np.testing.assert_allclose(f.predict([100.0]), np.exp(f.intercept) * 100**f.slope)


def test_fit_power_law_drops_non_finite_points():
    f = A.fit_power_law([1, 2, 4, 8, 16], [3, 1.5, 0.75, 0.375, np.nan])  # a search that found nothing
    assert f.n == 4 and abs(f.slope + 1.0) < 1e-12


@pytest.mark.parametrize("x, y, match", [([1, 2], [1, 2], "at least 3"), ([1, 2, 3], [1, 2], "shape"),
                                         ([1, -2, 3], [1, 2, 3], "positive")])
def test_fit_power_law_rejects_bad_input(x, y, match):
    with pytest.raises(ValueError, match=match):
        A.fit_power_law(x, y)


def test_bad_arguments_raise():
    from lrtheory.results.sharpness.measurements import measure_grid

    with pytest.raises(ValueError, match="scale"):
        CHAPTER.config("huge")
    with pytest.raises(ValueError, match="scale"):
        measure_grid("huge")
    with pytest.raises(ValueError, match="depth"):
        D.ntk_gram_infinite_width(np.ones((2, 3)), 0, 4)
    with pytest.raises(ValueError, match="width"):
        D.ntk_gram_infinite_width(np.ones((2, 3)), 1, -4)
    with pytest.raises(ValueError, match="x"):
        D.ntk_gram_infinite_width(np.ones(3), 1, 4)
    with pytest.raises(ValueError, match="rho_in"):
        D.ntk_gram_infinite_width(np.ones((2, 3)), 1, 4, rho_in=0.0)
    with pytest.raises(ValueError, match="n_out"):
        D.predict_lambda1(np.ones((2, 3)), 1, 4, 0)
    with pytest.raises(ValueError, match="which"):
        D.predict_config(CHAPTER.config("ci"), "wide")
