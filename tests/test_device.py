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


# ----------------------------------------------------------------------------- seed_for
import subprocess  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402

import numpy as np  # noqa: E402

from lrtheory.core.device import record_seeds, seed_for  # noqa: E402

# Golden values: the rule is SHA-256 of a versioned, type-tagged encoding, so these never change
# (a change here is a change of every seed of the library: re-run every stored sweep).
# (a list, not a dict: (1,) and (1.0,) are one dict key, the ambiguity seed_for avoids)
GOLDEN = [(("a", 0), 1297524867485885878), ((1,), 4866884171538900867), ((1.0,), 7823904775477945259),
          (("1",), 6512368009140389948), (((1, 2),), 4796118579040349138), ((1, 2), 3852625153819094794)]


def test_seed_for_golden_values():
    for keys, seed in GOLDEN:
        assert seed_for(*keys) == seed


def test_seed_for_is_stable_across_processes():
    code = ("from lrtheory.core.device import seed_for; "
            "print(seed_for('a', 0), seed_for('catapult', 'relu', 3, 64, 0.5, None, (1, 'x')))")
    outs = set()
    for hashseed in ("0", "1", "random"):
        env = {"PYTHONHASHSEED": hashseed, "PATH": "/usr/bin:/bin"}
        outs.add(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                env=env).stdout)
    assert len(outs) == 1
    assert outs.pop().split() == [str(seed_for("a", 0)), str(seed_for("catapult", "relu", 3, 64, 0.5, None, (1, "x")))]


def test_seed_for_range_and_use():
    s = seed_for("sharpness", 3, 64, 0)
    assert isinstance(s, int) and 0 <= s < 2 ** 63
    make_generator(s)  # valid for torch
    np.random.default_rng(s)  # and numpy


def test_generator_key_is_what_torch_keeps_of_a_seed():
    from lrtheory.core.device import generator_key

    def draws(seed):
        return torch.randn(6, generator=make_generator(seed), dtype=torch.float64)

    s = seed_for("sharpness", 3, 64, 0)
    assert generator_key(s) == s % 2 ** 32 and generator_key(7) == 7
    # seeds equal mod 2**32 draw the same numbers on this torch (the fact generator_key records) ...
    assert torch.equal(draws(s), draws(generator_key(s))) and torch.equal(draws(7), draws(7 + 2 ** 40))
    # ... and seeds with different keys do not
    assert not torch.equal(draws(7), draws(8)) and not torch.equal(draws(s), draws(s + 1))


def test_seed_for_distinguishes_keys():
    variants = [("a", 1), ("a", 1.0), ("a", "1"), ("a", (1,)), ("a", 1, None), ("ab",), ("a", "b"),
                (("a", "b"),), ("a", ("b",)), ("b", "a"), ("a", 2), ("a", 1, 0), ("a", None)]
    seeds = [seed_for(*k) for k in variants]
    assert len(set(seeds)) == len(seeds)
    # the mup_depth bug: neighbouring depths must not share seeds
    grid = {seed_for("mup_depth", depth, k) for depth in range(1, 33) for k in range(64)}
    assert len(grid) == 32 * 64 and len({s % 2 ** 32 for s in grid}) == 32 * 64  # distinct in torch's bits


def test_seed_for_canonical_numbers():
    assert seed_for(np.int64(3)) == seed_for(3)
    assert seed_for(np.float64(0.1)) == seed_for(0.1)
    assert seed_for(-0.0) == seed_for(0.0)
    assert seed_for(0.1) != seed_for(0.1 + 1e-17) or 0.1 == 0.1 + 1e-17  # exact: float.hex
    assert seed_for(0.1) != seed_for(np.float32(0.1))  # a float32 is a different number


@pytest.mark.parametrize("bad", [[1, 2], {"a": 1}, {1}, True, np.bool_(False), float("nan"), object(), b"x",
                                 (1, [2])])
def test_seed_for_rejects_ambiguous_keys(bad):
    with pytest.raises(ValueError, match="keys"):
        seed_for("chapter", bad)


def test_seed_for_needs_a_key():
    with pytest.raises(ValueError, match="keys"):
        seed_for()


def test_record_seeds_nested_and_threads():
    with record_seeds() as outer:
        a = seed_for("x", 0)
        with record_seeds() as inner:
            b = seed_for("x", 1)
        t = threading.Thread(target=seed_for, args=("x", 2))
        t.start()
        t.join()
    seed_for("x", 3)  # outside: not recorded
    assert inner == [(("x", 1), b)]
    assert outer == [(("x", 0), a), (("x", 1), b), (("x", 2), seed_for("x", 2))]
    with record_seeds() as e1, record_seeds() as e2:
        pass
    assert e1 == e2 == []  # two empty recorders leave cleanly (removed by identity)


