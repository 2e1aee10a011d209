"""The documented contracts of lrtheory.verify (claims, report, registry, chapter), asserted exactly.

Written against the docstrings, from a mutation-testing pass (issue 21, `make mutation`): every
expected value is worked out by hand from the documented rule (the boundary of each tolerance
kind, the exact text of a table, the order of a registry), never read off the code's output.
Claims, chapters and registries here are small fakes defined in this file."""
import dataclasses
import math
import sys
import types

import numpy as np
import pytest
import torch

from lrtheory.verify import claims as C
from lrtheory.verify import registry as R
from lrtheory.verify import report as RP
from lrtheory.verify.chapter import Chapter, Measurement, MissingResults, config_json, run_measurement_batch
from lrtheory.verify.claims import Claim, Tolerance, Verdict, as_value, check_scale, compare_values


def claim(id="t.a", predicted=1.0, measured=1.05, tol=None, **kw):
    tol = tol or Tolerance(0.1, "abs", "toy")
    return Claim(id=id, chapter=id.split(".")[0], statement="a statement", source="derived here", tolerance=tol,
                 predict=lambda cfg: predicted, measure=lambda cfg, device: measured, **kw)


# --------------------------------------------------------------------------------------- claims
def test_scales_and_kinds_are_the_documented_ones():
    assert C.SCALES == ("ci", "reference", "full")
    assert C.KINDS == ("abs", "rel", "upper", "lower", "sigma", "custom")
    for s in C.SCALES:
        assert check_scale(s) == s
    with pytest.raises(ValueError, match=r"^scale: expected one of \('ci', 'reference', 'full'\), got 'huge'$"):
        check_scale("huge")
    with pytest.raises(ValueError, match=r"^scale: .* got 3$"):
        check_scale(3)


@pytest.mark.parametrize("kind, predicted, measured, passes", [
    # abs: |m - p| <= v, with v = 0.5 (binary-exact numbers: the boundary is exact)
    ("abs", 1.0, 1.5, True), ("abs", 1.0, 0.5, True), ("abs", 1.0, 1.5625, False), ("abs", 1.0, 0.4375, False),
    # rel: |m - p| <= v |p|: p = -2 gives the scale 1 (the absolute value of the prediction)
    ("rel", -2.0, -3.0, True), ("rel", -2.0, -1.0, True), ("rel", -2.0, -3.125, False), ("rel", 2.0, 3.0, True),
    ("rel", 0.0, 0.0, True), ("rel", 0.0, 1e-300, False),
    # upper: m <= p + v
    ("upper", 2.0, 2.5, True), ("upper", 2.0, 2.625, False), ("upper", 2.0, -50.0, True), ("upper", 2.0, 2.25, True),
    # lower: m >= p - v
    ("lower", 2.0, 1.5, True), ("lower", 2.0, 1.375, False), ("lower", 2.0, 50.0, True), ("lower", 2.0, 1.75, True),
])
def test_each_kind_at_and_across_its_boundary(kind, predicted, measured, passes):
    assert Tolerance(0.5, kind, "r").passes(predicted, measured) is passes


@pytest.mark.parametrize("kind", ["abs", "rel", "upper", "lower", "sigma"])
def test_non_finite_prediction_or_measurement_never_passes(kind):
    tol = Tolerance(1e300, kind, "huge")
    assert tol.passes(1.0, 1.0, se=1.0)
    for p, m in ((math.nan, 1.0), (1.0, math.nan), (math.inf, 1.0), (1.0, -math.inf), (math.inf, math.inf)):
        assert tol.passes(p, m, se=1.0) is False


def test_sigma_kind_boundary_standard_error_and_allowance():
    k2 = Tolerance(2, "sigma", "two s.e.")
    assert k2.passes(1.0, 1.5, se=0.25) and not k2.passes(1.0, 1.5625, se=0.25)   # |d| <= 2 * 0.25
    assert k2.passes(1.0, 0.5, se=0.25) and not k2.passes(1.0, 0.4375, se=0.25)
    assert k2.passes(1.0, 1.0, se=0.0) and not k2.passes(1.0, 1.0 + 2 ** -20, se=0.0)  # se 0: exact only
    assert not k2.passes(1.0, 1.0, se=None) and not k2.passes(1.0, 1.0, se=math.nan)
    assert not k2.passes(1.0, 1.0, se=-0.25) and not k2.passes(1.0, 1.0, se=math.inf)
    assert k2.passes(1.0, 1.5, se=np.float32(0.25))
    a = Tolerance(2, "sigma", "two s.e. and a bias", allowance=0.5)
    assert a.passes(1.0, 2.0, se=0.25) and not a.passes(1.0, 2.0625, se=0.25)      # 2 * 0.25 + 0.5
    assert a.passes(1.0, 0.0, se=0.25) and not a.passes(1.0, -0.0625, se=0.25)
    with pytest.raises(ValueError, match=r"^kind: a custom tolerance is decided by the claim's compare function$"):
        Tolerance(1, "custom", "own rule").passes(1.0, 1.0)


def test_tolerance_rejects_what_the_docstring_excludes():
    ok = Tolerance(0, "abs", "exact")  # 0 is allowed (>= 0)
    assert ok.value == 0 and ok.allowance == 0.0
    assert Tolerance(3, "sigma", "r", allowance=0).allowance == 0
    bad_values = [True, math.inf, -1e-300, "1", None]
    for v in bad_values:
        with pytest.raises(ValueError, match=r"^value: tolerance must be a finite number >= 0, got "):
            Tolerance(v, "abs", "r")
    for a in [True, math.inf, math.nan, -0.5, "0.1"]:
        with pytest.raises(ValueError, match=r"^allowance: expected a finite number >= 0, got "):
            Tolerance(3, "sigma", "r", allowance=a)
    with pytest.raises(ValueError, match=r"^allowance: only a 'sigma' tolerance takes an allowance, not 'rel'$"):
        Tolerance(3, "rel", "r", allowance=0.5)
    with pytest.raises(ValueError, match=r"^kind: expected one of .*'custom'\), got 'approx'$"):
        Tolerance(1, "approx", "r")
    for reason in ["", None, 5]:
        with pytest.raises(ValueError, match=r"^reason: every tolerance states its reason$"):
            Tolerance(1, "abs", reason)


def test_tolerance_text_and_json():
    assert str(Tolerance(0.123456, "abs", "r")) == "abs 0.123"
    assert str(Tolerance(2e-5, "rel", "r")) == "rel 2e-05"
    assert str(Tolerance(1, "upper", "r")) == "upper 1" and str(Tolerance(1, "lower", "r")) == "lower 1"
    assert str(Tolerance(3, "sigma", "r")) == "3 s.e."
    assert str(Tolerance(2.5, "sigma", "r", allowance=0.01234)) == "2.5 s.e. + 0.0123"
    assert str(Tolerance(0, "custom", "a trend over widths")) == "a trend over widths"
    assert Tolerance(2, "abs", "why").to_json() == {"value": 2.0, "kind": "abs", "reason": "why"}
    j = Tolerance(3, "sigma", "why", allowance=0.25).to_json()
    assert j == {"value": 3.0, "kind": "sigma", "reason": "why", "allowance": 0.25}
    assert type(j["value"]) is float and type(j["allowance"]) is float


