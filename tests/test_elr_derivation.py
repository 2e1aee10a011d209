"""Tests of lrtheory.results.elr.derivation and .analysis (chapter 04): the sympy model, its
closed forms, the model's traces, the spread and read-outs, argument checks."""
import math
import signal
import threading

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

#: CPU seconds any one test here may use (the slowest takes about 1.5 s, the sympy derivation included).
#: A wrong derivation can send sympy's simplify / dsolve / limit into minutes of work; bounded here,
#: such a mutant fails in seconds instead of at mutmut's timeout (15x the whole file's time).
CPU_LIMIT_S = 20.0


@pytest.fixture(autouse=True)
def _cpu_limit():
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def over(signum, frame):
        raise TimeoutError(f"this test used more than {CPU_LIMIT_S} s of CPU")

    old = signal.signal(signal.SIGPROF, over)
    signal.setitimer(signal.ITIMER_PROF, CPU_LIMIT_S)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, old)


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


def test_widening_onset_step_by_hand():
    # running minimum 16, 4, 1.5 (step 2), 1.5, 1.5; 2.9 < 2 * 1.5; 3.0 = 2 * 1.5 at step 5: onset at step 2
    assert A.widening_onset_step([16.0, 4.0, 1.5, 1.6, 2.9, 3.0, 1.0]) == 2.0
    assert A.widening_onset_step([16.0, 4.0, 1.5, 1.5, 2.9, 3.0]) == 2.0  # a repeated minimum: its first step
    assert A.widening_onset_step([4.0, 3.0, 2.0, 3.0], rise=1.5) == 2.0
    assert A.widening_onset_step([4.0, 3.0, 2.0, 3.0], rise=1.6) != A.widening_onset_step([4.0, 3.0, 2.0, 3.0], 1.5)
    assert math.isnan(A.widening_onset_step([4.0, 3.0, 2.0, 3.0]))  # never doubles
    assert math.isnan(A.widening_onset_step([4.0, 3.0, 2.0, 1.0]))  # never rises
    assert A.widening_onset_step([4.0, 3.0, np.inf, 1.0]) == 1.0  # a diverged step widens
    assert A.widening_onset_step([4.0, 3.0, np.nan]) == 1.0
    assert math.isnan(A.widening_onset_step([np.nan, 1.0]))
    assert A.widening_onset_step([1.0, 2.0]) == 0.0
    with pytest.raises(ValueError, match="^rise:"):
        A.widening_onset_step([1.0, 2.0], rise=1.0)
    with pytest.raises(ValueError, match="^spreads:"):
        A.widening_onset_step([])


def test_critical_crossing_step_by_hand():
    # critical LR of a = (1, 1/4) is 1 / sqrt(1/4) = 2; of (4, 1): 1/2
    a = [[1.0, 0.25], [1.0, 0.25], [1.0, 0.25]]
    assert D.critical_crossing_step([0.5, 1.0, 2.0], a) == 2.0  # reached exactly at 2
    assert D.critical_crossing_step([0.5, 1.0, 1.99], a) != D.critical_crossing_step([0.5, 1.0, 2.0], a)
    assert math.isnan(D.critical_crossing_step([0.5, 1.0, 1.99], a))
    # the current ELRs, not those at init: the critical LR falls to 1/2 at step 1
    assert D.critical_crossing_step([0.5, 0.6, 0.7], [[1.0, 0.25], [4.0, 1.0], [4.0, 1.0]]) == 1.0
    # the extreme layers: a middle layer does not enter
    assert D.critical_crossing_step([1.0, 2.0], [[1.0, 0.5, 0.25], [1.0, 0.9, 0.25]]) == 1.0
    assert D.critical_crossing_step([3.0], [[1.0, 0.25]]) == 0.0
    # each row's own extremes: the largest ELR of the whole run (8, at step 1) does not enter step 0
    assert D.critical_crossing_step([0.9, 0.1], [[1.0, 0.25], [8.0, 1.0]]) != 0.0
    assert math.isnan(D.critical_crossing_step([0.9, 0.1], [[1.0, 0.25], [8.0, 1.0]]))
    with pytest.raises(ValueError, match=r"^a: expected 2 rows \(one per step\), got 1$"):
        D.critical_crossing_step([1.0, 2.0], [[1.0, 0.25]])
    with pytest.raises(ValueError, match="^etas:"):
        D.critical_crossing_step([0.0], [[1.0, 0.25]])
    with pytest.raises(ValueError, match="^etas:"):
        D.critical_crossing_step([[1.0]], [[1.0, 0.25]])  # one LR per step: 1-d
    with pytest.raises(ValueError, match="^a:"):
        D.critical_crossing_step([1.0, 2.0], [1.0, 0.25])  # one row of ELRs per step: 2-d
    with pytest.raises(ValueError, match="^a:"):
        D.critical_crossing_step([1.0], [[1.0, 0.0]])


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


