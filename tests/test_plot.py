"""interp_lib.plot: the figure convention of issue #14 (library-free, no models, no notebooks run).

Colour bars on every heatmap, limits at the 99th percentile of |a| (symmetric when
signed), one scale across a shared grid, titles >= 9 pt and colour-bar ticks >= 8 pt;
and a static scan of the lessons' code cells for heatmaps drawn around ``plot``.
"""

from __future__ import annotations

import ast
import json
import pathlib

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from interp_lib import plot  # noqa: E402

LESSONS = pathlib.Path(__file__).resolve().parent.parent / "lessons"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _batch(n=4, channels=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, 12, 12, generator=g), torch.randn(n, channels, 12, 12, generator=g)


def colorbars(fig) -> list:
    return [im.colorbar for ax in fig.axes for im in ax.get_images() if im.colorbar is not None]


def small_titles(fig, min_size: float = plot.TITLE_SIZE) -> list[str]:
    """Titles (axes and figure) with text set in less than ``min_size`` points."""
    titles = [t for ax in fig.axes for t in (ax.title, ax._left_title, ax._right_title)]
    titles += [fig._suptitle] if fig._suptitle is not None else []
    return [t.get_text() for t in titles if t.get_text() and t.get_fontsize() < min_size]


def small_colorbar_ticks(fig, min_size: float = plot.TICK_SIZE) -> list[str]:
    fig.canvas.draw()
    return [
        t.get_text()
        for cb in colorbars(fig)
        for t in cb.ax.get_yticklabels() + cb.ax.get_xticklabels()
        if t.get_text() and t.get_fontsize() < min_size
    ]


# --- every figure that plot draws, as the lessons and widgets call it ---------------------------


def _heatmap_panels():
    x, a = _batch()
    fig, axes = plt.subplots(1, 3)
    plot.heatmap(axes[0], a[0], signed=True, title="signed")
    plot.heatmap(axes[1], a[1].abs(), signed=False, title="unsigned")
    plot.heatmap(axes[2], a[2], image=x[2], alpha=0.5, title="overlay")
    return fig


def _heatmap_offscreen():  # the LRP widget draws on a bare Figure
    x, a = _batch(channels=3)
    fig = Figure()
    axes = fig.subplots(1, 2)
    axes[0].imshow(plot.to_image(x[0]))
    plot.heatmap(axes[1], a[0], signed=True, title="relevance")
    return fig


def _grid(**options):
    def draw():
        x, a = _batch(n=5, channels=3)
        rows = {"gradient": a, "saliency": a.abs(), "IG": 0.01 * a}
        signed = {"gradient": True, "saliency": False, "IG": True}
        if options.get("shared") == "grid":
            rows, signed = {"sigma 0": a.abs(), "sigma 0.1": 0.3 * a.abs()}, False
        return plot.heatmap_grid(rows, images=x, signed=signed, col_titles=list("abcde"), **options)

    return draw


def _grid_without_images():
    _, a = _batch(n=3)
    return plot.heatmap_grid({"saliency": a.abs(), "LRP": a}, images=None, size=1.2, signed=True)


def _confusion():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 50)
    fig, ax = plt.subplots()
    plot.confusion_matrix(y, (y + rng.integers(0, 2, 50)) % 4, ["a", "b", "c", "d"], ax=ax, title="test set")
    return fig


def _image_grid():
    x, _ = _batch(n=6, channels=3)
    return plot.image_grid(x, [str(i) for i in range(6)], ncols=3, suptitle="images")


def _curves():
    ax = plot.curves([0, 1, 2], {"a": [1, 2, 3], "b": [3, 2, 1]}, "x", "y", title="curves")
    return ax.figure


FIGURES = {
    "heatmap": _heatmap_panels,
    "heatmap on a Figure": _heatmap_offscreen,
    "heatmap_grid default": _grid(),
    "heatmap_grid shared='row'": _grid(shared="row"),
    "heatmap_grid shared='grid'": _grid(shared="grid"),
    "heatmap_grid shared=False": _grid(shared=False),
    "heatmap_grid overlay": _grid(overlay=True, alpha=0.5),
    "heatmap_grid without images": _grid_without_images,
    "confusion_matrix": _confusion,
    "image_grid": _image_grid,
    "curves": _curves,
}
WITH_HEATMAPS = {name for name in FIGURES if name.startswith("heatmap") or name == "confusion_matrix"}


