"""lrtheory.core.aten_ops: each operator is its ATen call, eager and inside a compiled function
(where the compiler must call the kernel as it is, not a loop of its own)."""
import pytest
import torch

from lrtheory.core import aten_ops

DT = torch.float32


def _cases():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(7, 33, 10, generator=g, dtype=DT) * 3.0
    logp = torch.log_softmax(x, dim=-1)
    gg = torch.randn(7, 33, 10, generator=g, dtype=DT)
    return [
        ("sum_dim", (x, 1, True), x.sum([1], keepdim=True)),
        ("sum_dim", (x, 2, False), x.sum([2], keepdim=False)),
        ("log_softmax", (x,), torch.log_softmax(x, dim=-1)),
        ("log_softmax_backward", (gg, logp), torch._log_softmax_backward_data(gg, logp, -1, DT)),
    ]


@pytest.mark.parametrize("i", range(4))
def test_each_operator_is_its_aten_call_to_the_bit(i):
    name, args, want = _cases()[i]
    got = getattr(aten_ops, name)(*args)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert torch.equal(got, want)


def test_inside_a_compiled_function_the_kernel_is_atens():
    g = torch.Generator().manual_seed(6)
    x = torch.randn(16, 128, 10, generator=g, dtype=DT)

    def f(x):  # element-wise work around the reductions: fused; the reductions: ATen's
        d = x - 0.5
        return 0.5 * aten_ops.sum_dim(d * d, 2, False), aten_ops.log_softmax(d * 2.0)

    want = f(x)
    got = torch.compile(f, dynamic=False)(x)
    for a, b in zip(got, want):
        assert torch.equal(a, b)
