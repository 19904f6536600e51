"""AttnLRP through the course's ViT with lxt 2.1's explicit rules (the reference for lesson 13).

lxt's ``explicit`` functions are ``torch.autograd.Function`` s whose backward passes
*relevance* (not gradients): the forward pass below is the ViT's, written with them
(epsilon rule at linear layers and residual sums, AttnLRP's LayerNorm, softmax and
matmul rules, the identity rule at GELU); ``out.backward(R)`` leaves the input relevance
in ``x.grad``. The patch embedding (a convolution with stride = kernel) is a linear layer
on the unfolded patches. Shared by tests/test_13_transformer.py and
bench/rows_13_transformer.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def lxt_attnlrp(model, x, target):
    """``(pixels, tokens)``: the relevance of the pixels ``(N, C, H, W)`` (LRP-epsilon at the
    patch embedding) and of each patch token ``(N, P)`` (summed over its features) of
    ``model`` (a ``VisionTransformer``) for ``target`` (an ``(N,)`` int64 tensor) under
    AttnLRP, computed by lxt."""
    import lxt.explicit.functional as lf
    from lxt.explicit.rules import identity

    n, c, h, w = x.shape
    p = model.patch
    leaf = x.detach().clone().requires_grad_(True)
    conv = model.patch_embed
    patches = F.unfold(leaf, p, stride=p).transpose(1, 2)  # (N, P, C*p*p)
    tokens = lf.linear_epsilon(patches, conv.weight.detach().flatten(1), conv.bias.detach())
    tokens.retain_grad()  # (its .grad: the relevance of the tokens)
    cls = model.cls_token.detach().expand(n, -1, -1)
    hid = lf.add2(torch.cat([cls, tokens], 1), model.pos_embed.detach().expand(n, -1, -1))

    def ln(norm, t):
        return lf.layer_norm(t, norm.weight.detach(), norm.bias.detach(), norm.eps)

    def lin(layer, t, scale=1.0):
        return lf.linear_epsilon(t, layer.weight.detach() * scale, layer.bias.detach() * scale)

    for block in model.blocks:
        att = block.attn
        a = ln(block.norm1, hid)
        q, k, v = (att._split(lin(m, a, s)) for m, s in ((att.q, att.scale), (att.k, 1.0), (att.v, 1.0)))
        probs = lf.softmax(lf.matmul(q, k.transpose(-1, -2)), -1)
        out = lin(att.proj, lf.matmul(probs, v).transpose(1, 2).flatten(2))
        hid = lf.add2(hid, out)
        m = block.mlp
        hid = lf.add2(hid, lin(m.fc2, identity(F.gelu, lin(m.fc1, ln(block.norm2, hid)))))
    logits = lin(model.head, ln(model.norm, hid)[:, 0])
    relevance = torch.zeros_like(logits).scatter(1, target[:, None], logits.gather(1, target[:, None]))
    logits.backward(relevance.detach())
    return leaf.grad.detach(), tokens.grad.sum(-1).detach()
