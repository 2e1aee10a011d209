"""The documented contracts of lrtheory.core (store, recheck, stats, validate), asserted exactly.

Written from a mutation-testing pass (issue 21, `make mutation`): each expected value is worked
out independently of the code under test: bytes packed by hand with `struct`, JSON text typed
out, standard errors from explicit matrices, interval ends from scipy, file lines written here."""
import base64
import dataclasses
import json
import math
import os
import struct
import types

import numpy as np
import pytest
import torch

from lrtheory.core import recheck as RC
from lrtheory.core import store as S


# ---------------------------------------------------------------------------------------- store
def test_canonical_json_text():
    assert S.canonical_json({"b": 1, "a": [1.5, None, True]}) == '{"a":[1.5,null,true],"b":1}'
    assert S.canonical_json({"x": math.nan, "y": -math.inf, "z": math.inf}) == '{"x":null,"y":null,"z":null}'
    assert S.canonical_json({1: np.int64(3), "f": np.float32(0.5), "t": (1, 2)}) == '{"1":3,"f":0.5,"t":[1,2]}'
    assert S.canonical_json(np.array([[1, 2], [3, 4]])) == "[[1,2],[3,4]]"
    assert S.canonical_json(torch.tensor([0.25, math.nan])) == "[0.25,null]"
    assert S.canonical_json(False) == "false" and S.canonical_json("s") == '"s"' and S.canonical_json(None) == "null"
    assert S.canonical_json(7) == "7" and S.canonical_json(2.0) == "2.0"
    with pytest.raises(TypeError, match=r"^cannot store a value of type object: <object"):
        S.canonical_json({"o": object()})
    with pytest.raises(TypeError, match=r"^cannot store a value of type set"):
        S.canonical_json({1, 2})


def test_encode_value_exact_forms():
    # float64 [1, 2] little-endian, packed by hand
    raw = base64.b64encode(struct.pack("<2d", 1.0, 2.0)).decode("ascii")
    assert S.encode_value(np.array([1.0, 2.0])) == {"__ndarray__": raw, "dtype": "<f8", "shape": [2]}
    raw32 = base64.b64encode(struct.pack("<f", 0.5)).decode("ascii")
    assert S.encode_value(np.float32(0.5)) == {"__ndarray__": raw32, "dtype": "<f4", "shape": [], "scalar": True}
    assert S.encode_value(np.int64(3))["dtype"] == "<i8" and S.encode_value(np.int64(3))["scalar"] is True
    assert S.encode_value(math.inf) == {"__float__": "inf"} and S.encode_value(-math.inf) == {"__float__": "-inf"}
    assert S.encode_value(math.nan) == {"__float__": "nan"}
    assert S.encode_value(2.5) == 2.5 and S.encode_value(True) is True and S.encode_value(7) == 7
    assert S.encode_value(None) is None and S.encode_value("x") == "x"
    assert S.encode_value((1, [2.0, (3,)])) == {"__tuple__": [1, [2.0, {"__tuple__": [3]}]]}
    assert S.encode_value({"a": (1,)}) == {"a": {"__tuple__": [1]}}
    t = S.encode_value(torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert t == {"__ndarray__": raw, "dtype": "<f8", "shape": [2]}
    # a (2, 3) C-ordered int16 array: 0..5, two bytes each
    a = np.arange(6, dtype=np.int16).reshape(2, 3)
    assert S.encode_value(a)["__ndarray__"] == base64.b64encode(struct.pack("<6h", *range(6))).decode()
    assert S.encode_value(a.T)["__ndarray__"] == base64.b64encode(struct.pack("<6h", 0, 3, 1, 4, 2, 5)).decode()
    assert S.encode_value(a.T)["shape"] == [3, 2]


@dataclasses.dataclass(frozen=True)
class Inner:
    v: tuple
    w: float = 0.0


@dataclasses.dataclass(frozen=True)
class Outer:
    name: str
    inner: Inner
    arr: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(1), compare=False)
    derived: int = dataclasses.field(init=False, default=4)


