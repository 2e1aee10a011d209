"""Tests of lrtheory.core.mlp: shapes, parametrizations, batching, module round trip, validation."""
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lrtheory.core.mlp import (
    NORMS,
    PARAMETRIZATIONS,
    CoreMLP,
    MLPSpec,
    forward,
    forward_multipliers,
    from_module,
    init_params,
    init_stds,
    lr_multipliers,
    param_names,
    select_models,
    to_module,
)

DT = torch.float64
# float64 round-off of a few small matmuls: differences are ~1e-15; 1e-12 leaves room.
ATOL = 1e-12


def _x(n, d, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=DT)


def _reference_forward(spec, params, k, x):
    """Plain per-model forward written from the docstring's definition (no batching)."""
    s_mult = forward_multipliers(spec)
    h = x
    i = 0
    for l in range(spec.n_layers):
        W = params[i][k]
        i += 1
        z = s_mult[l] * (h @ W.T)
        if spec.bias:
            z = z + params[i][k]
            i += 1
        if l < spec.depth:
            if spec.norm == "layernorm":
                z = F.layer_norm(z, (spec.width,), params[i][k], params[i + 1][k], eps=1e-5)
                i += 2
            elif spec.norm == "batchnorm":
                z = F.batch_norm(z, None, None, params[i][k], params[i + 1][k], training=True, eps=1e-5)
                i += 2
            h = torch.relu(z)
        else:
            h = z
    return h


@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("bias", [False, True])
def test_batched_forward_matches_reference(parametrization, norm, bias):
    spec = MLPSpec(5, 12, 3, 4, parametrization=parametrization, bias=bias, norm=norm)
    P = init_params(spec, 3, seed=2)
    if bias:  # make biases non-zero so that they matter
        P = [p + 0.1 * torch.randn_like(p) if n.startswith(("b", "gamma", "beta")) else p
             for p, n in zip(P, param_names(spec))]
    x = _x(7, 5)
    out, pre = forward(spec, P, x, return_preacts=True)
    assert out.shape == (3, 7, 4) and len(pre) == 3 and pre[0].shape == (3, 7, 12)
    for k in range(3):
        torch.testing.assert_close(out[k], _reference_forward(spec, P, k, x), atol=ATOL, rtol=0)
        torch.testing.assert_close(out[k], to_module(spec, P, k)(x), atol=ATOL, rtol=0)
    # per-model inputs (K, N, d) equal to the shared input give the same outputs
    out3 = forward(spec, P, x.expand(3, -1, -1).contiguous())
    torch.testing.assert_close(out3, out, atol=ATOL, rtol=0)


def test_model_k_does_not_depend_on_K():
    spec = MLPSpec(4, 8, 2, 1, bias=True)
    big, small = init_params(spec, 5, seed=3), init_params(spec, 1, seed=3)
    for a, b in zip(select_models(big, 0), small):
        assert torch.equal(a, b)
    assert not torch.equal(big[0][0], big[0][1])
    assert not torch.equal(init_params(spec, 1, seed=4)[0], small[0])


@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
def test_init_std_matches_table(parametrization):
    """Empirical std of each weight matrix over K*fan_out*fan_in draws vs the table.
    With m >= 8*64*16 = 8192 draws the relative std error of the sample std is ~1/sqrt(2m) < 0.008;
    tolerance 4%."""
    spec = MLPSpec(16, 64, 2, 8, parametrization=parametrization)
    P = init_params(spec, 8, seed=0)
    for W, s in zip([P[0], P[1], P[2]], init_stds(spec)):
        assert abs(W.std().item() / s - 1) < 0.04


def test_effective_weight_scales():
    """The effective weight m_l * W_l has the law the docstring states for each parametrization."""
    d, n = 10, 50
    for p in PARAMETRIZATIONS:
        spec = MLPSpec(d, n, 3, 2, parametrization=p)
        eff = [m * s for m, s in zip(forward_multipliers(spec), init_stds(spec))]
        he = [math.sqrt(2 / d), math.sqrt(2 / n), math.sqrt(2 / n)]
        assert eff[:3] == pytest.approx(he, rel=1e-14)
        readout = {"standard": math.sqrt(2 / n), "ntk": math.sqrt(2 / n), "mean_field": 1 / n, "mup": 1 / n}[p]
        assert eff[3] == pytest.approx(readout, rel=1e-14)
    mup = MLPSpec(d, n, 3, 2, parametrization="mup", input_lr_mult=0.1)
    assert lr_multipliers(mup) == pytest.approx([0.1, 1 / n, 1 / n, 1.0])


def test_ntk_and_standard_same_function_at_init():
    """Same seed: NTK weights are standard weights / sqrt(2/fan_in), multiplied back in the forward."""
    x = _x(6, 3)
    a, b = MLPSpec(3, 16, 2, 2, parametrization="standard"), MLPSpec(3, 16, 2, 2, parametrization="ntk")
    torch.testing.assert_close(forward(a, init_params(a, 2), x), forward(b, init_params(b, 2), x), atol=ATOL, rtol=1e-13)