def test_as_value_coerces_every_documented_kind_of_number():
    import sympy

    assert as_value(3, "w") == 3.0 and type(as_value(3, "w")) is float
    assert as_value(np.float32(0.5), "w") == 0.5 and type(as_value(np.float32(0.5), "w")) is float
    assert as_value(np.array(2.5), "w") == 2.5 and type(as_value(np.array(2.5), "w")) is float
    assert as_value(torch.tensor([4.0]), "w") == 4.0 and type(as_value(torch.tensor(4.0), "w")) is float
    assert as_value(sympy.Rational(1, 4), "w") == 0.25 and as_value(sympy.sqrt(4), "w") == 2.0
    d = as_value({"a": np.int64(2), 7: torch.tensor(1.5)}, "w")
    assert d == {"a": 2.0, "7": 1.5} and all(type(v) is float for v in d.values())
    with pytest.raises(ValueError, match=r"^w: expected a scalar, got a tensor of shape \(2,\)$"):
        as_value(torch.zeros(2), "w")
    with pytest.raises(ValueError, match=r"^w: empty dict$"):
        as_value({}, "w")
    with pytest.raises(ValueError, match=r"^w\['b'\]: expected a number or a dict of named numbers, got str$"):
        as_value({"a": 1.0, "b": "x"}, "w")
    with pytest.raises(ValueError, match=r"^w: expected a number .* got bool$"):
        as_value(True, "w")
    with pytest.raises(ValueError, match=r"got ndarray$"):
        as_value(np.zeros(3), "w")


def test_compare_values_details():
    ok, det = compare_values(1.0, 1.25, Tolerance(0.5, "abs", "r"))
    assert ok is True and det == {"error": 0.25}
    ok, det = compare_values(1.0, 0.25, Tolerance(0.5, "abs", "r"))
    assert ok is False and det == {"error": -0.75}
    ok, det = compare_values({"a": 1.0, "b": 2.0}, {"a": 1.5, "b": 2.0, "extra": 9.0}, Tolerance(0.5, "abs", "r"))
    assert ok is True and det == {"error[a]": 0.5, "error[b]": 0.0, "failed": []}
    ok, det = compare_values({"a": 1.0, "b": 2.0, "c": 0.0}, {"a": 9.0, "b": 2.0, "c": -9.0}, Tolerance(1, "abs", "r"))
    assert ok is False and det["failed"] == ["a", "c"] and det["error[c]"] == -9.0
    # sigma reads <key>_se of the measurement; other kinds ignore it
    sig = Tolerance(2, "sigma", "r")
    assert compare_values({"s": 0.0}, {"s": 0.5, "s_se": 0.25}, sig)[0] is True
    assert compare_values({"s": 0.0}, {"s": 0.5, "s_se": 0.125}, sig)[0] is False
    assert compare_values({"s": 0.0}, {"s": 0.5, "t_se": 1.0}, sig)[0] is False
    assert compare_values({"s": 0.0}, {"s": 0.5, "s_se": 100.0}, Tolerance(0.25, "abs", "r"))[0] is False
    with pytest.raises(ValueError, match=r"^measured: a 'sigma' tolerance needs a dict measurement"):
        compare_values(0.0, 0.0, sig)
    with pytest.raises(ValueError, match=r"^measured: missing keys \['b', 'c'\]$"):
        compare_values({"a": 1.0, "b": 1.0, "c": 1.0}, {"a": 1.0}, Tolerance(1, "abs", "r"))
    with pytest.raises(ValueError, match=r"^predicted and measured must both be numbers or both dicts$"):
        compare_values({"a": 1.0}, 1.0, Tolerance(1, "abs", "r"))


def test_claim_declaration_errors_name_the_field():
    for bad in ["", "t..a", ".t", "t.", 5]:
        with pytest.raises(ValueError, match=r"^id: expected a dotted identifier, got "):
            claim(id=bad) if isinstance(bad, str) and bad.split(".")[0] else Claim(
                bad, "t", "s", "src", Tolerance(1, "abs", "r"), lambda c: 0.0, lambda c, d: 0.0)
    assert claim(id="single").id == "single"  # one part is a dotted identifier too
    with pytest.raises(ValueError, match=r"^tolerance: expected a Tolerance, got float$"):
        Claim("t.a", "t", "s", "src", 0.1, lambda c: 0.0, lambda c, d: 0.0)
    with pytest.raises(ValueError, match=r"^compare: claim 't.a' has a custom tolerance and needs a compare"):
        claim(tol=Tolerance(0, "custom", "own"))
    for field, args in (("statement", ("  ", "src")), ("source", ("s", "\n")), ("statement", (None, "src"))):
        with pytest.raises(ValueError, match=rf"^{field}: claim 't.a' needs a non-empty {field}$"):
            Claim("t.a", "t", *args, Tolerance(1, "abs", "r"), lambda c: 0.0, lambda c, d: 0.0)


def test_check_passes_config_device_and_scale_and_fills_the_verdict():
    seen = {}

    def predict(cfg):
        seen["predict"] = (cfg, C.CURRENT_SCALE.get())
        return np.float64(2.0)

    def measure(cfg, device):
        seen["measure"] = (cfg, device, C.CURRENT_SCALE.get())
        return {"x": 2.5}["x"]

    c = Claim("t.cfg", "t", "stmt", "src", Tolerance(0.5, "abs", "r"), predict, measure,
              config=lambda scale: ("config of", scale), notebook="01_t")
    v = c.check("reference", "cpu")
    assert seen["predict"] == (("config of", "reference"), "reference")
    assert seen["measure"] == (("config of", "reference"), torch.device("cpu"), "reference")
    assert C.CURRENT_SCALE.get() is None  # reset after the check
    assert isinstance(v, Verdict)
    assert (v.id, v.chapter, v.statement, v.source, v.scale) == ("t.cfg", "t", "stmt", "src", "reference")
    assert v.predicted == 2.0 and type(v.predicted) is float and v.measured == 2.5 and v.passed is True
    assert v.tolerance == Tolerance(0.5, "abs", "r") and v.details == {"error": 0.5}
    assert 0 <= v.seconds < 5
    # no config: the scale name itself; the default scale is "ci"
    free = claim(predicted=1.0, measured=1.0)
    got = []
    free = dataclasses.replace(free, predict=lambda s: got.append(s) or 1.0)
    assert free.check().scale == "ci" and got == ["ci"]
    with pytest.raises(ValueError, match="device"):
        claim().check("ci", "tpu")


def test_check_resets_the_scale_when_measure_raises_and_uses_a_custom_compare():
    def boom(cfg, device):
        assert C.CURRENT_SCALE.get() == "full"
        raise RuntimeError("kaput")

    with pytest.raises(RuntimeError, match="kaput"):
        Claim("t.b", "t", "s", "src", Tolerance(1, "abs", "r"), lambda c: 0.0, boom).check("full", "cpu")
    assert C.CURRENT_SCALE.get() is None
    calls = []

    def compare(p, m, tol):
        calls.append((p, m, tol.kind))
        return np.bool_(m <= p), {"margin": p - m}

    v = claim(predicted=2.0, measured=1.5, tol=Tolerance(0, "custom", "m <= p"), compare=compare).check()
    assert calls == [(2.0, 1.5, "custom")] and v.passed is True and type(v.passed) is bool
    assert v.details == {"margin": 0.5}
    v = claim(predicted=2.0, measured=2.5, tol=Tolerance(0, "custom", "m <= p"), compare=compare).check()
    assert v.passed is False


