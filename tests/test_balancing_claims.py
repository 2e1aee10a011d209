"""The claims of chapter 05 (prefix ``balancing``): they pass at CI scale (and at the reference
scale, read from reference.jsonl) and each fails when its prediction is off by a factor of 2
either way; the chapter's random problems draw their own seeds."""
from __future__ import annotations

import numpy as np
import pytest

from lrtheory.core.device import record_seeds
from lrtheory.results.balancing import CHAPTER, CONFIGS
from lrtheory.results.balancing import measurements as M

CLAIM_IDS = [
    "balancing.scalar.limit_imbalance",
    "balancing.scalar.convergence_edge",
    "balancing.scalar.flattest_edge",
    "balancing.matrix.convergence_edge",
    "balancing.matrix.limit_imbalance",
]
HAS_REFERENCE = CHAPTER.reference_path.exists()


def _claim(cid):
    (c,) = [c for c in CHAPTER.claims if c.id == cid]
    return c


def _scaled(factor):
    return lambda p: ({k: factor * v for k, v in p.items()} if isinstance(p, dict) else factor * p)


def test_all_claims_declared():
    assert sorted(c.id for c in CHAPTER.claims) == sorted(CLAIM_IDS)
    assert all(c.notebook == "05_balancing" and c.chapter == "balancing" for c in CHAPTER.claims)


def test_sources_say_whose_result_it_is():
    # every prediction here is ours; the paper supplies the settings and the sufficient condition
    for c in CHAPTER.claims:
        assert c.source.startswith("derived here"), c.id
        assert "Wang, Chen, Zhao, Tao 2022" in c.source, c.id


@pytest.mark.parametrize("cid", CLAIM_IDS)
def test_claim_passes_at_ci_scale(cid):
    (v,) = CHAPTER.check("ci", "cpu", only=[cid])
    assert v.passed, v.details


@pytest.mark.parametrize("factor", [2.0, 0.5])
@pytest.mark.parametrize("cid", CLAIM_IDS)
def test_claim_fails_when_its_prediction_is_off_by_a_factor_2(cid, factor):
    c = _claim(cid)
    assert not c.with_prediction(_scaled(factor)).check("ci", "cpu").passed


@pytest.mark.skipif(not HAS_REFERENCE, reason="reference.jsonl not computed yet")
@pytest.mark.parametrize("cid", CLAIM_IDS)
def test_claim_passes_at_reference_scale_and_fails_off_by_2(cid):
    c = _claim(cid)
    assert c.check("reference").passed
    for factor in (2.0, 0.5):
        assert not c.with_prediction(_scaled(factor)).check("reference").passed


def test_edge_claim_tells_the_derived_edge_from_h0_and_from_4_over_S0():
    c = _claim("balancing.scalar.convergence_edge")
    # the paper's h0 (1 in these units) and the m -> 0 edge 4/(x0^2 + y0^2) both fail
    assert not c.with_prediction(lambda p: {k: 1.0 for k in p}).check("ci", "cpu").passed
    zeroth = {"(9,1)": 90 / 82, "(19,1)": 370 / 362, "(99,1)": 9810 / 9802}
    assert not c.with_prediction(lambda p: zeroth).check("ci", "cpu").passed


def test_flattest_claim_fails_when_edge_is_moved():
    c = _claim("balancing.scalar.flattest_edge")
    assert not c.with_prediction(lambda p: {k: 0.9 for k in p}).check("ci", "cpu").passed
    assert not c.with_prediction(lambda p: {k: 1.1 for k in p}).check("ci", "cpu").passed


def test_no_two_models_share_a_seed():
    # the Gaussian matrix problems are the chapter's only random draws: one seed per n, all distinct
    ns = sorted({n for cfg in CONFIGS.values() for n in cfg.matrix.ns})
    with record_seeds() as calls:
        problems = {n: M.matrix_problem(CONFIGS["ci"], n) for n in ns}
    seeds = [s for _, s in calls]
    assert len(seeds) == len(ns) and len(set(seeds)) == len(seeds)
    assert all(k[:2] == ("balancing", "gaussian_matrix_problem") for k, _ in calls)
    again = M.matrix_problem(CONFIGS["reference"], 2)  # the same draw at every scale
    assert all(np.array_equal(u, v) for u, v in zip(again, problems[2]))


@pytest.mark.full
def test_claims_pass_at_full_scale():
    for v in CHAPTER.check("full"):
        assert v.passed, (v.id, v.details)
