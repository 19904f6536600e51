"""Lesson 11 explorer: network dissection unit by unit.

Pick a model, a layer, a unit, an image and the top quantile; it shows the image, the
unit's upsampled activation map (with the dataset-wide threshold in the title), the
region above the threshold against the unit's best concept, and the unit's IoU with
every concept. Silent: it draws into an ``Output`` widget and never prints from a callback.
"""

from __future__ import annotations

__all__ = ["dissection_explorer"]

TOPS = (0.005, 0.01, 0.02, 0.05, 0.1)


def dissection_explorer(models: dict, shapes, layers=("relu1", "relu2", "relu3"), top: float = 0.005):
    """``models`` maps a name to a shapes CNN; ``shapes`` is a :class:`interp_lib.data.Shapes`
    batch with silhouettes (``make_shapes``); IoU over that batch (:func:`unit_iou`, 11.3)."""
    import ipywidgets as W
    import numpy as np
    import torch
    import torch.nn.functional as F

    from .. import data
    from ..concepts import DETECTOR_IOU, feature_maps, unit_iou
    from ..plot import heatmap, to_image
    from . import LABEL_FONT, TITLE_FONT, description_style, figure, redraw_on, show

    masks, names = data.concept_masks(shapes)
    style = description_style("60px")
    model = W.Dropdown(options=list(models), description="model", style=style)
    layer = W.Dropdown(options=list(layers), value=layers[-1], description="layer", style=style)
    unit = W.IntSlider(0, 0, 15, description="unit", style=style)
    image = W.IntSlider(0, 0, len(shapes) - 1, description="image", style=style)
    quantile = W.SelectionSlider(options=list(TOPS), value=top, description="top", style=style)
    out = W.Output()
    cache = {}

    def maps():
        key = (model.value, layer.value)
        if key not in cache:  # one forward pass per model and layer, not per redraw
            cache[key] = feature_maps(models[model.value], layer.value, shapes.x)
        return cache[key]

    def draw(*_):
        acts = maps()
        unit.max = acts.shape[1] - 1
        u, n = unit.value, image.value
        iou = unit_iou(acts[:, u : u + 1], masks, top=quantile.value)[0]
        best = int(iou.argmax())
        level = torch.quantile(acts[:, u].flatten(), 1 - quantile.value).item()
        up = F.interpolate(acts[n : n + 1, u : u + 1], size=masks.shape[-2:], mode="bilinear")[0, 0]
        fig = figure((11, 3.0))
        axes = fig.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1.2, 1, 1.8]})
        axes[0].imshow(to_image(shapes.x[n]).clip(0, 1))
        axes[0].set_title(
            f"{data.SHAPES[int(shapes.shape[n])]}, {data.TEXTURES[int(shapes.texture[n])]}",
            fontsize=TITLE_FONT,
        )
        axes[0].axis("off")
        heatmap(axes[1], up, signed=False, title=f"unit {u}, threshold {level:.2f}")
        overlay = np.zeros((*up.shape, 3))
        overlay[..., 0] = (up > level).numpy()
        overlay[..., 1] = masks[n, best].numpy()
        axes[2].imshow(overlay)
        axes[2].set_title(f"red: on, green: {names[best]}", fontsize=TITLE_FONT)
        axes[2].axis("off")
        axes[3].barh(range(len(names)), iou.numpy(), color="tab:blue")
        axes[3].axvline(DETECTOR_IOU, color="grey", lw=1, ls="--")
        axes[3].set_yticks(range(len(names)), names, fontsize=LABEL_FONT)
        axes[3].invert_yaxis()
        axes[3].tick_params(axis="x", labelsize=LABEL_FONT)
        verdict = f"detects {names[best]}" if iou[best] > DETECTOR_IOU else "no concept above 0.04"
        axes[3].set_title(f"IoU over {len(shapes)} images: {verdict}", fontsize=TITLE_FONT)
        fig.tight_layout()
        show(out, fig)

    redraw_on(draw, model, layer, unit, image, quantile)
    return W.VBox([W.HBox([model, layer, quantile]), W.HBox([unit, image]), out])