def test_with_prediction_transforms_the_coerced_prediction_only():
    seen = []
    c = claim(predicted=np.float32(1.5), measured=3.0, tol=Tolerance(0.25, "abs", "r"))
    wrong = c.with_prediction(lambda p: seen.append(p) or 2 * p)
    v = wrong.check()
    assert seen == [1.5] and type(seen[0]) is float and v.predicted == 3.0 and v.passed
    assert c.check().predicted == 1.5 and not c.check().passed  # the original is untouched
    assert (wrong.id, wrong.tolerance, wrong.measure) == (c.id, c.tolerance, c.measure)
    d = claim(predicted={"a": 1, "b": 2}, measured={"a": 0.5, "b": 1.0})
    halved = d.with_prediction(lambda p: {k: v / 2 for k, v in p.items()})
    assert halved.check().passed and not d.check().passed


def test_verdict_json():
    v = Verdict("t.a", "t", "stmt", "src", {"a": 1.0, "b": math.nan}, -math.inf, Tolerance(1, "abs", "r"),
                np.bool_(True), {"x": 1}, 1.23456, "full")
    assert v.to_json() == {"id": "t.a", "chapter": "t", "scale": "full", "statement": "stmt", "source": "src",
                           "predicted": {"a": 1.0, "b": None}, "measured": None,
                           "tolerance": {"value": 1.0, "kind": "abs", "reason": "r"}, "passed": True,
                           "expect": "pass", "as_expected": True, "seconds": 1.235}
    assert type(v.to_json()["passed"]) is bool
    assert Verdict("t.a", "t", "s", "s", 1, 2, Tolerance(1, "abs", "r"), False).to_json()["scale"] == "ci"


# --------------------------------------------------------------------------------------- report
def test_run_claims_order_progress_device_and_failures():
    devices = []
    ok = claim(id="t.ok")
    ok = dataclasses.replace(ok, measure=lambda cfg, dev: devices.append(dev) or 1.0)

    def boom(cfg, dev):
        raise KeyError("gone")

    bad = Claim("t.bad", "t", "s", "src", Tolerance(1, "abs", "r"), lambda c: 0.0, boom)
    seen = []
    out = RP.run_claims([bad, ok], "reference", "cpu", progress=lambda i, n, c, v: seen.append((i, n, c.id, v)))
    assert [v.id for v in out] == ["t.bad", "t.ok"] and devices == [torch.device("cpu")]
    assert [(i, n, cid, v is None) for i, n, cid, v in seen] == [
        (0, 2, "t.bad", True), (0, 2, "t.bad", False), (1, 2, "t.ok", True), (1, 2, "t.ok", False)]
    assert seen[1][3] is out[0] and seen[3][3] is out[1]
    f = out[0]
    assert (f.id, f.chapter, f.statement, f.source, f.passed, f.scale) == ("t.bad", "t", "s", "src", False,
                                                                            "reference")
    assert math.isnan(f.predicted) and math.isnan(f.measured) and f.tolerance == bad.tolerance
    assert f.details == {"error": "KeyError: 'gone'"} and 0 <= f.seconds < 5
    assert out[1].passed and out[1].scale == "reference"
    with pytest.raises(ValueError, match="scale"):
        RP.run_claims([ok], "huge")
    with pytest.raises(KeyError):
        RP.run_claims([bad], catch=False)
    assert RP.run_claims([]) == []


def test_format_value():
    assert RP.format_value(0.0) == "0" and RP.format_value(-0.0) == "0"
    assert RP.format_value(3.14159) == "3.142" and RP.format_value(3.14159, 2) == "3.1"
    assert RP.format_value(1234.56) == "1235" and RP.format_value(123456.0) == "1.235e+05"
    assert RP.format_value(math.nan) == "nan" and RP.format_value(-math.inf) == "-inf"
    assert RP.format_value({"a": 1.23456, "b": 0.0}, 3) == "a=1.23, b=0"


def _verdicts():
    return [claim(id="t.a", predicted=1.0, measured=1.05).check(),
            claim(id="t.bb", predicted=2.0, measured=3.0).check()]


def test_verdict_table_exact_text_and_the_width_at_which_it_becomes_blocks():
    # columns: claim 5, predicted 9, measured 8, tolerance 9, verdict 7 -> 38 + 4 gaps of 2 = 46
    table = ["claim  predicted  measured  tolerance  verdict",
             "-----  ---------  --------  ---------  -------",
             "t.a    1          1.05      abs 0.1    PASS",
             "t.bb   2          3         abs 0.1    FAIL"]
    assert RP.verdict_table(_verdicts()) == "\n".join(table)
    assert RP.verdict_table(_verdicts(), width=46) == "\n".join(table)
    blocks = RP.verdict_table(_verdicts(), width=45)
    assert blocks == "\n".join([
        "t.a" + " " * 36 + "  PASS",
        "  predicted  1",
        "  measured   1.05",
        "  tolerance  abs 0.1",
        "",
        "t.bb" + " " * 35 + "  FAIL",
        "  predicted  2",
        "  measured   3",
        "  tolerance  abs 0.1"])
    assert RP.verdict_table(_verdicts(), digits=2).splitlines()[2].split()[2] == "1.1"  # 1.05 at 2 digits


def test_verdict_table_blocks_wrap_long_values_with_a_hanging_indent():
    pred = {f"k{i}": float(i) for i in range(6)}  # "k0=0, k1=1, ..., k5=5": 34 characters
    v = claim(id="t.long", predicted=pred, measured=pred).check()
    text = RP.verdict_table([v], width=30)
    assert text.splitlines()[:4] == ["t.long" + " " * 18 + "  PASS",
                                     "  predicted  k0=0, k1=1, k2=2,",
                                     "             k3=3, k4=4, k5=5",
                                     "  measured   k0=0, k1=1, k2=2,"]
    # an id longer than the width keeps its full length
    w = claim(id="t." + "x" * 40).check()
    assert RP.verdict_table([w], width=20).splitlines()[0] == "t." + "x" * 40 + "  PASS"


def test_verdict_summary_summary_line_anchor():
    assert RP.verdict_summary(_verdicts()) == "t.a   PASS\nt.bb  FAIL\n1 passed, 1 failed"
    assert RP.verdict_summary([]) == "0 passed, 0 failed"
    assert RP.summary_line(_verdicts()[1:]) == "0 passed, 1 failed"
    assert RP.verdict_anchor("mup_depth") == "sec-mup-depth-verdicts"
    assert RP.verdict_anchor("elr") == "sec-elr-verdicts"
    assert RP._breakable("a.b_c<") == "a.<wbr>b_<wbr>c&lt;"


