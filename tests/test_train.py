"""Tests of lrtheory.core.train: batched == solo == a plain torch.optim reference, divergence isolation."""
import math

import numpy as np
import pytest
import torch

from lrtheory.core.mlp import MLPSpec, forward, init_params, lr_multipliers, select_models, to_module
from lrtheory.core.train import per_model_accuracy, per_model_loss, preact_sparsity, train, weight_norms

DT = torch.float64
# Batched vs solo differ only by float64 round-off in batched matmuls (~1e-16 relative per op,
# amplified mildly over <= 30 steps): 1e-10 relative is a safe bound that still catches any real bug.
RTOL = 1e-10


def _data(n=24, d=4, k=3, seed=0, classes=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=DT)
    if classes:
        return x, torch.randint(0, k, (n,), generator=g)
    return x, torch.randn(n, k, generator=g, dtype=DT)


def _solo(spec, P, k, x, y, eta, steps, **kw):
    return train(spec, select_models(P, k), x, y, [eta], steps, **kw)


@pytest.mark.parametrize("loss", ["mse", "ce"])
@pytest.mark.parametrize("batch_size", [None, 8])
def test_batched_equals_solo(loss, batch_size):
    spec = MLPSpec(4, 16, 2, 3, bias=True, norm="layernorm")
    x, y = _data(classes=loss == "ce")
    etas = [0.01, 0.05, 0.1, 0.2]
    P = init_params(spec, 4, seed=1)
    res = train(spec, P, x, y, etas, 25, loss=loss, batch_size=batch_size, seed=7, x_test=x[:5], y_test=y[:5])
    assert not res.diverged.any()
    for k in range(4):
        solo = _solo(spec, P, k, x, y, etas[k], 25, loss=loss, batch_size=batch_size, seed=7,
                     x_test=x[:5], y_test=y[:5])
        for key in res.history:
            if key != "step":
                np.testing.assert_allclose(res.history[key][:, k], solo.history[key][:, 0], rtol=RTOL, atol=1e-14)
        for a, b in zip(res.params, solo.params):
            torch.testing.assert_close(a[k], b[0], rtol=RTOL, atol=1e-13)


def test_matches_torch_optim_reference():
    """Independent reference: the same net as an nn.Module trained with torch.optim.SGD (per-layer lr groups,
    heavy-ball momentum) and an explicitly written 1/2-MSE loss."""
    spec = MLPSpec(4, 16, 2, 3, parametrization="mup", bias=True, input_lr_mult=0.5)
    x, y = _data()
    eta, steps, beta = 0.3, 20, 0.9
    P = init_params(spec, 1, seed=3)
    res = train(spec, P, x, y, [eta], steps, momentum=beta)
    mod = to_module(spec, P, 0)
    mults = lr_multipliers(spec)
    groups = [{"params": [p], "lr": eta * m} for p, m in zip(mod.parameters(), mults)]
    opt = torch.optim.SGD(groups, lr=eta, momentum=beta, dampening=0.0)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        L = 0.5 * ((mod(x) - y) ** 2).sum(1).mean()
        losses.append(L.item())
        L.backward()
        opt.step()
    losses.append((0.5 * ((mod(x) - y) ** 2).sum(1).mean()).item())
    np.testing.assert_allclose(res.history["loss"][:, 0], losses, rtol=RTOL)


def test_divergent_models_are_frozen_and_isolated():
    spec = MLPSpec(4, 16, 2, 3, bias=True)
    x, y = _data()
    etas = [0.02, 1e3, 0.05, 1e9]
    P = init_params(spec, 4, seed=2)
    res = train(spec, P, x, y, etas, 30)
    assert res.diverged.tolist() == [False, True, False, True]
    assert (res.diverged_step[[1, 3]] >= 0).all() and (res.diverged_step[[0, 2]] == -1).all()
    for k in (0, 2):  # survivors: finite and identical to their solo runs
        assert np.isfinite(res.history["loss"][:, k]).all()
        solo = _solo(spec, P, k, x, y, etas[k], 30)
        np.testing.assert_allclose(res.history["loss"][:, k], solo.history["loss"][:, 0], rtol=RTOL)
    for k in (1, 3):  # frozen: finite params, NaN records after the divergence step
        s = res.diverged_step[k]
        assert np.isnan(res.history["loss"][s + 1:, k]).all()
        assert all(torch.isfinite(p[k]).all() for p in res.params)
        # frozen at theta_s: the solo run of s steps ends at the same parameters
        solo = _solo(spec, P, k, x, y, etas[k], int(s))
        for a, b in zip(res.params, solo.params):
            torch.testing.assert_close(a[k], b[0], rtol=RTOL, atol=1e-13)
    for p in res.params:
        assert torch.isfinite(p).all()


def test_nonfinite_initial_params_do_not_leak():
    spec = MLPSpec(4, 8, 1, 3)
    x, y = _data()
    P = init_params(spec, 3, seed=0)
    P[0][1, 0, 0] = float("nan")
    P[1][2, 0, 0] = float("inf")
    res = train(spec, P, x, y, [0.05, 0.05, 0.05], 10, loss="mse")
    assert res.diverged.tolist() == [False, True, True]
    assert res.diverged_step[1] == 0 and res.diverged_step[2] == 0
    solo = _solo(spec, P, 0, x, y, 0.05, 10)
    np.testing.assert_allclose(res.history["loss"][:, 0], solo.history["loss"][:, 0], rtol=RTOL)


