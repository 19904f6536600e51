"""Benchmark rows for lesson 11: our TCAV experiment against captum's ``TCAV`` on the same
work (the same concept and random sets, layers and class images, and the same ridge CAVs
as captum's classifier: captum extracts the activations, saves them to disk, takes the
layer gradients and counts signs), and network dissection against its limit."""

import tempfile
import warnings

import torch

from interp_lib import concepts, data, models
from interp_lib.course.bench import Row

RUNS, IMAGES, LAYERS = 5, 40, ("pool2", "pool3")


def rows():
    model = models.load_model("shapes_texture")
    shapes = data.make_shapes(200, seed=22, texture_rate=1.0)
    x = shapes.x[shapes.y == 0][:IMAGES]
    concept = concepts.texture_images(0, 30, seed=5)
    randoms = [concepts.random_images(30, seed=100 + i) for i in range(RUNS + 1)]

    def ours():
        return [concepts.tcav(model, x, 0, layer, concept, randoms) for layer in LAYERS]

    def theirs():
        from captum.concept import TCAV, Concept
        from torch.utils.data import DataLoader

        sets = [Concept(0, "stripes", DataLoader(concept, batch_size=64))]
        sets += [Concept(i + 1, f"random{i}", DataLoader(r, batch_size=64)) for i, r in enumerate(randoms)]
        pairs = [[sets[0], s] for s in sets[2:]] + [[sets[1], s] for s in sets[2:]]
        with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tcav = TCAV(
                model, layers=list(LAYERS), classifier=concepts.captum_ridge_classifier(), save_path=tmp
            )
            return tcav.interpret(x, experimental_sets=pairs, target=0)

    probe = data.make_shapes(400, seed=11, texture_rate=1.0, tag_rate=0.5)
    masks, _ = data.concept_masks(probe)
    acts = concepts.feature_maps(model, "relu3", probe.x)

    def limit():  # the upsampling, the comparison and one pass over the masks
        up = torch.nn.functional.interpolate(acts, size=32, mode="bilinear")
        return (up > 0.5).flatten(2).double().sum(), masks.flatten(2).double().sum()

    return [
        Row(
            f"TCAV {RUNS} runs + {RUNS} null runs, 2 layers (shapes CNN, {IMAGES} images)",
            ours,
            theirs,
            against="captum TCAV (same ridge CAVs)",
            goal=1.1,
            lesson="11",
            runs=3,
        ),
        Row(
            "unit_iou relu3, 32 units x 11 concepts (400 images)",
            lambda: concepts.unit_iou(acts, masks),
            limit,
            against="limit: upsample + threshold + one pass over the masks",
            goal=3.0,
            lesson="11",
        ),
    ]
