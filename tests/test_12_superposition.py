"""Lesson 12: toy models of superposition, sparse autoencoders, mean max cosine similarity.

No reference library exists for these: the tests pin worked cases computed by hand, an
independent loop implementation, and the paper's known results (the phase change with
sparsity, antipodal pairs, the pentagon; an SAE recovering known features).
"""

import math

import pytest
import torch

from interp_lib import superposition as S

# --------------------------------------------------------------------------- 12.1 toy_loss


def _loop_toy_loss(W, b, x, importance):
    """The toy model written out with Python loops (an independent reference)."""
    n_models, m, n = W.shape
    importance = importance.expand(n_models, n)
    out = []
    for i in range(n_models):
        total = 0.0
        for s in range(x.shape[0]):
            h = [sum(W[i, r, j] * x[s, i, j] for j in range(n)) for r in range(m)]
            for j in range(n):
                pre = sum(W[i, r, j] * h[r] for r in range(m)) + b[i, j]
                total = total + importance[i, j] * (x[s, i, j] - torch.relu(pre)) ** 2
        out.append(total / (x.shape[0] * n))
    return torch.stack(out)


@pytest.mark.exercise("12.1", weight=2)
def test_toy_loss_worked_case_by_hand():
    # W = [1, -1] (m = 1, n = 2), b = [0.1, 0.2], importance [1, 0.5]
    # sample 1: x = (1, 0.5): h = 0.5, W^T h + b = (0.6, -0.3) -> ReLU (0.6, 0);
    #   weighted errors 1 * 0.4^2 = 0.16, 0.5 * 0.5^2 = 0.125 -> mean 0.1425
    # sample 2: x = (0, 2): h = -2, W^T h + b = (-1.9, 2.2) -> (0, 2.2); errors 0, 0.5 * 0.04 -> mean 0.01
    W = torch.tensor([[[1.0, -1.0]]])
    b = torch.tensor([[0.1, 0.2]])
    x = torch.tensor([[[1.0, 0.5]], [[0.0, 2.0]]])
    loss = S.toy_loss(W, b, x, torch.tensor([1.0, 0.5]))
    assert loss.shape == (1,)
    assert abs(loss.item() - (0.1425 + 0.01) / 2) < 1e-6


@pytest.mark.exercise("12.1", weight=2)
def test_toy_loss_matches_a_loop_with_per_model_importance_and_gradients():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(3, 2, 4, generator=g, requires_grad=True)
    b = torch.randn(3, 4, generator=g, requires_grad=True)
    x = S.sparse_features(5, torch.tensor([1.0, 0.5, 0.2]), 4, g)
    importance = torch.rand(3, 4, generator=g)
    loss = S.toy_loss(W, b, x, importance)
    expected = _loop_toy_loss(W, b, x, importance)
    assert loss.shape == (3,)
    assert torch.allclose(loss, expected, atol=1e-6)
    grads = torch.autograd.grad(loss.sum(), (W, b))
    want = torch.autograd.grad(expected.sum(), (W, b))
    for got, ref in zip(grads, want):
        assert torch.allclose(got, ref, atol=1e-5), "gradients differ from the loop's"
    # a shared (n,) importance is the same as that row repeated for every model
    shared = S.toy_loss(W, b, x, importance[0])
    assert torch.allclose(shared, S.toy_loss(W, b, x, importance[0].expand(3, 4).clone()))


@pytest.mark.exercise("12.1", weight=1)
def test_toy_models_do_not_interact():
    g = torch.Generator().manual_seed(1)
    W, b = torch.randn(2, 2, 3, generator=g), torch.randn(2, 3, generator=g)
    x = torch.rand(6, 2, 3, generator=g)
    other = x.clone()
    other[:, 1] = torch.rand(6, 3, generator=g)
    one = S.toy_loss(W, b, x, torch.ones(3))
    two = S.toy_loss(W, b, other, torch.ones(3))
    assert one[0] == two[0] and one[1] != two[1]


@pytest.fixture(scope="module")
def five_in_two():
    """The paper's n = 5, m = 2 models, importance 0.9^j, at four densities."""
    return S.train_toy_models(5, 2, [1.0, 0.3, 0.1, 0.03], 0.9 ** torch.arange(5.0))


@pytest.fixture(scope="module")
def two_in_one():
    """n = 2 features in m = 1 dimension, importance (1, 0.9), dense and sparse."""
    return S.train_toy_models(2, 1, [1.0, 0.1], torch.tensor([1.0, 0.9]))


