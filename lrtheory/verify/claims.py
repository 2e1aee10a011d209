"""Claims: the unit of verification.

A :class:`Claim` is one checkable statement of a paper. It carries a ``predict``
callable (the symbolic or closed-form prediction, reading the derivation only), a
``measure`` callable (an independent numeric measurement) and a :class:`Tolerance`
with its reason. :meth:`Claim.check` runs both and returns a :class:`Verdict`.
Predictions and measurements are a number when the claim is about one quantity,
else a ``dict`` of named numbers.

A claim declared through a :class:`~lrtheory.verify.chapter.Chapter` receives the
chapter's config object for the scale (``predict(config)``,
``measure(config, device)``); a free-standing claim receives the scale name.

Example
-------
>>> c = Claim(id="demo.half", chapter="demo", statement="one half is 0.5", source="derived here",
...           tolerance=Tolerance(1e-12, "abs", "exact arithmetic"),
...           predict=lambda scale: 0.5, measure=lambda scale, device: 1 / 2)
>>> c.check("ci", "cpu").passed
True
"""
from __future__ import annotations

import contextvars
import math
import numbers
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Tuple, Union

__all__ = ["SCALES", "check_scale", "Tolerance", "Verdict", "Claim", "compare_values"]

#: Scales a claim can run at: ``"ci"`` (2 CPU cores, seconds per claim), ``"reference"``
#: (the papers' settings where they fit 2 CPU cores, stored in the repository) and
#: ``"full"`` (the papers' own grids, for a GPU).
SCALES = ("ci", "reference", "full")

Value = Union[float, Dict[str, float]]

#: The scale being checked or measured by name; measurements read the results store only at
#: the scales that are stored (see :mod:`lrtheory.verify.chapter`), dependencies inherit it.
CURRENT_SCALE: contextvars.ContextVar = contextvars.ContextVar("lrtheory_scale", default=None)

#: Tolerance kinds, see :class:`Tolerance`.
KINDS = ("abs", "rel", "upper", "lower", "sigma", "custom")


def check_scale(scale: str) -> str:
    """Return ``scale`` if it is one of :data:`SCALES`.

    Raises
    ------
    ValueError
        Naming the argument and the allowed scales.

    Example
    -------
    >>> check_scale("ci")
    'ci'
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
        Size of the tolerance (reported, but not used, for ``kind="custom"``).
    kind : {"abs", "rel", "upper", "lower", "sigma", "custom"}
        For every named number ``k`` of the prediction:

        * ``"abs"``: ``|measured - predicted| <= value``;
        * ``"rel"``: ``|measured - predicted| <= value * |predicted|`` (the *prediction*
          sets the scale, never the measurement);
        * ``"upper"``: a one-sided bound, ``measured <= predicted + value``;
        * ``"lower"``: ``measured >= predicted - value``;
        * ``"sigma"``: ``|measured - predicted| <= value * se``, with ``se`` the standard
          error the measurement reports as ``measured[k + "_se"]`` (a measurement with
          no standard error fails);
        * ``"custom"``: the claim supplies ``compare``.
    reason : str
        One sentence saying where the tolerance comes from (Monte Carlo error, finite
        width, finite steps, round-off, grid spacing).
    allowance : float, optional
        For ``kind="sigma"`` only: a fixed allowance added to the ``value`` standard errors,
        ``|measured - predicted| <= value * se + allowance`` (a known bias, e.g. finite width,
        that the standard error does not cover). Default 0.

    Example
    -------
    >>> Tolerance(0.1, "rel", "grid spacing").passes(1.0, 1.05)
    True
    >>> Tolerance(3, "sigma", "3 standard errors").passes(-1.5, -1.4, se=0.02)
    False
    """

    value: float
    kind: str
    reason: str
    allowance: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind: expected one of {KINDS}, got {self.kind!r}")
        if isinstance(self.allowance, bool) or not (isinstance(self.allowance, numbers.Real)
                                                    and math.isfinite(self.allowance) and self.allowance >= 0):
            raise ValueError(f"allowance: expected a finite number >= 0, got {self.allowance!r}")
        if self.allowance and self.kind != "sigma":
            raise ValueError(f"allowance: only a 'sigma' tolerance takes an allowance, not {self.kind!r}")
        if isinstance(self.value, bool) or not (isinstance(self.value, numbers.Real)
                                                and math.isfinite(self.value) and self.value >= 0):
            raise ValueError(f"value: tolerance must be a finite number >= 0, got {self.value!r}")
        if not self.reason or not isinstance(self.reason, str):
            raise ValueError("reason: every tolerance states its reason")

    def __str__(self) -> str:
        if self.kind == "custom":
            return self.reason
        if self.kind == "sigma":
            return f"{self.value:.3g} s.e." + (f" + {self.allowance:.3g}" if self.allowance else "")
        return f"{self.kind} {self.value:.3g}"

    def passes(self, predicted: float, measured: float, se: Optional[float] = None) -> bool:
        """Whether one measured number is within this tolerance of one predicted number.

        Non-finite numbers never pass. ``se`` is needed for ``kind="sigma"``.

        Raises
        ------
        ValueError
            For ``kind="custom"`` (the claim's own ``compare`` decides).
        """
        if self.kind == "custom":
            raise ValueError("kind: a custom tolerance is decided by the claim's compare function")
        p, m = float(predicted), float(measured)
        if not (math.isfinite(p) and math.isfinite(m)):
            return False
        if self.kind == "abs":
            return abs(m - p) <= self.value
        if self.kind == "rel":
            return abs(m - p) <= self.value * abs(p)
        if self.kind == "upper":
            return m <= p + self.value
        if self.kind == "lower":
            return m >= p - self.value
        # sigma
        if se is None or not math.isfinite(float(se)) or float(se) < 0:
            return False
        return abs(m - p) <= self.value * float(se) + self.allowance

    def to_json(self) -> dict:
        out = {"value": float(self.value), "kind": self.kind, "reason": self.reason}
        if self.allowance:
            out["allowance"] = float(self.allowance)
        return out


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
    scale: str = "ci"
    expect: str = "pass"

    @property
    def as_expected(self) -> bool:
        """Whether the outcome is the one the book reports: a pass, or for a claim the chapter
        reports as not reproduced (``expect="fail"``), a failure."""
        return self.passed == (self.expect == "pass")

    @property
    def label(self) -> str:
        """``PASS``; ``FAIL``; ``NOT REPRODUCED`` (failed, as the chapter reports); or
        ``FAIL (unexpected pass)`` for a claim reported as not reproduced that now passes (the
        chapter's text is out of date)."""
        if self.expect == "pass":
            return "PASS" if self.passed else "FAIL"
        return "FAIL (unexpected pass)" if self.passed else "NOT REPRODUCED"

    def to_json(self) -> dict:
        """The JSON object ``lrtheory verify --json`` writes (non-finite numbers become null)."""
        return {
            "id": self.id,
            "chapter": self.chapter,
            "scale": self.scale,
            "statement": self.statement,
            "source": self.source,
            "predicted": _json_value(self.predicted),
            "measured": _json_value(self.measured),
            "tolerance": self.tolerance.to_json(),
            "passed": bool(self.passed),
            "expect": self.expect,
            "as_expected": bool(self.as_expected),
            "seconds": round(float(self.seconds), 3),
        }


