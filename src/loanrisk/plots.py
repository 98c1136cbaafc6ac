"""Figures for reports and MLflow: confusion matrices, training curves, reliability diagrams."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from loanrisk.learn.evaluate import Evaluation


def figure(rows: int = 1, cols: int = 1, *, figsize: tuple[float, float],
           squeeze: bool = True) -> tuple[Figure, Any]:
    """(figure, axes) drawn off-screen, for a file.

    No pyplot: the host's backend is left alone (a notebook keeps showing its own plots after
    ``learn``), nothing is registered globally (no figure to close, no leak), and threads (the
    service, the UI) can draw at once. ``Figure.savefig`` renders with Agg by itself.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(rows, cols, squeeze=squeeze)


def confusion_matrices(evals: list[Evaluation], path: Path, *, title: str = "",
                       subtitles: list[str] | None = None) -> Path:
    """Row-normalised confusion-matrix heat maps, one panel per model, side by side; under each
    model's name its macro F1 and ROC-AUC, or the given subtitle."""
    n = len(evals)
    cols = min(n, 3)  # at most three panels a row: the counts stay legible on a page
    rows = -(-n // cols)
    fig, grid = figure(rows, cols, figsize=(4.2 * cols, 4.2 * rows), squeeze=False)
    for ax in grid.ravel()[n:]:
        ax.axis("off")
    axes = [grid.ravel()[:n]]
    subtitles = subtitles or [
        f"macro F1 {ev.metrics.get('f1_macro', float('nan')):.3f} · "
        f"ROC-AUC {ev.metrics.get('roc_auc', float('nan')):.3f}" for ev in evals]
    for ax, ev, sub in zip(axes[0], evals, subtitles, strict=True):
        cm = ev.confusion.astype(float)
        rows = cm.sum(axis=1, keepdims=True)
        norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        k = len(ev.classes)
        ax.set_xticks(range(k), ev.classes, fontsize=8)
        ax.set_yticks(range(k), ev.classes, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{ev.model}\n{sub}", fontsize=10)
        if k <= 10:
            for i in range(k):
                for j in range(k):
                    color = "white" if norm[i, j] > 0.5 else "black"
                    ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=7,
                            color=color)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def training_curves(history: dict[str, list[float]], path: Path, *, title: str = "mlp",
                    step: str = "epoch") -> Path:
    """Every recorded series per ``step`` (epoch, boosting round): losses in one panel,
    accuracies in another (a panel only where there are series), train vs validation."""
    groups = [("loss", {k: v for k, v in history.items() if v and "loss" in k}),
              ("accuracy", {k: v for k, v in history.items() if v and "acc" in k})]
    groups = [(name, series) for name, series in groups if series]
    if not groups:
        raise ValueError(f"{title}: the training history has no loss or accuracy series")
    fig, axes = figure(1, len(groups), figsize=(5 * len(groups), 4), squeeze=False)
    for ax, (name, series) in zip(axes[0], groups, strict=True):
        for key, vals in series.items():
            ax.plot(range(1, len(vals) + 1), vals, label=key.replace("_", " "))
        ax.set_xlabel(step)
        ax.set_ylabel(name)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(f"{title}: training curves")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def reliability(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, *, title: str = ""
) -> Path:
    """Reliability diagram: mean predicted probability vs observed frequency, one line per model."""
    fig, ax = figure(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfectly calibrated")
    for name, (pred, obs) in curves.items():
        ax.plot(pred, obs, marker="o", label=name)
    ax.set_xlabel("predicted probability (top class)")
    ax.set_ylabel("observed frequency")
    ax.set_title(title or "reliability")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def reliability_curve(
    y: np.ndarray, proba: np.ndarray, *, bins: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Binned (confidence, accuracy) pairs for the top-label reliability diagram."""
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    pred, obs = [], []
    for b in range(bins):
        m = idx == b
        if m.sum() >= 5:
            pred.append(conf[m].mean())
            obs.append(correct[m].mean())
    return np.array(pred), np.array(obs)
