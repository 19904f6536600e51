"""The lessons' "On real photographs" sections (lessons 02-10), each run on its own.

Every code cell tagged ``real-photos`` is taken from the stored notebook and executed in a
fresh namespace (the sections import and load everything themselves), in solutions mode:

* with stand-in weights: randomly initialised state dicts saved under the file names
  torchvision expects, in a temporary torch cache (``TORCH_HOME``, ``torch.hub._hub_dir``
  reset), never the network and never the real cache. The section's ``SIZE = ...`` knob is
  set to 32 pixels, so even VGG-16 is cheap. This proves the code path runs end to end
  (exercises, normalisation, plots); random weights say nothing about the pictures.
* without weights (an empty cache): each section prints the one line of
  ``models.imagenet_or_skip`` and nothing else, and draws nothing.
"""

import pathlib
import re

import matplotlib
import matplotlib.pyplot as plt
import nbformat
import pytest
import torch
import torchvision

from interp_lib import models

matplotlib.use("Agg")

LESSONS_DIR = pathlib.Path(__file__).resolve().parents[1] / "lessons"
LESSONS = [f"{n:02d}" for n in range(2, 11)]
TAG = "real-photos"
SIZE = 32  # the photo size the sections run at here


def section(lesson: str) -> list[nbformat.NotebookNode]:
    (path,) = LESSONS_DIR.glob(f"{lesson}_*.ipynb")
    return [c for c in nbformat.read(path, as_version=4).cells if TAG in c.metadata.get("tags", [])]


def run_section(lesson: str, capsys, monkeypatch) -> tuple[str, int]:
    """Execute the lesson's tagged cells in one fresh namespace; (printed text, figures shown)."""
    shown = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: shown.append(len(plt.get_fignums())))
    namespace = {"__name__": f"real_photos_{lesson}"}
    try:
        for cell in section(lesson):
            source, n = re.subn(r"^SIZE = \d+", f"SIZE = {SIZE}", cell.source, flags=re.M)
            assert n <= 1
            exec(compile(source, f"<lesson {lesson}, cell {cell.id}>", "exec"), namespace)
    finally:
        plt.close("all")
    return capsys.readouterr().out, len(shown)


def test_every_lesson_has_one_tagged_section_skipped_by_nbval():
    for lesson in LESSONS:
        cells = section(lesson)
        assert cells, f"lesson {lesson} has no cell tagged {TAG!r}"
        for cell in cells:
            assert cell.cell_type == "code" and "nbval-skip" in cell.metadata["tags"]
            assert "imagenet_or_skip(" in cell.source and "On real photographs" not in cell.source
            assert re.search(r"^SIZE = \d+", cell.source, flags=re.M), f"lesson {lesson}: no SIZE knob"
        (path,) = LESSONS_DIR.glob(f"{lesson}_*.ipynb")
        cells = nbformat.read(path, as_version=4).cells
        headings = [i for i, c in enumerate(cells) if c.source.startswith("## On real photographs")]
        assert len(headings) == 1, f"lesson {lesson}: one section 'On real photographs'"
        tagged = [i for i, c in enumerate(cells) if TAG in c.metadata.get("tags", [])]
        assert min(tagged) > headings[0]


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # get_dir() follows TORCH_HOME again
    monkeypatch.setenv("INTERP_LIB_SOLUTIONS", "all")
    assert torch.hub.get_dir() == str(tmp_path / "hub")
    return tmp_path


@pytest.fixture(scope="module")
def stand_in_checkpoints(tmp_path_factory):
    """Random state dicts of the three networks under torchvision's file names (made once)."""
    folder = tmp_path_factory.mktemp("stand_in_weights")
    torch.manual_seed(0)
    for name in models.IMAGENET_MODELS:
        file = pathlib.Path(models.imagenet_weights(name).url).name
        torch.save(torchvision.models.get_model(name, weights=None).state_dict(), folder / file)
    return folder


@pytest.fixture
def with_stand_ins(torch_home, stand_in_checkpoints):
    checkpoints = torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    for file in stand_in_checkpoints.iterdir():
        (checkpoints / file.name).symlink_to(file)
    for name in models.IMAGENET_MODELS:
        assert models.imagenet_weights_path(name).parent == checkpoints  # not the real cache
    return checkpoints


