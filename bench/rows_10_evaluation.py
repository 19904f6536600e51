"""Benchmark rows for lesson 10: the metrics against their physical limit, and the time per
image of every attribution method the lesson compares (rows named "per image: <method>",
read by the lesson's comparison table; 64 images, so divide by 64)."""

import torch

from interp_lib import data, evaluation, gradients, models
from interp_lib.course.bench import Row

IMAGES = 64


def _methods():
    """The methods lesson 10 compares (:func:`interp_lib.evaluation.lesson_methods`), without
    the random control, which has no cost worth a row."""
    return {name: f for name, f in evaluation.lesson_methods().items() if name != "random"}


def rows():
    model = models.load_model("shapes_cleverhans")
    shapes = data.load_shapes("test", n=IMAGES, texture_rate=1.0, tag_rate=1.0)
    x, y = shapes.x, shapes.y

    def forward_backward():
        leaf = x.clone().requires_grad_(True)
        return torch.autograd.grad(model(leaf).gather(1, y[:, None]).sum(), leaf)[0]

    out = [
        Row(
            f"per image: {name} (shapes CNN, {IMAGES} images)",
            lambda f=f: f(model, x, y),
            forward_backward,
            against=f"limit: 1 forward+backward of {IMAGES} images",
            lesson="10",
        )
        for name, f in _methods().items()
    ]

    a = gradients.saliency_map(model, x, y)
    steps = 16
    # the limit: the forward passes of the (L+1) x N perturbed images, built in advance
    regions = evaluation.region_scores(a, 8)
    order = torch.argsort(torch.argsort(regions, dim=1, descending=True, stable=True), dim=1)
    gone = (order[:, None, :] < torch.arange(steps + 1).view(1, -1, 1)).view(IMAGES, steps + 1, 4, 4)
    gone = gone.repeat_interleave(8, 2).repeat_interleave(8, 3)[:, :, None]
    perturbed = torch.where(gone, 0.0, x[:, None]).reshape(-1, *x.shape[1:])

    def limit():
        with torch.no_grad():
            return model(perturbed)

    out.append(
        Row(
            f"deletion_curve 8x8 regions, 17 steps ({IMAGES} images)",
            lambda: evaluation.deletion_curve(model, x, y, a, region=8),
            limit,
            against=f"limit: forward of the {IMAGES * (steps + 1)} perturbed images",
            goal=1.5,
            lesson="10",
        )
    )
    xs, ys = x[:16], y[:16]
    out.append(
        Row(
            "sanity_check saliency, 5 layers (16 images)",
            lambda: evaluation.sanity_check(
                model, xs, ys, gradients.saliency_map, generator=torch.Generator().manual_seed(0)
            ),
            lambda: [gradients.saliency_map(model, xs, ys) for _ in range(6)],
            against="limit: 6 saliency maps (the rank correlations are extra work)",
            goal=2.0,
            lesson="10",
        )
    )
    return out
