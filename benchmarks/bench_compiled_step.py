"""What a compiled training step would buy (issue 13): one batched GD step, eager vs ``torch.compile``.

Run:  python benchmarks/bench_compiled_step.py [--threads 1] [--rounds 5]

The issue-13 targets (``bench_batched.py``: >= 2x the torch.func vmap recipe for small MLPs, >= 0.8
of the GEMM rate for large ones) are not met by ``lrtheory.core.train.train``, whose step must stay
bit-identical to autograd's. This probe measures the route that remains, on the same two settings
(depth 3, d_in = width, d_out = 10, no bias, float32, full-batch GD on 1/2-MSE; small: width 32,
batch 128, K = 64, 50 steps; large: width 512, batch 1024, K = 8, 10 steps):

* ``vmap``: the torch.func ensembling recipe, as ``bench_batched.py`` runs it (eager);
* ``train``: ``lrtheory.core.train.train`` (eager, its checks and records included);
* ``step eager``: one whole step written out (forward, the closed-form backward of the same
  products, the SGD update, each model's loss and a per-model finiteness flag: the arithmetic a
  step of ``train`` does, without its bookkeeping), run eagerly;
* ``step compiled``: the same function under ``torch.compile`` (inductor: the element-wise work
  fused into generated C++ loops; the products stay MKL calls). Its first call compiles (seconds,
  printed); the timings are of later calls.

The compiled step is not bit-identical to the eager one in general (fused reductions), so using it
in ``train`` would need every stored reference point recomputed (``lrtheory sweep ... --scale
reference``) and a compile per new shape: that is why it is measured here and not used.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_batched import _modules, gemm, vmap_ensemble  # noqa: E402

from lrtheory.core.mlp import MLPSpec, count_flops, init_params  # noqa: E402
from lrtheory.core.train import train  # noqa: E402


def make_step(n_models: int, n_examples: int):
    """One GD step of K bias-free depth-3 ReLU MLPs (weights ``(K, fan_in, fan_out)``) on 1/2-MSE."""

    def step(w0, w1, w2, w3, x, y, lr):
        h0 = torch.matmul(x, w0).relu()
        h1 = torch.bmm(h0, w1).relu()
        h2 = torch.bmm(h1, w2).relu()
        out = torch.bmm(h2, w3)
        d = out - y
        loss = 0.5 * d.pow(2).sum(-1).mean(-1)
        g = d / n_examples
        g3 = torch.bmm(h2.transpose(1, 2), g)
        g = torch.bmm(g, w3.transpose(1, 2)) * (h2 > 0)
        g2 = torch.bmm(h1.transpose(1, 2), g)
        g = torch.bmm(g, w2.transpose(1, 2)) * (h1 > 0)
        g1 = torch.bmm(h0.transpose(1, 2), g)
        g = torch.bmm(g, w1.transpose(1, 2)) * (h0 > 0)
        g0 = torch.matmul(x.t(), g)
        new = [w - lr * gw for w, gw in ((w0, g0), (w1, g1), (w2, g2), (w3, g3))]
        finite = torch.isfinite(loss) & torch.stack([n.reshape(n_models, -1).sum(1) for n in new]).isfinite().all(0)
        return new, loss, finite

    return step


def bench(name, width, batch, K, steps, rounds, n_gemm):
    spec = MLPSpec(d_in=width, width=width, depth=3, d_out=10)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, width, generator=g)
    y = torch.randn(batch, 10, generator=g)
    P = init_params(spec, K, seed=0, dtype=torch.float32)
    W = [p.transpose(1, 2).contiguous() for p in P]  # (K, fan_in, fan_out)
    eta = 1e-3
    step = make_step(K, batch)
    t0 = time.perf_counter()
    cstep = torch.compile(step)
    cstep(*W, x, y, eta)
    compile_s = time.perf_counter() - t0

    def run(fn):
        def go():
            w = W
            for _ in range(steps):
                w, _, _ = fn(*w, x, y, eta)
            return w
        return go

    # the probe computes what train computes: final weights against train's, float32 round-off apart
    ref = [p.transpose(1, 2) for p in train(spec, P, x, y, eta, steps, record_every=steps).params]
    for label, fn in (("eager", step), ("compiled", cstep)):
        dev = max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(run(fn)(), ref))
        print(f"{name}: step {label} vs train, max relative deviation of the final weights {dev:.1e}")

    mods = _modules(spec, P)
    run_gemm, gemm_flops = gemm(torch.device("cpu"), n_gemm)
    fns = {
        "vmap": lambda: vmap_ensemble(mods, x, y, eta, steps),
        "train": lambda: train(spec, P, x, y, eta, steps, record_every=steps),
        "step eager": run(step),
        "step compiled": run(cstep),
        "gemm": run_gemm,
    }
    for f in fns.values():
        f()
    best = {k: float("inf") for k in fns}
    names = list(fns)
    for r in range(rounds):
        for k in names[r % len(names):] + names[:r % len(names)]:
            c = time.process_time()
            fns[k]()
            best[k] = min(best[k], time.process_time() - c)
    flops = count_flops(spec, batch) * K * steps
    gemm_rate = gemm_flops / best["gemm"]
    print(f"\n{name}: width {width}, batch {batch}, K {K}, {steps} steps; first compiled call {compile_s:.1f} s")
    print(f"{'':14s} {'CPU s':>8s} {'ms/step':>8s} {'x vmap':>7s} {'/GEMM':>6s}")
    for k in names[:-1]:
        print(f"{k:14s} {best[k]:8.4f} {best[k] / steps * 1e3:8.3f} {best['vmap'] / best[k]:7.2f} "
              f"{flops / best[k] / gemm_rate:6.2f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch={torch.__version__} threads={torch.get_num_threads()} rounds={args.rounds} "
          f"loadavg(1m) at the start={os.getloadavg()[0]:.2f}")
    bench("small", 32, 128, 64, 50, args.rounds, 2048)
    bench("large", 512, 1024, 8, 10, args.rounds, 2048)
    print(f"\nloadavg(1m) at the end={os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
