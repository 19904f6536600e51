import torch
import torch.nn.functional as F

from interp_lib import featvis
from interp_lib.featvis import Visualisation
from interp_lib.featvis_param import image_parameterisation
from interp_lib.featvis_units import default_input_shape, find_layer, unit_objective


def total_variation(x, beta=2.0, eps=0.0):
    dh = x[..., :-1, 1:] - x[..., :-1, :-1]
    dv = x[..., 1:, :-1] - x[..., :-1, :-1]
    return (dh**2 + dv**2 + eps).pow(beta / 2).sum(dim=(1, 2, 3))


def random_transform(x, generator, jitter=2, scale=(0.9, 1.1), degrees=10.0):
    n, _, h, w = x.shape
    dx = torch.randint(-jitter, jitter + 1, (n,), generator=generator)
    dy = torch.randint(-jitter, jitter + 1, (n,), generator=generator)
    s = scale[0] + (scale[1] - scale[0]) * torch.rand(n, generator=generator)
    angle = -degrees + 2 * degrees * torch.rand(n, generator=generator)

    # output point q samples the input at c + A^-1 (q - c - t), A = s R(angle);
    # in normalised coordinates (u = D^-1 (p - c)): u_in = D^-1 A^-1 D u_out - D^-1 A^-1 t.
    a = torch.deg2rad(angle.double())
    cos, sin = torch.cos(a) / s, torch.sin(a) / s
    a_inv = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)  # (N, 2, 2)
    d = torch.tensor([w / 2, h / 2], dtype=torch.float64)
    linear = a_inv * d[None, None, :] / d[None, :, None]
    shift = -(a_inv @ torch.stack([dx, dy], -1).double()[..., None])[..., 0] / d
    theta = torch.cat([linear, shift[..., None]], -1).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def activation_maximisation(
    model,
    layer,
    channel,
    neuron=None,
    steps=128,
    lr=0.05,
    start=None,
    generator=None,
    l2=0.0,
    tv=0.0,
    blur_every=0,
    blur_sigma=0.5,
    transforms=False,
    param="pixel",
    decorrelate=False,
    shape=None,
    progress=False,
):
    from tqdm.auto import trange

    generator = torch.Generator().manual_seed(0) if generator is None else generator
    # N images: one per start image, else one per listed channel; (C, H, W): shape, start's or the model's
    n = len(start) if start is not None else len(channel) if isinstance(channel, (list, tuple)) else 1
    c, h, w = shape or (start.shape[1:] if start is not None else default_input_shape(model))
    options = transforms if isinstance(transforms, dict) else {}

    img_param = image_parameterisation(param, (n, c, h, w), generator, start, decorrelate)
    optimiser = torch.optim.Adam(img_param.parameters(), lr=lr)
    store = {}
    handle = find_layer(model, layer).register_forward_hook(
        lambda module, inputs, output: store.__setitem__("act", output)
    )
    history = []
    try:
        for step in trange(steps, leave=False, disable=not progress):
            img = img_param()
            model(featvis.random_transform(img, generator, **options) if transforms else img)
            objective = unit_objective(store["act"], channel, neuron)
            loss = -objective.sum()
            if l2:
                loss = loss + l2 * ((img - 0.5) ** 2).mean(dim=(1, 2, 3)).sum()
            if tv:
                loss = loss + tv * featvis.total_variation(img).sum() / (c * h * w)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            img_param.after_step()
            if blur_every and (step + 1) % blur_every == 0:
                img_param.blur(blur_sigma)
            history.append(objective.detach())
        with torch.no_grad():
            image = img_param().detach()
            model(image)
            final = unit_objective(store["act"], channel, neuron).detach()
    finally:
        handle.remove()
    return Visualisation(image, final, torch.stack(history))
