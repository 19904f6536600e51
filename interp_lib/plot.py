"""Plotting for the lessons: image grids, attribution heatmaps, curves (matplotlib).

Colour maps are colour-blind safe: ``"cividis"`` for unsigned maps and a diverging
``"RdBu_r"`` centred at 0 for signed relevance (red positive, blue negative).
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = [
    "montage",
    "to_image",
    "image_grid",
    "heatmap",
    "heatmap_grid",
    "curves",
    "confusion_matrix",
    "SIGNED_CMAP",
    "UNSIGNED_CMAP",
]

SIGNED_CMAP = "RdBu_r"
UNSIGNED_CMAP = "cividis"


def to_image(x) -> np.ndarray:
    """``(C, H, W)`` or ``(H, W)`` tensor/array -> ``(H, W)`` or ``(H, W, 3)`` array for imshow."""
    arr = x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=float)
    if arr.ndim == 3:
        arr = arr[0] if arr.shape[0] == 1 else np.transpose(arr, (1, 2, 0))
    return arr


def _axes_grid(n: int, ncols: int | None, size: float):
    ncols = min(n, ncols or n)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.3), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    return fig, axes.flat


def image_grid(
    images,
    titles: Sequence[str] | None = None,
    ncols: int | None = 8,
    size: float = 1.4,
    cmap: str = "gray",
    suptitle: str | None = None,
):
    """Show a batch of images ``(N, C, H, W)`` (values in [0, 1]) in a grid; returns the figure."""
    images = list(images)
    fig, axes = _axes_grid(len(images), ncols, size)
    for i, (ax, img) in enumerate(zip(axes, images)):
        ax.imshow(np.clip(to_image(img), 0, 1), cmap=cmap, vmin=0, vmax=1)
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def heatmap(ax, attribution, signed: bool = True, image=None, alpha: float = 0.6, title: str | None = None):
    """Draw one attribution map on ``ax`` (channels summed), optionally over ``image``.

    Signed maps use a diverging colour map centred at 0 (symmetric limits); unsigned
    maps use ``cividis`` from 0.
    """
    a = to_image(attribution)
    if a.ndim == 3:
        a = a.sum(-1)
    if image is not None:
        ax.imshow(np.clip(to_image(image), 0, 1), cmap="gray")
    if signed:
        lim = float(np.abs(a).max()) or 1.0
        im = ax.imshow(a, cmap=SIGNED_CMAP, vmin=-lim, vmax=lim, alpha=alpha if image is not None else 1.0)
    else:
        im = ax.imshow(
            a,
            cmap=UNSIGNED_CMAP,
            vmin=0,
            vmax=float(a.max()) or 1.0,
            alpha=alpha if image is not None else 1.0,
        )
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    return im


def heatmap_grid(
    rows: dict[str, torch.Tensor],
    images=None,
    signed: bool | dict = True,
    size: float = 1.5,
    col_titles: Sequence[str] | None = None,
):
    """One row per method (``{name: attributions (N, C, H, W)}``), one column per image.

    With ``images`` given, a first row shows the inputs.
    """
    names = list(rows)
    n = len(next(iter(rows.values())))
    extra = 1 if images is not None else 0
    fig, axes = plt.subplots(
        len(names) + extra, n, figsize=(size * n + 1.2, size * (len(names) + extra)), squeeze=False
    )
    if images is not None:
        for j in range(n):
            axes[0, j].imshow(np.clip(to_image(images[j]), 0, 1), cmap="gray")
            axes[0, j].axis("off")
            if col_titles is not None:
                axes[0, j].set_title(col_titles[j], fontsize=8)
    for i, name in enumerate(names):
        sgn = signed[name] if isinstance(signed, dict) else signed
        for j in range(n):
            heatmap(axes[i + extra, j], rows[name][j], signed=sgn)
        axes[i + extra, 0].text(
            -0.1, 0.5, name, transform=axes[i + extra, 0].transAxes, ha="right", va="center", fontsize=9
        )
    fig.tight_layout()
    return fig


def curves(
    x,
    ys: dict[str, Sequence[float]],
    xlabel: str = "",
    ylabel: str = "",
    title: str | None = None,
    ax=None,
    **kwargs,
):
    """Several named curves over the same x; returns the axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.6))
    for (name, y), style in zip(ys.items(), ["o-", "s-", "^-", "d-", "v-", "x-", "*-", "p-"] * 3):
        ax.plot(x, y, style, label=name, **kwargs)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def confusion_matrix(y_true, y_pred, labels: Sequence[str], ax=None, title: str | None = None):
    """A confusion matrix (rows: true class, columns: predicted) with counts written in."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    k = len(labels)
    cm = np.zeros((k, k), dtype=int)
    np.add.at(cm, (y_true, y_pred), 1)
    if ax is None:
        _, ax = plt.subplots(figsize=(0.45 * k + 1.5, 0.45 * k + 1.2))
    ax.imshow(cm, cmap=UNSIGNED_CMAP)
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                ax.text(
                    j,
                    i,
                    cm[i, j],
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="black" if cm[i, j] > cm.max() / 2 else "white",
                )
    ax.set_xticks(range(k), labels, fontsize=8, rotation=45 if max(map(len, labels)) > 2 else 0)
    ax.set_yticks(range(k), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    return ax


def montage(images: torch.Tensor, ncols: int, pad: int = 1, pad_value: float = 1.0) -> torch.Tensor:
    """Tile ``images`` ``(N, C, H, W)`` into one ``(C, H', W')`` image, ``ncols`` per row.

    One ``imshow`` of a montage is far faster than a grid of axes when there are hundreds
    of small images.
    """
    n, c, h, w = images.shape
    nrows = (n + ncols - 1) // ncols
    out = torch.full((c, nrows * (h + pad) + pad, ncols * (w + pad) + pad), pad_value, dtype=images.dtype)
    for i in range(n):
        r, k = divmod(i, ncols)
        top, left = pad + r * (h + pad), pad + k * (w + pad)
        out[:, top : top + h, left : left + w] = images[i]
    return out
