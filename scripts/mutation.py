"""Mutation testing of lrtheory, one module at a time (``make mutation``).

For every module named in ``[tool.mutmut.modules]`` of pyproject.toml (a module path and the
test files that check it), this script

1. copies ``lrtheory/``, ``tests/`` and a generated ``pyproject.toml`` into a scratch
   directory outside the working tree (``--workdir``, default
   ``$TMPDIR/lrtheory-mutation/<module>``), whose ``[tool.mutmut]`` mutates that one module
   (``only_mutate``) and runs only its test files (``pytest_add_cli_args_test_selection``);
2. runs ``mutmut run`` there (mutmut 3, the ``mutation`` extra), niced and with one BLAS
   thread; mutmut runs each mutant against the tests that reach the mutated function;
3. prints, per module, killed / total and every surviving mutant with its diff, and writes
   the same to ``<workdir>/report.md``.

A mutant counts as killed when a test fails (or it times out); "no tests" mutants (code no
selected test reaches) count as survivors: the score is killed / total.

Usage::

    python scripts/mutation.py                      # every configured module
    python scripts/mutation.py lrtheory/core/stats.py
    python scripts/mutation.py --list               # the modules and their tests
    python scripts/mutation.py --rerun lrtheory/core/stats.py   # the survivors again, new tests
    make mutation MODULES="lrtheory/core/stats.py"

Slow (minutes per module on one core) and not part of CI.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
KILLED = {"killed", "timeout", "caught by type check"}


def load_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} to TOML")


def split_tests(entry: list):
    """A module's entry: test files, then (from the first item starting with "-") extra pytest
    arguments for every run of that module, e.g. ``"-k", "not dask"``."""
    i = next((j for j, t in enumerate(entry) if t.startswith("-")), len(entry))
    return list(entry[:i]), list(entry[i:])


def scoped_pyproject(data: dict, module: str, tests: list) -> str:
    """The scratch pyproject.toml: mutmut scoped to one module, pytest options as in the tree."""
    mm = {k: v for k, v in data["tool"]["mutmut"].items() if not isinstance(v, dict)}
    files, extra = split_tests(tests)
    mm["only_mutate"] = [module]
    mm["pytest_add_cli_args_test_selection"] = files
    mm["pytest_add_cli_args"] = list(mm.get("pytest_add_cli_args", [])) + extra
    lines = ["[tool.mutmut]"] + [f"{k} = {_toml_value(v)}" for k, v in mm.items()]
    lines.append("")
    lines.append("[tool.pytest.ini_options]")
    for k, v in data["tool"]["pytest"]["ini_options"].items():
        if k == "testpaths":
            continue
        lines.append(f"{k} = {_toml_value(v)}")
    return "\n".join(lines) + "\n"


#: Memoizing decorators removed from the mutated module's scratch copy: mutmut 3 never mutates a
#: decorated function, and a memoized one would serve every mutant the value the first call cached
#: (the chapters' ``derive_*`` functions are ``functools.lru_cache``-d sympy derivations).
MEMO = re.compile(r"^[ \t]*@(functools\.)?(lru_cache|cache)(\(.*\))?[ \t]*$", re.M)
#: A module-level function that had such a decorator: rebound at the end of the scratch copy to
#: :data:`MEMO_MODULE`'s cache, keyed by the mutant under test (and, while mutmut collects its per-test
#: stats, by the running test), so that a derivation is computed once per mutant (not at every call:
#: uncached sympy derivations made some modules' runs hours long) while every mutant, and during the
#: stats every test, computes its own.
MEMO_DEF = re.compile(r"^@(?:functools\.)?(?:lru_cache|cache)(?:\(.*\))?[ \t]*\n(?:@.*\n)*def (\w+)\(", re.M)
MEMO_MODULE = '''"""Per-mutant, per-test memo for the scratch copy of scripts/mutation.py (not in the tree)."""
import functools
import os

_CACHE = {}


def memo(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        mutant = os.environ.get("MUTANT_UNDER_TEST", "")
        # per test only while mutmut collects its stats (which test calls which function); a mutant's
        # own run is one process whose tests may share a derivation, as under the real lru_cache
        test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0] if mutant in ("stats", "") else ""
        key = (id(wrapper), mutant, test, args, tuple(sorted(kwargs.items())))
        try:
            return _CACHE[key]
        except KeyError:
            pass
        except TypeError:  # unhashable arguments: not cached
            return fn(*args, **kwargs)
        out = _CACHE[key] = fn(*args, **kwargs)
        return out

    wrapper.cache_clear = _CACHE.clear
    return wrapper
'''


def memo_stripped(text: str) -> str:
    """The module's text without its memoizing decorators, its module-level memoized functions rebound
    to the per-mutant, per-test memo at the end (the scratch copy's text; mutmut mutates the functions)."""
    names = MEMO_DEF.findall(text)
    out = MEMO.sub("", text)
    if names:
        out += ("\n\nfrom lrtheory._mutation_memo import memo as _mutation_memo  # noqa: E402 (scripts/mutation.py)\n"
                + "".join(f"{n} = _mutation_memo({n})\n" for n in names))
    return out


def prepare(workdir: Path, data: dict, module: str, tests: list) -> None:
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    shutil.copytree(ROOT / "lrtheory", workdir / "lrtheory", ignore=ignore)
    shutil.copytree(ROOT / "tests", workdir / "tests", ignore=ignore)
    target = workdir / module
    text = target.read_text("utf-8")
    stripped = memo_stripped(text)
    if stripped != text:
        print(f"{module}: {len(MEMO.findall(text))} memoizing decorators removed in the scratch copy (so mutmut "
              f"mutates them); {', '.join(MEMO_DEF.findall(text)) or 'none'} memoized per mutant and test", flush=True)
        target.write_text(stripped, "utf-8")
        (workdir / "lrtheory" / "_mutation_memo.py").write_text(MEMO_MODULE, "utf-8")
    (workdir / "pyproject.toml").write_text(scoped_pyproject(data, module, tests), "utf-8")


def mutmut(workdir: Path, *args: str, log=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               MPLBACKEND="Agg",
               # subprocesses started by a test (sweep workers, the CLI) import the mutated copy too
               PYTHONPATH=os.pathsep.join(filter(None, [str(workdir / "mutants"), os.environ.get("PYTHONPATH")])))
    exe = Path(sys.executable).with_name("mutmut")
    cmd = [str(exe), *args]
    if os.name == "posix" and shutil.which("nice"):
        cmd = ["nice", "-n", os.environ.get("MUTATION_NICE", "15")] + cmd
    return subprocess.run(cmd, cwd=workdir, env=env, text=True,
                          stdout=log if log else subprocess.PIPE, stderr=subprocess.STDOUT)


# Read in one process (``mutmut results`` / ``mutmut show`` cost a second of start-up each).
_RESULTS = r"""
import json, sys
from pathlib import Path
from mutmut.mutation.data import SourceFileMutationData
from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code
m = SourceFileMutationData(path=Path(sys.argv[1]))
m.load()
status = {k: status_by_exit_code[v] for k, v in m.exit_code_by_key.items()}
killed = set(json.loads(sys.argv[2]))
diffs = {k: get_diff_for_mutant(k, path=m.path) for k, s in status.items() if s not in killed}
print(json.dumps({"status": status, "diffs": diffs}))
"""


def results(workdir: Path, module: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", _RESULTS, module, json.dumps(sorted(KILLED))], cwd=workdir,
                          text=True, capture_output=True, check=True)
    return json.loads(proc.stdout)


def run_module(module: str, tests: list, workdir: Path, max_children: int, data: dict) -> dict:
    prepare(workdir, data, module, tests)
    # exists before Python starts, so that the import system never caches it as missing
    (workdir / "mutants").mkdir()
    return _run(module, tests, workdir, max_children, [])


def rerun_module(module: str, tests: list, workdir: Path, max_children: int, data: dict) -> dict:
    """Test the survivors of the last run again, with the tree's current tests (the module unchanged)."""
    last = json.loads((workdir / "report.json").read_text("utf-8"))
    if (workdir / module).read_text("utf-8") != memo_stripped((ROOT / module).read_text("utf-8")):
        print(f"{module} changed since its last run: running it whole", flush=True)
        return run_module(module, tests, workdir, max_children, data)
    if (workdir / "pyproject.toml").read_text("utf-8") != scoped_pyproject(data, module, tests):
        # mutmut drops every cached verdict when its pytest options change: test them all again
        print(f"{module}: its mutmut configuration changed since its last run: running it whole", flush=True)
        return run_module(module, tests, workdir, max_children, data)
    shutil.rmtree(workdir / "tests")
    shutil.copytree(ROOT / "tests", workdir / "tests", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (workdir / "pyproject.toml").write_text(scoped_pyproject(data, module, tests), "utf-8")
    return _run(module, tests, workdir, max_children, list(last["survivors"]))


def _run(module, tests, workdir, max_children, names) -> dict:
    t0 = time.time()
    with open(workdir / "mutmut.log", "a") as log:
        proc = mutmut(workdir, "run", "--max-children", str(max_children), *names, log=log)
    res = results(workdir, module)
    status = res["status"]
    survivors = sorted(k for k, s in status.items() if s not in KILLED)
    killed = len(status) - len(survivors)
    return {"module": module, "tests": tests, "killed": killed, "total": len(status),
            "survivors": {k: status[k] for k in survivors}, "diffs": res["diffs"],
            "seconds": round(time.time() - t0, 1), "returncode": proc.returncode}


def report_text(r: dict) -> str:
    score = 100.0 * r["killed"] / r["total"] if r["total"] else float("nan")
    head = (f"## {r['module']}: {r['killed']}/{r['total']} killed ({score:.1f}%), "
            f"{len(r['survivors'])} surviving, {r['seconds']:.0f} s\n\ntests: {' '.join(r['tests'])}\n")
    body = [f"\n### {k} ({s})\n```diff\n{r['diffs'][k].strip()}\n```" for k, s in r["survivors"].items()]
    return head + "\n".join(body) + "\n"


def main(argv=None) -> int:
    data = load_config()
    modules = data["tool"]["mutmut"]["modules"]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("module", nargs="*", help="module paths (default: every one in [tool.mutmut.modules])")
    ap.add_argument("--list", action="store_true", help="print the modules and their test files")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "lrtheory-mutation")
    ap.add_argument("--max-children", type=int, default=1, help="parallel mutants (default 1)")
    ap.add_argument("--rerun", action="store_true",
                    help="test only the last run's survivors again, with the current tests (fast)")
    args = ap.parse_args(argv)
    if args.list:
        for m, t in modules.items():
            print(f"{m}: {' '.join(t)}")
        return 0
    chosen = args.module or list(modules)
    unknown = [m for m in chosen if m not in modules]
    if unknown:
        print(f"module: not in [tool.mutmut.modules]: {unknown}", file=sys.stderr)
        return 2
    if shutil.which("mutmut", path=str(Path(sys.executable).parent)) is None:
        print("mutmut is not installed: pip install -c constraints.txt -e '.[mutation]'", file=sys.stderr)
        return 2
    rows = []
    for m in chosen:
        wd = args.workdir / m.replace("/", "_").removesuffix(".py")
        again = args.rerun and (wd / "report.json").exists()
        r = (rerun_module if again else run_module)(m, modules[m], wd, args.max_children, data)
        text = report_text(r)
        (wd / "report.md").write_text(text, "utf-8")
        (wd / "report.json").write_text(json.dumps(r, indent=1), "utf-8")
        print(text, flush=True)
        rows.append(r)
    print("module                               killed/total  score")
    for r in rows:
        score = 100.0 * r["killed"] / r["total"] if r["total"] else float("nan")
        print(f"{r['module']:<36} {r['killed']:>5}/{r['total']:<6} {score:5.1f}%")
    k, n = sum(r["killed"] for r in rows), sum(r["total"] for r in rows)
    if n:
        print(f"{'all':<36} {k:>5}/{n:<6} {100.0 * k / n:5.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
