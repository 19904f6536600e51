"""The course's models: small CNNs with shipped weights (and one deeper VGG-like one,
``scenes_deep``, where depth matters), and torchvision architectures.

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

__all__ = [
    "ModelSpec",
    "MODELS",
    "digits_cnn",
    "shapes_cnn",
    "scenes_vgg",
    "load_model",
    "training_record",
    "weights_path",
    "bias_free_copy",
    "VisionTransformer",
    "shapes_vit",
]

WEIGHTS_DIR = pathlib.Path(__file__).resolve().parent / "weights"


def digits_cnn(n_classes: int = 10) -> nn.Sequential:
    """1x28x28 -> 10 logits: two conv blocks (16, 32 channels), a 64-unit hidden layer."""
    return nn.Sequential(
        collections.OrderedDict(
            [
                ("conv1", nn.Conv2d(1, 16, 3, padding=1)),
                ("relu1", nn.ReLU()),
                ("pool1", nn.MaxPool2d(2)),
                ("conv2", nn.Conv2d(16, 32, 3, padding=1)),
                ("relu2", nn.ReLU()),
                ("pool2", nn.MaxPool2d(2)),
                ("flatten", nn.Flatten()),
                ("fc1", nn.Linear(32 * 7 * 7, 64)),
                ("relu3", nn.ReLU()),
                ("fc2", nn.Linear(64, n_classes)),
            ]
        )
    )


def shapes_cnn(n_classes: int = 4) -> nn.Sequential:
    """3x32x32 -> 4 logits: three conv blocks (16, 32, 32 channels), a 64-unit hidden layer."""
    return nn.Sequential(
        collections.OrderedDict(
            [
                ("conv1", nn.Conv2d(3, 16, 3, padding=1)),
                ("relu1", nn.ReLU()),
                ("pool1", nn.MaxPool2d(2)),
                ("conv2", nn.Conv2d(16, 32, 3, padding=1)),
                ("relu2", nn.ReLU()),
                ("pool2", nn.MaxPool2d(2)),
                ("conv3", nn.Conv2d(32, 32, 3, padding=1)),
                ("relu3", nn.ReLU()),
                ("pool3", nn.MaxPool2d(2)),
                ("flatten", nn.Flatten()),
                ("fc1", nn.Linear(32 * 4 * 4, 64)),
                ("relu4", nn.ReLU()),
                ("fc2", nn.Linear(64, n_classes)),
            ]
        )
    )


def scenes_vgg(n_classes: int = 4) -> nn.Sequential:
    """3x64x64 -> 4 logits, VGG-like: seven 3x3 conv layers with ReLUs in four max-pooled
    blocks (8 | 16, 16 | 32, 32 | 32, 32 channels), a 64-unit hidden layer (69,188
    parameters). The course's deeper model, for :func:`interp_lib.data.make_scenes`.
    Conv and linear weights start He-normal (fan-in, ReLU gain), biases at zero: with
    torch's default initialisation the signal shrinks layer by layer and a plain stack
    this deep (no batch norm) hardly starts to learn."""
    layers, c_in, k = [], 3, 0
    for block, widths in enumerate(((8,), (16, 16), (32, 32), (32, 32)), start=1):
        for width in widths:
            k += 1
            layers += [(f"conv{k}", nn.Conv2d(c_in, width, 3, padding=1)), (f"relu{k}", nn.ReLU())]
            c_in = width
        layers.append((f"pool{block}", nn.MaxPool2d(2)))
    layers += [
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(c_in * 4 * 4, 64)),
        (f"relu{k + 1}", nn.ReLU()),
        ("fc2", nn.Linear(64, n_classes)),
    ]
    model = nn.Sequential(collections.OrderedDict(layers))
    for m in model:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return model


# --------------------------------------------------------------------------- vision transformer
# Lesson 13. Not the CNN contract above: a pre-LN ViT (Dosovitskiy et al. 2021) whose every
# step that an explanation method reads or changes is its own module: the softmax (hooks
# read the attention), the two matrix products (``MatMul``), the LayerNorms, the GELU.


class MatMul(nn.Module):
    """``a @ b`` as a module, so that a forward hook can change how relevance crosses it."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a @ b


