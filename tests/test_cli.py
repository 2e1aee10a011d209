"""`lrtheory verify`: exit codes, JSON, progress, on a registry of toy claims."""
import json
import subprocess
import sys

import pytest

from lrtheory import claims as C
from lrtheory.cli import main


@pytest.fixture
def toy_registry(monkeypatch):
    monkeypatch.setattr(C, "_REGISTRY", {})
    monkeypatch.setattr(C, "RESULT_MODULES", ())
    tol = C.Tolerance(0.1, "abs", "toy")
    C.register(C.Claim("toy.good", "00_toy", "good", "src", tol, lambda s: 1.0, lambda s, d: 1.0))
    C.register(C.Claim("toy.bad", "00_toy", "bad", "src", tol, lambda s: 1.0, lambda s, d: 2.0))


def test_exit_codes_and_json(toy_registry, tmp_path, capsys):
    out = tmp_path / "v.json"
    assert main(["verify", "--only", "toy.good", "--json", str(out), "--device", "cpu"]) == 0
    rows = json.loads(out.read_text())
    assert [r["id"] for r in rows] == ["toy.good"] and rows[0]["passed"] is True
    assert main(["verify", "--only", "toy", "--device", "cpu"]) == 1
    captured = capsys.readouterr()
    assert "[2/2] toy.good" in captured.err  # progress on stderr
    assert "1 passed, 1 failed" in captured.out


def test_unknown_claim_is_usage_error(toy_registry, capsys):
    assert main(["verify", "--only", "toy.nope"]) == 2
    assert "no claim matches 'toy.nope'" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["verify", "--scale", "huge"], ["frobnicate"], []])
def test_bad_usage_exits_2(argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2


def test_console_script_runs():
    proc = subprocess.run([sys.executable, "-m", "lrtheory", "verify", "--only", "no.such.claim"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "no claim matches" in proc.stderr


def test_cuda_without_cuda_is_usage_error(toy_registry, capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    assert main(["verify", "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err
