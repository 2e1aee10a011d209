"""`lrtheory verify` and `lrtheory --version`: exit codes, JSON, progress, output paths, Ctrl-C,
on the toy chapter (tests/toy_chapter) alone."""
import json
import subprocess
import sys

import pytest

from lrtheory.cli import main


def test_exit_codes_and_json(only_toy, tmp_path, capsys):
    out = tmp_path / "v.json"
    assert main(["verify", "--only", "template", "--json", str(out), "--device", "cpu"]) == 0
    rows = json.loads(out.read_text())
    assert [r["id"] for r in rows] == ["template.second_moment"] and rows[0]["passed"] is True
    captured = capsys.readouterr()
    assert "[1/1] template.second_moment" in captured.err  # progress on stderr
    assert captured.out.rstrip().endswith("1 passed, 0 failed")


def test_failed_claim_exits_1(only_toy, monkeypatch, capsys):
    import toy_chapter.claims as tc

    wrong = tc.SECOND_MOMENT.with_prediction(lambda p: {"m2": 0.5})
    monkeypatch.setattr(tc.CHAPTER, "claims", [wrong])
    assert main(["verify", "--device", "cpu"]) == 1
    assert "0 passed, 1 failed" in capsys.readouterr().out


def test_unknown_claim_is_usage_error(only_toy, capsys):
    assert main(["verify", "--only", "template.nope"]) == 2
    assert "no claim matches 'template.nope'" in capsys.readouterr().err


def test_scale_a_chapter_lacks_is_usage_error(only_toy, capsys):
    assert main(["verify", "--scale", "full"]) == 2
    assert "no 'full' config" in capsys.readouterr().err


@pytest.mark.parametrize("target", ["/no/such/dir/x.json", "{tmp}"])
def test_unwritable_json_path_fails_before_any_work(only_toy, monkeypatch, tmp_path, capsys, target):
    import toy_chapter.claims as tc

    ran = []
    monkeypatch.setattr(tc.CHAPTER, "claims", [tc.SECOND_MOMENT.with_prediction(lambda p: ran.append(1) or p)])
    assert main(["verify", "--json", target.format(tmp=tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--json" in err and "Traceback" not in err and ran == []  # nothing was checked


def test_ctrl_c_is_a_clean_message_and_exit_130(only_toy, monkeypatch, capsys):
    import lrtheory.verify.report as report

    def interrupted(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(report, "run_claims", interrupted)
    assert main(["verify"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [["verify", "--scale", "huge"], ["frobnicate"], []])
def test_bad_usage_exits_2(argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2


def test_version_and_help_state_exit_codes(capsys):
    from lrtheory._version import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"lrtheory {__version__}"
    for argv in (["--help"], ["verify", "--help"], ["sweep", "--help"]):
        with pytest.raises(SystemExit):
            main(argv)
        assert "130 interrupted" in " ".join(capsys.readouterr().out.split())  # argparse wraps lines


def test_console_script_runs():
    proc = subprocess.run([sys.executable, "-m", "lrtheory", "verify", "--only", "no.such.claim"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "no claim matches" in proc.stderr


def test_cuda_without_cuda_is_usage_error(only_toy, capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip("CUDA present")
    assert main(["verify", "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


def test_verify_progress_lines_say_each_verdicts_own_label():
    """The progress line of a claim is its verdict's label: a claim the book reports as not reproduced
    and that fails is NOT REPRODUCED there too (it used to print FAIL beside a NOT REPRODUCED verdict)."""
    import io
    from types import SimpleNamespace

    from lrtheory.cli import _progress

    out = io.StringIO()
    report = _progress(out)
    claim = SimpleNamespace(id="toy.claim")
    cases = [(True, "PASS"), (False, "FAIL"), (False, "NOT REPRODUCED"), (True, "FAIL (unexpected pass)")]
    for passed, label in cases:
        report(0, 1, claim, None)
        report(0, 1, claim, SimpleNamespace(passed=passed, label=label, seconds=1.25, details={}))
    assert out.getvalue().splitlines() == [f"[1/1] toy.claim ... {w} (1.2 s)" for _, w in cases]
