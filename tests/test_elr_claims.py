"""Tests of lrtheory.results.elr.claims (chapter 04): the verdicts the chapter reports, and that every
claim's tolerance rejects a prediction off by a factor of 2 either way.

The chapter's claims are the model's predictions against measured networks. ``elr.norm_law`` passes at both
scales, ``elr.deep_trainability`` at CI only; the rest fail at both scales (the chapter says so and why).
``elr.warmup_lasting`` used to pass at CI with its prediction doubled (rel 0.4); its tolerance is now rel 0.25
and every relative tolerance is below 1/3, which makes every passing value fail at a factor 2 (tested below).
A test "fails when the prediction is doubled or halved" says nothing about a claim that already fails, so
each claim is checked three ways: its verdict is the one reported (pinned, so a change of code or config that
flips it is seen), it passes when the prediction is the measured value (the check can pass), and
it fails when that value is doubled or halved (the tolerance is below a factor 2); a passing claim also
fails with its own prediction doubled or halved.
"""
import os

import numpy as np
import pytest

from lrtheory.results.elr import CHAPTER

CLAIM_IDS = ["elr.ratio_converges", "elr.norm_law", "elr.critical_lr", "elr.warmup_reduces_spread", "elr.warmup_lasting",
             "elr.deep_trainability"]
#: Verdicts at each scale (the chapter's text reports the same).
VERDICTS = {"ci": dict(dict.fromkeys(CLAIM_IDS, False), **{"elr.norm_law": True, "elr.deep_trainability": True}),
            "reference": dict(dict.fromkeys(CLAIM_IDS, False), **{"elr.norm_law": True})}
_REF = os.path.join(os.path.dirname(__file__), "..", "lrtheory", "results", "elr", "reference.jsonl")
SCALES = ["ci", pytest.param("reference", marks=pytest.mark.skipif(not os.path.exists(_REF),
                                                                   reason="no stored reference run"))]


@pytest.fixture(scope="module")
def claims():
    return {c.id: c for c in CHAPTER.claims}


def _scaled(value, f):
    return {k: v * f for k, v in value.items()} if isinstance(value, dict) else value * f


def test_claim_ids(claims):
    assert sorted(claims) == sorted(CLAIM_IDS)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("cid", CLAIM_IDS)
def test_verdict_and_factor_two(claims, cid, scale):
    c = claims[cid]
    v = c.check(scale, "cpu")
    assert v.passed is VERDICTS[scale][cid], (v.predicted, v.measured)
    m = v.measured
    assert c.with_prediction(lambda p: m).check(scale, "cpu").passed, "the check cannot pass at all"
    for f in (2.0, 0.5):
        assert not c.with_prediction(lambda p, f=f: _scaled(m, f)).check(scale, "cpu").passed, f
    if v.passed:  # a passing claim also fails with its own prediction off by 2
        for f in (2.0, 0.5):
            assert not c.with_prediction(lambda p, f=f: _scaled(p, f)).check(scale, "cpu").passed, f


def test_relative_tolerances_are_below_one_third(claims):
    # a rel tolerance tau < 1/3 makes every passing measurement fail with the prediction doubled or halved
    # (|m - 2p| >= (1 - tau) p > 2 tau p, |m - p/2| >= (1/2 - tau) p > tau p / 2); tau = 0.4 did not
    # (elr.warmup_lasting passed at CI with its prediction doubled)
    for c in claims.values():
        if c.tolerance.kind == "rel":
            assert c.tolerance.value < 1 / 3, c.id
    from lrtheory.verify.claims import Tolerance

    for tau, ok in ((0.3, True), (0.4, False)):
        t = Tolerance(tau, "rel", "test")
        worst = [m for m in np.linspace(1 - tau, 1 + tau, 201) if t.passes(m, 1.0)]
        assert (not any(t.passes(m, 2.0) or t.passes(m, 0.5) for m in worst)) is ok


def test_critical_lr_compares_steps_and_fails_at_a_factor_two(claims):
    # elr.critical_lr compares onset steps with an absolute tolerance of 1.5 steps: a predicted step
    # doubled or halved fails wherever the onset is 5 steps or later (both are, at both scales)
    c = claims["elr.critical_lr"]
    assert (c.tolerance.kind, c.tolerance.value) == ("abs", 1.5)
    for scale in ("ci", "reference"):
        v = c.check(scale, "cpu")
        assert v.predicted >= 5 and v.measured >= 3, (v.predicted, v.measured)
        for m in (v.predicted - 1.5, v.predicted + 1.5):
            assert c.tolerance.passes(m, v.predicted)
            assert not c.tolerance.passes(m, 2 * v.predicted) and not c.tolerance.passes(m, v.predicted / 2)


def test_sources_say_what_was_derived_here(claims):
    # only the paper's abstract could be read: every formula checked here is ours
    for c in claims.values():
        assert c.source.startswith("derived here"), c.source
        assert "abstract" in c.source


def test_no_claim_simulates_the_model():
    # the random-loss simulations of the model's premise feed figures and unit tests, no claim
    import inspect

    from lrtheory.results.elr import claims as C

    src = inspect.getsource(C)
    assert "measure_norm_run" not in src and "measure_ratio_run" not in src


@pytest.mark.parametrize("scale", SCALES)
def test_warmup_reaches_the_target_lr(scale):
    # deep_trainability compares the warm-up with the constant LR at the SAME target LR: the warm-up
    # must hand over to it early in the run (it does within 10 steps at CI and reference)
    from lrtheory.results.elr import measurements as M

    cfg = CHAPTER.config(scale)
    for r in M.measure_deep_runs(scale, "cpu")["warm"]:
        reached = r.lr >= cfg.warm_lr * (1 - 1e-12)
        assert reached.any() and int(reached.argmax()) < 10, r.lr[:12]
        assert reached[int(reached.argmax()):].all()  # and stays there
