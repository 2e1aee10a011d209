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


# ---------------------------------------------------------------- independent checks of each formula
# (numerical integration, Monte Carlo over He-init networks, finite differences, limits): none of
# them reuses the derivation's own algebra.
def _mc_spec_params(d0, L, n, k, seeds, seed):
    from lrtheory.core.mlp import MLPSpec, init_params

    spec = MLPSpec(d_in=d0, width=n, depth=L, d_out=k)
    return spec, [p.requires_grad_(True) for p in init_params(spec, seeds, seed=seed)]


def _mc_gram(spec, P, x):
    """Empirical NTK Gram matrices per model, (K, N k, N k), rows ordered (example, output)."""
    from lrtheory.core.mlp import forward

    out = forward(spec, P, x)  # (K, N, k)
    rows = []
    for i in range(out.shape[1]):
        for o in range(out.shape[2]):
            g = torch.autograd.grad(out[:, i, o].sum(), P, retain_graph=True)
            rows.append(torch.cat([a.flatten(1) for a in g], 1))
    J = torch.stack(rows, 1)
    return (J @ J.transpose(1, 2)).detach().numpy()


def test_relu_moments_by_numerical_integration():
    from scipy import integrate

    m = D.relu_gaussian_moments()
    for q in (0.3, 1.0, 2.7):
        dens = lambda z: math.exp(-z * z / (2 * q)) / math.sqrt(2 * math.pi * q)  # noqa: E731
        e2, _ = integrate.quad(lambda z: z * z * dens(z), 0, math.inf)
        p, _ = integrate.quad(dens, 0, math.inf)
        assert float(m.E_relu2.subs(m.q, q)) == pytest.approx(e2, rel=1e-9)
        assert float(m.E_step) == pytest.approx(p, rel=1e-9)


def test_moment_recursions_against_monte_carlo():
    """A_l = E||h^(l)||^2 and B_l = E||d f_o / d z^(l)||^2 at every layer of He-init ReLU nets
    (core.mlp, 400 networks), against the solved recursions evaluated at l."""
    from lrtheory.core.mlp import forward

    r = D.derive_moment_recursions()
    d0, L, n, K = 7, 3, 48, 400
    x = torch.tensor(np.random.default_rng(4).normal(size=(1, d0)))
    X = float((x ** 2).sum())
    spec, P = _mc_spec_params(d0, L, n, 1, K, seed=5)
    out, z = forward(spec, P, x, return_preacts=True)
    grads = torch.autograd.grad(out[:, 0, 0].sum(), z)
    for l in range(1, L + 1):
        h2 = (torch.relu(z[l - 1][:, 0]) ** 2).sum(1).detach().numpy()
        b2 = (grads[l - 1][:, 0] ** 2).sum(1).numpy()
        subs = {r.l: l, r.L: L, r.n: n, r.d0: d0, r.X: X}
        for mc, want in ((h2, float(r.A.subs(subs))), (b2, float(r.B.subs(subs)))):
            # 4 Monte Carlo standard errors (the product of layers is heavy-tailed but K = 400 suffices)
            assert abs(mc.mean() - want) <= 4 * mc.std(ddof=1) / math.sqrt(K), (l, mc.mean(), want)


def test_growth_slope_integrates_to_the_numeric_kernel():
    """The symbolic local slope d log Theta / d log P, integrated numerically over log P from
    P1 = L n1 to P2 = L n2 (scipy quad), equals log Theta(P2) - log Theta(P1) of the numeric
    arc-cosine Gram diagonal (another code path), at the input layer's LR rho_in = 0.1 and 1."""
    from scipy import integrate

    g = D.derive_lambda1_growth()
    x = np.random.default_rng(6).normal(size=(3, 10))
    d0 = x.shape[1]
    for rho in (0.1, 1.0):
        slope = sp.lambdify(g.P, g.slope.subs({g.d0: d0, g.rho_in: rho}), "math")
        for L, n1, n2 in ((1, 2, 64), (3, 4, 128)):
            integral, _ = integrate.quad(lambda u: slope(math.exp(u)), math.log(L * n1), math.log(L * n2))
            t1, t2 = (D.ntk_gram_infinite_width(x, L, n, rho_in=rho).diagonal()[0] for n in (n1, n2))
            assert integral == pytest.approx(math.log(t2 / t1), rel=1e-8)