# ----------------------------------------------------------------- independent checks (worked by hand)

def test_s2_rate():
    d = D.derive_elr_model()
    y = d.symbols
    assert sp.simplify(d.S2_rate - 2 * y["eta"]**2 * y["c"]**2) == 0


def test_flow_elrs_hand_values():
    # S_l(t)^2 = S0_l^2 + 2 eta^2 sum_{s<t} c_l(s)^2, E = eta c / S: worked by hand for eta = 1/2
    c = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    E = D.flow_elrs(c, [1.0, 2.0], 0.5)
    want = [[0.5, 0.5],
            [1.5 / math.sqrt(1.5), 2.0 / math.sqrt(6.0)],        # S^2: 1 + 0.5 * 1, 4 + 0.5 * 4
            [2.5 / math.sqrt(6.0), 3.0 / math.sqrt(14.0)]]       # S^2: 1.5 + 0.5 * 9, 6 + 0.5 * 16
    assert E == pytest.approx(np.array(want), rel=1e-14)


def test_flow_elrs_tracks_the_pythagoras_recursion_at_small_elr():
    # the exact norm step of an orthogonal gradient, S' = S + eta^2 c^2 / S (not the ODE), with a varying c:
    # S'^2 = S^2 + 2 eta^2 c^2 + E^4 S^2, so the flow law's S^2 misses sum_t E_t^4 relative (E <= 0.05:
    # under 200 * 0.05^4 ~ 1e-3; 3e-4 on the ELR here)
    rng = np.random.default_rng(0)
    c = rng.uniform(0.5, 2.0, size=(200, 3))
    eta, S = 0.02, np.array([1.0, 2.0, 0.8])
    E_exact = []
    for t in range(200):
        E_exact.append(eta * c[t] / S)
        S = S + eta**2 * c[t] ** 2 / S
    assert D.flow_elrs(c, [1.0, 2.0, 0.8], eta) == pytest.approx(np.array(E_exact), rel=3e-4)


def test_flow_elrs_bad_inputs():
    with pytest.raises(ValueError, match="c"):
        D.flow_elrs([1.0, 2.0], [1.0], 1.0)
    with pytest.raises(ValueError, match="S0"):
        D.flow_elrs([[1.0, 2.0]], [1.0], 1.0)
    with pytest.raises(ValueError, match="eta"):
        D.flow_elrs([[1.0]], [1.0], 0.0)


