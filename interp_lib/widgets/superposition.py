"""Lesson 12 explorer: trained toy models, one per feature density -> W^T W, norms, directions.

Silent: it draws into an ``Output`` widget and never prints from a callback. Nothing is
trained in a callback: the slider walks through models trained beforehand
(:func:`interp_lib.superposition.train_toy_models`).
"""

from __future__ import annotations

__all__ = ["toy_explorer"]


def toy_explorer(models):
    """Explore :class:`~interp_lib.superposition.ToyModels`: a slider picks the model (its
    feature density); the figure is the paper's picture of it (:func:`draw_toy_model`)
    with its verdict (:func:`geometry`) and dimensions per feature in the title."""
    import ipywidgets as W

    from ..superposition import dimensions_per_feature, draw_toy_model, geometry
    from . import TITLE_FONT, description_style, figure, redraw_on, show

    style = description_style("90px")
    labels = [f"{d:g}" for d in models.density.tolist()]
    pick = W.SelectionSlider(options=list(zip(labels, range(len(models)))), value=0, description="density")
    pick.style.description_width = style["description_width"]
    out = W.Output()
    verdicts = geometry(models.W)
    dims = dimensions_per_feature(models.W)

    def draw(*_):
        i = pick.value
        two_d = models.W.shape[1] == 2
        fig = figure((9.0 if two_d else 6.5, 3.2))
        axes = fig.subplots(1, 3 if two_d else 2)
        draw_toy_model(axes, models.W[i], title=f"density {labels[i]}")
        fig.suptitle(f"{verdicts[i]}; dimensions per feature {dims[i]:.2f}", fontsize=TITLE_FONT)
        fig.tight_layout()
        show(out, fig)

    redraw_on(draw, pick)
    return W.VBox([pick, out])
