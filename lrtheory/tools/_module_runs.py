"""Training runs of :func:`lrtheory.tools.max_lr.max_initial_lr` on a user's own module factory.

Plain SGD, one candidate at a time, on tensors or on DataLoaders; validation in eval mode.
"""
from __future__ import annotations

import math
import sys
from typing import Callable, Iterator, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from lrtheory.core.device import make_generator

__all__ = ["Loaders", "gather", "train_module", "loss_fn", "Progress"]


class Loaders:
    """Training and validation data given as iterables of ``(inputs, targets)`` batches."""

    def __init__(self, train, val):
        self.train, self.val = train, val


def gather(batches, name: str) -> Tuple[Tensor, Tensor]:
    """Concatenate an iterable of ``(inputs, targets)`` batches into two tensors."""
    xs, ys = [], []
    for i, b in enumerate(batches):
        if not (isinstance(b, (tuple, list)) and len(b) == 2 and isinstance(b[0], Tensor) and isinstance(b[1], Tensor)):
            raise ValueError(f"data: batch {i} of the {name} data is not a pair (inputs, targets) of tensors")
        xs.append(b[0])
        ys.append(b[1])
    if not xs:
        raise ValueError(f"data: the {name} data has no batch")
    return torch.cat(xs), torch.cat(ys)


def loss_fn(loss: str) -> Callable:
    if loss == "ce":
        return lambda out, y: nn.functional.cross_entropy(out, y)
    return lambda out, y: 0.5 * ((out - y.reshape(out.shape)) ** 2).sum(-1).mean() if out.dim() > 1 else \
        0.5 * ((out - y) ** 2).mean()


def _cast(x: Tensor, y: Tensor, loss: str, dt, device) -> Tuple[Tensor, Tensor]:
    x = x.to(device=device, dtype=dt) if x.dtype.is_floating_point else x.to(device)
    return x, (y.to(device) if loss == "ce" else y.to(device=device, dtype=dt))


def _tensor_batches(xt, yt, batch_size, data_seed) -> Iterator[Tuple[Tensor, Tensor]]:
    if batch_size is None:
        while True:
            yield xt, yt
    N = xt.shape[0]
    gen = make_generator(data_seed, "cpu")
    while True:
        order = torch.randperm(N, generator=gen)
        for i in range(N // batch_size):
            idx = order[i * batch_size:(i + 1) * batch_size].to(xt.device)
            yield xt.index_select(0, idx), yt.index_select(0, idx)


def _loader_batches(loader, data_seed) -> Iterator:
    """Cycle over a DataLoader; every candidate sees the same batch order (the global RNG that a
    shuffling loader draws from is seeded by ``data_seed`` and the epoch, then restored)."""
    epoch = 0
    while True:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(data_seed) * 1_000_003 + epoch)
            it = iter(loader)
            first = next(it, None)
        if first is None:
            raise ValueError("data: the training loader yields no batch")
        yield first
        yield from it
        epoch += 1


def _evaluate(model, val, metric, loss, lf, threshold, dt, device) -> Tuple[float, bool]:
    """Validation metric over tensors or a loader (mean over examples), in eval mode."""
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            tot, n = 0.0, 0
            for xv, yv in ([val] if isinstance(val, tuple) else val):
                xv, yv = _cast(xv, yv, loss, dt, device)
                out = model(xv)
                m = xv.shape[0]
                if metric == "accuracy":
                    hit = (out.argmax(-1) == yv.reshape(-1)) if (loss == "ce" or yv.dim() == 1) else \
                        (out.argmax(-1) == yv.argmax(-1))
                    tot += float(hit.to(torch.float64).sum())
                else:
                    tot += float(lf(out, yv)) * m
                n += m
    finally:
        model.train(was)
    v = tot / n
    ok = (v >= threshold) if metric == "accuracy" else (math.isfinite(v) and v <= threshold)
    return v, ok


def train_module(factory, parts, etas, seeds, *, steps, loss, metric, threshold, batch_size, eval_every,
                 data_seed, device, on_run: Optional[Callable[[int], None]] = None):
    """Plain per-candidate SGD for a user's model factory; ``parts`` is ``(xt, yt, xv, yv)`` or Loaders."""
    lf = loss_fn(loss)
    K = len(etas)
    success = np.zeros(K, dtype=bool)
    best = np.full(K, np.nan)
    first = np.full(K, -1, dtype=np.int64)
    diverged = np.zeros(K, dtype=bool)
    for k, (eta, s) in enumerate(zip(etas, seeds)):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(s))
            model = factory()
        if not isinstance(model, nn.Module):
            raise ValueError(f"make_model_or_spec: the factory must return a torch.nn.Module, got {type(model).__name__}")
        model = model.to(device)
        model.train()
        ps = [p for p in model.parameters() if p.requires_grad]
        if not ps:
            raise ValueError("make_model_or_spec: the model has no trainable parameters")
        dt = ps[0].dtype
        if isinstance(parts, Loaders):
            train_it, val = _loader_batches(parts.train, data_seed), parts.val
        else:
            xt, yt = _cast(parts[0], parts[1], loss, dt, device)
            train_it, val = _tensor_batches(xt, yt, batch_size, data_seed), (parts[2], parts[3])
        thresh_div = None
        vals: List[float] = []
        for t in range(1, steps + 1):
            xb, yb = _cast(*next(train_it), loss, dt, device)
            model.zero_grad(set_to_none=True)
            lval = lf(model(xb), yb)
            lv = float(lval.detach())
            if thresh_div is None:
                thresh_div = 1e6 * max(lv if math.isfinite(lv) else 1.0, 1.0)
            if not math.isfinite(lv) or lv > thresh_div:
                diverged[k] = True
                break
            lval.backward()
            with torch.no_grad():
                for p in ps:
                    if p.grad is not None:
                        p.sub_(float(eta) * p.grad)
                if not all(torch.isfinite(p).all() for p in ps):
                    diverged[k] = True
                    break
            if t % eval_every == 0 or t == steps:
                v, ok = _evaluate(model, val, metric, loss, lf, threshold, dt, device)
                vals.append(v)
                if ok and not success[k]:
                    success[k] = True
                    first[k] = t
        fin = [v for v in vals if math.isfinite(v)]
        if fin:
            best[k] = max(fin) if metric == "accuracy" else min(fin)
        if on_run is not None:
            on_run(k)
    return success, best, first, diverged


class Progress:
    """A one-line progress report on stderr: candidates done in the current round, best eta so far.

    ``enabled=None`` shows it only when stderr is a terminal (as tqdm does)."""

    def __init__(self, enabled: Optional[bool], rounds: int):
        stream = sys.stderr
        self.enabled = bool(enabled) if enabled is not None else bool(getattr(stream, "isatty", lambda: False)())
        self.rounds = rounds
        self.tty = bool(getattr(stream, "isatty", lambda: False)())

    def update(self, r: int, done: int, total: int, best: float, final: bool = False) -> None:
        """Show the state of round ``r``; off a terminal only the ``final`` report of a round is written."""
        if not self.enabled or (not self.tty and not final):
            return
        best_s = f"{best:.4g}" if math.isfinite(best) else "none yet"
        msg = f"max_initial_lr: round {r}/{self.rounds}: {done}/{total} runs, largest successful eta {best_s}"
        if self.tty:
            sys.stderr.write("\r" + msg + ("\n" if final else ""))
        else:
            sys.stderr.write(msg + "\n")
        sys.stderr.flush()
