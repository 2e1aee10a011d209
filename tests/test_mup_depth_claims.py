"""Chapter 03's claims (lrtheory.results.mup_depth.claims): each passes at CI scale and fails when
its prediction is wrong; no two networks of any measurement share a seed.

The measurements are memoized per config and device, so the perturbed checks cost nothing extra.
"""
import dataclasses

import pytest

from lrtheory.core.device import record_seeds
from lrtheory.results.mup_depth import CHAPTER
from lrtheory.results.mup_depth import measurements as M

CLAIMS = ["mup_depth.update_formula", "mup_depth.depth_exponent", "mup_depth.width_independence",
          "mup_depth.transfer", "mup_depth.readout_width"]


def _claim(cid):
    (claim,) = [c for c in CHAPTER.claims if c.id == cid]
    return claim


def _fails(cid, transform):
    return not _claim(cid).with_prediction(transform).check("ci", "cpu").passed


def test_the_chapter_declares_its_claims():
    assert [c.id for c in CHAPTER.claims] == CLAIMS
    assert sorted(CHAPTER.measurements) == ["measure_transfer", "measure_update_grid"]
    assert "derived here" in _claim("mup_depth.update_formula").source


@pytest.mark.parametrize("cid", CLAIMS)
def test_claim_passes_at_ci(cid):
    v = _claim(cid).check("ci", "cpu")
    assert v.passed, (v.predicted, v.measured, v.details)


def test_update_formula_fails_when_perturbed():
    # a 30% error, a factor 2 either way, and an L^2 law (only the coherent part) are all rejected
    for factor in (0.7, 0.5, 2.0):
        assert _fails("mup_depth.update_formula", lambda p: {k: v * factor for k, v in p.items()})
    assert _fails("mup_depth.update_formula", lambda p: {k: int(k[2:]) ** 2 / 2 for k in p})


def test_depth_exponent_fails_when_perturbed():
    for wrong in (-1.0, -2.0, -0.75, -3.0):  # a 1/L law, L^-2, and -3/2 off by a factor 2 either way
        assert _fails("mup_depth.depth_exponent", lambda p: {"exponent": wrong})


def test_width_independence_fails_when_perturbed():
    # standard parametrization would give eta* ~ n^{-1/2}
    assert _fails("mup_depth.width_independence", lambda p: {k: -0.5 for k in p})


def test_transfer_fails_when_perturbed():
    assert _fails("mup_depth.transfer", lambda p: {**p, "scaled": -1.0})
    assert _fails("mup_depth.transfer", lambda p: {**p, "scaled": 1.0})


def test_readout_width_fails_when_perturbed():
    assert _fails("mup_depth.readout_width", lambda p: {**p, "slope_lr1": 1.0})
    assert _fails("mup_depth.readout_width", lambda p: {**p, "slope_lr1/n": -1.0})


def test_no_two_networks_share_a_seed():
    # the CI grids of widths and depths, fewer networks and steps: the seeding code is the same
    cfg = CHAPTER.config("ci")
    small = dataclasses.replace(
        cfg, mc=dataclasses.replace(cfg.mc, n_seeds=3, etas=cfg.mc.etas[:2]),
        transfer=dataclasses.replace(cfg.transfer, n_seeds=2, steps=2, n_train=32,
                                     log2_etas=cfg.transfer.log2_etas[:3]))
    with record_seeds() as calls:
        M.measure_update_grid.compute(small, "cpu")
        M.measure_transfer.compute(small, "cpu")
    seeds = [s for _, s in calls]
    mc, tr = small.mc, small.transfer
    n_mc = sum(mc.n_seeds for n in mc.widths for L in mc.depths if mc.runs(n, L))
    n_tr = len(tr.depths) * tr.n_seeds * len(tr.log2_etas)
    assert len(seeds) == n_mc + n_tr  # one seed_for call per network
    assert len(set(seeds)) == len(seeds)
    assert all(keys[0] == "mup_depth" for keys, _ in calls)


def test_measurements_round_trip_through_the_store_encoding():
    # what `lrtheory sweep mup_depth` stores must decode to the same measurement, bit for bit
    import json

    import numpy as np

    from lrtheory.core.sweep import decode_value, encode_value

    cfg = CHAPTER.config("ci")
    for m in (M.measure_update_grid, M.measure_transfer):
        value = m.of(cfg, "cpu")
        back = decode_value(json.loads(json.dumps(encode_value(value))))
        assert type(back) is type(value)
        for f in dataclasses.fields(value):
            a, b = getattr(value, f.name), getattr(back, f.name)
            if isinstance(a, dict):
                assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
            else:
                assert np.array_equal(a, b, equal_nan=True) if isinstance(a, np.ndarray) else a == b


def test_measurements_are_points_per_grid_point_and_depth():
    import json

    from lrtheory.core.sweep import decode_value, encode_value

    cfg = CHAPTER.config("ci")
    grid_points = M.measure_update_grid.point_configs("ci")
    assert len(grid_points) == sum(cfg.mc.runs(n, L) for n in cfg.mc.widths for L in cfg.mc.depths)
    assert len(M.measure_transfer.point_configs("ci")) == len(cfg.transfer.depths)
    # a part (what one sweep point stores), None fields included, survives the store encoding
    part = M.measure_update_grid.fn(cfg, "cpu", {"width": 64, "depth": 2})
    assert part.layers is None and part.exact_top is None
    back = decode_value(json.loads(json.dumps(encode_value(part))))
    assert back.layers is None and (back.top == part.top).all() and back.out_lin == part.out_lin