def _json_value(v: Value):
    if isinstance(v, dict):
        return {k: _json_value(x) for k, x in v.items()}
    v = float(v)
    return v if math.isfinite(v) else None


def as_value(v: Any, what: str) -> Value:
    """Coerce a prediction/measurement to a float or a dict of floats.

    Raises
    ------
    ValueError
        Naming ``what``, for anything that is not a number or a non-empty dict of numbers.
    """
    if isinstance(v, Mapping):
        if not v:
            raise ValueError(f"{what}: empty dict")
        return {str(k): as_value(x, f"{what}[{k!r}]") for k, x in v.items()}
    if hasattr(v, "numel") and hasattr(v, "item"):  # a torch tensor
        if v.numel() != 1:
            raise ValueError(f"{what}: expected a scalar, got a tensor of shape {tuple(v.shape)}")
        v = v.item()
    if getattr(v, "is_number", False):  # a sympy number
        v = float(v)
    if hasattr(v, "dtype") and getattr(v, "shape", None) == ():  # a numpy scalar
        v = v.item()
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise ValueError(f"{what}: expected a number or a dict of named numbers, got {type(v).__name__}")
    return float(v)


def compare_values(predicted: Value, measured: Value, tol: Tolerance) -> Tuple[bool, dict]:
    """The comparison of every non-custom :class:`Tolerance` kind, element by element.

    Dicts are compared on the prediction's keys (for ``"sigma"``, ``measured`` also holds
    ``<key>_se``); every key must pass.

    Returns
    -------
    (bool, dict)
        Whether all passed, and per key the signed error ``measured - predicted``
        (``"error"`` for a single number) and the failing keys.

    Raises
    ------
    ValueError
        If one side is a dict and the other not, or the measurement lacks a key.
    """
    if isinstance(predicted, dict) != isinstance(measured, dict):
        raise ValueError("predicted and measured must both be numbers or both dicts")
    if not isinstance(predicted, dict):
        se = None
        if tol.kind == "sigma":
            raise ValueError("measured: a 'sigma' tolerance needs a dict measurement with '<key>_se' entries")
        ok = tol.passes(predicted, measured, se)
        return ok, {"error": measured - predicted}
    missing = [k for k in predicted if k not in measured]
    if missing:
        raise ValueError(f"measured: missing keys {missing}")
    details, failed = {}, []
    for k, p in predicted.items():
        m = measured[k]
        se = measured.get(f"{k}_se") if tol.kind == "sigma" else None
        if not tol.passes(p, m, se):
            failed.append(k)
        details[f"error[{k}]"] = m - p
    details["failed"] = failed
    return not failed, details