def test_encode_decode_round_trip_is_exact():
    a = np.array([1.0, math.nan, -math.inf, 5e-324], dtype=np.float64)
    obj = {"a": a, "f32": np.array([[0.1]], dtype=np.float32), "i": np.array([-3, 7], dtype=np.int8),
           "b": np.array([True, False]), "s": np.float16(1.5), "t": (1, "x", None), "l": [math.inf, 2],
           "d": Outer("o", Inner((1, 2), 0.5), np.arange(3.0))}
    back = S.decode_value(json.loads(json.dumps(S.encode_value(obj))))
    assert set(back) == set(obj)
    assert back["a"].dtype == np.float64 and back["a"].tobytes() == a.tobytes()
    assert back["f32"].dtype == np.float32 and back["f32"].shape == (1, 1) and back["f32"][0, 0] == np.float32(0.1)
    assert back["i"].tolist() == [-3, 7] and back["i"].dtype == np.int8
    assert back["b"].tolist() == [True, False] and back["b"].dtype == np.bool_
    assert type(back["s"]) is np.float16 and back["s"] == 1.5
    assert back["t"] == (1, "x", None) and back["l"] == [math.inf, 2]
    d = back["d"]
    assert type(d) is Outer and d.inner == Inner((1, 2), 0.5) and d.arr.tolist() == [0.0, 1.0, 2.0]
    assert d.derived == 4 and "derived" not in S.encode_value(obj["d"])["fields"]
    assert S.encode_value(obj["d"])["__dataclass__"] == "test_contracts_core:Outer"
    back["a"][0] = 9.0  # a writable copy, not a view of the decoded bytes
    assert S.decode_value({"k": {"__float__": "-inf"}, "m": [{"__tuple__": []}]}) == {"k": -math.inf, "m": [()]}
    assert S.decode_value(3) == 3 and S.decode_value("s") == "s"


def test_encode_value_rejects_what_it_cannot_keep():
    Pair = __import__("collections").namedtuple("Pair", "a b")
    for bad, match in [(np.array([object()]), r"^cannot encode an object array$"),
                       ({1: 2}, r"^cannot encode a dict whose keys are not plain strings: \[1\]$"),
                       ({"__x": 1}, r"^cannot encode a dict whose keys are not plain strings"),
                       (Pair(1, 2), r"^cannot encode a value of type Pair$"),
                       ({1.5}, r"^cannot encode a value of type set$"), (Inner, r"^cannot encode a value of type type$")]:
        with pytest.raises(TypeError, match=match):
            S.encode_value(bad)


def test_default_store_path(monkeypatch, tmp_path):
    monkeypatch.setenv("LRTHEORY_CACHE", f"  {tmp_path}  ")
    assert S.default_store_path() == tmp_path / "results.sqlite"
    monkeypatch.setenv("LRTHEORY_CACHE", "~/somewhere")
    assert S.default_store_path() == __import__("pathlib").Path(os.path.expanduser("~/somewhere")) / "results.sqlite"
    monkeypatch.setenv("LRTHEORY_CACHE", "   ")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert S.default_store_path() == tmp_path / "xdg" / "lrtheory" / "results.sqlite"
    monkeypatch.delenv("LRTHEORY_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", " ")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert S.default_store_path() == tmp_path / "home" / ".cache" / "lrtheory" / "results.sqlite"
    assert S.ENV_CACHE == "LRTHEORY_CACHE" and S.STATUSES == ("ok", "diverged")


def _pt(key, sweep="sw", **config):
    return types.SimpleNamespace(key=key, sweep=sweep, config=config or {"k": key})


@pytest.fixture(params=["sqlite", "text"])
def store(request, tmp_path):
    path = tmp_path / "sub" / ("r.sqlite" if request.param == "sqlite" else "r.jsonl")
    st = S.open_store(path)
    assert isinstance(st, S.ResultStore if request.param == "sqlite" else S.TextStore)
    yield st
    st.close()


