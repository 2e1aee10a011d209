"""lrtheory: how large can a learning rate be? Tools for your own model, and an executable book.

The package namespace holds the user tools only (see :mod:`lrtheory.tools`), loaded on first
use: ``import lrtheory`` imports neither sympy nor the book's chapters and registers nothing.

* curvature of any ``nn.Module`` over a data set: :func:`sharpness`, :func:`hessian_eigs`,
  :func:`hessian_trace`, :func:`hessian_density`;
* :func:`max_initial_lr` (eta* search, :class:`MaxLRResult`);
* :func:`catapult_range` (:class:`CatapultRange`), :func:`depth_scaled_lr`,
  :func:`layer_lr_multipliers`;
* :class:`ELRWarmup`, a hyper-parameter-free warm-up scheduler.

The book's verification framework is :mod:`lrtheory.verify`, its chapters :mod:`lrtheory.results`.
"""
from __future__ import annotations

import importlib

from lrtheory._version import __version__

# the package's face: these names of lrtheory.tools (whose own table says where each lives)
_TOOLS = ("sharpness", "hessian_eigs", "hessian_trace", "hessian_density", "max_initial_lr", "MaxLRResult",
          "catapult_range", "CatapultRange", "depth_scaled_lr", "layer_lr_multipliers", "ELRWarmup")

__all__ = sorted(_TOOLS) + ["__version__"]


def __getattr__(name: str):
    if name in ("tools", "core"):  # the light subpackages, as attributes without an explicit import
        return importlib.import_module(f"lrtheory.{name}")
    if name not in _TOOLS:
        raise AttributeError(f"module 'lrtheory' has no attribute {name!r}")
    value = getattr(importlib.import_module("lrtheory.tools"), name)  # lrtheory.tools loads it lazily
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