def test_batchnorm_uses_batch_statistics_per_model():
    spec = MLPSpec(3, 8, 1, 1, norm="batchnorm")
    P = init_params(spec, 2)
    x = _x(10, 3)
    _, pre = forward(spec, P, x, return_preacts=True)
    # The normalized pre-activation of each model has batch mean 0 and batch variance ~1 per unit.
    z = pre[0]
    zn = (z - z.mean(1, keepdim=True)) / torch.sqrt(z.var(1, unbiased=False, keepdim=True) + 1e-5)
    ref = torch.stack([F.batch_norm(z[k], None, None, training=True, eps=1e-5) for k in range(2)])
    torch.testing.assert_close(zn, ref, atol=ATOL, rtol=0)


@settings(max_examples=25, deadline=None)
@given(
    d_in=st.integers(1, 6),
    width=st.integers(1, 9),
    depth=st.integers(1, 3),
    d_out=st.integers(1, 4),
    parametrization=st.sampled_from(PARAMETRIZATIONS),
    bias=st.booleans(),
    norm=st.sampled_from(NORMS),
    K=st.integers(1, 3),
    seed=st.integers(0, 1000),
)
def test_module_round_trip(d_in, width, depth, d_out, parametrization, bias, norm, K, seed):
    """to_module then from_module gives back the exact spec and tensors, and the module computes forward."""
    spec = MLPSpec(d_in, width, depth, d_out, parametrization=parametrization, bias=bias, norm=norm)
    P = init_params(spec, K, seed=seed)
    k = seed % K
    mod = to_module(spec, P, k)
    spec2, P2 = from_module(mod)
    assert spec2 == spec
    for a, b in zip(P2, select_models(P, k)):
        assert torch.equal(a, b)
    x = _x(4, d_in, seed)
    torch.testing.assert_close(mod(x), forward(spec, P, x)[k], atol=ATOL, rtol=0)


def test_from_plain_sequential():
    net = torch.nn.Sequential(
        torch.nn.Linear(3, 7), torch.nn.ReLU(), torch.nn.Linear(7, 7), torch.nn.ReLU(), torch.nn.Linear(7, 2)
    ).double()
    spec, P = from_module(net)
    assert spec == MLPSpec(3, 7, 2, 2, bias=True)
    x = _x(5, 3)
    torch.testing.assert_close(forward(spec, P, x)[0], net(x), atol=ATOL, rtol=0)
    with pytest.raises(ValueError, match="module"):
        from_module(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)))


def test_core_module_is_plain_module():
    spec = MLPSpec(2, 4, 1, 1)
    mod = to_module(spec, init_params(spec, 1))
    assert isinstance(mod, CoreMLP) and len(list(mod.parameters())) == 2


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(width=0), "width"),
        (dict(depth=0), "depth"),
        (dict(d_in=-1), "d_in"),
        (dict(d_out=0), "d_out"),
        (dict(width=2.5), "width"),
        (dict(parametrization="xavier"), "parametrization"),
        (dict(norm="groupnorm"), "norm"),
        (dict(input_lr_mult=0.0), "input_lr_mult"),
        (dict(input_lr_mult=float("nan")), "input_lr_mult"),
    ],
)
def test_spec_validation(kwargs, name):
    base = dict(d_in=2, width=4, depth=1, d_out=1)
    base.update(kwargs)
    with pytest.raises(ValueError, match=name):
        MLPSpec(**base)


def test_forward_and_init_validation():
    spec = MLPSpec(3, 4, 1, 1)
    P = init_params(spec, 2)
    with pytest.raises(ValueError, match="x"):
        forward(spec, P, torch.zeros(5, 4, dtype=DT))
    with pytest.raises(ValueError, match="x"):
        forward(spec, P, torch.zeros(3, 5, 3, dtype=DT))
    with pytest.raises(ValueError, match="x"):
        forward(spec, P, torch.zeros(5, 3, dtype=torch.float32))
    with pytest.raises(ValueError, match="params"):
        forward(MLPSpec(3, 5, 1, 1), P, torch.zeros(5, 3, dtype=DT))
    with pytest.raises(ValueError, match="K"):
        init_params(spec, 0)
    with pytest.raises(ValueError, match="seed"):
        init_params(spec, 1, seed=-1)
    with pytest.raises(ValueError, match="k"):
        to_module(spec, P, 2)


def test_init_params_per_model_seeds_and_large_seeds():
    from lrtheory.core.device import seed_for

    spec = MLPSpec(3, 8, 1, 2)
    s = [seed_for("test", "mlp", k) for k in range(3)]
    P = init_params(spec, 3, seeds=s)
    for k in range(3):  # model k is exactly the solo model drawn from seeds[k]
        solo = init_params(spec, 1, seeds=[s[k]])
        assert all(torch.equal(a[k], b[0]) for a, b in zip(P, solo))
    assert not torch.equal(P[0][0], P[0][1])
    # a seed_for value as the batch seed: no overflow, model k of any batch size is the same
    big = init_params(spec, 2, seed=s[0])
    assert torch.equal(big[0][1], init_params(spec, 3, seed=s[0])[0][1])
    with pytest.raises(ValueError, match="seeds"):
        init_params(spec, 2, seeds=s)
    with pytest.raises(ValueError, match="seeds"):
        init_params(spec, 1, seeds=[-1])


