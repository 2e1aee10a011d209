"""Command line: ``lrtheory verify``, ``lrtheory sweep``, ``lrtheory --version``.

One parser; ``--scale`` and ``--device`` mean the same in both subcommands.

Exit status: 0 success; 1 a claim failed (verify) or a batch failed (sweep); 2 bad usage
(unknown option, chapter or claim, an output path that cannot be written, CUDA asked for
where there is none); 130 interrupted (Ctrl-C): what a sweep stored stays stored.
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import List, Optional

from lrtheory._version import __version__

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

_EXITS = ("exit status: 0 success; 1 a claim (verify) or a batch (sweep) failed (a claim its chapter "
          "reports as not reproduced fails as expected and counts as success); 2 bad usage or an "
          "output path that cannot be written; 130 interrupted (Ctrl-C)")


class UsageError(ValueError):
    """Bad usage, reported in one line with exit status 2."""


def _writable_file(path: str, what: str) -> Path:
    """``path`` as a Path if a file can be written there (checked before any work)."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise UsageError(f"{what}: {path!r} is a folder; expected a file path")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{what}: the folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise UsageError(f"{what}: {path!r} is not writable")
    return p


def _progress(stream):
    def report(i, n, claim, verdict):
        if verdict is None:
            print(f"[{i + 1}/{n}] {claim.id} ...", end="", file=stream, flush=True)
        else:
            status = verdict.label  # the verdict's own word: a claim the book reports as not reproduced is no FAIL
            extra = f"  ({verdict.details['error']})" if "error" in verdict.details else ""
            print(f" {status} ({verdict.seconds:.1f} s){extra}", file=stream, flush=True)
    return report


def cmd_verify(args) -> int:
    from lrtheory.core.device import resolve_device
    from lrtheory.verify.registry import select
    from lrtheory.verify.report import run_claims, summary_line, verdict_table

    json_path = _writable_file(args.json, "--json") if args.json else None
    try:
        device = resolve_device(args.device)
        claims = select(args.only or None)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    unscaled = sorted({c.chapter for c in claims if c.config is not None and _lacks(c, args.scale)})
    if unscaled:
        raise UsageError(f"--scale: chapters {', '.join(unscaled)} have no {args.scale!r} config")
    print(f"lrtheory verify: {len(claims)} claims at scale={args.scale} on {device}", file=sys.stderr, flush=True)
    if args.scale == "reference":
        _report_missing(sorted({c.chapter for c in claims}))
    verdicts = run_claims(claims, scale=args.scale, device=device, progress=_progress(sys.stderr))
    print(verdict_table(verdicts))
    print(f"\n{summary_line(verdicts)}")
    if json_path is not None:
        json_path.write_text(json.dumps([v.to_json() for v in verdicts], indent=2) + "\n")
    return EXIT_FAIL if any(not v.as_expected for v in verdicts) else EXIT_OK


def _report_missing(keys) -> None:
    """On stderr: per chapter sweep, the reference points its stored file lacks (and stale rows)."""
    from lrtheory.core.recheck import sweep_status
    from lrtheory.verify import registry

    for key in keys:
        ch = registry.chapter(key)
        for s in ch.sweeps:
            st = sweep_status(s, "reference", ch.store_for("reference"))
            if st.missing or st.stale:
                print(f"lrtheory verify: {st.summary()}", file=sys.stderr)
                for c in st.missing[:10]:
                    print(f"  missing: {json.dumps(c, sort_keys=True)[:160]}", file=sys.stderr)


def _lacks(claim, scale: str) -> bool:
    try:
        claim.config(scale)
    except ValueError:
        return True
    return False


def _open_executor(spec: str):
    """(executor, closer) for ``--executor``: ``local`` or ``dask://HOST:PORT``."""
    if spec == "local":
        return None, (lambda: None)
    if spec.startswith("dask://"):
        address = spec[len("dask://"):]
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise UsageError(f"--executor: expected dask://HOST:PORT, got {spec!r}")
        try:
            from distributed import Client
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise UsageError("--executor dask://...: needs dask.distributed (pip install 'lrtheory[cluster]')") from exc
        try:
            client = Client(f"tcp://{address}", timeout="30s")
        except OSError as exc:
            raise UsageError(f"--executor: cannot reach the scheduler at {address}: {exc}") from exc
        return client.get_executor(), client.close
    raise UsageError(f"--executor: expected 'local' or 'dask://HOST:PORT', got {spec!r}")


def _store_for(args, sweep):
    """``--store`` when given, else where the sweep's chapter keeps results of the scale: the
    committed reference file at ``--scale reference``, the local SQLite store otherwise."""
    from lrtheory.core.store import open_store
    from lrtheory.verify import registry

    target = args.store if args.store is not None else registry.chapter(sweep.chapter).store_for(args.scale)
    try:
        return open_store(target)
    except (ValueError, sqlite3.Error) as exc:
        raise UsageError(f"--store: {exc}") from exc