class Attention(nn.Module):
    """Multi-head self-attention with explicit q, k, v, softmax and output projection:
    ``A = softmax(q k^T / sqrt(d))`` (N, heads, T, T), ``out = proj(A v)``."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.qk, self.softmax, self.av = MatMul(), nn.Softmax(dim=-1), MatMul()
        self.proj = nn.Linear(dim, dim)

    def _split(self, t: torch.Tensor) -> torch.Tensor:  # (N, T, D) -> (N, heads, T, D / heads)
        return t.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.q(h) * self.scale), self._split(self.k(h)), self._split(self.v(h))
        attn = self.softmax(self.qk(q, k.transpose(-1, -2)))
        return self.proj(self.av(attn, v).transpose(1, 2).flatten(2))


class Block(nn.Module):
    """A pre-LN transformer block: ``h + attn(norm1(h))``, then ``h + mlp(norm2(h))``."""

    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            collections.OrderedDict(
                [("fc1", nn.Linear(dim, hidden)), ("act", nn.GELU()), ("fc2", nn.Linear(hidden, dim))]
            )
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = h + self.attn(self.norm1(h))
        return h + self.mlp(self.norm2(h))


class VisionTransformer(nn.Module):
    """Image ``(N, C, H, W)`` -> logits: ``patch x patch`` patches embedded by a strided
    convolution, a CLS token in front, learned position embeddings, ``depth`` pre-LN
    blocks, a final LayerNorm and a linear head on the CLS token.

    ``embed(x)`` gives the patch tokens ``(N, P, dim)`` (row-major patches) and
    ``forward_tokens(tokens)`` the rest, so ``forward(x) == forward_tokens(embed(x))``.
    Token 0 is CLS, token ``1 + p`` patch ``p``.
    """

    def __init__(
        self,
        image_size: int = 32,
        patch: int = 4,
        channels: int = 3,
        dim: int = 32,
        depth: int = 3,
        heads: int = 4,
        hidden: int = 64,
        n_classes: int = 4,
    ) -> None:
        super().__init__()
        self.patch, self.grid = patch, image_size // patch
        self.patch_embed = nn.Conv2d(channels, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(0.02 * torch.randn(1, 1, dim))
        self.pos_embed = nn.Parameter(0.02 * torch.randn(1, 1 + self.grid**2, dim))
        self.blocks = nn.Sequential(*[Block(dim, heads, hidden) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.patch_embed(x).flatten(2).transpose(1, 2)

    def forward_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)  # (not len(): torch.fx traces it)
        h = torch.cat([cls, tokens], 1) + self.pos_embed
        return self.head(self.norm(self.blocks(h))[:, 0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_tokens(self.embed(x))


def shapes_vit(n_classes: int = 4) -> VisionTransformer:
    """3x32x32 -> 4 logits: 4x4 patches (an 8x8 grid), width 32, 3 blocks of 4 heads."""
    return VisionTransformer(n_classes=n_classes)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """How a shipped model is built, what data it learns from and how it is trained."""

    name: str
    description: str
    arch: str  # a key of _ARCHS: "digits", "shapes", "scenes", "shapes_vit"
    data: dict  # knobs for the dataset (see interp_lib.course.train)
    epochs: int
    seed: int = 0
    lr: float = 1e-3
    batch_size: int = 64
    adversarial: dict | None = None  # PGD training: {"eps", "alpha", "steps", optional "random_start"}
    augment: bool = False  # a random flip / quarter turn per batch (labels must not change)
    min_accuracy: float = 0.97  # on the test split of its own distribution


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in [
        ModelSpec("digits", "digits CNN (sklearn digits at 28x28)", "digits", {}, epochs=15),
        ModelSpec(
            "digits_robust",
            "digits CNN adversarially trained with L-inf PGD (eps 0.15)",
            "digits",
            {},
            epochs=20,
            adversarial={"eps": 0.15, "alpha": 0.04, "steps": 7},
            min_accuracy=0.90,
        ),
        # lesson 02's pitfall, catastrophic overfitting (Wong, Rice & Kolter 2020): FGSM
        # training = PGD with one step; without a random start at a large step it collapses
        ModelSpec(
            "digits_fgsm",
            "digits CNN trained with L-inf FGSM (eps 0.2, no random start): catastrophic overfitting",
            "digits",
            {},
            epochs=10,
            adversarial={"eps": 0.2, "alpha": 0.2, "steps": 1, "random_start": False},
            min_accuracy=0.85,
        ),
        ModelSpec(
            "digits_fgsm_rs",
            "digits CNN trained with L-inf FGSM from a random start (eps 0.2, step 0.25; Wong et al.)",
            "digits",
            {},
            epochs=10,
            adversarial={"eps": 0.2, "alpha": 0.25, "steps": 1, "random_start": True},
            min_accuracy=0.85,
        ),
        ModelSpec(
            "shapes_texture",
            "shapes CNN, texture always matches shape (texture-biased)",
            "shapes",
            {"texture_rate": 0.0},
            epochs=20,
            lr=2e-3,
        ),
        ModelSpec(
            "shapes_mixed",
            "shapes CNN, texture randomised on half the images",
            "shapes",
            {"texture_rate": 0.5},
            epochs=25,
            lr=2e-3,
            min_accuracy=0.9,
        ),
        ModelSpec(
            "shapes_shape",
            "shapes CNN, labels by shape, texture always random (shape-biased)",
            "shapes",
            {"texture_rate": 1.0},
            epochs=30,
            lr=2e-3,
            min_accuracy=0.9,
        ),
        ModelSpec(
            "shapes_cleverhans",
            "shapes CNN trained on images that carry a class tag in the corner (80 %)",
            "shapes",
            {"texture_rate": 1.0, "tag_rate": 0.8},
            epochs=20,
            lr=2e-3,
            min_accuracy=0.9,
        ),
        ModelSpec(
            "scenes_deep",
            "VGG-like CNN (7 conv layers) on 64x64 scenes: the largest object's shape is the label",
            "scenes",
            {},
            epochs=30,
            augment=True,
            min_accuracy=0.75,
        ),
        ModelSpec(
            "shapes_vit_cleverhans",
            "tiny vision transformer on the Clever Hans shapes (class tag in the corner, 80 %)",
            "shapes_vit",
            {"texture_rate": 1.0, "tag_rate": 0.8},
            epochs=15,
            lr=2e-3,
            min_accuracy=0.85,
        ),
        ModelSpec(
            "capstone",
            "shapes CNN for the capstone audit (lesson 14); labels by shape, texture random",
            "shapes",
            {"texture_rate": 1.0},
            epochs=25,
            lr=2e-3,
            min_accuracy=0.8,
        ),
    ]
}

_ARCHS = {"digits": digits_cnn, "shapes": shapes_cnn, "scenes": scenes_vgg, "shapes_vit": shapes_vit}


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
        raise FileNotFoundError(
            f"no training record for {name!r} at {path}; run `python -m interp_lib train {name}`"
        )
    return json.loads(path.read_text())


def load_model(name: str) -> nn.Module:
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


# --------------------------------------------------------------------------- torchvision

TORCHVISION_MODELS = ("vgg16", "vgg16_bn", "resnet18", "googlenet", "squeezenet1_1")
# what `python -m interp_lib fetch-weights` fetches by default: SqueezeNet 1.1 (CS231n's
# choice, 5 MB), ResNet-18 (45 MB), VGG-16 (the LRP tutorial's, 528 MB)
IMAGENET_MODELS = ("squeezenet1_1", "resnet18", "vgg16")


class WeightsMissing(FileNotFoundError):
    """The ImageNet weights of a torchvision model are not in torch's cache."""


