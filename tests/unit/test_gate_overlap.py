"""The gate leaves out the evaluation rows the champion learned from."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from loanrisk import manifest as mf
from loanrisk.registry import unseen_by


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"income": rng.uniform(1e4, 1e5, n).round(2),
                         "purpose": rng.choice(["car", "debt"], n),
                         "__y__": rng.integers(0, 2, n)})


def _champion(tmp: Path, seen: pd.DataFrame, cols: list[str] | None) -> Path:
    d = tmp / "champ"
    d.mkdir()
    doc = {} if cols is None else {"train_rows": {"file": mf.TRAIN_ROWS_FILE, "columns": cols}}
    (d / "manifest.json").write_text(json.dumps(doc))
    if cols is not None:
        pd.DataFrame({"hash": mf.row_hashes(seen, cols)}).to_parquet(d / mf.TRAIN_ROWS_FILE)
    return d


def test_rows_the_champion_trained_on_are_left_out(tmp_path: Path) -> None:
    cols = ["income", "purpose", "__y__"]
    trained = _frame(600, 1)
    fresh = _frame(400, 2)
    # the candidate's split holds 300 rows the champion trained on (another seed's split)
    cand_eval = pd.concat([trained.iloc[:300], fresh]).sample(frac=1, random_state=0)
    # types differ as they do between a CSV and the store: the hashes still match
    cand_eval["income"] = cand_eval["income"].astype("float32").astype("float64").round(2)
    kept, note = unseen_by(_champion(tmp_path, trained, cols), cand_eval)
    assert len(kept) == 400 and "300 the champion trained on are left out" in note
    assert not kept["income"].isin(trained["income"].iloc[:300]).any()


def test_unknown_training_rows_fall_back_to_the_whole_split(tmp_path: Path) -> None:
    cand_eval = _frame(200, 3)
    kept, note = unseen_by(_champion(tmp_path, cand_eval, None), cand_eval)
    assert len(kept) == 200 and "unknown" in note


def test_too_few_unseen_rows_keep_the_whole_split_and_say_so(tmp_path: Path) -> None:
    cols = ["income", "purpose", "__y__"]
    trained = _frame(300, 4)
    cand_eval = pd.concat([trained.iloc[:250], _frame(20, 5)])
    kept, note = unseen_by(_champion(tmp_path, trained, cols), cand_eval)
    assert len(kept) == 270 and "too many to leave out" in note
