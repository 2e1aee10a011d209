"""lrtheory: the theory of neural-network learning rates, derived symbolically and checked numerically.

Public entry points are re-exported here; see DESIGN.md for the layout.
"""
from lrtheory.claims import Claim, Tolerance, Verdict, check_claims, select, verdict_table
from lrtheory.core.device import resolve_device, resolve_dtype, seed_everything

__version__ = "0.1.0"

__all__ = [
    "Claim",
    "Tolerance",
    "Verdict",
    "check_claims",
    "select",
    "verdict_table",
    "resolve_device",
    "resolve_dtype",
    "seed_everything",
    "__version__",
]
