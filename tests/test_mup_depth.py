"""Tests of lrtheory.results.mup_depth (chapter 03, Jelassi et al. 2023).

Every claim is checked at ci scale and shown to fail with a perturbed prediction
(the measurements are memoized, so the perturbed comparisons cost nothing extra).
"""
import math

import numpy as np
import pytest
import sympy as sp
import torch

from lrtheory.claims import select
from lrtheory.results import mup_depth as md

CLAIMS = ["mup_depth.update_formula", "mup_depth.depth_exponent", "mup_depth.width_independence",
          "mup_depth.transfer", "mup_depth.readout_width"]


# ---------------------------------------------------------------- symbolic
def test_derived_update_variance_is_the_sum():
    s = md.symbols()
    l, eta, y = s["l"], s["eta"], s["y"]
    V = md.derive_update_variance()["V_uniform"]
    # exact, not a float comparison: the recursion c_l = l, r_l = sum_{k<l} k^2, V = l^2/2 + r_l
    assert sp.simplify(V - eta ** 2 * y ** 2 * l * (2 * l ** 2 + 1) / 6) == 0
    assert md.derive_update_variance()["degree"] == 3


def test_recursion_matches_direct_iteration():
    # iterate the layer rules numerically (no sympy solve) and compare with the closed form
    rules = md.derive_layer_rules()
    kappa, nv, gms = float(rules["coherent_gain_relu"]), float(rules["noise_var_relu"]), float(rules["gamma_ms"])
    c, r = 0.0, 0.0
    for l in range(1, 30):
        r = r + nv * gms * c ** 2
        c = kappa * c + 1.0
        assert gms * c ** 2 + r == pytest.approx(float(md.update_variance(l)), rel=1e-12)  # round-off only


def test_max_update_lr_exponents():
    e = md.derive_max_update_lr()
    assert e["depth_exponent"] == sp.Rational(-3, 2)
    assert e["width_exponent"] == 0
    w = md.derive_layer_width_exponents()
    assert (w["hidden"], w["input"], w["readout"]) == (0, 1, -1)
    assert md.derive_output_update()["width_exponent_plain"] == 2


def test_relu_moments():
    m = md.derive_relu_moments()
    assert m["p_active"] == sp.Rational(1, 2)
    assert sp.simplify(m["relu_sq"] - md.symbols()["v"] / 2) == 0


def test_numeric_helpers():
    assert float(md.update_variance(16)) == 1368.0
    assert float(md.max_update_lr(2)) == pytest.approx(1 / math.sqrt(3), rel=1e-12)  # round-off only
    # asymptote sqrt(3 tau) L^{-3/2}
    assert float(md.max_update_lr(1000)) * 1000 ** 1.5 == pytest.approx(math.sqrt(3), rel=1e-5)


# ---------------------------------------------------------------- practical helpers
def test_depth_scaled_lr():
    assert md.depth_scaled_lr(0.8, 8, 2) == pytest.approx(0.1, rel=1e-12)
    assert md.depth_scaled_lr(0.3, 5, 5) == 0.3
    assert md.depth_scaled_lr(1.0, 4, 1, exponent=-1.0) == pytest.approx(0.25)


def test_layer_lr_multipliers():
    m = md.layer_lr_multipliers(128, 4, 32, base_depth=1)
    s = 4 ** -1.5
    assert m.shape == (5,)
    np.testing.assert_allclose(m, [s * 4, s, s, s, 1 / 128], rtol=1e-12)
    np.testing.assert_allclose(md.layer_lr_multipliers(16, 2, 16), [1, 1, 1 / 16])


@pytest.mark.parametrize("call", [
    lambda: md.depth_scaled_lr(0.0, 2, 1),
    lambda: md.depth_scaled_lr(-1.0, 2, 1),
    lambda: md.depth_scaled_lr(float("nan"), 2, 1),
    lambda: md.depth_scaled_lr(1.0, 0, 1),
    lambda: md.depth_scaled_lr(1.0, 2, 0),
    lambda: md.depth_scaled_lr(1.0, 2.5, 1),
    lambda: md.depth_scaled_lr(1.0, 2, 1, exponent=float("inf")),
    lambda: md.layer_lr_multipliers(0, 2, 4),
    lambda: md.layer_lr_multipliers(8, -1, 4),
    lambda: md.layer_lr_multipliers(8, 2, 0),
    lambda: md.update_variance(0),
    lambda: md.update_variance(2, eta=-0.1),
    lambda: md.max_update_lr(3, tau=0.0),
    lambda: md.max_update_lr(3, y=0.0),
    lambda: md.measure_one_step(0, 2, device="cpu"),
    lambda: md.measure_one_step(8, 2, n_seeds=1, device="cpu"),
    lambda: md.measure_one_step(8, 2, etas=[0.1, -1.0], device="cpu"),
    lambda: md.measure_one_step(8, 2, etas=[float("nan")], device="cpu"),
    lambda: md.measure_one_step(8, 2, layer_lr_mults=[1.0, 1.0], device="cpu"),
    lambda: md.measure_one_step(8, 2, seed=-1, device="cpu"),
    lambda: md.measure_update_grid("huge"),
    lambda: md.best_lr([0.0, 1.0], [1.0, 2.0]),
    lambda: md.best_lr([0.0, 1.0, 2.0], [np.inf, np.nan, np.inf]),
    lambda: md.fit_depth_exponent([2], np.ones((1, 4))),
])
def test_bad_inputs_raise(call):
    with pytest.raises(ValueError):
        call()


