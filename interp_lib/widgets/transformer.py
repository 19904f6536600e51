"""Lesson 13 explorer: image, method (attention, rollout, gradient x attention, patch IG,
LRP), and for raw attention the block and head -> the map and its relevance mass on the tag.

Silent: it draws into an ``Output`` widget and never prints from a callback.
"""

from __future__ import annotations

import torch

__all__ = ["vit_explorer"]


def vit_explorer(model, x, y, tag_mask=None, class_names=None):
    """Explore the maps of lesson 13 on ``model`` (a ``VisionTransformer``) for images ``x``
    (targets ``y``). Controls: image, class, method, and for "raw attention" the block and
    the head ("mean" averages them). Shows the image and the map (signed maps diverge
    around 0, attention-based ones start at 0); with ``tag_mask`` the title gives the
    relevance mass on the tag."""
    import ipywidgets as W

    from .. import transformer as T
    from ..evaluation import relevance_mass
    from ..exercises import ExerciseNotWritten
    from ..plot import heatmap, to_image
    from . import TITLE_FONT, description_style, figure, redraw_on, show

    names = class_names or [str(i) for i in range(model.head.out_features)]
    style = description_style("70px")
    index = W.IntSlider(0, 0, len(x) - 1, description="image", style=style)
    target = W.Dropdown(
        options=[(n, i) for i, n in enumerate(names)], value=int(y[0]), description="class", style=style
    )
    method = W.Dropdown(options=list(T.METHODS), value="raw attention", description="method", style=style)
    block = W.IntSlider(len(model.blocks) - 1, 0, len(model.blocks) - 1, description="block", style=style)
    heads = model.blocks[0].attn.heads
    head = W.Dropdown(options=["mean", *range(heads)], value="mean", description="head", style=style)
    out = W.Output()
    unsigned = ("raw attention", "rollout", "gradient x attention")

    def draw(*_):
        xi = x[index.value : index.value + 1]
        block.disabled = head.disabled = method.value != "raw attention"
        if method.value == "raw attention":
            a = T.attention_maps(model, xi)[block.value][0]  # (heads, T, T)
            a = a.mean(0) if head.value == "mean" else a[head.value]
            m = T.patches_to_pixels(model, a[None, 0, 1:], xi)
            what = f"attention, block {block.value}, head {head.value}"
        else:
            m = T.METHODS[method.value](model, xi, torch.tensor([target.value]))
            what = method.value
        if tag_mask is not None:
            try:
                what += f"\nmass on the tag {relevance_mass(m, tag_mask).item():.2f}"
            except ExerciseNotWritten:  # lesson 10's exercise 10.3: the map is shown without it
                what += "\n(mass on the tag: needs 10.3)"
        fig = figure((6.4, 3.0))
        axes = fig.subplots(1, 2)
        axes[0].imshow(to_image(xi[0]).clip(0, 1), vmin=0, vmax=1)
        axes[0].set_title(f"input ({names[int(y[index.value])]})", fontsize=TITLE_FONT)
        axes[0].axis("off")
        heatmap(axes[1], m[0], signed=method.value not in unsigned, title=what)
        fig.tight_layout()
        show(out, fig)

    redraw_on(draw, method, block, head, image=index, target=target, labels=y)
    return W.VBox([W.HBox([index, target]), W.HBox([method, block, head]), out])
