"""Lesson 02 - Adversarial noise: gradients with respect to the input."""

from __future__ import annotations

import torch
from torch import nn

from ._checks.attacks import check_patch_target, check_targeted
from .exercises import (
    boolean,
    exercise,
    generator,
    images01,
    nonnegative,
    positive,
    positive_int,
    unit_interval,
)

__all__ = [
    "input_gradient",
    "fgsm",
    "pgd",
    "fooling_image",
    "adversarial_patch",
    "class_scores",
    "apply_patch",
    "random_positions",
    "patch_success_rate",
    "random_sign_noise",
    "attack_accuracy",
]


# --------------------------------------------------------------------------- exercises


@exercise("02.1", points=2, attribution=True)
def input_gradient(model: nn.Module, x: torch.Tensor, target) -> torch.Tensor:
    """The gradient of a class score with respect to the *input* image.

    Training takes the gradient of the loss with respect to the weights; here we take
    the gradient of the logit ``S_c(x)`` of class ``c = target[n]`` with respect to
    each input image ``x[n]``::

        g[n] = dS_{target[n]}(x[n]) / dx[n]

    Images in a batch do not interact, so one backward pass of the *sum* of the
    chosen scores gives every image's gradient at once.

    Args:
        model: a classifier ``(N, C, H, W) -> (N, K)`` logits. The course's wrapper
            freezes its parameters during the call, so only the input needs gradients.
        x: images ``(N, C, H, W)``. Do not modify it: work on ``x.detach().clone()``
            with ``requires_grad_(True)``.
        target: an int (the same class for every image) or an int64 tensor ``(N,)``.
            (A caller's ``target=None`` reaches you as the predicted classes: the wrapper
            resolves it to ``model(x).argmax(1)`` first.)

    Returns:
        A tensor shaped like ``x`` (detached, no ``grad_fn``).

    Hint: :func:`class_scores` picks ``logits[n, target[n]]``; then
    ``torch.autograd.grad(scores.sum(), x_leaf)[0]``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("exercise 02.1 `input_gradient` (lesson 02): write it in interp_lib/attacks.py")


@exercise("02.2", points=2, checks={"eps": nonnegative, "x": images01, "targeted": check_targeted})
def fgsm(
    model: nn.Module, x: torch.Tensor, target, eps: float = 0.1, *, targeted: bool = False
) -> torch.Tensor:
    """The fast gradient sign method (Goodfellow et al. 2014), L-infinity::

        x' = clamp(x + eps * sign(grad_x J(x, y)), 0, 1)

    where ``J`` is the *mean* cross-entropy of the batch (``F.cross_entropy(model(x),
    target)``) and ``y = target`` are the true labels. With ``targeted=True``, ``target``
    holds the classes we want instead, and the step goes *down* their loss
    (``J -> -J``): ``x' = clamp(x - eps * sign(grad_x J(x, target)), 0, 1)``.

    Args:
        model: a classifier ``(N, C, H, W) -> (N, K)`` logits (frozen by the wrapper).
        x: images ``(N, C, H, W)`` with values in [0, 1] (not modified).
        target: true labels (or, targeted, the wanted classes): an int or ``(N,)`` int64.
            A caller's None (untargeted only) reaches you as the predicted classes.
        eps: the L-inf budget (>= 0), in pixel units.
        targeted: step towards ``target`` instead of away from it.

    Returns:
        The adversarial images, shaped like ``x``, detached, in [0, 1].

    Hint: one forward, one ``torch.autograd.grad``; ``grad.sign()``. An int target must
    be expanded to ``(N,)`` for ``F.cross_entropy``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("exercise 02.2 `fgsm` (lesson 02): write it in interp_lib/attacks.py")