def test_model_warmup_trace_with_momentum_by_hand():
    # a0 = (1, 0.01) at S = 1 (so c = a0), target 100, heavy ball beta = 1/2 from a zero buffer
    s, lrs = D.model_warmup_trace([1.0, 0.01], lr=100.0, steps=2, momentum=0.5)
    # step 0: gain 1, LR 1/sqrt(1 * 0.01) = 10; buffer m = c; S = 1 + (10 m)^2 = (101, 1.01): a = (1/101, 1/101)
    assert lrs[0] == pytest.approx(10.0, rel=1e-14)
    assert s[1] == pytest.approx(1.0, rel=1e-12)
    # step 1: 100 * (1/101) * 2 > 1, not done; gain 1 + 1/2, LR 101 / 1.5
    assert lrs[1] == pytest.approx(101.0 / 1.5, rel=1e-12)
    m = np.array([0.5 + 1 / math.sqrt(101.0), 0.005 + 0.01 / math.sqrt(1.01)])
    S = np.array([101.0, 1.01]) + (101.0 / 1.5 * m) ** 2
    a = np.array([1.0, 0.01]) / S
    assert s[2] == pytest.approx(a.max() / a.min(), rel=1e-12)
    # without momentum the warm-up ends at step 1 (100 / 101 <= 1) and runs at the target
    s0, l0 = D.model_warmup_trace([1.0, 0.01], lr=100.0, steps=3)
    assert l0.tolist() == pytest.approx([10.0, 100.0, 100.0], rel=1e-14) and s0[1:] == pytest.approx(1.0, rel=1e-12)


def test_warmup_gap_prediction_by_hand():
    # constant LR 100 from a0 = (1, 0.01), no momentum: a -> a / (1 + (100 a)^2) twice
    a1 = np.array([1.0 / 10001.0, 0.01 / 2.0])
    a2 = a1 / (1.0 + (100.0 * a1) ** 2)  # (1/10001) / (1 + (100/10001)^2), 0.005 / 1.25
    const = [math.log(a1[1] / a1[0]), math.log(a2[1] / a2[0])]
    # the warm-up: spread 1 after its first step (LR 10) and stays 1 at the target
    want = sum(const) / 2 - 0.0
    assert D.warmup_gap_prediction([1.0, 0.01], lr=100.0, momentum=0.0, steps=2) == pytest.approx(want, rel=1e-12)
    assert want == pytest.approx((math.log(50.005) + math.log(0.004 * 10001 * (1 + 1e-4 / 1.0002**2))) / 2, rel=1e-6)


def test_lasting_prediction_by_hand():
    # the warm-up's end spread is 1 (see above), so the ratio is the constant-LR run's end spread
    a = np.array([1.0, 0.01])
    spreads = []
    for _ in range(5):
        a = a / (1.0 + (100.0 * a) ** 2)
        spreads.append(a.max() / a.min())
    want = math.exp(np.mean(np.log(spreads[-2:])))
    assert D.lasting_prediction([1.0, 0.01], 100.0, 0.0, 5, 2) == pytest.approx(want, rel=1e-12)


def test_gap_and_lasting_predictions_with_momentum_by_hand():
    # a0 = (1, 0.01) at S = 1 (c = a0), target 100, heavy ball beta = 1/2 from a zero buffer, 2 steps.
    c = np.array([1.0, 0.01])
    # constant LR 100: step 0 (gain 1) S = 1 + (100 c)^2; step 1: m = c / 2 + c / sqrt(S)
    S1 = 1.0 + (100.0 * c) ** 2
    m1 = 0.5 * c + c / np.sqrt(S1)
    S2 = S1 + (100.0 * m1) ** 2
    const = [np.log((c / S).max() / (c / S).min()) for S in (S1, S2)]
    # the warm-up (test_model_warmup_trace_with_momentum_by_hand): spread 1, then LR 101 / 1.5 on the buffer
    wS1 = np.array([101.0, 1.01])
    wm1 = 0.5 * c + c / np.sqrt(wS1)
    wS2 = wS1 + (101.0 / 1.5 * wm1) ** 2
    warm = [0.0, np.log((c / wS2).max() / (c / wS2).min())]
    assert warm[1] > 0.1  # the warm-up's second spread is not 1: the sign of the gap matters
    gap = np.mean(const) - np.mean(warm)
    assert D.warmup_gap_prediction(c, lr=100.0, momentum=0.5, steps=2) == pytest.approx(gap, rel=1e-12)
    assert D.lasting_prediction(c, 100.0, 0.5, 2, 2) == pytest.approx(math.exp(gap), rel=1e-12)
    # and momentum matters: without it the numbers differ
    assert D.warmup_gap_prediction(c, lr=100.0, momentum=0.0, steps=2) != pytest.approx(gap, rel=1e-3)


