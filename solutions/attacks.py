import torch

from interp_lib.attacks import class_scores


def input_gradient(model, x, target):
    x = x.detach().clone().requires_grad_(True)
    scores = class_scores(model(x), target)
    return torch.autograd.grad(scores.sum(), x)[0]