def test_html_table_rows_links_and_columns():
    ch = types.SimpleNamespace(notebook="03_t", title="The T_chapter")
    ok = claim(id="t.a_b", predicted=1.0, measured=1.05).check()
    bad = RP.run_claims([Claim("t.bad", "t", "x < y & z", "Paper <2020>", Tolerance(0, "custom", "own rule"),
                               lambda c: 0.0, lambda c, d: 1 / 0, compare=lambda p, m, t: (True, {}))])[0]
    other = claim(id="u.c", predicted=2.0, measured=2.0).check()
    page = RP.html_table([ok, bad, other], {"t": ch}, page_prefix="../")
    rows = page.split("<tr>")[2:]
    assert len(rows) == 3
    assert rows[0] == ('<td><a href="../03_t.html">The T_<wbr>chapter</a></td>'
                       '<td><code><a href="../03_t.html#sec-t-verdicts">t.<wbr>a_<wbr>b</a></code></td>'
                       '<td>a statement<br><span style="color:#57606a">derived here</span></td>'
                       '<td>1</td><td>1.05</td><td>abs 0.1: toy</td>'
                       '<td style="color:#1a7f37; font-weight:bold">PASS</td>'
                       '<td style="text-align:right">' + f"{ok.seconds:.1f}" + '</td></tr>')
    assert "<td>x &lt; y &amp; z<br>" in rows[1] and "Paper &lt;2020&gt;" in rows[1]
    assert "<td>ZeroDivisionError: division by zero</td><td>own rule</td>" in rows[1]
    assert '<td style="color:#cf222e; font-weight:bold">FAIL</td>' in rows[1]
    assert rows[2].startswith("<td>u</td><td><code>u.<wbr>c</code></td>")  # no chapter: no links
    head = page.split("<tbody>")[0]
    assert head == ('<table class="lrtheory-verdicts" style="table-layout:fixed; width:100%; font-size:85%">'
                    '<thead><tr><th style="width:9%">chapter</th><th style="width:13%">claim</th>'
                    '<th style="width:24%">statement and source</th><th style="width:14%">predicted</th>'
                    '<th style="width:14%">measured</th><th style="width:15%">tolerance</th>'
                    '<th style="width:7%">verdict</th><th style="width:4%">s</th></tr></thead>')
    assert page.endswith("</tr></tbody></table>")
    # a non-string error entry is not shown as the measurement
    odd = dataclasses.replace(ok, details={"error": 3})
    assert "<td>1.05</td>" in RP.html_table([odd], {})
    listed = dataclasses.replace(ok, details=[("error", "x")])
    assert "<td>1.05</td>" in RP.html_table([listed], {})


# ------------------------------------------------------------------------------------- registry
@dataclasses.dataclass(frozen=True)
class Cfg:
    n: int = 2


def _measure_one(cfg, device):
    return 1.0


def _fake(monkeypatch, name, key, claim_ids=(), chapter=True):
    mod = types.ModuleType(name)
    if chapter:
        ch = Chapter(key, module=name, notebook=f"nb_{key}", title=key, configs={"ci": Cfg()})
        for cid in claim_ids:
            ch.claim(cid, statement="s", source="src", tolerance=Tolerance(1, "abs", "r"),
                     predict=lambda cfg: 1.0, measure=lambda cfg, d: 1.0)
        mod.CHAPTER = ch
    else:
        mod.CHAPTER = "not a chapter"
    monkeypatch.setitem(sys.modules, name, mod)
    return mod


@pytest.fixture
def fake_registry(monkeypatch):
    a = _fake(monkeypatch, "fake_a", "alpha", ["alpha.one", "alpha.one_more", "alpha.two.x"])
    b = _fake(monkeypatch, "fake_b", "beta", ["beta.one"])
    from lrtheory.core.sweep import Param, SweepDef

    grid = SweepDef(name="grid", chapter="beta", description="d", points=lambda s: [], run_batch=run_measurement_batch,
                    schema={"n": Param("int")})
    b.CHAPTER.add_sweep(grid)
    monkeypatch.setattr(R, "CHAPTERS", ["fake_a", "fake_b"])
    return a.CHAPTER, b.CHAPTER, grid


def test_the_book_order_of_chapters():
    assert R.CHAPTERS == ["lrtheory.results.sharpness", "lrtheory.results.catapult", "lrtheory.results.mup_depth",
                          "lrtheory.results.elr", "lrtheory.results.balancing"]


def test_registry_chapters_claims_and_lookup(fake_registry, monkeypatch):
    a, b, _ = fake_registry
    assert R.chapters() == [a, b] and R.chapter("beta") is b
    assert [c.id for c in R.all_claims()] == ["alpha.one", "alpha.one_more", "alpha.two.x", "beta.one"]
    with pytest.raises(ValueError, match=r"^chapter: unknown chapter 'gamma'; known: alpha, beta$"):
        R.chapter("gamma")
    monkeypatch.setattr(R, "CHAPTERS", ["fake_a", "fake_b", "fake_a"])
    with pytest.raises(ValueError, match=r"^CHAPTERS: chapter keys repeat: \['alpha', 'beta', 'alpha'\]$"):
        R.chapters()
    _fake(monkeypatch, "fake_c", "gamma", chapter=False)
    monkeypatch.setattr(R, "CHAPTERS", ["fake_a", "fake_c"])
    with pytest.raises(ValueError, match=r"^CHAPTERS: 'fake_c' defines no CHAPTER = Chapter\(\.\.\.\)$"):
        R.chapters()
    monkeypatch.setitem(sys.modules, "fake_d", types.ModuleType("fake_d"))
    monkeypatch.setattr(R, "CHAPTERS", ["fake_d"])
    with pytest.raises(ValueError, match="fake_d"):
        R.chapters()


def test_select_by_id_or_dotted_prefix(fake_registry):
    ids = lambda only: [c.id for c in R.select(only)]  # noqa: E731
    assert ids(None) == ["alpha.one", "alpha.one_more", "alpha.two.x", "beta.one"]
    assert ids(["alpha.one"]) == ["alpha.one"]  # not alpha.one_more: a prefix ends at a dot
    assert ids(["alpha.two"]) == ["alpha.two.x"] and ids(["alpha.two."]) == ["alpha.two.x"]
    assert ids(["beta", "alpha.one", "alpha"]) == ["beta.one", "alpha.one", "alpha.one_more", "alpha.two.x"]
    assert ids(iter(["beta"])) == ["beta.one"]
    with pytest.raises(ValueError, match=r"^only: no claim matches 'alp', 'zeta'; known ids: alpha.one, "):
        R.select(["alp", "beta", "zeta"])
    for bad in ["", 3, None]:
        with pytest.raises(ValueError, match=r"^only: expected claim ids or prefixes, got "):
            R.select([bad])


def test_sweeps_by_name_and_for_a_chapter(fake_registry, monkeypatch):
    a, b, grid = fake_registry
    s = R.sweeps()
    assert list(s) == ["alpha_measurements", "beta_measurements", "grid"] and s["grid"] is grid
    assert R.sweeps_for("grid") == [grid]
    assert R.sweeps_for("beta") == [b.measurement_sweep(), grid]
    assert R.sweeps_for("alpha") == [a.measurement_sweep()]
    with pytest.raises(ValueError, match=r"^sweep: 'nope' is neither a chapter \(alpha, beta\) nor a sweep "
                                         r"\(alpha_measurements, beta_measurements, grid\)$"):
        R.sweeps_for("nope")
    from lrtheory.core.sweep import Param, SweepDef

    a.add_sweep(SweepDef(name="grid", chapter="alpha", description="d", points=lambda s: [],
                         run_batch=run_measurement_batch, schema={"n": Param("int")}))
    with pytest.raises(ValueError, match=r"^sweeps: two sweeps are called 'grid'$"):
        R.sweeps()