@pytest.mark.parametrize("name", FIGURES)
def test_every_heatmap_has_a_colorbar(name):
    fig = FIGURES[name]()
    assert bool(plot.heatmap_images(fig)) == (name in WITH_HEATMAPS)
    assert plot.heatmaps_without_colorbar(fig) == []


@pytest.mark.parametrize("name", FIGURES)
def test_titles_at_least_9pt_and_colorbar_ticks_at_least_8pt(name):
    fig = FIGURES[name]()
    assert small_titles(fig) == []
    assert small_colorbar_ticks(fig) == []


def test_heatmaps_without_colorbar_finds_a_bare_heatmap_and_skips_pictures():
    fig, axes = plt.subplots(1, 4)
    bare = axes[0].imshow(np.random.default_rng(0).normal(size=(5, 5)), cmap=plot.SIGNED_CMAP)
    default = axes[1].imshow(np.ones((5, 5)))  # a 2-D array under the default colour map is a heatmap too
    axes[2].imshow(np.ones((5, 5)), cmap="gray")
    axes[3].imshow(np.ones((5, 5, 3)))
    assert plot.heatmaps_without_colorbar(fig) == [bare, default]
    fig.colorbar(bare, ax=axes[0])
    assert plot.heatmaps_without_colorbar(fig) == [default]


# --- limits: the 99th percentile of |a| ------------------------------------------------------------


def test_limits_worked_example():
    a = np.arange(1.0, 101.0)  # 1..100: the 99th percentile (linear interpolation) is 99.01
    lim = np.percentile(a, 99)
    assert lim == pytest.approx(99.01)
    assert plot.limits(a) == pytest.approx((-lim, lim))
    assert plot.limits(-a, signed=True) == pytest.approx((-lim, lim))  # of |a|: symmetric
    assert plot.limits(a, signed=False) == pytest.approx((0.0, lim))
    assert plot.limits(a, clip_percentile=100) == pytest.approx((-100.0, 100.0))
    assert plot.limits(torch.tensor(a).reshape(1, 10, 10)) == pytest.approx((-lim, lim))
    # several maps: one scale over all their values
    assert plot.limits([a[:50], a[50:]]) == pytest.approx((-lim, lim))


def test_limits_of_degenerate_maps():
    sparse = np.zeros(1000)
    sparse[3] = -2.0  # the 99th percentile is 0: fall back to max |a|
    assert plot.limits(sparse) == (-2.0, 2.0)
    assert plot.limits(np.zeros((4, 4)), signed=False) == (0.0, 1.0)
    assert plot.limits(np.array([np.nan, np.inf, 1.0, -3.0]), clip_percentile=100) == (-3.0, 3.0)


def test_heatmap_uses_the_limits_and_the_convention_colour_maps():
    a = np.arange(1.0, 101.0).reshape(10, 10)
    lim = np.percentile(a, 99)
    fig, axes = plt.subplots(1, 3)
    signed = plot.heatmap(axes[0], a - 50.5)
    unsigned = plot.heatmap(axes[1], a, signed=False)
    given = plot.heatmap(axes[2], a, lim=(-7.0, 7.0))
    assert signed.get_cmap().name == plot.SIGNED_CMAP
    assert (signed.norm.vmin, signed.norm.vmax) == pytest.approx(plot.limits(a - 50.5))
    assert signed.norm.vmin == -signed.norm.vmax
    assert unsigned.get_cmap().name == plot.UNSIGNED_CMAP
    assert (unsigned.norm.vmin, unsigned.norm.vmax) == pytest.approx((0.0, lim))
    assert (given.norm.vmin, given.norm.vmax) == (-7.0, 7.0)
    assert len(colorbars(fig)) == 3


def test_heatmap_colorbar_false_leaves_it_to_the_caller():
    fig, ax = plt.subplots()
    im = plot.heatmap(ax, np.eye(3), colorbar=False)
    assert plot.heatmaps_without_colorbar(fig) == [im]


def test_heatmap_sums_channels_and_overlays_the_grey_image():
    x, a = _batch(channels=3)
    fig, ax = plt.subplots()
    im = plot.heatmap(ax, a[0], image=x[0], alpha=0.4)
    background, top = ax.get_images()
    np.testing.assert_allclose(top.get_array(), a[0].sum(0).numpy(), rtol=1e-6)
    np.testing.assert_allclose(background.get_array(), x[0].mean(0).numpy(), rtol=1e-6)
    assert background.get_cmap().name == "gray" and top is im and im.get_alpha() == 0.4


# --- shared scales in heatmap_grid ---------------------------------------------------------------


