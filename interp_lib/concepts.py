"""Lesson 11 - Concepts inside the network: probes, TCAV and network dissection.

Attribution maps (lessons 04-10) say *where* in the input the evidence lies. This lesson
asks *what* a layer represents, in human concepts, and the shapes world knows its
concepts (shape, texture, colour, position, the Clever-Hans tag), so every answer can be
checked against the truth:

1. **Probes done right** (Hewitt & Liang 2019). Lesson 03's linear probe
   (:func:`interp_lib.shape_bias.linear_probe`, 03.3) reads a concept from a layer. A
   probe that is accurate may only be *expressive*; the control task (every input type
   mapped to a fixed random label, :func:`control_labels`) measures that, and
   selectivity = accuracy - control accuracy is what the layer contributes. The ridge
   penalty is the probe's capacity knob.
2. **TCAV** (Kim et al. 2018). A concept activation vector (CAV) is the normal of a
   linear boundary between a layer's activations for concept images and for random
   images (:func:`concept_activation_vector`, 11.1). The directional derivative of a
   class score along it says whether the concept pushes that class up; the TCAV score is
   the fraction of class images where it does (:func:`tcav_score`, 11.2). A score alone
   means little: :func:`tcav` repeats it over random sets and tests it (two-sided t-test)
   against CAVs trained on random-vs-random images (:func:`t_test`).
3. **Network dissection** (Bau et al. 2017). Threshold each unit's upsampled activation
   map at its dataset-wide top quantile and compare the region with every concept's
   pixel mask (:func:`interp_lib.data.concept_masks`) by intersection over union
   (:func:`unit_iou`, 11.3); a unit whose best IoU exceeds 0.04 "detects" that concept
   (:func:`unit_labels`). Counting texture detectors in the texture- and the
   shape-biased model is lesson 03 seen unit by unit.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from . import data
from ._checks.concepts import (
    check_activation_rows,
    check_cavs,
    check_concept_masks,
    check_feature_maps,
    check_random_rows,
    check_top,
)
from .exercises import exercise, layer_name, positive
from .shape_bias import layer_activations

__all__ = [
    "concept_activation_vector",
    "tcav_score",
    "unit_iou",
    "COLOURS",
    "colour_labels",
    "input_types",
    "control_labels",
    "concept_labels",
    "probe_selectivity",
    "texture_images",
    "tag_images",
    "with_tag",
    "random_images",
    "t_test",
    "TCAVResult",
    "tcav",
    "feature_maps",
    "unit_labels",
    "DETECTOR_IOU",
    "layer_activations",
    "captum_ridge_classifier",
]


# --------------------------------------------------------------------------- exercises


@exercise(
    "11.1",
    points=2,
    checks={"concept": check_activation_rows, "random": check_random_rows, "ridge": positive},
)
def concept_activation_vector(
    concept: torch.Tensor, random: torch.Tensor, ridge: float = 1.0
) -> torch.Tensor:
    """The concept activation vector (Kim et al. 2018): the unit normal of a linear
    boundary between a layer's activations for concept images and for random images,
    pointing towards the concept.

    The linear classifier is ridge regression onto +1 (concept) / -1 (random) targets,
    which has one closed-form answer (the same direction as scikit-learn's
    ``RidgeClassifier(alpha=ridge)``). With ``A`` the ``M = Nc + Nr`` rows of ``concept``
    then ``random`` in float64 and ``t`` their targets::

        Ac = A - mean_rows(A),   tc = t - mean(t)              (the intercept, centred out)
        w  = argmin ||Ac w - tc||^2 + ridge ||w||^2
           = Ac^T (Ac Ac^T + ridge I_M)^{-1} tc                 (the dual form: an M x M solve)
        cav = w / ||w||

    No random draws: the result is deterministic up to float rounding.

    Args:
        concept: ``(Nc, D)`` activations (flattened, one row per concept image), e.g.
            ``layer_activations(model, "pool2", concept_images)``.
        random: ``(Nr, D)`` activations of random images at the same layer.
        ridge: the L2 penalty (> 0; the dual solve needs it when D > M).

    Returns:
        ``(D,)`` float64 unit vector in the layer's (flattened) activation space.

    Hint: ``torch.linalg.solve(Ac @ Ac.T + ridge * I, tc)``; lesson 03's probe (03.3)
    used the same dual form.
    """
    # YOUR CODE HERE
    raise NotImplementedError(
        "exercise 11.1 `concept_activation_vector` (lesson 11): write it in interp_lib/concepts.py"
    )


@exercise("11.2", points=3, checks={"layer": layer_name(), "cavs": check_cavs})
def tcav_score(model: nn.Module, x: torch.Tensor, target, layer: str, cavs: torch.Tensor) -> torch.Tensor:
    """TCAV scores (Kim et al. 2018): for each CAV, the fraction of the images whose
    target score rises when the layer's activations move along the CAV.

    With ``h_n = f_l(x_n)`` the flattened output of the sub-module ``layer`` for image
    ``n`` and ``s_k`` the logit of class ``k``, the directional derivative along CAV
    ``r`` is::

        S[n, r]   = grad_h s_{target_n}(h) at h_n  .  cavs[r]      (a dot product over D)
        score[r]  = (1/N) * #{ n : S[n, r] > 0 }

    (captum's ``TCAV`` calls this the ``sign_count`` score; the gradient is the plain
    layer gradient, not multiplied by the activation.)

    Args:
        model: a classifier (frozen by the wrapper; it is not changed).
        x: images ``(N, C, H, W)`` (usually of the target class).
        target: an int, or an int64 tensor ``(N,)`` (None: the predicted class).
        layer: the sub-module name whose output the CAVs live in, e.g. ``"pool2"``.
        cavs: ``(R, D)``, one CAV per row, ``D`` the layer's flattened size.

    Returns:
        ``(R,)`` float64 scores in [0, 1], detached. A ``ValueError`` naming ``cavs`` when
        ``D`` is not the layer's size.

    Hint: a forward hook keeps the layer's output (remove it in ``finally``); make a copy
    of ``x`` require grad so that the output carries a graph, then one
    ``torch.autograd.grad`` of the summed target logits gives all N gradients at once.
    """
    # YOUR CODE HERE
    raise NotImplementedError("exercise 11.2 `tcav_score` (lesson 11): write it in interp_lib/concepts.py")


@exercise(
    "11.3",
    points=3,
    checks={"activations": check_feature_maps, "masks": check_concept_masks, "top": check_top},
)
def unit_iou(activations: torch.Tensor, masks: torch.Tensor, top: float = 0.005) -> torch.Tensor:
    """Network dissection (Bau et al. 2017): how well each unit's active region matches
    each concept, by intersection over union over the whole dataset.

    For unit ``u`` (a channel of ``activations``) and concept ``k``::

        T_u        = quantile of activations[:, u] (all N images and h x w positions) at 1 - top
                     (torch.quantile, linear interpolation: the dataset-wide top-`top` level)
        up         = bilinear upsampling of activations to the masks' H x W
                     (F.interpolate(..., mode="bilinear", align_corners=False))
        on[n, u]   = up[n, u] > T_u                                 (a boolean H x W map)
        IoU[u, k]  = sum_n |on[n, u] AND masks[n, k]| / sum_n |on[n, u] OR masks[n, k]|

    (0 where the union is empty). The threshold is computed on the maps *before*
    upsampling, as in Bau et al.'s code.

    Args:
        activations: ``(N, U, h, w)`` feature maps of one layer (:func:`feature_maps`).
        masks: bool ``(N, K, H, W)``, ``masks[n, k]`` the pixels of concept ``k`` in image
            ``n`` (:func:`interp_lib.data.concept_masks`), ``H, W >= h, w``.
        top: the fraction of the highest activations that counts as "on" (Bau: 0.005).

    Returns:
        ``(U, K)`` float64 IoU values in [0, 1].

    Hint: sum over images before dividing. With ``on`` as ``(N, U, P)`` and the masks as
    ``(N, K, P)`` floats (``P = H * W``), every intersection at once is one ``einsum``,
    and ``|A OR B| = |A| + |B| - |A AND B|``.
    """
    # YOUR CODE HERE
    raise NotImplementedError("exercise 11.3 `unit_iou` (lesson 11): write it in interp_lib/concepts.py")


# --------------------------------------------------------------------------- helpers: probes

COLOURS = ("red", "green", "blue")


def colour_labels(shapes: data.Shapes) -> torch.Tensor:
    """The object's colour as a class (index into :data:`COLOURS`): the largest channel of
    its mean colour inside the silhouette (``shapes.mask``). ``(N,)`` int64."""
    if shapes.mask is None:
        raise ValueError("`shapes` has no silhouettes (`mask`): make it with data.make_shapes")
    m = shapes.mask.float()
    mean = (shapes.x * m).sum((2, 3)) / m.sum((2, 3)).clamp(min=1.0)
    return mean.argmax(1)


def input_types(shapes: data.Shapes) -> torch.Tensor:
    """Each image's *type*, the analogue of a word type in Hewitt & Liang's control task:
    the combination (shape, texture, colour, quadrant of the object's centre), one of
    4 x 4 x 3 x 4 = 192 values. ``(N,)`` int64."""
    m = shapes.mask.float()[:, 0]
    coords = torch.arange(m.shape[-1], dtype=torch.float32) + 0.5
    area = m.sum((1, 2)).clamp(min=1.0)
    right = ((m * coords).sum((1, 2)) / area >= m.shape[-1] / 2).long()
    low = ((m * coords[:, None]).sum((1, 2)) / area >= m.shape[-2] / 2).long()
    kind = (shapes.shape * len(data.TEXTURES) + shapes.texture) * len(COLOURS) + colour_labels(shapes)
    return kind * 4 + low * 2 + right


def control_labels(shapes: data.Shapes, n_classes: int, seed: int = 0) -> torch.Tensor:
    """Hewitt & Liang's control task: every input type (:func:`input_types`) gets a fixed
    random label in ``0..n_classes-1`` (one table, drawn from ``seed``), the same in the
    training and the test images. A probe can only score above chance on it by
    memorising types: what the probe, not the layer, can do."""
    n_types = len(data.SHAPES) * len(data.TEXTURES) * len(COLOURS) * 4
    table = torch.randint(n_classes, (n_types,), generator=torch.Generator().manual_seed(seed))
    return table[input_types(shapes)]


def concept_labels(shapes: data.Shapes, concept: str) -> tuple[torch.Tensor, int]:
    """``(labels, n_classes)`` of ``concept`` (``"shape"``, ``"texture"`` or ``"colour"``)."""
    if concept == "shape":
        return shapes.shape, len(data.SHAPES)
    if concept == "texture":
        return shapes.texture, len(data.TEXTURES)
    if concept == "colour":
        return colour_labels(shapes), len(COLOURS)
    raise ValueError(f"`concept` must be 'shape', 'texture' or 'colour', got {concept!r}")


def probe_selectivity(
    model: nn.Module, layer: str, train: data.Shapes, test: data.Shapes, concept: str, ridge: float = 10.0
) -> tuple[float, float, float]:
    """``(accuracy, control accuracy, selectivity)`` of lesson 03's linear probe (03.3)
    for ``concept`` at ``layer``; selectivity = accuracy - control accuracy."""
    from .shape_bias import linear_probe

    y_train, k = concept_labels(train, concept)
    y_test, _ = concept_labels(test, concept)
    acc = linear_probe(model, layer, train.x, y_train, test.x, y_test, ridge=ridge)
    ctl = linear_probe(
        model, layer, train.x, control_labels(train, k), test.x, control_labels(test, k), ridge=ridge
    )
    return acc, ctl, acc - ctl


# --------------------------------------------------------------------------- helpers: TCAV


def random_images(n: int, seed: int) -> torch.Tensor:
    """``n`` shapes images with random shape, texture and colours (no tag): a random set."""
    return data.make_shapes(n, seed=seed, texture_rate=1.0).x


def texture_images(texture: int, n: int, seed: int) -> torch.Tensor:
    """``n`` images of random shapes all filled with texture ``texture`` (index into
    :data:`interp_lib.data.TEXTURES`): the concept images of a texture."""
    pool = data.make_shapes(8 * n, seed=seed, texture_rate=1.0)
    chosen = pool.x[pool.texture == texture][:n]
    if len(chosen) < n:  # pragma: no cover - 8n draws give ~2n of each texture
        raise RuntimeError(f"only {len(chosen)} images with texture {texture} among {8 * n}")
    return chosen


def with_tag(x: torch.Tensor, cls: int) -> torch.Tensor:
    """A copy of ``x`` with class ``cls``'s Clever-Hans tag pasted in the corner (as
    :func:`interp_lib.data.make_shapes` draws it)."""
    x = x.clone()
    t = data.TAG_SIZE
    pattern = data._tag_patterns(torch.full((len(x),), int(cls)), len(data.SHAPES))[:, None]
    x[:, :, 1 : 1 + t, 1 : 1 + t] = 0.05 + 0.9 * pattern.expand(-1, x.shape[1], -1, -1)
    return x


def tag_images(cls: int, n: int, seed: int) -> torch.Tensor:
    """``n`` random shapes images carrying class ``cls``'s tag: the concept images of the tag."""
    return with_tag(random_images(n, seed), cls)


