"""The one list of chapters; every claim and every sweep of the book derives from it.

A sixth chapter is a package under ``lrtheory/results/`` and one line here.

Example
-------
>>> [c.key for c in chapters()][:2]
['sharpness', 'catapult']
"""
from __future__ import annotations

import importlib
from typing import Dict, Iterable, List, Optional

from lrtheory.verify.chapter import Chapter
from lrtheory.verify.claims import Claim

__all__ = ["CHAPTERS", "chapters", "chapter", "all_claims", "select", "sweeps", "sweeps_for"]

#: The chapters of the book, in book order: the packages that define ``CHAPTER``.
CHAPTERS: List[str] = [
    "lrtheory.results.sharpness",
    "lrtheory.results.catapult",
    "lrtheory.results.mup_depth",
    "lrtheory.results.elr",
    "lrtheory.results.balancing",
]


def chapters() -> List[Chapter]:
    """Every chapter, in book order (their packages are imported on first call)."""
    out = []
    for name in CHAPTERS:
        ch = getattr(importlib.import_module(name), "CHAPTER", None)
        if not isinstance(ch, Chapter):
            raise ValueError(f"CHAPTERS: {name!r} defines no CHAPTER = Chapter(...)")
        out.append(ch)
    keys = [c.key for c in out]
    if len(set(keys)) != len(keys):
        raise ValueError(f"CHAPTERS: chapter keys repeat: {keys}")
    return out


def chapter(key: str) -> Chapter:
    """The chapter called ``key``.

    Raises
    ------
    ValueError
        Naming the known keys, if none is called so.
    """
    found = {c.key: c for c in chapters()}
    if key not in found:
        raise ValueError(f"chapter: unknown chapter {key!r}; known: {', '.join(found)}")
    return found[key]


def all_claims() -> List[Claim]:
    """Every claim, in book order (chapter, then declaration)."""
    return [c for ch in chapters() for c in ch.claims]


def select(only: Optional[Iterable[str]] = None) -> List[Claim]:
    """Claims whose id equals, or starts with ``PREFIX.``, one of ``only`` (all when None).

    Raises
    ------
    ValueError
        If an entry of ``only`` matches no claim.
    """
    claims = all_claims()
    if only is None:
        return claims
    chosen, unknown = [], []
    for key in list(only):
        if not isinstance(key, str) or not key:
            raise ValueError(f"only: expected claim ids or prefixes, got {key!r}")
        hits = [c for c in claims if c.id == key or c.id.startswith(key.rstrip(".") + ".")]
        if not hits:
            unknown.append(key)
        chosen.extend(c for c in hits if c not in chosen)
    if unknown:
        raise ValueError(f"only: no claim matches {', '.join(map(repr, unknown))}; "
                         f"known ids: {', '.join(c.id for c in claims)}")
    return chosen


def sweeps() -> Dict[str, object]:
    """Every sweep of every chapter, by name."""
    out: Dict[str, object] = {}
    for ch in chapters():
        for s in ch.sweeps:
            if s.name in out:
                raise ValueError(f"sweeps: two sweeps are called {s.name!r}")
            out[s.name] = s
    return out


def sweeps_for(target: str) -> List[object]:
    """The sweeps of chapter ``target``, or the one sweep called ``target``.

    Raises
    ------
    ValueError
        Naming the chapters and sweeps, if ``target`` is neither.
    """
    all_ = sweeps()
    if target in all_:
        return [all_[target]]
    picked = [s for s in all_.values() if s.chapter == target]
    if not picked:
        keys = [c.key for c in chapters()]
        raise ValueError(f"sweep: {target!r} is neither a chapter ({', '.join(keys)}) nor a sweep "
                         f"({', '.join(sorted(all_))})")
    return picked
