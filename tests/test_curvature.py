"""Tests of lrtheory.core.curvature, lanczos and ntk against independent references (dense autograd
Hessians, explicit Jacobians, numpy eigvalsh).

The user-facing ``sharpness`` lives in lrtheory.tools.hessian (tests/test_hessian.py); here the same
checks run on the core pieces it is built from: ``module_hvp`` fed to Lanczos, power iteration and
ARPACK, and ``dense_hessian``."""
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from types import SimpleNamespace

from lrtheory.core.curvature import (
    batched_sharpness,
    dense_hessian,
    gauss_newton_top_eig,
    hvp,
    lanczos_top_eig,
    module_hvp,
    ntk_top_eig,
    power_iteration_top_eig,
)
from lrtheory.core.lanczos import eigsh_top_eig
from lrtheory.core.mlp import MLPSpec, forward, init_params, select_models, to_module

DT = torch.float64
# The bar: 1e-6 relative in float64. Lanczos/eigsh are run at tol 1e-10, so the
# observed error is ~1e-12; 1e-6 is the contract, not the typical accuracy.
REL = 1e-6


def half_mse(out, target):
    return 0.5 * ((out - target) ** 2).sum(-1).mean()


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.fc = nn.Linear(3 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(torch.tanh(self.conv(x)).flatten(1))


def _cases():
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 2)).double()
    tanh = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).double()
    cnn = SmallCNN().double()
    x4, x3 = torch.randn(20, 4, generator=g, dtype=DT), torch.randn(20, 3, generator=g, dtype=DT)
    ximg = torch.randn(12, 1, 6, 6, generator=g, dtype=DT)
    return {
        "mlp_bias_mse": (mlp, half_mse, x4, torch.randn(20, 2, generator=g, dtype=DT)),
        "mlp_bias_ce": (mlp, F.cross_entropy, x4, torch.randint(0, 2, (20,), generator=g)),
        "tanh_mse": (tanh, F.mse_loss, x3, torch.randn(20, 2, generator=g, dtype=DT)),
        "cnn_ce": (cnn, F.cross_entropy, ximg, torch.randint(0, 3, (12,), generator=g)),
        "cnn_mse": (cnn, half_mse, ximg, torch.randn(12, 3, generator=g, dtype=DT)),
    }


def _reference_top_eig(model, loss_fn, x, y):
    """Dense Hessian with torch.autograd.functional.hessian over the flat parameter vector, then eigvalsh."""
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    sizes = [p.numel() for _, p in model.named_parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def f(theta):
        ps = [c.view(s) for c, s in zip(torch.split(theta, sizes), shapes)]
        return loss_fn(torch.func.functional_call(model, dict(zip(names, ps)), (x,)), y)

    H = torch.autograd.functional.hessian(f, flat)
    return torch.linalg.eigvalsh(H), H


CASES = _cases()


def sharpness(model, loss_fn, x, y, *, method="lanczos", tol=1e-10, max_iter=None, seed=0):
    """Top algebraic Hessian eigenvalue from the core pieces (what lrtheory.tools.hessian.sharpness
    does for one batch): module_hvp fed to an algorithm, or the dense Hessian."""
    if method == "dense":
        H = dense_hessian(model, loss_fn, x, y)
        ev = torch.linalg.eigvalsh(H)
        return SimpleNamespace(value=float(ev[-1]), n_hvp=H.shape[0], method="dense",
                               converged=bool(torch.isfinite(ev[-1])))
    op = module_hvp(model, loss_fn, x, y)
    v0 = torch.randn(op.n, generator=torch.Generator().manual_seed(seed), dtype=DT).to(op.dtype)
    fn = {"lanczos": lanczos_top_eig, "power": power_iteration_top_eig, "eigsh": eigsh_top_eig}[method]
    default = {"lanczos": 300, "power": 5000, "eigsh": None}[method]
    r = fn(op.matvec, v0, tol=tol, max_iter=max_iter or default)
    assert op.count == r.n_matvec  # the operator counts what the algorithm reports
    return SimpleNamespace(value=r.value, n_hvp=r.n_matvec, method=method, converged=r.converged)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("method", ["lanczos", "eigsh", "dense", "power"])
def test_sharpness_matches_dense_hessian(case, method):
    model, loss_fn, x, y = CASES[case]
    ev, _ = _reference_top_eig(model, loss_fn, x, y)
    res = sharpness(model, loss_fn, x, y, method=method, tol=1e-10)
    assert res.converged and res.method == method
    assert abs(res.value - ev[-1].item()) <= REL * abs(ev[-1].item())
    if method in ("lanczos", "eigsh", "power"):
        assert res.n_hvp > 0


def test_lanczos_needs_far_fewer_hvps_than_power():
    """Same models, same stopping rule (Ritz residual <= 1e-10 |theta|). Power iteration needs
    (lambda2/lambda1)^k ~ tol, Lanczos a Krylov space of a few tens. Measured here: 112 vs 526 HVPs
    over the five models; we require >= 3x in total and no model where Lanczos needs more."""
    n_lz = n_pw = 0
    for case in sorted(CASES):
        model, loss_fn, x, y = CASES[case]
        lz = sharpness(model, loss_fn, x, y, method="lanczos", tol=1e-10)
        pw = sharpness(model, loss_fn, x, y, method="power", tol=1e-10, max_iter=20000)
        assert lz.converged and pw.converged
        assert lz.n_hvp <= pw.n_hvp, (case, lz.n_hvp, pw.n_hvp)
        n_lz, n_pw = n_lz + lz.n_hvp, n_pw + pw.n_hvp
    assert n_pw >= 3 * n_lz, (n_lz, n_pw)


def test_lanczos_vs_power_small_gap():
    """A spectrum with lambda2/lambda1 = 0.99: power iteration needs thousands of products, Lanczos < 100."""
    n = 200
    d = torch.cat([torch.tensor([1.0, 0.99], dtype=DT), torch.linspace(-0.5, 0.9, n - 2, dtype=DT)])
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(0), dtype=DT))
    A = Q @ torch.diag(d) @ Q.T
    v0 = torch.randn(n, generator=torch.Generator().manual_seed(1), dtype=DT)
    lz = lanczos_top_eig(lambda v: A @ v, v0, tol=1e-10)
    pw = power_iteration_top_eig(lambda v: A @ v, v0, tol=1e-10, max_iter=20000)
    assert lz.value == pytest.approx(1.0, rel=1e-10) and pw.value == pytest.approx(1.0, rel=1e-9)
    assert lz.n_matvec < 100 and pw.n_matvec >= 10 * lz.n_matvec, (lz.n_matvec, pw.n_matvec)


