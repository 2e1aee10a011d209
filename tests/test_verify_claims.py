"""lrtheory.verify.claims and .report: Claim / Tolerance / Verdict semantics, on claims defined here.

Every expected value is worked by hand from the documented rule, never from the code."""
import json
import math

import pytest

from lrtheory.verify.claims import Claim, Tolerance, compare_values
from lrtheory.verify.report import format_value, run_claims, summary_line, verdict_table


def toy(id="toy.one", predicted=1.0, measured=1.05, tol=Tolerance(0.1, "abs", "toy"), **kw):
    return Claim(id=id, chapter="toy", statement="one is about one", source="derived here", tolerance=tol,
                 predict=lambda scale: predicted, measure=lambda scale, device: measured, **kw)


def test_abs_and_rel_tolerance():
    assert toy().check().passed
    assert not toy(measured=1.2).check().passed
    rel = Tolerance(0.01, "rel", "toy")
    assert toy(predicted=100.0, measured=100.9, tol=rel).check().passed
    assert not toy(predicted=100.0, measured=101.1, tol=rel).check().passed


def test_rel_tolerance_is_scaled_by_the_prediction_not_the_measurement():
    rel = Tolerance(0.5, "rel", "toy")
    # |1000 - 100| = 900 > 0.5 * 100: fails, although it is < 0.5 * 1000 (a measured-scaled rule passes it)
    assert not toy(predicted=100.0, measured=1000.0, tol=rel).check().passed
    assert toy(predicted=100.0, measured=149.0, tol=rel).check().passed


def test_one_sided_kinds_far_from_and_across_the_bound():
    up, low = Tolerance(0.5, "upper", "bound + slack"), Tolerance(0.5, "lower", "bound - slack")
    assert toy(predicted=2.0, measured=-1e6, tol=up).check().passed        # far below an upper bound
    assert toy(predicted=2.0, measured=2.5, tol=up).check().passed         # at bound + slack
    assert not toy(predicted=2.0, measured=2.51, tol=up).check().passed
    assert toy(predicted=2.0, measured=1e6, tol=low).check().passed
    assert not toy(predicted=2.0, measured=1.49, tol=low).check().passed


def test_sigma_kind_uses_the_reported_standard_error():
    k3 = Tolerance(3, "sigma", "3 standard errors")
    assert toy(predicted={"p": -1.5}, measured={"p": -1.441, "p_se": 0.02}, tol=k3).check().passed  # 2.95 s.e.
    assert not toy(predicted={"p": -1.5}, measured={"p": -1.43, "p_se": 0.02}, tol=k3).check().passed
    assert not toy(predicted={"p": -1.5}, measured={"p": -1.5}, tol=k3).check().passed  # no s.e.: fails
    with pytest.raises(ValueError, match="sigma"):
        toy(predicted=-1.5, measured=-1.5, tol=k3).check()


def test_sigma_allowance_adds_a_fixed_bias_and_only_to_sigma():
    tol = Tolerance(3, "sigma", "3 s.e. + 0.1 finite-width bias", allowance=0.1)
    # |0.35 - 0| = 0.35 <= 3 * 0.08 + 0.1 = 0.34? no; 0.33 <= 0.34 yes
    assert toy(predicted={"s": 0.0}, measured={"s": 0.33, "s_se": 0.08}, tol=tol).check().passed
    assert not toy(predicted={"s": 0.0}, measured={"s": 0.35, "s_se": 0.08}, tol=tol).check().passed
    assert str(tol) == "3 s.e. + 0.1" and tol.to_json()["allowance"] == 0.1
    with pytest.raises(ValueError, match="allowance"):
        Tolerance(0.1, "abs", "x", allowance=0.1)
    with pytest.raises(ValueError, match="allowance"):
        Tolerance(3, "sigma", "x", allowance=-1)


def test_dict_values_every_key_must_pass():
    v = toy(predicted={"a": 1.0, "b": 2.0}, measured={"a": 1.0, "b": 2.5}).check()
    assert not v.passed and v.details["failed"] == ["b"] and v.details["error[b]"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="keys"):
        toy(predicted={"a": 1.0}, measured={"b": 1.0}).check()


@pytest.mark.parametrize("kind", ["abs", "rel", "upper", "lower"])
def test_nan_measurement_fails_for_every_kind(kind):
    assert not toy(measured=math.nan, tol=Tolerance(1.0, kind, "toy")).check().passed
    assert not toy(measured=math.inf, tol=Tolerance(1.0, kind, "toy")).check().passed


def test_compare_values_rejects_number_against_dict():
    with pytest.raises(ValueError, match="both"):
        compare_values(1.0, {"a": 1.0}, Tolerance(1, "abs", "toy"))


def test_custom_compare_required_and_used():
    with pytest.raises(ValueError, match="compare"):
        toy(tol=Tolerance(0, "custom", "measured must not exceed the bound"))
    bound = toy(predicted=2.0, measured=1.5, tol=Tolerance(0, "custom", "measured <= predicted bound"),
                compare=lambda p, m, t: (m <= p, {}))
    assert bound.check().passed


def test_with_prediction_makes_a_wrong_prediction_fail():
    c = toy(predicted=1.0, measured=1.05)
    assert c.check().passed
    assert not c.with_prediction(lambda p: 2 * p).check().passed
    assert not c.with_prediction(lambda p: p / 2).check().passed
    d = toy(predicted={"a": 1.0}, measured={"a": 1.0})
    assert not d.with_prediction(lambda p: {k: 2 * v for k, v in p.items()}).check().passed


