"""``python -m interp_lib slides [LL ...]``: lecture slides (reveal.js) from the lessons.

Each lesson becomes one self-contained HTML deck in ``build/slides/`` (git-ignored). The
cells' ``metadata.slideshow.slide_type`` decides the structure: ``slide`` starts a new
slide (left-right), ``subslide`` a vertical one below it, ``-`` continues the current
slide, ``skip`` is left out and ``notes`` become speaker notes (press ``s``; instructor
build only). Every lesson sets it on every cell (tests/test_slides.py checks). On top of
that the deck is lecture-shaped (``lecture_notebook``): code is hidden unless its cell is
tagged ``slide-code``, long markdown is split into sub-slides at its sub-headings and
paragraphs, figures are scaled to the room on their 1280 x 720 slide, widgets become a
pointer to the notebook. ``--instructor`` builds into ``build/slides-instructor/`` with the
model answers of ``solutions/answers/LL.md`` as speaker notes of the discussion questions;
the student build has no notes.

The decks work offline in a lecture hall: reveal.js, MathJax 3, RequireJS and jQuery are
installed from the npm registry once, at build time, into ``build/slides/node_modules``
(pinned versions below; skipped when already there) and the HTML refers to them by
relative paths, so the whole ``build/slides`` folder can be copied to a USB stick and
opened from disk, without any network. The rendering is nbconvert's ``--to slides``
(``SlidesExporter`` with ``reveal_url_prefix`` pointing at the local reveal.js, and
``mathjax_url``/``require_js_url``/``jquery_url`` at the local copies), with a small
template on top of nbconvert's ``reveal`` one: MathJax 3 instead of the CDN's MathJax 2,
and no CDN scripts (mermaid, widget manager).

Equivalent command line for one lesson (after the npm install)::

    jupyter nbconvert --to slides lessons/00_what_is_ai.ipynb --output-dir build/slides \\
        --SlidesExporter.reveal_url_prefix=node_modules/reveal.js \\
        --HTMLExporter.mathjax_url=node_modules/mathjax/es5/tex-chtml-full.js \\
        --HTMLExporter.require_js_url=node_modules/requirejs/require.js \\
        --HTMLExporter.jquery_url=node_modules/jquery/dist/jquery.min.js

(that one keeps nbconvert's MathJax 2 configuration, which MathJax 3 ignores: inline
``$...$`` then stays raw, hence the template here).
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import pathlib
import re
import shutil
import subprocess
import time

from ..lesson import lesson_key
from .common import ROOT

OUT = ROOT / "build" / "slides"
INSTRUCTOR_OUT = ROOT / "build" / "slides-instructor"

#: npm packages the decks load, pinned (the offline copy in build/slides/node_modules).
NPM_PACKAGES = {
    "reveal.js": "4.6.0",
    "mathjax": "3.2.2",
    "requirejs": "2.3.7",
    "jquery": "3.7.1",
}
#: paths of the scripts inside node_modules, relative to the deck's folder
REVEAL_PREFIX = "node_modules/reveal.js"
MATHJAX_URL = "node_modules/mathjax/es5/tex-chtml-full.js"
REQUIRE_URL = "node_modules/requirejs/require.js"
JQUERY_URL = "node_modules/jquery/dist/jquery.min.js"

TEMPLATE_NAME = "interp_slides.html.j2"
# nbconvert's reveal template, with MathJax 3 (local) and without CDN-only extras.
TEMPLATE = r"""{%- extends 'index.html.j2' -%}

{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}

{% block notebook_css %}
{{ super() }}
<style type="text/css">
/* lecture layout (interp_lib/course/slides.py): sizes the deck builder budgets for */
.reveal .slides section { font-size: @text@px; line-height: @line@; }
.reveal .jp-RenderedHTMLCommon { font-size: @text@px; line-height: @line@; padding-right: 0; }
.reveal .jp-RenderedHTMLCommon p, .reveal .jp-RenderedHTMLCommon li {
  font-size: @text@px; line-height: @line@; margin: 0 0 @gap@px 0; }
