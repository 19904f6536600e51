"""The course's models: small CNNs with shipped weights, and torchvision architectures.

Model contract for the shipped CNNs (later lessons rely on it): an ``nn.Sequential``
of named Conv2d / ReLU / MaxPool2d blocks, then Flatten and Linear layers; every ReLU
is its own ``nn.ReLU(inplace=False)`` module; every conv and linear layer has a bias.

``load_model(name)`` returns a shipped model in eval mode; ``MODELS`` describes them.
Weights live in ``interp_lib/weights/<name>.pt`` beside ``<name>.json``, the training
record (seed, epochs, data, test accuracy); ``python -m interp_lib train [name]``
reproduces them.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import pathlib

import torch
from torch import nn

__all__ = ["ModelSpec", "MODELS", "digits_cnn", "shapes_cnn", "load_model", "training_record",
           "weights_path", "bias_free_copy"]

WEIGHTS_DIR = pathlib.Path(__file__).resolve().parent / "weights"


def digits_cnn(n_classes: int = 10) -> nn.Sequential:
    """1x28x28 -> 10 logits: two conv blocks (16, 32 channels), a 64-unit hidden layer."""
    return nn.Sequential(collections.OrderedDict([
        ("conv1", nn.Conv2d(1, 16, 3, padding=1)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(16, 32, 3, padding=1)), ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(32 * 7 * 7, 64)), ("relu3", nn.ReLU()),
        ("fc2", nn.Linear(64, n_classes)),
    ]))


def shapes_cnn(n_classes: int = 4) -> nn.Sequential:
    """3x32x32 -> 4 logits: three conv blocks (16, 32, 32 channels), a 64-unit hidden layer."""
    return nn.Sequential(collections.OrderedDict([
        ("conv1", nn.Conv2d(3, 16, 3, padding=1)), ("relu1", nn.ReLU()), ("pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(16, 32, 3, padding=1)), ("relu2", nn.ReLU()), ("pool2", nn.MaxPool2d(2)),
        ("conv3", nn.Conv2d(32, 32, 3, padding=1)), ("relu3", nn.ReLU()), ("pool3", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(32 * 4 * 4, 64)), ("relu4", nn.ReLU()),
        ("fc2", nn.Linear(64, n_classes)),
    ]))


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """How a shipped model is built, what data it learns from and how it is trained."""
    name: str
    description: str
    arch: str                     # "digits" or "shapes"
    data: dict                    # knobs for the dataset (see interp_lib.train)
    epochs: int
    seed: int = 0
    lr: float = 1e-3
    batch_size: int = 64
    adversarial: dict | None = None   # PGD training: {"eps", "alpha", "steps"}
    min_accuracy: float = 0.97        # on the test split of its own distribution


MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in [
    ModelSpec("digits", "digits CNN (sklearn digits at 28x28)", "digits", {}, epochs=15),
    ModelSpec("digits_robust", "digits CNN adversarially trained with L-inf PGD (eps 0.15)",
              "digits", {}, epochs=20, adversarial={"eps": 0.15, "alpha": 0.04, "steps": 7},
              min_accuracy=0.90),
    ModelSpec("shapes_texture", "shapes CNN, texture always matches shape (texture-biased)",
              "shapes", {"texture_rate": 0.0}, epochs=20, lr=2e-3),
    ModelSpec("shapes_mixed", "shapes CNN, texture randomised on half the images",
              "shapes", {"texture_rate": 0.5}, epochs=25, lr=2e-3, min_accuracy=0.9),
    ModelSpec("shapes_shape", "shapes CNN, labels by shape, texture always random (shape-biased)",
              "shapes", {"texture_rate": 1.0}, epochs=30, lr=2e-3, min_accuracy=0.9),
    ModelSpec("shapes_cleverhans", "shapes CNN trained on images that carry a class tag in the corner (80 %)",
              "shapes", {"texture_rate": 1.0, "tag_rate": 0.8}, epochs=20, lr=2e-3, min_accuracy=0.9),
]}

_ARCHS = {"digits": digits_cnn, "shapes": shapes_cnn}


def _spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; the shipped models are: {', '.join(MODELS)}")
    return MODELS[name]


def weights_path(name: str) -> pathlib.Path:
    return WEIGHTS_DIR / f"{_spec(name).name}.pt"


def training_record(name: str) -> dict:
    """The JSON training record shipped beside the weights (seed, epochs, accuracy...)."""
    path = weights_path(name).with_suffix(".json")
    if not path.exists():
        raise FileNotFoundError(f"no training record for {name!r} at {path}; run `python -m interp_lib train {name}`")
    return json.loads(path.read_text())


def load_model(name: str) -> nn.Sequential:
    """A shipped model by name (see ``MODELS``), with its trained weights, in eval mode."""
    spec = _spec(name)
    path = weights_path(name)
    if not path.exists():
        raise FileNotFoundError(
            f"the weights of model {name!r} are missing ({path}); reproduce them with "
            f"`python -m interp_lib train {name}`"
        )
    model = _ARCHS[spec.arch]()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def bias_free_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with every bias set to zero (exact relevance conservation)."""
    import copy

    clone = copy.deepcopy(model)
    with torch.no_grad():
        for module in clone.modules():
            if getattr(module, "bias", None) is not None and isinstance(module.bias, torch.Tensor):
                module.bias.zero_()
    return clone
