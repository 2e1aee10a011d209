"""The layers of DESIGN.md, walked from the source: dependencies point down only.

core imports only core; tools import only core (and tools); verify imports only core and
verify; nothing outside results/ imports results statically (the registry imports chapters
by name, the CLI and notebooks through it); `import lrtheory` loads no sympy, no chapter and
no claim."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "lrtheory"


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path):
    """Every lrtheory module a file imports (absolute or relative, top level or inside functions)."""
    tree = ast.parse(path.read_text(), str(path))
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "lrtheory")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] == "lrtheory":
                out.add(mod)
                out.update(f"{mod}.{a.name}" for a in node.names)  # `from lrtheory import results`
    return out


ALLOWED = {
    "lrtheory.core": ("lrtheory.core",),
    "lrtheory.tools": ("lrtheory.core", "lrtheory.tools"),
    "lrtheory.verify": ("lrtheory.core", "lrtheory.verify"),
    "lrtheory._version": (),
}


def _layer(mod: str):
    for prefix in sorted(ALLOWED, key=len, reverse=True):
        if mod == prefix or mod.startswith(prefix + "."):
            return prefix
    return None


def _violations():
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        mod = _module_name(path)
        layer = _layer(mod)
        for imp in _imports(path):
            if imp in ("lrtheory",) or imp.startswith("lrtheory._version"):
                target_ok = layer != "lrtheory._version"
            elif layer is not None:
                target_ok = any(imp == a or imp.startswith(a + ".") for a in ALLOWED[layer])
            else:
                target_ok = True
            # only results/ itself imports results (the registry and CLI go by name)
            if (imp == "lrtheory.results" or imp.startswith("lrtheory.results.")) and not mod.startswith(
                    "lrtheory.results"):
                target_ok = False
            if mod == "lrtheory" and not (imp.startswith("lrtheory.tools") or imp.startswith("lrtheory._version")):
                target_ok = False  # the package's face: the user tools and the version, nothing else
            if not target_ok:
                bad.append(f"{mod} imports {imp}")
    return bad


def test_no_import_points_up():
    assert _violations() == []


def test_the_walker_sees_an_upward_import(tmp_path, monkeypatch):
    """The walk itself can fail: a core module importing verify is reported."""
    fake = PKG / "core" / "_layer_probe.py"
    fake.write_text("def f():\n    from lrtheory.verify import claims\n    from ..results import catapult\n")
    try:
        bad = _violations()
    finally:
        fake.unlink()
    assert "lrtheory.core._layer_probe imports lrtheory.verify" in bad
    assert any(b.startswith("lrtheory.core._layer_probe imports lrtheory.results") for b in bad)


def test_import_lrtheory_loads_no_sympy_chapter_or_claim():
    code = ("import sys, lrtheory; before = set(sys.modules); lrtheory.sharpness; lrtheory.ELRWarmup; "
            "bad = [m for m in sys.modules if m == 'sympy' or m.startswith(('lrtheory.results', 'lrtheory.verify'))]; "
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_import_cost_at_most_1_3x_torch():
    """`import lrtheory` (and touching a tool) costs at most 1.3x `import torch` alone:
    the best of 5 fresh interpreters each, interleaved (load on the machine hits both)."""
    sys.path.insert(0, str(PKG.parent / "benchmarks"))
    try:
        from bench_import import measure
    finally:
        sys.path.pop(0)
    t = measure(repeats=5)
    assert t["lrtheory"] <= 1.3 * t["torch"], t
    assert t["lrtheory+tool"] <= 1.3 * t["torch"], t
