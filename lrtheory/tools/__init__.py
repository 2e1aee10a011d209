"""The tools a practitioner runs on their own model and data (import only :mod:`lrtheory.core`).

* :mod:`lrtheory.tools.hessian`: sharpness and the Hessian spectrum of any ``nn.Module`` over a
  data set, on the operators of :mod:`lrtheory.tools.operators` (Hessian, Gauss-Newton) and the
  algorithms of :mod:`lrtheory.tools.spectrum` (eigenpairs, trace, spectral density).
* :mod:`lrtheory.tools.max_lr`: ``max_initial_lr``, the eta* search.
* :mod:`lrtheory.tools.catapult`: ``catapult_range``, the catapult phases from the NTK.
* :mod:`lrtheory.tools.depth`: ``depth_scaled_lr``, muP learning rates across depth.
* :mod:`lrtheory.tools.elr_warmup`: ``ELRWarmup``, the hyper-parameter-free warm-up.

Submodules are imported on first use of a name, so ``import lrtheory.tools`` is cheap.
"""
from __future__ import annotations

import importlib

_WHERE = {
    "sharpness": "hessian",
    "SharpnessResult": "hessian",
    "hessian_eigs": "hessian",
    "hessian_trace": "hessian",
    "hessian_density": "hessian",
    "HessianOperator": "operators",
    "GaussNewtonOperator": "operators",
    "CurvatureOperator": "operators",
    "EigsResult": "spectrum",
    "TraceResult": "spectrum",
    "DensityResult": "spectrum",
    "max_initial_lr": "max_lr",
    "MaxLRResult": "max_lr",
    "catapult_range": "catapult",
    "CatapultRange": "catapult",
    "depth_scaled_lr": "depth",
    "layer_lr_multipliers": "depth",
    "ELRWarmup": "elr_warmup",
    "unit_elrs": "elr_warmup",
}

__all__ = sorted(_WHERE)


def __getattr__(name):
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(f"module 'lrtheory.tools' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"lrtheory.tools.{mod}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