@pytest.mark.exercise("12.1", weight=3)
def test_phase_change_dense_features_get_dedicated_dimensions(five_in_two):
    W = five_in_two.W[0]  # density 1
    rep = S.represented(W[None])[0]
    assert rep.tolist() == [True, True, False, False, False], "the two most important features, only"
    assert (S.superposition(W[None])[0][rep] < 0.1).all(), "dedicated, orthogonal dimensions"
    assert abs(S.dimensions_per_feature(W[None]).item() - 1.0) < 0.1


@pytest.mark.exercise("12.1", weight=3)
def test_phase_change_sparse_features_share_dimensions(five_in_two):
    rep = S.represented(five_in_two.W).sum(1)
    assert rep.tolist()[1:] == [4, 5, 5], "more features than dimensions when sparse"
    assert len(S.antipodal_pairs(five_in_two.W[1:2])[0]) == 2, "density 0.3: two antipodal pairs"
    assert S.regular_polygon(five_in_two.W[2:]).all(), "densities 0.1 and 0.03: the pentagon"
    assert (S.dimensions_per_feature(five_in_two.W[2:]) < 0.45).all()
    assert S.geometry(five_in_two.W) == [
        "2 of 5 represented, no superposition",
        "4 of 5 represented, 2 antipodal pairs",
        "5 of 5 represented, regular 5-gon (pentagon)",
        "5 of 5 represented, regular 5-gon (pentagon)",
    ]


@pytest.mark.exercise("12.1", weight=2)
def test_two_features_in_one_dimension_become_an_antipodal_pair(two_in_one):
    dense, sparse = two_in_one.W
    assert S.represented(dense[None])[0].tolist() == [True, False], "dense: the more important one only"
    assert S.antipodal_pairs(sparse[None]) == [[(0, 1)]], "sparse: both, in opposite directions"
    assert S.two_feature_phase(two_in_one.W).tolist() == [0, 2]


# --------------------------------------------------------------------------- 12.2 sae_loss


def _worked_sae():
    acts = torch.tensor([[1.0, 2.0]])
    W_enc = torch.eye(2)
    b_enc = torch.tensor([0.0, -1.0])
    W_dec = torch.tensor([[2.0, 0.0], [0.0, 3.0]])  # rows normalise to the identity
    b_dec = torch.tensor([0.5, 0.0])
    return acts, W_enc, b_enc, W_dec, b_dec


@pytest.mark.exercise("12.2", weight=3)
def test_sae_loss_worked_case_by_hand():
    # acts - b_dec = (0.5, 2); f = ReLU((0.5, 2) + (0, -1)) = (0.5, 1); D = I;
    # x_hat = (0.5, 1) + (0.5, 0) = (1, 1); squared error 0 + 1 = 1; L1 = 1.5
    loss, f, x_hat = S.sae_loss(*_worked_sae(), l1=0.1)
    assert torch.allclose(f, torch.tensor([[0.5, 1.0]]))
    assert torch.allclose(x_hat, torch.tensor([[1.0, 1.0]]))
    assert loss.dim() == 0 and abs(loss.item() - 1.15) < 1e-6
    assert abs(S.sae_loss(*_worked_sae()).__getitem__(0).item() - 1.0) < 1e-6, "l1 = 0: the error only"


@pytest.mark.exercise("12.2", weight=2)
def test_sae_loss_averages_rows_and_sums_dimensions():
    g = torch.Generator().manual_seed(0)
    acts = torch.randn(6, 3, generator=g)
    params = (torch.randn(3, 5, generator=g), torch.randn(5, generator=g), torch.randn(5, 3, generator=g))
    b_dec = torch.randn(3, generator=g)
    loss, f, x_hat = S.sae_loss(acts, *params, b_dec, l1=0.3)
    rows = [S.sae_loss(acts[i : i + 1], *params, b_dec, l1=0.3)[0] for i in range(6)]
    assert torch.allclose(loss, torch.stack(rows).mean(), atol=1e-6)
    D = params[2] / params[2].norm(dim=1, keepdim=True)
    by_hand = torch.relu((acts - b_dec) @ params[0] + params[1])
    assert torch.allclose(f, by_hand, atol=1e-6) and torch.allclose(x_hat, by_hand @ D + b_dec, atol=1e-6)
    want = ((acts - x_hat) ** 2).sum(1).mean() + 0.3 * by_hand.abs().sum(1).mean()
    assert torch.allclose(loss, want, atol=1e-6)


