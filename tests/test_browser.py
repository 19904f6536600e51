"""JupyterLab in a real browser: serve the course with ``python -m interp_lib lab`` on a free
local port, open lesson 00 in headless Chromium (Debian's chromium driven by PyPI's
playwright), clear its outputs, run all cells from the Run menu and check what a student
sees: no error outputs, figures rendered, the ipywidgets quiz rendered and answering clicks.

The kernel runs in solutions mode (INTERP_LIB_SOLUTIONS=all in the server's environment).
Autosave is switched off in a throw-away settings folder, checkpoints go to a temporary
folder, and the test checks that the lesson file is byte-for-byte unchanged afterwards. Screenshots go to tests/artifacts/.

A second test builds the student release into a temporary folder and serves it (stubs
only): lesson 09's stored widget renders before anything runs, and Run All runs every
cell, the exercise cells showing their "needs ..." line and the reference output, with no
stored output erased.
"""

import contextlib
import json
import os
import shutil
import time

import pytest
from helpers import serve_lab

from interp_lib.course import common
from interp_lib.course.pytest_plugin import needs

ROOT = common.ROOT
ARTIFACTS = ROOT / "tests" / "artifacts"
LESSON = "lessons/00_what_is_ai.ipynb"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
# JupyterLab user settings for the test: no autosave (the lesson file must stay as it is),
# every cell attached to the page, nothing fetched from the internet.
SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/extensionmanager-extension/plugin": {"enabled": False},
}


@pytest.fixture
def chromium():
    """Path of the system chromium and playwright's sync API (skip on a laptop without)."""
    needs("chromium")
    return shutil.which("chromium"), pytest.importorskip("playwright.sync_api")


@contextlib.contextmanager
def _serve(root, tmp_path, **env_extra):
    """A JupyterLab server for ``root`` on a free port (no token, localhost only), yielding
    its URL; the server's process group is stopped afterwards, also on failure."""
    settings = tmp_path / "settings"
    for name, values in SETTINGS.items():
        path = settings / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = dict(
        os.environ,
        INTERP_LIB_THREADS="1",
        OMP_NUM_THREADS="1",
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"),
        JUPYTER_DATA_DIR=str(tmp_path / "data"),  # its own notebook-signature database
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
        PYDEVD_DISABLE_FILE_VALIDATION="1",
        PYTHONPATH=str(root),  # the server and its kernels import this copy's interp_lib
    )
    env.pop("INTERP_LIB_SOLUTIONS", None)
    env.update(env_extra)
    with open(tmp_path / "lab.log", "w") as log:
        extra = ["--ServerApp.port_retries=0", f"--FileCheckpoints.root_dir={tmp_path / 'checkpoints'}"]
        with serve_lab(root, env, *extra, log=log) as (base, _):
            yield base


@pytest.fixture
def lab(tmp_path):
    """The course served in solutions mode; yields its URL."""
    with _serve(ROOT, tmp_path, INTERP_LIB_SOLUTIONS="all") as base:
        yield base


def _menu(page, menu: str, item: str) -> None:
    page.locator(f'.lm-MenuBar-itemLabel:text-is("{menu}")').click()
    page.locator(f'.lm-Menu-itemLabel:text-is("{item}")').click()


def _run_all(page, n_code: int) -> float:
    """Run > Run All Cells; wait until every code cell has an execution number and the
    kernel is idle again; returns the seconds it took."""
    start = time.perf_counter()
    _menu(page, "Run", "Run All Cells")
    page.wait_for_function(
        """(n) => {
            const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
                .map(p => p.textContent.trim());
            const done = prompts.length === n && prompts.every(t => /^\\[\\d+\\]:$/.test(t));
            const idle = /Idle/.test(document.querySelector('#jp-main-statusbar')?.textContent || '');
            return done && idle;
        }""",
        arg=n_code,
        timeout=300_000,
    )
    return time.perf_counter() - start


