"""learn() from a table in memory (what learning from the store does), and its misuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from loanrisk.datasets import load_bundled
from loanrisk.errors import LoanriskError
from loanrisk.learn.pipeline import LearnOptions, learn


def test_learn_from_a_table_in_memory(fresh_home: Path) -> None:
    df, schema = load_bundled("lending-club-default")
    res = learn(LearnOptions(name="in-memory", models=("majority", "linear"), sample=800,
                             register=False, progress=False), table=df, schema=schema)
    assert res.best in ("majority", "linear") and res.version is None
    assert (res.report_dir / "model" / "model.onnx").exists()


def test_a_table_needs_its_schema_and_no_other_source(fresh_home: Path) -> None:
    df, schema = load_bundled("lending-club-default")
    with pytest.raises(LoanriskError, match="both the table and its schema"):
        learn(LearnOptions(register=False, progress=False), table=df)
    with pytest.raises(LoanriskError, match="give one source"):
        learn(LearnOptions(dataset="lending-club-default", register=False, progress=False),
              table=df, schema=schema)
