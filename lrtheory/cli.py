"""Command line: ``lrtheory verify`` (and further subcommands).

Exit status: 0 when every selected claim passes, 1 when any fails, 2 on bad usage
(unknown option, unknown claim id, CUDA requested on a machine without it).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

from lrtheory.claims import SCALES, run_claims, select, verdict_table

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _progress(stream):
    def report(i, n, claim, verdict):
        if verdict is None:
            print(f"[{i + 1}/{n}] {claim.id} ...", end="", file=stream, flush=True)
        else:
            status = "PASS" if verdict.passed else "FAIL"
            extra = f"  ({verdict.details['error']})" if "error" in verdict.details else ""
            print(f" {status} ({verdict.seconds:.1f} s){extra}", file=stream, flush=True)
    return report


def cmd_verify(args) -> int:
    from lrtheory.core.device import resolve_device

    try:
        device = resolve_device(args.device)
        claims = select(args.only or None)
    except ValueError as exc:
        print(f"lrtheory verify: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"lrtheory verify: {len(claims)} claims at scale={args.scale} on {device}", file=sys.stderr, flush=True)
    verdicts = run_claims(claims, scale=args.scale, device=device, progress=_progress(sys.stderr))
    print(verdict_table(verdicts))
    n_fail = sum(not v.passed for v in verdicts)
    print(f"\n{len(verdicts) - n_fail} passed, {n_fail} failed")
    if args.json:
        Path(args.json).write_text(json.dumps([v.to_json() for v in verdicts], indent=2) + "\n")
    return EXIT_FAIL if n_fail else EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lrtheory", description="Derive and verify learning-rate theory.")
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="check the book's claims: predict, measure, compare")
    v.add_argument("--scale", choices=SCALES, default="ci",
                   help="ci: 2 CPU cores, seconds per claim (default); full: paper-sized, meant for a GPU")
    v.add_argument("--device", default=None,
                   help="cpu or cuda (default: $LRTHEORY_DEVICE, else cuda when present, else cpu)")
    v.add_argument("--only", nargs="+", metavar="ID_OR_PREFIX",
                   help="claim ids or dotted prefixes, e.g. 'balancing' or 'catapult.uv'")
    v.add_argument("--json", metavar="FILE", help="write one JSON object per claim to FILE")
    v.set_defaults(func=cmd_verify)
    try:
        from lrtheory.core import sweep as _sweep  # added by the sweep runner
    except ImportError:
        _sweep = None
    if _sweep is not None and hasattr(_sweep, "add_cli"):
        _sweep.add_cli(sub)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on bad usage
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