.reveal .jp-RenderedHTMLCommon ul, .reveal .jp-RenderedHTMLCommon ol { margin: 0 0 @gap@px 0; }
.reveal .jp-RenderedHTMLCommon h1 { font-size: @h1@px; margin: 0 0 @gap@px 0; line-height: 1.2; }
.reveal .jp-RenderedHTMLCommon h2 { font-size: @h2@px; margin: 0 0 @gap@px 0; line-height: 1.2; }
.reveal .jp-RenderedHTMLCommon h3 { font-size: @h3@px; margin: 0 0 @gap@px 0; line-height: 1.2; }
.reveal .jp-RenderedHTMLCommon h4 { font-size: @text@px; margin: 0 0 @gap@px 0; }
.reveal .jp-RenderedHTMLCommon blockquote { margin: 0 0 @gap@px 0; padding: 0 0 0 16px; }
.reveal .jp-RenderedHTMLCommon table { font-size: @table@px; margin: 0 0 @gap@px 0; }
.reveal .jp-RenderedHTMLCommon mjx-container[display="true"] { margin: 4px 0 !important; }
.reveal pre, .reveal .jp-RenderedHTMLCommon pre, .reveal .highlight pre {
  font-size: @code@px; line-height: 1.3; white-space: pre-wrap; overflow-wrap: anywhere;
  overflow: visible; margin: 0 0 @gap@px 0; padding: 4px 8px; width: auto; max-width: 100%;
  box-sizing: border-box; }
.reveal .highlight { margin: 0 0 @gap@px 0; }
.reveal .jp-InputArea-editor, .reveal .jp-CodeMirrorEditor { overflow: visible; min-width: 0;
  max-width: 100%; border: 0; }
.reveal .jp-Cell, .reveal .jp-MarkdownCell, .reveal .jp-CodeCell { padding: 0; margin: 0; }
.reveal .jp-InputPrompt, .reveal .jp-OutputPrompt { display: none; }
.reveal img.lecture-figure { display: block; margin: 0 auto @gap@px auto; max-width: 100%;
  width: auto; height: auto; }