def test_store_put_keys_rows_count_delete(store):
    env = {"host": "h", "batch_seconds": 0.5}
    assert store.count() == 0 and store.rows() == [] and store.keys(["a"]) == {}
    n = store.put([(_pt("b"), {"y": 1.0}), (_pt("a", eta=0.5), {"y": math.nan, "diverged": True}),
                   (_pt("c", sweep="other"), {"y": 3})], code_version="v1", environment=env)
    assert n == 3 and store.count() == 3 and store.count("sw") == 2 and store.count("other") == 1
    assert store.count("none") == 0
    rows = store.rows()
    assert [r.key for r in rows] == ["a", "b", "c"] and [r.key for r in store.rows("sw")] == ["a", "b"]
    a = rows[0]
    assert (a.sweep, a.config, a.result, a.status, a.code_version) == ("sw", {"eta": 0.5}, {"y": None,
                                                                                           "diverged": True},
                                                                       "diverged", "v1")
    assert a.environment == env and rows[1].status == "ok" and rows[1].result == {"y": 1.0}
    got = store.keys(["c", "zz", "b"])
    assert sorted(got) == ["b", "c"] and got["c"].result == {"y": 3} and got["c"].sweep == "other"
    # the first writer wins unless replace
    assert store.put([(_pt("b"), {"y": 2.0}), (_pt("d"), {"y": 4.0, "diverged": False})], code_version="v2",
                     environment=env) == 1
    assert store.keys(["b"])["b"].result == {"y": 1.0} and store.keys(["d"])["d"].status == "ok"
    assert store.put([(_pt("b"), {"y": 2.0})], code_version="v2", environment=env, replace=True) == 1
    assert store.keys(["b"])["b"].result == {"y": 2.0} and store.keys(["b"])["b"].code_version == "v2"
    with pytest.raises(TypeError, match=r"^result of \{'k': 'e'\}: expected a dict, got list$"):
        store.put([(_pt("e"), [1.0])], code_version="v", environment=env)
    assert store.delete("sw") == 3 and store.count() == 1 and store.delete("sw") == 0
    assert [r.key for r in store.rows()] == ["c"]


def test_sqlite_store_many_keys_timestamps_and_closing(tmp_path):
    import time

    path = tmp_path / "deep" / "er" / "r.sqlite"
    t0 = time.time()
    with S.ResultStore(path, timeout=2.5) as st:
        pts = [(_pt(f"k{i:04d}"), {"i": i}) for i in range(1203)]  # more than one chunk of 500
        assert st.put(pts, code_version="v", environment={}) == 1203
        got = st.keys([f"k{i:04d}" for i in range(1203)] + ["missing"])
        assert len(got) == 1203 and got["k1202"].result == {"i": 1202}
        assert t0 - 1 <= got["k0000"].created <= time.time() + 1
        assert st._conn.execute("PRAGMA busy_timeout").fetchone()[0] == 2500
        assert st._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert st._conn is None
    st.close()  # twice is fine
    with S.ResultStore(path) as again:  # reopened: the rows are on disk
        assert again.count() == 1203
    with pytest.raises(ValueError, match=r"^store: .* is a folder; expected a file path$"):
        S.ResultStore(tmp_path)
    with pytest.raises(ValueError, match=r"^store: .* is a folder; expected a file path$"):
        S.TextStore(tmp_path)


def test_sqlite_failed_write_rolls_back(tmp_path):
    with S.ResultStore(tmp_path / "r.sqlite") as st:
        with pytest.raises(TypeError):
            st.put([(_pt("a"), {"o": object()})], code_version="v", environment={})
        with pytest.raises(Exception):
            with st._transaction():
                st._conn.execute("INSERT INTO results VALUES ('x','s','{}','{}','ok','v','{}',0)")
                raise RuntimeError("abort")
        assert st.count() == 0
        assert st.put([(_pt("a"), {"y": 1})], code_version="v", environment={}) == 1  # not left locked


