"""Tests for scripts/browser_check.py: each failure mode of the rendered book is caught.

A tiny Jupyter Book (tests/fixtures/book: two chapters, an equation, a figure, a verification
table) is built once per session with the same extensions and offline MathJax as the lrtheory
book. Each test copies the built site, breaks one thing the way a faulty chapter would, and
runs the real check (headless Chromium through Selenium, on a loopback port).

The browser tests skip when /usr/bin/chromium or /usr/bin/chromedriver is absent
(`bash scripts/install_chromium.sh` installs them; `make test-browser` runs it first), or when
the offline MathJax package (sphinx-mathjax-offline, in the [book] extra) is not installed.
The browser tests carry the marker ``browser``; the unit tests of the static helpers at the
bottom always run.
"""
from __future__ import annotations

import importlib.util
import io
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURE_BOOK = REPO / "tests" / "fixtures" / "book"
sys.path.insert(0, str(REPO / "scripts"))
import browser_check  # noqa: E402

HAVE_BROWSER = os.access(browser_check.CHROMIUM, os.X_OK) and os.access(browser_check.CHROMEDRIVER, os.X_OK)
HAVE_MATHJAX = importlib.util.find_spec("sphinx-mathjax-offline") is not None
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")

needs_browser = pytest.mark.skipif(
    not HAVE_BROWSER,
    reason=f"{browser_check.CHROMIUM} / {browser_check.CHROMEDRIVER} not installed "
           "(run `bash scripts/install_chromium.sh`, or `make test-browser`)")
needs_book = pytest.mark.skipif(
    not (HAVE_MATHJAX and JUPYTER_BOOK.exists()),
    reason="jupyter-book and sphinx-mathjax-offline (the [book] extra) are needed to build the fixture book")


def browser_test(fn):
    """Marked ``browser`` (``make test-browser`` runs them; ``-m 'not browser'`` leaves them out)."""
    return pytest.mark.browser(needs_browser(needs_book(fn)))


@pytest.fixture(scope="session")
def built_book(tmp_path_factory) -> Path:
    """Build tests/fixtures/book once; returns its _build/html folder."""
    if not (HAVE_BROWSER and HAVE_MATHJAX and JUPYTER_BOOK.exists()):
        pytest.skip("browser or book toolchain missing")
    src = tmp_path_factory.mktemp("fixture") / "book"
    shutil.copytree(FIXTURE_BOOK, src)
    shutil.copytree(REPO / "_ext", src / "_ext")  # the book's own Sphinx fixes, one copy
    proc = subprocess.run(
        [str(JUPYTER_BOOK), "build", str(src), "--builder", "html", "-W", "-n", "--keep-going"],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"fixture book build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    html = src / "_build" / "html"
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file(), "MathJax was not copied into _static"
    return html


@pytest.fixture
def site(built_book, tmp_path) -> Path:
    """A private copy of the built fixture site, to break."""
    dst = tmp_path / "html"
    shutil.copytree(built_book, dst)
    return dst


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}: the fixture book changed"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _problems(site: Path, pages, **kw):
    results = browser_check.run(site, pages=pages, require_verification=False, out=io.StringIO(),
                                timeout=30, **kw)
    return [p for r in results for p in r.problems]


def _png_size(path: Path):
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


INLINE = r"\(0 &lt; \eta &lt; 2/\lambda_1\)"


# --------------------------------------------------------------------------- browser tests
@browser_test
def test_clean_book_passes_and_screenshots_every_page(built_book, tmp_path):
    shots = tmp_path / "shots"
    out = io.StringIO()
    results = browser_check.run(built_book, screenshots=shots, out=out, timeout=30)
    assert [p for r in results for p in r.problems] == [], out.getvalue()
    pages = {r.page: r for r in results}
    assert set(pages) == {"index.html", "intro.html", "chapters/page.html", "chapters/verification.html"}
    assert pages["index.html"].redirect == "intro.html"
    # the chapter's display and inline equation were typeset by the local MathJax, its figure loaded
    assert pages["chapters/page.html"].equations == 2
    assert pages["chapters/page.html"].images == 1
    for name in ("intro", "chapters__page", "chapters__verification"):
        width, height = _png_size(shots / f"{name}.png")
        assert width == browser_check.WINDOW_WIDTH and height >= 600


@browser_test
def test_broken_equation_is_caught(site):
    _edit(site / "chapters" / "page.html", INLINE, r"\(\eta^{2}^{3} + \left( x\)")
    problems = _problems(site, ["chapters/page.html"])
    assert any(p.startswith("MathJax error") and "Double exponent" in p for p in problems), problems


@browser_test
def test_unbalanced_braces_are_caught(site):
    # MathJax does not even find this as math: it stays raw TeX in the text
    _edit(site / "chapters" / "page.html", INLINE, r"\(\frac{1}{\eta\)")
    problems = _problems(site, ["chapters/page.html"])
    assert any(p.startswith("raw \\( ... \\) left unrendered") for p in problems), problems


