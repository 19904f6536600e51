"""``python -m interp_lib fetch-weights [name ...]``: torchvision's ImageNet weights, on request.

The only command of the course that downloads anything. It puts each network's weights
where torch itself keeps them - ``torch.hub.get_dir()/checkpoints/<file name of the
weights' URL>``, the file ``weights.get_state_dict()`` / ``torch.hub.load_state_dict_from_url``
would write - so :func:`interp_lib.models.imagenet_model` and torchvision find them, and
so would any other code on this machine. Weights already there are reported, not
downloaded again. Default: SqueezeNet 1.1, ResNet-18 and VGG-16 (about 577 MB together).
"""

from __future__ import annotations

import pathlib
import urllib.error

import torch

from .. import models


def _download(url: str, path: pathlib.Path, progress: bool) -> None:
    """torch.hub's own download: to a temporary file, SHA-256 checked against the hash
    prefix in the file name (as ``load_state_dict_from_url(check_hash=True)``), then moved."""
    match = torch.hub.HASH_REGEX.search(path.name)
    torch.hub.download_url_to_file(url, str(path), match.group(1) if match else None, progress=progress)


def _megabytes(path: pathlib.Path) -> str:
    return f"{path.stat().st_size / 1e6:.1f} MB"


def fetch_weights(names=None, progress: bool = True, out=print) -> list[dict]:
    """Fetch the ImageNet weights of ``names`` (default :data:`models.IMAGENET_MODELS`)
    into torch's cache; one line per network to ``out``. Returns per network its name,
    path, size in bytes and whether it was ``fetched`` (False: already there). Unknown
    names raise ``SystemExit`` listing the choices (before anything is downloaded); a
    failed download raises ``SystemExit`` with one line saying why."""
    names = list(names or models.IMAGENET_MODELS)
    unknown = [n for n in names if n not in models.TORCHVISION_MODELS]
    if unknown:
        raise SystemExit(
            f"fetch-weights: unknown network(s) {', '.join(unknown)}; "
            f"choose from {', '.join(models.TORCHVISION_MODELS)}"
        )
    done = []
    for name in dict.fromkeys(names):  # each once, in the order given
        url = models.imagenet_weights(name).url
        path = models.imagenet_weights_path(name)
        fetched = not path.exists()
        if fetched:
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                _download(url, path, progress)
            except (urllib.error.URLError, OSError, RuntimeError) as error:
                reason = getattr(error, "reason", None) or error
                raise SystemExit(
                    f"fetch-weights: could not download {name} from {url} ({reason}); "
                    "check the internet connection and try again"
                ) from None
            out(f"{name}: fetched {_megabytes(path)} -> {path}")
        else:
            out(f"{name}: already in torch's cache ({_megabytes(path)}) at {path}; not downloaded again")
        done.append({"name": name, "path": str(path), "bytes": path.stat().st_size, "fetched": fetched})
    n_new = sum(d["fetched"] for d in done)
    total = sum(d["bytes"] for d in done) / 1e6
    out(f"{n_new} fetched, {len(done) - n_new} already there; {total:.1f} MB in {path.parent}")
    return done
