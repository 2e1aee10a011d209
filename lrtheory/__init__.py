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

__version__ = "0.1.0"

# public name -> submodule of lrtheory.tools that defines it
_TOOLS = {
    "sharpness": "hessian",
    "hessian_eigs": "hessian",
    "hessian_trace": "hessian",
    "hessian_density": "hessian",
    "max_initial_lr": "max_lr",
    "MaxLRResult": "max_lr",
    "catapult_range": "catapult",
    "CatapultRange": "catapult",
    "depth_scaled_lr": "depth",
    "layer_lr_multipliers": "depth",
    "ELRWarmup": "elr_warmup",
}

# Transitional (issue 12): names the package exported before the tools/verify split, kept
# until every notebook imports them from their new home; the lead deletes this map.
_LEGACY = {
    "Claim": "lrtheory.claims",
    "Tolerance": "lrtheory.claims",
    "Verdict": "lrtheory.claims",
    "check_claims": "lrtheory.claims",
    "select": "lrtheory.claims",
    "verdict_table": "lrtheory.claims",
    "resolve_device": "lrtheory.core.device",
    "resolve_dtype": "lrtheory.core.device",
    "seed_everything": "lrtheory.core.device",
}

# Transitional (issue 12): where a tool lived before lrtheory/tools/ held it; used only while
# its tools module does not exist yet. The lead deletes this map with _LEGACY.
_OLD_HOME = {"catapult": "lrtheory.results.catapult", "depth": "lrtheory.results.mup_depth"}

__all__ = sorted(_TOOLS) + ["__version__"]


def __getattr__(name: str):
    if name in _TOOLS:
        module = f"lrtheory.tools.{_TOOLS[name]}"
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module or _TOOLS[name] not in _OLD_HOME:
                raise
            module = _OLD_HOME[_TOOLS[name]]
    elif name in _LEGACY:
        module = _LEGACY[name]
    else:
        raise AttributeError(f"module 'lrtheory' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
