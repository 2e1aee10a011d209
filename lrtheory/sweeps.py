"""The book's sweeps: one :class:`~lrtheory.core.sweep.SweepDef` per paper-scale grid.

:data:`SWEEPS` maps a sweep name to its definition; ``lrtheory sweep CHAPTER``
runs every sweep whose ``chapter`` is ``CHAPTER`` (or the one sweep named so)
and stores each point's result in the results store. A chapter reads its
full-scale results back with :func:`lrtheory.core.sweep.load_results`, which
returns None when they have not been computed.

Sweeps
------
``max_lr_grid`` (chapter ``sharpness``)
    eta x depth x width x seed: train a standard-parametrized ReLU MLP with full-batch
    GD and softmax cross-entropy on scikit-learn's digits (:func:`lrtheory.core.data.digits`),
    record final loss, train / test accuracy and divergence. The exhaustive-grid
    version of the eta* search of Iyer et al. (2023) (full-batch GD here; the paper
    uses SGD): :func:`eta_star_from_grid` reads eta* at each (depth, width) as the
    largest grid eta at which every seed reaches a test accuracy (or, without one,
    does not diverge). One batch = one architecture, up to 64 (eta, seed) models
    trained at once by :func:`lrtheory.core.train.train`.
``<chapter>_measurements`` (one per chapter: ``sharpness``, ``catapult``, ``mup_depth``, ``elr``, ``balancing``)
    One point per public ``measure_*(scale, device)`` function of
    ``lrtheory.results.<chapter>``: the whole measurement is computed and stored
    exactly (:func:`~lrtheory.core.sweep.encode_value`). The point's config holds the
    chapter's settings for that scale (its ``config(scale)``), so a changed setting
    is a new point. A chapter serves its full-scale measurements from the store
    with the :func:`stored_measurement` decorator (or :func:`load_measurement`).
``toy`` (chapter ``test``)
    A cheap deterministic function of its config (optionally sleeping), used by the
    tests of the sweep machinery; ``x >= 100`` counts as diverged.
"""
from __future__ import annotations

import contextvars
import dataclasses
import functools
import hashlib
import importlib
import inspect
import math
import sys
import time
from typing import Any, Callable, Dict, List, Mapping, Optional

import numpy as np

from lrtheory.core.sweep import (
    Param,
    ResultStore,
    SweepDef,
    canonical_json,
    decode_value,
    default_store_path,
    encode_value,
    make_points,
)

__all__ = [
    "SWEEPS",
    "CHAPTER_MODULES",
    "register_sweep",
    "max_lr_grid_points",
    "run_max_lr_batch",
    "eta_star_from_grid",
    "measurement_points",
    "run_measurement_batch",
    "load_measurement",
    "stored_measurement",
    "chapter_sweep",
    "toy_points",
    "run_toy_batch",
]

#: Registered sweeps, by name.
SWEEPS: Dict[str, SweepDef] = {}


def register_sweep(sweep: SweepDef) -> SweepDef:
    """Add ``sweep`` to :data:`SWEEPS` (replacing one of the same name) and return it."""
    if not isinstance(sweep, SweepDef):
        raise ValueError(f"sweep: expected a SweepDef, got {type(sweep).__name__}")
    SWEEPS[sweep.name] = sweep
    return sweep


# ---------------------------------------------------------------------------------------------
# max_lr_grid: eta x depth x width x seed on digits (chapter 01, Iyer et al. 2023)
# ---------------------------------------------------------------------------------------------
_MAXLR_SCHEMA = {
    "depth": Param("int", positive=True),
    "width": Param("int", positive=True),
    "eta": Param("float", positive=True),
    "seed": Param("int", nonneg=True),
    "steps": Param("int", positive=True),
    "n_train": Param("int", positive=True),
    "parametrization": Param("str", choices=("standard", "ntk", "mean_field", "mup"), default="standard"),
    "loss": Param("str", choices=("ce", "mse"), default="ce"),
    "data_seed": Param("int", nonneg=True, default=0),
}