def t_test(a, b) -> tuple[float, float]:
    """Student's two-sample t-test (equal variances, two-sided), ``(t, p)``, as
    ``scipy.stats.ttest_ind(a, b)``::

        sp^2 = ((na - 1) var(a) + (nb - 1) var(b)) / (na + nb - 2)     (unbiased variances)
        t    = (mean(a) - mean(b)) / (sp sqrt(1/na + 1/nb)),   p = 2 P(T_{na+nb-2} > |t|)

    Two constant samples: ``(0, 1)`` if their means agree, else ``(+-inf, 0)``."""
    from scipy import stats

    a = torch.as_tensor(a, dtype=torch.float64).flatten()
    b = torch.as_tensor(b, dtype=torch.float64).flatten()
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        raise ValueError(f"the t-test needs >= 2 values per sample, got {na} and {nb}")
    diff = (a.mean() - b.mean()).item()
    sp2 = (((na - 1) * a.var() + (nb - 1) * b.var()) / (na + nb - 2)).item()
    se = (sp2 * (1 / na + 1 / nb)) ** 0.5
    if se == 0.0 or se < 1e-12 * max(abs(diff), 1e-300):
        return (0.0, 1.0) if diff == 0.0 else (float("inf") if diff > 0 else float("-inf"), 0.0)
    t = diff / se
    return t, float(2 * stats.t.sf(abs(t), na + nb - 2))


