"""Shared fixtures: the toy chapter (tests/toy_chapter) registered as a sixth chapter."""
import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:  # the toy chapter is imported by name, also by sweep workers
    sys.path.insert(0, str(TESTS))


@pytest.fixture
def toy_registry(monkeypatch):
    """The registry with the toy chapter added: one line, as for a real chapter."""
    from lrtheory.verify import registry

    monkeypatch.setattr(registry, "CHAPTERS", registry.CHAPTERS + ["toy_chapter"])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH", "")])))
    import toy_chapter

    for m in toy_chapter.CHAPTER.measurements.values():
        m.cache_clear()
    return registry


@pytest.fixture
def only_toy(monkeypatch):
    """The registry holding the toy chapter alone (fast CLI tests)."""
    from lrtheory.verify import registry

    monkeypatch.setattr(registry, "CHAPTERS", ["toy_chapter"])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH", "")])))
    import toy_chapter

    for m in toy_chapter.CHAPTER.measurements.values():
        m.cache_clear()
    return registry