def _check_maxlr(config: Mapping[str, Any]) -> None:
    if config["n_train"] > 1347:  # digits: 1797 examples, 25 % held out
        raise ValueError(f"n_train must be <= 1347 (digits' training split), got {config['n_train']}")


def max_lr_grid_points(scale: str = "ci") -> List[Dict[str, Any]]:
    """Configs of ``max_lr_grid`` at ``scale``.

    ``ci``: depth {1, 2, 4} x width {16, 64} x 8 LRs log-spaced in [0.05, 50] x seed 0,
    50 GD steps on 256 examples (48 points, seconds on a CPU).
    ``full``: depth {1, 2, 4, 8, 16} x width {32, 64, 128, 256, 512, 1024} x 25 LRs
    log-spaced in [1e-3, 1e2] x seeds {0, 1, 2}, 500 GD steps on the 1347 training
    digits (2250 points; a GPU run).
    """
    if scale == "ci":
        depths, widths, etas, seeds, steps, n_train = (1, 2, 4), (16, 64), np.geomspace(0.05, 50, 8), (0,), 50, 256
    elif scale == "full":
        depths, widths = (1, 2, 4, 8, 16), (32, 64, 128, 256, 512, 1024)
        etas, seeds, steps, n_train = np.geomspace(1e-3, 1e2, 25), (0, 1, 2), 500, 1347
    else:
        raise ValueError(f"scale: expected 'ci' or 'full', got {scale!r}")
    return [
        {"depth": d, "width": w, "eta": float(f"{e:.6g}"), "seed": s, "steps": steps, "n_train": n_train}
        for d in depths for w in widths for s in seeds for e in etas
    ]


def run_max_lr_batch(configs: List[Dict[str, Any]], device) -> List[Dict[str, Any]]:
    """Train one batch of ``max_lr_grid`` points (same architecture) at once.

    Each model is initialized from its own seed (``init_params(spec, 1, seed)``), so
    its result does not depend on which points share the batch.

    Returns
    -------
    list of dict
        Per point: ``initial_loss``, ``final_loss`` (null when diverged), ``train_acc``,
        ``test_acc`` (final, null when diverged), ``diverged`` (bool) and
        ``diverged_step`` (-1 if never).
    """
    import torch

    from lrtheory.core.data import digits
    from lrtheory.core.mlp import MLPSpec, init_params
    from lrtheory.core.train import train

    c0 = configs[0]
    ds = digits(seed=c0["data_seed"], n_train=c0["n_train"], device=device)
    spec = MLPSpec(d_in=ds.d_in, width=c0["width"], depth=c0["depth"], d_out=ds.n_classes,
                   parametrization=c0["parametrization"])
    per_model = [init_params(spec, 1, seed=c["seed"], device=device) for c in configs]
    params = [torch.cat(ts, dim=0) for ts in zip(*per_model)]
    if c0["loss"] == "ce":
        y, y_test = ds.y_train, ds.y_test
    else:
        oh = ds.one_hot()
        y, y_test = oh.y_train, oh.y_test
    res = train(spec, params, ds.x_train, y, etas=[c["eta"] for c in configs], steps=c0["steps"],
                loss=c0["loss"], x_test=ds.x_test, y_test=y_test, record_every=c0["steps"])
    h = res.history
    out = []
    for k in range(len(configs)):
        out.append({
            "initial_loss": float(h["loss"][0, k]),
            "final_loss": float(h["loss"][-1, k]),
            "train_acc": float(h["train_acc"][-1, k]),
            "test_acc": float(h["test_acc"][-1, k]),
            "diverged": bool(res.diverged[k]),
            "diverged_step": int(res.diverged_step[k]),
        })
    return out


