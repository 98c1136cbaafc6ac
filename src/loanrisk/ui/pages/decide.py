"""Decide: an underwriter fills in (or loads) an application and sees the decision and why."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import pandas as pd
import streamlit as st

from loanrisk.errors import LoanriskError
from loanrisk.scoring.scorer import Scorer
from loanrisk.scoring.validation import CHANNELS
from loanrisk.ui import common, forms
from loanrisk.ui.forms import FieldSpec

TIER_COLOUR = {"low": "green", "medium": "orange", "high": "red"}


def _key(p: common.Picked, name: str) -> str:
    return f"f:{p.name}:v{p.version.version}:{name}"


def _load_example(p: common.Picked, specs: list[FieldSpec], rows: list[dict[str, Any]]) -> None:
    """Button callback: put the next example applicant into the form's widgets."""
    if not rows:
        return
    i = st.session_state.get(_key(p, "example_index"), -1) + 1  # per model version
    st.session_state[_key(p, "example_index")] = i
    row = rows[i % len(rows)]
    for spec in specs:
        value = forms.form_value(spec, row.get(spec.name))
        if spec.kind == "category" and value not in spec.options:
            value = spec.default
        if spec.kind == "number" and value is not None:
            value = min(max(value, spec.low if spec.low is not None else value),
                        spec.high if spec.high is not None else value)
        st.session_state[_key(p, spec.name)] = value
    st.session_state["example_label"] = (
        _key(p, ""), f"example applicant #{i % len(rows) + 1} of {len(rows)}")


def _widget(p: common.Picked, spec: FieldSpec) -> Any:
    key = _key(p, spec.name)
    if key not in st.session_state:
        st.session_state[key] = spec.default
    if spec.kind == "category":
        return st.selectbox(spec.label, spec.options, key=key, help=spec.help,
                            format_func=spec.shown)
    # no min/max on the widget: Streamlit would silently keep the last valid number; the
    # service's own validation names an out-of-range or empty field instead
    return st.number_input(spec.label, step=1.0, value=None, key=key, help=spec.help,
                           placeholder="(missing)" if spec.optional else "(required)")


def _form(p: common.Picked, specs: list[FieldSpec], *, can_submit: bool
          ) -> tuple[dict[str, Any] | None, str | None]:
    """The application form: (its values, the channel to submit it for, else None), or
    (None, None) until a button is pressed. Submitting needs the decision service."""
    with st.form("application"):
        cols = st.columns(2)
        values = {}
        for i, spec in enumerate(specs):
            with cols[i % 2]:
                values[spec.name] = _widget(p, spec)
        scored = st.form_submit_button("Score", type="primary", icon=":material/gavel:")
        submitted = False
        channel = None
        if can_submit:
            channel = st.selectbox("Channel (when submitting)", CHANNELS,
                                   index=CHANNELS.index("mail"), key="submit_channel",
                                   help="Where the application came in: mail for paper forms "
                                        "keyed in here, call_center for a phone application.")
            submitted = st.form_submit_button("Submit as an application", icon=":material/send:",
                                              help="Decided and stored by the decision "
                                                   "service, as from any channel.")
    if not (scored or submitted):
        return None, None
    return values, channel if submitted else None


def _show(result: dict[str, Any], *, via: str) -> None:
    """Decision, tier, probabilities and reasons."""
    st.subheader("Decision")
    tier = str(result["risk_tier"])
    st.metric("Decision", str(result["decision"]))
    c1, c2 = st.columns(2)
    c1.metric("Risk tier", tier)
    c2.metric("Risk score", f"{float(result['risk_score']):.3f}")
    st.markdown(f":{TIER_COLOUR.get(tier, 'gray')}-badge[{tier} risk]")
    probs = result["probabilities"]
    chart = pd.DataFrame({"class": list(probs), "probability": list(probs.values())})
    st.bar_chart(chart, x="class", y="probability", sort=False, height=220)
    st.markdown("**Reasons** (what pushed this application toward the worse outcome)")
    if result["reasons"]:
        st.markdown("\n".join(f"- {r}" for r in result["reasons"]))
    else:
        st.markdown("- none: no attribute made this application riskier than a typical one")
    m = result.get("model") or {}
    st.caption(f"{m.get('name')} v{m.get('version')} ({m.get('model', '?')}, sha256 "
               f"{str(m.get('sha256', ''))[:12]}…), scored {via}")


