"""Claims: the unit of verification.

A :class:`Claim` is one checkable statement of a paper. It carries a
``predict(scale)`` callable (the symbolic or closed-form prediction), a
``measure(scale, device)`` callable (an independent numeric measurement) and a
:class:`Tolerance` with its reason. :meth:`Claim.check` runs both and returns a
:class:`Verdict`. Predictions and measurements are a number when the claim is
about one quantity, else a ``dict`` of named numbers.

Every result module registers its claims with :func:`register` at import time;
:func:`all_claims` imports them all and :func:`select` picks claims by id or by
dotted prefix (``"balancing"`` selects ``"balancing.scalar.convergence_edge"``).
"""
from __future__ import annotations

import importlib
import math
import numbers
import textwrap
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import torch

from lrtheory.core.device import DeviceLike, resolve_device

__all__ = [
    "SCALES",
    "check_scale",
    "Tolerance",
    "Verdict",
    "Claim",
    "register",
    "all_claims",
    "select",
    "run_claims",
    "check_claims",
    "verdict_table",
    "format_value",
]

#: Scales a claim can run at: "ci" (2 CPU cores, seconds to a minute) and "full" (paper-sized, GPU).
SCALES = ("ci", "full")

#: The modules that register claims, in book order.
RESULT_MODULES = (
    "lrtheory.results.sharpness",
    "lrtheory.results.catapult",
    "lrtheory.results.mup_depth",
    "lrtheory.results.elr",
    "lrtheory.results.balancing",
)

Value = Union[float, Dict[str, float]]
_KINDS = ("abs", "rel", "custom")


def check_scale(scale: str) -> str:
    """Return ``scale`` if it is one of :data:`SCALES`.

    Raises
    ------
    ValueError
        Naming the argument and the allowed scales.
    """
    if not isinstance(scale, str) or scale not in SCALES:
        raise ValueError(f"scale: expected one of {SCALES}, got {scale!r}")
    return scale


@dataclass(frozen=True)
class Tolerance:
    """How far a measurement may lie from its prediction, and why.

    Parameters
    ----------
    value : float
        Size of the tolerance (ignored in spirit for ``kind="custom"``, where the
        claim's own comparison states the test; still reported).
    kind : {"abs", "rel", "custom"}
        ``"abs"``: ``|measured - predicted| <= value`` for every named number;
        ``"rel"``: ``|measured - predicted| <= value * |predicted|``;
        ``"custom"``: the claim supplies ``compare``.
    reason : str
        One sentence saying where the tolerance comes from (Monte Carlo error,
        finite width, finite steps, round-off).
    """

    value: float
    kind: str
    reason: str

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"kind: expected one of {_KINDS}, got {self.kind!r}")
        if not (isinstance(self.value, numbers.Real) and math.isfinite(self.value) and self.value >= 0):
            raise ValueError(f"value: tolerance must be a finite number >= 0, got {self.value!r}")
        if not self.reason or not isinstance(self.reason, str):
            raise ValueError("reason: every tolerance states its reason")

    def __str__(self) -> str:
        if self.kind == "custom":
            return self.reason
        return f"{self.kind} {self.value:.3g}"

    def to_json(self) -> dict:
        return {"value": float(self.value), "kind": self.kind, "reason": self.reason}