def test_predictions_against_monte_carlo_gram():
    """predict_lambda1 on Gaussian inputs vs empirical NTK Gram matrices of wide nets (one output):
    ``lower`` = mean of the Gram, ``point`` = lambda_max / N, ``upper`` = k * mean diagonal = E tr(G)."""
    d0, N, L, n, K = 6, 8, 2, 512, 12
    x = torch.tensor(np.random.default_rng(7).normal(size=(N, d0)))
    spec, P = _mc_spec_params(d0, L, n, 1, K, seed=8)
    G = _mc_gram(spec, P, x)
    p = D.predict_lambda1(x.numpy(), L, n, 1)
    top = np.linalg.eigvalsh(G)[:, -1] / N
    # O(L/n) = 0.4% finite-width bias plus 4 Monte Carlo standard errors over K networks
    for mc, want in ((G.mean((1, 2)), p.lower), (top, p.point), (np.trace(G, axis1=1, axis2=2) / N, p.upper)):
        assert abs(mc.mean() - want) <= 4 * mc.std(ddof=1) / math.sqrt(K) + 0.02 * want, (mc.mean(), want)


def test_predict_grid_is_predict_lambda1_per_architecture():
    x = np.random.default_rng(9).normal(size=(12, 5))
    archs = [(1, 8), (3, 16)]
    out = D.predict_grid(x, archs, 4)
    assert [a for a, _ in out] == archs
    for (L, n), p in out:
        q = D.predict_lambda1(x, L, n, 4)
        assert (p.lower, p.point, p.upper, p.finite) == (q.lower, q.point, q.upper, q.finite)
    # one architecture by hand: one input, so the Gram is its diagonal |x|^2 (1 + L n / d0)
    one = D.predict_grid(x[:1], [(2, 10)], 3)[0][1]
    X = float((x[0] ** 2).sum())
    assert one.point == pytest.approx(X * (1 + 2 * 10 / 5), rel=1e-12) == one.lower
    assert one.upper == pytest.approx(3 * one.point, rel=1e-12)
    assert one.finite == pytest.approx(one.point * (1 + D.FINITE_WIDTH_C * 2 / 10), rel=1e-12)


def test_finite_width_factor_limits_and_monte_carlo_direction():
    """The factor is 1 at infinite width and grows with L / n. Monte Carlo of the Gauss-Newton part of
    lambda_1 (empirical Gram top eigenvalue, ten outputs): it exceeds the infinite-width value by an
    amount that grows with L / n, vanishes as n grows, and stays below the fitted excess (the rest of
    the fitted excess is the Hessian's residual term and the data, measured in the chapter)."""
    assert D.finite_width_factor(10 ** 9, 1) == pytest.approx(1.0, abs=1e-7)
    assert D.finite_width_factor(32, 4) > D.finite_width_factor(32, 2) > D.finite_width_factor(64, 2) > 1
    d0, N, k, K = 16, 12, 10, 8
    x = torch.tensor(np.random.default_rng(10).normal(size=(N, d0)))
    ratios = {}
    for L, n in [(1, 256), (2, 64), (4, 32)]:
        spec, P = _mc_spec_params(d0, L, n, k, K, seed=11)
        top = np.linalg.eigvalsh(_mc_gram(spec, P, x))[:, -1] / N
        ratios[(L, n)] = float(np.exp(np.mean(np.log(top)))) / D.predict_lambda1(x.numpy(), L, n, k).point
    assert abs(ratios[(1, 256)] - 1) < 0.05
    assert 1 < ratios[(2, 64)] < ratios[(4, 32)]
    for (L, n), r in ratios.items():
        assert r <= D.finite_width_factor(n, L) + 0.05


def test_input_layer_kernel_against_monte_carlo():
    """The input layer's part of the kernel, Theta(rho_in = 2) - Theta(rho_in = 1), against the
    empirical kernel of the input weights alone (sum over W^(1) of df(x)/dW df(x')/dW), off the diagonal too."""
    from lrtheory.core.mlp import forward

    d0, L, n, K = 5, 2, 256, 24
    x = torch.tensor(np.random.default_rng(12).normal(size=(3, d0)))
    spec, P = _mc_spec_params(d0, L, n, 1, K, seed=13)
    out = forward(spec, P, x)[:, :, 0]
    J = [torch.autograd.grad(out[:, i].sum(), P[0], retain_graph=True)[0].flatten(1) for i in range(3)]
    emp = np.stack([np.stack([(J[i] * J[j]).sum(1).detach().numpy() for j in range(3)], -1) for i in range(3)], -2)
    want = D.ntk_gram_infinite_width(x.numpy(), L, n, rho_in=2.0) - D.ntk_gram_infinite_width(x.numpy(), L, n)
    mean, se = emp.mean(0), emp.std(0, ddof=1) / math.sqrt(K)
    assert np.all(np.abs(mean - want) <= 4 * se + 0.03 * np.abs(want).max()), (mean, want)


