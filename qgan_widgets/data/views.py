"""Band views and image grids for SAT-4 tiles (and generated ones).

A SAT-4 tile has four bands, R, G, B and near infrared (NIR). Healthy vegetation reflects NIR
strongly and absorbs red, so besides true colour (:func:`rgb`) a teacher shows the NIR band
(:func:`nir`), the vegetation index NDVI = (NIR - R) / (NIR + R) (:func:`ndvi`) and the false-colour
composite NIR, R, G (:func:`false_color`) in which vegetation shows red. Every view accepts uint8
images (0-255) or float images in [0, 1], one tile ``(28, 28, 4)`` or a batch ``(N, 28, 28, 4)``.

:func:`plot_grid` draws tiles with their class names and, for stand-in data, a visible
"stand-in data" label; :func:`plot_class_examples` shows a few tiles per class of a
:class:`~qgan_widgets.data.dataset.Dataset`; :func:`band_statistics` tabulates per-class band means,
spreads and NDVI. matplotlib and pandas are imported only inside the functions that need them.
Taught in notebook ``01_sat4_data``; used by the dashboard and the training sample grids.
"""
from __future__ import annotations

import numpy as np

from qgan_widgets.data.sat4 import BANDS, CLASS_NAMES
from qgan_widgets.data.dataset import class_counts, to_float

__all__ = ["plot_losses", "plot_fd", "rgb", "nir", "ndvi", "false_color", "VIEWS", "plot_grid", "plot_class_examples", "band_statistics"]

STANDIN_LABEL = "stand-in data (sat4-synthetic), not real SAT-4"
NDVI_RANGE = (-0.6, 0.6)
"""Colour range of NDVI plots: bare ground and water below 0, vegetation 0.2-0.6."""
NDVI_STYLE = {"cmap": "RdYlGn", "vmin": NDVI_RANGE[0], "vmax": NDVI_RANGE[1]}
"""How NDVI is drawn everywhere (grids, the demo's samples, their colour bars)."""


def _bands(x) -> np.ndarray:
    a = to_float(x)
    if a.ndim not in (3, 4) or a.shape[-1] != 4:
        raise ValueError(f"expected one tile (H, W, 4) or a batch (N, H, W, 4) in bands {BANDS}, got shape {a.shape}")
    return a


def rgb(x) -> np.ndarray:
    """True colour: float32 ``(..., H, W, 3)`` in [0, 1] from bands R, G, B."""
    return np.ascontiguousarray(_bands(x)[..., :3])


def nir(x) -> np.ndarray:
    """The near-infrared band: float32 ``(..., H, W)`` in [0, 1]."""
    return np.ascontiguousarray(_bands(x)[..., 3])


def ndvi(x) -> np.ndarray:
    """NDVI = (NIR - R) / (NIR + R): float32 ``(..., H, W)`` in [-1, 1] (0 where both are 0)."""
    a = _bands(x)
    r, n = a[..., 0], a[..., 3]
    total = n + r
    out = np.zeros_like(total)
    np.divide(n - r, total, out=out, where=total > 0)
    return out


def false_color(x) -> np.ndarray:
    """False colour NIR, R, G as RGB: float32 ``(..., H, W, 3)`` in [0, 1]; vegetation shows red."""
    a = _bands(x)
    return np.ascontiguousarray(a[..., [3, 0, 1]])


VIEWS = {"rgb": rgb, "nir": nir, "ndvi": ndvi, "false_color": false_color}
"""The band views by name (``view=`` argument of the plots)."""

_VIEW_TITLES = {"rgb": "true colour (R, G, B)", "nir": "near infrared", "ndvi": "NDVI",
                "false_color": "false colour (NIR, R, G)"}


def _view(x, view: str) -> tuple[np.ndarray, dict]:
    if view not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(VIEWS)}, got {view!r}")
    img = VIEWS[view](x)
    if view == "nir":
        return img, {"cmap": "gray", "vmin": 0.0, "vmax": 1.0}
    if view == "ndvi":
        return img, dict(NDVI_STYLE)
    return img, {}


_BANNER_IN = 0.42  # inches above the title kept for the stand-in banner
_TITLE_IN = 0.34  # inches kept for the title


