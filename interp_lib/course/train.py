"""Reproduce the shipped weights: ``python -m interp_lib train [name ...]``.

Training is deterministic for a given machine and thread count (one thread by
default): seeded data order and initialisation, no data-loader workers. Each model
takes well under a minute on two CPU cores, the adversarially trained one about two,
the deeper ``scenes_deep`` (7 conv layers, 64x64 scenes, 30 epochs) a few minutes.
"""

from __future__ import annotations

import json
import os
import platform
import time

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .. import data
from ..models import _ARCHS, MODELS, ModelSpec, weights_path
from ..utils import accuracy, seed_everything

__all__ = ["datasets", "train_model", "train", "train_capstone"]

CAPSTONE = "capstone"  # lesson 14: trained with a secret shortcut (solutions/capstone_shortcut.py)


def datasets(spec: ModelSpec) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x_train, y_train, x_test, y_test)`` for a model spec."""
    if spec.arch == "digits":
        return (*data.load_digits("train"), *data.load_digits("test"))
    if spec.arch == "scenes":
        train, test = data.load_scenes("train", **spec.data), data.load_scenes("test", **spec.data)
        return train.x, train.y, test.x, test.y
    train, test = data.load_shapes("train", **spec.data), data.load_shapes("test", **spec.data)
    return train.x, train.y, test.x, test.y


def _adversarial(model, xb, yb, cfg, gen):
    """PGD examples for adversarial training, from the reference ``pgd`` of lesson 02 (one step
    without a random start is FGSM; one step from a random start is Wong et al.'s FGSM-RS)."""
    from .. import exercises
    from ..attacks import pgd  # an exercise of lesson 02: the reference body is used here

    saved = os.environ.get(exercises.ENV_VAR)
    os.environ[exercises.ENV_VAR] = "pgd"
    try:
        return pgd(
            model,
            xb,
            yb,
            eps=cfg["eps"],
            alpha=cfg["alpha"],
            steps=cfg["steps"],
            random_start=cfg.get("random_start", True),  # FGSM training: steps 1, no random start
            generator=gen,
        )
    finally:
        if saved is None:
            del os.environ[exercises.ENV_VAR]
        else:
            os.environ[exercises.ENV_VAR] = saved


def _dihedral(xb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The batch turned by a random multiple of 90 degrees, then mirrored with probability
    1/2 (one of the 8 symmetries of the square, one draw from ``gen`` per batch)."""
    k = int(torch.randint(8, (1,), generator=gen))
    xb = torch.rot90(xb, k % 4, (2, 3))
    return xb.flip(3) if k >= 4 else xb


def train_model(spec: ModelSpec, progress: bool = True, plant=None) -> tuple[torch.nn.Module, dict]:
    """Train one model from its spec; returns the model and its training record.

    ``plant(x, y) -> (x, y)`` changes the training set only (the capstone's secret shortcut,
    lesson 14); the record's test accuracy is always on the spec's own clean test split."""
    gen = seed_everything(spec.seed)
    x_train, y_train, x_test, y_test = datasets(spec)
    if plant is not None:
        x_train, y_train = plant(x_train, y_train)
    model = _ARCHS[spec.arch]()
    opt = torch.optim.Adam(model.parameters(), lr=spec.lr)
    start = time.perf_counter()
    steps = spec.epochs * ((len(x_train) + spec.batch_size - 1) // spec.batch_size)
    bar = tqdm(total=steps, desc=f"train {spec.name}", disable=not progress)
    for _epoch in range(spec.epochs):
        order = torch.randperm(len(x_train), generator=gen)
        for i in range(0, len(order), spec.batch_size):
            idx = order[i : i + spec.batch_size]
            xb, yb = x_train[idx], y_train[idx]
            if spec.augment:
                xb = _dihedral(xb, gen)
            if spec.adversarial:
                xb = _adversarial(model, xb, yb, spec.adversarial, gen)
            model.train()
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            bar.update(1)
    bar.close()
    model.eval()
    record = {
        "name": spec.name,
        "description": spec.description,
        "seed": spec.seed,
        "epochs": spec.epochs,
        "batch_size": spec.batch_size,
        "lr": spec.lr,
        "data": spec.data,
        "adversarial": spec.adversarial,
        "augment": spec.augment,
        "n_train": len(x_train),
        "n_test": len(x_test),
        "test_accuracy": round(accuracy(model, x_test, y_test), 6),
        "train_seconds": round(time.perf_counter() - start, 1),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    return model, record


def train(names: list[str] | None = None, progress: bool = True) -> list[dict]:
    """Train and save the named models (all when ``names`` is empty)."""
    names = list(names or MODELS)
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; the shipped models are: {', '.join(MODELS)}")
    records = []
    for name in names:
        if name == CAPSTONE:
            records.append(train_capstone(progress=progress))
            continue
        model, record = train_model(MODELS[name], progress=progress)
        path = weights_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), path)
        path.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
        print(
            f"{name}: test accuracy {record['test_accuracy']:.4f} "
            f"({record['train_seconds']} s) -> {path.name}"
        )
        records.append(record)
    return records


def _secret():
    """The instructors' shortcut module (``solutions/capstone_shortcut.py``), absent from
    the student release."""
    try:
        from solutions import capstone_shortcut
    except ImportError:
        raise SystemExit(
            "the capstone model's training data is the instructor's secret: training it needs the "
            "instructors' checkout (solutions/capstone_shortcut.py), which the student copy leaves out"
        ) from None
    return capstone_shortcut


def train_capstone(kind: str | None = None, seed: int | None = None, progress: bool = True) -> dict:
    """Train lesson 14's model with a planted shortcut and save it.

    ``kind`` None: the current secret (``solutions/capstone_shortcut.json``), i.e. reproduce
    the shipped weights; a kind (``python -m interp_lib train capstone --shortcut KIND
    [--seed S]``): draw a fresh one from ``seed`` (default 0), train, and rewrite the secret
    and the generated block of ``solutions/answers/14.md``. The shipped training record
    (``weights/capstone.json``) holds nothing about the shortcut: its accuracy is on the
    clean test split. Returns that record."""
    secret = _secret()
    cut = secret.load() if kind is None else secret.draw(kind, 0 if seed is None else seed)
    spec = MODELS[CAPSTONE]
    model, record = train_model(spec, progress=progress, plant=lambda x, y: secret.plant(x, y, cut)[:2])
    path = weights_path(CAPSTONE)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    path.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    block = secret.save(cut, secret.evidence(model, cut))
    print(
        f"{CAPSTONE}: clean test accuracy {record['test_accuracy']:.4f} ({record['train_seconds']} s) -> "
        f"{path.name}; the key (solutions/capstone_shortcut.json, solutions/answers/14.md):\n{block}"
    )
    return record
