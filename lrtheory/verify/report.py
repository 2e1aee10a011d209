"""Running claims and reporting verdicts: text tables for nbval, HTML for the verification page.

Example
-------
>>> from lrtheory.verify.claims import Claim, Tolerance
>>> c = Claim(id="demo.one", chapter="demo", statement="1 = 1", source="derived here",
...           tolerance=Tolerance(0, "abs", "exact"), predict=lambda s: 1.0, measure=lambda s, d: 1.0)
>>> print(verdict_table(run_claims([c], "ci", "cpu")))
claim     predicted  measured  tolerance  verdict
--------  ---------  --------  ---------  -------
demo.one  1          1         abs 0      PASS
"""
from __future__ import annotations

import html
import math
import textwrap
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

from lrtheory.verify.claims import Claim, Value, Verdict, check_scale

__all__ = ["run_claims", "verdict_table", "verdict_summary", "format_value", "summary_line", "html_table",
           "verdict_anchor"]


def run_claims(claims: Sequence[Claim], scale: str = "ci", device: Any = None,
               progress: Optional[Callable[[int, int, Claim, Optional[Verdict]], None]] = None,
               catch: bool = True) -> List[Verdict]:
    """Check ``claims`` in order; a claim that raises becomes a failed verdict when ``catch``.

    ``progress(i, n, claim, verdict)`` is called before (verdict None) and after each claim.
    """
    from lrtheory.core.device import resolve_device

    check_scale(scale)
    dev = resolve_device(device)
    out = []
    for i, claim in enumerate(claims):
        if progress:
            progress(i, len(claims), claim, None)
        t0 = time.perf_counter()
        try:
            verdict = claim.check(scale, dev)
        except Exception as exc:  # reported as a failure, the run goes on
            if not catch:
                raise
            verdict = Verdict(claim.id, claim.chapter, claim.statement, claim.source, math.nan, math.nan,
                              claim.tolerance, False, {"error": f"{type(exc).__name__}: {exc}"},
                              time.perf_counter() - t0, scale, "pass")  # an error is never as expected
        out.append(verdict)
        if progress:
            progress(i, len(claims), claim, verdict)
    return out


def format_value(v: Value, digits: int = 4) -> str:
    """Numbers at ``digits`` significant digits; dicts as ``name=value`` pairs.

    Example
    -------
    >>> format_value({"a": 1.23456, "b": float("nan")})
    'a=1.235, b=nan'
    """
    if isinstance(v, dict):
        return ", ".join(f"{k}={format_value(x, digits)}" for k, x in v.items())
    if not math.isfinite(v):
        return str(v)
    if v == 0:
        return "0"
    return f"{v:.{digits}g}"


def verdict_table(verdicts: Sequence[Verdict], digits: int = 4, width: int = 76) -> str:
    """Plain text of verdicts, stable for nbval and readable at page width.

    When one row per claim (claim, predicted, measured, tolerance, verdict) fits in
    ``width`` characters it is a table; otherwise each claim is a block: its id and
    verdict on one line, then predicted / measured / tolerance indented and wrapped.
    Numbers are printed at ``digits`` significant digits.
    """
    rows = [("claim", "predicted", "measured", "tolerance", "verdict")]
    for v in verdicts:
        rows.append((v.id, format_value(v.predicted, digits), format_value(v.measured, digits),
                     str(v.tolerance), v.label))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    if sum(widths) + 2 * 4 <= width:
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)
    blocks = []
    for cid, pred, meas, tol, verdict in rows[1:]:
        lines = [cid.ljust(max(len(cid), width - 2 - len(verdict))) + "  " + verdict]
        for label, text in (("predicted", pred), ("measured", meas), ("tolerance", tol)):
            lines.extend(textwrap.wrap(text, width=width, initial_indent=f"  {label:<10} ",
                                       subsequent_indent=" " * 13, break_on_hyphens=False) or [f"  {label}"])
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def verdict_summary(verdicts: Sequence[Verdict]) -> str:
    """Each claim's id and verdict, then :func:`summary_line`: the checked view of a table whose
    measured numbers are not stable across machines (e.g. bisection brackets), shown beside it.

    Example
    -------
    >>> from lrtheory.verify.claims import Claim, Tolerance
    >>> c = Claim(id="demo.one", chapter="demo", statement="1 = 1", source="derived here",
    ...           tolerance=Tolerance(0, "abs", "exact"), predict=lambda s: 1.0, measure=lambda s, d: 1.0)
    >>> print(verdict_summary(run_claims([c], "ci", "cpu")))
    demo.one  PASS
    1 passed, 0 failed
    """
    width = max((len(v.id) for v in verdicts), default=0)
    lines = [f"{v.id.ljust(width)}  {v.label}" for v in verdicts]
    return "\n".join(lines + [summary_line(verdicts)])


