#!/usr/bin/env python
"""Check the rendered book in a real browser (headless Chromium through Selenium).

Usage::

    python scripts/browser_check.py _build/html [--screenshots _build/screenshots]

Serves ``HTML_DIR`` on a loopback port (``127.0.0.1``, an ephemeral port) and opens every
page of the book in Debian's Chromium (``/usr/bin/chromium`` driven by
``/usr/bin/chromedriver``; Selenium Manager is never asked to download anything). On each
page it checks that

- the page loads with no console error (SEVERE browser-log entries) and no request the
  loopback server answered with an error;
- MathJax finished typesetting, produced no error (``merror`` nodes, undefined macros) and
  left no raw TeX (``$...$``, ``\\(``, ``\\[``, ``\\begin{``) in the visible text outside
  code blocks and cell outputs;
- every ``<img>`` loaded (``complete`` and ``naturalWidth > 0``);
- every internal link resolves: the target file exists under ``HTML_DIR`` and its
  ``#fragment`` is an ``id`` (or ``name``) on the target page;
- on the verification page (``verification.html``), no claim reads FAIL.

It saves a full-page PNG of each page under ``--screenshots``, prints one line per page and
a summary, and exits 1 listing every problem (2 on bad usage). Chromium resolves no host but
the loopback address, so a page that pulls anything from the internet (a CDN) fails.
"""
from __future__ import annotations

import argparse
import base64
import html.parser
import http.server
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: Pages (relative paths) that are Sphinx machinery rather than book content.
SKIP_PAGES = {"genindex.html", "search.html", "py-modindex.html"}
SKIP_DIRS = {"_static", "_sources", "_images", "_downloads", "_panels_static"}
WINDOW_WIDTH = 1280
#: Chromium caps a screenshot's height; longer pages are clipped at this many CSS pixels.
MAX_SHOT_HEIGHT = 30000

# Raw TeX that MathJax should have replaced. Applied to the visible text with code blocks,
# cell outputs and typeset math removed.
RAW_TEX = [
    (re.compile(r"\\\(|\\\)"), r"raw \( ... \)"),
    (re.compile(r"\\\[|\\\]"), r"raw \[ ... \]"),
    (re.compile(r"\\begin\{|\\end\{"), r"raw \begin{...}"),
    (re.compile(r"\$\$"), "raw $$"),
    (re.compile(r"(?<![\w$\\])\$(?=\S)[^$\n]{1,200}?(?<=\S)\$(?![\w$])"), "raw $...$"),
    (re.compile(r"\\(?:frac|eta|lambda|mathrm|mathbb|sqrt|sum|cdot|left|right)\b"), "raw TeX command"),
]

# Runs in the page: waits for MathJax (if the page loads it) to finish typesetting, then
# reports its errors. Callback receives {"mathjax": bool, "error": str|None, "problems": [...]}.
JS_MATHJAX = r"""
const done = arguments[arguments.length - 1];
const hasScript = Array.from(document.scripts).some(s => /mathjax/i.test(s.src || ""));
const t0 = Date.now();
function finish(res) { done(res); }
function inspect() {
  const problems = [];
  try {
    for (const item of MathJax.startup.document.math) {
      if (!item.root) continue;
      item.root.walkTree(node => {
        if (node.isKind("merror")) {
          let msg = node.attributes.get("data-mjx-error") || "";
          problems.push("MathJax error in " + JSON.stringify(String(item.math).slice(0, 120)) + ": " + msg);
        } else if (node.isKind("mtext") && node.attributes.get("mathcolor") === "red") {
          const txt = node.getText ? node.getText() : "";
          if (txt.startsWith("\\"))
            problems.push("undefined TeX macro " + txt + " in " + JSON.stringify(String(item.math).slice(0, 120)));
        }
      });
    }
  } catch (err) {
    problems.push("could not inspect MathJax's math list: " + err);
    document.querySelectorAll("mjx-merror").forEach(e => {
      problems.push("MathJax error: " + (e.getAttribute("data-mjx-error") || e.textContent || "").slice(0, 160));
    });
  }
  return problems;
}
function poll() {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    MathJax.startup.promise.then(() => {
      const p = (MathJax.typesetPromise ? MathJax.typesetPromise() : Promise.resolve());
      return p;
    }).then(() => finish({mathjax: true, error: null, problems: inspect()}),
            err => finish({mathjax: true, error: "MathJax typesetting failed: " + err, problems: []}));
    return;
  }
  if (!hasScript) { finish({mathjax: false, error: null, problems: []}); return; }
  if (Date.now() - t0 > arguments_timeout_ms) {
    finish({mathjax: false, error: "MathJax script is on the page but never started", problems: []});
    return;
  }
  setTimeout(poll, 50);
}
poll();
"""

