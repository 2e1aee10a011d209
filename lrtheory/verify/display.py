"""Small notebook helpers shared by every chapter: equations, phase shading, log axes.

They only format what the library computed; nothing here computes a result.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

__all__ = ["show_equation", "shade_phases", "loglog", "plain_log_ticks"]


def show_equation(lhs: str, expr: Any, label: Optional[str] = None):
    """Display ``lhs = expr`` (``expr`` a sympy expression or a LaTeX string) as typeset math.

    Returns the IPython ``Math`` object (shown when it is a cell's last value).
    """
    from IPython.display import Math

    if not isinstance(expr, str):
        import sympy as sp

        expr = sp.latex(expr)
    text = f"{lhs} = {expr}"
    if label:
        text += rf"\tag{{{label}}}"
    return Math(text)


def shade_phases(ax, edges: Sequence[float], labels: Sequence[str], colors: Sequence[str] = ("#e8f1fb", "#fdf0e2",
                                                                                             "#fbe5e5", "#eeeeee"),
                 alpha: float = 0.8) -> None:
    """Shade the vertical bands between consecutive ``edges`` (len(labels) + 1 of them) and
    write each band's label at the top of the axes."""
    if len(edges) != len(labels) + 1:
        raise ValueError(f"edges: expected {len(labels) + 1} edges for {len(labels)} labels, got {len(edges)}")
    for i, label in enumerate(labels):
        lo, hi = edges[i], edges[i + 1]
        ax.axvspan(lo, hi, color=colors[i % len(colors)], alpha=alpha, lw=0, zorder=0)
        ax.text((lo + hi) / 2 if ax.get_xscale() == "linear" else (lo * hi) ** 0.5, 0.98, label,
                transform=ax.get_xaxis_transform(), ha="center", va="top", fontsize=9)


def loglog(ax, xlabel: str, ylabel: str) -> None:
    """Log scales on both axes (a power law is a line) with the given labels."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def plain_log_ticks(ax, axis: str = "x", ticks: Optional[Sequence[float]] = None) -> None:
    """Plain numbers (``16``, ``64``, ``0.5``) instead of powers of ten on a log axis, at
    ``ticks`` (default: the axis' major ticks), no minor labels."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    if axis not in ("x", "y"):
        raise ValueError(f"axis: expected 'x' or 'y', got {axis!r}")
    target = ax.xaxis if axis == "x" else ax.yaxis
    if ticks is not None:
        target.set_ticks(list(ticks))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())