@dataclass(frozen=True)
class Verdict:
    """Outcome of :meth:`Claim.check`."""

    id: str
    chapter: str
    statement: str
    source: str
    predicted: Value
    measured: Value
    tolerance: Tolerance
    passed: bool
    details: Mapping[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict:
        """The JSON object ``lrtheory verify --json`` writes (non-finite numbers become null)."""
        return {
            "id": self.id,
            "chapter": self.chapter,
            "statement": self.statement,
            "source": self.source,
            "predicted": _json_value(self.predicted),
            "measured": _json_value(self.measured),
            "tolerance": self.tolerance.to_json(),
            "passed": bool(self.passed),
            "seconds": round(float(self.seconds), 3),
        }


def _json_value(v: Value):
    if isinstance(v, dict):
        return {k: _json_value(x) for k, x in v.items()}
    v = float(v)
    return v if math.isfinite(v) else None


def _as_value(v: Any, what: str) -> Value:
    """Coerce a prediction/measurement to a float or a dict of floats."""
    if isinstance(v, Mapping):
        if not v:
            raise ValueError(f"{what}: empty dict")
        return {str(k): _as_value(x, f"{what}[{k!r}]") for k, x in v.items()}
    if isinstance(v, torch.Tensor):
        if v.numel() != 1:
            raise ValueError(f"{what}: expected a scalar, got a tensor of shape {tuple(v.shape)}")
        v = v.item()
    if hasattr(v, "is_number") and getattr(v, "is_number"):  # sympy number
        v = float(v)
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise ValueError(f"{what}: expected a number or a dict of named numbers, got {type(v).__name__}")
    return float(v)


def _default_compare(predicted: Value, measured: Value, tol: Tolerance) -> Tuple[bool, dict]:
    if isinstance(predicted, dict) != isinstance(measured, dict):
        raise ValueError("predicted and measured must both be numbers or both be dicts")
    if isinstance(predicted, dict):
        if set(predicted) != set(measured):
            raise ValueError(f"predicted keys {sorted(predicted)} != measured keys {sorted(measured)}")
        pairs = [(k, predicted[k], measured[k]) for k in predicted]
    else:
        pairs = [("value", predicted, measured)]
    details, ok = {}, True
    for name, p, m in pairs:
        err = abs(m - p)
        limit = tol.value * abs(p) if tol.kind == "rel" else tol.value
        good = math.isfinite(err) and err <= limit
        details[name] = {"error": err, "limit": limit, "passed": good}
        ok &= good
    return ok, details


@dataclass(frozen=True)
class Claim:
    """One checkable statement of a paper.

    Parameters
    ----------
    id : str
        Stable dotted id, e.g. ``"catapult.uv.range"``; its first component names the result module.
    chapter : str
        Chapter notebook stem, e.g. ``"05_balancing"``.
    statement : str
        The claim in one sentence.
    source : str
        Paper and theorem / figure.
    tolerance : Tolerance
    predict : callable ``(scale) -> number | dict``
        The symbolic or closed-form prediction (from sympy); must not run the simulation.
    measure : callable ``(scale, device) -> number | dict``
        The independent numeric measurement.
    compare : callable ``(predicted, measured, tolerance) -> (passed, details)``, optional
        Needed when ``tolerance.kind == "custom"`` (bounds, trends); default: element-wise
        abs / rel comparison.
    """

    id: str
    chapter: str
    statement: str
    source: str
    tolerance: Tolerance
    predict: Callable[[str], Any]
    measure: Callable[[str, torch.device], Any]
    compare: Optional[Callable[[Value, Value, Tolerance], Tuple[bool, dict]]] = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id or any(not p for p in self.id.split(".")):
            raise ValueError(f"id: expected a dotted identifier, got {self.id!r}")
        if self.tolerance.kind == "custom" and self.compare is None:
            raise ValueError(f"compare: claim {self.id!r} has a custom tolerance and needs a compare function")

    def check(self, scale: str = "ci", device: DeviceLike = None) -> Verdict:
        """Predict, measure independently, compare.

        Parameters
        ----------
        scale : {"ci", "full"}
        device : str, torch.device or None
            See :func:`lrtheory.core.device.resolve_device`.

        Returns
        -------
        Verdict

        Raises
        ------
        ValueError
            On an unknown scale or device, or when the callables return something that is
            not a number or a dict of named numbers.
        """
        check_scale(scale)
        dev = resolve_device(device)
        t0 = time.perf_counter()
        predicted = _as_value(self.predict(scale), f"{self.id}: predicted")
        measured = _as_value(self.measure(scale, dev), f"{self.id}: measured")
        compare = self.compare or _default_compare
        passed, details = compare(predicted, measured, self.tolerance)
        return Verdict(
            id=self.id,
            chapter=self.chapter,
            statement=self.statement,
            source=self.source,
            predicted=predicted,
            measured=measured,
            tolerance=self.tolerance,
            passed=bool(passed),
            details=details,
            seconds=time.perf_counter() - t0,
        )


_REGISTRY: Dict[str, Claim] = {}


def register(claim: Claim) -> Claim:
    """Add ``claim`` to the registry (re-registering the same id replaces it, for reloads)."""
    if not isinstance(claim, Claim):
        raise ValueError(f"claim: expected a Claim, got {type(claim).__name__}")
    _REGISTRY[claim.id] = claim
    return claim


def all_claims() -> List[Claim]:
    """Every registered claim, in book order (result modules are imported on first call)."""
    for mod in RESULT_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:  # a chapter not written yet
            if exc.name != mod:
                raise
    order = {m.rsplit(".", 1)[1]: i for i, m in enumerate(RESULT_MODULES)}
    return sorted(_REGISTRY.values(), key=lambda c: (order.get(c.id.split(".")[0], len(order)), c.id))


def select(only: Optional[Iterable[str]] = None) -> List[Claim]:
    """Claims whose id equals, or starts with ``PREFIX.``, one of ``only`` (all when None).

    Raises
    ------
    ValueError
        If an entry of ``only`` matches no claim.
    """
    claims = all_claims()
    if only is None:
        return claims
    only = list(only)
    chosen, unknown = [], []
    for key in only:
        if not isinstance(key, str) or not key:
            raise ValueError(f"only: expected claim ids or prefixes, got {key!r}")
        hits = [c for c in claims if c.id == key or c.id.startswith(key.rstrip(".") + ".")]
        if not hits:
            unknown.append(key)
        chosen.extend(c for c in hits if c not in chosen)
    if unknown:
        raise ValueError(
            f"only: no claim matches {', '.join(map(repr, unknown))}; known ids: {', '.join(c.id for c in claims)}"
        )
    return chosen


def run_claims(
    claims: Sequence[Claim],
    scale: str = "ci",
    device: DeviceLike = None,
    progress: Optional[Callable[[int, int, Claim, Optional[Verdict]], None]] = None,
    catch: bool = True,
) -> List[Verdict]:
    """Check ``claims`` in order; a claim that raises becomes a failed verdict when ``catch``.

    ``progress(i, n, claim, verdict)`` is called before (verdict None) and after each claim.
    """
    check_scale(scale)
    dev = resolve_device(device)
    out = []
    for i, claim in enumerate(claims):
        if progress:
            progress(i, len(claims), claim, None)
        t0 = time.perf_counter()
        try:
            verdict = claim.check(scale, dev)
        except Exception as exc:  # reported as a failure, the run goes on
            if not catch:
                raise
            verdict = Verdict(claim.id, claim.chapter, claim.statement, claim.source, math.nan, math.nan,
                              claim.tolerance, False, {"error": f"{type(exc).__name__}: {exc}"},
                              time.perf_counter() - t0)
        out.append(verdict)
        if progress:
            progress(i, len(claims), claim, verdict)
    return out


def check_claims(prefix: str, scale: str = "ci", device: DeviceLike = None) -> List[Verdict]:
    """Check every claim under ``prefix`` (for chapter notebooks); errors propagate."""
    return run_claims(select([prefix]), scale=scale, device=device, catch=False)


def format_value(v: Value, digits: int = 4) -> str:
    """Numbers at ``digits`` significant digits; dicts as ``name=value`` pairs."""
    if isinstance(v, dict):
        return ", ".join(f"{k}={format_value(x, digits)}" for k, x in v.items())
    if not math.isfinite(v):
        return str(v)
    if v == 0:
        return "0"
    return f"{v:.{digits}g}"


def verdict_table(verdicts: Sequence[Verdict], digits: int = 4, width: int = 76) -> str:
    """Plain text of verdicts, stable for nbval and readable at page width.

    When one row per claim (claim, predicted, measured, tolerance, verdict) fits in
    ``width`` characters it is a table; otherwise each claim is a block: its id and
    verdict on one line, then predicted / measured / tolerance indented and wrapped.
    Numbers are printed at ``digits`` significant digits.
    """
    rows = [("claim", "predicted", "measured", "tolerance", "verdict")]
    for v in verdicts:
        rows.append((v.id, format_value(v.predicted, digits), format_value(v.measured, digits),
                     str(v.tolerance), "PASS" if v.passed else "FAIL"))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    if sum(widths) + 2 * 4 <= width:
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)
    blocks = []
    for cid, pred, meas, tol, verdict in rows[1:]:
        lines = [cid.ljust(max(len(cid), width - 6)) + "  " + verdict]
        for label, text in (("predicted", pred), ("measured", meas), ("tolerance", tol)):
            lines.extend(textwrap.wrap(text, width=width, initial_indent=f"  {label:<10} ",
                                       subsequent_indent=" " * 13, break_on_hyphens=False) or [f"  {label}"])
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
