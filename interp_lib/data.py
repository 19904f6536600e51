"""Offline data: real handwritten digits and procedural shapes-and-textures images.

Nothing here downloads anything.

* :func:`load_digits` - scikit-learn's bundled handwritten digits (1,797 real images
  with real labels, 8x8), upsampled to 28x28, with a fixed train/test split.
* :func:`make_shapes` - a generator of 32x32 RGB images of a shape filled with a
  texture, with random colours, position, size and rotation. Its knobs make
  cue-conflict images, randomise texture, choose what the label follows, plant a
  class-correlated corner tag and flip labels. Shape, texture and label are returned,
  so the ground truth is always known.
* :func:`flip_labels` - flip a given fraction of labels; returns the flipped mask.
* :func:`make_scenes` - 64x64 scenes for the deeper model: several textured shapes (drawn
  by the same code as :func:`make_shapes`) on natural-image-like 1/f noise, under a
  lighting gradient, the largest one (whose shape is the label) partly occluded.
* :func:`concept_masks` - the pixel mask of every concept an image of :func:`make_shapes`
  contains (object, background, its shape, its texture, the tag), from the silhouettes
  ``Shapes.mask`` that :func:`make_shapes` keeps: ground truth for network dissection.
* :func:`load_photos` - twelve real photographs shipped in ``interp_lib/photos/``
  (public domain, CC0 or CC BY 2.0; source, author, licence and changes of each in
  ``interp_lib/photos/SOURCES.md``), for the lessons' "On real photographs" sections.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "DIGIT_CLASSES",
    "SHAPES",
    "TEXTURES",
    "Shapes",
    "load_digits",
    "make_shapes",
    "load_shapes",
    "flip_labels",
    "TAG_SIZE",
    "PHOTOS",
    "PHOTO_CLASSES",
    "PHOTOS_DIR",
    "load_photos",
    "concept_masks",
]

DIGIT_CLASSES = tuple(str(d) for d in range(10))
SHAPES = ("circle", "square", "triangle", "cross")
TEXTURES = ("stripes", "checker", "dots", "zigzag")
TAG_SIZE = 6  # the Clever Hans tag is a TAG_SIZE x TAG_SIZE patch in the top-left corner

DIGITS_TEST_SIZE = 540
_RENDER_CHUNK = 512  # images rendered at once by make_shapes  # 30 % of 1,797, stratified, fixed


def load_digits(split: str = "train", size: int = 28) -> tuple[torch.Tensor, torch.Tensor]:
    """Scikit-learn's bundled digits as ``(x, y)``.

    ``x`` is float32 ``(N, 1, size, size)`` in [0, 1] (8x8 originals upsampled
    bilinearly), ``y`` int64 ``(N,)``. ``split`` is ``"train"`` (1,257 images),
    ``"test"`` (540) or ``"all"`` (1,797, in scikit-learn's order). The split is fixed
    (stratified, seed 0), the same on every machine.
    """
    from sklearn.datasets import load_digits as _sk_digits
    from sklearn.model_selection import train_test_split

    if split not in ("train", "test", "all"):
        raise ValueError(f"`split` must be 'train', 'test' or 'all', got {split!r}")
    if not isinstance(size, int) or size < 8:
        raise ValueError(f"`size` must be an int >= 8 (the originals are 8x8), got {size!r}")
    bunch = _sk_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32)[:, None] / 16.0
    if size != 8:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    images = images.clamp(0.0, 1.0)
    labels = torch.tensor(bunch.target, dtype=torch.int64)
    if split == "all":
        return images, labels
    idx_train, idx_test = train_test_split(
        np.arange(len(labels)),
        test_size=DIGITS_TEST_SIZE,
        random_state=0,
        stratify=bunch.target,
    )
    idx = torch.as_tensor(np.sort(idx_train if split == "train" else idx_test))
    return images[idx], labels[idx]


@dataclasses.dataclass
class Shapes:
    """A batch of generated images and everything known about them."""

    x: torch.Tensor  # (N, 3, size, size) float32 in [0, 1]
    y: torch.Tensor  # (N,) the label (after any label noise)
    shape: torch.Tensor  # (N,) index into SHAPES
    texture: torch.Tensor  # (N,) index into TEXTURES
    flipped: torch.Tensor  # (N,) bool: label noise changed this label
    tag: torch.Tensor  # (N,) bool: the image carries the class tag
    tag_mask: torch.Tensor  # (1, 1, size, size) bool: where a tag would be
    mask: torch.Tensor | None = None  # (N, 1, size, size) bool: the object's silhouette

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, idx) -> Shapes:
        return Shapes(
            self.x[idx],
            self.y[idx],
            self.shape[idx],
            self.texture[idx],
            self.flipped[idx],
            self.tag[idx],
            self.tag_mask,
            None if self.mask is None else self.mask[idx],
        )


def _shape_masks(u: torch.Tensor, v: torch.Tensor, kind: torch.Tensor) -> torch.Tensor:
    """Inside-masks for object coordinates (u, v) (unit scale), one kind per image."""
    s3 = math.sqrt(3.0)
    masks = torch.stack(
        [
            u**2 + v**2 <= 0.9**2,  # circle
            torch.maximum(u.abs(), v.abs()) <= 0.72,  # square
            (v >= -0.5) & (s3 * u + v <= 1.0) & (-s3 * u + v <= 1.0),  # triangle
            ((u.abs() <= 0.3) & (v.abs() <= 0.95)) | ((v.abs() <= 0.3) & (u.abs() <= 0.95)),  # cross
        ]
    )
    return masks.gather(0, kind.view(1, -1, 1, 1).expand(1, *u.shape)).squeeze(0)


def _textures(a: torch.Tensor, b: torch.Tensor, kind: torch.Tensor) -> torch.Tensor:
    """Binary patterns in rotated pixel coordinates (a, b) already divided by the period."""
    two_pi = 2 * math.pi
    fa, fb = a - torch.floor(a) - 0.5, b - torch.floor(b) - 0.5
    pats = torch.stack(
        [
            torch.sin(two_pi * a) > 0,  # stripes
            torch.sin(two_pi * a) * torch.sin(two_pi * b) > 0,  # checker
            fa**2 + fb**2 < 0.27**2,  # dots
            torch.sin(two_pi * (a + 0.6 * (2 * (b / 2 - torch.floor(b / 2 + 0.5))).abs())) > 0,  # zigzag
        ]
    )
    return pats.gather(0, kind.view(1, -1, 1, 1).expand(1, *a.shape)).squeeze(0)


def _tag_patterns(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """A distinct 2x2-block binary pattern for each class (TAG_SIZE x TAG_SIZE)."""
    codes = torch.arange(1, n_classes + 1)
    bits = torch.stack([(codes >> i) & 1 for i in range(4)], dim=1).float()  # (K, 4)
    grid = bits.view(n_classes, 2, 2)
    pattern = grid.repeat_interleave(TAG_SIZE // 2, 1).repeat_interleave(TAG_SIZE // 2, 2)
    return pattern[labels]


@dataclasses.dataclass
class _Scene:
    """The random draws of one batch of images, besides shape and texture identity."""

    radius: torch.Tensor
    aspect: torch.Tensor
    angle: torch.Tensor
    cx: torch.Tensor
    cy: torch.Tensor
    tex_angle: torch.Tensor
    period: torch.Tensor
    tex_phase: torch.Tensor
    bg: torch.Tensor
    ink: torch.Tensor
    paper: torch.Tensor
    noise: torch.Tensor


def _draw_scene(n: int, g: torch.Generator, size: int) -> _Scene:
    """Geometry (radius 7-12 px at 32 px, aspect ratio, rotation, centre inside the image),
    texture orientation/period/phase, colours (dark background, brighter object whose ink
    and paper differ clearly) and pixel noise, drawn from ``g`` in this order."""
    U = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731
    scale = size / 32.0
    radius = (7.0 + 5.0 * U(n)) * scale
    aspect = 0.7 + 0.6 * U(n)  # stretch along the object's own axis
    angle = 2 * math.pi * U(n)
    reach = radius * torch.maximum(aspect, 1 / aspect.sqrt())
    cx = reach + (size - 2 * reach).clamp(min=0) * U(n)
    cy = reach + (size - 2 * reach).clamp(min=0) * U(n)
    tex_angle = math.pi * U(n)
    period = (4.0 + U(n)) * scale
    tex_phase = U(n, 2)
    bg = 0.05 + 0.3 * U(n, 3)
    ink = 0.55 + 0.45 * U(n, 3)
    paper = ink * (0.25 + 0.35 * U(n, 1))
    noise = 0.03 * torch.randn(n, 3, size, size, generator=g)
    return _Scene(radius, aspect, angle, cx, cy, tex_angle, period, tex_phase, bg, ink, paper, noise)


def _scene_coordinates(scene: _Scene, size: int, part: slice = slice(None)):
    """Per-pixel object coordinates ``(u, v)`` (unit scale, v pointing up) and texture
    coordinates ``(a, b)`` (in periods), each ``(N, size, size)``, for images ``part``."""
    scene = _Scene(*(getattr(scene, f.name)[part] for f in dataclasses.fields(_Scene)))
    n = len(scene.radius)
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    py, px = torch.meshgrid(coords, coords, indexing="ij")
    px, py = px.expand(n, size, size), py.expand(n, size, size)
    dx, dy = px - scene.cx.view(-1, 1, 1), py - scene.cy.view(-1, 1, 1)
    cos, sin = torch.cos(scene.angle).view(-1, 1, 1), torch.sin(scene.angle).view(-1, 1, 1)
    u = (cos * dx + sin * dy) / (scene.radius * scene.aspect).view(-1, 1, 1)
    v = -(-sin * dx + cos * dy) / (scene.radius / scene.aspect.sqrt()).view(-1, 1, 1)
    tc, ts = torch.cos(scene.tex_angle).view(-1, 1, 1), torch.sin(scene.tex_angle).view(-1, 1, 1)
    a = (tc * px + ts * py) / scene.period.view(-1, 1, 1) + scene.tex_phase[:, :1, None]
    b = (-ts * px + tc * py) / scene.period.view(-1, 1, 1) + scene.tex_phase[:, 1:, None]
    return u, v, a, b


def make_shapes(
    n: int,
    seed: int = 0,
    *,
    texture_rate: float = 0.0,
    cue_conflict: bool = False,
    label_by: str = "shape",
    label_noise: float = 0.0,
    tag_rate: float = 0.0,
    shapes: tuple[str, ...] = SHAPES,
    textures: tuple[str, ...] | None = None,
    size: int = 32,
) -> Shapes:
    """Generate ``n`` images of a textured shape on a darker background.

    Every image draws a shape, a texture, a rotation, a size, a position, a texture
    orientation and period (4-5 pixels) and three colours (background, texture ink,
    texture paper) at random from ``seed``.

    * ``texture_rate``: the probability that an image's texture is drawn at random;
      otherwise the texture matches the shape (texture i for shape i). 0 gives a
      dataset where texture is a perfect shortcut, 1 one where only shape predicts.
    * ``cue_conflict=True``: every texture differs from its shape (Geirhos et al.).
    * ``label_by``: ``"shape"`` or ``"texture"``: what the label follows.
    * ``label_noise``: the fraction of labels flipped to another class (exactly
      ``round(label_noise * n)``; see ``Shapes.flipped``).
    * ``tag_rate``: the probability that an image carries its label's tag, a small
      class-specific pattern in the top-left corner (a Clever Hans shortcut).
    * ``shapes``/``textures``: subsets of :data:`SHAPES`/:data:`TEXTURES` (classes are
      indices into the subset given); ``size``: image side in pixels (>= 16).
    """
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        raise ValueError(f"`n` must be a positive int, got {n!r}")
    for name, rate in (("texture_rate", texture_rate), ("label_noise", label_noise), ("tag_rate", tag_rate)):
        if not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
            raise ValueError(f"`{name}` must be in [0, 1], got {rate!r}")
    if label_by not in ("shape", "texture"):
        raise ValueError(f"`label_by` must be 'shape' or 'texture', got {label_by!r}")
    if not isinstance(size, int) or size < 16:
        raise ValueError(f"`size` must be an int >= 16 pixels, got {size!r}")
    textures = tuple(TEXTURES[: len(shapes)]) if textures is None else tuple(textures)
    for name, chosen, known in (("shapes", shapes, SHAPES), ("textures", textures, TEXTURES)):
        unknown = [c for c in chosen if c not in known]
        if unknown or len(chosen) < 2 or len(set(chosen)) != len(chosen):
            raise ValueError(f"`{name}` must be >= 2 distinct names from {known}; got {tuple(chosen)}")
    if len(shapes) != len(textures) and (texture_rate < 1.0 or cue_conflict):
        raise ValueError("matching textures to shapes needs as many textures as shapes")
    k_shape, k_tex = len(shapes), len(textures)
    if cue_conflict and k_tex < 2:
        raise ValueError("cue conflict needs at least two textures")

    g = torch.Generator().manual_seed(int(seed))
    U = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731
    shape_local = torch.randint(k_shape, (n,), generator=g)
    random_tex = torch.randint(k_tex, (n,), generator=g)
    use_random = U(n) < texture_rate
    texture_local = torch.where(use_random, random_tex, shape_local % k_tex)
    if cue_conflict:
        offset = torch.randint(1, k_tex, (n,), generator=g)
        texture_local = (shape_local + offset) % k_tex
    labels = shape_local if label_by == "shape" else texture_local
    n_classes = k_shape if label_by == "shape" else k_tex

    scene = _draw_scene(n, g, size)
    tagged = U(n) < tag_rate

    shape_ids = torch.tensor([SHAPES.index(s) for s in shapes])[shape_local]
    tex_ids = torch.tensor([TEXTURES.index(t) for t in textures])[texture_local]
    img = torch.empty(n, 3, size, size)
    silhouettes = torch.empty(n, 1, size, size, dtype=torch.bool)
    for start in range(0, n, _RENDER_CHUNK):  # rendering is deterministic: chunks bound memory
        part = slice(start, start + _RENDER_CHUNK)
        u, v, a, b = _scene_coordinates(scene, size, part)
        inside = _shape_masks(u, v, shape_ids[part])
        silhouettes[part] = inside[:, None]
        pattern = _textures(a, b, tex_ids[part])
        obj = torch.where(pattern[:, None], scene.ink[part, :, None, None], scene.paper[part, :, None, None])
        img[part] = torch.where(inside[:, None], obj, scene.bg[part, :, None, None]) + scene.noise[part]

    tag_mask = torch.zeros(1, 1, size, size, dtype=torch.bool)
    tag_mask[..., 1 : 1 + TAG_SIZE, 1 : 1 + TAG_SIZE] = True

    flipped = torch.zeros(n, dtype=torch.bool)
    if label_noise > 0:
        labels, flipped = flip_labels(labels, label_noise, n_classes=n_classes, seed=seed + 7919)
    if tagged.any():
        # the tag follows the (possibly noisy) label, as an annotator's watermark would
        pat = _tag_patterns(labels[tagged], n_classes).unsqueeze(1)
        patch = 0.05 + 0.9 * pat.expand(-1, 3, -1, -1)
        img[tagged, :, 1 : 1 + TAG_SIZE, 1 : 1 + TAG_SIZE] = patch
    return Shapes(
        img.clamp(0.0, 1.0), labels, shape_local, texture_local, flipped, tagged, tag_mask, silhouettes
    )


# Fixed seeds for the datasets the shipped models were trained and tested on.
SHAPES_SPLIT_SEEDS = {"train": 0, "test": 1, "val": 2}


def load_shapes(split: str = "train", n: int | None = None, **knobs) -> Shapes:
    """A fixed split of :func:`make_shapes` (train 4,000 / test 1,000 / val 1,000 images).

    ``knobs`` are passed to :func:`make_shapes`; the seed is fixed by the split, so the
    same call gives the same images everywhere.
    """
    if split not in SHAPES_SPLIT_SEEDS:
        raise ValueError(f"`split` must be one of {tuple(SHAPES_SPLIT_SEEDS)}, got {split!r}")
    default = 4000 if split == "train" else 1000
    return make_shapes(default if n is None else n, seed=1000 + SHAPES_SPLIT_SEEDS[split], **knobs)


def flip_labels(labels, rate: float, n_classes: int | None = None, seed: int = 0):
    """Flip exactly ``round(rate * len(labels))`` labels, each to a different random class.

    Returns ``(noisy_labels, flipped)`` of the input's kind (numpy array or torch
    tensor); ``flipped`` is a boolean mask of the changed labels. ``n_classes``
    defaults to ``max(labels) + 1``.
    """
    is_torch = isinstance(labels, torch.Tensor)
    y = labels.detach().cpu().numpy() if is_torch else np.asarray(labels)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"`labels` must be a 1-D array of integer class labels, got {y.dtype} {y.shape}")
    if not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
        raise ValueError(f"`rate` must be in [0, 1], got {rate!r}")
    k = int(y.max()) + 1 if n_classes is None else int(n_classes)
    if k < 2 or (len(y) and y.max() >= k) or (len(y) and y.min() < 0):
        raise ValueError(f"`n_classes` must be >= 2 and cover every label, got {n_classes!r}")
    rng = np.random.default_rng(seed)
    n_flip = int(round(rate * len(y)))
    idx = rng.choice(len(y), size=n_flip, replace=False)
    noisy = y.copy()
    noisy[idx] = (y[idx] + rng.integers(1, k, size=n_flip)) % k
    flipped = noisy != y
    if is_torch:
        return torch.as_tensor(noisy, dtype=labels.dtype), torch.as_tensor(flipped)
    return noisy, flipped


def concept_masks(shapes: Shapes) -> tuple[torch.Tensor, list[str]]:
    """Pixel masks of every concept a :func:`make_shapes` image is known to contain.

    Returns ``(masks, names)``: ``masks`` bool ``(N, K, size, size)``, ``names`` the K
    concept names, in this order: ``"object"`` (the silhouette), ``"background"`` (its
    complement, tag excluded), one per shape (``"circle"``...: the silhouette where the
    image shows that shape), one per texture (``"stripes"``...: the silhouette where it
    is filled with that texture) and ``"tag"`` (the corner tag where the image carries
    one). For the default four shapes and four textures (``Shapes.shape`` and
    ``Shapes.texture`` index :data:`SHAPES` and :data:`TEXTURES`); the ground truth of
    network dissection (lesson 11).
    """
    if shapes.mask is None:
        raise ValueError("`shapes` has no silhouettes (`mask`): make it with make_shapes")
    tag = shapes.tag.view(-1, 1, 1) & shapes.tag_mask[0, 0]
    obj = shapes.mask[:, 0] & ~tag  # the tag is pasted over whatever was there
    masks = [obj, ~obj & ~tag]
    masks += [obj & (shapes.shape == k).view(-1, 1, 1) for k in range(len(SHAPES))]
    masks += [obj & (shapes.texture == k).view(-1, 1, 1) for k in range(len(TEXTURES))]
    masks.append(tag)
    return torch.stack(masks, 1), ["object", "background", *SHAPES, *TEXTURES, "tag"]


# --------------------------------------------------------------------------- photographs

PHOTOS_DIR = pathlib.Path(__file__).resolve().parent / "photos"

# name -> (ImageNet-1k class index, its name in torchvision's ``weights.meta["categories"]``)
# for the class the photo mainly shows, or None where no ImageNet class fits. Approximate:
# a photo is not an ImageNet validation image, and e.g. a Falcon 9 launch is only roughly
# a "missile". The files are ``PHOTOS_DIR / f"{name}.jpg"``, in this order.
PHOTOS: dict[str, tuple[int, str] | None] = {
    "cat": (281, "tabby"),
    "coffee": (967, "espresso"),
    "astronaut": None,
    "rocket": (657, "missile"),
    "hubble_deep_field": None,
    "retina": None,
    "summer_palace": (698, "palace"),
    "dahlia": None,
    "grace_hopper": (652, "military uniform"),
    "raccoon": None,  # ImageNet-1k has no raccoon class
    "cameraman": (872, "tripod"),  # greyscale original
    "ascent": None,  # greyscale original
}
PHOTO_CLASSES: dict[str, int] = {name: c[0] for name, c in PHOTOS.items() if c is not None}


def load_photos(size: int = 224, names=None) -> tuple[torch.Tensor, list[str]]:
    """The shipped photographs as ``(x, names)``: ``x`` float32 ``(N, 3, size, size)`` in
    [0, 1], ``names`` the list of their names (keys of :data:`PHOTOS`).

    Each photo is resized (bicubic, antialiased) so that its short side is ``size``, then
    centre-cropped to ``size x size``; greyscale originals (``cameraman``, ``ascent``) are
    repeated over the three channels. The stored files are 256 px on the short side, so
    sizes above 256 are upsampled. Not ImageNet-normalised: apply the network's own
    normalisation (e.g. ``weights.transforms()``'s mean and std) yourself.

    ``names`` is ``None`` (all twelve, in :data:`PHOTOS` order) or a list of names, in the
    order wanted. The result is the same on every call and every machine. Nothing is
    downloaded. :data:`PHOTO_CLASSES` maps a photo to the ImageNet class index it mainly
    shows, where one fits (approximate). Sources and licences: ``interp_lib/photos/SOURCES.md``.
    """
    from PIL import Image

    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"`size` must be an int, got {type(size).__name__}")
    if not 8 <= size <= 1024:
        raise ValueError(f"`size` must be between 8 and 1024 pixels, got {size}")
    if names is None:
        names = list(PHOTOS)
    elif isinstance(names, str) or not isinstance(names, (list, tuple)):
        raise TypeError(f"`names` must be None or a list of photo names, got {names!r}")
    else:
        names = list(names)
        if not names:
            raise ValueError("`names` is empty; pass None for all photos")
        for name in names:
            if not isinstance(name, str):
                raise TypeError(f"photo names are strings, got {name!r}")
            if name not in PHOTOS:
                raise ValueError(f"unknown photo {name!r}; choose from {', '.join(PHOTOS)}")
    images = []
    for name in names:
        with Image.open(PHOTOS_DIR / f"{name}.jpg") as im:
            im = im.convert("RGB")
            w, h = im.size
            scale = size / min(w, h)
            new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
            im = im.resize((new_w, new_h), Image.Resampling.BICUBIC)
            left, top = (new_w - size) // 2, (new_h - size) // 2
            im = im.crop((left, top, left + size, top + size))
            images.append(np.asarray(im, dtype=np.float32) / 255.0)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return x, names


# --------------------------------------------------------------------------- scenes
# A richer procedural world for the deeper model (issue #15 §3): 64x64 scenes with several
# textured shapes drawn by the same code as make_shapes, on natural-image-like 1/f noise,
# under a lighting gradient, the labelled object partly occluded.


@dataclasses.dataclass
class Scenes:
    """A batch of generated scenes and everything known about them."""

    x: torch.Tensor  # (N, 3, size, size) float32 in [0, 1]
    y: torch.Tensor  # (N,) the label: the shape of the foreground (largest) object
    shape: torch.Tensor  # (N,) index into SHAPES of the foreground object
    texture: torch.Tensor  # (N,) index into TEXTURES of its fill (random: no shortcut)
    mask: torch.Tensor  # (N, 1, size, size) bool: the visible pixels of the foreground object
    occluded: torch.Tensor  # (N,) bool: a small object is drawn over the foreground one

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, idx) -> Scenes:
        return Scenes(
            self.x[idx], self.y[idx], self.shape[idx], self.texture[idx], self.mask[idx], self.occluded[idx]
        )


_SCENE_BLOCK = 64  # scenes drawn at once by make_scenes (fixed: the draws depend on it)


def _pink_noise(n: int, g: torch.Generator, size: int) -> torch.Tensor:
    """``(n, 1, size, size)`` noise with a 1/f amplitude spectrum (like natural images),
    zero mean and unit standard deviation per image."""
    white = torch.randn(n, 1, size, size, generator=g)
    f = torch.fft.fftfreq(size).abs()
    radius = torch.sqrt(f[:, None] ** 2 + f[None, :] ** 2).clamp(min=1.0 / size)
    field = torch.fft.ifft2(torch.fft.fft2(white) / radius).real
    field = field - field.mean((2, 3), keepdim=True)
    return field / field.std(dim=(2, 3), keepdim=True)


def _paint(img: torch.Tensor, scene: _Scene, shape_ids, tex_ids, present, size: int) -> torch.Tensor:
    """Draw one object per image (where ``present``) over ``img`` in place, with the
    shape masks and textures of :func:`make_shapes`; returns the drawn pixels' mask."""
    u, v, a, b = _scene_coordinates(scene, size)
    inside = _shape_masks(u, v, shape_ids) & present.view(-1, 1, 1)
    pattern = _textures(a, b, tex_ids)
    obj = torch.where(pattern[:, None], scene.ink[:, :, None, None], scene.paper[:, :, None, None])
    img.copy_(torch.where(inside[:, None], obj, img))
    return inside[:, None]


def _shrunk(scene: _Scene, factor: torch.Tensor) -> _Scene:
    return dataclasses.replace(scene, radius=scene.radius * factor)


def make_scenes(
    n: int,
    seed: int = 0,
    *,
    distractors: int = 2,
    occlusion: float = 0.5,
    lighting: float = 0.35,
    size: int = 64,
) -> Scenes:
    """Generate ``n`` scenes; the label is the shape of the largest (foreground) object.

    Each scene, drawn from ``seed`` in blocks of 64 images (so the first ``n`` scenes of a
    seed do not depend on ``n``; each block: foreground shape,
    the distractors' and occluder's shapes, all textures, then the geometry and colours
    of the foreground, distractors and occluder as in :func:`make_shapes`, then the
    background, occlusion flags and lighting):

    * background: a random dark colour plus coloured 1/f noise (natural-image-like);
    * ``distractors`` objects of random shape and texture at 40-55 % of the foreground's
      radius (so always smaller than it), behind the foreground object;
    * the foreground object: random shape (the label), random texture (no shortcut),
      radius 14-24 px at 64 px;
    * with probability ``occlusion`` a third small object (30-45 % of the radius) is drawn
      over the foreground's edge (partial occlusion);
    * a linear lighting gradient (gain ``1 +- lighting`` across the image, random
      direction) and pixel noise.

    ``Scenes.mask`` holds the foreground's visible pixels. Same call, same images.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        raise ValueError(f"`n` must be a positive int, got {n!r}")
    if not isinstance(distractors, int) or isinstance(distractors, bool) or not 0 <= distractors <= 4:
        raise ValueError(f"`distractors` must be an int from 0 to 4, got {distractors!r}")
    for name, rate in (("occlusion", occlusion), ("lighting", lighting)):
        if not isinstance(rate, (int, float)) or not 0.0 <= rate <= 1.0:
            raise ValueError(f"`{name}` must be in [0, 1], got {rate!r}")
    if not isinstance(size, int) or size < 32:
        raise ValueError(f"`size` must be an int >= 32 pixels, got {size!r}")
    g = torch.Generator().manual_seed(int(seed))
    k = len(SHAPES)
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size - 0.5
    py, px = torch.meshgrid(coords, coords, indexing="ij")
    parts = []
    for _start in range(0, n, _SCENE_BLOCK):
        m = _SCENE_BLOCK
        U = lambda *shape: torch.rand(*shape, generator=g)  # noqa: E731
        shape_ids = torch.randint(
            k, (distractors + 2, m), generator=g
        )  # [foreground, distractors..., occluder]
        tex_ids = torch.randint(len(TEXTURES), (distractors + 2, m), generator=g)
        fg = _draw_scene(m, g, size)
        others = [_shrunk(_draw_scene(m, g, size), 0.40 + 0.15 * U(m)) for _ in range(distractors)]
        occluder = _shrunk(_draw_scene(m, g, size), 0.30 + 0.15 * U(m))
        phi = 2 * math.pi * U(m)
        reach = fg.radius * (0.75 + 0.25 * U(m))  # the occluder's centre: near the foreground's edge
        occluder = dataclasses.replace(
            occluder, cx=fg.cx + reach * torch.cos(phi), cy=fg.cy + reach * torch.sin(phi)
        )
        base = 0.1 + 0.3 * U(m, 3)
        tint = 0.5 + 0.5 * U(m, 3)
        contrast = 0.06 + 0.08 * U(m, 1)
        img = base[:, :, None, None] + contrast[:, :, None, None] * tint[:, :, None, None] * _pink_noise(
            m, g, size
        )
        occluded = U(m) < occlusion
        light_angle = 2 * math.pi * U(m)
        strength = lighting * U(m)
        everywhere = torch.ones(m, dtype=torch.bool)
        for j, obj in enumerate(others):
            _paint(img, obj, shape_ids[1 + j], tex_ids[1 + j], everywhere, size)
        mask = _paint(img, fg, shape_ids[0], tex_ids[0], everywhere, size)
        mask &= ~_paint(img, occluder, shape_ids[-1], tex_ids[-1], occluded, size)
        ramp = torch.cos(light_angle).view(-1, 1, 1) * px + torch.sin(light_angle).view(-1, 1, 1) * py
        img = img * (1 + 2 * strength.view(-1, 1, 1, 1) * ramp[:, None]) + fg.noise
        parts.append((img.clamp(0.0, 1.0), shape_ids[0], tex_ids[0], mask, occluded))
    x, shape, texture, mask, occluded = (torch.cat(p)[:n] for p in zip(*parts))
    return Scenes(x, shape.clone(), shape, texture, mask, occluded)


SCENES_SPLIT_SEEDS = {"train": 0, "test": 1, "val": 2}


def load_scenes(split: str = "train", n: int | None = None, **knobs) -> Scenes:
    """A fixed split of :func:`make_scenes` (train 4,000 / test 1,000 / val 1,000 scenes).

    ``knobs`` are passed to :func:`make_scenes`; the seed is fixed by the split. ``n``
    smaller than the default gives the split's first ``n`` scenes.
    """
    if split not in SCENES_SPLIT_SEEDS:
        raise ValueError(f"`split` must be one of {tuple(SCENES_SPLIT_SEEDS)}, got {split!r}")
    default = 4000 if split == "train" else 1000
    return make_scenes(default if n is None else n, seed=2000 + SCENES_SPLIT_SEEDS[split], **knobs)


__all__ += ["Scenes", "make_scenes", "load_scenes", "SCENES_SPLIT_SEEDS"]
