"""Lesson 11: concept activation vectors, TCAV scores and their test, network dissection,
probes with control tasks."""

import collections
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import assert_unchanged, snapshot
from torch import nn

from interp_lib import concepts as C
from interp_lib import data
from interp_lib.utils import assert_close


@pytest.fixture(scope="module")
def circles():
    test = data.make_shapes(200, seed=22, texture_rate=1.0)
    return test.x[test.y == 0][:40]


def _toy():
    """h = fc1(x) = x (2 features); logits = W2 relu(h) with W2 = [[1, -1], [0, 1]]."""
    model = nn.Sequential(
        collections.OrderedDict(
            [
                ("flatten", nn.Flatten()),
                ("fc1", nn.Linear(2, 2)),
                ("relu", nn.ReLU()),
                ("fc2", nn.Linear(2, 2)),
            ]
        )
    )
    with torch.no_grad():
        model.fc1.weight.copy_(torch.eye(2))
        model.fc1.bias.zero_()
        model.fc2.weight.copy_(torch.tensor([[1.0, -1.0], [0.0, 1.0]]))
        model.fc2.bias.zero_()
    return model.eval()


TOY_X = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0], [2.0, 0.5]]).view(5, 1, 1, 2)
TOY_CAVS = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)


# --------------------------------------------------------------------------- 11.1


@pytest.mark.exercise("11.1", weight=3)
def test_cav_worked_case():
    # concept rows (2, 0), (0, 1); random row (0, 0). Centred: mean (2/3, 1/3), targets (2/3, 2/3, -4/3);
    # Ac^T Ac = [[8/3, -2/3], [-2/3, 2/3]], Ac^T tc = (4/3, 2/3).
    concept = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    random = torch.zeros(1, 2)
    # ridge 1: (Ac^T Ac + I)^-1 (4/3, 2/3) = (3/17) (24/9, 30/9)  ~  (4, 5)
    cav = C.concept_activation_vector(concept, random, ridge=1.0)
    assert cav.dtype == torch.float64 and cav.shape == (2,)
    assert_close(cav, torch.tensor([4.0, 5.0], dtype=torch.float64) / math.sqrt(41), rtol=1e-12)
    # ridge -> 0: the least-squares direction (Ac^T Ac)^-1 (4/3, 2/3) ~ (1, 2)
    cav0 = C.concept_activation_vector(concept, random, ridge=1e-9)
    assert_close(cav0, torch.tensor([1.0, 2.0], dtype=torch.float64) / math.sqrt(5), rtol=1e-6)
    # swapping the roles points the other way
    assert_close(C.concept_activation_vector(random, concept, ridge=1.0), -cav, rtol=1e-12)


@pytest.mark.exercise("11.1", weight=2)
@pytest.mark.parametrize("d", [5, 40])
def test_cav_equals_primal_ridge(d):
    g = torch.Generator().manual_seed(d)
    concept = torch.randn(12, d, generator=g) + 1.0
    random = torch.randn(9, d, generator=g)
    before = concept.clone(), random.clone()
    cav = C.concept_activation_vector(concept, random, ridge=0.5)
    a = torch.cat([concept, random]).double()
    t = torch.cat([torch.ones(12), -torch.ones(9)]).double()
    a = a - a.mean(0)
    w = torch.linalg.solve(a.T @ a + 0.5 * torch.eye(d, dtype=torch.float64), a.T @ (t - t.mean()))
    assert_close(cav, w / w.norm(), rtol=1e-9)
    assert abs(cav.norm().item() - 1.0) < 1e-12
    assert torch.equal(concept, before[0]) and torch.equal(random, before[1])


@pytest.mark.reference
def test_cav_matches_sklearn_ridge_classifier():
    linear_model = pytest.importorskip("sklearn.linear_model")
    g = torch.Generator().manual_seed(3)
    concept, random = torch.randn(15, 30, generator=g) + 0.3, torch.randn(20, 30, generator=g)
    cav = C.concept_activation_vector(concept, random, ridge=2.0)
    x = torch.cat([concept, random]).double().numpy()
    y = np.r_[np.ones(15), np.zeros(20)]  # classes_ = [0, 1]: coef_ points towards class 1, the concept
    coef = torch.from_numpy(np.ravel(linear_model.RidgeClassifier(alpha=2.0).fit(x, y).coef_))
    assert_close(cav, coef / coef.norm(), rtol=1e-8, what="CAV vs sklearn RidgeClassifier")


