"""Re-execute chapter notebooks in place so committed outputs come from the current code.

Usage: python scripts/execute_notebooks.py [NOTEBOOK ...]   (default: chapters/*.ipynb)

Each notebook runs top to bottom in a fresh kernel of this interpreter, with its
working directory set to the notebook's folder; a cell that raises stops the run
with a non-zero exit. Execution counts and outputs are rewritten; nothing else.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def execute(path: Path, timeout: int) -> float:
    nb = nbformat.read(path, as_version=4)
    t0 = time.perf_counter()
    # Same thread counts as the nbval run, so reductions happen in the same order.
    env_note = os.environ.setdefault("PYTHONHASHSEED", "0")
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    for cell in nb.cells:  # keep diffs small: no per-run timing metadata
        cell.get("metadata", {}).pop("execution", None)
    nbformat.write(nb, path)
    del env_note
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("notebooks", nargs="*", type=Path)
    p.add_argument("--timeout", type=int, default=900, help="seconds per cell (default 900)")
    args = p.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "chapters").glob("*.ipynb"))
    for path in paths:
        if not path.exists():
            print(f"no such notebook: {path}", file=sys.stderr)
            return 2
        print(f"executing {path} ...", flush=True)
        print(f"  done in {execute(path, args.timeout):.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