# ---- the closed-form backward pass of core.train (issue 13): bit-identical to autograd

def _autograd_grads(spec, P, x, g_out):
    Q = [p.clone().requires_grad_(True) for p in P]
    out = forward(spec, Q, x, check=False)
    return torch.autograd.grad(out, Q, grad_outputs=g_out)


@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("batched_x", [False, True])
def test_closed_form_backward_is_autograd_bit_for_bit(parametrization, bias, dtype, batched_x):
    from lrtheory.core.mlp import _backward, _forward

    spec = MLPSpec(d_in=5, width=24, depth=3, d_out=3, parametrization=parametrization, bias=bias)
    K, N = 4, 37
    g = torch.Generator().manual_seed(1)
    P = init_params(spec, K, seed=3, dtype=dtype)
    P = [p + 0.1 * torch.randn(p.shape, generator=g, dtype=torch.float64).to(dtype) if p.abs().sum() == 0 else p
         for p in P]  # non-zero biases
    x = torch.randn((K, N, 5) if batched_x else (N, 5), generator=g, dtype=torch.float64).to(dtype)
    g_out = torch.randn(K, N, 3, generator=g, dtype=torch.float64).to(dtype)
    want = _autograd_grads(spec, P, x, g_out)
    for ws in (None, {}):
        saved = []
        out = _forward(spec, P, x, False, saved, ws)
        assert torch.equal(out, forward(spec, P, x))
        got = _backward(spec, P, saved, g_out.clone(), ws)
        assert all(torch.equal(a, b) for a, b in zip(got, want)), (ws is not None, [torch.equal(a, b) for a, b in zip(got, want)])


def test_closed_form_backward_batch_of_one_and_nonfinite_models():
    """N = 1 (the bias gradient is not a sum) and a model whose activations overflow: still autograd's bits,
    and the finite model's gradients do not depend on the other's."""
    from lrtheory.core.mlp import _backward, _forward

    spec = MLPSpec(d_in=3, width=8, depth=2, d_out=2, bias=True)
    P = init_params(spec, 2, seed=5)
    P[0][1] *= 1e300  # model 1 overflows to inf / nan
    for N in (1, 6):
        x = torch.randn(N, 3, generator=torch.Generator().manual_seed(N), dtype=DT)
        g_out = torch.ones(2, N, 2, dtype=DT)
        want = _autograd_grads(spec, P, x, g_out)
        saved = []
        _forward(spec, P, x, False, saved, {})
        got = _backward(spec, P, saved, g_out.clone(), {})
        for a, b in zip(got, want):
            assert torch.equal(a[0], b[0])
            assert torch.equal(a[1].isnan(), b[1].isnan()) and torch.equal(a[1].nan_to_num(), b[1].nan_to_num())
        solo = _autograd_grads(spec, select_models(P, 0), x, g_out[:1])
        assert all(torch.equal(a[0], b[0]) for a, b in zip(got, solo))


def test_closed_form_backward_refuses_norm_layers():
    from lrtheory.core.mlp import _backward

    spec = MLPSpec(d_in=2, width=4, depth=1, d_out=1, norm="layernorm")
    with pytest.raises(ValueError, match="norm"):
        _backward(spec, init_params(spec, 1), [], torch.zeros(1, 1, 1, dtype=DT))


# ---- exact messages, devices and dtypes (issue 21: written from a mutation-testing pass)
from core_defaults import foreign_defaults  # noqa: E402


