"""Chapter 03 (Jelassi et al. 2023): the derivation (lrtheory.results.mup_depth.derivation) and the
user tools built on it (lrtheory.tools.depth), whose constants must equal the derivation.

The simulation and analysis are tested in test_mup_depth_simulate.py, the claims in
test_mup_depth_claims.py.
"""
import math

import numpy as np
import pytest
import sympy as sp

from lrtheory.results.mup_depth import derivation as D
from lrtheory.tools import depth as T


# ---------------------------------------------------------------- symbolic
def test_derived_update_variance_is_the_sum():
    s = D.symbols()
    V = D.derive_update_variance().V_uniform
    # exact, not a float comparison: the recursion c_l = l, r_l = sum_{k<l} k^2, V = l^2/2 + r_l
    assert sp.simplify(V - s.eta ** 2 * s.y ** 2 * s.l * (2 * s.l ** 2 + 1) / 6) == 0
    assert D.derive_update_variance().degree == 3
    assert D.derive_update_variance().ratio_to_leading == 1


def test_recursion_matches_direct_iteration():
    # iterate the layer rules numerically (no sympy solve) and compare with the closed form
    rules = D.derive_layer_rules()
    kappa, nv, gms = float(rules.coherent_gain_relu), float(rules.noise_var_relu), float(rules.gamma_ms)
    c, r = 0.0, 0.0
    for l in range(1, 30):
        r = r + nv * gms * c ** 2
        c = kappa * c + 1.0
        assert gms * c ** 2 + r == pytest.approx(float(D.update_variance(l)), rel=1e-12)  # round-off only


def test_max_update_lr_exponents():
    e = D.derive_max_update_lr()
    assert e.depth_exponent == sp.Rational(-3, 2)
    assert e.width_exponent == 0
    assert e.local_exponent.subs(D.symbols().L, 2) == sp.Rational(-25, 18)
    w = D.derive_layer_width_exponents()
    assert (w.hidden, w.input, w.readout) == (0, 1, -1)
    assert D.derive_output_update().width_exponent_plain == 2


def test_edge_layer_lrs():
    e = D.derive_edge_layer_lr()
    s = D.symbols()
    assert e.first_width_exponent == 1 and e.last_width_exponent == -1
    assert sp.simplify(e.first_lr - sp.sqrt(2 * s.tau) * s.n / (s.d * s.y)) == 0
    assert sp.simplify(e.last_lr - sp.sqrt(s.tau) / (s.n * s.y)) == 0
    # the same exponents as the layer-kind rule the tools use
    w = D.derive_layer_width_exponents()
    assert (e.first_width_exponent, e.last_width_exponent) == (w.input, w.readout)
    assert float(D.edge_layer_lr("first", 128, 64)) == pytest.approx(2 * math.sqrt(2), rel=1e-12)  # round-off
    assert float(D.edge_layer_lr("last", 128, 64, tau=4.0)) == pytest.approx(2 / 128, rel=1e-12)


def test_relu_moments():
    m = D.derive_relu_moments()
    assert m.p_active == sp.Rational(1, 2)
    assert sp.simplify(m.relu_sq - D.symbols().v / 2) == 0


def test_numeric_helpers():
    assert float(D.update_variance(16)) == 1368.0
    assert float(D.max_update_lr(2)) == pytest.approx(1 / math.sqrt(3), rel=1e-12)  # round-off only
    # asymptote sqrt(3 tau) L^{-3/2}
    assert float(D.max_update_lr(1000)) * 1000 ** 1.5 == pytest.approx(math.sqrt(3), rel=1e-5)


def test_grid_depth_exponent_is_shallower_than_the_limit():
    # the local exponent rises from -3/2 (L -> oo) to -25/18 at L = 2: a grid fit lies between
    p = D.grid_depth_exponent([2, 4, 8, 16])
    assert -1.5 < p < -25 / 18
    assert D.grid_depth_exponent([2 ** 10, 2 ** 12]) == pytest.approx(-1.5, abs=1e-6)  # O(L^-2) corrections


# ---------------------------------------------------------------- the tools equal the derivation
def test_tool_constants_equal_the_derivation():
    assert T.DEPTH_EXPONENT == float(D.derive_max_update_lr().depth_exponent)
    w = D.derive_layer_width_exponents()
    assert T.WIDTH_EXPONENTS == {"input": int(w.input), "hidden": int(w.hidden), "readout": int(w.readout)}
    # the multipliers are n^e per layer kind (and (n/d)^e for the input): exact in binary
    n, d = 256, 64
    m = T.layer_lr_multipliers(n, 3, d)
    assert m[0] == (n / d) ** T.WIDTH_EXPONENTS["input"]
    assert m[1] == float(n) ** T.WIDTH_EXPONENTS["hidden"]
    assert m[-1] == float(n) ** T.WIDTH_EXPONENTS["readout"]


