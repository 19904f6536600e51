"""``python -m interp_lib slides [LL ...]``: lecture slides (reveal.js) from the lessons.

Each lesson becomes one self-contained HTML deck in ``build/slides/`` (git-ignored). The
cells' ``metadata.slideshow.slide_type`` decides the structure: ``slide`` starts a new
slide (left-right), ``subslide`` a vertical one below it, ``fragment`` appears on the next
key press, ``-`` continues the current slide, ``skip`` is left out and ``notes`` become
speaker notes (press ``s``). Every lesson sets it on every cell (the lesson builder makes
``#``/``##`` headings slides and ``###`` headings subslides; tests/test_slides.py checks).

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
import json
import pathlib
import shutil
import subprocess
import time

from .common import ROOT

OUT = ROOT / "build" / "slides"

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


def lesson_paths(numbers: list[str] | None = None) -> list[pathlib.Path]:
    from .common import lesson_paths as _paths

    return _paths(numbers)


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
    c.SlidesExporter.reveal_number = "c/t"
    c.SlidesExporter.reveal_scroll = True
    c.SlidesExporter.mathjax_url = MATHJAX_URL
    c.SlidesExporter.require_js_url = REQUIRE_URL
    c.SlidesExporter.jquery_url = JQUERY_URL
    c.SlidesExporter.exclude_input_prompt = True
    c.SlidesExporter.exclude_output_prompt = True
    ex = SlidesExporter(config=c, extra_loaders=[jinja2.DictLoader({TEMPLATE_NAME: TEMPLATE})])
    ex.template_file = TEMPLATE_NAME
    return ex


def render(path: pathlib.Path, out: pathlib.Path = OUT) -> pathlib.Path:
    """Render one lesson into ``out/<name>.slides.html`` (assets are not checked here)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nb.metadata.setdefault("title", _title(nb) or path.stem)
    body, _ = exporter().from_notebook_node(nb, resources={"metadata": {"name": path.stem}})
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
    decks = sorted(out.glob("[0-9][0-9]_*.slides.html"))
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
    numbers: list[str] | None = None, out: pathlib.Path = OUT, quiet: bool = False
) -> list[pathlib.Path]:
    """Install the assets when missing, then render the chosen lessons (default: all)."""
    out = pathlib.Path(out)
    start = time.perf_counter()
    fetched = ensure_assets(out, quiet=quiet)
    if not quiet and fetched:
        print(f"  npm install: {time.perf_counter() - start:.1f} s", flush=True)
    decks = []
    for path in lesson_paths(numbers):
        t0 = time.perf_counter()
        decks.append(render(path, out))
        if not quiet:
            print(
                f"{decks[-1].relative_to(out.parent) if out.parent in decks[-1].parents else decks[-1]}"
                f" ({time.perf_counter() - t0:.1f} s)",
                flush=True,
            )
    _write_index(out)
    return decks


def cmd_slides(args: argparse.Namespace) -> int:
    out = pathlib.Path(args.out).resolve() if args.out else OUT
    start = time.perf_counter()
    decks = build(args.lessons, out)
    print(
        f"{len(decks)} deck(s) in {out} ({time.perf_counter() - start:.1f} s); open "
        f"{out / 'index.html'} in a browser (works offline; copy the whole folder to move it)"
    )
    return 0


def add_command(sub) -> None:
    p = sub.add_parser("slides", help="lecture slides (reveal.js, offline) -> build/slides/")
    p.add_argument("lessons", nargs="*", help="lesson numbers (default: all)")
    p.add_argument("--out", default=None, help="output folder (default: build/slides)")
    p.set_defaults(func=cmd_slides)
