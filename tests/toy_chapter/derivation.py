"""sympy only: the second moment of a uniform variable."""
from dataclasses import dataclass
from functools import lru_cache

import sympy as sp


@dataclass(frozen=True)
class SecondMoment:
    expr: sp.Expr
    value: float


@lru_cache(maxsize=None)
def derive_second_moment() -> SecondMoment:
    """E[U^2] for U ~ Uniform[0, 1], integrated symbolically."""
    u = sp.Symbol("u", real=True)
    expr = sp.integrate(u ** 2, (u, 0, 1))
    return SecondMoment(expr=expr, value=float(expr))
