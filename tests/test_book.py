"""The book's structure: the table of contents holds exactly the registry's chapters (plus the
verification and tools pages), and every chapter notebook has the same skeleton."""
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOC = (ROOT / "_toc.yml").read_text()
IN_TOC = re.findall(r"file:\s*chapters/([\w.-]+)", TOC)
EXTRA_PAGES = {"verification", "06_your_model"}  # pages that are not a paper's chapter


def _cells(stem):
    return json.loads((ROOT / "chapters" / f"{stem}.ipynb").read_text())["cells"]


def _src(cell):
    return "".join(cell["source"])


def _registry_chapters():
    from lrtheory.verify import registry

    return registry.chapters()


def test_toc_lists_exactly_the_registry_chapters_in_order():
    notebooks = [c.notebook for c in _registry_chapters()]
    assert [s for s in IN_TOC if s not in EXTRA_PAGES] == notebooks
    on_disk = {p.stem for p in (ROOT / "chapters").glob("*.ipynb")}
    assert set(IN_TOC) == on_disk  # no notebook outside the book, no page without a notebook


@pytest.mark.parametrize("stem", [s for s in IN_TOC])
def test_notebook_skeleton(stem):
    cells = _cells(stem)
    code = [c for c in cells if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", []), "the parameters cell comes first"
    assert re.search(r'^SCALE = "ci"', _src(code[0]), re.M)
    for c in code:
        assert "NBVAL_" not in _src(c), "nbval markers are cell tags, not comments"
        assert not re.search(r"^\s*(def|class) ", _src(c), re.M), "no function is defined in a notebook"
    assert any("nbval-check-output" in c["metadata"].get("tags", []) for c in code), "something is checked"
    assert all(c.get("outputs") is not None for c in code)


@pytest.mark.parametrize("ch", _registry_chapters(), ids=lambda ch: ch.key)
def test_chapter_notebook_imports_its_package_and_labels_its_verdicts(ch):
    from lrtheory.verify.report import verdict_anchor

    cells = _cells(ch.notebook)
    code = [c for c in cells if c["cell_type"] == "code"]
    assert f"from lrtheory.results.{ch.key} import CHAPTER" in _src(code[1]), "one import cell, second"
    labels = [_src(c).splitlines()[0] for c in cells if c["cell_type"] == "markdown" and _src(c)]
    assert f"({verdict_anchor(ch.key)})=" in labels, "the verdict section the verification page links to"
