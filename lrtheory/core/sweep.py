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
>>> import tempfile, os
>>> squares = SweepDef(name="squares", chapter="demo", description="x squared",
...                    points=lambda scale: [{"x": x} for x in range(4)],
...                    run_batch=lambda configs, device: [{"y": c["x"] ** 2} for c in configs],
...                    schema={"x": Param("int")}, batch_size=2)
>>> path = os.path.join(tempfile.mkdtemp(), "results.sqlite")
>>> report = run_sweep(squares, "ci", store=path, progress=False)
>>> report.computed, run_sweep(squares, "ci", store=path, progress=False).skipped
(4, 4)
>>> load_results(squares, "ci", store=path)[3]
({'x': 3}, {'y': 9})

On several processes of one machine, with Dask (same results, row for row; in a
script, keep this under ``if __name__ == "__main__":``, worker processes import it)::

    from dask.distributed import Client, LocalCluster
    with LocalCluster(n_workers=4, threads_per_worker=1) as cluster, Client(cluster) as client:
        run_sweep(sweep, "full", executor=client.get_executor())

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
import hashlib
import math
import numbers
import platform
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from lrtheory.core.store import (ENV_CACHE, STATUSES, ResultStore, StoredRow, TextStore, canonical_json,
                                 decode_value, default_store_path, encode_value, open_store)

__all__ = [
    "ENV_CACHE",
    "STATUSES",
    "Param",
    "Point",
    "SweepDef",
    "SweepReport",
    "StoredRow",
    "ResultStore",
    "TextStore",
    "open_store",
    "InlineExecutor",
    "default_store_path",
    "canonical_json",
    "encode_value",
    "decode_value",
    "make_points",
    "make_batches",
    "run_sweep",
    "load_results",
]

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
        The configs of a scale (the names are the caller's: core knows none).
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


def _as_sweep(sweep: Any) -> "SweepDef":
    if not isinstance(sweep, SweepDef):
        raise ValueError(f"sweep: expected a SweepDef, got {type(sweep).__name__} "
                         "(the book's sweeps are lrtheory.verify.registry.sweeps())")
    return sweep


def make_points(sweep: SweepDef, configs: Iterable[Mapping[str, Any]]) -> List[Point]:
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
    >>> toy = SweepDef(name="toy", chapter="demo", description="", points=lambda scale: [],
    ...                run_batch=lambda configs, device: [], schema={"x": Param("float"), "seed": Param("int")})
    >>> make_points(toy, [{"x": 1, "seed": 0}])[0].config
    {'seed': 0, 'x': 1.0}
    """
    sweep = _as_sweep(sweep)
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
# ---------------------------------------------------------------------------------------------
# versions and environment
# ---------------------------------------------------------------------------------------------
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
    sweep: SweepDef,
    scale: str = "ci",
    *,
    device: Any = None,
    executor: Optional[cf.Executor] = None,
    store: Union[str, Path, ResultStore, None] = None,
    fresh: bool = False,
    configs: Optional[Iterable[Mapping[str, Any]]] = None,
    max_pending: Optional[int] = None,
    progress: Any = None,
    code_version: str = "unknown",
) -> SweepReport:
    """Run a sweep: validate, skip what is stored, compute the rest batch by batch, store.

    Parameters
    ----------
    sweep : SweepDef
        The definition (the book's: :func:`lrtheory.verify.registry.sweeps`).
    scale : str
        Which point list of the sweep to run (``sweep.points(scale)``).
    device : str, torch.device or None
        Passed to every batch, resolved where the batch runs (so a GPU worker
        of a CPU-only driver can be asked for ``"cuda"``). None: each worker's
        default (:func:`lrtheory.core.device.resolve_device`).
    executor : concurrent.futures.Executor, optional
        Where batches run. Default: in-process, one batch at a time. A Dask
        cluster: ``distributed.Client(...).get_executor()``. The caller owns it
        (it is not shut down here).
    store : str, Path, ResultStore or TextStore, optional
        The results store (default :func:`default_store_path`; a ``.jsonl`` path is a
        committed text store, :class:`~lrtheory.core.store.TextStore`).
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
    code_version : str
        Stored beside every computed point (``lrtheory`` passes its version and commit);
        points stored by another version are counted as ``stale`` in the report.

    Returns
    -------
    SweepReport

    Raises
    ------
    ValueError
        Before any work, if any point is invalid (the message names the point).
    Exception
        Whatever a batch raised (divergence is a result, not an error). Batches
        finished before it stay stored; rerunning continues from there.

    Example
    -------
    See the module docstring.
    """
    t0 = time.monotonic()
    sweep = _as_sweep(sweep)
    if configs is None:
        configs = sweep.points(scale)
    points = make_points(sweep, configs)  # every point validated before any work
    dev_arg = None if device is None else str(device)
    if device is not None and executor is None:
        from lrtheory.core.device import resolve_device

        dev_arg = str(resolve_device(device))  # fail now, in the driver, on a bad local device
    st = open_store(store)
    own_store = st is not store  # open_store returns a store object as given: the caller's, left open
    own_exec = executor is None
    ex = InlineExecutor() if own_exec else executor
    if max_pending is None:
        workers = getattr(ex, "_max_workers", None)
        max_pending = 1 if isinstance(ex, InlineExecutor) else (2 * workers if workers else 32)
    report = SweepReport(sweep=sweep.name, scale=scale, store=str(st.path), total=len(points))
    version = code_version
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
    sweep: SweepDef,
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
    sweep : SweepDef
    scale : str
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
    See the module docstring.
    """
    sweep = _as_sweep(sweep)
    points = make_points(sweep, sweep.points(scale))
    found = _stored(store, [p.key for p in points])
    if not found or (not partial and len(found) < len(points)):
        return None
    return [(p.config, found[p.key].result) for p in points if p.key in found]


def _stored(store: Any, keys: List[str], sweep: Optional[str] = None) -> Dict[str, StoredRow]:
    """Stored rows among ``keys`` (every row of ``sweep`` too, under the key ``"*"``); a
    missing store file holds nothing."""
    if hasattr(store, "keys") and hasattr(store, "put"):
        st, own = store, False
    else:
        path = Path(store).expanduser() if store is not None else default_store_path()
        if not path.is_file():
            return {}
        st, own = open_store(path), True
    try:
        out = dict(st.keys(keys))
        if sweep is not None:
            out["*"] = st.rows(sweep)
        return out
    finally:
        if own:
            st.close()
