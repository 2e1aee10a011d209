"""A sixth chapter is one package and one registry line: the toy chapter (tests/toy_chapter,
config, derivation, measurements, claim) run through `verify`, `sweep` (killed and resumed),
the store and the report. Also the Chapter object's contracts: memoized measurements,
dependencies in one batch, decomposed measurements, stale points after a config change."""
import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

HELPER = Path(__file__).resolve().parent / "sweep_helpers.py"


def _count(path):
    con = sqlite3.connect(str(path), timeout=10)
    try:
        return con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        con.close()


def _rows(path):
    con = sqlite3.connect(str(path))
    try:
        return con.execute("SELECT key, sweep, config, result, status FROM results ORDER BY key").fetchall()
    finally:
        con.close()


def test_one_registry_line_adds_a_chapter(toy_registry):
    ch = toy_registry.chapter("template")
    assert [c.id for c in toy_registry.select(["template"])] == ["template.second_moment"]
    assert "template_measurements" in toy_registry.sweeps() and "toy" in toy_registry.sweeps()
    assert toy_registry.CHAPTERS[-1] == "toy_chapter" and ch.notebook == "99_toy"


def test_verify_and_report(only_toy, capsys):
    from lrtheory.cli import main
    from lrtheory.verify.report import html_table, verdict_anchor

    assert main(["verify", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "template.second_moment" in out and out.rstrip().endswith("1 passed, 0 failed")
    verdicts = only_toy.chapter("template").check("ci", "cpu")
    page = html_table(verdicts, {"template": only_toy.chapter("template")})
    assert f'href="99_toy.html#{verdict_anchor("template")}"' in page and "PASS" in page


def test_claim_fails_when_its_prediction_is_off_by_two(only_toy):
    import toy_chapter.claims as tc

    assert tc.SECOND_MOMENT.check("ci", "cpu").passed
    for wrong in (lambda p: {"m2": 2 * p["m2"]}, lambda p: {"m2": p["m2"] / 2}):
        assert not tc.SECOND_MOMENT.with_prediction(wrong).check("ci", "cpu").passed


def test_measurements_are_memoized_and_dependencies_share_a_batch(only_toy, monkeypatch):
    import toy_chapter.measurements as tm

    calls = []
    fn = tm.measure_spread.fn
    monkeypatch.setattr(tm.measure_spread, "fn", lambda cfg, dev: calls.append(1) or fn(cfg, dev))
    a = tm.measure_se("ci", "cpu")
    b = tm.measure_se("ci", "cpu")
    assert a == b and calls == [1]  # the dependency ran once
    sweep = only_toy.chapter("template").measurement_sweep()
    groups = {c["measurement"]: c["group"] for c in sweep.points("ci")}
    assert groups["measure_spread"] == groups["measure_se"] == "measure_spread"
    parts = [g for m, g in groups.items() if m == "measure_draws"]
    assert len([c for c in sweep.points("ci") if c["measurement"] == "measure_draws"]) == 4 and parts


def test_sweep_then_served_from_store_at_reference_scale(only_toy, tmp_path, monkeypatch, capsys):
    from lrtheory.cli import main
    import toy_chapter.measurements as tm

    monkeypatch.setenv("LRTHEORY_CACHE", str(tmp_path))
    assert main(["sweep", "template_measurements", "--scale", "reference"]) == 0
    assert "8 points, 0 already stored, 8 computed" in capsys.readouterr().out  # 6 parts + 2
    tm.measure_draws.cache_clear()
    monkeypatch.setattr(tm.measure_draws, "fn", lambda *a: pytest.fail("recomputed instead of read"))
    draws = tm.measure_draws("reference", "cpu")
    assert draws.shape == (6,) and capsys.readouterr().err == ""


def test_changed_config_value_makes_stored_points_stale(only_toy, tmp_path, monkeypatch, capsys):
    from lrtheory.cli import main
    import toy_chapter.measurements as tm

    monkeypatch.setenv("LRTHEORY_CACHE", str(tmp_path))
    assert main(["sweep", "template_measurements", "--scale", "reference"]) == 0
    ch = only_toy.chapter("template")
    old = ch.configs["reference"]
    assert tm.measure_spread.load("reference") is not None
    monkeypatch.setitem(ch.configs, "reference", dataclasses.replace(old, n=old.n + 1))
    tm.measure_spread.cache_clear()
    assert tm.measure_spread.load("reference") is None  # never the stored value of the old config
    calls = []
    fn = tm.measure_spread.fn
    monkeypatch.setattr(tm.measure_spread, "fn", lambda cfg, dev: calls.append(cfg.n) or fn(cfg, dev))
    tm.measure_spread("reference", "cpu")
    assert calls == [old.n + 1] and "not stored" in capsys.readouterr().err


def test_decomposed_measurement_equals_its_direct_computation(only_toy):
    import toy_chapter.measurements as tm

    cfg = only_toy.chapter("template").config("ci")
    direct = np.array([tm._part_value(cfg, None, {"seed": s}) for s in cfg.seeds])
    assert np.array_equal(tm.measure_draws.of(cfg, "cpu"), direct)
    assert len(set(direct.tolist())) == len(cfg.seeds)  # independent seeds, independent draws


def test_sweep_killed_midway_then_resumed_equals_uninterrupted(tmp_path):
    """`lrtheory sweep` of the toy chapter's decomposed measurement, SIGKILLed after some parts."""
    env = dict(os.environ, OMP_NUM_THREADS="1", LRTHEORY_TOY_DELAY="0.3")
    killed, whole = tmp_path / "killed.sqlite", tmp_path / "whole.sqlite"
    argv = [sys.executable, str(HELPER), "cli", "sweep", "template_measurements", "--scale", "reference"]
    proc = subprocess.Popen(argv + ["--store", str(killed)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while (_count(killed) if killed.exists() else 0) < 2:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "nothing stored in 120 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stderr.close()
    at_kill = _count(killed)
    assert 2 <= at_kill < 8, at_kill
    resumed = subprocess.run(argv + ["--store", str(killed)], env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{at_kill} already stored, {8 - at_kill} computed" in resumed.stdout
    subprocess.run(argv + ["--store", str(whole)], env=env, check=True, capture_output=True, timeout=300)
    assert _rows(killed) == _rows(whole)