def test_cav_bad_input():
    with pytest.raises(ValueError, match="random"):
        C.concept_activation_vector(torch.ones(3, 4), torch.ones(3, 5))
    with pytest.raises(TypeError, match="concept"):
        C.concept_activation_vector(torch.ones(3, 4, dtype=torch.int64), torch.ones(3, 4))
    with pytest.raises(ValueError, match="concept"):
        C.concept_activation_vector(torch.ones(3, 2, 2), torch.ones(3, 4))
    with pytest.raises(ValueError, match="ridge"):
        C.concept_activation_vector(torch.ones(3, 4), torch.zeros(3, 4), ridge=0.0)


# --------------------------------------------------------------------------- 11.2


@pytest.mark.exercise("11.2", weight=3)
def test_tcav_score_worked_case():
    model = _toy()
    # target 0: grad_h = (1[h0 > 0], -1[h1 > 0]); S > 0 for cav (1,0) on 3 of 5 images,
    # never for (0,1) (S <= 0), for (1,1) only on (1, -1)
    scores = C.tcav_score(model, TOY_X, 0, "fc1", TOY_CAVS)
    assert scores.dtype == torch.float64 and scores.shape == (3,)
    assert_close(scores, torch.tensor([0.6, 0.0, 0.2], dtype=torch.float64), rtol=1e-12)
    # target 1: grad_h = (0, 1[h1 > 0])
    assert_close(
        C.tcav_score(model, TOY_X, 1, "fc1", TOY_CAVS),
        torch.tensor([0.0, 0.6, 0.6], dtype=torch.float64),
        rtol=1e-12,
    )
    # a target per image: images 0-2 class 0, 3-4 class 1; cav (1, 1): 0, +, -, 0, + -> 2/5
    per_image = C.tcav_score(model, TOY_X, torch.tensor([0, 0, 0, 1, 1]), "fc1", TOY_CAVS[2:])
    assert_close(per_image, torch.tensor([0.4], dtype=torch.float64), rtol=1e-12)


@pytest.mark.exercise("11.2", weight=2)
def test_tcav_score_equals_forward_mode_directional_derivative(shapes_model, circles):
    """The directional derivative by forward-mode AD through the layers after `pool2`."""
    x = circles[:16]
    names = [n for n, _ in shapes_model.named_children()]
    tail = nn.Sequential(*list(shapes_model.children())[names.index("pool2") + 1 :])
    with torch.no_grad():
        h = shapes_model[: names.index("pool2") + 1](x)
    g = torch.Generator().manual_seed(0)
    cavs = torch.randn(6, h[0].numel(), generator=g, dtype=torch.float64)
    signs = []
    for v in cavs:
        _, d = torch.func.jvp(lambda z: tail(z)[:, 0], (h,), (v.float().view_as(h[0]).expand_as(h),))
        signs.append((d > 0).double().mean())
    want = torch.stack(signs)
    assert ((want > 0) & (want < 1)).any()  # not a degenerate case
    assert_close(C.tcav_score(shapes_model, x, 0, "pool2", cavs), want, rtol=1e-12)


@pytest.mark.exercise("11.2", weight=1)
def test_tcav_score_leaves_model_and_input_unchanged(shapes_model, circles):
    x = circles[:4].clone()
    before = snapshot(shapes_model)
    C.tcav_score(shapes_model, x, 0, "pool3", torch.ones(2, 512, dtype=torch.float64))
    assert_unchanged(shapes_model, before)
    assert torch.equal(x, circles[:4]) and not x.requires_grad and x.grad is None


@pytest.mark.exercise("11.2", weight=2)
def test_tcav_finds_the_texture_shortcut(shapes_model, shape_model, circles):
    """Lesson 03 seen through TCAV: stripes push 'circle' up in the texture-biased model
    (stripes always came with circles), not in the shape-biased one."""
    concept = C.texture_images(0, 30, seed=5)
    randoms = [C.random_images(30, seed=100 + i) for i in range(6)]
    biased = C.tcav(shapes_model, circles, 0, "pool2", concept, randoms, name="stripes")
    honest = C.tcav(shape_model, circles, 0, "pool2", concept, randoms, name="stripes")
    assert biased.scores.shape == biased.null.shape == (5,)
    assert biased.verdict() == "pushes up" and biased.scores.min() > 0.9 and biased.p < 1e-3
    assert honest.verdict() == "not significant"


