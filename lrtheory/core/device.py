"""Device, dtype and seeding choices shared by every measurement.

The rules are few and explicit:

* ``resolve_device(None)`` picks ``$LRTHEORY_DEVICE`` when set, else CUDA when
  present, else the CPU. Asking for CUDA on a machine without it is an error,
  never a silent fall-back.
* Checked numbers are computed in ``float64`` (:data:`DEFAULT_DTYPE`).
* Randomness comes from explicit :class:`torch.Generator` objects made by
  :func:`make_generator`, so the same seed gives the same result on the same
  device whatever else ran before.
* Seeds come from ONE rule, :func:`seed_for`: a hash of keys that name what a
  model is (chapter, measurement, architecture, seed index), so two models share
  a seed only if they share every key. No hand-written formulas (``base + depth``),
  which made neighbouring depths share most of their seeds.
  :func:`record_seeds` records every call, for tests that no two models collide.
"""
from __future__ import annotations

import contextlib
import hashlib
import math
import numbers
import os
import random
import struct
import threading
from typing import Iterator, List, Tuple, Union

import numpy as np
import torch

__all__ = [
    "DEFAULT_DTYPE",
    "ENV_DEVICE",
    "resolve_device",
    "resolve_dtype",
    "make_generator",
    "generator_key",
    "seed_everything",
    "seed_for",
    "record_seeds",
]

#: Environment variable that overrides the automatic device choice.
ENV_DEVICE = "LRTHEORY_DEVICE"

#: dtype of every checked computation.
DEFAULT_DTYPE = torch.float64

DeviceLike = Union[str, torch.device, None]


def resolve_device(device: DeviceLike = None) -> torch.device:
    """Return the torch device to compute on.

    Parameters
    ----------
    device : str, torch.device or None
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, a :class:`torch.device`, or None.
        None means ``$LRTHEORY_DEVICE`` if set, else ``"cuda"`` when CUDA is
        available, else ``"cpu"``.

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        If the name is not a device torch knows, or if CUDA is requested on a
        machine without a usable CUDA device.

    Example
    -------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if device is None:
        env = os.environ.get(ENV_DEVICE, "").strip()
        if env:
            device = env
        else:
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        try:
            dev = torch.device(device.strip().lower())
        except RuntimeError as exc:
            raise ValueError(f"device: unknown device {device!r} (use 'cpu' or 'cuda')") from exc
    else:
        raise ValueError(f"device: expected a str, torch.device or None, got {type(device).__name__}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device: {str(dev)!r} was requested but no CUDA device is available on this machine "
                f"(unset ${ENV_DEVICE} or pass device='cpu')"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device: {str(dev)!r} does not exist ({torch.cuda.device_count()} CUDA devices)")
    elif dev.type not in ("cpu", "mps"):
        raise ValueError(f"device: unsupported device type {dev.type!r} (use 'cpu' or 'cuda')")
    return dev


def resolve_dtype(dtype: Union[str, torch.dtype, None] = None) -> torch.dtype:
    """Return a floating torch dtype; None means :data:`DEFAULT_DTYPE` (float64).

    Raises
    ------
    ValueError
        If ``dtype`` is not a floating point dtype.
    """
    if dtype is None:
        return DEFAULT_DTYPE
    if isinstance(dtype, str):
        dt = getattr(torch, dtype, None)
        if not isinstance(dt, torch.dtype):
            raise ValueError(f"dtype: unknown dtype {dtype!r}")
        dtype = dt
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype: expected a floating point torch dtype, got {dtype!r}")
    return dtype


def make_generator(seed: int, device: DeviceLike = "cpu") -> torch.Generator:
    """A fresh :class:`torch.Generator` on ``device`` seeded with ``seed``.

    Raises
    ------
    ValueError
        If ``seed`` is not a non-negative integer.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    gen = torch.Generator(device=resolve_device(device))
    gen.manual_seed(int(seed))
    return gen


def generator_key(seed: int) -> int:
    """What torch's CPU generator keeps of ``seed``: its low 32 bits.

    ``manual_seed(s)`` seeds the Mersenne Twister from ``s mod 2**32``, so two seeds equal mod
    ``2**32`` draw the same numbers (``tests/test_device.py`` checks it on this torch). "No two
    models share a seed" therefore means distinct generator keys, not only distinct
    :func:`seed_for` values (63 bits).

    >>> generator_key(7) == generator_key(7 + 2**32)
    True
    """
    return int(seed) % 2**32


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (for user code and notebooks).

    Library code does not rely on global state; it takes explicit generators.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    torch.manual_seed(int(seed))


