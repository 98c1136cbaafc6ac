"""The Streamlit app in-process (AppTest): empty state, Decide, Models, Applications."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "src" / "loanrisk" / "ui" / "app.py")
TIMEOUT = 60


def _app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [i.value for i in at.info]
    parts += [c.value for c in at.caption] + [w.value for w in at.warning]
    parts += [s.value for s in at.success] + [e.value for e in at.error]
    return "\n".join(str(p) for p in parts)


def _button(at: AppTest, label: str):  # type: ignore[no-untyped-def]
    return next(b for b in at.button if b.label == label)


def test_empty_home_says_how_to_learn(fresh_home: Path) -> None:
    at = _app()
    assert at.title[0].value == "Decide"
    assert "loanrisk learn --dataset lending-club-grades" in _texts(at)
    for page in ("pages/models.py", "pages/watch.py", "pages/applications.py"):
        at.switch_page(page).run()
        assert not at.exception, [e.value for e in at.exception]
        if page == "pages/watch.py":
            assert "No models are registered yet" in _texts(at)
    assert "No applications stored yet" in _texts(at)
    assert not (fresh_home / "mlflow.db").exists()  # looking does not create a registry


def test_decide_scores_an_example_with_reasons(model_home: Path) -> None:
    at = _app()
    assert "lending-club-default v1" in _texts(at)
    _button(at, "Load an example applicant").click().run()
    assert "example applicant #1" in _texts(at)
    # categories are shown in the schema's plain words, the code beside; the value is the code
    term = next(b for b in at.selectbox if b.label == "Loan term (term)")
    assert "60 months (term_60)" in term.options and term.value in {"term_36", "term_60"}
    _button(at, "Score").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Decision"] in {"approve", "decline"}
    assert metrics["Risk tier"] in {"low", "medium", "high"}
    assert "Reasons" in _texts(at)
    reasons = [m.value for m in at.markdown if str(m.value).startswith("- ")]
    assert reasons, "the reasons list is missing"
    assert len(at.get("vega_lite_chart")) >= 1  # the probabilities bar chart
    # another page drops the form's values: the caption must not claim the example any more
    at.switch_page("pages/models.py").run()
    at.switch_page("pages/decide.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "example applicant #1" not in _texts(at)


def test_decide_rejects_what_the_service_would_reject(model_home: Path) -> None:
    """Out of range or emptied: the field is named and nothing is scored (the widgets have no
    bounds of their own, which would silently keep the last valid number)."""
    at = _app()
    fields = {n.label.rsplit("(", 1)[-1].rstrip(")"): n for n in at.number_input}
    assert "Interest rate offered (int_rate)" in [n.label for n in at.number_input]
    fields["funded_amnt"].set_value(1e12)
    fields["annual_inc"].set_value(None)
    _button(at, "Score").click().run()
    errors = "\n".join(str(e.value) for e in at.error)
    assert "funded_amnt: Input should be less than or equal to" in errors
    assert "annual_inc: Field required" in errors
    assert not at.metric  # no decision shown


def test_models_lists_the_version_with_champion_and_report(model_home: Path) -> None:
    at = _app()
    at.switch_page("pages/models.py").run()
    assert not at.exception, [e.value for e in at.exception]
    frame = at.dataframe[0].value
    assert list(frame["version"]) == [1]
    assert bool(frame["champion"].iloc[0]) is True
    assert frame["model"].iloc[0] == "gbdt"
    assert "loanrisk report: lending-club-default" in _texts(at)
    assert len(at.get("image")) >= 2  # confusion matrices, reliability
    _button(at, "Promote").click().run()  # v1 is already champion: the gate says so
    assert "already the champion" in _texts(at)


@pytest.mark.usefixtures("model_home")
def test_applications_counts_tiers_and_drift() -> None:
    from loanrisk.config import get_settings
    from loanrisk.registry import Registry
    from loanrisk.scoring.scorer import Scorer
    from loanrisk.store import Store
    from loanrisk.store.tables import Application

    settings = get_settings()
    model_dir = Registry(settings).download("lending-club-default", 1)
    scorer = Scorer.load(model_dir, settings=settings, version=1)
    records = scorer.manifest["golden"]["inputs"]
    store = Store(settings.resolved_database_url)
    _, key = store.create_key(channel="web")
    for rec, d in zip(records, scorer.score(records), strict=True):
        store.insert_application(Application(
            channel="web", api_key_id=key.id, request_hash="0" * 64, attributes=rec,
            decision=d.decision, probabilities=d.probabilities, risk_score=d.risk_score,
            risk_tier=d.risk_tier, reasons=d.reasons, model_name=scorer.name, model_version=1,
            model_sha256=scorer.sha256))
    for channel in ("web", "mobile"):  # two refused submissions, as the service audits them
        store.audit("submission refused", key_id=str(key.id), channel=channel, status=422,
                    endpoint="POST /v1/applications", details={"fields": ["income"]})
    store.close()
    at = _app()
    at.switch_page("pages/applications.py").run()
    assert not at.exception, [e.value for e in at.exception]
    channels = at.dataframe[0].value  # per channel and day: requests, refusals, decisions
    by = channels.set_index("channel")
    assert by.loc["web", "decisions"] == len(records) and by.loc["web", "refusals"] == 1
    assert by.loc["web", "requests"] == len(records) + 1
    assert by.loc["mobile", "refusals"] == 1 and by.loc["mobile", "decisions"] == 0
    table = at.dataframe[1].value
    assert len(table) == len(records)
    assert "attributes" not in table.columns  # raw values hidden by default
    assert {"Channels", "Drift"} <= {s.value for s in at.subheader}
    assert "UTC" in _texts(at) and "(predicted risk score)" in set(at.dataframe[2].value[
        "attribute"])
    at.toggle[0].set_value(True).run()  # one column per attribute and probability
    assert not at.exception, [e.value for e in at.exception]
    raw = at.dataframe[1].value
    assert {"funded_amnt", "p_good", "p_bad"} <= set(raw.columns)


def test_watch_shows_live_performance_fairness_and_replays(
        model_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ui_helpers import seed_watch_store

    from loanrisk.config import get_settings

    db = f"sqlite:///{tmp_path / 'watch.db'}"  # this test's own store
    monkeypatch.setenv("LOANRISK_DATABASE_URL", db)
    get_settings.cache_clear()
    stored = seed_watch_store(db, weeks=3)

    at = _app()
    at.switch_page("pages/watch.py").run()
    assert not at.exception, [e.value for e in at.exception]
    heads = [h.value for h in at.subheader]
    assert heads == ["Live performance", "Champion vs challenger", "Fairness", "Decision replay",
                     "Record outcomes"]
    perf = at.dataframe[0].value
    assert set(perf["version"]) == {1} and 3 <= len(perf) <= 4  # ISO weeks of the last 21 days
    assert int(perf["outcomes"].sum()) == stored
    aucs = perf["ROC-AUC"].dropna()  # a week holding one class only has none
    assert len(aucs) >= 2 and aucs.between(0.5, 1.0).all()  # true outcomes of its eval rows
    texts = _texts(at)
    assert "no challenger results" in texts  # how to get some is in the message
    assert "marks no protected attribute" in texts  # the bundled schema declares none
    _button(at, "Replay").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"{stored:,} of {stored:,} decisions replayed identically" in _texts(at)


def test_version_pickers_are_rebuilt_when_the_champion_moves() -> None:
    """A keyed selectbox keeps its old labels: the pickers' keys carry where the champion is."""
    from loanrisk.registry import VersionInfo
    from loanrisk.ui.common import aliases_key

    def versions(champion: int) -> list[VersionInfo]:
        return [VersionInfo("m", v, "gbdt", {}, "0" * 64, "r", "t",
                            aliases=["champion"] if v == champion else []) for v in (1, 2)]

    assert aliases_key(versions(1)) != aliases_key(versions(2))
    assert aliases_key(versions(2)) == aliases_key(versions(2))