@pytest.mark.exercise("12.2", weight=2)
def test_sae_decoder_norm_is_a_parameterisation():
    g = torch.Generator().manual_seed(2)
    acts = torch.randn(8, 4, generator=g)
    W_enc, b_enc = torch.randn(4, 6, generator=g), torch.randn(6, generator=g)
    W_dec = torch.randn(6, 4, generator=g).requires_grad_()
    b_dec = torch.randn(4, generator=g)
    loss, _, x_hat = S.sae_loss(acts, W_enc, b_enc, W_dec, b_dec, l1=0.05)
    scaled = S.sae_loss(
        acts, W_enc, b_enc, W_dec.detach() * torch.rand(6, 1, generator=g).add(0.5), b_dec, 0.05
    )
    assert torch.allclose(x_hat, scaled[2], atol=1e-5), "rescaling decoder rows must not change anything"
    (grad,) = torch.autograd.grad(loss, W_dec)
    radial = (grad * W_dec.detach()).sum(1)
    assert radial.abs().max() < 1e-5 * max(1.0, grad.abs().max().item()), (
        "the gradient must not change the rows' lengths (normalise inside the forward pass, not detached)"
    )
    assert grad.abs().max() > 1e-3


def _pentagon():
    """The columns of the trained n = 5, m = 2 model at density 0.1: a regular pentagon."""
    angles = torch.arange(5) * 2 * math.pi / 5
    return torch.stack([torch.cos(angles), torch.sin(angles)])


@pytest.fixture(scope="module")
def pentagon_sae():
    """An SAE with 10 latents on the hidden layer of a pentagon toy model (features at density 0.1)."""
    W = 1.1 * _pentagon()
    x = S.sparse_features(4096, torch.tensor([0.1]), 5, torch.Generator().manual_seed(1))[:, 0]
    h = x @ W.T
    return W, h, S.train_sae(h, 10, 0.1, steps=400, lr=1e-2)


@pytest.mark.exercise("12.2", weight=3)
def test_sae_recovers_the_toy_models_features(pentagon_sae):
    W, h, sae = pentagon_sae
    best = S.mmcs(sae.directions, W.T, per_feature=True)
    assert (best > 0.95).all(), f"every pentagon direction has a latent (cosines {best.tolist()})"
    _, f, x_hat = sae(h, 0.1)
    assert S.fraction_unexplained(h, x_hat) < 0.05


@pytest.mark.exercise("12.2", weight=3)
def test_sae_recovers_known_synthetic_features():
    G, X = S.synthetic_data()
    sae = S.train_sae(X, 64, 0.1, steps=500, lr=1e-2)
    best = S.mmcs(sae.directions, G, per_feature=True)
    assert best.mean() > 0.95 and (best > 0.9).sum() >= 30, f"MMCS {best.mean():.3f}"
    _, f, x_hat = sae(X, 0.1)
    assert S.fraction_unexplained(X, x_hat) < 0.1
    assert (f > 0).float().sum(1).mean() < 16, "sparse: fewer active latents than dimensions"


# --------------------------------------------------------------------------- 12.3 mmcs


@pytest.mark.exercise("12.3", weight=3)
def test_mmcs_worked_case_by_hand():
    learned = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    true = torch.tensor([[3.0, 0.0], [1.0, 1.0], [0.0, -1.0]])
    # g0: cosines (1, 0, 0.71) -> 1; g1: (0.71, 0.71, 1) -> 1; g2: (0, -1, -0.71) -> 0
    best = S.mmcs(learned, true, per_feature=True)
    assert torch.allclose(best, torch.tensor([1.0, 1.0, 0.0]), atol=1e-6)
    assert abs(S.mmcs(learned, true).item() - 2 / 3) < 1e-6
    # the other way round: the learned (1, 1) is closest to true (1, 1): 1; (1, 0): 1; (0, 2): 1/sqrt2
    assert abs(S.mmcs(true, learned).item() - (2 + 1 / math.sqrt(2)) / 3) < 1e-6