def test_depth_scaled_lr():
    assert T.depth_scaled_lr(0.8, 8, 2) == pytest.approx(0.1, rel=1e-12)
    assert T.depth_scaled_lr(0.3, 5, 5) == 0.3
    assert T.depth_scaled_lr(1.0, 4, 1, exponent=-1.0) == pytest.approx(0.25)


def test_layer_lr_multipliers():
    m = T.layer_lr_multipliers(128, 4, 32, base_depth=1)
    s = 4 ** -1.5
    assert m.shape == (5,)
    np.testing.assert_allclose(m, [s * 4, s, s, s, 1 / 128], rtol=1e-12)
    np.testing.assert_allclose(T.layer_lr_multipliers(16, 2, 16), [1, 1, 1 / 16])


def test_tools_are_exported():
    import lrtheory

    assert lrtheory.depth_scaled_lr is T.depth_scaled_lr
    assert lrtheory.layer_lr_multipliers is T.layer_lr_multipliers


@pytest.mark.parametrize("call, name", [
    (lambda: T.depth_scaled_lr(0.0, 2, 1), "base_lr"),
    (lambda: T.depth_scaled_lr(-1.0, 2, 1), "base_lr"),
    (lambda: T.depth_scaled_lr(float("nan"), 2, 1), "base_lr"),
    (lambda: T.depth_scaled_lr(1.0, 0, 1), "depth"),
    (lambda: T.depth_scaled_lr(1.0, 2, 0), "base_depth"),
    (lambda: T.depth_scaled_lr(1.0, 2.5, 1), "depth"),
    (lambda: T.depth_scaled_lr(1.0, 2, 1, exponent=float("inf")), "exponent"),
    (lambda: T.layer_lr_multipliers(0, 2, 4), "width"),
    (lambda: T.layer_lr_multipliers(8, -1, 4), "depth"),
    (lambda: T.layer_lr_multipliers(8, 2, 0), "input_dim"),
    (lambda: T.layer_lr_multipliers(8, 2, 4, exponent=float("nan")), "exponent"),
    (lambda: D.update_variance(0), "layer"),
    (lambda: D.update_variance(2, eta=-0.1), "eta"),
    (lambda: D.max_update_lr(3, tau=0.0), "tau"),
    (lambda: D.max_update_lr(3, y=0.0), "y"),
    (lambda: D.edge_layer_lr("middle", 8, 4), "layer"),
    (lambda: D.edge_layer_lr("first", 0, 4), "width"),
    (lambda: D.edge_layer_lr("last", 8, 0), "input_dim"),
    (lambda: D.edge_layer_lr("last", 8, 4, y=0.0), "y"),
])
def test_bad_inputs_raise(call, name):
    with pytest.raises(ValueError, match=f"^{name}: "):
        call()


def test_update_parts_add_up():
    ls = np.arange(1, 20)
    np.testing.assert_allclose(D.update_variance(ls, part="coherent"), ls ** 2 / 2, rtol=1e-14)  # round-off
    np.testing.assert_allclose(D.update_variance(ls, part="coherent") + D.update_variance(ls, part="incoherent"),
                               D.update_variance(ls), rtol=1e-14)
    np.testing.assert_allclose(D.max_update_lr(ls, asymptote=True), math.sqrt(3) * ls ** -1.5, rtol=1e-14)
    with pytest.raises(ValueError, match="^part: "):
        D.update_variance(2, part="leading")


# ---------------------------------------------------------------- independent checks of every derived expression
# Each derived expression below is compared with a quantity measured on finite random mean-field
# networks built here in torch (not with the chapter's simulate.py), or with a Gaussian integral done
# by scipy: what the expression predicts, measured, never read off the derivation's output. The
# settings avoid the special values (lam = q = 1, sw2 = 2) at which a wrong power or factor of lam,
# q or sw2 would not show.
import torch  # noqa: E402


