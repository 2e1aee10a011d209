"""lrtheory.core.gd: the masked batched GD loop against torch.optim.SGD, and its documented contracts
(divergence freezes at the last finite parameters, never leaks, what is recorded at the divergence
step, convergence freeze, records)."""
import math

import numpy as np
import pytest
import torch

from lrtheory.core.gd import GDResult, GDStatus, run_gd

DT = torch.float64
# batched vs a per-model torch.optim loop: the same float64 operations in another order
# (torch.optim adds weight decay and momentum with fused kernels): 1e-12 relative after 25 steps.
RTOL = 1e-12


def _problem(K=4, d=5, n=12, seed=0):
    """K independent nonlinear least-squares models: loss_k = mean((tanh(X w_k) v_k - y)^2) / 2."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=DT)
    y = torch.randn(n, generator=g, dtype=DT)
    w = torch.randn(K, d, generator=g, dtype=DT) * 0.5
    v = torch.randn(K, 1, generator=g, dtype=DT)

    def loss_fn(p):
        w, v = p
        f = torch.tanh(w @ X.T) * v  # (K, n)
        return 0.5 * (f - y).pow(2).mean(-1)

    return loss_fn, [w, v], X, y


def _torch_sgd(loss_fn, params, k, eta, steps, mults=(1.0, 1.0), momentum=0.0, weight_decay=0.0):
    """Model k alone, trained by torch.optim.SGD (one param group per tensor, lr = eta * mult)."""
    ps = [p[k:k + 1].detach().clone().requires_grad_(True) for p in params]
    opt = torch.optim.SGD([{"params": [p], "lr": eta * m} for p, m in zip(ps, mults)], lr=eta,
                          momentum=momentum, weight_decay=weight_decay, dampening=0.0)
    losses, traj = [], [[p.detach().clone() for p in ps]]
    for _ in range(steps):
        opt.zero_grad()
        L = loss_fn(ps)[0]
        losses.append(L.item())
        L.backward()
        opt.step()
        traj.append([p.detach().clone() for p in ps])
    losses.append(loss_fn(ps)[0].item())
    return np.array(losses), traj


@pytest.mark.parametrize("momentum, weight_decay, mults", [
    (0.0, 0.0, (1.0, 1.0)), (0.9, 0.0, (1.0, 1.0)), (0.0, 0.05, (1.0, 1.0)), (0.7, 0.01, (0.5, 2.0)),
])
def test_matches_torch_optim_sgd(momentum, weight_decay, mults):
    loss_fn, P, _, _ = _problem()
    etas = [0.05, 0.1, 0.2, 0.4]
    res = run_gd(loss_fn, P, etas, 25, momentum=momentum, weight_decay=weight_decay, lr_mults=list(mults),
                 record=lambda s: {"w": s.params[0]})
    assert isinstance(res, GDResult) and (res.status == GDStatus.BOUNDED).all()
    assert res.step.tolist() == list(range(26)) and res.steps_run == 25 and (res.stop_step == 25).all()
    for k, eta in enumerate(etas):
        losses, traj = _torch_sgd(loss_fn, P, k, eta, 25, mults, momentum, weight_decay)
        np.testing.assert_allclose(res.loss[:, k], losses, rtol=RTOL)
        np.testing.assert_allclose(res.records["w"][:, k], np.stack([t[0][0].numpy() for t in traj]), rtol=RTOL,
                                   atol=1e-15)
        torch.testing.assert_close(res.params[1][k], traj[-1][1][0], rtol=RTOL, atol=1e-15)


def test_closed_form_grad_equals_autograd():
    loss_fn, P, X, y = _problem()

    def grad_fn(p):
        w, v = p
        h = torch.tanh(w @ X.T)
        r = (h * v - y) / X.shape[0]
        return [(r * v * (1 - h ** 2)) @ X, (r * h).sum(-1, keepdim=True)]

    a = run_gd(loss_fn, P, [0.1, 0.2, 0.3, 0.4], 20, momentum=0.5)
    b = run_gd(loss_fn, P, [0.1, 0.2, 0.3, 0.4], 20, momentum=0.5, grad_fn=grad_fn)
    np.testing.assert_allclose(a.loss, b.loss, rtol=1e-12)
    for p, q in zip(a.params, b.params):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-15)


def _solo(loss_fn, P, k, eta, steps, **kw):
    return run_gd(loss_fn, [p[k:k + 1] for p in P], [eta], steps, **kw)


# batched vs solo: the same operations, but a K-row matmul may take another BLAS path than a 1-row one
SOLO_RTOL = 1e-12


def test_nan_of_one_model_never_reaches_another():
    """Model 1 has a NaN parameter and model 2 a huge LR: both stop; 0 and 3 are their solo runs."""
    loss_fn, P, _, _ = _problem()
    P = [p.clone() for p in P]
    P[0][1, 0] = float("nan")
    etas = [0.1, 0.1, 1e8, 0.3]
    res = run_gd(loss_fn, P, etas, 30, record=lambda s: {"v": s.params[1][:, 0]})
    assert res.status.tolist() == [GDStatus.BOUNDED, GDStatus.DIVERGED, GDStatus.DIVERGED, GDStatus.BOUNDED]
    assert res.stop_step[1] == 0
    for k in (0, 3):
        solo = _solo(loss_fn, P, k, etas[k], 30)
        np.testing.assert_allclose(res.loss[:, k], solo.loss[:, 0], rtol=SOLO_RTOL)
        for p, q in zip(res.params, solo.params):
            torch.testing.assert_close(p[k], q[0], rtol=SOLO_RTOL, atol=1e-15)
    assert torch.isfinite(res.params[1][2]).all() and torch.isfinite(res.params[0][2]).all()
    assert np.isfinite(res.records["v"][:, [0, 3]]).all()


def test_diverged_model_is_frozen_at_its_last_finite_parameters():
    loss_fn, P, _, _ = _problem()
    etas = [0.1, 50.0, 1e4, 0.2]
    res = run_gd(loss_fn, P, etas, 40, divergence_factor=10.0)
    assert res.diverged.tolist() == [False, True, True, False]
    for k in (1, 2):
        s = int(res.stop_step[k])
        # frozen at theta_s: the solo run of s steps ends at the same parameters (and diverges at its
        # last step s too, the same loss check)
        solo = _solo(loss_fn, P, k, etas[k], s, divergence_factor=10.0)
        assert solo.stop_step[0] == s and solo.loss[-1, 0] == pytest.approx(res.loss[s, k], rel=SOLO_RTOL)
        for p, q in zip(res.params, solo.params):
            torch.testing.assert_close(p[k], q[0], rtol=SOLO_RTOL, atol=1e-15)
        assert np.isfinite(res.loss[s, k]) and all(torch.isfinite(p[k]).all() for p in res.params)
        assert np.isnan(res.loss[s + 1:, k]).all()


def test_record_at_the_divergence_step_loss_check():
    """Caught by the loss check at step s: the loss row at s holds the observed loss (here inf),
    not NaN; NaN afterwards; record() values are NaN from s on."""
    w = torch.tensor([[1.0], [1.0], [1.0]], dtype=DT)
    target = torch.tensor([0.0, 0.0, 0.0], dtype=DT)

    def loss_fn(p):  # model 1 blows up to inf at its step 3 (loss finite and growing before)
        (w,) = p
        L = 0.5 * (w[:, 0] - target) ** 2
        return L

    etas = [0.5, 2.5, 0.1]  # eta = 2.5: |w| grows by 1.5 per step
    res = run_gd(loss_fn, [w], etas, 10, divergence_factor=4.0, record=lambda s: {"w": s.params[0][:, 0]})
    # L_0 = 0.5, threshold 4 * max(0.5, 1) = 4; model 1: w_t = (-1.5)^t, L_t = 0.5 * 1.5^(2t): 0.5, 1.125,
    # 2.53, 5.70 > 4 -> diverges at t = 3 with the observed loss 5.695...
    assert res.status[1] == GDStatus.DIVERGED and res.stop_step[1] == 3
    assert res.loss[3, 1] == pytest.approx(0.5 * 1.5 ** 6, rel=1e-14)
    assert np.isnan(res.loss[4:, 1]).all() and np.isfinite(res.loss[:4, 1]).all()
    assert np.isnan(res.records["w"][3:, 1]).all() and res.records["w"][2, 1] == pytest.approx(1.5 ** 2)
    assert res.params[0][1, 0].item() == pytest.approx((-1.5) ** 3)  # theta_3, not updated
    assert np.isfinite(res.loss[:, [0, 2]]).all()

    # an infinite loss is recorded as inf at the divergence step
    def inf_loss(p):
        (w,) = p
        L = 0.5 * w[:, 0] ** 2
        return torch.where(w[:, 0].abs() > 2, torch.full_like(L, math.inf), L)

    r2 = run_gd(inf_loss, [w], etas, 10, divergence_factor=None)
    assert r2.stop_step[1] == 2 and r2.loss[2, 1] == math.inf and np.isnan(r2.loss[3:, 1]).all()


def test_record_at_the_divergence_step_update_check():
    """An update that would leave param_bound (or be non-finite) is refused: the model stops at step s with
    theta_s, its loss and records at s are the finite values at theta_s, NaN from s + 1."""
    x0 = torch.tensor([1.0, 1.0], dtype=DT)

    def loss_fn(p):
        return 0.5 * p[0] ** 2

    res = run_gd(loss_fn, [x0], [3.0, 0.5], 6, divergence_factor=None, param_bound=5.0,
                 record=lambda s: {"x": s.params[0]})
    # model 0: x_t = (-2)^t: 1, -2, 4, then -8 would leave the bound -> stops at step 2 with x = 4
    assert res.stop_step[0] == 2 and res.status[0] == GDStatus.DIVERGED
    assert res.params[0][0].item() == 4.0
    assert res.loss[2, 0] == 8.0 and res.records["x"][2, 0] == 4.0
    assert np.isnan(res.loss[3:, 0]).all() and np.isnan(res.records["x"][3:, 0]).all()
    assert res.status[1] == GDStatus.BOUNDED and res.params[0][1].item() == pytest.approx(0.5 ** 6)


def test_converged_freeze_and_all():
    x0 = torch.ones(3, dtype=DT)

    def loss_fn(p):
        return 0.5 * p[0] ** 2

    etas = [0.5, 0.9, 0.1]  # x_t = (1 - eta)^t
    res = run_gd(loss_fn, [x0], etas, 100, converged=lambda s: s.loss <= 1e-6, record=lambda s: {"x": s.params[0]})
    for k, eta in enumerate(etas):
        first = next(t for t in range(101) if 0.5 * (1 - eta) ** (2 * t) <= 1e-6)
        assert res.status[k] == GDStatus.CONVERGED and res.stop_step[k] == first
        assert res.params[0][k].item() == pytest.approx((1 - eta) ** first, rel=1e-12)
    # a converged model keeps being recorded at its frozen parameters (not NaN)
    k, s = 1, int(res.stop_step[1])
    assert np.all(res.records["x"][s:, 1] == res.params[0][1].item())
    assert res.steps_run == int(res.stop_step.max())  # everything stopped: the loop ends there
    # "all": nothing freezes until every model is converged at once
    al = run_gd(loss_fn, [x0], etas, 200, converged=lambda s: s.loss <= 1e-6, on_converged="all")
    T = int(res.stop_step.max())
    assert (al.stop_step == T).all() and (al.status == GDStatus.CONVERGED).all() and al.steps_run == T
    assert al.params[0][0].item() == pytest.approx(0.5 ** T)
    # "all" with a diverged model: the others stop once they are all converged
    bad = run_gd(loss_fn, [x0], [0.5, 3.0, 0.1], 200, converged=lambda s: s.loss <= 1e-6, on_converged="all",
                 divergence_factor=10.0)
    assert bad.status.tolist() == [GDStatus.CONVERGED, GDStatus.DIVERGED, GDStatus.CONVERGED]


def test_batch_shape_scalar_eta_and_hooks():
    # (E, S) = (3, 2) grid of models, scalar params per model: f = u v, loss (u v)^2 / 2
    u = torch.tensor([[1.0, 1.2], [1.0, 1.2], [1.0, 1.2]], dtype=DT)
    v = u.clone() * 0.5
    etas = torch.tensor([[0.1, 0.1], [1.0, 1.0], [6.0, 6.0]], dtype=DT)  # eta lambda_0 > 4: divergent

    def loss_fn(p):
        f = p[0] * p[1]
        return 0.5 * f ** 2, f

    seen = []
    res = run_gd(loss_fn, [u, v], etas, 30, divergence_factor=None,
                 diverged=lambda s: s.etas ** 2 * s.aux ** 2 > 100.0,
                 record=lambda s: {"f": s.aux}, callback=lambda s: seen.append(s.step))
    assert res.status.shape == (3, 2) and res.loss.shape[1:] == (3, 2) and res.records["f"].shape[1:] == (3, 2)
    assert (res.status[2] == GDStatus.DIVERGED).all() and (res.status[:2] == GDStatus.BOUNDED).all()
    assert seen == list(range(30))
    # a scalar eta, one per model along the leading axis
    x = torch.tensor([1.0, 2.0], dtype=DT)
    r = run_gd(lambda p: 0.5 * p[0] ** 2, x, 0.5, 3)
    assert r.etas.tolist() == [0.5, 0.5] and r.params[0].tolist() == [0.125, 0.25]


def test_lr_schedule_max_loss_and_tensor_multipliers():
    x = torch.ones(2, 3, dtype=DT)

    def loss_fn(p):
        return 0.5 * p[0].pow(2).sum(-1)

    r = run_gd(loss_fn, [x], [0.1, 0.2], 3, lr_schedule=lambda t: 1.0 + t)
    f = [(1 - 0.1 * 1) * (1 - 0.1 * 2) * (1 - 0.1 * 3), (1 - 0.2) * (1 - 0.4) * (1 - 0.6)]
    np.testing.assert_allclose(r.params[0][:, 0].numpy(), f, rtol=1e-14)
    m = run_gd(loss_fn, [x], [0.1, 0.2], 1, lr_mults=[torch.tensor([0.0, 1.0, 2.0], dtype=DT)])
    np.testing.assert_allclose(m.params[0].numpy(), [[1, 0.9, 0.8], [1, 0.8, 0.6]], rtol=1e-14)
    g = run_gd(lambda p: 0.5 * p[0].pow(2).sum(-1) * 0 + p[0].sum(-1) ** 2, [x], [0.1, 5.0], 5, max_loss=100.0,
               divergence_factor=None)
    assert g.diverged.tolist() == [False, True]


def test_sgd_batches_eval_fn_and_final_grads():
    loss_fn, P, X, y = _problem(K=2)
    rng = torch.Generator().manual_seed(3)
    order = [torch.randperm(12, generator=rng)[:4] for _ in range(10)]
    draws = []

    def batches(t):
        draws.append(t)
        return order[t]

    def batch_loss(p, idx):
        w, v = p
        f = torch.tanh(w @ X[idx].T) * v
        return 0.5 * (f - y[idx]).pow(2).mean(-1)

    res = run_gd(batch_loss, P, [0.1, 0.2], 10, batches=batches, eval_fn=loss_fn, record_every=5,
                 final_grads=True, record=lambda s: {"gnorm": s.grads[0].norm(dim=-1)})
    assert draws == list(range(10))  # no batch drawn at the last step: it is evaluated by eval_fn
    assert res.step.tolist() == [0, 5, 10]
    np.testing.assert_allclose(res.loss[-1], loss_fn(res.params).numpy(), rtol=1e-14)  # the eval loss
    wr = res.params[0].clone().requires_grad_(True)
    (gw,) = torch.autograd.grad(loss_fn([wr, res.params[1]]).sum(), wr)
    np.testing.assert_allclose(res.records["gnorm"][-1], gw.norm(dim=-1).numpy(), rtol=1e-12)
    # the same SGD by hand
    w, v = (p.clone() for p in P)
    for t in range(10):
        wr, vr = w.clone().requires_grad_(True), v.clone().requires_grad_(True)
        gw, gv = torch.autograd.grad(batch_loss([wr, vr], order[t]).sum(), [wr, vr])
        e = torch.tensor([[0.1], [0.2]], dtype=DT)
        w, v = w - e * gw, v - e * gv
    torch.testing.assert_close(res.params[0], w, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("kwargs, name", [
    (dict(etas=[0.1, -1.0]), "etas"), (dict(etas=[0.1, float("nan")]), "etas"), (dict(etas=[0.1, 0.1, 0.1]), "params"),
    (dict(steps=-1), "steps"), (dict(momentum=1.0), "momentum"), (dict(weight_decay=-1.0), "weight_decay"),
    (dict(record_every=0), "record_every"), (dict(divergence_factor=1.0), "divergence_factor"),
    (dict(param_bound=0.0), "param_bound"), (dict(on_converged="first"), "on_converged"),
    (dict(lr_mults=[1.0]), "lr_mults"), (dict(lr_mults=[1.0, -1.0]), "lr_mults"),
    (dict(record=lambda s: {"loss": s.loss}), "record"), (dict(record=lambda s: {"x": s.loss[:1]}), "record"),
    (dict(converged=lambda s: s.loss[:1] < 0), "converged"), (dict(grad_fn=lambda p: [p[0]]), "grad_fn"),
    (dict(record=3), "record"),
])
def test_validation(kwargs, name):
    loss_fn, P, _, _ = _problem(K=2)
    args = dict(etas=[0.1, 0.1], steps=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        run_gd(loss_fn, P, **args)


def test_params_validation():
    with pytest.raises(ValueError, match="params"):
        run_gd(lambda p: p[0], [], [0.1], 1)
    with pytest.raises(ValueError, match="params"):
        run_gd(lambda p: p[0], [torch.zeros(2, dtype=torch.int64)], [0.1, 0.1], 1)
    with pytest.raises(ValueError, match="loss_fn"):
        run_gd(lambda p: p[0].sum(), [torch.zeros(2, dtype=DT)], [0.1, 0.1], 1)


def test_divergence_thresholds_are_strict_and_inf_means_none():
    """Exact arithmetic: x0 = 2, L = x^2 / 2, eta = 3 -> x_t = 2 (-2)^t, L_t = 2, 8, 32: with factor 4 the
    threshold is 4 * max(L_0, 1) = 8; L_1 = 8 is not above it, L_2 = 32 is. max_loss = 8 the same way;
    divergence_factor=inf is no relative check, like None."""
    x0 = torch.tensor([2.0, 2.0], dtype=DT)

    def loss_fn(p):
        return 0.5 * p[0] ** 2

    r = run_gd(loss_fn, [x0], [3.0, 0.25], 5, divergence_factor=4.0)
    assert r.stop_step[0] == 2 and r.loss[1, 0] == 8.0 and r.loss[2, 0] == 32.0
    m = run_gd(loss_fn, [x0], [3.0, 0.25], 5, divergence_factor=None, max_loss=8.0)
    assert m.stop_step[0] == 2 and m.status[1] == GDStatus.BOUNDED
    for off in (None, math.inf):
        o = run_gd(loss_fn, [x0], [3.0, 0.25], 5, divergence_factor=off)
        assert (o.status == GDStatus.BOUNDED).all() and o.loss[-1, 0] == 2.0 * 4.0 ** 5


def test_eval_loss_is_checked_for_divergence():
    """Under SGD the evaluation loss (the full data) is checked at recorded steps too: here the batch loss
    stays finite while model 1's evaluation loss turns inf at step 2, and it stops there."""
    x0 = torch.ones(2, dtype=DT)

    def eval_fn(p):
        return torch.where(torch.arange(2) == 1, torch.where(p[0] < 0.3, torch.full((2,), math.inf, dtype=DT),
                                                             0.5 * p[0] ** 2), 0.5 * p[0] ** 2)

    r = run_gd(lambda p, b: 0.5 * p[0] ** 2, [x0], [0.1, 0.5], 6, batches=lambda t: None, eval_fn=eval_fn,
               divergence_factor=None)
    # model 1: x_t = 0.5^t: 1, 0.5, 0.25 -> eval loss inf at step 2
    assert r.status.tolist() == [GDStatus.BOUNDED, GDStatus.DIVERGED] and r.stop_step[1] == 2
    assert r.loss[2, 1] == math.inf and r.params[0][1].item() == 0.25


