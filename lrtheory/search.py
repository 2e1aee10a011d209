"""Moved to :mod:`lrtheory.tools.max_lr` (temporary re-export)."""
from lrtheory.tools.max_lr import DEFAULT_GRID, METRICS, LRRun, MaxLRResult, max_initial_lr  # noqa: F401