def test_messages_name_the_argument_exactly():
    spec = MLPSpec(3, 4, 1, 1)
    P = init_params(spec, 2)
    cases = [
        (lambda: MLPSpec(2, 4, 1, 1, parametrization="xavier"),
         r"^parametrization: unknown 'xavier'; expected one of \('standard', 'ntk', 'mean_field', 'mup'\)$"),
        (lambda: MLPSpec(2, 4, 1, 1, bias=1), r"^bias: expected a bool, got 1$"),
        (lambda: MLPSpec(2, 4, 1, 1, norm="groupnorm"),
         r"^norm: unknown 'groupnorm'; expected one of \(None, 'layernorm', 'batchnorm'\)$"),
        (lambda: MLPSpec(2, 0, 1, 1), r"^width: "), (lambda: MLPSpec(0, 2, 1, 1), r"^d_in: "),
        (lambda: MLPSpec(2, 2, 0, 1), r"^depth: "), (lambda: MLPSpec(2, 2, 1, 0), r"^d_out: "),
        (lambda: MLPSpec(2, 2, 1, 1, input_lr_mult=-1.0), r"^input_lr_mult: "),
        (lambda: init_params({"d_in": 3}, 2), r"^spec: expected an MLPSpec, got dict$"),
        (lambda: init_params(spec, 0), r"^K: "), (lambda: init_params(spec, 1, seed=-1), r"^seed: "),
        (lambda: init_params(spec, 2, seeds=[1, 2, 3]), r"^seeds: expected 2 seeds \(one per model\), got 3$"),
        (lambda: init_params(spec, 1, seeds=[-1]), r"^seeds: "),
        (lambda: forward(spec, P[:1], torch.zeros(5, 3, dtype=DT)),
         r"^params: expected a list of 2 tensors for this spec \(\['W0', 'W1'\]\), got list of length 1$"),
        (lambda: forward(spec, 3, torch.zeros(5, 3, dtype=DT)),
         r"^params: expected a list of 2 tensors for this spec \(\['W0', 'W1'\]\), got int of length \?$"),
        (lambda: forward(spec, [P[0], P[1][:, :, :3]], torch.zeros(5, 3, dtype=DT)),
         r"^params: W1 has shape \(2, 1, 3\), expected \(2, 1, 4\)$"),
        (lambda: forward(spec, [P[0], P[1][:1]], torch.zeros(5, 3, dtype=DT)),
         r"^params: W1 has shape \(1, 1, 4\), expected \(2, 1, 4\)$"),
        (lambda: forward(spec, P, torch.zeros(5, 3, dtype=DT).numpy()), r"^x: expected a torch\.Tensor, got ndarray$"),
        (lambda: forward(spec, P, torch.zeros(5, 4, dtype=DT)), r"^x: expected shape \(N, 3\), got \(5, 4\)$"),
        (lambda: forward(spec, P, torch.zeros(3, 5, 3, dtype=DT)), r"^x: expected shape \(2, N, 3\), got \(3, 5, 3\)$"),
        (lambda: forward(spec, P, torch.zeros(2, 5, 4, dtype=DT)), r"^x: expected shape \(2, N, 3\), got \(2, 5, 4\)$"),
        (lambda: forward(spec, P, torch.zeros(3, dtype=DT)),
         r"^x: expected shape \(N, d_in\) or \(K, N, d_in\), got \(3,\)$"),
        (lambda: forward(spec, P, torch.zeros(5, 3, dtype=torch.float32)),
         r"^x: dtype/device torch\.float32/cpu differ from the parameters' torch\.float64/cpu$"),
        (lambda: to_module(spec, P, 2), r"^k: expected an integer in \[0, 1\], got 2$"),
        (lambda: from_module(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))),
         r"^module: expected a CoreMLP or an nn\.Sequential\(Linear, ReLU, \.\.\., Linear\) with equal hidden "
         r"widths, got Sequential$"),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match):
            call()
    from lrtheory.core.mlp import _backward
    with pytest.raises(ValueError, match=r"^norm: the closed-form gradient covers networks without normalization "
                                         r"layers$"):
        _backward(MLPSpec(2, 4, 1, 1, norm="batchnorm"), init_params(MLPSpec(2, 4, 1, 1, norm="batchnorm"), 1), [],
                  torch.zeros(1, 1, 1, dtype=DT))


@pytest.mark.parametrize("dtype, default", [(torch.float32, torch.float64), (torch.float64, torch.float32)])
def test_tensors_follow_the_parameters_not_the_global_defaults(dtype, default):
    """init_params, CoreMLP/to_module and the forward/backward passes make every tensor in the requested
    (or the parameters') dtype and device: under another default dtype the parameters, the modules' weights,
    outputs and gradients keep ``dtype`` and equal those made under the ordinary defaults; the passes also
    run under a default device "meta" (a tensor made without device= would break them). init_params draws
    on a CPU generator without device=, so it runs under the meta default device only through its inputs:
    it is checked under the dtype default alone."""
    from lrtheory.core.mlp import _backward, _forward

    for spec in (MLPSpec(3, 6, 2, 2, bias=True, norm="layernorm"), MLPSpec(3, 6, 2, 2, bias=True),
                 MLPSpec(3, 6, 2, 2, parametrization="mup")):
        want = init_params(spec, 2, seed=1, device="cpu", dtype=dtype)
        with foreign_defaults(dtype=default, device="cpu"):
            got = init_params(spec, 2, seed=1, device="cpu", dtype=dtype)
            mod = to_module(spec, got, 1)
            plain = CoreMLP(spec, dtype=dtype)
        assert all(torch.equal(a, b) and b.dtype == dtype for a, b in zip(want, got))
        assert all(p.dtype == dtype for p in list(mod.parameters()) + list(plain.parameters()))
        x = torch.randn(5, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64).to(dtype)
        ref = forward(spec, want, x)
        with foreign_defaults(dtype=default):
            out = forward(spec, want, x)
            one = mod(x)
        assert torch.equal(out, ref) and out.dtype == dtype
        torch.testing.assert_close(one, ref[1], rtol=1e-5, atol=1e-6)
        if spec.norm is None:
            g_out = torch.ones(2, 5, 2, dtype=dtype)
            saved0 = []
            _forward(spec, want, x, False, saved0, {})
            ref_g = _backward(spec, want, saved0, g_out.clone(), {})
            with foreign_defaults(dtype=default):
                saved = []
                ws = {}
                o = _forward(spec, want, x, False, saved, ws)
                gr = _backward(spec, want, saved, g_out.clone(), ws)
            assert torch.equal(o, ref)
            assert all(torch.equal(a, b) and b.dtype == dtype for a, b in zip(gr, ref_g))