@pytest.mark.exercise("12.3", weight=2)
def test_mmcs_ignores_order_lengths_and_extra_directions():
    g = torch.Generator().manual_seed(0)
    true = torch.randn(5, 8, generator=g)
    learned = torch.cat([true[[3, 1, 4, 0, 2]] * torch.rand(5, 1, generator=g).add(0.1), torch.randn(7, 8)])
    assert abs(S.mmcs(learned, true).item() - 1.0) < 1e-5
    noise = torch.randn(12, 8, generator=g)
    value = S.mmcs(noise, true)
    cos = torch.nn.functional.cosine_similarity(true[:, None], noise[None], dim=-1)
    assert abs(value.item() - cos.max(1).values.mean().item()) < 1e-5


@pytest.mark.exercise("12.3", weight=1)
def test_mmcs_zero_vectors_and_no_graph():
    learned = torch.tensor([[0.0, 0.0], [1.0, 0.0]], requires_grad=True)
    best = S.mmcs(learned, torch.tensor([[0.0, 1.0], [2.0, 0.0]]), per_feature=True)
    assert torch.isfinite(best).all() and torch.allclose(best, torch.tensor([0.0, 1.0]))
    assert not best.requires_grad


# --------------------------------------------------------------------------- helpers (not exercises)


def test_superposition_and_geometry_of_hand_made_models():
    pentagon = _pentagon()
    dedicated = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    pair = torch.tensor([[1.0, -1.0, 0.0], [0.0, 0.0, 0.0]])
    assert S.regular_polygon(pentagon[None]).item() and not S.regular_polygon(dedicated[None]).item()
    assert abs(S.dimensions_per_feature(pentagon[None]).item() - 0.4) < 1e-6
    # pentagon: each column interferes with 4 others at cos 72 and 144 degrees, twice each
    want = 2 * math.cos(2 * math.pi / 5) ** 2 + 2 * math.cos(4 * math.pi / 5) ** 2
    assert torch.allclose(S.superposition(pentagon[None]), torch.full((1, 5), want), atol=1e-6)
    assert torch.allclose(S.superposition(dedicated[None]), torch.zeros(1, 3))
    assert S.antipodal_pairs(pair[None]) == [[(0, 1)]]
    assert S.geometry(torch.stack([dedicated, pair])) == [
        "2 of 3 represented, no superposition",
        "2 of 3 represented, 1 antipodal pair",
    ]
    assert S.geometry(pentagon[None]) == ["5 of 5 represented, regular 5-gon (pentagon)"]


def test_two_feature_phase_labels():
    W = torch.tensor([[[1.0, 0.1]], [[0.0, 1.0]], [[1.0, -1.0]], [[0.1, 0.1]]])
    assert S.two_feature_phase(W).tolist() == [0, 1, 2, -1]
    with pytest.raises(ValueError, match="W"):
        S.two_feature_phase(torch.zeros(1, 2, 2))


def test_sparse_features_density_and_draw_order():
    g = torch.Generator().manual_seed(0)
    x = S.sparse_features(20000, torch.tensor([1.0, 0.1]), 3, g)
    assert x.shape == (20000, 2, 3) and (x[:, 0] > 0).all()
    assert abs((x[:, 1] > 0).float().mean().item() - 0.1) < 0.01
    g = torch.Generator().manual_seed(0)
    values, mask = torch.rand(4, 2, 3, generator=g), torch.rand(4, 2, 3, generator=g)
    again = S.sparse_features(4, torch.tensor([1.0, 0.5]), 3, torch.Generator().manual_seed(0))
    assert torch.equal(again, values * (mask < torch.tensor([1.0, 0.5])[:, None]))


def test_synthetic_data_is_sparse_combinations_of_unit_features():
    G, X = S.synthetic_data(n_true=8, d=4, n_samples=1000, active=2.0, seed=3)
    assert G.shape == (8, 4) and X.shape == (1000, 4)
    assert torch.allclose(G.norm(dim=1), torch.ones(8))
    coeffs = torch.linalg.lstsq(G.T, X.T).solution  # any solution reproduces X
    assert torch.allclose(coeffs.T @ G, X, atol=1e-4)


def test_dead_latents_and_fraction_unexplained():
    f = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
    assert S.dead_latents(f).tolist() == [True, False, False]
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    assert S.fraction_unexplained(x, x) == 0.0
    assert abs(S.fraction_unexplained(x, torch.zeros(2, 2)) - 1.0) < 1e-6


