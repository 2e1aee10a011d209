"""Chapter 03: the one-step Monte Carlo and transfer training (lrtheory.results.mup_depth.simulate)
and their analysis (lrtheory.results.mup_depth.analysis)."""
import numpy as np
import pytest
import torch

from lrtheory.core.mlp import MLPSpec, init_params
from lrtheory.results.mup_depth import analysis as A
from lrtheory.results.mup_depth import simulate as S


@pytest.mark.parametrize("d_in", [12, 5])
def test_one_step_matches_autograd_and_is_deterministic(d_in):
    seeds = [7, 8, 9]
    kw = dict(etas=[1e-7, 0.05], device="cpu", input_dim=d_in)
    res = S.one_step(12, 3, seeds, **kw)
    again = S.one_step(12, 3, seeds, max_chunk_bytes=1, **kw)
    np.testing.assert_array_equal(res.lin, again.lin)  # same seeds, any chunking: bit-identical
    np.testing.assert_array_equal(res.exact, again.exact)
    # the exact step at tiny eta is the first-order change: relative error O(eta) ~ 1e-6
    np.testing.assert_allclose(res.exact[:, 0, :] / 1e-14, res.lin, rtol=1e-4)
    # independent check of the exact step with autograd on network 0
    spec = MLPSpec(d_in=d_in, width=12, depth=3, d_out=1, parametrization="mean_field")
    P = [p[0].clone().requires_grad_(True) for p in init_params(spec, 1, seeds=[7])]
    x = torch.ones(d_in, dtype=torch.float64)

    def pre(params):
        h, zs = x, []
        for W in params[:-1]:
            z = W @ h
            zs.append(z)
            h = torch.relu(z)
        return zs, (params[-1] @ h)[0], h

    zs, f, h = pre(P)
    loss = 0.5 * (f - 1.0) ** 2
    grads = torch.autograd.grad(loss, P)
    with torch.no_grad():
        zs2, f2, _ = pre([p - 0.05 * g for p, g in zip(P, grads)])
        want = [float(((a - b) ** 2).mean()) for a, b in zip(zs2, zs)] + [float((f2 - f) ** 2)]
        # the readout's own change of the output per unit eta: (f - y) ||h^{(L)}||^2
        own = float(((f - 1.0) * (h ** 2).sum()) ** 2)
    np.testing.assert_allclose(res.exact[0, 1], want, rtol=1e-10)  # float64 round-off
    np.testing.assert_allclose(res.out_parts[0, 1] ** 2, own, rtol=1e-10)


def test_layer_multipliers_are_linear_in_the_first_order_change():
    # a multiplier m on the first layer alone scales its own change of z^(1) by m^2
    a = S.one_step(10, 2, [3, 4], input_dim=4, device="cpu")
    b = S.one_step(10, 2, [3, 4], input_dim=4, layer_lr_mults=[2.5, 1.0, 1.0], device="cpu")
    np.testing.assert_allclose(b.lin[:, 0], 6.25 * a.lin[:, 0], rtol=1e-12)  # round-off


def test_one_cpu_thread_restores_the_thread_count():
    before = torch.get_num_threads()
    with S.one_cpu_thread("cpu"):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_fit_depth_exponent_recovers_a_power_law():
    rng = np.random.default_rng(0)
    L = np.array([2, 4, 8, 16])
    samples = (L[:, None] ** 3.0) * rng.exponential(1.0, size=(4, 200))
    fit = A.fit_depth_exponent(L, samples, n_boot=200)
    # eta* ~ mean^{-1/2} ~ L^{-3/2}; 4 bootstrap SEs cover the sampling error
    assert abs(fit.exponent + 1.5) < 4 * fit.se + 1e-12
    assert fit.ci_low < fit.exponent < fit.ci_high


def test_fit_depth_exponent_se_matches_independent_repeats():
    # the bootstrap over independent networks estimates the spread of the exponent over
    # independent repeats of the whole experiment (40 repeats: the s.d. is known to ~11%)
    rng = np.random.default_rng(1)
    L = np.array([2, 4, 8, 16])
    reps = [A.fit_depth_exponent(L, (L[:, None] ** 3.0) * rng.exponential(1.0, size=(4, 64)), n_boot=200, seed=i)
            for i in range(40)]
    sd = np.std([r.exponent for r in reps], ddof=1)
    assert np.mean([r.se for r in reps]) == pytest.approx(sd, rel=0.35)


def test_best_lr():
    x = np.arange(-3.0, 4.0)
    v = np.exp((x - 0.3) ** 2)
    assert A.best_lr(x, v) == pytest.approx(0.3, abs=1e-9)  # exact parabola in log loss
    assert A.best_lr(x, np.r_[v[:-2], np.inf, np.nan]) == pytest.approx(0.3, abs=1e-9)


def test_transfer_drifts():
    r = A.TransferResult(width=8, base_depth=1, steps=1, n_train=1, depths=(1, 2, 4), log2_etas=np.zeros(3),
                         loss={}, best={"scaled": np.array([[1.0, 2.0], [1.0, 1.0], [1.0, 0.0]])})
    np.testing.assert_allclose(r.seed_drifts("scaled"), [0.0, -1.0], atol=1e-12)
    assert r.drift("scaled") == pytest.approx(-0.5)
    assert r.drift_se("scaled") == pytest.approx(0.5)
    np.testing.assert_allclose(r.seed_drifts("scaled", min_depth=2), [0.0, -1.0], atol=1e-12)
    with pytest.raises(ValueError, match="^min_depth: "):
        r.seed_drifts("scaled", min_depth=3)


@pytest.mark.parametrize("call, name", [
    (lambda: S.one_step(0, 2, [1, 2], device="cpu"), "width"),
    (lambda: S.one_step(8, 2, [1], device="cpu"), "seeds"),
    (lambda: S.one_step(8, 2, [1, 2], etas=[0.1, -1.0], device="cpu"), "etas"),
    (lambda: S.one_step(8, 2, [1, 2], etas=[float("nan")], device="cpu"), "etas"),
    (lambda: S.one_step(8, 2, [1, 2], layer_lr_mults=[1.0, 1.0], device="cpu"), "layer_lr_mults"),
    (lambda: S.one_step(8, 2, [1, -2], device="cpu"), "seeds"),
    (lambda: S.one_step(8, 2, [1, 2], input_dim=0, device="cpu"), "input_dim"),
    (lambda: A.best_lr([0.0, 1.0], [1.0, 2.0]), "y"),
    (lambda: A.best_lr([0.0, 1.0, 2.0], [np.inf, np.nan, np.inf]), "y"),
    (lambda: A.fit_depth_exponent([2], np.ones((1, 4))), "samples"),
])
def test_bad_inputs_raise(call, name):
    with pytest.raises(ValueError, match=f"^{name}: "):
        call()
