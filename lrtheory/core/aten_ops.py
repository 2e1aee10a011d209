"""ATen's own reductions as opaque operators, for steps compiled by ``torch.compile``.

Inductor compiles a reduction (a sum, the normalizer of ``log_softmax``) into a loop of its
own, which adds in another order than ATen's kernel: the same step, eager and compiled, would then
differ in its last bits. Behind an operator of its own (``torch.library``) the compiler calls
ATen's kernel as it is, on the tensor as the eager step lays it out, so the compiled step reduces,
and rounds, exactly as the eager one. Element-wise work around them is still fused (it rounds the
same either way). :mod:`lrtheory.core.train`'s compiled step uses them for the reductions its
gradients go through: the bias gradients, cross-entropy's softmax and its backward (the loss's own
reductions it leaves to its eager caller, which costs less than an operator call out of the
compiled code).

Each operator computes exactly the ATen call its name says:

>>> import torch
>>> x = torch.randn(3, 5, 4, dtype=torch.float64)
>>> torch.equal(sum_dim(x, 1, True), x.sum([1], keepdim=True))
True
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["sum_dim", "log_softmax", "log_softmax_backward"]

# registered with torch.library directly (not the custom_op decorator, whose Python wrapper costs
# ~8 us a call against ~2 us: these run every step)
_LIB = torch.library.Library("lrtheory", "DEF")
_OPS = {
    "sum_dim(Tensor x, int dim, bool keepdim) -> Tensor": lambda x, dim, keepdim: x.sum([dim], keepdim=keepdim),
    "log_softmax(Tensor x) -> Tensor": lambda x: torch.log_softmax(x, dim=-1),
    "log_softmax_backward(Tensor g, Tensor logp) -> Tensor":
        lambda g, logp: torch._log_softmax_backward_data(g, logp, -1, logp.dtype),
}
for _schema, _fn in _OPS.items():
    _name = _schema.split("(")[0]
    _LIB.define(_schema)
    _LIB.impl(_name, _fn, "CompositeExplicitAutograd")
    # on fake tensors (tracing) the same call gives the shape, dtype and strides
    torch.library.register_fake(f"lrtheory::{_name}", _fn, lib=_LIB)


def sum_dim(x: Tensor, dim: int, keepdim: bool) -> Tensor:
    """``x.sum([dim], keepdim=keepdim)``."""
    return torch.ops.lrtheory.sum_dim(x, dim, keepdim)


def log_softmax(x: Tensor) -> Tensor:
    """``torch.log_softmax(x, dim=-1)``."""
    return torch.ops.lrtheory.log_softmax(x)


def log_softmax_backward(g: Tensor, logp: Tensor) -> Tensor:
    """``torch._log_softmax_backward_data(g, logp, -1, logp.dtype)``: autograd's backward of
    :func:`log_softmax`."""
    return torch.ops.lrtheory.log_softmax_backward(g, logp)