def eta_star_from_grid(rows, *, min_test_acc: Optional[float] = None) -> Dict[tuple, Dict[str, float]]:
    """eta* per architecture from ``max_lr_grid`` rows (e.g. :func:`~lrtheory.core.sweep.load_results`).

    A grid eta *succeeds* at an architecture when every seed run at it succeeds: does
    not diverge and, if ``min_test_acc`` is given, ends with ``test_acc >= min_test_acc``.
    eta* is the largest succeeding eta below the first failing one (the failures above
    it bracket the edge).

    Parameters
    ----------
    rows : sequence of (config, result)
    min_test_acc : float in (0, 1], optional

    Returns
    -------
    dict (depth, width) -> {"eta_star": float, "eta_fail": float}
        NaN where no eta succeeds (``eta_star``) or none fails (``eta_fail``).

    Raises
    ------
    ValueError
        If ``min_test_acc`` is outside (0, 1].

    Example
    -------
    >>> rows = [({"depth": 1, "width": 8, "eta": e, "seed": 0}, {"diverged": e > 1, "test_acc": 0.9})
    ...         for e in (0.5, 1.0, 2.0)]
    >>> eta_star_from_grid(rows)[(1, 8)]
    {'eta_star': 1.0, 'eta_fail': 2.0}
    """
    if min_test_acc is not None and not (isinstance(min_test_acc, (int, float)) and 0 < min_test_acc <= 1):
        raise ValueError(f"min_test_acc: expected a number in (0, 1], got {min_test_acc!r}")
    ok: Dict[tuple, Dict[float, bool]] = {}
    for config, result in rows:
        good = not result.get("diverged", False)
        if good and min_test_acc is not None:
            acc = result.get("test_acc")
            good = acc is not None and acc >= min_test_acc
        per_eta = ok.setdefault((config["depth"], config["width"]), {})
        per_eta[config["eta"]] = per_eta.get(config["eta"], True) and good
    out = {}
    for arch, per_eta in ok.items():
        etas = sorted(per_eta)
        fail = next((e for e in etas if not per_eta[e]), math.nan)
        below = [e for e in etas if per_eta[e] and not e > fail]
        out[arch] = {"eta_star": max(below) if below else math.nan, "eta_fail": fail}
    return out


register_sweep(SweepDef(
    name="max_lr_grid",
    chapter="sharpness",
    description="eta x depth x width x seed on digits: final loss / accuracy / divergence (eta* search)",
    points=max_lr_grid_points,
    run_batch=run_max_lr_batch,
    schema=_MAXLR_SCHEMA,
    group_by=("depth", "width", "steps", "n_train", "parametrization", "loss", "data_seed"),
    batch_size=64,
    check=_check_maxlr,
))


# ---------------------------------------------------------------------------------------------
# toy: a cheap deterministic sweep for the tests of the machinery
# ---------------------------------------------------------------------------------------------
_TOY_SCHEMA = {
    "x": Param("float"),
    "seed": Param("int", nonneg=True),
    "delay": Param("float", nonneg=True, default=0.0),
}


def toy_points(scale: str = "ci") -> List[Dict[str, Any]]:
    """``ci``: 2 seeds x 12 values of x in [-1, 2] plus x = 150 (diverges): 26 points;
    ``full``: 4 seeds x 100 values (+ the diverging one)."""
    if scale not in ("ci", "full"):
        raise ValueError(f"scale: expected 'ci' or 'full', got {scale!r}")
    n, seeds = (12, (0, 1)) if scale == "ci" else (100, (0, 1, 2, 3))
    xs = [round(-1.0 + 3.0 * i / (n - 1), 6) for i in range(n)] + [150.0]
    return [{"x": x, "seed": s} for s in seeds for x in xs]


def run_toy_batch(configs: List[Dict[str, Any]], device) -> List[Dict[str, Any]]:
    """``y = sin(x) + u(seed, x)`` with ``u`` a hash-derived number in [0, 1); sleeps ``delay``
    seconds per point; ``x >= 100`` diverges (``y`` null)."""
    out = []
    for c in configs:
        if c["delay"]:
            time.sleep(c["delay"])
        u = int(hashlib.sha256(f"{c['seed']}:{c['x']!r}".encode()).hexdigest()[:12], 16) / 16.0 ** 12
        diverged = c["x"] >= 100
        out.append({"y": None if diverged else math.sin(c["x"]) + u, "diverged": diverged})
    return out


