"""The :class:`Chapter` a result package declares: configs per scale, measurements, claims, sweeps.

A chapter package ``lrtheory/results/<key>/`` creates one ``CHAPTER = Chapter(...)`` in its
``__init__`` and declares, in ``measurements.py`` and ``claims.py``::

    @CHAPTER.measurement
    def measure_sweep(cfg, device):            # cfg: the chapter's config for the scale
        ...

    @CHAPTER.measurement(depends=("measure_sweep",))
    def measure_edges(cfg, device):
        sweep = measure_sweep.of(cfg, device)  # memoized: computed once per (config, device)
        ...

    CHAPTER.claim("catapult.uv.upper", statement=..., source=..., tolerance=...,
                  predict=lambda cfg: ..., measure=lambda cfg, device: ...)

A measurement is memoized per (config, device). At the scales listed in
:data:`STORED_SCALES` it is served from the results store when the store holds it: the
store key is the hash of the chapter, the measurement and the *full* config, so changing
any value of a config makes the stored point stale (never reused). ``ci`` always
computes.

Every measurement is a point of the chapter's sweep (``<key>_measurements``), so
``lrtheory sweep <key>`` computes and stores it, resumably, on any executor. Measurements
that depend on each other share a batch (one worker computes the dependency once and
reuses it). A measurement may instead be *decomposed*: ``parts(cfg)`` lists JSON-able part
descriptions, ``fn(cfg, device, part)`` computes one part and ``combine(cfg, results)``
assembles the value; each part is its own point, so a long measurement resumes part by
part and its parts are distributed over the executor's workers.
"""
from __future__ import annotations

import contextvars
import dataclasses
import json
import sys
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from lrtheory.verify.claims import CURRENT_SCALE as _SCALE
from lrtheory.verify.claims import SCALES, Claim, Tolerance, check_scale

__all__ = ["Chapter", "Measurement", "MissingResults", "STORED_SCALES", "config_json"]

#: Scales whose measurements are served from the results store when stored there. At
#: "reference" the store is the chapter's committed text file (``reference.jsonl`` beside its
#: package) and a missing point is an error (hours of computing are never started silently);
#: at "full" it is the local SQLite store and a missing point is computed here.
STORED_SCALES = ("reference", "full")


class MissingResults(ValueError):
    """A measurement at the reference scale is not (completely) in the chapter's stored file."""

#: True while the sweep engine computes a point: measurements then never read the store
#: (so ``--fresh`` really recomputes) and dependencies come from the memo.
_COMPUTING: contextvars.ContextVar = contextvars.ContextVar("lrtheory_computing", default=False)


def config_json(cfg: Any) -> str:
    """Canonical JSON of a chapter config (a frozen dataclass): what a store key hashes.

    Example
    -------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class C:
    ...     width: int = 8
    ...     etas: tuple = (0.5, 1.0)
    >>> config_json(C())
    '{"__dataclass__":"lrtheory.verify.chapter:C","fields":{"etas":{"__tuple__":[0.5,1.0]},"width":8}}'
    """
    from lrtheory.core.sweep import canonical_json, encode_value

    return canonical_json(encode_value(cfg))