@pytest.mark.parametrize("bad", ["x", [1, 2], None, True])
def test_non_numeric_values_are_rejected(bad):
    with pytest.raises(ValueError, match="number"):
        toy(measured=bad).check()


def test_bad_scale_tolerance_and_claim():
    with pytest.raises(ValueError, match="scale"):
        toy().check(scale="huge")
    with pytest.raises(ValueError, match="kind"):
        Tolerance(0.1, "approx", "x")
    with pytest.raises(ValueError, match="reason"):
        Tolerance(0.1, "abs", "")
    with pytest.raises(ValueError, match="value"):
        Tolerance(-1, "abs", "x")
    with pytest.raises(ValueError, match="value"):
        Tolerance(math.nan, "abs", "x")
    with pytest.raises(ValueError, match="source"):
        Claim("toy.x", "toy", "s", "", Tolerance(1, "abs", "r"), lambda s: 0.0, lambda s, d: 0.0)
    with pytest.raises(ValueError, match="id"):
        toy(id="toy..x")


def test_json_has_exactly_the_documented_fields():
    obj = toy(measured=math.inf).check().to_json()
    assert set(obj) == {"id", "chapter", "scale", "statement", "source", "predicted", "measured",
                        "tolerance", "passed", "expect", "as_expected", "seconds"}
    assert obj["measured"] is None and obj["passed"] is False and obj["scale"] == "ci"
    json.dumps(obj, allow_nan=False)


def test_run_claims_turns_exceptions_into_failures():
    def boom(scale, device):
        raise RuntimeError("kaput")
    bad = Claim("toy.boom", "toy", "s", "src", Tolerance(1, "abs", "r"), lambda s: 0.0, boom)
    seen = []
    out = run_claims([toy(), bad], progress=lambda i, n, c, v: seen.append((i, v is None)))
    assert [v.passed for v in out] == [True, False]
    assert "kaput" in out[1].details["error"]
    assert seen == [(0, True), (0, False), (1, True), (1, False)]
    assert summary_line(out) == "1 passed, 1 failed"
    with pytest.raises(RuntimeError):
        run_claims([bad], catch=False)


def test_verdict_table_is_stable_text():
    table = verdict_table([toy().check(), toy(id="toy.two", measured=3.0).check()])
    lines = table.splitlines()
    assert lines[0].split() == ["claim", "predicted", "measured", "tolerance", "verdict"]
    assert "1.05" in lines[2] and lines[2].endswith("PASS")
    assert lines[3].endswith("FAIL")


def test_verdict_table_wraps_long_rows_into_blocks():
    long = {f"quantity_{i}": float(i) + 0.123456 for i in range(8)}
    v = toy(id="toy.long", predicted=long, measured=long, tol=Tolerance(0.1, "abs", "toy")).check()
    text = verdict_table([v, toy().check()], width=80)
    assert all(len(line) <= 80 for line in text.splitlines())
    first = text.splitlines()[0]
    assert first.startswith("toy.long") and first.endswith("PASS")
    assert "  predicted  quantity_0=0.1235" in text and "  measured   " in text


def test_format_value_significant_digits():
    assert format_value(123456.0) == "1.235e+05" and format_value(0.0) == "0"
    assert format_value({"a": 0.5, "b": math.inf}) == "a=0.5, b=inf"


def test_a_claim_reported_as_not_reproduced():
    from lrtheory.verify.report import verdict_summary

    known = toy(id="toy.known", measured=3.0, expect="fail").check()  # fails, as its chapter says
    assert not known.passed and known.as_expected and known.label == "NOT REPRODUCED"
    surprise = toy(id="toy.surprise", expect="fail").check()  # passes: the chapter is out of date
    assert surprise.passed and not surprise.as_expected and surprise.label == "FAIL (unexpected pass)"
    assert summary_line([toy().check(), known]) == "1 passed, 0 failed, 1 not reproduced"
    assert summary_line([toy().check(), known, surprise]) == "1 passed, 1 failed, 1 not reproduced"
    assert "NOT REPRODUCED" in verdict_table([known]) and "FAIL" not in verdict_table([known])
    assert verdict_summary([known]).splitlines()[0].endswith("NOT REPRODUCED")
    per_scale = toy(measured=3.0, expect={"ci": "fail"})
    assert per_scale.check("ci").label == "NOT REPRODUCED"
    with pytest.raises(ValueError, match="expect"):
        toy(expect="maybe")
    with pytest.raises(ValueError, match="scale"):
        toy(expect={"huge": "fail"})


def test_verify_exit_status_counts_outcomes_other_than_the_reported_one(only_toy, monkeypatch, capsys):
    import toy_chapter.claims as tc
    from lrtheory.cli import main

    wrong = tc.SECOND_MOMENT.with_prediction(lambda p: {"m2": 0.5})
    import dataclasses

    monkeypatch.setattr(tc.CHAPTER, "claims", [dataclasses.replace(wrong, expect="fail")])
    assert main(["verify", "--device", "cpu"]) == 0
    assert "0 passed, 0 failed, 1 not reproduced" in capsys.readouterr().out
    monkeypatch.setattr(tc.CHAPTER, "claims", [dataclasses.replace(tc.SECOND_MOMENT, expect="fail")])
    assert main(["verify", "--device", "cpu"]) == 1
