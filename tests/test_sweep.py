"""Tests of lrtheory.core.sweep and lrtheory.core.store (runner, store, executors) and `lrtheory sweep`.

Every comparison of results is exact: a point's result is a deterministic function of
its config (seed included), so the same point must give the same stored JSON text
whatever the executor, the batching or an interruption.
"""
from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from lrtheory.core import sweep as sw
from lrtheory.core.sweep import (
    Point,
    ResultStore,
    SweepDef,
    canonical_json,
    load_results,
    make_batches,
    make_points,
    run_sweep,
)
from toy_chapter.sweep import TOY, run_toy_batch, toy_points

ROOT = Path(__file__).resolve().parent.parent
HELPER = Path(__file__).resolve().parent / "sweep_helpers.py"


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env["OMP_NUM_THREADS"] = "1"
    return env


def _table(path, sweep_name="toy"):
    """The store's rows as comparable tuples (timestamps, versions and environment left out)."""
    con = sqlite3.connect(str(path))
    try:
        return con.execute(
            "SELECT key, sweep, config, result, status FROM results WHERE sweep = ? ORDER BY key", (sweep_name,)
        ).fetchall()
    finally:
        con.close()


def _count(path):
    con = sqlite3.connect(str(path), timeout=10)
    try:
        return con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:  # table not created yet
        return 0
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------
# points
# ---------------------------------------------------------------------------------------------
def test_point_key_is_sha256_of_canonical_json():
    (p,) = make_points(TOY, [{"x": 1, "seed": 0}])  # int x normalized to float
    text = canonical_json({"sweep": "toy", "config": {"delay": 0.0, "seed": 0, "x": 1.0}})
    assert p.key == hashlib.sha256(text.encode()).hexdigest()
    assert p == make_points(TOY, [{"seed": 0, "x": 1.0, "delay": 0}])[0]
    assert hash(p) == hash(Point("toy", p.items))
    assert make_points(TOY, [{"x": 1, "seed": 0}] * 3) == [p]  # repeats kept once


def test_canonical_json_handles_numpy_and_nonfinite():
    np = pytest.importorskip("numpy")
    assert canonical_json({"b": np.float64(0.5), "a": [np.int64(2), float("inf")]}) == '{"a":[2,null],"b":0.5}'
    with pytest.raises(TypeError):
        canonical_json({"a": object()})


def test_missing_key_and_a_name_instead_of_a_definition_rejected():
    with pytest.raises(ValueError, match=r"point 0 .*missing key 'seed'"):
        make_points(TOY, [{"x": 0.0}])
    with pytest.raises(ValueError, match="expected a SweepDef"):
        run_sweep("toy", progress=False)  # core takes definitions, never names


# ---------------------------------------------------------------------------------------------
# runner and store
# ---------------------------------------------------------------------------------------------
def test_run_skip_fresh_and_load(tmp_path):
    store = tmp_path / "r.sqlite"
    assert load_results(TOY, "ci", store=store) is None  # no file: absent
    first = run_sweep(TOY, "ci", store=store, progress=False)
    n = len(toy_points("ci"))
    assert (first.total, first.skipped, first.computed, first.diverged) == (n, 0, n, 2)
    rows = _table(store)
    again = run_sweep(TOY, "ci", store=store, progress=False)
    assert (again.skipped, again.computed) == (n, 0) and _table(store) == rows
    with ResultStore(store) as st:
        before = {r.key: r.created for r in st.rows("toy")}
    assert again.stale == 0  # stored and read back by the same code version
    assert run_sweep(TOY, "ci", store=store, progress=False, code_version="v2").stale == n
    fresh = run_sweep(TOY, "ci", store=store, fresh=True, progress=False, code_version="v2")
    assert (fresh.skipped, fresh.computed, fresh.stale) == (0, n, 0)
    with ResultStore(store) as st:
        after = st.rows("toy")
    assert len(after) == n and all(r.created > before[r.key] for r in after)  # rewritten
    assert _table(store) == rows  # same results
    loaded = load_results(TOY, "ci", store=store)
    assert loaded == first.rows and [c for c, _ in loaded] == [p.config for p in make_points(TOY, toy_points("ci"))]
    assert load_results(TOY, "full", store=store) is None  # full scale not computed
    row = after[0]
    assert row.code_version == "v2"  # the version the caller passed, beside every point
    assert {"python", "torch", "device", "host"} <= set(row.environment)


