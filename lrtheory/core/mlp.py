"""Batched fully connected ReLU networks: K independent models in one computation.

A network of input dimension ``d_in``, width ``n``, depth ``L`` (the number of
hidden layers) and output dimension ``d_out`` has ``L + 1`` weight matrices.
Layer ``l = 0 .. L`` computes

.. math::

    z^{(l)} = m_l \\, W^{(l)} h^{(l-1)} + b^{(l)}, \\qquad
    h^{(l)} = \\mathrm{relu}(\\mathrm{norm}(z^{(l)})) \\;(l < L), \\qquad
    f(x) = z^{(L)},

with ``h^{(-1)} = x``. The *trainable* tensor is ``W^{(l)}``, drawn i.i.d.
``N(0, s_l^2)``; ``m_l`` is a fixed forward multiplier and each layer has an LR
multiplier ``c_l``: plain GD updates ``W^{(l)} <- W^{(l)} - eta * c_l * dLoss/dW^{(l)}``.
That triple ``(s_l, m_l, c_l)`` is the parametrization ("abc-parametrization" of
Yang & Hu 2021). With ``n_{-1} = d_in`` and ``fan_in = n_{l-1}``:

==============  ==========================  =======================  ======================
name            init std ``s_l``            multiplier ``m_l``       LR multiplier ``c_l``
==============  ==========================  =======================  ======================
``standard``    ``sqrt(2/fan_in)`` (He),    1                        1
                every layer incl. readout
``ntk``         1                           ``sqrt(2/fan_in)``       1
``mean_field``  hidden: ``sqrt(2/fan_in)``;  1                        1
                readout: ``1/n``
``mup``         input: ``sqrt(2/(d_in n))``  input ``sqrt(n)``;       input 1; hidden ``1/n``;
                hidden: ``sqrt(2/n)``;       hidden 1;                readout 1
                readout: ``1/sqrt(n)``       readout ``1/sqrt(n)``
==============  ==========================  =======================  ======================

* ``standard``: He et al. (2015) fan-in init with gain 2 on *every* layer,
  including the linear readout (as in Iyer et al. 2023 and Hanin's work).
* ``ntk``: Jacot et al. (2018) NTK parametrization with ``sigma_w^2 = 2`` on every
  layer: ``W ~ N(0, 1)`` and the forward pass multiplies by ``sqrt(2/fan_in)``.
  At init the function has exactly the law of ``standard``; the gradients differ.
* ``mean_field``: the mean-field initialization of Jelassi et al. (2023,
  arXiv 2305.07810): hidden weights ``N(0, 2/fan_in)`` and readout weights
  ``N(0, 1/n^2)``, i.e. the readout is a ``1/n`` average rather than a
  ``1/sqrt(n)`` sum (Mei et al. 2018). No multipliers; per-layer LRs are left to
  the caller (``layer_lr_mults`` of :func:`lrtheory.core.train.train`).
* ``mup``: maximal update parametrization in the abc form of Yang & Hu (2021,
  Table 3: input ``a=-1/2, b=1/2, c=0``; hidden ``a=0, b=1/2, c=1``; readout
  ``a=1/2, b=1/2, c=0``), with He constants (gain 2) and the input fan-in
  ``d_in`` folded into the input layer's init so that the effective input
  weights are ``N(0, 2/d_in)``. The effective readout weights are ``N(0, 1/n^2)``,
  as in ``mean_field``.

``spec.input_lr_mult`` multiplies the first layer's LR multiplier (Iyer et al.
train the input layer at a smaller LR). Biases (``spec.bias=True``) start at 0
with multiplier 1 and the LR multiplier of their layer. ``spec.norm`` inserts a
normalization between each hidden pre-activation and its ReLU:

* ``"layernorm"``: per example over the ``n`` units, ``eps=1e-5``, affine
  ``gamma`` (init 1) and ``beta`` (init 0), exactly ``torch.nn.LayerNorm``;
* ``"batchnorm"``: per unit over the ``N`` examples of the batch, **always with
  batch statistics** (training mode, biased variance, ``eps=1e-5``, no running
  statistics), computed separately for each of the K models; affine as above.
  This is ``torch.nn.BatchNorm1d`` in training mode. The function of one example
  then depends on the rest of the batch: evaluate on the batch you train on.

Parameters are a flat ``list`` of tensors with a leading model axis ``K``, in the
order of :func:`param_names`: for each layer ``W_l`` ``(K, fan_out, fan_in)``,
then ``b_l`` ``(K, fan_out)`` if ``bias``, then for hidden layers with a norm
``gamma_l, beta_l`` ``(K, n)``. :func:`param_layers` and :func:`lr_multipliers`
are aligned with that list. Each layer is one batched matmul for all K models.

Example
-------
>>> import torch
>>> from lrtheory.core.mlp import MLPSpec, init_params, forward
>>> spec = MLPSpec(d_in=4, width=16, depth=2, d_out=1)
>>> params = init_params(spec, K=3, seed=0)
>>> forward(spec, params, torch.zeros(5, 4, dtype=torch.float64)).shape
torch.Size([3, 5, 1])
"""
from __future__ import annotations

