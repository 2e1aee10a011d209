"""lrtheory.tools.max_lr.max_initial_lr: validation, a closed-form eta*, determinism, both training paths."""
import math

import numpy as np
import pytest
import torch

from lrtheory.core.data import digits
from lrtheory.core.mlp import MLPSpec
from lrtheory.tools.max_lr import max_initial_lr


# ---------------------------------------------------------------- a toy with a known eta*
# One-parameter linear regression f(x) = w x, loss (1/2) mean (w x - y)^2 with y = w_true x, w(0) = 0:
# GD gives w_t - w_true = (1 - eta lam)^t (0 - w_true), lam = mean x^2, so the loss after t steps is
# (lam/2) w_true^2 (1 - eta lam)^(2t). It meets "loss <= thr" at step T (and, above 1/lam, only at the
# last step, where |1 - eta lam|^T is smallest) iff |1 - eta lam| <= r := (2 thr / (lam w_true^2))^(1/(2T)).
# Hence eta* = (1 + r) / lam, just below the divergence edge 2/lam.
W_TRUE, T, THR = 3.0, 20, 1e-3
X = torch.linspace(-1, 1, 32, dtype=torch.float64).reshape(-1, 1)
Y = W_TRUE * X
LAM = float((X**2).mean())
ETA_STAR = (1 + (2 * THR / (LAM * W_TRUE**2)) ** (1 / (2 * T))) / LAM


def make_linear():
    m = torch.nn.Linear(1, 1, bias=False).double()
    torch.nn.init.zeros_(m.weight)
    return m


def toy(**kw):
    args = dict(threshold=THR, steps=T, seeds=1, metric="loss", eval_every=1)
    args.update(kw)
    return max_initial_lr(make_linear, (X, Y, X, Y), **args)


def test_closed_form_eta_star_inside_bracket():
    r = toy(rounds=3)
    assert ETA_STAR < 2 / LAM
    # exact bracketing: lo succeeded and hi failed, so the true eta* lies in [lo, hi)
    assert r.bracket[0] <= ETA_STAR < r.bracket[1]
    # 3 rounds of 3 points refine a factor-2 grid step to 2^(1/64): relative error < 1.1%
    assert r.bracket[1] / r.bracket[0] <= 2 ** (1 / 64) * (1 + 1e-9)
    assert abs(r.eta_star - ETA_STAR) / ETA_STAR < 0.011


def test_the_linear_model_diverges_above_two_over_lambda():
    r = toy(grid=[1.0 / LAM, 2.2 / LAM, 4.0 / LAM], rounds=0)
    runs = {round(x.eta * LAM, 6): x for x in r.runs}
    assert runs[1.0].success and not runs[2.2].success and not runs[4.0].success


def test_refinement_is_needed_tiny_lrs_also_fail():
    # the smallest grid LR is too slow to reach the threshold: failure below eta* too
    r = toy(grid=[1e-4, 1.0, 2.0], rounds=1)
    small = [x for x in r.runs if x.eta == 1e-4][0]
    assert not small.success and not small.diverged
    assert r.bracket[0] <= ETA_STAR < r.bracket[1]


def test_open_bracket_is_extended_upward():
    r = toy(grid=[0.25, 0.5], rounds=4, points_per_round=2)  # top of the grid succeeds: extend
    assert r.bracket[0] <= ETA_STAR < r.bracket[1]


def test_no_success_returns_nan_not_an_error():
    r = toy(grid=[1e-6, 1e-5], rounds=2)
    assert not r.found and math.isnan(r.eta_star)
    assert len(r.runs) == 2 and not any(x.success for x in r.runs)


def test_determinism_and_success_table():
    a, b = toy(seeds=[0, 5], rounds=1), toy(seeds=[0, 5], rounds=1)
    assert a.runs == b.runs and a.eta_star == b.eta_star
    etas, tab = a.success_table()
    assert tab.shape == (etas.size, 2) and np.all(np.diff(etas) > 0)


# ---------------------------------------------------------------- the batched spec path
@pytest.fixture(scope="module")
def small_digits():
    return digits(seed=0, n_train=300, device="cpu")