@pytest.mark.browser
@pytest.mark.slow
def test_lesson_runs_in_jupyterlab(chromium, lab):
    executable, sync_api = chromium
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    lesson_bytes = (ROOT / LESSON).read_bytes()
    remote, page_errors = [], []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("pageerror", lambda e: page_errors.append(str(e)))

            def guard(route):  # JupyterLab must not need the internet
                if route.request.url.startswith((lab, "data:", "blob:")):
                    return route.continue_()
                remote.append(route.request.url)
                return route.abort()

            page.route("**/*", guard)
            page.goto(f"{lab}/lab/tree/{LESSON}")
            notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
            notebook.wait_for(timeout=120_000)
            page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=60_000)
            page.wait_for_function(
                "() => /Idle/.test(document.querySelector('#jp-main-statusbar')?.textContent || '')",
                timeout=120_000,
            )  # kernel started

            _menu(page, "Edit", "Clear Outputs of All Cells")
            page.wait_for_function(
                "() => document.querySelectorAll('.jp-Notebook .jp-OutputArea-output').length === 0",
                timeout=30_000,
            )
            n_code = notebook.locator(".jp-CodeCell").count()

            run_seconds = _run_all(page, n_code)
            page.wait_for_timeout(500)  # let the last outputs paint

            stderr = [
                t
                for t in notebook.locator(
                    '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
                ).all_inner_texts()
            ]
            errors = [t for t in stderr if "Traceback" in t or "Error" in t]
            images = notebook.locator(".jp-OutputArea-output img")
            n_images = images.count()
            loaded = page.evaluate("""() => [...document.querySelectorAll('.jp-Notebook .jp-OutputArea-output img')]
                                        .filter(i => i.complete && i.naturalWidth > 0).length""")
            radios = notebook.locator(".widget-radio-box input[type=radio]")
            n_radios = radios.count()
            n_widgets = notebook.locator(".jupyter-widgets").count()
            widget_errors = notebook.locator(
                ".jp-OutputArea-output", has_text="Error displaying widget"
            ).count()
            images.nth(min(2, max(n_images - 1, 0))).scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "lab_00_figures.png"))

            # answer the first quiz question: a wrong choice, then the right one
            question = (
                notebook.locator(".widget-vbox", has=page.locator(".widget-radio-box"))
                .filter(has_text="blind conversation")
                .last
            )
            feedback = question.locator(".widget-html-content").last
            before = feedback.inner_text()
            question.locator("label", has_text="thinking humanly").click()
            page.wait_for_function(
                "(el) => /Not quite/.test(el.textContent)", arg=feedback.element_handle(), timeout=30_000
            )
            wrong = feedback.inner_text()
            question.locator("label", has_text="acting humanly").first.click()
            page.wait_for_function(
                "(el) => /Right\\./.test(el.textContent)", arg=feedback.element_handle(), timeout=30_000
            )
            right = feedback.inner_text()
            question.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "lab_00_quiz.png"))
        finally:
            browser.close()
    print(
        f"run all: {run_seconds:.1f} s; {n_code} code cells, {n_images} figures, "
        f"{n_radios} radio buttons, {n_widgets} widget elements"
    )

    assert not errors, f"error outputs after Run All: {errors}"
    assert n_images >= 3 and loaded == n_images, f"{n_images} figures in the outputs, {loaded} loaded"
    assert n_radios >= 4 and n_widgets > 0 and widget_errors == 0, "the quiz widget did not render"
    assert before.strip() == "" and "Not quite" in wrong and "Right." in right
    assert not remote, f"JupyterLab tried to reach the network: {remote}"
    assert not [e for e in page_errors if "ResizeObserver" not in e], page_errors
    assert (ROOT / LESSON).read_bytes() == lesson_bytes, "the lesson file was modified"


STUDENT_LESSON = "lessons/09_deep_taylor.ipynb"  # quick, with figures and a stored widget
FIGURES = """() => [...document.querySelectorAll('.jp-Notebook .jp-OutputArea-output img')]
    .filter(i => !i.closest('.jupyter-widgets')).length"""  # not the images inside widgets
OUTPUTS_PER_CELL = """() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')]
    .map(c => c.querySelectorAll('.jp-OutputArea-output').length)"""


@pytest.fixture
def student_lab(tmp_path):
    """The student release (stubs only) built into a temporary folder and served from there."""
    from interp_lib.course.release import build_release

    release = tmp_path / "release"
    build_release(release)
    with _serve(release, tmp_path) as base:
        yield base, release


@pytest.mark.browser
@pytest.mark.slow
def test_student_lesson_runs_to_the_end(chromium, student_lab):
    """No exercise written: the stored widget renders before running; Run All runs every
    cell, the exercise cells say what they need and show the reference output, and no
    stored output is erased."""
    from interp_lib.lesson import REFERENCE_NOTE

    executable, sync_api = chromium
    lab, release = student_lab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    lesson_bytes = (release / STUDENT_LESSON).read_bytes()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.route(
                "**/*",
                lambda route: (
                    route.continue_()
                    if route.request.url.startswith((lab, "data:", "blob:"))
                    else route.abort()
                ),
            )
            page.goto(f"{lab}/lab/tree/{STUDENT_LESSON}")
            notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
            notebook.wait_for(timeout=120_000)
            page.wait_for_function(
                "() => /Idle/.test(document.querySelector('#jp-main-statusbar')?.textContent || '')",
                timeout=120_000,
            )
            # the stored widget, from the notebook's saved widget state (no kernel has run)
            sliders = notebook.locator(".jp-OutputArea-output .widget-slider")
            with contextlib.suppress(sync_api.TimeoutError):
                sliders.first.wait_for(timeout=60_000)
            n_sliders = sliders.count()
            stored_text = " ".join(notebook.locator(".jp-OutputArea-output").all_inner_texts())
            before = page.evaluate(OUTPUTS_PER_CELL)
            images_before = page.evaluate(FIGURES)
            page.screenshot(path=str(ARTIFACTS / "lab_09_student_stored.png"))

            run_seconds = _run_all(page, len(before))
            page.wait_for_timeout(500)
            after = page.evaluate(OUTPUTS_PER_CELL)
            texts = notebook.locator(".jp-OutputArea-output").all_inner_texts()
            images_after = page.evaluate(FIGURES)
            page.screenshot(path=str(ARTIFACTS / "lab_09_student_run.png"))
        finally:
            browser.close()
    print(f"run all with the stubs: {run_seconds:.1f} s; {len(before)} code cells, {images_after} figures")

    assert n_sliders > 0, "the stored widget did not render before running"
    assert "VBox(children" not in stored_text and "FloatSlider(" not in stored_text
    assert not [t for t in texts if "Traceback" in t], "a cell failed"
    needs = [t for t in texts if t.startswith("needs 09.1 dtd_root_point — lesson 09")]
    assert needs and all(REFERENCE_NOTE in t for t in needs), texts
    assert images_after >= images_before > 0, (images_before, images_after)
    erased = [i for i, (b, a) in enumerate(zip(before, after)) if b and not a]
    assert not erased, f"code cells {erased} lost their outputs"
    assert (release / STUDENT_LESSON).read_bytes() == lesson_bytes, "the lesson file was modified"