# ----------------------------------------------------------------- from the mutation run: gaps closed

@pytest.mark.parametrize("call,name", [
    (lambda: D.elr_step(0.0), "E"),
    (lambda: D.elr_step(1.0, steps=-1), "steps"),
    (lambda: D.elr_closed_form(0.0, 1.0), "E0"),
    (lambda: D.elr_closed_form(1.0, -1.0), "t"),
    (lambda: D.elr_closed_form(1.0, float("nan")), "t"),
    (lambda: D.norm2_closed_form(0.0, 1.0, 1.0, 1.0), "S0"),
    (lambda: D.norm2_closed_form(1.0, 0.0, 1.0, 1.0), "eta"),
    (lambda: D.norm2_closed_form(1.0, 1.0, 0.0, 1.0), "c"),
    (lambda: D.norm2_closed_form(1.0, 1.0, 1.0, -1.0), "t"),
    (lambda: D.log_ratio_closed_form(0.0, 1.0, 1.0), "E_l0"),
    (lambda: D.log_ratio_closed_form(1.0, 0.0, 1.0), "E_k0"),
    (lambda: D.log_ratio_closed_form(1.0, 1.0, -1.0), "t"),
    (lambda: D.critical_lr(0.0, 1.0), "a_l"),
    (lambda: D.critical_lr(1.0, 0.0), "a_k"),
    (lambda: D.model_warmup_trace([1.0, 0.5], 0.0, 2), "lr"),
    (lambda: D.model_warmup_trace([1.0, 0.5], 1.0, -1), "steps"),
    (lambda: D.model_warmup_trace([1.0, 0.5], 1.0, 2, momentum=1.0), "momentum"),
    (lambda: D.model_warmup_trace([1.0, 0.5], 1.0, 2, momentum=1.5), "momentum"),
    (lambda: D.model_spread_trace([1.0, 0.5], [1.0], momentum=1.0), "momentum"),
    (lambda: D.model_spread_trace([1.0, 0.5], [0.0]), "lrs"),
    (lambda: D.model_spread_trace([1.0, 0.0], [1.0]), "a0"),
    (lambda: D.model_warmup_trace([np.nan, 1.0], 1.0, 2), "a0"),
    (lambda: D.warmup_gap_prediction([1.0, -1.0], 1.0, 0.5, 2), "a0"),
    (lambda: D.flow_elrs([[0.0]], [1.0], 1.0), "c"),
    (lambda: D.flow_elrs([[1.0]], [0.0], 1.0), "S0"),
    (lambda: D.flow_elrs([[1.0]], [1.0], 0.0), "eta"),
    (lambda: D.warmup_spread_bound(0.0, 2), "s0"),
    (lambda: D.warmup_spread_bound(2.0, -1), "steps"),
    (lambda: D.ratio_exponent_prediction([0.0, 1.0], 1.0, (1, 4)), "a0"),
    (lambda: D.ratio_exponent_prediction([1.0, 1.0], 0.0, (1, 4)), "eta"),
    (lambda: D.warmup_gap_prediction([1.0, 0.5], 0.0, 0.0, 2), "lr"),
    (lambda: D.lasting_prediction([1.0, 0.5], 0.0, 0.0, 2, 1), "lr"),
    (lambda: D.lasting_prediction([1.0, 0.5], 1.0, 0.0, 2, 0), "last"),
])
def test_argument_errors_name_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{name}:"):
        call()


def test_ratio_times():
    assert D.ratio_times(3000) == (750, 3000) and D.ratio_times(10) == (2, 10)


def test_closed_forms_return_float64_arrays():
    for v in (D.elr_step(1), D.elr_closed_form(1, 2), D.norm2_closed_form(1, 1, 1, 1),
              D.log_ratio_closed_form(2, 1, 1), D.critical_lr(4, 1)):
        assert isinstance(v, np.ndarray) and v.dtype == np.float64