# Visible text outside code, outputs and typeset math.
JS_TEXT = r"""
const root = document.querySelector("article") || document.querySelector("main") || document.body;
const clone = root.cloneNode(true);
clone.querySelectorAll("pre, code, script, style, mjx-container, .highlight, .cell_input, "
  + ".cell_output, .output, .MathJax, mjx-assistive-mml, .headerlink, textarea, svg").forEach(e => e.remove());
return clone.textContent;
"""

JS_IMAGES = r"""
return Array.from(document.images).map(img => ({
  src: img.getAttribute("src") || "", url: img.currentSrc || img.src, complete: img.complete,
  width: img.naturalWidth, alt: img.alt || ""}));
"""

JS_LINKS = r"""
return Array.from(document.querySelectorAll("a[href]")).map(a => a.getAttribute("href"));
"""

JS_FAIL = r"""
const hits = [];
document.querySelectorAll("table td, table th, .cell_output pre, .output pre").forEach(e => {
  const t = e.textContent;
  if (/\bFAIL\b/.test(t)) {
    const row = e.closest("tr");
    const where = row
      ? Array.from(row.cells).map(c => c.textContent.replace(/\s+/g, " ").trim()).join(" | ")
      : t.split("\n").filter(l => /\bFAIL\b/.test(l)).map(l => l.replace(/\s+/g, " ").trim()).join(" / ");
    hits.push(where.slice(0, 200));
  }
});
return Array.from(new Set(hits));
"""


# --------------------------------------------------------------------------- server
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static files from the book folder; remembers every error response."""

    errors: List[Tuple[str, int]] = []  # replaced per server
    lock = threading.Lock()

    def log_message(self, fmt, *args):  # no access log on stderr
        pass

    def send_error(self, code, message=None, explain=None):
        if self.path.split("?")[0] != "/favicon.ico":
            with self.lock:
                self.errors.append((self.path, code))
        super().send_error(code, message, explain)


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # the browser closing a connection early (favicon, navigation) is not a problem of
        # the book; anything else is printed as usual
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class LoopbackServer:
    """``http.server`` on ``127.0.0.1:<ephemeral>`` in a daemon thread."""

    def __init__(self, root: Path):
        errors: List[Tuple[str, int]] = []
        handler = type("Handler", (_QuietHandler,), {"errors": errors, "lock": threading.Lock()})

        def make(*a, **kw):
            return handler(*a, directory=str(root), **kw)

        self.errors = errors
        self.lock = handler.lock
        self.httpd = _QuietServer(("127.0.0.1", 0), make)
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def take_errors(self) -> List[Tuple[str, int]]:
        with self.lock:
            out = list(self.errors)
            self.errors.clear()
        return out


# --------------------------------------------------------------------------- static side
class _IdCollector(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: Set[str] = set()

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k == "id" and v is not None:
                self.ids.add(v)
            elif k == "name" and tag == "a" and v is not None:
                self.ids.add(v)


_ID_CACHE: Dict[Path, Set[str]] = {}


def page_ids(path: Path) -> Set[str]:
    """Every ``id`` (and ``<a name>``) in the HTML file ``path``."""
    if path not in _ID_CACHE:
        p = _IdCollector()
        p.feed(path.read_text(encoding="utf-8", errors="replace"))
        _ID_CACHE[path] = p.ids
    return _ID_CACHE[path]


def list_pages(root: Path) -> List[str]:
    """Relative paths of the book's pages (``index.html`` first), Sphinx machinery left out."""
    pages = []
    for p in sorted(root.rglob("*.html")):
        rel = p.relative_to(root)
        if rel.parts[0] in SKIP_DIRS or rel.as_posix() in SKIP_PAGES:
            continue
        pages.append(rel.as_posix())
    if "index.html" in pages:
        pages.remove("index.html")
        pages.insert(0, "index.html")
    return pages


