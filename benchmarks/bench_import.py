"""Import cost: `import lrtheory` (and touching a tool) against `import torch` alone.

    python benchmarks/bench_import.py [REPEATS]

Each case runs in fresh interpreters, interleaved, and the best time of each is reported
(the least disturbed run); the ratio to torch is what DESIGN.md bounds (<= 1.3).
"""
from __future__ import annotations

import subprocess
import sys
import time

CASES = {
    "torch": "import torch",
    "lrtheory": "import lrtheory",
    "lrtheory+tool": "import lrtheory; lrtheory.sharpness; lrtheory.max_initial_lr; lrtheory.ELRWarmup",
}


def measure(repeats: int = 5) -> dict:
    """Best wall-clock seconds of each case over ``repeats`` fresh interpreters."""
    best = {k: float("inf") for k in CASES}
    for _ in range(repeats):
        for name, code in CASES.items():
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    t = measure(n)
    for name, s in t.items():
        print(f"{name:14s} {s:6.3f} s   {s / t['torch']:.2f} x torch")
