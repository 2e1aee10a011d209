"""CI's check of the stored reference runs (`make test-reference`).

For every chapter with a ``reference`` config: its committed results file must hold every
point (none missing, none stale), ``lrtheory verify --scale reference`` must pass from it,
and a few cheap stored points, picked at random with a seed from the commit, are recomputed
and must match what is stored (``lrtheory sweep --recheck``): a code change that changes
results fails here until the reference run is redone.

Usage: python scripts/check_reference.py [--points N] [--max-seconds S] [--seed S]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import zlib


def _commit_seed() -> int:
    out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    return zlib.crc32(out.stdout.strip().encode()) if out.returncode == 0 else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points", type=int, default=2, help="stored points recomputed per sweep (default 2)")
    p.add_argument("--max-seconds", type=float, default=30.0, help="only points that took at most this long")
    p.add_argument("--seed", type=int, default=None, help="default: from the commit")
    args = p.parse_args(argv)
    from lrtheory.cli import main as cli
    from lrtheory.core.recheck import sweep_status
    from lrtheory.verify import registry

    seed = _commit_seed() if args.seed is None else args.seed
    chapters = [ch for ch in registry.chapters() if "reference" in ch.scales]
    if not chapters:
        print("check_reference: no chapter has a reference scale yet")
        return 0
    failed = False
    for ch in chapters:
        for s in ch.sweeps:
            st = sweep_status(s, "reference", ch.store_for("reference"))
            print(st.summary())
            if st.missing or st.stale:
                print(f"check_reference: {ch.key}: rerun `lrtheory sweep {ch.key} --scale reference` "
                      f"({len(st.missing)} missing, {st.stale} stale)")
                failed = True
        if cli(["verify", "--scale", "reference", "--only", ch.key]) != 0:
            failed = True
        for s in ch.sweeps:
            if cli(["sweep", s.name, "--scale", "reference", "--recheck", str(args.points),
                    "--max-seconds", str(args.max_seconds), "--seed", str(seed)]) != 0:
                failed = True
    print("check_reference: " + ("FAILED" if failed else "every reference run is complete, passes and rechecks"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
