"""Benchmark rows for lesson 06: activation maximisation against the same loop in plain torch.

256 Adam steps on one 32x32x3 image of the shapes model, objective the mean of channel
4 of conv3 read through a forward hook (full forward pass in both). Ours goes through
the exercise wrapper (argument checks, model guard), the parameterisation classes and
``unit_objective``; the reference is the bare loop. Goal: overhead <= 1.2x.
"""

import torch

from interp_lib import featvis, featvis_param
from interp_lib.course.bench import Row
from interp_lib.models import load_model

STEPS, CHANNEL, LR = 256, 4, 0.05


def _plain_loop(model, param: str):
    g = torch.Generator().manual_seed(0)
    for p in model.parameters():
        p.requires_grad_(False)
    store = {}
    handle = model.conv3.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    try:
        if param == "pixel":
            x = (0.5 + 0.1 * torch.randn(1, 3, 32, 32, generator=g)).clamp(0, 1).requires_grad_(True)
            make = lambda: x  # noqa: E731
            leaf = x
        else:
            scale = featvis_param.spectrum_scale(32, 32)
            m = (
                featvis_param.COLOUR_CORRELATION_SQRT
                / featvis_param.COLOUR_CORRELATION_SQRT.norm(dim=0).max()
            )
            leaf = (0.01 * torch.randn(1, 3, 32, 17, 2, generator=g)).requires_grad_(True)

            def make():
                t = torch.fft.irfft2(torch.view_as_complex(leaf) * scale, s=(32, 32), norm="ortho") / 4
                return torch.sigmoid(torch.einsum("ck,nkhw->nchw", m, t))

        opt = torch.optim.Adam([leaf], lr=LR)
        for _ in range(STEPS):
            model(make())
            loss = -store["a"][:, CHANNEL].mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            if param == "pixel":
                with torch.no_grad():
                    leaf.clamp_(0, 1)
        return make().detach()
    finally:
        handle.remove()
        for p in model.parameters():
            p.requires_grad_(True)


def rows():
    model = load_model("shapes_texture")
    out = []
    for param, extra in (("pixel", {}), ("fourier", {"decorrelate": True})):
        out.append(
            Row(
                f"activation_maximisation {param} (256 steps, 3x32x32)",
                lambda p=param, e=extra: featvis.activation_maximisation(
                    model,
                    "conv3",
                    CHANNEL,
                    steps=STEPS,
                    lr=LR,
                    generator=torch.Generator().manual_seed(0),
                    param=p,
                    **e,
                ),
                lambda p=param: _plain_loop(model, p),
                against="limit: the same loop in plain torch ops",
                goal=1.2,
                lesson="06",
            )
        )
    return out
