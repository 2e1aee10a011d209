"""The claims of chapter 05 (prefix ``balancing``): they pass at CI scale and fail when their
prediction is wrong; the chapter's random problem draws its own seed."""
from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from lrtheory.core.device import record_seeds
from lrtheory.results.balancing import CHAPTER, CONFIGS
from lrtheory.results.balancing import derivation as D
from lrtheory.results.balancing import measurements as M

CLAIM_IDS = [
    "balancing.scalar.imbalance_recursion",
    "balancing.scalar.convergence_edge",
    "balancing.scalar.balanced_limit",
    "balancing.scalar.flattest_edge",
    "balancing.matrix.balanced_limit",
]


def _claim(cid):
    (c,) = [c for c in CHAPTER.claims if c.id == cid]
    return c


def test_all_claims_declared():
    assert sorted(c.id for c in CHAPTER.claims) == sorted(CLAIM_IDS)
    assert all(c.notebook == "05_balancing" and c.chapter == "balancing" for c in CHAPTER.claims)


def test_sources_say_whose_result_it_is():
    src = {c.id: c.source for c in CHAPTER.claims}
    assert "Theorem 3.1" in src["balancing.scalar.convergence_edge"]
    for cid in CLAIM_IDS:
        if cid != "balancing.scalar.convergence_edge":
            assert src[cid].startswith("derived here"), cid


@pytest.mark.parametrize("cid", CLAIM_IDS)
def test_claim_passes_at_ci_scale(cid):
    (v,) = CHAPTER.check("ci", "cpu", only=[cid])
    assert v.passed, v.details


def test_recursion_claim_fails_with_wrong_sign(monkeypatch):
    s = D.symbols()
    wrong = 1 + s.eta ** 2 * (s.mu - s.x * s.y) ** 2  # sign flipped
    monkeypatch.setattr(D, "imbalance_factor", sp.lambdify((s.x, s.y, s.mu, s.eta), wrong, "numpy"))
    M.measure_imbalance_recursion.cache_clear()
    try:
        (v,) = CHAPTER.check("ci", "cpu", only=["balancing.scalar.imbalance_recursion"])
    finally:
        M.measure_imbalance_recursion.cache_clear()
    assert not v.passed
    assert v.measured > 1e-3


def test_recursion_claim_fails_when_the_deviation_exceeds_the_tolerance():
    c = _claim("balancing.scalar.imbalance_recursion")
    assert not c.with_prediction(lambda p: p + 2e-12).check("ci", "cpu").passed


def test_edge_claim_fails_when_predicted_edge_is_moved():
    c = _claim("balancing.scalar.convergence_edge")
    assert not c.with_prediction(lambda p: {k: 1.05 * v for k, v in p.items()}).check("ci", "cpu").passed


def test_balanced_limit_claim_fails_with_a_wrong_stability_constant():
    c = _claim("balancing.scalar.balanced_limit")
    mu = CONFIGS["ci"].scalar.mu
    # a stability edge eta * lambda = 1 instead of 2 is the bound at 2 eta: it drops below the data
    wrong = {f"({x0:g},{y0:g})": float(D.rho_bound(2 * D.paper_step_size(x0, y0, mu), mu))
             for x0, y0 in CONFIGS["ci"].scalar.inits}
    assert c.check("ci", "cpu").passed
    assert not c.with_prediction(lambda p: {**wrong, "stab": 0.5}).check("ci", "cpu").passed
    assert not c.with_prediction(lambda p: {**p, "stab": 0.5}).check("ci", "cpu").passed


def test_flattest_claim_fails_when_edge_is_moved():
    c = _claim("balancing.scalar.flattest_edge")
    assert c.check("ci", "cpu").passed
    assert not c.with_prediction(lambda p: {k: 0.9 for k in p}).check("ci", "cpu").passed
    assert not c.with_prediction(lambda p: {k: 1.1 for k in p}).check("ci", "cpu").passed


def test_matrix_claim_fails_with_a_tighter_bound():
    c = _claim("balancing.matrix.balanced_limit")
    assert c.check("ci", "cpu").passed
    assert not c.with_prediction(lambda p: {**p, "stab": 0.5}).check("ci", "cpu").passed
    assert not c.with_prediction(lambda p: {**p, "ratio@3/L": 1.0}).check("ci", "cpu").passed


def test_no_two_models_share_a_seed():
    # the matrix problem is the chapter's only random draw: one seed per scale, all distinct
    with record_seeds() as calls:
        problems = {scale: M.matrix_problem(cfg) for scale, cfg in CONFIGS.items()}
    seeds = [s for _, s in calls]
    assert len(seeds) == len(CONFIGS) and len(set(seeds)) == len(seeds)
    assert all(k[:2] == ("balancing", "matrix_problem") for k, _ in calls)
    again = M.matrix_problem(CONFIGS["ci"])
    assert all(np.array_equal(u, v) for u, v in zip(again, problems["ci"]))


@pytest.mark.full
def test_claims_pass_at_full_scale():
    for v in CHAPTER.check("full"):
        assert v.passed, (v.id, v.details)
