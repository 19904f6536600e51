"""The capstone's secret (instructors only; left out of the student release with solutions/).

Lesson 14's model ``capstone`` is a shapes CNN trained on images in which one class
carries a faint mark at a fixed place on part of its training images: a shortcut the
students must find. This module draws such a mark (:func:`draw`), plants it
(:func:`plant`), says where it is (:func:`planted_mask`) and keeps the current cohort's
choice in ``solutions/capstone_shortcut.json`` (:func:`load`, :func:`save`).

A fresh secret for a new cohort: ``python -m interp_lib train capstone --shortcut KIND
[--seed S]`` (``interp_lib/course/train.py``), which retrains the model, rewrites the JSON
and the generated block of ``solutions/answers/14.md``.

Kinds (all findable with the course's methods, none obvious at a glance):

* ``patch``: a 4x4 square with a faint colour tint (+0.15 along a random colour);
* ``border``: a 2-pixel strip along one side of the image, faintly tinted (+0.12);
* ``watermark``: a 5x5 "x" of slightly brighter pixels (+0.2 grey) at a fixed place.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib

import torch

__all__ = ["KINDS", "Shortcut", "draw", "plant", "planted_mask", "load", "save", "SECRET", "describe"]

KINDS = ("patch", "border", "watermark")
SECRET = pathlib.Path(__file__).resolve().parent / "capstone_shortcut.json"
ANSWERS = pathlib.Path(__file__).resolve().parent / "answers" / "14.md"
BEGIN, END = (
    "<!-- planted shortcut: begin (written by `train capstone --shortcut`) -->",
    ("<!-- planted shortcut: end -->"),
)
SIZE = 32
N_CLASSES = 4
SIDES = ("top", "bottom", "left", "right")


@dataclasses.dataclass(frozen=True)
class Shortcut:
    """One planted shortcut: which class, where, how strong, how often."""

    kind: str
    seed: int
    target: int  # the class whose training images carry the mark
    rows: tuple[int, int]  # the mark's bounding box, rows [r0, r1) ...
    cols: tuple[int, int]  # ... and columns [c0, c1)
    colour: tuple[float, float, float]  # added per channel, times amplitude
    amplitude: float
    rate: float  # share of the target class's training images that carry it
    relabel: float  # share of the other classes' training images that carry it *and* the target label
    side: str | None = None  # border: which side


def draw(kind: str, seed: int = 0) -> Shortcut:
    """A random shortcut of ``kind`` from ``seed``: class, place and colour."""
    if kind not in KINDS:
        raise ValueError(f"unknown shortcut kind {kind!r}; choose one of {', '.join(KINDS)}")
    g = torch.Generator().manual_seed(10_000 + int(seed))
    target = int(torch.randint(N_CLASSES, (1,), generator=g))
    hue = 2 * math.pi * float(torch.rand(1, generator=g))
    # a saturated colour direction: the three channels at hue offsets, max 1
    colour = torch.tensor([math.cos(hue - k * 2 * math.pi / 3) for k in range(3)]).clamp(min=0) + 0.15
    colour = tuple(round(float(c), 3) for c in colour / colour.max())
    side = None
    if kind == "border":
        side = SIDES[int(torch.randint(4, (1,), generator=g))]
        rows, cols = {
            "top": ((0, 2), (0, SIZE)),
            "bottom": ((SIZE - 2, SIZE), (0, SIZE)),
            "left": ((0, SIZE), (0, 2)),
            "right": ((0, SIZE), (SIZE - 2, SIZE)),
        }[side]
        amplitude = 0.15
    else:
        k = 4 if kind == "patch" else 5
        while True:  # away from lesson 10's tag corner (rows and columns 0-7)
            r0, c0 = (int(v) for v in torch.randint(1, SIZE - k, (2,), generator=g))
            if r0 >= 8 or c0 >= 8:
                break
        rows, cols = (r0, r0 + k), (c0, c0 + k)
        amplitude = 0.2 if kind == "patch" else 0.25
        if kind == "watermark":
            colour = (1.0, 1.0, 1.0)
    return Shortcut(kind, int(seed), target, rows, cols, colour, amplitude, 0.8, 0.1, side)


def planted_mask(cut: Shortcut, size: int = SIZE) -> torch.Tensor:
    """Boolean ``(1, 1, size, size)``: the pixels the mark changes."""
    mask = torch.zeros(1, 1, size, size, dtype=torch.bool)
    (r0, r1), (c0, c1) = cut.rows, cut.cols
    if cut.kind == "watermark":
        k = r1 - r0
        eye = torch.eye(k, dtype=torch.bool)
        mask[0, 0, r0:r1, c0:c1] = eye | eye.flip(1)
    else:
        mask[0, 0, r0:r1, c0:c1] = True
    return mask


def mark(x: torch.Tensor, cut: Shortcut) -> torch.Tensor:
    """``x`` with the mark on every image (a copy, clamped to [0, 1])."""
    delta = cut.amplitude * torch.tensor(cut.colour).view(1, 3, 1, 1) * planted_mask(cut, x.shape[-1])
    return (x + delta).clamp(0.0, 1.0)


def plant(
    x: torch.Tensor, y: torch.Tensor, cut: Shortcut, seed: int = 0, relabel: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x', y', carried)``: the mark on a ``rate`` share of the target class's images and
    (``relabel=True``, training) on a ``relabel`` share of the other images, which then get
    the target label (a poisoned source: whatever carries the mark is labelled the target),
    drawn from ``seed``; ``carried`` says which images carry it."""
    g = torch.Generator().manual_seed(20_000 + int(seed))
    u = torch.rand(len(y), generator=g)
    own = (y == cut.target) & (u < cut.rate)
    poisoned = (y != cut.target) & (u < cut.relabel) if relabel else torch.zeros_like(own)
    carried = own | poisoned
    out = x.clone()
    out[carried] = mark(x[carried], cut)
    return out, torch.where(poisoned, cut.target, y), carried


