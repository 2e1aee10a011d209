"""The toy chapter's one claim."""
import numpy as np

from lrtheory.verify.claims import Tolerance

from toy_chapter import CHAPTER
from toy_chapter.derivation import derive_second_moment
from toy_chapter.measurements import measure_draws, measure_se


def _measure(cfg, device):
    draws = measure_draws.of(cfg, device)
    return {"m2": float(draws.mean()), "m2_se": float(measure_se.of(cfg, device) / np.sqrt(len(draws)))}


SECOND_MOMENT = CHAPTER.claim(
    "template.second_moment",
    statement="E[U^2] = 1/3 for U uniform on [0, 1]",
    source="derived here (a textbook integral)",
    tolerance=Tolerance(4, "sigma", "4 Monte Carlo standard errors"),
    predict=lambda cfg: {"m2": derive_second_moment().value},
    measure=_measure,
)