import functools
import math
import numbers
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lrtheory.core import aten_ops
from lrtheory.core.device import DeviceLike, make_generator, resolve_device, resolve_dtype
from lrtheory.core.validate import int_sequence, integer, nonneg_int, positive_int, positive_real

__all__ = [
    "PARAMETRIZATIONS",
    "NORMS",
    "NORM_EPS",
    "MLPSpec",
    "init_stds",
    "forward_multipliers",
    "lr_multipliers",
    "param_names",
    "param_layers",
    "init_params",
    "forward",
    "num_models",
    "select_models",
    "CoreMLP",
    "to_module",
    "from_module",
    "count_flops",
]

#: Names of the supported parametrizations (see the module docstring table).
PARAMETRIZATIONS = ("standard", "ntk", "mean_field", "mup")
#: Supported normalization layers (None = no normalization).
NORMS = (None, "layernorm", "batchnorm")
#: epsilon of both normalization layers (torch's default).
NORM_EPS = 1e-5


@dataclass(frozen=True)
class MLPSpec:
    """Architecture and parametrization of a ReLU MLP (shared by the K models).

    Parameters
    ----------
    d_in : int
        Input dimension, >= 1.
    width : int
        Width ``n`` of every hidden layer, >= 1.
    depth : int
        Number of hidden layers ``L`` >= 1 (the net has ``L + 1`` weight matrices).
    d_out : int
        Output dimension, >= 1.
    parametrization : str
        One of :data:`PARAMETRIZATIONS`.
    bias : bool
        Add a bias (init 0) to every layer.
    norm : None, "layernorm" or "batchnorm"
        Normalization between each hidden pre-activation and its ReLU.
    input_lr_mult : float
        Extra LR multiplier of the first layer (> 0, finite).

    Raises
    ------
    ValueError
        On a non-positive dimension, an unknown parametrization or norm, or a
        non-positive / non-finite ``input_lr_mult``; the message names the field.

    Example
    -------
    >>> MLPSpec(d_in=10, width=64, depth=3, d_out=2, parametrization="mup").n_layers
    4
    """

    d_in: int
    width: int
    depth: int
    d_out: int
    parametrization: str = "standard"
    bias: bool = False
    norm: Optional[str] = None
    input_lr_mult: float = 1.0

    def __post_init__(self):
        positive_int(self.d_in, "d_in")
        positive_int(self.width, "width")
        positive_int(self.depth, "depth")
        positive_int(self.d_out, "d_out")
        if self.parametrization not in PARAMETRIZATIONS:
            raise ValueError(
                f"parametrization: unknown {self.parametrization!r}; expected one of {PARAMETRIZATIONS}"
            )
        if not isinstance(self.bias, bool):
            raise ValueError(f"bias: expected a bool, got {self.bias!r}")
        if self.norm not in NORMS:
            raise ValueError(f"norm: unknown {self.norm!r}; expected one of {NORMS}")
        positive_real(self.input_lr_mult, "input_lr_mult")

    @property
    def n_layers(self) -> int:
        """Number of weight matrices, ``depth + 1``."""
        return self.depth + 1

    @property
    def layer_dims(self) -> List[Tuple[int, int]]:
        """``[(fan_out, fan_in), ...]`` for the ``depth + 1`` weight matrices."""
        dims = [self.d_in] + [self.width] * self.depth + [self.d_out]
        return [(dims[i + 1], dims[i]) for i in range(self.n_layers)]

    @property
    def n_params(self) -> int:
        """Number of scalar parameters of one model."""
        return sum(math.prod(s) for s in _param_shapes(self))


