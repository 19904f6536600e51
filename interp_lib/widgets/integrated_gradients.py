"""Lesson 05 explorer: image, quadrature, steps and baseline -> IG map and completeness gap.

Silent: it draws into an ``Output`` widget and never prints from a callback.
"""

from __future__ import annotations

import torch

__all__ = ["BASELINES", "make_baseline", "ig_explorer"]

BASELINES = ("black", "blurred", "uniform noise", "data mean")


def make_baseline(
    kind: str, x: torch.Tensor, data_mean: torch.Tensor | None = None, seed: int = 0
) -> torch.Tensor:
    """A baseline for ``x`` (``(N, C, H, W)``): one of :data:`BASELINES`.

    "blurred" is a Gaussian blur (sigma 3 px) of ``x``; "uniform noise" draws U(0, 1)
    pixels from a generator seeded with ``seed``; "data mean" needs ``data_mean``
    (``(1, C, H, W)``).
    """
    from ..integrated_gradients import blurred

    if kind == "black":
        return torch.zeros_like(x)
    if kind == "blurred":
        return blurred(x, 3.0)
    if kind == "uniform noise":
        return torch.rand(x.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype)
    if kind == "data mean":
        if data_mean is None:
            raise ValueError("`data_mean` is needed for the 'data mean' baseline")
        return data_mean.expand_as(x).clone()
    raise ValueError(f"`kind` must be one of {', '.join(BASELINES)}; got {kind!r}")


def ig_explorer(model, x, y, data_mean=None, class_names=None):
    """Integrated gradients of ``model`` for the images ``x`` (targets ``y``), explored.

    Controls: image index, target class, quadrature rule, number of steps, baseline. Shows
    the image, the baseline, the signed IG map and the completeness gap
    ``sum IG - (S(x) - S(x'))`` in the title.
    """
    import ipywidgets as W

    from ..integrated_gradients import METHODS, completeness_gap, integrated_gradients
    from ..plot import heatmap, to_image
    from . import TITLE_FONT, description_style, figure, redraw_on, show

    k = model[-1].out_features if hasattr(model[-1], "out_features") else 10
    names = class_names or [str(i) for i in range(k)]
    style = description_style("70px")
    index = W.IntSlider(0, 0, len(x) - 1, description="image", style=style)
    target = W.Dropdown(
        options=[(n, i) for i, n in enumerate(names)], value=int(y[0]), description="class", style=style
    )
    method = W.Dropdown(options=list(METHODS), value="gausslegendre", description="rule", style=style)
    steps = W.IntSlider(16, 2, 128, description="steps", style=style)
    base = W.Dropdown(options=list(BASELINES), value="black", description="baseline", style=style)
    out = W.Output()

    def draw(*_):
        xi = x[index.value : index.value + 1]
        b = make_baseline(base.value, xi, data_mean)
        a = integrated_gradients(model, xi, target.value, baseline=b, steps=steps.value, method=method.value)
        gap = completeness_gap(model, xi, target.value, a, baseline=b).item()
        with torch.no_grad():
            change = (model(xi)[0, target.value] - model(b)[0, target.value]).item()
        fig = figure((8.5, 3.2))
        axes = fig.subplots(1, 3)
        cmap = "gray" if x.shape[1] == 1 else None
        axes[0].imshow(to_image(xi[0]).clip(0, 1), cmap=cmap, vmin=0, vmax=1)
        axes[0].set_title("input", fontsize=TITLE_FONT)
        axes[1].imshow(to_image(b[0]).clip(0, 1), cmap=cmap, vmin=0, vmax=1)
        axes[1].set_title(f"baseline: {base.value}", fontsize=TITLE_FONT)
        for ax in axes[:2]:
            ax.axis("off")
        heatmap(
            axes[2],
            a[0],
            signed=True,
            title=f"IG for '{names[target.value]}'\nS(x)-S(x')={change:.2f}, gap={gap:+.3f}",
        )
        fig.tight_layout()
        show(out, fig)

    redraw_on(draw, method, steps, base, image=index, target=target, labels=y)
    return W.VBox([W.HBox([index, target]), W.HBox([method, steps]), base, out])