def test_model_warmup_trace_third_step_and_the_end_test():
    # as test_model_warmup_trace_with_momentum_by_hand, target 1000 (not reached): step 2 runs at gain
    # (1 - 0.5^3) / 0.5 = 1.75 (the buffer's third step), LR 1 / (1.75 sqrt(a_max a_min))
    s, lrs = D.model_warmup_trace([1.0, 0.01], lr=1000.0, steps=3, momentum=0.5)
    c = np.array([1.0, 0.01])
    m = c.copy()
    S = 1.0 + (10.0 * m) ** 2
    m = 0.5 * m + c / np.sqrt(S)
    S = S + (101.0 / 1.5 * m) ** 2
    a = c / S
    assert lrs[2] == pytest.approx(1.0 / (1.75 * math.sqrt(a.max() * a.min())), rel=1e-12)
    # the end test reads lr * sqrt(a_max a_min) / (1 - beta): here 5 * 10 / 0.5 > 1, so the first LR is the
    # critical one, 1 / sqrt(100 * 1) = 0.1, not the target
    assert D.model_warmup_trace([100.0, 1.0], lr=5.0, steps=1, momentum=0.5)[1][0] == pytest.approx(0.1, rel=1e-14)


def test_warmup_spread_bound_by_hand():
    # s -> (s + 1) / (2 sqrt s): 100 -> 101/20 -> ...
    v = [float(x) for x in D.warmup_spread_bound(100, 2)]
    s1 = 101 / 20
    assert v == pytest.approx([100.0, s1, (s1 + 1) / (2 * math.sqrt(s1))], rel=1e-14)
    assert D.warmup_spread_bound(7, 0) == [7]
    # a sympy start is kept as it is: a symbol gives the map itself, an exact rational stays exact
    s = sp.Symbol("s", positive=True)
    assert sp.simplify(D.warmup_spread_bound(s, 1)[1] - (s + 1) / (2 * sp.sqrt(s))) == 0
    assert D.warmup_spread_bound(sp.Rational(1, 3) * 300, 1)[1] == sp.Rational(101, 20)


def test_ratio_exponent_prediction_by_hand():
    # two layers on E(t) = E0 / sqrt(1 + 2 E0^2 t), E0 = (1, 0.1): log spread 1/2 log((100 + 2t) / (1 + 2t)),
    # each read as the mean over the window t - t//50 .. t, then the slope of log log between t = 100 and 400
    def ls(t):
        return 0.5 * math.log((100 + 2 * t) / (1 + 2 * t))
    r1 = np.mean([ls(t) for t in range(98, 101)])
    r2 = np.mean([ls(t) for t in range(392, 401)])
    want = math.log(r2 / r1) / math.log(4.0)
    assert D.ratio_exponent_prediction([1.0, 0.1], 1.0, (100, 400)) == pytest.approx(want, rel=1e-10)
    # eta scales every E0: eta = 2 with a0 = (0.5, 0.05) is the same
    assert D.ratio_exponent_prediction([0.5, 0.05], 2.0, (100, 400)) == pytest.approx(want, rel=1e-10)


# ----------------------------------------------------------------- each derived expression against an independent route
# (issue 21: the premise computed on explicit vectors, a Runge-Kutta integration of the flow, a bisection, a brute-force
# maximum, finite differences, the limits read off at large t in high precision)

def _num(expr, **values):
    """A sympy expression of the derivation at numbers given by the symbols' keys in ``d.symbols``."""
    y = D.derive_elr_model().symbols
    return float(expr.subs({y[k]: v for k, v in values.items()}))


def _premise_step(W, c, eta, rng):
    """One SGD step of a scale-invariant layer on explicit vectors: a gradient orthogonal to W with norm c / ||W||."""
    v = rng.standard_normal(W.shape)
    v -= (v @ W) / (W @ W) * W
    g = c / np.linalg.norm(W) * v / np.linalg.norm(v)
    return W - eta * g, g


