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


# ---------------------------------------------------------------------------------------- stats
from fractions import Fraction  # noqa: E402

from scipy import stats as st  # noqa: E402

from lrtheory.core import stats as ST  # noqa: E402


def _line(n=10, seed=0):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0.5, 3.0, n))
    return x, 0.7 - 1.3 * x + 0.1 * rng.standard_normal(n)


def _boot_ref(x, y, groups, n_boot, seed):
    """The documented group bootstrap by an explicit loop: draw G group indices, fit the union."""
    labels = np.unique(groups)
    draws = np.random.default_rng(seed).integers(0, labels.size, size=(n_boot, labels.size))
    slopes = []
    for d in draws:
        idx = np.concatenate([np.flatnonzero(groups == labels[g]) for g in d])
        if np.ptp(x[idx]) > 0:
            slopes.append(np.polyfit(x[idx], y[idx], 1)[0])
    return np.array(slopes)


@pytest.mark.parametrize("call, match", [
    (lambda: ST.linear_fit([[1, 2]], [1, 2]), r"^x: expected a 1-d array, got shape \(1, 2\)$"),
    (lambda: ST.linear_fit([1, 2], [[1, 2]]), r"^y: expected a 1-d array, got shape \(1, 2\)$"),
    (lambda: ST.linear_fit(["a", "b"], [1, 2]), r"^x: expected an array of real numbers, got \['a', 'b'\]$"),
    (lambda: ST.linear_fit([1, 2, 3], [1, 2]), r"^y: shape \(2,\) differs from x's \(3,\)$"),
    (lambda: ST.linear_fit([1, 2, 3], [1, 2, 3], y_se=[[1, 1, 1]]), r"^y_se: expected a 1-d array"),
    (lambda: ST.linear_fit([1, 2, 3], [1, 2, 3], y_se=[1, 1]), r"^y_se: expected 3 finite values >= 0, got \[1, 1\]$"),
    (lambda: ST.linear_fit([1, 2, 3], [1, 2, 3], y_se=[1, math.nan, 1]), r"^y_se: expected 3 finite values"),
    (lambda: ST.linear_fit([1, 2, 3], [1, 2, 3], y_se=[1, 1], n_boot=5),
     r"^y_se: propagated errors and the bootstrap are two methods; pass one$"),
    (lambda: ST.linear_fit([1, 2, 3], [1, 2, 3], groups=[0, 0, 1]), r"^groups: only used by the bootstrap; pass n_boot >= 2$"),
    (lambda: ST.linear_fit([1, 2, 3], [1, 2, 3], groups=[0, 1], n_boot=4),
     r"^groups: expected one label per point, shape \(3,\), got \(2,\)$"),
    (lambda: ST.linear_fit([1, 2, 3], [1, math.nan, 3]),
     r"^x: NaN or inf in x or y \(pass drop_nonfinite=True to drop those points\)$"),
    (lambda: ST.linear_fit([1, 2], [1, 2], level=0), r"^level: expected a number in \(0, 1\), got 0$"),
    (lambda: ST.linear_fit([1, 2], [1, 2], level="0.5"), r"^level: expected a number in \(0, 1\), got '0.5'$"),
    (lambda: ST.linear_fit([1, 2], [1, 2], level=True), r"^level: "),
    (lambda: ST.linear_fit([1, 2], [1, 2], n_boot=2.0), r"^n_boot: expected 0 \(no bootstrap\) or an integer >= 2, got 2.0$"),
    (lambda: ST.linear_fit([1, 2], [1, 2], n_boot=True), r"^n_boot: "),
    (lambda: ST.linear_fit([1, 1, 1], [1, 2, 3]), r"^x: all x are equal, the slope is undefined$"),
    (lambda: ST.linear_fit([1], [1]), r"^x: need at least 2 points, got 1$"),
    (lambda: ST.loglog_fit([0, 1, 2], [1, 2, 3]), r"^x: a log-log fit needs positive x$"),
    (lambda: ST.loglog_fit([1, 2, 3], [1, 0, 3]), r"^y: a log-log fit needs positive y$"),
    (lambda: ST.loglog_fit([1, 2, 3], [1, math.inf, 3]), r"^x: NaN or inf in x or y"),
    (lambda: ST.ols_lines([1, 2, 3], [1, 2]), r"^Y: expected shape \(3,\) or \(3, B\), got \(2,\)$"),
    (lambda: ST.ols_lines([[1, 2]], [1, 2]), r"^x: expected a 1-d array"),
    (lambda: ST.ols_lines([1], [1]), r"^x: need at least 2 points, got 1$"),
    (lambda: ST.ols_lines([2, 2], [1, 2]), r"^x: all x are equal, the slope is undefined$"),
    (lambda: ST.argmin_on_grid([[0, 1]], [1, 2]), r"^x: expected a 1-d array"),
    (lambda: ST.argmin_on_grid([0, 1], [[1, 2]]), r"^y: expected a 1-d array"),
    (lambda: ST.argmin_on_grid([0, 1, 2], [1, 2]), r"^y: expected the shape of x \(3,\), got \(2,\)$"),
    (lambda: ST.argmin_on_grid([], []), r"^y: expected the shape of x \(0,\), got \(0,\)$"),
    (lambda: ST.argmin_on_grid([0, 1, 1], [1, 2, 3]), r"^x: expected a finite, strictly increasing grid$"),
    (lambda: ST.argmin_on_grid([0, 1, math.inf], [1, 2, 3]), r"^x: expected a finite, strictly increasing grid$"),
    (lambda: ST.argmin_on_grid([0, 1], [math.nan, math.inf]), r"^y: no finite value$"),
    (lambda: ST.argmin_on_grid([0, 1], [1, 0], refine="parabola"), r"^y: a parabola needs at least 3 points, got 2$"),
    (lambda: ST.argmin_on_grid([0, 1], [1, 0], refine="cubic"), r"^refine: expected None or 'parabola', got 'cubic'$"),
])
def test_stats_errors_name_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_fits_accept_any_real_numbers_and_return_floats():
    F = Fraction
    fit = ST.linear_fit([F(0), F(1), F(2), F(3)], [F(1), F(3), F(5), F(15, 2)])
    assert fit.slope == pytest.approx(2.15, abs=1e-12) and fit.intercept == pytest.approx(0.9, abs=1e-12)
    out = fit.predict([F(1, 2), F(2)])
    assert out.dtype == np.float64 and out == pytest.approx([0.9 + 2.15 / 2, 0.9 + 4.3])
    ll = ST.loglog_fit([F(1), F(2), F(4)], [F(3), F(3, 2), F(3, 4)])
    assert ll.predict([F(8)]).dtype == np.float64 and ll.predict([F(8)])[0] == pytest.approx(0.375, rel=1e-12)
    s, c = ST.ols_lines([F(0), F(1), F(2)], [[F(1), F(0)], [F(3), F(0)], [F(5), F(1)]])
    assert s.dtype == np.float64 and c.dtype == np.float64 and s.tolist() == pytest.approx([2.0, 0.5])
    g = ST.argmin_on_grid([F(0), F(1), F(2)], [F(1), F(0), F(1, 2)], refine="parabola")
    assert g.x == pytest.approx(7 / 6, abs=1e-12)  # vertex of the parabola through (0,1), (1,0), (2,1/2)
    assert ST.linear_fit([0, 1, 2], [0, 1, 2], level=np.float32(0.5)).level == 0.5


def test_level_boundaries_and_zero_point_errors():
    x, y = _line()
    for level in (1e-9, 1 - 1e-9):
        assert ST.linear_fit(x, y, level=level).level == level
    fit = ST.linear_fit(x, y, y_se=np.r_[0.0, np.full(x.size - 1, 0.1)])  # an exact point is allowed
    xc = x - x.mean()
    assert fit.slope_se == pytest.approx(math.sqrt((xc[1:] ** 2 * 0.01).sum()) / (xc ** 2).sum(), rel=1e-12)
    assert fit.method == "propagated" and fit.n_boot == 0


def test_bootstrap_seed_default_and_smallest_counts():
    x, y = _line()
    assert ST.linear_fit(x, y, n_boot=40) == ST.linear_fit(x, y, n_boot=40, seed=0)  # seed None means 0
    two = ST.linear_fit(x, y, n_boot=2, seed=4)  # the smallest bootstrap: 2 resamples
    ref = _boot_ref(x, y, np.arange(x.size), 2, 4)
    assert two.n_boot == 2 == ref.size and two.slope_se == pytest.approx(np.std(ref, ddof=1), rel=1e-9)
    # two points, no groups: a resample drawing one point twice is degenerate and left out
    xs, ys = np.array([1.0, 2.0]), np.array([0.0, 1.0])
    for seed in range(40):
        draws = np.random.default_rng(seed).integers(0, 2, size=(3, 2))
        good = int((draws[:, 0] != draws[:, 1]).sum())
        if good >= 2:
            assert ST.linear_fit(xs, ys, n_boot=3, seed=seed).n_boot == good
        else:
            with pytest.raises(ValueError, match=r"^n_boot: fewer than 2 non-degenerate resamples out of 3$"):
                ST.linear_fit(xs, ys, n_boot=3, seed=seed)