@pytest.mark.parametrize("lesson", LESSONS)
def test_section_runs_with_stand_in_weights(lesson, with_stand_ins, capsys, monkeypatch):
    out, figures = run_section(lesson, capsys, monkeypatch)
    assert "skipped" not in out
    assert figures >= 1 and out.strip(), f"lesson {lesson}: the section printed or drew nothing"


@pytest.mark.parametrize("lesson", LESSONS)
def test_section_without_weights_prints_one_line(lesson, torch_home, capsys, monkeypatch):
    out, figures = run_section(lesson, capsys, monkeypatch)
    lines = out.splitlines()
    assert len(lines) == len(section(lesson)) and figures == 0
    for line in lines:
        assert line.startswith("skipped: the ImageNet weights of ")
        assert re.search(r"`python -m interp_lib fetch-weights (squeezenet1_1|resnet18|vgg16)` once", line)
    assert not (torch_home / "hub").exists() or not any((torch_home / "hub").rglob("*.pth"))


def test_weight_file_names_are_torchvisions():
    """The cache check needs no torchvision import; its table must name torchvision's files."""
    assert set(models.IMAGENET_WEIGHT_FILES) == set(models.TORCHVISION_MODELS)
    for name, file in models.IMAGENET_WEIGHT_FILES.items():
        assert file == pathlib.Path(models.imagenet_weights(name).url).name
    with pytest.raises(ValueError, match="unknown torchvision model 'resnet50'"):
        models.imagenet_weights_path("resnet50")


def test_imagenet_or_skip_and_pixel_model(torch_home):
    said = []
    assert models.imagenet_or_skip("resnet18", out=said.append) is None
    assert said == [
        "skipped: the ImageNet weights of resnet18 are not in torch's cache; with internet run "
        "`python -m interp_lib fetch-weights resnet18` once, then this cell again"
    ]
    net = torchvision.models.get_model("squeezenet1_1", weights=None).eval()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    mean = torch.tensor(models.IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(models.IMAGENET_STD)[:, None, None]
    wrapped = models.pixel_model(net)
    assert wrapped.net is net and not wrapped.training
    with torch.no_grad():
        assert torch.allclose(wrapped(x), net((x - mean) / std), atol=1e-6)


def test_photo_cue_conflict_keeps_texture_tiles_and_shape_luminance():
    from interp_lib import data
    from interp_lib.shape_bias import photo_cue_conflict

    x, _ = data.load_photos(64, ["cat", "coffee"])
    shape = torch.full((3, 64, 64), 0.4)  # a flat grey "shape": every tile's luminance becomes 0.4
    out = photo_cue_conflict(shape, x[1], patch=16, generator=torch.Generator().manual_seed(3))
    weights = torch.tensor([0.299, 0.587, 0.114])[:, None, None]
    tile_lum = (out * weights).sum(0).unfold(0, 16, 16).unfold(1, 16, 16).mean((2, 3))
    unclipped = out.unfold(1, 16, 16).unfold(2, 16, 16).amax((0, 3, 4)) < 1  # (bright highlights clip at 1)
    assert unclipped.sum() >= 8 and torch.allclose(tile_lum[unclipped], torch.tensor(0.4), atol=1e-5)
    # each output tile is a texture tile rescaled: same colours up to one factor
    order = torch.randperm(16, generator=torch.Generator().manual_seed(3))
    source = x[1].unfold(1, 16, 16).unfold(2, 16, 16).reshape(3, 16, 16, 16)[:, order[5]]
    tile = out.unfold(1, 16, 16).unfold(2, 16, 16).reshape(3, 16, 16, 16)[:, 5]
    ratio = tile / source.clamp(min=1e-3)
    assert ratio.std() / ratio.mean() < 0.05
    same = photo_cue_conflict(x[0], x[1], generator=torch.Generator().manual_seed(0))
    assert torch.equal(same, photo_cue_conflict(x[0], x[1], generator=torch.Generator().manual_seed(0)))
    assert same.shape == (3, 64, 64) and 0 <= same.min() and same.max() <= 1
    with pytest.raises(ValueError, match="multiples of patch=16"):
        photo_cue_conflict(x[0, :, :60, :60], x[1, :, :60, :60])
