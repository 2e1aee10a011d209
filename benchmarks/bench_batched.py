"""Batched-K training vs a per-model loop, and achieved FLOP/s vs one large GEMM.

Run:  python benchmarks/bench_batched.py [--device cpu|cuda] [--quick]

Everything is measured in this one run, on this machine, in float32:

1. the FLOP/s of one large float32 GEMM (``n x n @ n x n``, best of a few), the
   machine's practical peak for the matmul-bound work below;
2. for each setting (small: width 32, batch 128; large: width 512, batch 1024;
   depth 3 hidden layers, d_in = width, d_out = 10, full-batch GD on 1/2 MSE):
   * ``batched``: ``lrtheory.core.train.train`` on K models at once;
   * ``loop(train)``: the same K models one after the other through ``train`` with K = 1;
   * ``loop(torch)``: the same K models as plain ``nn.Module`` + ``torch.optim.SGD``;
   * ``vmap``: the K modules ensembled the torch.func way (``stack_module_state``,
     ``vmap(grad(functional_call))``, the SGD step on the stacked tensors);
   and prints wall times, the speed-up of batched over each, and the achieved
   matmul FLOP/s of the batched run (``lrtheory.core.mlp.count_flops``: 2 per
   multiply-add; backward = weight gradients of every layer + input gradients of
   all but the first) as a fraction of the GEMM rate: once against the GEMM of
   the start, once paired (each batched repeat against a GEMM measured just
   before it, median over repeats).

Targets (issue 3): >= 5x over the loop for the small setting, >= 0.6 of the GEMM
rate for the large one. Timings on a shared machine vary: the load average is
printed so that contention can be judged.
"""
from __future__ import annotations

import argparse
import copy
import os
import time

import torch

from lrtheory.core.device import resolve_device
from lrtheory.core.mlp import MLPSpec, count_flops, init_params, lr_multipliers, select_models, to_module
from lrtheory.core.train import train


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_time(fn, device, repeats):
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def gemm_flops(device, n, repeats=5):
    a = torch.randn(n, n, device=device, dtype=torch.float32)
    b = torch.randn(n, n, device=device, dtype=torch.float32)
    a @ b
    t = _best_time(lambda: a @ b, device, repeats)
    return 2.0 * n**3 / t


def torch_loop(spec, P, x, y, eta, steps):
    for k in range(P[0].shape[0]):
        mod = to_module(spec, P, k)
        groups = [{"params": [p], "lr": eta * m} for p, m in zip(mod.parameters(), lr_multipliers(spec))]
        opt = torch.optim.SGD(groups, lr=eta)
        for _ in range(steps):
            opt.zero_grad()
            loss = 0.5 * ((mod(x) - y) ** 2).sum(1).mean()
            loss.backward()
            opt.step()


def vmap_ensemble(spec, P, x, y, eta, steps):
    """The K models as torch.func ensembling does it: one vmapped gradient of the stacked modules per step."""
    mods = [to_module(spec, P, k) for k in range(P[0].shape[0])]
    params, buffers = torch.func.stack_module_state(mods)
    params = {k: v.detach() for k, v in params.items()}
    base = copy.deepcopy(mods[0]).to("meta")
    mults = dict(zip(params, lr_multipliers(spec)))  # named_parameters order = the spec's parameter order

    def loss(p, b):
        out = torch.func.functional_call(base, (p, b), (x,))
        return 0.5 * ((out - y) ** 2).sum(1).mean()

    grad = torch.func.vmap(torch.func.grad(loss))
    for _ in range(steps):
        gs = grad(params, buffers)
        params = {k: params[k] - (eta * mults[k]) * gs[k] for k in params}
    return params


