"""Sweeps that survive interruption and scale out: points, a results store, an executor hook.

A *sweep* is a list of independent *points*. Each point is a small config (a
mapping of JSON scalars: ``{"depth": 3, "width": 64, "eta": 0.1, "seed": 0}``)
validated against the sweep's schema and frozen into a :class:`Point`, whose
key is the SHA-256 of the canonical JSON of ``{"sweep": name, "config": config}``.
A :class:`SweepDef` says which points a scale has, how to run a *batch* of
points at once (the batched trainer trains K models in one computation) and
which keys must agree within a batch (e.g. the architecture).

:func:`run_sweep` validates every point before any work starts, skips the
points already in the :class:`ResultStore`, cuts the rest into batches, hands
them to a :class:`concurrent.futures.Executor`, and writes each finished
batch's rows in one SQLite transaction as soon as it comes back. A sweep killed
at any moment (even ``SIGKILL``) and started again computes exactly the points
that were not stored: none lost, none duplicated. Batches are cut from the
*full* point list, so a restart sees the same batches; and each point's result
depends only on its config (its seed is in the config), never on the batch it
shared or the executor that ran it.

Execution is delegated, never scheduled here:

* default: in-process (:class:`InlineExecutor`, runs each batch when it is
  submitted, one at a time);
* any :class:`concurrent.futures.Executor`, e.g. a ``ProcessPoolExecutor``;
* a Dask cluster, unchanged: ``distributed.Client(...).get_executor()`` is a
  ``concurrent.futures`` executor. Workers only compute; the *driver* process
  writes the store, so the store needs no shared file system.

The store is one SQLite file (default ``$LRTHEORY_CACHE/results.sqlite``, else
``~/.cache/lrtheory/results.sqlite``), one row per point: key, sweep, config,
result, status (``"ok"`` / ``"diverged"``), code version, environment, time.
WAL journal plus a busy timeout make concurrent writers safe; inserts cannot
duplicate a key. A diverged point is a result like any other: stored as
``"diverged"`` and not recomputed.

Example
-------
>>> from lrtheory.core.sweep import run_sweep, load_results
>>> report = run_sweep("toy", "ci", store="/tmp/lrtheory-doc.sqlite", progress=False)  # doctest: +SKIP
>>> rows = load_results("toy", "ci", store="/tmp/lrtheory-doc.sqlite")                   # doctest: +SKIP
>>> config, result = rows[0]                                                               # doctest: +SKIP

On several processes of one machine, with Dask (same results, row for row; in a
script, keep this under ``if __name__ == "__main__":``, worker processes import it)::

    from dask.distributed import Client, LocalCluster
    with LocalCluster(n_workers=4, threads_per_worker=1) as cluster, Client(cluster) as client:
        run_sweep("max_lr_grid", "full", executor=client.get_executor())

On a cluster: start a scheduler and workers (each worker machine with the same
``lrtheory`` installed), then point the driver at the scheduler::

    dask scheduler --port 8786                      # on the scheduler host
    dask worker tcp://SCHEDULER:8786 --nthreads 1   # on each worker (one per GPU)
    lrtheory sweep catapult --scale full --executor dask://SCHEDULER:8786

``dask://HOST:PORT`` is ``distributed.Client("tcp://HOST:PORT").get_executor()``.
The store stays on the driver's disk.
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import json
import math
import numbers
import os
import platform
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

__all__ = [
    "ENV_CACHE",
    "STATUSES",
    "Param",
    "Point",
    "SweepDef",
    "SweepReport",
    "StoredRow",
    "ResultStore",
    "InlineExecutor",
    "default_store_path",
    "canonical_json",
    "encode_value",
    "decode_value",
    "make_points",
    "make_batches",
    "run_sweep",
    "load_results",
    "get_sweep",
    "code_version",
    "add_cli",
]

#: Environment variable naming the cache folder that holds ``results.sqlite``.
ENV_CACHE = "LRTHEORY_CACHE"
#: Status of a stored point.
STATUSES = ("ok", "diverged")
_KINDS = ("int", "float", "str", "bool")


# ---------------------------------------------------------------------------------------------
# points: schema, validation, canonical hashing
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Param:
    """One key of a sweep's config: its type and range.

    Parameters
    ----------
    kind : {"int", "float", "str", "bool"}
        ``"float"`` accepts ints (stored as float); every float must be finite.
    positive : bool
        Require ``> 0`` (widths, depths, learning rates).
    nonneg : bool
        Require ``>= 0`` (seeds, step counts that may be zero).
    choices : tuple, optional
        Allowed values.
    default : optional
        Used when the key is absent; ``None`` means the key is required.

    Example
    -------
    >>> Param("float", positive=True).check("eta", 0.1)
    0.1
    """

    kind: str
    positive: bool = False
    nonneg: bool = False
    choices: Optional[Tuple[Any, ...]] = None
    default: Any = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"kind: unknown {self.kind!r}; expected one of {_KINDS}")

    def check(self, name: str, value: Any) -> Any:
        """Return ``value`` normalized to the kind, or raise ``ValueError`` naming ``name``."""
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be a bool, got {value!r}")
        elif self.kind == "str":
            if not isinstance(value, str):
                raise ValueError(f"{name} must be a string, got {value!r}")
        elif self.kind == "int":
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ValueError(f"{name} must be an integer, got {value!r}")
            value = int(value)
        else:  # float
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise ValueError(f"{name} must be a number, got {value!r}")
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value!r}")
        if self.kind in ("int", "float"):
            if self.positive and not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
            if self.nonneg and not value >= 0:
                raise ValueError(f"{name} must be >= 0, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{name} must be one of {self.choices}, got {value!r}")
        return value


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


@dataclass(frozen=True)
class Point:
    """A validated, frozen, hashable sweep point.

    Attributes
    ----------
    sweep : str
        Name of the sweep it belongs to (part of the key).
    items : tuple of (str, value)
        The config, sorted by key.
    key : str
        SHA-256 hex digest of ``canonical_json({"sweep": sweep, "config": config})``.
    """

    sweep: str
    items: Tuple[Tuple[str, Any], ...]
    key: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.key:
            text = canonical_json({"sweep": self.sweep, "config": dict(self.items)})
            object.__setattr__(self, "key", hashlib.sha256(text.encode()).hexdigest())

    @property
    def config(self) -> Dict[str, Any]:
        """The config as a fresh ``dict``."""
        return dict(self.items)

    def __getitem__(self, name: str) -> Any:
        return dict(self.items)[name]


def _validate_config(sweep: "SweepDef", index: int, config: Any) -> Point:
    where = f"sweep {sweep.name!r}: point {index} {config!r}"
    if not isinstance(config, Mapping):
        raise ValueError(f"{where}: expected a mapping, got {type(config).__name__}")
    unknown = sorted(set(map(str, config)) - set(sweep.schema))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(sweep.schema)}")
    out = {}
    for name, param in sweep.schema.items():
        if name in config:
            value = config[name]
        elif param.default is not None:
            value = param.default
        else:
            raise ValueError(f"{where}: missing key {name!r}")
        try:
            out[name] = param.check(name, value)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    if sweep.check is not None:
        try:
            sweep.check(dict(out))
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    return Point(sweep.name, tuple(sorted(out.items())))


# ---------------------------------------------------------------------------------------------
# sweep definitions
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepDef:
    """A named sweep: its points per scale and how to run a batch of them.

    Parameters
    ----------
    name : str
        Unique name, part of every point's key.
    chapter : str
        The chapter (result module) the sweep serves, e.g. ``"sharpness"``;
        ``lrtheory sweep CHAPTER`` runs every sweep of that chapter.
    description : str
        One line for ``lrtheory sweep --list``.
    points : callable(scale) -> list of dict
        The configs of scale ``"ci"`` or ``"full"``.
    run_batch : callable(configs, device) -> list of dict
        Runs the points of one batch (a list of config dicts, same values on
        ``group_by``) on ``device`` and returns one JSON-able result dict per
        point, in order. A point's result must depend only on its config (seed
        in the config). ``result["diverged"] = True`` marks a diverged point.
        Must be a module-level function (workers import it by name).
    schema : dict of str -> Param
        Allowed keys; unknown keys, wrong types, out-of-range values are rejected.
    group_by : tuple of str
        Keys whose values must be equal within a batch.
    batch_size : int
        Most points per batch.
    check : callable(config) -> None, optional
        Extra validation across keys; raises ``ValueError``.
    """

    name: str
    chapter: str
    description: str
    points: Callable[[str], Sequence[Mapping[str, Any]]]
    run_batch: Callable[[List[Dict[str, Any]], Any], List[Mapping[str, Any]]]
    schema: Mapping[str, Param]
    group_by: Tuple[str, ...] = ()
    batch_size: int = 64
    check: Optional[Callable[[Dict[str, Any]], None]] = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name: expected a non-empty string, got {self.name!r}")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {self.batch_size!r}")
        missing = [k for k in self.group_by if k not in self.schema]
        if missing:
            raise ValueError(f"group_by: keys {missing} are not in the schema")


def get_sweep(name: Union[str, SweepDef]) -> SweepDef:
    """The registered :class:`SweepDef` called ``name`` (see :data:`lrtheory.sweeps.SWEEPS`).

    Raises
    ------
    ValueError
        If no sweep has that name.
    """
    if isinstance(name, SweepDef):
        return name
    from lrtheory.sweeps import SWEEPS

    if name not in SWEEPS:
        raise ValueError(f"sweep: unknown sweep {name!r}; known: {sorted(SWEEPS)}")
    return SWEEPS[name]


def make_points(sweep: Union[str, SweepDef], configs: Iterable[Mapping[str, Any]]) -> List[Point]:
    """Validate every config of ``sweep`` and freeze it into a :class:`Point`.

    All configs are checked before anything else happens; repeated configs
    (same key) are kept once, in first-seen order.

    Raises
    ------
    ValueError
        Naming the sweep, the index and the config of the first bad point, and
        what is wrong with it (unknown key, missing key, non-positive width,
        ``eta <= 0``, non-finite value, ...).

    Example
    -------
    >>> make_points("toy", [{"x": 1, "seed": 0}])[0].config
    {'delay': 0.0, 'seed': 0, 'x': 1.0}
    """
    sweep = get_sweep(sweep)
    points, seen = [], set()
    for i, config in enumerate(configs):
        p = _validate_config(sweep, i, config)
        if p.key not in seen:
            seen.add(p.key)
            points.append(p)
    return points


def make_batches(sweep: SweepDef, points: Sequence[Point]) -> List[List[Point]]:
    """Cut ``points`` into batches: equal ``group_by`` values, at most ``batch_size`` each.

    Groups appear in order of their first point; within a group, points keep
    their order. The cut depends only on the list given (pass the full list so
    that a restarted sweep sees the same batches).
    """
    groups: Dict[Tuple[Any, ...], List[Point]] = {}
    for p in points:
        cfg = dict(p.items)
        groups.setdefault(tuple(cfg[k] for k in sweep.group_by), []).append(p)
    batches = []
    for members in groups.values():
        for i in range(0, len(members), sweep.batch_size):
            batches.append(members[i:i + sweep.batch_size])
    return batches


# ---------------------------------------------------------------------------------------------
# the store
# ---------------------------------------------------------------------------------------------
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
    >>> with ResultStore("/tmp/lrtheory-doc.sqlite") as store:   # doctest: +SKIP
    ...     rows = store.rows("toy")
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
    def put(self, entries: Sequence[Tuple[Point, Mapping[str, Any]]], *, code_version: str,
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


# ---------------------------------------------------------------------------------------------
# versions and environment
# ---------------------------------------------------------------------------------------------
_CODE_VERSION: Optional[str] = None


def code_version() -> str:
    """``lrtheory.__version__``, plus ``+g<commit>`` (and ``.dirty``) when run from a git checkout."""
    global _CODE_VERSION
    if _CODE_VERSION is None:
        import lrtheory

        version = getattr(lrtheory, "__version__", "unknown")
        root = Path(lrtheory.__file__).resolve().parent.parent
        try:
            if not (root / "pyproject.toml").is_file():  # an installed copy: no checkout to ask
                raise OSError
            commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                                    text=True, timeout=10)
            if commit.returncode == 0 and commit.stdout.strip():
                version += "+g" + commit.stdout.strip()
                dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "lrtheory"],
                                       cwd=root, capture_output=True, text=True, timeout=10)
                if dirty.returncode == 0 and dirty.stdout.strip():
                    version += ".dirty"
        except (OSError, subprocess.SubprocessError):
            pass
        _CODE_VERSION = version
    return _CODE_VERSION


def _environment(device: Any) -> Dict[str, Any]:
    env = {"python": platform.python_version(), "host": socket.gethostname(), "device": str(device)}
    try:
        import torch

        env["torch"] = torch.__version__
        if device is not None and str(device).startswith("cuda") and torch.cuda.is_available():
            env["gpu"] = torch.cuda.get_device_name(torch.device(device))
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    try:
        import numpy

        env["numpy"] = numpy.__version__
    except ImportError:  # pragma: no cover
        pass
    return env


# ---------------------------------------------------------------------------------------------
# execution
# ---------------------------------------------------------------------------------------------
class InlineExecutor(cf.Executor):
    """A :class:`concurrent.futures.Executor` that runs each call in the caller, at submit time.

    The default executor of :func:`run_sweep`: no threads, no processes, exceptions
    land in the returned future.
    """

    def __init__(self) -> None:
        self._shutdown = False

    def submit(self, fn, /, *args, **kwargs) -> cf.Future:  # noqa: D102
        if self._shutdown:
            raise RuntimeError("cannot submit after shutdown")
        fut: cf.Future = cf.Future()
        fut.set_running_or_notify_cancel()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - delivered through the future
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            fut.set_exception(exc)
        return fut

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:  # noqa: D102
        self._shutdown = True


def _run_task(run_batch: Callable, configs: List[Dict[str, Any]], device: Optional[str]):
    """What a worker runs: one batch on its own device; returns (results, environment)."""
    from lrtheory.core.device import resolve_device

    dev = resolve_device(device)
    t0 = time.perf_counter()
    results = list(run_batch(configs, dev))
    env = _environment(dev)
    env["batch_seconds"] = round(time.perf_counter() - t0, 3)
    env["batch_points"] = len(configs)
    return results, env


@dataclass
class SweepReport:
    """What :func:`run_sweep` returns.

    Attributes
    ----------
    sweep, scale : str
    store : str
        Path of the SQLite store.
    total : int
        Points in the sweep.
    skipped : int
        Points already stored at the start (not recomputed).
    computed : int
        Points computed and stored by this run.
    diverged : int
        Points of the sweep stored as diverged (after the run).
    seconds : float
    stale : int
        Stored points of the sweep computed by another code version.
    rows : list of (config, result)
        Every point's config and stored result, in the sweep's order.
    """

    sweep: str
    scale: str
    store: str
    total: int
    skipped: int = 0
    computed: int = 0
    diverged: int = 0
    seconds: float = 0.0
    stale: int = 0
    rows: List[Tuple[Dict[str, Any], Dict[str, Any]]] = field(default_factory=list, repr=False)

    def summary(self) -> str:
        """One paragraph for people."""
        s = (f"sweep {self.sweep} (scale={self.scale}): {self.total} points, {self.skipped} already stored, "
             f"{self.computed} computed in {_fmt_time(self.seconds)}; {self.diverged} diverged; "
             f"store {self.store}")
        if self.stale:
            s += (f"\n  note: {self.stale} stored points were computed by another code version "
                  f"(rerun with --fresh to recompute them)")
        return s


class _Progress:
    """``[#####-----] 12/40 points 30%  elapsed 0:12  ETA 0:28`` on a stream; plain text.

    On a terminal the line is redrawn in place; elsewhere (a log file) a new line is
    written at most every ``every`` seconds, and at the end.
    """

    every = 5.0

    def __init__(self, stream, label: str, total: int, done: int) -> None:
        self.stream, self.label, self.total, self.done0 = stream, label, total, done
        self.t0 = time.monotonic()
        self.last = -math.inf
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.update(done)

    def update(self, done: int) -> None:
        now = time.monotonic()
        if not self.tty and done < self.total and now - self.last < self.every:
            return  # a log file gets one line per `every` seconds, plus the last one
        self.last = now
        total = max(self.total, 1)
        frac = done / total
        bar = "#" * int(round(20 * frac)) + "-" * (20 - int(round(20 * frac)))
        elapsed = time.monotonic() - self.t0
        new = done - self.done0
        eta = "?" if new <= 0 else _fmt_time(elapsed / new * (self.total - done))
        line = (f"{self.label} [{bar}] {done}/{self.total} points {100 * frac:3.0f}%  "
                f"elapsed {_fmt_time(elapsed)}  ETA {eta if done < self.total else '0:00'}")
        if self.tty:
            print("\r" + line, end="", file=self.stream, flush=True)
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.tty:
            print(file=self.stream, flush=True)


def _fmt_time(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def run_sweep(
    sweep: Union[str, SweepDef],
    scale: str = "ci",
    *,
    device: Any = None,
    executor: Optional[cf.Executor] = None,
    store: Union[str, Path, ResultStore, None] = None,
    fresh: bool = False,
    configs: Optional[Iterable[Mapping[str, Any]]] = None,
    max_pending: Optional[int] = None,
    progress: Any = None,
) -> SweepReport:
    """Run a sweep: validate, skip what is stored, compute the rest batch by batch, store.

    Parameters
    ----------
    sweep : str or SweepDef
        A registered sweep name (:data:`lrtheory.sweeps.SWEEPS`) or a definition.
    scale : {"ci", "full"}
        Which point list of the sweep to run.
    device : str, torch.device or None
        Passed to every batch, resolved where the batch runs (so a GPU worker
        of a CPU-only driver can be asked for ``"cuda"``). None: each worker's
        default (:func:`lrtheory.core.device.resolve_device`).
    executor : concurrent.futures.Executor, optional
        Where batches run. Default: in-process, one batch at a time. A Dask
        cluster: ``distributed.Client(...).get_executor()``. The caller owns it
        (it is not shut down here).
    store : str, Path or ResultStore, optional
        The SQLite results store (default :func:`default_store_path`).
    fresh : bool
        Recompute every point and overwrite its row (rows are replaced batch by
        batch, so an interrupted ``fresh`` run leaves old rows for the rest).
    configs : iterable of dict, optional
        Run these configs instead of ``sweep.points(scale)`` (validated the same way).
    max_pending : int, optional
        Most batches submitted and not yet stored. Default 1 for the in-process
        executor, else ``2 * max_workers`` when the executor says, else 32.
    progress : None, False or a text stream
        Progress bar target; None means ``sys.stderr``, False means silent.

    Returns
    -------
    SweepReport

    Raises
    ------
    ValueError
        Before any work, if the scale is unknown or any point is invalid (the
        message names the point).
    Exception
        Whatever a batch raised (divergence is a result, not an error). Batches
        finished before it stay stored; rerunning continues from there.

    Example
    -------
    >>> report = run_sweep("toy", "ci", store="/tmp/lrtheory-doc.sqlite", progress=False)  # doctest: +SKIP
    >>> report.total == report.skipped + report.computed                                    # doctest: +SKIP
    True
    """
    t0 = time.monotonic()
    sweep = get_sweep(sweep)
    if scale not in ("ci", "full"):
        raise ValueError(f"scale: expected 'ci' or 'full', got {scale!r}")
    if configs is None:
        configs = sweep.points(scale)
    points = make_points(sweep, configs)  # every point validated before any work
    dev_arg = None if device is None else str(device)
    if device is not None and executor is None:
        from lrtheory.core.device import resolve_device

        dev_arg = str(resolve_device(device))  # fail now, in the driver, on a bad local device
    own_store = not isinstance(store, ResultStore)
    st = ResultStore(store) if own_store else store
    own_exec = executor is None
    ex = InlineExecutor() if own_exec else executor
    if max_pending is None:
        workers = getattr(ex, "_max_workers", None)
        max_pending = 1 if isinstance(ex, InlineExecutor) else (2 * workers if workers else 32)
    report = SweepReport(sweep=sweep.name, scale=scale, store=str(st.path), total=len(points))
    version = code_version()
    bar = None
    pending: Dict[cf.Future, List[Point]] = {}
    try:
        stored = {} if fresh else st.keys(p.key for p in points)
        report.skipped = len(stored)
        todo = [[p for p in b if p.key not in stored] for b in make_batches(sweep, points)]
        todo = [b for b in todo if b]
        stream = sys.stderr if progress is None else progress
        if stream is not False:
            bar = _Progress(stream, sweep.name, report.total, report.skipped)
        queue = iter(todo)

        def fill():
            while len(pending) < max_pending:
                batch = next(queue, None)
                if batch is None:
                    return
                if not fresh:  # another driver may have stored some meanwhile
                    done_now = st.keys(p.key for p in batch)
                    report.skipped += len(done_now)
                    batch = [p for p in batch if p.key not in done_now]
                    if not batch:
                        continue
                fut = ex.submit(_run_task, sweep.run_batch, [p.config for p in batch], dev_arg)
                pending[fut] = batch

        fill()
        while pending:
            done, _ = cf.wait(list(pending), return_when=cf.FIRST_COMPLETED)
            for fut in done:
                batch = pending.pop(fut)
                results, env = fut.result()
                if len(results) != len(batch):
                    raise RuntimeError(f"sweep {sweep.name!r}: run_batch returned {len(results)} results "
                                       f"for {len(batch)} points")
                st.put(list(zip(batch, results)), code_version=version, environment=env, replace=fresh)
                report.computed += len(batch)
                if bar is not None:
                    bar.update(report.skipped + report.computed)
            fill()
    except BaseException:
        for fut in pending:  # batches not started yet are dropped; stored ones stay stored
            fut.cancel()
        raise
    finally:
        if bar is not None:
            bar.close()
        if own_exec:
            ex.shutdown()
        try:
            if report.total:
                final = st.keys(p.key for p in points)
                report.rows = [(p.config, final[p.key].result) for p in points if p.key in final]
                report.diverged = sum(final[p.key].status == "diverged" for p in points if p.key in final)
                report.stale = sum(final[p.key].code_version != version for p in points if p.key in final)
        finally:
            if own_store:
                st.close()
    report.seconds = time.monotonic() - t0
    return report


def load_results(
    sweep: Union[str, SweepDef],
    scale: str = "full",
    store: Union[str, Path, ResultStore, None] = None,
    *,
    partial: bool = False,
) -> Optional[List[Tuple[Dict[str, Any], Dict[str, Any]]]]:
    """The stored ``(config, result)`` pairs of a sweep at ``scale``, or None when absent.

    This is how a chapter reads a full-scale run made earlier with
    ``lrtheory sweep CHAPTER --scale full``: nothing is computed here.

    Parameters
    ----------
    sweep : str or SweepDef
    scale : {"ci", "full"}
    store : str, Path or ResultStore, optional
        Default :func:`default_store_path`. A missing file means "absent".
    partial : bool
        False (default): None unless every point is stored. True: whatever is stored
        (None if nothing).

    Returns
    -------
    list of (dict, dict) or None
        In the sweep's point order. A diverged point's result has ``"diverged": True``.

    Example
    -------
    >>> rows = load_results("max_lr_grid", "full")         # doctest: +SKIP
    >>> if rows is None:                                   # doctest: +SKIP
    ...     print("no full-scale results stored; run `lrtheory sweep sharpness --scale full`")
    """
    sweep = get_sweep(sweep)
    if scale not in ("ci", "full"):
        raise ValueError(f"scale: expected 'ci' or 'full', got {scale!r}")
    points = make_points(sweep, sweep.points(scale))
    if not isinstance(store, ResultStore):
        path = Path(store).expanduser() if store is not None else default_store_path()
        if not path.is_file():
            return None
        with ResultStore(path) as st:
            found = st.keys(p.key for p in points)
    else:
        found = store.keys(p.key for p in points)
    if not found or (not partial and len(found) < len(points)):
        return None
    return [(p.config, found[p.key].result) for p in points if p.key in found]


# ---------------------------------------------------------------------------------------------
# command line: lrtheory sweep CHAPTER
# ---------------------------------------------------------------------------------------------
def _sweeps_for(target: str) -> List[SweepDef]:
    from lrtheory.sweeps import SWEEPS

    if target in SWEEPS:
        return [SWEEPS[target]]
    found = [s for s in SWEEPS.values() if s.chapter == target]
    if not found:
        chapters = sorted({s.chapter for s in SWEEPS.values()})
        raise ValueError(f"unknown chapter or sweep {target!r}; chapters: {chapters}; sweeps: {sorted(SWEEPS)}")
    return found


def _open_executor(spec: str):
    """(executor, closer) for ``--executor``: ``local`` or ``dask://HOST:PORT``."""
    if spec == "local":
        return None, (lambda: None)
    if spec.startswith("dask://"):
        address = spec[len("dask://"):]
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"--executor: expected dask://HOST:PORT, got {spec!r}")
        try:
            from distributed import Client
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ValueError("--executor dask://...: needs dask.distributed (pip install 'dask[distributed]')") from exc
        client = Client(f"tcp://{address}", timeout="30s")
        return client.get_executor(), client.close
    raise ValueError(f"--executor: expected 'local' or 'dask://HOST:PORT', got {spec!r}")