def test_symbols_are_positive_and_named_as_documented():
    d = D.derive_elr_model()
    names = {"eta": "eta", "c": "c", "S": "S", "S0": "S_0", "t": "t", "E": "E", "E0": "E_0", "E_l0": "E_l0",
             "E_k0": "E_k0", "a_l": "a_l", "a_k": "a_k", "c_l": "c_l", "c_k": "c_k", "u": "u", "s": "s",
             "E_l": "E_l", "E_k": "E_k"}
    assert {k: v.name for k, v in d.symbols.items()} == names
    assert all(v.is_positive is True for v in d.symbols.values())  # "all symbols positive"
    assert str(d.E_next) == "E/(E**2 + 1)"  # the chapter prints it
    # every output is written in the documented symbols only (no stray symbol of another name or assumption)
    own = set(d.symbols.values())
    for f in ("S_next", "E_def", "E_next", "u_next", "S_closed", "E_closed", "log_ratio", "classic_ratio_limit", "rate",
              "next_ratio", "next_ratio_slope", "critical_lr", "critical_lr_elr", "warmup_spread", "S2_rate"):
        assert getattr(d, f).free_symbols <= own, f


def test_norm_step_and_elr_map_on_explicit_vectors():
    # the premise on a vector of R^7: S' = ||W - eta g||^2, E = eta ||g|| / ||W||, E' = eta c / S' (the same c)
    d = D.derive_elr_model()
    rng = np.random.default_rng(1)
    for Sq, eta, c in [(1.0, 0.1, 1.0), (2.5, 0.7, 3.0), (0.3, 2.0, 0.2)]:
        W = rng.standard_normal(7)
        W *= math.sqrt(Sq) / np.linalg.norm(W)
        W1, g = _premise_step(W, c, eta, rng)
        S1 = W1 @ W1
        E = eta * np.linalg.norm(g) / np.linalg.norm(W)
        E1 = eta * (c / np.linalg.norm(W1)) / np.linalg.norm(W1)
        assert _num(d.S_next, S=Sq, eta=eta, c=c) == pytest.approx(S1, rel=1e-13)
        assert _num(d.E_def, S=Sq, eta=eta, c=c) == pytest.approx(E, rel=1e-13)
        assert _num(d.E_next, E=E) == pytest.approx(E1, rel=1e-13)
        assert _num(d.u_next, u=1 / E**2) == pytest.approx(1 / E1**2, rel=1e-13)
        # the flow's right-hand side is the step's increment S' - S
        f = d.ode.rhs.subs(d.ode.lhs.args[0], d.symbols["S"])
        assert _num(f, S=Sq, eta=eta, c=c) == pytest.approx(S1 - Sq, rel=1e-12)
    t = d.symbols["t"]
    assert d.ode.lhs == sp.Derivative(sp.Function("S")(t), t)


def _two_layer_ratio(a_l, a_k, eta, seed=2):
    # two layers at S = 1 with c = a (so a = c / S), one step at eta on explicit vectors, their new ELR ratio
    rng = np.random.default_rng(seed)
    out = []
    for a in (a_l, a_k):
        W = rng.standard_normal(5)
        W /= np.linalg.norm(W)
        W1, _ = _premise_step(W, a, eta, rng)
        out.append(eta * a / (W1 @ W1))
    return out[0] / out[1]


def test_next_ratio_and_its_slope_against_a_simulated_step():
    d = D.derive_elr_model()
    for a_l, a_k, eta in [(2.0, 0.5, 0.3), (5.0, 1.0, 0.9), (0.4, 3.0, 1.7)]:
        r = _num(d.next_ratio, a_l=a_l, a_k=a_k, eta=eta)
        assert r == pytest.approx(_two_layer_ratio(a_l, a_k, eta), rel=1e-12)
        h = 1e-5 * eta  # central difference: error ~ h^2
        fd = (_two_layer_ratio(a_l, a_k, eta + h) - _two_layer_ratio(a_l, a_k, eta - h)) / (2 * h)
        assert _num(d.next_ratio_slope, a_l=a_l, a_k=a_k, eta=eta) == pytest.approx(fd, rel=1e-6)


