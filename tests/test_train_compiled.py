"""train(..., compile=True): the step compiled by torch.compile against the eager step.

The compiled step runs the eager step's operations: the same ATen products on the same layouts, the
reductions (losses, bias gradients, softmax) as ATen's own kernels behind core.aten_ops, and the
element-wise work fused by inductor, which rounds as the eager kernels do (no FMA contraction). So
the whole run must be equal to the bit: parameters, divergence steps, losses, accuracies, records.
Each configuration compiles once (seconds); the settings are small for that reason.
"""
import numpy as np
import pytest
import torch

from lrtheory.core.mlp import MLPSpec, init_params
from lrtheory.core.train import _compiled_step, train, weight_norms



def _same_run(a, b):
    for p, q in zip(a.params, b.params):
        assert torch.equal(p, q)
    np.testing.assert_array_equal(a.diverged, b.diverged)
    np.testing.assert_array_equal(a.diverged_step, b.diverged_step)
    assert a.history.keys() == b.history.keys()
    for k in a.history:
        np.testing.assert_array_equal(a.history[k], b.history[k])  # NaN == NaN here: the same positions


def _mse_problem(K):
    """A float32 MSE problem: spec, K models' parameters, data."""
    spec = MLPSpec(d_in=12, width=16, depth=2, d_out=3)
    g = torch.Generator().manual_seed(11)
    x = torch.randn(40, 12, generator=g)
    y = torch.randn(40, 3, generator=g)
    return spec, init_params(spec, K, seed=12, dtype=torch.float32), x, y


def test_float32_mse_full_batch_with_diverging_models():
    spec, P, x, y = _mse_problem(6)
    etas = [0.01, 0.1, 0.5, 2.0, 20.0, 200.0]
    kw = dict(record_every=3, diagnostics={"wnorm": weight_norms(spec)})
    ref = train(spec, P, x, y, etas, 25, **kw)
    got = train(spec, P, x, y, etas, 25, compile=True, **kw)
    assert ref.diverged.any() and not ref.diverged.all()
    _same_run(got, ref)


def test_float64_ce_mup_bias_sgd_momentum_weight_decay_and_test_data():
    spec = MLPSpec(d_in=5, width=8, depth=3, d_out=4, bias=True, parametrization="mup")
    g = torch.Generator().manual_seed(21)
    x = torch.randn(30, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (30,), generator=g)
    xt = torch.randn(10, 5, generator=g, dtype=torch.float64)
    yt = torch.randint(0, 4, (10,), generator=g)
    P = init_params(spec, 4, seed=22)
    kw = dict(loss="ce", batch_size=8, seed=23, momentum=0.9, weight_decay=1e-3, x_test=xt, y_test=yt,
              layer_lr_mults=[1.0, 2.0, 0.5, 1.0], record_every=2)
    etas = [0.05, 0.5, 5.0, 5e3]
    ref = train(spec, P, x, y, etas, 20, **kw)
    got = train(spec, P, x, y, etas, 20, compile=True, **kw)
    assert ref.diverged.any() and not ref.diverged.all()
    _same_run(got, ref)


def test_float32_ce_full_batch_with_bias_many_examples_and_classes():
    # full batch: the recorded loss is the compiled step's own (under SGD it is the eager evaluation's);
    # 100 examples and 10 classes, where inductor's own mean and softmax backward add in another order
    spec = MLPSpec(d_in=6, width=12, depth=2, d_out=10, bias=True)
    g = torch.Generator().manual_seed(31)
    x = torch.randn(100, 6, generator=g)
    y = torch.randint(0, 10, (100,), generator=g)
    P = init_params(spec, 3, seed=32, dtype=torch.float32)
    ref = train(spec, P, x, y, [0.1, 1.0, 3e3], 15, loss="ce")
    got = train(spec, P, x, y, [0.1, 1.0, 3e3], 15, loss="ce", compile=True)
    assert ref.diverged.any() and not ref.diverged.all()
    _same_run(got, ref)


def test_a_configuration_compiles_once_and_is_reused():
    spec = MLPSpec(d_in=12, width=16, depth=2, d_out=3)
    assert _compiled_step(spec, "mse", 0.0, 0.0) is _compiled_step(spec, "mse", 0.0, 0.0)
    assert _compiled_step(spec, "mse", 0.0, 0.0) is not _compiled_step(spec, "mse", 0.5, 0.0)


def test_the_comparison_sees_a_realistic_error():
    # negative control of _same_run: the same run at an LR 1 % off is told apart
    spec, P, x, y = _mse_problem(2)
    ref = train(spec, P, x, y, [0.01, 0.1], 25, record_every=3)
    off = train(spec, P, x, y, [0.0101, 0.101], 25, record_every=3, compile=True)
    with pytest.raises(AssertionError):
        _same_run(off, ref)


def test_compile_validation():
    spec = MLPSpec(d_in=3, width=4, depth=1, d_out=1, norm="layernorm")
    x = torch.randn(5, 3, dtype=torch.float64)
    y = torch.randn(5, 1, dtype=torch.float64)
    with pytest.raises(ValueError, match="^compile: the compiled step covers networks without norm layers"):
        train(spec, init_params(spec, 2), x, y, 0.1, 2, compile=True)
    spec = MLPSpec(d_in=3, width=4, depth=1, d_out=1)
    with pytest.raises(ValueError, match="^compile: expected True or False"):
        train(spec, init_params(spec, 2), x, y, 0.1, 2, compile="yes")
