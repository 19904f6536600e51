import torch
import torch.nn.functional as F

from interp_lib.attacks import apply_patch, class_scores, random_positions


def input_gradient(model, x, target):
    x = x.detach().clone().requires_grad_(True)
    scores = class_scores(model(x), target)
    return torch.autograd.grad(scores.sum(), x)[0]


def _labels(target, n):
    return torch.as_tensor(target, dtype=torch.int64).expand(n)


def _loss_gradient(model, x, labels, targeted):
    """Gradient of the mean cross-entropy (negated when targeted: we go down its loss)."""
    x = x.detach().clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), labels)
    if targeted:
        loss = -loss
    return torch.autograd.grad(loss, x)[0]


def fgsm(model, x, target, eps=0.1, *, targeted=False):
    labels = _labels(target, len(x))
    grad = _loss_gradient(model, x, labels, targeted)
    return torch.clamp(x.detach() + eps * grad.sign(), 0, 1)


def pgd(
    model, x, target, eps=0.1, alpha=0.01, steps=20, *, random_start=True, generator=None, targeted=False
):
    labels = _labels(target, len(x))
    x = x.detach()
    adv = x.clone()
    if random_start:
        adv = adv + torch.empty_like(adv).uniform_(-eps, eps, generator=generator)
        adv = torch.clamp(adv, 0, 1)
    for _ in range(steps):
        grad = _loss_gradient(model, adv, labels, targeted)
        adv = adv + alpha * grad.sign()
        delta = torch.clamp(adv - x, -eps, eps)
        adv = torch.clamp(x + delta, 0, 1)
    return adv


def fooling_image(model, x, target, *, lr=1.0, max_steps=200, confidence=0.99):
    labels = _labels(target, len(x))
    x = x.detach().clone()
    for _ in range(max_steps):
        leaf = x.requires_grad_(True)
        log_p = class_scores(F.log_softmax(model(leaf), dim=1), labels)
        grad = torch.autograd.grad(log_p.sum(), leaf)[0]
        x = x.detach()
        active = log_p.detach().exp() < confidence
        if not active.any():
            break
        norm = grad.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *[1] * (x.dim() - 1))
        step = torch.where(active.view_as(norm), lr * grad / norm, torch.zeros_like(grad))
        x = torch.clamp(x + step, 0, 1)
    return x.detach()


def adversarial_patch(model, x, target, *, size=8, steps=200, lr=0.05, batch_size=32, generator=None):
    patch = torch.rand(x.shape[1], size, size, generator=generator).requires_grad_(True)
    optimiser = torch.optim.Adam([patch], lr=lr)
    labels = torch.full((batch_size,), target, dtype=torch.int64)
    for _ in range(steps):
        idx = torch.randint(len(x), (batch_size,), generator=generator)
        rows, cols = random_positions(batch_size, x.shape[-2:], size, generator)
        loss = F.cross_entropy(model(apply_patch(x[idx], patch, rows, cols)), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        with torch.no_grad():
            patch.clamp_(0, 1)
    return patch.detach()