def test_sgd_batch_order_depends_on_seed_only():
    spec = MLPSpec(4, 8, 1, 3)
    x, y = _data()
    P = init_params(spec, 2)
    a = train(spec, P, x, y, [0.1, 0.1], 12, batch_size=6, seed=5)
    b = train(spec, P, x, y, [0.1, 0.1], 12, batch_size=6, seed=5)
    c = train(spec, P, x, y, [0.1, 0.1], 12, batch_size=6, seed=6)
    np.testing.assert_array_equal(a.history["loss"], b.history["loss"])
    assert not np.allclose(a.history["loss"][-1], c.history["loss"][-1])


def test_records_and_diagnostics():
    spec = MLPSpec(4, 8, 2, 3)
    x, y = _data(classes=True)
    P = init_params(spec, 2)
    res = train(spec, P, x, y, [0.1, 0.2], 10, loss="ce", record_every=3,
                diagnostics={"wnorm": weight_norms(spec), "sparsity": preact_sparsity(spec, x)})
    assert res.history["step"].tolist() == [0, 3, 6, 9, 10]
    assert res.history["loss"].shape == (5, 2) and res.history["train_acc"].shape == (5, 2)
    assert res.history["wnorm"].shape == (5, 2, 3) and res.history["sparsity"].shape == (5, 2, 2)
    np.testing.assert_allclose(res.history["wnorm"][0, :, 0], P[0].flatten(1).norm(dim=1).numpy(), rtol=1e-14)
    # recorded loss at step 0 is the loss of the initial parameters
    np.testing.assert_allclose(res.history["loss"][0], per_model_loss(spec, P, x, y, "ce").numpy(), rtol=1e-14)
    acc = (forward(spec, res.params, x).argmax(-1) == y).double().mean(-1).numpy()
    np.testing.assert_allclose(res.history["train_acc"][-1], acc, rtol=0)


def test_layer_lr_mults_freeze_a_layer():
    spec = MLPSpec(4, 8, 2, 3)
    x, y = _data()
    P = init_params(spec, 1)
    res = train(spec, P, x, y, [0.1], 5, layer_lr_mults=[1e-300, 1.0, 1.0])
    torch.testing.assert_close(res.params[0], P[0], rtol=0, atol=1e-250)
    assert not torch.equal(res.params[1], P[1])


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(etas=[0.1, -1.0]), "etas"),
        (dict(etas=[0.1, 0.0]), "etas"),
        (dict(etas=[0.1, float("nan")]), "etas"),
        (dict(etas=[0.1, float("inf")]), "etas"),
        (dict(etas=[0.1, 0.1, 0.1]), "etas"),
        (dict(loss="hinge"), "loss"),
        (dict(batch_size=100), "batch_size"),
        (dict(steps=-1), "steps"),
        (dict(momentum=1.0), "momentum"),
        (dict(record_every=0), "record_every"),
        (dict(layer_lr_mults=[1.0]), "layer_lr_mults"),
        (dict(divergence_factor=0.5), "divergence_factor"),
    ],
)
def test_train_validation(kwargs, name):
    spec = MLPSpec(4, 8, 1, 3)
    x, y = _data()
    args = dict(etas=[0.1, 0.1], steps=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        train(spec, init_params(spec, 2), x, y, **args)


def test_train_shape_validation():
    spec = MLPSpec(4, 8, 1, 3)
    x, y = _data()
    P = init_params(spec, 2)
    with pytest.raises(ValueError, match="x"):
        train(spec, P, x[:, :3], y, [0.1, 0.1], 2)
    with pytest.raises(ValueError, match="y"):
        train(spec, P, x, y[:5], [0.1, 0.1], 2)
    with pytest.raises(ValueError, match="y"):
        train(spec, P, x, y, [0.1, 0.1], 2, loss="ce")
    with pytest.raises(ValueError, match="x_test"):
        train(spec, P, x, y, [0.1, 0.1], 2, x_test=x)


def test_loss_recorded_at_the_divergence_step_is_the_observed_one():
    """The documented record: at its divergence step t a model's train loss is the loss observed there
    (huge, inf or NaN: why it diverged), never replaced by NaN; NaN only afterwards; other records are NaN
    from t on. When every model has diverged the history keeps its full length (NaN rows)."""
    spec = MLPSpec(4, 16, 2, 3, bias=True)
    x, y = _data()
    P = init_params(spec, 2, seed=2)
    res = train(spec, P, x, y, [0.02, 1e3], 30, diagnostics={"w": weight_norms(spec)})
    s = int(res.diverged_step[1])
    L0 = res.history["loss"][0, 1]
    observed = res.history["loss"][s, 1]
    assert not np.isnan(observed) and (observed > 1e6 * max(L0, 1.0) or np.isinf(observed))
    assert np.isnan(res.history["loss"][s + 1:, 1]).all() and np.isfinite(res.history["loss"][:s, 1]).all()
    assert np.isnan(res.history["w"][s:, 1]).all() and np.isfinite(res.history["w"][:s, 1]).all()
    # the observed loss is the loss of the frozen parameters theta_s
    assert observed == pytest.approx(per_model_loss(spec, res.params, x, y)[1].item(), rel=1e-12)
    every = train(spec, P, x, y, [1e9, 1e9], 20, record_every=5)
    assert every.history["step"].tolist() == [0, 5, 10, 15, 20] and every.history["loss"].shape == (5, 2)
    assert every.diverged.all() and np.isnan(every.history["loss"][-1]).all()


def test_minibatch_ce_run_whose_last_model_diverges_between_records():
    """Every model diverging between two recorded steps ends the run early; its last record
    still reads the accuracy on the whole training set (it used to take the minibatch's
    outputs and fail on their shape)."""
    spec = MLPSpec(d_in=4, width=8, depth=1, d_out=3)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (40,), generator=g)
    res = train(spec, init_params(spec, 2, seed=3), x, y, etas=[1e4, 3e4], steps=50, loss="ce",
                batch_size=8, record_every=10)
    assert res.diverged.all() and res.diverged_step.max() < 50  # ended early, between records
    assert res.history["train_acc"].shape == (6, 2)  # the schedule 0, 10, ..., 50, padded with NaN


