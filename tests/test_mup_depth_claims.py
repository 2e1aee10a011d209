"""Chapter 03's claims (lrtheory.results.mup_depth.claims): each passes at CI scale and at the
reference scale (read from the committed reference.jsonl), and fails when its prediction is
off by a factor of 2 either way, at both scales; no two networks of any measurement share a seed.

The measurements are memoized per config and device, so the perturbed checks cost nothing extra.
"""
import dataclasses

import pytest

from lrtheory.core.device import generator_key, record_seeds
from lrtheory.results.mup_depth import CHAPTER
from lrtheory.results.mup_depth import derivation as D
from lrtheory.results.mup_depth import measurements as M

CLAIMS = ["mup_depth.update_formula", "mup_depth.depth_exponent", "mup_depth.width_independence",
          "mup_depth.first_layer", "mup_depth.last_layer", "mup_depth.first_layer_rule", "mup_depth.transfer"]
SCALES = ["ci", "reference"]


def _claim(cid):
    (claim,) = [c for c in CHAPTER.claims if c.id == cid]
    return claim


def _fails(cid, transform, scale="ci"):
    return not _claim(cid).with_prediction(transform).check(scale, "cpu").passed


def _times(f):
    return lambda p: {k: f * v for k, v in p.items()}


def test_the_chapter_declares_its_claims():
    assert [c.id for c in CHAPTER.claims] == CLAIMS
    assert sorted(CHAPTER.measurements) == ["measure_layer_widths", "measure_transfer", "measure_update_grid"]
    for cid in ("update_formula", "first_layer", "last_layer", "first_layer_rule"):
        assert _claim("mup_depth." + cid).source.startswith("derived here")
    assert "our experiment" in _claim("mup_depth.transfer").source


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("cid", CLAIMS)
def test_claim_passes(cid, scale):
    v = _claim(cid).check(scale, "cpu")
    assert v.passed, (v.predicted, v.measured, v.details)


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("cid", [c for c in CLAIMS if c != "mup_depth.transfer"])
def test_claim_fails_off_by_a_factor_2(cid, scale):
    for f in (2.0, 0.5):
        assert _fails(cid, _times(f), scale), (cid, f)


@pytest.mark.parametrize("scale", SCALES)
def test_update_formula_fails_with_the_leading_term_alone(scale):
    # y^2 L^3 / 3 instead of y^2 L (2 L^2 + 1) / 6: off by 1/3 at L = 1; the coherent part alone
    # (L^2 / 2) and a 30% error are rejected too
    assert _fails("mup_depth.update_formula", lambda p: {k: int(k[2:]) ** 3 / 3 for k in p}, scale)
    assert _fails("mup_depth.update_formula", lambda p: {k: int(k[2:]) ** 2 / 2 for k in p}, scale)
    assert _fails("mup_depth.update_formula", _times(0.7), scale)


@pytest.mark.parametrize("scale", SCALES)
def test_depth_exponent_fails_for_other_laws(scale):
    for wrong in (-1.0, -2.0):  # a 1/L law, L^-2
        assert _fails("mup_depth.depth_exponent", lambda p: {"exponent": wrong}, scale)


def test_reference_exponent_error_is_below_0_02():
    v = _claim("mup_depth.depth_exponent").check("reference", "cpu")
    assert v.measured["exponent_se"] < 0.02
    assert max(CHAPTER.config("reference").mc.fit_depths()) >= 64


@pytest.mark.parametrize("scale", SCALES)
def test_edge_layers_fail_with_the_hidden_law(scale):
    # the width-independent law of the hidden layers (eta* at the smallest width, for every n)
    for cid in ("mup_depth.first_layer", "mup_depth.last_layer"):
        assert _fails(cid, lambda p: {k: next(iter(p.values())) for k in p}, scale)
    # and the rule's claim fails for the network without the n/d factor (measured beside)
    lw = M.measure_layer_widths(scale, "cpu")
    eta, _ = lw.eta_star("hidden")
    assert _fails("mup_depth.first_layer_rule", lambda p: {k: float(e) for k, e in zip(p, eta)}, scale)


