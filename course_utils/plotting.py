"""Plots the notebooks share; every function returns the matplotlib Figure."""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure


def _as_numpy(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().float().cpu().numpy()
    return np.asarray(values, dtype=float)


def plot_attention(
    weights,
    x_labels: Sequence[str] | None = None,
    y_labels: Sequence[str] | None = None,
    titles: Sequence[str] | None = None,
    ncols: int = 4,
    cell_size: float = 0.45,
    cmap: str = "viridis",
) -> Figure:
    """Heatmap of attention weights: one (queries, keys) matrix, or a grid of heads.

    weights: (queries, keys) for one map, (heads, queries, keys) for a grid.
    x_labels are the keys (the tokens attended to), y_labels the queries
    (the tokens doing the attending; default: the same as x_labels).
    """
    maps = _as_numpy(weights)
    if maps.ndim == 2:
        maps = maps[None]
    if maps.ndim != 3:
        raise ValueError(
            f"plot_attention expects (queries, keys) or (heads, queries, keys), got shape {maps.shape}; "
            "select one batch element first, e.g. weights[0]."
        )
    heads, n_queries, n_keys = maps.shape
    y_labels = y_labels if y_labels is not None else x_labels
    for labels, size, axis in ((x_labels, n_keys, "x_labels (keys)"), (y_labels, n_queries, "y_labels (queries)")):
        if labels is not None and len(labels) != size:
            raise ValueError(f"{axis} has {len(labels)} labels but the weights have {size} positions on that axis.")
    if titles is not None and len(titles) != heads:
        raise ValueError(f"{len(titles)} titles given for {heads} attention maps.")

    ncols = min(ncols, heads)
    nrows = math.ceil(heads / ncols)
    width = max(2.5, cell_size * n_keys + 1.2) * ncols
    height = max(2.2, cell_size * n_queries + 0.8) * nrows
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False, layout="constrained")
    vmax = float(maps.max()) if maps.size else 1.0
    image = None
    for index, ax in enumerate(axes.flat):
        if index >= heads:
            ax.axis("off")
            continue
        image = ax.imshow(maps[index], cmap=cmap, vmin=0.0, vmax=vmax, aspect="auto")
        ax.set_xticks(range(n_keys), x_labels if x_labels is not None else range(n_keys), rotation=90)
        ax.set_yticks(range(n_queries), y_labels if y_labels is not None else range(n_queries))
        ax.set_xlabel("key (attended to)")
        if index % ncols == 0:
            ax.set_ylabel("query")
        if titles is not None:
            ax.set_title(titles[index])
        elif heads > 1:
            ax.set_title(f"head {index}")
    fig.colorbar(image, ax=axes, shrink=0.8, label="attention weight")
    return fig


def plot_lines(
    series: dict[str, Sequence[float]],
    xlabel: str = "step",
    ylabel: str = "value",
    title: str | None = None,
    x: Sequence[float] | None = None,
    figsize: tuple[float, float] = (6.0, 3.5),
) -> Figure:
    """One line per named series (loss curves, accuracy per epoch, encodings...)."""
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    for name, values in series.items():
        values = _as_numpy(values)
        ax.plot(x if x is not None else np.arange(len(values)), values, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if len(series) > 1:
        ax.legend()
    ax.grid(alpha=0.3)
    return fig


def plot_matrix(
    matrix,
    xlabel: str = "",
    ylabel: str = "",
    title: str | None = None,
    x_labels: Sequence[str] | None = None,
    y_labels: Sequence[str] | None = None,
    cmap: str = "RdBu_r",
    annotate: bool = False,
    figsize: tuple[float, float] = (6.0, 4.0),
) -> Figure:
    """Any 2-D tensor as an image (positional encodings, masks, confusion matrices)."""
    values = _as_numpy(matrix)
    if values.ndim != 2:
        raise ValueError(f"plot_matrix expects a 2-D matrix, got shape {values.shape}.")
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    image = ax.imshow(values, cmap=cmap, aspect="auto")
    if x_labels is not None:
        ax.set_xticks(range(values.shape[1]), x_labels, rotation=90)
    if y_labels is not None:
        ax.set_yticks(range(values.shape[0]), y_labels)
    if annotate:
        for (row, col), value in np.ndenumerate(values):
            ax.text(col, row, f"{value:g}", ha="center", va="center", fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    fig.colorbar(image, ax=ax)
    return fig
