"""Tests of lrtheory.results.elr.derivation and .analysis (chapter 04): the sympy model, its
closed forms, the model's traces, the spread and read-outs, argument checks."""
import math

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from lrtheory.results.elr import CHAPTER
from lrtheory.results.elr import analysis as A
from lrtheory.results.elr import derivation as D
from lrtheory.results.elr import measurements as M
from lrtheory.results.elr import simulate as S


# ----------------------------------------------------------------- derivation

def test_derivation_closed_forms():
    d = D.derive_elr_model()
    y = d.symbols
    E, u, t, E0, S0, eta, c = (y[k] for k in ("E", "u", "t", "E0", "S0", "eta", "c"))
    assert sp.simplify(d.E_next - E / (1 + E**2)) == 0
    assert sp.simplify(d.u_next - (u + 2 + 1 / u)) == 0
    assert sp.simplify(d.S_closed - sp.sqrt(S0**2 + 2 * eta**2 * c**2 * t)) == 0
    assert sp.simplify(d.E_closed - E0 / sp.sqrt(1 + 2 * E0**2 * t)) == 0
    assert d.ratio_limit == 1
    assert sp.simplify(d.classic_ratio_limit - y["c_k"] / y["c_l"]) == 0  # the other ELR definition
    assert sp.simplify(d.rate - (1 / y["E_k0"]**2 - 1 / y["E_l0"]**2) / 4) == 0
    assert sp.simplify(d.critical_lr - 1 / sp.sqrt(y["a_l"] * y["a_k"])) == 0
    assert sp.simplify(d.critical_lr_elr - eta / sp.sqrt(y["E_l"] * y["E_k"])) == 0
    assert sp.simplify(d.warmup_spread - (y["s"] + 1) / (2 * sp.sqrt(y["s"]))) == 0


def test_closed_form_solves_the_ode():
    d = D.derive_elr_model()
    t = d.symbols["t"]
    lhs = sp.diff(d.S_closed, t)
    rhs = d.ode.rhs.subs(d.ode.lhs.args[0], d.S_closed)
    assert sp.simplify(lhs - rhs) == 0


def test_helpers_match_hand_values():
    # exact values, float round-off only
    assert float(D.elr_step(1.0)) == pytest.approx(0.5, rel=1e-15)
    assert float(D.elr_step(2.0, steps=2)) == pytest.approx((2 / 5) / (1 + 4 / 25), rel=1e-14)
    assert float(D.elr_closed_form(0.5, 6.0)) == pytest.approx(0.5 / 2.0, rel=1e-14)
    assert float(D.norm2_closed_form(3.0, 2.0, 1.0, 2.0)) == pytest.approx(5.0, rel=1e-14)
    assert float(D.critical_lr(9.0, 1.0)) == pytest.approx(1 / 3, rel=1e-14)
    assert float(D.log_ratio_closed_form(2.0, 2.0, 5.0)) == pytest.approx(0.0, abs=1e-15)
    assert float(A.spread([0.5, 2.0])) == 4.0
    assert math.isnan(float(A.spread([0.5, float("nan")])))


@settings(max_examples=60, deadline=None)
@given(st.floats(1e-3, 1e3), st.floats(1e-3, 1e3), st.floats(1e-3, 1e3))
def test_one_step_never_widens_and_critical_lr_equalizes(a_l, a_k, eta):
    # model property: |log ratio| after a step <= before, for every LR; equality of ELRs at eta_c
    before = abs(math.log(a_l / a_k))
    s = D.model_spread_trace([a_l, a_k], [eta])
    assert math.log(s[-1]) <= before + 1e-9  # round-off in the logs
    eta_c = float(D.critical_lr(a_l, a_k))
    assert D.model_spread_trace([a_l, a_k], [eta_c])[-1] == pytest.approx(1.0, rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.floats(1.0, 1e4))
def test_warmup_spread_bound(s):
    # three layers, one at the geometric mean (worst case): one step at eta_c gives (s+1)/(2 sqrt s)
    a = np.array([s, math.sqrt(s), 1.0])
    after = D.model_spread_trace(a, [float(D.critical_lr(s, 1.0))])[-1]
    assert after == pytest.approx((s + 1) / (2 * math.sqrt(s)), rel=1e-9)


def test_predictions_read_the_closed_forms():
    cfg = CHAPTER.config("ci")
    p = D.norm_prediction(cfg)
    assert p["E0=0.1"] == pytest.approx(math.sqrt(1 + 2 * 0.01 * cfg.norm_steps), rel=1e-14)
    r = D.ratio_prediction(cfg)
    t1, t2 = D.ratio_times(cfg.ratio_steps)
    exact = [0.5 * math.log((1 / 0.05**2 + 2 * t) / (1 / 0.5**2 + 2 * t)) for t in (t1, t2)]
    assert r["log_ratio_T"] == pytest.approx(exact[1], rel=1e-12)
    assert r["rate_exponent"] == pytest.approx(math.log(exact[1] / exact[0]) / math.log(4), rel=1e-12)


def test_widening_onset_interpolates_and_flags_divergence():
    assert A.widening_onset([1.0, 2.0, 4.0], 4.0, [2.0, 1.0, 16.0]) == pytest.approx(2 * math.sqrt(2), rel=1e-12)
    assert A.widening_onset([1.0, 2.0, 4.0], 4.0, [2.0, 1.0, np.nan]) == 4.0  # a diverged step widens
    assert math.isnan(A.widening_onset([1.0, 2.0], 4.0, [2.0, 1.0]))


# ----------------------------------------------------------------- bad inputs

@pytest.mark.parametrize("call", [
    lambda: D.elr_step(0.0),
    lambda: D.elr_step(float("nan")),
    lambda: D.elr_step(1.0, steps=-1),
    lambda: D.elr_closed_form(1.0, -1.0),
    lambda: D.norm2_closed_form(1.0, 0.0, 1.0, 1.0),
    lambda: D.critical_lr(-1.0, 1.0),
    lambda: D.model_spread_trace([1.0, 0.5], [0.0]),
    lambda: A.spread([]),
    lambda: S.simulate_scale_invariant([1.0], eta=-1.0, steps=2),
    lambda: S.simulate_scale_invariant([1.0], eta=1.0, steps=0),
    lambda: S.simulate_scale_invariant([1.0], eta=1.0, steps=2, dim=1),
    lambda: S.simulate_scale_invariant([0.0], eta=1.0, steps=2),
    lambda: CHAPTER.config("huge"),
    lambda: M.measure_init_elrs("huge"),
    lambda: S.mlp_setting(16, 64, 256, seed_index=-1),
    lambda: M.measure_one_step_scan("ci", device="nonsense"),
])
def test_bad_inputs_raise_value_error(call):
    with pytest.raises(ValueError):
        call()