def init_stds(spec: MLPSpec) -> List[float]:
    """Init standard deviation ``s_l`` of each weight matrix (length ``depth + 1``)."""
    n, p = spec.width, spec.parametrization
    out = []
    for l, (_, fan_in) in enumerate(spec.layer_dims):
        last = l == spec.depth
        if p == "standard":
            s = math.sqrt(2.0 / fan_in)
        elif p == "ntk":
            s = 1.0
        elif p == "mean_field":
            s = 1.0 / n if last else math.sqrt(2.0 / fan_in)
        else:  # mup
            if l == 0:
                s = math.sqrt(2.0 / (spec.d_in * n))
            elif last:
                s = 1.0 / math.sqrt(n)
            else:
                s = math.sqrt(2.0 / n)
        out.append(s)
    return out


def forward_multipliers(spec: MLPSpec) -> List[float]:
    """Forward multiplier ``m_l`` of each weight matrix (length ``depth + 1``)."""
    n, p = spec.width, spec.parametrization
    out = []
    for l, (_, fan_in) in enumerate(spec.layer_dims):
        last = l == spec.depth
        if p == "ntk":
            m = math.sqrt(2.0 / fan_in)
        elif p == "mup":
            m = math.sqrt(n) if l == 0 else (1.0 / math.sqrt(n) if last else 1.0)
        else:
            m = 1.0
        out.append(m)
    return out


@functools.lru_cache(maxsize=256)
def _mults(spec: MLPSpec) -> Tuple[float, ...]:
    # forward_multipliers, computed once per spec (the forward pass reads it every step)
    return tuple(forward_multipliers(spec))


def _layer_lr_mults(spec: MLPSpec) -> List[float]:
    n = spec.width
    out = []
    for l in range(spec.n_layers):
        if l == 0:
            c = float(spec.input_lr_mult)  # 1 in every parametrization, times input_lr_mult
        elif spec.parametrization == "mup" and l < spec.depth:
            c = 1.0 / n
        else:
            c = 1.0
        out.append(c)
    return out


def _param_shapes(spec: MLPSpec) -> List[Tuple[int, ...]]:
    shapes = []
    for l, (fo, fi) in enumerate(spec.layer_dims):
        shapes.append((fo, fi))
        if spec.bias:
            shapes.append((fo,))
        if spec.norm is not None and l < spec.depth:
            shapes += [(fo,), (fo,)]
    return shapes


def param_names(spec: MLPSpec) -> List[str]:
    """Names aligned with the parameter list: ``W0, b0, gamma0, beta0, W1, ...``."""
    names = []
    for l in range(spec.n_layers):
        names.append(f"W{l}")
        if spec.bias:
            names.append(f"b{l}")
        if spec.norm is not None and l < spec.depth:
            names += [f"gamma{l}", f"beta{l}"]
    return names


def param_layers(spec: MLPSpec) -> List[int]:
    """Layer index ``l`` of each entry of the parameter list."""
    return [int("".join(ch for ch in name if ch.isdigit())) for name in param_names(spec)]


def lr_multipliers(spec: MLPSpec) -> List[float]:
    """LR multiplier of each entry of the parameter list (layer multiplier ``c_l``,
    times ``input_lr_mult`` for layer 0); biases and norm parameters share their layer's."""
    per_layer = _layer_lr_mults(spec)
    return [per_layer[l] for l in param_layers(spec)]


