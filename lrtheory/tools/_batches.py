"""The checks every curvature tool runs on a user's model and data, with errors that name the fix.

``data`` is one ``(inputs, targets)`` batch or an iterable of them (a list, a
``torch.utils.data.DataLoader``). ``inputs`` is a Tensor or a tuple of Tensors (passed to the
model as positional arguments); ``targets`` is whatever ``loss_fn(outputs, targets)`` takes.
The weight of a batch is its number of examples (the first dimension of its first input).
"""
from __future__ import annotations

from typing import Any, Iterable, Iterator, List, Optional, Tuple

import torch
from torch import Tensor, nn

__all__ = ["Batch", "DataSet", "as_dataset", "trainable", "check_deterministic", "dense_fits"]

Batch = Tuple[Tuple[Tensor, ...], Any, int]  # (inputs as a tuple, targets, number of examples)

# modules whose forward is random in training mode
_STOCHASTIC = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


def _is_batch(obj) -> bool:
    return isinstance(obj, (tuple, list)) and len(obj) == 2 and isinstance(obj[0], Tensor)


def _batch(obj, i: int, dtype: Optional[torch.dtype], device) -> Batch:
    if not (isinstance(obj, (tuple, list)) and len(obj) == 2):
        raise ValueError(f"data: batch {i} must be a pair (inputs, targets), got {type(obj).__name__}")
    inputs, targets = obj
    ins = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    if not ins or not all(isinstance(t, Tensor) for t in ins):
        raise ValueError(f"data: the inputs of batch {i} must be a Tensor or a tuple of Tensors")
    n = ins[0].shape[0] if ins[0].dim() > 0 else 1
    if n == 0 or any(t.numel() == 0 for t in ins):
        raise ValueError(f"data: batch {i} is empty (inputs of shape {tuple(ins[0].shape)}); the mean loss "
                         "over no examples has no Hessian")
    for t in ins:
        if t.dtype.is_floating_point and not bool(torch.isfinite(t).all()):
            raise ValueError(f"data: the inputs of batch {i} contain NaN or Inf")
    if isinstance(targets, Tensor) and targets.dtype.is_floating_point and not bool(torch.isfinite(targets).all()):
        raise ValueError(f"data: the targets of batch {i} contain NaN or Inf")
    # inputs follow the model: float inputs take its dtype, everything moves to its device
    ins = tuple(t.to(device=device, dtype=dtype if (dtype is not None and t.dtype.is_floating_point) else t.dtype)
                for t in ins)
    if isinstance(targets, Tensor):
        targets = targets.to(device=device, dtype=dtype if (dtype is not None and targets.dtype.is_floating_point)
                             else targets.dtype)
    return ins, targets, int(n)


class DataSet:
    """A re-iterable view of ``data`` as checked batches, with the total number of examples.

    One batch, a list, or a re-iterable (a DataLoader) is iterated again on every pass; a
    one-shot iterator (a generator) is read once into a list.
    """

    def __init__(self, data, dtype: Optional[torch.dtype] = None, device=None):
        if data is None:
            raise ValueError("data: expected an (inputs, targets) batch or an iterable of batches, got None")
        if _is_batch(data):
            self._source: Iterable = [data]
        else:
            try:
                it = iter(data)
            except TypeError:
                raise ValueError("data: expected an (inputs, targets) batch or an iterable of batches, got "
                                 f"{type(data).__name__}") from None
            self._source = list(it) if it is data else data
        self.dtype, self.device = dtype, device
        self.single = isinstance(self._source, list) and len(self._source) == 1
        self._cached: Optional[List[Batch]] = None
        batches = list(self._iter())
        if not batches:
            raise ValueError("data: contains no batch")
        self.n_examples = sum(b[2] for b in batches)
        self.n_batches = len(batches)
        if isinstance(self._source, list):
            self._cached = batches  # tensors already checked and moved

    def _iter(self) -> Iterator[Batch]:
        for i, obj in enumerate(self._source):
            yield _batch(obj, i, self.dtype, self.device)

    def __iter__(self) -> Iterator[Batch]:
        return iter(self._cached) if self._cached is not None else self._iter()

    def weights(self) -> Iterator[Tuple[Batch, float]]:
        """Each batch with its weight ``n_b / N`` (the mean loss over the data set is the weighted sum)."""
        for b in self:
            yield b, b[2] / self.n_examples


def as_dataset(data, targets, dtype, device) -> DataSet:
    """``data`` (with ``targets`` for the two-argument form ``(inputs, targets)``) as a DataSet."""
    if targets is not _MISSING:
        data = (data, targets)
    return DataSet(data, dtype=dtype, device=device)


class _Missing:
    def __repr__(self):
        return "<missing>"


_MISSING: Any = _Missing()


def trainable(model: nn.Module) -> Tuple[List[str], List[Tensor]]:
    """Names and tensors of the trainable parameters, checked: some exist, one dtype, finite."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError("model: has no parameter with requires_grad=True")
    dtypes = {p.dtype for _, p in named}
    if len(dtypes) != 1:
        raise ValueError(f"model: parameters must share one dtype, got {sorted(map(str, dtypes))}; "
                         "convert the model, e.g. model.double()")
    for n, p in named:
        if not bool(torch.isfinite(p.detach()).all()):
            raise ValueError(f"model: parameter {n!r} contains NaN or Inf")
    return [n for n, _ in named], [p for _, p in named]


def check_deterministic(model: nn.Module) -> None:
    """Reject modules whose forward is random in training mode: their loss has no fixed Hessian."""
    for name, m in model.named_modules():
        if isinstance(m, _STOCHASTIC):
            p = m.p
        elif isinstance(m, nn.MultiheadAttention):
            p = m.dropout
        else:
            continue
        if m.training and p > 0:
            label = name or type(model).__name__
            raise ValueError(f"model: {type(m).__name__} module {label!r} is in training mode, so the loss (and "
                             "its Hessian) changes at every call; call model.eval() before measuring the curvature")


def dense_fits(n: int, dtype: torch.dtype, device, what: str = "a dense Hessian") -> None:
    """Raise a ValueError when an ``n x n`` matrix (and its eigendecomposition) would not fit in memory."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    need = 3 * n * n * itemsize  # the matrix, eigh's workspace and the eigenvectors
    avail = _available_bytes(device)
    if need > avail:
        raise ValueError(f"method: {what} of {n} parameters needs about {need / 2**30:.1f} GiB, more than the "
                         f"{avail / 2**30:.1f} GiB available; use method='lanczos' or 'eigsh' (Hessian-vector "
                         "products only)")


def _available_bytes(device) -> float:
    dev = torch.device(device) if device is not None else torch.device("cpu")
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return float(free)
    try:
        import psutil

        return float(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover - psutil is a dependency of the test tools only
        import os

        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