def test_diverged_point_stored_once_not_retried(tmp_path):
    calls = []

    def counting(configs, device):
        calls.append(len(configs))
        return run_toy_batch(configs, device)

    sweep = SweepDef("toy", "test", "", toy_points, counting, TOY.schema, ("seed",), 4)
    store = tmp_path / "r.sqlite"
    configs = [{"x": 150.0, "seed": 0}, {"x": 0.5, "seed": 0}]
    r1 = run_sweep(sweep, configs=configs, store=store, progress=False)
    assert r1.diverged == 1 and calls == [2]
    with ResultStore(store) as st:
        status = {r.config["x"]: (r.status, r.result["y"]) for r in st.rows("toy")}
    assert status[150.0] == ("diverged", None) and status[0.5][0] == "ok"
    r2 = run_sweep(sweep, configs=configs, store=store, progress=False)
    assert (r2.computed, r2.skipped, r2.diverged) == (0, 2, 1) and calls == [2]  # not recomputed
    run_sweep(sweep, configs=configs, store=store, fresh=True, progress=False)
    assert calls == [2, 2]  # --fresh recomputes


def test_failed_batch_keeps_earlier_batches_and_resumes(tmp_path):
    def flaky(configs, device):
        if any(c["x"] > 1.5 for c in configs):
            raise RuntimeError("worker lost")
        return run_toy_batch(configs, device)

    store = tmp_path / "r.sqlite"
    broken = SweepDef("toy", "test", "", toy_points, flaky, TOY.schema, ("seed",), 4)
    with pytest.raises(RuntimeError, match="worker lost"):
        run_sweep(broken, store=store, progress=False)
    partial = _table(store)
    assert 0 < len(partial) < len(toy_points("ci"))
    done = run_sweep(TOY, store=store, progress=False)
    assert done.skipped == len(partial) and done.computed == len(toy_points("ci")) - len(partial)
    reference = tmp_path / "ref.sqlite"
    run_sweep(TOY, store=reference, progress=False)
    assert _table(store) == _table(reference)


def test_other_executor_and_batching_give_same_rows(tmp_path):
    inline, threads = tmp_path / "a.sqlite", tmp_path / "b.sqlite"
    run_sweep(TOY, store=inline, progress=False)
    one_by_one = SweepDef("toy", "test", "", toy_points, run_toy_batch, TOY.schema, (), 1)
    with cf.ThreadPoolExecutor(2) as ex:
        run_sweep(one_by_one, executor=ex, store=threads, progress=False)
    assert _table(inline) == _table(threads)


def test_store_rejects_folder_and_writes_no_duplicates(tmp_path):
    with pytest.raises(ValueError, match="store"):
        ResultStore(tmp_path)
    (p,) = make_points(TOY, [{"x": 0.0, "seed": 0}])
    with ResultStore(tmp_path / "r.sqlite") as st:
        assert st.put([(p, {"y": 1.0})], code_version="a", environment={}) == 1
        assert st.put([(p, {"y": 2.0})], code_version="b", environment={}) == 0  # first writer wins
        assert st.rows()[0].result == {"y": 1.0}
        assert st.put([(p, {"y": 2.0})], code_version="b", environment={}, replace=True) == 1
        assert st.count() == 1 and st.rows()[0].result == {"y": 2.0}
        assert st._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


