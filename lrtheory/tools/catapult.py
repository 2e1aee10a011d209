"""The catapult phases of any model, from its empirical NTK at the current parameters.

For full-batch GD on the 1/2-MSE loss, Lewkowycz et al. 2020 place the lazy phase below
``eta = 2 / lambda_0`` and, in the uv model, the catapult phase up to ``4 / lambda_0``, with
``lambda_0`` the top eigenvalue of the empirical NTK ``Theta / N`` (``N`` examples). Chapter 02
derives and measures these edges.

Examples
--------
>>> import torch
>>> net = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1)).double()
>>> x = torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
>>> r = catapult_range(net, x)
>>> r.catapult_max == 2 * r.lazy_max
True
>>> r.phase(3.0 / r.lam0)
'catapult'
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lrtheory.core import validate
from lrtheory.core.ntk import ntk_top_eig

__all__ = ["CatapultRange", "catapult_range"]


@dataclass(frozen=True)
class CatapultRange:
    """The learning-rate phases of a model at its current parameters, from its NTK.

    Attributes
    ----------
    lam0 : float
        Top eigenvalue of the empirical NTK divided by the number of examples
        (``Theta / N``): the sharpness of the 1/2-MSE loss near a minimum, and
        Lewkowycz et al.'s ``lambda_0``.
    lazy_max : float
        ``2 / lam0``: below it GD on the linearised model converges monotonically (lazy phase).
    catapult_max : float
        ``4 / lam0``: the uv model's divergence edge; between ``lazy_max`` and this the
        loss first grows, the NTK's top eigenvalue falls, then training converges.
    relu_literature_max : float
        ``12 / lam0``: the edge Lewkowycz et al. report for deep ReLU nets (an empirical
        value, not derived; chapter 02 measures where it lies at CI scale).
    """

    lam0: float
    lazy_max: float
    catapult_max: float
    relu_literature_max: float

    def phase(self, eta: float) -> str:
        """``"lazy"``, ``"catapult"`` or ``"divergent"`` as the uv model predicts for learning rate ``eta``.

        Raises
        ------
        ValueError
            If ``eta`` is not a positive finite number.
        """
        eta = validate.positive_real(eta, "eta")
        if eta < self.lazy_max:
            return "lazy"
        return "catapult" if eta < self.catapult_max else "divergent"


def catapult_range(model: torch.nn.Module, inputs: torch.Tensor) -> CatapultRange:
    """Catapult range of any ``torch.nn.Module`` for full-batch GD on the 1/2-MSE loss.

    ``lambda_0`` is the top eigenvalue of the empirical NTK Gram matrix ``Theta / N`` on
    ``inputs``, ``Theta = J J^T`` over the ``N * d_out`` output entries (the outputs are
    not summed) and every trainable parameter (:func:`lrtheory.core.ntk.ntk_top_eig`, dense
    Jacobian for small problems, Lanczos beyond; the normalisation by ``N`` is Lewkowycz
    et al.'s). Meant for the small batches the catapult analysis is about.

    Parameters
    ----------
    model : torch.nn.Module
        Any module mapping ``(N, ...)`` to ``(N,)`` or ``(N, d_out)``. Layers whose output
        for one example depends on the others (BatchNorm in training mode) are not
        supported: call ``model.eval()`` first.
    inputs : Tensor ``(N, ...)``
        The training batch, ``N >= 1``, finite.

    Returns
    -------
    CatapultRange

    Raises
    ------
    ValueError
        If ``model`` is not a module or has no trainable parameters, or ``inputs`` is empty
        or not finite, or the NTK is not finite.
    """
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(inputs, torch.Tensor) or inputs.dim() < 1 or inputs.shape[0] < 1:
        raise ValueError("inputs: expected a tensor of shape (N, ...) with N >= 1")
    validate.finite_tensor(inputs, "inputs")
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("model: has no trainable parameters")
    lam0 = float(ntk_top_eig(model, inputs, normalize="batch"))
    if not math.isfinite(lam0):
        raise ValueError("model: the NTK at these parameters is not finite")
    return CatapultRange(lam0=lam0, lazy_max=2.0 / lam0, catapult_max=4.0 / lam0, relu_literature_max=12.0 / lam0)
