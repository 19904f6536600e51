"""Plotting for the lessons: image grids, attribution heatmaps, curves (matplotlib).

The figure convention (issue #14), the same in every lesson and widget:

* Signed maps use the diverging ``SIGNED_CMAP`` (``"RdBu_r"``: red positive, blue
  negative) centred at 0 with symmetric limits ``±L``; unsigned maps use the sequential
  ``UNSIGNED_CMAP`` (``"cividis"``) from 0 to ``L``. ``L`` is the ``clip_percentile``-th
  percentile of ``|a|`` (99 by default, as captum's visualisation clips), so a few extreme
  pixels do not wash out the rest; :func:`limits` computes it, and everything uses it.
* Every heatmap has a colour bar: :func:`heatmap` draws one unless its caller draws a
  shared one; :func:`heatmap_grid` draws one per row (or one for the grid).
* A grid that compares shares its scale (:func:`heatmap_grid`'s ``shared``); a panel on
  its own scale says so (``"(own scale)"``).
* ``image=`` / ``overlay=True`` draws the map over the grey image with ``alpha``.
* Titles are at least ``TITLE_SIZE`` (9) pt, colour-bar tick labels ``TICK_SIZE`` (8) pt.

Both colour maps are colour-blind safe.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

__all__ = [
    "montage",
    "to_image",
    "limits",
    "image_grid",
    "heatmap",
    "heatmap_grid",
    "curves",
    "confusion_matrix",
    "heatmap_images",
    "heatmaps_without_colorbar",
    "SIGNED_CMAP",
    "UNSIGNED_CMAP",
    "CLIP_PERCENTILE",
    "TITLE_SIZE",
    "TICK_SIZE",
]

SIGNED_CMAP = "RdBu_r"
UNSIGNED_CMAP = "cividis"
CLIP_PERCENTILE = 99.0
TITLE_SIZE = 9
TICK_SIZE = 8
# colour maps of images, not of heatmaps (heatmaps_without_colorbar skips them)
GREY_CMAPS = ("gray", "gray_r", "Greys", "Greys_r", "binary", "binary_r", "gist_gray", "gist_gray_r")


def to_image(x) -> np.ndarray:
    """``(C, H, W)`` or ``(H, W)`` tensor/array -> ``(H, W)`` or ``(H, W, 3)`` array for imshow."""
    arr = x.detach().cpu().float().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=float)
    if arr.ndim == 3:
        arr = arr[0] if arr.shape[0] == 1 else np.transpose(arr, (1, 2, 0))
    return arr


def _map2d(attribution) -> np.ndarray:
    """An attribution ``(C, H, W)``/``(H, W)`` as one ``(H, W)`` map (channels summed)."""
    a = to_image(attribution)
    return a.sum(-1) if a.ndim == 3 else a


def limits(a, signed: bool = True, clip_percentile: float = CLIP_PERCENTILE) -> tuple[float, float]:
    """Colour limits ``(vmin, vmax)`` of a map, or of several maps sharing one scale.

    ``L`` is the ``clip_percentile``-th percentile of ``|a|`` over all (finite) values of
    ``a`` (a tensor, an array or a list of them); values beyond it saturate. Signed maps
    get ``(-L, L)``, unsigned maps ``(0, L)``. When the percentile is 0 (a map that is
    mostly zeros), ``L`` is ``max |a|``; an all-zero map gets ``L = 1``.
    """
    parts = a if isinstance(a, (list, tuple)) else [a]
    values = np.abs(np.concatenate([to_image(p).ravel() for p in parts]))
    values = values[np.isfinite(values)]
    lim = float(np.percentile(values, clip_percentile)) if values.size else 0.0
    if lim <= 0:
        lim = float(values.max()) if values.size else 0.0
    lim = lim or 1.0
    return (-lim, lim) if signed else (0.0, lim)


def _colorbar(im, **where):
    """A colour bar for ``im`` (``ax=`` beside one axes, or ``cax=``), ticks at ``TICK_SIZE``."""
    cb = im.axes.figure.colorbar(im, **where)
    cb.ax.tick_params(labelsize=TICK_SIZE)
    return cb


def _grey(image) -> np.ndarray:
    """An image in [0, 1] as one grey ``(H, W)`` channel (RGB averaged), for overlays."""
    img = np.clip(to_image(image), 0, 1)
    return img.mean(-1) if img.ndim == 3 else img


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
            ax.set_title(titles[i], fontsize=TITLE_SIZE)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def heatmap(
    ax,
    attribution,
    signed: bool = True,
    image=None,
    alpha: float = 0.6,
    title: str | None = None,
    *,
    clip_percentile: float = CLIP_PERCENTILE,
    lim: tuple[float, float] | None = None,
    colorbar: bool = True,
):
    """Draw one attribution map on ``ax`` (channels summed); returns the ``AxesImage``.

    Signed maps: ``SIGNED_CMAP`` centred at 0; unsigned: ``UNSIGNED_CMAP`` from 0; the
    limits are ``lim`` if given (a scale shared with other panels), else
    ``limits(attribution, signed, clip_percentile)``. With ``image`` (in [0, 1]) the map
    is drawn with ``alpha`` over the image in grey. ``colorbar=False`` only when the
    caller draws a shared colour bar for this image.
    """
    a = _map2d(attribution)
    vmin, vmax = lim if lim is not None else limits(a, signed, clip_percentile)
    if image is not None:
        ax.imshow(_grey(image), cmap="gray", vmin=0, vmax=1)
    im = ax.imshow(
        a,
        cmap=SIGNED_CMAP if signed else UNSIGNED_CMAP,
        vmin=vmin,
        vmax=vmax,
        alpha=alpha if image is not None else None,
    )
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=TITLE_SIZE)
    if colorbar:
        _colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return im


def heatmap_grid(
    rows: dict[str, torch.Tensor],
    images=None,
    signed: bool | dict = True,
    size: float = 1.5,
    col_titles: Sequence[str] | None = None,
    *,
    shared: bool | str = True,
    clip_percentile: float = CLIP_PERCENTILE,
    overlay: bool = False,
    alpha: float = 0.6,
):
    """One row per method (``{name: attributions (N, C, H, W)}``), one column per image.

    With ``images`` given, a first row shows the inputs (and ``overlay=True`` draws each
    map over its image in grey with ``alpha``). ``signed`` is one flag or one per row.

    ``shared`` sets the colour scale (limits from :func:`limits` at ``clip_percentile``):

    * ``True`` or ``"row"`` (default): one scale per row, with its colour bar at the
      row's end. Rows are different methods, whose units differ (a gradient, relevance
      summing to the logit, a drop in score), so one scale for the grid would blank out
      the smaller ones; within a row, images compare honestly.
    * ``"grid"``: one scale and one colour bar for the whole grid, for rows that are
      settings of one method (noise levels, trained vs randomised model); all rows must
      then be signed, or all unsigned.
    * ``False``: every panel on its own scale, with its own colour bar; the row's label
      says "(own scale)".
    """
    mode = {True: "row", False: "own", "row": "row", "grid": "grid"}.get(shared)
    if mode is None:
        raise ValueError(f"shared must be True, False, 'row' or 'grid', not {shared!r}")
    names = list(rows)
    sgn = {name: signed[name] if isinstance(signed, dict) else signed for name in names}
    if mode == "grid" and len(set(sgn.values())) > 1:
        raise ValueError("shared='grid' needs all rows signed or all unsigned (use shared='row')")
    n = len(next(iter(rows.values())))
    extra = 1 if images is not None else 0
    bar = mode != "own"  # a column of colour bars at the right
    fig = plt.figure(figsize=(size * n + 1.2 + 0.6 * bar, size * (len(names) + extra)))
    grid = fig.add_gridspec(len(names) + extra, n + bar, width_ratios=[1.0] * n + [0.08] * bar)
    axes = np.array([[fig.add_subplot(grid[i, j]) for j in range(n)] for i in range(len(names) + extra)])
    if images is not None:
        for j in range(n):
            axes[0, j].imshow(np.clip(to_image(images[j]), 0, 1), cmap="gray")
            axes[0, j].axis("off")
            if col_titles is not None:
                axes[0, j].set_title(col_titles[j], fontsize=TITLE_SIZE)
    maps = {name: [_map2d(a) for a in rows[name]] for name in names}
    lim = (
        limits([m for ms in maps.values() for m in ms], sgn[names[0]], clip_percentile)
        if mode == "grid"
        else None
    )
    for i, name in enumerate(names):
        if mode == "row":
            lim = limits(maps[name], sgn[name], clip_percentile)
        for j in range(n):
            im = heatmap(
                axes[i + extra, j],
                maps[name][j],
                signed=sgn[name],
                image=images[j] if overlay and images is not None else None,
                alpha=alpha,
                clip_percentile=clip_percentile,
                lim=lim,
                colorbar=mode == "own",
            )
        if mode == "row":
            _colorbar(im, cax=fig.add_subplot(grid[i + extra, n]))
        label = f"{name} (own scale)" if mode == "own" else name
        axes[i + extra, 0].text(
            -0.1,
            0.5,
            label,
            transform=axes[i + extra, 0].transAxes,
            ha="right",
            va="center",
            fontsize=TITLE_SIZE,
        )
    if mode == "grid":
        _colorbar(im, cax=fig.add_subplot(grid[extra:, n]))
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
    im = ax.imshow(cm, cmap=UNSIGNED_CMAP, vmin=0, vmax=max(int(cm.max()), 1))
    _colorbar(im, ax=ax, fraction=0.046, pad=0.04).set_label("count", fontsize=TICK_SIZE)
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


def heatmap_images(fig) -> list:
    """The heatmaps in ``fig``: each ``AxesImage`` of a 2-D array under a colour map that is
    not grey (grey and RGB images are pictures)."""
    return [
        im
        for ax in fig.axes
        for im in ax.get_images()
        if np.ndim(im.get_array()) == 2 and im.get_cmap().name not in GREY_CMAPS
    ]


def heatmaps_without_colorbar(fig) -> list:
    """The heatmaps in ``fig`` (:func:`heatmap_images`) that no colour bar explains: empty
    when the convention holds.

    A heatmap is explained by a colour bar of the figure whose image has the same colour
    map and the same limits (so a shared bar explains its row or grid).
    """
    bars = {
        (im.get_cmap().name, im.norm.vmin, im.norm.vmax)
        for ax in fig.axes
        for im in ax.get_images()
        if getattr(im, "colorbar", None) is not None
    }
    return [im for im in heatmap_images(fig) if (im.get_cmap().name, im.norm.vmin, im.norm.vmax) not in bars]


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