class Measurement:
    """A declared measurement of a chapter; call it as ``m(scale, device)`` or ``m.of(cfg, device)``.

    Created by :meth:`Chapter.measurement`, not directly.
    """

    def __init__(self, chapter: "Chapter", fn: Callable, depends: Sequence[str] = (),
                 parts: Optional[Callable[[Any], List[Mapping[str, Any]]]] = None,
                 combine: Optional[Callable[[Any, List[Any]], Any]] = None) -> None:
        if (parts is None) != (combine is None):
            raise ValueError(f"parts/combine: measurement {fn.__name__!r} needs both or neither")
        if parts is not None and depends:
            raise ValueError(f"depends: a decomposed measurement ({fn.__name__!r}) cannot depend on another")
        self.chapter = chapter
        self.fn = fn
        self.name = fn.__name__
        self.depends = tuple(depends)
        self.parts = parts
        self.combine = combine
        self.__doc__ = fn.__doc__
        self.__name__ = fn.__name__
        self.__qualname__ = getattr(fn, "__qualname__", fn.__name__)
        self.__module__ = getattr(fn, "__module__", None)
        self.__wrapped__ = fn
        self._memo: Dict[Tuple[str, str], Any] = {}

    def __repr__(self) -> str:
        return f"<measurement {self.chapter.key}.{self.name}>"

    # -- user-facing
    def __call__(self, scale: str = "ci", device: Any = None) -> Any:
        """The measurement at ``scale`` (the chapter's config for it) on ``device``."""
        cfg = self.chapter.config(scale)
        token = _SCALE.set(scale)
        try:
            return self.of(cfg, device)
        finally:
            _SCALE.reset(token)

    def of(self, cfg: Any, device: Any = None) -> Any:
        """The measurement for the config object ``cfg`` (memoized per config and device)."""
        from lrtheory.core.device import resolve_device

        dev = resolve_device(device)
        key = (config_json(cfg), str(dev))
        if key in self._memo:
            return self._memo[key]
        value = None
        scale = _SCALE.get()
        if scale in STORED_SCALES and not _COMPUTING.get():
            value = self.load(scale, cfg)
            if value is None and scale == "reference":
                from lrtheory.core.recheck import sweep_status

                status = sweep_status(self.chapter.measurement_sweep(), scale, self.chapter.store_for(scale))
                mine = [c for c in status.missing if c["measurement"] == self.name]
                raise MissingResults(
                    f"{self.chapter.key}.{self.name}: {len(mine)} of its points are not in "
                    f"{self.chapter.reference_path} (parts: {[c['part'] or 'whole' for c in mine][:8]}); "
                    f"`lrtheory sweep {self.chapter.key} --scale reference` computes them")
            if value is None:
                print(f"lrtheory: {self.chapter.key}.{self.name} at scale={scale} is not stored; computing it "
                      f"here. `lrtheory sweep {self.chapter.key} --scale {scale}` computes and stores it "
                      f"(resumable, on any executor).", file=sys.stderr)
        if value is None:
            value = self.compute(cfg, dev)
        self._memo[key] = value
        return value

    def compute(self, cfg: Any, device: Any) -> Any:
        """Compute (never read the store), for ``cfg`` on ``device``."""
        if self.parts is None:
            return self.fn(cfg, device)
        return self.combine(cfg, [self.fn(cfg, device, dict(p)) for p in self.parts(cfg)])

    def cache_clear(self) -> None:
        """Forget memoized values."""
        self._memo.clear()

    # -- the sweep engine
    def point_configs(self, scale: str) -> List[Dict[str, Any]]:
        """The sweep points of this measurement at ``scale`` (one, or one per part)."""
        cfg = self.chapter.config(scale)
        base = {"module": self.chapter.module, "measurement": self.name, "scale": scale,
                "config": config_json(cfg)}
        if self.parts is None:
            return [dict(base, part="", group=self.chapter._group(self.name))]
        from lrtheory.core.sweep import canonical_json

        return [dict(base, part=canonical_json(p), group=f"{self.name}:{i}") for i, p in enumerate(self.parts(cfg))]

    def load(self, scale: str, cfg: Any = None, store: Any = None) -> Any:
        """The stored value at ``scale``, or None when the store lacks it (or any of its parts)."""
        from lrtheory.core.sweep import _stored, decode_value, make_points

        cfgs = self.point_configs(scale)
        if cfg is not None and config_json(cfg) != cfgs[0]["config"]:
            return None  # not this scale's config: nothing stored can be it
        points = make_points(self.chapter.measurement_sweep(), cfgs)
        keys = [p.key for p in points]
        rows = _stored(store if store is not None else self.chapter.store_for(scale), keys)
        if any(k not in rows for k in keys):
            return None
        values = [decode_value(rows[k].result["value"]) for k in keys]
        if self.parts is None:
            return values[0]
        return self.combine(self.chapter.config(scale), values)


_MEAS_SCHEMA = None


def _measurement_schema():
    global _MEAS_SCHEMA
    if _MEAS_SCHEMA is None:
        from lrtheory.core.sweep import Param

        _MEAS_SCHEMA = {
            "module": Param("str"),
            "measurement": Param("str"),
            "scale": Param("str", choices=SCALES),
            "config": Param("str"),
            "part": Param("str", default=""),
            "group": Param("str"),
        }
    return _MEAS_SCHEMA


def run_measurement_batch(configs: List[Dict[str, Any]], device: Any) -> List[Dict[str, Any]]:
    """Compute a batch of measurement points (the sweep engine's ``run_batch``; module level,
    so workers import it by name). Points of one batch share a dependency component and come
    in dependency order, so each dependency is computed once and reused from the memo."""
    import importlib

    from lrtheory.core.device import resolve_device
    from lrtheory.core.sweep import encode_value

    dev = resolve_device(device)
    out = []
    token = _COMPUTING.set(True)
    try:
        for c in configs:
            chapter = importlib.import_module(c["module"]).CHAPTER
            m = chapter.measurements[c["measurement"]]
            cfg = chapter.config(c["scale"])
            if config_json(cfg) != c["config"]:
                raise ValueError(f"config: {chapter.key}.{m.name} at scale={c['scale']} has another config on this "
                                 "worker than on the driver; install the same lrtheory on both")
            value = m.fn(cfg, dev, json.loads(c["part"])) if c["part"] else m.of(cfg, dev)
            out.append({"value": encode_value(value)})
    finally:
        _COMPUTING.reset(token)
    return out