# ---------------------------------------------------------------------------------------------
# interruption, concurrency, Dask
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_sigkill_midway_then_resume_equals_uninterrupted(tmp_path):
    delay = 0.05  # 26 points in batches of 4: ~0.2 s per batch
    killed = tmp_path / "killed.sqlite"
    proc = subprocess.Popen([sys.executable, str(HELPER), "run", str(killed), str(delay)], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while _count(killed) < 8 if killed.exists() else True:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the sweep stored nothing in 30 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    n_total = len(toy_points("ci"))
    stored_at_kill = _count(killed)
    assert 8 <= stored_at_kill < n_total, stored_at_kill
    resumed = subprocess.run([sys.executable, str(HELPER), "run", str(killed), str(delay)], env=_env(),
                             capture_output=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr.decode()

    uninterrupted = tmp_path / "whole.sqlite"
    run_sweep(TOY, configs=_helpers().slow_toy_configs(delay), store=uninterrupted, progress=False)
    assert len(_table(killed)) == n_total
    assert _table(killed) == _table(uninterrupted)  # row for row: key, config, result, status


@pytest.mark.slow
def test_concurrent_writers_do_not_corrupt_or_duplicate(tmp_path):
    store = tmp_path / "shared.sqlite"
    go = tmp_path / "go"
    ranges = ((0, 100), (50, 150))  # 50 keys written by both
    procs = [subprocess.Popen([sys.executable, str(HELPER), "write", str(store), str(a), str(b), str(go)],
                              env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE) for a, b in ranges]
    try:
        deadline = time.monotonic() + 60
        while not all(Path(f"{store}.ready-{a}").exists() for a, _ in ranges):
            assert all(p.poll() is None for p in procs), "a writer died before starting"
            assert time.monotonic() < deadline, "writers not ready in 60 s"
            time.sleep(0.01)
        go.touch()  # both write from now on, one transaction per row
        outs = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert all(p.returncode == 0 for p in procs), [err.decode() for _, err in outs]
    (s0, e0), (s1, e1) = [tuple(map(float, out.split())) for out, _ in outs]
    assert s0 < e1 and s1 < e0, "the two writers did not overlap in time"
    con = sqlite3.connect(str(store))
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        keys = [k for (k,) in con.execute("SELECT key FROM results")]
    finally:
        con.close()
    expected = {p.key for p in _helpers().writer_points(0, 150)}
    assert len(keys) == len(set(keys)) == 150 and set(keys) == expected


@pytest.mark.slow
def test_dask_localcluster_gives_same_rows_as_in_process(tmp_path):
    distributed = pytest.importorskip("distributed")
    local, remote = tmp_path / "local.sqlite", tmp_path / "dask.sqlite"
    run_sweep(TOY, store=local, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning may leak from starting or closing the cluster
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                      silence_logs=logging.ERROR) as cluster, distributed.Client(cluster) as client:
            report = run_sweep(TOY, executor=client.get_executor(), store=remote, progress=False)
    assert report.computed == len(toy_points("ci"))
    assert _table(local) == _table(remote)
    with ResultStore(remote) as st:
        hosts = {r.environment["host"] for r in st.rows("toy")}
    assert hosts  # the workers' environment is recorded


@pytest.mark.slow
def test_cli_dask_scheduler_address(tmp_path, capsys, only_toy):
    """`--executor dask://HOST:PORT` connects to a running scheduler (here an in-process one)."""
    distributed = pytest.importorskip("distributed")
    from lrtheory.cli import main

    local, remote = tmp_path / "local.sqlite", tmp_path / "remote.sqlite"
    run_sweep(TOY, store=local, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0",
                                      protocol="tcp", host="127.0.0.1", scheduler_port=0,
                                      silence_logs=logging.ERROR) as cluster:
            address = cluster.scheduler_address.replace("tcp://", "dask://")
            assert main(["sweep", "toy", "--executor", address, "--store", str(remote)]) == 0
    assert "26 computed" in capsys.readouterr().out
    assert _table(local) == _table(remote)


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------
def test_cli_sweep_runs_and_resumes(tmp_path, capsys, only_toy):
    from lrtheory.cli import main

    store = tmp_path / "cli.sqlite"
    assert main(["sweep", "toy", "--store", str(store)]) == 0
    out, err = capsys.readouterr()
    n = len(toy_points("ci"))
    assert f"{n} points, 0 already stored, {n} computed" in out and f"{n}/{n} points 100%" in err
    assert main(["sweep", "toy", "--store", str(store)]) == 0
    assert f"{n} already stored, 0 computed" in capsys.readouterr()[0]
    assert main(["sweep", "toy", "--store", str(store), "--fresh"]) == 0
    assert f"0 already stored, {n} computed" in capsys.readouterr()[0]
    assert main(["sweep", "--list"]) == 0
    listed = capsys.readouterr()[0]
    assert "toy " in listed and "template_measurements" in listed


@pytest.mark.parametrize("argv", [
    ["sweep", "no_such_chapter"],
    ["sweep"],
    ["sweep", "toy", "--executor", "ray://x"],
    ["sweep", "toy", "--executor", "dask://nohost"],
    ["sweep", "toy", "--device", "tpu"],
])
def test_cli_bad_usage_exits_2(tmp_path, capsys, argv, only_toy):
    from lrtheory.cli import main

    assert main(argv + ["--store", str(tmp_path / "x.sqlite")]) == 2
    assert "error" in capsys.readouterr()[1]


def test_cli_bad_scale_exits_2(capsys, only_toy):
    from lrtheory.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["sweep", "toy", "--scale", "huge"])
    assert exc.value.code == 2


def _helpers():
    """tests/sweep_helpers.py as a module (tests/ is not a package)."""
    sys.path.insert(0, str(HELPER.parent))
    try:
        import sweep_helpers
    finally:
        sys.path.pop(0)
    return sweep_helpers


# ---------------------------------------------------------------------------------------------
# exact encoding and the chapters' measurement sweeps
# ---------------------------------------------------------------------------------------------
def test_encode_value_round_trip_is_exact():
    import numpy as np
    import torch

    value = {"a": np.array([[1.5, np.nan], [np.inf, -0.0]], dtype=np.float32), "t": (1, "x", None),
             "s": np.float64(np.nan), "i": np.int64(7), "f": float("-inf"), "torch": torch.arange(3),
             "l": [True, 2.0]}
    back = sw.decode_value(json.loads(canonical_json(sw.encode_value(value))))
    assert back["a"].dtype == np.float32 and back["a"].tobytes() == value["a"].tobytes()
    assert back["t"] == (1, "x", None) and np.isnan(back["s"]) and back["i"] == 7 and back["f"] == float("-inf")
    assert back["torch"].tolist() == [0, 1, 2] and back["l"] == [True, 2.0]
    with pytest.raises(TypeError):
        sw.encode_value(object())
    with pytest.raises(TypeError):
        sw.encode_value({1: 2})


# ---------------------------------------------------------------------------------------------
# the committed text store
# ---------------------------------------------------------------------------------------------
def test_text_store_same_rows_as_sqlite_sorted_and_without_timestamps(tmp_path):
    from lrtheory.core.store import TextStore

    db, txt = tmp_path / "r.sqlite", tmp_path / "r.jsonl"
    run_sweep(TOY, store=db, progress=False)
    run_sweep(TOY, store=txt, progress=False)
    with ResultStore(db) as a, TextStore(txt) as b:
        strip = lambda rows: [(r.key, r.sweep, r.config, r.result, r.status) for r in rows]  # noqa: E731
        assert strip(a.rows("toy")) == strip(b.rows("toy"))
    lines = txt.read_text().splitlines()
    keys = [json.loads(line)["key"] for line in lines]
    assert keys == sorted(keys) and len(keys) == len(toy_points("ci"))
    assert all("created" not in json.loads(line) for line in lines)  # no timestamp: a small diff


def test_text_store_first_writer_wins_replace_and_delete(tmp_path):
    from lrtheory.core.store import TextStore

    (p,) = make_points(TOY, [{"x": 0.0, "seed": 0}])
    path = tmp_path / "r.jsonl"
    st = TextStore(path)
    assert st.put([(p, {"y": 1.0})], code_version="a", environment={}) == 1
    assert st.put([(p, {"y": 2.0})], code_version="b", environment={}) == 0
    assert TextStore(path).keys([p.key])[p.key].result == {"y": 1.0}  # re-read from disk
    assert st.put([(p, {"y": 2.0})], code_version="b", environment={}, replace=True) == 1
    assert TextStore(path).keys([p.key])[p.key].code_version == "b"
    assert st.delete("toy") == 1 and TextStore(path).count() == 0


def test_text_store_rejects_a_folder_and_a_corrupt_line(tmp_path):
    from lrtheory.core.store import TextStore

    with pytest.raises(ValueError, match="folder"):
        TextStore(tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"key": "k"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        TextStore(bad)


# ---------------------------------------------------------------------------------------------
# issue 21 (mutation testing of sweep.py): progress text worked by hand under a fake clock,
# the documented number of batches in flight, points stored by another writer meanwhile,
# device strings under a fake CUDA machine, stores opened here are closed
# ---------------------------------------------------------------------------------------------
import io  # noqa: E402

from lrtheory.core.sweep import InlineExecutor, Param  # noqa: E402


def _squares(n, batch_size=1, run_batch=None):
    """``n`` points x = 1..n, y = x^2, ``batch_size`` points per batch."""
    return SweepDef(name="sq", chapter="test", description="", points=lambda scale: [{"x": x} for x in range(1, n + 1)],
                    run_batch=run_batch or (lambda configs, device: [{"y": c["x"] ** 2} for c in configs]),
                    schema={"x": Param("int")}, batch_size=batch_size)


class _Clock:
    """A settable ``time.monotonic``."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class _Log(io.StringIO):
    """A log file (not a terminal) that counts its flushes."""

    flushes = 0

    def flush(self):
        self.flushes += 1
        super().flush()


class _Tty(_Log):
    def isatty(self):
        return True


def test_progress_lines_and_eta_worked_by_hand(monkeypatch):
    """10 points, none stored; lines asked at t = 0, 5, 12, 13, 14 s with 0, 2, 7, 8, 10 points done.
    A log file gets a line when `every` = 5 s have passed since the last one (t = 5: exactly 5 s) or at
    the end; t = 13 is 1 s after the line of t = 12: none. ETA = elapsed / new points * points left:
    5 / 2 * 8 = 20 s, 12 / 7 * 3 = 5.14 s (-> 0:05). The bar has round(20 * done / total) '#'."""
    clock = _Clock()
    monkeypatch.setattr(sw.time, "monotonic", clock)
    log = _Log()
    bar = sw._Progress(log, "s", 10, 0)
    for t, done in ((5.0, 2), (12.0, 7), (13.0, 8), (14.0, 10)):
        clock.now = t
        bar.update(done)
    bar.close()
    monkeypatch.undo()
    assert log.getvalue().splitlines() == [
        "s [--------------------] 0/10 points   0%  elapsed 0:00  ETA ?",
        "s [####----------------] 2/10 points  20%  elapsed 0:05  ETA 0:20",
        "s [##############------] 7/10 points  70%  elapsed 0:12  ETA 0:05",
        "s [####################] 10/10 points 100%  elapsed 0:14  ETA 0:00",
    ]
    assert log.flushes == 4  # every line flushed as written (a `tail -f` of the log sees it)


def test_progress_on_a_terminal_redraws_one_line_and_flushes(monkeypatch):
    """On a terminal: every update redraws in place ('\\r', no newline), flushed; close ends the line.
    4 points, 1 done at t = 1 s: ETA 1 / 1 * 3 = 3 s."""
    clock = _Clock()
    monkeypatch.setattr(sw.time, "monotonic", clock)
    tty = _Tty()
    bar = sw._Progress(tty, "t", 4, 0)
    clock.now = 1.0
    bar.update(1)
    bar.close()
    monkeypatch.undo()
    assert tty.getvalue() == ("\rt [--------------------] 0/4 points   0%  elapsed 0:00  ETA ?"
                              "\rt [#####---------------] 1/4 points  25%  elapsed 0:01  ETA 0:03\n")
    assert tty.flushes == 3


def test_progress_edge_cases_one_point_all_stored_and_a_bare_stream():
    # a sweep of one point: 1/1 is 100 %
    log = _Log()
    bar = sw._Progress(log, "one", 1, 0)
    bar.update(1)
    assert log.getvalue().splitlines()[-1].startswith("one [####################] 1/1 points 100%  elapsed 0:00")
    # every point already stored: nothing computed, nothing left: ETA 0:00, not "?"
    log = _Log()
    sw._Progress(log, "all", 3, 3)
    assert log.getvalue() == "all [####################] 3/3 points 100%  elapsed 0:00  ETA 0:00\n"

    class Bare:  # a stream with write and flush only (no isatty): a log file
        def __init__(self):
            self.parts = []

        def write(self, s):
            self.parts.append(s)

        def flush(self):
            pass

    bare = Bare()
    bar = sw._Progress(bare, "b", 2, 0)
    bar.update(2)
    bar.close()
    assert "".join(bare.parts).splitlines() == ["b [--------------------] 0/2 points   0%  elapsed 0:00  ETA ?",
                                                "b [####################] 2/2 points 100%  elapsed 0:00  ETA 0:00"]


def test_a_resumed_sweep_starts_its_bar_at_the_stored_points(tmp_path):
    sd = _squares(5)
    store = tmp_path / "r.sqlite"
    run_sweep(sd, configs=[{"x": 1}, {"x": 2}], store=store, progress=False)
    log = _Log()
    r = run_sweep(sd, store=store, progress=log)
    assert (r.skipped, r.computed) == (2, 3)
    assert log.getvalue().splitlines()[0].startswith("sq [########------------] 2/5 points  40%  elapsed 0:00  ETA ?")


class _InFlight(cf.Future):
    """A finished future that counts as in flight until the driver reads its result."""

    def __init__(self, owner):
        super().__init__()
        self.owner = owner

    def result(self, timeout=None):
        if self.owner is not None:
            self.owner.in_flight -= 1
            self.owner = None
        return super().result(timeout)


class _Tracking:
    """Mixin for an executor: runs each call at submit time, records the most futures in flight."""

    def _track(self, fn, args, kwargs):
        fut = _InFlight(self)
        fut.set_running_or_notify_cancel()
        fut.set_result(fn(*args, **kwargs))
        self.in_flight = getattr(self, "in_flight", 0) + 1
        self.most = max(getattr(self, "most", 0), self.in_flight)
        return fut


class _Pool(_Tracking, cf.Executor):
    """An executor that says how many workers it has (as ThreadPoolExecutor and ProcessPoolExecutor do)."""

    def __init__(self, workers=None):
        if workers is not None:
            self._max_workers = workers

    def submit(self, fn, /, *args, **kwargs):
        return self._track(fn, args, kwargs)


class _TrackingInline(_Tracking, InlineExecutor):
    def submit(self, fn, /, *args, **kwargs):
        return self._track(fn, args, kwargs)


def test_batches_in_flight_are_at_most_max_pending(tmp_path):
    """The documented max_pending: 1 for the in-process executor, 2 * max_workers when the executor
    says, else 32; an explicit value wins. Each case has more batches than that."""
    for ex, n, want in ((_TrackingInline(), 5, 1), (_Pool(3), 10, 6), (_Pool(), 40, 32)):
        r = run_sweep(_squares(n), store=tmp_path / f"{want}.jsonl", executor=ex, progress=False)
        assert (r.computed, ex.most, ex.in_flight) == (n, want, 0), type(ex).__name__
        assert [res["y"] for _, res in r.rows] == [x * x for x in range(1, n + 1)]
    ex = _Pool(3)
    run_sweep(_squares(10), store=tmp_path / "explicit.jsonl", executor=ex, max_pending=4, progress=False)
    assert ex.most == 4


def test_points_stored_by_another_writer_meanwhile_are_skipped_and_the_rest_still_run(tmp_path):
    """Batches [1, 2], [3, 4], [5, 6]; while the first runs, another writer stores 3 and 4 (y = -1). The
    second batch is then skipped (counted as skipped) and the third still runs."""
    store = tmp_path / "r.sqlite"
    calls = []

    def run_batch(configs, device):
        calls.append([c["x"] for c in configs])
        if configs[0]["x"] == 1:
            with ResultStore(store) as other:
                other.put([(p, {"y": -1}) for p in make_points(sd, [{"x": 3}, {"x": 4}])], code_version="other",
                          environment={})
        return [{"y": c["x"] ** 2} for c in configs]

    sd = _squares(6, batch_size=2, run_batch=run_batch)
    r = run_sweep(sd, store=store, progress=False)
    assert calls == [[1, 2], [5, 6]]
    assert (r.total, r.skipped, r.computed) == (6, 2, 4)
    assert [res["y"] for _, res in r.rows] == [1, 4, -1, -1, 25, 36]  # the first writer's rows stay


def test_a_finished_batch_is_stored_while_a_slower_one_still_runs(tmp_path):
    """'writes each finished batch's rows ... as soon as it comes back': with 2 threads, batch x = 1
    waits (up to 30 s) until batch x = 2 is stored; it sees it stored at once."""
    import threading

    stored = threading.Event()
    inner = ResultStore(tmp_path / "r.sqlite")

    class Signalling:  # the caller's store object: every put signals
        path = inner.path

        def keys(self, keys):
            return inner.keys(keys)

        def put(self, *args, **kwargs):
            out = inner.put(*args, **kwargs)
            stored.set()
            return out

    def run_batch(configs, device):
        if configs[0]["x"] == 1:
            return [{"y": 1, "saw_the_other_stored": stored.wait(30)}]
        return [{"y": 4, "saw_the_other_stored": None}]

    with cf.ThreadPoolExecutor(2) as ex:
        r = run_sweep(_squares(2, run_batch=run_batch), store=Signalling(), executor=ex, progress=False)
    inner.close()
    assert r.rows[0][1] == {"y": 1, "saw_the_other_stored": True}


def _fake_gpu_name(device=None):
    """torch.cuda.get_device_name on the fake machine: the current device (0) for None or 'cuda'."""
    index = None if device is None else device.index
    return f"Fake GPU {0 if index is None else index}"


def test_device_strings_under_a_fake_cuda_machine(tmp_path, monkeypatch):
    """On a (fake) machine with 2 CUDA devices: device=None is resolved by each worker (None is what
    travels); a device given with the default executor is resolved once in the driver (a bad one fails
    there, before any batch) and its resolved name travels; with the caller's executor the string
    travels as given (a GPU worker of a CPU-only driver). The stored environment names the GPU."""
    import torch

    from lrtheory.core import device as dev_mod

    real = dev_mod.resolve_device
    asked, got = [], []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_name", _fake_gpu_name)

    def spy(device=None):
        asked.append(device)
        return real(device)

    monkeypatch.setattr(dev_mod, "resolve_device", spy)

    def run_batch(configs, device):
        got.append(device)
        return [{"y": c["x"]} for c in configs]

    def run(device, executor=None, store="r"):
        asked.clear()
        got.clear()
        path = tmp_path / f"{store}.sqlite"
        run_sweep(_squares(2, run_batch=run_batch), store=path, device=device, executor=executor, progress=False)
        with ResultStore(path) as st:
            return [r.environment for r in st.rows("sq")]

    envs = run(None, store="none")
    assert asked == [None, None] and got == [torch.device("cuda")] * 2
    assert all(e["device"] == "cuda" and e["gpu"] == "Fake GPU 0" for e in envs)  # the current device
    envs = run(" CUDA:1", store="driver")
    assert asked == [" CUDA:1", "cuda:1", "cuda:1"] and got == [torch.device("cuda:1")] * 2
    assert all(e["device"] == "cuda:1" and e["gpu"] == "Fake GPU 1" for e in envs)
    envs = run("cuda:1", executor=InlineExecutor(), store="caller")
    assert asked == ["cuda:1", "cuda:1"] and got == [torch.device("cuda:1")] * 2
    assert all(e["gpu"] == "Fake GPU 1" for e in envs)
    envs = run("cpu", store="cpu")
    assert all(e["device"] == "cpu" and "gpu" not in e for e in envs)  # CUDA present, not used
    with pytest.raises(ValueError, match=r"^device: 'cuda:5' does not exist \(2 CUDA devices\)$"):
        run("cuda:5", store="bad")
    assert asked == ["cuda:5"] and got == []


def test_stores_opened_here_are_closed_and_the_default_store_is_used(tmp_path, monkeypatch):
    """run_sweep and load_results close each store they open from a path; with store=None both use
    the default store ($LRTHEORY_CACHE/results.sqlite)."""
    real, opened = sw.open_store, []

    def spy(store=None):
        st = real(store)
        closed = st.close

        def close():
            opened.remove(st)
            closed()

        st.close = close
        opened.append(st)
        return st

    monkeypatch.setattr(sw, "open_store", spy)
    monkeypatch.setenv("LRTHEORY_CACHE", str(tmp_path / "cache"))
    sd = _squares(3)
    r = run_sweep(sd, progress=False)
    assert r.store == str(tmp_path / "cache" / "results.sqlite") and opened == []
    assert [res["y"] for _, res in load_results(sd, "ci")] == [1, 4, 9] and opened == []
    assert load_results(sd, "ci", store=tmp_path / "cache" / "results.sqlite") is not None and opened == []
