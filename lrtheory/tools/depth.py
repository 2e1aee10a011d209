"""muP learning rates across depth: the practical rule of Jelassi et al. (2023, arXiv 2305.07810).

The maximal-update LR of the hidden layers of a mean-field ReLU MLP scales like ``L^{-3/2}``
with the number of hidden layers ``L`` and does not depend on the width ``n``; the first layer
(input of fixed dimension ``d``) needs a factor ``n / d`` and the readout ``1 / n``.
Chapter 03 derives these exponents (``lrtheory.results.mup_depth.derivation``), measures them
at a fixed input dimension (claims ``mup_depth.first_layer``, ``mup_depth.last_layer`` and
``mup_depth.first_layer_rule``), and its tests check that the constants below equal the derivation.

Examples
--------
>>> depth_scaled_lr(0.8, depth=8, base_depth=2)
0.1
>>> layer_lr_multipliers(64, 3, 64, base_depth=3).tolist()
[1.0, 1.0, 1.0, 0.015625]
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from lrtheory.core import validate

__all__ = ["DEPTH_EXPONENT", "WIDTH_EXPONENTS", "depth_scaled_lr", "layer_lr_multipliers"]

#: Exponent of the maximal-update LR in the depth: ``eta* ~ L^{-3/2}`` (the limit of
#: ``d log eta*/d log L`` derived in chapter 03; the paper's abstract states it).
DEPTH_EXPONENT = -1.5

#: Width exponent ``e`` of the LR multiplier ``n^e`` of each kind of layer (derived in chapter
#: 03): hidden layers 0, the first layer +1 (its input has ``||x||^2 ~ d``, not ``~ n``; the
#: multiplier is ``n / d``), the readout -1.
WIDTH_EXPONENTS = {"input": 1, "hidden": 0, "readout": -1}


def depth_scaled_lr(base_lr: float, depth: int, base_depth: int, exponent: float = DEPTH_EXPONENT) -> float:
    """Transfer a learning rate tuned at one depth to another: ``base_lr * (depth/base_depth)^exponent``.

    The maximal-update LR of the hidden layers of a ReLU MLP scales like ``L^{-3/2}``
    (Jelassi et al. 2023), so an LR tuned on a ``base_depth``-layer network is moved to a
    ``depth``-layer network of the same width by this factor. Apply it to the hidden (and the
    first) layers; the readout LR is set by the width, not the depth (see
    :func:`layer_lr_multipliers`).

    Parameters
    ----------
    base_lr : float
        Learning rate tuned at ``base_depth`` (> 0, finite).
    depth : int
        Number of hidden layers of the target network (>= 1).
    base_depth : int
        Number of hidden layers the LR was tuned at (>= 1).
    exponent : float
        Power of the depth ratio (finite); default -3/2, the paper's.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``base_lr`` is not positive and finite, a depth is not a positive integer, or
        ``exponent`` is not finite.

    Examples
    --------
    >>> depth_scaled_lr(0.8, depth=8, base_depth=2)
    0.1
    """
    base_lr = validate.positive_real(base_lr, "base_lr")
    depth = validate.positive_int(depth, "depth")
    base_depth = validate.positive_int(base_depth, "base_depth")
    exponent = validate.finite_real(exponent, "exponent")
    return base_lr * (depth / base_depth) ** exponent


def layer_lr_multipliers(width: int, depth: int, input_dim: int, *, base_depth: Optional[int] = None,
                         exponent: float = DEPTH_EXPONENT) -> np.ndarray:
    """Per-layer LR multipliers for a mean-field ReLU MLP (``depth + 1`` weight matrices).

    Multiply a base LR ``eta`` by these to train layer ``l`` at ``eta * m[l]`` under the
    mean-field initialization (hidden ``N(0, 2/fan_in)``, readout ``N(0, 1/n^2)``):

    * first layer: ``(width / input_dim) * s`` (its input has ``||x||^2 ~ input_dim``, not
      ``~ width``: width exponent +1);
    * hidden layers: ``s`` (width independent);
    * readout: ``1 / width`` (exponent -1; it moves no hidden pre-activation, so no depth
      factor),

    with ``s = (depth / base_depth)^exponent`` (``s = 1`` when ``base_depth`` is None).

    Parameters
    ----------
    width : int
        Hidden width ``n`` (>= 1).
    depth : int
        Number of hidden layers ``L`` (>= 1).
    input_dim : int
        Input dimension ``d`` (>= 1).
    base_depth : int, optional
        Depth the base LR was tuned at; None for no depth scaling.
    exponent : float
        Depth exponent (default -3/2).

    Returns
    -------
    ndarray, shape (depth + 1,)
        Multipliers in layer order (first, hidden..., readout); pass them as
        ``layer_lr_mults`` to :func:`lrtheory.core.train.train` or scale the ``lr`` of
        per-layer parameter groups of a ``torch.optim.SGD``.

    Raises
    ------
    ValueError
        On a non-positive dimension or depth, or a non-finite exponent.

    Examples
    --------
    >>> layer_lr_multipliers(128, 4, 32, base_depth=1).tolist()
    [0.5, 0.125, 0.125, 0.125, 0.0078125]
    """
    width = validate.positive_int(width, "width")
    depth = validate.positive_int(depth, "depth")
    input_dim = validate.positive_int(input_dim, "input_dim")
    exponent = validate.finite_real(exponent, "exponent")
    s = 1.0 if base_depth is None else depth_scaled_lr(1.0, depth, base_depth, exponent)
    m = np.full(depth + 1, s, dtype=np.float64)
    m[0] = s * width / input_dim  # (n / d)^WIDTH_EXPONENTS["input"]
    m[-1] = 1.0 / width  # n^WIDTH_EXPONENTS["readout"]
    return m