def _headline(fig, heading: str, standin: bool) -> float:
    """Title and, for stand-in data, a red banner above it; returns the top of the free area (0-1)."""
    height = fig.get_figheight()
    title_y = 1 - ((_BANNER_IN if standin else 0.0) + 0.05) / height
    fig.suptitle(heading, fontsize=10, y=title_y, va="top")
    if standin:
        fig.text(0.5, 1 - 0.05 / height, STANDIN_LABEL.upper(), ha="center", va="top", fontsize=8,
                 color="white", fontweight="bold",
                 bbox={"boxstyle": "round,pad=0.3", "facecolor": "#c0392b", "edgecolor": "none"})
    return 1 - ((_BANNER_IN if standin else 0.0) + _TITLE_IN) / height


def _class_name(label) -> str:
    i = int(label)
    return CLASS_NAMES[i] if 0 <= i < len(CLASS_NAMES) else str(i)


def plot_grid(x, y=None, view: str = "rgb", ncols: int = 8, title: str | None = None,
              standin: bool = False, ax=None, fig=None, max_images: int = 64, tile_size: float = 1.1,
              row_labels=None, col_labels=None, colorbar: bool | None = None):
    """Draw tiles in a grid, class names as titles; returns the matplotlib Figure.

    ``row_labels`` / ``col_labels``: text left of each row / above each column (e.g. "real" and
    "reconstructed", or a traversal's step values). ``colorbar`` (default: for the NDVI view) adds
    the colour scale beside the grid.

    ``x``: uint8 or [0, 1] float tiles ``(N, 28, 28, 4)`` (one tile is fine); ``y``: labels (class
    names shown) or None; ``view``: ``"rgb"``, ``"nir"``, ``"ndvi"`` or ``"false_color"``;
    ``standin=True`` adds a red "stand-in data" banner. With ``ax`` (one Axes) the tiles are drawn
    as a single mosaic into it (names written above the tiles); with ``fig`` the grid fills that
    figure (cleared first); otherwise a new figure is made. At most ``max_images`` tiles are drawn.
    """
    import matplotlib.pyplot as plt

    a = np.asarray(x)
    if a.ndim == 3:
        a = a[None]
    a = a[:max_images]
    labels = None if y is None else np.asarray(y).reshape(-1)[: len(a)]
    if labels is not None and len(labels) != len(a):
        raise ValueError(f"{len(labels)} labels for {len(a)} images")
    img, kw = _view(a, view)
    n = len(img)
    ncols = max(1, min(int(ncols), n)) if n else 1
    nrows = max(1, -(-n // ncols))
    heading = title if title is not None else _VIEW_TITLES[view]
    if ax is not None:
        fig = ax.figure
        _mosaic(ax, img, labels, ncols, nrows, kw)
        ax.set_title(heading)
        if standin:
            ax.text(0.5, 0.5, "STAND-IN DATA", transform=ax.transAxes, ha="center", va="center",
                    fontsize=14, color="#c0392b", alpha=0.6, fontweight="bold", rotation=20)
        return fig
    colorbar = view == "ndvi" if colorbar is None else bool(colorbar)
    gap, label_h, margin = 0.08, (0.2 if labels is not None else 0.04), 0.05
    left_pad = 1.0 if row_labels is not None else 0.0
    right_pad = 0.9 if colorbar else 0.0
    top_in = _TITLE_IN + (_BANNER_IN if standin else 0.0) + (0.2 if col_labels is not None else 0.0)
    if fig is None:
        width = max(ncols * tile_size + (ncols - 1) * gap + 2 * margin + left_pad + right_pad, 4.6 if standin else 1.5)
        fig = plt.figure(figsize=(width, top_in + nrows * (tile_size + label_h) + margin))
    else:
        fig.clear()
    width, height = fig.get_size_inches()
    tile = min((width - 2 * margin - left_pad - right_pad - (ncols - 1) * gap) / ncols,
               (height - top_in - margin) / nrows - label_h)
    tile = max(tile, 0.05)
    left0 = left_pad + (width - left_pad - right_pad - (ncols * tile + (ncols - 1) * gap)) / 2
    for r, text in enumerate(list(row_labels or [])[:nrows]):
        bottom = height - top_in - (r + 1) * (tile + label_h)
        fig.text((left0 - 0.1) / width, (bottom + tile / 2) / height, str(text), ha="right", va="center", fontsize=8)
    for c, text in enumerate(list(col_labels or [])[:ncols]):
        fig.text((left0 + c * (tile + gap) + tile / 2) / width, (height - top_in + 0.05) / height, str(text),
                 ha="center", va="bottom", fontsize=7)
    if colorbar and "cmap" in kw:
        add_colorbar(fig, ((width - right_pad + 0.15) / width, (height - top_in - nrows * (tile + label_h)) / height,
                           0.12 / width, (nrows * (tile + label_h) - label_h) / height), kw, view.upper())
    for i in range(n):
        r, c = divmod(i, ncols)
        left = left0 + c * (tile + gap)
        bottom = height - top_in - (r + 1) * (tile + label_h) + 0.0
        axis = fig.add_axes((left / width, bottom / height, tile / width, tile / height))
        axis.set_axis_off()
        axis.imshow(img[i], interpolation="nearest", **kw)
        if labels is not None:
            axis.set_title(_class_name(labels[i]), fontsize=8, pad=2)
    _headline(fig, heading, standin)
    return fig


def add_colorbar(fig, rect, style: dict, label: str):
    """A colour bar for ``style`` (``cmap``, ``vmin``, ``vmax``, e.g. :data:`NDVI_STYLE`) in a new axes at
    ``rect`` (figure fractions: left, bottom, width, height)."""
    from matplotlib import cm, colors

    bar = fig.colorbar(cm.ScalarMappable(norm=colors.Normalize(style["vmin"], style["vmax"]), cmap=style["cmap"]),
                       cax=fig.add_axes(rect))
    bar.ax.tick_params(labelsize=7)
    bar.set_label(label, fontsize=8)
    return bar


def _mosaic(ax, img: np.ndarray, labels, ncols: int, nrows: int, kw: dict) -> None:
    h, w = img.shape[1:3]
    gap = 2
    shape = (nrows * (h + gap) - gap, ncols * (w + gap) - gap) + img.shape[3:]
    fill = np.nan if img.ndim == 3 else 1.0
    canvas = np.full(shape, fill, dtype=np.float32)
    for i in range(len(img)):
        r, c = divmod(i, ncols)
        canvas[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w] = img[i]
    ax.imshow(canvas, interpolation="nearest", **kw)
    if labels is not None:
        for i, lab in enumerate(labels):
            r, c = divmod(i, ncols)
            ax.text(c * (w + gap) + w / 2, r * (h + gap) - 0.5, _class_name(lab), ha="center", va="bottom", fontsize=6)
    ax.set_axis_off()


def plot_class_examples(dataset, per_class: int = 6, view: str = "rgb", split: str = "train", seed: int = 0,
                        fig=None):
    """A row of ``per_class`` random tiles for each class of a Dataset; returns the Figure.

    Stand-in data sets get the "stand-in data" banner. Taught in notebook ``01_sat4_data``.
    """
    import matplotlib.pyplot as plt

    x, y = (dataset.x_train, dataset.y_train) if split == "train" else (dataset.x_test, dataset.y_test)
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(len(CLASS_NAMES)):
        idx = np.flatnonzero(np.asarray(y) == c)
        rows.append(np.sort(rng.choice(idx, size=min(per_class, len(idx)), replace=False)))
    if fig is None:
        fig = plt.figure(figsize=(max(1.1 * per_class + 1.4, 4.5), 1.15 * len(CLASS_NAMES) + 0.9))
    else:
        fig.clear()
    axes = fig.subplots(len(CLASS_NAMES), per_class, squeeze=False)
    for c, idx in enumerate(rows):
        img, kw = _view(np.asarray(x[idx]) if len(idx) else np.zeros((0, 28, 28, 4), np.uint8), view)
        for j in range(per_class):
            axis = axes[c, j]
            axis.set_xticks([])
            axis.set_yticks([])
            for side in axis.spines.values():
                side.set_visible(False)
            if j < len(img):
                axis.imshow(img[j], interpolation="nearest", **kw)
        axes[c, 0].set_ylabel(f"{CLASS_NAMES[c]}\n({len(idx)} shown)" if len(idx) < per_class else CLASS_NAMES[c],
                              fontsize=9)
    name = f"{dataset.name} (STAND-IN)" if dataset.is_standin else dataset.name
    top = _headline(fig, f"{name}: {_VIEW_TITLES[view]}, {split} split", dataset.is_standin)
    fig.tight_layout(rect=(0, 0, 1, top), pad=0.3)
    return fig


def band_statistics(x, y, chunk: int = 8192):
    """Per-class band statistics as a pandas DataFrame (one row per class present).

    Columns: ``n`` (images), ``R``, ``G``, ``B``, ``NIR`` (mean pixel value, 0-255), ``R_std`` ...
    ``NIR_std`` (standard deviation over all pixels of the class), ``NDVI`` (mean per-pixel NDVI).
    Computed in float64 chunk by chunk, so a memory-mapped 400,000-image split is fine.
    """
    import pandas as pd

    y = np.asarray(y).astype(np.int64)
    if len(y) != len(x):
        raise ValueError(f"{len(y)} labels for {len(x)} images")
    k = len(CLASS_NAMES)
    s1, s2, nd, npx = np.zeros((k, 4)), np.zeros((k, 4)), np.zeros(k), np.zeros(k)
    for start in range(0, len(y), chunk):
        xb = np.asarray(x[start:start + chunk])
        # reported on the 0-255 scale whatever the input
        a = xb.astype(np.float64) if xb.dtype == np.uint8 else to_float(xb).astype(np.float64) * 255.0
        yb = y[start:start + chunk]
        nv = ndvi(xb).astype(np.float64).mean(axis=(1, 2))
        flat = a.reshape(len(a), -1, 4)
        for c in np.unique(yb):
            m = yb == c
            s1[c] += flat[m].sum(axis=(0, 1))
            s2[c] += (flat[m] ** 2).sum(axis=(0, 1))
            nd[c] += nv[m].sum()
            npx[c] += m.sum()
    counts = class_counts(y)
    per_image = int(np.prod(np.shape(x)[1:3])) if len(y) else 1
    rows = []
    for c in range(k):
        if counts[c] == 0:
            continue
        pix = npx[c] * per_image
        mean = s1[c] / pix
        std = np.sqrt(np.maximum(s2[c] / pix - mean**2, 0.0))
        row = {"class": CLASS_NAMES[c], "n": int(counts[c])}
        row.update({b: mean[i] for i, b in enumerate(BANDS)})
        row.update({f"{b}_std": std[i] for i, b in enumerate(BANDS)})
        row["NDVI"] = nd[c] / npx[c]
        rows.append(row)
    return pd.DataFrame(rows).set_index("class")


# ---------------------------------------------------------------------------------- training curves
LOSS_KEYS = (("d_loss", "critic loss (incl. penalty)"), ("g_loss", "generator loss"),
             ("w_estimate", "Wasserstein estimate"))


def plot_losses(ax, history: list[dict]) -> None:
    """Critic loss, generator loss and the critic's Wasserstein estimate per step, into ``ax``.

    ``history``: the trainer's per-step records. Used by the dashboard and the notebooks' plots.
    """
    import math

    steps = np.array([r["step"] for r in history])
    for key, label in LOSS_KEYS:
        ax.plot(steps, np.array([r.get(key, math.nan) for r in history], dtype=float), lw=1.2, label=label)
    ax.axhline(0.0, color="#999", lw=0.6)
    ax.set_xlabel("step", fontsize=9)
    ax.set_title("losses", fontsize=10)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")


def plain_log_ticks(ax) -> None:
    """Label a log y axis with plain numbers ("60", "200"), not matplotlib's "6x10^1" minor labels; minor
    ticks are labelled only as far as they fit (all within a decade, some up to two, none beyond:
    ``LogFormatter``'s thresholds), so labels never pile up."""
    from matplotlib.ticker import FuncFormatter, LogFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))


