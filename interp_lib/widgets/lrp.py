"""Lesson 08 explorer: image, rule per layer group, epsilon/gamma -> heatmap and the
relevance sum per layer.

``explorer(model, images, labels=None)`` returns an ipywidgets box. Every change
redraws into an ``Output`` widget (LRP on one small image takes milliseconds), so the
explorer never prints into the notebook.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["explorer", "make_rule"]

_CHOICES = {
    "input": ["z^B (box 0..1)", "w^2", "z+", "gamma", "epsilon", "0"],
    "lower": ["gamma", "z+", "epsilon", "0"],
    "middle": ["epsilon", "gamma", "z+", "0"],
    "upper": ["0", "epsilon", "gamma", "z+"],
}


def make_rule(choice: str, epsilon: float = 0.25, gamma: float = 0.25, zero_bias: bool = False):
    """A rule object from the explorer's label for it."""
    from .. import lrp_rules

    if choice.startswith("z^B"):
        return lrp_rules.ZBox(0.0, 1.0)
    return {
        "w^2": lambda: lrp_rules.WSquare(zero_bias=zero_bias),
        "z+": lambda: lrp_rules.ZPlus(zero_bias=zero_bias),
        "gamma": lambda: lrp_rules.Gamma(gamma, zero_bias=zero_bias),
        "epsilon": lambda: lrp_rules.Epsilon(epsilon, zero_bias=zero_bias),
        "0": lambda: lrp_rules.Zero(zero_bias=zero_bias),
    }[choice]()


def explorer(model: nn.Module, images: torch.Tensor, labels=None, class_names=None):
    """An LRP explorer for a shipped sequential CNN and a batch of ``images`` in [0, 1]."""
    import ipywidgets as W

    from .. import lrp, lrp_graph, lrp_rules
    from ..models import bias_free_copy
    from ..plot import heatmap, to_image
    from . import LABEL_FONT, TITLE_FONT, description_style, figure, redraw_on, show

    style = description_style("90px")
    index = W.IntSlider(0, 0, len(images) - 1, description="image", style=style)
    groups = {
        g: W.Dropdown(options=opts, value=opts[0], description=g, style=style) for g, opts in _CHOICES.items()
    }
    epsilon = W.FloatLogSlider(0.25, base=10, min=-6, max=1, description="epsilon", style=style)
    gamma = W.FloatSlider(0.25, min=0, max=2, step=0.05, description="gamma", style=style)
    target = W.Dropdown(
        options=["predicted"] + list(range(model(images[:1]).shape[1])),
        value="predicted",
        description="class",
        style=style,
    )
    no_bias = W.Checkbox(False, description="bias-free copy of the model", style=style)
    status = W.HTML(layout=W.Layout(margin="4px 0 0 94px"))  # its own line, under the controls
    out = W.Output()
    clean = bias_free_copy(model)

    def draw(_=None):
        net = clean if no_bias.value else model
        x = images[index.value : index.value + 1]
        composite = lrp_rules.LayerGroups(
            **{g: make_rule(w.value, epsilon.value, gamma.value) for g, w in groups.items()}
        )
        cls = None if target.value == "predicted" else int(target.value)
        try:
            sums = lrp_graph.layer_relevances(net, x, cls, composite=composite)
            R = lrp.lrp(net, x, cls, composite=composite)
        except Exception as err:  # shown in the widget, never printed
            status.value = f"<span style='color:#b00'>{type(err).__name__}: {err}</span>"
            return
        logits = net(x).detach()[0]
        c = int(logits.argmax()) if cls is None else cls
        name = class_names[c] if class_names else str(c)
        # drawn off-screen and appended to the Output widget: nothing reaches the kernel output
        fig = figure((10, 3.2))
        axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 1.6]})
        axes[0].imshow(to_image(x[0]).clip(0, 1), cmap="gray", vmin=0, vmax=1)
        axes[0].axis("off")
        truth = f" (label {labels[index.value]})" if labels is not None else ""
        axes[0].set_title(f"image{truth}", fontsize=TITLE_FONT)
        heatmap(axes[1], R[0], signed=True, title=f"relevance for class {name}")
        names = list(sums)
        values = [float(v[0]) for v in sums.values()]
        axes[2].bar(range(len(values)), values, color="#4477aa")
        axes[2].axhline(float(logits[c]), color="#cc6677", ls="--", label="logit")
        axes[2].set_xticks(range(len(values)), names, rotation=60, fontsize=LABEL_FONT)
        axes[2].tick_params(axis="y", labelsize=LABEL_FONT)
        axes[2].set_title("relevance summed per layer (its input)", fontsize=TITLE_FONT)
        axes[2].legend(fontsize=LABEL_FONT)
        fig.tight_layout()
        show(out, fig)
        kept = values[0] / float(logits[c]) if float(logits[c]) else float("nan")
        status.value = (
            f"logit {float(logits[c]):.3f}; input relevance {values[0]:.3f} ({100 * kept:.0f} % of the logit)"
        )

    redraw_on(draw, index, epsilon, gamma, target, no_bias, *groups.values())
    left = W.VBox([index, target, *groups.values()])
    right = W.VBox([epsilon, gamma, no_bias])
    return W.VBox([W.HBox([left, right]), status, out])