def test_group_bootstrap_leaves_degenerate_resamples_out():
    # three groups with one x each (two points per group): a resample of a single group has one x
    x = np.array([1.0, 1.0, 2.0, 2.0, 3.0, 3.0])
    y = np.array([0.1, -0.1, 1.2, 0.9, 2.1, 1.8])
    g = np.array([7, 7, 3, 3, 5, 5])
    fit = ST.linear_fit(x, y, groups=g, n_boot=300, seed=2)
    ref = _boot_ref(x, y, g, 300, 2)
    assert 200 < ref.size < 300 and fit.n_boot == ref.size
    assert fit.slope_se == pytest.approx(np.std(ref, ddof=1), rel=1e-9)
    assert fit.ci == pytest.approx(tuple(np.percentile(ref, [2.5, 97.5])), rel=1e-9)
    # tiny x: the degeneracy threshold is relative to the spread of x (1e-12 Sxx), not absolute
    xt, yt = np.array([0.0, 1e-4, 2e-4, 3e-4]), np.array([0.0, 1.0, 1.9, 3.2])
    tiny = ST.linear_fit(xt, yt, n_boot=50, seed=1)
    assert tiny.n_boot == _boot_ref(xt, yt, np.arange(4), 50, 1).size


def test_dropping_nonfinite_points_keeps_their_groups_and_errors_aligned():
    x, y = _line(n=12, seed=5)
    g = np.repeat(np.arange(4), 3)
    se = np.linspace(0.05, 0.2, 12)
    yb = y.copy()
    yb[4] = math.nan
    keep = np.arange(12) != 4
    fit = ST.linear_fit(x, yb, groups=g, n_boot=200, seed=3, drop_nonfinite=True)
    ref = _boot_ref(x[keep], y[keep], g[keep], 200, 3)
    assert fit.n == 11 and fit.slope_se == pytest.approx(np.std(ref, ddof=1), rel=1e-9)
    prop = ST.linear_fit(x, yb, y_se=se, drop_nonfinite=True)
    xc = x[keep] - x[keep].mean()
    assert prop.method == "propagated"
    assert prop.slope_se == pytest.approx(math.sqrt((xc ** 2 * se[keep] ** 2).sum()) / (xc ** 2).sum(), rel=1e-12)


def test_loglog_passes_every_option_through():
    w = np.repeat([64.0, 128.0, 256.0, 512.0], 3)
    seeds = np.tile(np.arange(3), 4)
    y = 2.0 / w * (1 + 0.05 * np.cos(3 * seeds + w))
    fit = ST.loglog_fit(w, y, groups=seeds, n_boot=100, seed=7)
    ref = _boot_ref(np.log(w), np.log(y), seeds, 100, 7)
    assert fit.slope_se == pytest.approx(np.std(ref, ddof=1), rel=1e-9) and fit.n_boot == ref.size
    assert ST.loglog_fit(w, y, n_boot=100, seed=8) != ST.loglog_fit(w, y, n_boot=100, seed=7)
    yb = y.copy()
    yb[0] = math.inf
    d = ST.loglog_fit(w, yb, drop_nonfinite=True)
    r = st.linregress(np.log(w[1:]), np.log(y[1:]))
    assert d.n == 11 and d.slope == pytest.approx(r.slope, abs=1e-12)
    assert d.ci_high - d.slope == pytest.approx(st.t.ppf(0.975, 9) * r.stderr, rel=1e-9)
    assert ST.loglog_fit(w, y, level=0.5).level == 0.5 and ST.loglog_fit(w, y, y_se=0.01 * y).method == "propagated"
    assert ST.linear_fit(w, y, level=0.5, y_se=0.01 * y).level == 0.5


def test_argmin_windows_edges_and_log_floor():
    x = np.arange(4.0)
    assert ST.argmin_on_grid(x, [3.0, 2.0, 1.0, 0.0], refine="parabola") == ST.GridArgmin(3.0, 3, 0.0, False)
    # minimum next to the right edge: refined (vertex of the parabola through (1,2), (2,0), (3,1) at 13/6)
    r = ST.argmin_on_grid(x, [3.0, 2.0, 0.0, 1.0], refine="parabola")
    assert r.refined and r.x == pytest.approx(13 / 6, abs=1e-12)
    # only the two neighbours need finite values
    assert ST.argmin_on_grid(x, [5.0, math.inf, 1.0, 2.0], refine="parabola").refined is False
    assert ST.argmin_on_grid(x, [math.inf, 3.0, 1.0, 2.0], refine="parabola").x == pytest.approx(2 + 1 / 6, abs=1e-12)
    assert ST.argmin_on_grid(x, [3.0, 1.0, 2.0, math.nan], refine="parabola").x == pytest.approx(1 + 1 / 6, abs=1e-12)
    one = ST.argmin_on_grid([2.5], [7.0])
    assert one == ST.GridArgmin(2.5, 0, 7.0, False)
    # log_y with values far below 1: log y = (x - 1.4)^2 - 50 is an exact parabola
    q = ST.argmin_on_grid(np.arange(6.0), np.exp((np.arange(6.0) - 1.4) ** 2 - 50), refine="parabola", log_y=True)
    assert q.x == pytest.approx(1.4, abs=1e-9)


# ------------------------------------------------------------------------------------- validate
from lrtheory.core import validate as V  # noqa: E402


@pytest.mark.parametrize("call, match", [
    (lambda: V.integer(1, "k", minimum=2, maximum=4), r"^k: expected an integer in \[2, 4\], got 1$"),
    (lambda: V.integer(1, "k", minimum=2), r"^k: expected an integer >= 2, got 1$"),
    (lambda: V.integer(5, "k", maximum=4), r"^k: expected an integer <= 4, got 5$"),
    (lambda: V.integer(1.5, "k"), r"^k: expected an integer, got 1.5$"),
    (lambda: V.integer(True, "k"), r"^k: expected an integer, got True$"),
    (lambda: V.real("x", "w"), r"^w: expected a real number, got str 'x'$"),
    (lambda: V.real(math.inf, "w"), r"^w: expected a finite number, got inf$"),
    (lambda: V.real(torch.ones(2), "w"), r"^w: expected a number, got a tensor of shape \(2,\)$"),
    (lambda: V.real(torch.tensor(True), "w"), r"^w: expected a number, got a bool tensor$"),
    (lambda: V.positive_real("x", "w"), r"^w: expected a positive finite number, got 'x'$"),
    (lambda: V.positive_real(torch.ones(2), "w"), r"^w: expected a number, got a tensor of shape \(2,\)$"),
    (lambda: V.nonneg_real("x", "w"), r"^w: expected a finite number >= 0, got 'x'$"),
    (lambda: V.nonneg_real(-0.5, "w"), r"^w: expected a finite number >= 0, got -0.5$"),
    (lambda: V.nonneg_real(torch.ones(2), "w"), r"^w: expected a number, got a tensor of shape \(2,\)$"),
    (lambda: V.in_range(5, "d", hi=1), r"^d: expected a number in \[-inf, 1\], got 5$"),
    (lambda: V.in_range(-math.inf, "d", hi=1), r"^d: expected a number in \[-inf, 1\], got -inf$"),
    (lambda: V.in_range(0.5, "d", 1.5, 2.5, inclusive=(True, False)), r"^d: expected a number in \[1.5, 2.5\), got 0.5$"),
    (lambda: V.in_range(torch.ones(2), "p", 0, 1), r"^p: expected a number, got a tensor of shape \(2,\)$"),
    (lambda: V.int_sequence("12", "s"), r"^s: expected a sequence of integers, got '12'$"),
    (lambda: V.int_sequence(b"12", "s"), r"^s: expected a sequence of integers, got b'12'$"),
    (lambda: V.int_sequence(None, "s"), r"^s: expected a sequence of integers, got None$"),
    (lambda: V.int_sequence(3.5, "s"), r"^s: expected a sequence of integers, got 3.5$"),
    (lambda: V.int_sequence([], "s"), r"^s: expected at least one integer, got \[\]$"),
    (lambda: V.int_sequence([64, 0], "widths", minimum=1), r"^widths: expected integers >= 1, got 0 in \[64, 0\]$"),
    (lambda: V.int_sequence([1.5], "o", minimum=None), r"^o: expected integers, got 1.5 in \[1.5\]$"),
    (lambda: V.int_sequence([1, True], "s"), r"^s: expected integers >= 0, got True in \[1, True\]$"),
    (lambda: V.int_sequence([2, 2], "s", distinct=True), r"^s: expected distinct integers, got \[2, 2\]$"),
    (lambda: V.finite_array(["a"], "g"), r"^g: expected an array of real numbers, got \['a'\]$"),
    (lambda: V.finite_array([True], "g"), r"^g: expected an array of real numbers, got booleans$"),
    (lambda: V.finite_array([[1.0]], "g", ndim=1), r"^g: expected a 1-d array, got shape \(1, 1\)$"),
    (lambda: V.finite_array([], "g"), r"^g: expected at least one value, got an empty array$"),
    (lambda: V.finite_array([1, math.nan], "g"), r"^g: every value must be finite \(got NaN or inf\)$"),
    (lambda: V.finite_array([[1, 2]], "g", increasing=True), r"^g: an increasing grid must be 1-d, got shape \(1, 2\)$"),
    (lambda: V.finite_array([1, 1], "g", increasing=True), r"^g: must be strictly increasing, got \[1. 1.\]$"),
    (lambda: V.positive_array([0.1, 0.0], "etas"), r"^etas: every value must be > 0, got min 0.0$"),
    (lambda: V.positive_array([[0.1]], "etas", ndim=1), r"^etas: expected a 1-d array, got shape \(1, 1\)$"),
    (lambda: V.positive_array([], "etas"), r"^etas: expected at least one value, got an empty array$"),
    (lambda: V.positive_array([2.0, 1.0], "etas", increasing=True), r"^etas: must be strictly increasing"),
    (lambda: V.finite_tensor(np.zeros(2), "x"), r"^x: expected a torch.Tensor, got ndarray$"),
    (lambda: V.finite_tensor(torch.arange(2), "x"), r"^x: expected a floating point tensor, got dtype torch.int64$"),
    (lambda: V.finite_tensor(torch.ones(2, dtype=torch.bool), "x", floating=False),
     r"^x: expected a real tensor, got dtype torch.bool$"),
    (lambda: V.finite_tensor(torch.ones(2, dtype=torch.complex64), "x", floating=False),
     r"^x: expected a real tensor, got dtype torch.complex64$"),
    (lambda: V.finite_tensor(torch.ones(2), "x", ndim=2), r"^x: expected a 2-d tensor, got shape \(2,\)$"),
    (lambda: V.finite_tensor(torch.ones(0, 3), "x"), r"^x: expected a non-empty tensor, got shape \(0, 3\)$"),
    (lambda: V.choice("bn", "norm", [None, "ln"]), r"^norm: expected one of \(None, 'ln'\), got 'bn'$"),
])
def test_validate_messages_exactly(call, match):
    with pytest.raises(ValueError, match=match):
        call()