def _limits_by_row(fig):
    """{row index: set of (vmin, vmax)} of the grid's heatmaps, rows counted by panel position."""
    by_row = {}
    for im in plot.heatmap_images(fig):
        y = round(im.axes.get_position().y0, 3)
        by_row.setdefault(y, set()).add((im.norm.vmin, im.norm.vmax))
    return [by_row[y] for y in sorted(by_row, reverse=True)]


def test_shared_grid_has_one_scale_and_one_colorbar():
    _, a = _batch(n=4)
    rows = {"small": 0.01 * a.abs(), "large": a.abs()}
    fig = plot.heatmap_grid(rows, signed=False, shared="grid")
    scales = {(im.norm.vmin, im.norm.vmax) for im in plot.heatmap_images(fig)}
    assert len(scales) == 1
    assert scales.pop() == pytest.approx(plot.limits(list(rows.values()), signed=False))
    assert len(plot.heatmap_images(fig)) == 8 and len(colorbars(fig)) == 1


def test_default_grid_shares_a_scale_per_row():
    _, a = _batch(n=4)
    rows = {"gradient": a, "LRP": 100 * a, "saliency": a.abs()}
    fig = plot.heatmap_grid(rows, signed={"gradient": True, "LRP": True, "saliency": False})
    per_row = _limits_by_row(fig)
    assert [len(s) for s in per_row] == [1, 1, 1]
    assert [s.pop() for s in per_row] == [
        pytest.approx(plot.limits(a)),
        pytest.approx(plot.limits(100 * a)),
        pytest.approx(plot.limits(a.abs(), signed=False)),
    ]
    assert len(colorbars(fig)) == 3
    assert plot.heatmap_grid(rows, shared="row").get_size_inches().tolist() == fig.get_size_inches().tolist()


def test_own_scale_panels_say_so():
    _, a = _batch(n=3)
    fig = plot.heatmap_grid(
        {"gradient": a * torch.tensor([1.0, 10.0, 100.0])[:, None, None, None]}, shared=False
    )
    assert len({(im.norm.vmin, im.norm.vmax) for im in plot.heatmap_images(fig)}) == 3
    assert len(colorbars(fig)) == 3
    assert "gradient (own scale)" in [t.get_text() for ax in fig.axes for t in ax.texts]


def test_grid_rejects_a_mixed_shared_scale_and_unknown_modes():
    _, a = _batch(n=2)
    with pytest.raises(ValueError, match="all rows signed or all unsigned"):
        plot.heatmap_grid({"a": a, "b": a.abs()}, signed={"a": True, "b": False}, shared="grid")
    with pytest.raises(ValueError, match="shared must be"):
        plot.heatmap_grid({"a": a}, shared="column")


# --- the lessons: heatmaps drawn around plot (a static scan; nothing is executed) -------------------

DRAWING_CALLS = ("imshow", "matshow")


def _code_cells():
    for path in sorted(LESSONS.glob("*.ipynb")):
        for index, cell in enumerate(json.loads(path.read_text())["cells"]):
            if cell["cell_type"] == "code":
                source = "".join(cell["source"])
                # IPython magics and shell lines are not Python: blank them, keep line numbers
                lines = ["" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.splitlines()]
                yield path.stem, index, "\n".join(lines)


def _cmap_of(call: ast.Call) -> str | None:
    for kw in call.keywords:
        if kw.arg == "cmap":
            return ast.unparse(kw.value)
    return None


def heatmaps_around_plot() -> dict[tuple[str, int], list[str]]:
    """``{(lesson, cell index): [source of each call]}`` for imshow/matshow of a heatmap.

    A call draws a heatmap when it names a colour map that is not grey: pictures are drawn
    with ``cmap="gray"`` or as RGB without a colour map.
    """
    grey = {repr(name) for name in plot.GREY_CMAPS} | {f'"{name}"' for name in plot.GREY_CMAPS}
    found = {}
    for lesson, index, source in _code_cells():
        for node in ast.walk(ast.parse(source)):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in DRAWING_CALLS
                and _cmap_of(node) not in grey | {None}
            ):
                found.setdefault((lesson, index), []).append(ast.unparse(node))
    return found


def test_lessons_scan_finds_their_code_cells():
    cells = list(_code_cells())
    assert len({lesson for lesson, _, _ in cells}) >= 10
    assert sum("plot.heatmap_grid(" in source for _, _, source in cells) >= 10


def test_no_lesson_draws_a_heatmap_around_plot():
    found = heatmaps_around_plot()
    assert found == {}, f"draw these heatmaps with interp_lib.plot (heatmap, heatmap_grid): {found}"
