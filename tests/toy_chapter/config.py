"""Configs of the toy chapter, one frozen dataclass per scale."""
import os
from dataclasses import dataclass
from typing import Tuple


@dataclass(frozen=True)
class ToyConfig:
    n: int                      # draws per seed
    seeds: Tuple[int, ...]      # seed indices (each its own seed_for)
    delay: float = 0.0          # seconds each part sleeps (for the kill-and-resume test)


CONFIGS = {
    "ci": ToyConfig(n=4000, seeds=(0, 1, 2, 3)),
    # LRTHEORY_TOY_DELAY slows each part down, so a test can kill the sweep midway
    "reference": ToyConfig(n=20000, seeds=tuple(range(6)), delay=float(os.environ.get("LRTHEORY_TOY_DELAY", 0))),
}