class _NoEq:
    def __eq__(self, other):
        raise RuntimeError("no ==")

    __hash__ = object.__hash__


def test_validate_accepts_the_documented_edges():
    assert V.integer(2, "k", minimum=2) == 2 and V.integer(4, "k", maximum=4) == 4
    assert V.finite_array(2.5, "x", ndim=1).tolist() == [2.5] and V.finite_array(2.5, "x").shape == ()
    assert V.positive_array(0.1, "etas", ndim=1).shape == (1,)
    assert V.positive_array([], "etas", nonempty=False).size == 0
    assert V.finite_array(np.array([[1, 2], [3, 4]]), "a", increasing=False).shape == (2, 2)
    assert V.int_sequence(np.array([[1, 2], [3, 4]]), "s") == (1, 2, 3, 4)
    assert V.int_sequence(torch.tensor([[5], [6]]), "s") == (5, 6)
    assert V.int_sequence(iter([1, 2]), "s") == (1, 2)  # any iterable, not only arrays
    assert V.int_sequence([1, 1], "s") == (1, 1)  # repeats allowed unless distinct
    assert V.int_sequence((), "s", nonempty=False) == ()
    ok = _NoEq()
    assert V.choice(ok, "c", [ok]) is ok  # identity counts even when == raises
    with pytest.raises(ValueError, match=r"^c: expected one of"):
        V.choice(_NoEq(), "c", [1])  # an object whose == raises is not an option
    assert V.in_range(1.0, "p", 0, 1, inclusive=(False, True)) == 1.0
    assert V.in_range(torch.tensor(0.5), "p", 0, 1) == 0.5 and type(V.in_range(np.int64(1), "p", 0, 2)) is float
    t = torch.ones(2, dtype=torch.int32)
    assert V.finite_tensor(t, "t", floating=False) is t
    assert V.real(np.float32(2.5), "r") == 2.5 and type(V.real(np.float32(2.5), "r")) is float


def test_argmin_right_edge_on_a_negative_grid_is_not_refined():
    # at the right edge there is no right neighbour, whatever a 2-point parabola would say
    assert ST.argmin_on_grid([-3.0, -2.0, -1.0, 0.0], [3.0, 2.0, 1.0, 0.0], refine="parabola") == \
        ST.GridArgmin(0.0, 3, 0.0, False)
    assert ST.argmin_on_grid([-3.0, -2.0, -1.0, 0.0], [0.0, 1.0, 2.0, 3.0], refine="parabola") == \
        ST.GridArgmin(-3.0, 0, 0.0, False)


# -------------------------------------------------------------------------------------- lanczos
from lrtheory.core.device import make_generator  # noqa: E402
from lrtheory.core.lanczos import eigsh_top_eig, lanczos_top_eig, power_iteration_top_eig  # noqa: E402

DT = torch.float64


def _start(n, seed, dtype=DT):
    """The documented random start: a standard normal draw from the generator (float64, then cast)."""
    return torch.randn(1, n, generator=make_generator(seed, "cpu"), dtype=torch.float64)[0].to(dtype)


def test_power_iteration_steps_by_hand():
    """max_iter=k stops after k products: value the Rayleigh quotient of the k-th iterate
    A^(k-1) v0 / ||.|| and vector that iterate, not converged (computed here step by step)."""
    A = torch.diag(torch.tensor([3.0, 1.0, -2.0, 0.5], dtype=DT))
    v0 = _start(4, 11)
    for k in (1, 2, 3):
        u = v0 / v0.norm()
        for _ in range(k - 1):
            u = A @ u
            u = u / u.norm()
        r = power_iteration_top_eig(lambda v: A @ v, 4, generator=make_generator(11, "cpu"), max_iter=k,
                                    algebraic=False)
        assert r.n_matvec == k and r.converged is False
        assert r.value == pytest.approx(float(u @ A @ u), rel=1e-14)
        torch.testing.assert_close(r.vector, u, rtol=1e-14, atol=1e-15)
    f32 = power_iteration_top_eig(lambda v: A.float() @ v, 4, dtype=torch.float32, generator=make_generator(3),
                                  max_iter=1, algebraic=False)
    assert f32.vector.dtype == torch.float32
    torch.testing.assert_close(f32.vector, _start(4, 3, torch.float32) / _start(4, 3, torch.float32).norm())
    # the default start is seed 0
    d = power_iteration_top_eig(lambda v: A @ v, 4, max_iter=1, algebraic=False)
    torch.testing.assert_close(d.vector, _start(4, 0) / _start(4, 0).norm(), rtol=1e-14, atol=1e-15)


def test_power_iteration_batch_rows_freeze_at_their_own_convergence():
    """Rows converge at different steps (ratios 0.5 and 0.9); each row's value and vector are those of
    its solo run, bit for bit, and stay frozen while the other row iterates."""
    D = torch.tensor([[4.0, 2.0, 1.0], [1.0, 0.9, 0.1]], dtype=DT)
    V0 = torch.tensor([[1.0, 2.0, 3.0], [2.0, 1.0, 5.0]], dtype=DT)
    r = power_iteration_top_eig(lambda V: D * V, V0, tol=1e-10, max_iter=5000)
    assert r.value.shape == (2,) and r.converged.dtype == bool and r.vector.shape == (2, 3)
    for k in range(2):
        solo = power_iteration_top_eig(lambda v: D[k] * v, V0[k], tol=1e-10, max_iter=5000)
        assert r.value[k] == solo.value and torch.equal(r.vector[k], solo.vector)
        assert abs(r.vector[k].norm().item() - 1.0) < 1e-14
    assert r.n_matvec == max(power_iteration_top_eig(lambda v: D[k] * v, V0[k], tol=1e-10, max_iter=5000).n_matvec
                             for k in range(2))


def test_power_iteration_tolerance_is_relative_to_the_value():
    """||A v - theta v|| <= tol |theta| bounds the relative error of theta by tol for a symmetric A:
    at any scale of A, the relative error stays below tol."""
    for scale in (1e-6, 1.0, 1e6):
        A = scale * torch.diag(torch.tensor([1.0, 0.5, 0.1], dtype=DT))
        r = power_iteration_top_eig(lambda v: A @ v, torch.ones(3, dtype=DT), tol=1e-8, max_iter=10000)
        assert r.converged and abs(r.value / scale - 1.0) <= 1e-8