def test_tables_by_hand():
    """init stds, forward multipliers, LR multipliers, names, layers, sizes and FLOPs of small specs, typed
    out from the module docstring's table (d_in 4, width 9, depth 2, d_out 3)."""
    from lrtheory.core.mlp import count_flops, num_models, param_layers

    r = math.sqrt
    stds = {"standard": [r(2 / 4), r(2 / 9), r(2 / 9)], "ntk": [1.0, 1.0, 1.0],
            "mean_field": [r(2 / 4), r(2 / 9), 1 / 9], "mup": [r(2 / 36), r(2 / 9), 1 / 3]}
    mults = {"standard": [1.0] * 3, "ntk": [r(2 / 4), r(2 / 9), r(2 / 9)], "mean_field": [1.0] * 3,
             "mup": [3.0, 1.0, 1 / 3]}
    for p in PARAMETRIZATIONS:
        spec = MLPSpec(4, 9, 2, 3, parametrization=p, input_lr_mult=0.5)
        assert init_stds(spec) == pytest.approx(stds[p], rel=1e-15), p
        assert forward_multipliers(spec) == pytest.approx(mults[p], rel=1e-15), p
        assert lr_multipliers(spec) == pytest.approx([0.5, 1 / 9 if p == "mup" else 1.0, 1.0], rel=1e-15), p
    spec = MLPSpec(3, 5, 2, 2, bias=True, norm="layernorm", parametrization="mup")
    assert spec.layer_dims == [(5, 3), (5, 5), (2, 5)] and spec.n_layers == 3
    assert param_names(spec) == ["W0", "b0", "gamma0", "beta0", "W1", "b1", "gamma1", "beta1", "W2", "b2"]
    assert param_layers(spec) == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    assert lr_multipliers(spec) == pytest.approx([1, 1, 1, 1, 0.2, 0.2, 0.2, 0.2, 1, 1], rel=1e-15)
    assert spec.n_params == 15 + 5 * 3 + 25 + 5 * 3 + 10 + 2
    P = init_params(spec, 3)
    assert [tuple(t.shape) for t in P] == [(3, 5, 3), (3, 5), (3, 5), (3, 5), (3, 5, 5), (3, 5), (3, 5), (3, 5),
                                         (3, 2, 5), (3, 2)]
    assert all(t.abs().sum() == 0 for t in (P[1], P[3], P[5], P[7], P[9])) and all((P[i] == 1).all() for i in (2, 6))
    assert num_models(P) == 3
    plain = MLPSpec(3, 5, 2, 2)
    # forward 2 N (15 + 25 + 10) = 700 at N = 7; backward: the weight gradients again plus the input
    # gradients of layers 1 and 2: 700 + 2 * 7 * (25 + 10) = 1190
    assert count_flops(plain, 7, backward=False) == 700.0 and count_flops(plain, 7) == 1890.0
    # selecting models: an int keeps the axis; a list, a slice and a bool mask pick those models
    assert [t.shape[0] for t in select_models(P, 2)] == [1] * 10 and torch.equal(select_models(P, 2)[0][0], P[0][2])
    for idx in ([0, 2], slice(0, 3, 2), torch.tensor([True, False, True])):
        assert all(torch.equal(a, b[[0, 2]]) for a, b in zip(select_models(P, idx), P))


def test_from_module_reads_only_what_it_can():
    """A CoreMLP with norms and biases comes back with every tensor; a Sequential must alternate Linear and
    ReLU, start and end with Linear, have at least two, equal hidden widths, all or no biases, chained sizes."""
    spec = MLPSpec(3, 5, 2, 2, bias=True, norm="batchnorm", parametrization="ntk")
    P = init_params(spec, 2, seed=4)
    P = [p + 0.1 * k for k, p in enumerate(P)]
    s2, Q = from_module(to_module(spec, P, 1))
    assert s2 == spec and all(torch.equal(a[1], b[0]) for a, b in zip(P, Q))
    L, R = torch.nn.Linear, torch.nn.ReLU
    bad = [
        torch.nn.Sequential(L(3, 4)),
        torch.nn.Sequential(L(3, 4), R()),
        torch.nn.Sequential(L(3, 4), R(), L(4, 5), R(), L(6, 1)),  # not chained
        torch.nn.Sequential(L(3, 4), R(), L(4, 5), R(), L(5, 1)),  # unequal hidden widths
        torch.nn.Sequential(L(3, 4), R(), L(4, 4, bias=False), R(), L(4, 1)),  # some biases
        torch.nn.Sequential(R(), L(3, 4), R(), L(4, 1)),
        torch.nn.Linear(3, 4),
    ]
    for m in bad:
        with pytest.raises(ValueError, match=r"^module: "):
            from_module(m)
    s, Q = from_module(torch.nn.Sequential(L(3, 4, bias=False), R(), L(4, 4, bias=False), R(), L(4, 1, bias=False)))
    assert s == MLPSpec(3, 4, 2, 1) and len(Q) == 3 and Q[1].shape == (1, 4, 4)


