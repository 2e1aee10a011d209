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


# ---------------------------------------------------------------- written from the mutation run of session 5
def test_symbols_are_the_documented_notation():
    """The module docstring's notation: L hidden layers of width n (positive integers, layer index l), input
    dimension d_0, X = ||x||^2 and the Gaussian variance q (positive), the input layer's LR rho_in, P = L n,
    k outputs, N examples, their mean Xbar (positive); each returned expression is in exactly these symbols,
    and the dataclasses share them (the notebook displays them by these names)."""
    m, r, d = D.relu_gaussian_moments(), D.derive_moment_recursions(), D.derive_ntk_diagonal()
    g, b = D.derive_lambda1_growth(), D.derive_lambda1_bounds()
    integers = {"l": r.l, "L": r.L, "n": r.n, "d_0": r.d0}
    reals = {"q": m.q, "X": r.X, "rho_in": d.rho_in, "P": g.P, "k": b.k, "N": b.N, "Xbar": b.Xbar}
    for name, s in {**integers, **reals}.items():
        assert isinstance(s, sp.Symbol) and s.name == name and s.is_positive is True, name
        assert s.is_integer is (True if name in integers else None), name
    assert (d.L, d.n, d.d0, d.X) == (r.L, r.n, r.d0, r.X) and (g.d0, g.X, g.rho_in) == (d.d0, d.X, d.rho_in)
    assert (b.L, b.n, b.d0) == (d.L, d.n, d.d0)
    assert r.A_rec.lhs.func == sp.Function("A") and r.B_rec.lhs.func == sp.Function("B")  # A_l, B_l
    assert m.E_relu2.free_symbols == {m.q} and r.A.free_symbols == {r.n, r.X, r.d0}
    assert d.theta.free_symbols == {d.L, d.n, d.d0, d.X, d.rho_in} == d.input_term.free_symbols | d.hidden_term.free_symbols
    assert g.theta_P.free_symbols == {g.P, g.d0, g.X, g.rho_in} and g.slope.free_symbols == {g.P, g.d0, g.rho_in}
    assert b.upper.free_symbols == {b.L, b.n, b.d0, b.k, b.Xbar} and b.lower_diag.free_symbols == {b.L, b.n, b.d0, b.N, b.Xbar}


def test_input_and_hidden_terms_against_monte_carlo():
    """The two parts of the NTK diagonal separately: E ||d f / d W^(1)||^2 (input_term at rho_in = 1) and the
    sum over the other layers (hidden_term), over 64 He-init ReLU nets of core.mlp; their sum is theta."""
    from lrtheory.core.mlp import forward

    d = D.derive_ntk_diagonal()
    d0, L, n, K = 5, 2, 128, 64
    x = torch.tensor(np.random.default_rng(15).normal(size=(1, d0)))
    X = float((x ** 2).sum())
    spec, P = _mc_spec_params(d0, L, n, 1, K, seed=16)
    grads = torch.autograd.grad(forward(spec, P, x)[:, 0, 0].sum(), P)
    sq = [(gr.flatten(1) ** 2).sum(1).numpy() for gr in grads]
    inp, hid = sq[0], sum(sq[1:])
    subs = {d.L: L, d.n: n, d.d0: d0, d.X: X, d.rho_in: 1}
    for mc, want in ((inp, float(d.input_term.subs(subs))), (hid, float(d.hidden_term.subs(subs)))):
        # 4 Monte Carlo standard errors plus 5% for the O(L/n) finite-width bias
        assert abs(mc.mean() - want) <= 4 * mc.std(ddof=1) / math.sqrt(K) + 0.05 * want, (mc.mean(), want)
    assert float(d.input_term.subs(subs)) == pytest.approx(X, rel=1e-12)  # E||delta_1||^2 = B_1 = 1
    assert sp.simplify(d.theta - d.input_term - d.hidden_term) == 0
    assert sp.simplify(d.input_term.subs(d.rho_in, 3) - 3 * d.input_term.subs(d.rho_in, 1)) == 0  # linear in rho_in