def test_zero_operator_converges_at_once_in_any_precision():
    for dt in (torch.float64, torch.float32):
        z = power_iteration_top_eig(lambda v: 0 * v, torch.ones(3, dtype=dt), max_iter=50)
        assert z.value == 0.0 and z.converged and z.n_matvec == 1
        lz = lanczos_top_eig(lambda v: 0 * v, torch.ones(3, dtype=dt), max_iter=50)
        assert lz.value == 0.0 and lz.converged and lz.n_matvec == 1


def test_a_row_broken_once_stays_broken():
    calls = [0]

    def flaky(v):
        calls[0] += 1
        out = torch.tensor([2.0, 1.0], dtype=DT) * v
        return out * math.nan if calls[0] == 1 else out

    r = power_iteration_top_eig(flaky, torch.ones(2, dtype=DT), max_iter=100, algebraic=False)
    assert math.isnan(r.value) and r.converged is False
    calls[0] = 0
    lz = lanczos_top_eig(flaky, torch.ones(2, dtype=DT))
    assert math.isnan(lz.value) and lz.converged is False


def test_eigsh_arguments_and_one_dimension():
    A, _ = (lambda d: (torch.diag(d), None))(torch.tensor([3.0, -7.0, 1.0, 0.5], dtype=DT))
    with pytest.raises(ValueError, match=r"^tol: expected a positive finite number, got 0$"):
        eigsh_top_eig(lambda v: A @ v, 4, tol=0)
    with pytest.raises(ValueError, match=r"^max_iter: expected a positive integer, got 0$"):
        eigsh_top_eig(lambda v: A @ v, 4, max_iter=0)
    assert eigsh_top_eig(lambda v: A @ v, 4, max_iter=500).value == pytest.approx(3.0, rel=1e-12)
    seen = []

    def mv(v):
        seen.append(v)
        return A.to(v.dtype) @ v

    f = eigsh_top_eig(mv, 4, dtype=torch.float32, generator=make_generator(9))
    assert f.vector.dtype == torch.float32 and all(v.dtype == torch.float32 for v in seen)
    assert f.value == pytest.approx(3.0, rel=1e-6)
    one = []
    r1 = eigsh_top_eig(lambda v: one.append(v) or 2.5 * v, torch.ones(1, dtype=torch.float32))
    assert r1.value == 2.5 and r1.n_matvec == 1 and r1.converged and one[0].dtype == torch.float32
    assert r1.vector.dtype == torch.float32 and r1.vector.tolist() == [1.0]
    bad = eigsh_top_eig(lambda v: v * math.nan, torch.ones(1, dtype=DT))
    assert bad.converged is False


def test_eigsh_and_lanczos_start_from_the_generators_draw():
    A = torch.diag(torch.tensor([3.0, -7.0, 1.0, 0.5, 2.0, 0.1], dtype=DT))
    want = _start(6, 9) / _start(6, 9).norm()
    for fn in (eigsh_top_eig, lanczos_top_eig, power_iteration_top_eig):
        seen = []
        fn(lambda v: seen.append(v.clone()) or A @ v, 6, generator=make_generator(9))
        torch.testing.assert_close(seen[0] / seen[0].norm(), want, rtol=1e-12, atol=1e-14)


DEVICES = []


def _device_batch(configs, device):
    """Module level: records the device the engine hands to a recomputation."""
    DEVICES.append(device)
    return [{"y": c["x"] ** 2} for c in configs]


def test_recheck_default_seed_and_device(tmp_path, monkeypatch):
    from lrtheory.core.sweep import Param, SweepDef, run_sweep

    sw = SweepDef(name="dev", chapter="t", description="d", points=lambda s: [{"x": x} for x in range(6)],
                  run_batch=_device_batch, schema={"x": Param("int")})
    path = tmp_path / "r.jsonl"
    run_sweep(sw, "ci", store=path, device="cpu")
    assert RC.recheck(sw, "ci", 3, store=path).checked == RC.recheck(sw, "ci", 3, store=path, seed=0).checked
    monkeypatch.setenv("LRTHEORY_DEVICE", "mps")  # a recomputation handed None would resolve to 'mps'
    DEVICES.clear()
    RC.recheck(sw, "ci", 2, store=path, device="cpu")
    RC.recheck(sw, "ci", 1, store=path, device=torch.device("cpu"))
    assert DEVICES == [torch.device("cpu")] * 3


@pytest.mark.parametrize("a, b, rtol, close", [
    ([1.0, 2.0], S.encode_value(np.array([1.0, 2.0])), 1.0, False),  # a list is not an array
    (S.encode_value(Inner((1.0,), 2.0)), 2.0, 1.0, False),              # a dataclass is not a number
    (True, 1.0 + 1e-9, 1e-3, False),                                   # a flag is compared exactly
    (1, 1.0 + 1e-12, 1e-9, True),                                      # an int against a float: a number
    (S.encode_value(np.array([2], dtype=np.int32)), S.encode_value(np.array([2.0 + 1e-12])), 1e-9, True),
])
def test_results_close_structure_before_numbers(a, b, rtol, close):
    assert RC.results_close(a, b, rtol, 0.0) is close and RC.results_close(b, a, rtol, 0.0) is close


def test_store_details(monkeypatch, tmp_path):
    bad = {i: i for i in range(7)}
    with pytest.raises(TypeError, match=r"^cannot encode a dict whose keys are not plain strings: \[0, 1, 2, 3, 4\]$"):
        S.encode_value(bad)
    monkeypatch.delenv("LRTHEORY_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert S.default_store_path() == tmp_path / ".cache" / "lrtheory" / "results.sqlite"


def _ritz_by_hand(A, v0, k):
    """Top Ritz value of the Krylov space span(v0, A v0, ..., A^(k-1) v0), by numpy QR + eigvalsh."""
    A, v = A.numpy(), v0.numpy()
    K = np.stack([np.linalg.matrix_power(A, i) @ v for i in range(k)], 1)
    Qk, _ = np.linalg.qr(K)
    return float(np.linalg.eigvalsh(Qk.T @ A @ Qk)[-1])


def test_lanczos_k_steps_is_rayleigh_ritz_on_the_krylov_space():
    d = torch.tensor([5.0, 4.9, 4.0, 2.0, 1.0, 0.5, -1.0, -3.0], dtype=DT)
    A, _ = (lambda D: (D, None))(torch.diag(d))
    v0 = _start(8, 21)
    for k in (1, 2, 3, 5):
        r = lanczos_top_eig(lambda v: A @ v, v0, tol=1e-15, max_iter=k)
        assert r.n_matvec == k and r.converged is False
        assert r.value == pytest.approx(_ritz_by_hand(A, v0, k), rel=1e-12)
        assert abs(r.vector.norm().item() - 1.0) < 1e-12
        assert float(r.vector @ A @ r.vector) == pytest.approx(r.value, rel=1e-12)  # a Ritz pair
    full = lanczos_top_eig(lambda v: A @ v, v0, tol=1e-300, max_iter=50)  # capped at n: exact
    assert full.n_matvec == 8 and full.converged and full.value == pytest.approx(5.0, rel=1e-13)


def test_default_tolerances_and_iteration_caps():
    # a clustered top (gap 1e-3): the defaults (tol 1e-10) give the value to 1e-10 relative
    n = 120
    d = torch.cat([torch.tensor([1.0, 0.999], dtype=DT), torch.linspace(-1, 0.99, n - 2, dtype=DT)])
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(4), dtype=DT))
    A = Q @ torch.diag(d) @ Q.T
    lz = lanczos_top_eig(lambda v: A @ v, n)
    assert lz.converged and abs(lz.value - 1.0) <= 1e-9
    es = eigsh_top_eig(lambda v: A @ v, n)
    assert es.converged and abs(es.value - 1.0) <= 1e-9
    # a looser ARPACK tolerance needs fewer products
    assert eigsh_top_eig(lambda v: A @ v, n, tol=1e-2).n_matvec < eigsh_top_eig(lambda v: A @ v, n, tol=1e-14).n_matvec
    # max_iter defaults: 200 Krylov steps, 1000 power steps (a problem neither solves sooner)
    m = 1000
    slow = torch.linspace(-1, 1, m, dtype=DT)  # uniform spectrum, top gap 2e-3: ~500 steps to 1e-15
    cap = lanczos_top_eig(lambda v: slow * v, m, tol=1e-15)
    assert cap.n_matvec == 200 and cap.converged is False
    pw = power_iteration_top_eig(lambda v: torch.tensor([1.0, 0.9999], dtype=DT) * v, torch.ones(2, dtype=DT),
                                 tol=1e-15)
    assert pw.n_matvec == 1000 and pw.converged is False


