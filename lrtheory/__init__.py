"""lrtheory: the theory of neural-network learning rates, derived symbolically and checked numerically.

Public entry points are re-exported here; see README.md and DESIGN.md for the layout.
"""
from lrtheory.claims import Claim, Tolerance, Verdict, check_claims, select, verdict_table
from lrtheory.core.curvature import sharpness
from lrtheory.core.device import resolve_device, resolve_dtype, seed_everything
from lrtheory.schedulers import ELRWarmup
from lrtheory.results.catapult import CatapultRange, catapult_range
from lrtheory.results.mup_depth import depth_scaled_lr, layer_lr_multipliers
from lrtheory.search import MaxLRResult, max_initial_lr

__version__ = "0.1.0"

__all__ = [
    "Claim",
    "Tolerance",
    "Verdict",
    "check_claims",
    "select",
    "verdict_table",
    "sharpness",
    "ELRWarmup",
    "max_initial_lr",
    "MaxLRResult",
    "catapult_range",
    "CatapultRange",
    "depth_scaled_lr",
    "layer_lr_multipliers",
    "resolve_device",
    "resolve_dtype",
    "seed_everything",
    "__version__",
]