def test_theta_of_P_is_the_numeric_gram_diagonal():
    """theta_P at P = L n against the numeric arc-cosine Gram diagonal (another code path) for architectures of
    the same and of different L n, at rho_in = 0.3."""
    g = D.derive_lambda1_growth()
    x = np.random.default_rng(17).normal(size=(4, 6))
    for L, n in ((1, 24), (2, 12), (4, 6), (3, 40)):
        diag = D.ntk_gram_infinite_width(x, L, n, rho_in=0.3).diagonal()
        for i in range(len(x)):
            val = g.theta_P.subs({g.P: L * n, g.d0: 6, g.X: float((x[i] ** 2).sum()), g.rho_in: 0.3})
            assert float(val) == pytest.approx(diag[i], rel=1e-12)


def _cho_saul(r):
    """The ReLU arc-cosine maps written from Cho & Saul (2009) by hand: f(r) = (sqrt(1 - r^2) + (pi - acos r) r)/pi,
    fdot(r) = (pi - acos r)/pi."""
    return (math.sqrt(1 - r * r) + (math.pi - math.acos(r)) * r) / math.pi, (math.pi - math.acos(r)) / math.pi


def test_gram_of_two_small_inputs_by_hand():
    """Two inputs of norms 0.1 and 0.2 at 60 degrees (norms below 1: the cosine must be divided by them),
    Theta_12 of the documented formula evaluated by hand for L = 1 and 2, and the diagonal |x|^2 (rho_in + L n/d0)."""
    x = np.array([[0.1, 0.0, 0.0], [0.2 * 0.5, 0.2 * math.sqrt(0.75), 0.0]])
    n, d0, rho_in = 5, 3, 0.7
    r1 = 0.5
    r2 = _cho_saul(r1)[0]
    r3 = _cho_saul(r2)[0]
    want = {1: rho_in * r1 * _cho_saul(r1)[1] + n / d0 * r2,
            2: rho_in * r1 * _cho_saul(r1)[1] * _cho_saul(r2)[1] + n / d0 * (r2 * _cho_saul(r2)[1] + r3)}
    for L, w in want.items():
        g = D.ntk_gram_infinite_width(x, L, n, rho_in=rho_in)
        assert g[0, 1] == pytest.approx(0.1 * 0.2 * w, rel=1e-12) and g[1, 0] == pytest.approx(g[0, 1], rel=1e-15)
        np.testing.assert_allclose(g.diagonal(), [0.01 * (rho_in + L * n / d0), 0.04 * (rho_in + L * n / d0)], rtol=1e-12)


def test_gram_with_a_zero_input_is_zero_there_without_warnings():
    """A zero input has a zero kernel row (Theta carries |x||x'|): no 0/0 on the way (floating-point errors raise)."""
    x = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    with np.errstate(all="raise"):
        g = D.ntk_gram_infinite_width(x, 2, 4)
    np.testing.assert_array_equal(g[0], 0.0)
    np.testing.assert_array_equal(g[:, 0], 0.0)
    assert g[1, 1] == pytest.approx(14.0 * (1 + 2 * 4 / 3), rel=1e-12)


def test_gram_of_parallel_and_antiparallel_inputs_by_hand():
    """x, c x and -c x: cosines 1 and -1, which round-off puts just outside [-1, 1] for this x (checked: the
    clipping is exercised). By hand: Theta(x, c x) = c |x|^2 (rho_in + L n/d0); Theta(x, -c x) at L = 1 is 0
    (f(-1) = fdot(-1) = 0) and at L = 2 is (n/d0) c |x|^2 / pi (rho_2 = 0, rho_3 = f(0) = 1/pi)."""
    rng = np.random.default_rng(0)
    for _ in range(1000):  # an x whose cosines round outside [-1, 1]
        x0 = rng.normal(size=5)
        x = np.stack([x0, 0.5 * x0, -0.5 * x0])
        nr = np.linalg.norm(x, axis=1)
        raw = (x @ x.T) / np.outer(nr, nr)
        if raw[0, 1] > 1 and raw[0, 2] < -1:
            break
    else:  # pragma: no cover
        pytest.fail("no x with cosines outside [-1, 1] found")
    X, n, d0 = float(x0 @ x0), 8, 5
    for L in (1, 2):
        g = D.ntk_gram_infinite_width(x, L, n)
        assert np.isfinite(g).all()
        assert g[0, 1] == pytest.approx(0.5 * X * (1 + L * n / d0), rel=1e-12)
    assert abs(D.ntk_gram_infinite_width(x, 1, n)[0, 2]) < 1e-12 * X
    assert D.ntk_gram_infinite_width(x, 2, n)[0, 2] == pytest.approx(n / d0 * 0.5 * X / math.pi, rel=1e-9)


