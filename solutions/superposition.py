"""Reference bodies for lesson 12 (superposition and sparse autoencoders)."""

from __future__ import annotations

import torch


def toy_loss(W, b, features, importance):
    hidden = torch.einsum("imn,bin->bim", W, features)  # (B, I, m)
    out = torch.relu(torch.einsum("imn,bim->bin", W, hidden) + b)  # (B, I, n)
    error = importance * (features - out) ** 2
    return error.mean(dim=(0, 2))


def sae_loss(acts, W_enc, b_enc, W_dec, b_dec, l1=0.0):
    latents = torch.relu((acts - b_dec) @ W_enc + b_enc)
    directions = W_dec / W_dec.norm(dim=1, keepdim=True)
    reconstruction = latents @ directions + b_dec
    mse = (acts - reconstruction).pow(2).sum(1).mean()
    sparsity = latents.sum(1).mean()
    return mse + l1 * sparsity, latents, reconstruction


def mmcs(learned, true, per_feature=False):
    learned = learned / learned.norm(dim=1, keepdim=True).clamp(min=1e-12)
    true = true / true.norm(dim=1, keepdim=True).clamp(min=1e-12)
    best = (true @ learned.T).max(dim=1).values.detach()
    return best if per_feature else best.mean()
