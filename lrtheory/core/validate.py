"""Argument checks for the public boundary: each names the argument it rejects.

Every function takes the value and the argument's ``name``, returns the value coerced
to the type the caller computes with (``int``, ``float``, ``numpy.ndarray``,
``torch.Tensor``, ``tuple``), and raises :class:`ValueError` whose message starts with
``"<name>: "`` and says what was expected and what came::

    >>> positive_int(3, "depth")
    3
    >>> positive_int(0, "depth")
    Traceback (most recent call last):
    ...
    ValueError: depth: expected a positive integer, got 0

Validate once, where a user's value enters the library; code behind that boundary
trusts its inputs. ``bool`` is never accepted as a number (``True`` is an ``int`` in
Python, and a flag passed where a count belongs is a bug), and NumPy scalars are
accepted wherever Python numbers are.

=====================  =====================================================
check                  accepts
=====================  =====================================================
:func:`integer`        an integer ``>= minimum`` (and ``<= maximum``)
:func:`positive_int`   an integer ``>= 1``
:func:`nonneg_int`     an integer ``>= 0`` (a seed, a count that may be 0)
:func:`real`           a real number (finite unless ``allow_inf``)
:func:`finite_real`    a finite real number
:func:`positive_real`  a finite real number ``> 0``
:func:`nonneg_real`    a finite real number ``>= 0``
:func:`in_range`       a real number in an interval, open or closed at each end
:func:`choice`         one of a fixed set of options
:func:`int_sequence`   a non-empty sequence of integers (seeds, widths, depths)
:func:`finite_array`   an array of finite reals (NumPy)
:func:`positive_array` an array of finite reals ``> 0`` (a grid of LRs)
:func:`finite_tensor`  a floating torch tensor without NaN/Inf
=====================  =====================================================
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Iterable, Optional, Sequence, Tuple

import numpy as np
import torch

__all__ = [
    "integer",
    "positive_int",
    "nonneg_int",
    "real",
    "finite_real",
    "positive_real",
    "nonneg_real",
    "in_range",
    "choice",
    "int_sequence",
    "finite_array",
    "positive_array",
    "finite_tensor",
]


def _is_int(value) -> bool:
    return isinstance(value, (numbers.Integral, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value) -> bool:
    return isinstance(value, (numbers.Real, np.floating, np.integer)) and not isinstance(value, (bool, np.bool_))


def _scalar(value, name: str):
    """A one-element tensor or 0-d array as a Python number (anything else unchanged)."""
    if isinstance(value, torch.Tensor) or (isinstance(value, np.ndarray) and value.ndim == 0):
        size = value.numel() if isinstance(value, torch.Tensor) else value.size
        if size != 1:
            raise ValueError(f"{name}: expected a number, got a tensor of shape {tuple(value.shape)}")
        if isinstance(value, torch.Tensor) and value.dtype == torch.bool:
            raise ValueError(f"{name}: expected a number, got a bool tensor")
        return value.item()
    return value


# ----------------------------------------------------------------------------- integers
def integer(value, name: str, *, minimum: Optional[int] = None, maximum: Optional[int] = None) -> int:
    """An integer in ``[minimum, maximum]`` (either bound optional), as ``int``.

    >>> integer(5, "k", minimum=2, maximum=8)
    5
    >>> integer(1, "k", minimum=2)
    Traceback (most recent call last):
    ...
    ValueError: k: expected an integer >= 2, got 1
    """
    if not _is_int(value) or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        if minimum is not None and maximum is not None:
            want = f"an integer in [{minimum}, {maximum}]"
        elif minimum is not None:
            want = f"an integer >= {minimum}"
        elif maximum is not None:
            want = f"an integer <= {maximum}"
        else:
            want = "an integer"
        raise ValueError(f"{name}: expected {want}, got {value!r}")
    return int(value)


def positive_int(value, name: str) -> int:
    """An integer ``>= 1`` (a width, a depth, a number of steps), as ``int``."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def nonneg_int(value, name: str) -> int:
    """An integer ``>= 0`` (a seed, a count that may be zero), as ``int``.

    >>> nonneg_int(0, "seed")
    0
    """
    if not _is_int(value) or value < 0:
        raise ValueError(f"{name}: expected a non-negative integer, got {value!r}")
    return int(value)