@dataclasses.dataclass
class TCAVResult:
    """One TCAV experiment: a concept, a class and a layer, over R random sets.

    ``scores[i]`` is the TCAV score of the CAV *concept vs random set i+1*, ``null[i]`` that
    of the CAV *random set 0 vs random set i+1*; ``t``, ``p`` the two-sided t-test of
    ``scores`` against ``null``."""

    concept: str
    layer: str
    target: int
    scores: torch.Tensor
    null: torch.Tensor
    t: float
    p: float

    def significant(self, alpha: float = 0.05) -> bool:
        """Does the concept's score differ from the random CAVs' (p < alpha)?"""
        return self.p < alpha

    def verdict(self, alpha: float = 0.05) -> str:
        """ "pushes up" / "pushes down" / "not significant" (the mean score vs the null's)."""
        if not self.significant(alpha):
            return "not significant"
        return "pushes up" if self.scores.mean() > self.null.mean() else "pushes down"


def tcav(
    model: nn.Module,
    x: torch.Tensor,
    target: int,
    layer: str,
    concept: torch.Tensor,
    randoms: list[torch.Tensor],
    ridge: float = 1.0,
    name: str = "concept",
) -> TCAVResult:
    """The TCAV experiment of Kim et al. with its statistical test.

    ``randoms`` holds R + 1 random image sets. For i = 1..R: the CAV of ``concept`` vs
    ``randoms[i]`` and, as the null hypothesis, the CAV of ``randoms[0]`` vs ``randoms[i]``
    (:func:`concept_activation_vector` on :func:`layer_activations` of ``layer``); the TCAV
    scores of both (:func:`tcav_score` on ``x`` for class ``target``) and
    :func:`t_test` between the two lists."""
    if len(randoms) < 3:
        raise ValueError("`randoms` needs >= 3 sets: one for the null CAVs and >= 2 runs for the t-test")
    acts = [layer_activations(model, layer, r) for r in randoms]
    c = layer_activations(model, layer, concept)
    cavs = torch.stack([concept_activation_vector(c, a, ridge=ridge) for a in acts[1:]])
    nulls = torch.stack([concept_activation_vector(acts[0], a, ridge=ridge) for a in acts[1:]])
    both = tcav_score(model, x, target, layer, torch.cat([cavs, nulls]))
    scores, null = both[: len(cavs)], both[len(cavs) :]
    t, p = t_test(scores, null)
    return TCAVResult(name, layer, int(target), scores, null, t, p)


