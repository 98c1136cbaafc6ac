"""What the promotion gate measures: ROC-AUC (without scikit-learn), a version's graph run on an
evaluation frame, and the evaluation rows a champion never trained on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from loanrisk.errors import GateError

if TYPE_CHECKING:
    import pandas as pd

MIN_GATE_ROWS = 100


def roc_auc(y: np.ndarray, proba: np.ndarray) -> float:
    """ROC-AUC without scikit-learn (serving path): binary, or one-vs-rest macro."""
    import pandas as pd

    def _binary(t: np.ndarray, s: np.ndarray) -> float:
        pos = t.sum()
        neg = len(t) - pos
        if pos == 0 or neg == 0:
            return float("nan")
        ranks = pd.Series(s).rank().to_numpy()  # ties averaged
        return float((ranks[t == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))

    if proba.shape[1] == 2:
        return _binary((y == 1).astype(int), proba[:, 1])
    aucs = [_binary((y == k).astype(int), proba[:, k]) for k in range(proba.shape[1])]
    aucs = [a for a in aucs if not np.isnan(a)]
    return float(np.mean(aucs)) if aucs else float("nan")


def onnx_proba(model_dir: Path, df: pd.DataFrame) -> np.ndarray:
    """Run a version's ONNX graph on a frame of raw attributes (float64 probabilities)."""
    from loanrisk.scoring.session import GraphRunner

    manifest = json.loads((model_dir / "manifest.json").read_text())
    missing = [n for n in manifest["inputs"] if n not in df.columns]
    if missing:
        raise GateError(
            f"attributes {missing}, inputs of {manifest['name']}, are missing from the "
            "evaluation data"
        )
    return GraphRunner(model_dir / "model.onnx").predict_proba(df)


def unseen_by(champ_dir: Path, df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The candidate's evaluation rows the champion did not learn from, and a note for the reason.

    A version keeps the hashes of its training and validation rows (``train_rows.parquet``);
    rows among them would flatter the champion. When too few rows remain (or the champion
    predates the file), the whole split is used and the note says so.
    """
    import pandas as pd

    from loanrisk import manifest as mf

    info = json.loads((champ_dir / "manifest.json").read_text()).get("train_rows") or {}
    path = champ_dir / str(info.get("file", mf.TRAIN_ROWS_FILE))
    cols = list(info.get("columns") or [])
    if not path.exists() or not cols or not set(cols) <= set(df.columns):
        return df, " (the champion's training rows are unknown: overlap not excluded)"
    seen = pd.read_parquet(path)["hash"].to_numpy(np.uint64)
    mask = ~np.isin(mf.row_hashes(df, cols), seen)
    if mask.all():
        return df, ""
    kept = df[mask]
    y = kept[mf.Y_COLUMN].to_numpy()
    if len(kept) < MIN_GATE_ROWS or len(np.unique(y)) < 2:
        return df, (f" ({int((~mask).sum())} of {len(df)} rows were in the champion's training "
                    "data, too many to leave out)")
    return kept, (f" ({len(kept)} of {len(df)} evaluation rows: the {int((~mask).sum())} the "
                  "champion trained on are left out)")