class Chapter:
    """One paper result: its configs per scale, measurements, claims and sweeps.

    Parameters
    ----------
    key : str
        Short identifier, the first part of every claim id (``"catapult"``).
    module : str
        The package that defines ``CHAPTER`` (pass ``__name__``); workers import it.
    notebook : str
        The notebook's name without suffix (``"02_catapult"``).
    title : str
    configs : mapping of scale -> frozen dataclass
        At least ``"ci"``; keys among :data:`~lrtheory.verify.claims.SCALES`.

    Example
    -------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Cfg:
    ...     n: int
    >>> ch = Chapter("demo", module=__name__, notebook="99_demo", title="Demo", configs={"ci": Cfg(3)})
    >>> @ch.measurement
    ... def measure_sum(cfg, device):
    ...     return float(sum(range(cfg.n)))
    >>> _ = ch.claim("demo.sum", statement="0 + 1 + 2 = 3", source="derived here",
    ...              tolerance=Tolerance(0, "abs", "exact"), predict=lambda cfg: 3.0,
    ...              measure=lambda cfg, device: measure_sum.of(cfg, device))
    >>> [v.passed for v in ch.check("ci", "cpu")]
    [True]
    """

    def __init__(self, key: str, *, module: str, notebook: str, title: str, configs: Mapping[str, Any]) -> None:
        if not isinstance(key, str) or not key.isidentifier():
            raise ValueError(f"key: expected an identifier, got {key!r}")
        if not isinstance(module, str) or not module:
            raise ValueError(f"module: expected the defining package's __name__, got {module!r}")
        if not isinstance(configs, Mapping) or "ci" not in configs:
            raise ValueError(f"configs: chapter {key!r} needs a mapping of scale -> config with at least 'ci'")
        for scale, cfg in configs.items():
            check_scale(scale)
            if not (dataclasses.is_dataclass(cfg) and not isinstance(cfg, type)
                    and type(cfg).__dataclass_params__.frozen):
                raise ValueError(f"configs[{scale!r}]: expected a frozen dataclass instance, got {type(cfg).__name__}")
        self.key = key
        self.module = module
        self.notebook = notebook
        self.title = title
        self.configs = dict(configs)
        self.measurements: Dict[str, Measurement] = {}
        self.claims: List[Claim] = []
        self._sweeps: List[Any] = []
        self._measurement_sweep = None
        #: Overrides :attr:`reference_path` when set (tests write elsewhere than the package).
        self.reference_file = None

    def __repr__(self) -> str:
        return f"<Chapter {self.key}: {len(self.measurements)} measurements, {len(self.claims)} claims>"

    @property
    def reference_path(self):
        """The committed results file of the reference scale: ``reference.jsonl`` beside the
        chapter's package (so it ships with the package and needs nothing under ~/.cache)."""
        import importlib
        from pathlib import Path

        if self.reference_file is not None:
            return Path(self.reference_file)
        mod = importlib.import_module(self.module)
        return Path(mod.__file__).resolve().parent / "reference.jsonl"

    def store_for(self, scale: str):
        """Where stored results of ``scale`` live: the reference file, else the local store
        (:func:`lrtheory.core.store.default_store_path`)."""
        return self.reference_path if scale == "reference" else None

    @property
    def scales(self) -> Tuple[str, ...]:
        """The scales this chapter has a config for, in :data:`SCALES` order."""
        return tuple(s for s in SCALES if s in self.configs)

    def config(self, scale: str) -> Any:
        """The config of ``scale``.

        Raises
        ------
        ValueError
            For an unknown scale, or one this chapter has no config for.
        """
        check_scale(scale)
        if scale not in self.configs:
            raise ValueError(f"scale: chapter {self.key!r} has no {scale!r} config (it has {self.scales})")
        return self.configs[scale]

    # -- declarations
    def measurement(self, fn: Optional[Callable] = None, *, depends: Sequence[str] = (),
                    parts: Optional[Callable] = None, combine: Optional[Callable] = None):
        """Declare ``fn(cfg, device)`` a measurement (decorator, with or without arguments).

        Parameters
        ----------
        depends : names of measurements of this chapter that ``fn`` calls (via ``.of``)
        parts, combine : decompose into points, see the module docstring
        """
        def deco(f: Callable) -> Measurement:
            if not f.__name__.startswith("measure_"):
                raise ValueError(f"fn: measurement names start with 'measure_', got {f.__name__!r}")
            if f.__name__ in self.measurements:
                raise ValueError(f"fn: chapter {self.key!r} already has a measurement {f.__name__!r}")
            unknown = [d for d in depends if d not in self.measurements]
            if unknown:
                raise ValueError(f"depends: {unknown} are not (yet) measurements of chapter {self.key!r}; "
                                 "declare dependencies first")
            if any(self.measurements[d].parts is not None for d in depends):
                raise ValueError(f"depends: {f.__name__!r} cannot depend on a decomposed measurement")
            m = Measurement(self, f, depends, parts, combine)
            self.measurements[m.name] = m
            self._measurement_sweep = None
            return m

        return deco(fn) if fn is not None else deco

    def claim(self, id: str, *, statement: str, source: str, tolerance: Tolerance, predict: Callable,
              measure: Callable, compare: Optional[Callable] = None, expect: Any = "pass") -> Claim:
        """Declare a claim: ``predict(cfg)``, ``measure(cfg, device)``; its id starts with the key.
        ``expect="fail"`` (or per scale) for a claim the chapter reports as not reproduced."""
        if not isinstance(id, str) or not id.startswith(self.key + "."):
            raise ValueError(f"id: claims of chapter {self.key!r} start with {self.key + '.'!r}, got {id!r}")
        if any(c.id == id for c in self.claims):
            raise ValueError(f"id: chapter {self.key!r} already has a claim {id!r}")
        c = Claim(id=id, chapter=self.key, statement=statement, source=source, tolerance=tolerance,
                  predict=predict, measure=measure, compare=compare, config=self.config, notebook=self.notebook,
                  expect=expect)
        self.claims.append(c)
        return c

    def add_sweep(self, sweep: Any) -> Any:
        """Add a further :class:`~lrtheory.core.sweep.SweepDef` of this chapter (e.g. a grid)."""
        from lrtheory.core.sweep import SweepDef

        if not isinstance(sweep, SweepDef):
            raise ValueError(f"sweep: expected a SweepDef, got {type(sweep).__name__}")
        if sweep.chapter != self.key:
            raise ValueError(f"sweep: {sweep.name!r} belongs to chapter {sweep.chapter!r}, not {self.key!r}")
        self._sweeps.append(sweep)
        return sweep

    # -- derived
    def _group(self, name: str) -> str:
        """The first-declared measurement of ``name``'s dependency component (its batch)."""
        parent = {n: n for n in self.measurements}

        def find(n):
            while parent[n] != n:
                n = parent[n]
            return n

        order = list(self.measurements)
        for n, m in self.measurements.items():
            for d in m.depends:
                a, b = find(n), find(d)
                if a != b:
                    first, second = sorted((a, b), key=order.index)
                    parent[second] = first
        return find(name)

    def measurement_sweep(self):
        """The ``<key>_measurements`` sweep: one point per measurement (or part), dependency order."""
        if self._measurement_sweep is None:
            from lrtheory.core.sweep import SweepDef

            names = list(self.measurements)  # declaration order is a dependency order

            def points(scale: str) -> List[Dict[str, Any]]:
                if scale not in self.configs:
                    return []
                return [p for n in names for p in self.measurements[n].point_configs(scale)]

            self._measurement_sweep = SweepDef(
                name=f"{self.key}_measurements", chapter=self.key,
                description=f"every measurement of chapter {self.key!r}, stored whole (what the chapter shows)",
                points=points, run_batch=run_measurement_batch, schema=_measurement_schema(),
                group_by=("module", "group"), batch_size=max(1, len(names)))
        return self._measurement_sweep

    @property
    def sweeps(self) -> List[Any]:
        """Every sweep of the chapter: its measurements' sweep first, then those added."""
        return [self.measurement_sweep()] + list(self._sweeps)

    def check(self, scale: str = "ci", device: Any = None, only: Optional[Sequence[str]] = None):
        """Check this chapter's claims (``only``: ids or dotted prefixes); errors propagate."""
        from lrtheory.verify.report import run_claims

        claims = self.claims
        if only is not None:
            claims = [c for c in claims if any(c.id == k or c.id.startswith(k.rstrip(".") + ".") for k in only)]
        return run_claims(claims, scale=scale, device=device, catch=False)