def test_workspace_buffers_follow_shape_and_dtype_changes():
    """One workspace reused across calls whose batch size, dtype or model count change: each call's outputs
    and gradients are those of a call without workspace (buffers of the wrong shape or dtype are replaced)."""
    from lrtheory.core.mlp import _backward, _forward

    ws = {}
    spec = MLPSpec(3, 6, 2, 2, bias=True)
    for K, N, dt in ((2, 5, DT), (2, 7, DT), (2, 7, torch.float32), (3, 7, torch.float32), (3, 1, DT)):
        P = init_params(spec, K, seed=1, dtype=dt)
        x = torch.randn(N, 3, generator=torch.Generator().manual_seed(N), dtype=torch.float64).to(dt)
        g = torch.ones(K, N, 2, dtype=dt)
        s0, s1 = [], []
        want = _forward(spec, P, x, False, s0, None)
        gw = _backward(spec, P, s0, g.clone(), None)
        got = _forward(spec, P, x, False, s1, ws)
        assert torch.equal(got, want) and got.dtype == dt
        gg = _backward(spec, P, s1, g.clone(), ws)
        assert all(torch.equal(a, b) for a, b in zip(gg, gw)), (K, N, dt)


def test_layer_indices_past_nine_and_the_smallest_sequential():
    """Layer numbers of two digits (depth 10: W10 is layer 10); a Sequential of two Linear layers is a
    depth-1 network of width the first's output; a last layer not chained to the hidden width is refused."""
    from lrtheory.core.mlp import param_layers

    assert param_layers(MLPSpec(2, 3, 10, 1, bias=True)) == [l for l in range(11) for _ in range(2)]
    L, R = torch.nn.Linear, torch.nn.ReLU
    s, Q = from_module(torch.nn.Sequential(L(3, 4), R(), L(4, 2)))
    assert s == MLPSpec(3, 4, 1, 2, bias=True) and [tuple(q.shape) for q in Q] == [(1, 4, 3), (1, 4), (1, 2, 4), (1, 2)]
    with pytest.raises(ValueError, match=r"^module: "):
        from_module(torch.nn.Sequential(L(3, 4), R(), L(4, 4), R(), L(5, 1)))


@pytest.mark.parametrize("bias", [False, True])
def test_closed_form_backward_with_a_multiplier_of_two_and_one_output(bias):
    """mup at width 4: the input layer's forward multiplier is sqrt(4) = 2 exactly; d_out = 1: the readout
    bias gradient keeps its (K, 1) shape. Autograd's gradients bit for bit, with and without workspace."""
    from lrtheory.core.mlp import _backward, _forward

    spec = MLPSpec(d_in=3, width=4, depth=2, d_out=1, parametrization="mup", bias=bias)
    assert forward_multipliers(spec)[0] == 2.0
    P = init_params(spec, 2, seed=6)
    P = [p + 0.1 if n.startswith("b") else p for p, n in zip(P, param_names(spec))]
    for N in (5, 1):
        x = torch.randn(N, 3, generator=torch.Generator().manual_seed(N), dtype=DT)
        g_out = torch.randn(2, N, 1, generator=torch.Generator().manual_seed(7), dtype=DT)
        want = _autograd_grads(spec, P, x, g_out)
        for ws in (None, {}):
            saved = []
            _forward(spec, P, x, False, saved, ws)
            got = _backward(spec, P, saved, g_out.clone(), ws)
            assert [tuple(a.shape) for a in got] == [tuple(p.shape) for p in P]
            assert all(torch.equal(a, b) for a, b in zip(got, want)), (N, ws is not None)