def test_param_bound_per_model_with_a_grid_batch_shape():
    """(E, S) = (2, 3) models with scalar parameters: only the model whose update leaves the bound stops."""
    x0 = torch.ones(2, 3, dtype=DT)
    etas = torch.tensor([[0.5, 0.5, 0.5], [0.5, 4.0, 0.5]], dtype=DT)
    r = run_gd(lambda p: 0.5 * p[0] ** 2, [x0], etas, 4, divergence_factor=None, param_bound=10.0)
    expect = np.full((2, 3), GDStatus.BOUNDED)
    expect[1, 1] = GDStatus.DIVERGED
    assert (r.status == expect).all()
    assert r.stop_step[1, 1] == 2 and r.params[0][1, 1].item() == 9.0  # x: 1, -3, 9, then -27 is refused
    assert (r.params[0][expect == GDStatus.BOUNDED] == 0.5 ** 4).all()


def test_lr_schedule_per_model_tensor():
    x0 = torch.ones(2, dtype=DT)
    sched = lambda t: torch.tensor([1.0, 0.0], dtype=torch.float32) if t == 0 else 1.0  # noqa: E731
    r = run_gd(lambda p: 0.5 * p[0] ** 2, [x0], [0.5, 0.5], 2, lr_schedule=sched)
    assert r.params[0].tolist() == [0.25, 0.5] and r.params[0].dtype == DT