def _check_torchvision_name(name: str) -> None:
    if name not in TORCHVISION_MODELS:
        raise ValueError(f"unknown torchvision model {name!r}; choose one of {', '.join(TORCHVISION_MODELS)}")


def imagenet_weights(name: str):
    """torchvision's default ImageNet weights entry of ``name`` (``weights.url``,
    ``weights.meta["categories"]``...); needs no download."""
    import torchvision

    _check_torchvision_name(name)
    return torchvision.models.get_model_weights(name).DEFAULT


#: the file name of each model's default ImageNet weights (the last part of torchvision's
#: ``weights.url``; a test checks they agree). Looking a file up here instead of in
#: torchvision lets a lesson find out that the weights are missing without importing
#: torchvision (two seconds, in every "On real photographs" section that then skips).
IMAGENET_WEIGHT_FILES = {
    "vgg16": "vgg16-397923af.pth",
    "vgg16_bn": "vgg16_bn-6c64b313.pth",
    "resnet18": "resnet18-f37072fd.pth",
    "googlenet": "googlenet-1378be20.pth",
    "squeezenet1_1": "squeezenet1_1-b8a52dc0.pth",
}


def imagenet_weights_path(name: str) -> pathlib.Path:
    """Where torch's cache keeps ``name``'s ImageNet weights: the file
    ``torch.hub.load_state_dict_from_url`` writes, ``$TORCH_HOME/hub/checkpoints/<file>``."""
    _check_torchvision_name(name)
    return pathlib.Path(torch.hub.get_dir()) / "checkpoints" / IMAGENET_WEIGHT_FILES[name]