def resolve_target(root: Path, base_url: str, page_url: str, href: str) -> Optional[Tuple[Path, str, str]]:
    """For an internal link: (target file, fragment, absolute url); None for external links."""
    href = href.strip()
    if not href or href.startswith(("mailto:", "javascript:", "data:", "tel:")):
        return None
    absolute = urljoin(page_url, href)
    if not absolute.startswith(base_url):
        return None
    url, frag = urldefrag(absolute)
    path = unquote(urlsplit(url).path)
    rel = path[len(urlsplit(base_url).path):]
    target = root / rel
    if rel == "" or rel.endswith("/"):
        target = target / "index.html"
    return target, unquote(frag), absolute


def check_links(root: Path, base_url: str, page_url: str, hrefs: List[str]) -> List[str]:
    problems, seen = [], set()
    for href in hrefs:
        if href in seen:
            continue
        seen.add(href)
        res = resolve_target(root, base_url, page_url, href)
        if res is None:
            continue
        target, frag, _ = res
        try:
            target.resolve().relative_to(root.resolve())
        except ValueError:
            problems.append(f"link {href!r} leaves the book folder")
            continue
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            problems.append(f"dead link {href!r}: {target.relative_to(root).as_posix()} does not exist")
            continue
        if frag and target.suffix == ".html" and frag not in page_ids(target):
            problems.append(f"dead anchor {href!r}: no id {frag!r} on {target.relative_to(root).as_posix()}")
    return problems


def check_raw_tex(text: str) -> List[str]:
    problems = []
    for rx, what in RAW_TEX:
        for m in rx.finditer(text):
            a, b = max(0, m.start() - 40), min(len(text), m.end() + 40)
            snippet = re.sub(r"\s+", " ", text[a:b]).strip()
            problems.append(f"{what} left unrendered: ...{snippet}...")
            break  # one example per kind is enough
    return problems


# --------------------------------------------------------------------------- browser side
def make_driver(user_data_dir: str, page_timeout: float):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--disable-extensions", "--hide-scrollbars",
        "--force-device-scale-factor=1", f"--user-data-dir={user_data_dir}",
        f"--window-size={WINDOW_WIDTH},900",
        # loopback only: every other host fails to resolve, so a CDN load is a console error
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--proxy-server=direct://", "--proxy-bypass-list=*",
    ):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=CHROMEDRIVER, log_output=os.devnull)
    driver = webdriver.Chrome(service=service, options=opts)
    driver.set_page_load_timeout(page_timeout)
    driver.set_script_timeout(page_timeout)
    # window size minus viewport size (browser frame), measured once on a blank page
    driver.set_window_size(WINDOW_WIDTH, 900)
    extra = driver.execute_script(
        "return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight];")
    driver.lrtheory_window_extra = tuple(int(min(max(e, 0), 400)) for e in extra)
    return driver


@dataclass
class PageResult:
    page: str
    problems: List[str] = field(default_factory=list)
    equations: int = 0
    images: int = 0
    links: int = 0
    seconds: float = 0.0
    screenshot: Optional[str] = None
    redirect: Optional[str] = None
    notes: List[str] = field(default_factory=list)


def set_viewport_height(driver, height: int) -> None:
    """Size the window so that its viewport (not the window) is ``WINDOW_WIDTH x height``."""
    extra_w, extra_h = getattr(driver, "lrtheory_window_extra", (0, 0))
    driver.set_window_size(WINDOW_WIDTH + extra_w, height + extra_h)


def full_page_screenshot(driver, out: Path) -> bool:
    """Resize the window to the document's height, then capture the whole page.

    Returns True when the page was taller than ``MAX_SHOT_HEIGHT`` and the picture is clipped.
    """
    full = driver.execute_script(
        "return Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0);")
    height = int(min(max(full, 600), MAX_SHOT_HEIGHT))
    set_viewport_height(driver, height)
    # the window's viewport now holds the whole page; pin the rendered surface to the same
    # size (headless Chromium otherwise renders a little less than the window) and capture it.
    # (captureBeyondViewport would re-layout wide outputs and shift the picture.)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": WINDOW_WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False})
    try:
        driver.execute_script("window.scrollTo(0, 0);")
        time.sleep(0.2)
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "fromSurface": True,
            "clip": {"x": 0, "y": 0, "width": WINDOW_WIDTH, "height": height, "scale": 1}})
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(base64.b64decode(shot["data"]))
    return full > MAX_SHOT_HEIGHT