def test_call_order_contract():
    """Documented for closed-form gradients that reuse the forward pass: per step one loss_fn call, then one
    grad_fn call on the very same tensors; none at the last step (no update); a reused gradient buffer is safe."""
    calls = []
    buf = torch.zeros(2, dtype=DT)

    def loss_fn(p):
        calls.append(("loss", id(p[0])))
        return 0.5 * p[0] ** 2

    def grad_fn(p):
        calls.append(("grad", id(p[0])))
        buf.copy_(p[0])
        return [buf]

    r = run_gd(loss_fn, [torch.ones(2, dtype=DT)], [0.5, 0.25], 3, grad_fn=grad_fn)
    assert [c[0] for c in calls] == ["loss", "grad"] * 3 + ["loss"]
    assert all(calls[2 * t][1] == calls[2 * t + 1][1] for t in range(3))
    assert r.params[0].tolist() == [0.5 ** 3, 0.75 ** 3]


# ----------------------------------------------------------------------------- contracts, checked exactly
@pytest.mark.parametrize("kwargs, name", [
    (dict(steps=-1), "steps"), (dict(momentum=1.0), "momentum"), (dict(weight_decay=-1.0), "weight_decay"),
    (dict(record_every=0), "record_every"), (dict(divergence_factor=1.0), "divergence_factor"),
    (dict(divergence_factor=float("nan")), "divergence_factor"), (dict(max_loss=float("nan")), "max_loss"),
    (dict(param_bound=0.0), "param_bound"), (dict(param_bound=float("nan")), "param_bound"),
    (dict(on_converged="first"), "on_converged"), (dict(grad_fn=3), "grad_fn"), (dict(batches=3), "batches"),
    (dict(eval_fn=3), "eval_fn"), (dict(record=3), "record"), (dict(diverged=3), "diverged"),
    (dict(converged=3), "converged"), (dict(callback=3), "callback"), (dict(lr_schedule=3), "lr_schedule"),
    (dict(lr_mults=[1.0, -1.0]), r"lr_mults\[1\]"), (dict(lr_mults=[1.0, float("inf")]), r"lr_mults\[1\]"),
    (dict(lr_mults=[torch.ones(2, 1, 5, dtype=DT), 1.0]), "lr_mults"),
    # a shape that does not broadcast at all (torch's own RuntimeError before the fix)
    (dict(lr_mults=[torch.ones(7, dtype=DT), 1.0]), "lr_mults"),
    (dict(diverged=lambda s: s.loss[:1] > 0), "diverged"), (dict(converged=lambda s: s.loss[:1] < 0), "converged"),
])
def test_validation_names_the_argument_first(kwargs, name):
    loss_fn, P, _, _ = _problem(K=2)
    args = dict(etas=[0.1, 0.1], steps=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=rf"^{name}: "):
        run_gd(loss_fn, P, **args)
    with pytest.raises(ValueError, match=r"^loss_fn: expected a callable, got int$"):
        run_gd(3, P, [0.1, 0.1], 2)
    with pytest.raises(ValueError, match=r"^loss_fn: returned shape \(3,\), expected the batch shape \(2,\)$"):
        run_gd(lambda p: torch.zeros(3, dtype=DT), P, [0.1, 0.1], 2)
    with pytest.raises(ValueError, match=r"^loss_fn: returned shape \(\), expected the batch shape \(2,\)$"):
        run_gd(lambda p: 1.0, P, [0.1, 0.1], 2)


