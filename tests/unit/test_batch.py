"""`loanrisk score`: a table scored as the service would; bad rows rejected, not lost."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from model_factory import build_model_dir  # noqa: E402

from loanrisk.config import get_settings  # noqa: E402
from loanrisk.errors import LoanriskError  # noqa: E402
from loanrisk.serving import Served  # noqa: E402
from loanrisk.serving.batch import score_table  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model_dir(tmp_path_factory.mktemp("batch") / "v", version=3)


def _table(path: Path, n: int = 300) -> Path:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"app": [f"A{i}" for i in range(n)],
                       "income": rng.uniform(15000, 150000, n).round(2).astype(object),
                       "dti": rng.uniform(0, 40, n).round(1),
                       "purpose": rng.choice(["car", "debt", "other"], n).astype(object),
                       "emp_title": "clerk"})
    df.loc[7, "income"] = "lots"  # not a number
    df.loc[11, "purpose"] = "yacht"  # a category the model never saw
    df.to_csv(path, index=False)
    return path


def test_scores_like_the_service_and_rejects_bad_rows(tmp_path: Path, model_dir: Path) -> None:
    src = _table(tmp_path / "apps.csv")
    rep = score_table(data=src, out=tmp_path / "out.parquet", model_dir=model_dir,
                      id_column="app", chunk_rows=64, progress=False)
    assert (rep.rows, rep.scored, rep.rejected) == (300, 298, 2)
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert list(out["row"]) == [i for i in range(300) if i not in (7, 11)]  # input order
    assert set(out.columns) >= {"app", "decision", "risk_tier", "p_good", "p_bad", "reasons",
                                "model_version", "model_sha256"}
    assert (out["model_version"] == 3).all()
    rejected = pd.read_csv(rep.rejected_file)  # type: ignore[arg-type]
    assert dict(zip(rejected["row"], rejected["field"], strict=True)) == {7: "income",
                                                                         11: "purpose"}
    assert rejected.loc[rejected["row"] == 7, "error"].item() == "not a number"
    # the same decisions and reasons as the service's scorer, application by application
    served = Served.load(model_dir, settings=get_settings(), version=3)
    df = pd.read_csv(src)
    for _, r in out.sample(20, random_state=1).iterrows():
        raw = df.iloc[int(r["row"])]
        rec = {"income": float(raw["income"]), "dti": float(raw["dti"]),
               "purpose": raw["purpose"]}
        [d] = served.scorer.score([rec])
        assert (d.decision, d.risk_tier, "; ".join(d.reasons)) == \
            (r["decision"], r["risk_tier"], r["reasons"])
        assert d.probabilities["bad"] == pytest.approx(r["p_bad"], abs=1e-9)


def test_empty_cells_are_named_as_missing(tmp_path: Path, model_dir: Path) -> None:
    """An empty cell of a required attribute says it is empty, not which categories exist."""
    src = tmp_path / "apps.csv"
    src.write_text("income,dti,purpose\n50000,10,car\n50000,10,\n,10,car\n")
    rep = score_table(data=src, out=tmp_path / "out.csv", model_dir=model_dir, progress=False)
    assert (rep.scored, rep.rejected) == (1, 2)
    rejected = pd.read_csv(rep.rejected_file)  # type: ignore[arg-type]
    assert list(rejected["field"]) == ["purpose", "income"]
    assert rejected["error"].str.contains("may not be null or empty").all(), rejected


def test_processes_give_the_same_output(tmp_path: Path, model_dir: Path) -> None:
    src = _table(tmp_path / "apps.csv")
    one = score_table(data=src, out=tmp_path / "one.csv", model_dir=model_dir, chunk_rows=50,
                      progress=False)
    two = score_table(data=src, out=tmp_path / "two.csv", model_dir=model_dir, chunk_rows=50,
                      workers=2, progress=False)
    assert one.scored == two.scored == 298
    pd.testing.assert_frame_equal(pd.read_csv(one.output), pd.read_csv(two.output))


def test_ray_backend_gives_the_same_output(tmp_path: Path, model_dir: Path) -> None:
    pytest.importorskip("ray", reason="the ray backend needs the scale extra")
    src = _table(tmp_path / "apps.csv")
    local = score_table(data=src, out=tmp_path / "local.parquet", model_dir=model_dir,
                        chunk_rows=100, progress=False)
    ray = score_table(data=src, out=tmp_path / "ray.parquet", model_dir=model_dir,
                      chunk_rows=100, backend="ray", progress=False)
    assert ray.backend == "ray" and ray.rejected == 2
    pd.testing.assert_frame_equal(pd.read_parquet(local.output), pd.read_parquet(ray.output))


def test_user_mistakes_are_clear(tmp_path: Path, model_dir: Path) -> None:
    src = _table(tmp_path / "apps.csv")
    with pytest.raises(LoanriskError, match="no such file"):
        score_table(data=tmp_path / "nope.csv", out=tmp_path / "o.parquet",
                    model_dir=model_dir, progress=False)
    with pytest.raises(LoanriskError, match="--id-column"):
        score_table(data=src, out=tmp_path / "o.parquet", model_dir=model_dir,
                    id_column="nope", progress=False)
    with pytest.raises(LoanriskError, match=".parquet or .csv"):
        score_table(data=src, out=tmp_path / "o.xlsx", model_dir=model_dir, progress=False)
    with pytest.raises(LoanriskError, match="backend"):
        score_table(data=src, out=tmp_path / "o.csv", model_dir=model_dir, backend="spark",
                    progress=False)


def test_cli_scores_and_reports(tmp_path: Path, model_dir: Path) -> None:
    from typer.testing import CliRunner

    from loanrisk.cli import app

    src = _table(tmp_path / "apps.csv", n=120)
    res = CliRunner().invoke(app, ["score", str(src), "-o", str(tmp_path / "d.csv"),
                                   "--model-dir", str(model_dir), "-q"])
    assert res.exit_code == 0, res.output
    assert "118 of 120 rows scored" in res.output and "2 rows rejected" in res.output
    bad = CliRunner().invoke(app, ["score", str(tmp_path / "missing.csv"), "-o",
                                   str(tmp_path / "d.csv"), "--model-dir", str(model_dir)])
    assert bad.exit_code == 2 and "no such file" in bad.output


def test_file_cells_become_numbers() -> None:
    from decimal import Decimal

    from loanrisk.serving.batch import _number

    assert _number("72000") == 72000.0 and _number(" 1.5 ") == 1.5
    assert _number(Decimal("12.25")) == 12.25 and isinstance(_number(Decimal("1")), float)
    assert _number("lots") == "lots" and _number(True) is True and _number(None) is None


def test_streams_in_chunks_with_the_same_output(tmp_path: Path, model_dir: Path) -> None:
    """A Parquet table read by row batches and a CSV read by chunks give the output of one
    chunk, in input order, with the rejected rows numbered across the whole file."""
    src = _table(tmp_path / "apps.csv", n=500)
    whole = score_table(data=src, out=tmp_path / "whole.csv", model_dir=model_dir,
                        id_column="app", chunk_rows=10_000, progress=False)
    pq_src = tmp_path / "apps.parquet"
    pd.read_csv(src, dtype=str).to_parquet(pq_src, index=False, row_group_size=64)
    for source, name in ((src, "csv"), (pq_src, "parquet")):
        part = score_table(data=source, out=tmp_path / f"part-{name}.parquet",
                           model_dir=model_dir, id_column="app", chunk_rows=37,
                           progress=False)
        assert (part.rows, part.scored, part.rejected) == (500, 498, 2), name
        assert part.decisions == whole.decisions and part.tiers == whole.tiers
        got = pd.read_parquet(part.output)
        want = pd.read_csv(whole.output, dtype={"app": str})
        want["reasons"] = want["reasons"].fillna("")  # CSV reads an empty cell as missing
        pd.testing.assert_frame_equal(got[["row", "app", "decision", "reasons"]],
                                      want[["row", "app", "decision", "reasons"]])
        assert got["p_bad"].to_numpy() == pytest.approx(want["p_bad"].to_numpy(), abs=1e-12)
        rejected = pd.read_csv(part.rejected_file)  # type: ignore[arg-type]
        assert list(rejected["row"]) == [7, 11]


def test_ids_keep_their_text_and_old_outputs_are_replaced(tmp_path: Path,
                                                          model_dir: Path) -> None:
    src = tmp_path / "apps.csv"
    src.write_text("app,income,dti,purpose\n007,50000,10,car\n0042,60000,12,debt\n")
    out = tmp_path / "out.csv"
    out.write_text("stale,rows\n1,2\n")
    (tmp_path / "out.rejected.csv").write_text("stale\n")
    rep = score_table(data=src, out=out, model_dir=model_dir, id_column="app", progress=False)
    got = pd.read_csv(out, dtype={"app": str})
    assert list(got["app"]) == ["007", "0042"] and rep.rejected_file is None
    assert not (tmp_path / "out.rejected.csv").exists()
    with pytest.raises(LoanriskError, match="overwrite the input"):
        score_table(data=src, out=src, model_dir=model_dir, progress=False)


def test_a_header_only_table_scores_nothing(tmp_path: Path, model_dir: Path) -> None:
    src = tmp_path / "apps.csv"
    src.write_text("income,dti,purpose\n")
    rep = score_table(data=src, out=tmp_path / "o.parquet", model_dir=model_dir, progress=False)
    assert (rep.rows, rep.scored, rep.rejected) == (0, 0, 0)
    assert pd.read_parquet(rep.output).empty
