"""Subprocess entry points for tests/test_sweep.py (not a test module).

    python tests/sweep_helpers.py run STORE DELAY
        run the "toy" sweep at scale ci with every point sleeping DELAY seconds
    python tests/sweep_helpers.py cli ARGS...
        `lrtheory ARGS...` with the toy chapter (tests/toy_chapter) as the only chapter
    python tests/sweep_helpers.py write STORE START STOP GO
        touch STORE.ready-START, wait for the file GO, then write toy points
        x = START .. STOP-1 into STORE, one transaction per point; print the
        wall-clock start and end of the writes
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # tests/: the toy chapter


def slow_toy_configs(delay: float):
    """The ci points of "toy", each sleeping ``delay`` seconds."""
    from toy_chapter.sweep import toy_points

    return [dict(c, delay=delay) for c in toy_points("ci")]


def writer_points(start: int, stop: int):
    from lrtheory.core.sweep import make_points

    from toy_chapter.sweep import TOY

    return make_points(TOY, [{"x": float(i), "seed": 7} for i in range(start, stop)])


def main(argv) -> int:
    from lrtheory.core.sweep import ResultStore, run_sweep
    from toy_chapter.sweep import TOY, run_toy_batch

    mode, store = argv[0], argv[1]
    if mode == "run":
        run_sweep(TOY, "ci", configs=slow_toy_configs(float(argv[2])), store=store, progress=False)
        return 0
    if mode == "write":
        import os
        import time

        points = writer_points(int(argv[2]), int(argv[3]))
        open(f"{store}.ready-{argv[2]}", "w").close()
        deadline = time.monotonic() + 60
        while not os.path.exists(argv[4]):  # start together with the other writer
            if time.monotonic() > deadline:
                raise SystemExit("no GO file within 60 s")
            time.sleep(0.005)
        t0 = time.time()
        with ResultStore(store) as st:
            for p in points:
                (result,) = run_toy_batch([p.config], None)
                st.put([(p, result)], code_version="test", environment={"writer": argv[2]})
        print(t0, time.time())
        return 0
    if mode == "cli":  # `lrtheory ARGS...` with the toy chapter registered
        from lrtheory.cli import main as cli_main
        from lrtheory.verify import registry

        registry.CHAPTERS[:] = ["toy_chapter"]  # the toy chapter alone: fast, independent of the book
        return cli_main(argv[1:])
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
