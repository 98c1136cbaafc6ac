"""One real model version shared by the UI tests (learning it takes most of their time)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from helpers import home  # noqa: E402

APP = Path(__file__).resolve().parents[2] / "src" / "loanrisk" / "ui" / "app.py"


@pytest.fixture(scope="package")
def learned_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A loanrisk home holding lending-club-default v1 (majority + gbdt on 1,500 rows)."""
    from loanrisk.learn.pipeline import LearnOptions, learn

    with home(tmp_path_factory.mktemp("ui-home")) as path:
        # one LightGBM thread: on a shared 2-core machine OpenMP's busy-waiting threads cost more
        learn(LearnOptions(dataset="lending-club-default", sample=1500,
                           models=("majority", "gbdt"), progress=False, gbdt={"n_jobs": 1}))
        yield path


@pytest.fixture
def model_home(learned_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Use the shared learned home in this test."""
    from loanrisk.config import get_settings

    monkeypatch.setenv("LOANRISK_HOME", str(learned_home))
    get_settings.cache_clear()
    yield learned_home
    get_settings.cache_clear()
