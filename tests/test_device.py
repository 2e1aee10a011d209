"""lrtheory.core.device: device choice, dtype and seeding."""
import pytest
import torch

from lrtheory.core.device import (DEFAULT_DTYPE, ENV_DEVICE, make_generator, resolve_device,
                                  resolve_dtype, seed_everything)


def test_default_is_cuda_when_present_else_cpu(monkeypatch):
    monkeypatch.delenv(ENV_DEVICE, raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(None).type == expected


def test_env_override(monkeypatch):
    monkeypatch.setenv(ENV_DEVICE, "cpu")
    assert resolve_device(None) == torch.device("cpu")


def test_explicit_beats_env(monkeypatch):
    monkeypatch.setenv(ENV_DEVICE, "cuda")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="the error only exists without CUDA")
@pytest.mark.parametrize("how", ["arg", "env"])
def test_cuda_requested_without_cuda_is_a_clear_error(monkeypatch, how):
    if how == "env":
        monkeypatch.setenv(ENV_DEVICE, "cuda")
        arg = None
    else:
        monkeypatch.delenv(ENV_DEVICE, raising=False)
        arg = "cuda"
    with pytest.raises(ValueError, match="no CUDA device"):
        resolve_device(arg)


@pytest.mark.parametrize("bad", ["gpu0", "tpu", 3])
def test_unknown_device(bad):
    with pytest.raises(ValueError, match="device"):
        resolve_device(bad)


def test_dtype():
    assert resolve_dtype(None) is DEFAULT_DTYPE is torch.float64
    assert resolve_dtype("float32") is torch.float32
    for bad in ["int64", torch.int32, "nonsense"]:
        with pytest.raises(ValueError, match="dtype"):
            resolve_dtype(bad)


def test_generators_reproduce_and_differ():
    a = torch.randn(5, generator=make_generator(7), dtype=torch.float64)
    b = torch.randn(5, generator=make_generator(7), dtype=torch.float64)
    c = torch.randn(5, generator=make_generator(8), dtype=torch.float64)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_bad_seed(bad):
    with pytest.raises(ValueError, match="seed"):
        make_generator(bad)
    with pytest.raises(ValueError, match="seed"):
        seed_everything(bad)


def test_seed_everything_reproduces_global_streams():
    seed_everything(3)
    a = torch.rand(3)
    seed_everything(3)
    assert torch.equal(a, torch.rand(3))