def bench_setting(name, width, batch, K, steps, device, repeats, n_gemm):
    spec = MLPSpec(d_in=width, width=width, depth=3, d_out=10)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, width, generator=g).to(device)
    y = torch.randn(batch, 10, generator=g).to(device)
    P = init_params(spec, K, seed=0, device=device, dtype=torch.float32)
    eta = 1e-3
    run_b = lambda: train(spec, P, x, y, [eta] * K, steps, record_every=steps)  # noqa: E731
    run_l = lambda: [train(spec, select_models(P, k), x, y, [eta], steps, record_every=steps)  # noqa: E731
                     for k in range(K)]
    run_t = lambda: torch_loop(spec, P, x, y, eta, steps)  # noqa: E731
    run_v = lambda: vmap_ensemble(spec, P, x, y, eta, steps)  # noqa: E731
    train(spec, P, x, y, [eta] * K, 1)  # warm-up
    flops = count_flops(spec, batch) * K * steps
    # each batched repeat is paired with a GEMM measured just before it, so that the
    # fraction is robust to contention drifting during the run; report the median pair
    fracs, tb = [], float("inf")
    for _ in range(repeats):
        g_rate = gemm_flops(device, n_gemm, repeats=2)
        t = _best_time(run_b, device, 1)
        tb = min(tb, t)
        fracs.append((flops / t) / g_rate)
    fracs.sort()
    tl = _best_time(run_l, device, repeats)
    tt = _best_time(run_t, device, repeats)
    run_v()  # warm-up (vmap traces once)
    tv = _best_time(run_v, device, repeats)
    return dict(name=name, K=K, steps=steps, width=width, batch=batch, t_batched=tb, t_loop=tl, t_torch=tt,
                t_vmap=tv, flops_per_s=flops / tb, frac_paired=fracs[len(fracs) // 2])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None)
    ap.add_argument("--quick", action="store_true", help="fewer steps and repeats")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = 2 if args.quick else 3
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"device={device}  torch={torch.__version__}  threads={torch.get_num_threads()}  "
          f"cpus={os.cpu_count()}  loadavg(1m)={load[0]:.2f}")
    n_gemm = 4096 if device.type == "cuda" else 2048
    peak = gemm_flops(device, n_gemm)
    print(f"float32 GEMM {n_gemm}x{n_gemm}: {peak / 1e9:.1f} GFLOP/s")
    settings = [
        ("small", 32, 128, 64, 20 if args.quick else 50),
        ("large", 512, 1024, 16 if device.type == "cuda" else 8, 3 if args.quick else 5),
    ]
    if device.type == "cuda":
        settings[1] = ("large", 512, 1024, 16, 20)
    print(f"{'setting':8s} {'K':>4s} {'steps':>5s} {'batched s':>10s} {'loop(train) s':>14s} {'loop(torch) s':>14s} "
          f"{'vmap s':>8s} {'x train':>8s} {'x torch':>8s} {'x vmap':>7s} {'GFLOP/s':>8s} {'/GEMM':>6s} "
          f"{'/GEMM paired':>12s}")
    for name, width, batch, K, steps in settings:
        r = bench_setting(name, width, batch, K, steps, device, repeats, n_gemm)
        print(f"{name:8s} {r['K']:4d} {r['steps']:5d} {r['t_batched']:10.3f} {r['t_loop']:14.3f} {r['t_torch']:14.3f} "
              f"{r['t_vmap']:8.3f} {r['t_loop'] / r['t_batched']:8.1f} {r['t_torch'] / r['t_batched']:8.1f} "
              f"{r['t_vmap'] / r['t_batched']:7.1f} "
              f"{r['flops_per_s'] / 1e9:8.1f} {r['flops_per_s'] / peak:6.2f} {r['frac_paired']:12.2f}")
    peak2 = gemm_flops(device, n_gemm)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"float32 GEMM again at the end: {peak2 / 1e9:.1f} GFLOP/s; loadavg(1m) at the end={load[0]:.2f}")
    print("(/GEMM: best batched time over the first GEMM measurement; /GEMM paired: median over repeats of the")
    print(" batched rate over a GEMM measured just before it. On a shared machine compare ratios, not times.)")


if __name__ == "__main__":
    main()
