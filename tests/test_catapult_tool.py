"""Tests of lrtheory.tools.catapult (``catapult_range``, the user tool of chapter 02)."""
import pytest
import torch

from lrtheory.tools.catapult import CatapultRange, catapult_range


def test_catapult_range_uv_model_closed_form():
    """uv model f(x) = v.u x / sqrt(n): Theta/N = (|u|^2 + |v|^2) mean(x^2) / n exactly (1e-12: round-off)."""

    class UV(torch.nn.Module):
        def __init__(self, n):
            super().__init__()
            g = torch.Generator().manual_seed(3)
            self.u = torch.nn.Parameter(torch.randn(n, dtype=torch.float64, generator=g))
            self.v = torch.nn.Parameter(torch.randn(n, dtype=torch.float64, generator=g))
            self.n = n

        def forward(self, x):
            return (self.v @ self.u) * x[:, 0] / self.n ** 0.5

    m = UV(64)
    x = torch.tensor([[1.0]], dtype=torch.float64)
    r = catapult_range(m, x)
    lam = float((m.u.detach().pow(2).sum() + m.v.detach().pow(2).sum()) / m.n)
    assert r.lam0 == pytest.approx(lam, rel=1e-12)
    assert (r.lazy_max, r.catapult_max) == pytest.approx((2 / lam, 4 / lam), rel=1e-12)
    assert [r.phase(e / lam) for e in (1.0, 3.0, 5.0)] == ["lazy", "catapult", "divergent"]


def test_catapult_range_matches_core_ntk_on_an_mlp():
    """Module path (vmap(jacrev) over nn.Module) vs the core's batched NTK: 1e-10 relative (round-off)."""
    from lrtheory.core.ntk import ntk_top_eig
    from lrtheory.core.mlp import MLPSpec, init_params, to_module


    spec = MLPSpec(d_in=5, width=16, depth=2, d_out=2, parametrization="ntk", bias=True)
    P = init_params(spec, 1, seed=4)
    x = torch.randn(7, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ref = float(ntk_top_eig(spec, P, x, normalize="batch", method="dense")[0])
    assert catapult_range(to_module(spec, P, 0), x).lam0 == pytest.approx(ref, rel=1e-10)


def test_catapult_range_bad_inputs():


    net = torch.nn.Linear(3, 1).double()
    with pytest.raises(ValueError, match="model"):
        catapult_range(lambda x: x, torch.ones(2, 3))
    with pytest.raises(ValueError, match="inputs"):
        catapult_range(net, torch.ones(0, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="inputs"):
        catapult_range(net, torch.tensor([[float("nan"), 0.0, 0.0]], dtype=torch.float64))
    r = catapult_range(net, torch.ones(2, 3, dtype=torch.float64))
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="eta"):
            r.phase(bad)


def test_exported_from_lrtheory():
    import lrtheory

    assert lrtheory.catapult_range is catapult_range and lrtheory.CatapultRange is CatapultRange