def test_errors_name_the_claim_and_side_and_check_times_itself():
    import sympy
    import time

    assert as_value(sympy.sqrt(2), "w") == pytest.approx(math.sqrt(2), rel=1e-15)  # a sympy expression
    assert as_value(sympy.pi / 4, "w") == pytest.approx(math.pi / 4, rel=1e-15)
    with pytest.raises(ValueError, match=r"^w: expected a number .* got SimpleNamespace$"):
        as_value(types.SimpleNamespace(dtype="float64"), "w")  # has a dtype, but no shape: not a scalar
    with pytest.raises(ValueError, match=r"^t\.a: measured: expected a number or a dict"):
        claim(measured="x").check()
    with pytest.raises(ValueError, match=r"^t\.a: predicted: expected a number or a dict"):
        claim(predicted="x").check()
    with pytest.raises(ValueError, match=r"^t\.a: predicted: expected a number or a dict"):
        claim(predicted="x").with_prediction(lambda p: p).check()
    slow = dataclasses.replace(claim(), measure=lambda cfg, d: time.sleep(0.02) or 1.0)
    assert slow.check().seconds >= 0.02
    # with_prediction calls the original predict with the claim's config, not with None
    c = Claim("t.c", "t", "s", "src", Tolerance(0, "abs", "r"), lambda cfg: cfg["n"], lambda cfg, d: 2.0 * cfg["n"],
              config=lambda scale: {"n": 3.0})
    assert c.with_prediction(lambda p: 2 * p).check().passed and not c.check().passed


# -------------------------------------------------------------------------------------- chapter
@dataclasses.dataclass(frozen=True)
class Small:
    n: int = 3
    seeds: tuple = (5, 7)


@dataclasses.dataclass
class Mutable:
    n: int = 3


def _chapter(module="fake_ch", **configs):
    return Chapter("fk", module=module, notebook="09_fk", title="Fake", configs=configs or {"ci": Small()})


def test_chapter_constructor_checks_name_the_argument():
    with pytest.raises(ValueError, match=r"^key: expected an identifier, got 'a-b'$"):
        Chapter("a-b", module="m", notebook="n", title="t", configs={"ci": Small()})
    with pytest.raises(ValueError, match=r"^key: expected an identifier, got 3$"):
        Chapter(3, module="m", notebook="n", title="t", configs={"ci": Small()})
    for module in ["", None]:
        with pytest.raises(ValueError, match=r"^module: expected the defining package's __name__, got "):
            Chapter("k", module=module, notebook="n", title="t", configs={"ci": Small()})
    for configs in [{"full": Small()}, [("ci", Small())], None]:
        with pytest.raises(ValueError, match=r"^configs: chapter 'k' needs a mapping of scale -> config with at"):
            Chapter("k", module="m", notebook="n", title="t", configs=configs)
    with pytest.raises(ValueError, match=r"^scale: "):
        Chapter("k", module="m", notebook="n", title="t", configs={"ci": Small(), "huge": Small()})
    for bad, name in ((Mutable(), "Mutable"), (Small, "type"), ({"n": 3}, "dict")):
        with pytest.raises(ValueError, match=rf"^configs\['ci'\]: expected a frozen dataclass instance, got {name}$"):
            Chapter("k", module="m", notebook="n", title="t", configs={"ci": bad})
    ch = _chapter(full=Small(n=9), ci=Small())
    assert (ch.key, ch.module, ch.notebook, ch.title) == ("fk", "fake_ch", "09_fk", "Fake")
    assert ch.scales == ("ci", "full") and ch.config("full") == Small(n=9)
    assert ch.measurements == {} and ch.claims == [] and ch.reference_file is None
    assert repr(ch) == "<Chapter fk: 0 measurements, 0 claims>"
    with pytest.raises(ValueError, match=r"^scale: chapter 'fk' has no 'reference' config \(it has \('ci', 'full'\)\)$"):
        ch.config("reference")
    with pytest.raises(ValueError, match=r"^scale: expected one of"):
        ch.config("huge")


def test_measurement_and_claim_declarations():
    ch = _chapter()

    @ch.measurement
    def measure_a(cfg, device):
        return 1.0

    assert isinstance(measure_a, Measurement) and ch.measurements == {"measure_a": measure_a}
    assert repr(measure_a) == "<measurement fk.measure_a>" and measure_a.__name__ == "measure_a"
    assert measure_a.__wrapped__ is measure_a.fn and measure_a.depends == ()
    with pytest.raises(ValueError, match=r"^fn: measurement names start with 'measure_', got 'a'$"):
        ch.measurement(lambda cfg, d: 0) if False else ch.measurement(types.FunctionType(
            (lambda cfg, d: 0).__code__, {}, "a"))
    with pytest.raises(ValueError, match=r"^fn: chapter 'fk' already has a measurement 'measure_a'$"):
        ch.measurement(measure_a.fn)
    with pytest.raises(ValueError, match=r"^depends: \['measure_z'\] are not \(yet\) measurements of chapter 'fk'"):
        @ch.measurement(depends=("measure_z",))
        def measure_b(cfg, device):
            return 0.0

    parts = dict(parts=lambda cfg: [{"s": s} for s in cfg.seeds], combine=lambda cfg, vals: sum(vals))

    @ch.measurement(**parts)
    def measure_p(cfg, device, part):
        return float(part["s"])

    with pytest.raises(ValueError, match=r"^depends: 'measure_q' cannot depend on a decomposed measurement$"):
        @ch.measurement(depends=("measure_p",))
        def measure_q(cfg, device):
            return 0.0

    with pytest.raises(ValueError, match=r"^parts/combine: measurement 'measure_r' needs both or neither$"):
        @ch.measurement(parts=parts["parts"])
        def measure_r(cfg, device, part):
            return 0.0
    with pytest.raises(ValueError, match=r"^parts/combine: measurement 'measure_r' needs both or neither$"):
        @ch.measurement(combine=parts["combine"])
        def measure_r(cfg, device, part):  # noqa: F811
            return 0.0
    with pytest.raises(ValueError, match=r"^depends: a decomposed measurement \('measure_s'\) cannot depend on"):
        Measurement(ch, types.FunctionType((lambda c, d, p: 0).__code__, {}, "measure_s"), ("measure_a",),
                    parts["parts"], parts["combine"])
    assert list(ch.measurements) == ["measure_a", "measure_p"]
    tol = Tolerance(0.5, "abs", "r")
    c = ch.claim("fk.one", statement="s", source="src", tolerance=tol, predict=lambda cfg: float(cfg.n),
                 measure=lambda cfg, d: measure_p.of(cfg, d) - 9.0)
    assert (c.chapter, c.notebook, c.config) == ("fk", "09_fk", ch.config) and ch.claims == [c]
    for bad in ["fkx.one", "other.one", 3]:
        with pytest.raises(ValueError, match=r"^id: claims of chapter 'fk' start with 'fk\.', got "):
            ch.claim(bad, statement="s", source="src", tolerance=tol, predict=lambda c: 0, measure=lambda c, d: 0)
    with pytest.raises(ValueError, match=r"^id: chapter 'fk' already has a claim 'fk.one'$"):
        ch.claim("fk.one", statement="s", source="src", tolerance=tol, predict=lambda c: 0, measure=lambda c, d: 0)
    ch.claim("fk.two.a", statement="s", source="src", tolerance=tol, predict=lambda cfg: 0.0,
             measure=lambda cfg, d: 0.25, compare=lambda p, m, t: (False, {}))
    # check(): every claim, errors propagate; only= by id or dotted prefix
    v = ch.check("ci", "cpu")
    assert [(x.id, x.passed) for x in v] == [("fk.one", True), ("fk.two.a", False)]  # 5 + 7 - 9 = 3
    assert [x.id for x in ch.check("ci", "cpu", only=["fk.two"])] == ["fk.two.a"]
    assert [x.id for x in ch.check("ci", "cpu", only=["fk.two."])] == ["fk.two.a"]
    assert [x.id for x in ch.check("ci", "cpu", only=["fk.on"])] == []
    assert [x.id for x in ch.check("ci", "cpu", only=["fk.one", "fk.two.a"])] == ["fk.one", "fk.two.a"]
    ch.claim("fk.boom", statement="s", source="src", tolerance=tol, predict=lambda c: 1 / 0, measure=lambda c, d: 0)
    with pytest.raises(ZeroDivisionError):
        ch.check("ci", "cpu")