def test_spec_path_brackets_and_is_deterministic(small_digits):
    spec = MLPSpec(d_in=64, width=16, depth=2, d_out=10, input_lr_mult=0.1)
    kw = dict(threshold=0.6, steps=40, seeds=2, grid=[2.0 ** k for k in range(-3, 4)], rounds=1,
              batch_size=50, eval_every=10, device="cpu")
    r = max_initial_lr(spec, small_digits, **kw)
    assert r.found
    for j, s in enumerate(r.seeds):
        lo, hi = r.lo[j], r.hi[j]
        runs = {x.eta: x for x in r.runs if x.seed == s}
        assert runs[lo].success and (not math.isfinite(hi) or not runs[hi].success)
        assert all(not x.success for e, x in runs.items() if e > lo)  # lo is the largest success seen
    r2 = max_initial_lr(spec, small_digits, **kw)
    assert r2.runs == r.runs  # same seeds -> identical runs, bit for bit


def test_spec_and_module_paths_agree_on_the_same_network(small_digits):
    # an MLPSpec and a factory building the same nn.Module are the same search (GD, no minibatch order)
    from lrtheory.core.mlp import init_params, to_module

    spec = MLPSpec(d_in=64, width=8, depth=1, d_out=10)
    nets = {s: to_module(spec, init_params(spec, 1, seed=s), 0) for s in (0,)}

    def factory():
        import copy
        return copy.deepcopy(nets[0])

    kw = dict(threshold=0.5, steps=15, seeds=[0], grid=[0.05, 0.2, 0.8, 3.2], rounds=0, eval_every=5, device="cpu")
    a = max_initial_lr(spec, small_digits, **kw)
    b = max_initial_lr(factory, small_digits, **kw)
    assert [x.success for x in a.runs] == [x.success for x in b.runs]
    # accuracies agree to round-off (float64, same arithmetic up to summation order)
    np.testing.assert_allclose([x.best_metric for x in a.runs], [x.best_metric for x in b.runs], atol=1e-12)


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize("kw, match", [
    (dict(threshold=0.0), "threshold"),
    (dict(threshold=1.5), "threshold"),
    (dict(threshold=float("nan")), "threshold"),
    (dict(steps=0), "steps"),
    (dict(steps=2.5), "steps"),
    (dict(seeds=0), "seeds"),
    (dict(seeds=[1, 1]), "seeds"),
    (dict(grid=[0.1]), "grid"),
    (dict(grid=[0.1, -1.0]), "grid"),
    (dict(rounds=-1), "rounds"),
    (dict(points_per_round=0), "points_per_round"),
    (dict(metric="f1"), "metric"),
    (dict(loss="hinge"), "loss"),
    (dict(batch_size=10_000), "batch_size"),
    (dict(eval_every=0), "eval_every"),
])
def test_bad_arguments_raise(kw, match, small_digits):
    args = dict(threshold=0.5, steps=5)
    args.update(kw)
    spec = MLPSpec(d_in=64, width=4, depth=1, d_out=10)
    with pytest.raises(ValueError, match=match):
        max_initial_lr(spec, small_digits, **args)


def test_bad_models_and_data_raise(small_digits):
    with pytest.raises(ValueError, match="factory"):
        max_initial_lr(make_linear(), (X, Y, X, Y), threshold=1.0, steps=2, metric="loss")
    with pytest.raises(ValueError, match="make_model_or_spec"):
        max_initial_lr(42, (X, Y, X, Y), threshold=1.0, steps=2, metric="loss")
    with pytest.raises(ValueError, match="nn.Module"):
        max_initial_lr(lambda: "not a model", (X, Y, X, Y), threshold=1.0, steps=2, metric="loss", grid=[0.1, 0.2])
    with pytest.raises(ValueError, match="data"):
        max_initial_lr(make_linear, (X, Y), threshold=1.0, steps=2, metric="loss")
    with pytest.raises(ValueError, match="data"):
        max_initial_lr(make_linear, (X, Y[:5], X, Y), threshold=1.0, steps=2, metric="loss")
    with pytest.raises(ValueError, match="data"):
        max_initial_lr(MLPSpec(d_in=3, width=4, depth=1, d_out=10), small_digits, threshold=0.5, steps=2)


# ---------------------------------------------------------------- any module, DataLoaders, progress (issue 19)
def _image_data(n=120, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 6, 6, generator=g, dtype=torch.float64)
    y = (x[:, 0, :3].sum((1, 2)) > x[:, 0, 3:].sum((1, 2))).long()  # which half is brighter
    return x[:80], y[:80], x[80:], y[80:]


def make_cnn():
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(4 * 4 * 4, 2)).double()


