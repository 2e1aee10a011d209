"""Measurements of the toy chapter: a decomposed one (one point per seed) and one depending on it."""
import time

import numpy as np
import torch

from lrtheory.core.device import make_generator, seed_for

from toy_chapter import CHAPTER


def _part_value(cfg, device, part):
    if cfg.delay:
        time.sleep(cfg.delay)
    g = make_generator(seed_for("toy", "draws", part["seed"]), "cpu")
    u = torch.rand(cfg.n, generator=g, dtype=torch.float64)
    return float((u ** 2).mean())


@CHAPTER.measurement(parts=lambda cfg: [{"seed": s} for s in cfg.seeds],
                     combine=lambda cfg, values: np.asarray(values, dtype=np.float64))
def measure_draws(cfg, device, part):
    """Per seed: the mean of U^2 over ``cfg.n`` draws."""
    return _part_value(cfg, device, part)


@CHAPTER.measurement
def measure_spread(cfg, device):
    """Standard deviation of U^2 over one large draw (an undecomposed measurement)."""
    g = make_generator(seed_for("toy", "spread"), "cpu")
    u = torch.rand(cfg.n, generator=g, dtype=torch.float64)
    return float((u ** 2).std())


@CHAPTER.measurement(depends=("measure_spread",))
def measure_se(cfg, device):
    """Standard error of a per-seed mean, from the spread (depends on measure_spread)."""
    return measure_spread.of(cfg, device) / np.sqrt(cfg.n)