@pytest.mark.slow
def test_decide_through_the_service_scores_and_submits_once(
        model_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With LOANRISK_API_URL the page scores through a real `loanrisk serve`, and staff keying
    in a paper application submit it: stored once (a second click replays it), channel mail."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
    from service_proc import Server, new_key, service_env

    from loanrisk.store import Store

    db = f"sqlite:///{tmp_path / 'service.db'}"
    env = service_env(model_home)
    key = new_key(env, "--channel", "mail,call_center", "--database", db)  # the page's channels
    server = Server(["--model", "lending-club-default", "--database", db], env,
                    tmp_path / "serve.log")
    server.start()
    try:
        monkeypatch.setenv("LOANRISK_API_URL", server.url)
        monkeypatch.setenv("LOANRISK_API_KEY", key)
        at = _app()
        _button(at, "Load an example applicant").click().run()
        _button(at, "Score").click().run()
        assert not at.error, [e.value for e in at.error]
        assert f"by the decision service at {server.url}" in _texts(at)
        assert not at.success  # scoring stores nothing

        _button(at, "Submit as an application").click().run()
        assert not at.error, [e.value for e in at.error]
        stored = str(at.success[0].value)
        assert stored.startswith("Stored as application ") and stored.endswith("(mail)")
        _button(at, "Submit as an application").click().run()  # a second click
        assert str(at.success[0].value) == stored
        store = Store(db)
        try:
            rows = store.list_applications(limit=10, api_key_id=None)
            assert [(str(r.id), r.channel) for r in rows] == [(stored.split()[3], "mail")]
        finally:
            store.close()

        monkeypatch.setenv("LOANRISK_API_KEY", "lr_wrong")
        _button(at, "Score").click().run()
        assert "answered 401" in str(at.error[0].value)
    finally:
        server.stop()