@exercise(
    "02.3",
    points=3,
    checks={
        "eps": nonnegative,
        "alpha": nonnegative,
        "steps": positive_int,
        "x": images01,
        "generator": generator,
        "random_start": boolean,
        "targeted": check_targeted,
    },
)
def pgd(
    model: nn.Module,
    x: torch.Tensor,
    target,
    eps: float = 0.1,
    alpha: float = 0.01,
    steps: int = 20,
    *,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    targeted: bool = False,
) -> torch.Tensor:
    """Projected gradient descent (Madry et al. 2017), L-infinity, untargeted or targeted.

    1. Random start (when ``random_start``): exactly one draw,
       ``delta = torch.empty_like(x).uniform_(-eps, eps, generator=generator)``, then
       ``x_0 = clamp(x + delta, 0, 1)``. Without it, ``x_0 = x``.
    2. ``steps`` times::

           g       = grad_x J(x_t, target)          # J: mean cross-entropy
           x_tmp   = x_t + alpha * sign(g)          # (targeted: sign(-g), i.e. down J)
           delta   = clamp(x_tmp - x, -eps, eps)    # project onto the eps-ball around x
           x_{t+1} = clamp(x + delta, 0, 1)         # stay a valid image

    3. Return the last iterate (detached).

    Keep exactly this order of operations: it is torchattacks' (3.3), and the tests
    compare your result with it given the same random start.

    Args:
        model: a classifier ``(N, C, H, W) -> (N, K)`` logits (frozen by the wrapper).
        x: images ``(N, C, H, W)`` in [0, 1] (not modified).
        target: true labels, or with ``targeted=True`` the wanted classes (int or ``(N,)``);
            a caller's None (untargeted only) reaches you as the predicted classes.
        eps: L-inf budget (>= 0); alpha: step size (>= 0); steps: number of steps (>= 1).
        random_start: start from a uniform random point of the eps-ball.
        generator: the ``torch.Generator`` of the random start (None: torch's global one).
        targeted: step down the loss of ``target`` instead of up the loss of the label.

    Returns:
        Adversarial images shaped like ``x`` with ``|x' - x| <= eps`` and values in [0, 1].

    Hint: this is :func:`fgsm`'s step repeated with a smaller step and a projection;
    ``.detach()`` the iterate each step so the graph does not grow.
    """
    # YOUR CODE HERE
    raise NotImplementedError("exercise 02.3 `pgd` (lesson 02): write it in interp_lib/attacks.py")


@exercise(
    "02.4",
    points=2,
    checks={"x": images01, "lr": positive, "max_steps": positive_int, "confidence": unit_interval},
)
def fooling_image(
    model: nn.Module,
    x: torch.Tensor,
    target,
    *,
    lr: float = 1.0,
    max_steps: int = 200,
    confidence: float = 0.99,
) -> torch.Tensor:
    """Fooling images (Nguyen et al. 2015): gradient ascent from noise until the model is
    sure it sees class ``target``.

    Starting from the images ``x`` (e.g. uniform noise), repeat at most ``max_steps``
    times, for the images whose probability ``p_target(x_n) = softmax(model(x_n))[target_n]``
    is still below ``confidence`` (the others are left unchanged from then on)::

        g_n   = grad_x log p_target(x_n)                    # log-softmax of the target
        x_n  <- clamp(x_n + lr * g_n / ||g_n||_2, 0, 1)     # normalised step, valid image

    Stop early once every image has reached ``confidence``.

    Args:
        model: a classifier (frozen by the wrapper).
        x: starting images ``(N, C, H, W)`` in [0, 1] (not modified).
        target: the class to reach: an int or ``(N,)`` int64 (a caller's None reaches you
            as the classes the start images are predicted as).
        lr: the L2 length of each step; max_steps: the step budget (>= 1);
        confidence: the probability to reach, in [0, 1].

    Returns:
        Images shaped like ``x`` (detached, in [0, 1]); check their confidence yourself,
        an image that ran out of steps is returned as it is.

    Hint: ``F.log_softmax(logits, 1)`` with :func:`class_scores`; the per-image norm is
    ``g.flatten(1).norm(dim=1)``; clamp it from below (e.g. 1e-12) before dividing.
    """
    # YOUR CODE HERE
    raise NotImplementedError("exercise 02.4 `fooling_image` (lesson 02): write it in interp_lib/attacks.py")


