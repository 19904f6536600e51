"""Benchmark rows for lesson 02: FGSM and PGD-10 against torchattacks 3.3 on the same batch."""

import torch

from interp_lib import attacks, data
from interp_lib.course.bench import Row
from interp_lib.models import load_model


def rows():
    import torchattacks

    model = load_model("digits")
    x, y = data.load_digits("test")
    x, y = x[:256], y[:256]
    ta_fgsm = torchattacks.FGSM(model, eps=0.1)
    ta_pgd = torchattacks.PGD(model, eps=0.1, alpha=0.025, steps=10, random_start=True)

    def ours_pgd():
        return attacks.pgd(
            model, x, y, eps=0.1, alpha=0.025, steps=10, generator=torch.Generator().manual_seed(0)
        )

    def ref_pgd():
        torch.manual_seed(0)
        return ta_pgd(x, y)

    return [
        Row(
            "FGSM (digits CNN, 256 x 1x28x28)",
            lambda: attacks.fgsm(model, x, y, eps=0.1),
            lambda: ta_fgsm(x, y),
            against="torchattacks 3.3",
            goal=1.1,
            lesson="02",
        ),
        Row(
            "PGD-10 (digits CNN, 256 x 1x28x28)",
            ours_pgd,
            ref_pgd,
            against="torchattacks 3.3",
            goal=1.1,
            lesson="02",
        ),
    ]
