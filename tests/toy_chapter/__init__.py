"""A throw-away sixth chapter: the template a new chapter follows, and the tests' toy sweeps.

Its result: for U uniform on [0, 1], E[U^2] = 1/3 (derived with sympy in derivation.py),
measured by Monte Carlo over independently seeded draws (measurements.py) and claimed within
four standard errors (claims.py). The tests register it with
``monkeypatch.setattr(registry, "CHAPTERS", registry.CHAPTERS + ["toy_chapter"])``: one line,
as a real chapter is one line in ``lrtheory/verify/registry.py``.
"""
from lrtheory.verify.chapter import Chapter

from toy_chapter.config import CONFIGS

CHAPTER = Chapter("template", module=__name__, notebook="99_toy", title="A toy chapter", configs=CONFIGS)

from toy_chapter import claims, measurements, sweep  # noqa: E402,F401  (declare them)
