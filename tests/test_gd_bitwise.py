"""Representative calls of core.gd.run_gd and core.train.train whose outputs must stay bit-identical
when the loop is made faster (issue 13): every chapter's committed reference results are rechecked
against the code. ``python tests/test_gd_bitwise.py record``
(re)writes the change-detector fixture tests/fixtures/gd_bitwise.json for the current
environment key (see ``env_key``); ``python tests/test_gd_bitwise.py save PATH`` writes the full
outputs with torch.save (for a bitwise comparison while developing).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from pathlib import Path
from typing import Callable, Dict

import numpy as np
import pytest
import torch

from lrtheory.core.gd import run_gd
from lrtheory.core.mlp import MLPSpec, init_params
from lrtheory.core.train import preact_sparsity, train, weight_norms

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "gd_bitwise.json"


def env_key() -> str:
    """What the bits depend on besides the code: torch version, ATen CPU kernel, MKL's choice."""
    return (f"torch={torch.__version__} aten={torch.backends.cpu.get_cpu_capability()} "
            f"mkl={os.environ.get('MKL_ENABLE_INSTRUCTIONS', 'auto')}")


def _gd_out(res) -> Dict[str, object]:
    out = {f"params{i}": p for i, p in enumerate(res.params)}
    out.update(status=res.status, stop_step=res.stop_step, steps_run=np.asarray(res.steps_run), step=res.step,
               loss=res.loss, etas=res.etas)
    out.update({f"rec_{k}": v for k, v in res.records.items()})
    return out


def _train_out(res) -> Dict[str, object]:
    out = {f"params{i}": p for i, p in enumerate(res.params)}
    out.update({f"hist_{k}": v for k, v in res.history.items()})
    out.update(diverged=res.diverged, diverged_step=res.diverged_step, etas=res.etas)
    return out


def _factorization(dtype, **kw):
    mu = 2.0

    def loss_fn(p):
        x, y = p
        return 0.5 * (mu - x * y) ** 2

    def grad_fn(p):
        x, y = p
        r = mu - x * y
        return [-r * y, -r * x]

    K = 12
    x0 = torch.linspace(0.5, 3.0, K, dtype=dtype)
    y0 = torch.full((K,), 0.7, dtype=dtype)
    etas = np.geomspace(0.01, 1.6, K)
    return run_gd(loss_fn, [x0, y0], etas, 400, grad_fn=grad_fn,
                  record=lambda s: {"x": s.params[0], "gnorm": s.grads[0].abs() + s.grads[1].abs()},
                  **kw)


def case_gd_factorization_f64():
    return _gd_out(_factorization(torch.float64, record_every=10, param_bound=1e6, divergence_factor=None,
                                  converged=lambda s: s.loss <= 1e-20, final_grads=True))


def case_gd_factorization_f32():
    return _gd_out(_factorization(torch.float32, record_every=7, divergence_factor=1e6,
                                  converged=lambda s: s.loss <= 1e-12, final_grads=True))


def case_gd_factorization_running_f64():
    # no freeze at all: no divergence rule, no bound, every model runs every step
    return _gd_out(_factorization(torch.float64, record_every=50, divergence_factor=None, final_grads=True))


def _uv(dtype):
    g = torch.Generator().manual_seed(3)
    K, n = 10, 20
    u = torch.randn(K, n, generator=g, dtype=torch.float64).to(dtype)
    v = torch.randn(K, n, generator=g, dtype=torch.float64).to(dtype)
    etas = np.geomspace(0.05, 8.0, K)

    def loss_fn(p):
        u, v = p
        f = (u * v).sum(-1) / math.sqrt(n)
        return 0.5 * (f - 1.0) ** 2, f

    def settled(s):
        if s.step % 10:
            return torch.zeros_like(s.active)
        return s.loss < 1e-6

    return run_gd(loss_fn, [u, v], etas, 300, divergence_factor=None,
                  diverged=lambda s: s.etas ** 2 * s.aux ** 2 / n > 50.0,
                  converged=settled, on_converged="all", record_every=5,
                  record=lambda s: {"f": s.aux.detach(), "unorm": s.params[0].norm(dim=-1)})


def case_gd_uv_autograd_f64():
    return _gd_out(_uv(torch.float64))


def case_gd_uv_autograd_f32():
    return _gd_out(_uv(torch.float32))