@browser_test
def test_undefined_macro_is_caught(site):
    _edit(site / "chapters" / "page.html", INLINE, r"\(\eta &lt; 2/\lamtwo\)")
    problems = _problems(site, ["chapters/page.html"])
    assert any("undefined TeX macro \\lamtwo" in p for p in problems), problems


@browser_test
def test_unrendered_tex_in_text_is_caught(site):
    # math that never reached MathJax (e.g. dollarmath switched off): raw TeX in the prose
    _edit(site / "chapters" / "page.html", "<p>Gradient descent",
          r"<p>The rate $\eta$ and \begin{align} x \end{align}</p><p>Gradient descent")
    problems = _problems(site, ["chapters/page.html"])
    assert any("raw $...$" in p for p in problems), problems
    assert any("raw \\begin" in p for p in problems), problems


@browser_test
def test_missing_figure_is_caught(site):
    (site / "_images" / "curve.png").unlink()
    problems = _problems(site, ["chapters/page.html"])
    assert any(p.startswith("image did not load: ../_images/curve.png") for p in problems), problems
    assert any(p == "HTTP 404 for /_images/curve.png" for p in problems), problems


@browser_test
def test_dead_anchor_and_dead_link_are_caught(site):
    _edit(site / "intro.html", 'href="chapters/page.html#sec-page-eq"', 'href="chapters/page.html#sec-page-gone"')
    _edit(site / "chapters" / "verification.html", 'href="page.html#sec-page-eq"', 'href="missing.html"')
    problems = _problems(site, ["intro.html", "chapters/verification.html"])
    assert any("dead anchor 'chapters/page.html#sec-page-gone'" in p for p in problems), problems
    assert any("dead link 'missing.html'" in p for p in problems), problems


@browser_test
def test_failed_claim_in_verification_table_is_caught(site):
    _edit(site / "chapters" / "verification.html", "<td><p>PASS</p></td>", "<td><p>FAIL</p></td>")
    problems = _problems(site, ["chapters/verification.html"])
    assert any(p.startswith("failed claim in the verification table") and "page.edge" in p
               for p in problems), problems


@browser_test
def test_external_load_is_a_console_error(site):
    # e.g. MathJax from a CDN: Chromium resolves only the loopback address
    _edit(site / "chapters" / "page.html", "</head>",
          '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script></head>')
    problems = _problems(site, ["chapters/page.html"])
    assert any(p.startswith("console error") and "cdn.jsdelivr.net" in p for p in problems), problems


@browser_test
def test_main_exit_codes(site, capsys):
    assert browser_check.main([str(site), "--page", "intro.html", "--no-verification"]) == 0
    _edit(site / "intro.html", 'href="chapters/page.html#sec-page-eq"', 'href="chapters/nope.html"')
    assert browser_check.main([str(site), "--page", "intro.html", "--no-verification"]) == 1
    out = capsys.readouterr().out
    assert "intro.html: dead link 'chapters/nope.html'" in out
    assert "0 of 1 pages clean" in out


# --------------------------------------------------------------------------- static helpers
def test_raw_tex_detection():
    assert browser_check.check_raw_tex("The rate is eta, it costs $5 or 6 dollars.") == []
    assert browser_check.check_raw_tex("price $ 5 and $ 6") == []
    for text, kind in [(r"stable for $\eta < 2$ here", "raw $...$"), (r"see \(x\)", r"raw \("),
                       (r"\begin{align}", r"raw \begin"), ("$$x$$", "raw $$"), (r"a \frac b", "raw TeX command")]:
        found = browser_check.check_raw_tex(text)
        assert any(kind in p for p in found), (text, found)


def test_link_resolution(tmp_path):
    (tmp_path / "chapters").mkdir()
    (tmp_path / "index.html").write_text('<p id="top">x</p><a name="old">y</a>')
    (tmp_path / "chapters" / "a.html").write_text('<h1 id="sec-a">A</h1>')
    browser_check._ID_CACHE.clear()
    base = "http://127.0.0.1:1/"
    page = base + "chapters/a.html"
    ok = ["#sec-a", "../index.html#top", "../index.html#old", "a.html", "../", "https://example.org/#x",
          "mailto:a@b.c", base + "index.html"]
    assert browser_check.check_links(tmp_path, base, page, ok) == []
    bad = browser_check.check_links(tmp_path, base, page, ["#nope", "b.html", "../index.html#gone"])
    assert len(bad) == 3 and all(p.startswith(("dead anchor", "dead link")) for p in bad), bad


def test_page_list_skips_sphinx_machinery(tmp_path):
    for rel in ["index.html", "intro.html", "genindex.html", "search.html", "chapters/x.html",
                "_static/a.html", "_sources/b.html"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("<p></p>")
    assert browser_check.list_pages(tmp_path) == ["index.html", "chapters/x.html", "intro.html"]


def test_bad_usage_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        browser_check.main([str(tmp_path / "nope")])
    assert exc.value.code == 2