def test_memo_per_config_and_device_and_decomposed_compute():
    ch = _chapter(full=Small(n=4, seeds=(1, 2, 3)), ci=Small())
    calls, seen_parts = [], []

    @ch.measurement
    def measure_n(cfg, device):
        calls.append((cfg.n, device))
        return [cfg.n]

    assert measure_n("ci", "cpu") == [3] and measure_n("ci", "cpu") is measure_n("ci", "cpu")
    assert measure_n.of(Small(n=3), torch.device("cpu")) == [3] and calls == [(3, torch.device("cpu"))]
    assert measure_n.of(Small(n=5)) == [5] and len(calls) == 2  # another config: computed
    measure_n.cache_clear()
    assert measure_n("ci") == [3] and len(calls) == 3
    assert measure_n.compute(Small(n=3), "dev") == [3] and calls[-1] == (3, "dev")  # never memoized

    def combine(cfg, values):
        return {"n": cfg.n, "values": values}

    @ch.measurement(parts=lambda cfg: [{"s": s} for s in cfg.seeds], combine=combine)
    def measure_parts(cfg, device, part):
        seen_parts.append(part)
        return part["s"] * 10

    assert measure_parts("full", "cpu") == {"n": 4, "values": [10, 20, 30]}
    assert seen_parts == [{"s": 1}, {"s": 2}, {"s": 3}] and all(type(p) is dict for p in seen_parts)


def test_point_configs_groups_and_the_measurement_sweep():
    ch = _chapter(module="fake_sw", ci=Small(), reference=Small(n=4, seeds=(1, 2, 3)))
    fn = lambda name, *extra: types.FunctionType((lambda cfg, device, *p: 0.0).__code__, {}, name)  # noqa: E731
    ch.measurement(fn("measure_a"))
    ch.measurement(fn("measure_b"))
    ch.measurement(fn("measure_c"), depends=("measure_b",))
    ch.measurement(fn("measure_d"), depends=("measure_c", "measure_a"))
    ch.measurement(fn("measure_e"))
    ch.measurement(fn("measure_f"), depends=("measure_e",))
    ch.measurement(fn("measure_p"), parts=lambda cfg: [{"s": s} for s in cfg.seeds], combine=lambda c, v: v)
    # union of dependency components, named by the first-declared member
    groups = {n: ch._group(n) for n in ch.measurements}
    assert groups == {"measure_a": "measure_a", "measure_b": "measure_a", "measure_c": "measure_a",
                      "measure_d": "measure_a", "measure_e": "measure_e", "measure_f": "measure_e",
                      "measure_p": "measure_p"}
    cj = config_json(Small(n=4, seeds=(1, 2, 3)))
    assert ch.measurements["measure_f"].point_configs("reference") == [
        {"module": "fake_sw", "measurement": "measure_f", "scale": "reference", "config": cj, "part": "",
         "group": "measure_e"}]
    assert ch.measurements["measure_p"].point_configs("reference") == [
        {"module": "fake_sw", "measurement": "measure_p", "scale": "reference", "config": cj, "part": '{"s":1}',
         "group": "measure_p:0"},
        {"module": "fake_sw", "measurement": "measure_p", "scale": "reference", "config": cj, "part": '{"s":2}',
         "group": "measure_p:1"},
        {"module": "fake_sw", "measurement": "measure_p", "scale": "reference", "config": cj, "part": '{"s":3}',
         "group": "measure_p:2"}]
    sw = ch.measurement_sweep()
    assert sw is ch.measurement_sweep()  # built once
    assert (sw.name, sw.chapter, sw.group_by, sw.batch_size) == ("fk_measurements", "fk", ("module", "group"), 7)
    assert sw.run_batch is run_measurement_batch and sw.description.startswith("every measurement of chapter 'fk'")
    assert set(sw.schema) == {"module", "measurement", "scale", "config", "part", "group"}
    assert sw.schema["scale"].choices == C.SCALES and sw.schema["part"].default == ""
    pts = sw.points("reference")
    assert [p["measurement"] for p in pts] == ["measure_a", "measure_b", "measure_c", "measure_d", "measure_e",
                                               "measure_f", "measure_p", "measure_p", "measure_p"]
    assert sw.points("full") == []  # no config at that scale: no points
    assert ch.sweeps == [sw]
    ch.measurement(fn("measure_g"))
    assert ch.measurement_sweep() is not sw and ch.measurement_sweep().batch_size == 8  # rebuilt on a new one
    one = _chapter()
    one.measurement(fn("measure_only"))
    assert one.measurement_sweep().batch_size == 1


def test_add_sweep_reference_path_and_store_for(tmp_path, monkeypatch):
    from lrtheory.core.sweep import Param, SweepDef

    ch = _chapter(module="fake_ref")
    mod = types.ModuleType("fake_ref")
    mod.__file__ = str(tmp_path / "pkg" / "__init__.py")
    monkeypatch.setitem(sys.modules, "fake_ref", mod)
    assert ch.reference_path == (tmp_path / "pkg" / "reference.jsonl").resolve()
    ch.reference_file = str(tmp_path / "elsewhere.jsonl")
    assert ch.reference_path == tmp_path / "elsewhere.jsonl"
    assert ch.store_for("reference") == tmp_path / "elsewhere.jsonl"
    assert ch.store_for("full") is None and ch.store_for("ci") is None
    mk = lambda chapter: SweepDef(name="g", chapter=chapter, description="d", points=lambda s: [],  # noqa: E731
                                  run_batch=run_measurement_batch, schema={"n": Param("int")})
    g = mk("fk")
    assert ch.add_sweep(g) is g and ch.sweeps == [ch.measurement_sweep(), g]
    with pytest.raises(ValueError, match=r"^sweep: 'g' belongs to chapter 'other', not 'fk'$"):
        ch.add_sweep(mk("other"))
    with pytest.raises(ValueError, match=r"^sweep: expected a SweepDef, got dict$"):
        ch.add_sweep({"name": "g"})


def test_config_json_is_canonical_and_complete():
    assert config_json(Small()) == ('{"__dataclass__":"test_contracts_verify:Small",'
                                    '"fields":{"n":3,"seeds":{"__tuple__":[5,7]}}}')
    assert config_json(Small(n=4)) != config_json(Small())