def _linreg(dtype):
    g = torch.Generator().manual_seed(5)
    K, d, m, N = 6, 5, 3, 40
    X = torch.randn(N, d, generator=g, dtype=torch.float64).to(dtype)
    Y = torch.randn(N, m, generator=g, dtype=torch.float64).to(dtype)
    W = (0.3 * torch.randn(K, d, m, generator=g, dtype=torch.float64)).to(dtype)
    b = torch.zeros(K, m, dtype=dtype)
    etas = [0.01, 0.1, 0.5, 2.0, 5.0, 20.0]
    seen = []

    def loss_fn(p):
        W, b = p
        out = torch.matmul(X, W) + b.unsqueeze(1)
        return 0.5 * (out - Y).pow(2).sum(-1).mean(-1)

    res = run_gd(loss_fn, [W, b], etas, 60, momentum=0.9, weight_decay=1e-2,
                 lr_mults=[torch.linspace(0.5, 1.5, K, dtype=dtype).view(K, 1, 1), 0.5],
                 lr_schedule=lambda t: min(1.0, (t + 1) / 10), record_every=4, divergence_factor=3.0, final_grads=True,
                 callback=lambda s: seen.append(s.loss.clone()),
                 record=lambda s: {"gW": s.grads[0].flatten(1).norm(dim=1)})
    out = _gd_out(res)
    out["callback_losses"] = torch.stack(seen)
    return out


def case_gd_momentum_wd_sched_f64():
    return _linreg(torch.float64)


def case_gd_momentum_wd_sched_f32():
    return _linreg(torch.float32)


def case_gd_sgd_eval_grid_f64():
    dtype = torch.float64
    g = torch.Generator().manual_seed(11)
    E, S, d, N, nb = 3, 2, 4, 30, 6
    X = torch.randn(N, d, generator=g, dtype=dtype)
    y = torch.randn(N, generator=g, dtype=dtype)
    w = 0.5 * torch.randn(E, S, d, generator=g, dtype=dtype)
    etas = torch.tensor([[0.05, 0.05], [0.5, 0.5], [3.0, 3.0]], dtype=dtype)
    bg = torch.Generator().manual_seed(12)
    orders = [torch.randperm(N, generator=bg)[:nb] for _ in range(80)]

    def loss_fn(p, batch):
        (w,) = p
        xb, yb = X[batch], y[batch]
        return 0.5 * (torch.einsum("esd,nd->esn", w, xb) - yb).pow(2).mean(-1)

    def eval_fn(p):
        (w,) = p
        return 0.5 * (torch.einsum("esd,nd->esn", w, X) - y).pow(2).mean(-1)

    res = run_gd(loss_fn, [w], etas, 50, batches=lambda t: orders[t], eval_fn=eval_fn, final_grads=True,
                 max_loss=1e8, lr_schedule=lambda t: torch.full((E, S), 1.0 / (1 + 0.01 * t), dtype=dtype),
                 record_every=3, record=lambda s: {"g": s.grads[0].norm(dim=-1)})
    return _gd_out(res)


def _data(N, d_in, d_out, dtype, seed, classes=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, d_in, generator=g, dtype=torch.float64).to(dtype)
    if classes:
        return x, torch.randint(0, d_out, (N,), generator=g)
    return x, torch.randn(N, d_out, generator=g, dtype=torch.float64).to(dtype)


def case_train_mse_f64():
    spec = MLPSpec(d_in=3, width=16, depth=2, d_out=1)
    x, y = _data(32, 3, 1, torch.float64, 1)
    P = init_params(spec, 5, seed=4)
    res = train(spec, P, x, y, [0.01, 0.1, 0.5, 2.0, 80.0], 40, record_every=5,
                diagnostics={"wnorm": weight_norms(spec), "sparsity": preact_sparsity(spec, x)})
    return _train_out(res)


def case_train_mse_1d_f32():
    spec = MLPSpec(d_in=4, width=24, depth=3, d_out=1, parametrization="mean_field")
    x, y = _data(48, 4, 1, torch.float32, 2)
    P = init_params(spec, 4, seed=5, dtype=torch.float32)
    res = train(spec, P, x, y[:, 0], [0.05, 0.5, 5.0, 500.0], 30, momentum=0.5,
                layer_lr_mults=[1.0, 2.0, 2.0, 24.0])
    return _train_out(res)