def test_top_algebraic_not_largest_magnitude():
    """Hessian diag(1, 0.5, -5): the sharpness is 1, while plain power iteration (PyHessian) returns -5."""

    class Quad(nn.Module):
        def __init__(self):
            super().__init__()
            self.theta = nn.Parameter(torch.tensor([0.3, -0.2, 0.1], dtype=DT))

        def forward(self, x):
            return self.theta

    d = torch.tensor([1.0, 0.5, -5.0], dtype=DT)
    loss = lambda out, _: 0.5 * (d * out**2).sum()  # noqa: E731
    for method in ("lanczos", "eigsh", "dense", "power"):
        assert sharpness(Quad(), loss, torch.zeros(1), None, method=method).value == pytest.approx(1.0, rel=1e-9)
    A = torch.diag(d)
    plain = power_iteration_top_eig(lambda v: A @ v, torch.ones(3, dtype=DT), algebraic=False)
    assert plain.value == pytest.approx(-5.0, rel=1e-9)


def test_lanczos_batched_random_matrices():
    """K random symmetric matrices with a spread spectrum, one Krylov space each, vs numpy eigvalsh."""
    g = torch.Generator().manual_seed(1)
    K, n = 4, 60
    B = torch.randn(K, n, n, generator=g, dtype=DT)
    A = (B + B.transpose(1, 2)) / 2
    res = lanczos_top_eig(lambda V: torch.einsum("kij,kj->ki", A, V), torch.randn(K, n, generator=g, dtype=DT),
                          tol=1e-10, max_iter=n)
    ref = np.linalg.eigvalsh(A.numpy())[:, -1]
    np.testing.assert_allclose(res.value, ref, rtol=1e-9)
    assert res.converged.all()
    # Ritz vectors are unit eigenvectors: ||A v - lambda v|| small
    r = torch.einsum("kij,kj->ki", A, res.vector) - torch.as_tensor(res.value)[:, None] * res.vector
    assert r.norm(dim=1).max() < 1e-6