def plot_fd(ax, evals: list[dict], floor: float | None = None) -> None:
    """Frechet distances at each evaluation, into ``ax``: in classifier features of the decoded
    images (``fd``) and in the latent space (``fd_latent``), with the reconstruction floor; a log
    axis when the values span more than a factor 20."""
    import math

    floor = math.nan if floor is None else float(floor)
    steps = np.array([e["step"] for e in evals])
    drawn = []
    for key, label, style in (("fd", "FD (classifier features)", "o-"), ("fd_latent", "FD (latent space)", "s--")):
        values = np.array([e.get(key, math.nan) for e in evals], dtype=float)
        if np.isfinite(values).any():
            ax.plot(steps, values, style, ms=3, lw=1.2, label=label)
            drawn.append(values[np.isfinite(values)])
    if math.isfinite(floor):
        ax.axhline(floor, color="#c0392b", ls=":", lw=1.2, label=f"reconstruction floor {floor:.3g}")
        drawn.append(np.array([floor]))
    positive = np.concatenate(drawn) if drawn else np.array([])
    if positive.size and (positive > 0).all() and positive.max() / positive.min() > 20:
        ax.set_yscale("log")
        plain_log_ticks(ax)
    ax.set_xlabel("step", fontsize=9)
    ax.set_title("Frechet distance (lower is better)", fontsize=10)
    ax.tick_params(labelsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
