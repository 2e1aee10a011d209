"""Batched-K training against a per-model loop, the torch.func vmap recipe and one large GEMM.

Run:  python benchmarks/bench_batched.py [--device cpu|cuda] [--threads N] [--quick]

Everything is measured in this one run, on this machine, in float32, for two settings (depth 3
hidden layers, d_in = width, d_out = 10, no bias, full-batch GD on 1/2-MSE, standard
parametrization):

* small: width 32, batch 128, K = 64 models, 50 steps; large: width 512, batch 1024, K = 8
  (16 on CUDA), 10 steps (50 on CUDA). ``train`` also evaluates the loss after the last step (one
  forward pass more than the steps' own, which the FLOP count leaves out) and validates its
  arguments once per call: both are in its time.

Per setting, four things are timed in interleaved rounds (each round runs all of them, in a
rotating order, so that contention drifting during the run hits them alike):

* ``loop``: the K models one after the other as plain ``nn.Sequential`` + ``torch.optim.SGD``;
* ``vmap``: PyTorch's own ensembling recipe (torch.func docs, "Model ensembling"):
  ``stack_module_state`` of the K modules, a ``meta`` copy as the base,
  ``vmap(grad(loss))`` over ``functional_call``, and the SGD step applied to the stacked tensors
  (``{k: p - lr * g}``); eager, as the docs show it (no ``torch.compile``: the recipe's page does
  not use it);
* ``batched``: ``lrtheory.core.train.train`` on the K models at once;
* ``compiled``: the same with ``compile=True`` (one ``torch.compile``-d function per step; the same
  bits); its first call, which compiles the shape, is timed apart and printed;
* ``GEMM``: one large float32 GEMM (2048^2 on CPU, 4096^2 on CUDA), the machine's practical peak.

Each is timed by wall clock and, on CPU, by the process's CPU time (``time.process_time``: on a
machine shared with other jobs it leaves out the time the process waits for a core). Reported:
the best of the rounds of each, the speed-ups of ``batched`` over ``loop`` and ``vmap``, and the
achieved matmul FLOP/s of ``batched`` (``lrtheory.core.mlp.count_flops``: 2 per multiply-add;
backward = weight gradients of every layer + input gradients of all but the first) over the
GEMM's FLOP/s, as ratios of bests and as the median of the per-round (paired) ratios; "/GEMM all"
counts every matmul FLOP ``train`` executes (the steps' and the forward pass of the loss after the last
step, which its time includes) over the same time.

A last table times the masked loop :func:`lrtheory.core.gd.run_gd` on two tiny scalar models
(microseconds per step, K models of a few numbers each) against the same arithmetic as a plain
Python loop: the per-step overhead of the loop's checks and records.

Targets (issue 13): train >= 2x vmap for the small setting; train >= 0.8 of the GEMM rate for
the large one (both rows are shown: eager and compiled). The load average is printed at the start and the end.
"""
from __future__ import annotations

import argparse
import copy
import math
import os
import statistics
import time

import torch
from torch import nn

from lrtheory.core.device import resolve_device
from lrtheory.core.gd import run_gd
from lrtheory.core.mlp import MLPSpec, count_flops, init_params
from lrtheory.core.train import train


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, device):
    """(wall seconds, CPU seconds) of one call."""
    _sync(device)
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    _sync(device)
    return time.perf_counter() - w0, time.process_time() - c0


def _load():
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def _modules(spec, P):
    """The K models as plain nn.Sequential(Linear, ReLU, ..., Linear) holding the weights of P."""
    mods = []
    for k in range(P[0].shape[0]):
        layers = []
        for l, (fo, fi) in enumerate(spec.layer_dims):
            lin = nn.Linear(fi, fo, bias=False, device=P[0].device, dtype=P[0].dtype)
            with torch.no_grad():
                lin.weight.copy_(P[l][k])
            layers += [lin, nn.ReLU()] if l < spec.depth else [lin]
        mods.append(nn.Sequential(*layers))
    return mods


def torch_loop(mods, x, y, eta, steps):
    for mod in mods:
        opt = torch.optim.SGD(mod.parameters(), lr=eta)
        for _ in range(steps):
            opt.zero_grad()
            loss = 0.5 * ((mod(x) - y) ** 2).sum(1).mean()
            loss.backward()
            opt.step()


def vmap_ensemble(mods, x, y, eta, steps):
    """torch.func model ensembling (stack_module_state, vmap over grad of functional_call) + SGD."""
    params, buffers = torch.func.stack_module_state(mods)
    params = {k: v.detach() for k, v in params.items()}
    base = copy.deepcopy(mods[0]).to("meta")

    def loss(p, b, x, y):
        out = torch.func.functional_call(base, (p, b), (x,))
        return 0.5 * ((out - y) ** 2).sum(1).mean()

    grad = torch.func.vmap(torch.func.grad(loss), in_dims=(0, 0, None, None))
    for _ in range(steps):
        gs = grad(params, buffers, x, y)
        params = {k: p - eta * gs[k] for k, p in params.items()}
    return params