def test_hvp_matches_dense_hessian():
    model, loss_fn, x, y = CASES["tanh_mse"]
    _, H = _reference_top_eig(model, loss_fn, x, y)
    names = [n for n, _ in model.named_parameters()]
    params = tuple(p.detach() for p in model.parameters())
    v = tuple(torch.randn_like(p) for p in params)
    Hv = hvp(lambda ps: loss_fn(torch.func.functional_call(model, dict(zip(names, ps)), (x,)), y), params, v)
    torch.testing.assert_close(torch.cat([h.reshape(-1) for h in Hv]),
                               H @ torch.cat([t.reshape(-1) for t in v]), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(dense_hessian(model, loss_fn, x, y), H, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("loss", ["mse", "ce"])
def test_batched_sharpness_equals_solo_eigsh(loss):
    spec = MLPSpec(5, 10, 2, 3, bias=True, parametrization="ntk")
    P = init_params(spec, 3, seed=4)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(16, 5, generator=g, dtype=DT)
    y = torch.randn(16, 3, generator=g, dtype=DT) if loss == "mse" else torch.randint(0, 3, (16,), generator=g)
    lf = half_mse if loss == "mse" else F.cross_entropy
    info = batched_sharpness(spec, P, x, y, loss=loss, return_info=True)
    assert info.converged.all()
    for k in range(3):
        ref = sharpness(to_module(spec, P, k), lf, x, y, method="eigsh").value
        assert info.values[k] == pytest.approx(ref, rel=1e-8)
    # a model with non-finite parameters yields NaN for itself only
    P[0][1, 0, 0] = float("nan")
    vals = batched_sharpness(spec, P, x, y, loss=loss)
    assert np.isnan(vals[1]) and np.isfinite(vals[[0, 2]]).all()
    np.testing.assert_allclose(vals[[0, 2]], info.values[[0, 2]], rtol=1e-8)


def _explicit_jacobian(spec, P, k, x):
    mod = to_module(spec, P, k)
    names = [n for n, _ in mod.named_parameters()]
    params = tuple(p.detach() for p in mod.parameters())
    J = torch.autograd.functional.jacobian(
        lambda *ps: torch.func.functional_call(mod, dict(zip(names, ps)), (x,)).reshape(-1), params)
    return torch.cat([j.reshape(j.shape[0], -1) for j in J], dim=1)


def test_ntk_top_eig_equals_gauss_newton_for_half_mse():
    """lambda_max(J J^T / N) == lambda_max(J^T H_out J) with H_out = I/N for the 1/2-mean MSE, and both equal
    the explicit-Jacobian reference; the GN top eigenvalue also equals the top eigenvalue of the
    Hessian of the loss at a zero-residual point (where the Hessian is exactly GN)."""
    spec = MLPSpec(4, 12, 2, 2, bias=True)
    P = init_params(spec, 3, seed=5)
    x = torch.randn(10, 4, generator=torch.Generator().manual_seed(3), dtype=DT)
    dense = ntk_top_eig(spec, P, x, method="dense")
    lz = ntk_top_eig(spec, P, x, method="lanczos")
    gn = gauss_newton_top_eig(spec, P, x, loss="mse")
    np.testing.assert_allclose(lz, dense, rtol=1e-9)
    np.testing.assert_allclose(gn, dense, rtol=1e-9)
    for k in range(3):
        J = _explicit_jacobian(spec, P, k, x)
        ref = torch.linalg.eigvalsh(J @ J.T / x.shape[0])[-1].item()
        assert dense[k] == pytest.approx(ref, rel=1e-10)
    np.testing.assert_allclose(ntk_top_eig(spec, P, x, normalize="none"), dense * x.shape[0], rtol=1e-9)
    # zero residual: targets = outputs -> Hessian of the 1/2 MSE equals GN
    y = forward(spec, P, x)[0].detach()
    h = batched_sharpness(spec, select_models(P, 0), x, y, loss="mse")
    assert h[0] == pytest.approx(gn[0], rel=1e-8)
    # a non-finite model gives NaN for itself only, by every route
    P[0][1, 0, 0] = float("inf")
    for vals in (ntk_top_eig(spec, P, x, method="dense"), ntk_top_eig(spec, P, x, method="lanczos"),
                 gauss_newton_top_eig(spec, P, x)):
        assert np.isnan(vals[1])
        np.testing.assert_allclose(vals[[0, 2]], dense[[0, 2]], rtol=1e-9)


def test_gauss_newton_ce_matches_explicit():
    spec = MLPSpec(3, 8, 1, 3)
    P = init_params(spec, 2, seed=6)
    x = torch.randn(9, 3, generator=torch.Generator().manual_seed(4), dtype=DT)
    gn = gauss_newton_top_eig(spec, P, x, loss="ce")
    out = forward(spec, P, x)
    N = x.shape[0]
    for k in range(2):
        J = _explicit_jacobian(spec, P, k, x).reshape(N, 3, -1)
        p = torch.softmax(out[k], -1)
        Hout = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
        G = torch.einsum("nap,nab,nbq->pq", J, Hout, J) / N
        assert gn[k] == pytest.approx(torch.linalg.eigvalsh(G)[-1].item(), rel=1e-8)


def test_curvature_validation():
    model, loss_fn, x, y = CASES["tanh_mse"]
    with pytest.raises(ValueError, match="method"):
        ntk_top_eig(model, x, method="hutchinson")
    with pytest.raises(ValueError, match="tol"):
        lanczos_top_eig(module_hvp(model, loss_fn, x, y).matvec, 5, tol=0.0)
    with pytest.raises(ValueError, match="tol"):
        eigsh_top_eig(lambda v: v, 5, tol=0.0)
    with pytest.raises(ValueError, match="model"):
        module_hvp(lambda t: t, loss_fn, x, y)
    with pytest.raises(ValueError, match="model"):
        dense_hessian(lambda t: t, loss_fn, x, y)
    with pytest.raises(ValueError, match="loss_fn"):
        module_hvp(model, lambda out, t: out, x, y)
    spec = MLPSpec(3, 4, 1, 2)
    P = init_params(spec, 2)
    with pytest.raises(ValueError, match="x"):
        batched_sharpness(spec, P, torch.zeros(5, 2, dtype=DT), torch.zeros(5, 2, dtype=DT))
    with pytest.raises(ValueError, match="y"):
        batched_sharpness(spec, P, torch.zeros(5, 3, dtype=DT), torch.zeros(4, 2, dtype=DT))
    with pytest.raises(ValueError, match="y: MSE"):
        batched_sharpness(spec, P, torch.zeros(5, 3, dtype=DT), torch.zeros(5, 3, dtype=DT))
    with pytest.raises(ValueError, match="y: CE"):
        batched_sharpness(spec, P, torch.zeros(5, 3, dtype=DT), torch.zeros(5, dtype=DT), loss="ce")
    with pytest.raises(ValueError, match="y: CE"):
        batched_sharpness(spec, P, torch.zeros(5, 3, dtype=DT), torch.zeros(5, 1, dtype=torch.int64), loss="ce")
    with pytest.raises(ValueError, match="loss"):
        batched_sharpness(spec, P, torch.zeros(5, 3, dtype=DT), torch.zeros(5, 2, dtype=DT), loss="hinge")
    with pytest.raises(ValueError, match="normalize"):
        ntk_top_eig(spec, P, torch.zeros(5, 3, dtype=DT), normalize="trace")
    with pytest.raises(ValueError, match="v0"):
        lanczos_top_eig(lambda v: v, 0)


# ----------------------------------------------------------------------------- ntk_top_eig: one entry point
# The references below build the Jacobian explicitly (torch.autograd.functional.jacobian of the full batch)
# and take numpy/torch eigvalsh of J diag(c) J^T / m: independent of ntk_top_eig's per-example vmap(jacrev)
# and of its JVP/VJP Lanczos. Dense vs reference: round-off only (1e-10 relative); Lanczos at tol 1e-10
# (1e-8 relative).


def _module_jacobian(mod, x):
    names = [n for n, p in mod.named_parameters() if p.requires_grad]
    params = tuple(p.detach() for n, p in mod.named_parameters() if p.requires_grad)
    J = torch.autograd.functional.jacobian(
        lambda *ps: torch.func.functional_call(mod, dict(zip(names, ps)), (x,)).reshape(-1), params)
    return [j.reshape(j.shape[0], -1) for j in J]


def _ref_top(blocks, weights, m):
    J = torch.cat([b * float(np.sqrt(c)) for b, c in zip(blocks, weights)], dim=1)
    return torch.linalg.eigvalsh(J @ J.T / m)[-1].item()


@pytest.mark.parametrize("case", ["mlp_bias_mse", "tanh_mse", "cnn_mse"])
def test_ntk_module_matches_explicit_jacobian(case):
    model, _, x, _ = CASES[case]
    blocks = _module_jacobian(model, x)
    m = x.shape[0]
    ref = _ref_top(blocks, [1.0] * len(blocks), m)
    assert ntk_top_eig(model, x, method="dense") == pytest.approx(ref, rel=1e-10)
    assert ntk_top_eig(model, x, method="lanczos") == pytest.approx(ref, rel=1e-8)
    assert ntk_top_eig(model, x) == pytest.approx(ref, rel=1e-10)  # auto: dense at this size
    assert ntk_top_eig(model, x, normalize="none") == pytest.approx(ref * m, rel=1e-10)
    # per-tensor LR weights: the kernel J diag(c) J^T of GD with per-layer learning rates
    names = [n for n, _ in model.named_parameters()]
    c = [0.5 + i for i in range(len(names))]
    ref_w = _ref_top(blocks, c, m)
    assert ntk_top_eig(model, x, lr_weights=c, method="dense") == pytest.approx(ref_w, rel=1e-10)
    assert ntk_top_eig(model, x, lr_weights=c, method="lanczos") == pytest.approx(ref_w, rel=1e-8)
    assert ntk_top_eig(model, x, lr_weights=dict(zip(names, c))) == pytest.approx(ref_w, rel=1e-10)
    # a dict may omit names (weight 1); a zero weight drops a tensor from the kernel
    only_first = {names[0]: 1.0, **{n: 0.0 for n in names[1:]}}
    assert ntk_top_eig(model, x, lr_weights=only_first) == pytest.approx(_ref_top(blocks[:1], [1.0], m), rel=1e-10)
    assert ntk_top_eig(model, x, lr_weights={names[0]: 1.0}) == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("parametrization", ["ntk", "mup"])
def test_ntk_spec_lr_weights_match_explicit_jacobian(parametrization):
    spec = MLPSpec(4, 12, 2, 2, bias=True, parametrization=parametrization, input_lr_mult=0.5)
    P = init_params(spec, 3, seed=7)
    x = torch.randn(9, 4, generator=torch.Generator().manual_seed(8), dtype=DT)
    from lrtheory.core.mlp import lr_multipliers

    c = lr_multipliers(spec)
    assert len(set(c)) > 1 or parametrization == "ntk"  # mup: the multipliers are not all equal
    spec_w = ntk_top_eig(spec, P, x, lr_weights="spec")
    np.testing.assert_allclose(ntk_top_eig(spec, P, x, lr_weights=c, method="lanczos"), spec_w, rtol=1e-8)
    for k in range(3):
        blocks = _module_jacobian(to_module(spec, P, k), x)
        assert spec_w[k] == pytest.approx(_ref_top(blocks, c, x.shape[0]), rel=1e-10)
        # the module form with the same weights gives the same kernel
        assert ntk_top_eig(to_module(spec, P, k), x, lr_weights=c) == pytest.approx(spec_w[k], rel=1e-10)


def test_ntk_spec_weights_equal_the_layerwise_kernel():
    """The layer-wise NTK formula of chapter 02 (scalar output, no bias, no norm):
    Theta(x, x') = sum_l c_l m_l^2 (delta_l(x).delta_l(x')) (h_{l-1}(x).h_{l-1}(x')), computed here from
    back-propagated deltas: an independent route to lambda_max(J diag(c) J^T / N)."""
    from lrtheory.core.mlp import forward_multipliers, lr_multipliers, param_layers

    spec = MLPSpec(5, 16, 3, 1, parametrization="mup")
    P = init_params(spec, 2, seed=9)
    x = torch.randn(11, 5, generator=torch.Generator().manual_seed(10), dtype=DT)
    ps = [p.detach().clone().requires_grad_(True) for p in P]
    out, pre = forward(spec, ps, x, return_preacts=True)
    deltas = torch.autograd.grad(out.sum(), pre)
    mults, lrm, layer_of = forward_multipliers(spec), lr_multipliers(spec), param_layers(spec)
    c = {layer_of[i]: lrm[i] for i in range(len(ps))}
    K, N = 2, x.shape[0]
    theta = torch.zeros(K, N, N, dtype=DT)
    for l in range(spec.n_layers):
        h = x.unsqueeze(0).expand(K, N, 5) if l == 0 else torch.relu(pre[l - 1]).detach()
        dd = (torch.bmm(deltas[l], deltas[l].transpose(1, 2)) if l < spec.depth else torch.ones(K, N, N, dtype=DT))
        theta += c[l] * mults[l] ** 2 * dd.detach() * torch.bmm(h, h.transpose(1, 2))
    ref = torch.linalg.eigvalsh(theta / N)[:, -1].numpy()
    np.testing.assert_allclose(ntk_top_eig(spec, P, x, lr_weights="spec"), ref, rtol=1e-10)


def test_ntk_nonfinite_and_validation():
    spec = MLPSpec(3, 4, 1, 1)
    P = init_params(spec, 2)
    x = torch.randn(5, 3, dtype=DT)
    mod = to_module(spec, P, 0)
    bad = to_module(spec, P, 1)
    with torch.no_grad():
        bad.linears[0].weight[0, 0] = float("nan")
    assert np.isnan(ntk_top_eig(bad, x, method="dense")) and np.isnan(ntk_top_eig(bad, x, method="lanczos"))
    for kwargs, match in [(dict(lr_weights=[1.0]), "lr_weights"), (dict(lr_weights=[1.0, -1.0]), "lr_weights"),
                          (dict(lr_weights={"nope": 1.0}), "lr_weights"), (dict(lr_weights="spec"), "lr_weights"),
                          (dict(normalize="trace"), "normalize"), (dict(max_iter=0), "max_iter")]:
        with pytest.raises(ValueError, match=match):
            ntk_top_eig(mod, x, **kwargs)
    with pytest.raises(ValueError, match="lr_weights"):
        ntk_top_eig(spec, P, x, lr_weights={"W0": 1.0})
    with pytest.raises(ValueError, match="x"):
        ntk_top_eig(spec, P)
    with pytest.raises(ValueError, match="x"):
        ntk_top_eig(mod, x, x)
    with pytest.raises(ValueError, match="inputs"):
        ntk_top_eig(mod, torch.zeros(0, 3, dtype=DT))
    with pytest.raises(ValueError, match="model"):
        ntk_top_eig("mlp", x)
    frozen = to_module(spec, P, 0).requires_grad_(False)
    with pytest.raises(ValueError, match="model"):
        ntk_top_eig(frozen, x)


# ----------------------------------------------------------------------------- documented Krylov contracts
def _rotated(d, seed=0):
    n = d.numel()
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=DT))
    return Q @ torch.diag(d) @ Q.T, Q


