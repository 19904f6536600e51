"""Shipped models: contract, weights, training records."""

import pytest
import torch
from torch import nn

from interp_lib import models
from interp_lib.course.train import datasets
from interp_lib.utils import accuracy


@pytest.mark.parametrize("name", [n for n in models.MODELS if models.weights_path(n).exists()])
def test_shipped_weights_reach_their_record(name):
    spec = models.MODELS[name]
    record = models.training_record(name)
    assert record["seed"] == spec.seed and record["epochs"] == spec.epochs
    model = models.load_model(name)
    assert not model.training
    _, _, x_test, y_test = datasets(spec)
    acc = accuracy(model, x_test, y_test)
    assert abs(acc - record["test_accuracy"]) <= 1.5 / len(y_test)
    assert acc >= spec.min_accuracy


def test_required_models_ship():
    for name in ("digits", "shapes_texture"):
        assert models.weights_path(name).exists()
    assert models.training_record("digits")["test_accuracy"] >= 0.97
    assert models.training_record("shapes_texture")["test_accuracy"] >= 0.97


@pytest.mark.parametrize("name", [n for n, s in models.MODELS.items() if s.arch != "shapes_vit"])
def test_model_contract(name):  # the CNNs' contract (the ViT of lesson 13: tests/test_13_transformer.py)
    model = models._ARCHS[models.MODELS[name].arch]()
    assert isinstance(model, nn.Sequential)
    kinds = (nn.Conv2d, nn.ReLU, nn.MaxPool2d, nn.Flatten, nn.Linear)
    assert all(isinstance(m, kinds) for m in model)
    relus = [m for m in model if isinstance(m, nn.ReLU)]
    assert len({id(r) for r in relus}) == len(relus) and not any(r.inplace for r in relus)
    assert all(m.bias is not None for m in model if isinstance(m, (nn.Conv2d, nn.Linear)))


def test_unknown_and_missing_models(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown model 'resnet'.*digits"):
        models.load_model("resnet")
    monkeypatch.setattr(models, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="python -m interp_lib train digits"):
        models.load_model("digits")


def test_bias_free_copy_leaves_original():
    model = models.load_model("digits")
    clone = models.bias_free_copy(model)
    assert all((m.bias == 0).all() for m in clone if hasattr(m, "bias") and m.bias is not None)
    assert any((m.bias != 0).any() for m in model if hasattr(m, "bias") and m.bias is not None)


def test_training_is_reproducible_in_a_short_run():
    """Two short trainings with the same seed give identical weights (one thread)."""
    import dataclasses

    from interp_lib.course.train import train_model

    spec = dataclasses.replace(models.MODELS["digits"], epochs=1)
    a, rec_a = train_model(spec, progress=False)
    b, rec_b = train_model(spec, progress=False)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    assert rec_a["test_accuracy"] == rec_b["test_accuracy"]


def test_torchvision_models_random_and_cached(tmp_path, monkeypatch):
    """Random-init works offline; pretrained reads torch's cache, else a clear message."""
    import torchvision

    original = torch.hub.get_dir()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.hub.set_dir(str(tmp_path / "hub"))
    try:
        with pytest.raises(FileNotFoundError, match="download=True"):
            models.torchvision_model("resnet18")
        random_model = models.torchvision_model("resnet18", pretrained=False)
        assert not random_model.training
        # put a "downloaded" file where torch's cache keeps it, and load it from there
        url = torchvision.models.get_model_weights("resnet18").DEFAULT.url
        cache = tmp_path / "hub" / "checkpoints"
        cache.mkdir(parents=True)
        torch.save(random_model.state_dict(), cache / url.rsplit("/", 1)[-1])
        loaded = models.torchvision_model("resnet18")
        for p, q in zip(loaded.parameters(), random_model.parameters()):
            assert torch.equal(p, q)
        with pytest.raises(ValueError, match="unknown torchvision model"):
            models.torchvision_model("alexnet")
    finally:
        torch.hub.set_dir(original)