# ---- the closed-form gradient (issue 13): the same bits as run_gd on autograd

@pytest.mark.parametrize("loss", ["mse", "ce"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_output_gradient_is_autograds(loss, dtype):
    from lrtheory.core.train import _loss_from_out, _loss_terms, _loss_total, _output_grad

    g = torch.Generator().manual_seed(2)
    out = torch.randn(3, 11, 4, generator=g, dtype=torch.float64).to(dtype)
    y = torch.randint(0, 4, (11,), generator=g) if loss == "ce" else torch.randn(11, 4, generator=g).to(dtype)
    o = out.clone().requires_grad_(True)
    want = torch.autograd.grad(_loss_from_out(o, y, loss).sum(), o)[0]
    terms, ctx = _loss_terms(out, y, loss, {})
    L = _loss_total(terms, loss)
    assert torch.equal(L, _loss_from_out(out, y, loss))
    assert torch.equal(_output_grad(ctx, loss), want)
    # more models than examples (K = 5, N = 2): each model's own slice, the same bits
    out = torch.randn(5, 2, 4, generator=g, dtype=torch.float64).to(dtype)
    y = y[:2]
    o = out.clone().requires_grad_(True)
    want = torch.autograd.grad(_loss_from_out(o, y, loss).sum(), o)[0]
    terms, ctx = _loss_terms(out, y, loss, {})
    L = _loss_total(terms, loss)
    assert L.shape == (5,) and torch.equal(L, _loss_from_out(out, y, loss))
    assert torch.equal(_output_grad(ctx, loss), want)


@pytest.mark.parametrize("loss, batch_size, parametrization, bias", [
    ("mse", None, "standard", False), ("mse", 6, "mup", True), ("ce", None, "ntk", True), ("ce", 8, "mean_field", False),
])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_train_is_run_gd_on_autograd_bit_for_bit(loss, batch_size, parametrization, bias, dtype):
    """train's closed-form path against run_gd with autograd on per_model_loss: every output equal, with
    momentum, weight decay, per-layer LRs and models diverging at different steps."""
    from lrtheory.core.gd import run_gd
    from lrtheory.core.device import make_generator

    spec = MLPSpec(d_in=4, width=10, depth=2, d_out=3, parametrization=parametrization, bias=bias)
    x, y = _data(n=24, d=4, k=3, seed=4, classes=loss == "ce")
    x = x.to(dtype)
    y = y if loss == "ce" else y.to(dtype)
    P = init_params(spec, 4, seed=2, dtype=dtype)
    etas = [0.01, 0.3, 5.0, 300.0]
    lm = [0.5, 1.0, 2.0]
    kw = dict(momentum=0.5, weight_decay=1e-3)
    res = train(spec, P, x, y, etas, 12, loss=loss, batch_size=batch_size, seed=3, layer_lr_mults=lm,
                record_every=1, **kw)
    assert res.diverged.any() and not res.diverged.all()
    # the same run by hand: run_gd, autograd, the same batches
    from lrtheory.core.mlp import param_layers

    mults = [m * lm[l] for m, l in zip(lr_multipliers(spec), param_layers(spec))]
    batches = eval_fn = None
    if batch_size is not None:
        gen, perm = make_generator(3, "cpu"), []

        def batches(t):
            if not perm:
                order = torch.randperm(24, generator=gen)
                perm.extend([order[i * batch_size:(i + 1) * batch_size] for i in range(24 // batch_size)][::-1])
            idx = perm.pop()
            return x.index_select(0, idx), y.index_select(0, idx)

        def eval_fn(p):
            return per_model_loss(spec, p, x, y, loss)

    def loss_fn(p, b=None):
        return per_model_loss(spec, p, *((x, y) if b is None else b), loss)

    ref = run_gd(loss_fn, P, etas, 12, lr_mults=mults, batches=batches, eval_fn=eval_fn, record_every=1,
                 divergence_factor=1e6, **kw)
    assert all(torch.equal(a, b) for a, b in zip(res.params, ref.params))
    np.testing.assert_array_equal(res.history["loss"][:ref.loss.shape[0]], ref.loss)
    np.testing.assert_array_equal(res.diverged_step, np.where(ref.diverged, ref.stop_step, -1))


# ---- exact messages (issue 21: written from a mutation-testing pass)
def test_messages_name_the_argument_exactly():
    spec = MLPSpec(4, 8, 1, 3)
    x, y = _data()
    P = init_params(spec, 2)
    lab = torch.randint(0, 3, (24,), generator=torch.Generator().manual_seed(1))
    cases = [
        (dict(loss="l1"), r"^loss: unknown 'l1'; expected one of \('mse', 'ce'\)$"),
        (dict(x=x[:, :3]), r"^x: expected a tensor of shape \(N, 4\), got torch\.Size\(\[24, 3\]\)$"),
        (dict(x=x[0]), r"^x: expected a tensor of shape \(N, 4\), got torch\.Size\(\[4\]\)$"),
        (dict(x=x.float()), r"^x: dtype/device torch\.float32/cpu differ from the parameters' torch\.float64/cpu$"),
        (dict(y=y.tolist()), r"^y: expected a torch\.Tensor, got list$"),
        (dict(y=y[:5]), r"^y: MSE targets must have shape \(24, 3\), got \(5, 3\)$"),
        (dict(y=y[:, 0]), r"^y: MSE targets must have shape \(24, 3\), got \(24,\)$"),
        (dict(y=y.float()), r"^y: dtype torch\.float32 differs from the parameters' torch\.float64$"),
        (dict(y=y, loss="ce"), r"^y: CE targets must be int64 labels of shape \(24,\), got torch\.float64 \(24, 3\)$"),
        (dict(y=lab.int(), loss="ce"), r"^y: CE targets must be int64 labels of shape \(24,\), got torch\.int32 \(24,\)$"),
        (dict(y=lab[:5], loss="ce"), r"^y: CE targets must be int64 labels of shape \(24,\), got torch\.int64 \(5,\)$"),
        (dict(y=lab + 1, loss="ce"), r"^y: labels must lie in \[0, 3\)$"),
        (dict(y=lab - 1, loss="ce"), r"^y: labels must lie in \[0, 3\)$"),
        (dict(x_test=x), r"^x_test: x_test and y_test must be given together$"),
        (dict(y_test=y), r"^x_test: x_test and y_test must be given together$"),
        (dict(x_test=x[:, :2], y_test=y), r"^x_test: expected shape \(M, 4\), got torch\.Size\(\[24, 2\]\)$"),
        (dict(x_test=x.float(), y_test=y), r"^x_test: dtype/device differ from the parameters'$"),
        (dict(x_test=x[:5], y_test=y), r"^y_test: MSE targets must have shape \(5, 3\), got \(24, 3\)$"),
        (dict(steps=-1), r"^steps: "), (dict(record_every=0), r"^record_every: "),
        (dict(batch_size=25), r"^batch_size: "), (dict(batch_size=0), r"^batch_size: "),
        (dict(momentum=1.0), r"^momentum: "), (dict(weight_decay=-0.1), r"^weight_decay: "),
        (dict(divergence_factor=1.0), r"^divergence_factor: expected a number > 1, got 1\.0$"),
        (dict(divergence_factor=float("nan")), r"^divergence_factor: "),
        (dict(etas="abc"), r"^etas: expected a sequence of 2 positive numbers, got 'abc'$"),
        (dict(etas=[0.1, 0.1, 0.1]), r"^etas: expected 2 learning rates \(one per model\), got 3$"),
        (dict(etas=[0.1, -1.0]), r"^etas: every learning rate must be positive and finite, got \[0\.1, -1\.0\]$"),
        (dict(etas=[0.1, 0.0]), r"^etas: every learning rate must be positive and finite, got \[0\.1, 0\.0\]$"),
        (dict(etas=[0.1, float("inf")]), r"^etas: every learning rate must be positive and finite"),
        (dict(layer_lr_mults=[1.0]), r"^layer_lr_mults: expected 2 positive finite numbers, got \[1\.0\]$"),
        (dict(layer_lr_mults=[1.0, 0.0]), r"^layer_lr_mults: expected 2 positive finite numbers, got \[1\.0, 0\.0\]$"),
        (dict(layer_lr_mults=[1.0, float("nan")]), r"^layer_lr_mults: expected 2 positive finite numbers"),
        (dict(layer_lr_mults=[[1.0], [2.0]]), r"^layer_lr_mults: expected a flat sequence of 2 numbers, got shape "
                                              r"\(2, 1\)$"),
        (dict(layer_lr_mults=[1.0, [2.0, 3.0]]), r"^layer_lr_mults: expected 2 positive finite numbers, got "
                                                 r"\[1\.0, \[2\.0, 3\.0\]\]$"),
        (dict(layer_lr_mults=["a", "b"]), r"^layer_lr_mults: expected 2 positive finite numbers, got \['a', 'b'\]$"),
        (dict(diagnostics={"loss": lambda p, t: p[0].sum((1, 2))}), r"^diagnostics: name 'loss' is reserved$"),
        (dict(diagnostics={"test_acc": lambda p, t: p[0].sum((1, 2))}), r"^diagnostics: name 'test_acc' is reserved$"),
        (dict(diagnostics={"d": lambda p, t: torch.zeros(3, dtype=DT)}),
         r"^diagnostics: 'd' returned shape \(3,\), expected \(K, \.\.\.\)$"),
    ]
    for kw, match in cases:
        args = dict(x=x, y=y, etas=[0.1, 0.1], steps=2)
        args.update(kw)
        with pytest.raises(ValueError, match=match):
            train(spec, P, args.pop("x"), args.pop("y"), args.pop("etas"), args.pop("steps"), **args)
    # the edges that are allowed: batch_size N, a scalar eta for every model, labels 0 and d_out - 1
    r = train(spec, P, x, y, 0.1, 1, batch_size=24)
    assert r.etas.tolist() == [0.1, 0.1]
    lab[:2] = torch.tensor([0, 2])
    assert train(spec, P, x, lab, [0.1, 0.1], 1, loss="ce").history["train_acc"].shape == (2, 2)


@pytest.mark.parametrize("dtype, default", [(torch.float32, torch.float64), (torch.float64, torch.float32)])
def test_tensors_follow_the_parameters_not_the_global_defaults(dtype, default):
    """Every tensor train makes takes the parameters' dtype and device: under another default dtype the runs
    (MSE and CE, GD and SGD, test data, diagnostics, the closed-form and the autograd gradient) equal those
    under the ordinary defaults bit for bit, in ``dtype``, and all of them also run under a default device
    "meta" (a tensor made without device= would break them: the SGD permutation, the diagnostics' and the
    records' values, the initial weights' draws)."""
    from core_defaults import foreign_defaults

    x, y = _data(n=16, d=4, k=1)
    x, y = x.to(dtype), y[:, 0].to(dtype)
    lab = torch.randint(0, 3, (16,), generator=torch.Generator().manual_seed(4))
    specs = [MLPSpec(4, 8, 1, 1, bias=True), MLPSpec(4, 8, 1, 1, norm="layernorm")]
    spec3 = MLPSpec(4, 8, 1, 3, bias=True)

    Ps = [init_params(s, 2, seed=3, dtype=dtype) for s in specs]
    P3 = init_params(spec3, 2, seed=3, dtype=dtype)
    with foreign_defaults(dtype=default):  # the draws are on the CPU whatever the default device
        assert all(torch.equal(p, q) for p, q in zip(P3, init_params(spec3, 2, seed=3, dtype=dtype)))

    def runs(records):
        out = [train(s, P, x, y, [0.05, 0.3], 6, momentum=0.5, layer_lr_mults=[0.5, 1.0]) for s, P in zip(specs, Ps)]
        if records:
            out.append(train(spec3, P3, x, lab, [0.05, 0.3], 6, loss="ce", batch_size=4, x_test=x[:5],
                             y_test=lab[:5], diagnostics={"w": weight_norms(spec3)}))
            out.append(train(specs[0], Ps[0], x, y, [0.05, 1e4], 6, x_test=x[:5], y_test=y[:5]))
        return out

    want, want_rec = runs(False), runs(True)
    with foreign_defaults(dtype=default):
        got = runs(False)
    with foreign_defaults(dtype=default):
        got_rec = runs(True)
    assert want_rec[-1].diverged.tolist() == [False, True]
    for a, b in zip(want + want_rec, got + got_rec):
        assert set(a.history) == set(b.history)
        for k in a.history:
            np.testing.assert_array_equal(a.history[k], b.history[k])
            if k != "step":
                assert b.history[k].dtype == (np.float32 if dtype == torch.float32 else np.float64), k
        assert all(torch.equal(p, q) and q.dtype == dtype for p, q in zip(a.params, b.params))
        assert b.diverged_step.dtype == np.int64 and b.etas.dtype == (np.float32 if dtype == torch.float32 else np.float64)


def test_losses_accuracy_and_diagnostics_by_hand():
    """MSE is half the squared error summed over outputs, averaged over examples; CE the mean of -log softmax at
    the label; accuracy the share of argmax hits (labels, or one-hot targets read by argmax); weight_norms the
    Frobenius norms of the weight matrices only; preact_sparsity the share of negative pre-activations."""
    from lrtheory.core.train import per_model_accuracy

    spec = MLPSpec(4, 6, 2, 3, bias=True, norm="layernorm")
    P = init_params(spec, 2, seed=7)
    P = [p + 0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(i), dtype=DT) for i, p in enumerate(P)]
    x, y = _data(n=10, d=4, k=3, seed=3)
    lab = torch.tensor([0, 1, 2, 2, 1, 0, 0, 1, 2, 1])
    out = forward(spec, P, x)
    for k in range(2):
        o = out[k]
        mse = sum(0.5 * sum((o[i, j] - y[i, j]).item() ** 2 for j in range(3)) for i in range(10)) / 10
        ce = sum(-math.log(math.exp(o[i, lab[i]].item()) / sum(math.exp(o[i, j].item()) for j in range(3)))
                 for i in range(10)) / 10
        acc = sum(int(max(range(3), key=lambda j: o[i, j].item()) == lab[i].item()) for i in range(10)) / 10
        assert per_model_loss(spec, P, x, y)[k].item() == pytest.approx(mse, rel=1e-12)
        assert per_model_loss(spec, P, x, lab, "ce")[k].item() == pytest.approx(ce, rel=1e-12)
        assert per_model_accuracy(spec, P, x, lab)[k].item() == acc
        onehot = torch.nn.functional.one_hot(lab, 3).to(DT)
        assert per_model_accuracy(spec, P, x, onehot)[k].item() == acc
    # d_out = 1: targets (N,) or (N, 1), the same loss
    s1 = MLPSpec(4, 6, 1, 1)
    P1 = init_params(s1, 2, seed=1)
    o1 = forward(s1, P1, x)[:, :, 0]
    want = 0.5 * ((o1 - y[:, 0]) ** 2).mean(-1)
    torch.testing.assert_close(per_model_loss(s1, P1, x, y[:, 0]), want, rtol=1e-13, atol=0)
    torch.testing.assert_close(per_model_loss(s1, P1, x, y[:, :1]), want, rtol=1e-13, atol=0)
    wn = weight_norms(spec)(P, 0)
    assert wn.shape == (2, 3)
    for k in range(2):
        for col, i in enumerate((0, 4, 8)):  # W0, W1, W2 (biases and norm parameters skipped)
            assert wn[k, col].item() == pytest.approx(math.sqrt((P[i][k] ** 2).sum().item()), rel=1e-13)
    _, pre = forward(spec, P, x, return_preacts=True)
    sp = preact_sparsity(spec, x)(P, 0)
    assert sp.shape == (2, 2)
    for k in range(2):
        for l in range(2):
            assert sp[k, l].item() == (pre[l][k] < 0).sum().item() / (10 * 6)


def test_sgd_batches_are_the_documented_epochs_and_records_by_hand():
    """SGD: each epoch a fresh permutation from make_generator(seed) cut into N // batch_size full batches
    (remainder dropped), the same for every model: the callback's batch loss at every step is the loss of
    those examples at that step's parameters. Recorded: the full-train loss, train accuracy (MSE with
    one-hot targets), test loss and accuracy, on the schedule 0, 3, 6, 7."""
    from lrtheory.core.device import make_generator
    from lrtheory.core.train import per_model_accuracy

    spec = MLPSpec(4, 6, 1, 3)
    x, _ = _data(n=11, d=4, k=3, seed=5)
    lab = torch.tensor([0, 1, 2, 2, 1, 0, 0, 1, 2, 1, 0])
    y = torch.nn.functional.one_hot(lab, 3).to(DT)
    P = init_params(spec, 2, seed=2)
    g = make_generator(9, "cpu")
    batches = []
    for _ in range(4):  # 11 // 4 = 2 batches per epoch: 7 steps draw 4 epochs
        order = torch.randperm(11, generator=g)
        batches += [order[:4], order[4:8]]
    seen = []
    res = train(spec, P, x, y, [0.05, 0.1], 7, batch_size=4, seed=9, record_every=3, x_test=x[:5], y_test=y[:5],
                callback=lambda t, p, L, a: seen.append((t, [q.clone() for q in p], L.clone(), a.clone())))
    assert [s[0] for s in seen] == list(range(7))
    for t, p, L, a in seen:
        idx = batches[t]
        torch.testing.assert_close(L, per_model_loss(spec, p, x[idx], y[idx]), rtol=1e-13, atol=0)
        assert a.tolist() == [True, True]
    assert res.history["step"].tolist() == [0, 3, 6, 7]
    assert set(res.history) == {"step", "loss", "train_acc", "test_loss", "test_acc"}
    fin = res.params
    np.testing.assert_allclose(res.history["loss"][-1], per_model_loss(spec, fin, x, y).numpy(), rtol=1e-13)
    np.testing.assert_array_equal(res.history["train_acc"][-1], per_model_accuracy(spec, fin, x, lab).numpy())
    np.testing.assert_allclose(res.history["test_loss"][-1], per_model_loss(spec, fin, x[:5], y[:5]).numpy(),
                               rtol=1e-13)
    np.testing.assert_array_equal(res.history["test_acc"][-1], per_model_accuracy(spec, fin, x[:5], lab[:5]).numpy())
    np.testing.assert_allclose(res.history["loss"][0], per_model_loss(spec, P, x, y).numpy(), rtol=1e-13)
    # regression targets (N, 1) with d_out = 1 are not classes: no accuracy recorded
    s1 = MLPSpec(4, 6, 1, 1)
    r1 = train(s1, init_params(s1, 1), x, y[:, :1], [0.1], 2, x_test=x[:3], y_test=y[:3, :1])
    assert set(r1.history) == {"step", "loss", "test_loss"}


def test_preact_sparsity_counts_strictly_negative_preactivations():
    """A zero input row gives pre-activations exactly 0 in the first layer (no bias): not negative, not
    counted. Two rows, one zero, width 4: the first layer's share is (negatives of the other row) / 8."""
    spec = MLPSpec(3, 4, 1, 1)
    P = init_params(spec, 1, seed=3)
    x = torch.tensor([[0.0, 0.0, 0.0], [1.0, -2.0, 0.5]], dtype=DT)
    z = (P[0][0] @ x[1]).tolist()
    want = sum(v < 0 for v in z) / 8
    assert 0 < want < 0.5
    assert preact_sparsity(spec, x)(P, 0)[0, 0].item() == want


# ---- argument ranges and defaults as documented (from the full mutation run of train.py)
def test_train_ranges_defaults_and_reserved_names():
    spec = MLPSpec(4, 6, 1, 3)
    x, y = _data()
    P = init_params(spec, 2, seed=1)
    r = train(spec, P, x, y, [0.01, 0.02], 3)
    assert r.spec is spec
    # momentum in [0, 1): 0.999 and 0 accepted, 1 and 1.5 refused
    for m in (0.0, 0.999):
        train(spec, P, x, y, 0.01, 1, momentum=m)
    for m in (1.0, 1.5):
        with pytest.raises(ValueError, match=r"^momentum: "):
            train(spec, P, x, y, 0.01, 1, momentum=m)
    # divergence_factor > 1, infinity allowed (never stop on the loss' growth); the default is 1e6
    train(spec, P, x, y, 0.01, 1, divergence_factor=math.inf)
    train(spec, P, x, y, 0.01, 1, divergence_factor=1.5)
    with pytest.raises(ValueError, match=r"^divergence_factor: expected a number > 1, got 1\.0$"):
        train(spec, P, x, y, 0.01, 1, divergence_factor=1.0)
    import inspect

    assert inspect.signature(train).parameters["divergence_factor"].default == 1e6  # as documented
    # batch_size 1 is a valid minibatch (SGD on single examples); the default seed of the batches is 0
    one = train(spec, P, x, y, 0.01, 3, batch_size=1)
    assert np.isfinite(one.history["loss"]).all()
    a, b = (train(spec, P, x, y, 0.01, 4, batch_size=5, **kw) for kw in ({}, {"seed": 0}))
    assert all(torch.equal(p, q) for p, q in zip(a.params, b.params))
    c = train(spec, P, x, y, 0.01, 4, batch_size=5, seed=1)
    assert not all(torch.equal(p, q) for p, q in zip(a.params, c.params))
    # the history's own names cannot be diagnostics
    for name in ("step", "loss", "train_acc", "test_loss", "test_acc"):
        with pytest.raises(ValueError, match=rf"^diagnostics: name '{name}' is reserved$"):
            train(spec, P, x, y, 0.01, 1, diagnostics={name: lambda p, t: torch.zeros(2)})


# ---- the divergence threshold by hand, records, messages (issue 21, last full mutation run)
def _one_unit(K):
    """f(x) = W1 relu(W0 x) with one input, one hidden unit, one output; W0 = W1 = 1, x = 1, y = 3.
    L_0 = (1 - 3)^2 / 2 = 2; both gradients are (f - y) = -2, so one step at eta gives
    W0 = W1 = 1 + 2 eta, f_1 = (1 + 2 eta)^2 and L_1 = (f_1 - 3)^2 / 2."""
    spec = MLPSpec(1, 1, 1, 1)
    P = [torch.ones(K, 1, 1, dtype=DT), torch.ones(K, 1, 1, dtype=DT)]
    return spec, P, torch.ones(1, 1, dtype=DT), torch.full((1, 1), 3.0, dtype=DT)


def _eta_for(L1):
    """The step size whose first step gives the loss L1 in :func:`_one_unit` (the inverse of its L_1)."""
    return (math.sqrt(3.0 + math.sqrt(2.0 * L1)) - 1.0) / 2.0


def test_divergence_threshold_by_hand():
    """A model diverges when its loss exceeds divergence_factor * max(L_0, 1) (here 2 * factor): step sizes
    put L_1 just above and just below the threshold, for the default factor 1e6 (threshold 2e6: L_1 = 2e6 + 1
    diverges at step 1, 2e6 - 1 does not) and for factor 10 (threshold 20: 21 and 19). The recorded L_1 is
    the hand-computed one."""
    for factor, kw in ((1e6, {}), (10.0, {"divergence_factor": 10.0})):
        spec, P, x, y = _one_unit(2)
        L1 = [2 * factor + 1, 2 * factor - 1]
        res = train(spec, P, x, y, [_eta_for(v) for v in L1], 1, **kw)
        assert res.history["loss"][0].tolist() == [2.0, 2.0]
        np.testing.assert_allclose(res.history["loss"][1], L1, rtol=1e-12)
        assert res.diverged.tolist() == [True, False] and res.diverged_step.tolist() == [1, -1], factor


def test_every_model_diverged_pads_the_history_when_K_equals_its_length():
    """Three models, all diverging at step 1 of 2: the run ends there, the history keeps the schedule's
    3 rows (the last NaN) also when the number of models equals the number of rows."""
    spec, P, x, y = _one_unit(3)
    res = train(spec, P, x, y, [_eta_for(1e8)] * 3, 2)
    assert res.diverged_step.tolist() == [1, 1, 1]
    assert res.history["step"].tolist() == [0, 1, 2] and res.history["loss"].shape == (3, 3)
    np.testing.assert_allclose(res.history["loss"][1], [1e8] * 3, rtol=1e-12)
    assert np.isnan(res.history["loss"][2]).all()
    # the NaN rows keep the records' dtype: float32 parameters, a float32 history, padded or not
    P32 = [p.float() for p in P]
    pad = train(spec, P32, x.float(), y.float(), [_eta_for(1e8)] * 3, 2, diagnostics={"w": weight_norms(spec)})
    full = train(spec, P32, x.float(), y.float(), [0.01] * 3, 2, diagnostics={"w": weight_norms(spec)})
    assert np.isnan(pad.history["loss"][2]).all() and not np.isnan(full.history["loss"]).any()
    for key in ("loss", "w"):
        assert pad.history[key].dtype == full.history[key].dtype == np.float32, key


def test_diagnostics_are_called_at_the_recorded_steps_with_the_step():
    """A diagnostic is evaluated at each recorded step (every record_every steps and the last) and gets
    that step number; a diagnostic returning the step records the schedule."""
    spec = MLPSpec(4, 6, 1, 3)
    x, y = _data()
    P = init_params(spec, 2, seed=1)
    calls = []

    def step_no(params, t):
        calls.append(t)
        return torch.full((2,), float(t), dtype=DT)

    res = train(spec, P, x, y, 0.01, 12, record_every=5, diagnostics={"t": step_no})
    assert calls == [0, 5, 10, 12]
    assert res.history["step"].tolist() == [0, 5, 10, 12]
    assert res.history["t"].tolist() == [[0.0, 0.0], [5.0, 5.0], [10.0, 10.0], [12.0, 12.0]]


def test_mse_on_one_hot_targets_records_the_accuracy():
    """MSE with d_out = 2 and (N, 2) targets: the targets are classes read by argmax (the docstring's
    "MSE with d_out > 1"), so train_acc is recorded: at step 0, the fraction of examples whose output's
    argmax is the target's, counted here by hand."""
    spec = MLPSpec(4, 6, 1, 2)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(20, 4, generator=g, dtype=DT)
    lab = torch.randint(0, 2, (20,), generator=g)
    y = torch.nn.functional.one_hot(lab, 2).to(DT)
    P = init_params(spec, 3, seed=4)
    res = train(spec, P, x, y, 0.01, 2)
    out = forward(spec, P, x)
    by_hand = [sum(int(out[k, i].argmax()) == int(lab[i]) for i in range(20)) / 20 for k in range(3)]
    assert res.history["train_acc"].shape == (3, 3)
    assert res.history["train_acc"][0].tolist() == by_hand


def test_learning_rates_as_a_tensor_or_one_number():
    """etas given as a tensor (float32 here) is read as its values; a single number with K = 1 gives
    the documented ``etas`` array of shape (K,)."""
    spec = MLPSpec(4, 6, 1, 3)
    x, y = _data()
    P = init_params(spec, 2, seed=1)
    a = train(spec, P, x, y, torch.tensor([0.25, 0.5], dtype=torch.float32), 3)
    b = train(spec, P, x, y, [0.25, 0.5], 3)
    assert a.etas.tolist() == [0.25, 0.5] and a.etas.dtype == np.float64
    assert all(torch.equal(p, q) for p, q in zip(a.params, b.params))
    one = train(spec, select_models(P, 0), x, y, 0.25, 3)
    assert one.etas.shape == (1,) and one.etas.tolist() == [0.25]


def test_without_norm_layers_no_autograd_graph_is_built():
    """The module docstring: without norm layers the backward pass is written out, without autograd's
    graph; with a norm layer it is autograd. A callback sees grad mode off and parameters that do not
    require gradients in the first case, parameters that do in the second."""
    x, y = _data()
    for norm, graph in ((None, False), ("layernorm", True)):
        spec = MLPSpec(4, 6, 1, 3, norm=norm)
        seen = []
        train(spec, init_params(spec, 2, seed=1), x, y, 0.01, 2,
              callback=lambda t, p, L, a: seen.append((torch.is_grad_enabled(), p[0].requires_grad)))
        if graph:
            assert all(req for _, req in seen), seen
        else:
            assert seen == [(False, False)] * 2, seen


def test_inputs_that_are_not_tensors_and_targets_on_another_device():
    """x or x_test that is not a tensor: a ValueError naming it (x's message shows its type), not an
    AttributeError; targets on another device than the parameters: named with both devices; a single
    number as layer_lr_mults: a ValueError naming it (it raised a TypeError while writing its message)."""
    spec = MLPSpec(4, 8, 1, 3)
    x, y = _data()
    P = init_params(spec, 2)
    with pytest.raises(ValueError, match=r"^x: expected a tensor of shape \(N, 4\), got <class 'list'>$"):
        train(spec, P, x.tolist(), y, 0.1, 1)
    with pytest.raises(ValueError, match=r"^x_test: expected shape \(M, 4\), got None$"):
        train(spec, P, x, y, 0.1, 1, x_test=x.tolist(), y_test=y)
    with pytest.raises(ValueError, match=r"^y: device meta differs from the parameters' cpu$"):
        train(spec, P, x, y.to("meta"), 0.1, 1)
    with pytest.raises(ValueError, match=r"^y_test: device meta differs from the parameters' cpu$"):
        train(spec, P, x, y, 0.1, 1, x_test=x, y_test=y.to("meta"))
    # one number for layer_lr_mults (a sequence of depth + 1 is expected): a ValueError, not a TypeError
    with pytest.raises(ValueError, match=r"^layer_lr_mults: expected 2 positive finite numbers, got \[2\.0\]$"):
        train(spec, P, x, y, 0.1, 1, layer_lr_mults=2.0)


def test_per_model_loss_and_accuracy_validate_their_arguments():
    """Bad input to the public loss and accuracy gets a ValueError naming it (they used to run on,
    e.g. CE labels of shape (K, N) reached torch's RuntimeError); check=False skips it in a loop."""
    spec = MLPSpec(d_in=4, width=6, depth=1, d_out=3)
    P = init_params(spec, 2)
    x, y = _data()
    lab = torch.zeros(24, dtype=torch.int64)
    cases = [
        (per_model_loss, (x[:, :2], y), {}, r"^x: expected a tensor of shape \(N, 4\)"),
        (per_model_loss, (x.float(), y), {}, r"^x: dtype/device torch\.float32/cpu differ"),
        (per_model_loss, (x, y[:5]), {}, r"^y: MSE targets must have shape \(24, 3\), got \(5, 3\)$"),
        (per_model_loss, (x, lab.expand(2, 24)), {"loss": "ce"}, r"^y: CE targets must be int64 labels of shape"),
        (per_model_loss, (x, lab + 3), {"loss": "ce"}, r"^y: labels must lie in \[0, 3\)$"),
        (per_model_loss, (x, y), {"loss": "hinge"}, r"^loss: unknown 'hinge'"),
        (per_model_accuracy, (x, lab[:5]), {}, r"^y: CE targets must be int64 labels of shape \(24,\)"),
        (per_model_accuracy, (x, y[:, :2]), {}, r"^y: MSE targets must have shape \(24, 3\)"),
    ]
    for fn, args, kw, match in cases:
        with pytest.raises(ValueError, match=match):
            fn(spec, P, *args, **kw)
    with pytest.raises(ValueError, match=r"^params: "):
        per_model_loss(spec, P[:1], x, y)
    # valid arguments: the same values with and without the check
    assert torch.equal(per_model_loss(spec, P, x, y), per_model_loss(spec, P, x, y, check=False))
    assert torch.equal(per_model_accuracy(spec, P, x, lab), per_model_accuracy(spec, P, x, lab, check=False))