def test_lanczos_reorthogonalization_with_a_converged_outlier():
    """A far negative outlier converges in a few steps while the top eigenvalue (gap 1%) needs ~50:
    without reorthogonalization the basis loses orthogonality against the outlier's eigenvector, ghost
    copies appear, and Lanczos needs more products (66-74 measured) and returns a Ritz vector whose norm is
    off by 1e-11..1e-10 and a value off by up to 6e-12. With full reorthogonalization the outlier changes
    nothing: the same product count as without it (54/55 measured; +-2 allowed), a unit Ritz vector to 1e-13
    (measured <= 5e-16), the value to 1e-10 (round-off is eps ||A|| ~ 2e-11 with the 1e5 outlier; measured
    <= 1e-13). A single reorthogonalization pass is as good here (round-off level): not distinguished."""
    n = 400
    rest = torch.linspace(-0.5, 0.9, n - 3, dtype=DT)
    v0 = torch.randn(n, generator=torch.Generator().manual_seed(1), dtype=DT)
    counts = {}
    for out in (0.0, -1e3, -1e5):
        A, Q = _rotated(torch.cat([torch.tensor([1.0, 0.99, out], dtype=DT), rest]))
        r = lanczos_top_eig(lambda v: A @ v, v0, tol=1e-10, max_iter=n)
        assert r.converged and abs(r.value - 1.0) <= 1e-10
        assert abs(r.vector.norm().item() - 1.0) <= 1e-13  # orthonormal basis -> unit Ritz vector
        assert abs(abs(Q[:, 0] @ r.vector).item() - 1.0) <= 1e-12  # it is the top eigenvector
        assert (A @ r.vector - r.value * r.vector).norm().item() <= 1e-9
        counts[out] = r.n_matvec
    assert max(counts.values()) - min(counts.values()) <= 2, counts


def test_lanczos_matvec_count_one_outlier_and_exact_at_n():
    """A spectrum with one outlier at 100 above [0, 1]: the outlier is found in a handful of products (6
    measured, at most 10 allowed), far fewer than power iteration. A Krylov space of dimension n is exact:
    max_iter >= n stops at n products with the exact value."""
    n = 300
    A, _ = _rotated(torch.cat([torch.tensor([100.0], dtype=DT), torch.linspace(0, 1, n - 1, dtype=DT)]))
    v0 = torch.randn(n, generator=torch.Generator().manual_seed(2), dtype=DT)
    r = lanczos_top_eig(lambda v: A @ v, v0, tol=1e-10)
    assert r.converged and r.value == pytest.approx(100.0, rel=1e-12) and r.n_matvec <= 10
    pw = power_iteration_top_eig(lambda v: A @ v, v0, tol=1e-10)
    assert pw.n_matvec > r.n_matvec
    small = torch.diag(torch.tensor([2.0, 1.0, 1.0 - 1e-9, -3.0], dtype=DT))
    e = lanczos_top_eig(lambda v: small @ v, torch.ones(4, dtype=DT), tol=1e-300, max_iter=50)
    assert e.n_matvec <= 4 and e.value == pytest.approx(2.0, rel=1e-14)


