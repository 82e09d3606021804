"""PNG plots: confusion matrices, training curves, model comparisons (matplotlib, Agg, no pyplot state)."""

from __future__ import annotations

import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _save(fig: Figure, path: str | os.PathLike) -> None:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def confusion_png(confusion: list[list[int]], labels: list[str], path: str | os.PathLike, title: str = "") -> None:
    """Confusion matrix, rows = true genre, with counts and row-normalised colour."""
    cm = np.asarray(confusion, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(1.0 + 0.55 * len(labels), 0.8 + 0.5 * len(labels)))
    ax = fig.add_subplot()
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            if cm[i, j]:
                ax.text(
                    j,
                    i,
                    int(cm[i, j]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black",
                )
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of true genre")
    ax.set_title(title)
    _save(fig, path)


def curves_png(history: list[dict], path: str | os.PathLike, title: str = "") -> None:
    """Training/validation loss and accuracy per epoch."""
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(9, 3.5))
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    ax1.plot(epochs, [h["train_loss"] for h in history], label="train (windows)")
    ax2.plot(epochs, [h["train_acc"] for h in history], label="train (windows)")
    if "val_loss" in history[0]:
        ax1.plot(epochs, [h["val_loss"] for h in history], label="validation (tracks)")
        ax2.plot(epochs, [h["val_acc"] for h in history], label="validation accuracy (tracks)")
        ax2.plot(epochs, [h["val_balanced_acc"] for h in history], label="validation balanced acc.", ls="--")
    ax1.set(xlabel="epoch", ylabel="loss", title="loss")
    ax2.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0, 1))
    ax1.legend()
    ax2.legend()
    fig.suptitle(title)
    _save(fig, path)


def comparison_png(
    names: list[str], means: list[float], sds: list[float], path: str | os.PathLike, metric: str
) -> None:
    """Horizontal bars of mean ± sd per model."""
    fig = Figure(figsize=(7, 0.6 + 0.45 * len(names)))
    ax = fig.add_subplot()
    ax.barh(names, means, xerr=sds, color="#4c72b0", capsize=3)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(metric)
    for i, m in enumerate(means):
        ax.text(min(m + 0.02, 0.9), i, f"{m:.3f}", va="center")
    _save(fig, path)
