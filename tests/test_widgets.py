"""The lessons' explorers, built with the shipped models: figures at >= 100 dpi with
text of >= 8 pt and a colour bar on every heatmap, every control labelled with one description width per explorer (the
labels sit beside their controls), the LRP status on its own line, and lesson 06's
explorer opening on a unit that fires on the dataset."""

import io

import pytest
import torch

W = pytest.importorskip("ipywidgets")
Image = pytest.importorskip("PIL.Image")

from interp_lib import widgets  # noqa: E402
from interp_lib.widgets import attacks, featvis, integrated_gradients, lrp  # noqa: E402


def _controls(box):
    """Every labelled control inside ``box`` (depth first)."""
    found = []
    for child in box.children:
        if isinstance(child, W.Box):
            found += _controls(child)
        elif isinstance(child, (W.ValueWidget, W.Button)) and getattr(child, "description", ""):
            found.append(child)
    return found


def _outputs(box):
    found = []
    for child in box.children:
        if isinstance(child, W.Output):
            found.append(child)
        elif isinstance(child, W.Box):
            found += _outputs(child)
    return found


def _check_figure(box):
    (out,) = _outputs(box)
    png = out.outputs[-1]["data"]["image/png"]
    raw = png if isinstance(png, bytes) else __import__("base64").b64decode(png)
    dpi = Image.open(io.BytesIO(raw)).info["dpi"]
    assert min(dpi) >= 99.5 and widgets.DPI >= 100, f"figure at {dpi} dpi"
    fig = out.figure
    assert fig.dpi >= 100
    import matplotlib.text

    texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip()]
    assert texts, "no text in the figure"
    small = sorted({(t.get_text(), t.get_fontsize()) for t in texts if t.get_fontsize() < 8})
    assert not small, f"text below 8 pt: {small[:5]}"
    from interp_lib import plot

    assert not plot.heatmaps_without_colorbar(fig), "a heatmap without its colour bar (plot's convention)"


def _check_labels(box):
    controls = [c for c in _controls(box) if not isinstance(c, (W.Checkbox, W.Button))]
    widths = {c.style.description_width for c in controls}
    assert len(widths) == 1 and "" not in widths, f"description widths {widths}"
    toggles = [c for c in controls if isinstance(c, W.ToggleButtons)]
    for t in toggles:  # the label is the toggle's own description, not a separate widget
        assert t.description and t.style.button_width


@pytest.fixture(scope="module")
def digits_few(digits_test):
    x, y = digits_test
    return x[:6], y[:6]


def test_attack_explorer(digits_model, digits_few):
    box = attacks.attack_explorer(digits_model, *digits_few)
    _check_figure(box)
    _check_labels(box)
    (toggle,) = [c for c in _controls(box) if isinstance(c, W.ToggleButtons)]
    toggle.value = "noise"
    _check_figure(box)


def test_a_new_image_draws_once_with_its_class_selected(digits_model, digits_few, monkeypatch):
    """Moving the image slider selects that image's true class and draws one figure (the
    class change used to draw, then the slider's own handler drew again)."""
    shown = []
    real = widgets.show
    monkeypatch.setattr(widgets, "show", lambda out, fig: (shown.append(fig), real(out, fig)))
    x, y = digits_few
    box = integrated_gradients.ig_explorer(digits_model, x, y)
    assert len(shown) == 1
    (index,) = [c for c in _controls(box) if c.description == "image"]
    (target,) = [c for c in _controls(box) if isinstance(c, W.Dropdown) and c.description == "class"]
    other = next(i for i in range(1, len(y)) if int(y[i]) != int(y[0]))
    index.value = other  # another class: the class control changes, one draw
    assert len(shown) == 2 and target.value == int(y[other])
    same = next((i for i in range(len(y)) if i != other and int(y[i]) == int(y[other])), None)
    if same is not None:  # the same class again: nothing else changes, still one draw
        index.value = same
        assert len(shown) == 3
    target.value = (int(y[index.value]) + 1) % 10  # the class alone: one draw
    assert len(shown) == (4 if same is not None else 3)


def test_ig_explorer(digits_model, digits_few):
    box = integrated_gradients.ig_explorer(digits_model, *digits_few)
    _check_figure(box)
    _check_labels(box)


def test_lrp_explorer_status_on_its_own_line(shapes_model, shapes_test):
    box = lrp.explorer(shapes_model, shapes_test.x[:4], labels=[int(c) for c in shapes_test.y[:4]])
    _check_figure(box)
    _check_labels(box)
    status = [c for c in box.children if isinstance(c, W.HTML)]
    assert len(status) == 1 and status[0].value.startswith("logit"), "status line under the controls"
    for column in box.children[0].children:
        assert not any(isinstance(c, W.HTML) for c in column.children), "status beside the controls"


def test_featvis_explorer_opens_on_a_live_unit(shapes_model, shapes_test):
    from interp_lib.featvis import channel_activations

    x = shapes_test.x[:200]
    box = featvis.explorer(shapes_model, x)
    _check_labels(box)
    left, right = box.children[0].children
    layer, channel, steps = left.children[:3]
    acts = channel_activations(shapes_model, layer.value, x)
    assert float(acts[:, channel.value].max()) > 0, f"{layer.value}[{channel.value}] never fires"
    layer.value = "conv3"
    assert float(channel_activations(shapes_model, "conv3", x)[:, channel.value].max()) > 0
    steps.value = 16
    right.children[4].click()  # Run
    _check_figure(box)


def test_live_channel():
    acts = torch.tensor([[-1.0, -2.0, 0.5], [-0.5, 0.0, 1.0]])
    assert featvis.live_channel(acts) == 2
    assert featvis.live_channel(-acts.abs() - 1) == 0


def test_region_probe_reports_the_intervention_effect(cleverhans):
    from interp_lib import capstone as C
    from interp_lib import data
    from interp_lib.widgets import capstone

    clever = cleverhans
    shapes = data.load_shapes("test", n=48, texture_rate=1.0, tag_rate=1.0)  # tagged, as in lesson 14
    box = capstone.region_probe({"Clever Hans": clever}, shapes.x, shapes.y)
    _check_figure(box)
    _check_labels(box)
    (out,) = _outputs(box)
    (title,) = [a.get_title() for a in out.figure.axes if "images: mean" in a.get_title()]  # effect panel
    mine = shapes.x[shapes.y == 0]  # opens on class 0 and the 6 x 6 box in the top-left corner
    want = C.intervention_effect(clever, mine, 0, C.box((0, 6), (0, 6)), fill=0.5).mean().item()
    assert title.startswith(f"{len(mine)} images: mean {want:+.2f} ["), (title, want)