def test_lanczos_batched_rows_are_independent_and_unit():
    """K operators in lock step: each row's value and Ritz vector equal its solo run; a non-finite row
    gives NaN for itself only."""
    g = torch.Generator().manual_seed(5)
    K, n = 3, 40
    B = torch.randn(K, n, n, generator=g, dtype=DT)
    A = (B + B.transpose(1, 2)) / 2
    A[1, 0, 0] = float("nan")
    V0 = torch.randn(K, n, generator=g, dtype=DT)
    r = lanczos_top_eig(lambda V: torch.einsum("kij,kj->ki", A, V), V0, tol=1e-10, max_iter=n)
    assert np.isnan(r.value[1]) and not r.converged[1] and r.converged[[0, 2]].all()
    for k in (0, 2):
        solo = lanczos_top_eig(lambda v: A[k] @ v, V0[k], tol=1e-10, max_iter=n)
        assert r.value[k] == pytest.approx(solo.value, rel=1e-10)
        assert abs(r.vector[k].norm().item() - 1.0) <= 1e-12


def test_power_negative_shift_all_negative_spectrum():
    """Every eigenvalue negative: the dominant one (-10) is the most negative; the shifted rerun on
    A + 10 I = diag(9, 8, 0) finds 9, and the shift back gives the top algebraic -1 (not -10, not 9, not 19)."""
    A = torch.diag(torch.tensor([-1.0, -2.0, -10.0], dtype=DT))
    v0 = torch.ones(3, dtype=DT)
    plain = power_iteration_top_eig(lambda v: A @ v, v0, algebraic=False)
    fixed = power_iteration_top_eig(lambda v: A @ v, v0)
    assert plain.value == pytest.approx(-10.0, rel=1e-9)
    assert fixed.value == pytest.approx(-1.0, rel=1e-8) and fixed.converged
    assert abs(abs(fixed.vector[0].item()) - 1.0) < 1e-6  # the eigenvector of -1
    # the count covers both phases: the plain run, then the run on the shifted operator
    shifted = power_iteration_top_eig(lambda v: A @ v - plain.value * v, v0, algebraic=False)
    assert shifted.value == pytest.approx(9.0, rel=1e-8)
    assert fixed.n_matvec == plain.n_matvec + shifted.n_matvec


def test_power_negative_shift_only_where_needed_batched():
    """Batched rows: row 0 has a positive dominant eigenvalue (no shift), row 1 a negative one (shifted),
    row 2 a negative dominant and a positive top; each row gets its own top algebraic eigenvalue, and the
    unshifted row is identical to its plain run."""
    D = torch.tensor([[5.0, 1.0, -2.0], [0.5, -1.0, -6.0], [2.0, 0.1, -7.0]], dtype=DT)
    V0 = torch.tensor([[1.0, 0.7, 0.3], [0.2, 1.0, 0.9], [0.6, 0.5, 1.0]], dtype=DT)
    mv = lambda V: D * V  # noqa: E731 - three diagonal operators
    r = power_iteration_top_eig(mv, V0, tol=1e-12, max_iter=5000)
    np.testing.assert_allclose(r.value, [5.0, 0.5, 2.0], rtol=1e-9)
    assert r.converged.all()
    plain = power_iteration_top_eig(mv, V0, tol=1e-12, max_iter=5000, algebraic=False)
    np.testing.assert_allclose(plain.value, [5.0, -6.0, -7.0], rtol=1e-9)
    assert r.value[0] == plain.value[0]
    # each row as a solo operator gives the same answer
    for k in range(3):
        solo = power_iteration_top_eig(lambda v: D[k] * v, V0[k], tol=1e-12, max_iter=5000)
        assert solo.value == pytest.approx(r.value[k], rel=1e-9)


def test_eigsh_reference():
    A, _ = _rotated(torch.cat([torch.tensor([3.0, -7.0], dtype=DT), torch.linspace(-1, 1, 48, dtype=DT)]))
    r = eigsh_top_eig(lambda v: A @ v, 50, tol=1e-12)
    assert r.converged and r.value == pytest.approx(3.0, rel=1e-10) and r.n_matvec > 0
    assert (A @ r.vector - 3.0 * r.vector).norm().item() < 1e-8
    assert eigsh_top_eig(lambda v: 4.0 * v, 1).value == 4.0
    with pytest.raises(ValueError, match="v0"):
        eigsh_top_eig(lambda v: v, torch.ones(2, 3, dtype=DT))


