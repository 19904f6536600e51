"""Lecture slides: every lesson carries slide metadata, decks refer only to local assets,
a rendered deck shows its slides and typeset math in headless Chromium, offline, every
slide of every deck fits 1280 x 720, and only the instructor build has speaker notes."""

import functools
import http.server
import json
import re
import shutil
import threading

import nbformat
import pytest

from interp_lib.course import common, slides
from interp_lib.course.pytest_plugin import needs
from interp_lib.lesson import lesson_key

ROOT = common.ROOT
ARTIFACTS = ROOT / "tests" / "artifacts"
SLIDE_TYPES = {"slide", "subslide", "fragment", "skip", "notes", "-"}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


@pytest.mark.parametrize("path", common.lesson_paths(), ids=lesson_key)
def test_every_cell_has_slide_metadata(path):
    nb = nbformat.read(path, as_version=4)
    kinds = [cell.metadata.get("slideshow", {}).get("slide_type") for cell in nb.cells]
    missing = [i for i, k in enumerate(kinds) if k not in SLIDE_TYPES]
    assert not missing, f"{path.name}: cells {missing} have no valid metadata.slideshow.slide_type"
    assert kinds[0] == "slide", f"{path.name}: the first cell must start a slide"
    assert kinds.count("slide") >= 3, f"{path.name}: fewer than 3 slides"


def _local_refs(html: str) -> list[str]:
    return re.findall(r'<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]+)"', html)


def test_deck_refers_only_to_local_assets(tmp_path):
    deck = slides.render(common.lesson_paths(["00"])[0], tmp_path)
    html = deck.read_text(encoding="utf-8")
    refs = _local_refs(html)
    assert refs, "no script or stylesheet found in the deck"
    remote = [r for r in refs if "://" in r or r.startswith("//")]
    assert not remote, f"the deck loads from the network: {remote}"
    for ref in (slides.REVEAL_PREFIX + "/dist/reveal.css", slides.MATHJAX_URL, slides.REQUIRE_URL):
        assert ref in refs
    assert slides.REVEAL_PREFIX + "/dist/reveal.js" in html
    assert html.count("<section") >= 7  # lesson 00 has 7 slides and several subslides
    assert "$$" in html  # display math left for MathJax to typeset
    assert "cdnjs" not in html and "unpkg" not in html and "jsdelivr" not in html


@pytest.fixture(scope="module")
def deck_dir():
    """build/slides with the npm assets (cached there) and the lesson-00 deck."""
    needs("npm")
    out = slides.OUT
    slides.ensure_assets(out, quiet=True)
    slides.render(common.lesson_paths(["00"])[0], out)
    return out


@pytest.mark.npm
def test_assets_installed_at_pinned_versions(deck_dir):
    for package, version in slides.NPM_PACKAGES.items():
        meta = json.loads((deck_dir / "node_modules" / package / "package.json").read_text())
        assert meta["version"] == version
    assert (deck_dir / slides.MATHJAX_URL).is_file()
    assert (deck_dir / slides.REVEAL_PREFIX / "dist" / "reveal.js").is_file()
    assert not slides.ensure_assets(deck_dir, quiet=True), "a second build must use the cache"


@pytest.fixture
def chromium():
    """Path of the system chromium and playwright's sync API (skip on a laptop without)."""
    needs("chromium")
    return shutil.which("chromium"), pytest.importorskip("playwright.sync_api")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.mark.npm
@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["http", "file"])
def test_deck_renders_slides_and_math_offline(chromium, deck_dir, scheme):
    executable, sync_api = chromium
    name = "00_what_is_ai.slides.html"
    server = None
    if scheme == "http":
        handler = functools.partial(_QuietHandler, directory=str(deck_dir))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/{name}"
    else:
        url = (deck_dir / name).as_uri()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                errors, remote = [], []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

                def guard(route):  # the lecture hall has no network: refuse anything remote
                    target = route.request.url
                    if target.startswith(("file://", "data:", "http://127.0.0.1")):
                        return route.continue_()
                    remote.append(target)
                    return route.abort()

                page.route("**/*", guard)
                page.goto(url)
                page.wait_for_function(
                    "window.interpDeckReady === true && window.MathJax"
                    " && MathJax.startup && MathJax.startup.promise",
                    timeout=60_000,
                )
                page.evaluate("MathJax.startup.promise")
                top = page.locator(".reveal .slides > section").count()
                total = page.locator(".reveal .slides section").count()
                typeset = page.locator("mjx-container").count()
                display = page.locator('mjx-container[display="true"]').count()
                math_errors = page.locator("mjx-merror").count()
                # go to the slide with the displayed formula and photograph it
                page.evaluate("""() => {
                    const s = document.querySelector('mjx-container[display="true"]').closest('section');
                    const i = Reveal.getIndices(s); Reveal.slide(i.h, i.v);
                }""")
                page.wait_for_timeout(300)
                shown = page.locator('section.present mjx-container[display="true"]')
                visible = shown.count() > 0 and shown.first.is_visible()
                page.screenshot(path=str(ARTIFACTS / f"slides_00_{scheme}.png"))
                page.evaluate("Reveal.slide(0, 0)")
                page.screenshot(path=str(ARTIFACTS / f"slides_00_title_{scheme}.png"))
            finally:
                browser.close()
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
    assert not remote, f"the deck tried to reach the network: {remote}"
    assert not errors, f"errors in the page: {errors}"
    assert top >= 7 and total >= 10, f"{top} slides, {total} sections"
    assert typeset >= 2 and display >= 1, f"{typeset} typeset formulas ({display} displayed)"
    assert math_errors == 0
    assert visible, "the displayed formula is not visible on its slide"