def summary_line(verdicts: Sequence[Verdict]) -> str:
    """``"N passed, M failed"`` (``", K not reproduced"`` when claims fail as their chapter
    reports): the closing line of ``lrtheory verify`` and of the book's page. ``failed`` counts
    every outcome other than the one the book reports."""
    n_pass = sum(v.passed and v.expect == "pass" for v in verdicts)
    n_known = sum((not v.passed) and v.expect == "fail" for v in verdicts)
    line = f"{n_pass} passed, {len(verdicts) - n_pass - n_known} failed"
    return line + (f", {n_known} not reproduced" if n_known else "")


def verdict_anchor(chapter_key: str) -> str:
    """The MyST label (and HTML anchor) of the section that shows a chapter's verdict table."""
    return f"sec-{chapter_key.replace('_', '-')}-verdicts"


def _breakable(name: str) -> str:
    """Let a long dotted id wrap in a narrow column (after dots and underscores)."""
    return html.escape(name).replace(".", ".<wbr>").replace("_", "_<wbr>")


def html_table(verdicts: Sequence[Verdict], chapters: Dict[str, Any], *, page_prefix: str = "") -> str:
    """The verification page's table: every verdict with statement, source, full tolerance reason,
    time, and links to its chapter page and that page's verdict section.

    ``chapters`` maps a chapter key to its :class:`~lrtheory.verify.chapter.Chapter` (title,
    notebook); ``page_prefix`` is prepended to ``<notebook>.html`` in links.
    """
    rows = []
    for v in verdicts:
        ch = chapters.get(v.chapter)
        page = f"{page_prefix}{ch.notebook}.html" if ch is not None else None
        title = ch.title if ch is not None else v.chapter

        def link(text, anchor=None):
            if page is None:
                return text
            href = page + (f"#{anchor}" if anchor else "")
            return f'<a href="{html.escape(href)}">{text}</a>'

        verdict = v.label
        colour = "#1a7f37" if v.passed and v.as_expected else ("#9a6700" if v.as_expected else "#cf222e")
        error = v.details.get("error") if isinstance(v.details, dict) else None
        error = error if isinstance(error, str) else None
        tol = v.tolerance.reason if v.tolerance.kind == "custom" else f"{v.tolerance}: {v.tolerance.reason}"
        rows.append(
            "<tr>"
            f"<td>{link(_breakable(title))}</td>"
            f"<td><code>{link(_breakable(v.id), verdict_anchor(v.chapter))}</code></td>"
            f"<td>{html.escape(v.statement)}<br><span style=\"color:#57606a\">{html.escape(v.source)}</span></td>"
            f"<td>{html.escape(format_value(v.predicted))}</td>"
            f"<td>{html.escape(error if error else format_value(v.measured))}</td>"
            f"<td>{html.escape(tol)}</td>"
            f'<td style="color:{colour}; font-weight:bold">{verdict}</td>'
            f'<td style="text-align:right">{v.seconds:.1f}</td>'
            "</tr>")
    widths = [9, 13, 24, 14, 14, 15, 7, 4]  # percent of the page width
    names = ["chapter", "claim", "statement and source", "predicted", "measured", "tolerance", "verdict", "s"]
    head = "".join(f'<th style="width:{w}%">{n}</th>' for w, n in zip(widths, names))
    return ('<table class="lrtheory-verdicts" style="table-layout:fixed; width:100%; font-size:85%">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