def test_arccos_map_stays_in_the_unit_interval():
    """f maps [-1, 1] into [0, 1] with f(1) = 1 exactly (so the kernel recursion needs no clipping), on a dense
    grid and on the 10^5 floats just below 1; fdot maps it into [0, 1]."""
    f, fdot = D._arccos_maps()
    r = np.r_[np.linspace(-1, 1, 200001), 1 - np.arange(1, 100001) * 2.0 ** -53]
    v = f(r)
    assert v.min() >= 0 and v.max() <= 1 and f(np.float64(1.0)) == 1.0 and f(np.float64(-1.0)) == 0.0
    assert fdot(r).min() >= 0 and fdot(r).max() <= 1


def test_predict_lambda1_in_float64_whatever_the_input_dtype():
    """float32 inputs: the bounds are those of the same numbers in float64 (the upper bound's Xbar by hand)."""
    x32 = np.random.default_rng(18).normal(size=(6, 4)).astype(np.float32)
    x64 = x32.astype(np.float64)
    p32, p64 = D.predict_lambda1(x32, 2, 8, 3), D.predict_lambda1(x64, 2, 8, 3)
    Xbar = sum(float(v) ** 2 for v in x64.ravel()) / 6
    assert p32.upper == pytest.approx(3 * Xbar * (1 + 2 * 8 / 4), rel=1e-13)
    assert (p32.lower, p32.point, p32.upper) == (p64.lower, p64.point, p64.upper)


def test_growth_exponent_is_the_loglog_slope_of_the_points():
    """predict_growth_exponent against numpy's least-squares line through (log L n, log point)."""
    x = np.random.default_rng(19).normal(size=(10, 6))
    preds = D.predict_grid(x, [(1, 8), (2, 16), (3, 32), (2, 64)], 2)
    want = np.polyfit(np.log([8, 32, 96, 128]), np.log([p.point for _, p in preds]), 1)[0]
    assert D.predict_growth_exponent(preds) == pytest.approx(want, rel=1e-10)


def test_predict_config_narrow_and_its_error():
    cfg = CHAPTER.config("ci")
    assert [a for a, _ in D.predict_config(cfg, "narrow")] == [tuple(a) for a in cfg.narrow]
    with pytest.raises(ValueError, match=r"^which\b"):
        D.predict_config(cfg, "wide")


def test_experiment_inputs_of_mnist1d_and_under_a_foreign_default_device(monkeypatch):
    """The full config's MNIST-1D inputs are the ones the chapter measures on (simulate.load_dataset), and the
    inputs come back on the CPU as float64 even when torch's default device and the library's
    ($LRTHEORY_DEVICE, e.g. cuda on a GPU machine) are another (meta)."""
    from core_defaults import foreign_defaults
    from lrtheory.results.sharpness import simulate as S

    cfg = CHAPTER.config("full")
    x, k = D.experiment_inputs(cfg)
    ds = S.load_dataset(cfg, torch.device("cpu"))
    np.testing.assert_array_equal(x, ds.x_train[: cfg.n_sharp].numpy())
    assert x.shape == (cfg.n_sharp, 40) and k == 10
    ci = CHAPTER.config("ci")
    want, _ = D.experiment_inputs(ci)
    with foreign_defaults(device="meta"):
        got, _ = D.experiment_inputs(ci)
    np.testing.assert_array_equal(got, want)
    monkeypatch.setenv("LRTHEORY_DEVICE", "meta")
    got, _ = D.experiment_inputs(ci)
    np.testing.assert_array_equal(got, want)


