"""Streamlit pieces every page shares: settings, the registry, the model picker, loaded scorers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from loanrisk.config import Settings, get_settings
from loanrisk.errors import ModelLoadError
from loanrisk.registry import Registry, VersionInfo
from loanrisk.scoring.scorer import Scorer
from loanrisk.ui import data

PICKED = "loanrisk_picked"  # session-state key of the sidebar's choice


@dataclass(frozen=True)
class Picked:
    """The model name and version chosen in the sidebar."""

    name: str
    version: VersionInfo
    versions: list[VersionInfo]


def settings() -> Settings:
    """The process settings (LOANRISK_* environment)."""
    return get_settings()


@st.cache_resource(show_spinner=False)
def _registry(home: str, tracking: str) -> Registry:
    return Registry(get_settings())


def registry() -> Registry:
    """One Registry per home and tracking URI (the MLflow client is reused across reruns)."""
    s = settings()
    return _registry(str(s.home), s.resolved_tracking_uri)


@st.cache_resource(show_spinner="Loading and verifying the model…", max_entries=8)
def _scorer(home: str, name: str, version: int, sha256: str) -> Scorer:
    reg = registry()
    scorer = reg.load_scorer(name, version)
    if sha256 and scorer.sha256 != sha256:  # the version changed under the page: reload it
        raise ModelLoadError(f"{name} v{version}: SHA-256 changed while the page was open")
    return scorer


def scorer(info: VersionInfo) -> Scorer:
    """A verified scorer for a version (cached; SHA-256 and golden inputs checked on load)."""
    return _scorer(str(settings().home), info.name, info.version, info.sha256)


def model_dir(info: VersionInfo) -> Path:
    """A version's local files (manifest.json, schema.json, model.onnx, eval.parquet)."""
    return registry().download(info.name, info.version)


def manifest_of(info: VersionInfo) -> dict[str, Any]:
    """A version's manifest."""
    return dict(json.loads((model_dir(info) / "manifest.json").read_text()))


def label(v: VersionInfo) -> str:
    """'v3 · gbdt · champion' for pickers."""
    return f"v{v.version} · {v.model}" + (" · champion" if "champion" in v.aliases else "")


def aliases_key(versions: list[VersionInfo]) -> str:
    """Part of a version picker's widget key that changes when the champion moves, so that the
    picker is rebuilt with the new "· champion" label (a keyed widget keeps its old labels)."""
    return ",".join(f"{v.version}{'*' if 'champion' in v.aliases else ''}" for v in versions)


def empty_state() -> None:
    """What every page shows when nothing is registered yet."""
    st.info(f"No models are registered yet: {data.LEARN_HINT}, then reload this page.",
            icon=":material/info:")
    st.code("loanrisk learn --dataset lending-club-grades", language="bash")


def sidebar_picker() -> Picked | None:
    """The sidebar's model and version pickers (champion by default); stores the choice."""
    st.session_state[PICKED] = None
    try:
        names = data.list_models(registry())
    except Exception as exc:  # the tracking server may be down: say so, keep the app up
        st.sidebar.error(f"Cannot read the registry: {exc}")
        return None
    st.sidebar.caption(f"home: `{settings().home}`")
    if not names:
        st.sidebar.info("No models yet.")
        return None
    name = st.sidebar.selectbox("Model", names, key="model_name")
    try:
        versions = registry().list_versions(name)
    except Exception as exc:  # same: a registry hiccup is a message, not a traceback
        st.sidebar.error(f"Cannot list the versions of {name}: {exc}")
        return None
    if not versions:
        st.sidebar.warning(f"{name} has no versions.")
        return None
    champ = next((i for i, v in enumerate(versions) if "champion" in v.aliases), len(versions) - 1)
    idx = st.sidebar.selectbox("Version", range(len(versions)), index=champ,
                               format_func=lambda i: label(versions[i]),
                               key=f"version:{name}:{aliases_key(versions)}")
    picked = Picked(name, versions[idx], versions)
    st.session_state[PICKED] = picked
    return picked


def picked() -> Picked | None:
    """The sidebar's current choice (None when nothing is registered)."""
    value = st.session_state.get(PICKED)
    return value if isinstance(value, Picked) else None
