"""The results store: one SQLite file, one row per point, and the exact value encoding it keeps.

:func:`canonical_json` is the text a point's key hashes; :func:`encode_value` /
:func:`decode_value` keep a whole measurement (dataclasses, NumPy arrays bit for bit, NaN and
inf) as JSON; :class:`ResultStore` is the SQLite file, safe for several writers.
"""
from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

__all__ = ["ENV_CACHE", "STATUSES", "canonical_json", "encode_value", "decode_value", "default_store_path",
           "StoredRow", "ResultStore", "TextStore", "open_store"]

#: Environment variable naming the folder of the default store.
ENV_CACHE = "LRTHEORY_CACHE"

#: A stored point's status.
STATUSES = ("ok", "diverged")


def canonical_json(obj: Any) -> str:
    """Canonical JSON text of ``obj``: sorted keys, no spaces, non-finite floats as null.

    NumPy scalars and arrays become Python numbers and lists. This is the text
    hashed for a point's key and stored for configs and results, so equal
    values always give equal text.

    Example
    -------
    >>> canonical_json({"b": 1, "a": float("nan")})
    '{"a":null,"b":1}'
    """
    return json.dumps(_plain(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _plain(obj: Any) -> Any:
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        x = float(obj)
        return x if math.isfinite(x) else None
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if hasattr(obj, "tolist"):  # numpy / torch arrays and scalars
        return _plain(obj.tolist())
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    raise TypeError(f"cannot store a value of type {type(obj).__name__}: {obj!r}")


def encode_value(obj: Any) -> Any:
    """Encode ``obj`` as plain JSON data that :func:`decode_value` turns back into an equal object.

    Exact, bit for bit: NumPy arrays (any numeric dtype, NaN and inf included) are kept
    as base64 bytes with dtype and shape; torch tensors become NumPy arrays; non-finite
    floats, tuples and (frozen) dataclasses are tagged. Used to store a whole
    measurement (e.g. a chapter's ``measure_*`` dataclass) as one result.

    Raises
    ------
    TypeError
        For a value it cannot encode (object arrays, arbitrary classes, non-str dict keys).

    Example
    -------
    >>> import numpy as np
    >>> a = np.array([1.0, np.nan, np.inf])
    >>> b = decode_value(json.loads(json.dumps(encode_value((a, 2.5)))))
    >>> isinstance(b, tuple) and np.array_equal(b[0], a, equal_nan=True)
    True
    """
    import dataclasses

    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, numbers.Integral) and not hasattr(obj, "dtype"):
        return int(obj)
    if isinstance(obj, float) and not hasattr(obj, "dtype"):
        return obj if math.isfinite(obj) else {"__float__": repr(obj)}
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency
        np = None
    if np is not None:
        if type(obj).__module__.startswith("torch"):
            obj = obj.detach().cpu().numpy()
        if isinstance(obj, np.generic):
            obj = np.asarray(obj)
            return {"__ndarray__": _b64(obj), "dtype": obj.dtype.str, "shape": [], "scalar": True}
        if isinstance(obj, np.ndarray):
            if obj.dtype.hasobject:
                raise TypeError("cannot encode an object array")
            return {"__ndarray__": _b64(obj), "dtype": obj.dtype.str, "shape": list(obj.shape)}
    if isinstance(obj, tuple) and not hasattr(obj, "_fields"):
        return {"__tuple__": [encode_value(v) for v in obj]}
    if isinstance(obj, list):
        return [encode_value(v) for v in obj]
    if isinstance(obj, Mapping):
        if not all(isinstance(k, str) and not k.startswith("__") for k in obj):
            raise TypeError(f"cannot encode a dict whose keys are not plain strings: {list(obj)[:5]}")
        return {k: encode_value(v) for k, v in obj.items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        cls = type(obj)
        return {"__dataclass__": f"{cls.__module__}:{cls.__qualname__}",
                "fields": {f.name: encode_value(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}}
    raise TypeError(f"cannot encode a value of type {type(obj).__name__}")


def _b64(a) -> str:
    import base64

    import numpy as np

    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")


def decode_value(obj: Any) -> Any:
    """Inverse of :func:`encode_value` (dataclasses are re-imported by module and name)."""
    if isinstance(obj, list):
        return [decode_value(v) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__float__" in obj:
        return float(obj["__float__"])
    if "__ndarray__" in obj:
        import base64

        import numpy as np

        a = np.frombuffer(base64.b64decode(obj["__ndarray__"]), dtype=np.dtype(obj["dtype"]))
        a = a.reshape(obj["shape"]).copy()
        return a[()] if obj.get("scalar") else a
    if "__tuple__" in obj:
        return tuple(decode_value(v) for v in obj["__tuple__"])
    if "__dataclass__" in obj:
        import importlib

        module, _, qualname = obj["__dataclass__"].partition(":")
        cls = importlib.import_module(module)
        for part in qualname.split("."):
            cls = getattr(cls, part)
        return cls(**{k: decode_value(v) for k, v in obj["fields"].items()})
    return {k: decode_value(v) for k, v in obj.items()}


def default_store_path() -> Path:
    """``$LRTHEORY_CACHE/results.sqlite`` if set, else ``$XDG_CACHE_HOME`` or ``~/.cache``
    ``/lrtheory/results.sqlite``."""
    env = os.environ.get(ENV_CACHE, "").strip()
    if env:
        return Path(env).expanduser() / "results.sqlite"
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lrtheory" / "results.sqlite"


@dataclass(frozen=True)
class StoredRow:
    """One stored point (``config``, ``result``, ``environment`` are decoded JSON)."""

    key: str
    sweep: str
    config: Dict[str, Any]
    result: Dict[str, Any]
    status: str
    code_version: str
    environment: Dict[str, Any]
    created: float


_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key          TEXT PRIMARY KEY NOT NULL,
    sweep        TEXT NOT NULL,
    config       TEXT NOT NULL,
    result       TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('ok', 'diverged')),
    code_version TEXT NOT NULL,
    environment  TEXT NOT NULL,
    created      REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS results_sweep ON results (sweep);
"""


class ResultStore:
    """SQLite results store: one row per point, keyed by the point's hash.

    Safe for several writers at once (processes or machines sharing a local
    disk): WAL journal, a busy timeout, every write one ``BEGIN IMMEDIATE``
    transaction, and ``INSERT ... ON CONFLICT`` so a key is never duplicated.
    Use it from one thread (the driver's).

    Parameters
    ----------
    path : str or Path, optional
        The SQLite file (created with its folder); default :func:`default_store_path`.
    timeout : float
        Seconds to wait for another writer's lock before failing.

    Example
    -------
    >>> import tempfile, os
    >>> with ResultStore(os.path.join(tempfile.mkdtemp(), "r.sqlite")) as store:
    ...     store.count()
    0
    """

    def __init__(self, path: Union[str, Path, None] = None, *, timeout: float = 60.0) -> None:
        self.path = Path(path).expanduser() if path is not None else default_store_path()
        if self.path.exists() and self.path.is_dir():
            raise ValueError(f"store: {str(self.path)!r} is a folder; expected a file path")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None)
        self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = FULL")
        with self._transaction():
            for stmt in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                self._conn.execute(stmt)

    # -- plumbing
    @contextlib.contextmanager
    def _transaction(self):
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error): takes the write lock up
        front, so two writers queue on the busy timeout instead of deadlocking."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reads
    def keys(self, keys: Iterable[str]) -> Dict[str, StoredRow]:
        """The stored rows among ``keys`` (a dict key -> :class:`StoredRow`)."""
        keys = list(keys)
        out: Dict[str, StoredRow] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            q = f"SELECT * FROM results WHERE key IN ({','.join('?' * len(chunk))})"
            for r in self._conn.execute(q, chunk):
                row = _decode(r)
                out[row.key] = row
        return out

    def rows(self, sweep: Optional[str] = None) -> List[StoredRow]:
        """Every stored row (of one sweep if given), ordered by key."""
        if sweep is None:
            cur = self._conn.execute("SELECT * FROM results ORDER BY key")
        else:
            cur = self._conn.execute("SELECT * FROM results WHERE sweep = ? ORDER BY key", (sweep,))
        return [_decode(r) for r in cur]

    def count(self, sweep: Optional[str] = None) -> int:
        """Number of stored rows (of one sweep if given)."""
        if sweep is None:
            return self._conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        return self._conn.execute("SELECT COUNT(*) FROM results WHERE sweep = ?", (sweep,)).fetchone()[0]

    # -- writes
    def put(self, entries: Sequence[Tuple[Any, Mapping[str, Any]]], *, code_version: str,
            environment: Mapping[str, Any], replace: bool = False) -> int:
        """Store ``(point, result)`` pairs in one transaction; return how many rows were written.

        The status is ``"diverged"`` when ``result.get("diverged")`` is true, else
        ``"ok"``. With ``replace=False`` an existing key is left as it is (the
        first writer wins); with ``replace=True`` it is overwritten.

        Raises
        ------
        TypeError
            If a result holds a value JSON cannot store.
        """
        now = time.time()
        env = canonical_json(environment)
        rows = []
        for point, result in entries:
            if not isinstance(result, Mapping):
                raise TypeError(f"result of {point.config!r}: expected a dict, got {type(result).__name__}")
            status = "diverged" if bool(result.get("diverged", False)) else "ok"
            rows.append((point.key, point.sweep, canonical_json(point.config), canonical_json(result),
                         status, code_version, env, now))
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        tail = "" if replace else " ON CONFLICT(key) DO NOTHING"
        with self._transaction():
            before = self._conn.total_changes
            self._conn.executemany(f"{verb} INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?){tail}", rows)
            return self._conn.total_changes - before

    def delete(self, sweep: str) -> int:
        """Delete every row of ``sweep``; return how many."""
        with self._transaction():
            return self._conn.execute("DELETE FROM results WHERE sweep = ?", (sweep,)).rowcount


def _decode(r) -> StoredRow:
    return StoredRow(key=r[0], sweep=r[1], config=json.loads(r[2]), result=json.loads(r[3]), status=r[4],
                     code_version=r[5], environment=json.loads(r[6]), created=r[7])


class TextStore:
    """A results store as one small, sorted, diffable text file: a JSON object per line.

    The same interface as :class:`ResultStore` (``keys``, ``rows``, ``count``, ``put``,
    ``delete``, a context manager). Each line is the canonical JSON of one point: ``key``,
    ``sweep``, ``config``, ``result``, ``status``, ``code_version``, ``environment``; lines are
    sorted by key and carry no timestamp (the environment keeps the batch's seconds, which a
    recheck uses to pick cheap points), so a changed result is a small diff. Meant to be committed (a chapter's
    reference results); one writer at a time, every write atomic (a temporary file renamed
    over the old one).

    Example
    -------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "reference.jsonl")
    >>> with TextStore(path) as st:
    ...     st.count()
    0
    """

    def __init__(self, path: Union[str, Path]) -> None:
        self.path = Path(path).expanduser()
        if self.path.is_dir():
            raise ValueError(f"store: {str(self.path)!r} is a folder; expected a file path")
        self._rows: Dict[str, StoredRow] = {}
        if self.path.is_file():
            for n, line in enumerate(self.path.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    d = json.loads(line)
                    row = StoredRow(key=d["key"], sweep=d["sweep"], config=d["config"], result=d["result"],
                                    status=d["status"], code_version=d["code_version"],
                                    environment=d["environment"], created=0.0)
                except (ValueError, KeyError, TypeError) as exc:
                    raise ValueError(f"store: {self.path}:{n} is not a stored point ({exc})") from exc
                self._rows[row.key] = row

    def close(self) -> None:
        """Nothing to release (every write is already on disk)."""

    def __enter__(self) -> "TextStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def keys(self, keys: Iterable[str]) -> Dict[str, StoredRow]:
        """The stored rows among ``keys``."""
        return {k: self._rows[k] for k in keys if k in self._rows}

    def rows(self, sweep: Optional[str] = None) -> List[StoredRow]:
        """Every stored row (of one sweep if given), ordered by key."""
        return [r for k, r in sorted(self._rows.items()) if sweep is None or r.sweep == sweep]

    def count(self, sweep: Optional[str] = None) -> int:
        """Number of stored rows (of one sweep if given)."""
        return len(self.rows(sweep))

    def put(self, entries: Sequence[Tuple[Any, Mapping[str, Any]]], *, code_version: str,
            environment: Mapping[str, Any], replace: bool = False) -> int:
        """Store ``(point, result)`` pairs and rewrite the file; see :meth:`ResultStore.put`."""
        env = json.loads(canonical_json(environment))
        written = 0
        for point, result in entries:
            if not isinstance(result, Mapping):
                raise TypeError(f"result of {point.config!r}: expected a dict, got {type(result).__name__}")
            if point.key in self._rows and not replace:
                continue
            self._rows[point.key] = StoredRow(
                key=point.key, sweep=point.sweep, config=json.loads(canonical_json(point.config)),
                result=json.loads(canonical_json(result)),
                status="diverged" if bool(result.get("diverged", False)) else "ok",
                code_version=code_version, environment=env, created=0.0)
            written += 1
        if written:
            self._write()
        return written

    def delete(self, sweep: str) -> int:
        """Delete every row of ``sweep``; return how many."""
        gone = [k for k, r in self._rows.items() if r.sweep == sweep]
        for k in gone:
            del self._rows[k]
        if gone:
            self._write()
        return len(gone)

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lines = [canonical_json({"key": r.key, "sweep": r.sweep, "config": r.config, "result": r.result,
                                 "status": r.status, "code_version": r.code_version,
                                 "environment": r.environment}) for _, r in sorted(self._rows.items())]
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(line + "\n" for line in lines))
        os.replace(tmp, self.path)


def open_store(store: Any = None):
    """A store object for ``store``: a store as it is; a path ending in ``.jsonl`` a
    :class:`TextStore`; any other path (or None, the default path) a :class:`ResultStore`."""
    if hasattr(store, "keys") and hasattr(store, "put"):
        return store
    if store is not None and str(store).endswith(".jsonl"):
        return TextStore(store)
    return ResultStore(store)
