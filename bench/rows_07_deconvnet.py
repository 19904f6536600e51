"""Benchmark rows for lesson 07: guided backprop, deconvnet and occlusion against captum."""

import warnings

from interp_lib import data, deconvnet, models, occlusion
from interp_lib.course.bench import Row


def rows():
    import captum.attr as ca

    warnings.filterwarnings("ignore", module="captum")
    model = models.load_model("shapes_texture")
    x = data.load_shapes("test", n=64).x
    target = model(x).argmax(1)
    out = []
    for rule, method in (("guided", ca.GuidedBackprop), ("deconvnet", ca.Deconvolution)):
        ref = method(model)
        out.append(
            Row(
                f"{rule} backprop (shapes CNN, 64 x 3x32x32)",
                lambda r=rule: deconvnet.guided_backprop(model, x, target, rule=r),
                lambda ref=ref: ref.attribute(x, target=target),
                against="captum 0.9",
                goal=1.1,
                lesson="07",
            )
        )
    xo, to = x[:8], target[:8]
    occ = ca.Occlusion(model)
    out.append(
        Row(
            "occlusion 4x4 stride 2 (shapes CNN, 8 x 3x32x32)",
            lambda: occlusion.occlusion(model, xo, to, window=4, stride=2, baseline=0.5),
            lambda: occ.attribute(
                xo,
                sliding_window_shapes=(3, 4, 4),
                strides=(3, 2, 2),
                baselines=0.5,
                target=to,
                perturbations_per_eval=32,
            ),
            against="captum 0.9 (perturbations_per_eval=32)",
            goal=1.1,
            lesson="07",
        )
    )
    return out