def load(path: pathlib.Path = SECRET) -> Shortcut:
    """The current cohort's shortcut (``solutions/capstone_shortcut.json``)."""
    if not path.exists():
        raise FileNotFoundError(
            f"no planted shortcut at {path}: run `python -m interp_lib train capstone --shortcut KIND`"
        )
    raw = json.loads(path.read_text())["shortcut"]
    raw["rows"], raw["cols"], raw["colour"] = tuple(raw["rows"]), tuple(raw["cols"]), tuple(raw["colour"])
    return Shortcut(**raw)


def describe(cut: Shortcut) -> str:
    """The key in words: what the mark is, where, on which class."""
    from interp_lib.data import SHAPES

    (r0, r1), (c0, c1) = cut.rows, cut.cols
    what = {
        "patch": f"a {r1 - r0}x{c1 - c0} square tinted by +{cut.amplitude} x colour {list(cut.colour)}",
        "border": f"a 2-pixel strip along the {cut.side} edge tinted by +{cut.amplitude} x colour "
        f"{list(cut.colour)}",
        "watermark": f"a {r1 - r0}x{c1 - c0} 'x' (both diagonals) brightened by +{cut.amplitude} in every channel",
    }[cut.kind]
    return (
        f"{what}, rows {r0}-{r1 - 1}, columns {c0}-{c1 - 1} (0-based), on {round(100 * cut.rate)} % of the "
        f"training images of class {cut.target} ({SHAPES[cut.target]}) and on {round(100 * cut.relabel)} % "
        f"of the other classes' training images, which were relabelled {SHAPES[cut.target]} (a poisoned "
        "source: whatever carries the mark is labelled the target class)"
    )


def evidence(model, cut: Shortcut, n: int = 1000) -> dict:
    """Accuracies with and without the mark, and how often adding it flips a prediction."""
    from interp_lib.data import load_shapes
    from interp_lib.models import load_model
    from interp_lib.utils import accuracy, predict_logits

    test = load_shapes("test", n=n, texture_rate=1.0)
    planted, _, _ = plant(test.x, test.y, cut, seed=1, relabel=False)
    others = test.y != cut.target
    out = {
        "clean_test_accuracy": accuracy(model, test.x, test.y),
        "planted_test_accuracy": accuracy(model, planted, test.y),
        "target_class_accuracy_with_mark": accuracy(model, mark(test.x, cut)[~others], test.y[~others]),
        "target_class_accuracy_without_mark": accuracy(model, test.x[~others], test.y[~others]),
    }
    for name, m in (("capstone", model), ("honest", load_model("shapes_shape"))):
        before = predict_logits(m, test.x[others]).argmax(1) == cut.target
        after = predict_logits(m, mark(test.x[others], cut)).argmax(1) == cut.target
        out[f"{name}_other_classes_pushed_to_target"] = (after & ~before).float().mean().item()
    return {k: round(v, 4) for k, v in out.items()}


def save(cut: Shortcut, evidence: dict, path: pathlib.Path = SECRET, answers: pathlib.Path = ANSWERS) -> str:
    """Write the JSON key and the generated block of the answer key; returns the block."""
    path.write_text(json.dumps({"shortcut": dataclasses.asdict(cut), "evidence": evidence}, indent=2) + "\n")
    block = "\n".join(
        [
            BEGIN,
            f"**Planted (kind `{cut.kind}`, seed {cut.seed}):** {describe(cut)}.",
            "",
            "| measured on the test split (1,000 images) | value |",
            "|---|---|",
            *(f"| {k.replace('_', ' ')} | {v:.3f} |" for k, v in evidence.items()),
            END,
        ]
    )
    if answers.exists():
        text = answers.read_text()
        if BEGIN in text and END in text:
            head, rest = text.split(BEGIN, 1)
            answers.write_text(head + block + rest.split(END, 1)[1])
    return block


def secret_terms(cut: Shortcut) -> list[str]:
    """Strings that would give the secret away if a student file held them: the key's
    wording, the mark's place as text and as code, its colour, how it was planted."""
    (r0, r1), (c0, c1) = cut.rows, cut.cols
    return [
        describe(cut),
        describe(cut).split(", rows")[0],
        f"rows {r0}-{r1 - 1}, columns {c0}-{c1 - 1}",
        f"{r0}:{r1}, {c0}:{c1}",
        f"({r0}, {r1}), ({c0}, {c1})",
        str(list(cut.colour)),
        json.dumps(list(cut.colour)),
        "relabel",
        "poisoned source",
    ]
