"""The claims of chapter 05 (prefix ``balancing``): they pass at CI scale (and at the reference
scale, read from reference.jsonl) and each fails when its prediction is off by a factor of 2
either way; the chapter's random problems draw their own seeds."""
from __future__ import annotations

import numpy as np
import pytest

from lrtheory.core.device import generator_key, record_seeds
from lrtheory.results.balancing import CHAPTER, CONFIGS
from lrtheory.results.balancing import measurements as M

CLAIM_IDS = [
    "balancing.scalar.limit_imbalance",
    "balancing.scalar.convergence_edge",
    "balancing.scalar.flattest_edge",
    "balancing.matrix.convergence_edge",
    "balancing.matrix.limit_imbalance",
    "balancing.matrix.limit_beyond_2L",
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
    assert len(seeds) == len(ns) and len({generator_key(s) for s in seeds}) == len(seeds)  # the bits torch uses
    assert all(k[:2] == ("balancing", "gaussian_matrix_problem") for k, _ in calls)
    again = M.matrix_problem(CONFIGS["reference"], 2)  # the same draw at every scale
    assert all(np.array_equal(u, v) for u, v in zip(again, problems[2]))


@pytest.mark.full
def test_claims_pass_at_full_scale():
    for v in CHAPTER.check("full"):
        assert v.passed, (v.id, v.details)


def test_matrix_edge_claim_reads_the_first_mode_edge():
    # the derived edge in units of 1/L0 differs from the analogy's 4 by 9 % at n = 2 (the mode's mu is not small)
    c = _claim("balancing.matrix.convergence_edge")
    p = c.predict(CONFIGS["ci"])
    assert set(p) == {"n=2", "n=4"} and abs(p["n=2"] / 4 - 1) > 0.08
    assert not c.with_prediction(lambda q: {k: 4.0 * 1.15 for k in q}).check("ci", "cpu").passed


def test_reference_draws_lie_in_the_regime_of_the_mode_edge():
    # the mode edge is a divergence edge only while a stable minimum exists there: eta_edge s1(A) < 1
    # (beyond 1/s1(A) even the balanced minimum, sharpness 2 s1(A), is unstable); every draw of the chapter
    from lrtheory.results.balancing import derivation as D

    for cfg in (CONFIGS["ci"], CONFIGS["reference"]):
        for n in cfg.matrix.ns:
            A_, X0, Y0 = M.matrix_problem(cfg, n)
            assert D.predicted_matrix_edge(A_, X0, Y0) * np.linalg.norm(A_, 2) < 0.85


@pytest.mark.full
@pytest.mark.parametrize("n", [2, 4, 8, 16])
def test_mode_reduction_on_further_draws(n):
    # the spread the chapter states (sec-05-matrix): seed indices 1..5 at each n, reference settings. Where the
    # regime holds (eta_edge s1(A) < 1): the limit within 20 % for 2 < eta L0 <= 3 (measured: 13 %), the edge
    # at most 10 % below the mode edge and never more than 1 % above it (measured: 0.2 to 9 % below)
    from dataclasses import replace

    from lrtheory.results.balancing import derivation as D
    from lrtheory.results.balancing import simulate as S
    from lrtheory.results.balancing.analysis import EndState

    base = CONFIGS["reference"]
    for si in range(1, 6):
        cfg = replace(base, matrix=replace(base.matrix, seed_index=si))
        A_, X0, Y0 = M.matrix_problem(cfg, n)
        L0 = S.matrix_top_eigenvalue(A_, X0, Y0)
        edge = D.predicted_matrix_edge(A_, X0, Y0)
        if edge * np.linalg.norm(A_, 2) >= 1:
            continue  # no stable minimum at the mode edge (n = 2, seed index 3)
        g = np.round(np.arange(2.1, 3.01, 0.1), 10)
        run = S.matrix_gd(A_, X0, Y0, g / L0, 20000, device="cpu")
        assert (run.status == EndState.CONVERGED).all()
        meas = (run.X ** 2).sum(axis=(1, 2)) - (run.Y ** 2).sum(axis=(1, 2)) - (np.sum(X0 ** 2) - np.sum(Y0 ** 2))
        pred = D.predicted_matrix_imbalance_change_modes(A_, X0, Y0, g / L0, 20000)
        assert np.all(np.abs(meas / pred - 1) < 0.2), (si, meas, pred)

        def diverges(eL):
            r = S.matrix_gd(A_, X0, Y0, eL.reshape(-1) / L0, 6000, device="cpu")
            return (r.status == int(EndState.DIVERGED)).reshape(eL.shape)

        lo, hi, found = S.divergence_edge(diverges, [3.0], [5.0], 17, 3)
        ratio = 0.5 * (lo[0] + hi[0]) / (edge * L0)
        assert found[0] and 0.9 < ratio < 1.01, (si, ratio)
