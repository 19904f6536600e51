"""Lesson 14 explorer: probe a region of a model.

Pick a model, a class and a square region (top-left row and column, side); it shows the
class template (the mean input gradient of the class score, :func:`class_templates`) with
the region outlined, and what replacing the region by grey does to the class probability
of that class's images (:func:`intervention_effect`, 14.1): the per-image effects and
their mean with a 95 % bootstrap interval. Silent: it draws into an ``Output`` widget and
never prints from a callback.
"""

from __future__ import annotations

__all__ = ["region_probe"]


def region_probe(models: dict, x, y, fill: float = 0.5, side: int = 6):
    """``models`` maps a name to a shapes classifier; ``x, y`` are clean images and labels
    (the templates and the effects are computed on them; the first model opens)."""
    import ipywidgets as W
    import matplotlib.patches
    import torch

    from .. import data
    from ..capstone import box, class_templates, intervention_effect
    from ..evaluation import bootstrap_ci
    from ..exercises import ExerciseNotWritten
    from ..plot import heatmap
    from . import LABEL_FONT, TITLE_FONT, description_style, figure, redraw_on, show

    size = x.shape[-1]
    style = description_style("50px")
    model = W.Dropdown(options=list(models), description="model", style=style)
    cls = W.Dropdown(options=[(s, k) for k, s in enumerate(data.SHAPES)], description="class", style=style)
    row = W.IntSlider(0, 0, size - side, description="row", style=style)
    col = W.IntSlider(0, 0, size - side, description="column", style=style)
    width = W.IntSlider(side, 2, 16, description="side", style=style)
    out = W.Output()
    templates = {}  # one gradient pass per model, not per redraw

    def draw(*_):
        if model.value not in templates:
            templates[model.value] = class_templates(models[model.value], x)
        row.max = col.max = size - width.value
        r, c, k, s = row.value, col.value, cls.value, width.value
        template = templates[model.value][k].sum(0)
        fig = figure((8.4, 3.2))
        axes = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.3]})
        heatmap(axes[0], template, signed=True, title=f"template of '{data.SHAPES[k]}'")
        axes[0].add_patch(matplotlib.patches.Rectangle((c - 0.5, r - 0.5), s, s, fill=False, ec="k", lw=1.5))
        mine = x[y == k]
        try:
            effect = intervention_effect(
                models[model.value], mine, k, box((r, r + s), (c, c + s), size), fill=fill
            )
        except ExerciseNotWritten:
            axes[1].text(0.5, 0.5, "needs 14.1 intervention_effect", ha="center", fontsize=TITLE_FONT)
            axes[1].axis("off")
        else:
            mean, low, high = bootstrap_ci(effect, generator=torch.Generator().manual_seed(0))
            axes[1].hist(effect.numpy(), bins=20, range=(-1, 1), color="tab:blue")
            axes[1].axvline(0, color="grey", lw=1)
            axes[1].set_xlabel(f"drop of p({data.SHAPES[k]}) when the box is grey", fontsize=LABEL_FONT)
            axes[1].set_ylabel("images", fontsize=LABEL_FONT)
            axes[1].tick_params(labelsize=LABEL_FONT)
            axes[1].set_title(
                f"{len(mine)} images: mean {mean:+.2f} [{low:+.2f}, {high:+.2f}]", fontsize=TITLE_FONT
            )
        fig.tight_layout()
        show(out, fig)

    redraw_on(draw, model, cls, row, col, width)
    return W.VBox([W.HBox([model, cls]), W.HBox([row, col, width]), out])
