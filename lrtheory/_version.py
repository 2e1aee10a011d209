"""The package version, and the code version stored beside every computed sweep point."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Optional

__version__ = "0.1.0"

_CODE_VERSION: Optional[str] = None


def code_version() -> str:
    """``__version__``, plus ``+g<commit>`` (and ``.dirty``) when run from a git checkout.

    Example
    -------
    >>> code_version().startswith(__version__)
    True
    """
    global _CODE_VERSION
    if _CODE_VERSION is None:
        version = __version__
        root = Path(__file__).resolve().parent.parent
        try:
            if not (root / "pyproject.toml").is_file():  # an installed copy: no checkout to ask
                raise OSError
            commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                                    text=True, timeout=10)
            if commit.returncode == 0 and commit.stdout.strip():
                version += "+g" + commit.stdout.strip()
                dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "lrtheory"],
                                       cwd=root, capture_output=True, text=True, timeout=10)
                if dirty.returncode == 0 and dirty.stdout.strip():
                    version += ".dirty"
        except (OSError, subprocess.SubprocessError):
            pass
        _CODE_VERSION = version
    return _CODE_VERSION