# ---------------------------------------------------------------- numerics
def test_one_step_matches_autograd_and_is_deterministic():
    torch.manual_seed(0)
    res = md.measure_one_step(12, 3, n_seeds=3, etas=[1e-7, 0.05], seed=7, device="cpu")
    again = md.measure_one_step(12, 3, n_seeds=3, etas=[1e-7, 0.05], seed=7, device="cpu", max_chunk_bytes=1)
    np.testing.assert_array_equal(res.lin, again.lin)  # same seed, any chunking: bit-identical
    np.testing.assert_array_equal(res.exact, again.exact)
    # the exact step at tiny eta is the first-order change: relative error O(eta) ~ 1e-6
    np.testing.assert_allclose(res.exact[:, 0, :] / 1e-14, res.lin, rtol=1e-4)
    # independent check of the exact step with autograd on model 0
    from lrtheory.core.mlp import MLPSpec, init_params
    spec = MLPSpec(d_in=12, width=12, depth=3, d_out=1, parametrization="mean_field")
    P = [p[0].clone().requires_grad_(True) for p in init_params(spec, 1, seed=7)]
    x = torch.ones(12, dtype=torch.float64)

    def pre(params):
        h, zs = x, []
        for W in params[:-1]:
            z = W @ h
            zs.append(z)
            h = torch.relu(z)
        return zs, (params[-1] @ h)[0]

    zs, f = pre(P)
    loss = 0.5 * (f - 1.0) ** 2
    grads = torch.autograd.grad(loss, P)
    with torch.no_grad():
        zs2, f2 = pre([p - 0.05 * g for p, g in zip(P, grads)])
        want = [float(((a - b) ** 2).mean()) for a, b in zip(zs2, zs)] + [float((f2 - f) ** 2)]
    np.testing.assert_allclose(res.exact[0, 1], want, rtol=1e-10)  # float64 round-off


def test_fit_depth_exponent_recovers_a_power_law():
    rng = np.random.default_rng(0)
    L = np.array([2, 4, 8, 16])
    samples = (L[:, None] ** 3.0) * rng.exponential(1.0, size=(4, 200))
    fit = md.fit_depth_exponent(L, samples, n_boot=200)
    # eta* ~ mean^{-1/2} ~ L^{-3/2}; 4 bootstrap SEs cover the sampling error
    assert abs(fit["exponent"] + 1.5) < 4 * fit["se"] + 1e-12
    assert fit["ci_low"] < fit["exponent"] < fit["ci_high"]


def test_best_lr():
    x = np.arange(-3.0, 4.0)
    v = np.exp((x - 0.3) ** 2)
    assert md.best_lr(x, v) == pytest.approx(0.3, abs=1e-9)  # exact parabola in log loss
    assert md.best_lr(x, np.r_[v[:-2], np.inf, np.nan]) == pytest.approx(0.3, abs=1e-9)


# ---------------------------------------------------------------- claims
@pytest.mark.parametrize("cid", CLAIMS)
def test_claim_passes_at_ci(cid):
    (claim,) = select([cid])
    v = claim.check("ci", "cpu")
    assert v.passed, (v.predicted, v.measured, v.details)


def _perturbed_fails(cid, perturb):
    (claim,) = select([cid])
    v = claim.check("ci", "cpu")
    bad = perturb(dict(v.predicted) if isinstance(v.predicted, dict) else v.predicted)
    from lrtheory.claims import _default_compare

    passed, _ = (claim.compare or _default_compare)(bad, v.measured, claim.tolerance)
    return not passed


def test_update_formula_fails_when_perturbed():
    # an L^2 law (only the coherent part) and a 30% error must both be rejected
    assert _perturbed_fails("mup_depth.update_formula", lambda p: {k: v * 0.7 for k, v in p.items()})
    assert _perturbed_fails("mup_depth.update_formula",
                            lambda p: {k: int(k[2:]) ** 2 / 2 for k in p})


def test_depth_exponent_fails_when_perturbed():
    assert _perturbed_fails("mup_depth.depth_exponent", lambda p: {**p, "exponent": -1.0, "grid": -1.0})
    assert _perturbed_fails("mup_depth.depth_exponent", lambda p: {**p, "exponent": -2.0, "grid": -2.0})


def test_width_independence_fails_when_perturbed():
    # standard parametrization would give eta* ~ n^{-1/2}
    assert _perturbed_fails("mup_depth.width_independence", lambda p: {k: -0.5 for k in p})


def test_transfer_fails_when_perturbed():
    assert _perturbed_fails("mup_depth.transfer", lambda p: {**p, "scaled": -1.0})
    assert _perturbed_fails("mup_depth.transfer", lambda p: {**p, "scaled": 1.0})


def test_readout_width_fails_when_perturbed():
    assert _perturbed_fails("mup_depth.readout_width", lambda p: {**p, "slope_lr1": 1.0})
    assert _perturbed_fails("mup_depth.readout_width", lambda p: {**p, "slope_lr1/n": -1.0})


def test_measurement_restores_thread_count():
    before = torch.get_num_threads()
    md.measure_update_grid("ci", "cpu")  # memoized; the context manager still runs
    assert torch.get_num_threads() == before