def init_params(
    spec: MLPSpec,
    K: int,
    *,
    seed: int = 0,
    seeds: Optional[Sequence[int]] = None,
    device: DeviceLike = None,
    dtype: Optional[torch.dtype] = torch.float64,
) -> List[Tensor]:
    """Draw the parameters of K independent models.

    Model ``k`` of ``init_params(spec, K, seed=s)`` is, for every K, the same
    network: weights are drawn per model from a CPU generator seeded with
    ``(s * 1_000_003 + k) mod 2**63``, so ``init_params(spec, 1, seed=s)[..][0]``
    equals model 0 of any batch with seed ``s`` (this makes batched and solo runs
    comparable). To get model ``k`` alone use :func:`select_models`.

    With ``seeds`` (one per model, e.g. :func:`lrtheory.core.device.seed_for` values,
    which is how every model of a sweep should be seeded) model ``k`` is drawn from a
    generator seeded with ``seeds[k]`` itself, and ``seed`` is ignored.

    Parameters
    ----------
    spec : MLPSpec
    K : int
        Number of models, >= 1.
    seed : int
        Non-negative seed of the batch (any size: ``seed_for`` values are fine).
    seeds : sequence of K ints, optional
        One non-negative seed per model (overrides ``seed``).
    device : str, torch.device or None
        See :func:`lrtheory.core.device.resolve_device`.
    dtype : torch.dtype
        Floating dtype (default float64).

    Returns
    -------
    list of Tensor
        In the order of :func:`param_names`; weights ``(K, fan_out, fan_in)``,
        biases and norm parameters ``(K, fan_out)``. Leaves without ``requires_grad``.

    Raises
    ------
    ValueError
        If ``spec`` is not an :class:`MLPSpec`, ``K < 1`` or ``seed`` is invalid.

    Example
    -------
    >>> p = init_params(MLPSpec(2, 8, 1, 1, bias=True), K=4, seed=1)
    >>> [tuple(t.shape) for t in p]
    [(4, 8, 2), (4, 8), (4, 1, 8), (4, 1)]
    """
    if not isinstance(spec, MLPSpec):
        raise ValueError(f"spec: expected an MLPSpec, got {type(spec).__name__}")
    positive_int(K, "K")
    nonneg_int(seed, "seed")
    if seeds is not None:
        seeds = int_sequence(seeds, "seeds")  # non-negative integers
        if len(seeds) != K:
            raise ValueError(f"seeds: expected {K} seeds (one per model), got {len(seeds)}")
    dev = resolve_device(device)
    dt = resolve_dtype(dtype)
    stds = init_stds(spec)
    gens = []
    for k in range(K):
        # seed sequence (seed, k) -> one independent stream per model; the modulus keeps large
        # seeds (seed_for values) inside the generator's range, and leaves small ones unchanged
        s = seeds[k] if seeds is not None else (int(seed) * 1_000_003 + k) % 2 ** 63
        gens.append(make_generator(s, "cpu"))
    params: List[Tensor] = []
    for l, (fo, fi) in enumerate(spec.layer_dims):
        W = torch.stack([torch.randn(fo, fi, generator=g, dtype=torch.float64, device="cpu") for g in gens])
        params.append((W * stds[l]).to(device=dev, dtype=dt))
        if spec.bias:
            params.append(torch.zeros(K, fo, device=dev, dtype=dt))
        if spec.norm is not None and l < spec.depth:
            params.append(torch.ones(K, fo, device=dev, dtype=dt))
            params.append(torch.zeros(K, fo, device=dev, dtype=dt))
    return params


def num_models(params: Sequence[Tensor]) -> int:
    """K, the length of the leading model axis."""
    return int(params[0].shape[0])


def select_models(params: Sequence[Tensor], idx) -> List[Tensor]:
    """Sub-batch of models: ``idx`` an int, slice, list or bool mask. An int keeps the axis
    (``select_models(p, 2)`` has K = 1)."""
    if isinstance(idx, numbers.Integral):
        idx = slice(int(idx), int(idx) + 1)
    return [p[idx] for p in params]


def _check_params(spec: MLPSpec, params: Sequence[Tensor]) -> int:
    shapes = _param_shapes(spec)
    if not isinstance(params, (list, tuple)) or len(params) != len(shapes):
        raise ValueError(
            f"params: expected a list of {len(shapes)} tensors for this spec ({param_names(spec)}), "
            f"got {type(params).__name__} of length {len(params) if hasattr(params, '__len__') else '?'}"
        )
    K = params[0].shape[0] if params[0].dim() > 0 else -1
    for name, p, s in zip(param_names(spec), params, shapes):
        if tuple(p.shape[1:]) != s or p.shape[0] != K:
            raise ValueError(f"params: {name} has shape {tuple(p.shape)}, expected {(K,) + s}")
        if p.dtype != params[0].dtype or p.device != params[0].device:
            raise ValueError(f"params: {name} is {p.dtype} on {p.device}, the first tensor "
                             f"{params[0].dtype} on {params[0].device}: every tensor must share them")
    return int(K)