# ---- the documented seed rule and BatchNorm without running statistics (from the full mutation run)
def test_init_params_follows_the_documented_seed_rule():
    """Model k of ``init_params(spec, K, seed=s)`` is drawn from a generator seeded with
    ``(s * 1_000_003 + k) mod 2**63`` (the docstring's rule), the default seed is 0, and seed 0 is a
    valid per-model seed: checked against the ``seeds=`` path, which seeds model k with ``seeds[k]``
    itself, and against a generator seeded by hand."""
    spec = MLPSpec(3, 5, 1, 2, bias=True)
    for s in (0, 7, 2**62 + 5):  # the last one wraps: s * 1_000_003 overflows 2**63
        rule = [(s * 1_000_003 + k) % 2**63 for k in range(3)]
        a, b = init_params(spec, 3, seed=s), init_params(spec, 3, seeds=rule)
        assert all(torch.equal(p, q) for p, q in zip(a, b)), s
    assert all(torch.equal(p, q) for p, q in zip(init_params(spec, 2), init_params(spec, 2, seed=0)))
    z = init_params(spec, 2, seeds=[0, 0])
    assert torch.equal(z[0][0], z[0][1])
    std = init_stds(spec)[0]
    g = torch.Generator().manual_seed(7 * 1_000_003 + 1)
    want = torch.randn(5, 3, generator=g, dtype=torch.float64) * std
    assert torch.equal(init_params(spec, 2, seed=7)[0][1], want)


def test_core_mlp_batchnorm_has_no_running_statistics():
    """CoreMLP's BatchNorm normalizes with the batch's statistics in eval mode too (no running
    statistics, as the docstring says), and its LayerNorm and BatchNorm use eps = 1e-5 (NORM_EPS)."""
    torch.manual_seed(0)
    for norm in ("batchnorm", "layernorm"):
        mod = CoreMLP(MLPSpec(3, 6, 1, 2, norm=norm))
        x = torch.randn(8, 3, dtype=torch.float64) * 3 + 1
        out_train = mod(x)
        mod.eval()
        assert torch.equal(mod(x), out_train), norm
        for nm in mod.norms:
            if not isinstance(nm, torch.nn.Identity):
                assert nm.eps == 1e-5, norm
                if norm == "batchnorm":
                    assert nm.running_mean is None and not nm.track_running_stats