def test_text_store_file_is_sorted_canonical_lines(tmp_path):
    path = tmp_path / "ref.jsonl"
    st = S.TextStore(path)
    assert st.put([], code_version="v", environment={}) == 0 and not path.exists()  # nothing written: no file
    st.put([(_pt("b", n=2), {"y": 0.5}), (_pt("a", n=1), {"y": math.inf, "diverged": 1})],
           code_version="abc", environment={"z": 1, "a": [1, 2]})
    assert path.read_text() == (
        '{"code_version":"abc","config":{"n":1},"environment":{"a":[1,2],"z":1},"key":"a",'
        '"result":{"diverged":1,"y":null},"status":"diverged","sweep":"sw"}\n'
        '{"code_version":"abc","config":{"n":2},"environment":{"a":[1,2],"z":1},"key":"b",'
        '"result":{"y":0.5},"status":"ok","sweep":"sw"}\n')
    assert not (tmp_path / "ref.jsonl.tmp").exists()
    assert st.put([(_pt("a", n=1), {"y": 1.0})], code_version="abc", environment={}) == 0
    assert path.read_text().count("\n") == 2
    again = S.TextStore(path)
    assert [r.key for r in again.rows()] == ["a", "b"] and again.rows()[0].created == 0.0
    assert again.keys(["b"])["b"].config == {"n": 2} and again.count("sw") == 2
    assert again.delete("nope") == 0 and again.delete("sw") == 2 and path.read_text() == ""
    path.write_text('\n{"key": "k", "sweep": "s", "config": {}, "result": {}, "status": "ok", '
                    '"code_version": "v", "environment": {}}\n   \n')
    assert S.TextStore(path).count() == 1  # blank lines skipped
    path.write_text('{"key": "k", "sweep": "s", "config": {}, "result": {}, "status": "ok", '
                    '"code_version": "v", "environment": {}}\n{"key": "x"}\n')
    with pytest.raises(ValueError, match=r"^store: .*ref\.jsonl:2 is not a stored point \('sweep'\)$"):
        S.TextStore(path)
    path.write_text("not json\n")
    with pytest.raises(ValueError, match=r"ref\.jsonl:1 is not a stored point"):
        S.TextStore(path)
    path.write_text("[1, 2]\n")
    with pytest.raises(ValueError, match=r"ref\.jsonl:1 is not a stored point"):
        S.TextStore(path)
    with S.TextStore(tmp_path / "new" / "dir" / "x.jsonl") as fresh:
        fresh.put([(_pt("q"), {})], code_version="v", environment={})
    assert (tmp_path / "new" / "dir" / "x.jsonl").exists()


def test_open_store_dispatch(tmp_path, monkeypatch):
    class Fake:
        def keys(self, k):
            return {}

        def put(self, *a, **k):
            return 0

    f = Fake()
    assert S.open_store(f) is f
    assert isinstance(S.open_store(str(tmp_path / "a.jsonl")), S.TextStore)
    s = S.open_store(tmp_path / "a.sqlite")
    assert isinstance(s, S.ResultStore) and s.path == tmp_path / "a.sqlite"
    s.close()
    monkeypatch.setenv("LRTHEORY_CACHE", str(tmp_path / "cache"))
    d = S.open_store(None)
    assert isinstance(d, S.ResultStore) and d.path == tmp_path / "cache" / "results.sqlite"
    d.close()


# -------------------------------------------------------------------------------------- recheck
CALLS = []


def _square_batch(configs, device):
    """Module level (the sweep engine imports it by name): y = x^2, or a shifted value when asked."""
    CALLS.append([c["x"] for c in configs])
    return [{"y": c["x"] ** 2 + SHIFT[0]} for c in configs]


SHIFT = [0.0]


def _sweep(xs=(1, 2, 3, 4)):
    from lrtheory.core.sweep import Param, SweepDef

    return SweepDef(name="squares", chapter="t", description="x^2", points=lambda scale: [{"x": x} for x in xs],
                    run_batch=_square_batch, schema={"x": Param("int")}, batch_size=2)