@dataclass(frozen=True)
class Claim:
    """One checkable statement: prediction, independent measurement, tolerance.

    Parameters
    ----------
    id : str
        Dotted, stable identifier; its first part is the chapter key
        (``"catapult.uv.upper_boundary"``).
    chapter : str
        The chapter key (``"catapult"``).
    statement : str
        The sentence being checked.
    source : str
        Whose result it is: ``"Lewkowycz et al. 2020, Theorem 1"`` only where the paper
        states it, ``"derived here from ... (paper: ...)"`` where the statement or its
        constants are ours.
    tolerance : Tolerance
    predict : callable ``(config) -> number | dict``
        The symbolic or closed-form prediction; must not run the simulation.
    measure : callable ``(config, device) -> number | dict``
        The independent numeric measurement.
    compare : callable ``(predicted, measured, tolerance) -> (passed, details)``, optional
        Needed when ``tolerance.kind == "custom"`` (trends, joint conditions).
    config : callable ``(scale) -> config``, optional
        Turns a scale name into what ``predict`` and ``measure`` receive; set by
        :meth:`lrtheory.verify.chapter.Chapter.claim`. Default: the scale name itself.
    notebook : str, optional
        The chapter's notebook (``"02_catapult"``), for links in reports.
    expect : "pass", "fail", or a mapping scale -> "pass"/"fail"
        ``"fail"`` for a claim the chapter reports as *not reproduced* at that scale: its
        measurement is compared with its prediction as for any claim, the verdict reads
        ``NOT REPRODUCED``, and a pass becomes an error (``FAIL (unexpected pass)``) until the
        chapter's account is updated. Default ``"pass"``.
    """

    id: str
    chapter: str
    statement: str
    source: str
    tolerance: Tolerance
    predict: Callable[[Any], Any]
    measure: Callable[[Any, Any], Any]
    compare: Optional[Callable[[Value, Value, Tolerance], Tuple[bool, dict]]] = None
    config: Optional[Callable[[str], Any]] = None
    notebook: str = ""
    expect: Union[str, Mapping[str, str]] = "pass"

    def __post_init__(self) -> None:
        items = self.expect.items() if isinstance(self.expect, Mapping) else [("any scale", self.expect)]
        for scale, e in items:
            if e not in ("pass", "fail"):
                raise ValueError(f"expect: claim {self.id!r} at {scale}: expected 'pass' or 'fail', got {e!r}")
            if isinstance(self.expect, Mapping):
                check_scale(scale)
        if not isinstance(self.id, str) or not self.id or any(not p for p in self.id.split(".")):
            raise ValueError(f"id: expected a dotted identifier, got {self.id!r}")
        if not isinstance(self.tolerance, Tolerance):
            raise ValueError(f"tolerance: expected a Tolerance, got {type(self.tolerance).__name__}")
        if self.tolerance.kind == "custom" and self.compare is None:
            raise ValueError(f"compare: claim {self.id!r} has a custom tolerance and needs a compare function")
        for name in ("statement", "source"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise ValueError(f"{name}: claim {self.id!r} needs a non-empty {name}")

    def check(self, scale: str = "ci", device: Any = None) -> Verdict:
        """Predict, measure independently, compare.

        Parameters
        ----------
        scale : {"ci", "reference", "full"}
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
        from lrtheory.core.device import resolve_device

        check_scale(scale)
        dev = resolve_device(device)
        cfg = self.config(scale) if self.config is not None else scale
        t0 = time.perf_counter()
        token = CURRENT_SCALE.set(scale)
        try:
            predicted = as_value(self.predict(cfg), f"{self.id}: predicted")
            measured = as_value(self.measure(cfg, dev), f"{self.id}: measured")
        finally:
            CURRENT_SCALE.reset(token)
        compare = self.compare or compare_values
        passed, details = compare(predicted, measured, self.tolerance)
        return Verdict(id=self.id, chapter=self.chapter, statement=self.statement, source=self.source,
                       predicted=predicted, measured=measured, tolerance=self.tolerance, passed=bool(passed),
                       details=details, seconds=time.perf_counter() - t0, scale=scale,
                       expect=self.expected_at(scale))

    def expected_at(self, scale: str) -> str:
        """``"pass"`` or ``"fail"``: the outcome the chapter reports at ``scale``."""
        if isinstance(self.expect, Mapping):
            return self.expect.get(scale, "pass")
        return self.expect

    def with_prediction(self, transform: Callable[[Value], Value]) -> "Claim":
        """The same claim with its prediction passed through ``transform``.

        For the test every claim needs: that it *fails* when its prediction is wrong
        (``claim.with_prediction(lambda p: 2 * p).check().passed is False``). For a
        dict prediction, ``transform`` receives and returns the dict.
        """
        import dataclasses

        predict = self.predict

        def wrong(cfg):
            return transform(as_value(predict(cfg), f"{self.id}: predicted"))

        return dataclasses.replace(self, predict=wrong)
