"""Tests of lrtheory.core.data: shapes, fixed splits per seed, standardization, validation."""
import random

import numpy as np
import pytest
import torch

from lrtheory.core.data import MNIST1D_AVAILABLE, Dataset, digits, gaussian_teacher, mnist1d, one_hot, two_gaussians


def test_digits_split_and_standardization():
    ds = digits(seed=0, device="cpu")
    assert isinstance(ds, Dataset) and ds.n_classes == 10 and ds.name == "digits"
    assert ds.x_train.shape[1] == 64 and ds.x_train.shape[0] + ds.x_test.shape[0] == 1797
    assert ds.x_test.shape[0] == round(0.25 * 1797)
    assert ds.x_train.dtype == torch.float64 and ds.y_train.dtype == torch.int64
    assert set(ds.y_train.unique().tolist()) == set(range(10))
    # training statistics: mean 0 and std 1 for non-constant pixels (exact up to round-off: 1e-12)
    sd = ds.x_train.std(0, unbiased=False)
    assert ds.x_train.mean(0).abs().max() < 1e-12
    assert ((sd - 1).abs() < 1e-12).logical_or(sd == 0).all()
    # same seed -> same split; other seed -> another split
    again, other = digits(seed=0, device="cpu"), digits(seed=1, device="cpu")
    assert torch.equal(ds.x_train, again.x_train) and torch.equal(ds.y_test, again.y_test)
    assert not torch.equal(ds.y_train, other.y_train)
    small = digits(seed=0, n_train=100, standardize=False, dtype=torch.float32, device="cpu")
    assert small.x_train.shape == (100, 64) and small.x_train.dtype == torch.float32
    assert 0 <= small.x_train.min() and small.x_train.max() <= 1


def test_one_hot():
    ds = digits(seed=0, n_train=50, device="cpu").one_hot(scale=2.0)
    assert ds.y_train.shape == (50, 10) and set(ds.y_train.sum(1).tolist()) == {2.0}
    assert one_hot(torch.tensor([0, 2]), 3).tolist() == [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    with pytest.raises(ValueError, match="labels"):
        one_hot(torch.tensor([0, 3]), 3)


def test_gaussian_teacher():
    reg = gaussian_teacher(40, 10, 5, d_out=2, noise_std=0.1, seed=3, device="cpu")
    assert reg.n_classes is None and reg.y_train.shape == (40, 2) and reg.x_test.shape == (10, 5)
    assert reg.d_out == 2 and reg.y_train.dtype == torch.float64
    cls = gaussian_teacher(200, 50, 5, task="classification", n_classes=3, seed=3, device="cpu")
    assert cls.n_classes == 3 and cls.y_train.dtype == torch.int64 and cls.y_train.max() < 3
    assert torch.equal(cls.x_train, gaussian_teacher(200, 50, 5, task="classification", n_classes=3, seed=3,
                                                     device="cpu").x_train)
    # noiseless regression targets are a deterministic function of x: equal x -> equal y
    clean = gaussian_teacher(40, 10, 5, seed=3, device="cpu")
    assert torch.isfinite(clean.y_train).all() and clean.y_train.std() > 0.1


def test_two_gaussians_separable_at_large_separation():
    ds = two_gaussians(400, 100, 10, separation=8.0, seed=1, device="cpu")
    # project on the class-mean difference: with separation 8 the Bayes error is Phi(-4) ~ 3e-5
    mu = ds.x_train[ds.y_train == 1].mean(0) - ds.x_train[ds.y_train == 0].mean(0)
    pred = ((ds.x_test @ mu) > (ds.x_train @ mu).mean()).long()
    assert (pred == ds.y_test).double().mean() > 0.97
    assert 0.35 < ds.y_train.double().mean() < 0.65


@pytest.mark.skipif(not MNIST1D_AVAILABLE, reason="mnist1d package not installed")
def test_mnist1d_local_and_deterministic():
    np.random.seed(123)
    random.seed(123)
    state_np, state_py = np.random.get_state()[1].copy(), random.getstate()
    ds = mnist1d(seed=0, n_samples=400, device="cpu")
    assert ds.x_train.shape == (320, 40) and ds.x_test.shape == (80, 40) and ds.n_classes == 10
    assert torch.equal(ds.x_train, mnist1d(seed=0, n_samples=400, device="cpu").x_train)
    assert not torch.equal(ds.x_train, mnist1d(seed=1, n_samples=400, device="cpu").x_train)
    # the package's global seeding is undone
    assert np.array_equal(np.random.get_state()[1], state_np) and random.getstate() == state_py


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: digits(seed=-1), "seed"),
        (lambda: digits(test_fraction=1.5), "test_fraction"),
        (lambda: digits(n_train=5000), "n_train"),
        (lambda: gaussian_teacher(0, 10, 3), "n_train"),
        (lambda: gaussian_teacher(10, 10, 3, task="ranking"), "task"),
        (lambda: gaussian_teacher(10, 10, 3, task="classification", n_classes=1), "n_classes"),
        (lambda: gaussian_teacher(10, 10, 3, noise_std=-1.0), "noise_std"),
        (lambda: two_gaussians(10, 10, 3, separation=0.0), "separation"),
        (lambda: mnist1d(n_samples=5), "n_samples"),
    ],
)
def test_data_validation(call, name):
    with pytest.raises(ValueError, match=name):
        call()