def torchvision_model(name: str, pretrained: bool = True, download: bool = False) -> nn.Module:
    """A torchvision ImageNet classifier in eval mode: VGG-16 (``vgg16``, ``vgg16_bn``),
    ResNet-18, GoogLeNet or SqueezeNet 1.1.

    ``pretrained=False`` gives randomly initialised weights (what the tests use: nothing
    is downloaded). With ``pretrained=True`` the ImageNet weights are read from torch's
    cache (``$TORCH_HOME/hub/checkpoints``); when they are not there, ``download=True``
    fetches them (needs internet), otherwise :class:`WeightsMissing` (a
    ``FileNotFoundError``) says how to get them. Inputs are ImageNet-normalised 224x224
    RGB images (``weights.transforms()``).
    """
    import torchvision

    weights = imagenet_weights(name)
    extra = {"aux_logits": False, "init_weights": False} if name == "googlenet" else {}
    model = torchvision.models.get_model(name, weights=None, **extra)
    if pretrained:
        path = imagenet_weights_path(name)
        if path.exists():
            state = torch.load(path, map_location="cpu", weights_only=True)
        elif download:
            state = weights.get_state_dict(progress=True)
        else:
            raise WeightsMissing(
                f"the ImageNet weights of {name} are not in torch's cache ({path}). With internet run "
                f"`python -m interp_lib fetch-weights {name}` (or "
                f"`interp_lib.models.torchvision_model({name!r}, download=True)`) once, or copy "
                f"{weights.url} to that path; pretrained=False gives random weights."
            )
        if name == "googlenet":
            state = {k: v for k, v in state.items() if not k.startswith(("aux1.", "aux2."))}
        model.load_state_dict(state)
    return model.eval()


def imagenet_model(name: str = "squeezenet1_1") -> tuple[nn.Module, list[str]]:
    """``(model, categories)``: a torchvision ImageNet classifier with its ImageNet weights
    from torch's cache, in eval mode, and its 1,000 class names (torchvision's
    ``weights.meta["categories"]``, which need no download). Never downloads: raises
    :class:`WeightsMissing`, whose message says to run
    ``python -m interp_lib fetch-weights <name>``, when the weights are not there.
    Inputs: ImageNet-normalised RGB, e.g. ``interp_lib.data.load_photos()`` then
    ``(x - mean) / std`` with ``IMAGENET_MEAN`` and ``IMAGENET_STD``."""
    model = torchvision_model(name, pretrained=True, download=False)
    return model, list(imagenet_weights(name).meta["categories"])


IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision's ImageNet normalisation
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageNetNormalise(nn.Module):
    """The fixed per-channel map ``(x - IMAGENET_MEAN) / IMAGENET_STD`` as a layer."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def pixel_model(net: nn.Module) -> nn.Sequential:
    """``net`` behind :class:`ImageNetNormalise`: ``nn.Sequential(normalise=..., net=net)``
    (shared, not copied), in eval mode. It takes pixels in [0, 1], so attack budgets,
    baselines and maps are in pixel units; its layers are ``net.<name of the layer in net>``."""
    return nn.Sequential(collections.OrderedDict(normalise=ImageNetNormalise(), net=net)).eval()


def imagenet_or_skip(name: str = "squeezenet1_1", out=print) -> tuple[nn.Module, list[str]] | None:
    """:func:`imagenet_model` for a lesson's "On real photographs" section: ``(model,
    categories)``, or, when the weights are not in torch's cache, ``None`` after one line
    to ``out`` saying how to get them (the section then skips). Never downloads."""
    if imagenet_weights_path(name).exists():  # (checked first: building VGG-16 alone takes seconds)
        return imagenet_model(name)
    out(
        f"skipped: the ImageNet weights of {name} are not in torch's cache; with internet run "
        f"`python -m interp_lib fetch-weights {name}` once, then this cell again"
    )
    return None


__all__ += [
    "TORCHVISION_MODELS",
    "IMAGENET_MODELS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "WeightsMissing",
    "imagenet_weights",
    "imagenet_weights_path",
    "IMAGENET_WEIGHT_FILES",
    "torchvision_model",
    "imagenet_model",
    "ImageNetNormalise",
    "pixel_model",
    "imagenet_or_skip",
]

# --------------------------------------------------------------------------- ReLU converter
# Hook-based methods (guided backprop, deconvnet, captum's, zennit's) change the backward
# pass at every ``nn.ReLU`` *module*. A functional ``F.relu`` call is invisible to them
# (the method silently becomes the plain gradient); a module called twice (ResNet's
# blocks) gets one hook for two places; an in-place ReLU breaks backward hooks.
# ``convert_relus`` fixes all three on a copy; ``check_relus`` refuses models that need it.

import weakref  # noqa: E402

__all__ += ["convert_relus", "check_relus"]

_FUNCTIONAL_RELUS = None
_RELU_CHECKED: weakref.WeakKeyDictionary[nn.Module, tuple] = weakref.WeakKeyDictionary()


def _functional_relus() -> tuple:
    global _FUNCTIONAL_RELUS
    if _FUNCTIONAL_RELUS is None:
        import torch.nn.functional as F

        _FUNCTIONAL_RELUS = (F.relu, F.relu_, torch.relu, torch.relu_, torch.nn.functional.relu)
    return _FUNCTIONAL_RELUS


def _trace(model: nn.Module):
    import torch.fx

    try:
        return torch.fx.symbolic_trace(model)
    except Exception as err:  # noqa: BLE001 - any tracing failure gets the same advice
        raise TypeError(
            f"interp_lib.models: cannot trace {type(model).__name__} with torch.fx ({type(err).__name__}: "
            f"{err}); ReLU conversion needs a model whose forward has no data-dependent control flow"
        ) from err


def _relu_problems(model: nn.Module) -> list[str]:
    """Descriptions of every functional, reused or in-place ReLU of ``model``."""
    problems = [
        f"`{name}` is an in-place nn.ReLU"
        for name, m in model.named_modules()
        if isinstance(m, nn.ReLU) and m.inplace
    ]
    if isinstance(model, nn.Sequential) and all(
        type(m).__module__.startswith("torch.nn.modules") and not m._modules for m in model.children()
    ):
        # a plain Sequential of torch.nn leaves: its forward calls each child once, in order
        seen: set[int] = set()
        for name, m in model._modules.items():  # (named_children() would skip a repeated module)
            if isinstance(m, nn.ReLU):
                if id(m) in seen:
                    problems.append(f"the nn.ReLU `{name}` is called more than once")
                seen.add(id(m))
        return problems
    graph = _trace(model).graph
    calls: collections.Counter = collections.Counter()
    modules = dict(model.named_modules())
    for node in graph.nodes:
        if node.op == "call_function" and node.target in _functional_relus():
            stack = node.meta.get("nn_module_stack") or {}
            scope = next(reversed(stack.values()))[0] if stack else "<top>"
            problems.append(f"a functional {getattr(node.target, '__name__', 'relu')}() call in `{scope}`")
        elif node.op == "call_method" and node.target in ("relu", "relu_"):
            problems.append(f"a tensor.{node.target}() call")
        elif node.op == "call_module" and isinstance(modules.get(node.target), nn.ReLU):
            calls[node.target] += 1
    problems += [f"the nn.ReLU `{name}` is called {k} times" for name, k in calls.items() if k > 1]
    return problems


def check_relus(model: nn.Module) -> None:
    """Raise ``ValueError`` unless every ReLU of ``model`` is its own non-in-place ``nn.ReLU``.

    Hook-based attribution methods call this first: on a model with functional
    (``F.relu``), reused or in-place ReLUs they would silently compute something else.
    The error names the fix, :func:`convert_relus`. Results are cached per model.
    """
    key = tuple((id(m), getattr(m, "inplace", None)) for m in model.modules())
    cached = _RELU_CHECKED.get(model)
    if cached == key:
        return
    problems = _relu_problems(model)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ValueError(
            f"`model` ({type(model).__name__}) has ReLUs that a hook-based method cannot see or "
            f"change: {'; '.join(problems[:3])}{more}. Convert it first: "
            "`model = interp_lib.models.convert_relus(model)` (a copy in which every ReLU is its "
            "own nn.ReLU module; outputs unchanged)."
        )
    _RELU_CHECKED[model] = key


def convert_relus(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (a ``torch.fx.GraphModule``) in which every ReLU is its own module.

    Functional ``F.relu`` / ``torch.relu`` / ``tensor.relu()`` calls and ``nn.ReLU`` modules
    that are called more than once or in place become separate ``nn.ReLU(inplace=False)``
    modules, named after where they act (``layer1.0.relu``, ``layer1.0.relu_1``...). The
    original is untouched (deep copy); outputs are identical; train/eval mode is kept.
    Needs a model torch.fx can trace (torchvision's ResNet, VGG, GoogLeNet... can).
    """
    import copy

    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
    clone = copy.deepcopy(model)
    gm = _trace(clone)
    modules = dict(gm.named_modules())
    used: collections.Counter = collections.Counter()
    taken = set(modules)

    def fresh(base: str) -> str:
        name, k = base, 1
        while name in taken:
            name, k = f"{base}_{k}", k + 1
        taken.add(name)
        return name

    for node in list(gm.graph.nodes):
        if node.op == "call_module" and isinstance(modules.get(node.target), nn.ReLU):
            used[node.target] += 1
            if used[node.target] == 1 and not modules[node.target].inplace:
                continue
            name = fresh(node.target) if used[node.target] > 1 else node.target
            gm.add_submodule(name, nn.ReLU())
            node.target = name
            node.args, node.kwargs = node.args[:1], {}
        elif (node.op == "call_function" and node.target in _functional_relus()) or (
            node.op == "call_method" and node.target in ("relu", "relu_")
        ):
            stack = node.meta.get("nn_module_stack") or {}
            scope = next(reversed(stack.values()))[0] if stack else ""
            name = fresh(f"{scope}.relu" if scope else "relu")
            gm.add_submodule(name, nn.ReLU())
            arg = node.args[0] if node.args else node.kwargs.get("input", node.kwargs.get("self"))
            with gm.graph.inserting_after(node):
                new = gm.graph.call_module(name, (arg,))
            node.replace_all_uses_with(new)
            gm.graph.erase_node(node)
    gm.graph.lint()
    gm.delete_all_unused_submodules()
    gm.recompile()
    gm.train(model.training)
    return gm