def test_eigsh_without_convergence_reports_its_best_and_the_start():
    n = 60
    d = torch.linspace(0, 1, n, dtype=DT)
    calls = [0]

    def mv(v):
        calls[0] += 1
        return d * v

    r = eigsh_top_eig(mv, n, tol=1e-15, max_iter=1, generator=make_generator(2))
    assert r.converged is False and r.n_matvec == calls[0] > 0
    assert math.isnan(r.value) or 0.0 <= r.value <= 1.0 + 1e-12  # ARPACK's best estimate, or none
    start = _start(n, 2)
    torch.testing.assert_close(r.vector, start / start.norm(), rtol=1e-14, atol=1e-15)


class Holder:
    @dataclasses.dataclass(frozen=True)
    class Nested:
        a: int
        b: tuple = ()


def test_store_nested_dataclasses_text_rows_and_messages(tmp_path):
    v = Holder.Nested(3, (1.5,))
    enc = S.encode_value(v)
    assert enc["__dataclass__"] == "test_contracts_core:Holder.Nested"
    assert S.decode_value(json.loads(json.dumps(enc))) == v
    st = S.TextStore(tmp_path / "t.jsonl")
    st.put([(_pt("a"), {"y": 1})], code_version="v", environment={})
    assert [r.created for r in st.rows()] == [0.0]  # a text store keeps no timestamp, also in memory
    with pytest.raises(ValueError, match=rf"^store: '{tmp_path}' is a folder; expected a file path$"):
        S.TextStore(tmp_path)
    with pytest.raises(ValueError, match=rf"^store: '{tmp_path}' is a folder; expected a file path$"):
        S.ResultStore(tmp_path)


def test_krylov_arguments_are_checked_naming_them():
    mv = lambda v: v  # noqa: E731
    for fn in (lanczos_top_eig, power_iteration_top_eig):
        with pytest.raises(ValueError, match=r"^tol: expected a positive finite number, got 0$"):
            fn(mv, 3, tol=0)
        with pytest.raises(ValueError, match=r"^max_iter: expected a positive integer, got 0$"):
            fn(mv, 3, max_iter=0)
        with pytest.raises(ValueError, match=r"^v0: expected shape \(n,\) or \(K, n\), got \(2, 3, 4\)$"):
            fn(mv, torch.ones(2, 3, 4, dtype=DT))
        with pytest.raises(ValueError, match=r"^v0: expected shape \(n,\) or \(K, n\), got \(2, 0\)$"):
            fn(mv, torch.ones(2, 0, dtype=DT))
        for bad in (torch.tensor([1.0, math.nan], dtype=DT), torch.zeros(2, dtype=DT),
                    torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=DT)):
            with pytest.raises(ValueError, match=r"^v0: start vectors must be finite and non-zero$"):
                fn(mv, bad)
        for bad in (2.5, 0, True, "3"):
            with pytest.raises(ValueError, match=r"^v0: expected a start tensor or a positive dimension n, got "):
                fn(mv, bad)
        one = fn(lambda v: 3.0 * v, torch.ones(1, dtype=DT))  # a 1-dimensional operator
        assert one.value == pytest.approx(3.0, rel=1e-14) and one.converged
        unit = fn(lambda v: torch.tensor([2.0, 1.0], dtype=DT) * v, torch.tensor([1.0, 0.0], dtype=DT))
        assert unit.value == pytest.approx(2.0, rel=1e-14)  # a unit start vector (norm exactly 1) is fine
        batch = fn(lambda V: V * torch.tensor([[2.0, 1.0], [1.0, 3.0]], dtype=DT), torch.ones(2, 2, dtype=DT))
        assert type(batch.n_matvec) is int and batch.n_matvec >= 1


def test_power_iteration_shifts_only_a_negative_dominant_value():
    """A positive dominant eigenvalue below 1 is already the top algebraic one: no shift (a shift by
    it would return the lowest eigenvalue, -0.3)."""
    A = torch.diag(torch.tensor([0.5, 0.2, -0.3], dtype=DT))
    r = power_iteration_top_eig(lambda v: A @ v, torch.ones(3, dtype=DT), tol=1e-12, max_iter=5000)
    assert r.value == pytest.approx(0.5, rel=1e-10)


def test_power_iteration_shift_decided_row_by_row():
    """In a batch where one row's dominant eigenvalue is negative (so the shift phase runs), a row whose
    dominant value is positive and below 1 keeps it: shifting it by its own value would return its lowest
    eigenvalue (-0.3 + 0.5 - 0.5 ...: -0.3)."""
    D = torch.tensor([[0.5, 0.2, -0.3], [1.0, 0.5, -4.0]], dtype=DT)
    r = power_iteration_top_eig(lambda V: D * V, torch.ones(2, 3, dtype=DT), tol=1e-12, max_iter=5000)
    assert r.value[0] == pytest.approx(0.5, rel=1e-10) and r.value[1] == pytest.approx(1.0, rel=1e-10)
    assert r.converged.all()


def test_krylov_batch_rows_of_very_different_scales():
    """Breakdown (b <= 10 eps * scale) is judged against each row's own spectrum: a row with eigenvalues in
    [1, 1.001] (its b are ~5e-4) beside a row of scale 1e12 is still solved to the tolerance; a batch-wide
    scale would call 5e-4 <= 10 eps 1e12 = 2e-3 a breakdown and stop it at its first Ritz value."""
    n = 40
    base = torch.linspace(0.0, 1.0, n, dtype=DT)
    D = torch.stack([1.0 + 1e-3 * base ** 2, 1e12 * base.flip(0)])
    r = lanczos_top_eig(lambda V: D * V, torch.ones(2, n, dtype=DT) + 0.01 * torch.arange(n, dtype=DT),
                        tol=1e-12, max_iter=n)
    assert r.converged.all()
    np.testing.assert_allclose(r.value, [1.001, 1e12], rtol=1e-10)


def test_krylov_exact_breakdown_of_one_row_leaves_the_others():
    """A row whose Krylov space closes exactly (start e_1 of a diagonal operator: A v0 = d_1 v0, b = 0
    exactly at the first step) is done; a row that needs more steps goes on, and the finished row gets no
    NaN from its zero norm (Lanczos divides by b only where b > 0)."""
    n = 12
    D = torch.stack([torch.linspace(-1.0, 2.0, n, dtype=DT).flip(0), torch.linspace(-1.0, 3.0, n, dtype=DT)])
    V0 = torch.ones(2, n, dtype=DT) + 0.1 * torch.arange(n, dtype=DT)
    V0[0] = 0.0
    V0[0, 0] = 1.0
    for fn in (lanczos_top_eig, power_iteration_top_eig):
        r = fn(lambda V: D * V, V0, tol=1e-10, max_iter=5000)
        assert r.value[0] == 2.0 and r.value[1] == pytest.approx(3.0, rel=1e-9), fn
        assert r.converged.all() and torch.isfinite(r.vector).all()
    # the zero operator in one row (A v = 0: power iteration must not divide by the zero norm)
    Z = torch.stack([torch.zeros(n, dtype=DT), torch.linspace(-1.0, 3.0, n, dtype=DT)])
    r = power_iteration_top_eig(lambda V: Z * V, V0, tol=1e-10, max_iter=5000)
    assert r.value[0] == 0.0 and r.value[1] == pytest.approx(3.0, rel=1e-9) and torch.isfinite(r.vector).all()


def test_lanczos_ritz_vector_is_accurate_to_the_tolerance():
    """The returned vector is the Ritz vector in the operator's precision: ||A u - theta u|| <= 1e-9 |theta|
    at tol 1e-10 (residual bound of the stopping rule, plus round-off), unit norm, float64."""
    n = 80
    g = torch.Generator().manual_seed(8)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=DT))
    A = Q @ torch.diag(torch.linspace(-2.0, 1.0, n, dtype=DT) ** 3) @ Q.T
    r = lanczos_top_eig(lambda v: A @ v, n, tol=1e-10, max_iter=n)
    assert r.converged and r.vector.dtype == DT
    u = r.vector
    assert abs(u.norm().item() - 1.0) < 1e-12
    assert (A @ u - r.value * u).norm().item() <= 1e-9 * abs(r.value)
    assert r.value == pytest.approx(1.0, rel=1e-10)


def test_eigsh_one_dimension_by_a_matrix():
    """A 1 x 1 operator given as a matrix product: the start is a 1-vector in the operator's dtype."""
    for dt in (torch.float64, torch.float32):
        A = torch.tensor([[-1.5]], dtype=dt)
        r = eigsh_top_eig(lambda v: A @ v, torch.ones(1, dtype=dt))
        assert r.value == -1.5 and r.converged and r.n_matvec == 1
        assert r.vector.dtype == dt and r.vector.tolist() == [1.0]


