"""Lesson 13 - Inside a transformer: attention maps, rollout, gradients and LRP for a ViT.

A vision transformer (``interp_lib.models.VisionTransformer``) cuts the image into
patches, turns each into a token, puts a CLS token in front and lets ``depth`` blocks of
self-attention mix the tokens; the class is read from the CLS token. Its attention
matrices ``A[l]`` (``(N, heads, T, T)``, rows sum to 1) say how much each token reads
from each other token in block ``l``, and they are tempting as explanations.

This worksheet builds and measures five maps of the same model:

* raw attention: the CLS row of the last block's head-averaged attention
  (:func:`raw_attention`);
* attention rollout (Abnar & Zuidema 2020): the attention of all blocks multiplied, the
  residual stream counted as half of each (:func:`attention_rollout`, exercise 13.1);
* gradient x attention (Chefer, Gur & Wolf 2021): each block's attention weighted by the
  gradient of the class score, positive part, rolled up (:func:`gradient_attention`);
* LRP for transformers (Ali et al. 2022, CP-LRP; Achtibat et al. 2024, AttnLRP):
  gradient x input through a forward pass in which the rules are put in place --
  LayerNorm's normalisation as a constant (:func:`layernorm_rule`, exercise 13.2), GELU
  by the identity rule, the attention either detached (CP-LRP) or through the softmax
  with the uniform rule on both matrix products (AttnLRP), and lesson 08's zB rule from
  the patch tokens to the pixels (:func:`transformer_lrp`);
* integrated gradients on the patch embeddings (:func:`patch_integrated_gradients`,
  exercise 13.3).

All of them have the uniform call ``method(model, x, target, **options)`` and return a
map shaped like ``x`` (:data:`METHODS`); patch-level maps are spread evenly over the
pixels of their patch (:func:`patches_to_pixels`). They are not registered in
``interp_lib.attribution``: they need a ViT, which the CNN methods refuse (and these
refuse CNNs, :func:`check_vit`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

from ._checks.transformer import (
    check_attention,
    check_baseline_tokens,
    check_layernorm,
    check_residual,
    check_vit,
)
from .exercises import exercise, one_of, positive_int

__all__ = [
    "attention_rollout",
    "layernorm_rule",
    "patch_integrated_gradients",
    "attention_maps",
    "attention_and_gradients",
    "patches_to_pixels",
    "raw_attention",
    "rollout",
    "gradient_attention",
    "transformer_lrp",
    "relevance_budget",
    "lrp_rules",
    "check_vit",
    "METHODS",
]


# --------------------------------------------------------------------------- exercises


@exercise("13.1", points=2, checks={"attentions": check_attention, "residual": check_residual})
def attention_rollout(attentions: list[torch.Tensor], residual: float = 0.5) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020): how much each token at the top draws,
    through all blocks, on each input token.

    For every block ``l`` (in forward order) average the heads, add the residual stream
    as the identity and renormalise the rows::

        Abar[l] = mean_h attentions[l][:, h]                        (N, T, T)
        Ahat[l] = residual * I + (1 - residual) * Abar[l]
        Ahat[l] = Ahat[l] / Ahat[l].sum(-1, keepdim=True)           (rows sum to 1)
        rollout = Ahat[L-1] @ ... @ Ahat[1] @ Ahat[0]

    ``residual = 0.5`` is the paper's ``0.5 (A + I)``; ``residual = 0`` multiplies the
    raw attention. ``rollout[n, 0, 1:]`` is the CLS token's share of each patch.

    Args:
        attentions: a non-empty list of ``(N, heads, T, T)`` tensors, one per block, in
            forward order (what :func:`attention_maps` returns).
        residual: the weight of the identity, in [0, 1].

    Returns:
        ``(N, T, T)``, rows summing to 1, in the attentions' dtype.

    Hint: start from ``torch.eye(T).expand(N, T, T)`` and multiply each new block's
    ``Ahat`` in *from the left*.
    """
    # YOUR CODE HERE
    raise NotImplementedError(
        "exercise 13.1 `attention_rollout` (lesson 13): write it in interp_lib/transformer.py"
    )