@exercise(
    "02.5",
    points=2,
    stretch=True,
    checks={
        "x": images01,
        "target": check_patch_target,
        "size": positive_int,
        "steps": positive_int,
        "lr": positive,
        "batch_size": positive_int,
        "generator": generator,
    },
)
def adversarial_patch(
    model: nn.Module,
    x: torch.Tensor,
    target: int,
    *,
    size: int = 8,
    steps: int = 200,
    lr: float = 0.05,
    batch_size: int = 32,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """An adversarial patch (Brown et al. 2017): one small square pattern that turns any
    image into class ``target`` wherever it is pasted.

    Learn a patch ``P`` of shape ``(C, size, size)`` (C = ``x.shape[1]``) maximising the
    expected ``log p_target(apply_patch(x_n, P, row, col))`` over random training images
    ``x_n`` and random positions:

    1. ``P = torch.rand(C, size, size, generator=generator)`` (the first draw);
       optimise it with ``torch.optim.Adam([P], lr=lr)``.
    2. Each of ``steps`` steps, in this order of draws:
       ``idx = torch.randint(len(x), (batch_size,), generator=generator)``, then
       ``rows, cols = random_positions(batch_size, x.shape[-2:], size, generator)``;
       loss = mean cross-entropy of ``model(apply_patch(x[idx], P, rows, cols))``
       against ``target``; one Adam step; then clamp ``P`` to [0, 1] in place
       (under ``torch.no_grad()``).

    Args:
        model: a classifier (frozen by the wrapper). x: training images ``(N, C, H, W)``
        in [0, 1]. target: the class the patch should cause (an int; None is refused).
        size: the side of the square patch in pixels (a 10 % patch on 28x28 is ~8 px).
        steps, lr, batch_size: the optimisation; generator: all random draws.

    Returns:
        The patch ``(C, size, size)``, detached, in [0, 1].

    Hint: :func:`apply_patch` is differentiable in the patch; measure the result on
    held-out images with :func:`patch_success_rate`.
    """
    # YOUR CODE HERE
    raise NotImplementedError(
        "exercise 02.5 `adversarial_patch` (lesson 02): write it in interp_lib/attacks.py"
    )


# --------------------------------------------------------------------------- helpers


def class_scores(logits: torch.Tensor, target) -> torch.Tensor:
    """``logits[n, target[n]]`` for each row ``n`` (``target``: an int or an ``(N,)`` tensor)."""
    index = torch.as_tensor(target, device=logits.device).expand(len(logits))
    return logits.gather(1, index[:, None]).squeeze(1)


def apply_patch(x: torch.Tensor, patch: torch.Tensor, rows, cols) -> torch.Tensor:
    """Paste ``patch`` ``(C, h, w)`` into each image ``x[n]`` with its top-left corner at
    ``(rows[n], cols[n])`` (ints or ``(N,)`` tensors). Differentiable in ``patch``; ``x``
    is not modified."""
    n, _, height, width = x.shape
    h, w = patch.shape[-2:]
    rows = torch.as_tensor(rows).expand(n)
    cols = torch.as_tensor(cols).expand(n)
    ii = torch.arange(height).view(1, height, 1)
    jj = torch.arange(width).view(1, 1, width)
    r, c = rows.view(n, 1, 1), cols.view(n, 1, 1)
    inside = (ii >= r) & (ii < r + h) & (jj >= c) & (jj < c + w)  # (N, H, W)
    # the patch pixel that lands on (i, j): (i - r, j - c), clamped where outside
    pi = (ii - r).clamp(0, h - 1).expand(n, height, width)
    pj = (jj - c).clamp(0, w - 1).expand(n, height, width)
    pasted = patch[:, pi, pj].permute(1, 0, 2, 3)  # (N, C, H, W)
    return torch.where(inside[:, None], pasted, x)


def random_positions(
    n: int, image_size: tuple[int, int], patch_size: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-left corners ``(rows, cols)`` of ``n`` patches placed uniformly inside the image
    (rows drawn first, then cols)."""
    height, width = image_size
    rows = torch.randint(height - patch_size + 1, (n,), generator=generator)
    cols = torch.randint(width - patch_size + 1, (n,), generator=generator)
    return rows, cols


@torch.no_grad()
def patch_success_rate(
    model: nn.Module,
    x: torch.Tensor,
    patch: torch.Tensor,
    target: int,
    generator: torch.Generator | None = None,
) -> float:
    """Fraction of ``x`` (images not already of class ``target``) that the model assigns to
    ``target`` once the patch is pasted at a random position (drawn with
    :func:`random_positions`)."""
    from .utils import predict_logits

    keep = predict_logits(model, x).argmax(1) != target
    x = x[keep]
    rows, cols = random_positions(len(x), x.shape[-2:], patch.shape[-1], generator)
    pred = predict_logits(model, apply_patch(x, patch, rows, cols)).argmax(1)
    return (pred == target).float().mean().item()


def random_sign_noise(x: torch.Tensor, eps: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``clamp(x + eps * s, 0, 1)`` with ``s`` a random +-1 per pixel: the same L-inf
    budget as FGSM, but blind (the baseline an attack must beat)."""
    s = torch.randint(2, x.shape, generator=generator, dtype=x.dtype) * 2 - 1
    return (x + eps * s).clamp(0, 1)


def attack_accuracy(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, attack, batch_size: int = 256
) -> float:
    """Accuracy of ``model`` on ``attack(x_batch, y_batch)``, computed in batches."""
    from .utils import batches, predict_logits

    correct = 0
    for s in batches(len(x), batch_size):
        adv = attack(x[s], y[s])
        correct += (predict_logits(model, adv).argmax(1) == y[s]).sum().item()
    return correct / len(x)
