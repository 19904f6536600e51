"""Benchmark rows for lessons 04-05: SmoothGrad and integrated gradients against captum,
and IG against its limit (the forward + backward passes it must make).

Work per row: the shipped digits CNN on a batch of 16 test images; a randomly initialised
torchvision ResNet-18 (eval) on 2 random 224x224 images with fewer steps/samples (stated in
the row name) to keep the benchmark short on 2 CPU cores.
"""

import torch

from interp_lib import data, gradients, integrated_gradients
from interp_lib.attacks import class_scores
from interp_lib.course.bench import Row
from interp_lib.models import load_model


def _noise_tunnel(model, x, y, n, sigma):
    import captum.attr as ca

    return ca.NoiseTunnel(ca.Saliency(model)).attribute(
        x, nt_type="smoothgrad", nt_samples=n, stdevs=sigma, target=y, abs=False
    )


def _limit(model, x, y, steps):
    """One batched forward + backward pass over the steps * N path images (no weighting)."""

    def run():
        images = x.repeat(steps, 1, 1, 1).mul_(0.5).requires_grad_(True)
        score = class_scores(model(images), y.repeat(steps)).sum()
        return torch.autograd.grad(score, images)[0]

    return run


def _frozen(model):
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def rows():
    import captum.attr as ca
    import torchvision

    digits = load_model("digits")
    x, y = data.load_digits("test")
    x, y = x[:16].contiguous(), y[:16].contiguous()
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18(weights=None).eval()
    xr = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    yr = torch.tensor([1, 2])
    ig_ref = lambda m, xx, yy, n: ca.IntegratedGradients(m).attribute(  # noqa: E731
        xx, target=yy, n_steps=n, method="gausslegendre"
    )
    out = []
    for label, model, xx, yy, steps, n_sg in (
        ("digits CNN, 16 x 1x28x28", digits, x, y, 64, 16),
        ("ResNet-18, 2 x 3x224x224", resnet, xr, yr, 8, 4),
    ):
        out.append(
            Row(
                f"integrated_gradients {steps} steps ({label})",
                lambda m=model, a=xx, b=yy, n=steps: integrated_gradients.integrated_gradients(
                    m, a, b, steps=n
                ),
                lambda m=model, a=xx, b=yy, n=steps: ig_ref(m, a, b, n),
                against="captum IntegratedGradients (gausslegendre)",
                goal=1.1,
                lesson="05",
            )
        )
        out.append(
            Row(
                f"smoothgrad {n_sg} samples ({label})",
                lambda m=model, a=xx, b=yy, n=n_sg: gradients.smoothgrad(
                    m, a, b, n_samples=n, sigma=0.15, generator=torch.Generator().manual_seed(0)
                ),
                lambda m=model, a=xx, b=yy, n=n_sg: _noise_tunnel(m, a, b, n, 0.15),
                against="captum NoiseTunnel(Saliency)",
                goal=1.1,
                lesson="04",
            )
        )
        out.append(
            Row(
                f"integrated_gradients {steps} steps vs limit ({label})",
                lambda m=model, a=xx, b=yy, n=steps: integrated_gradients.integrated_gradients(
                    m, a, b, steps=n
                ),
                _limit(_frozen(_copy(model)), xx, yy, steps),
                against=f"limit: one batched forward+backward of {steps} x N images",
                goal=1.1,
                lesson="05",
            )
        )
    return out


def _copy(model):
    import copy

    return copy.deepcopy(model)