@exercise("13.2", points=2, checks={"norm": check_layernorm})
def layernorm_rule(norm: nn.LayerNorm, h: torch.Tensor) -> torch.Tensor:
    """The LayerNorm of ``h`` with the LRP identity rule on its normalisation (Ali et al.
    2022; Achtibat et al. 2024, Prop. 3.4): the same values as ``norm(h)``, but the
    division by the standard deviation is a *constant* for the backward pass::

        mu  = mean(h, -1)                       sigma = sqrt(var(h, -1) + norm.eps)
        y   = (h - mu) / sigma.detach() * norm.weight + norm.bias

    (``var`` the biased variance, ``unbiased=False``, as ``nn.LayerNorm``; no weight or
    bias when ``norm.elementwise_affine`` is False.) The centring ``h - mu`` is linear
    and keeps its gradient. With this ``y``, gradient x input is a conservative rule: on
    a bias-free LayerNorm ``sum(h * dy/dh . g) == sum(y * g)`` for any ``g``, which the
    true gradient (through sigma) breaks: the normalisation would eat relevance.

    Args:
        norm: an ``nn.LayerNorm`` over the last dimension (one normalised dimension).
        h: tokens ``(..., D)`` with ``D == norm.normalized_shape[0]``.

    Returns:
        ``y`` shaped like ``h``, attached to ``h``'s graph (never detach ``h`` itself).

    Hint: ``h.var(-1, keepdim=True, unbiased=False)``.
    """
    # YOUR CODE HERE
    raise NotImplementedError(
        "exercise 13.2 `layernorm_rule` (lesson 13): write it in interp_lib/transformer.py"
    )


@exercise(
    "13.3",
    points=3,
    checks={
        "model": check_vit,
        "baseline": check_baseline_tokens,
        "steps": positive_int,
    },
)
def patch_integrated_gradients(
    model: nn.Module, x: torch.Tensor, target, baseline=None, steps: int = 32
) -> torch.Tensor:
    """Integrated gradients on the patch embeddings of a ViT (Sundararajan et al. 2017,
    lesson 05, one level up): the path runs through the *tokens*, not the pixels.

    With ``e = model.embed(x)`` (``(N, P, D)``), baseline tokens ``e'`` and
    ``F = class score of model.forward_tokens``::

        IG[n, p] = sum_d (e - e')[n, p, d] * sum_k w_k * dF/de[n, p, d] at e' + a_k (e - e')

    with the Gauss-Legendre nodes and weights ``a_k, w_k =
    integrated_gradients.quadrature("gausslegendre", steps)``. Completeness:
    ``IG[n].sum() = F(e) - F(e')``.

    Baselines (the question of lesson 05 again): ``None`` or a black image
    ``torch.zeros_like(x)``: ``e' = model.embed(baseline)`` (every token is the patch
    embedding's bias); any image tensor broadcasting to ``x`` (e.g. a blurred copy):
    its embedding; the string ``"zero"``: ``e' = 0``, a token no image produces.

    Args:
        model: a ``VisionTransformer`` (``embed`` / ``forward_tokens``, :func:`check_vit`).
        x: images ``(N, C, H, W)``.
        target: an int or an int64 tensor ``(N,)``.
        baseline: None, an image tensor broadcasting to ``x``, or ``"zero"``.
        steps: quadrature nodes (>= 1).

    Returns:
        A map shaped like ``x`` (detached): ``patches_to_pixels(model, IG, x)``, each
        pixel of patch ``p`` holding ``IG[n, p] / (C * patch * patch)``.

    Hint: all ``steps * N`` token paths in one batch: ``(S, N, P, D)`` reshaped to
    ``(S * N, P, D)``, one ``torch.autograd.grad`` of the summed class scores
    (``interp_lib.attacks.class_scores``) with the target repeated ``S`` times.
    """
    # YOUR CODE HERE
    raise NotImplementedError(
        "exercise 13.3 `patch_integrated_gradients` (lesson 13): write it in interp_lib/transformer.py"
    )


# --------------------------------------------------------------------------- helpers


def _resolve(model: nn.Module, x: torch.Tensor, target):
    """``target``, or the predicted classes when it is None."""
    from .exercises import predicted_class

    return predicted_class(model, x) if target is None else target


def _softmaxes(model: nn.Module) -> list[nn.Softmax]:
    return [block.attn.softmax for block in model.blocks]


def attention_maps(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The attention ``A[l]`` of every block, ``(N, heads, T, T)`` each, in forward order
    (forward hooks on each block's ``attn.softmax``, removed afterwards; no gradients)."""
    check_vit(model, "model", {})
    found: list[torch.Tensor] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: found.append(out.detach())) for m in _softmaxes(model)
    ]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return found