# ----------------------------------------------------------------------------- module_hvp / batched_sharpness contracts
class _TwoInputs(nn.Module):
    """out = a @ W + b @ V, plus a parameter the loss never reads (its Hessian rows and columns are 0)."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(11)
        self.W = nn.Parameter(torch.randn(3, 2, generator=g, dtype=DT))
        self.V = nn.Parameter(torch.randn(2, 2, generator=g, dtype=DT))
        self.unused = nn.Parameter(torch.randn(4, generator=g, dtype=DT))

    def forward(self, a, b):
        return torch.tanh(a @ self.W + b @ self.V)


def test_module_hvp_tuple_inputs_and_an_unused_parameter():
    # a tuple of inputs is unpacked as positional arguments; a parameter the loss never reads has zero Hessian
    # rows/columns (autograd returns None for it, by both backward passes); reference: the dense Hessian of the
    # loss over the flat vector, computed here with torch.autograd.functional.hessian
    model = _TwoInputs()
    g = torch.Generator().manual_seed(12)
    a, b = torch.randn(7, 3, generator=g, dtype=DT), torch.randn(7, 2, generator=g, dtype=DT)
    y = torch.randn(7, 2, generator=g, dtype=DT)
    sizes, shapes = [6, 4, 4], [(3, 2), (2, 2), (4,)]

    def f(theta):
        W, V, _ = (c.view(s) for c, s in zip(torch.split(theta, sizes), shapes))
        return half_mse(torch.tanh(a @ W + b @ V), y)

    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    H = torch.autograd.functional.hessian(f, flat)
    assert (H[10:] == 0).all() and (H[:, 10:] == 0).all()
    op = module_hvp(model, half_mse, (a, b), y)
    v = torch.randn(14, generator=g, dtype=DT)
    torch.testing.assert_close(op.matvec(v), H @ v, rtol=1e-10, atol=1e-12)  # round-off
    torch.testing.assert_close(dense_hessian(model, half_mse, (a, b), y), H, rtol=1e-10, atol=1e-12)
    # a float32 vector is computed in the model's dtype (float64)
    out = op.matvec(v.float())
    assert out.dtype == DT
    torch.testing.assert_close(out, H @ v.float().double(), rtol=1e-10, atol=1e-12)
    assert op.count == 2 and op.n == 14 and op.dtype == DT


def test_module_hvp_of_a_loss_linear_in_every_parameter_is_zero():
    # loss = sum(x @ w): the gradient is constant, so the Hessian is exactly 0 (no second backward possible)
    model = nn.Linear(3, 1, bias=False).double()
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(13), dtype=DT)
    op = module_hvp(model, lambda out, t: out.sum(), x, None)
    v = torch.ones(3, dtype=DT)
    assert torch.equal(op.matvec(v), torch.zeros(3, dtype=DT))
    assert op.count == 1


def test_module_closure_error_messages():
    model, loss_fn, x, y = CASES["tanh_mse"]
    with pytest.raises(ValueError, match=r"^model: expected a torch.nn.Module, got int$"):
        module_hvp(5, loss_fn, x, y)
    with pytest.raises(ValueError, match=r"^loss_fn: expected a callable loss_fn\(outputs, targets\) -> scalar$"):
        module_hvp(model, "mse", x, y)
    frozen = nn.Linear(3, 2).double().requires_grad_(False)
    with pytest.raises(ValueError, match=r"^model: has no parameter with requires_grad=True$"):
        module_hvp(frozen, loss_fn, x, y)
    mixed = nn.Sequential(nn.Linear(3, 2).double(), nn.Linear(2, 2).float())
    with pytest.raises(ValueError, match=r"^model: parameters must share one dtype, got \['torch.float32', 'torch.float64'\]$"):
        dense_hessian(mixed, loss_fn, x, y)
    with pytest.raises(ValueError, match=r"^loss_fn: must return a scalar tensor$"):
        module_hvp(model, lambda out, t: out, x, y)
    spec = MLPSpec(3, 4, 1, 2)
    with pytest.raises(ValueError, match=r"^method: expected 'lanczos' or 'power', got 'dense'$"):
        batched_sharpness(spec, init_params(spec, 2), torch.zeros(5, 3, dtype=DT), torch.zeros(5, 2, dtype=DT),
                          method="dense")


def _small_batch():
    spec = MLPSpec(5, 20, 2, 3, bias=False, parametrization="ntk")
    P = init_params(spec, 2, seed=4)
    g = torch.Generator().manual_seed(2)
    return spec, P, torch.randn(16, 5, generator=g, dtype=DT), torch.randn(16, 3, generator=g, dtype=DT)


def test_batched_sharpness_methods_tolerance_and_seed():
    spec, P, x, y = _small_batch()
    refs = [sharpness(to_module(spec, P, k), half_mse, x, y, method="dense").value for k in range(2)]
    lz = batched_sharpness(spec, P, x, y, method="lanczos", return_info=True)
    pw = batched_sharpness(spec, P, x, y, method="power", return_info=True)
    for info, name in ((lz, "lanczos"), (pw, "power")):
        assert info.method == name and info.converged.all() and info.values.dtype == np.float64
        np.testing.assert_allclose(info.values, refs, rtol=1e-8)  # tol 1e-10 on the Ritz residual
    # each method is the one named: power iteration needs many more products (measured 133 vs 19)
    assert isinstance(lz.n_hvp, int) and 0 < 3 * lz.n_hvp < pw.n_hvp
    # the tolerance is passed on: a loose one stops earlier, still within it
    loose = batched_sharpness(spec, P, x, y, tol=1e-3, return_info=True)
    assert loose.n_hvp < lz.n_hvp
    np.testing.assert_allclose(loose.values, refs, rtol=1e-3)
    # the default seed is 0: the same start vectors, the same floats (after one step, where the value still
    # depends on the start: another seed gives another Ritz value)
    one = batched_sharpness(spec, P, x, y, max_iter=1)
    assert np.array_equal(one, batched_sharpness(spec, P, x, y, max_iter=1, seed=0))
    assert not np.allclose(one, batched_sharpness(spec, P, x, y, max_iter=1, seed=1), rtol=1e-6)
    # a non-finite model is reported not converged
    P[0][1, 0, 0] = float("nan")
    bad = batched_sharpness(spec, P, x, y, return_info=True)
    assert bad.converged.tolist() == [True, False] and np.isnan(bad.values[1])


def test_batched_sharpness_power_iteration_cap_is_5000():
    # an unreachable tolerance: power iteration stops at its documented default cap, unconverged
    spec = MLPSpec(2, 3, 1, 1, bias=False, parametrization="ntk")
    P = init_params(spec, 1, seed=3)
    g = torch.Generator().manual_seed(5)
    x, y = torch.randn(4, 2, generator=g, dtype=DT), torch.randn(4, 1, generator=g, dtype=DT)
    info = batched_sharpness(spec, P, x, y, method="power", tol=1e-300, return_info=True)
    assert info.n_hvp == 5000 and not info.converged.any()
    ref = sharpness(to_module(spec, P, 0), half_mse, x, y, method="dense").value
    assert info.values[0] == pytest.approx(ref, rel=1e-8)


def test_batched_sharpness_float32_model():
    # the start vectors follow the parameters' dtype; float32 round-off (~1e-7) against the float64 value
    spec, P, x, y = _small_batch()
    ref = batched_sharpness(spec, P, x, y)
    P32 = [p.float() for p in P]
    info = batched_sharpness(spec, P32, x.float(), y.float(), return_info=True)
    np.testing.assert_allclose(info.values, ref, rtol=1e-4)


def test_ntk_error_messages_exactly():
    spec = MLPSpec(3, 4, 1, 1)
    P = init_params(spec, 2)
    x = torch.randn(5, 3, dtype=DT)
    mod = to_module(spec, P, 0)
    names = [n for n, _ in mod.named_parameters()]
    cases = [
        (lambda: ntk_top_eig(mod, x, lr_weights="spec"),
         r"^lr_weights: the string form is 'spec' \(a core MLP's own LR multipliers\), got 'spec'$"),
        (lambda: ntk_top_eig(spec, P, x, lr_weights="layers"),
         r"^lr_weights: the string form is 'spec' \(a core MLP's own LR multipliers\), got 'layers'$"),
        (lambda: ntk_top_eig(spec, P, x, lr_weights={"W0": 1.0}),
         r"^lr_weights: a dict \(parameter name -> weight\) needs an nn.Module$"),
        (lambda: ntk_top_eig(mod, x, lr_weights={"nope": 1.0, "zz": 2.0}),
         rf"^lr_weights: unknown parameter names \['nope', 'zz'\]; trainable ones are {re.escape(str(names))}$"),
        (lambda: ntk_top_eig(mod, x, lr_weights=3.0),
         r"^lr_weights: expected None, 'spec', a sequence or a dict, got 3.0$"),
        (lambda: ntk_top_eig(mod, x, lr_weights=[1.0]),
         rf"^lr_weights: expected {len(names)} weights \(one per parameter tensor\), got 1$"),
        (lambda: ntk_top_eig(spec, P, x, lr_weights=[1.0, -1.0]), r"^lr_weights: expected finite numbers >= 0, got -1.0$"),
        (lambda: ntk_top_eig(spec, P, x, lr_weights=[1.0, True]), r"^lr_weights: expected finite numbers >= 0, got True$"),
        (lambda: ntk_top_eig(spec, P, x, lr_weights=[1.0, "2"]), r"^lr_weights: expected finite numbers >= 0, got '2'$"),
        (lambda: ntk_top_eig(spec, P, x, lr_weights=[1.0, float("inf")]),
         r"^lr_weights: expected finite numbers >= 0, got inf$"),
        (lambda: ntk_top_eig(spec, P), r"^x: the spec form is ntk_top_eig\(spec, params, x\)$"),
        (lambda: ntk_top_eig(mod, x, x), r"^x: the module form is ntk_top_eig\(model, inputs\); pass the inputs second$"),
        (lambda: ntk_top_eig(mod, torch.zeros(0, 3, dtype=DT)), r"^inputs: expected a tensor of shape \(m, ...\) with m >= 1$"),
        (lambda: ntk_top_eig(mod, torch.tensor(1.0, dtype=DT)), r"^inputs: expected a tensor of shape \(m, ...\) with m >= 1$"),
        (lambda: ntk_top_eig(mod, [[1.0, 2.0, 3.0]]), r"^inputs: expected a tensor of shape \(m, ...\) with m >= 1$"),
        (lambda: ntk_top_eig("mlp", x), r"^model: expected an MLPSpec or a torch.nn.Module, got str$"),
        (lambda: ntk_top_eig(to_module(spec, P, 0).requires_grad_(False), x),
         r"^model: has no parameter with requires_grad=True$"),
        (lambda: ntk_top_eig(mod, x, tol=0.0), r"^tol: "),
        (lambda: ntk_top_eig(mod, x, method="eigsh"), r"^method: "),
        (lambda: gauss_newton_top_eig(spec, P, x, tol=-1.0), r"^tol: "),
        (lambda: gauss_newton_top_eig(spec, P, x, max_iter=0), r"^max_iter: "),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match):
            call()
    # numpy numbers and integers are weights too
    assert ntk_top_eig(spec, P, x, lr_weights=[np.float64(1.0), 1])[0] == pytest.approx(
        ntk_top_eig(spec, P, x)[0], rel=1e-12)


import re  # noqa: E402


class _WithUnused(nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(21)
        self.W = nn.Parameter(torch.randn(3, 2, generator=g, dtype=DT))
        self.unused = nn.Parameter(torch.randn(5, generator=g, dtype=DT))

    def forward(self, a):
        return torch.tanh(a @ self.W)


def test_ntk_with_an_unused_parameter_and_the_lanczos_settings():
    # a parameter the outputs never read contributes a zero Jacobian block; reference: the explicit Jacobian
    model = _WithUnused()
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(22), dtype=DT)
    blocks = _module_jacobian(model, x)
    assert (blocks[1] == 0).all()
    ref = _ref_top(blocks, [1.0, 1.0], 6)
    for method in ("dense", "lanczos"):
        assert ntk_top_eig(model, x, method=method) == pytest.approx(ref, rel=1e-9), method
    assert ntk_top_eig(model, x, method="lanczos", lr_weights=[2.0, 7.0]) == pytest.approx(2 * ref, rel=1e-9)
    # the Lanczos settings are passed on: one step gives a Ritz value below the top (not converged), the
    # default seed is 0 (same floats), and another seed the same value to the tolerance
    spec = MLPSpec(4, 12, 2, 2, bias=True)
    P = init_params(spec, 2, seed=5)
    xs = torch.randn(10, 4, generator=torch.Generator().manual_seed(3), dtype=DT)
    top = ntk_top_eig(spec, P, xs, method="dense")
    one = ntk_top_eig(spec, P, xs, method="lanczos", max_iter=1)
    assert (one < top * (1 - 1e-6)).all()
    lz = ntk_top_eig(spec, P, xs, method="lanczos")
    assert np.array_equal(lz, ntk_top_eig(spec, P, xs, method="lanczos", seed=0))
    np.testing.assert_allclose(ntk_top_eig(spec, P, xs, method="lanczos", seed=3), top, rtol=1e-8)
    loose = ntk_top_eig(spec, P, xs, method="lanczos", tol=1e-2)
    assert not np.array_equal(loose, lz)
    np.testing.assert_allclose(loose, top, rtol=1e-2)
    gn1 = gauss_newton_top_eig(spec, P, xs, max_iter=1)
    assert (gn1 < top * (1 - 1e-6)).all()  # MSE: GN = J^T J / N, the same top eigenvalue
    np.testing.assert_allclose(gauss_newton_top_eig(spec, P, xs, tol=1e-2), top, rtol=1e-2)
    assert np.array_equal(gauss_newton_top_eig(spec, P, xs), gauss_newton_top_eig(spec, P, xs, seed=0))



def test_ntk_auto_method_switches_at_the_dense_limit(monkeypatch):
    """'auto' is dense while (models x examples x outputs x parameters) <= the limit, Lanczos above it.
    Observed through max_iter=1: dense ignores it (exact top eigenvalue), one Lanczos step gives a Ritz value
    below the top. The limit is set to the exact size, then one below it."""
    import lrtheory.core.ntk as NTK

    spec = MLPSpec(4, 12, 2, 2, bias=True)
    P = init_params(spec, 3, seed=5)
    x = torch.randn(10, 4, generator=torch.Generator().manual_seed(3), dtype=DT)
    top = ntk_top_eig(spec, P, x, method="dense")
    size = 3 * 10 * 2 * spec.n_params
    monkeypatch.setattr(NTK, "_DENSE_LIMIT", size)
    np.testing.assert_allclose(ntk_top_eig(spec, P, x, max_iter=1), top, rtol=1e-12)
    np.testing.assert_allclose(ntk_top_eig(spec, P, x, method="dense", max_iter=1), top, rtol=1e-12)
    monkeypatch.setattr(NTK, "_DENSE_LIMIT", size - 1)
    assert (ntk_top_eig(spec, P, x, max_iter=1) < top * (1 - 1e-6)).all()
    # the module form: m x d_out x parameters, d_out read from one example's output
    model, _, xm, _ = CASES["tanh_mse"]
    n_par = sum(p.numel() for p in model.parameters())
    ref = ntk_top_eig(model, xm, method="dense")
    msize = xm.shape[0] * 2 * n_par
    monkeypatch.setattr(NTK, "_DENSE_LIMIT", msize)
    assert ntk_top_eig(model, xm, max_iter=1) == pytest.approx(ref, rel=1e-12)
    assert ntk_top_eig(model, xm, method="dense", max_iter=1) == pytest.approx(ref, rel=1e-12)
    monkeypatch.setattr(NTK, "_DENSE_LIMIT", msize - 1)
    assert ntk_top_eig(model, xm, max_iter=1) < ref * (1 - 1e-6)
    assert ntk_top_eig(model, xm, method="lanczos", max_iter=1) < ref * (1 - 1e-6)


class _ScalarInput(nn.Module):
    """(m,) inputs -> (m,) outputs, with a 0-dimensional parameter (one number)."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(31)
        self.w = nn.Parameter(torch.randn(4, generator=g, dtype=DT))
        self.s = nn.Parameter(torch.tensor(0.7, dtype=DT))

    def forward(self, t):
        return self.s * torch.tanh(t[:, None] * self.w).sum(1)


