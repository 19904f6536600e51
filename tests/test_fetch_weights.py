"""`python -m interp_lib fetch-weights` and models.imagenet_model, with stand-in weights.

No network here: the download is replaced by a stand-in that saves a randomly initialised
state dict under the file name torchvision expects, in a temporary torch cache (TORCH_HOME);
the real cache is never touched.
"""

import urllib.error

import pytest
import torch
import torchvision

from interp_lib import data, models
from interp_lib.course import cli, fetch_weights

NAME = "squeezenet1_1"  # the smallest of the three (5 MB)


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # get_dir() follows TORCH_HOME again
    assert torch.hub.get_dir() == str(tmp_path / "hub")
    return tmp_path


@pytest.fixture
def stand_in(monkeypatch):
    """Replace the download; returns the list of (url, path) it was asked for."""
    calls = []
    state = torchvision.models.get_model(NAME, weights=None).state_dict()

    def fake_download(url, path, progress):
        calls.append((url, path))
        torch.save(state, path)

    monkeypatch.setattr(fetch_weights, "_download", fake_download)
    return calls


def test_fetch_reports_what_size_and_where_then_is_idempotent(torch_home, stand_in):
    lines = []
    result = fetch_weights.fetch_weights([NAME], progress=False, out=lines.append)
    path = torch_home / "hub" / "checkpoints" / "squeezenet1_1-b8a52dc0.pth"
    assert stand_in == [(models.imagenet_weights(NAME).url, path)]
    assert result == [{"name": NAME, "path": str(path), "bytes": path.stat().st_size, "fetched": True}]
    assert lines[0] == f"{NAME}: fetched {path.stat().st_size / 1e6:.1f} MB -> {path}"
    assert lines[-1].startswith("1 fetched, 0 already there;") and str(path.parent) in lines[-1]
    lines.clear()
    again = fetch_weights.fetch_weights([NAME, NAME], progress=False, out=lines.append)
    assert len(stand_in) == 1 and [r["fetched"] for r in again] == [False]
    assert lines[0].startswith(f"{NAME}: already in torch's cache (") and "not downloaded again" in lines[0]


def test_cli_fetch_weights(torch_home, stand_in, capsys):
    assert cli.main(["fetch-weights", NAME, "--quiet"]) == 0
    assert cli.main(["fetch-weights", NAME]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{NAME}: fetched ") and out[2].startswith(f"{NAME}: already in torch's cache")
    assert len(stand_in) == 1
    with pytest.raises(SystemExit, match="unknown network.*alexnet; choose from vgg16, .*squeezenet1_1"):
        cli.main(["fetch-weights", "resnet18", "alexnet"])
    assert len(stand_in) == 1  # nothing fetched when a name is wrong


def test_default_is_the_three_networks(torch_home, stand_in):
    fetch_weights.fetch_weights(progress=False, out=lambda line: None)
    assert [url.rsplit("/", 1)[-1] for url, _ in stand_in] == [
        "squeezenet1_1-b8a52dc0.pth",
        "resnet18-f37072fd.pth",
        "vgg16-397923af.pth",
    ]


def test_no_network_is_one_clear_line(torch_home, monkeypatch):
    asked = []

    def offline(url, dst, hash_prefix=None, progress=True):
        asked.append(hash_prefix)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(SystemExit) as info:
        fetch_weights.fetch_weights([NAME], progress=False)
    message = str(info.value)
    assert "\n" not in message and "could not download squeezenet1_1" in message
    assert "internet connection" in message and "name resolution" in message
    assert asked == ["b8a52dc0"]  # torch.hub checks the SHA-256 prefix of the file name
    assert not list((torch_home / "hub" / "checkpoints").iterdir())


def test_imagenet_model_with_stand_in_weights(torch_home, stand_in):
    with pytest.raises(models.WeightsMissing, match=f"python -m interp_lib fetch-weights {NAME}"):
        models.imagenet_model(NAME)
    fetch_weights.fetch_weights([NAME], progress=False, out=lambda line: None)
    model, categories = models.imagenet_model(NAME)
    assert not model.training and len(categories) == 1000 and categories[281] == "tabby"
    saved = torch.load(stand_in[0][1], weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
    x, _ = data.load_photos(names=["cat", "coffee"])
    mean = torch.tensor(models.IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(models.IMAGENET_STD)[:, None, None]
    with torch.no_grad():
        assert model((x - mean) / std).shape == (2, 1000)
    with pytest.raises(ValueError, match="unknown torchvision model"):
        models.imagenet_model("alexnet")