def test_critical_lr_by_bisection_on_the_simulated_step():
    d = D.derive_elr_model()
    for a_l, a_k in [(4.0, 1.0), (9.0, 0.25), (1.5, 1.2)]:
        lo, hi = 1e-6, 1e6  # the ratio falls from a_l / a_k > 1 to a_k / a_l < 1 as eta grows
        for _ in range(200):
            mid = math.sqrt(lo * hi)
            lo, hi = (mid, hi) if _two_layer_ratio(a_l, a_k, mid) > 1.0 else (lo, mid)
        eta_c = math.sqrt(lo * hi)
        assert _num(d.critical_lr, a_l=a_l, a_k=a_k) == pytest.approx(eta_c, rel=1e-9)
        # the same LR from the ELRs E = eta a at any current LR eta
        assert _num(d.critical_lr_elr, eta=0.3, E_l=0.3 * a_l, E_k=0.3 * a_k) == pytest.approx(eta_c, rel=1e-9)
        assert float(D.critical_lr(a_l, a_k)) == pytest.approx(eta_c, rel=1e-9)


def test_warmup_spread_is_the_worst_middle_layer():
    # spread s between the extremes, a middle layer anywhere in between: the largest spread left by one step at the
    # extremes' critical LR (found by bisection), by brute force over the middle layer's position
    d = D.derive_elr_model()
    for s in (4.0, 100.0, 1e4):
        lo, hi = 1e-8, 1e4
        for _ in range(200):
            mid = math.sqrt(lo * hi)
            lo, hi = (mid, hi) if _two_layer_ratio(s, 1.0, mid) > 1.0 else (lo, mid)
        eta = math.sqrt(lo * hi)
        a = np.exp(np.linspace(0.0, math.log(s), 200_001))  # the middle layer; the extremes are a[0] = 1, a[-1] = s
        after = a / (1.0 + (eta * a) ** 2)
        worst = after.max() / min(after[0], after[-1])
        assert _num(d.warmup_spread, s=s) == pytest.approx(worst, rel=1e-8)


def _rk4_norm(S0, k, ts, n=4000):
    """dS/dt = k / S integrated by RK4 in tau = log(1 + t) (n steps per unit of tau): S at the times ``ts``."""
    out, S, tau = [], S0, 0.0
    for t in ts:
        end = math.log1p(t)
        m = max(1, int(math.ceil((end - tau) * n)))
        h = (end - tau) / m
        f = lambda tau_, S_: math.exp(tau_) * k / S_  # noqa: E731  dS/dtau = (1 + t) dS/dt
        for _ in range(m):
            k1 = f(tau, S)
            k2 = f(tau + h / 2, S + h / 2 * k1)
            k3 = f(tau + h / 2, S + h / 2 * k2)
            k4 = f(tau + h, S + h * k3)
            S, tau = S + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4), tau + h
        out.append(S)
    return np.array(out)


def test_flow_closed_forms_against_a_runge_kutta_integration():
    d = D.derive_elr_model()
    ts = [0.5, 3.0, 40.0, 900.0]
    for S0, eta, c in [(1.0, 0.5, 1.0), (2.0, 0.1, 3.0), (0.5, 1.3, 0.7)]:
        Sr = _rk4_norm(S0, eta**2 * c**2, ts)
        for t, St in zip(ts, Sr):
            assert _num(d.S_closed, S0=S0, eta=eta, c=c, t=t) == pytest.approx(St, rel=1e-10)
            # E(t) = eta c / S(t) from E0 = eta c / S0
            assert _num(d.E_closed, E0=eta * c / S0, t=t) == pytest.approx(eta * c / St, rel=1e-10)
        # d(S^2)/dt by a central difference of the integrated S
        t, h = 3.0, 1e-3
        Sm, Sp = _rk4_norm(S0, eta**2 * c**2, [t - h, t + h])
        assert _num(d.S2_rate, eta=eta, c=c) == pytest.approx((Sp**2 - Sm**2) / (2 * h), rel=1e-7)
    # two layers from the same S0 = 1 and eta = 1, c = E0: log of their ELR ratio
    for El0, Ek0 in [(1.0, 0.25), (0.2, 0.9)]:
        Sl, Sk = _rk4_norm(1.0, El0**2, ts), _rk4_norm(1.0, Ek0**2, ts)
        for t, a, b in zip(ts, Sl, Sk):
            want = math.log((El0 / a) / (Ek0 / b))
            assert _num(d.log_ratio, E_l0=El0, E_k0=Ek0, t=t) == pytest.approx(want, rel=1e-9)