# --------------------------------------------------------------------------- BatchNorm canonizer
# LRP rules see the weights of Conv2d/Linear layers; a BatchNorm after them (eval mode) is an
# affine map per channel that belongs to those weights: merge it in (zennit's
# SequentialMergeBatchNorm does the same in place; this works on a copy, for any traceable graph).

__all__ += ["merge_batchnorm"]


def merge_batchnorm(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` in eval mode in which every ``BatchNorm1d/2d`` whose input is
    the output of a ``Conv2d``/``Linear`` (used nowhere else) is merged into that layer and
    replaced by ``nn.Identity``; the module structure is otherwise kept (a VGG stays a VGG).

    With the running statistics, ``scale = gamma / sqrt(var + eps)``:
    ``W' = W * scale`` (per output channel) and ``b' = (b - mean) * scale + beta``. Outputs
    are unchanged (eval mode) up to float rounding. Needs a model ``torch.fx`` can trace.
    """
    import copy

    if not isinstance(model, nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, got {type(model).__name__}")
    clone = copy.deepcopy(model).eval()
    modules = dict(clone.named_modules())
    pairs = []
    for node in _trace(clone).graph.nodes:
        if node.op != "call_module" or not isinstance(
            modules.get(node.target), (nn.BatchNorm1d, nn.BatchNorm2d)
        ):
            continue
        src = node.args[0] if node.args else None
        if (
            getattr(src, "op", None) == "call_module"
            and isinstance(modules.get(src.target), (nn.Conv2d, nn.Linear))
            and len(src.users) == 1
        ):
            pairs.append((src.target, node.target))
    with torch.no_grad():
        for layer_name, bn_name in pairs:
            layer, bn = modules[layer_name], modules[bn_name]
            scale = 1.0 / torch.sqrt(bn.running_var + bn.eps)
            if bn.weight is not None:
                scale = scale * bn.weight
            bias = layer.bias if layer.bias is not None else torch.zeros_like(bn.running_mean)
            new_bias = (bias - bn.running_mean) * scale + (bn.bias if bn.bias is not None else 0.0)
            layer.weight.mul_(scale.view(-1, *([1] * (layer.weight.dim() - 1))))
            if layer.bias is None:
                layer.bias = nn.Parameter(new_bias.detach().clone(), requires_grad=layer.weight.requires_grad)
            else:
                layer.bias.copy_(new_bias)
            parent, _, attr = bn_name.rpartition(".")
            setattr(modules[parent] if parent else clone, attr, nn.Identity())
    return clone