def _wait_redirect(driver, url: str, timeout: float) -> str:
    """The URL the page settles on (follows a meta refresh), without its fragment."""
    is_redirect = driver.execute_script(
        "return !!document.querySelector('meta[http-equiv=\"Refresh\" i], meta[http-equiv=\"refresh\"]');")
    current = urldefrag(driver.current_url)[0]
    if not is_redirect:
        return current
    deadline = time.monotonic() + min(timeout, 10)
    while current == url and time.monotonic() < deadline:
        time.sleep(0.1)
        current = urldefrag(driver.current_url)[0]
    return current


def _console_and_http_errors(driver, server: LoopbackServer) -> List[str]:
    out = []
    for entry in driver.get_log("browser"):
        if entry.get("level") == "SEVERE":
            msg = entry.get("message", "")
            if "favicon.ico" in msg:
                continue
            out.append(f"console error: {msg[:300]}")
    for path, code in server.take_errors():
        out.append(f"HTTP {code} for {path}")
    return out


def check_page(driver, server: LoopbackServer, root: Path, page: str, timeout: float,
               screenshots: Optional[Path]) -> PageResult:
    res = PageResult(page)
    t0 = time.perf_counter()
    url = server.base + page
    driver.get_log("browser")  # drop entries of the previous page
    server.take_errors()
    set_viewport_height(driver, 900)
    try:
        driver.get(url)
    except Exception as exc:  # timeout or crash: reported, the run goes on
        res.problems.append(f"page did not load within {timeout:.0f} s: {type(exc).__name__}: {str(exc)[:200]}")
        res.seconds = time.perf_counter() - t0
        return res
    if driver.title.startswith(("404", "Error")) or "Error response" in driver.page_source[:500]:
        res.problems.append("page is an HTTP error page")
    # a redirect page (Jupyter Book's index.html): wait for it, then check only where it lands;
    # the target page gets its full check on its own
    landed = _wait_redirect(driver, url, timeout)
    if landed != url:
        target = landed[len(server.base):] if landed.startswith(server.base) else landed
        res.redirect = target
        if not landed.startswith(server.base) or not (root / target.split("#")[0]).is_file():
            res.problems.append(f"redirects to {landed}, which is not a page of the book")
        res.problems.extend(_console_and_http_errors(driver, server))
        res.seconds = time.perf_counter() - t0
        return res

    js = JS_MATHJAX.replace("arguments_timeout_ms", str(int(timeout * 1000 * 0.8)))
    try:
        mj = driver.execute_async_script(js)
    except Exception as exc:
        mj = {"mathjax": False, "error": f"MathJax did not finish within {timeout:.0f} s ({type(exc).__name__})",
              "problems": []}
    if mj.get("error"):
        res.problems.append(mj["error"])
    res.problems.extend(mj.get("problems", []))
    res.equations = driver.execute_script("return document.querySelectorAll('mjx-container').length;")
    res.problems.extend(check_raw_tex(driver.execute_script(JS_TEXT) or ""))

    # full height first, so lazily loaded images load; then wait for them (bounded)
    height = driver.execute_script("return document.documentElement.scrollHeight;")
    set_viewport_height(driver, int(min(max(height, 600), MAX_SHOT_HEIGHT)))
    deadline = time.monotonic() + timeout / 2
    while True:
        imgs = driver.execute_script(JS_IMAGES)
        pending = [i for i in imgs if not i["complete"]]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    res.images = len(imgs)
    for img in imgs:
        if not img["complete"]:
            res.problems.append(f"image still loading after {timeout / 2:.0f} s: {img['src']}")
        elif not img["width"]:
            res.problems.append(f"image did not load: {img['src']}" + (f" (alt {img['alt']!r})" if img["alt"] else ""))

    hrefs = driver.execute_script(JS_LINKS)
    res.links = len(hrefs)
    res.problems.extend(check_links(root, server.base, url, hrefs))

    if Path(page).name == "verification.html":
        for row in driver.execute_script(JS_FAIL):
            res.problems.append(f"failed claim in the verification table: {row}")

    if screenshots is not None:
        out = screenshots / (page[:-5].replace("/", "__") + ".png")
        try:
            if full_page_screenshot(driver, out):
                res.notes.append(f"screenshot clipped at {MAX_SHOT_HEIGHT} px")
            res.screenshot = str(out)
        except Exception as exc:
            res.problems.append(f"screenshot failed: {type(exc).__name__}: {str(exc)[:200]}")

    res.problems.extend(_console_and_http_errors(driver, server))
    res.seconds = time.perf_counter() - t0
    return res


