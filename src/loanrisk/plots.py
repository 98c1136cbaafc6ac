"""Figures for reports and MLflow: confusion matrices, training curves, reliability diagrams."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from loanrisk.evaluate import Evaluation


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")  # headless: reports are files
    import matplotlib.pyplot as plt

    return plt


def confusion_matrices(evals: list[Evaluation], path: Path, *, title: str = "") -> Path:
    """Row-normalised confusion-matrix heat maps, one panel per model, side by side."""
    plt = _pyplot()
    n = len(evals)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.2), squeeze=False)
    for ax, ev in zip(axes[0], evals, strict=True):
        cm = ev.confusion.astype(float)
        rows = cm.sum(axis=1, keepdims=True)
        norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        k = len(ev.classes)
        ax.set_xticks(range(k), ev.classes, fontsize=8)
        ax.set_yticks(range(k), ev.classes, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        f1 = ev.metrics.get("f1_macro", float("nan"))
        auc = ev.metrics.get("roc_auc", float("nan"))
        ax.set_title(f"{ev.model}\nmacro F1 {f1:.3f} · ROC-AUC {auc:.3f}", fontsize=10)
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
    plt.close(fig)
    return path


def training_curves(history: dict[str, list[float]], path: Path, *, title: str = "mlp") -> Path:
    """Loss and accuracy per epoch, train vs validation."""
    plt = _pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = range(1, len(history.get("train_loss", [])) + 1)
    for key, ax in (("loss", a1), ("acc", a2)):
        for split in ("train", "val"):
            vals = history.get(f"{split}_{key}")
            if vals:
                ax.plot(epochs, vals, label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy" if key == "acc" else "loss")
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(f"{title}: training curves")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def reliability(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, *, title: str = ""
) -> Path:
    """Reliability diagram: mean predicted probability vs observed frequency, one line per model."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
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
    plt.close(fig)
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