def _norm(spec: MLPSpec, z: Tensor, gamma: Tensor, beta: Tensor) -> Tensor:
    # z (K, N, n); gamma, beta (K, n)
    if spec.norm == "layernorm":
        mu = z.mean(dim=-1, keepdim=True)
        var = z.var(dim=-1, unbiased=False, keepdim=True)
    else:  # batchnorm: per model, per unit, over the N examples
        mu = z.mean(dim=-2, keepdim=True)
        var = z.var(dim=-2, unbiased=False, keepdim=True)
    zhat = (z - mu) / torch.sqrt(var + NORM_EPS)
    return zhat * gamma.unsqueeze(-2) + beta.unsqueeze(-2)


def forward(
    spec: MLPSpec,
    params: Sequence[Tensor],
    x: Tensor,
    *,
    return_preacts: bool = False,
    check: bool = True,
):
    """Outputs of the K models on a batch.

    Parameters
    ----------
    spec : MLPSpec
    params : list of Tensor
        As returned by :func:`init_params` (leading axis K).
    x : Tensor
        ``(N, d_in)`` shared by all models, or ``(K, N, d_in)`` one batch per model.
    return_preacts : bool
        Also return the hidden pre-activations ``z^{(l)}`` (before norm and ReLU).
    check : bool
        Validate shapes (set False in inner loops after validating once).

    Returns
    -------
    Tensor or (Tensor, list of Tensor)
        Output ``(K, N, d_out)``; with ``return_preacts`` also a list of ``depth``
        tensors ``(K, N, width)``.

    Raises
    ------
    ValueError
        If ``x`` or ``params`` do not match ``spec``.

    Example
    -------
    >>> spec = MLPSpec(3, 8, 2, 2)
    >>> out, z = forward(spec, init_params(spec, 2), torch.ones(4, 3, dtype=torch.float64), return_preacts=True)
    >>> out.shape, len(z), z[0].shape
    (torch.Size([2, 4, 2]), 2, torch.Size([2, 4, 8]))
    """
    if check:
        K = _check_params(spec, params)
        if not isinstance(x, Tensor):
            raise ValueError(f"x: expected a torch.Tensor, got {type(x).__name__}")
        if x.dim() == 2:
            if x.shape[1] != spec.d_in:
                raise ValueError(f"x: expected shape (N, {spec.d_in}), got {tuple(x.shape)}")
        elif x.dim() == 3:
            if x.shape[0] != K or x.shape[2] != spec.d_in:
                raise ValueError(f"x: expected shape ({K}, N, {spec.d_in}), got {tuple(x.shape)}")
        else:
            raise ValueError(f"x: expected shape (N, d_in) or (K, N, d_in), got {tuple(x.shape)}")
        if x.dtype != params[0].dtype or x.device != params[0].device:
            raise ValueError(
                f"x: dtype/device {x.dtype}/{x.device} differ from the parameters' "
                f"{params[0].dtype}/{params[0].device}"
            )
    return _forward(spec, params, x, return_preacts, None)


def _buf(ws: Optional[dict], key, shape, like: Tensor) -> Optional[Tensor]:
    # a workspace buffer (reused from step to step: no allocation, no fresh pages), or None
    if ws is None:
        return None
    t = ws.get(key)
    if t is None or tuple(t.shape) != tuple(shape) or t.dtype != like.dtype or t.device != like.device:
        t = ws[key] = torch.empty(shape, dtype=like.dtype, device=like.device)
    return t


def _bufs(ws: dict, key, shapes, like: Tensor) -> List[Tensor]:
    # a list of workspace buffers, checked once per call (one comparison, not one per buffer)
    sig = (tuple(shapes), like.dtype, like.device)
    ent = ws.get(key)
    if ent is None or ent[0] != sig:
        ent = ws[key] = (sig, [torch.empty(s, dtype=like.dtype, device=like.device) for s in shapes])
    return ent[1]


