"""Lesson 12 - Superposition and sparse autoencoders.

A layer with m neurons can represent more than m features if the features are sparse:
it stores them as almost-orthogonal directions and accepts some interference
(*superposition*, Elhage et al. 2022). Then no single neuron means one thing
(*polysemantic* units), and looking at units one by one misleads. A sparse autoencoder
(SAE; Sharkey et al. 2022, Bricken et al. 2023, Cunningham et al. 2023) learns an
overcomplete dictionary of directions whose sparse combination rebuilds the activations;
its latents are candidates for the features the layer stores.

The lesson, in order:

1. :func:`toy_loss` (12.1): the toy model ``x' = ReLU(W^T W x + b)`` and its
   importance-weighted reconstruction loss; :func:`train_toy_models` trains several
   models at once (one per feature density, several restarts) and :func:`geometry`
   reads off what they learned: dense features get dedicated dimensions, sparse ones
   share them (antipodal pairs, the pentagon).
2. :func:`sae_loss` (12.2): the SAE's forward pass and loss, with unit-norm decoder
   rows by parameterisation; :func:`train_sae` trains one.
3. :func:`mmcs` (12.3): mean max cosine similarity, how well learned directions recover
   known true features.

Then SAEs on data with known features (the toy model's hidden layer, synthetic data as
in Sharkey et al.) and on a layer of the shapes CNN, whose latents and units are compared
by :func:`concept_purity` against the generator's concepts (shape, texture).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from ._checks.superposition import (
    check_acts,
    check_decoder,
    check_decoder_bias,
    check_directions,
    check_encoder,
    check_encoder_bias,
    check_features,
    check_importance,
    check_toy_bias,
    check_toy_weights,
)
from .exercises import boolean, exercise, nonnegative

__all__ = [
    "toy_loss",
    "sae_loss",
    "mmcs",
    "sparse_features",
    "ToyModels",
    "train_toy_models",
    "feature_norms",
    "superposition",
    "represented",
    "antipodal_pairs",
    "regular_polygon",
    "dimensions_per_feature",
    "geometry",
    "PHASES",
    "two_feature_phase",
    "draw_toy_model",
    "SAE",
    "train_sae",
    "fraction_unexplained",
    "dead_latents",
    "synthetic_data",
    "Purity",
    "concept_purity",
]


# --------------------------------------------------------------------------- exercises


@exercise(
    "12.1",
    points=3,
    checks={
        "W": check_toy_weights,
        "b": check_toy_bias,
        "features": check_features,
        "importance": check_importance,
    },
)
def toy_loss(
    W: torch.Tensor, b: torch.Tensor, features: torch.Tensor, importance: torch.Tensor
) -> torch.Tensor:
    """The importance-weighted reconstruction loss of I toy models at once (Elhage et al. 2022).

    Model ``i`` squeezes ``n`` features into ``m`` hidden dimensions with ``W[i]`` ``(m, n)``
    (column ``W[i][:, j]`` is feature ``j``'s direction) and reads them back with the
    transpose, a bias and a ReLU::

        h[s, i]  = W[i] @ x[s, i]                       (m,)   x = features
        x'[s, i] = ReLU( W[i]^T @ h[s, i] + b[i] )      (n,)
        loss[i]  = mean over samples s and features j of  importance[i, j] * (x[s, i, j] - x'[s, i, j])^2

    (The paper sums over features; we take the mean, as its notebook does: the numbers
    do not grow with n.) ``importance`` ``(n,)`` is shared by all models.

    Args:
        W: ``(I, m, n)`` weights of I models.
        b: ``(I, n)`` output biases.
        features: ``(B, I, n)`` a batch of feature vectors per model (model ``i`` sees
            ``features[:, i]``).
        importance: ``(n,)`` or ``(I, n)`` weights >= 0 of the features' errors.

    Returns:
        ``(I,)`` losses, differentiable with respect to ``W`` and ``b`` (train with
        ``loss.sum().backward()``: the models do not interact).

    Hint: two ``torch.einsum`` calls, ``"imn,bin->bim"`` and ``"imn,bim->bin"``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("exercise 12.1 `toy_loss` (lesson 12): write it in interp_lib/superposition.py")


@exercise(
    "12.2",
    points=3,
    checks={
        "acts": check_acts,
        "W_enc": check_encoder,
        "b_enc": check_encoder_bias,
        "W_dec": check_decoder,
        "b_dec": check_decoder_bias,
        "l1": nonnegative,
    },
)
def sae_loss(
    acts: torch.Tensor,
    W_enc: torch.Tensor,
    b_enc: torch.Tensor,
    W_dec: torch.Tensor,
    b_dec: torch.Tensor,
    l1: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A sparse autoencoder's forward pass and loss (Bricken et al. 2023).

    The decoder's rows are the dictionary: k directions in the d-dimensional activation
    space, each normalised to unit length *inside* the forward pass (the unit-norm
    constraint by parameterisation, so the gradient respects it and the L1 penalty cannot
    be dodged by shrinking latents while growing directions)::

        f      = ReLU( (acts - b_dec) @ W_enc + b_enc )       (B, k)  latents
        D[j]   = W_dec[j] / ||W_dec[j]||                      (k, d)
        x_hat  = f @ D + b_dec                                (B, d)  reconstruction
        loss   = mean_s ||acts[s] - x_hat[s]||^2  +  l1 * mean_s sum_j f[s, j]

    (squared error summed over the d dimensions and L1 norm summed over the k latents,
    both averaged over the B rows).

    Args:
        acts: ``(B, d)`` activations.
        W_enc: ``(d, k)`` encoder weights; b_enc: ``(k,)``.
        W_dec: ``(k, d)`` decoder weights, any row norms (none zero); b_dec: ``(d,)``,
            subtracted before encoding and added back after decoding.
        l1: the sparsity coefficient (>= 0).

    Returns:
        ``(loss, f, x_hat)``: the scalar loss (differentiable in all four parameters),
        the latents ``(B, k)`` and the reconstruction ``(B, d)``.

    Hint: ``W_dec / W_dec.norm(dim=1, keepdim=True)``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("exercise 12.2 `sae_loss` (lesson 12): write it in interp_lib/superposition.py")


@exercise(
    "12.3",
    points=2,
    checks={"learned": check_directions, "true": check_directions, "per_feature": boolean},
)
def mmcs(learned: torch.Tensor, true: torch.Tensor, per_feature: bool = False) -> torch.Tensor:
    """Mean max cosine similarity (Sharkey et al. 2022): how well a learned dictionary
    recovers known features.

    For every true feature g, the cosine similarity of the learned direction closest to
    it, averaged over the true features::

        cos(u, v) = u . v / (||u|| ||v||)          (0 when u or v is the zero vector)
        best[g]   = max over learned rows l of cos(learned[l], true[g])
        MMCS      = mean over g of best[g]

    A feature is recovered when some learned direction points its way; extra learned
    directions cost nothing, a direction pointing the *opposite* way (cos = -1) does not
    count. 1 means every true feature has an exact copy in the dictionary.

    Args:
        learned: ``(k, d)`` learned directions (e.g. ``SAE.directions``), any lengths.
        true: ``(n, d)`` true feature directions, any lengths.
        per_feature: return ``best`` ``(n,)`` instead of its mean.

    Returns:
        A 0-d tensor (or ``(n,)`` with ``per_feature=True``), detached.

    Hint: normalise the rows (clamp the norms at a tiny value), then one matrix product
    ``(n, d) @ (d, k)`` holds every cosine.
    """
    # YOUR CODE HERE
    raise NotImplementedError("exercise 12.3 `mmcs` (lesson 12): write it in interp_lib/superposition.py")


# --------------------------------------------------------------------------- toy models


def sparse_features(batch: int, density: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``(batch, I, n)`` features: each is U(0, 1) with probability ``density[i]``, else 0.

    Draws ``torch.rand(batch, I, n)`` values first, then the ``torch.rand`` of the masks.
    """
    density = torch.as_tensor(density, dtype=torch.float32)
    values = torch.rand(batch, len(density), n, generator=generator)
    return values * (torch.rand(batch, len(density), n, generator=generator) < density[:, None])


@dataclasses.dataclass
class ToyModels:
    """I trained toy models: ``W`` ``(I, m, n)``, ``b`` ``(I, n)``, their ``density`` ``(I,)``,
    ``importance`` ``(I, n)`` and final ``loss`` ``(I,)`` (on a fresh batch)."""

    W: torch.Tensor
    b: torch.Tensor
    density: torch.Tensor
    importance: torch.Tensor
    loss: torch.Tensor

    def __len__(self) -> int:
        return len(self.W)


def train_toy_models(
    n: int,
    m: int,
    density,
    importance,
    restarts: int = 4,
    steps: int = 600,
    batch: int = 256,
    lr: float = 0.05,
    seed: int = 0,
) -> ToyModels:
    """Train one toy model per entry of ``density`` (with ``toy_loss``) and keep the best of
    ``restarts`` random initialisations of each (lowest loss on a fresh batch of 4,096).

    All ``I * restarts`` models train together (one batched loss): Adam, learning rate
    ``lr`` with a cosine decay to 0 over ``steps`` steps, ``batch`` samples per step from
    :func:`sparse_features`; Xavier-normal initial ``W``, zero ``b``. ``importance`` is
    ``(n,)`` (shared) or ``(I, n)`` (one row per density). Deterministic for a ``seed``.
    Toy models have local minima (a feature stuck at zero): the restarts find the
    better solution, as in the paper's notebook.
    """
    density = torch.as_tensor(density, dtype=torch.float32).flatten()
    count = len(density)
    importance = torch.as_tensor(importance, dtype=torch.float32).expand(count, n)
    dens = density.repeat_interleave(restarts)
    imp = importance.repeat_interleave(restarts, 0)
    g = torch.Generator().manual_seed(seed)
    W = (torch.randn(len(dens), m, n, generator=g) * math.sqrt(2.0 / (m + n))).requires_grad_()
    b = torch.zeros(len(dens), n, requires_grad=True)
    opt = torch.optim.Adam([W, b], lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    for _ in range(steps):
        loss = toy_loss(W, b, sparse_features(batch, dens, n, g), imp).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        schedule.step()
    with torch.no_grad():
        final = toy_loss(W, b, sparse_features(4096, dens, n, g), imp).view(count, restarts)
    best = torch.arange(count) * restarts + final.argmin(1)
    return ToyModels(W.detach()[best], b.detach()[best], density, importance, final.min(1).values)


def feature_norms(W: torch.Tensor) -> torch.Tensor:
    """``||W_j||``, the length of each feature's direction: ``(I, m, n) -> (I, n)``."""
    return W.norm(dim=1)


def superposition(W: torch.Tensor) -> torch.Tensor:
    """How much each feature shares its direction (the paper's bar colour)::

        sum over j != i of (W_i_hat . W_j)^2        W_i_hat = W_i / ||W_i||

    0: feature i has a dimension of its own; about 1 or more: it interferes with others.
    A feature with ``||W_i|| = 0`` gets 0. ``(I, m, n) -> (I, n)``.
    """
    norms = feature_norms(W)
    unit = W / norms.clamp(min=1e-8)[:, None]
    dots = torch.einsum("imn,imk->ink", unit, W) ** 2
    share = dots.sum(-1) - torch.diagonal(dots, dim1=1, dim2=2)
    return torch.where(norms > 1e-8, share, 0.0)


def represented(W: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Boolean ``(I, n)``: the feature's direction is longer than ``threshold`` (the
    trained norms are near 0 or near 1 and more)."""
    return feature_norms(W) > threshold


def antipodal_pairs(
    W: torch.Tensor, threshold: float = 0.5, cos: float = -0.9
) -> list[list[tuple[int, int]]]:
    """Per model, the pairs ``(i, j)``, i < j, of represented features whose directions are
    opposite (cosine below ``cos``)."""
    unit = W / feature_norms(W).clamp(min=1e-8)[:, None]
    cosine = torch.einsum("imn,imk->ink", unit, unit)
    rep = represented(W, threshold)
    n = W.shape[2]
    return [
        [
            (i, j)
            for i in range(n)
            for j in range(i + 1, n)
            if rep[k, i] and rep[k, j] and cosine[k, i, j] < cos
        ]
        for k in range(len(W))
    ]


def regular_polygon(W: torch.Tensor, threshold: float = 0.5, tolerance: float = 10.0) -> torch.Tensor:
    """Boolean ``(I,)``: with m = 2, all n features represented and their directions
    spaced evenly around the circle (every gap 360/n degrees, within ``tolerance``):
    the pentagon of the paper for n = 5."""
    if W.shape[1] != 2:
        raise ValueError(f"`W` must have m = 2 hidden dimensions, got {W.shape[1]}")
    n = W.shape[2]
    angles = torch.atan2(W[:, 1], W[:, 0]).sort(1).values
    gaps = torch.diff(angles, dim=1, append=angles[:, :1] + 2 * math.pi) * 180 / math.pi
    return represented(W, threshold).all(1) & ((gaps - 360 / n).abs() < tolerance).all(1)


def dimensions_per_feature(W: torch.Tensor) -> torch.Tensor:
    """The paper's ``D* = m / ||W||_F^2`` per model ``(I,)``: 1 with one dimension per
    represented feature, 2/5 for the pentagon (5 features of norm 1 in 2 dimensions)."""
    return W.shape[1] / W.pow(2).sum((1, 2))


def geometry(W: torch.Tensor, threshold: float = 0.5) -> list[str]:
    """A verdict per model: how many features are represented, and how they are arranged."""
    rep = represented(W, threshold)
    sup = superposition(W) > 0.1
    pairs = antipodal_pairs(W, threshold)
    polygon = regular_polygon(W, threshold) if W.shape[1] == 2 else torch.zeros(len(W), dtype=torch.bool)
    n = W.shape[2]
    out = []
    for k in range(len(W)):
        count = int(rep[k].sum())
        text = f"{count} of {n} represented"
        if not (sup[k] & rep[k]).any():
            text += ", no superposition"
        elif polygon[k] and n >= 3:
            text += f", regular {n}-gon" + (" (pentagon)" if n == 5 else "")
        elif pairs[k]:
            text += f", {len(pairs[k])} antipodal pair" + ("s" if len(pairs[k]) > 1 else "")
        else:
            text += ", in superposition"
        out.append(text)
    return out


#: the regions of the two-feature phase diagram (n = 2, m = 1), as in Elhage et al. Fig. 8
PHASES = ("extra feature not represented", "extra feature gets the dimension", "superposition (antipodal)")


def two_feature_phase(W: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """For n = 2 features in m = 1 dimension, the region of each model ``(I,)``, an index
    into :data:`PHASES` (feature 1 is the extra one): 0 only feature 0 represented, 1 only
    feature 1, 2 both, in opposite directions (-1 for anything else)."""
    if W.shape[1:] != (1, 2):
        raise ValueError(f"`W` must be (I, 1, 2), got {tuple(W.shape)}")
    rep = represented(W, threshold)
    both = rep.all(1) & (W[:, 0, 0] * W[:, 0, 1] < 0)
    phase = torch.full((len(W),), -1)
    phase[rep[:, 0] & ~rep[:, 1]] = 0
    phase[~rep[:, 0] & rep[:, 1]] = 1
    phase[both] = 2
    return phase


def draw_toy_model(axes, W: torch.Tensor, title: str = "", lim: float = 1.3) -> None:
    """The paper's picture of one model ``W`` ``(m, n)`` on 2 or 3 axes: ``W^T W`` (signed,
    on the scale ``(-lim, lim)``), the bars ``||W_j||`` coloured by :func:`superposition`
    (black: a dimension of its own, yellow: shared), and for m = 2 the columns as arrows."""
    from matplotlib import cm

    from .plot import TITLE_SIZE, heatmap

    W = W.detach().float()
    n = W.shape[1]
    heatmap(axes[0], W.T @ W, signed=True, lim=(-lim, lim), title=f"{title}\n$W^TW$".strip())
    share = superposition(W[None])[0].clamp(0, 1).numpy()
    ax = axes[1]
    ax.barh(range(n), feature_norms(W[None])[0].numpy(), color=cm.plasma(share))
    ax.set_yticks(range(n))
    ax.set_yticklabels([str(j) for j in range(n)], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, max(lim, 1.05))
    ax.set_xlabel("||W_j||", fontsize=9)
    ax.set_title("norm, colour = superposition", fontsize=TITLE_SIZE)
    ax.tick_params(labelsize=8)
    if len(axes) > 2 and W.shape[0] == 2:
        ax = axes[2]
        for j in range(n):
            ax.annotate("", xy=W[:, j].tolist(), xytext=(0, 0), arrowprops=dict(arrowstyle="->", lw=1.5))
            ax.text(*(1.12 * W[:, j]).tolist(), str(j), fontsize=9, ha="center", va="center")
        ax.set_xlim(-1.4, 1.4)
        ax.set_ylim(-1.4, 1.4)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title("columns of W", fontsize=TITLE_SIZE)


# --------------------------------------------------------------------------- sparse autoencoders


@dataclasses.dataclass
class SAE:
    """A sparse autoencoder's parameters (see :func:`sae_loss`)."""

    W_enc: torch.Tensor  # (d, k)
    b_enc: torch.Tensor  # (k,)
    W_dec: torch.Tensor  # (k, d), rows normalised in the forward pass
    b_dec: torch.Tensor  # (d,)

    @property
    def directions(self) -> torch.Tensor:
        """The dictionary: unit-norm decoder rows ``(k, d)``."""
        return (self.W_dec / self.W_dec.norm(dim=1, keepdim=True)).detach()

    def __call__(self, acts: torch.Tensor, l1: float = 0.0):
        """``(loss, latents, reconstruction)`` of :func:`sae_loss`, without gradients."""
        with torch.no_grad():
            return sae_loss(acts, self.W_enc, self.b_enc, self.W_dec, self.b_dec, l1)


def train_sae(
    acts: torch.Tensor,
    n_latents: int,
    l1: float,
    steps: int = 800,
    batch: int = 256,
    lr: float = 3e-3,
    seed: int = 0,
) -> SAE:
    """Train an SAE with ``n_latents`` latents on the rows of ``acts`` ``(N, d)`` (with
    :func:`sae_loss`): Adam, ``steps`` minibatches of ``batch`` rows drawn with
    replacement. Initialisation: random unit decoder rows, the encoder their transpose,
    ``b_enc = 0``, ``b_dec`` the mean of ``acts``. Deterministic for a ``seed``."""
    g = torch.Generator().manual_seed(seed)
    W_dec = torch.randn(n_latents, acts.shape[1], generator=g)
    W_dec = W_dec / W_dec.norm(dim=1, keepdim=True)
    W_enc = W_dec.T.clone().requires_grad_()
    W_dec.requires_grad_()
    b_enc = torch.zeros(n_latents, requires_grad=True)
    b_dec = acts.mean(0).clone().requires_grad_()
    opt = torch.optim.Adam([W_enc, b_enc, W_dec, b_dec], lr=lr)
    for _ in range(steps):
        rows = acts[torch.randint(len(acts), (batch,), generator=g)]
        loss, _, _ = sae_loss(rows, W_enc, b_enc, W_dec, b_dec, l1)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return SAE(W_enc.detach(), b_enc.detach(), W_dec.detach(), b_dec.detach())


def fraction_unexplained(acts: torch.Tensor, reconstruction: torch.Tensor) -> float:
    """Fraction of variance unexplained: ``sum ||x - x_hat||^2 / sum ||x - mean(x)||^2``."""
    return ((acts - reconstruction).pow(2).sum() / (acts - acts.mean(0)).pow(2).sum()).item()


def dead_latents(latents: torch.Tensor) -> torch.Tensor:
    """Boolean ``(k,)``: latents that are 0 on every row of ``latents`` ``(N, k)``."""
    return (latents > 0).sum(0) == 0


def synthetic_data(
    n_true: int = 32, d: int = 16, n_samples: int = 8192, active: float = 3.0, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Data with known features, as in Sharkey et al. (2022): ``(G, X)``.

    ``G`` ``(n_true, d)``: random unit directions (``n_true > d``: more features than
    dimensions); ``X = C @ G`` ``(n_samples, d)`` where each coefficient ``C[s, g]`` is
    U(0, 1) with probability ``active / n_true`` (on average ``active`` features per row),
    else 0. Draws G, then the coefficients' values, then their masks."""
    g = torch.Generator().manual_seed(seed)
    G = torch.randn(n_true, d, generator=g)
    G = G / G.norm(dim=1, keepdim=True)
    coeffs = sparse_features(n_samples, torch.tensor([active / n_true]), n_true, g)[:, 0]
    return G, coeffs @ G


@dataclasses.dataclass
class Purity:
    """:func:`concept_purity`: per unit, ``purity`` (the share of its top images sharing one
    concept value), the ``concept`` and ``value`` that share is of, and ``alive`` (the unit
    is > 0 on at least k images; only those count)."""

    purity: torch.Tensor
    concept: list[str]
    value: list[int]
    alive: torch.Tensor


def concept_purity(acts: torch.Tensor, concepts: dict[str, torch.Tensor], k: int = 20) -> Purity:
    """How monosemantic each unit (column of ``acts`` ``(N, U)``) is with respect to known
    concepts (``{name: (N,) integer labels}``, e.g. shape and texture of each image).

    For each unit take the ``k`` images on which it is largest; for each concept, the
    share of those k images that have the concept's most common value among them; the
    unit's purity is the largest share over the concepts. A unit that fires for circles
    of any texture has purity 1 (concept "shape", value circle); one that mixes
    circles and crosses, 0.5 or so; chance is about 1 / (number of values)."""
    top = acts.topk(k, dim=0).indices  # (k, U)
    best = torch.zeros(acts.shape[1])
    concept = [""] * acts.shape[1]
    value = [0] * acts.shape[1]
    for name, labels in concepts.items():
        labels = torch.as_tensor(labels).long()
        counts = torch.nn.functional.one_hot(labels[top], int(labels.max()) + 1).sum(0)  # (U, values)
        share, v = (counts.float() / k).max(1)
        for u in torch.nonzero(share > best).flatten().tolist():
            concept[u], value[u] = name, int(v[u])
        best = torch.maximum(best, share)
    return Purity(best, concept, value, (acts > 0).sum(0) >= k)