# ----------------------------------------------------------------------------- reals
def real(value, name: str, *, allow_inf: bool = False) -> float:
    """A real number as ``float``; NaN is always rejected, infinities unless ``allow_inf``.

    One-element tensors and 0-d arrays are accepted and converted.

    >>> real(float("inf"), "max_loss", allow_inf=True)
    inf
    """
    value = _scalar(value, name)
    if not _is_real(value):
        raise ValueError(f"{name}: expected a real number, got {type(value).__name__} {value!r}")
    out = float(value)
    if math.isnan(out) or (math.isinf(out) and not allow_inf):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return out


def finite_real(value, name: str) -> float:
    """A finite real number as ``float``."""
    return real(value, name)


def positive_real(value, name: str) -> float:
    """A finite real number ``> 0`` (a learning rate, a scale), as ``float``.

    >>> positive_real(0.5, "eta")
    0.5
    >>> positive_real(-1, "eta")
    Traceback (most recent call last):
    ...
    ValueError: eta: expected a positive finite number, got -1
    """
    out = real(value, name) if _is_real(_scalar(value, name)) else None
    if out is None or not out > 0:
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    return out


def nonneg_real(value, name: str) -> float:
    """A finite real number ``>= 0`` (a weight decay, a tolerance), as ``float``."""
    out = real(value, name) if _is_real(_scalar(value, name)) else None
    if out is None or not out >= 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    return out


def in_range(value, name: str, lo: float = -math.inf, hi: float = math.inf, *,
             inclusive: Tuple[bool, bool] | bool = True) -> float:
    """A real number in the interval from ``lo`` to ``hi``, as ``float``.

    Parameters
    ----------
    value, name
        The value and the argument's name.
    lo, hi : float
        The bounds (``-inf``/``inf`` for none). An infinite bound is never attained,
        so ``value`` must be finite unless it equals an attainable bound.
    inclusive : bool or (bool, bool)
        Whether each end is closed; one bool for both. ``(False, True)`` is ``(lo, hi]``.

    Examples
    --------
    >>> in_range(0.25, "test_fraction", 0, 1, inclusive=False)
    0.25
    >>> in_range(1.0, "momentum", 0, 1, inclusive=(True, False))
    Traceback (most recent call last):
    ...
    ValueError: momentum: expected a number in [0, 1), got 1.0
    """
    lo_in, hi_in = (inclusive, inclusive) if isinstance(inclusive, bool) else tuple(inclusive)
    interval = f"{'[' if lo_in else '('}{_fmt(lo)}, {_fmt(hi)}{']' if hi_in else ')'}"
    v = _scalar(value, name)
    ok = _is_real(v) and not math.isnan(float(v))
    if ok:
        x = float(v)
        ok = (x >= lo if lo_in else x > lo) and (x <= hi if hi_in else x < hi) and math.isfinite(x)
    if not ok:
        raise ValueError(f"{name}: expected a number in {interval}, got {value!r}")
    return float(v)


def _fmt(b: float) -> str:
    if math.isinf(b):
        return "inf" if b > 0 else "-inf"
    return repr(int(b)) if float(b).is_integer() else repr(float(b))


def choice(value, name: str, options: Iterable[Any]) -> Any:
    """``value`` if it is one of ``options`` (compared with ``==``, ``None`` allowed).

    >>> choice("mse", "loss", ("mse", "ce"))
    'mse'
    >>> choice("l2", "loss", ("mse", "ce"))
    Traceback (most recent call last):
    ...
    ValueError: loss: expected one of ('mse', 'ce'), got 'l2'
    """
    opts = tuple(options)
    try:
        hit = any(value is o or (o is not None and value is not None and bool(value == o)) for o in opts)
    except Exception:  # noqa: BLE001 - an object whose == raises is not an option
        hit = False
    if not hit:
        raise ValueError(f"{name}: expected one of {opts!r}, got {value!r}")
    return value


