"""The toy chapter's extra sweep ``toy``: a cheap deterministic function of (x, seed), for the
tests of the sweep machinery (moved out of the library: users never see it)."""
import hashlib
import math
import time
from typing import Any, Dict, List

from lrtheory.core.sweep import Param, SweepDef

from toy_chapter import CHAPTER

TOY_SCHEMA = {
    "x": Param("float"),
    "seed": Param("int", nonneg=True),
    "delay": Param("float", nonneg=True, default=0.0),
}


def toy_points(scale: str = "ci") -> List[Dict[str, Any]]:
    """``ci`` and ``reference``: 2 seeds x 12 values of x in [-1, 2] plus x = 150 (diverges):
    26 points; ``full``: 4 seeds x 100 values (+ the diverging one)."""
    if scale not in ("ci", "reference", "full"):
        raise ValueError(f"scale: expected 'ci', 'reference' or 'full', got {scale!r}")
    n, seeds = (100, (0, 1, 2, 3)) if scale == "full" else (12, (0, 1))
    xs = [round(-1.0 + 3.0 * i / (n - 1), 6) for i in range(n)] + [150.0]
    return [{"x": x, "seed": s} for s in seeds for x in xs]


def run_toy_batch(configs: List[Dict[str, Any]], device) -> List[Dict[str, Any]]:
    """``y = sin(x) + u(seed, x)`` with ``u`` a hash-derived number in [0, 1); sleeps ``delay``
    seconds per point; ``x >= 100`` diverges (``y`` null)."""
    out = []
    for c in configs:
        if c["delay"]:
            time.sleep(c["delay"])
        u = int(hashlib.sha256(f"{c['seed']}:{c['x']!r}".encode()).hexdigest()[:12], 16) / 16.0 ** 12
        diverged = c["x"] >= 100
        out.append({"y": None if diverged else math.sin(c["x"]) + u, "diverged": diverged})
    return out


TOY = CHAPTER.add_sweep(SweepDef(
    name="toy",
    chapter="template",
    description="cheap deterministic function of (x, seed), for testing the sweep machinery",
    points=toy_points,
    run_batch=run_toy_batch,
    schema=TOY_SCHEMA,
    group_by=("seed",),
    batch_size=4,
))