def gemm(device, n):
    a = torch.randn(n, n, device=device, dtype=torch.float32)
    b = torch.randn(n, n, device=device, dtype=torch.float32)
    reps = 3 if device.type == "cpu" else 20

    def run():
        for _ in range(reps):
            a @ b

    run()
    return run, 2.0 * n ** 3 * reps


#: train's eager step and its compiled step (train(..., compile=True))
TRAINERS = ("batched", "compiled")


def bench_setting(name, width, batch, K, steps, loop_models, device, rounds, n_gemm):
    spec = MLPSpec(d_in=width, width=width, depth=3, d_out=10)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, width, generator=g).to(device)
    y = torch.randn(batch, 10, generator=g).to(device)
    P = init_params(spec, K, seed=0, device=device, dtype=torch.float32)
    eta = 1e-3
    mods = _modules(spec, P)
    flops = count_flops(spec, batch) * K * steps
    # all the matmul FLOPs train executes: the steps' and the forward pass of the loss after the last step
    flops_all = flops + count_flops(spec, batch, backward=False) * K
    run_gemm, gemm_flops = gemm(device, n_gemm)
    # the loop runs loop_models of the K models; its time is scaled to K
    fns = {
        "loop": (lambda: torch_loop(mods[:loop_models], x, y, eta, steps), K / loop_models),
        "vmap": (lambda: vmap_ensemble(mods, x, y, eta, steps), 1.0),
        "batched": (lambda: train(spec, P, x, y, eta, steps, record_every=steps), 1.0),
        "compiled": (lambda: train(spec, P, x, y, eta, steps, record_every=steps, compile=True), 1.0),
        "gemm": (run_gemm, 1.0),
    }
    t0 = time.perf_counter()
    fns["compiled"][0]()  # the first call compiles this shape (timed apart, as a user pays it once)
    compile_s = time.perf_counter() - t0
    for f, _ in fns.values():  # warm-up (vmap traces, first allocations)
        f()
    times = {k: [] for k in fns}  # per round: (wall, cpu)
    names = list(fns)
    for r in range(rounds):
        for k in names[r % len(names):] + names[:r % len(names)]:
            f, scale = fns[k]
            w, c = _time(f, device)
            times[k].append((w * scale, c * scale))
    res = dict(name=name, K=K, steps=steps, loop_models=loop_models, compile_s=compile_s)
    for clock, j in (("wall", 0), ("cpu", 1)):
        best = {k: min(t[j] for t in v) for k, v in times.items()}
        res[clock] = best
        gem_rate = [gemm_flops / t[j] for t in times["gemm"]]
        for tr in TRAINERS:  # each of train's two steps against the same references
            m = res[clock, tr] = {}
            m["x_loop"] = best["loop"] / best[tr]
            m["x_vmap"] = best["vmap"] / best[tr]
            m["x_vmap_paired"] = statistics.median(v[j] / b[j] for v, b in zip(times["vmap"], times[tr]))
            m["frac"] = (flops / best[tr]) / (gemm_flops / best["gemm"])
            m["frac_paired"] = statistics.median((flops / b[j]) / gr for b, gr in zip(times[tr], gem_rate))
            m["frac_all"] = (flops_all / best[tr]) / (gemm_flops / best["gemm"])
            m["gflops"] = flops / best[tr] / 1e9
        res[clock + "_gemm_gflops"] = gemm_flops / best["gemm"] / 1e9
    return res



# ---- run_gd against a plain loop on tiny scalar models

def _factorization(K, dtype):
    mu = 2.0
    x0 = torch.linspace(0.5, 3.0, K, dtype=dtype)
    y0 = torch.full((K,), 0.7, dtype=dtype)
    etas = torch.logspace(-2, math.log10(1.6), K, dtype=dtype)
    return mu, x0, y0, etas


def scalar_plain(K, steps, dtype=torch.float64):
    """Balancing's scalar GD on (mu - x y)^2 / 2 as a plain loop (K step sizes, no checks)."""
    mu, x, y, etas = _factorization(K, dtype)
    for _ in range(steps):
        r = mu - x * y
        x, y = x + etas * r * y, y + etas * r * x
    return x, y


def scalar_run_gd(K, steps, dtype=torch.float64):
    """The same on run_gd: closed-form gradient, a parameter bound (freezes), no loss rule."""
    mu, x, y, etas = _factorization(K, dtype)

    def loss_fn(p):
        return 0.5 * (mu - p[0] * p[1]) ** 2

    def grad_fn(p):
        r = mu - p[0] * p[1]
        return [-r * p[1], -r * p[0]]

    return run_gd(loss_fn, [x, y], etas, steps, grad_fn=grad_fn, divergence_factor=None, param_bound=1e6,
                  record_every=steps)


