"""lrtheory.core.validate: every check coerces what it accepts and names the argument it rejects."""
import math

import numpy as np
import pytest
import torch

from lrtheory.core import validate as V


@pytest.mark.parametrize("fn, good, expected", [
    (V.positive_int, 3, 3), (V.positive_int, np.int64(2), 2), (V.positive_int, 1, 1),
    (V.nonneg_int, 0, 0), (V.nonneg_int, np.int32(5), 5),
    (V.finite_real, -2, -2.0), (V.finite_real, np.float32(0.5), 0.5), (V.finite_real, torch.tensor(1.5), 1.5),
    (V.finite_real, np.array(2.5), 2.5), (V.positive_real, torch.tensor([0.25]), 0.25),
    (V.positive_real, 1e-3, 1e-3), (V.positive_real, 2, 2.0),
    (V.nonneg_real, 0, 0.0), (V.nonneg_real, np.float64(0.25), 0.25),
])
def test_accepts_and_coerces(fn, good, expected):
    out = fn(good, "arg")
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize("fn, bad", [
    (V.positive_int, 0), (V.positive_int, -1), (V.positive_int, 1.0), (V.positive_int, True), (V.positive_int, "3"),
    (V.positive_int, None),
    (V.nonneg_int, -1), (V.nonneg_int, 0.5), (V.nonneg_int, False),
    (V.finite_real, math.nan), (V.finite_real, math.inf), (V.finite_real, "1"), (V.finite_real, True),
    (V.finite_real, torch.ones(2)), (V.finite_real, None), (V.finite_real, torch.tensor(True)),
    (V.finite_real, np.array([1.0, 2.0])),
    (V.positive_real, 0), (V.positive_real, -1e-9), (V.positive_real, math.inf), (V.positive_real, math.nan),
    (V.positive_real, True),
    (V.nonneg_real, -1), (V.nonneg_real, math.inf), (V.nonneg_real, "x"),
])
def test_rejects_naming_the_argument(fn, bad):
    with pytest.raises(ValueError, match=r"^my_arg: "):
        fn(bad, "my_arg")


def test_integer_bounds():
    assert V.integer(4, "k", minimum=2, maximum=4) == 4
    assert V.integer(-7, "k") == -7
    with pytest.raises(ValueError, match=r"k: expected an integer in \[2, 4\], got 5"):
        V.integer(5, "k", minimum=2, maximum=4)
    with pytest.raises(ValueError, match="k: expected an integer <= 4"):
        V.integer(5, "k", maximum=4)
    with pytest.raises(ValueError, match="k: expected an integer, got 1.5"):
        V.integer(1.5, "k")


def test_real_allow_inf():
    assert V.real(math.inf, "max_loss", allow_inf=True) == math.inf
    with pytest.raises(ValueError, match="max_loss"):
        V.real(math.nan, "max_loss", allow_inf=True)
    with pytest.raises(ValueError, match="max_loss"):
        V.real(math.inf, "max_loss")


def test_in_range_ends():
    assert V.in_range(0.0, "p", 0, 1) == 0.0
    assert V.in_range(1, "p", 0, 1) == 1.0
    for bad in (0.0, 1.0, -0.1, math.nan, "0.5", True):
        with pytest.raises(ValueError, match=r"p: expected a number in \(0, 1\)"):
            V.in_range(bad, "p", 0, 1, inclusive=False)
    with pytest.raises(ValueError, match=r"in \(0, 1\]"):
        V.in_range(0, "p", 0, 1, inclusive=(False, True))
    assert V.in_range(1, "p", 0, 1, inclusive=(False, True)) == 1.0
    assert V.in_range(5.5, "d", lo=1) == 5.5
    with pytest.raises(ValueError, match=r"d: expected a number in \[1, inf\]"):
        V.in_range(math.inf, "d", lo=1)
    assert V.in_range(0.5, "t", 0.25, 0.75) == 0.5
    with pytest.raises(ValueError, match=r"\[0.25, 0.75\]"):
        V.in_range(1, "t", 0.25, 0.75)


def test_choice():
    assert V.choice(None, "norm", (None, "layernorm")) is None
    assert V.choice(np.str_("mse"), "loss", ("mse", "ce")) == "mse"
    with pytest.raises(ValueError, match=r"norm: expected one of \(None, 'layernorm'\), got 'bn'"):
        V.choice("bn", "norm", (None, "layernorm"))
    with pytest.raises(ValueError, match="loss"):
        V.choice(np.array([1, 2]), "loss", ("mse",))


def test_int_sequence():
    assert V.int_sequence([3, np.int64(1)], "seeds") == (3, 1)
    assert V.int_sequence(4, "seeds") == (4,)
    assert V.int_sequence(np.arange(3), "seeds") == (0, 1, 2)
    assert V.int_sequence([], "seeds", nonempty=False) == ()
    assert V.int_sequence([-1], "offsets", minimum=None) == (-1,)
    for bad in ([], [1, -1], [1.5], [True], "12", None, 3.0):
        with pytest.raises(ValueError, match="seeds"):
            V.int_sequence(bad, "seeds")
    with pytest.raises(ValueError, match="seeds: expected distinct"):
        V.int_sequence([1, 1], "seeds", distinct=True)


def test_arrays():
    a = V.finite_array([[1, 2], [3, 4]], "A", ndim=2)
    assert a.dtype == np.float64 and a.shape == (2, 2)
    assert V.finite_array(torch.tensor([1.0, 2.0]), "t").tolist() == [1.0, 2.0]
    src = np.array([1.0, 2.0])
    assert V.finite_array(src, "x") is not src  # a copy: the caller's array is never aliased
    assert V.positive_array([1, 2, 3], "g", increasing=True).tolist() == [1.0, 2.0, 3.0]
    for kw, bad, match in [
        ({}, [1.0, math.nan], "finite"), ({}, [], "at least one"), ({"ndim": 1}, [[1.0]], "1-d"),
        ({}, ["a"], "real numbers"), ({}, [True, False], "real numbers"),
        ({"increasing": True}, [1, 1, 2], "increasing"), ({"increasing": True}, [[1, 2]], "1-d"),
    ]:
        with pytest.raises(ValueError, match="grid: .*" + match):
            V.finite_array(bad, "grid", **kw)
    with pytest.raises(ValueError, match="etas: every value must be > 0"):
        V.positive_array([1.0, -2.0], "etas")
    assert V.finite_array([], "x", nonempty=False).size == 0


def test_finite_tensor():
    t = torch.zeros(3)
    assert V.finite_tensor(t, "x") is t
    assert V.finite_tensor(torch.arange(3), "labels", floating=False).dtype == torch.int64
    for bad, match in [
        (np.zeros(3), "torch.Tensor"), (torch.tensor([1.0, math.inf]), "NaN or Inf"),
        (torch.arange(3), "floating"), (torch.ones(2, dtype=torch.bool), "floating"),
        (torch.zeros(0), "non-empty"), (torch.zeros(2, 2), "1-d"),
    ]:
        with pytest.raises(ValueError, match="x: .*" + match):
            V.finite_tensor(bad, "x", ndim=1 if match == "1-d" else None)
    with pytest.raises(ValueError, match="x: expected a real tensor"):
        V.finite_tensor(torch.ones(2, dtype=torch.bool), "x", floating=False)