def test_lecture_layout_hides_code_and_keeps_outputs():
    nb = nbformat.v4.new_notebook()
    md = nbformat.v4.new_markdown_cell("## Title\n\nOne idea.\n\n### Detail\n\nAnother idea.")
    hidden = nbformat.v4.new_code_cell("print('verdict')")
    hidden.outputs = [nbformat.v4.new_output("stream", name="stdout", text="verdict: correct\n")]
    shown = nbformat.v4.new_code_cell("x = 1  # shown")
    shown.metadata["tags"] = [slides.SHOW_CODE_TAG]
    for cell, kind in ((md, "slide"), (hidden, "-"), (shown, "-")):
        cell.metadata["slideshow"] = {"slide_type": kind}
    nb.cells = [md, hidden, shown]
    lecture = slides.lecture_notebook(nb)
    kinds = [c.metadata.slideshow.slide_type for c in lecture.cells]
    assert kinds[:2] == ["slide", "subslide"], kinds  # a sub-heading opens a sub-slide
    code = [c.source for c in lecture.cells if c.cell_type == "code"]
    assert code == ["x = 1  # shown"], code
    assert any("verdict: correct" in c.source for c in lecture.cells)
    assert not any("print(" in c.source for c in lecture.cells)


MEASURE_SLIDES = """() => {
  const cfg = Reveal.getConfig();
  const leaves = [...document.querySelectorAll('.reveal .slides section')]
      .filter(s => !s.querySelector('section'));
  return leaves.map(s => {
    const i = Reveal.getIndices(s);
    Reveal.slide(i.h, i.v);
    const box = s.getBoundingClientRect();
    const cut = [];
    for (const el of s.querySelectorAll('pre, img, table, .jp-OutputArea, mjx-container')) {
      const r = el.getBoundingClientRect();
      const scrolls = getComputedStyle(el).overflowX !== 'visible' && el.scrollWidth > el.clientWidth + 1;
      if (scrolls || r.right > box.right + 1 || r.left < box.left - 1) cut.push(el.tagName);
    }
    return {h: i.h, v: i.v, height: s.scrollHeight, width: s.scrollWidth,
            slideW: cfg.width, slideH: cfg.height, cut: cut,
            notes: s.querySelectorAll('aside.notes').length};
  });
}"""


def _measure(page, deck):
    page.goto(deck.as_uri())
    page.wait_for_function(
        "window.interpDeckReady === true && window.MathJax && MathJax.startup && MathJax.startup.promise",
        timeout=60_000,
    )
    page.evaluate("MathJax.startup.promise")
    return page.evaluate(MEASURE_SLIDES)


@pytest.mark.npm
@pytest.mark.browser
@pytest.mark.slow
def test_every_slide_fits_and_notes_only_for_instructors(chromium, deck_dir):
    """Every deck, student and instructor build, measured in one browser."""
    executable, sync_api = chromium
    student = slides.build(out=deck_dir, quiet=True)
    teacher_dir = slides.INSTRUCTOR_OUT
    teacher = slides.build(out=teacher_dir, quiet=True, instructor=True)
    assert len(student) == len(teacher) == len(common.lesson_paths())
    report, problems = {}, []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            for deck in student:
                shown = _measure(page, deck)
                report[lesson_key(deck)] = (len(shown), max(s["height"] for s in shown))
                for s in shown:
                    where = f"{deck.name} slide {s['h']}/{s['v']}"
                    assert (
                        (s["slideW"], s["slideH"]) == (slides.SLIDE_WIDTH, slides.SLIDE_HEIGHT) == (1280, 720)
                    )
                    if s["height"] > s["slideH"]:
                        problems.append(f"{where}: {s['height']} px high")
                    if s["width"] > s["slideW"] or s["cut"]:
                        problems.append(f"{where}: cut horizontally ({s['width']} px, {s['cut']})")
                    if s["notes"]:
                        problems.append(f"{where}: speaker notes in the student build")
            notes = _measure(page, next(d for d in teacher if lesson_key(d) == "05"))  # for its notes
        finally:
            browser.close()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "slides_layout.json").write_text(json.dumps(report, indent=1) + "\n")
    assert not problems, "\n".join(problems)
    assert sum(s["notes"] for s in notes) == 5, "lesson 05's five discussion questions carry notes"
    for deck in student:
        html = deck.read_text(encoding="utf-8")
        assert 'class="notes"' not in html and "Model answer" not in html, deck.name
    for deck in teacher:  # every answered discussion question (>= 3 per lesson) carries its notes
        html = deck.read_text(encoding="utf-8")
        answers = slides.answers_path(deck).read_text(encoding="utf-8")
        answered = len(re.findall(r"^## \d+\.", answers, flags=re.M))
        assert answered >= 3 and html.count('<aside class="notes">') >= answered, deck.name
        assert "Model answer" in html, deck.name