def test_sweep_status_counts_missing_and_stale(tmp_path):
    from lrtheory.core.sweep import run_sweep

    path = tmp_path / "r.jsonl"
    st = RC.sweep_status(_sweep(), "ci", path)
    assert (st.sweep, st.scale, st.total, st.stored, st.stale) == ("squares", "ci", 4, 0, 0)
    assert st.missing == [{"x": 1}, {"x": 2}, {"x": 3}, {"x": 4}]
    assert st.summary() == "sweep squares (scale=ci): 0/4 points stored, 4 missing"
    run_sweep(_sweep((1, 2, 3)), "ci", store=path)
    st = RC.sweep_status(_sweep((2, 3, 4, 5)), "ci", path)
    assert (st.total, st.stored, st.stale, st.missing) == (4, 2, 1, [{"x": 4}, {"x": 5}])
    assert st.summary() == ("sweep squares (scale=ci): 2/4 points stored, 2 missing; 1 stored points match no "
                            "point of the current config (stale: an old config, never used)")
    full = RC.sweep_status(_sweep((1, 2, 3)), "ci", path)
    assert full.summary() == "sweep squares (scale=ci): 3/3 points stored" and full.missing == []
    with pytest.raises(ValueError, match="SweepDef"):
        RC.sweep_status("squares", "ci", path)


@pytest.mark.parametrize("a, b, rtol, atol, close", [
    (1.0, 1.0 + 1e-7, 1e-6, 0.0, True), (1.0, 1.0 + 2e-6, 1e-6, 0.0, False),
    (0.0, 1e-13, 0.0, 1e-12, True), (0.0, 2e-12, 0.0, 1e-12, False),
    ({"a": [1, 2]}, {"a": [1, 2]}, 0, 0, True), ({"a": [1, 2]}, {"a": [1, 3]}, 0.5, 5.0, False),  # ints exact
    ({"a": 1.0}, {"b": 1.0}, 1, 1, False), ({"a": 1.0}, 1.0, 1, 1, False), (1.0, {"a": 1.0}, 1, 1, False),
    ([1.0, 2.0], [1.0], 1, 1, False), ([1.0], (1.0,), 1, 1, False), ([1.0], 1.0, 1, 1, False),
    (math.nan, math.nan, 0, 0, True), (math.inf, math.inf, 0, 0, True), (math.inf, -math.inf, 1, 1, False),
    (True, 1, 0, 0, True), (True, False, 1, 1, False), ("a", "a", 0, 0, True), ("a", "b", 1, 1, False),
    (None, None, 0, 0, True), (None, 0.0, 1, 1, False), (0.0, None, 1, 1, False),
    (S.encode_value(np.array([1.0, 2.0])), S.encode_value(np.array([1.0, 2.0 + 1e-9])), 1e-6, 0, True),
    (S.encode_value(np.array([1.0, 2.0])), S.encode_value(np.array([[1.0, 2.0]])), 1, 1, False),
    (S.encode_value(np.array([1.0, math.nan])), S.encode_value(np.array([1.0, math.nan])), 0, 0, True),
    (S.encode_value(np.array([3], dtype=np.int64)), S.encode_value(np.array([4], dtype=np.int64)), 1, 1, False),
    (S.encode_value(Inner((1.0,), 2.0)), S.encode_value(Inner((1.0,), 2.0 + 1e-12)), 1e-9, 0, True),
    (S.encode_value(Inner((1.0,), 2.0)), S.encode_value(Inner((1.0,), 3.0)), 1e-9, 0, False),
    (S.encode_value(Inner((1.0,), 2.0)), {"v": (1.0,), "w": 2.0}, 1, 1, False),
])
def test_results_close(a, b, rtol, atol, close):
    assert RC.results_close(a, b, rtol, atol) is close
    assert RC.results_close(b, a, rtol, atol) is close


def test_point_seconds():
    row = lambda env: types.SimpleNamespace(environment=env)  # noqa: E731
    assert RC.point_seconds(row({"batch_seconds": 3.0, "batch_points": 4})) == 0.75
    assert RC.point_seconds(row({"batch_seconds": 3.0})) == 3.0
    assert RC.point_seconds(row({"batch_seconds": 3.0, "batch_points": 0})) == 3.0
    assert RC.point_seconds(row({"batch_seconds": "2", "batch_points": "2"})) == 1.0
    for env in [{}, None, {"batch_seconds": None}, {"batch_seconds": "x"}, {"batch_points": 2}]:
        assert RC.point_seconds(row(env)) == math.inf


