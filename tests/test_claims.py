"""lrtheory.claims: Claim / Verdict / registry semantics, on toy claims defined here."""
import json
import math

import pytest

from lrtheory import claims as C


def toy(id="toy.one", predicted=1.0, measured=1.05, tol=C.Tolerance(0.1, "abs", "toy"), **kw):
    return C.Claim(id=id, chapter="00_toy", statement="one is about one", source="none", tolerance=tol,
                   predict=lambda scale: predicted, measure=lambda scale, device: measured, **kw)


def test_abs_and_rel_tolerance():
    assert toy().check().passed
    assert not toy(measured=1.2).check().passed
    rel = C.Tolerance(0.01, "rel", "toy")
    assert toy(predicted=100.0, measured=100.9, tol=rel).check().passed
    assert not toy(predicted=100.0, measured=101.1, tol=rel).check().passed


def test_dict_values_every_key_must_pass():
    v = toy(predicted={"a": 1.0, "b": 2.0}, measured={"a": 1.0, "b": 2.5}).check()
    assert not v.passed
    assert v.details["a"]["passed"] and not v.details["b"]["passed"]
    with pytest.raises(ValueError, match="keys"):
        toy(predicted={"a": 1.0}, measured={"b": 1.0}).check()


def test_nan_measurement_fails_not_passes():
    assert not toy(measured=math.nan).check().passed


def test_custom_compare_required_and_used():
    with pytest.raises(ValueError, match="compare"):
        toy(tol=C.Tolerance(0, "custom", "measured must not exceed the bound"))
    bound = toy(predicted=2.0, measured=1.5, tol=C.Tolerance(0, "custom", "measured <= predicted bound"),
                compare=lambda p, m, t: (m <= p, {}))
    assert bound.check().passed


@pytest.mark.parametrize("bad", ["x", [1, 2], None, True])
def test_non_numeric_values_are_rejected(bad):
    with pytest.raises(ValueError, match="number"):
        toy(measured=bad).check()


def test_bad_scale_and_tolerance():
    with pytest.raises(ValueError, match="scale"):
        toy().check(scale="huge")
    with pytest.raises(ValueError, match="kind"):
        C.Tolerance(0.1, "approx", "x")
    with pytest.raises(ValueError, match="reason"):
        C.Tolerance(0.1, "abs", "")
    with pytest.raises(ValueError, match="value"):
        C.Tolerance(-1, "abs", "x")


def test_json_has_exactly_the_documented_fields():
    obj = toy(measured=math.inf).check().to_json()
    assert set(obj) == {"id", "chapter", "statement", "source", "predicted", "measured",
                        "tolerance", "passed", "seconds"}
    assert obj["measured"] is None and obj["passed"] is False
    json.dumps(obj, allow_nan=False)


def test_select_by_id_and_prefix(monkeypatch):
    reg = {}
    monkeypatch.setattr(C, "_REGISTRY", reg)
    monkeypatch.setattr(C, "RESULT_MODULES", ())
    for cid in ["alpha.x", "alpha.y.z", "alphabet.q", "beta.w"]:
        C.register(toy(id=cid))
    assert [c.id for c in C.select(["alpha"])] == ["alpha.x", "alpha.y.z"]
    assert [c.id for c in C.select(["alpha.y.z", "beta"])] == ["alpha.y.z", "beta.w"]
    with pytest.raises(ValueError, match="no claim matches 'gamma'"):
        C.select(["gamma"])


def test_run_claims_turns_exceptions_into_failures():
    def boom(scale, device):
        raise RuntimeError("kaput")
    bad = C.Claim("toy.boom", "00_toy", "s", "src", C.Tolerance(1, "abs", "r"), lambda s: 0.0, boom)
    seen = []
    out = C.run_claims([toy(), bad], progress=lambda i, n, c, v: seen.append((i, v is None)))
    assert [v.passed for v in out] == [True, False]
    assert "kaput" in out[1].details["error"]
    assert seen == [(0, True), (0, False), (1, True), (1, False)]
    with pytest.raises(RuntimeError):
        C.run_claims([bad], catch=False)


def test_verdict_table_is_stable_text():
    table = C.verdict_table([toy().check(), toy(id="toy.two", measured=3.0).check()])
    lines = table.splitlines()
    assert lines[0].split() == ["claim", "predicted", "measured", "tolerance", "verdict"]
    assert "1.05" in lines[2] and lines[2].endswith("PASS")
    assert lines[3].endswith("FAIL")


def test_verdict_table_wraps_long_rows_into_blocks():
    long = {f"quantity_{i}": float(i) + 0.123456 for i in range(8)}
    v = toy(id="toy.long", predicted=long, measured=long, tol=C.Tolerance(0.1, "abs", "toy")).check()
    text = C.verdict_table([v, toy().check()], width=80)
    assert all(len(line) <= 80 for line in text.splitlines())
    first = text.splitlines()[0]
    assert first.startswith("toy.long") and first.endswith("PASS")
    assert "  predicted  quantity_0=0.1235" in text and "  measured   " in text