def test_a_cnn_on_images_is_accepted():
    # before: "data: x_train and x_val must be (N, d)"
    r = max_initial_lr(make_cnn, _image_data(), threshold=0.8, steps=30, seeds=2, grid=[0.01, 0.1, 1.0, 10.0],
                       rounds=1, eval_every=5)
    assert r.found and r.bracket[0] <= r.eta_star < r.bracket[1]
    with pytest.raises(ValueError, match="data: x_train and x_val must be"):
        xt, yt, xv, yv = _image_data()
        max_initial_lr(make_cnn, (xt, yt, xv[:, :, :5], yv), threshold=0.8, steps=2)


class _ModeRecorder(torch.nn.Module):
    """A linear model that records, at each forward, whether it is in training mode and whether
    gradients are being recorded (training steps) or not (validation)."""

    log = []

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(1, 1, bias=False).double()
        torch.nn.init.zeros_(self.lin.weight)

    def forward(self, x):
        _ModeRecorder.log.append((self.training, torch.is_grad_enabled()))
        return self.lin(x)


def test_validation_runs_in_eval_mode_and_training_in_train_mode():
    # before: validation ran in train mode (Dropout active, BatchNorm on batch statistics)
    _ModeRecorder.log = []
    max_initial_lr(_ModeRecorder, (X, Y, X, Y), threshold=THR, steps=T, seeds=1, metric="loss", rounds=0,
                   grid=[0.5, 1.0])
    train = [m for m, grad in _ModeRecorder.log if grad]
    val = [m for m, grad in _ModeRecorder.log if not grad]
    assert train and val and all(train) and not any(val)


def test_dataloaders_give_the_same_search_as_tensors():
    xt, yt, xv, yv = _image_data()
    TD, DL = torch.utils.data.TensorDataset, torch.utils.data.DataLoader
    kw = dict(threshold=0.8, steps=20, seeds=[0, 1], grid=[0.01, 0.1, 1.0, 10.0], rounds=1, eval_every=5)
    a = max_initial_lr(make_cnn, (xt, yt, xv, yv), **kw)
    loaders = (DL(TD(xt, yt), batch_size=80), DL(TD(xv, yv), batch_size=16))  # full batch; val in 3 batches
    b = max_initial_lr(make_cnn, loaders, **kw)
    assert [(r.eta, r.success) for r in a.runs] == [(r.eta, r.success) for r in b.runs]
    np.testing.assert_allclose([r.best_metric for r in a.runs], [r.best_metric for r in b.runs], atol=1e-12)
    # minibatches from a shuffling loader: the same batch order for every candidate, reproducible
    shuf = (DL(TD(xt, yt), batch_size=16, shuffle=True), DL(TD(xv, yv), batch_size=40))
    c1, c2 = (max_initial_lr(make_cnn, shuf, **kw) for _ in range(2))
    assert c1.runs == c2.runs
    with pytest.raises(ValueError, match="batch_size"):
        max_initial_lr(make_cnn, shuf, batch_size=8, **kw)
    with pytest.raises(ValueError, match="one-shot"):
        max_initial_lr(make_cnn, (iter([(xt, yt)]), [(xv, yv)]), **kw)


def test_spec_path_accepts_dataloaders(small_digits):
    d = small_digits
    TD, DL = torch.utils.data.TensorDataset, torch.utils.data.DataLoader
    spec = MLPSpec(d_in=64, width=8, depth=1, d_out=10)
    kw = dict(threshold=0.5, steps=15, seeds=[0], grid=[0.05, 0.2, 0.8, 3.2], rounds=0, eval_every=5)
    a = max_initial_lr(spec, d, **kw)
    b = max_initial_lr(spec, (DL(TD(d.x_train, d.y_train), batch_size=64), DL(TD(d.x_test, d.y_test), batch_size=64)),
                       **kw)
    assert a.runs == b.runs


def test_progress_and_callback(capsys):
    # before: the search ran silently, with no way to follow it
    seen = []
    r = max_initial_lr(make_linear, (X, Y, X, Y), threshold=THR, steps=T, seeds=1, metric="loss", rounds=2,
                       progress=True, callback=seen.append)
    err = capsys.readouterr().err
    assert "max_initial_lr: round 0/2" in err and "round 2/2" in err and "largest successful eta" in err
    assert tuple(seen) == r.runs
    max_initial_lr(make_linear, (X, Y, X, Y), threshold=THR, steps=T, seeds=1, metric="loss", rounds=0)
    assert capsys.readouterr().err == ""  # default: only on a terminal
    with pytest.raises(ValueError, match="callback"):
        max_initial_lr(make_linear, (X, Y, X, Y), threshold=THR, steps=T, metric="loss", callback=3)
