import torch

from interp_lib import dtd


def dtd_root_point(weight, bias, a, direction="w", low=None, high=None):
    v = dtd.search_direction(weight, a, direction, low, high)  # (N, K, D)
    z = a @ weight.T + bias  # (N, K)
    wv = torch.einsum("nkd,kd->nk", v, weight)
    t = torch.where(wv != 0, z.clamp(min=0) / torch.where(wv != 0, wv, 1.0), 0.0)
    return a[:, None, :] - t[..., None] * v


def dtd_relevance(weight, bias, a, direction="w", low=None, high=None):
    root = dtd.dtd_root_point(weight, bias, a, direction, low, high)
    return ((a[:, None, :] - root) * weight[None]).sum(1)