def uv_plain(K, n, steps, dtype=torch.float64):
    """The catapult's uv model (f = u.v / sqrt(n), loss f^2/2) as a plain loop."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(K, 2, n, generator=g, dtype=dtype)
    etas = torch.linspace(0.5, 3.5, K, dtype=dtype)[:, None, None]
    sq = math.sqrt(n)
    for _ in range(steps):
        f = (w[:, 0] * w[:, 1]).sum(-1) / sq
        c = (f / sq)[:, None]
        gr = torch.stack([w[:, 1] * c, w[:, 0] * c], 1)
        w = w - etas * gr
    return w


def uv_run_gd(K, n, steps, dtype=torch.float64):
    """The same on run_gd with the catapult's divergence rule (eta^2 f^2 / n > 1e4)."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(K, 2, n, generator=g, dtype=dtype)
    etas = torch.linspace(0.5, 3.5, K, dtype=dtype)
    sq = math.sqrt(n)

    last = {}

    def loss_fn(p):
        f = (p[0][:, 0] * p[0][:, 1]).sum(-1) / sq
        last["f"] = f
        return 0.5 * f * f, f

    def grad_fn(p):  # reuses the f of the loss just computed (as the catapult chapter does)
        w = p[0]
        c = (last["f"] / sq)[:, None]
        return [torch.stack([w[:, 1] * c, w[:, 0] * c], 1)]

    return run_gd(loss_fn, [w], etas, steps, grad_fn=grad_fn, divergence_factor=None, record_every=steps,
                  diverged=lambda s: s.etas ** 2 * s.aux ** 2 / n > 1e4)


def bench_tiny(rounds, steps):
    rows = []
    cases = [
        ("balancing scalar GD, K=64", lambda: scalar_plain(64, steps), lambda: scalar_run_gd(64, steps)),
        ("catapult uv model, K=64, n=32", lambda: uv_plain(64, 32, steps), lambda: uv_run_gd(64, 32, steps)),
    ]
    dev = torch.device("cpu")
    for name, plain, ours in cases:
        plain(), ours()
        tp, to = [], []
        for _ in range(rounds):
            tp.append(_time(plain, dev)[1])
            to.append(_time(ours, dev)[1])
        rows.append((name, min(tp) / steps * 1e6, min(to) / steps * 1e6))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default=None)
    ap.add_argument("--quick", action="store_true", help="fewer steps and rounds")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5, --quick 3)")
    args = ap.parse_args(argv)
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    rounds = args.rounds or (3 if args.quick else 5)
    cpu = device.type == "cpu"
    print(f"device={device}  torch={torch.__version__}  threads={torch.get_num_threads()}  "
          f"cpus={os.cpu_count()}  rounds={rounds}  loadavg(1m) at the start={_load():.2f}")
    n_gemm = 2048 if cpu else 4096
    settings = [
        # name, width, batch, K, steps, models in the loop
        ("small", 32, 128, 64, 10 if args.quick else 50, 16 if args.quick else 16),
        ("large", 512, 1024, 8 if cpu else 16, 2 if args.quick else (10 if cpu else 50), 1 if cpu else 16),
    ]
    results = [bench_setting(*s, device, rounds, n_gemm) for s in settings]
    clocks = ("wall", "cpu") if cpu else ("wall",)
    for clock in clocks:
        print(f"\n[{clock} clock] best of {rounds} interleaved rounds; 'paired' = median over rounds of the "
              f"ratio within a round")
        print(f"{'setting':8s} {'trainer':8s} {'K':>3s} {'steps':>5s} {'loop s':>8s} {'vmap s':>8s} "
              f"{'train s':>9s} {'x loop':>7s} {'x vmap':>7s} {'x vmap paired':>13s} {'GFLOP/s':>8s} "
              f"{'GEMM GFLOP/s':>12s} {'/GEMM':>6s} {'/GEMM paired':>12s} {'/GEMM all':>9s}")
        for r in results:
            b = r[clock]
            for tr in TRAINERS:
                m = r[clock, tr]
                print(f"{r['name']:8s} {tr:8s} {r['K']:3d} {r['steps']:5d} {b['loop']:8.3f} {b['vmap']:8.3f} "
                      f"{b[tr]:9.3f} {m['x_loop']:7.1f} {m['x_vmap']:7.2f} {m['x_vmap_paired']:13.2f} "
                      f"{m['gflops']:8.1f} {r[clock + '_gemm_gflops']:12.1f} {m['frac']:6.2f} "
                      f"{m['frac_paired']:12.2f} {m['frac_all']:9.2f}")
    print("(loop: the time of", ", ".join(f"{r['loop_models']} of the {r['K']}" for r in results),
          "models, scaled to K; '/GEMM all' also counts the forward pass of the loss after the last step,"
          " which the train time includes; batched = train, compiled = train(..., compile=True), whose"
          " first call compiled in", ", ".join(f"{r['compile_s']:.1f} s ({r['name']})" for r in results), ")")
    if cpu:
        tiny_steps = 500 if args.quick else 2000
        print(f"\nrun_gd vs a plain loop on tiny models (CPU time, best of {rounds}, {tiny_steps} steps):")
        print(f"{'model':34s} {'plain us/step':>13s} {'run_gd us/step':>14s} {'ratio':>6s}")
        for name, tp, to in bench_tiny(rounds, tiny_steps):
            print(f"{name:34s} {tp:13.1f} {to:14.1f} {to / tp:6.2f}")
    print(f"\nloadavg(1m) at the end={_load():.2f}")


if __name__ == "__main__":
    main()