# ----------------------------------------------------------------------------- seed_for
#: Version tag hashed before the keys; changing the encoding means changing this tag.
_SEED_TAG = b"lrtheory.seed_for/v1"
_recorders: List[list] = []
_recorders_lock = threading.Lock()


def _encode_key(key, keys) -> bytes:
    # A type tag, a length and the payload, so that no two different key tuples share an
    # encoding: ("ab", "c") != ("a", "bc"), 1 != 1.0 != "1", (1, 2) != 1, 2 (nested).
    if isinstance(key, (bool, np.bool_)):
        raise ValueError(f"keys: a bool key is ambiguous (True == 1); pass int(flag) or a str, got {keys!r}")
    if key is None:
        return b"n0:"
    if isinstance(key, (numbers.Integral, np.integer)):
        payload = str(int(key)).encode()
        tag = b"i"
    elif isinstance(key, (float, np.floating)):
        x = float(key)
        if math.isnan(x):
            raise ValueError(f"keys: NaN is not a key (NaN != NaN), got {keys!r}")
        payload = (0.0 if x == 0.0 else x).hex().encode()  # exact; -0.0 and 0.0 are one key
        tag = b"f"
    elif isinstance(key, str):
        payload = key.encode("utf-8")
        tag = b"s"
    elif isinstance(key, tuple):
        payload = b"".join(_encode_key(k, keys) for k in key)
        tag = b"t" + str(len(key)).encode()
    else:
        raise ValueError(f"keys: expected ints, floats, strs, None or tuples of them, got "
                         f"{type(key).__name__} {key!r} in {keys!r}")
    return tag + str(len(payload)).encode() + b":" + payload


def seed_for(*keys) -> int:
    """The seed of the model named by ``keys``: the one seeding rule of the library.

    SHA-256 of a canonical, type-tagged encoding of the keys, truncated to a 63-bit
    non-negative ``int``. The result depends only on the keys: the same in every
    process, Python version and machine (no ``hash()``, no ``PYTHONHASHSEED``), and
    different keys give unrelated seeds.

    Parameters
    ----------
    *keys : int, float, str, None, or tuples of them
        Everything that distinguishes the model: chapter, measurement, architecture,
        seed index, and an LR only if runs at different LRs must be independent.
        Keys are typed: ``1``, ``1.0`` and ``"1"`` are three different keys;
        NumPy integers and floats count as Python ints and floats, ``-0.0`` as ``0.0``.

    Returns
    -------
    int
        In ``[0, 2**63)``: valid for :func:`make_generator`, ``torch.manual_seed`` and
        ``numpy.random.default_rng``.

    Raises
    ------
    ValueError
        Naming ``keys``: for no keys, a bool (ambiguous with an int), NaN, or a type
        without a canonical encoding (a list, a dict, an object).

    Examples
    --------
    >>> seed_for("catapult", "relu", 3, 64, 0) == seed_for("catapult", "relu", 3, 64, 0)
    True
    >>> seed_for("catapult", "relu", 3, 64, 0) == seed_for("catapult", "relu", 4, 64, 0)
    False
    >>> g = make_generator(seed_for("sharpness", "init", (3, 64), 0))
    """
    if not keys:
        raise ValueError("keys: expected at least one key")
    digest = hashlib.sha256(_SEED_TAG + _encode_key(tuple(keys), keys)).digest()
    seed = struct.unpack(">Q", digest[:8])[0] >> 1
    if _recorders:
        with _recorders_lock:
            for rec in _recorders:
                rec.append((tuple(keys), seed))
    return seed


@contextlib.contextmanager
def record_seeds() -> Iterator[List[Tuple[tuple, int]]]:
    """Record every :func:`seed_for` call made inside the block, in any thread.

    Yields a list that fills with ``(keys, seed)`` pairs in call order. Blocks nest:
    an inner block's calls are recorded by the outer one too.

    Examples
    --------
    >>> with record_seeds() as calls:
    ...     _ = seed_for("a", 0); _ = seed_for("a", 1)
    >>> [k for k, _ in calls]
    [('a', 0), ('a', 1)]
    """
    rec: List[Tuple[tuple, int]] = []
    with _recorders_lock:
        _recorders.append(rec)
    try:
        yield rec
    finally:
        with _recorders_lock:
            # by identity: two recorders holding equal lists are still two recorders
            del _recorders[next(i for i, r in enumerate(_recorders) if r is rec)]
