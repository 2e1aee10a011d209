"""lrtheory.tools.hessian / operators / spectrum: the Hessian spectrum of any module over a data set.

References are dense float64 Hessians (torch.func.hessian of the flattened loss, computed here
independently of the operators). Every defect of issue 19 has a test below that failed before.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import lrtheory
from lrtheory.tools.hessian import dense_hessian, hessian_density, hessian_eigs, hessian_trace, sharpness
from lrtheory.tools.operators import GaussNewtonOperator, HessianOperator
from lrtheory.tools.spectrum import default_tol

DT = torch.float64


def reference_hessian(model, loss_fn, x, y):
    """Dense Hessian by torch.func on the flattened parameters (independent of the operators)."""
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    ps = [p.detach() for n, p in model.named_parameters() if p.requires_grad]
    shapes, sizes = [p.shape for p in ps], [p.numel() for p in ps]
    buffers = dict(model.named_buffers())

    def f(flat):
        state = {n: c.view(s) for n, c, s in zip(names, torch.split(flat, sizes), shapes)}
        state.update({n: b.clone() for n, b in buffers.items()})
        with torch.nn.attention.sdpa_kernel([torch.nn.attention.SDPBackend.MATH]):
            return loss_fn(torch.func.functional_call(model, state, (x,)), y)

    return torch.func.jacrev(torch.func.grad(f))(torch.cat([p.reshape(-1) for p in ps]))


def mlp(seed=0, d_in=5, width=12, d_out=3, dtype=DT):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d_in, width), nn.Tanh(), nn.Linear(width, d_out)).to(dtype)


def cnn(seed=0, dtype=DT):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 6 * 6, 4)).to(dtype)


def data_mlp(n=48, d_in=5, d_out=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d_in, generator=g, dtype=DT), torch.randint(0, d_out, (n,), generator=g)


def loader(x, y, batch_size, shuffle=False):
    ds = torch.utils.data.TensorDataset(x, y)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=shuffle,
                                       generator=torch.Generator().manual_seed(0))


# ------------------------------------------------------------------ agreement with a dense Hessian
@pytest.mark.parametrize("which", ["LA", "SA", "LM"])
def test_hessian_eigs_top3_match_dense(which):
    # issue 19: top 3 to 1e-8 relative in float64 (ARPACK at tol 1e-10 gives ~1e-13)
    net = mlp()
    x, y = data_mlp()
    ev = torch.linalg.eigvalsh(reference_hessian(net, F.cross_entropy, x, y)).numpy()
    want = {"LA": ev[::-1][:3], "SA": ev[:3], "LM": ev[np.argsort(-np.abs(ev))][:3]}[which]
    r = hessian_eigs(net, F.cross_entropy, (x, y), k=3, which=which)
    assert r.converged and r.which == which
    np.testing.assert_allclose(r.values, want, rtol=1e-8, atol=1e-8 * abs(ev).max())
    # eigenvectors: H v = lambda v, unit norm
    H = reference_hessian(net, F.cross_entropy, x, y)
    for lam, v in zip(r.values, r.vectors):
        assert abs(float(v.norm()) - 1) < 1e-12
        assert float((H @ v - lam * v).norm()) < 1e-7 * abs(ev).max()


def test_cnn_sharpness_and_eigs_match_dense():
    net = cnn()
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(20, 1, 8, 8, generator=g, dtype=DT), torch.randint(0, 4, (20,), generator=g)
    ev = torch.linalg.eigvalsh(reference_hessian(net, F.cross_entropy, x, y)).numpy()[::-1]
    for method in ("lanczos", "eigsh", "dense", "power"):
        s = sharpness(net, F.cross_entropy, (x, y), method=method)
        assert s.converged and abs(s.value - ev[0]) <= 1e-8 * abs(ev[0]), method
    r = hessian_eigs(net, F.cross_entropy, (x, y), k=3)
    np.testing.assert_allclose(r.values, ev[:3], rtol=1e-8)


def test_dataloader_equals_full_batch():
    # issue 19: a DataLoader failed with a TypeError from inside nn.Linear; now the mean loss
    # over the batches (weighted by size, last batch smaller) has the full-batch Hessian
    net = mlp()
    x, y = data_mlp(n=50)
    full = sharpness(net, F.cross_entropy, (x, y))
    for dl in (loader(x, y, 16), loader(x, y, 7, shuffle=True), [(x[:30], y[:30]), (x[30:], y[30:])]):
        s = sharpness(net, F.cross_entropy, dl)
        assert s.converged and abs(s.value - full.value) <= 1e-10 * abs(full.value)
    e_full = hessian_eigs(net, F.cross_entropy, (x, y), k=3)
    e_dl = hessian_eigs(net, F.cross_entropy, loader(x, y, 16), k=3)
    np.testing.assert_allclose(e_dl.values, e_full.values, rtol=1e-10)
    t_full = hessian_trace(net, F.cross_entropy, (x, y), n_samples=10)
    t_dl = hessian_trace(net, F.cross_entropy, loader(x, y, 16), n_samples=10)
    assert abs(t_dl.value - t_full.value) <= 1e-10 * abs(t_full.value)
    H = dense_hessian(net, F.cross_entropy, loader(x, y, 16))
    torch.testing.assert_close(H, reference_hessian(net, F.cross_entropy, x, y), rtol=1e-10, atol=1e-12)


def test_generator_data_is_read_once_and_reused():
    net = mlp()
    x, y = data_mlp()
    gen = ((x[i:i + 16], y[i:i + 16]) for i in range(0, 48, 16))
    s = sharpness(net, F.cross_entropy, gen)
    assert abs(s.value - sharpness(net, F.cross_entropy, (x, y)).value) < 1e-10 * abs(s.value)


def test_trace_within_three_standard_errors_of_dense_trace():
    net = mlp()
    x, y = data_mlp()
    tr = float(torch.trace(reference_hessian(net, F.cross_entropy, x, y)))
    for seed in range(3):
        r = hessian_trace(net, F.cross_entropy, (x, y), n_samples=200, seed=seed)
        assert r.se > 0 and r.n_samples == 200 and r.n_matvec == 200
        assert abs(r.value - tr) <= 3 * r.se, (seed, r.value, tr, r.se)


def test_density_integrates_to_one_and_matches_the_spectrum():
    net = mlp(width=6)
    x, y = data_mlp()
    ev = torch.linalg.eigvalsh(reference_hessian(net, F.cross_entropy, x, y)).numpy()
    P = ev.size
    d = hessian_density(net, F.cross_entropy, (x, y), n_probes=4, steps=P)
    assert abs(np.trapezoid(d.density, d.grid) - 1) < 1e-3
    # with m = P Lanczos steps the quadrature nodes are the eigenvalues themselves
    assert abs(np.nanmax(d.nodes) - ev[-1]) < 1e-8 * abs(ev).max()
    assert abs(np.nanmin(d.nodes) - ev[0]) < 1e-8 * abs(ev).max()
    # the first moment of the quadrature is the mean eigenvalue (trace / P), exactly in expectation
    mean = float(np.nansum(d.nodes * d.weights) / d.nodes.shape[0])
    assert abs(mean - ev.mean()) < 0.5 * np.abs(ev).max()


def test_top_algebraic_not_largest_magnitude():
    # f(w) = -(w1 w2 - 1)^2 / 2 + 0.1 w3^2 style: a dominant negative eigenvalue
    class Neg(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.tensor([0.3, -0.2, 0.5], dtype=DT))

        def forward(self, x):
            return x @ self.w

    net = Neg()
    x = torch.eye(3, dtype=DT)

    def loss(out, _):
        return -2.0 * out[0] ** 2 + 0.5 * out[1] ** 2 + 0.1 * out[2] ** 2

    lam = sorted([-4.0, 1.0, 0.2])
    for method in ("lanczos", "power", "eigsh", "dense"):
        assert abs(sharpness(net, loss, (x, None), method=method).value - 1.0) < 1e-8, method
    assert abs(hessian_eigs(net, loss, (x, None), k=1, which="LM").values[0] - lam[0]) < 1e-8
    assert abs(hessian_eigs(net, loss, (x, None), k=1, which="SA").values[0] - lam[0]) < 1e-8


# ------------------------------------------------------------------ defects of issue 19
def test_empty_batch_is_an_error_in_every_method():
    # before: value=0.0, converged=True
    net = mlp()
    x, y = torch.zeros(0, 5, dtype=DT), torch.zeros(0, dtype=torch.int64)
    for fn in (lambda: sharpness(net, F.cross_entropy, (x, y), method="lanczos"),
               lambda: sharpness(net, F.cross_entropy, (x, y), method="dense"),
               lambda: hessian_eigs(net, F.cross_entropy, (x, y), k=2),
               lambda: hessian_trace(net, F.cross_entropy, (x, y)),
               lambda: hessian_density(net, F.cross_entropy, (x, y)),
               lambda: sharpness(net, F.cross_entropy, [])):
        with pytest.raises(ValueError, match="empty|no batch"):
            fn()


@pytest.mark.parametrize("method", ["lanczos", "power", "eigsh", "dense"])
def test_non_finite_inputs_and_parameters_are_errors(method):
    # before: NaN (lanczos), an ArpackError with LAPACK chatter (eigsh), a LinAlgError (dense)
    net = mlp()
    x, y = data_mlp()
    xb = x.clone()
    xb[3, 1] = float("nan")
    with pytest.raises(ValueError, match="data: the inputs of batch 0 contain NaN or Inf"):
        sharpness(net, F.cross_entropy, (xb, y), method=method)
    with pytest.raises(ValueError, match="batch 1"):
        sharpness(net, F.cross_entropy, [(x, y), (xb, y)], method=method)
    with torch.no_grad():
        net[2].bias[0] = float("inf")
    with pytest.raises(ValueError, match=r"parameter '2.bias' contains NaN or Inf"):
        sharpness(net, F.cross_entropy, (x, y), method=method)


def test_dropout_in_train_mode_is_an_error_that_says_call_eval():
    # before: the value followed the global RNG and seed= had no effect
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 3)).double()
    x, y = data_mlp()
    for fn in (sharpness, hessian_eigs, hessian_trace, hessian_density):
        with pytest.raises(ValueError, match=r"Dropout module '2' is in training mode.*model\.eval\(\)"):
            fn(net, F.cross_entropy, (x, y))
    net.eval()
    a, b = (sharpness(net, F.cross_entropy, (x, y), seed=s).value for s in (0, 1))
    assert abs(a - b) < 1e-9 * abs(a)


def test_float32_default_tolerance_follows_the_dtype():
    # before: tol=1e-10 in float32 -> power ran 5000 HVPs, Lanczos reported convergence at 1.6e-7
    net = mlp(width=24)
    x, y = data_mlp(n=64)
    ref = float(torch.linalg.eigvalsh(reference_hessian(net, F.cross_entropy, x, y))[-1])
    net32 = net.float()
    tol = default_tol(torch.float32)
    assert tol == 1e-5 and default_tol(torch.float64) == 1e-10
    for method in ("lanczos", "power", "eigsh"):
        r = sharpness(net32, F.cross_entropy, (x.float(), y), method=method)
        assert r.converged, method
        assert abs(r.value - ref) <= tol * abs(ref), (method, r.value, ref)
        assert r.n_hvp < 1000, (method, r.n_hvp)
    with pytest.raises(ValueError, match="tol: 1e-10 is below the torch.float32 machine epsilon"):
        sharpness(net32, F.cross_entropy, (x.float(), y), tol=1e-10)


def test_converged_means_the_residual_is_within_tol():
    net = mlp()
    x, y = data_mlp()
    r = sharpness(net, F.cross_entropy, (x, y), max_iter=3)  # too few steps to converge
    assert not r.converged and r.residual > 1e-10 * abs(r.value)
    r = sharpness(net, F.cross_entropy, (x, y))
    assert r.converged and r.residual <= 1e-10 * abs(r.value) and r.vector.shape == (sum(p.numel() for p in net.parameters()),)


@pytest.mark.parametrize("method", ["lanczos", "power", "eigsh", "dense"])
def test_multihead_attention_works_in_every_method(method):
    # before: the fused CPU attention kernel has no double backward: every method failed
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.att = nn.MultiheadAttention(4, 2, batch_first=True)
            self.out = nn.Linear(4, 2)

        def forward(self, x):
            return self.out(self.att(x, x, x, need_weights=False)[0].mean(1))

    torch.manual_seed(0)
    net = Block().double().eval()
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(6, 5, 4, generator=g, dtype=DT), torch.randint(0, 2, (6,), generator=g)
    ref = float(torch.linalg.eigvalsh(reference_hessian(net, F.cross_entropy, x, y))[-1])
    r = sharpness(net, F.cross_entropy, (x, y), method=method)
    assert r.converged and abs(r.value - ref) <= 1e-8 * abs(ref)


def test_dense_hessian_too_large_is_an_error_before_allocating():
    net = nn.Linear(2000, 1000, bias=False).double()  # P = 2e6: 3 * 8 * 4e12 bytes
    x, y = torch.randn(2, 2000, dtype=DT), torch.randn(2, 1000, dtype=DT)
    with pytest.raises(ValueError, match=r"method: a dense Hessian of 2000000 parameters needs about .* GiB"):
        sharpness(net, F.mse_loss, (x, y), method="dense")


def test_batchnorm_in_train_mode_leaves_running_stats_untouched():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)).double()
    x, y = data_mlp()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    s = sharpness(net, F.cross_entropy, (x, y))
    ref = float(torch.linalg.eigvalsh(reference_hessian(net, F.cross_entropy, x, y))[-1])
    assert abs(s.value - ref) <= 1e-8 * abs(ref)
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_argument_errors_name_the_argument():
    net = mlp()
    x, y = data_mlp()
    cases = [
        (lambda: sharpness(net, F.cross_entropy, (x, y), method="arnoldi"), "method"),
        (lambda: sharpness(net, F.cross_entropy, (x, y), tol=0.0), "tol"),
        (lambda: hessian_eigs(net, F.cross_entropy, (x, y), k=0), "k"),
        (lambda: hessian_eigs(net, F.cross_entropy, (x, y), which="LR"), "which"),
        (lambda: hessian_eigs(nn.Linear(1, 1).double(), F.mse_loss, (x[:, :1], x[:, :1]), k=2), "k"),
        (lambda: hessian_trace(net, F.cross_entropy, (x, y), n_samples=1), "n_samples"),
        (lambda: sharpness("net", F.cross_entropy, (x, y)), "model"),
        (lambda: sharpness(net, None, (x, y)), "loss_fn"),
        (lambda: sharpness(net, F.cross_entropy, 3), "data"),
        (lambda: sharpness(net, lambda o, t: o.sum(0), (x, y)), "loss_fn"),
    ]
    for fn, name in cases:
        with pytest.raises(ValueError, match=rf"^{name}: "):
            fn()


def test_two_argument_form_and_package_export():
    net = mlp()
    x, y = data_mlp()
    a = lrtheory.sharpness(net, F.cross_entropy, x, y)
    b = sharpness(net, F.cross_entropy, (x, y))
    assert a.value == b.value


# ------------------------------------------------------------------ Gauss-Newton
def test_gauss_newton_operator_matches_explicit_jacobian():
    net = mlp(width=6)
    x, y = data_mlp(n=10)
    names = [n for n, _ in net.named_parameters()]
    ps = [p.detach() for p in net.parameters()]
    shapes, sizes = [p.shape for p in ps], [p.numel() for p in ps]

    def f(flat):
        return torch.func.functional_call(net, {n: c.view(s) for n, c, s in zip(names, torch.split(flat, sizes), shapes)},
                                          (x,)).reshape(-1)

    flat = torch.cat([p.reshape(-1) for p in ps])
    J = torch.func.jacrev(f)(flat)
    out = f(flat).detach()
    Hout = torch.func.jacrev(torch.func.grad(lambda o: F.cross_entropy(o.view(10, 3), y)))(out)
    G_ref = J.T @ Hout @ J
    G = GaussNewtonOperator(net, F.cross_entropy, (x, y)).dense()
    torch.testing.assert_close(G, G_ref, rtol=1e-10, atol=1e-12)
    G_dl = GaussNewtonOperator(net, F.cross_entropy, loader(x, y, 4)).dense()
    torch.testing.assert_close(G_dl, G_ref, rtol=1e-10, atol=1e-12)
    # the GN matrix is PSD and its top eigenvalue comes from the same algorithms
    r = hessian_eigs(None, None, None, k=2, operator=GaussNewtonOperator(net, F.cross_entropy, (x, y)))
    np.testing.assert_allclose(r.values, torch.linalg.eigvalsh(G_ref).numpy()[::-1][:2], rtol=1e-8)


def test_hessian_operator_counts_products_and_checks_vectors():
    net = mlp()
    x, y = data_mlp()
    H = HessianOperator(net, F.cross_entropy, (x, y))
    v = torch.randn(H.size, dtype=DT)
    w = H.matvec(v)
    assert H.n_matvec == 1 and w.shape == v.shape
    assert [t.shape for t in H.unflatten(w)] == [p.shape for p in net.parameters()]
    assert math.isclose(H.loss(), float(F.cross_entropy(net(x), y).detach()), rel_tol=1e-12)
    with pytest.raises(ValueError, match="^v: "):
        H.matvec(torch.ones(3, dtype=DT))


def test_transformer_layer_dropout_is_caught_and_eval_mode_works():
    torch.manual_seed(0)

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.TransformerEncoderLayer(d_model=4, nhead=2, dim_feedforward=8, dropout=0.1, batch_first=True)
            self.out = nn.Linear(4, 2)

        def forward(self, x):
            return self.out(self.enc(x).mean(1))

    net = Tiny().double()
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(5, 3, 4, generator=g, dtype=DT), torch.randint(0, 2, (5,), generator=g)
    with pytest.raises(ValueError, match=r"module 'enc\.(self_attn|dropout\w*)' is in training mode.*model\.eval"):
        sharpness(net, F.cross_entropy, (x, y))
    net.eval()
    ref = float(torch.linalg.eigvalsh(reference_hessian(net, F.cross_entropy, x, y))[-1])
    r = sharpness(net, F.cross_entropy, (x, y))
    assert r.converged and abs(r.value - ref) <= 1e-8 * abs(ref)
    net.train()
    net.enc.dropout.p = net.enc.dropout1.p = net.enc.dropout2.p = 0.0
    with pytest.raises(ValueError, match=r"MultiheadAttention module 'enc.self_attn'"):  # its own dropout
        sharpness(net, F.cross_entropy, (x, y))
    net.enc.self_attn.dropout = 0.0  # no randomness left: training mode is fine
    assert abs(sharpness(net, F.cross_entropy, (x, y)).value - ref) <= 1e-8 * abs(ref)


def test_density_plot_draws_on_given_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    net = mlp(width=4)
    x, y = data_mlp(n=16)
    d = hessian_density(net, F.cross_entropy, (x, y), n_probes=2, steps=10, n_points=50)
    fig, ax = plt.subplots()
    assert d.plot(ax) is ax and len(ax.lines) == 1 and ax.get_yscale() == "log"
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), d.grid)
    plt.close(fig)
