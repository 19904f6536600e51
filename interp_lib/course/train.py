"""Reproduce the shipped weights: ``python -m interp_lib train [name ...]``.

Training is deterministic for a given machine and thread count (one thread by
default): seeded data order and initialisation, no data-loader workers. Each model
takes well under a minute on two CPU cores, the adversarially trained one about two.
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

__all__ = ["datasets", "train_model", "train"]


def datasets(spec: ModelSpec) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x_train, y_train, x_test, y_test)`` for a model spec."""
    if spec.arch == "digits":
        return (*data.load_digits("train"), *data.load_digits("test"))
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


def train_model(spec: ModelSpec, progress: bool = True) -> tuple[torch.nn.Module, dict]:
    """Train one model from its spec; returns the model and its training record."""
    gen = seed_everything(spec.seed)
    x_train, y_train, x_test, y_test = datasets(spec)
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
