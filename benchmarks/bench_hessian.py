"""Top Hessian eigenvalues: lrtheory against hessian-eigenthings 1.0.0a5 and PyHessian 0.1.

Usage: OMP_NUM_THREADS=1 python benchmarks/bench_hessian.py [--quick]

Needs the bench extra: ``pip install --no-deps -c constraints.txt hessian-eigenthings==1.0.0a5 PyHessian==0.1``.

For each model (float64, full batch, cross-entropy on 512 digits) and each method:

* **HVPs and seconds to 1e-6**: the method's own stopping parameter (a tolerance, or the number
  of Lanczos steps for hessian-eigenthings, whose ``lanczos`` runs a fixed number) is tightened
  step by step; reported is the first setting whose top eigenvalue is within 1e-6 relative of
  the reference, with the Hessian-vector products it used (counted at the operator) and its
  wall time. "-" when no setting up to the cap gets there.
* **defaults**: the relative error of the top eigenvalue, and the HVPs, of each library's call
  with its default settings (``lrtheory.sharpness(...)``; hessian-eigenthings
  ``lanczos(op, k=1, which="LA")``; PyHessian ``hessian(...).eigenvalues()``).
* **top-5 agreement**: the largest relative error of the 5 largest algebraic eigenvalues at
  each library's documented way of asking for them.

The reference is ARPACK (``scipy.sparse.linalg.eigsh``, tol 0 = machine precision) on the same
Hessian-vector products; it is checked against the dense Hessian (1e-10 relative).
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import lrtheory
from lrtheory.core.data import digits
from lrtheory.tools import HessianOperator

REL = 1e-6


def models():
    ds = digits(seed=0, n_train=512)
    x, y = ds.x_train, ds.y_train
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 10)).double()
    torch.manual_seed(0)
    cnn = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.GroupNorm(2, 8), nn.ReLU(),
                        nn.Conv2d(8, 16, 3, stride=2, padding=1, bias=False), nn.GroupNorm(4, 16), nn.ReLU(),
                        nn.Flatten(), nn.Linear(16 * 4 * 4, 10)).double()
    return {"tanh MLP 64-32-32-10": (mlp, x, y), "CNN of the 'Your own model' page": (cnn, x.reshape(-1, 1, 8, 8), y)}


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


# ----------------------------------------------------------------------------- the three libraries
def run_lrtheory(model, x, y, setting, k=1):
    """setting: tol (None: the default). Returns (values, n_hvp)."""
    if k == 1:
        r = lrtheory.sharpness(model, F.cross_entropy, (x, y), tol=setting)
        return np.array([r.value]), r.n_hvp
    r = lrtheory.hessian_eigs(model, F.cross_entropy, (x, y), k=k, tol=setting)
    return r.values, r.n_matvec


def run_eigenthings(model, x, y, setting, k=1):
    """setting: Lanczos steps (hessian-eigenthings' lanczos runs exactly max_iter steps)."""
    import hessian_eigenthings as he

    op = he.HessianOperator(model, [(x, y)], he.supervised_loss(F.cross_entropy))
    count = [0]
    mv = op.matvec

    def counted(v):
        count[0] += 1
        return mv(v)

    op.matvec = counted
    if setting is None:  # the defaults: max_iter = 2k steps, reorthogonalization chosen by the library
        r = he.lanczos(op, k=k, which="LA", seed=0)
    else:
        r = he.lanczos(op, k=k, max_iter=int(setting), which="LA", seed=0, reorthogonalize=True)
    return r.eigenvalues.detach().cpu().numpy(), count[0]


def run_pyhessian(model, x, y, setting, k=1):
    """setting: PyHessian's tol (relative change between power iterations)."""
    import sys

    import pyhessian  # noqa: F401 - its __init__ shadows the module name pyhessian.hessian with the class

    ph = sys.modules["pyhessian.hessian"]

    count = [0]
    orig = ph.hessian_vector_product

    def counted(*a):
        count[0] += 1
        return orig(*a)

    ph.hessian_vector_product = counted
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # PyHessian draws its vectors in the default dtype
    try:
        torch.manual_seed(0)
        h = ph.hessian(model, F.cross_entropy, data=(x, y), cuda=False)
        vals, _ = (h.eigenvalues(top_n=k) if setting is None else h.eigenvalues(maxIter=5000, tol=setting, top_n=k))
    finally:
        torch.set_default_dtype(old)
        ph.hessian_vector_product = orig
        model.zero_grad(set_to_none=True)
    return np.sort(np.array(vals))[::-1], count[0]


LIBS = {
    "lrtheory (Lanczos, residual tol)": (run_lrtheory, [10.0 ** (-e / 2) for e in range(3, 25)]),
    "hessian-eigenthings (Lanczos, steps)": (run_eigenthings, list(range(4, 61, 2)) + [80, 100, 150, 200]),
    "PyHessian (power iteration, tol)": (run_pyhessian, [10.0 ** -e for e in range(2, 13)]),
}
TOPK = {
    "lrtheory (Lanczos, residual tol)": 1e-10,     # hessian_eigs: ARPACK, default tol in float64
    "hessian-eigenthings (Lanczos, steps)": 100,   # 100 Lanczos steps (their default is 2k = 10)
    "PyHessian (power iteration, tol)": 1e-6,      # deflated power iteration, tol 1e-6
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the MLP only")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore", message="Using backward\\(\\) with create_graph=True")  # PyHessian's
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    for name, (model, x, y) in models().items():
        if args.quick and "CNN" in name:
            continue
        P = sum(p.numel() for p in model.parameters())
        op = HessianOperator(model, F.cross_entropy, (x, y))
        from scipy.sparse.linalg import eigsh

        ref = np.sort(eigsh(op.to_scipy(), k=5, which="LA", tol=0)[0])[::-1]
        if P <= 4000:  # both models here (P HVPs for the dense Hessian)
            dense = np.sort(np.linalg.eigvalsh(op.dense().numpy()))[::-1][:5]
            assert np.allclose(dense, ref, rtol=1e-10), (dense, ref)
        print(f"\n## {name}: P = {P}, lambda_1 = {ref[0]:.10g}, top 5 = {np.array2string(ref, precision=4)}")
        print("| method | HVPs to 1e-6 | seconds to 1e-6 | setting | defaults: rel. error (HVPs) | top-5 max rel. error |")
        print("|---|---|---|---|---|---|")
        for lib, (fn, settings) in LIBS.items():
            hit, best = None, (np.inf, 0, None)
            for s in settings:
                (vals, n), dt = timed(lambda: fn(model, x, y, s))
                err = abs(vals[0] - ref[0]) / abs(ref[0])
                best = min(best, (err, n, s), key=lambda b: b[0])
                if err <= REL:
                    hit = (n, dt, s)
                    break
            (vd, nd), _ = timed(lambda: fn(model, x, y, None))
            dflt = f"{abs(vd[0] - ref[0]) / abs(ref[0]):.1e} ({nd})"
            (vk, nk), _ = timed(lambda: fn(model, x, y, TOPK[lib], k=5))
            errk = float(np.max(np.abs(np.sort(vk)[::-1][:5] - ref) / np.abs(ref)))
            if hit:
                print(f"| {lib} | {hit[0]} | {hit[1]:.2f} | {hit[2]:g} | {dflt} | {errk:.1e} |")
            else:
                print(f"| {lib} | - (best {best[0]:.1e}, {best[1]} HVPs at {best[2]:g}) | - | - | {dflt} | {errk:.1e} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