.reveal .lecture-widget { font-style: italic; color: #555; }
</style>
{% endblock notebook_css %}

{%- block html_head_js_mathjax -%}
<script>
window.MathJax = {
  tex: {
    inlineMath: [['$', '$'], ['\\(', '\\)']],
    displayMath: [['$$', '$$'], ['\\[', '\\]']],
    processEscapes: true,
    processEnvironments: true,
    tags: 'ams'
  },
  options: {ignoreHtmlClass: 'tex2jax_ignore', processHtmlClass: 'tex2jax_process'},
  chtml: {displayAlign: 'center'}
};
</script>
<script id="MathJax-script" src="{{ resources.mathjax_url }}"></script>
{%- endblock html_head_js_mathjax -%}

{% block footer_js %}
<script>
require(
    {waitSeconds: 15},
    ["{{ reveal_url_prefix }}/dist/reveal.js", "{{ reveal_url_prefix }}/plugin/notes/notes.js"],
    function(Reveal, RevealNotes) {
        Reveal.initialize({
            controls: true,
            progress: true,
            history: true,
            transition: "{{ reveal_transition }}",
            slideNumber: "{{ reveal_number }}",
            plugins: [RevealNotes],
            width: {{ reveal_width }},
            height: {{ reveal_height }},
        });
        // MathJax 3 typesets the whole deck once it is loaded; re-typeset a slide that
        // shows up before that finished (cheap when already done).
        Reveal.on('slidechanged', function(event) {
            if (window.MathJax && MathJax.typesetPromise) {
                MathJax.typesetPromise([event.currentSlide]);
            }
        });
        // long slides (code and its output) scroll instead of running off the screen
        function setScrollingSlide() {
            if ({{ reveal_scroll }} !== true) { return; }
            var h = $('.reveal').height() * 0.95;
            $('section.present').find('section')
                .filter(function() { return $(this).height() > h; })
                .css('height', 'calc(95vh)').css('overflow-y', 'scroll').css('margin-top', '20px');
        }
        Reveal.on('ready', setScrollingSlide);
        Reveal.on('slidechanged', setScrollingSlide);
        window.Reveal = Reveal;  // for the console and tests/test_slides.py
        window.interpDeckReady = true;
    }
);
</script>
{% endblock footer_js %}
"""


#: sizes (CSS px on the 1280 x 720 slide) that the template sets and the layout budgets with
SLIDE_WIDTH, SLIDE_HEIGHT = 1280, 720
STYLE = {"text": 22, "line": 1.35, "gap": 10, "h1": 40, "h2": 34, "h3": 28, "table": 18, "code": 15}
#: usable height of a slide (reveal.js centres the content; keep a margin for rounding)
BUDGET = 640
#: a code cell carrying this tag shows its source on the slides (others show only outputs)
SHOW_CODE_TAG = "slide-code"
#: figures (saved at 100 dpi) are enlarged up to this factor when the slide has room
FIGURE_ZOOM = 1.4
#: most lines of a text output shown on a slide
MAX_OUTPUT_LINES = 14

for _key, _value in STYLE.items():
    TEMPLATE = TEMPLATE.replace(f"@{_key}@", str(_value))


def lesson_paths(numbers: list[str] | None = None) -> list[pathlib.Path]:
    from .common import lesson_paths as _paths

    return _paths(numbers)


# --------------------------------------------------------------------------- lecture layout
# The notebook is re-cut into slides that fit 1280 x 720: markdown is split into blocks
# (headings, paragraphs, list items, displayed math, tables, quotes, code), each with an
# estimated height; blocks are packed onto a slide until the budget is used, a new
# sub-slide starts at every heading and when the next block does not fit. Code is hidden
# unless the cell is tagged SHOW_CODE_TAG; text outputs are kept (cut to
# MAX_OUTPUT_LINES), figures are scaled to the room left on their slide (a sub-slide of
# their own when less than a third is left), widgets become a one-line pointer to the
# notebook. tests/test_slides.py measures every slide of every deck in Chromium.

_CHARS_PER_LINE = 84  # of 22 px text over the 1180 px content width (DejaVu Sans is wide)
_CODE_CHARS_PER_LINE = 120
_LINE = STYLE["text"] * STYLE["line"]
_CODE_LINE = STYLE["code"] * 1.3
_HEADING = {1: STYLE["h1"] * 1.2, 2: STYLE["h2"] * 1.2, 3: STYLE["h3"] * 1.2}
_LIST_ITEM = re.compile(r"^\s{0,3}(?:\d+\.|[*+-])\s+")
_HEADING_LINE = re.compile(r"^(#{1,6})\s+")


def _plain_length(text: str) -> int:
    """Rough rendered length of markdown text: markup, link targets and TeX shrunk."""
    text = re.sub(r"\]\([^)]*\)", "]", text)  # [label](url) -> label
    text = re.sub(r"<(https?://[^>]+)>", r"\1", text)
    text = re.sub(r"\$([^$]+)\$", lambda m: "x" * max(1, int(len(m.group(1)) * 0.6)), text)
    return len(re.sub(r"[*_`]", "", text))


def _lines(text: str, chars: int = _CHARS_PER_LINE) -> int:
    return max(1, math.ceil(_plain_length(" ".join(text.split())) / chars))


def _markdown_blocks(source: str) -> list[tuple[str, str]]:
    """(kind, markdown) blocks of a markdown cell, in order; kind is "h1".."h6", "item"
    (one list item), "math", "table", "quote", "code" or "text"."""
    blocks: list[tuple[str, str]] = []
    cur: list[str] = []
    kind = "text"
    closing = None  # the line that ends an open ``` fence or $$ block

    def flush():
        nonlocal cur, kind
        if cur:
            blocks.append((kind, "\n".join(cur)))
        cur, kind = [], "text"

    for line in source.splitlines():
        stripped = line.strip()
        if closing is not None:
            cur.append(line)
            if stripped.endswith(closing) and len(cur) > 1:
                closing = None
                flush()
            continue
        if stripped.startswith("```") or (stripped.startswith("$$") and not cur):
            flush()
            kind, closing = ("code", "```") if stripped.startswith("```") else ("math", "$$")
            cur.append(line)
            if kind == "math" and len(stripped) > 2 and stripped.endswith("$$"):
                closing = None
                flush()
            continue
        heading = _HEADING_LINE.match(line)
        if heading:
            flush()
            blocks.append((f"h{len(heading.group(1))}", line))
            continue
        if not stripped:
            flush()
            continue
        if _LIST_ITEM.match(line) and (kind == "item" or not cur):
            flush()
            kind = "item"
        elif not cur:
            kind = "table" if stripped.startswith("|") else "quote" if stripped.startswith(">") else "text"
        cur.append(line)
    flush()
    return blocks


def _block_height(kind: str, text: str) -> float:
    gap = STYLE["gap"]
    if kind.startswith("h"):
        return _HEADING.get(int(kind[1]), _LINE) + gap
    if kind == "math":
        rows = 1 + text.count("\\\\") + text.count("\\begin{")
        return 56 * rows + 2 * gap
    if kind == "table":
        return len(text.splitlines()) * (STYLE["table"] * 2.1) + gap
    if kind == "code":
        return (len(text.splitlines()) - 2) * _CODE_LINE + 8 + gap
    if kind == "quote":
        return _lines(text, _CHARS_PER_LINE - 4) * _LINE + gap
    return _lines(text) * _LINE + gap + (4 if kind == "item" else 0)


def _png_size(data: str) -> tuple[int, int]:
    raw = base64.b64decode(data[:64])
    return int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")


class _Deck:
    """Cells of the lecture notebook, packed slide by slide within BUDGET."""

    def __init__(self):
        self.cells: list = []
        self.used = 0.0

    def add(self, cell, height: float, start: str | None = None) -> None:
        """Append ``cell``; ``start`` ("slide"/"subslide") forces a new (sub-)slide."""
        if start is None and self.cells and self.used + height > BUDGET:
            start = "subslide"
        if start is None and not self.cells:
            start = "slide"
        cell.metadata["slideshow"] = {"slide_type": start or "-"}
        self.used = height if start else self.used + height
        self.cells.append(cell)

    def room(self) -> float:
        return BUDGET - self.used

    def note(self, markdown: str) -> None:
        import nbformat

        cell = nbformat.v4.new_markdown_cell(markdown)
        cell.metadata["slideshow"] = {"slide_type": "notes"}
        self.cells.append(cell)


def _answer_sections(text: str) -> dict[str, str]:
    """Model answers by question number: ``## N. title`` sections of solutions/answers/LL.md."""
    sections: dict[str, str] = {}
    for part in re.split(r"^## ", text, flags=re.M)[1:]:
        title, _, body = part.partition("\n")
        number = re.match(r"(\d+)\.", title)
        if number:
            sections[number.group(1)] = f"**{title.strip()}**\n\n{body.strip()}"
    return sections


def _add_markdown(deck: _Deck, cell, answers: dict[str, str]) -> None:
    import nbformat

    kind0 = cell.metadata.get("slideshow", {}).get("slide_type", "-")
    start = kind0 if kind0 in ("slide", "subslide") else None
    blocks = _markdown_blocks(cell.source)
    section = ""
    i = 0
    while i < len(blocks):
        group = [blocks[i]]
        # a heading stays with the block after it
        while group[-1][0].startswith("h") and i + 1 < len(blocks):
            i += 1
            group.append(blocks[i])
        i += 1
        kind, text = group[0]
        if kind in ("h1", "h2"):
            section = text.lstrip("# ").strip().lower()
        if kind.startswith("h") and kind in ("h2", "h3", "h4") and deck.cells and start is None:
            start = "subslide"  # one idea per slide: a sub-heading opens a sub-slide
        height = sum(_block_height(k, t) for k, t in group)
        separator = "\n" if all(k == "item" for k, _ in group) else "\n\n"
        deck.add(nbformat.v4.new_markdown_cell(separator.join(t for _, t in group)), height, start)
        start = None
        number = _LIST_ITEM.match(group[-1][1]) if group[-1][0] == "item" else None
        if answers and section.startswith("discussion") and number:
            answer = answers.get(number.group(0).strip().rstrip("."))
            if answer:
                deck.note(answer)


def _figure_html(data: str, room: float) -> tuple[str, float]:
    """An ``<img>`` of the PNG ``data`` at most ``room`` px high (enlarged up to FIGURE_ZOOM)."""
    width, height = _png_size(data)
    shown = min(FIGURE_ZOOM * height, room, height * (SLIDE_WIDTH - 100) / max(width, 1))
    return (
        f'<img class="lecture-figure" style="height: {int(shown)}px" '
        f'src="data:image/png;base64,{data.strip()}">'
    ), shown


def _add_code(deck: _Deck, cell) -> None:
    import html

    import nbformat

    kind0 = cell.metadata.get("slideshow", {}).get("slide_type", "-")
    start = kind0 if kind0 in ("slide", "subslide") else None
    if SHOW_CODE_TAG in cell.metadata.get("tags", []):
        code = nbformat.v4.new_code_cell(cell.source)
        n = sum(max(1, math.ceil(len(line) / _CODE_CHARS_PER_LINE)) for line in cell.source.splitlines())
        deck.add(code, n * _CODE_LINE + 16 + STYLE["gap"], start)
        start = None
    for output in cell.get("outputs", []):
        data = output.get("data", {})
        if output.get("output_type") == "stream":
            lines = output.get("text", "").rstrip("\n").splitlines()
            if len(lines) > MAX_OUTPUT_LINES:
                lines = lines[: MAX_OUTPUT_LINES - 1] + ["..."]
            text = "\n".join(lines)
            n = sum(max(1, math.ceil(len(line) / _CODE_CHARS_PER_LINE)) for line in lines)
            body = f'<pre class="lecture-output tex2jax_ignore">{html.escape(text)}</pre>'
            height = n * _CODE_LINE + 8 + STYLE["gap"]
        elif "image/png" in data:
            _, natural = _figure_html(data["image/png"], float("inf"))
            if start or deck.room() < min(natural / FIGURE_ZOOM, BUDGET / 3):
                start = start or "subslide"
                room = BUDGET
            else:
                room = deck.room()
            body, height = _figure_html(data["image/png"], room - STYLE["gap"])
            height += STYLE["gap"]
        elif "application/vnd.jupyter.widget-view+json" in data:
            body = '<p class="lecture-widget">(an interactive explorer: run this cell in the notebook)</p>'
            height = _LINE + STYLE["gap"]
        elif "text/plain" in data:
            text = data["text/plain"]
            body = f'<pre class="lecture-output tex2jax_ignore">{html.escape(text)}</pre>'
            height = len(text.splitlines()) * _CODE_LINE + 8 + STYLE["gap"]
        else:
            continue
        deck.add(nbformat.v4.new_markdown_cell(body), height, start)
        start = None


def lecture_notebook(nb, answers: str | None = None):
    """The lesson ``nb`` re-cut for a lecture (see above); with ``answers`` (the text of
    solutions/answers/LL.md) the discussion questions carry the model answers as speaker
    notes. Existing ``notes`` cells are kept only with ``answers``; ``skip`` cells go."""
    import nbformat

    sections = _answer_sections(answers) if answers else {}
    deck = _Deck()
    for cell in nb.cells:
        kind = cell.metadata.get("slideshow", {}).get("slide_type", "-")
        if kind == "skip":
            continue
        if kind == "notes":
            if answers is not None:
                deck.note(cell.source)
            continue
        if cell.cell_type == "markdown":
            _add_markdown(deck, cell, sections)
        elif cell.cell_type == "code":
            _add_code(deck, cell)
    out = nbformat.v4.new_notebook(metadata=nb.metadata)
    out.cells = deck.cells
    return out


def answers_path(path: pathlib.Path) -> pathlib.Path:
    """solutions/answers/LL.md for the lesson at ``path``."""
    return ROOT / "solutions" / "answers" / f"{lesson_key(path)}.md"


# --------------------------------------------------------------------------- npm


def _installed_version(out: pathlib.Path, package: str) -> str | None:
    meta = out / "node_modules" / package / "package.json"
    try:
        return json.loads(meta.read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def ensure_assets(out: pathlib.Path = OUT, quiet: bool = False) -> bool:
    """Install the pinned npm packages into ``out/node_modules`` unless already there.

    Returns True when npm ran, False when the cached copy was used.
    """
    out.mkdir(parents=True, exist_ok=True)
    if all(_installed_version(out, p) == v for p, v in NPM_PACKAGES.items()):
        return False
    if out.resolve() != OUT.resolve() and all(
        _installed_version(OUT, p) == v for p, v in NPM_PACKAGES.items()
    ):
        shutil.rmtree(out / "node_modules", ignore_errors=True)
        shutil.copytree(OUT / "node_modules", out / "node_modules", symlinks=True)
        return False
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit(
            "slides need npm (Node.js) to fetch reveal.js and MathJax once: "
            "install Node.js (Debian: apt-get install nodejs npm)"
        )
    (out / "package.json").write_text(
        json.dumps(
            {
                "name": "interp-course-slides",
                "private": True,
                "description": "offline copies of reveal.js and MathJax for the lecture slides",
                "dependencies": NPM_PACKAGES,
            },
            indent=2,
        )
        + "\n"
    )
    cmd = [
        npm,
        "install",
        "--prefix",
        str(out),
        "--no-audit",
        "--no-fund",
        "--no-package-lock",
        "--loglevel=error",
    ]
    if not quiet:
        print("installing reveal.js and MathJax from npm (once) ...", flush=True)
    proc = subprocess.run(cmd, cwd=out, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"npm install failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    missing = [p for p, v in NPM_PACKAGES.items() if _installed_version(out, p) != v]
    if missing:
        raise SystemExit(f"npm install did not provide {', '.join(missing)}")
    return True


# --------------------------------------------------------------------------- render


def exporter():
    """nbconvert's SlidesExporter, configured for the local (offline) assets."""
    import jinja2
    from nbconvert.exporters import SlidesExporter
    from traitlets.config import Config

    c = Config()
    c.SlidesExporter.reveal_url_prefix = REVEAL_PREFIX
    c.SlidesExporter.reveal_theme = "white"
    c.SlidesExporter.reveal_transition = "none"
    c.SlidesExporter.reveal_width = str(SLIDE_WIDTH)
    c.SlidesExporter.reveal_height = str(SLIDE_HEIGHT)
    c.SlidesExporter.reveal_number = "c/t"
    c.SlidesExporter.reveal_scroll = False  # slides fit (tests/test_slides.py)
    c.SlidesExporter.mathjax_url = MATHJAX_URL
    c.SlidesExporter.require_js_url = REQUIRE_URL
    c.SlidesExporter.jquery_url = JQUERY_URL
    c.SlidesExporter.exclude_input_prompt = True
    c.SlidesExporter.exclude_output_prompt = True
    ex = SlidesExporter(config=c, extra_loaders=[jinja2.DictLoader({TEMPLATE_NAME: TEMPLATE})])
    ex.template_file = TEMPLATE_NAME
    return ex


def render(path: pathlib.Path, out: pathlib.Path = OUT, instructor: bool = False, ex=None) -> pathlib.Path:
    """Render one lesson into ``out/<name>.slides.html`` (assets are not checked here).

    ``instructor`` adds the model answers (solutions/answers/LL.md) as speaker notes to
    the discussion questions; the student build has no notes at all.
    """
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.metadata.setdefault("title", _title(nb) or path.stem)
    answers = None
    if instructor:
        answers_file = answers_path(path)
        answers = answers_file.read_text(encoding="utf-8") if answers_file.is_file() else ""
    lecture = lecture_notebook(nb, answers)
    body, _ = (ex or exporter()).from_notebook_node(lecture, resources={"metadata": {"name": path.stem}})
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{path.stem}.slides.html"
    target.write_text(body, encoding="utf-8")
    return target


def _title(nb) -> str | None:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return None


def _write_index(out: pathlib.Path) -> pathlib.Path:
    decks = sorted(out.glob("[0-9][0-9]*_*.slides.html"), key=lambda d: lesson_key(d))
    items = "\n".join(f'<li><a href="{d.name}">{d.name.split(".")[0]}</a></li>' for d in decks)
    index = out / "index.html"
    index.write_text(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>interp-course slides</title></head>\n<body><h1>Lecture slides</h1>\n"
        f"<ul>\n{items}\n</ul>\n<p>Keys: arrows to move, <kbd>s</kbd> speaker notes, "
        "<kbd>Esc</kbd> overview.</p></body></html>\n",
        encoding="utf-8",
    )
    return index


def build(
    numbers: list[str] | None = None,
    out: pathlib.Path | None = None,
    quiet: bool = False,
    instructor: bool = False,
) -> list[pathlib.Path]:
    """Install the assets when missing, then render the chosen lessons (default: all).

    The student decks go to ``build/slides``, the instructor decks (with speaker notes)
    to ``build/slides-instructor`` unless ``out`` says otherwise.
    """
    out = pathlib.Path(out) if out else (INSTRUCTOR_OUT if instructor else OUT)
    start = time.perf_counter()
    fetched = ensure_assets(out, quiet=quiet)
    if not quiet and fetched:
        print(f"  assets: {time.perf_counter() - start:.1f} s", flush=True)
    decks = []
    ex = exporter()
    for path in lesson_paths(numbers):
        t0 = time.perf_counter()
        decks.append(render(path, out, instructor=instructor, ex=ex))
        if not quiet:
            print(f"{decks[-1]} ({time.perf_counter() - t0:.1f} s)", flush=True)
    _write_index(out)
    return decks


def cmd_slides(args: argparse.Namespace) -> int:
    out = pathlib.Path(args.out).resolve() if args.out else None
    start = time.perf_counter()
    decks = build(args.lessons, out, instructor=args.instructor)
    folder = decks[0].parent if decks else out
    notes = " with speaker notes (press s)" if args.instructor else ""
    print(
        f"{len(decks)} deck(s){notes} in {folder} ({time.perf_counter() - start:.1f} s); open "
        f"{folder / 'index.html'} in a browser (works offline; copy the whole folder to move it)"
    )
    return 0


def add_command(sub) -> None:
    p = sub.add_parser("slides", help="lecture slides (reveal.js, offline) -> build/slides/")
    p.add_argument("lessons", nargs="*", help="lesson numbers (default: all)")
    p.add_argument(
        "--out", default=None, help="output folder (default: build/slides or build/slides-instructor)"
    )
    p.add_argument(
        "--instructor",
        action="store_true",
        help="instructor build: model answers as speaker notes (solutions/answers/LL.md)",
    )
    p.set_defaults(func=cmd_slides)
