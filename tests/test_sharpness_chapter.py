"""Chapter 01 (lrtheory.results.sharpness): claims at CI scale, their failure modes, seeds."""
import numpy as np
import pytest
import torch

from lrtheory.core.device import record_seeds
from lrtheory.results.sharpness import CHAPTER, derivation as D, simulate as S
from lrtheory.verify.registry import select

IDS = ["sharpness.eta_star_power_law", "sharpness.lambda1_bounds", "sharpness.lambda1_growth",
       "sharpness.not_inverse"]


@pytest.fixture(scope="module")
def recorded():
    """Every claim at CI scale, computed afresh, with every seed_for call made meanwhile."""
    for m in CHAPTER.measurements.values():
        m.cache_clear()
    with record_seeds() as calls:
        verdicts = {v.id: v for v in CHAPTER.check("ci", "cpu")}
        CHAPTER.measurements["measure_plain"]("ci", "cpu")
        CHAPTER.measurements["measure_narrow"]("ci", "cpu")
        CHAPTER.measurements["measure_loss_curves"]("ci", "cpu")
    return verdicts, list(calls)


@pytest.fixture(scope="module")
def verdicts(recorded):
    return recorded[0]


def test_claims_registered():
    assert [c.id for c in CHAPTER.claims] == IDS
    assert [c.id for c in select(["sharpness"])] == IDS


def test_all_claims_pass_at_ci_scale(verdicts):
    assert set(verdicts) == set(IDS)
    for v in verdicts.values():
        assert v.passed, (v.id, v.predicted, v.measured, v.details)


def test_no_two_models_share_a_seed(recorded):
    """Every network of the CI measurements has its own seed (the batch order is one shared seed)."""
    _, calls = recorded
    cfg = CHAPTER.config("ci")
    models = [(k, s) for k, s in calls if k[0] == "sharpness" and k[1] != "batch_order"]
    seeds = [s for _, s in models]
    assert len(set(seeds)) == len(seeds), [k for k, s in models if seeds.count(s) > 1]
    A, B = len(cfg.archs), len(cfg.narrow)
    per_arch = cfg.seeds + cfg.sharp_seeds
    assert len(models) == A * per_arch + A * cfg.seeds + B * per_arch + 1  # grid, plain, narrow, loss curves
    # and the networks differ from their first layer on, across depths of one width
    a = S.model_seed("grid/eta_star", 2, 32, 0)
    assert a != S.model_seed("grid/eta_star", 3, 32, 0) and a != S.model_seed("plain/eta_star", 2, 32, 0)


def test_measurements_are_deterministic():
    # one architecture of the grid, searched and measured twice: same seeds, same numbers, bit for bit
    cfg = CHAPTER.config("ci")
    dev = torch.device("cpu")
    ds = S.load_dataset(cfg, dev)
    a = S.eta_star_search(cfg, ds, 2, 16, cfg.input_lr_mult, dev)
    b = S.eta_star_search(cfg, ds, 2, 16, cfg.input_lr_mult, dev)
    assert a.runs == b.runs and a.eta_star == b.eta_star
    la, lb = S.sharpness_at_init(cfg, ds, 2, 16, dev), S.sharpness_at_init(cfg, ds, 2, 16, dev)
    np.testing.assert_array_equal(la[0], lb[0])
    np.testing.assert_array_equal(la[1], lb[1])


def _claim(cid):
    return next(c for c in CHAPTER.claims if c.id == cid)


def test_growth_fails_with_a_wrong_exponent(verdicts):
    from lrtheory.verify.claims import compare_values

    v, c = verdicts["sharpness.lambda1_growth"], _claim("sharpness.lambda1_growth")
    assert c.tolerance.kind == "sigma" and c.compare is None  # k standard errors + an allowance, no custom compare
    shift = lambda d: {"exponent": v.predicted["exponent"] + d}  # noqa: E731
    assert compare_values(v.predicted, v.measured, c.tolerance)[0]
    assert not compare_values(shift(1.0), v.measured, c.tolerance)[0]  # e.g. lambda_1 ~ (Ln)^2
    assert not compare_values(shift(-0.9), v.measured, c.tolerance)[0]  # lambda_1 flat in Ln
    assert not c.with_prediction(lambda p: {"exponent": p["exponent"] + 1.0}).check("ci", "cpu").passed


def test_bounds_fail_when_tightened(verdicts):
    v, c = verdicts["sharpness.lambda1_bounds"], _claim("sharpness.lambda1_bounds")
    up = {k: (x * 0.1 if k.startswith("upper/") else x) for k, x in v.predicted.items()}
    lo = {k: (x * 10.0 if k.startswith("lower/") else x) for k, x in v.predicted.items()}
    assert not c.compare(up, v.measured, c.tolerance)[0]
    assert not c.compare(lo, v.measured, c.tolerance)[0]
    assert not c.with_prediction(lambda p: up).check("ci", "cpu").passed


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
    orig = D.ntk_gram_infinite_width
    monkeypatch.setattr(D, "ntk_gram_infinite_width", lambda x, L, n, rho_in=1.0: orig(x, L, 1, rho_in))
    D.predict_config.cache_clear()
    try:
        v = c.check("ci", "cpu")
        assert not v.passed
    finally:
        monkeypatch.undo()
        D.predict_config.cache_clear()


def test_sources_say_whose_result():
    src = {c.id: c.source for c in CHAPTER.claims}
    assert src["sharpness.lambda1_bounds"].startswith("derived here")
    assert src["sharpness.lambda1_growth"].startswith("derived here")
    for cid in ("sharpness.eta_star_power_law", "sharpness.not_inverse"):
        assert src[cid].startswith("Iyer") and "are ours" in src[cid]


@pytest.mark.full
def test_claims_pass_at_full_scale():
    """Paper-sized grid (MNIST-1D, widths 128-1024, depths up to 16, 5 seeds): meant for a GPU."""
    for v in CHAPTER.check("full"):
        assert v.passed, (v.id, v.predicted, v.measured, v.details)