def test_power_iteration_first_step_of_a_batch_normalizes_each_row():
    """One product on a batch: each row's value is the Rayleigh quotient of its own start and its vector the
    start over its own norm (rows of very different norms: a batch-wide norm would shrink one quotient)."""
    D = torch.tensor([[3.0, 1.0, -2.0], [0.5, 2.0, 1.0]], dtype=DT)
    V0 = torch.tensor([[1.0, 2.0, 2.0], [30.0, -40.0, 0.0]], dtype=DT)
    r = power_iteration_top_eig(lambda V: D * V, V0, max_iter=1, algebraic=False)
    for k in range(2):
        u = V0[k] / V0[k].norm()
        assert r.value[k] == pytest.approx(float(u @ (D[k] * u)), rel=1e-14)
        torch.testing.assert_close(r.vector[k], u, rtol=1e-14, atol=1e-15)


# ------------------------------------------------------- lanczos: devices, dtypes, scales (issue 21)
from core_defaults import foreign_defaults  # noqa: E402


def _sym(n, seed, top=None, dtype=DT):
    """A random symmetric n x n matrix Q diag(d) Q^T with the spectrum d = linspace(-1, 1, n) ** 3 (top 1)."""
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return (Q @ torch.diag(torch.linspace(-1.0, 1.0, n, dtype=torch.float64) ** 3) @ Q.T).to(dtype)


@pytest.mark.parametrize("dt, default", [(torch.float32, torch.float64), (torch.float64, torch.float32)])
def test_krylov_tensors_follow_the_start_not_the_global_defaults(dt, default):
    """Every tensor Lanczos, power iteration and eigsh make takes the start's device and dtype: run under a
    default device "meta" (a tensor made without device= breaks the first operation mixing it with the CPU
    inputs) and a default dtype other than the start's, the results are those of the top eigenvalue 1 (the
    spectrum is built so), in the start's dtype, on the CPU. 40 Lanczos steps grow the Krylov basis past
    its first 32 rows (tol 1e-300: never met, so the basis grows)."""
    n = 60
    A = _sym(n, 5, dtype=dt)
    A2 = torch.stack([A, 2.0 * A])
    v0 = torch.ones(n, dtype=dt) + 0.01 * torch.arange(n, dtype=dt)
    rtol = 1e-4 if dt == torch.float32 else 1e-10
    one0 = torch.ones(1, dtype=dt)
    # power iteration: a spectrum with a clear gap (2, 1, 0.5, -1, 0.25, rotated)
    g = torch.Generator().manual_seed(4)
    R, _ = torch.linalg.qr(torch.randn(5, 5, generator=g, dtype=torch.float64))
    B = (R @ torch.diag(torch.tensor([2.0, 1.0, 0.5, -1.0, 0.25], dtype=torch.float64)) @ R.T).to(dt)
    B2 = torch.stack([B, 2.0 * B])
    u0 = torch.ones(5, dtype=dt)
    with foreign_defaults(dtype=default):
        lz = lanczos_top_eig(lambda v: A @ v, v0, tol=1e-300, max_iter=40)
        lzb = lanczos_top_eig(lambda V: torch.einsum("kij,kj->ki", A2, V), torch.stack([v0, v0]), tol=1e-6,
                              max_iter=n)
        pw = power_iteration_top_eig(lambda v: B @ v, u0, tol=1e-6, max_iter=5000)
        pwb = power_iteration_top_eig(lambda V: -torch.einsum("kij,kj->ki", B2, V), torch.stack([u0, u0]),
                                      tol=1e-6, max_iter=5000)
        es = eigsh_top_eig(lambda v: A @ v, v0, tol=1e-8)
        one = eigsh_top_eig(lambda v: 2.5 * v, one0)
    assert lz.value == pytest.approx(1.0, rel=rtol) and lz.converged is False and lz.n_matvec == 40
    np.testing.assert_allclose(lzb.value, [1.0, 2.0], rtol=1e-5)
    assert lzb.converged.all()
    assert pw.value == pytest.approx(2.0, rel=1e-5) and pw.converged
    # -B and -2B: dominant eigenvalues -2 and -4, largest algebraic 1 and 2 (found by the shift)
    np.testing.assert_allclose(pwb.value, [1.0, 2.0], rtol=1e-5)
    assert pwb.converged.all()
    assert es.value == pytest.approx(1.0, rel=rtol) and es.converged
    assert one.value == 2.5 and one.vector.tolist() == [1.0]
    for r in (lz, lzb, pw, pwb, es, one):
        assert r.vector.dtype == dt and r.vector.device.type == "cpu"
    for M, lam, u in ((A, 1.0, lz.vector), (A, 1.0, es.vector), (B, 2.0, pw.vector)):  # unit Ritz vectors
        u = u.double()
        assert abs(u.norm().item() - 1.0) < 1e-3
        assert (M.double() @ u - lam * u).norm().item() < 0.01


def test_krylov_operator_returning_another_dtype_is_cast_to_the_start():
    """A matvec that answers in float64 for a float32 start: the iterations run in the start's float32
    (each product is cast back), so the vectors come back float32."""
    A = _sym(20, 2)
    v0 = torch.ones(20, dtype=torch.float32)
    for fn in (lanczos_top_eig, power_iteration_top_eig):
        r = fn(lambda v: A @ v.double(), v0, tol=1e-4, max_iter=5000)
        assert r.vector.dtype == torch.float32, fn
        assert r.value == pytest.approx(1.0, rel=1e-3), fn


def test_random_start_on_the_requested_device_and_dtype():
    """With v0 an int the start is the float64 standard normal draw of the generator (seed 0 by default), then
    cast to ``dtype`` and moved to ``device`` (here the meta device, where nothing can run: the start alone)."""
    from lrtheory.core.lanczos import _start_vector

    v, single = _start_vector(4, None, None, None)
    assert single and v.dtype == torch.float64 and v.device.type == "cpu"
    torch.testing.assert_close(v[0], _start(4, 0), rtol=0, atol=0)
    m, _ = _start_vector(4, None, torch.float32, "meta")
    assert m.device.type == "meta" and m.dtype == torch.float32 and m.shape == (1, 4)
    # the draw is made on the generator's device, whatever torch's default device (a CUDA default with
    # the CPU generator raised "Expected a 'cuda' device type for generator" before)
    A = torch.diag(torch.tensor([3.0, -5.0, 1.0, 0.5], dtype=DT))
    with foreign_defaults():
        v, _ = _start_vector(4, None, None, None)
        r = lanczos_top_eig(lambda u: A @ u, 4)
    assert v.device.type == "cpu" and torch.equal(v[0], _start(4, 0))
    assert r.value == pytest.approx(3.0, rel=1e-12) and r.vector.device.type == "cpu"


def test_lanczos_breakdown_is_judged_at_the_operators_scale():
    """A start inside a 2-dimensional invariant subspace of an operator of scale 2e6: the Krylov space closes
    after 2 products (the next residual is round-off, ~1e-10, below 10 eps * 2e6 = 4.4e-9), so Lanczos stops
    there with the exact top value of the subspace even at tol 1e-300 (the residual test alone never
    stops it); a threshold not scaled by the spectrum (10 eps = 2.2e-15) would run on to n."""
    D = 1e6 * torch.tensor([2.0, 1.0, 0.5, 0.25, 0.125, 0.0625], dtype=DT)
    g = torch.Generator().manual_seed(1)
    Q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g, dtype=DT))
    A = Q @ torch.diag(D) @ Q.T
    r = lanczos_top_eig(lambda v: A @ v, Q[:, :2] @ torch.tensor([0.6, 0.8], dtype=DT), tol=1e-300)
    assert r.n_matvec == 2 and r.converged
    assert r.value == pytest.approx(2e6, rel=1e-13)
    assert abs(abs(float(r.vector @ Q[:, 0])) - 1.0) < 1e-12


def test_products_that_overflow_are_reported_nan_not_a_wrong_value():
    """Entries 1e200: every product's squared norm overflows, no iteration can be trusted. The row is
    reported NaN and not converged (never a finite wrong value such as 0); the other row of the batch,
    an ordinary diagonal operator, still gives its top value 3."""
    D = torch.tensor([[3e200, 1e200, -2e200, 5e199], [3.0, 1.0, -2.0, 0.5]], dtype=DT)
    v0 = torch.ones(2, 4, dtype=DT)
    for fn in (lanczos_top_eig, power_iteration_top_eig):
        r = fn(lambda V: D * V, v0, tol=1e-10, max_iter=5000)
        assert math.isnan(r.value[0]) and not r.converged[0], fn
        assert r.value[1] == pytest.approx(3.0, rel=1e-9) and r.converged[1], fn


# ---------------------------------------------------------------------- sweep: points (issue 21)
from lrtheory.core import sweep as SW  # noqa: E402


def _toydef(**kw):
    args = dict(name="t", chapter="c", description="", points=lambda scale: [], run_batch=lambda c, d: [],
                schema={"x": SW.Param("float", positive=True), "n": SW.Param("int", nonneg=True, default=3),
                        "s": SW.Param("str", choices=("a", "b"), default="a"), "f": SW.Param("bool", default=False)})
    args.update(kw)
    return SW.SweepDef(**args)