register_sweep(SweepDef(
    name="toy",
    chapter="test",
    description="cheap deterministic function of (x, seed), for testing the sweep machinery",
    points=toy_points,
    run_batch=run_toy_batch,
    schema=_TOY_SCHEMA,
    group_by=("seed",),
    batch_size=4,
))


# ---------------------------------------------------------------------------------------------
# <chapter>_measurements: each chapter's measure_* functions, one stored point each
# ---------------------------------------------------------------------------------------------
#: Chapters whose ``measure_*`` functions get a ``<chapter>_measurements`` sweep.
CHAPTER_MODULES = ("sharpness", "catapult", "mup_depth", "elr", "balancing")

_MEAS_SCHEMA = {
    "module": Param("str"),
    "function": Param("str"),
    "scale": Param("str", choices=("ci", "full")),
    "settings": Param("str", default=""),
}

#: The (module, function, scale) being computed by run_measurement_batch in this context:
#: load_measurement never answers for it (so --fresh really recomputes).
_COMPUTING: contextvars.ContextVar = contextvars.ContextVar("lrtheory_sweeps_computing", default=None)


def _check_measurement(config: Mapping[str, Any]) -> None:
    if not config["module"].startswith("lrtheory.results."):
        raise ValueError(f"module must be a lrtheory.results module, got {config['module']!r}")
    if not config["function"].startswith("measure_"):
        raise ValueError(f"function must be a measure_* function, got {config['function']!r}")


#: Where chapters keep their per-scale settings: functions of the scale, then dicts keyed by it.
_SETTINGS_FUNCTIONS = ("config", "_config", "_scale_cfg", "_params")
_SETTINGS_TABLES = ("CONFIGS", "_CONFIGS", "_CONFIG", "_SCALES", "SCALE_PARAMS")
#: Return annotations of claim-level helpers (numbers derived from a stored measurement): skipped.
_DERIVED_RETURNS = ("float", "int", "bool", "dict", "Dict[str, float]", "Mapping[str, float]")


def _settings(mod, scale: str) -> str:
    """Canonical JSON of the chapter's settings for ``scale`` ("" if it exposes none)."""
    cfg = None
    for name in _SETTINGS_FUNCTIONS:
        fn = getattr(mod, name, None)
        if callable(fn):
            try:
                cfg = fn(scale)
                break
            except Exception:  # noqa: BLE001 - not a per-scale settings function
                cfg = None
    if cfg is None:
        for name in _SETTINGS_TABLES:
            table = getattr(mod, name, None)
            if isinstance(table, Mapping) and scale in table:
                cfg = table[scale]
                break
    if cfg is None:
        return ""
    try:
        return canonical_json(encode_value(cfg))
    except TypeError:
        return canonical_json(repr(cfg))


