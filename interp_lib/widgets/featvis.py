"""Lesson 06 explorer: pick a unit and the regularisers, see the image and its activation curve.

``explorer(model, x=None)`` returns an ipywidgets box. Nothing runs until *Run* is
pressed (an optimisation takes about a second); the result is drawn into an ``Output``
widget, so the explorer never prints into the notebook.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["explorer"]


def _channels(model: nn.Module, layer: str, shape) -> int:
    from ..featvis import layer_output_shape

    return layer_output_shape(model, layer, shape)[0]


def live_channel(activations: torch.Tensor) -> int:
    """The first channel whose maximum over the dataset is positive (0 when none is):
    ``activations`` are ``(N, C)`` channel activations over the dataset."""
    fires = (activations.max(0).values > 0).nonzero()
    return int(fires[0]) if len(fires) else 0


def explorer(
    model: nn.Module,
    x: torch.Tensor | None = None,
    layers: list[str] | None = None,
    shape: tuple[int, int, int] | None = None,
):
    """An activation-maximisation explorer for ``model``.

    Controls: layer, channel, steps, learning rate, L2, total variation, blur every k steps,
    transforms on/off, parameterisation (pixel / Fourier), decorrelated colour. With a
    dataset ``x`` the curve shows the channel's maximum over ``x`` as a dashed line and the
    nine most-activating images are drawn beside the visualisation, and the explorer opens
    on a channel that fires on ``x`` (its dataset maximum is positive).
    """
    import ipywidgets as W

    from .. import featvis
    from . import LABEL_FONT, TITLE_FONT, description_style, figure, show

    shape = shape or featvis.default_input_shape(model)
    if layers is None:
        layers = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.ReLU, nn.Linear))]
    colour = shape[0] == 3
    style = description_style("110px")
    layer = W.Dropdown(
        options=layers, value=layers[min(len(layers) - 1, 2)], description="layer", style=style
    )
    cache: dict[str, torch.Tensor] = {}

    def activations(name: str) -> torch.Tensor:
        if name not in cache:
            cache[name] = featvis.channel_activations(model, name, x)
        return cache[name]

    first = live_channel(activations(layer.value)) if x is not None else 0
    channel = W.IntSlider(
        first, 0, _channels(model, layer.value, shape) - 1, description="channel", style=style
    )
    steps = W.IntSlider(128, 16, 512, step=16, description="steps", style=style)
    lr = W.FloatLogSlider(0.05, base=10, min=-3, max=0, description="learning rate", style=style)
    l2 = W.FloatSlider(0.0, min=0, max=50, step=1, description="L2", style=style)
    tv = W.FloatSlider(0.0, min=0, max=50, step=1, description="total variation", style=style)
    blur = W.IntSlider(0, 0, 16, description="blur every k", style=style)
    transforms = W.Checkbox(False, description="random transforms", style=style)
    param = W.ToggleButtons(
        options=["pixel", "fourier"],
        value="pixel",
        description="param",
        style={**style, "button_width": "80px"},
    )
    decorrelate = W.Checkbox(False, description="decorrelated colour", disabled=True, style=style)
    run = W.Button(description="Run", button_style="primary")
    status = W.HTML("Choose a unit and regularisers, then press <b>Run</b>.")
    out = W.Output()

    def on_layer(change):
        channel.max = _channels(model, change["new"], shape) - 1
        if x is not None:
            channel.value = live_channel(activations(change["new"]))

    def on_param(change):
        decorrelate.disabled = change["new"] != "fourier" or not colour
        if decorrelate.disabled:
            decorrelate.value = False

    def on_run(_):
        status.value = "running..."
        res = featvis.activation_maximisation(
            model,
            layer.value,
            channel.value,
            steps=steps.value,
            lr=lr.value,
            generator=torch.Generator().manual_seed(0),
            l2=l2.value,
            tv=tv.value,
            blur_every=blur.value,
            transforms=transforms.value,
            param=param.value,
            decorrelate=decorrelate.value,
            shape=tuple(shape),
        )
        top = None
        if x is not None:
            acts = activations(layer.value)[:, channel.value]
            top = x[acts.topk(9).indices]
            dmax = float(acts.max())
        hf = float(featvis.high_frequency_fraction(res.image)[0])
        ncols = 3 if top is not None else 2
        fig = figure((3.3 * ncols, 3.0))
        axes = fig.subplots(1, ncols)
        img = res.image[0].permute(1, 2, 0).squeeze(-1).numpy()
        axes[0].imshow(img, cmap="gray", vmin=0, vmax=1)
        axes[0].set_title(f"{layer.value}[{channel.value}]  HF {hf:.2f}", fontsize=TITLE_FONT)
        axes[0].axis("off")
        axes[1].plot(res.history[:, 0].numpy(), label="during optimisation")
        if top is not None:
            axes[1].axhline(dmax, ls="--", color="grey", label="dataset maximum")
            import numpy as np

            from ..plot import to_image

            tiles = [to_image(t) for t in top]
            rows = [np.concatenate(tiles[i : i + 3], axis=1) for i in range(0, 9, 3)]
            axes[2].imshow(np.clip(np.concatenate(rows, axis=0), 0, 1), cmap="gray", vmin=0, vmax=1)
            axes[2].set_title("9 most-activating images", fontsize=TITLE_FONT)
            axes[2].axis("off")
        axes[1].set_xlabel("step")
        axes[1].set_ylabel("objective")
        axes[1].legend(fontsize=LABEL_FONT)
        fig.tight_layout()
        show(out, fig)
        status.value = f"final objective {float(res.activation[0]):.3g}; high-frequency fraction {hf:.2f}"

    layer.observe(on_layer, names="value")
    param.observe(on_param, names="value")
    run.on_click(on_run)
    left = W.VBox([layer, channel, steps, lr, param, decorrelate])
    right = W.VBox([l2, tv, blur, transforms, run, status])
    return W.VBox([W.HBox([left, right]), out])
