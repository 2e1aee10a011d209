"""Device, dtype and seeding choices shared by every measurement.

The rules are few and explicit:

* ``resolve_device(None)`` picks ``$LRTHEORY_DEVICE`` when set, else CUDA when
  present, else the CPU. Asking for CUDA on a machine without it is an error,
  never a silent fall-back.
* Checked numbers are computed in ``float64`` (:data:`DEFAULT_DTYPE`).
* Randomness comes from explicit :class:`torch.Generator` objects made by
  :func:`make_generator`, so the same seed gives the same result on the same
  device whatever else ran before.
"""
from __future__ import annotations

import os
import random
from typing import Union

import numpy as np
import torch

__all__ = [
    "DEFAULT_DTYPE",
    "ENV_DEVICE",
    "resolve_device",
    "resolve_dtype",
    "make_generator",
    "seed_everything",
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


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (for user code and notebooks).

    Library code does not rely on global state; it takes explicit generators.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)
    torch.manual_seed(int(seed))