@pytest.mark.parametrize("scale", SCALES)
def test_transfer_fails_when_the_scaled_drift_is_the_unscaled_one(scale):
    # the prediction 0 is replaced by what the unscaled runs measure, and by the L^{-3/2} law's drift
    from lrtheory.results.mup_depth.claims import TRANSFER_MIN_DEPTH as L2

    tr = M.measure_transfer(scale, "cpu")
    assert _fails("mup_depth.transfer", lambda p: {"scaled": tr.drift("unscaled", L2)}, scale)
    assert _fails("mup_depth.transfer", lambda p: {"scaled": float(D.derive_max_update_lr().depth_exponent)}, scale)
    # the two drifts are separated by many standard errors (at CI scale 4 seeds: a few)
    sep = (tr.drift("scaled", L2) - tr.drift("unscaled", L2)) / (tr.drift_se("scaled", L2) ** 2
                                                                + tr.drift_se("unscaled", L2) ** 2) ** 0.5
    assert sep > (10 if scale == "reference" else 3)


def test_no_two_networks_share_a_seed():
    # the CI grids, fewer networks and steps: the seeding code is the same
    cfg = CHAPTER.config("ci")
    small = dataclasses.replace(
        cfg, mc=dataclasses.replace(cfg.mc, n_seeds=3, etas=cfg.mc.etas[:2]),
        layers=dataclasses.replace(cfg.layers, n_seeds=3),
        transfer=dataclasses.replace(cfg.transfer, n_seeds=2, steps=2, n_train=32,
                                     log2_etas=cfg.transfer.log2_etas[:3]))
    with record_seeds() as calls:
        M.measure_update_grid.compute(small, "cpu")
        M.measure_layer_widths.compute(small, "cpu")
        M.measure_transfer.compute(small, "cpu")
    seeds = [s for _, s in calls]
    mc, lc, tr = small.mc, small.layers, small.transfer
    n_mc = mc.n_seeds * len(mc.points())
    n_layers = lc.n_seeds * len(lc.widths)
    n_tr = len(M.MODES) * len(tr.depths) * tr.n_seeds * len(tr.log2_etas)
    assert len(seeds) == n_mc + n_layers + n_tr  # one seed_for call per network
    assert len({generator_key(s) for s in seeds}) == len(seeds)  # distinct in the bits torch uses
    assert all(keys[0] == "mup_depth" for keys, _ in calls)


def test_measurements_round_trip_through_the_store_encoding():
    # what `lrtheory sweep mup_depth` stores must decode to the same measurement, bit for bit
    import json

    import numpy as np

    from lrtheory.core.sweep import decode_value, encode_value

    cfg = CHAPTER.config("ci")
    for m in (M.measure_update_grid.fn(cfg, "cpu", {"width": 64, "depth": 1}),
              M.measure_layer_widths.fn(cfg, "cpu", {"width": 32}), M.measure_transfer.of(cfg, "cpu")):
        back = decode_value(json.loads(json.dumps(encode_value(m))))
        assert type(back) is type(m)
        for f in dataclasses.fields(m):
            a, b = getattr(m, f.name), getattr(back, f.name)
            if isinstance(a, dict):
                assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
            elif isinstance(a, np.ndarray):
                assert np.array_equal(a, b, equal_nan=True)
            else:
                assert a == b


def test_measurements_are_points():
    cfg = CHAPTER.config("ci")
    assert len(M.measure_update_grid.point_configs("ci")) == len(cfg.mc.points())
    assert len(M.measure_layer_widths.point_configs("ci")) == len(cfg.layers.widths)
    assert len(M.measure_transfer.point_configs("ci")) == len(M.MODES) * len(cfg.transfer.depths)
    part = M.measure_update_grid.fn(cfg, "cpu", {"width": 32, "depth": 2})
    assert part.layers is None and part.exact_top is None  # not on the update series, not the deepest