def test_param_check_normalizes_and_names_the_key_exactly():
    P = SW.Param
    assert P("float").check("x", 2) == 2.0 and type(P("float").check("x", 2)) is float
    assert type(P("int").check("n", np.int64(4))) is int and P("int").check("n", np.int64(4)) == 4
    assert P("float", positive=True).check("x", 1e-300) == 1e-300
    assert P("int", nonneg=True).check("n", 0) == 0 and P("float", nonneg=True).check("x", 0.0) == 0.0
    assert P("bool").check("f", True) is True and P("str", choices=("a",)).check("s", "a") == "a"
    assert P("int", choices=(1, 2)).check("n", 2) == 2
    cases = [
        (P("bool"), 1, r"^f must be a bool, got 1$"),
        (P("str"), 3, r"^f must be a string, got 3$"),
        (P("int"), True, r"^f must be an integer, got True$"),
        (P("int"), 2.0, r"^f must be an integer, got 2\.0$"),
        (P("float"), False, r"^f must be a number, got False$"),
        (P("float"), "1", r"^f must be a number, got '1'$"),
        (P("float"), math.inf, r"^f must be finite, got inf$"),
        (P("float"), math.nan, r"^f must be finite, got nan$"),
        (P("float", positive=True), 0.0, r"^f must be > 0, got 0\.0$"),
        (P("int", positive=True), -1, r"^f must be > 0, got -1$"),
        (P("float", nonneg=True), -0.5, r"^f must be >= 0, got -0\.5$"),
        (P("int", nonneg=True), -1, r"^f must be >= 0, got -1$"),
        (P("str", choices=("a", "b")), "c", r"^f must be one of \('a', 'b'\), got 'c'$"),
        (P("int", choices=(1, 2)), 3, r"^f must be one of \(1, 2\), got 3$"),
    ]
    for param, value, match in cases:
        with pytest.raises(ValueError, match=match):
            param.check("f", value)
    with pytest.raises(ValueError, match=r"^kind: unknown 'complex'; expected one of \('int', 'float', 'str', 'bool'\)$"):
        P("complex")


def test_sweep_definition_and_point_messages_exactly():
    with pytest.raises(ValueError, match=r"^name: expected a non-empty string, got ''$"):
        _toydef(name="")
    with pytest.raises(ValueError, match=r"^name: expected a non-empty string, got 3$"):
        _toydef(name=3)
    for bs in (0, True, 2.0):
        with pytest.raises(ValueError, match=rf"^batch_size: expected a positive integer, got {bs!r}$"):
            _toydef(batch_size=bs)
    assert _toydef(batch_size=1).batch_size == 1
    with pytest.raises(ValueError, match=r"^group_by: keys \['y', 'z'\] are not in the schema$"):
        _toydef(group_by=("x", "y", "z"))
    with pytest.raises(ValueError, match=r"^sweep: expected a SweepDef, got str \(the book's sweeps are "
                                         r"lrtheory\.verify\.registry\.sweeps\(\)\)$"):
        SW.make_points("t", [])
    sd = _toydef(check=lambda c: None if c["n"] < 10 else (_ for _ in ()).throw(ValueError("n too big")))
    cases = [
        ([{"x": 1.0}, 5], r"^sweep 't': point 1 5: expected a mapping, got int$"),
        ([{"x": 1.0, "y": 1, "a": 2}], r"^sweep 't': point 0 \{'x': 1\.0, 'y': 1, 'a': 2\}: unknown key\(s\) \['a', 'y'\]; "
                                       r"allowed: \['f', 'n', 's', 'x'\]$"),
        ([{"n": 1}], r"^sweep 't': point 0 \{'n': 1\}: missing key 'x'$"),
        ([{"x": -1.0}], r"^sweep 't': point 0 \{'x': -1\.0\}: x must be > 0, got -1\.0$"),
        ([{"x": 1.0, "n": 10}], r"^sweep 't': point 0 \{'x': 1\.0, 'n': 10\}: n too big$"),
    ]
    for configs, match in cases:
        with pytest.raises(ValueError, match=match):
            SW.make_points(sd, configs)
    # defaults fill absent keys; repeated configs (same key) are kept once, in first-seen order
    pts = SW.make_points(sd, [{"x": 2}, {"x": 1.0, "s": "b"}, {"x": 2.0, "n": 3}, {"x": 1, "s": "b", "f": False}])
    assert [p.config for p in pts] == [{"f": False, "n": 3, "s": "a", "x": 2.0}, {"f": False, "n": 3, "s": "b", "x": 1.0}]
    assert pts[0]["x"] == 2.0 and pts[0].items == (("f", False), ("n", 3), ("s", "a"), ("x", 2.0))
    text = json.dumps({"sweep": "t", "config": {"f": False, "n": 3, "s": "a", "x": 2.0}}, sort_keys=True,
                      separators=(",", ":"))
    assert pts[0].key == __import__("hashlib").sha256(text.encode()).hexdigest()
    # a default of None means required; a falsy default (0, False, "") still fills the key
    sd0 = _toydef(schema={"x": SW.Param("float", default=0.0), "f": SW.Param("bool", default=False)})
    assert SW.make_points(sd0, [{}])[0].config == {"f": False, "x": 0.0}


def test_make_batches_groups_in_first_seen_order_cut_at_batch_size():
    sd = _toydef(group_by=("s",), batch_size=2)
    pts = SW.make_points(sd, [{"x": float(i), "s": "ab"[i % 2 if i < 4 else 0]} for i in range(1, 8)])
    # s: x=1 b, 2 a, 3 b, 4 a, 5..7 a  -> group b first (x=1), then a
    got = [[p["x"] for p in b] for b in SW.make_batches(sd, pts)]
    assert got == [[1.0, 3.0], [2.0, 4.0], [5.0, 6.0], [7.0]]
    sd1 = _toydef(batch_size=3)
    assert [[p["x"] for p in b] for b in SW.make_batches(sd1, pts)] == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0]]
    assert SW.make_batches(sd1, []) == []


# ---------------------------------------------------------------------- sweep: running (issue 21)
import io  # noqa: E402


def test_fmt_time_and_progress_lines():
    assert [SW._fmt_time(s) for s in (0, 0.4, 59.6, 125, 3599.4, 3600, 3661)] == \
        ["0:00", "0:00", "1:00", "2:05", "59:59", "1:00:00", "1:01:01"]
    log = io.StringIO()
    bar = SW._Progress(log, "toy", 4, 1)
    bar.update(2)  # within `every` seconds of the last line, not the last point: no line in a log file
    bar.update(4)
    bar.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("toy [#####---------------] 1/4 points  25%  elapsed 0:00  ETA ?")
    assert lines[1] == "toy [####################] 4/4 points 100%  elapsed 0:00  ETA 0:00"

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    bar = SW._Progress(tty, "t", 2, 0)
    bar.update(1)
    bar.close()
    assert tty.getvalue().startswith("\rt [--------------------] 0/2 points   0%  elapsed 0:00  ETA ?")
    assert "\rt [##########----------] 1/2 points  50%  elapsed 0:00  ETA 0:00" in tty.getvalue()
    assert tty.getvalue().endswith("\n") and tty.getvalue().count("\n") == 1
    empty = io.StringIO()
    SW._Progress(empty, "e", 0, 0)
    assert empty.getvalue().startswith("e [--------------------] 0/0 points   0%")


def test_inline_executor_and_the_task_environment():
    ex = SW.InlineExecutor()
    f = ex.submit(lambda a, b=1: a + b, 2, b=5)
    assert f.done() and f.result() == 7
    bad = ex.submit(lambda: 1 / 0)
    assert isinstance(bad.exception(), ZeroDivisionError)
    ex.shutdown()
    with pytest.raises(RuntimeError, match=r"^cannot submit after shutdown$"):
        ex.submit(print)
    res, env = SW._run_task(lambda c, d: [{"x": x["x"], "d": str(d)} for x in c], [{"x": 1}, {"x": 2}], "cpu")
    assert res == [{"x": 1, "d": "cpu"}, {"x": 2, "d": "cpu"}]
    assert env["batch_points"] == 2 and env["batch_seconds"] >= 0 and env["device"] == "cpu"
    assert {"python", "host", "device", "torch", "numpy"} <= set(env) and "gpu" not in env


def _sweep_calls():
    calls = []

    def run_batch(configs, device):
        calls.append([c["x"] for c in configs])
        return [{"y": 2 * c["x"], "diverged": c["x"] > 3} for c in configs]

    sd = _toydef(points=lambda scale: [{"x": float(i)} for i in (range(1, 6) if scale == "ci" else range(1, 3))],
                 run_batch=run_batch, batch_size=2)
    return sd, calls


