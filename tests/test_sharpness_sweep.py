"""Chapter 01's max_lr_grid sweep (eta x depth x width x seed) and eta* read from its rows."""
import math

import pytest
import torch

from lrtheory.core.device import record_seeds
from lrtheory.core.sweep import canonical_json, make_batches, make_points, run_sweep
from lrtheory.results.sharpness import CHAPTER
from lrtheory.results.sharpness.analysis import eta_star_from_grid
from lrtheory.results.sharpness.measurements import MAX_LR_GRID
from lrtheory.results.sharpness.simulate import max_lr_grid_points, run_max_lr_batch


def test_sweep_declared_by_the_chapter():
    assert MAX_LR_GRID in CHAPTER.sweeps and MAX_LR_GRID.chapter == "sharpness"
    assert len(max_lr_grid_points("ci")) == 48 and len(max_lr_grid_points("full")) == 2250
    assert max_lr_grid_points("reference") == []  # no grid config at that scale
    with pytest.raises(ValueError, match="scale"):
        max_lr_grid_points("huge")


def test_make_batches_respects_groups_and_size():
    points = make_points(MAX_LR_GRID, max_lr_grid_points("ci"))
    batches = make_batches(MAX_LR_GRID, points)
    assert sum(map(len, batches)) == len(points) == 48
    for b in batches:
        assert len(b) <= MAX_LR_GRID.batch_size
        assert len({(p["depth"], p["width"]) for p in b}) == 1


@pytest.mark.parametrize("bad, message", [({"depth": 0}, "depth"), ({"n_train": 5000}, "n_train must be <= 1347")])
def test_bad_config_rejected_before_any_work(tmp_path, bad, message):
    good = max_lr_grid_points("ci")[:5]
    configs = good[:3] + [dict(good[3], **bad)] + good[4:]
    store = tmp_path / "r.sqlite"
    with pytest.raises(ValueError) as err:
        run_sweep(MAX_LR_GRID, configs=configs, store=store, progress=False)
    text = str(err.value)
    assert "point 3" in text and message in text, text
    assert not store.exists()  # nothing ran, nothing was written


def test_max_lr_batch_result_does_not_depend_on_batch():
    """A point trained alone and inside a batch gives identical numbers (exact: each model's
    init comes from its own seed and the K models share no computation but the batched GEMMs)."""
    base = {"depth": 2, "width": 8, "steps": 10, "n_train": 64}
    # (seed index 6 diverges at eta 40; with full seed_for seeds index 2 dies there instead)
    configs = [p.config for p in make_points(MAX_LR_GRID, [
        dict(base, eta=0.1, seed=0), dict(base, eta=1.0, seed=1), dict(base, eta=40.0, seed=6)])]
    cpu = torch.device("cpu")
    batched = run_max_lr_batch(configs, cpu)
    solo = [run_max_lr_batch([c], cpu)[0] for c in configs]
    assert canonical_json(batched) == canonical_json(solo)  # the text the store keeps (NaN -> null)
    assert batched[2]["diverged"] and batched[2]["final_loss"] != batched[2]["final_loss"]  # NaN after divergence
    assert not batched[0]["diverged"] and batched[0]["final_loss"] < batched[0]["initial_loss"]


def test_grid_networks_have_their_own_seeds():
    """One network per (depth, width, seed index), the same at every eta; none shared across depths."""
    configs = [p.config for p in make_points(MAX_LR_GRID, [
        {"depth": d, "width": 8, "steps": 1, "n_train": 32, "eta": e, "seed": s}
        for d in (1, 2) for s in (0, 1) for e in (0.1, 1.0)])]
    with record_seeds() as calls:
        run_max_lr_batch([c for c in configs if c["depth"] == 1], torch.device("cpu"))
        run_max_lr_batch([c for c in configs if c["depth"] == 2], torch.device("cpu"))
    per_net = {}
    for keys, seed in calls:
        per_net.setdefault(keys, set()).add(seed)
    assert len(per_net) == 4 and all(len(v) == 1 for v in per_net.values())  # 2 depths x 2 seeds
    assert len({s for v in per_net.values() for s in v}) == 4