def case_train_ce_sgd_mup_ln_f32():
    spec = MLPSpec(d_in=5, width=12, depth=2, d_out=3, parametrization="mup", bias=True, norm="layernorm")
    x, y = _data(50, 5, 3, torch.float32, 3, classes=True)
    xt, yt = _data(20, 5, 3, torch.float32, 4, classes=True)
    P = init_params(spec, 4, seed=6, dtype=torch.float32)
    res = train(spec, P, x, y, [0.01, 0.1, 1.0, 1e4], 30, loss="ce", batch_size=16, seed=9, x_test=xt, y_test=yt,
                momentum=0.9, weight_decay=1e-3, layer_lr_mults=[1.0, 0.5, 2.0], record_every=3)
    return _train_out(res)


def case_train_onehot_bn_ntk_f64():
    from lrtheory.core.data import one_hot

    spec = MLPSpec(d_in=4, width=10, depth=2, d_out=4, parametrization="ntk", bias=True, norm="batchnorm")
    x, lab = _data(40, 4, 4, torch.float64, 5, classes=True)
    y = one_hot(lab, 4).to(torch.float64)
    P = init_params(spec, 3, seed=7)
    seen = []
    res = train(spec, P, x, y, [0.02, 0.3, 3.0], 25, batch_size=10, seed=3, record_every=2,
                callback=lambda t, p, L, a: seen.append(torch.cat([L.detach(), a.to(L.dtype)])))
    out = _train_out(res)
    out["callback"] = torch.stack(seen)
    return out


def case_train_ce_gd_input_lr_f64():
    spec = MLPSpec(d_in=6, width=20, depth=3, d_out=5, input_lr_mult=0.1)
    x, y = _data(64, 6, 5, torch.float64, 6, classes=True)
    xt, yt = _data(16, 6, 5, torch.float64, 7, classes=True)
    P = init_params(spec, 6, seed=8)
    res = train(spec, P, x, y, [0.05, 0.2, 1.0, 4.0, 20.0, 1e-8], 35, loss="ce", x_test=xt, y_test=yt,
                record_every=7, weight_decay=1e-4)
    return _train_out(res)


def case_train_all_diverge_f32():
    spec = MLPSpec(d_in=3, width=8, depth=1, d_out=2)
    x, y = _data(16, 3, 2, torch.float32, 8)
    P = init_params(spec, 3, seed=9, dtype=torch.float32)
    res = train(spec, P, x, y * 100, [1e3, 3e3, 1e4], 20, record_every=1, divergence_factor=10.0)
    return _train_out(res)


def case_train_sgd_standard_mse_f32():
    # the benchmark shape, small: depth 3, d_out 10, minibatches, per-layer LRs
    spec = MLPSpec(d_in=32, width=32, depth=3, d_out=10)
    x, y = _data(128, 32, 10, torch.float32, 10)
    P = init_params(spec, 8, seed=10, dtype=torch.float32)
    res = train(spec, P, x, y, np.geomspace(1e-3, 3.0, 8), 24, batch_size=32, seed=1, record_every=6,
                layer_lr_mults=[0.5, 1.0, 1.0, 2.0])
    return _train_out(res)


def case_train_bias_mup_mse_f64():
    spec = MLPSpec(d_in=4, width=12, depth=3, d_out=2, parametrization="mup", bias=True)
    x, y = _data(30, 4, 2, torch.float64, 11)
    P = init_params(spec, 5, seed=11)
    P = [p + 0.01 * (i + 1) if p.abs().sum() == 0 else p for i, p in enumerate(P)]  # non-zero biases
    res = train(spec, P, x, y, [0.01, 0.1, 1.0, 10.0, 300.0], 30, momentum=0.8, record_every=6,
                diagnostics={"wnorm": weight_norms(spec)})
    return _train_out(res)


def case_train_bias_ntk_ce_sgd_f32():
    spec = MLPSpec(d_in=6, width=16, depth=2, d_out=4, parametrization="ntk", bias=True)
    x, y = _data(60, 6, 4, torch.float32, 12, classes=True)
    xt, yt = _data(25, 6, 4, torch.float32, 13, classes=True)
    P = init_params(spec, 4, seed=12, dtype=torch.float32)
    res = train(spec, P, x, y, [0.05, 0.5, 5.0, 500.0], 30, loss="ce", batch_size=12, seed=4, x_test=xt, y_test=yt,
                weight_decay=1e-3, record_every=5)
    return _train_out(res)


def case_train_ntk_nobias_mse_f32():
    spec = MLPSpec(d_in=3, width=20, depth=2, d_out=2, parametrization="ntk")
    x, y = _data(40, 3, 2, torch.float32, 14)
    P = init_params(spec, 4, seed=13, dtype=torch.float32)
    res = train(spec, P, x, y, [0.1, 1.0, 4.0, 40.0], 25, layer_lr_mults=[2.0, 1.0, 0.5], record_every=5)
    return _train_out(res)