def test_limits_read_off_at_large_t():
    # the limits, read off the (RK-checked) closed forms at t = 1e30 in 60-digit arithmetic
    d = D.derive_elr_model()
    y = d.symbols
    t = sp.Integer(10) ** 30
    El0, Ek0 = sp.Rational(7, 10), sp.Rational(1, 5)
    ratio = sp.exp(d.log_ratio).subs({y["E_l0"]: El0, y["E_k0"]: Ek0, y["t"]: t})
    assert abs(float(sp.N(ratio - 1, 60))) < 1e-25 and d.ratio_limit == 1
    tlog = sp.N((t * d.log_ratio).subs({y["E_l0"]: El0, y["E_k0"]: Ek0, y["t"]: t}), 60)
    assert float(d.rate.subs({y["E_l0"]: El0, y["E_k0"]: Ek0})) == pytest.approx(float(tlog), rel=1e-20)
    cl, ck = sp.Rational(3), sp.Rational(1, 2)
    Sl = d.S_closed.subs({y["c"]: cl, y["S0"]: 1, y["eta"]: sp.Rational(1, 10), y["t"]: t})
    Sk = d.S_closed.subs({y["c"]: ck, y["S0"]: 1, y["eta"]: sp.Rational(1, 10), y["t"]: t})
    classic = float(sp.N(Sk / Sl, 60))  # (eta / S_l) / (eta / S_k)
    assert float(d.classic_ratio_limit.subs({y["c_l"]: cl, y["c_k"]: ck})) == pytest.approx(classic, rel=1e-12)


def test_model_spread_trace_without_momentum_is_the_derived_map_exactly():
    # beta = 0: the plain map a -> a / (1 + (eta a)^2) iterated, in these very float operations (the S-form of the
    # heavy ball, S <- S + (eta c / sqrt(S))^2, a = c / S, is the same map up to round-off: the code takes the map)
    rng = np.random.default_rng(3)
    for _ in range(5):
        a0, lrs = np.exp(rng.uniform(-3, 3, 4)), np.exp(rng.uniform(-2, 2, 30))
        a, want = a0.copy(), [a0.max() / a0.min()]
        for e in lrs:
            a = a / (1.0 + (e * a) ** 2)
            want.append(a.max() / a.min())
        assert np.array_equal(D.model_spread_trace(a0, lrs), want)
        assert np.array_equal(D.model_warmup_trace(a0, 1e-3, 3)[0][0], want[0])


def test_model_spread_trace_starts_with_the_initial_spread():
    # a0 = (1, 1/4): spread 4 before the first step; one step at eta_c = 2 gives 1 / 5 and (1/4) / (5/4) = 1 / 5
    assert D.model_spread_trace([1.0, 0.25], [2.0]).tolist() == pytest.approx([4.0, 1.0], rel=1e-15)
    s, lrs = D.model_warmup_trace([0.25, 1.0, 0.5], lr=1.0, steps=1)
    # eta_c = 1 / sqrt(1 * 1/4) = 2 > 1: the target LR 1; 1/4 -> (1/4) / (1 + 1/16) = 4/17, 1 -> 1/2, 1/2 -> 2/5
    assert s.tolist() == pytest.approx([4.0, (1 / 2) / (4 / 17)], rel=1e-14)
    assert lrs.tolist() == [1.0]


# ----------------------------------------------------------------- mutation testing
# The surviving mutants of lrtheory/results/elr/derivation.py (mutmut 3.8.1, this file alone), each with why it is
# equivalent or harmless, and the table of every derived expression and its independent check:
# tests/mutation_survivors/elr.md.