def test_eta_star_from_grid():
    def row(eta, seed, diverged, acc):
        return {"depth": 2, "width": 16, "eta": eta, "seed": seed}, {"diverged": diverged, "test_acc": acc}

    rows = [row(0.1, 0, False, 0.5), row(0.1, 1, False, 0.9), row(0.3, 0, False, 0.9), row(0.3, 1, False, 0.95),
            row(1.0, 0, False, 0.9), row(1.0, 1, True, None),  # one seed diverges: 1.0 fails
            row(3.0, 0, False, 0.9), row(3.0, 1, False, 0.9)]  # success above the first failure: ignored
    assert eta_star_from_grid(rows)[(2, 16)] == {"eta_star": 0.3, "eta_fail": 1.0}
    strict = eta_star_from_grid(rows, min_test_acc=0.8)[(2, 16)]  # seed 0 at 0.1 reaches only 0.5
    assert strict["eta_fail"] == 0.1 and math.isnan(strict["eta_star"])
    with pytest.raises(ValueError, match="min_test_acc"):
        eta_star_from_grid(rows, min_test_acc=0.0)


def test_ci_grid_runs_stores_and_gives_eta_star(tmp_path):
    """The whole CI grid through the sweep engine and back: eta* at every architecture, below its first failure."""
    from lrtheory.core.sweep import load_results

    store = tmp_path / "r.sqlite"
    report = run_sweep(MAX_LR_GRID, "ci", store=store, progress=False, device="cpu")
    assert report.total == report.computed == 48
    rows = load_results(MAX_LR_GRID, "ci", store=store)
    etas = eta_star_from_grid(rows)
    assert set(etas) == {(d, w) for d in (1, 2, 4) for w in (16, 64)}
    for e in etas.values():
        assert 0.05 <= e["eta_star"] < e["eta_fail"] <= 50  # the grid brackets the edge everywhere


def test_wide_sweep_points_carry_the_reference_settings():
    from lrtheory.results.sharpness import simulate as S
    from lrtheory.results.sharpness.config import CONFIGS, WIDE_ARCHS

    assert S.wide_points("ci") == []
    pts = S.wide_points("reference")
    ref = CONFIGS["reference"]
    assert len(pts) == 2 * len(WIDE_ARCHS["reference"])
    for p in pts:
        assert p["width"] >= 128 * p["depth"]  # widths well above depths
        assert (p["threshold"], p["steps"], p["seeds"], p["n_train"]) == (ref.threshold, ref.steps, ref.seeds, ref.n_train)
        assert tuple(2.0 ** k for k in range(p["grid_log2_lo"], p["grid_log2_hi"] + 1)) == ref.grid
    assert sorted({p["input_lr_mult"] for p in pts}) == [ref.input_lr_mult, 1.0]
    with pytest.raises(ValueError, match="grid"):
        S.wide_point(type("C", (), {"grid": (0.1, 0.3)})(), 1, 8, 0.1)


def test_wide_point_is_the_main_grids_measurement_at_that_architecture():
    """A condition-(ii) eta_star_wide point gives exactly measure_grid's part (same networks, settings)."""
    import numpy as np
    import torch

    from lrtheory.results.sharpness import CHAPTER
    from lrtheory.results.sharpness import simulate as S

    cfg = CHAPTER.config("ci")
    dev = torch.device("cpu")
    (got,) = S.run_wide_batch([S.wide_point(cfg, 2, 16, cfg.input_lr_mult)], dev)
    want = S.run_arch(cfg, S.load_dataset(cfg, dev), 2, 16, dev, measurement="grid")
    for k in ("eta", "lo", "hi", "lam", "lam_ce", "lam_w"):
        np.testing.assert_array_equal(np.asarray(got[k], dtype=float), np.asarray(want[k], dtype=float))