def _forward(spec: MLPSpec, params: Sequence[Tensor], x: Tensor, return_preacts: bool, saved: Optional[list],
             ws: Optional[dict] = None, mults: Optional[Tuple[float, ...]] = None):
    # the one forward pass. With ``saved`` (a list) it also keeps, per layer, what _backward needs:
    # [the layer's input as the batched matmul reads it (and autograd saves it), whether it was the
    # shared 2-D input, the ReLU's output or None]. With ``ws`` (a dict, no norm layers, no
    # preactivations) every output is written into a buffer of ws, reused by the next call: the same
    # operations (relu is clamp_min(z, 0), here in place), so the same values. ``mults``: the spec's
    # forward multipliers when the caller has them (a compiled step: no cached call to trace).
    mults = _mults(spec) if mults is None else mults
    preacts = []
    h = x
    i = 0
    K = params[0].shape[0]
    N = x.shape[-2]
    zs = None if ws is None else _bufs(ws, "z", [(K, N, fo) for fo, _ in spec.layer_dims], params[0])
    for l in range(spec.n_layers):
        W = params[i]
        i += 1
        Wt = W.transpose(1, 2)
        b = None
        if spec.bias:
            b = params[i]
            i += 1
        shared = h.dim() == 2
        if shared:  # matmul multiplies (and autograd saves) the shared input expanded over K
            he = h.expand(K, N, h.shape[1]).reshape(K, N, h.shape[1])
        if saved is not None:
            saved.append([he if shared else h, shared, None])
        out = None if zs is None else zs[l]
        if shared:  # shared input: (N, d) @ (K, d, n) -> (K, N, n)
            if out is None:
                z = torch.matmul(h, Wt)
            else:  # what matmul computes: bmm of the expanded input
                z = torch.bmm(he, Wt, out=out)
            if mults[l] != 1.0:
                z = z * mults[l] if out is None else z.mul_(mults[l])
            if b is not None:
                z = z + b.unsqueeze(1) if out is None else z.add_(b.unsqueeze(1))
        elif b is not None:
            z = (torch.baddbmm(b.unsqueeze(1), h, Wt, alpha=mults[l]) if out is None
                 else torch.baddbmm(b.unsqueeze(1), h, Wt, alpha=mults[l], out=out))
        else:
            z = torch.bmm(h, Wt) if out is None else torch.bmm(h, Wt, out=out)
            if mults[l] != 1.0:
                z = z * mults[l] if out is None else z.mul_(mults[l])
        if l < spec.depth:
            if return_preacts:
                preacts.append(z)
            if spec.norm is not None:
                z = _norm(spec, z, params[i], params[i + 1])
                i += 2
            h = torch.relu(z) if out is None else torch.relu_(z)
            if saved is not None:
                saved[-1][2] = h
        else:
            h = z
    return (h, preacts) if return_preacts else h