# ---- the workspace's contract, multipliers of two on per-model inputs, devices (issue 21, last full run)
def _alloc_events(fn):
    """The allocations (bytes, > 0) that ``fn()`` makes, as torch's profiler records them on the CPU."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    return [(e.name, e.cpu_memory_usage) for e in prof.events() if e.cpu_memory_usage > 0]


@pytest.mark.parametrize("spec", [
    MLPSpec(3, 4, 2, 2, parametrization="mup", bias=True), MLPSpec(3, 4, 2, 2, parametrization="mup"),
    MLPSpec(3, 6, 1, 2, parametrization="ntk", bias=True), MLPSpec(3, 6, 1, 2),
])
@pytest.mark.parametrize("batched_x", [False, True])
@pytest.mark.parametrize("N", [2, 5])
def test_a_warm_workspace_is_reused_and_nothing_is_allocated(spec, batched_x, N):
    """What _forward/_backward promise with a workspace ``ws``: every output lives in a buffer of ``ws``
    reused by the next call (the second call's forward output, ReLU outputs and gradients are the first
    call's tensors, which are still held, so no fresh allocation can sit at their address); a warm call
    allocates no tensor at all (the profiler sees at most 8-byte scalars: the Python multipliers wrapped as
    0-d tensors); no buffer of the wrong shape is written (torch would resize it with a warning, made an
    error here); and the values are autograd's, bit for bit. K = 3 differs from N; depth 1 has an input
    width different from the hidden one; mup at width 4 has the multipliers 2, 1 and 1/2."""
    import warnings

    from lrtheory.core.mlp import _backward, _forward

    K = 3
    P = init_params(spec, K, seed=2)
    P = [p + 0.1 if n.startswith("b") else p for p, n in zip(P, param_names(spec))]
    gen = torch.Generator().manual_seed(N)
    xs = [torch.randn((K, N, 3) if batched_x else (N, 3), generator=gen, dtype=DT) for _ in range(2)]
    gs = [torch.randn(K, N, 2, generator=gen, dtype=DT) for _ in range(2)]
    ws, held = {}, []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for x, g in zip(xs, gs):
            want = _autograd_grads(spec, P, x, g)
            ref = forward(spec, P, x)
            saved, res, g_in = [], {}, g.clone()  # _backward overwrites its g

            def call():
                res["out"] = _forward(spec, P, x, False, saved, ws)
                res["relu"] = [s[2] for s in saved[:-1]]
                res["grads"] = _backward(spec, P, saved, g_in, ws)

            allocs = _alloc_events(call) if held else (call() or [])
            assert torch.equal(res["out"], ref)
            assert all(torch.equal(a, b) for a, b in zip(res["grads"], want))
            held.append(res)
    first, second = held
    ptr = [t.data_ptr() for t in [first["out"]] + first["relu"] + list(first["grads"])]
    assert ptr == [t.data_ptr() for t in [second["out"]] + second["relu"] + list(second["grads"])]
    assert all(nbytes <= 8 for _, nbytes in allocs), allocs


@pytest.mark.parametrize("bias", [False, True])
def test_per_model_inputs_with_a_multiplier_of_two(bias):
    """mup at width 4: the input layer's multiplier is exactly 2. On per-model inputs ``(K, N, d_in)``
    (the bmm / baddbmm branches) the outputs are the docstring's definition written out per model, and
    CoreMLP (to_module) computes the same; the closed-form gradients are autograd's, with and without
    workspace."""
    from lrtheory.core.mlp import _backward, _forward

    spec = MLPSpec(d_in=3, width=4, depth=2, d_out=2, parametrization="mup", bias=bias)
    assert forward_multipliers(spec) == [2.0, 1.0, 0.5]
    K, N = 3, 5
    P = init_params(spec, K, seed=8)
    P = [p + 0.1 if n.startswith("b") else p for p, n in zip(P, param_names(spec))]
    x = torch.randn(K, N, 3, generator=torch.Generator().manual_seed(3), dtype=DT)
    out = forward(spec, P, x)
    for k in range(K):
        torch.testing.assert_close(out[k], _reference_forward(spec, P, k, x[k]), rtol=0, atol=ATOL)
        torch.testing.assert_close(to_module(spec, P, k)(x[k]), out[k], rtol=0, atol=ATOL)
    g_out = torch.randn(K, N, 2, generator=torch.Generator().manual_seed(4), dtype=DT)
    want = _autograd_grads(spec, P, x, g_out)
    for ws in (None, {}):
        saved = []
        _forward(spec, P, x, False, saved, ws)
        got = _backward(spec, P, saved, g_out.clone(), ws)
        assert all(torch.equal(a, b) for a, b in zip(got, want)), ws is not None


def test_modules_and_parameters_asked_on_the_cpu_stay_there_under_another_default_device():
    """CoreMLP's documented default device is "cpu", to_module copies onto the parameters' device and
    init_params(device="cpu") makes every tensor there, whatever torch's default device (here "meta",
    where a tensor made without device= would land): weights, biases, LayerNorm and BatchNorm affine
    parameters, and the values are those made under the ordinary defaults."""
    for norm in ("layernorm", "batchnorm"):
        spec = MLPSpec(3, 5, 2, 2, bias=True, norm=norm)
        want = init_params(spec, 2, seed=3, device="cpu")
        with foreign_defaults(dtype=torch.float64, device="meta"):
            got = init_params(spec, 2, seed=3, device="cpu")
            plain = CoreMLP(spec)
            mod = to_module(spec, want, 1)
        assert all(p.device.type == "cpu" and torch.equal(p, q) for p, q in zip(got, want))
        for m in (plain, mod):
            assert all(p.device.type == "cpu" for p in m.parameters()), norm
        x = _x(6, 3)
        torch.testing.assert_close(mod(x), forward(spec, want, x)[1], rtol=0, atol=ATOL)


def test_parameters_without_a_model_axis_are_refused_by_name():
    """A 0-d or 1-d first tensor has no (K, fan_out, fan_in) shape: ValueError naming W0 (the 0-d one has
    no model axis at all, shown as -1), not an IndexError."""
    spec = MLPSpec(3, 4, 1, 1)
    P = init_params(spec, 2)
    with pytest.raises(ValueError, match=r"^params: W0 has shape \(\), expected \(-1, 4, 3\)$"):
        forward(spec, [torch.tensor(1.0, dtype=DT), P[1]], torch.zeros(5, 3, dtype=DT))
    with pytest.raises(ValueError, match=r"^params: W0 has shape \(2,\), expected \(2, 4, 3\)$"):
        forward(spec, [torch.zeros(2, dtype=DT), P[1]], torch.zeros(5, 3, dtype=DT))


def test_parameters_of_mixed_dtypes_are_refused_by_name():
    """Every parameter tensor must share the first one's dtype and device: a float32 W1 among float64
    tensors is a ValueError naming W1 (it used to reach torch's RuntimeError in the first product)."""
    spec = MLPSpec(3, 4, 1, 1)
    P = init_params(spec, 2, seed=0)
    mixed = [P[0], P[1].float()]
    with pytest.raises(ValueError, match=r"params: W1 is torch\.float32 on cpu, the first tensor torch\.float64"):
        forward(spec, mixed, torch.zeros(5, 3, dtype=torch.float64))
    x = torch.zeros(5, 3, dtype=torch.float64)
    from lrtheory.core.train import train

    with pytest.raises(ValueError, match="params: W1 is torch.float32"):
        train(spec, mixed, x, torch.zeros(5, 1, dtype=torch.float64), 0.1, 1)


def test_parameters_on_mixed_devices_are_refused_by_name():
    """A W1 on another device (``meta``, which every machine has) than W0 is a ValueError naming W1 and
    showing the first tensor's dtype and device."""
    spec = MLPSpec(3, 4, 1, 1)
    P = init_params(spec, 2, seed=0)
    mixed = [P[0], P[1].to("meta")]
    with pytest.raises(ValueError, match=r"params: W1 is torch\.float64 on meta, the first tensor torch\.float64 "
                                         r"on cpu: every tensor must share them"):
        forward(spec, mixed, torch.zeros(5, 3, dtype=torch.float64))