def render() -> None:
    """The Decide page."""
    st.title("Decide")
    p = common.picked()
    if p is None:
        common.empty_state()
        return
    url = forms.api_url()
    info = p.version
    try:
        scorer = common.scorer(info)
    except LoanriskError as exc:
        st.error(f"{p.name} v{info.version} cannot be served: {exc}")
        return
    manifest, schema = scorer.manifest, scorer.schema
    specs = forms.field_specs(manifest, schema)
    st.caption(f"{p.name} v{info.version} ({info.model}) · {schema.get('target', 'target')}: "
               f"{', '.join(scorer.classes)} · {len(specs)} attributes")
    if url:
        served = forms.served_model(url)
        if served is None or served.get("name") != p.name:
            what = f"serves {served.get('name')}" if served else "does not answer /ready"
            st.warning(f"The decision service at {url} {what}: {p.name} v{info.version} is "
                       "scored in-process here instead.")
            url = None
        elif "champion" not in info.aliases:
            st.warning(f"Scoring goes through {url}, which serves the champion "
                       f"(v{served.get('version')}), not v{info.version}.")
    rows = forms.examples(scorer.model_dir, manifest)
    if specs and _key(p, specs[0].name) not in st.session_state:
        # Streamlit dropped the form's values (another page or version was shown): the form
        # starts again from the defaults, and so does the example it no longer holds
        st.session_state.pop("example_label", None)
        st.session_state.pop(_key(p, "example_index"), None)
    left, right = st.columns([3, 2], gap="large")
    with left:
        st.button("Load an example applicant", icon=":material/person:",
                  on_click=_load_example, args=(p, specs, rows), disabled=not rows)
        loaded = st.session_state.get("example_label")
        if loaded and loaded[0] == _key(p, ""):  # only for the version it was loaded into
            st.caption(f"Loaded {loaded[1]} (golden inputs, then the evaluation split)")
        values, channel = _form(p, specs, can_submit=url is not None)
    with right:
        if values is None:
            st.info("Fill in the application (or load an example) and press **Score**.",
                    icon=":material/arrow_back:")
        else:
            _decide(manifest, schema, scorer, specs, values, url, channel)


def _idempotency_key(record: dict[str, Any], channel: str) -> str:
    """The same form submitted again in this browser session (a second click) replays the
    stored application; the same values in another session are a new application."""
    session = st.session_state.setdefault("submit_session", uuid.uuid4().hex)
    body = json.dumps([record, channel, session], sort_keys=True, default=str)
    return "ui-" + hashlib.sha256(body.encode()).hexdigest()[:40]


def _decide(manifest: dict[str, Any], schema: dict[str, Any], scorer: Scorer,
            specs: list[FieldSpec], values: dict[str, Any], url: str | None,
            channel: str | None) -> None:
    """Validate the form's values like the service does, score them and show the decision."""
    record = forms.to_record(specs, values)
    errors = forms.validate(manifest, schema, record)
    if errors:
        st.error("The application does not fit the model's schema:\n\n"
                 + "\n".join(f"- {e}" for e in errors))
        return
    try:
        if url and channel:
            result = forms.submit_http(url, record, channel=channel,
                                       idempotency_key=_idempotency_key(record, channel))
        else:
            result = forms.score_http(url, record) if url else forms.score_local(scorer, record)
    except LoanriskError as exc:
        st.error(str(exc))
        return
    if "id" in result:
        st.success(f"Stored as application {result['id']} ({result.get('channel')})",
                   icon=":material/check_circle:")
    _show(result, via=f"by the decision service at {url}" if url else "in-process (onnxruntime)")


if __name__ == "__main__":
    render()