def test_moments_and_kernel_at_another_gain_by_hand():
    """Weights N(0, g / fan_in), g = 3, worked by hand from the recursions' definitions: A_1 = n (g X / d0) / 2,
    A_{l+1} = (g / 2) A_l, B_L = g / 2, B_l = (g / 2) B_{l+1}, so A_l = (g/2)^l n X / d0, B_l = (g/2)^(L - l + 1);
    the kernel sums A_l B_{l+1} over l = 1..L-1, plus A_L (the readout) and rho_in X B_1: (g/2)^L X (rho_in + L n/d0).
    (At He's g = 2 every factor is 1: this is what tells the layer indices apart.)"""
    r, d = D.derive_moment_recursions(3), D.derive_ntk_diagonal(3)
    h = sp.Rational(3, 2)
    assert sp.simplify(r.A - h ** r.l * r.n * r.X / r.d0) == 0
    assert sp.simplify(r.B - h ** (r.L - r.l + 1)) == 0
    assert sp.simplify(r.A_init.rhs - 3 * r.n * r.X / (2 * r.d0)) == 0 and r.B_init.rhs == h
    A, B = r.A_rec.lhs.func, r.B_rec.lhs.func
    assert sp.simplify(r.A_rec.rhs - h * A(r.l)) == 0 and sp.simplify(r.B_rec.rhs - h * B(r.l + 1)) == 0
    assert sp.simplify(d.input_term - h ** d.L * d.rho_in * d.X) == 0
    assert sp.simplify(d.hidden_term - h ** d.L * d.L * d.n * d.X / d.d0) == 0
    assert sp.simplify(d.theta - h ** d.L * d.X * (d.rho_in + d.L * d.n / d.d0)) == 0
    assert (d.L, d.n, d.d0, d.X) == (r.L, r.n, r.d0, r.X)


def test_moments_and_kernel_at_another_gain_against_monte_carlo():
    """The gain-3 recursions and kernel parts against 200 ReLU nets of core.mlp whose He weights are scaled by
    sqrt(3/2) (variance 3 / fan_in): A_l, B_l at every layer, the input layer's and the other layers' parts of
    the NTK diagonal."""
    from lrtheory.core.mlp import MLPSpec, forward, init_params

    gain, d0, L, n, K = 3, 6, 3, 64, 200
    r, d = D.derive_moment_recursions(gain), D.derive_ntk_diagonal(gain)
    x = torch.tensor(np.random.default_rng(20).normal(size=(1, d0)))
    X = float((x ** 2).sum())
    spec = MLPSpec(d_in=d0, width=n, depth=L, d_out=1)
    P = [(p.detach() * math.sqrt(gain / 2)).requires_grad_(True) for p in init_params(spec, K, seed=21)]
    out, z = forward(spec, P, x, return_preacts=True)
    gz = torch.autograd.grad(out[:, 0, 0].sum(), z, retain_graph=True)
    gw = torch.autograd.grad(out[:, 0, 0].sum(), P)
    sq = [(g.flatten(1) ** 2).sum(1).numpy() for g in gw]
    checks = []
    for l in range(1, L + 1):
        subs = {r.l: l, r.L: L, r.n: n, r.d0: d0, r.X: X}
        checks.append(((torch.relu(z[l - 1][:, 0]) ** 2).sum(1).detach().numpy(), float(r.A.subs(subs))))
        checks.append(((gz[l - 1][:, 0] ** 2).sum(1).numpy(), float(r.B.subs(subs))))
    subs = {d.L: L, d.n: n, d.d0: d0, d.X: X, d.rho_in: 1}
    checks += [(sq[0], float(d.input_term.subs(subs))), (sum(sq[1:]), float(d.hidden_term.subs(subs)))]
    for mc, want in checks:
        # 4 Monte Carlo standard errors plus 5% for the O(L/n) finite-width bias
        assert abs(mc.mean() - want) <= 4 * mc.std(ddof=1) / math.sqrt(K) + 0.05 * want, (mc.mean(), want)
