"""A sixth chapter is one package and one registry line: the toy chapter (tests/toy_chapter,
config, derivation, measurements, claim) run through `verify`, `sweep` (killed and resumed),
the store and the report. Also the Chapter object's contracts: memoized measurements,
dependencies in one batch, decomposed measurements, stale points after a config change."""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

HELPER = Path(__file__).resolve().parent / "sweep_helpers.py"


def _count(path):
    try:
        return len(path.read_text().splitlines())
    except FileNotFoundError:
        return 0


def _rows(path):
    """The stored lines without the environment (host, timings) and the code version (the
    checkout may gain a commit between the runs)."""
    return [{k: v for k, v in json.loads(line).items() if k not in ("environment", "code_version")}
            for line in path.read_text().splitlines()]


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


@pytest.fixture
def ref_file(only_toy, tmp_path, monkeypatch):
    """The toy chapter's reference results file, in a temporary folder."""
    path = tmp_path / "reference.jsonl"
    monkeypatch.setattr(only_toy.chapter("template"), "reference_file", path)
    monkeypatch.setenv("LRTHEORY_CACHE", str(tmp_path / "cache"))  # never the user's store
    return path


def test_sweep_then_served_from_store_at_reference_scale(only_toy, ref_file, monkeypatch, capsys):
    from lrtheory.cli import main
    import toy_chapter.measurements as tm

    assert main(["sweep", "template_measurements", "--scale", "reference"]) == 0
    assert "8 points, 0 already stored, 8 computed" in capsys.readouterr().out  # 6 parts + 2
    tm.measure_draws.cache_clear()
    monkeypatch.setattr(tm.measure_draws, "fn", lambda *a: pytest.fail("recomputed instead of read"))
    draws = tm.measure_draws("reference", "cpu")
    assert draws.shape == (6,) and capsys.readouterr().err == ""
    lines = ref_file.read_text().splitlines()  # the committed file: sorted, one point a line
    assert len(lines) == 8 and lines == sorted(lines, key=lambda line: json.loads(line)["key"])
    assert all(set(json.loads(line)) == {"key", "sweep", "config", "result", "status", "code_version",
                                         "environment"} for line in lines)


def test_recheck_passes_on_stored_results_and_fails_on_an_altered_value(only_toy, ref_file, monkeypatch, capsys):
    from lrtheory.cli import main

    ch = only_toy.chapter("template")  # the six parts take >= 0.05 s each, the other two points less
    monkeypatch.setitem(ch.configs, "reference", dataclasses.replace(ch.configs["reference"], delay=0.05))
    assert main(["sweep", "template", "--scale", "reference"]) == 0
    capsys.readouterr()
    assert main(["sweep", "template_measurements", "--scale", "reference", "--recheck", "3", "--seed", "1"]) == 0
    assert "3 stored points recomputed, 0 differ" in capsys.readouterr().out
    rows = [json.loads(line) for line in ref_file.read_text().splitlines()]
    spread = next(r for r in rows if r["config"].get("measurement") == "measure_spread")
    from lrtheory.core.store import decode_value, encode_value

    spread["result"]["value"] = encode_value(decode_value(spread["result"]["value"]) * (1 + 1e-4))
    ref_file.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    assert main(["sweep", "template_measurements", "--scale", "reference", "--recheck", "8"]) == 1
    out = capsys.readouterr().out
    assert "1 differ" in out and "measure_spread" in out
    assert main(["sweep", "template_measurements", "--scale", "reference", "--recheck", "8",
                 "--max-seconds", "0.02"]) == 1  # the cheap points only: the two undecomposed ones
    assert "2 stored points recomputed, 1 differ" in capsys.readouterr().out


def test_verify_at_reference_scale_names_missing_points(only_toy, ref_file, capsys):
    from lrtheory.cli import main

    assert main(["verify", "--scale", "reference"]) == 1  # nothing stored: the claim cannot be checked
    err = capsys.readouterr().err
    assert "0/8 points stored, 8 missing" in err and "MissingResults" in err and "--scale reference" in err
    assert main(["sweep", "template", "--scale", "reference"]) == 0
    assert main(["verify", "--scale", "reference"]) == 0
    assert "missing" not in capsys.readouterr().err


def test_changed_config_value_makes_stored_points_stale(only_toy, ref_file, monkeypatch, capsys):
    from lrtheory.cli import main
    from lrtheory.core.recheck import sweep_status
    import toy_chapter.measurements as tm

    assert main(["sweep", "template_measurements", "--scale", "reference"]) == 0
    ch = only_toy.chapter("template")
    old = ch.configs["reference"]
    assert tm.measure_spread.load("reference") is not None
    monkeypatch.setitem(ch.configs, "reference", dataclasses.replace(old, n=old.n + 1))
    tm.measure_spread.cache_clear()
    assert tm.measure_spread.load("reference") is None  # never the stored value of the old config
    status = sweep_status(ch.measurement_sweep(), "reference", ref_file)
    assert status.stale == 8 and len(status.missing) == 8  # every point's config changed: all stale
    from lrtheory.verify.chapter import MissingResults

    with pytest.raises(MissingResults, match="measure_spread"):
        tm.measure_spread("reference", "cpu")  # an error, not hours of silent computing


def test_decomposed_measurement_equals_its_direct_computation(only_toy):
    import toy_chapter.measurements as tm

    cfg = only_toy.chapter("template").config("ci")
    direct = np.array([tm._part_value(cfg, None, {"seed": s}) for s in cfg.seeds])
    assert np.array_equal(tm.measure_draws.of(cfg, "cpu"), direct)
    assert len(set(direct.tolist())) == len(cfg.seeds)  # independent seeds, independent draws


def test_sweep_killed_midway_then_resumed_equals_uninterrupted(tmp_path):
    """`lrtheory sweep` of the toy chapter's decomposed measurement, SIGKILLed after some parts."""
    env = dict(os.environ, OMP_NUM_THREADS="1", LRTHEORY_TOY_DELAY="0.3")
    killed, whole = tmp_path / "killed.jsonl", tmp_path / "whole.jsonl"  # the committed text store
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