def _measure_functions(mod) -> List[str]:
    """Public ``measure_*(scale, device)`` functions of a module, in source order, leaving out
    those annotated to return a number or a dict of numbers (a claim's reading of a
    measurement stored by another point)."""
    found = []
    for name, fn in vars(mod).items():
        if not name.startswith("measure_") or not callable(fn):
            continue
        if getattr(fn, "__module__", mod.__name__) != mod.__name__ and not hasattr(fn, "__wrapped__"):
            continue  # imported from elsewhere
        try:
            params = list(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            continue
        ret = inspect.signature(fn).return_annotation
        ret = ret if isinstance(ret, str) else getattr(ret, "__name__", repr(ret))
        if params[:2] == ["scale", "device"] and ret not in _DERIVED_RETURNS:
            found.append(name)
    return found


def measurement_points(chapter: str, scale: str = "ci") -> List[Dict[str, Any]]:
    """One config per ``measure_*`` function of ``lrtheory.results.<chapter>`` (none if the
    module is missing or does not import)."""
    if scale not in ("ci", "full"):
        raise ValueError(f"scale: expected 'ci' or 'full', got {scale!r}")
    module = f"lrtheory.results.{chapter}"
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return []
    settings = _settings(mod, scale)
    return [{"module": module, "function": name, "scale": scale, "settings": settings}
            for name in _measure_functions(mod)]


def run_measurement_batch(configs: List[Dict[str, Any]], device) -> List[Dict[str, Any]]:
    """Call each config's ``measure_*(scale, device)`` and return ``{"value": encoded}``."""
    out = []
    for c in configs:
        fn = getattr(importlib.import_module(c["module"]), c["function"])
        token = _COMPUTING.set((c["module"], c["function"], c["scale"]))
        try:
            value = fn(c["scale"], device)
        finally:
            _COMPUTING.reset(token)
        out.append({"value": encode_value(value)})
    return out


def load_measurement(chapter: str, function: str, scale: str = "full", store=None) -> Optional[Any]:
    """A chapter measurement stored by ``lrtheory sweep CHAPTER --scale SCALE``, or None.

    None when the store has no row for it: no store file, never computed, or computed
    with other settings than the chapter's current ``config(scale)``.

    Parameters
    ----------
    chapter : str
        e.g. ``"catapult"`` (module ``lrtheory.results.catapult``).
    function : str
        e.g. ``"measure_relu_sweep"``.
    scale : {"ci", "full"}
    store : str, Path or ResultStore, optional
        Default :func:`lrtheory.core.sweep.default_store_path`.

    Returns
    -------
    object or None
        Exactly what the function returned when it was run (same dataclass, arrays bit for bit).

    Example
    -------
    >>> relu = load_measurement("catapult", "measure_relu_sweep", "full")   # doctest: +SKIP
    """
    module = f"lrtheory.results.{chapter}"
    if _COMPUTING.get() == (module, function, scale):
        return None
    mod = importlib.import_module(module)
    (point,) = make_points(SWEEPS[f"{chapter}_measurements"], [
        {"module": module, "function": function, "scale": scale, "settings": _settings(mod, scale)}])
    if isinstance(store, ResultStore):
        rows = store.keys([point.key])
    else:
        from pathlib import Path

        path = Path(store).expanduser() if store is not None else default_store_path()
        if not path.is_file():
            return None
        with ResultStore(path) as st:
            rows = st.keys([point.key])
    if point.key not in rows:
        return None
    return decode_value(rows[point.key].result["value"])


def stored_measurement(chapter: str, scales=("full",)) -> Callable:
    """Decorator for a chapter's ``measure_*(scale, device)``: serve ``scales`` from the store.

    At a scale in ``scales`` (default: only ``"full"``; CI scale always computes), the
    stored result of ``lrtheory sweep CHAPTER --scale full`` is returned when present;
    otherwise one line on stderr says it is not stored and the function computes as usual.
    Put it under ``functools.lru_cache`` so the store is read once.

    Example
    -------
    >>> @functools.lru_cache(maxsize=None)            # doctest: +SKIP
    ... @stored_measurement("catapult")
    ... def measure_relu_sweep(scale="ci", device=None): ...
    """

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(scale: str = "ci", device=None):
            if scale in scales and _COMPUTING.get() is None:
                value = load_measurement(chapter, fn.__name__, scale)
                if value is not None:
                    return value
                print(f"lrtheory: {chapter}.{fn.__name__} at scale={scale} is not in the results store "
                      f"({default_store_path()}); computing it here. `lrtheory sweep {chapter} --scale {scale}` "
                      f"computes and stores it (resumable, on a GPU or a Dask cluster).", file=sys.stderr)
            return fn(scale, device)

        return wrapper

    return deco


def chapter_sweep(chapter: str) -> SweepDef:
    """The ``<chapter>_measurements`` sweep of ``lrtheory.results.<chapter>``, registered."""
    return register_sweep(SweepDef(
        name=f"{chapter}_measurements",
        chapter=chapter,
        description=f"every measure_* of lrtheory.results.{chapter}, stored whole (what the chapter shows)",
        points=functools.partial(measurement_points, chapter),
        run_batch=run_measurement_batch,
        schema=_MEAS_SCHEMA,
        batch_size=1,
        check=_check_measurement,
    ))


for _chapter in CHAPTER_MODULES:
    chapter_sweep(_chapter)
del _chapter