def attention_and_gradients(model: nn.Module, x: torch.Tensor, target) -> tuple[list, list]:
    """``(A, dA)``: every block's attention and the gradient of the summed class scores
    ``S_target`` with respect to it, both lists of ``(N, heads, T, T)`` (detached)."""
    from .attacks import class_scores

    check_vit(model, "model", {})
    target = _resolve(model, x, target)
    found: list[torch.Tensor] = []

    def keep(_m, _i, out):
        found.append(out)

    hooks = [m.register_forward_hook(keep) for m in _softmaxes(model)]
    try:
        with torch.enable_grad():
            scores = class_scores(model(x.detach()), target)
            grads = torch.autograd.grad(scores.sum(), found)
    finally:
        for hook in hooks:
            hook.remove()
    return [a.detach() for a in found], [g.detach() for g in grads]


def patches_to_pixels(model: nn.Module, scores: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Spread per-patch scores ``(N, P)`` (row-major patches) evenly over their pixels and
    channels: a map shaped like ``x`` whose every patch sums to its score."""
    n, c, h, w = x.shape
    p, grid = model.patch, model.grid
    per = scores.detach().to(x.dtype).view(n, 1, grid, grid) / (c * p * p)
    return per.repeat_interleave(p, 2).repeat_interleave(p, 3).expand(n, c, h, w).contiguous()


def raw_attention(model: nn.Module, x: torch.Tensor, target=None, layer: int = -1) -> torch.Tensor:
    """The CLS token's head-averaged attention to each patch in block ``layer`` (default
    the last), as a map shaped like ``x``. ``target`` is ignored: attention is the same
    whatever class is asked about."""
    attn = attention_maps(model, x)[layer].mean(1)
    return patches_to_pixels(model, attn[:, 0, 1:], x)


def rollout(model: nn.Module, x: torch.Tensor, target=None, residual: float = 0.5) -> torch.Tensor:
    """Attention rollout's CLS row (:func:`attention_rollout`, 13.1) over the patches, as
    a map shaped like ``x`` (class-agnostic: ``target`` is ignored)."""
    rolled = attention_rollout(attention_maps(model, x), residual)
    return patches_to_pixels(model, rolled[:, 0, 1:], x)


def gradient_attention(model: nn.Module, x: torch.Tensor, target) -> torch.Tensor:
    """Gradient x attention rolled up (Chefer, Gur & Wolf 2021, "generic attention-model
    explainability", their rule for self-attention)::

        Abar[l] = mean_h ( dS/dA[l] * A[l] )^+          R = I;  R <- R + Abar[l] @ R

    over the blocks in forward order; the map is ``R[:, 0, 1:]`` (CLS row, patches)."""
    attn, grads = attention_and_gradients(model, x, target)
    n, _, t, _ = attn[0].shape
    r = torch.eye(t, dtype=attn[0].dtype).expand(n, t, t)
    for a, g in zip(attn, grads):
        r = r + (g * a).clamp(min=0).mean(1) @ r
    return patches_to_pixels(model, r[:, 0, 1:], x)


# --- LRP for transformers: rules as forward hooks, then gradient x input


def _identity_rule(_module, inputs, output):
    """GELU (any elementwise nonlinearity): ``y = h * (f(h) / h).detach()``, the identity
    rule (relevance passes unchanged; AttnLRP eq. 9)."""
    (h,) = inputs
    ratio = torch.where(h == 0, torch.zeros_like(h), output / torch.where(h == 0, torch.ones_like(h), h))
    return h * ratio.detach()


def _layernorm_hook(module, inputs, _output):
    return layernorm_rule(module, inputs[0])


def _detach_hook(_module, _inputs, output):
    """CP-LRP (Ali et al. 2022): the attention is a constant, relevance flows through v."""
    return output.detach()


def _uniform_hook(_module, inputs, _output):
    """The uniform rule for a product of two factors (AttnLRP Prop. 3.2/3.3): half of the
    relevance to each, ``0.5 (a @ b.detach()) + 0.5 (a.detach() @ b)`` (same value)."""
    a, b = inputs
    return 0.5 * (a @ b.detach()) + 0.5 * (a.detach() @ b)


RULES = ("cp", "attnlrp")


@contextlib.contextmanager
def lrp_rules(model: nn.Module, attention: str = "cp") -> Iterator[nn.Module]:
    """Inside the block the model's forward pass carries the LRP rules, so that gradient x
    input is LRP (values unchanged): :func:`layernorm_rule` (13.2) at every LayerNorm, the
    identity rule at every GELU, and at the attention either

    * ``"cp"`` (CP-LRP, Ali et al. 2022): ``A`` detached, all relevance through ``v``;
    * ``"attnlrp"`` (Achtibat et al. 2024): the uniform rule at ``q k^T`` and ``A v``;
      the softmax keeps its gradient, which *is* AttnLRP's softmax rule
      ``R_in = s_in * (R_out - A * sum R_out)`` (Prop. 3.1) in gradient x input form.

    Linear layers and residual sums keep their gradient (LRP-0 / epsilon -> 0). The hooks
    are removed on exit."""
    one_of(*RULES)(attention, "attention", {})
    check_vit(model, "model", {})
    hooks = []
    try:
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                hooks.append(m.register_forward_hook(_layernorm_hook))
            elif isinstance(m, nn.GELU):
                hooks.append(m.register_forward_hook(_identity_rule))
        for block in model.blocks:
            if attention == "cp":
                hooks.append(block.attn.softmax.register_forward_hook(_detach_hook))
            else:
                hooks.append(block.attn.qk.register_forward_hook(_uniform_hook))
                hooks.append(block.attn.av.register_forward_hook(_uniform_hook))
        yield model
    finally:
        for hook in hooks:
            hook.remove()


def relevance_budget(model: nn.Module, x: torch.Tensor, target, attention: str = "cp") -> dict:
    """Where :func:`transformer_lrp`'s relevance goes, per image.

    The rules of :func:`lrp_rules` carry the target score down to the input of the first
    block, ``h0 = [cls; patch tokens] + pos_embed``, by gradient x input; there it splits
    into the patch tokens' share ``tokens[n, p] = sum_d e[n, p, d] * dS/dh0[n, 1 + p, d]``
    (``e = model.embed(x)``), the CLS token's and the position embeddings'. The patch
    embedding (a linear map of each patch's pixels) then passes ``tokens`` to the pixels
    with lesson 08's zB rule (:func:`interp_lib.lrp.zb_rule`, pixel bounds 0 and 1):
    LRP-0 there (``x * grad``) would give the dark pixels of the tag no relevance at all.

    Returns a dict of detached tensors: ``"map"`` the pixel relevance shaped like ``x``;
    ``"tokens"`` ``(N, P)``; and ``(N,)`` sums ``"pixels"``, ``"cls_token"``,
    ``"pos_embed"``, ``"logit"`` (the target score). On a bias-free copy
    (``models.bias_free_copy``) with ``"cp"``, pixels + cls_token + pos_embed == logit
    exactly; biases and AttnLRP's softmax rule absorb or add the rest.
    """
    from .attacks import class_scores
    from .lrp import zb_rule

    check_vit(model, "model", {})
    one_of(*RULES)(attention, "attention", {})
    target = _resolve(model, x, target)
    first: list[torch.Tensor] = []
    hook = model.blocks.register_forward_pre_hook(lambda _m, inputs: first.append(inputs[0]))
    try:
        with lrp_rules(model, attention), torch.enable_grad():
            scores = class_scores(model(x.detach()), target)
            # (autograd.grad, not backward: the parameters' .grad stay untouched)
            (g0,) = torch.autograd.grad(scores.sum(), first)
    finally:
        hook.remove()
    with torch.no_grad():
        e = model.embed(x)
    n, c, h, w = x.shape
    per_token = e * g0[:, 1:]  # (N, P, D): the relevance of each patch token's features
    as_image = per_token.transpose(1, 2).reshape(n, -1, model.grid, model.grid)
    pixel_map = zb_rule(model.patch_embed, x.detach(), as_image, 0.0, 1.0).detach()
    return {
        "map": pixel_map,
        "tokens": per_token.sum(-1).detach(),
        "pixels": pixel_map.flatten(1).sum(1),
        "cls_token": (model.cls_token.detach() * g0[:, :1]).flatten(1).sum(1),
        "pos_embed": (model.pos_embed.detach() * g0).flatten(1).sum(1),
        "logit": scores.detach(),
    }


def transformer_lrp(model: nn.Module, x: torch.Tensor, target, attention: str = "cp") -> torch.Tensor:
    """LRP for a ViT (:func:`relevance_budget`'s ``"map"``): the rules of
    :func:`lrp_rules` (``"cp"`` or ``"attnlrp"``) down to the patch tokens, zB to the
    pixels; shaped like ``x``."""
    return relevance_budget(model, x, target, attention)["map"]


def _lrp_method(attention: str):
    def method(model, x, target):
        return transformer_lrp(model, x, target, attention)

    method.__name__ = f"lrp_{attention}"
    return method


METHODS = {
    "raw attention": raw_attention,
    "rollout": rollout,
    "gradient x attention": gradient_attention,
    "patch IG": patch_integrated_gradients,
    "LRP (CP)": _lrp_method("cp"),
    "AttnLRP": _lrp_method("attnlrp"),
}