def test_run_sweep_reports_skips_fresh_and_stale(tmp_path):
    store = tmp_path / "r.jsonl"
    sd, calls = _sweep_calls()
    log = io.StringIO()
    r = SW.run_sweep(sd, "ci", store=store, progress=log, code_version="v1")
    assert calls == [[1.0, 2.0], [3.0, 4.0], [5.0]]
    assert (r.sweep, r.scale, r.total, r.skipped, r.computed, r.diverged, r.stale) == ("t", "ci", 5, 0, 5, 2, 0)
    assert r.store == str(store) and r.seconds >= 0
    assert [c["x"] for c, _ in r.rows] == [1.0, 2.0, 3.0, 4.0, 5.0] and r.rows[3][1] == {"y": 8.0, "diverged": True}
    assert log.getvalue().splitlines()[-1].startswith("t [####################] 5/5 points 100%")
    assert r.summary().startswith("sweep t (scale=ci): 5 points, 0 already stored, 5 computed in 0:0")
    assert r.summary().endswith(f"; 2 diverged; store {store}") and "note" not in r.summary()
    calls.clear()
    again = SW.run_sweep(sd, "ci", store=store, progress=False, code_version="v2")
    assert calls == [] and (again.skipped, again.computed, again.stale, again.diverged) == (5, 0, 5, 2)
    assert again.summary().endswith("\n  note: 5 stored points were computed by another code version "
                                    "(rerun with --fresh to recompute them)")
    fresh = SW.run_sweep(sd, "ci", store=store, progress=False, code_version="v2", fresh=True)
    assert calls == [[1.0, 2.0], [3.0, 4.0], [5.0]] and (fresh.skipped, fresh.computed, fresh.stale) == (0, 5, 0)
    calls.clear()
    part = SW.run_sweep(sd, "ci", store=tmp_path / "p.jsonl", progress=False, configs=[{"x": 7.0}, {"x": 1.0}])
    assert calls == [[7.0, 1.0]] and part.total == 2 and [c["x"] for c, _ in part.rows] == [7.0, 1.0]
    # the stored rows carry the version and the batch's environment
    row = S.open_store(store).keys([SW.make_points(sd, [{"x": 1.0}])[0].key])
    (only,) = row.values()
    assert only.code_version == "v2" and only.status == "ok" and only.environment["batch_points"] == 2
    # load_results: None when absent or incomplete (unless partial), else the sweep's order
    assert SW.load_results(sd, "ci", store=tmp_path / "none.sqlite") is None
    assert [c["x"] for c, _ in SW.load_results(sd, "ci", store=store)] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert SW.load_results(sd, "ci", store=tmp_path / "p.jsonl") is None
    assert [c["x"] for c, _ in SW.load_results(sd, "ci", store=tmp_path / "p.jsonl", partial=True)] == [1.0]
    assert SW.load_results(sd, "full", store=tmp_path / "p.jsonl", partial=True) == [({"f": False, "n": 3, "s": "a",
                                                                                      "x": 1.0}, {"y": 2.0, "diverged": False})]


def test_run_sweep_wrong_result_count_and_a_failing_batch_keep_earlier_batches(tmp_path):
    store = tmp_path / "r.jsonl"
    sd, calls = _sweep_calls()
    short = dataclasses.replace(sd, run_batch=lambda configs, device: [{"y": 0}])
    with pytest.raises(RuntimeError, match=r"^sweep 't': run_batch returned 1 results for 2 points$"):
        SW.run_sweep(short, "ci", store=store, progress=False)

    def flaky(configs, device):
        if configs[0]["x"] == 3.0:
            raise OSError("lost")
        return [{"y": c["x"]} for c in configs]

    with pytest.raises(OSError, match="lost"):
        SW.run_sweep(dataclasses.replace(sd, run_batch=flaky), "ci", store=store, progress=False)
    assert len(S.open_store(store).rows("t")) == 2  # the first batch stays stored
    with pytest.raises(ValueError, match=r"^sweep 't': point 0 \{'x': 0\.0\}: x must be > 0, got 0\.0$"):
        SW.run_sweep(sd, "ci", store=store, progress=False, configs=[{"x": 0.0}])


def test_random_start_in_the_requested_dtype_for_every_method():
    """With v0 an int, ``dtype`` is the start's (and so the iteration's) dtype, for all three methods."""
    A = torch.diag(torch.tensor([3.0, -5.0, 1.0, 0.5], dtype=torch.float32))
    for fn in (lanczos_top_eig, power_iteration_top_eig, eigsh_top_eig):
        r = fn(lambda v: A @ v, 4, dtype=torch.float32, tol=1e-6)
        assert r.vector.dtype == torch.float32, fn
        assert r.value == pytest.approx(3.0, rel=1e-5), fn


# ---- sweep.py: what a mutation-testing pass showed untested (environment, caller's stores, defaults)
def test_run_task_environment_and_timing():
    import platform
    import time

    t0 = time.perf_counter()
    res, env = SW._run_task(lambda configs, d: [dict(c) for c in configs], [{"x": 1}], "cpu")
    wall = time.perf_counter() - t0
    assert res == [{"x": 1}]
    assert env["torch"] == torch.__version__ and env["numpy"] == np.__version__
    assert env["python"] == platform.python_version() and env["device"] == "cpu"
    # seconds of the batch, rounded to the millisecond: a float, never more than the call's wall time
    s = env["batch_seconds"]
    assert type(s) is float and 0 <= s <= wall + 5e-4 and round(s, 3) == s
    slow, env = SW._run_task(lambda configs, d: (time.sleep(0.0123), [1])[1], [{}], None)
    assert 0.012 <= env["batch_seconds"] <= 1.0 and round(env["batch_seconds"] * 1000) == env["batch_seconds"] * 1000


def test_a_callers_store_object_is_used_and_left_open(tmp_path):
    """run_sweep, load_results and sweep_status use a store object as given (keys/put) and never close it:
    the caller's SQLite connection still answers after each."""
    from lrtheory.core.recheck import sweep_status

    sd, calls = _sweep_calls()
    st = S.open_store(tmp_path / "r.sqlite")
    r = SW.run_sweep(sd, "ci", store=st, progress=False)
    assert r.computed == 5 and len(st.rows("t")) == 5
    assert [c["x"] for c, _ in SW.load_results(sd, "ci", store=st)] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert len(st.rows("t")) == 5
    other = _toydef(name="u", points=lambda scale: [{"x": 9.0}], run_batch=lambda c, d: [{"y": 0}] * len(c))
    SW.run_sweep(other, "ci", store=st, progress=False)
    s = sweep_status(sd, "full", store=st)  # full: x = 1, 2 are stored; x = 3, 4, 5 of the sweep are other points
    assert (s.total, s.stored, s.stale) == (2, 2, 3)  # the other sweep's row is not this sweep's stale row
    assert len(st.rows("t")) == 5 and len(st.rows("u")) == 1
    st.close()


def test_load_results_default_scale_and_default_code_version(tmp_path):
    sd, calls = _sweep_calls()
    sd = dataclasses.replace(sd, points=lambda scale: {"ci": [{"x": 5.0}], "full": [{"x": 1.0}, {"x": 2.0}]}[scale])
    store = tmp_path / "r.sqlite"
    SW.run_sweep(sd, "full", store=store, progress=False)
    assert SW.load_results(sd, store=store) == SW.load_results(sd, "full", store=store) is not None
    assert [c["x"] for c, _ in SW.load_results(sd, store=store)] == [1.0, 2.0]
    (row, *_) = S.open_store(store).rows("t")
    assert row.code_version == "unknown"  # the documented default of run_sweep's code_version


def test_summary_keeps_its_first_line_under_the_stale_note(tmp_path):
    sd, _ = _sweep_calls()
    SW.run_sweep(sd, "ci", store=tmp_path / "r.jsonl", progress=False, code_version="v1")
    again = SW.run_sweep(sd, "ci", store=tmp_path / "r.jsonl", progress=False, code_version="v2")
    first, note = again.summary().split("\n")
    assert first.startswith("sweep t (scale=ci): 5 points, 5 already stored, 0 computed in ")
    assert note == "  note: 5 stored points were computed by another code version (rerun with --fresh to recompute them)"


def test_run_sweep_uses_the_callers_executor_and_reports_on_stderr_by_default(tmp_path, capsys):
    sd, calls = _sweep_calls()

    class Counting(SW.InlineExecutor):
        submitted = 0

        def submit(self, fn, /, *args, **kwargs):
            Counting.submitted += 1
            return super().submit(fn, *args, **kwargs)

    ex = Counting()
    r = SW.run_sweep(sd, "ci", store=tmp_path / "r.jsonl", executor=ex, progress=False)
    assert r.computed == 5 and Counting.submitted == 3  # three batches of at most 2, all through the caller's
    SW.run_sweep(sd, "full", store=tmp_path / "s.jsonl")  # progress=None: the bar goes to stderr
    out, err = capsys.readouterr()
    assert out == "" and "t [####################] 2/2 points 100%" in err