def test_stored_scales_and_reference_reads_from_the_store(tmp_path, monkeypatch):
    import lrtheory.verify.chapter as CH

    assert CH.STORED_SCALES == ("reference", "full")
    assert issubclass(MissingResults, ValueError)
    mod = types.ModuleType("fake_st")
    monkeypatch.setitem(sys.modules, "fake_st", mod)
    ch = _chapter(module="fake_st", ci=Small(), reference=Small(n=4), full=Small(n=6))
    mod.CHAPTER = ch
    ch.reference_file = tmp_path / "reference.jsonl"
    monkeypatch.setenv("LRTHEORY_CACHE", str(tmp_path / "cache"))
    calls = []

    @ch.measurement
    def measure_n(cfg, device):
        calls.append(cfg.n)
        return {"n": cfg.n}

    with pytest.raises(MissingResults, match=r"^fk\.measure_n: 1 of its points are not in .*reference\.jsonl "
                                             r"\(parts: \['whole'\]\); `lrtheory sweep fk --scale reference`"):
        measure_n("reference", "cpu")
    assert calls == [] and measure_n.load("reference") is None
    assert measure_n("ci", "cpu") == {"n": 3} and calls == [3]  # ci always computes
    from lrtheory.core.sweep import run_sweep

    run_sweep(ch.measurement_sweep(), "reference", store=ch.reference_file)
    assert calls == [3, 4]
    measure_n.cache_clear()
    assert measure_n("reference", "cpu") == {"n": 4} and calls == [3, 4]  # read, not computed
    assert measure_n.load("reference", Small(n=4)) == {"n": 4}
    assert measure_n.load("reference", Small(n=5)) is None  # another config: nothing stored can be it
    # full: not stored -> computed here, with a note on stderr
    assert measure_n("full", "cpu") == {"n": 6} and calls == [3, 4, 6]


def test_full_scale_note_on_stderr(tmp_path, monkeypatch, capsys):
    mod = types.ModuleType("fake_fu")
    monkeypatch.setitem(sys.modules, "fake_fu", mod)
    ch = _chapter(module="fake_fu", ci=Small(), full=Small(n=6))
    mod.CHAPTER = ch
    monkeypatch.setenv("LRTHEORY_CACHE", str(tmp_path / "cache"))

    @ch.measurement
    def measure_n(cfg, device):
        return cfg.n

    assert measure_n("full", "cpu") == 6
    assert capsys.readouterr().err == (
        "lrtheory: fk.measure_n at scale=full is not stored; computing it here. "
        "`lrtheory sweep fk --scale full` computes and stores it (resumable, on any executor).\n")
    assert measure_n("ci", "cpu") == 3 and capsys.readouterr().err == ""


def test_run_measurement_batch_checks_the_config_and_runs_parts(monkeypatch):
    mod = types.ModuleType("fake_rb")
    monkeypatch.setitem(sys.modules, "fake_rb", mod)
    ch = _chapter(module="fake_rb")
    mod.CHAPTER = ch

    @ch.measurement
    def measure_n(cfg, device):
        return np.float64(cfg.n) * 2

    @ch.measurement(parts=lambda cfg: [{"s": s} for s in cfg.seeds], combine=lambda c, v: v)
    def measure_p(cfg, device, part):
        return (part["s"], str(device))

    pts = measure_n.point_configs("ci") + measure_p.point_configs("ci")
    out = run_measurement_batch(pts, "cpu")
    from lrtheory.core.store import decode_value

    assert [decode_value(o["value"]) for o in out] == [6.0, (5, "cpu"), (7, "cpu")]
    assert all(set(o) == {"value"} for o in out)
    bad = dict(pts[0], config=config_json(Small(n=99)))
    with pytest.raises(ValueError, match=r"^config: fk\.measure_n at scale=ci has another config on this worker"):
        run_measurement_batch([bad], "cpu")


def test_select_strips_only_trailing_dots(monkeypatch):
    _fake(monkeypatch, "fake_x", "gamma", ["gamma.X.a", "gamma.b"])
    monkeypatch.setattr(R, "CHAPTERS", ["fake_x"])
    assert [c.id for c in R.select(["gamma.X"])] == ["gamma.X.a"]
    assert [c.id for c in R.select(["gamma.X.."])] == ["gamma.X.a"]


def test_measurement_schema_is_built_once_exactly(monkeypatch):
    import lrtheory.verify.chapter as CH
    from lrtheory.core.sweep import Param

    monkeypatch.setattr(CH, "_MEAS_SCHEMA", None)
    schema = CH._measurement_schema()
    assert schema == {"module": Param("str"), "measurement": Param("str"), "scale": Param("str", choices=C.SCALES),
                      "config": Param("str"), "part": Param("str", default=""), "group": Param("str")}
    assert CH._measurement_schema() is schema


def test_the_device_is_passed_on_never_re_resolved(monkeypatch):
    """With $LRTHEORY_DEVICE naming another device, anything that dropped the caller's device and
    resolved None instead would compute on 'mps' (never touched here: the fakes only record it)."""
    monkeypatch.setenv("LRTHEORY_DEVICE", "mps")
    mod = types.ModuleType("fake_dev")
    monkeypatch.setitem(sys.modules, "fake_dev", mod)
    ch = _chapter(module="fake_dev", ci=Small(), full=Small(n=5))
    mod.CHAPTER = ch
    seen = []

    @ch.measurement
    def measure_d(cfg, device):
        seen.append(device)
        return float(cfg.n)

    @ch.measurement(parts=lambda cfg: [{"s": s} for s in cfg.seeds], combine=lambda cfg, v: v)
    def measure_q(cfg, device, part):
        seen.append(device)
        return part["s"]

    cpu = torch.device("cpu")
    assert measure_d("ci", "cpu") == 3.0 and measure_d.of(Small(n=4), "cpu") == 4.0
    assert measure_q.of(Small(), "cpu") == [5, 7] and measure_q.compute(Small(), cpu) == [5, 7]
    assert seen == [cpu] * 6
    measure_d.cache_clear()
    run_measurement_batch(measure_d.point_configs("ci") + measure_q.point_configs("ci"), "cpu")
    assert seen[6:] == [cpu] * 3
    ch.claim("fk.dev", statement="s", source="src", tolerance=Tolerance(0, "abs", "r"),
             predict=lambda cfg: float(cfg.n), measure=lambda cfg, d: seen.append(d) or float(cfg.n))
    assert [v.passed for v in ch.check("ci", "cpu")] == [True] and seen[-1] == cpu
    # the memo is per device: another device computes again
    measure_d.cache_clear()
    n = len(seen)
    measure_d.of(Small(), "cpu")
    measure_d.of(Small(), "cpu")
    measure_d.of(Small(), "mps")
    assert seen[n:] == [cpu, torch.device("mps")]


def test_defaults_are_ci_and_check_reads_its_scale(monkeypatch):
    ch = _chapter(ci=Small(), full=Small(n=7))

    @ch.measurement
    def measure_n(cfg, device):
        return float(cfg.n)

    ch.claim("fk.X.n", statement="s", source="src", tolerance=Tolerance(0, "abs", "r"), predict=lambda cfg: 3.0,
             measure=lambda cfg, d: measure_n.of(cfg, d))
    ch.claim("fk.Y", statement="s", source="src", tolerance=Tolerance(0, "abs", "r"), predict=lambda cfg: 0.0,
             measure=lambda cfg, d: 0.0)
    assert measure_n(device="cpu") == 3.0
    assert [(v.id, v.scale, v.passed) for v in ch.check(device="cpu")] == [("fk.X.n", "ci", True), ("fk.Y", "ci", True)]
    assert [(v.scale, v.passed) for v in ch.check("full", "cpu", only=["fk.X"])] == [("full", False)]  # 7 != 3
    with pytest.raises(ValueError, match=r"^depends: \['measure_z'\] are not \(yet\) measurements of chapter 'fk'; "
                                         r"declare dependencies first$"):
        ch.measurement(types.FunctionType((lambda c, d: 0).__code__, {}, "measure_w"), depends=("measure_z",))


class _CallableMeasure:
    """A callable object (no __qualname__ of its own instance) declared as a measurement."""

    __name__ = "measure_obj"

    def __call__(self, cfg, device):
        """The object's docstring."""
        return 1.0