def _backward(spec: MLPSpec, params: Sequence[Tensor], saved: list, g: Tensor,
              ws: Optional[dict] = None, mults: Optional[Tuple[float, ...]] = None) -> List[Tensor]:
    """Closed-form gradients of the parameters (networks without norm layers) from the output
    gradient ``g`` ``(K, N, d_out)`` and what :func:`_forward` saved.

    These are the operations autograd runs for :func:`forward`, one for one (the two products of
    bmm's backward, ReLU's ``threshold_backward``, a multiplier's product, a bias's sum over the
    examples), so the gradients are bit-identical to autograd's (tests/test_mlp.py checks it).
    With ``ws`` the results (and ``g``, overwritten) live in buffers of ``ws`` reused by the next call,
    and the hidden ReLU outputs in ``saved`` are overwritten (by the input gradients of their layers).
    """
    if spec.norm is not None:
        raise ValueError("norm: the closed-form gradient covers networks without normalization layers")
    mults = _mults(spec) if mults is None else mults
    grads: List[Optional[Tensor]] = [None] * len(params)
    step = 2 if spec.bias else 1
    inplace = ws is not None
    if inplace:
        K, N = g.shape[0], g.shape[1]
        dims = spec.layer_dims
        gWs = _bufs(ws, "gW", [(K, fi, fo) for fo, fi in dims], params[0])
        gbs = _bufs(ws, "gb", [(K, 1, fo) for fo, _ in dims], params[0]) if spec.bias and N > 1 else None
        gh_top = _buf(ws, "gh", (K, N, dims[-1][1]), params[0])
    for l in range(spec.n_layers - 1, -1, -1):
        iw = l * step
        W = params[iw]
        h_in, shared, relu_out = saved[l]
        if relu_out is not None:
            g = (torch.ops.aten.threshold_backward.grad_input(g, relu_out, 0, grad_input=g) if inplace
                 else torch.ops.aten.threshold_backward(g, relu_out, 0))
        m = mults[l]
        if spec.bias:  # the broadcast bias: autograd's sum_to over the examples, then the squeeze
            if g.shape[1] == 1:
                gb = g.squeeze(1)
                grads[iw + 1] = gb.clone() if inplace else gb
            elif inplace:
                grads[iw + 1] = torch.sum(g, [1], keepdim=True, out=gbs[l]).squeeze(1)
            else:  # unbuffered (a compiled step): ATen's own sum, the same bits compiled
                grads[iw + 1] = aten_ops.sum_dim(g, 1, True).squeeze(1)
        gW_out = gWs[l] if inplace else None
        gh_out = None
        if inplace and l > 0:
            # the input gradient of a hidden layer goes into the buffer of that layer's ReLU output,
            # read for the last time just above (threshold_backward) and by the layer above's weight
            # gradient: a smaller working set, the same values
            gh_out = relu_out if relu_out is not None else gh_top
        if shared or not spec.bias:
            # z = matmul(x, Wt) [* m] [+ b] or bmm(h, Wt) [* m]: the product's gradient first
            if m != 1.0:
                g = g.mul_(m) if inplace else g * m
            grads[iw] = _bmm(h_in.transpose(1, 2), g, gW_out).transpose(1, 2)
            if l > 0:
                g = _bmm(g, W, gh_out)
        else:  # baddbmm(b, h, Wt, alpha=m): alpha multiplies each product
            gW = _bmm(h_in.transpose(1, 2), g, gW_out)
            if m != 1.0:
                gW = gW.mul_(m) if inplace else gW * m
            grads[iw] = gW.transpose(1, 2)
            if l > 0:
                gh = _bmm(g, W, gh_out)
                g = (gh.mul_(m) if inplace else gh * m) if m != 1.0 else gh
    return grads


def _bmm(a: Tensor, b: Tensor, out: Optional[Tensor]) -> Tensor:
    return torch.bmm(a, b) if out is None else torch.bmm(a, b, out=out)


def count_flops(spec: MLPSpec, n_examples: int, *, backward: bool = True) -> float:
    """Matmul FLOPs of one model on ``n_examples`` (2 per multiply-add; elementwise ops ignored).

    Forward: ``2 N fan_out fan_in`` per layer. Backward (``backward=True``): the weight
    gradient of every layer (same count) plus the input gradient of every layer but the
    first (the data need no gradient).
    """
    per = [2.0 * fo * fi * n_examples for fo, fi in spec.layer_dims]
    total = sum(per)
    if backward:
        total += sum(per) + sum(per[1:])
    return total


class CoreMLP(nn.Module):
    """One model of a :class:`MLPSpec` as a plain ``torch.nn.Module``.

    Holds ``linears`` (``nn.Linear``, weights are the raw trainable ``W_l``) and
    ``norms`` (``nn.LayerNorm`` / ``nn.BatchNorm1d`` in training mode without
    running statistics, or ``nn.Identity``); the forward multipliers are applied
    to ``W_l x`` only (not to the bias), exactly as in :func:`forward`. Input
    ``(N, d_in)``, output ``(N, d_out)``.
    """

    def __init__(self, spec: MLPSpec, *, device: DeviceLike = "cpu", dtype: torch.dtype = torch.float64):
        super().__init__()
        self.spec = spec
        self.multipliers = forward_multipliers(spec)
        self.linears = nn.ModuleList(
            nn.Linear(fi, fo, bias=spec.bias, device=device, dtype=dtype) for fo, fi in spec.layer_dims
        )
        norms = []
        for _ in range(spec.depth):
            if spec.norm == "layernorm":
                norms.append(nn.LayerNorm(spec.width, eps=NORM_EPS, device=device, dtype=dtype))
            elif spec.norm == "batchnorm":
                norms.append(
                    nn.BatchNorm1d(spec.width, eps=NORM_EPS, track_running_stats=False, device=device, dtype=dtype)
                )
            else:
                norms.append(nn.Identity())
        self.norms = nn.ModuleList(norms)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        h = x
        for l, lin in enumerate(self.linears):
            z = F.linear(h, lin.weight)
            if self.multipliers[l] != 1.0:
                z = z * self.multipliers[l]
            if lin.bias is not None:
                z = z + lin.bias
            if l < self.spec.depth:
                h = torch.relu(self.norms[l](z))
            else:
                h = z
        return h


