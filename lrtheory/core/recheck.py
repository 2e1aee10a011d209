"""Which stored points a sweep has, and a recheck: recompute stored points, compare.

:func:`sweep_status` says which points of a scale are stored, which are missing and how many
stored rows belong to no current point (their config changed: stale, never used);
:func:`recheck` recomputes a random sample of stored points and compares them with what is
stored, so a code change that changes results fails until the stored run is redone.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

from lrtheory.core.store import canonical_json, decode_value
from lrtheory.core.sweep import SweepDef, _as_sweep, _run_task, _stored, make_points

__all__ = ["SweepStatus", "sweep_status", "results_close", "RecheckReport", "recheck", "point_seconds"]


@dataclass
class SweepStatus:
    """What :func:`sweep_status` returns: which points of a scale are stored, missing, stale."""

    sweep: str
    scale: str
    total: int
    stored: int
    missing: List[Dict[str, Any]]
    stale: int

    def summary(self) -> str:
        s = f"sweep {self.sweep} (scale={self.scale}): {self.stored}/{self.total} points stored"
        if self.missing:
            s += f", {len(self.missing)} missing"
        if self.stale:
            s += (f"; {self.stale} stored points match no point of the current config (stale: an old "
                  "config, never used)")
        return s


def sweep_status(sweep: SweepDef, scale: str, store: Any = None) -> SweepStatus:
    """Which points of ``sweep`` at ``scale`` the store holds, which are missing, and how many
    stored rows of the sweep belong to no current point (a config changed since: stale)."""
    sweep = _as_sweep(sweep)
    points = make_points(sweep, sweep.points(scale))
    found = _stored(store, [p.key for p in points], sweep=sweep.name)
    rows = found.pop("*", [])
    keys = {p.key for p in points}
    return SweepStatus(sweep=sweep.name, scale=scale, total=len(points), stored=len(found),
                       missing=[p.config for p in points if p.key not in found],
                       stale=sum(r.key not in keys for r in rows))


def results_close(a: Any, b: Any, rtol: float, atol: float) -> bool:
    """Whether two stored results agree: structure equal, numbers within ``rtol``/``atol``
    (arrays element by element, NaN where NaN, infinities equal), everything else equal.
    Dict entries named ``seconds`` or ``*_seconds`` are timings of the run, not results: they
    are not compared.

    Example
    -------
    >>> results_close({"y": 1.0, "n": [1, 2]}, {"y": 1.0 + 1e-12, "n": [1, 2]}, 1e-9, 0.0)
    True
    >>> results_close({"y": 1.0}, {"y": 1.01}, 1e-3, 0.0)
    False
    >>> results_close({"y": 1.0, "seconds": 3.2}, {"y": 1.0, "seconds": 0.4}, 1e-9, 0.0)
    True
    """
    import numpy as np

    a, b = decode_value(a), decode_value(b)

    def close(x, y) -> bool:
        if isinstance(x, dict) or isinstance(y, dict):
            return isinstance(x, dict) and isinstance(y, dict) and x.keys() == y.keys() and all(
                close(x[k], y[k]) for k in x if not _is_timing(k))
        if isinstance(x, (list, tuple)) or isinstance(y, (list, tuple)):
            return (type(x) is type(y) and len(x) == len(y)) and all(close(u, v) for u, v in zip(x, y))
        if hasattr(x, "__dataclass_fields__") or hasattr(y, "__dataclass_fields__"):
            import dataclasses

            return type(x) is type(y) and all(close(getattr(x, f.name), getattr(y, f.name))
                                              for f in dataclasses.fields(x))
        if isinstance(x, bool) or isinstance(y, bool) or isinstance(x, str) or x is None or y is None:
            return x == y
        xa, ya = np.asarray(x), np.asarray(y)
        if xa.shape != ya.shape:
            return False
        if xa.dtype.kind in "biu" and ya.dtype.kind in "biu":
            return bool(np.array_equal(xa, ya))
        return bool(np.allclose(xa, ya, rtol=rtol, atol=atol, equal_nan=True))

    return close(a, b)


def _is_timing(key: Any) -> bool:
    return isinstance(key, str) and (key == "seconds" or key.endswith("_seconds"))


@dataclass
class RecheckReport:
    """What :func:`recheck` returns."""

    sweep: str
    scale: str
    checked: List[Dict[str, Any]]
    mismatched: List[Dict[str, Any]]
    status: SweepStatus

    @property
    def ok(self) -> bool:
        return not self.mismatched

    def summary(self) -> str:
        s = (f"recheck {self.sweep} (scale={self.scale}): {len(self.checked)} stored points recomputed, "
             f"{len(self.mismatched)} differ from what is stored")
        for c in self.mismatched:
            s += f"\n  differs: {canonical_json(c)}"
        return s + "\n  " + self.status.summary()


def point_seconds(row) -> float:
    """What one stored point cost to compute: its batch's seconds over the batch's points
    (inf when the store did not record it)."""
    env = row.environment or {}
    try:
        return float(env["batch_seconds"]) / max(int(env.get("batch_points", 1)), 1)
    except (KeyError, TypeError, ValueError):
        return float("inf")


def recheck(sweep: SweepDef, scale: str, n: int, *, store: Any = None, seed: int = 0, device: Any = None,
            rtol: float = 1e-6, atol: float = 1e-12, where: Optional[Callable[[Dict[str, Any]], bool]] = None,
            max_seconds: Optional[float] = None) -> RecheckReport:
    """Recompute ``n`` stored points of ``sweep`` at ``scale`` chosen at random (``seed``) and
    compare them with what is stored (:func:`results_close` at ``rtol``/``atol``).

    A change to the code that changes results makes this fail until the stored run is redone.
    ``where(config)`` restricts the choice; ``max_seconds`` keeps only points whose stored
    cost (:func:`point_seconds`) is at most that (cheap points, for CI). Nothing is written.

    Raises
    ------
    ValueError
        If ``n`` is not a positive integer.
    """
    import random

    sweep = _as_sweep(sweep)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected a positive integer, got {n!r}")
    points = make_points(sweep, sweep.points(scale))
    found = _stored(store, [p.key for p in points])
    candidates = [p for p in points if p.key in found and (where is None or where(p.config))
                  and (max_seconds is None or point_seconds(found[p.key]) <= max_seconds)]
    chosen = random.Random(seed).sample(candidates, min(n, len(candidates)))
    mismatched = []
    for p in chosen:
        (fresh,), _ = _run_task(sweep.run_batch, [p.config], None if device is None else str(device))
        if not results_close(found[p.key].result, json.loads(canonical_json(fresh)), rtol, atol):
            mismatched.append(p.config)
    return RecheckReport(sweep=sweep.name, scale=scale, checked=[p.config for p in chosen],
                         mismatched=mismatched, status=sweep_status(sweep, scale, store))
