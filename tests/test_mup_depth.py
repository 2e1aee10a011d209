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