def to_module(spec: MLPSpec, params: Sequence[Tensor], k: int = 0) -> CoreMLP:
    """Copy model ``k`` of a batch into a :class:`CoreMLP` (same device and dtype).

    Raises
    ------
    ValueError
        If ``params`` do not match ``spec`` or ``k`` is out of range.

    Example
    -------
    >>> spec = MLPSpec(2, 4, 1, 1, bias=True)
    >>> m = to_module(spec, init_params(spec, 3), k=1)
    >>> m(torch.zeros(5, 2, dtype=torch.float64)).shape
    torch.Size([5, 1])
    """
    K = _check_params(spec, params)
    integer(k, "k", minimum=0, maximum=K - 1)
    mod = CoreMLP(spec, device=params[0].device, dtype=params[0].dtype)
    i = 0
    with torch.no_grad():
        for l in range(spec.n_layers):
            mod.linears[l].weight.copy_(params[i][k])
            i += 1
            if spec.bias:
                mod.linears[l].bias.copy_(params[i][k])
                i += 1
            if spec.norm is not None and l < spec.depth:
                mod.norms[l].weight.copy_(params[i][k])
                mod.norms[l].bias.copy_(params[i + 1][k])
                i += 2
    return mod


def from_module(module: nn.Module) -> Tuple[MLPSpec, List[Tensor]]:
    """Inverse of :func:`to_module`: ``(spec, params)`` with K = 1 (detached copies).

    Accepts a :class:`CoreMLP`, or a plain ``nn.Sequential`` of ``nn.Linear`` and
    ``nn.ReLU`` layers alternating (``Linear, ReLU, ..., Linear``, equal hidden widths,
    all-or-no biases), read as ``parametrization="standard"`` (multipliers 1).

    Raises
    ------
    ValueError
        If the module is neither of these.
    """
    if isinstance(module, CoreMLP):
        spec = module.spec
        params: List[Tensor] = []
        for l in range(spec.n_layers):
            lin = module.linears[l]
            params.append(lin.weight.detach().clone().unsqueeze(0))
            if spec.bias:
                params.append(lin.bias.detach().clone().unsqueeze(0))
            if spec.norm is not None and l < spec.depth:
                params.append(module.norms[l].weight.detach().clone().unsqueeze(0))
                params.append(module.norms[l].bias.detach().clone().unsqueeze(0))
        return spec, params
    if isinstance(module, nn.Sequential):
        layers = list(module)
        lins = layers[0::2]
        acts = layers[1::2]
        ok = (
            len(layers) % 2 == 1
            and len(lins) >= 2
            and all(isinstance(m, nn.Linear) for m in lins)
            and all(isinstance(a, nn.ReLU) for a in acts)
        )
        if ok:
            widths = {m.out_features for m in lins[:-1]}
            has_bias = {m.bias is not None for m in lins}
            chained = all(lins[i].out_features == lins[i + 1].in_features for i in range(len(lins) - 1))
            if len(widths) == 1 and len(has_bias) == 1 and chained:
                spec = MLPSpec(
                    d_in=lins[0].in_features,
                    width=lins[0].out_features,
                    depth=len(lins) - 1,
                    d_out=lins[-1].out_features,
                    bias=has_bias.pop(),
                )
                params = []
                for m in lins:
                    params.append(m.weight.detach().clone().unsqueeze(0))
                    if spec.bias:
                        params.append(m.bias.detach().clone().unsqueeze(0))
                return spec, params
    raise ValueError(
        "module: expected a CoreMLP or an nn.Sequential(Linear, ReLU, ..., Linear) with equal hidden widths, "
        f"got {type(module).__name__}"
    )