def test_recheck_samples_recomputes_and_reports(tmp_path, monkeypatch):
    from lrtheory.core.sweep import run_sweep

    path = tmp_path / "r.jsonl"
    run_sweep(_sweep(), "ci", store=path)
    CALLS.clear()
    rep = RC.recheck(_sweep(), "ci", 2, store=path, seed=3)
    assert len(rep.checked) == 2 and rep.mismatched == [] and rep.ok and len(CALLS) == 2
    assert all(len(c) == 1 for c in CALLS)  # one point per recomputation
    assert rep.checked == RC.recheck(_sweep(), "ci", 2, store=path, seed=3).checked  # the seed decides
    assert rep.summary() == ("recheck squares (scale=ci): 2 stored points recomputed, 0 differ from what is stored"
                             "\n  sweep squares (scale=ci): 4/4 points stored")
    everything = RC.recheck(_sweep(), "ci", 10, store=path)
    assert sorted(c["x"] for c in everything.checked) == [1, 2, 3, 4]
    only = RC.recheck(_sweep(), "ci", 10, store=path, where=lambda c: c["x"] > 2)
    assert sorted(c["x"] for c in only.checked) == [3, 4]
    SHIFT[0] = 1e-3
    try:
        bad = RC.recheck(_sweep(), "ci", 1, store=path, where=lambda c: c["x"] == 2)
        assert bad.checked == [{"x": 2}] and bad.mismatched == [{"x": 2}] and not bad.ok
        assert bad.summary().splitlines()[:2] == [
            "recheck squares (scale=ci): 1 stored points recomputed, 1 differ from what is stored",
            '  differs: {"x":2}']
        # 1e-3 on 4 is 2.5e-4 relative: inside rtol 1e-3, outside the default 1e-6
        assert RC.recheck(_sweep(), "ci", 1, store=path, where=lambda c: c["x"] == 2, rtol=1e-3).ok
        assert not RC.recheck(_sweep(), "ci", 1, store=path, where=lambda c: c["x"] == 2, rtol=0, atol=1e-4).ok
        assert RC.recheck(_sweep(), "ci", 1, store=path, where=lambda c: c["x"] == 2, rtol=0, atol=2e-3).ok
    finally:
        SHIFT[0] = 0.0
    with pytest.raises(ValueError, match=r"^n: expected a positive integer, got 0$"):
        RC.recheck(_sweep(), "ci", 0, store=path)
    for n in [True, 1.0, -2]:
        with pytest.raises(ValueError, match=r"^n: expected a positive integer"):
            RC.recheck(_sweep(), "ci", n, store=path)
    # nothing stored: nothing to check
    empty = RC.recheck(_sweep(), "ci", 3, store=tmp_path / "none.jsonl")
    assert empty.checked == [] and empty.ok and empty.status.stored == 0


def test_recheck_max_seconds_keeps_the_cheap_points(tmp_path):
    from lrtheory.core.sweep import make_points

    path = tmp_path / "r.jsonl"
    sw = _sweep()
    pts = make_points(sw, sw.points("ci"))
    st = S.TextStore(path)
    # batch costs by hand: x=1,2 cost 0.1 s each (0.2 s over 2 points), x=3 costs 5 s, x=4 has no record
    st.put([(pts[0], {"y": 1}), (pts[1], {"y": 4})], code_version="v",
           environment={"batch_seconds": 0.2, "batch_points": 2})
    st.put([(pts[2], {"y": 9})], code_version="v", environment={"batch_seconds": 5.0, "batch_points": 1})
    st.put([(pts[3], {"y": 16})], code_version="v", environment={})
    cheap = RC.recheck(sw, "ci", 10, store=path, max_seconds=0.1)
    assert sorted(c["x"] for c in cheap.checked) == [1, 2] and cheap.ok
    assert sorted(c["x"] for c in RC.recheck(sw, "ci", 10, store=path, max_seconds=5.0).checked) == [1, 2, 3]
    assert sorted(c["x"] for c in RC.recheck(sw, "ci", 10, store=path).checked) == [1, 2, 3, 4]
    assert RC.recheck(sw, "ci", 10, store=path, max_seconds=0.05).checked == []