def test_ntk_module_one_dimensional_inputs_a_scalar_parameter_and_one_example():
    model = _ScalarInput()
    t = torch.linspace(-1.0, 1.0, 5, dtype=DT)
    blocks = _module_jacobian(model, t)
    assert blocks[1].shape == (5, 1)
    ref = _ref_top(blocks, [1.0, 1.0], 5)
    for method in ("dense", "lanczos"):
        assert ntk_top_eig(model, t, method=method) == pytest.approx(ref, rel=1e-9), method
    one = t[:1]
    ref1 = _ref_top(_module_jacobian(model, one), [1.0, 1.0], 1)
    for method in ("dense", "lanczos"):
        assert ntk_top_eig(model, one, method=method) == pytest.approx(ref1, rel=1e-9), method


def test_check_xy_messages_and_accepted_target_shapes():
    spec = MLPSpec(3, 4, 1, 2)
    P = init_params(spec, 2)
    x = torch.zeros(5, 3, dtype=DT)
    cases = [
        (lambda: batched_sharpness(spec, P, torch.zeros(5, 2, dtype=DT), torch.zeros(5, 2, dtype=DT)),
         r"^x: expected shape \(N, 3\), got torch.Size\(\[5, 2\]\)$"),
        (lambda: batched_sharpness(spec, P, [[0.0] * 3], torch.zeros(5, 2, dtype=DT)),
         r"^x: expected shape \(N, 3\), got <class 'list'>$"),
        (lambda: batched_sharpness(spec, P, x.float(), torch.zeros(5, 2, dtype=DT)),
         r"^x: dtype/device differ from the parameters'$"),
        (lambda: batched_sharpness(spec, P, x, torch.zeros(4, 2, dtype=DT)),
         r"^y: expected a tensor with 5 rows, got torch.Size\(\[4, 2\]\)$"),
        (lambda: batched_sharpness(spec, P, x, [0.0] * 5), r"^y: expected a tensor with 5 rows, got <class 'list'>$"),
        (lambda: batched_sharpness(spec, P, x, torch.zeros(5, dtype=torch.int32), loss="ce"),
         r"^y: CE targets must be int64 labels of shape \(N,\)$"),
        (lambda: batched_sharpness(spec, P, x, torch.zeros(5, 3, dtype=DT)), r"^y: MSE targets must have shape \(N, 2\)$"),
        (lambda: batched_sharpness(spec, P, x, torch.zeros(5, dtype=DT)), r"^y: MSE targets must have shape \(N, 2\)$"),
        (lambda: ntk_top_eig(spec, P, x, normalize="trace"), r"^normalize: "),
        (lambda: gauss_newton_top_eig(spec, P, x, loss="hinge"), r"^loss: unknown 'hinge'; expected one of "),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match):
            call()
    # one output: targets (N,) and (N, 1) are the same problem
    s1 = MLPSpec(3, 4, 1, 1)
    P1 = init_params(s1, 2, seed=1)
    y = torch.randn(5, generator=torch.Generator().manual_seed(2), dtype=DT)
    x1 = torch.randn(5, 3, generator=torch.Generator().manual_seed(3), dtype=DT)
    np.testing.assert_allclose(batched_sharpness(s1, P1, x1, y), batched_sharpness(s1, P1, x1, y[:, None]), rtol=1e-12)
    with pytest.raises(ValueError, match=r"^y: MSE targets must have shape \(N, 1\)$"):
        batched_sharpness(s1, P1, x1, torch.zeros(5, 2, dtype=DT))