@pytest.mark.reference
def test_tcav_matches_captum(shapes_model, circles, tmp_path):
    """captum's TCAV (its own activations, layer gradients and sign counts) with our CAVs
    as its classifier gives the same scores, to float32 rounding (1e-6)."""
    pytest.importorskip("captum")
    from captum.concept import TCAV, Concept
    from torch.utils.data import DataLoader

    concept = C.texture_images(0, 30, seed=5)
    randoms = [C.random_images(30, seed=100 + i) for i in range(4)]
    sets = [Concept(0, "stripes", DataLoader(concept, batch_size=64))]
    sets += [Concept(i + 1, f"random{i}", DataLoader(r, batch_size=64)) for i, r in enumerate(randoms)]
    pairs = [[sets[0], sets[i]] for i in range(2, 5)] + [[sets[1], sets[i]] for i in range(2, 5)]
    layers = ["pool2", "pool3", "relu4"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # captum warns about its default classifier's memory use
        out = TCAV(
            shapes_model, layers=layers, classifier=C.captum_ridge_classifier(), save_path=str(tmp_path)
        ).interpret(circles, experimental_sets=pairs, target=0)
    for layer in layers:
        theirs = torch.tensor([out[f"{a.id}-{b.id}"][layer]["sign_count"][0].item() for a, b in pairs])
        result = C.tcav(shapes_model, circles, 0, layer, concept, randoms)
        ours = torch.cat([result.scores, result.null])
        assert_close(ours, theirs.double(), rtol=1e-6, what=f"TCAV sign counts vs captum at {layer}")


def test_tcav_score_bad_input(shapes_model, circles):
    with pytest.raises(ValueError, match="layer"):
        C.tcav_score(shapes_model, circles[:2], 0, "conv9", torch.ones(1, 512))
    with pytest.raises(ValueError, match="cavs"):
        C.tcav_score(shapes_model, circles[:2], 0, "pool3", torch.ones(512))
    with pytest.raises(ValueError, match="cavs"):
        C.tcav_score(shapes_model, circles[:2], 0, "pool3", torch.ones(2, 100))
    with pytest.raises(ValueError, match="target"):
        C.tcav_score(shapes_model, circles[:2], 7, "pool3", torch.ones(1, 512))


# --------------------------------------------------------------------------- t-test


def test_t_test_worked_case_and_scipy():
    # a = (1, 2, 3), b = (2, 4, 6): sp^2 = (2*1 + 2*4)/4 = 2.5, t = -2 / sqrt(2.5 * 2/3) = -sqrt(2.4)
    t, p = C.t_test([1.0, 2.0, 3.0], [2.0, 4.0, 6.0])
    assert abs(t + math.sqrt(2.4)) < 1e-12
    stats = pytest.importorskip("scipy.stats")
    want = stats.ttest_ind([1.0, 2.0, 3.0], [2.0, 4.0, 6.0])
    assert abs(t - want.statistic) < 1e-12 and abs(p - want.pvalue) < 1e-12
    assert C.t_test([1.0, 1.0], [1.0, 1.0]) == (0.0, 1.0)
    assert C.t_test([1.0, 1.0], [0.0, 0.0]) == (math.inf, 0.0)
    with pytest.raises(ValueError, match="t-test"):
        C.t_test([1.0], [1.0, 2.0])


# --------------------------------------------------------------------------- 11.3


@pytest.mark.exercise("11.3", weight=3)
def test_unit_iou_worked_case():
    # unit 0: one hot cell (0, 1) of a 2x2 map; bilinear to 4x4 gives rows (0 .25 .75 1),
    # (0 .1875 .5625 .75), (0 .0625 .1875 .25), 0. The quantile at 1 - 1/6 of (0, 0, 0, 1) is
    # 0.5, so the unit is on in the top-right 2x2 block. Unit 1 is zero: never on.
    acts = torch.zeros(1, 2, 2, 2)
    acts[0, 0, 0, 1] = 1.0
    masks = torch.zeros(1, 4, 4, 4, dtype=torch.bool)
    masks[0, 0, :2, 2:] = True  # the top-right block
    masks[0, 1, 0, :] = True  # the top row: 2 of 4 shared, union 6
    masks[0, 2] = True  # everything: 4 / 16
    iou = C.unit_iou(acts, masks, top=1 / 6)  # masks[0, 3] empty
    assert iou.dtype == torch.float64 and iou.shape == (2, 4)
    want = torch.tensor([[1.0, 1 / 3, 0.25, 0.0], [0.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    assert_close(iou, want, rtol=1e-12)


@pytest.mark.exercise("11.3", weight=2)
def test_unit_iou_sums_over_images_and_thresholds_per_unit():
    acts = torch.zeros(2, 2, 4, 4)
    acts[:, 0, :2, :2] = 1.0  # on in the top-left 2x2 block of both images
    acts[:, 1] = 10 * acts[:, 0]  # the same unit, ten times larger: its own threshold
    masks = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
    masks[0, 0, :2, :2] = True  # image 0: exactly the block
    masks[1, 0, :2, :] = True  # image 1: the top half (intersection 4, union 8)
    iou = C.unit_iou(acts, masks, top=0.24)  # the 0.76 quantile of 24 zeros and 8 ones: 0.56
    # dataset-wide: (4 + 4) / (4 + 8) = 2/3 (a mean of per-image IoUs would say 0.75)
    assert_close(iou, torch.full((2, 1), 2 / 3, dtype=torch.float64), rtol=1e-12)


def _naive_iou(acts, masks, top):
    n, units = acts.shape[:2]
    out = torch.zeros(units, masks.shape[1], dtype=torch.float64)
    for u in range(units):
        level = float(np.quantile(acts[:, u].double().numpy(), 1 - top))
        inter = np.zeros(masks.shape[1])
        union = np.zeros(masks.shape[1])
        for i in range(n):
            up = F.interpolate(acts[i : i + 1, u : u + 1], size=masks.shape[-2:], mode="bilinear")[0, 0]
            on = (up > level).numpy()
            for k in range(masks.shape[1]):
                m = masks[i, k].numpy()
                inter[k] += (on & m).sum()
                union[k] += (on | m).sum()
        out[u] = torch.from_numpy(np.where(union > 0, inter / np.maximum(union, 1), 0.0))
    return out


@pytest.mark.exercise("11.3", weight=2)
def test_unit_iou_matches_naive_loop(shapes_model):
    shapes = data.make_shapes(24, seed=11, texture_rate=1.0, tag_rate=0.5)
    masks, _ = data.concept_masks(shapes)
    acts = C.feature_maps(shapes_model, "relu3", shapes.x)[:, :6]
    iou = C.unit_iou(acts, masks, top=0.02)
    assert_close(iou, _naive_iou(acts, masks, 0.02), rtol=1e-9)
    assert ((iou >= 0) & (iou <= 1)).all()


@pytest.mark.exercise("11.3", weight=1)
def test_dissection_counts_texture_detectors(shapes_model, shape_model):
    """The lesson's dissection: conv3 units of the texture-biased model detect textures,
    those of the shape-biased model do not (exact counts of the stored lesson)."""
    shapes = data.make_shapes(400, seed=11, texture_rate=1.0, tag_rate=0.5)
    masks, names = data.concept_masks(shapes)
    counts = {}
    for name, model in (("texture", shapes_model), ("shape", shape_model)):
        labels = C.unit_labels(C.unit_iou(C.feature_maps(model, "relu3", shapes.x), masks), names)
        counts[name] = sum(label in data.TEXTURES for label in labels)
    assert counts == {"texture": 10, "shape": 0}


def test_unit_iou_bad_input():
    acts, masks = torch.rand(2, 3, 4, 4), torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    with pytest.raises(ValueError, match="top"):
        C.unit_iou(acts, masks, top=0.0)
    with pytest.raises(TypeError, match="masks"):
        C.unit_iou(acts, masks.float())
    with pytest.raises(ValueError, match="masks"):
        C.unit_iou(acts, masks[:1])
    with pytest.raises(ValueError, match="masks"):
        C.unit_iou(acts, torch.zeros(2, 1, 2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="activations"):
        C.unit_iou(torch.rand(2, 3, 4), masks)


# --------------------------------------------------------------------------- ground truth and probes


def test_concept_masks_are_the_ground_truth():
    shapes = data.make_shapes(64, seed=3, texture_rate=1.0, tag_rate=0.5)
    masks, names = data.concept_masks(shapes)
    assert names == ["object", "background", *data.SHAPES, *data.TEXTURES, "tag"]
    obj, bg, tag = masks[:, 0], masks[:, 1], masks[:, -1]
    assert not (obj & bg).any() and not (obj & tag).any() and ((obj | bg | tag) == True).all()  # noqa: E712
    shape_masks, texture_masks = masks[:, 2:6], masks[:, 6:10]
    assert torch.equal(shape_masks.any(1), obj) and torch.equal(texture_masks.any(1), obj)
    assert torch.equal(shape_masks.flatten(2).any(2).float().argmax(1), shapes.shape)
    assert torch.equal(tag.flatten(1).any(1), shapes.tag)
    assert torch.equal(shapes[:5].mask, shapes.mask[:5])  # indexing keeps the silhouettes
    # the silhouettes are make_shapes' own: the same draws with and without tags
    untagged = data.make_shapes(64, seed=3, texture_rate=1.0)
    assert torch.equal(untagged.mask, shapes.mask) and torch.equal(untagged.x[:, :, 8:], shapes.x[:, :, 8:])


def test_control_task_is_a_function_of_the_input_type():
    shapes = data.make_shapes(300, seed=4, texture_rate=1.0)
    types, labels = C.input_types(shapes), C.control_labels(shapes, 4)
    assert types.min() >= 0 and types.max() < 192
    for t in types.unique():
        assert len(labels[types == t].unique()) == 1
    assert len(labels.unique()) == 4
    assert not torch.equal(labels, C.control_labels(shapes, 4, seed=1))
    colours = C.colour_labels(shapes)
    assert set(colours.tolist()) == {0, 1, 2}


def test_probe_selectivity_separates_the_models(shapes_model, shape_model):
    train = data.make_shapes(300, seed=41, texture_rate=1.0)  # the lesson's probe sets
    test = data.make_shapes(150, seed=42, texture_rate=1.0)
    sel = {
        (m, c): C.probe_selectivity(model, "relu4", train, test, c)[2]
        for m, model in (("texture", shapes_model), ("shape", shape_model))
        for c in ("shape", "texture")
    }
    assert sel["shape", "shape"] > 0.3 and sel["shape", "texture"] < 0.1
    assert sel["texture", "texture"] > sel["shape", "texture"] + 0.2


# --------------------------------------------------------------------------- widget


def test_dissection_explorer(shapes_model, shape_model):
    W = pytest.importorskip("ipywidgets")
    from interp_lib import plot, widgets
    from interp_lib.widgets.concepts import dissection_explorer

    shapes = data.make_shapes(40, seed=11, texture_rate=1.0, tag_rate=0.5)
    box = dissection_explorer({"texture-biased": shapes_model, "shape-biased": shape_model}, shapes)
    outs, controls, stack = [], [], [box]
    while stack:
        w = stack.pop()
        for child in getattr(w, "children", ()):
            if isinstance(child, W.Output):
                outs.append(child)
            elif isinstance(child, W.Box):
                stack.append(child)
            elif getattr(child, "description", ""):
                controls.append(child)
    (out,) = outs
    assert len({c.style.description_width for c in controls}) == 1
    for unit in (0, 5):
        next(c for c in controls if c.description == "unit").value = unit
        fig = out.figure
        assert fig.dpi >= 100 and not plot.heatmaps_without_colorbar(fig)
        import matplotlib.text

        sizes = [t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_text().strip()]
        assert sizes and min(sizes) >= widgets.MIN_FONT


@pytest.mark.exercise("11.2", weight=1)
def test_tcav_finds_the_clever_hans_tag(shape_model):
    """The lesson's tie-back (exact verdicts of the stored notebook): the tag of class k
    pushes class k up for all four classes in the Clever Hans model, for one in the honest one."""
    from interp_lib.models import load_model

    clever = load_model("shapes_cleverhans")
    images = data.make_shapes(200, seed=22, texture_rate=1.0)
    randoms = [C.random_images(30, seed=100 + i) for i in range(11)]
    verdicts = {}
    for name, model in (("clever", clever), ("honest", shape_model)):
        verdicts[name] = [
            C.tcav(
                model, images.x[images.y == k][:40], k, "pool2", C.tag_images(k, 30, seed=7), randoms
            ).verdict()
            for k in range(4)
        ]
    assert verdicts["clever"] == ["pushes up"] * 4
    assert verdicts["honest"] == ["pushes down", "not significant", "pushes up", "not significant"]