def cmd_recheck(args, sweeps) -> int:
    from lrtheory.core.recheck import recheck

    status = EXIT_OK
    for s in sweeps:
        store = _store_for(args, s)
        try:
            report = recheck(s, args.scale, args.recheck, store=store, seed=args.seed, device=args.device,
                             max_seconds=args.max_seconds)
        finally:
            store.close()
        print(report.summary(), flush=True)
        if not report.ok:
            status = EXIT_FAIL
    return status


def cmd_sweep(args) -> int:
    from lrtheory._version import code_version
    from lrtheory.core.sweep import make_points, run_sweep
    from lrtheory.verify import registry

    if args.list:
        for s in registry.sweeps().values():
            print(f"{s.chapter:12s} {s.name:24s} {s.description}")
        return EXIT_OK
    if not args.chapter:
        raise UsageError("give a CHAPTER (or a sweep name), or --list")
    if args.recheck is not None and args.recheck < 1:
        raise UsageError(f"--recheck: expected a positive number of points, got {args.recheck}")
    try:
        sweeps = registry.sweeps_for(args.chapter)
        if args.executor == "local" and args.device is not None:
            from lrtheory.core.device import resolve_device

            resolve_device(args.device)
        for s in sweeps:  # every point of every sweep validated before any work
            make_points(s, s.points(args.scale))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if args.recheck is not None:
        return cmd_recheck(args, sweeps)
    status = EXIT_OK
    executor, close = _open_executor(args.executor)
    try:
        for s in sweeps:
            store = _store_for(args, s)
            try:
                report = run_sweep(s, args.scale, device=args.device, executor=executor, store=store,
                                   fresh=args.fresh, progress=sys.stderr, code_version=code_version())
            except KeyboardInterrupt:
                print(f"\nlrtheory sweep: {s.name} interrupted; finished batches are stored, rerun the same "
                      "command to resume", file=sys.stderr)
                return EXIT_INTERRUPTED
            except Exception as exc:  # a batch failed: what is stored stays stored
                print(f"lrtheory sweep: {s.name} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
                status = EXIT_FAIL
                continue
            finally:
                store.close()
            print(report.summary(), flush=True)
    finally:
        close()
    return status


def build_parser() -> argparse.ArgumentParser:
    from lrtheory.verify.claims import SCALES

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--scale", choices=SCALES, default="ci",
                        help="ci: small, 2 CPU cores, seconds per claim (default); reference: the papers' "
                             "settings where they fit 2 CPU cores, stored in the repository; full: the papers' "
                             "grids, meant for a GPU")
    common.add_argument("--device", default=None,
                        help="cpu or cuda (default: $LRTHEORY_DEVICE, else cuda when present, else cpu)")
    p = argparse.ArgumentParser(prog="lrtheory", description="Derive and verify learning-rate theory.",
                                epilog=_EXITS)
    p.add_argument("--version", action="version", version=f"lrtheory {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="{verify,sweep}")
    v = sub.add_parser("verify", parents=[common], epilog=_EXITS,
                       help="check the book's claims: predict, measure, compare",
                       description="Check the book's claims and print a verdict table; the last line is "
                                   "'N passed, M failed'.")
    v.add_argument("--only", nargs="+", metavar="ID_OR_PREFIX",
                   help="claim ids or dotted prefixes, e.g. 'balancing' or 'catapult.uv'")
    v.add_argument("--json", metavar="FILE", help="write one JSON object per claim to FILE (checked before any work)")
    v.set_defaults(func=cmd_verify)
    s = sub.add_parser(
        "sweep", parents=[common], epilog=_EXITS,
        help="compute a chapter's sweeps into the results store (resumable)",
        description=("Run every sweep of CHAPTER (or the sweep named CHAPTER), storing each point's result as "
                     "it finishes. Rerunning skips stored points, so an interrupted sweep resumes where it "
                     "stopped. Chapters read stored results at the reference and full scales."))
    s.add_argument("chapter", nargs="?", metavar="CHAPTER", help="chapter key (e.g. sharpness) or sweep name")
    s.add_argument("--executor", default="local", metavar="local|dask://HOST:PORT",
                   help="local: in this process (default); dask://HOST:PORT: a Dask scheduler's workers")
    s.add_argument("--fresh", action="store_true", help="recompute every point, overwriting stored rows")
    s.add_argument("--store", default=None, metavar="PATH",
                   help="results file: a .jsonl text store or an SQLite file (default: at --scale reference "
                        "the chapter's committed reference.jsonl, else $LRTHEORY_CACHE/results.sqlite, "
                        "else ~/.cache/lrtheory/results.sqlite)")
    s.add_argument("--list", action="store_true", help="list the sweeps and their chapters, then exit")
    s.add_argument("--recheck", type=int, default=None, metavar="N",
                   help="recompute N stored points chosen at random and compare them with what is stored "
                        "(exit 1 if any differs); nothing is written")
    s.add_argument("--seed", type=int, default=0, help="which random points --recheck picks (default 0)")
    s.add_argument("--max-seconds", type=float, default=None, metavar="S",
                   help="with --recheck: only points that took at most S seconds to compute (cheap ones)")
    s.set_defaults(func=cmd_sweep)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on bad usage
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"lrtheory {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"\nlrtheory {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
