"""The shipped photographs (interp_lib/photos/): offline loading, licences, bad input."""

import re

import pytest
import torch

from interp_lib import data
from interp_lib.course.common import ROOT

ALLOWED_LICENCES = ("public domain", "CC0 1.0", "CC BY 2.0")


def test_load_photos_shapes_range_and_names():
    x, names = data.load_photos()
    assert names == list(data.PHOTOS) and 12 <= len(names) <= 20
    assert x.shape == (len(names), 3, 224, 224) and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert x.std(dim=(1, 2, 3)).min() > 0.05  # real pictures, not blanks
    colour = x[[names.index(n) for n in ("cat", "coffee", "summer_palace")]]
    assert (colour[:, 0] - colour[:, 2]).abs().mean() > 0.02  # colour photos have colour
    grey = x[names.index("cameraman")]
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])


def test_load_photos_is_deterministic_and_selects():
    a, _ = data.load_photos(size=64)
    b, _ = data.load_photos(size=64)
    assert torch.equal(a, b)
    some, names = data.load_photos(size=64, names=("coffee", "cat"))
    assert names == ["coffee", "cat"]
    assert torch.equal(some[1], a[list(data.PHOTOS).index("cat")])
    big, _ = data.load_photos(size=300, names=["retina"])
    assert big.shape == (1, 3, 300, 300)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"size": 224.0}, TypeError, "`size` must be an int"),
        ({"size": True}, TypeError, "`size` must be an int"),
        ({"size": 4}, ValueError, "between 8 and 1024"),
        ({"size": 5000}, ValueError, "between 8 and 1024"),
        ({"names": "cat"}, TypeError, "list of photo names"),
        ({"names": []}, ValueError, "empty"),
        ({"names": ["dog"]}, ValueError, "unknown photo 'dog'; choose from cat, coffee"),
        ({"names": [3]}, TypeError, "strings"),
    ],
)
def test_load_photos_bad_input(kwargs, error, match):
    with pytest.raises(error, match=match):
        data.load_photos(**kwargs)


def test_sources_list_every_photo_with_an_allowed_licence():
    files = sorted(p.name for p in data.PHOTOS_DIR.glob("*") if p.name != "SOURCES.md")
    assert files == sorted(f"{n}.jpg" for n in data.PHOTOS)
    text = (data.PHOTOS_DIR / "SOURCES.md").read_text(encoding="utf-8")
    rows = {m[1]: m[2] for m in re.finditer(r"^\| `([\w]+\.jpg)` \|(.*)\|\s*$", text, re.M)}
    assert sorted(rows) == files
    for name, row in rows.items():
        cells = [c.strip() for c in row.split("|")]
        assert len(cells) == 4 and all(cells), name  # shows, source, author, licence
        assert cells[3].startswith(ALLOWED_LICENCES), (name, cells[3])
        if "CC BY" in cells[3]:  # attribution given in its own section
            assert re.search(rf"`{re.escape(name)}`: photo by", text), name
    assert "resized" in text and "256 px" in text  # the changes made


def test_photos_are_small_and_shipped():
    sizes = {p.name: p.stat().st_size for p in data.PHOTOS_DIR.glob("*.jpg")}
    assert max(sizes.values()) < 80_000 and sum(sizes.values()) < 1_000_000
    pyproject = (ROOT / "pyproject.toml").read_text()  # no tomllib on Python 3.10
    line = re.search(r"^\[tool\.setuptools\.package-data\]\ninterp_lib = (.*)$", pyproject, re.M)[1]
    assert '"photos/*.jpg"' in line and '"photos/SOURCES.md"' in line


def test_photo_classes_match_torchvision_categories():
    import torchvision

    categories = torchvision.models.get_model_weights("resnet18").DEFAULT.meta["categories"]
    for name, cls in data.PHOTOS.items():
        if cls is not None:
            assert categories[cls[0]] == cls[1], name
            assert data.PHOTO_CLASSES[name] == cls[0]
    assert data.PHOTO_CLASSES["cat"] == 281 and data.PHOTO_CLASSES["coffee"] == 967