def test_measurement_keeps_the_function_identity():
    ch = _chapter()

    def measure_f(cfg, device):
        """Doc of f."""
        return 0.0

    m = ch.measurement(measure_f)
    assert m.__doc__ == "Doc of f." and m.__module__ == __name__
    assert m.__qualname__ == measure_f.__qualname__ and m.__qualname__.endswith("<locals>.measure_f")
    obj = _CallableMeasure()
    del_q = ch.measurement(obj)
    assert del_q.__qualname__ == "measure_obj" and del_q.__module__ == __name__


def test_stored_reads_use_the_given_store_config_and_only_the_missing_parts(tmp_path, monkeypatch):
    from lrtheory.core.store import TextStore
    from lrtheory.core.sweep import run_sweep

    mod = types.ModuleType("fake_ld")
    monkeypatch.setitem(sys.modules, "fake_ld", mod)
    ch = _chapter(module="fake_ld", ci=Small(), reference=Small(n=4, seeds=tuple(range(10))))
    mod.CHAPTER = ch
    ch.reference_file = tmp_path / "reference.jsonl"
    monkeypatch.setenv("LRTHEORY_CACHE", str(tmp_path / "cache"))

    @ch.measurement(parts=lambda cfg: [{"s": s} for s in cfg.seeds], combine=lambda cfg, v: (cfg.n, sum(v)))
    def measure_sum(cfg, device, part):
        return part["s"]

    with pytest.raises(MissingResults) as err:  # 10 parts missing: the message lists the first 8
        measure_sum("reference", "cpu")
    msg = str(err.value)
    assert msg.startswith("fk.measure_sum: 10 of its points are not in ")
    assert msg.count('{"s":') == 8 and '{"s":7}' in msg and '{"s":8}' not in msg
    other = tmp_path / "other.jsonl"
    run_sweep(ch.measurement_sweep(), "reference", store=other)
    assert measure_sum.load("reference") is None
    assert measure_sum.load("reference", store=other) == (4, 45)  # combined with the scale's config
    # the chapter's file holds 9 of the 10 parts: only the missing one is named
    rows = TextStore(other).rows()
    missing_key = [r.key for r in rows if r.config["part"] == '{"s":3}'][0]
    lines = [ln for ln in other.read_text().splitlines() if missing_key not in ln]
    ch.reference_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(MissingResults, match=r"^fk\.measure_sum: 1 of its points are not in .*\(parts: "
                                             r"\['\{\"s\":3\}'\]\)"):
        measure_sum("reference", "cpu")
    ch.reference_file.write_text(other.read_text())
    assert measure_sum("reference", "cpu") == (4, 45)
    # a config that is not the scale's: nothing stored can be it, at the stored scale
    token = C.CURRENT_SCALE.set("reference")
    try:
        with pytest.raises(MissingResults):
            measure_sum.of(Small(n=99, seeds=tuple(range(10))), "cpu")
        # the sweep engine computing a point never reads the store (so --fresh recomputes)
        measure_sum.cache_clear()
        ch.reference_file.write_text("")
        out = run_measurement_batch(measure_sum.point_configs("reference")[:2], "cpu")
        assert len(out) == 2
        ch2_calls = []

        @ch.measurement
        def measure_plain(cfg, device):
            ch2_calls.append(cfg.n)
            return 1.0

        run_measurement_batch(measure_plain.point_configs("reference"), "cpu")
        assert ch2_calls == [4]
    finally:
        C.CURRENT_SCALE.reset(token)


def test_report_defaults_digits_and_device(monkeypatch):
    v = claim(id="t.a", predicted=1.23456, measured=1.05).check()
    assert RP.verdict_table([v], digits=2).splitlines()[2].split()[1:3] == ["1.2", "1.1"]  # both sides at 2
    # default width 76: rows of exactly 76 characters are a table, of 77 blocks
    def row_of(total):
        cid = "t." + "x" * (total - 8 - (9 + 8 + 9 + 7) - 2)  # 4 gaps; predicted, measured, tolerance, verdict
        return claim(id=cid, predicted=1.0, measured=1.0).check()
    assert RP.verdict_table([row_of(76)]).splitlines()[1].startswith("-----")
    assert RP.verdict_table([row_of(77)]).splitlines()[1] == "  predicted  1"
    page = RP.html_table([v], {"t": types.SimpleNamespace(notebook="03_t", title="T")})
    assert '<a href="03_t.html">T</a>' in page and 'href="03_t.html#sec-t-verdicts"' in page
    monkeypatch.setenv("LRTHEORY_DEVICE", "mps")  # a claim that got None would see 'mps'
    seen = []
    c = dataclasses.replace(claim(), measure=lambda cfg, d: seen.append(d) or 1.0)
    RP.run_claims([c], "ci", "cpu")
    assert seen == [torch.device("cpu")]


def test_block_values_keep_a_number_with_its_exponent():
    v = claim(id="t.e", predicted={"abc": 1.235e-05, "d": 1.5e-07}, measured=2.0e-05,
              tol=Tolerance(1, "abs", "r"), compare=None)
    v = dataclasses.replace(v, measure=lambda cfg, d: {"abc": 1.0, "d": 1.0})
    verdict = v.check()
    for width in range(25, 61):  # wide enough for "abc=1.235e-05," after the 13-character label
        lines = RP.verdict_table([verdict], width=width).splitlines()
        assert not any(line.endswith("e-") for line in lines), (width, lines)


def test_expect_per_scale_and_its_messages():
    c = claim(expect={"reference": "fail"})
    assert c.expected_at("ci") == "pass" and c.expected_at("full") == "pass" and c.expected_at("reference") == "fail"
    v = c.check("ci")
    assert v.expect == "pass" and v.passed and v.as_expected and v.label == "PASS"
    assert claim(expect="fail").expected_at("ci") == "fail"
    with pytest.raises(ValueError, match=r"^expect: claim 't.a' at any scale: expected 'pass' or 'fail', got 'maybe'$"):
        claim(expect="maybe")
    with pytest.raises(ValueError, match=r"^expect: claim 't.a' at ci: expected 'pass' or 'fail', got 'x'$"):
        claim(expect={"ci": "x"})
    with pytest.raises(ValueError, match=r"^scale: "):
        claim(expect={"huge": "fail"})


def test_chapter_claim_passes_expect_on():
    ch = _chapter()
    c = ch.claim("fk.nr", statement="s", source="src", tolerance=Tolerance(0, "abs", "r"), predict=lambda cfg: 0.0,
                 measure=lambda cfg, d: 1.0, expect={"ci": "fail"})
    assert c.expect == {"ci": "fail"} and c.expected_at("ci") == "fail"
    v = ch.check("ci", "cpu")[0]
    assert v.passed is False and v.as_expected and v.label == "NOT REPRODUCED"


def test_html_colours_of_the_four_outcomes():
    cases = {"t.ok": (1.0, "pass", "#1a7f37"), "t.bad": (9.0, "pass", "#cf222e"),
             "t.nr": (9.0, "fail", "#9a6700"), "t.unexpected": (1.0, "fail", "#cf222e")}
    for cid, (measured, expect, colour) in cases.items():
        v = claim(id=cid, predicted=1.0, measured=measured, expect=expect).check()
        assert f'<td style="color:{colour}; font-weight:bold">{v.label}</td>' in RP.html_table([v], {}), cid
