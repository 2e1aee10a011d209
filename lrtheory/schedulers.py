"""Moved to :mod:`lrtheory.tools.elr_warmup` (temporary re-export)."""
from lrtheory.tools.elr_warmup import ELRWarmup, _sgd_gain, unit_elrs  # noqa: F401
