"""The committed outputs of chapters/05_balancing.ipynb are what the code produces today.

nbval (``--nbval-lax``: only cells tagged ``nbval-check-output`` are compared, text-exact)
must pass three runs in a row, and must fail on a copy of the notebook in which one digit of
the checked verdict table was changed.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "chapters" / "05_balancing.ipynb"

pytestmark = pytest.mark.slow


def _nbval(path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.setdefault("PYTHONHASHSEED", "0")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider", "-q", str(path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )


def _checked(cell: dict) -> bool:
    return cell["cell_type"] == "code" and "nbval-check-output" in cell.get("metadata", {}).get("tags", [])


def _verdict_cell(nb: dict) -> dict:
    for cell in nb["cells"]:
        if _checked(cell) and "verdict_table" in "".join(cell.get("source", "")):
            return cell
    raise AssertionError("no checked verdict-table cell in the notebook")


def test_notebook_has_outputs_and_checked_cells():
    nb = json.loads(NOTEBOOK.read_text())
    checked = [c for c in nb["cells"] if _checked(c)]
    assert len(checked) >= 5
    assert all(c.get("outputs") for c in checked), "checked cells must carry committed outputs"
    assert "PASS" in "".join("".join(o.get("text", "")) for o in _verdict_cell(nb)["outputs"])


def test_nbval_passes_three_times_in_a_row():
    for i in range(3):
        res = _nbval(NOTEBOOK)
        assert res.returncode == 0, f"run {i + 1}:\n{res.stdout[-4000:]}\n{res.stderr[-2000:]}"


def test_nbval_fails_when_a_checked_output_is_altered(tmp_path):
    nb = json.loads(NOTEBOOK.read_text())
    cell = _verdict_cell(nb)
    out = next(o for o in cell["outputs"] if o.get("output_type") == "stream")
    text = "".join(out["text"])
    # change the first digit of the first predicted number of the verdict table
    lines = text.split("\n")
    row = next(i for i, ln in enumerate(lines) if ln.lstrip().startswith("predicted") and re.search(r"(?<==)\d", ln))
    m = re.search(r"(?<==)\d", lines[row])
    d = lines[row][m.start()]
    lines[row] = lines[row][: m.start()] + str((int(d) + 1) % 10) + lines[row][m.start() + 1:]
    out["text"] = "\n".join(lines)
    altered = tmp_path / NOTEBOOK.name
    altered.write_text(json.dumps(nb, indent=1))
    res = _nbval(altered)
    assert res.returncode != 0, "nbval should fail on an altered checked output"
    assert "outputs differ" in res.stdout


def test_notebook_follows_the_chapter_skeleton():
    from lrtheory.verify.report import verdict_anchor

    nb = json.loads(NOTEBOOK.read_text())
    cells = nb["cells"]
    assert "".join(cells[0]["source"]).startswith("(sec-balancing)=\n# ")
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code[0]["metadata"].get("tags") == ["parameters"]
    assert "".join(code[0]["source"]) == 'SCALE = "ci"\nDEVICE = None'
    imports = "".join(code[1]["source"])
    assert "hide-input" in code[1]["metadata"].get("tags", [])
    assert "from lrtheory.results.balancing import CHAPTER, derivation as D, analysis as A, measurements as M" \
        in imports and "cfg = CHAPTER.config(SCALE)" in imports
    labels = ["".join(c["source"]).split("\n", 1)[0] for c in cells if c["cell_type"] == "markdown"]
    assert f"({verdict_anchor('balancing')})=" in labels
    for c in code:  # markers are tags, and no function is defined in the notebook
        src = "".join(c["source"])
        assert "NBVAL" not in src and "\ndef " not in "\n" + src and "lambdify" not in src