def cmd_sweep(args) -> int:
    """``lrtheory sweep``: 0 done, 1 a batch failed, 2 bad usage, 130 interrupted (Ctrl-C)."""
    from lrtheory.sweeps import SWEEPS

    if args.list:
        for s in SWEEPS.values():
            print(f"{s.chapter:12s} {s.name:24s} {s.description}")
        return 0
    if not args.chapter:
        print("lrtheory sweep: error: give a CHAPTER (or a sweep name), or --list", file=sys.stderr)
        return 2
    try:
        sweeps = _sweeps_for(args.chapter)
        if args.executor == "local" and args.device is not None:
            from lrtheory.core.device import resolve_device

            resolve_device(args.device)
        for s in sweeps:  # every point of every sweep validated before any work
            make_points(s, s.points(args.scale))
        store = ResultStore(args.store)
    except (ValueError, sqlite3.Error) as exc:
        print(f"lrtheory sweep: error: {exc}", file=sys.stderr)
        return 2
    try:
        executor, close = _open_executor(args.executor)
    except ValueError as exc:
        store.close()
        print(f"lrtheory sweep: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        store.close()
        print(f"lrtheory sweep: error: cannot reach the scheduler: {exc}", file=sys.stderr)
        return 2
    status = 0
    try:
        for s in sweeps:
            try:
                report = run_sweep(s, args.scale, device=args.device, executor=executor, store=store,
                                   fresh=args.fresh, progress=sys.stderr)
            except KeyboardInterrupt:
                print(f"\nlrtheory sweep: {s.name} interrupted; finished batches are stored, rerun the same "
                      f"command to resume", file=sys.stderr)
                return 130
            except Exception as exc:  # a batch failed: what is stored stays stored
                print(f"lrtheory sweep: {s.name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
                status = 1
                continue
            print(report.summary(), flush=True)
    finally:
        close()
        store.close()
    return status


def add_cli(subparsers) -> None:
    """Add ``lrtheory sweep`` to the ``lrtheory`` command line (called by :mod:`lrtheory.cli`)."""
    p = subparsers.add_parser(
        "sweep",
        help="run a chapter's paper-scale sweeps into the results store (resumable)",
        description=("Run every sweep of CHAPTER (or the sweep named CHAPTER), storing each point's result in "
                     "an SQLite store as it finishes. Rerunning skips stored points, so an interrupted sweep "
                     "resumes where it stopped. Chapters read the stored full-scale results."),
    )
    p.add_argument("chapter", nargs="?", metavar="CHAPTER", help="chapter (e.g. sharpness) or sweep name")
    p.add_argument("--scale", choices=("ci", "full"), default="ci",
                   help="ci: small grid for 2 CPU cores (default); full: paper-sized grid, meant for a GPU")
    p.add_argument("--device", default=None,
                   help="cpu or cuda, resolved on each worker (default: $LRTHEORY_DEVICE, else cuda when present)")
    p.add_argument("--executor", default="local", metavar="local|dask://HOST:PORT",
                   help="local: in this process (default); dask://HOST:PORT: a Dask scheduler's workers")
    p.add_argument("--fresh", action="store_true", help="recompute every point, overwriting stored rows")
    p.add_argument("--store", default=None, metavar="PATH",
                   help=f"SQLite results file (default: ${ENV_CACHE}/results.sqlite, "
                        f"else ~/.cache/lrtheory/results.sqlite)")
    p.add_argument("--list", action="store_true", help="list the sweeps and their chapters, then exit")
    p.set_defaults(func=cmd_sweep)
