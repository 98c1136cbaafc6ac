"""Bundled datasets and reading users' tables (CSV, CSV.gz, Parquet) against a schema."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loanrisk.datasets import BUNDLED, list_bundled, load_bundled, load_table, read_any
from loanrisk.errors import DataError, LoanriskError
from loanrisk.schema import Attribute, Schema

GRADE_POST_DECISION = {"interest_rate", "installment", "loan_status", "initial_listing_status",
                       "disbursement_method", "issue_month", "balance", "paid_total",
                       "paid_principal", "paid_interest", "paid_late_fees"}


def test_bundled_grades() -> None:
    df, s = load_bundled("lending-club-grades")
    assert df.shape == (10_000, 55)
    assert s.name == "lending-club-grades" and s.target == "grade"
    assert s.classes == list("ABCDEFG") and s.task == "multiclass"
    assert s.excluded == ["sub_grade"]
    assert {a.name for a in s.attributes if a.post_decision} == GRADE_POST_DECISION
    assert s.attribute("emp_title").type == "text"
    assert {a.name for a in s.attributes} | {s.target} == set(df.columns)
    features = {a.name for a in s.feature_attributes()}
    assert not features & (GRADE_POST_DECISION | {"sub_grade", "emp_title", "grade"})
    assert s.attribute("debt_to_income").monotone == 1
    assert s.attribute("annual_income").monotone == -1
    assert not any(a.protected for a in s.attributes)
    assert all(a.description and a.reason for a in s.attributes)
    assert df["annual_income"].dtype == np.float64
    assert df["emp_length"].isna().sum() == 817  # missing values are real and kept
    assert df["verification_income_joint"].isna().sum() > 8000
    assert all(isinstance(v, str) for v in df["state"].dropna())
    s.validate_frame(df)
    assert np.bincount(s.encode_target(df["grade"])).sum() == 10_000


def test_bundled_default() -> None:
    df, s = load_bundled("lending-club-default")
    assert df.shape == (9_857, 23)
    assert s.classes == ["good", "bad"] and s.positive_class == "bad" and s.task == "binary"
    assert (s.encode_target(df["Class"]) == 1).sum() == 517
    features = {a.name for a in s.feature_attributes()}
    assert {"int_rate", "sub_grade"} <= features
    assert "risk" in s.attribute("int_rate").description
    assert not any(a.protected or a.post_decision for a in s.attributes)


def test_registry_lists_and_unknown_name() -> None:
    assert [d.name for d in list_bundled()] == sorted(BUNDLED)
    assert BUNDLED["lending-club-grades"].data_file == "loans_full_schema.csv.gz"
    with pytest.raises(LoanriskError, match="lending-club-default.*lending-club-grades"):
        load_bundled("lending-club")


def schema() -> Schema:
    return Schema(name="t", target="y", classes=["good", "bad"], attributes=[
        Attribute("amount", "numeric"),
        Attribute("zip", "categorical"),
        Attribute("joint", "binary"),
        Attribute("note", "text"),
    ])


def frame() -> pd.DataFrame:
    return pd.DataFrame({"amount": [100.0, 250.5, np.nan], "zip": ["02134", None, "10001"],
                         "joint": [0, 1, 1], "note": ["a", "b", None],
                         "y": ["good", "bad", "good"], "extra": [1, 2, 3]})


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_load_table_formats(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"loans{suffix}"
    if suffix == ".parquet":
        frame().to_parquet(path)
    else:
        frame().to_csv(path, index=False)
    df = load_table(path, schema())
    assert df["amount"].dtype == np.float64 and np.isnan(df.loc[2, "amount"])
    assert df.loc[0, "zip"] == "02134"  # categorical codes stay strings: leading zero kept
    assert pd.isna(df.loc[1, "zip"])  # missing stays missing, not "nan"
    assert df["joint"].tolist() == [0.0, 1.0, 1.0]
    assert df["y"].tolist() == ["good", "bad", "good"]
    assert read_any(path).shape == (3, 6)


def test_load_table_bad_cells_name_path_attribute_and_row(tmp_path: Path) -> None:
    path = tmp_path / "loans.csv"
    path.write_text("amount,zip,joint,note,y\n100,02134,0,a,good\nten,02135,1,b,bad\n")
    with pytest.raises(DataError) as e:
        load_table(path, schema())
    msg = str(e.value)
    assert str(path) in msg and "'amount'" in msg
    assert "row 2 (line 3 of the file) holds 'ten'" in msg


def test_load_table_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "loans.csv"
    frame().drop(columns=["zip"]).to_csv(path, index=False)
    with pytest.raises(DataError, match=f"{path}.*lacks column.*'zip'"):
        load_table(path, schema())


def test_load_table_unreadable(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="absent.csv: no such file"):
        load_table(tmp_path / "absent.csv", schema())
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty.csv: the file is empty"):
        load_table(empty, schema())
    fake_gz = tmp_path / "fake.csv.gz"
    fake_gz.write_text("amount,zip\n1,2\n")
    with pytest.raises(DataError, match="fake.csv.gz: cannot read"):
        load_table(fake_gz, schema())
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(gzip.compress(b"not parquet"))
    with pytest.raises(DataError, match="broken.parquet"):
        load_table(broken, schema())
    xlsx = tmp_path / "t.xlsx"
    xlsx.write_text("x")
    with pytest.raises(DataError, match="t.xlsx: unknown file type"):
        load_table(xlsx, schema())