def test_every_hook_sees_the_state_of_its_step_sgd_with_a_closed_form_gradient():
    """Minibatch GD with a closed-form gradient (no autograd), an aux output and an evaluation loss: each
    hook's GDState holds that step's number, parameters, batch loss, aux, evaluation loss, gradient, active
    mask, LRs and batch, all recomputed here by hand from the same minibatch order."""
    X = torch.randn(12, 3, generator=torch.Generator().manual_seed(5), dtype=DT)
    y = torch.randn(12, generator=torch.Generator().manual_seed(6), dtype=DT)
    order = [torch.arange(12)[t % 3::3] for t in range(6)]
    etas = torch.tensor([0.05, 0.1], dtype=DT)

    def batch_loss(p, idx):
        r = p[0] @ X[idx].T - y[idx]  # (K, b)
        return 0.5 * r.pow(2).mean(-1), {"r": r}

    def grad(p, idx):
        r = p[0] @ X[idx].T - y[idx]
        return [r @ X[idx] / len(idx)]

    def full(p):
        return 0.5 * (p[0] @ X.T - y).pow(2).mean(-1)

    seen = {"callback": [], "diverged": [], "converged": [], "record": []}

    def keep(name, out):
        def hook(s):
            seen[name].append((s.step, s.params[0].clone(), s.loss.clone(), None if s.aux is None else s.aux["r"].clone(),
                               None if s.eval_loss is None else s.eval_loss.clone(),
                               None if s.grads is None else s.grads[0].clone(), s.active.clone(),
                               torch.as_tensor(s.etas).clone(), s.batch))
            return out(s)
        return hook

    w0 = torch.zeros(2, 3, dtype=DT)
    res = run_gd(batch_loss, [w0], etas, 5, grad_fn=grad, batches=lambda t: order[t], eval_fn=full,
                 record=keep("record", lambda s: {"l": s.loss}), callback=keep("callback", lambda s: None),
                 diverged=keep("diverged", lambda s: torch.zeros(2, dtype=torch.bool)),
                 converged=keep("converged", lambda s: torch.zeros(2, dtype=torch.bool)))
    w = w0.clone()
    for t in range(6):
        idx = order[t]
        L, aux = batch_loss([w], idx)
        g = grad([w], idx)[0]
        for name in ("callback", "diverged", "converged", "record"):
            rows = [r for r in seen[name] if r[0] == t]
            if not rows:
                continue
            step, pw, pl, pr, pe, pg, act, eta, batch = rows[0]
            torch.testing.assert_close(pw, w, rtol=1e-13, atol=1e-15)
            torch.testing.assert_close(act, torch.ones(2, dtype=torch.bool))
            torch.testing.assert_close(eta.reshape(-1), etas)
            if t < 5:  # the last step takes only the evaluation loss (no batch is drawn)
                torch.testing.assert_close(pl, L, rtol=1e-13, atol=1e-15)
                torch.testing.assert_close(pr, aux["r"], rtol=1e-13, atol=1e-15)
                assert torch.equal(batch, idx)
            if pe is not None:
                torch.testing.assert_close(pe, full([w]), rtol=1e-13, atol=1e-15)
            if name == "callback" and t < 5:
                torch.testing.assert_close(pg, g, rtol=1e-13, atol=1e-15)
        if t < 5:
            w = w - etas[:, None] * g
    assert [r[0] for r in seen["callback"]][:5] == list(range(5))
    assert [r[0] for r in seen["diverged"]] == [r[0] for r in seen["converged"]] == list(range(6))
    torch.testing.assert_close(res.params[0], w, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(res.loss[-1], full([w]).numpy(), rtol=1e-13)
    assert res.step.tolist() == list(range(6)) and res.step.dtype.kind == "i"


# ------------------------------------------------- devices and dtypes come from the parameters (issue 21)
from core_defaults import foreign_defaults  # noqa: E402


def _f32_runs():
    """Float32 least-squares models of every kind of end (bounded, converged, diverged at the loss check at
    eta 5 > 2 / lambda_max, refused by the bound at eta 3), with tensor LR multipliers and schedule in float64 and hooks answering in NumPy."""
    X = torch.randn(8, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float32)
    y = 3.0 * torch.randn(8, generator=torch.Generator().manual_seed(3), dtype=torch.float32)
    w0 = torch.zeros(4, 3, dtype=torch.float32)
    wstar = torch.linalg.lstsq(X.double(), y.double()).solution
    best = float(0.5 * (X.double() @ wstar - y.double()).pow(2).mean())  # the least-squares minimum
    mult = torch.tensor([[1.0], [1.0], [1.0], [0.5]], dtype=torch.float64)
    sched = torch.tensor([1.0, 1.0, 1.0, 2.0], dtype=torch.float64)

    def loss_fn(p):
        r = p[0] @ X.T - y
        return 0.5 * r.pow(2).mean(-1), r

    def runs(records):
        out = []
        out.append(run_gd(loss_fn, [w0], [0.05, 0.2, 5.0, 0.1], 40, lr_mults=[mult], lr_schedule=lambda t: sched,
                          momentum=0.3, weight_decay=0.01, divergence_factor=50.0,
                          record=(lambda s: {"w": s.params[0], "g2": s.grads[0].double().pow(2).sum(-1)})
                          if records else None, final_grads=True,
                          diverged=lambda s: (s.loss > 1e30).numpy(),
                          converged=lambda s: (s.loss < 1.05 * best).numpy()))
        out.append(run_gd(loss_fn, [w0], [0.3, 0.3, 0.3, 3.0], 40, divergence_factor=None, param_bound=50.0,
                          converged=lambda s: (s.loss < 1.05 * best).numpy(), on_converged="all",
                          record=(lambda s: {"r": s.aux}) if records else None))
        return out

    return runs


def test_tensors_follow_the_parameters_not_the_global_defaults():
    """Every tensor the loop makes takes the parameters' device and dtype, never torch's defaults: run
    under a default device "meta" (a tensor made without device= breaks the first operation mixing it
    with the CPU parameters) and default dtype float64 (the parameters are float32), the runs equal the
    same runs under the ordinary defaults bit for bit, and every output is float32 on the CPU, records
    included (their values pass ``torch.as_tensor`` on the parameters' device)."""
    runs = _f32_runs()
    want, want_rec = runs(False), runs(True)
    with foreign_defaults(dtype=torch.float64):
        got = runs(False)
    with foreign_defaults(dtype=torch.float64):
        got_rec = runs(True)
    assert want[0].status.tolist() == [GDStatus.BOUNDED, GDStatus.CONVERGED, GDStatus.DIVERGED, GDStatus.CONVERGED]
    assert want[1].status.tolist() == [GDStatus.CONVERGED] * 3 + [GDStatus.DIVERGED]
    assert set(want_rec[0].records) == {"w", "g2"} and set(want_rec[1].records) == {"r"}
    for a, b in zip(want + want_rec, got + got_rec):
        assert a.status.tolist() == b.status.tolist() and a.stop_step.tolist() == b.stop_step.tolist()
        np.testing.assert_array_equal(a.loss, b.loss)
        assert b.loss.dtype == np.float32 and b.etas.dtype == np.float32
        assert b.status.dtype == np.int8 and b.stop_step.dtype == np.int64 and b.step.dtype == np.int64
        for k in a.records:
            np.testing.assert_array_equal(a.records[k], b.records[k])
            assert b.records[k].dtype == np.float32, k
        for p, q in zip(a.params, b.params):
            assert torch.equal(p, q) and q.dtype == torch.float32 and q.device.type == "cpu"


def _sq(p):
    """0.5 ||x_k||^2 per model (gradient x)."""
    return 0.5 * p[0].pow(2).reshape(p[0].shape[0], -1).sum(-1)


def test_messages_name_the_argument_exactly():
    P = [torch.ones(2, 3, dtype=DT)]
    cases = [
        (dict(params=torch.tensor(1.0, dtype=DT), etas=0.1),
         r"^etas: with a scalar eta the parameters need a leading model axis$"),
        (dict(etas=[0.1, -1.0]), r"^etas: "),
        (dict(params=[torch.ones(2, dtype=DT), torch.ones(2, dtype=torch.float32)]),
         r"^params: entry 1 has dtype/device torch\.float32/cpu, entry 0 torch\.float64/cpu$"),
        (dict(params=3), r"^params: expected a tensor or a non-empty sequence of tensors, got int$"),
        (dict(params={"x": P[0]}), r"^params: expected a tensor or a non-empty sequence of tensors, got dict$"),
        (dict(loss_fn=lambda p: (_sq(p), 1, 2)),
         r"^loss_fn: expected a loss tensor or a \(loss, aux\) pair, got a 3-tuple$"),
        (dict(loss_fn=None), r"^loss_fn: expected a callable$"),
        (dict(lr_mults=[torch.tensor(-1.0)]), r"^lr_mults: entry 0 must be finite and >= 0$"),
        (dict(lr_mults=[torch.tensor([1.0, float("nan"), 1.0])]), r"^lr_mults: entry 0 must be finite and >= 0$"),
        (dict(record=lambda s: [s.loss]), r"^record: expected a dict of tensors, got list$"),
        (dict(record=lambda s: {"step": s.loss}), r"^record: name 'step' is reserved$"),
    ]
    for kw, match in cases:
        args = dict(loss_fn=_sq, params=P, etas=[0.1, 0.1], steps=2)
        args.update(kw)
        with pytest.raises(ValueError, match=match):
            run_gd(args.pop("loss_fn"), args.pop("params"), args.pop("etas"), args.pop("steps"), **args)
    # the edges that are allowed: a divergence factor just above 1, a bound below 1
    r = run_gd(_sq, P, [0.1, 0.1], 2, divergence_factor=1.5, param_bound=0.5)
    assert r.diverged.tolist() == [True, True]  # |x| = 1 > 0.5 after no update: the first update is refused
    r = run_gd(_sq, P, [0.1, 0.1], 2, divergence_factor=1.5, param_bound=1.0)
    assert r.status.tolist() == [GDStatus.BOUNDED] * 2 and r.params[0][0, 0].item() == pytest.approx(0.81)


def test_scalar_eta_for_models_with_an_event_shape():
    """A scalar eta with parameters (K, 3): one LR per model along the leading axis only, B = (K,)."""
    x = torch.ones(2, 3, dtype=DT)
    r = run_gd(_sq, [x], 0.5, 2)
    assert r.etas.shape == (2,) and r.loss.shape == (3, 2)
    assert r.params[0].tolist() == [[0.25] * 3] * 2


def _nan_beyond(limit):
    """0.5 x^2 per model, NaN once |x| > limit (its gradient there is 0: torch.where routes none to x)."""
    def f(p, *batch):
        x = p[0]
        return torch.where(x.abs() > limit, torch.full_like(x, float("nan")), 0.5 * x ** 2)
    return f


def test_a_nan_loss_is_a_divergence_whatever_the_other_checks_say():
    """x_{t+1} = (1 - eta) x_t: at eta 3 the model goes 1, -2, 4, -8 and its loss is NaN from step 3
    (|x| > 5). The loss check catches it there, at x = -8, with the relative check on (the default
    factor), with a ``diverged`` hook that says no (as a bool or a float mask), and under SGD with a
    finite evaluation loss; a caught model's records are NaN from its divergence step."""
    x0 = torch.ones(2, dtype=DT)
    runs = [run_gd(_nan_beyond(5.0), [x0], [3.0, 0.1], 6, record=lambda s: {"x": s.params[0]}),
            run_gd(_nan_beyond(5.0), [x0], [3.0, 0.1], 6, diverged=lambda s: torch.zeros(2, dtype=torch.bool)),
            run_gd(_nan_beyond(5.0), [x0], [3.0, 0.1], 6, diverged=lambda s: torch.zeros(2, dtype=DT)),
            run_gd(_nan_beyond(5.0), [x0], [3.0, 0.1], 6, batches=lambda t: t, eval_fn=lambda p: 0.5 * p[0] ** 2)]
    for r in runs:
        assert r.status.tolist() == [GDStatus.DIVERGED, GDStatus.BOUNDED]
        assert r.stop_step.tolist() == [3, 6] and r.params[0][0].item() == -8.0
    rec = runs[0].records["x"][:, 0]
    assert rec[:3].tolist() == [1.0, -2.0, 4.0] and np.isnan(rec[3:]).all()
    # a float mask from the hook is read as bool: 1.0 diverges
    r = run_gd(_sq, [x0], [0.1, 0.1], 3, diverged=lambda s: torch.tensor([0.0, 1.0], dtype=DT))
    assert r.status.tolist() == [GDStatus.BOUNDED, GDStatus.DIVERGED] and r.stop_step.tolist() == [3, 0]


def test_default_divergence_factor_is_a_million_times_max_of_l0_and_1():
    """Scripted losses (L_0 = 1): 1e6 is not above 1e6 * max(L_0, 1), 1e6 * (1 + 1e-7) is."""
    table = torch.tensor([[1.0, 1.0], [1e6, 1e6], [1e6, 1e6 * (1 + 1e-7)], [1.0, 1.0]], dtype=DT)
    r = run_gd(lambda p, t: table[t] + 0.0 * p[0], [torch.zeros(2, dtype=DT)], [0.1, 0.1], 3, batches=lambda t: t)
    assert r.status.tolist() == [GDStatus.BOUNDED, GDStatus.DIVERGED] and r.stop_step.tolist() == [3, 2]


def _const_grad(*gs):
    return lambda p, *b: [g.clone() for g in gs]


def test_update_checks_per_tensor_and_model():
    """The update check (step 6) of every parameter tensor, per model: a new entry that is not finite
    (+inf here: -10 * -1e308), an entry beyond ``param_bound`` (|b| = 20 > 10), or exactly at it (2 <= 2:
    allowed), with one or two tensors, and a grid batch shape (2, 3) with an event (4,)."""
    def zero(p):  # a constant finite loss of the batch shape: only the update check acts
        return torch.zeros(p[0].shape[:2] if p[0].dim() == 3 else p[0].shape[:1], dtype=DT)

    a = torch.zeros(2, 3, dtype=DT)
    b = torch.zeros(2, dtype=DT)
    ga, gb = torch.zeros(2, 3, dtype=DT), torch.tensor([0.0, -1e308], dtype=DT)
    for P, G in (([b], [gb]), ([a, b], [ga, gb]), ([b, a], [gb, ga])):
        r = run_gd(zero, P, [1.0, 10.0], 3, grad_fn=_const_grad(*G), divergence_factor=None)
        assert r.status.tolist() == [GDStatus.BOUNDED, GDStatus.DIVERGED] and r.stop_step.tolist() == [3, 0]
        assert all(torch.equal(p, q) for p, q in zip(r.params, P))  # the refused update is not taken
    gb = torch.tensor([0.0, -20.0], dtype=DT)
    for P, G in (([a, b], [ga, gb]), ([b, a], [gb, ga])):
        r = run_gd(zero, P, [1.0, 1.0], 3, grad_fn=_const_grad(*G), param_bound=10.0, divergence_factor=None)
        assert r.status.tolist() == [GDStatus.BOUNDED, GDStatus.DIVERGED] and r.stop_step.tolist() == [3, 0]
    # exactly at the bound is inside: 1 -> 2 (kept) -> 3 (refused)
    r = run_gd(zero, [torch.ones(1, dtype=DT)], [1.0], 3, grad_fn=_const_grad(-torch.ones(1, dtype=DT)),
               param_bound=2.0, divergence_factor=None)
    assert r.stop_step.tolist() == [1] and r.params[0].tolist() == [2.0]
    # grid batch (2, 3), event (4,): only model (1, 2) leaves, by +inf (no bound) or beyond the bound
    G = torch.zeros(2, 3, 4, dtype=DT)
    for bound, g in ((math.inf, -1e308), (10.0, -20.0)):
        G[1, 2, 3] = g
        r = run_gd(zero, [torch.zeros(2, 3, 4, dtype=DT)], torch.full((2, 3), 10.0 if bound == math.inf else 1.0),
                   2, grad_fn=_const_grad(G), param_bound=bound, divergence_factor=None)
        want = np.full((2, 3), GDStatus.BOUNDED)
        want[1, 2] = GDStatus.DIVERGED
        np.testing.assert_array_equal(r.status, want)


def test_entries_within_the_bound_whose_sum_overflows_are_refused():
    """With a bound so large that ``numel * bound`` overflows, the per-model sum is checked too: two
    entries of 9e307 (each inside the bound 1e308) sum to +inf, parameters near overflow: refused at
    step 0, the model frozen at its zeros."""
    g = torch.tensor([[0.0, 0.0], [-1.5e308, -1.5e308]], dtype=DT)
    r = run_gd(lambda p: 0.0 * p[0].sum(-1), [torch.zeros(2, 2, dtype=DT)], [0.6, 0.6], 3, grad_fn=_const_grad(g),
               param_bound=1e308, divergence_factor=None)
    assert r.status.tolist() == [GDStatus.BOUNDED, GDStatus.DIVERGED] and r.stop_step.tolist() == [3, 0]
    assert r.params[0].tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_a_frozen_models_gradient_is_zero_under_autograd():
    """GDState.grads: zero for diverged models under autograd, whichever check froze them. 0.5 x^2 at eta 3:
    x = 1, -2, 4, then -8. Loss check (max_loss 5: the loss 8 at step 2) or update check (param_bound 5:
    the update to -8 at step 2): either way frozen at x = 4, where the true gradient is 4, not 0."""
    x0 = torch.ones(2, 1, dtype=DT)
    for kw in (dict(max_loss=5.0), dict(param_bound=5.0)):
        seen = []
        r = run_gd(_sq, [x0], [0.1, 3.0], 5, divergence_factor=None,
                   callback=lambda s: seen.append((s.step, s.params[0].clone(), s.grads[0].clone())), **kw)
        assert r.stop_step.tolist() == [5, 2] and r.params[0][1].item() == 4.0
        for t, p, g in seen:
            assert g[0].item() == p[0].item()  # the training model: its gradient x
            if t > 2:
                assert g[1].item() == 0.0, (kw, t)


def test_a_parameter_the_loss_does_not_use_gets_a_zero_gradient():
    x, unused = torch.ones(2, 1, dtype=DT), torch.full((2, 3), 7.0, dtype=DT)
    r = run_gd(_sq, [x, unused], [0.5, 0.5], 2, weight_decay=0.0)
    assert torch.equal(r.params[1], unused) and r.params[0].tolist() == [[0.25], [0.25]]


def test_final_grads_under_sgd_without_eval_fn_use_the_last_batch():
    """With batches and no eval_fn, the last step draws its batch too, and its final gradient is that
    batch's: grad_fn is called with it (at every step)."""
    calls = []

    def grad_fn(p, t):
        calls.append(t)
        return [p[0] * (t + 1)]

    r = run_gd(lambda p, t: 0.5 * (t + 1) * p[0] ** 2, [torch.ones(2, dtype=DT)], [0.1, 0.1], 3, grad_fn=grad_fn,
               batches=lambda t: t, final_grads=True, record=lambda s: {"g": s.grads[0]})
    assert calls == [0, 1, 2, 3]
    x3 = (1 - 0.1) * (1 - 0.2) * (1 - 0.3)
    assert r.records["g"][-1].tolist() == pytest.approx([4 * x3] * 2, rel=1e-14)


def test_hooks_see_the_evaluation_loss_step_and_no_batch():
    """Every hook's state carries the step's evaluation loss and aux (eval_fn at every recorded step: here
    every step), its step number, and ``batch`` None without ``batches``; records are taken without
    gradient tracking, and with a closed-form gradient nothing runs with gradients enabled."""
    seen = {k: [] for k in ("diverged", "converged", "record", "callback")}
    grad_mode = []

    def loss_fn(p):
        grad_mode.append(torch.is_grad_enabled())
        return _sq(p)

    def hook(name, out):
        def h(s):
            seen[name].append((s.step, None if s.eval_loss is None else s.eval_loss.clone(), s.eval_aux, s.batch,
                               torch.is_grad_enabled()))
            return out(s)
        return h

    x0 = torch.tensor([[1.0], [2.0]], dtype=DT)
    for grad_fn in (None, lambda p: [p[0].clone()]):
        for v in seen.values():
            v.clear()
        grad_mode.clear()
        r = run_gd(loss_fn, [x0], [0.5, 0.5], 3, grad_fn=grad_fn,
                   eval_fn=lambda p: (3.0 * _sq(p), "aux-of-eval"),
                   diverged=hook("diverged", lambda s: torch.zeros(2, dtype=torch.bool)),
                   converged=hook("converged", lambda s: torch.zeros(2, dtype=torch.bool)),
                   record=hook("record", lambda s: {"t": torch.full((2,), float(s.step), dtype=DT)}),
                   callback=hook("callback", lambda s: None))
        assert r.records["t"][:, 0].tolist() == [0.0, 1.0, 2.0, 3.0]
        for name, rows in seen.items():
            assert [row[0] for row in rows] == ([0, 1, 2] if name == "callback" else [0, 1, 2, 3]), name
            for t, ev, aux, batch, grad_on in rows:
                x = x0 * 0.5 ** t
                assert ev is not None and ev.tolist() == pytest.approx((1.5 * x[:, 0] ** 2).tolist()), (name, t)
                assert aux == "aux-of-eval" and batch is None, name
                if name == "record" or grad_fn is not None:
                    assert not grad_on, (name, grad_fn)
        if grad_fn is not None:
            assert not any(grad_mode)


def test_float64_multipliers_and_schedule_act_in_the_parameters_float32():
    """Tensor LR multipliers and schedule factors are cast to the parameters' dtype before they multiply:
    one float32 step is, bit for bit, ``x - ((eta c) f) g`` with every product rounded to float32 (a float64
    multiplier would make the step size float64 and round ``h g`` once, from float64)."""
    g32 = torch.randn(2, 64, generator=torch.Generator().manual_seed(11), dtype=torch.float64).float()
    x0 = torch.randn(2, 64, generator=torch.Generator().manual_seed(12), dtype=torch.float64).float()
    c = torch.tensor([[1 / 3], [0.7]], dtype=torch.float64)
    f = torch.tensor([1.1, 0.9], dtype=torch.float64)
    etas = [0.3, 0.17]
    for mults, sched, h in (([c], None, torch.tensor(etas, dtype=torch.float32)[:, None] * c.float()),
                            (None, lambda t: f, torch.tensor(etas, dtype=torch.float32)[:, None] * f.float()[:, None]),
                            ([c], lambda t: f, (torch.tensor(etas, dtype=torch.float32)[:, None] * c.float())
                             * f.float()[:, None])):
        r = run_gd(lambda p: torch.zeros(2, dtype=torch.float32), [x0], etas, 1, grad_fn=lambda p: [g32],
                   lr_mults=mults, lr_schedule=sched)
        want = x0 - h * g32
        assert r.params[0].dtype == torch.float32 and torch.equal(r.params[0], want)


def test_minus_infinity_and_exact_thresholds_on_the_evaluation_loss():
    """A loss of -inf is not finite: a divergence (however far below the threshold). The evaluation loss's
    threshold is strict like the training loss's: exactly 10 * max(L_0, 1) is inside, above it diverges."""
    table = torch.tensor([[1.0, 1.0], [2.0, -math.inf], [1.0, 1.0]], dtype=DT)
    r = run_gd(lambda p, t: table[t] + 0.0 * p[0], [torch.zeros(2, dtype=DT)], [0.1, 0.1], 2, batches=lambda t: t)
    assert r.status.tolist() == [GDStatus.BOUNDED, GDStatus.DIVERGED] and r.stop_step.tolist() == [2, 1]
    ev = torch.tensor([[1.0, 1.0], [10.0, 10.0 * (1 + 1e-12)], [10.0, 1.0], [1.0, 1.0]], dtype=DT)
    step = [0]

    def batches(t):
        step[0] = t
        return t

    r = run_gd(lambda p, t: 0.0 * p[0], [torch.zeros(2, dtype=DT)], [0.1, 0.1], 3, batches=batches,
               eval_fn=lambda p: ev[step[0]] + 0.0 * p[0], divergence_factor=10.0)
    assert r.status.tolist() == [GDStatus.BOUNDED, GDStatus.DIVERGED] and r.stop_step.tolist() == [3, 1]


def test_an_update_that_fails_after_another_model_stopped_is_still_refused():
    """Model 0 diverges at step 0 (loss check); model 1's update leaves the bound only at step 2: it is refused
    there (frozen at x = 4, stop step 2), as when no model had stopped before it."""
    x0 = torch.tensor([[1.0], [1.0]], dtype=DT)

    def loss(p):
        L = _sq(p)
        return torch.where(torch.arange(2) == 0, torch.full_like(L, float("nan")), L)

    r = run_gd(loss, [x0], [0.1, 3.0], 5, param_bound=5.0, divergence_factor=None)
    assert r.stop_step.tolist() == [0, 2] and r.params[0][:, 0].tolist() == [1.0, 4.0]
    assert r.status.tolist() == [GDStatus.DIVERGED, GDStatus.DIVERGED]


def test_frozen_models_stay_frozen_and_later_failures_are_still_caught():
    """Closed-form gradients (not masked): a model frozen by the loss check (max_loss 5: loss 8 at x = 4,
    step 2) stays at x = 4; after a model converged, another's NaN loss is still caught at its step; after
    a model's update was refused, another's refused update is still refused; with three tensors the bound
    is checked on each (only the third leaves it)."""
    sq_grad = lambda p: [p[0].clone()]  # noqa: E731
    x0 = torch.ones(2, dtype=DT)
    r = run_gd(lambda p: 0.5 * p[0] ** 2, [x0], [0.1, 3.0], 6, grad_fn=sq_grad, max_loss=5.0, divergence_factor=None)
    assert r.stop_step.tolist() == [6, 2] and r.params[0][1].item() == 4.0
    # model 0 converges at step 0 (loss 0), model 1 goes 1, -2, 4, -8: NaN loss at step 3
    r = run_gd(_nan_beyond(5.0), [torch.tensor([0.0, 1.0], dtype=DT)], [0.1, 3.0], 6,
               converged=lambda s: s.loss == 0)
    assert r.status.tolist() == [GDStatus.CONVERGED, GDStatus.DIVERGED] and r.stop_step.tolist() == [0, 3]
    # model 0's first update is refused (4.9 -> -9.8, bound 5), model 1's at step 2 (4 -> -8)
    r = run_gd(lambda p: 0.5 * p[0] ** 2, [torch.tensor([4.9, 1.0], dtype=DT)], [3.0, 3.0], 6, grad_fn=sq_grad,
               param_bound=5.0, divergence_factor=None)
    assert r.stop_step.tolist() == [0, 2] and r.params[0].tolist() == [4.9, 4.0]
    # three tensors, a bound of 10: only the third tensor of model 1 leaves it
    P = [torch.zeros(2, 3, dtype=DT), torch.zeros(2, dtype=DT), torch.zeros(2, 2, dtype=DT)]
    G = [torch.zeros(2, 3, dtype=DT), torch.zeros(2, dtype=DT), torch.tensor([[0.0, 0.0], [0.0, -20.0]], dtype=DT)]
    r = run_gd(lambda p: torch.zeros(2, dtype=DT), P, [1.0, 1.0], 3, grad_fn=_const_grad(*G), param_bound=10.0,
               divergence_factor=None)
    assert r.status.tolist() == [GDStatus.BOUNDED, GDStatus.DIVERGED] and r.stop_step.tolist() == [3, 0]


def test_a_nan_loss_after_another_models_refused_update_is_caught():
    """Model 0's first update is refused (4.9 -> -9.8, bound 9); model 1 goes 1, -2, 4, -8 and its loss is
    NaN from step 3 (|x| > 5): caught there by the loss check, although another model stopped before."""
    r = run_gd(_nan_beyond(5.0), [torch.tensor([4.9, 1.0], dtype=DT)], [3.0, 3.0], 6, param_bound=9.0,
               divergence_factor=None)
    assert r.status.tolist() == [GDStatus.DIVERGED, GDStatus.DIVERGED] and r.stop_step.tolist() == [0, 3]
    assert r.params[0].tolist() == [4.9, -8.0]


# --- fused_step: one call per step (what a compiled step plugs into), the same run to the bit ---

def _fused_from(loss_fn, grad_fn, momentum=0.0, weight_decay=0.0, batched=False, perturb=1.0):
    """A fused step made of the model's own loss and gradient and sgd_update (eager): run_gd with it
    must give what run_gd gives with loss_fn and grad_fn. ``perturb`` scales the step sizes (a
    realistic bug: the fused step's LR off by a factor), for the negative control."""
    from lrtheory.core.gd import sgd_update

    def fused(P, batch, H, vel):
        L, aux = (loss_fn(P, batch) if batched else loss_fn(P)), None
        G = grad_fn(P, batch) if batched else grad_fn(P)
        new, new_vel, ok = sgd_update(P, G, [h * perturb for h in H], vel, momentum=momentum,
                                      weight_decay=weight_decay)
        return L, aux, new, new_vel, ok

    return fused


def _factorization_problem(K=10, dtype=DT):
    mu = 2.0

    def loss_fn(p, batch=None):
        x, y = p
        return 0.5 * (mu - x * y) ** 2

    def grad_fn(p, batch=None):
        x, y = p
        r = mu - x * y
        return [-r * y, -r * x]

    x0 = torch.linspace(0.5, 3.0, K, dtype=dtype)
    y0 = torch.full((K,), 0.7, dtype=dtype)
    return loss_fn, grad_fn, [x0, y0], np.geomspace(0.01, 1.6, K)


def _same_result(a, b):
    assert all(torch.equal(p, q) for p, q in zip(a.params, b.params))
    np.testing.assert_array_equal(a.status, b.status)
    np.testing.assert_array_equal(a.stop_step, b.stop_step)
    assert a.steps_run == b.steps_run
    np.testing.assert_array_equal(a.step, b.step)
    np.testing.assert_array_equal(a.loss, b.loss)  # NaN == NaN here: the same positions
    assert a.records.keys() == b.records.keys()
    for k in a.records:
        np.testing.assert_array_equal(a.records[k], b.records[k])


@pytest.mark.parametrize("kw", [
    # divergence by the update refused beyond a bound (the frozen state is inside it), convergence
    dict(param_bound=1e3, divergence_factor=None, converged=lambda s: s.loss <= 1e-20),
    # divergence by the loss check, momentum, weight decay, per-tensor multipliers, a per-model schedule
    dict(momentum=0.5, weight_decay=0.01, lr_mults=[1.0, 0.5],
         lr_schedule=lambda t: torch.linspace(1.0, 1.6, 10, dtype=DT) * min(1.0, (t + 1) / 20)),
    # every model stops early: the loop ends before the last step
    dict(divergence_factor=1.5, converged=lambda s: s.loss <= 1e-3, record_every=3),
])
def test_a_fused_step_gives_the_run_of_the_loss_and_gradient_to_the_bit(kw):
    loss_fn, grad_fn, P, etas = _factorization_problem()
    rec = lambda s: {"x": s.params[0], "loss2": s.loss * 2}  # noqa: E731
    ref = run_gd(loss_fn, P, etas, 300, grad_fn=grad_fn, record=rec, **kw)
    fused = _fused_from(loss_fn, grad_fn, kw.get("momentum", 0.0), kw.get("weight_decay", 0.0))
    got = run_gd(loss_fn, P, etas, 300, grad_fn=grad_fn, record=rec, fused_step=fused, **kw)
    assert (ref.status == GDStatus.DIVERGED).any() and (ref.status != GDStatus.DIVERGED).any()
    _same_result(got, ref)
    # the comparison sees a realistic error: the fused step's LRs 1 % too large
    off = run_gd(loss_fn, P, etas, 300, grad_fn=grad_fn, record=rec, fused_step=_fused_from(
        loss_fn, grad_fn, kw.get("momentum", 0.0), kw.get("weight_decay", 0.0), perturb=1.01), **kw)
    assert not all(torch.equal(p, q) for p, q in zip(off.params, ref.params))


def test_a_fused_step_under_sgd_batches_and_eval_fn():
    loss_fn, grad_fn, P, etas = _problem()[0], None, _problem()[1], [0.05, 0.5, 5.0, 50.0]
    draws = torch.Generator().manual_seed(3)
    noise = torch.randn(40, 4, generator=draws, dtype=DT)

    def batched_loss(p, b):
        return loss_fn(p) + b * p[0].sum(-1)

    def batched_grad(p, b):
        ps = [q.detach().clone().requires_grad_(True) for q in p]
        with torch.enable_grad():
            return list(torch.autograd.grad(batched_loss(ps, b).sum(), ps))

    kw = dict(batches=lambda t: noise[t], eval_fn=loss_fn, record_every=4)
    ref = run_gd(batched_loss, P, etas, 39, grad_fn=batched_grad, **kw)
    got = run_gd(batched_loss, P, etas, 39, grad_fn=batched_grad,
                 fused_step=_fused_from(batched_loss, batched_grad, batched=True), **kw)
    assert ref.diverged.any()
    _same_result(got, ref)


def test_a_fused_update_that_overflows_while_the_loss_is_finite_is_refused():
    # the loss is bounded (tanh), the gradient is not: only the update's own test can see the overflow
    def loss_fn(p):
        return 0.5 * torch.tanh(p[0]) ** 2

    def grad_fn(p):
        return [p[0] * 1e100]

    p0 = [torch.tensor([0.5, 0.5], dtype=DT)]
    etas = [1e-103, 1.0]
    ref = run_gd(loss_fn, p0, etas, 6, grad_fn=grad_fn, divergence_factor=None)
    got = run_gd(loss_fn, p0, etas, 6, grad_fn=grad_fn, divergence_factor=None,
                 fused_step=_fused_from(loss_fn, grad_fn))
    assert ref.status.tolist() == [GDStatus.BOUNDED, GDStatus.DIVERGED] and ref.stop_step.tolist() == [6, 3]
    _same_result(got, ref)


def test_a_fused_run_computes_the_last_steps_gradients_as_asked():
    # final_grads: at t = steps the loop itself takes the gradient (the fused step is not called)
    loss_fn, grad_fn, P, etas = _factorization_problem()
    rec = lambda s: {"g": s.grads[0] if s.grads is not None else torch.full_like(s.loss, -1.0)}  # noqa: E731
    kw = dict(grad_fn=grad_fn, record=rec, final_grads=True, record_every=5, param_bound=1e3, divergence_factor=None)
    ref = run_gd(loss_fn, P, etas, 20, **kw)
    got = run_gd(loss_fn, P, etas, 20, fused_step=_fused_from(loss_fn, grad_fn), **kw)
    np.testing.assert_array_equal(got.records["g"][-1], ref.records["g"][-1])
    assert (got.records["g"][:-1][~np.isnan(got.records["g"][:-1])] == -1.0).all()  # None at fused steps


def test_fused_step_contract_errors():
    loss_fn, grad_fn, P, etas = _factorization_problem()
    with pytest.raises(ValueError, match="^fused_step: expected a callable, got int$"):
        run_gd(loss_fn, P, etas, 3, fused_step=3)
    with pytest.raises(ValueError, match=r"^fused_step: expected \(loss, aux, new_params"):
        run_gd(loss_fn, P, etas, 3, fused_step=lambda P, b, H, v: (loss_fn(P), None))
    with pytest.raises(ValueError, match=r"^fused_step: returned shape \(3,\), expected the batch shape \(10,\)"):
        run_gd(loss_fn, P, etas, 3, fused_step=lambda P, b, H, v: (torch.zeros(3), None, P, v,
                                                                    torch.ones(10, dtype=torch.bool)))


def test_sgd_update_is_the_loops_update_and_flags_per_model():
    from lrtheory.core.gd import sgd_update
    p = [torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=DT), torch.tensor([0.5, 1e308], dtype=DT)]
    g = [torch.tensor([[0.1, 0.2], [0.3, 0.4]], dtype=DT), torch.tensor([1.0, -1e308], dtype=DT)]
    h = [torch.tensor([[0.5], [2.0]], dtype=DT), torch.tensor([0.5, 2.0], dtype=DT)]
    v = [torch.ones(2, 2, dtype=DT), torch.ones(2, dtype=DT)]
    new, vel, ok = sgd_update(p, g, h, v, momentum=0.9, weight_decay=0.1)
    # by hand: g' = g + 0.1 p; v' = 0.9 v + g'; p - h v'
    gp = [gg + 0.1 * pp for gg, pp in zip(g, p)]
    vv = [0.9 * vi + gi for vi, gi in zip(v, gp)]
    for a, b in zip(new, [pp - hh * vi for pp, hh, vi in zip(p, h, vv)]):
        assert torch.equal(a, b)
    for a, b in zip(vel, vv):
        assert torch.equal(a, b)
    assert ok.tolist() == [True, False]  # model 1: 1e308 + 2 * 1e308 overflows to inf
    # the defaults: plain GD (no momentum, no weight decay), no velocities in, None out
    new, vel, ok = sgd_update(p, g, h)
    assert vel is None and ok.tolist() == [True, False]  # model 1: 1e308 + 2 * 1e308 again
    for a, pp, gg, hh in zip(new, p, g, h):
        assert torch.equal(a, pp - hh * gg)
    # two batch axes (a grid of models): one flag per model, a NaN in model (1, 0) only
    q = torch.zeros(2, 3, 4, 5, dtype=DT)
    gq = torch.zeros(2, 3, 4, 5, dtype=DT)
    gq[1, 0, 2, 3] = math.nan
    _, _, ok = sgd_update([q], [gq], [torch.ones(2, 3, 1, 1, dtype=DT)], batch_dims=2)
    assert ok.shape == (2, 3) and ok.tolist() == [[True, True, True], [False, True, True]]