def _mf_net(n, L, d, x_ms, seed):
    """One mean-field ReLU net (d -> n x L -> 1): W^(1) ~ N(0, 2/d), W^(l) ~ N(0, 2/n), readout ~ N(0, 1/n^2),
    and its input x with entries +-sqrt(x_ms) (so ||x||^2 = x_ms d exactly)."""
    g = torch.Generator().manual_seed(seed)
    dt = torch.float64
    Ws = [torch.randn(n, d, generator=g, dtype=dt) * math.sqrt(2 / d)]
    Ws += [torch.randn(n, n, generator=g, dtype=dt) * math.sqrt(2 / n) for _ in range(L - 1)]
    Ws.append(torch.randn(n, generator=g, dtype=dt) / n)
    x = math.sqrt(x_ms) * torch.sign(torch.randn(d, generator=g, dtype=dt))
    return Ws, x


def _forward(Ws, x):
    """Pre-activations z^(1..L), activations h^(0..L) and the output f."""
    zs, hs = [], [x]
    for W in Ws[:-1]:
        zs.append(W @ hs[-1])
        hs.append(torch.relu(zs[-1]))
    return zs, hs, Ws[-1] @ hs[-1]


def _measure(n, L, d, x_ms, lam, seed):
    """First-order quantities of one GD step of a finite net, from autograd and forward-mode jvp only:
    per hidden layer l the coherent coefficient c_l = <theta, gamma>/<gamma, gamma> and the incoherent mean
    square r_l = mean((theta - c gamma)^2), where theta^(l) = dz^(l)/d(step) along lam * grad f (hidden layers)
    and gamma = n df/dz^(l); the mean square of theta; n^2 mean (df/dz)^2 before/after the mask; the squared
    gradient norm of every layer; ||h^(L)||^2; and the rms of each layer's own-step change."""
    Ws, x = _mf_net(n, L, d, x_ms, seed)
    Ws = [W.requires_grad_(True) for W in Ws]
    zs, hs, f = _forward(Ws, x)
    grads = torch.autograd.grad(f, Ws + zs, allow_unused=True)
    gW, gz = grads[:len(Ws)], grads[len(Ws):]
    # the pre-mask back-propagated gradient at layer l: W^(l+1)^T g^(l+1) (the readout's row for l = L)
    pre = [Ws[l + 1].detach().T @ gz[l + 1] for l in range(L - 1)] + [Ws[-1].detach()]
    tangent = tuple(lam * g for g in gW[:-1]) + (torch.zeros_like(Ws[-1]),)
    _, theta = torch.func.jvp(lambda *P: tuple(_forward(list(P), x)[0]), tuple(W.detach() for W in Ws), tangent)
    out = {"c": [], "r": [], "theta_ms": [], "gamma_ms": [], "h_ms": [], "own": []}
    for l in range(L):
        gam = n * gz[l]
        c = float(theta[l] @ gam / (gam @ gam))
        out["c"].append(c)
        out["r"].append(float(((theta[l] - c * gam) ** 2).mean()))
        out["theta_ms"].append(float((theta[l] ** 2).mean()))
        out["gamma_ms"].append(float((gam ** 2).mean()))
        out["h_ms"].append(float(((n * pre[l]) ** 2).mean()))
        # the change of z^(l) from layer l's own step at LR multiplier 1: ||h^(l-1)||^2 df/dz^(l)
        out["own"].append(float((hs[l].detach() @ hs[l].detach()) * (gz[l] ** 2).mean().sqrt()))
    out["grad_sq"] = [float((g ** 2).sum()) for g in gW]
    out["hL_sq"] = float(hs[-1].detach() @ hs[-1].detach())
    return {k: np.asarray(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def mc_nets():
    """Means over 20 nets (n = 1024, L = 4, input dim n, ||x||^2/n = q = 2, hidden LR multiplier lam = 1.5),
    and over 20 nets with input dim d = 8 and unit inputs (q = 1) for the edge layers."""
    wide = [_measure(1024, 4, 1024, 2.0, 1.5, 100 + s) for s in range(20)]
    edge = [_measure(1024, 4, 8, 1.0, 1.0, 200 + s) for s in range(20)]
    mean = lambda runs: {k: np.mean([r[k] for r in runs], axis=0) for k in runs[0]}  # noqa: E731
    return SimpleNamespace(n=1024, L=4, d=8, q=2.0, lam=1.5, wide=mean(wide), edge=mean(edge))


# The standard errors of these means (measured over the nets) are 1.5-4% of each quantity (the readout's
# weights, shared by every layer's gradient, dominate): 12% is >= 3 of them, and every wrong factor the
# checks must reject (a dropped layer of 4, lam or q inverted, a power of y = 0.5 off) moves its quantity
# by >= 25%.
MC_REL = 0.12
from types import SimpleNamespace  # noqa: E402


def _num(expr, **vals):
    s = D.symbols()
    return float(expr.subs({getattr(s, k): v for k, v in vals.items()}))


def test_relu_moments_are_the_gaussian_integrals():
    from scipy import integrate, stats

    m = D.derive_relu_moments()
    for v in (0.3, 2.5):
        pdf = stats.norm(scale=math.sqrt(v)).pdf
        assert _num(m.p_active, v=v) == pytest.approx(integrate.quad(pdf, 0, np.inf)[0], rel=1e-9)  # quadrature error
        assert _num(m.relu_sq, v=v) == pytest.approx(integrate.quad(lambda z: z * z * pdf(z), 0, np.inf)[0], rel=1e-9)


def test_layer_rules_match_one_random_layer():
    # one layer W (n x n, N(0, sw2/n)) and a mask D of an independent Gaussian pre-activation, at sw2 = 1.3
    # and at the ReLU value 2: forward/backward gains, kappa and the noise in W D W^T v = kappa v + xi, and the
    # gain of W D on a vector independent of both. Averages over n = 4096 units and 8 vectors: Monte Carlo error ~1.5%.
    r = D.derive_layer_rules()
    s = D.symbols()
    n = 4096
    g = torch.Generator().manual_seed(7)
    for sw2, fields in ((1.3, ("forward_gain", "backward_gain", "coherent_gain", "noise_var", "incoherent_gain")),
                        (2.0, ("forward_gain_relu", "backward_gain_relu", "coherent_gain_relu", "noise_var_relu",
                               "incoherent_gain_relu"))):
        W = torch.randn(n, n, generator=g, dtype=torch.float64) * math.sqrt(sw2 / n)
        h, u, v, rho = (torch.randn(n, 8, generator=g, dtype=torch.float64) for _ in range(4))  # 8 vectors each
        mask = (torch.randn(n, 1, generator=g, dtype=torch.float64) > 0).double()
        ms = lambda t: float((t ** 2).mean())  # noqa: E731
        wdw = W @ (mask * (W.T @ v))
        kappa = float(((wdw * v).sum(0) / (v * v).sum(0)).mean())
        measured = [ms(torch.relu(W @ h)) / ms(h), ms(mask * (W.T @ u)) / ms(u), kappa,
                    ms(wdw - kappa * v) / ms(v), ms(W @ (mask * rho)) / ms(rho)]
        for name, m in zip(fields, measured):
            assert float(getattr(r, name).subs({s.sw2: sw2, s.v: 0.7})) == pytest.approx(m, rel=0.06), name
    assert float(r.p_active) == pytest.approx(float((torch.randn(n, generator=g) > 0).double().mean()), abs=0.03)


def test_layer_rules_gradient_mean_squares(mc_nets):
    # h_ms (n^2 mean square of the pre-mask back-propagated output gradient) and gamma_ms (after the mask) at
    # every hidden layer of the finite nets: both independent of the layer
    r = D.derive_layer_rules()
    w = mc_nets.wide
    for l in range(1, mc_nets.L + 1):
        assert _num(r.h_ms, l=l) == pytest.approx(w["h_ms"][l - 1], rel=MC_REL)
        assert _num(r.gamma_ms, l=l) == pytest.approx(w["gamma_ms"][l - 1], rel=MC_REL)


def test_update_recursion_matches_a_finite_net(mc_nets):
    # c_l and r_l at lam = 1.5, q = 2 against the projection of the jvp-computed theta^(l) on gamma^(l)
    rec = D.derive_update_recursion()
    w, vals = mc_nets.wide, dict(lam=mc_nets.lam, q=mc_nets.q)
    assert _num(rec.a, **vals) == mc_nets.lam * mc_nets.q
    for l in range(1, mc_nets.L + 1):
        assert _num(rec.c, l=l, **vals) == pytest.approx(w["c"][l - 1], rel=MC_REL)
        if l > 1:  # r_1 = 0 exactly (measured: round-off)
            assert _num(rec.r, l=l, **vals) == pytest.approx(w["r"][l - 1], rel=MC_REL)
    assert w["r"][0] < 1e-20 * w["theta_ms"][0]


def test_update_recursions_displayed_are_solved_by_the_closed_forms():
    # the displayed recursions c_l = kappa c_{l-1} + a and r_l = r_{l-1} + nv gamma_ms c_{l-1}^2 (checked
    # numerically above): their closed forms satisfy them at every layer, and start from c_0 = 0, r_1 = 0
    rec = D.derive_update_recursion()
    s = D.symbols()
    undef = sp.core.function.AppliedUndef
    closed = {"c": rec.c, "r": rec.r}
    for eq, name in ((rec.c_recursion, "c"), (rec.r_recursion, "r")):
        assert eq.lhs.func.__name__ == name and eq.lhs.args == (s.l,)
        for l in (2, 3, 7):
            # every c(.) / r(.) in the equation replaced by its closed form at that argument
            at = [side.subs(s.l, l).replace(lambda t: isinstance(t, undef),
                                            lambda t: closed[t.func.__name__].subs(s.l, t.args[0]))
                  for side in (eq.lhs, eq.rhs)]
            assert sp.simplify(at[0] - at[1]) == 0, (name, l)
    assert rec.c.subs(s.l, 0) == 0 and rec.r.subs(s.l, 1) == 0


def test_update_variance_and_general_max_update_lr_match_a_finite_net(mc_nets):
    # V_l / eta^2 at lam = 1.5, q = 2, y = 0.5 is y^2 times the measured mean square of theta^(l); eta*_general
    # puts the deepest layer's change at tau
    uv, m = D.derive_update_variance(), D.derive_max_update_lr()
    w, vals = mc_nets.wide, dict(lam=mc_nets.lam, q=mc_nets.q, y=0.5)
    for l in range(1, mc_nets.L + 1):
        assert _num(uv.V, l=l, eta=1.0, **vals) == pytest.approx(0.25 * w["theta_ms"][l - 1], rel=MC_REL)
    eta = _num(m.eta_star_general, L=mc_nets.L, tau=0.3, **vals)
    assert eta ** 2 * 0.25 * w["theta_ms"][-1] == pytest.approx(0.3, rel=2 * MC_REL)  # eta^2: twice eta's error
    # the leading term: V_uniform / l^3 at l = 10^6 (a limit, evaluated from the closed form's numbers)
    assert _num(uv.leading, l=1e6, eta=0.5, y=3.0) == pytest.approx(float(D.update_variance(10 ** 6, 0.5, 3.0)), rel=1e-5)


def test_output_update_coefficient_matches_a_finite_net(mc_nets):
    # df/deta = -(f - y) sum_k lam_k ||grad_{W_k} f||^2: the hidden layers' part (lam_out = 0) and the readout's
    # own part per unit lam_out (lam = 0), each against the measured squared gradient norms
    o = D.derive_output_update()
    s = D.symbols()
    w, n, L, q, lam, y = mc_nets.wide, mc_nets.n, mc_nets.L, mc_nets.q, mc_nets.lam, 0.5
    base = {s.n: n, s.L: L, s.q: q, s.y: y}
    hidden = math.sqrt(float(o.coefficient.subs({**base, s.lam: lam, o.lambda_out: 0}))) / y
    readout = math.sqrt(float(o.coefficient.subs({**base, s.lam: 0, o.lambda_out: 1}))) / y
    assert hidden == pytest.approx(lam * w["grad_sq"][:-1].sum(), rel=MC_REL)
    assert readout == pytest.approx(w["grad_sq"][-1], rel=MC_REL)
    # the two substitutions shown: mean-field readout (lam_out = 1/n) and plain (lam_out = 1), lam = q = 1
    assert float(o.coefficient_mf.subs({s.L: 6, s.y: 2})) == 4 * (1 + 6 / 2) ** 2
    assert float(o.coefficient_plain.subs({s.n: 100, s.L: 6, s.y: 2})) == 4 * (100 + 6 / 2) ** 2


def test_edge_layer_coefficients_match_a_finite_net(mc_nets):
    # the first layer's own step moves z^(1)_i by y ||x||^2 df/dz^(1)_i, the readout's moves f by y ||h^(L)||^2
    # (per unit eta, (f - y)^2 -> y^2); nets with input dim 8 and q = 1 (squares: twice the tolerance), then the
    # q dependence at q = 2
    e = D.derive_edge_layer_lr()
    E, n, d, y = mc_nets.edge, mc_nets.n, mc_nets.d, 0.5
    assert _num(e.first_coefficient, n=n, d=d, q=1, y=y) == pytest.approx(y ** 2 * E["own"][0] ** 2, rel=2 * MC_REL)
    assert _num(e.last_coefficient, n=n, q=1, y=y) == pytest.approx(y ** 2 * E["hL_sq"] ** 2, rel=2 * MC_REL)
    # q enters as ||x||^2 = q d (first) and ||h^(L)||^2 = q n (last): squared
    assert _num(e.first_coefficient, n=n, d=d, q=2, y=y) == pytest.approx(4 * _num(e.first_coefficient, n=n, d=d, q=1, y=y))
    assert _num(e.last_coefficient, n=n, q=2, y=y) == pytest.approx(4 * _num(e.last_coefficient, n=n, q=1, y=y))


def test_layer_width_contributions_match_a_finite_net(mc_nets):
    # at multiplier n^0: a hidden layer's own step moves its pre-activations by ||h||^2 |df/dz| (q = 2, input
    # dim n), the input layer's by ||x||^2 |df/dz^(1)| (input dim 8, unit entries), the readout's the output
    # by ||h^(L)||^2
    c = D.derive_layer_width_exponents().contributions
    s = D.symbols()
    e = next(iter(c["hidden"].free_symbols - {s.n, s.q}))
    w, E, n, d = mc_nets.wide, mc_nets.edge, mc_nets.n, mc_nets.d
    at = lambda expr, q: float(expr.subs({e: 0, s.n: n, s.q: q, s.d: d}))  # noqa: E731
    assert at(c["hidden"], mc_nets.q) == pytest.approx(np.mean(w["own"][1:]), rel=MC_REL)
    assert at(c["input"], 1.0) == pytest.approx(E["own"][0], rel=MC_REL)
    assert at(c["readout"], mc_nets.q) == pytest.approx(w["hL_sq"], rel=MC_REL)
    assert set(c) == {"hidden", "input", "readout"}


def test_symbols_names_and_assumptions():
    # the chapter prints these names; the derivation relies on the assumptions (positive sizes, integer layer
    # counts: rsolve/summation over integers, solve picking the positive root)
    s = D.symbols()
    names = {"n": "n", "L": "L", "l": "ell", "k": "k", "eta": "eta", "y": "y", "q": "q", "lam": "lambda",
             "tau": "tau", "sw2": "sigma_w^2", "v": "v", "d": "d"}
    for field, name in names.items():
        sym = getattr(s, field)
        assert sym.name == name and sym.is_positive, field
        assert sym.is_integer is (True if field in ("L", "l", "k") else None), field
    o = D.derive_output_update()
    assert o.lambda_out.name == "lambda_out" and o.lambda_out.is_positive


@pytest.mark.parametrize("call, name", [
    (lambda: D.update_variance(2, y=float("nan")), "y"),
    (lambda: D.max_update_lr(0), "depth"),
    (lambda: D.max_update_lr(2, y=float("inf")), "y"),
    (lambda: D.edge_layer_lr("first", 8, 4, tau=0.0), "tau"),
    (lambda: D.edge_layer_lr("first", 8, 4, y=float("nan")), "y"),
    (lambda: D.grid_depth_exponent([0, 2]), "depths"),
])
def test_more_bad_inputs_raise(call, name):
    with pytest.raises(ValueError, match=f"^{name}: "):
        call()


# ---------------------------------------------------------------- issue 21: the rest of the returned expressions
@pytest.fixture(scope="module")
def mc_narrow():
    """The two ensembles of mc_nets at width n = 256 (20 nets each): for the width exponents, measured as
    the slope of log(mean quantity) between n = 256 and n = 1024."""
    wide = [_measure(256, 4, 256, 2.0, 1.5, 300 + s) for s in range(20)]
    edge = [_measure(256, 4, 8, 1.0, 1.0, 400 + s) for s in range(20)]
    mean = lambda runs: {k: np.mean([r[k] for r in runs], axis=0) for k in runs[0]}  # noqa: E731
    return SimpleNamespace(n=256, wide=mean(wide), edge=mean(edge))


def _slope(small, large, n_small=256, n_large=1024):
    """The measured power of n between two widths."""
    return math.log(large / small) / math.log(n_large / n_small)


# Each mean has a standard error of 1.5-4 % (above), so a slope between widths 256 and 1024 (a factor 4) has an
# error of about 0.04 / ln 4 * sqrt 2 ~ 0.04; 0.15 is over 3 of them, and a wrong exponent is off by >= 1/2.
SLOPE_ABS = 0.15


def test_displayed_recursions_iterated_match_a_finite_net(mc_nets):
    # the two equations shown, c_l = kappa c_{l-1} + a and r_l = g r_{l-1} + nv gamma_ms c_{l-1}^2, iterated
    # from c_0 = 0, r_0 = 0 by substituting numbers into the displayed right-hand sides (no closed form), against
    # the projection of the measured theta^(l) (lam = 1.5, q = 2)
    rec = D.derive_update_recursion()
    s = D.symbols()
    vals = {s.lam: mc_nets.lam, s.q: mc_nets.q}
    c_prev = next(t for t in rec.c_recursion.rhs.atoms(sp.core.function.AppliedUndef))
    r_prev = next(t for t in rec.r_recursion.rhs.atoms(sp.core.function.AppliedUndef) if t.func.__name__ == "r")
    c_of_r = next(t for t in rec.r_recursion.rhs.atoms(sp.core.function.AppliedUndef) if t.func.__name__ == "c")
    c, r = 0.0, 0.0
    for l in range(1, mc_nets.L + 1):
        r = float(rec.r_recursion.rhs.subs(vals).subs({r_prev: r, c_of_r: c}))
        c = float(rec.c_recursion.rhs.subs(vals).subs({c_prev: c}))
        assert c == pytest.approx(mc_nets.wide["c"][l - 1], rel=MC_REL), l
        if l > 1:
            assert r == pytest.approx(mc_nets.wide["r"][l - 1], rel=MC_REL), l
        else:
            assert r == 0


def test_coherent_and_incoherent_parts_match_a_finite_net(mc_nets):
    # theta = c gamma + rho with c the projection on gamma: mean(theta^2) = (coherent) + mean(rho^2) exactly, so
    # the coherent part is y^2 (theta_ms - r) and the incoherent part y^2 r (eta = 1, y = 0.5, lam = 1.5, q = 2)
    uv, w = D.derive_update_variance(), mc_nets.wide
    vals = dict(lam=mc_nets.lam, q=mc_nets.q, y=0.5, eta=1.0)
    for l in range(1, mc_nets.L + 1):
        assert _num(uv.coherent, l=l, **vals) == pytest.approx(0.25 * (w["theta_ms"][l - 1] - w["r"][l - 1]),
                                                               rel=MC_REL), l
        if l > 1:
            assert _num(uv.incoherent, l=l, **vals) == pytest.approx(0.25 * w["r"][l - 1], rel=MC_REL), l
    assert _num(uv.incoherent, l=1, **vals) == 0


def test_leading_term_and_uniform_max_update_lr_worked_by_hand():
    # by hand: V_l = eta^2 y^2 l (2 l^2 + 1) / 6 at lam = q = 1 (c_l = l, r_l = sum_{k<l} k^2); its leading term
    # eta^2 y^2 l^3 / 3; V_L(eta*) = tau gives eta* = sqrt(6 tau / (L (2 L^2 + 1))) / y, -> sqrt(3 tau) L^{-3/2} / y
    s = D.symbols()
    uv, m = D.derive_update_variance(), D.derive_max_update_lr()
    assert sp.simplify(uv.leading - s.eta ** 2 * s.y ** 2 * s.l ** 3 / 3) == 0
    for L, tau, y in ((1, 1.0, 1.0), (3, 0.2, 0.7), (10, 5.0, 2.0)):
        hand = math.sqrt(6 * tau / (L * (2 * L * L + 1))) / y
        assert _num(m.eta_star, L=L, tau=tau, y=y) == pytest.approx(hand, rel=1e-12), L  # round-off
        assert _num(m.asymptote, L=L, tau=tau, y=y) == pytest.approx(math.sqrt(3 * tau) * L ** -1.5 / y, rel=1e-12)
        # eta*_general at lam = q = 1 is eta*
        assert _num(m.eta_star_general, L=L, tau=tau, y=y, lam=1, q=1) == pytest.approx(hand, rel=1e-12)


def test_local_depth_exponent_is_the_finite_difference_of_log_eta_star():
    # d log eta* / d log L by a central difference of the derived eta*(L) (L taken real), h = 1e-4: O(h^2) error
    m = D.derive_max_update_lr()
    s = D.symbols()
    Lr = sp.Symbol("Lr", positive=True)
    eta = sp.lambdify(Lr, m.eta_star.subs({s.L: Lr, s.tau: 0.4, s.y: 1.3}))
    h = 1e-4
    for L in (1.0, 2.0, 3.5, 40.0):
        fd = (math.log(eta(L * (1 + h))) - math.log(eta(L * (1 - h)))) / (math.log(1 + h) - math.log(1 - h))
        assert float(m.local_exponent.subs(s.L, L)) == pytest.approx(fd, abs=1e-7), L
    # the limit the paper states (eta* ~ L^{-3/2}): the finite difference far out
    L = 1e5
    fd = (math.log(eta(L * (1 + h))) - math.log(eta(L * (1 - h)))) / (math.log(1 + h) - math.log(1 - h))
    assert fd == pytest.approx(float(m.depth_exponent), abs=1e-6)


def test_grid_depth_exponent_is_a_least_squares_slope_of_the_hand_formula():
    # numpy's polyfit of log eta* on log L, eta* = sqrt(6 / (L (2 L^2 + 1))) worked by hand (not loglog_fit,
    # not the derivation)
    for depths in ([2, 4, 8, 16], [1, 3, 9], [5, 50]):
        L = np.asarray(depths, dtype=float)
        want = np.polyfit(np.log(L), 0.5 * np.log(6 / (L * (2 * L ** 2 + 1))), 1)[0]
        assert D.grid_depth_exponent(depths, tau=2.0, y=0.3) == pytest.approx(want, abs=1e-12), depths


def test_edge_layer_lrs_put_the_measured_change_at_tau(mc_nets):
    # at eta = first_lr the first layer's own step moves z^(1) by a mean square y^2 eta^2 own^2 = tau; at eta =
    # last_lr the readout's own step moves f by y^2 eta^2 ||h^(L)||^4 = tau (input dim 8, unit inputs: q = 1)
    e = D.derive_edge_layer_lr()
    E, n, d, y, tau = mc_nets.edge, mc_nets.n, mc_nets.d, 0.5, 0.3
    eta1 = _num(e.first_lr, n=n, d=d, tau=tau, y=y)
    assert y ** 2 * eta1 ** 2 * E["own"][0] ** 2 == pytest.approx(tau, rel=2 * MC_REL)  # squares: twice the error
    eta2 = _num(e.last_lr, n=n, tau=tau, y=y)
    assert y ** 2 * eta2 ** 2 * E["hL_sq"] ** 2 == pytest.approx(tau, rel=2 * MC_REL)
    assert float(D.edge_layer_lr("first", n, d, tau=tau, y=y)) == pytest.approx(eta1, rel=1e-12)
    assert float(D.edge_layer_lr("last", n, d, tau=tau, y=-y)) == pytest.approx(eta2, rel=1e-12)  # |y|


def test_width_exponents_match_the_measured_width_scaling(mc_nets, mc_narrow):
    # each exponent e of an LR multiplier n^e makes a size Theta(1): e = -(measured power of n of the size at
    # multiplier 1), measured between n = 256 and n = 1024
    w, E, wn, En = mc_nets.wide, mc_nets.edge, mc_narrow.wide, mc_narrow.edge
    lw = D.derive_layer_width_exponents()
    edge = D.derive_edge_layer_lr()
    m = D.derive_max_update_lr()
    out = D.derive_output_update()
    hidden = -_slope(np.mean(wn["own"][1:]), np.mean(w["own"][1:]))
    first = -_slope(En["own"][0], E["own"][0])
    readout = -_slope(wn["hL_sq"], w["hL_sq"])
    for name, want in (("hidden", hidden), ("input", first), ("readout", readout)):
        assert float(getattr(lw, name)) == pytest.approx(want, abs=SLOPE_ABS), name
    assert float(edge.first_width_exponent) == pytest.approx(first, abs=SLOPE_ABS)
    assert float(edge.last_width_exponent) == pytest.approx(readout, abs=SLOPE_ABS)
    # eta* ~ (mean square change of the deepest layer)^{-1/2}: its width exponent, none in the paper's hidden layers
    assert float(m.width_exponent) == pytest.approx(-0.5 * _slope(wn["theta_ms"][-1], w["theta_ms"][-1]),
                                                    abs=SLOPE_ABS)
    # the output's change at multipliers 1 everywhere (plain readout): (sum of squared gradient norms)^2 ~ n^2
    assert float(out.width_exponent_plain) == pytest.approx(_slope(wn["grad_sq"].sum() ** 2, w["grad_sq"].sum() ** 2),
                                                            abs=SLOPE_ABS)


def test_grid_depth_exponent_passes_tau_and_y_on_as_max_update_lr_takes_them():
    # eta* depends on y through 1/|y| (max_update_lr's docstring): a negative y gives the same slope as the
    # hand formula; a zero y is refused with max_update_lr's message (y, not tau), as is a zero tau
    depths = [2, 4, 8, 16]
    L = np.asarray(depths, dtype=float)
    want = np.polyfit(np.log(L), 0.5 * np.log(6 / (L * (2 * L ** 2 + 1))), 1)[0]
    assert D.grid_depth_exponent(depths, tau=2.0, y=-0.3) == pytest.approx(want, abs=1e-12)
    with pytest.raises(ValueError, match=r"^y: expected a non-zero finite number"):
        D.grid_depth_exponent(depths, y=0.0)
    with pytest.raises(ValueError, match="tau"):
        D.grid_depth_exponent(depths, tau=0.0)