# ----------------------------------------------------------------------------- start vectors and defaults (mutation)
def test_start_vectors_ignore_the_device_environment_and_take_any_seed(monkeypatch):
    # the start vectors are drawn on the CPU whatever $LRTHEORY_DEVICE says (here a CUDA that may not exist), then
    # moved to the parameters; any non-negative seed is valid (2**50: seed * 1_000_003 is far above 2**64, the
    # formula reduces it mod 2**63). References: the dense Hessian's top eigenvalue (torch.autograd.functional
    # .hessian) and the NTK's dense path (checked against explicit Jacobians above)
    spec, P, x, y = _small_batch()
    refs = [sharpness(to_module(spec, P, k), half_mse, x, y, method="dense").value for k in range(2)]
    ntk_ref = ntk_top_eig(spec, P, x, method="dense")
    monkeypatch.setenv("LRTHEORY_DEVICE", "cuda")
    for seed in (0, 2 ** 50, 2 ** 63 - 1):
        np.testing.assert_allclose(batched_sharpness(spec, P, x, y, seed=seed), refs, rtol=1e-8)  # tol 1e-10
        np.testing.assert_allclose(ntk_top_eig(spec, P, x, method="lanczos", seed=seed), ntk_ref, rtol=1e-8)
        np.testing.assert_allclose(gauss_newton_top_eig(spec, P, x, seed=seed), ntk_ref, rtol=1e-8)  # G = J^T J / N


def test_lanczos_iteration_caps_are_the_documented_defaults(monkeypatch):
    # batched_sharpness: "default: 300 for Lanczos, 5000 for power iteration"; ntk_top_eig and
    # gauss_newton_top_eig: max_iter=300 in their signatures. What each passes on to its algorithm, recorded
    import lrtheory.core.curvature as C
    import lrtheory.core.ntk as N
    seen = []

    def spy(real):
        def f(*args, **kwargs):
            seen.append(kwargs["max_iter"])
            return real(*args, **kwargs)
        return f

    monkeypatch.setattr(C, "lanczos_top_eig", spy(C.lanczos_top_eig))
    monkeypatch.setattr(C, "power_iteration_top_eig", spy(C.power_iteration_top_eig))
    monkeypatch.setattr(N, "lanczos_top_eig", spy(N.lanczos_top_eig))
    spec, P, x, y = _small_batch()
    batched_sharpness(spec, P, x, y)
    batched_sharpness(spec, P, x, y, method="power")
    batched_sharpness(spec, P, x, y, max_iter=7)
    ntk_top_eig(spec, P, x, method="lanczos")
    ntk_top_eig(to_module(spec, P, 0), x, method="lanczos")
    gauss_newton_top_eig(spec, P, x)
    assert seen == [300, 5000, 7, 300, 300, 300]