def test_seed_zero_and_large_seeds_are_valid():
    for s in (0, 2 ** 63 - 1, seed_for("x")):
        make_generator(s)
    seed_everything(0)
    seed_everything(2 ** 40 + 3)  # numpy's seed is taken mod 2**32


# ----------------------------------------------------------------------------- contracts found by mutation testing
def test_make_generator_defaults_to_the_cpu_whatever_the_environment(monkeypatch):
    monkeypatch.setenv("LRTHEORY_DEVICE", "cuda")  # resolve_device(None) would fail on a machine without CUDA
    g = make_generator(5)
    assert g.device.type == "cpu"
    assert torch.equal(torch.randn(3, generator=g), torch.randn(3, generator=torch.Generator().manual_seed(5)))


def test_seed_everything_seeds_python_numpy_and_torch_as_documented():
    import random

    big = 2 ** 32 + 5  # NumPy takes the seed modulo 2**32
    seed_everything(big)
    assert random.random() == random.Random(big).random()
    assert np.random.rand() == np.random.RandomState(5).rand()
    assert torch.equal(torch.rand(2), torch.rand(2, generator=torch.Generator().manual_seed(big)))


def test_seed_for_zero_and_messages_name_the_keys():
    assert seed_for(0.0) == seed_for(-0.0) != seed_for(1.0)
    with pytest.raises(ValueError, match=r"^keys: expected at least one key$"):
        seed_for()
    with pytest.raises(ValueError, match=r"^keys: a bool key is ambiguous \(True == 1\); pass int\(flag\) or a str, "
                                         r"got \('a', True\)$"):
        seed_for("a", True)
    with pytest.raises(ValueError, match=r"^keys: expected ints, floats, strs, None or tuples of them, got list \[1\] "
                                         r"in \('a', \('b', \[1\]\)\)$"):
        seed_for("a", ("b", [1]))
    with pytest.raises(ValueError, match=r"^keys: NaN is not a key \(NaN != NaN\), got \(\('x', nan\),\)$"):
        seed_for(("x", float("nan")))


def test_resolve_device_type_error_names_the_type():
    with pytest.raises(ValueError, match=r"^device: expected a str, torch.device or None, got int$"):
        resolve_device(3)


def test_resolve_device_takes_a_torch_device_and_mps():
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device("mps").type == "mps"  # passed through; torch reports a missing backend where used
    with pytest.raises(ValueError, match=r"^device: unsupported device type 'meta' \(use 'cpu' or 'cuda'\)$"):
        resolve_device("meta")


def test_make_generator_resolves_the_device_it_is_given():
    # the device argument goes through resolve_device: an unsupported type is refused, not replaced by the CPU
    with pytest.raises(ValueError, match=r"^device: unsupported device type 'meta'"):
        make_generator(0, "meta")
    assert make_generator(0, torch.device("cpu")).device.type == "cpu"


# CUDA's branches of resolve_device, on any machine: torch.cuda's answers are simulated (a torch.device object
# is only a name; nothing here touches a GPU). The expected devices and messages are the docstring's rules.
def _fake_cuda(monkeypatch, count):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def test_default_is_cuda_when_cuda_is_reported_present(monkeypatch):
    monkeypatch.delenv(ENV_DEVICE, raising=False)
    _fake_cuda(monkeypatch, 2)
    assert resolve_device(None) == torch.device("cuda")
    _fake_cuda(monkeypatch, 0)
    assert resolve_device(None) == torch.device("cpu")


def test_cuda_indices_are_checked_against_the_device_count(monkeypatch):
    _fake_cuda(monkeypatch, 2)
    assert resolve_device("cuda") == torch.device("cuda")  # no index: the current device, not checked
    assert resolve_device("cuda:1") == torch.device("cuda", 1)  # the last one that exists
    for bad in ("cuda:2", "cuda:7"):
        with pytest.raises(ValueError, match=rf"^device: '{bad}' does not exist \(2 CUDA devices\)$"):
            resolve_device(bad)


def test_cuda_without_cuda_names_the_device_asked_for(monkeypatch):
    _fake_cuda(monkeypatch, 0)
    with pytest.raises(ValueError, match=r"^device: 'cuda:1' was requested but no CUDA device is available"):
        resolve_device("cuda:1")
