"""Lesson 02 explorer: an epsilon slider and an attack choice -> image, perturbation, prediction.

Silent: it draws into an ``Output`` widget and never prints from a callback.
"""

from __future__ import annotations

import torch

__all__ = ["attack_explorer", "perturb"]


def perturb(model, x, y, attack: str, eps: float, seed: int = 0) -> torch.Tensor:
    """One image batch attacked by ``attack`` ("noise", "fgsm" or "pgd") at L-inf ``eps``."""
    from .. import attacks

    gen = torch.Generator().manual_seed(seed)
    if attack == "noise":
        return attacks.random_sign_noise(x, eps, gen)
    if attack == "fgsm":
        return attacks.fgsm(model, x, y, eps=eps)
    if attack == "pgd":
        return attacks.pgd(model, x, y, eps=eps, alpha=max(eps / 4, 1e-4), steps=10, generator=gen)
    raise ValueError(f"`attack` must be 'noise', 'fgsm' or 'pgd', got {attack!r}")


def attack_explorer(model, x, y, class_names=None, max_eps: float = 0.3):
    """An explorer over the images ``x`` (``(N, C, H, W)``) with labels ``y``.

    Controls: image index, attack (random sign noise, FGSM, PGD-10), epsilon. Shows the
    clean image, the perturbation (diverging colours on the scale of the budget, with a
    colour bar), the attacked image, and
    the top predictions with their probabilities.
    """
    import ipywidgets as W

    from .. import plot
    from . import LABEL_FONT, TITLE_FONT, description_style, figure, redraw_on, show

    names = class_names or [str(i) for i in range(1000)]
    style = description_style("60px")
    index = W.IntSlider(0, 0, len(x) - 1, description="image", style=style)
    attack = W.ToggleButtons(
        options=[("noise", "noise"), ("FGSM", "fgsm"), ("PGD-10", "pgd")],
        value="fgsm",
        description="attack",
        style={**style, "button_width": "80px"},
    )
    eps = W.FloatSlider(
        0.1, min=0.0, max=max_eps, step=0.01, description="epsilon", readout_format=".2f", style=style
    )
    out = W.Output()

    def draw(*_):
        i = index.value
        xi, yi = x[i : i + 1], y[i : i + 1]
        adv = perturb(model, xi, yi, attack.value, eps.value)
        with torch.no_grad():
            p_clean = model(xi).softmax(1)[0]
            p_adv = model(adv).softmax(1)[0]
        fig = figure((11, 3.0))
        axes = fig.subplots(1, 4)
        img = lambda t: t[0].permute(1, 2, 0).squeeze(-1).numpy()  # noqa: E731
        cmap = "gray" if x.shape[1] == 1 else None
        axes[0].imshow(img(xi), cmap=cmap, vmin=0, vmax=1)
        axes[0].set_title(f"clean: {names[p_clean.argmax()]} ({p_clean.max():.0%})", fontsize=TITLE_FONT)
        delta = (adv - xi)[0]
        top = float(delta.abs().max())
        # the perturbation on the scale of the budget: +-epsilon (per channel, summed)
        budget = max(eps.value * x.shape[1], 1e-8)
        plot.heatmap(axes[1], delta, signed=True, lim=(-budget, budget))
        axes[1].set_title(f"perturbation (max |d| = {top:.2f})", fontsize=TITLE_FONT)
        axes[2].imshow(img(adv), cmap=cmap, vmin=0, vmax=1)
        axes[2].set_title(f"attacked: {names[p_adv.argmax()]} ({p_adv.max():.0%})", fontsize=TITLE_FONT)
        for ax in axes[:3]:
            ax.axis("off")
        k = len(p_adv)
        axes[3].barh(range(k), p_clean.numpy(), color="0.7", label="clean")
        axes[3].barh(range(k), p_adv.numpy(), height=0.4, color="C3", label="attacked")
        axes[3].set_yticks(range(k), names[:k], fontsize=LABEL_FONT)
        axes[3].tick_params(axis="x", labelsize=LABEL_FONT)
        axes[3].set_xlim(0, 1)
        axes[3].legend(fontsize=LABEL_FONT)
        axes[3].set_title(f"true class: {names[int(yi)]}", fontsize=TITLE_FONT)
        fig.tight_layout()
        show(out, fig)

    redraw_on(draw, index, attack, eps)
    return W.VBox([W.HBox([index, eps]), attack, out])  # the toggle buttons' label beside them