def test_arccos_maps_by_quadrature():
    """f(rho) = 2 E[relu(u) relu(v)] and fdot(rho) = 2 P(u > 0, v > 0) for unit Gaussians of correlation rho."""
    from scipy import integrate

    f, fdot = D._arccos_maps()
    for rho in (-0.8, -0.3, 0.2, 0.6, 0.95):
        c = math.sqrt(1 - rho * rho)

        def pdf(v, u):
            return math.exp(-(u * u - 2 * rho * u * v + v * v) / (2 * c * c)) / (2 * math.pi * c)

        e, _ = integrate.dblquad(lambda v, u: u * v * pdf(v, u), 0, 12, 0, 12)
        p, _ = integrate.dblquad(pdf, 0, 12, 0, 12)
        assert float(f(rho)) == pytest.approx(2 * e, rel=1e-6)
        assert float(fdot(rho)) == pytest.approx(2 * p, rel=1e-6)


def test_recursion_equations_as_stated():
    """The stated recursions: A_1 and B_L are the Monte Carlo layer moments of the first and last
    layer (see the Monte Carlo test), A_{l+1} and B_l are read one layer on, and applying A_rec to
    a value returns it (He init preserves it), as does B_rec."""
    r = D.derive_moment_recursions()
    A, B = r.A_rec.lhs.func, r.B_rec.lhs.func
    assert r.A_rec.lhs == A(r.l + 1) and r.A_init.lhs == A(1)
    assert r.B_rec.lhs == B(r.l) and r.B_init.lhs == B(r.L)
    v = sp.Symbol("v", positive=True)
    assert sp.simplify(r.A_rec.rhs.subs(A(r.l), v) - v) == 0
    assert sp.simplify(r.B_rec.rhs.subs(B(r.l + 1), v) - v) == 0
    assert sp.simplify(r.A_init.rhs - r.n * r.X / r.d0) == 0 and r.B_init.rhs == 1


def test_diagonal_lower_bound_is_the_numeric_gram_diagonal():
    """lower_diag of derive_lambda1_bounds is the diagonal part of the uniform-vector bound,
    (1/N^2) sum_i Theta(x_i, x_i), on the numeric arc-cosine Gram matrix of random inputs."""
    b = D.derive_lambda1_bounds()
    x = np.random.default_rng(14).normal(size=(6, 4))
    gram = D.ntk_gram_infinite_width(x, 3, 8)
    Xbar = float(np.mean((x ** 2).sum(1)))
    val = b.lower_diag.subs({b.L: 3, b.n: 8, b.d0: 4, b.N: 6, b.Xbar: Xbar})
    assert float(val) == pytest.approx(np.trace(gram) / 6 ** 2, rel=1e-12)


@pytest.mark.parametrize("call, name", [
    (lambda: D.finite_width_factor(0, 1), "width"), (lambda: D.finite_width_factor(8, 0), "depth"),
    (lambda: D.ntk_gram_infinite_width(np.ones(3), 1, 4), "x"), (lambda: D.ntk_gram_infinite_width(np.ones((2, 3)), 0, 4), "depth"),
    (lambda: D.ntk_gram_infinite_width(np.ones((2, 3)), 1, 0), "width"),
    (lambda: D.ntk_gram_infinite_width(np.ones((2, 3)), 1, 4, rho_in=-1.0), "rho_in"),
    (lambda: D.predict_lambda1(np.ones((2, 3)), 1, 4, 0), "n_out"),
])
def test_errors_name_the_argument_first(call, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        call()


def test_experiment_inputs_are_the_inputs_lambda1_is_measured_on():
    from lrtheory.results.sharpness import simulate as S

    for scale in ("ci", "reference"):
        cfg = CHAPTER.config(scale)
        x, k = D.experiment_inputs(cfg)
        ds = S.load_dataset(cfg, torch.device("cpu"))
        np.testing.assert_array_equal(x, ds.x_train[: cfg.n_sharp].numpy())
        assert k == ds.d_out and x.dtype == np.float64
    with pytest.raises(ValueError, match=r"^dataset\b"):
        D.experiment_inputs(type("C", (), {"dataset": "mnist", "n_train": 10, "n_sharp": 5})())