# ----------------------------------------------------------------------------- sequences and arrays
def int_sequence(value, name: str, *, minimum: Optional[int] = 0, nonempty: bool = True,
                 distinct: bool = False) -> Tuple[int, ...]:
    """A sequence of integers ``>= minimum`` as a tuple of ``int`` (a single int is one element).

    >>> int_sequence([0, 1, 2], "seeds", distinct=True)
    (0, 1, 2)
    >>> int_sequence([64, 0], "widths", minimum=1)
    Traceback (most recent call last):
    ...
    ValueError: widths: expected integers >= 1, got 0 in [64, 0]
    """
    if _is_int(value):
        items: Sequence = (value,)
    elif isinstance(value, (str, bytes)) or value is None:
        raise ValueError(f"{name}: expected a sequence of integers, got {value!r}")
    else:
        try:
            items = tuple(np.asarray(value).reshape(-1).tolist()) if isinstance(value, (np.ndarray, torch.Tensor)) \
                else tuple(value)
        except TypeError:
            raise ValueError(f"{name}: expected a sequence of integers, got {value!r}") from None
    if nonempty and not items:
        raise ValueError(f"{name}: expected at least one integer, got {value!r}")
    for v in items:
        if not _is_int(v) or (minimum is not None and v < minimum):
            want = "integers" if minimum is None else f"integers >= {minimum}"
            raise ValueError(f"{name}: expected {want}, got {v!r} in {value!r}")
    out = tuple(int(v) for v in items)
    if distinct and len(set(out)) != len(out):
        raise ValueError(f"{name}: expected distinct integers, got {value!r}")
    return out


def finite_array(value, name: str, *, ndim: Optional[int] = None, nonempty: bool = True,
                 increasing: bool = False) -> np.ndarray:
    """An array of finite reals as a float64 :class:`numpy.ndarray` (a copy).

    Parameters
    ----------
    ndim : int, optional
        Required number of dimensions; ``ndim=1`` also turns a scalar into a 1-element array.
    nonempty : bool
        Reject an empty array.
    increasing : bool
        Require a 1-d array in strictly increasing order (a grid).

    >>> finite_array([1, 2.5], "x", ndim=1)
    array([1. , 2.5])
    """
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected an array of real numbers, got {value!r}") from None
    if np.asarray(value).dtype == np.bool_:
        raise ValueError(f"{name}: expected an array of real numbers, got booleans")
    if ndim == 1 and arr.ndim == 0:
        arr = arr.reshape(1)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d array, got shape {arr.shape}")
    if nonempty and arr.size == 0:
        raise ValueError(f"{name}: expected at least one value, got an empty array")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: every value must be finite (got NaN or inf)")
    if increasing:
        if arr.ndim != 1:
            raise ValueError(f"{name}: an increasing grid must be 1-d, got shape {arr.shape}")
        if np.any(np.diff(arr) <= 0):
            raise ValueError(f"{name}: must be strictly increasing, got {arr}")
    return arr


def positive_array(value, name: str, *, ndim: Optional[int] = None, nonempty: bool = True,
                   increasing: bool = False) -> np.ndarray:
    """Like :func:`finite_array`, and every value ``> 0`` (learning rates, widths as floats).

    >>> positive_array(0.1, "etas", ndim=1)
    array([0.1])
    >>> positive_array([0.1, 0.0], "etas")
    Traceback (most recent call last):
    ...
    ValueError: etas: every value must be > 0, got min 0.0
    """
    arr = finite_array(value, name, ndim=ndim, nonempty=nonempty, increasing=increasing)
    if arr.size and np.any(arr <= 0):
        raise ValueError(f"{name}: every value must be > 0, got min {float(arr.min())!r}")
    return arr


def finite_tensor(value, name: str, *, ndim: Optional[int] = None, nonempty: bool = True,
                  floating: bool = True) -> torch.Tensor:
    """A torch tensor without NaN/Inf (returned as is, no copy).

    Parameters
    ----------
    ndim : int, optional
        Required number of dimensions.
    nonempty : bool
        Reject a tensor with no elements.
    floating : bool
        Require a floating dtype (else any real dtype; bool is never accepted).

    >>> finite_tensor(torch.ones(2, 3), "x", ndim=2).shape
    torch.Size([2, 3])
    >>> finite_tensor(torch.tensor([1.0, float("nan")]), "x")
    Traceback (most recent call last):
    ...
    ValueError: x: contains NaN or Inf
    """
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(value).__name__}")
    if value.dtype == torch.bool or value.is_complex() or (floating and not value.dtype.is_floating_point):
        want = "a floating point tensor" if floating else "a real tensor"
        raise ValueError(f"{name}: expected {want}, got dtype {value.dtype}")
    if ndim is not None and value.dim() != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d tensor, got shape {tuple(value.shape)}")
    if nonempty and value.numel() == 0:
        raise ValueError(f"{name}: expected a non-empty tensor, got shape {tuple(value.shape)}")
    if value.dtype.is_floating_point and not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name}: contains NaN or Inf")
    return value