def test_concept_purity_worked_case():
    # unit 0 fires for shape 1 of either texture: pure (shape); unit 1 for texture 0 of any shape;
    # unit 2 fires on two images of different shapes and textures: 0.5
    shape = torch.tensor([1, 1, 0, 2, 3, 0])
    texture = torch.tensor([0, 1, 0, 0, 1, 1])
    acts = torch.tensor(
        [[5.0, 3, 0], [4, 0, 0], [0, 2, 1], [0, 1, 0], [0, 0, 2], [0, 0, 0]]
    )  # (6 images, 3 units)
    p = S.concept_purity(acts, {"shape": shape, "texture": texture}, k=2)
    assert torch.allclose(p.purity, torch.tensor([1.0, 1.0, 0.5]))
    assert p.concept[:2] == ["shape", "texture"] and p.value[:2] == [1, 0]
    assert p.alive.tolist() == [True, True, True]
    assert S.concept_purity(acts, {"shape": shape}, k=3).alive.tolist() == [False, True, False]


def test_sae_call_and_training_are_deterministic():
    G, X = S.synthetic_data(n_true=6, d=4, n_samples=256)
    a = S.train_sae(X, 8, 0.1, steps=20)
    b = S.train_sae(X, 8, 0.1, steps=20)
    assert torch.equal(a.W_dec, b.W_dec)
    assert torch.allclose(a.directions.norm(dim=1), torch.ones(8))
    loss, f, x_hat = a(X, 0.1)
    assert not loss.requires_grad and f.shape == (256, 8) and x_hat.shape == X.shape


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: S.toy_loss(torch.zeros(2, 5), torch.zeros(1, 5), torch.zeros(3, 1, 5), torch.ones(5)), "W"),
        (
            lambda: S.toy_loss(torch.zeros(1, 2, 5), torch.zeros(1, 4), torch.zeros(3, 1, 5), torch.ones(5)),
            "b",
        ),
        (
            lambda: S.toy_loss(torch.zeros(1, 2, 5), torch.zeros(1, 5), torch.zeros(3, 2, 5), torch.ones(5)),
            "features",
        ),
        (
            lambda: S.toy_loss(torch.zeros(1, 2, 5), torch.zeros(1, 5), torch.zeros(3, 1, 5), -torch.ones(5)),
            "importance",
        ),
        (lambda: S.sae_loss(torch.zeros(4), *_worked_sae()[1:]), "acts"),
        (lambda: S.sae_loss(torch.zeros(1, 3), *_worked_sae()[1:]), "W_enc"),
        (lambda: S.sae_loss(*_worked_sae()[:3], torch.zeros(3, 2), _worked_sae()[4]), "W_dec"),
        (lambda: S.sae_loss(*_worked_sae(), l1=-1.0), "l1"),
        (lambda: S.mmcs(torch.zeros(3, 2), torch.zeros(3, 4)), "true"),
        (lambda: S.mmcs(torch.zeros(3, 2, dtype=torch.long), torch.zeros(3, 2)), "learned"),
    ],
)
def test_bad_input_is_refused_with_the_argument_named(call, match):
    with pytest.raises((TypeError, ValueError), match=match):
        call()


def test_toy_explorer_draws_and_stays_silent(capsys):
    W_ = pytest.importorskip("ipywidgets")
    import matplotlib.text

    from interp_lib import plot, widgets
    from interp_lib.widgets.superposition import toy_explorer

    def _check_figure(box):
        fig = box.children[-1].figure
        assert fig.dpi >= widgets.DPI and box.children[-1].outputs, "drawn into the Output widget"
        texts = [t for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip()]
        assert texts and min(t.get_fontsize() for t in texts) >= widgets.MIN_FONT
        assert not plot.heatmaps_without_colorbar(fig), "a heatmap without its colour bar"

    pentagon = _pentagon()
    dedicated = torch.zeros(2, 5)
    dedicated[0, 0] = dedicated[1, 1] = 1.0
    models = S.ToyModels(
        torch.stack([dedicated, pentagon]),
        torch.zeros(2, 5),
        torch.tensor([1.0, 0.1]),
        torch.ones(2, 5),
        torch.zeros(2),
    )
    box = toy_explorer(models)
    _check_figure(box)
    (slider,) = [c for c in box.children if isinstance(c, W_.SelectionSlider)]
    first = box.children[-1].figure
    slider.value = 1
    _check_figure(box)
    assert box.children[-1].figure is not first
    assert "pentagon" in box.children[-1].figure._suptitle.get_text()
    assert capsys.readouterr().out == ""