# --------------------------------------------------------------------------- helpers: dissection

DETECTOR_IOU = 0.04  # Bau et al.: a unit detects its best concept when that IoU exceeds 0.04


def feature_maps(model: nn.Module, layer: str, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """The output of the sub-module ``layer`` for ``x``, unflattened: ``(N, U, h, w)``
    (:func:`layer_activations` keeps the hook discipline; this restores the map shape)."""
    flat = layer_activations(model, layer, x, batch_size)
    shape = []
    handle = model.get_submodule(layer).register_forward_hook(lambda _m, _i, out: shape.append(out.shape))
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        handle.remove()
    return flat.view(len(x), *shape[0][1:])


def unit_labels(iou: torch.Tensor, names: list[str], threshold: float = DETECTOR_IOU) -> list[str | None]:
    """Each unit's concept: the name of its best concept if that IoU exceeds ``threshold``,
    else None (ties: the first concept in ``names`` order)."""
    best, k = iou.max(1)
    return [names[int(i)] if b > threshold else None for b, i in zip(best, k)]


# --------------------------------------------------------------------------- helpers: captum


def captum_ridge_classifier(ridge: float = 1.0):
    """A ``captum.concept`` ``Classifier`` whose CAVs are :func:`concept_activation_vector`
    (for the cross-check and the benchmark: captum's TCAV then differs from :func:`tcav`
    only in its own activations, layer gradients and sign counts). captum is imported
    here, so the course runs without it."""
    from captum.concept._utils.classifier import Classifier

    class RidgeCAV(Classifier):
        def __init__(self) -> None:
            self.w, self.labels = None, None

        def train_and_eval(self, dataloader, **kwargs):
            xs, ys = zip(*dataloader)
            x, y = torch.cat(xs), torch.cat(ys)
            self.labels = sorted(set(y.tolist()))
            first = y == self.labels[0]
            cav = concept_activation_vector(x[first].double(), x[~first].double(), ridge=ridge)
            self.w = torch.stack([cav, -cav]).float()  # row i points towards concept labels[i]
            return {}

        def weights(self):
            return self.w

        def classes(self):
            return self.labels

    return RidgeCAV()