def run(html_dir: Path, screenshots: Optional[Path] = None, timeout: float = 60.0,
        pages: Optional[List[str]] = None, require_verification: bool = True,
        out=sys.stdout) -> List[PageResult]:
    """Check every page under ``html_dir``; returns one result per page (problems included)."""
    root = html_dir.resolve()
    _ID_CACHE.clear()
    all_pages = list_pages(root)
    if pages:
        missing = [p for p in pages if p not in all_pages]
        if missing:
            raise ValueError(f"pages: not in {html_dir}: {', '.join(missing)}")
        all_pages = pages
    results: List[PageResult] = []
    if not all_pages:
        results.append(PageResult("(book)", [f"no HTML page under {html_dir}"]))
        return results
    if require_verification and not any(Path(p).name == "verification.html" for p in all_pages):
        results.append(PageResult("(book)", ["no verification.html page: the verification chapter is missing"]))
    if screenshots is not None:
        screenshots.mkdir(parents=True, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="lrtheory-chromium-")
    try:
        with LoopbackServer(root) as server:
            driver = make_driver(profile, timeout)
            try:
                for page in all_pages:
                    try:
                        r = check_page(driver, server, root, page, timeout, screenshots)
                    except Exception as exc:  # a browser that hung or died: report, restart, go on
                        msg = (str(exc).strip().splitlines() or [""])[0][:300]
                        r = PageResult(page, [f"check aborted: {type(exc).__name__}: {msg}"])
                        try:
                            driver.quit()
                        except Exception:
                            pass
                        shutil.rmtree(profile, ignore_errors=True)
                        driver = make_driver(profile, timeout)
                    results.append(r)
                    status = "ok  " if not r.problems else "FAIL"
                    what = (f"redirects to {r.redirect}" if r.redirect else
                            f"{r.equations} equations, {r.images} images, {r.links} links")
                    what += "".join(f", {n}" for n in r.notes)
                    print(f"{status} {page}  ({what}, {r.seconds:.1f} s)", file=out, flush=True)
                    for p in r.problems:
                        print(f"       - {p}", file=out, flush=True)
            finally:
                driver.quit()
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    return results


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("html_dir", type=Path, help="the built book, e.g. _build/html")
    ap.add_argument("--screenshots", type=Path, default=None, help="folder for one full-page PNG per page")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds allowed per page (load, MathJax)")
    ap.add_argument("--page", action="append", default=None, help="check only this page (repeatable)")
    ap.add_argument("--no-verification", action="store_true",
                    help="do not require a verification.html page")
    args = ap.parse_args(argv)
    if not args.html_dir.is_dir():
        ap.error(f"html_dir: {args.html_dir} is not a folder")
    if args.timeout <= 0:
        ap.error("--timeout must be > 0")
    for exe in (CHROMIUM, CHROMEDRIVER):
        if not os.access(exe, os.X_OK):
            print(f"browser_check: {exe} not found; run `bash scripts/install_chromium.sh`", file=sys.stderr)
            return 2
    t0 = time.perf_counter()
    try:
        results = run(args.html_dir, args.screenshots, args.timeout, args.page, not args.no_verification)
    except ValueError as exc:
        ap.error(str(exc))
    bad = [r for r in results if r.problems]
    n_problems = sum(len(r.problems) for r in bad)
    print(f"\nbrowser_check: {len(results) - len(bad)} of {len(results)} pages clean, "
          f"{n_problems} problems, {time.perf_counter() - t0:.1f} s"
          + (f"; screenshots in {args.screenshots}" if args.screenshots else ""))
    if bad:
        print("problems:")
        for r in bad:
            for p in r.problems:
                print(f"  {r.page}: {p}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