def case_train_bias_batch_of_one_f64():
    spec = MLPSpec(d_in=2, width=6, depth=1, d_out=1, bias=True)
    x, y = _data(8, 2, 1, torch.float64, 15)
    P = init_params(spec, 3, seed=14)
    res = train(spec, P, x, y, [0.01, 0.3, 30.0], 20, batch_size=1, seed=2, record_every=4)
    return _train_out(res)


CASES: Dict[str, Callable[[], Dict[str, object]]] = {
    name[len("case_"):]: fn for name, fn in sorted(globals().items()) if name.startswith("case_")
}


def run_case(name: str) -> Dict[str, object]:
    """The outputs of one case, single-threaded (the thread count can change a GEMM's blocking)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return CASES[name]()
    finally:
        torch.set_num_threads(n)


def _bytes(v) -> tuple:
    if isinstance(v, torch.Tensor):
        v = v.detach().cpu()
        return str(v.dtype), tuple(v.shape), v.contiguous().view(-1).view(torch.uint8).numpy().tobytes() if v.numel() else b""
    a = np.ascontiguousarray(np.asarray(v))
    return str(a.dtype), tuple(a.shape), a.tobytes()


def digest(out: Dict[str, object]) -> Dict[str, dict]:
    """Per output: dtype, shape, sha256 of the raw bytes, and the nan-sum (to read a difference by)."""
    d = {}
    for k, v in sorted(out.items()):
        dt, shape, raw = _bytes(v)
        arr = v.detach().cpu().double().numpy() if isinstance(v, torch.Tensor) else np.asarray(v, dtype=np.float64)
        d[k] = {"dtype": dt, "shape": list(shape), "sha256": hashlib.sha256(raw).hexdigest(),
                "nansum": float(np.nansum(np.where(np.isinf(arr), 0.0, arr)))}
    return d


def _recorded():
    if not FIXTURE.exists():
        return None
    return json.loads(FIXTURE.read_text()).get(env_key())


@pytest.mark.parametrize("name", sorted(CASES))
def test_outputs_bit_identical_to_recorded(name):
    """Change detector: the outputs hash to what the pre-speed-up core gave in this environment."""
    rec = _recorded()
    if rec is None:
        pytest.skip(f"no recorded digests for this environment ({env_key()})")
    got = digest(run_case(name))
    want = rec[name]
    assert sorted(got) == sorted(want), "the set of outputs changed"
    diff = {k: (want[k]["nansum"], got[k]["nansum"]) for k in want if got[k] != want[k]}
    assert not diff, f"{name}: outputs differ from the recorded bits (recorded nansum, now): {diff}"


def test_cases_are_deterministic():
    """Two runs of the same case in one process give the same bits (no hidden state in the loop)."""
    for name in ("gd_uv_autograd_f32", "train_ce_sgd_mup_ln_f32"):
        assert digest(run_case(name)) == digest(run_case(name))


def main(argv):
    if argv[:1] == ["save"]:
        torch.save({name: run_case(name) for name in CASES}, argv[1])
    elif argv[:1] == ["compare"]:
        ref = torch.load(argv[1], weights_only=False)
        bad = 0
        for name in CASES:
            out = run_case(name)
            for k, v in ref[name].items():
                a, b = out[k], v
                same = (torch.equal(a, b) if isinstance(a, torch.Tensor) else
                        np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)
                        and np.asarray(a).dtype == np.asarray(b).dtype)
                if not same:
                    bad += 1
                    print("DIFF", name, k)
        print("all bit-identical" if not bad else f"{bad} outputs differ")
        return 1 if bad else 0
    elif argv[:1] == ["record"]:
        data = json.loads(FIXTURE.read_text()) if FIXTURE.exists() else {}
        data.setdefault("_about", "Change detector (issue 13): sha256 of the raw bytes of every output of the "
                                  "cases in tests/gd_bitwise_cases.py, recorded from the core before the speed-up "
                                  "commit, per environment key (torch, ATen CPU capability, MKL instructions). "
                                  "Not an independent check: tests/test_gd.py and tests/test_train.py are.")
        data[env_key()] = {name: digest(run_case(name)) for name in CASES}
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        FIXTURE.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        print("recorded", env_key())
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
