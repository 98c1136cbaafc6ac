"""`loanrisk doctor`: check a deployment's pieces before the service (or a schedule) needs them.

Each check is a plain function of the settings that returns :class:`Check` results: what was
found and, when something is wrong, the command or variable that fixes it. Checks never raise:
a failure is a result. ``required`` checks decide the exit code; the others are advice.

Order: the loanrisk home, the store (and its API keys), the registry, each champion (fetched,
SHA-256 verified, golden inputs re-scored: what the service does before serving it), the shared
rate-limit store when one is configured, and the optional extras installed.
"""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from loanrisk.config import Settings

EXPIRY_WARNING_DAYS = 14
EXTRAS = (("train", ("torch", "lightgbm", "mlflow", "optuna"), "learn, tune, evaluate"),
          ("ui", ("streamlit",), "loanrisk ui"),
          ("scale", ("ray",), "--backend ray"))


@dataclass(frozen=True)
class Check:
    """One finding: ``ok`` False with a ``fix`` when something must change."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _problem(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def check_home(settings: Settings) -> list[Check]:
    """The loanrisk home exists and is writable."""
    home = settings.home
    try:
        settings.ensure_home()
        probe = home / f".doctor-{uuid.uuid4().hex}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return [Check("home", False, f"{home}: {exc.strerror or exc}",
                      "set LOANRISK_HOME to a directory this user can write")]
    return [Check("home", True, str(home))]


def check_store(settings: Settings) -> list[Check]:
    """The store opens (migrated to the current revision) and holds at least one active key."""
    from loanrisk.store import Store
    from loanrisk.store.tables import utcnow

    url = settings.resolved_database_url
    try:
        store = Store(url)
    except Exception as exc:  # SQLAlchemy, the driver, Alembic: report, never raise
        return [Check("store", False, _problem(exc),
                      "check LOANRISK_DATABASE_URL (or --database): server running, database "
                      "created, user allowed")]
    try:
        keys = [k for k in store.list_keys() if k.active()]
        apps = store.count_applications()
    except Exception as exc:
        return [Check("store", False, _problem(exc), "check the database's permissions")]
    finally:
        store.close()
    found = [Check("store", True, f"{store.url.split('@')[-1]}: {apps:,} applications stored")]
    admins = sum(k.admin for k in keys)
    if keys:
        found.append(Check("API keys", True, f"{len(keys)} active ({admins} admin)"))
        soon = [k for k in keys if k.expired(utcnow() + timedelta(days=EXPIRY_WARNING_DAYS))]
        if soon:
            first = min(k.expires_at for k in soon if k.expires_at is not None)
            found.append(Check("API key expiry", False, f"{len(soon)} active key(s) expire within "
                               f"{EXPIRY_WARNING_DAYS} days (first {first:%Y-%m-%d %H:%M} UTC)",
                               "loanrisk keys create --expires ... for the channels concerned, "
                               "hand the new keys over, then revoke the old ones",
                               required=False))
    else:
        found.append(Check("API keys", False, "no active key: the service would answer 401 to "
                           "every request", "loanrisk keys create --channel web (and --admin "
                           "for an admin key)"))
    return found


def check_registry(settings: Settings, *, model: str | None = None,
                   verify: Callable[[Any, str, int], tuple[str, float]] | None = None
                   ) -> list[Check]:
    """The registry answers; each model (or ``model``) has a champion that loads and verifies."""
    from loanrisk.registry import Registry, redact, unavailable

    uri = settings.resolved_registry_uri
    reg = Registry(settings)
    try:
        names = reg.list_models()
    except Exception as exc:
        return [Check("registry", False, f"{_problem(unavailable(uri, exc))} (from "
                      f"{settings.registry_uri_source})",
                      "start the tracking server or fix LOANRISK_TRACKING_URI / "
                      "LOANRISK_REGISTRY_URI (or MLflow's MLFLOW_TRACKING_URI / "
                      "MLFLOW_REGISTRY_URI)")]
    found = [Check("registry", True, f"{redact(uri)} (from {settings.registry_uri_source}): "
                   f"{len(names)} registered model(s)")]
    if model is not None and model not in names:
        found.append(Check(f"model {model}", False, f"not registered; known: "
                           f"{', '.join(names) or 'none'}", "check --model"))
        return found
    if not names:
        found.append(Check("models", False, "nothing registered yet: there is no model to serve",
                           "loanrisk learn --dataset lending-club-default (or --data FILE "
                           "--schema FILE)"))
        return found
    for name in [model] if model else names:
        found += _check_champion(reg, name, verify or _load_and_verify)
    return found


def _check_champion(reg: Any, name: str,
                    verify: Callable[[Any, str, int], tuple[str, float]]) -> list[Check]:
    label = f"champion {name}"
    try:
        champ = reg.champion(name)
    except Exception as exc:
        return [Check(label, False, _problem(exc), "check the registry")]
    if champ is None:
        return [Check(label, False, "no version has the champion alias",
                      f"loanrisk models list, then loanrisk promote {name} VERSION")]
    try:
        detail, p50 = verify(reg, name, champ.version)
    except Exception as exc:
        return [Check(label, False, f"v{champ.version}: {_problem(exc)}",
                      f"retrain (loanrisk learn) or roll back (loanrisk rollback {name})")]
    found = [Check(label, True, f"v{champ.version} ({champ.model}): {detail}; "
                   f"p50 {p50:.0f} µs per application with reasons here")]
    budget = reg.settings.max_latency_us
    if budget is not None and p50 > budget:
        found.append(Check(f"latency {name}", False, f"v{champ.version} takes {p50:.0f} µs (p50) "
                           f"on this machine, over LOANRISK_MAX_LATENCY_US {budget:g}",
                           "serve on a faster machine, or retrain within the budget (loanrisk "
                           "learn --max-latency-us) and promote", required=False))
    return found


def _load_and_verify(reg: Any, name: str, version: int) -> tuple[str, float]:
    """Fetch a version (SHA-256 checked), load it as the service does (golden inputs), and time
    one application with its reasons on this machine: (what was checked, p50 in µs)."""
    from loanrisk.scoring.latency import scorer_p50_us

    scorer = reg.load_scorer(name, version)
    golden = (scorer.manifest.get("golden") or {}).get("inputs") or []
    records = golden or [dict(zip(scorer.features, scorer._reference, strict=True))]
    return (f"SHA-256 {scorer.sha256[:12]}… verified, golden inputs re-scored, "
            f"{len(scorer.features)} attributes", scorer_p50_us(scorer, records))


def check_rate_limit(settings: Settings) -> list[Check]:
    """With LOANRISK_RATE_LIMIT_URL set, that Redis answers (the service would fall back)."""
    if not settings.rate_limit_url:
        return [Check("rate limit", True, f"{settings.rate_limit_per_minute}/min per key, per "
                      "service process (LOANRISK_RATE_LIMIT_URL unset)", required=False)]
    import asyncio

    from loanrisk.api.ratelimit import make_limiter, masked

    url = masked(settings.rate_limit_url)
    try:
        limiter = make_limiter(settings.rate_limit_url, settings.rate_limit_per_minute)
    except Exception as exc:
        return [Check("rate limit", False, _problem(exc), "fix LOANRISK_RATE_LIMIT_URL")]

    async def ping() -> bool:
        try:
            return await limiter.ping(log_failure=False)
        finally:
            await limiter.close()

    if asyncio.run(ping()):
        return [Check("rate limit", True, f"{settings.rate_limit_per_minute}/min per key, "
                      f"shared through {url}")]
    return [Check("rate limit", False, f"{url} does not answer: each service process would "
                  "limit on its own", "start Redis or fix LOANRISK_RATE_LIMIT_URL", required=False)]


def check_extras() -> list[Check]:
    """Which optional extras are installed (advice only: the service needs none)."""
    found = []
    for extra, modules, used_by in EXTRAS:
        missing = [m for m in modules if importlib.util.find_spec(m) is None]
        found.append(Check(f"extra [{extra}]", not missing,
                           f"installed ({used_by})" if not missing else
                           f"missing {', '.join(missing)} (needed by {used_by})",
                           f"pip install 'loanrisk[{extra}]'" if missing else "",
                           required=False))
    return found


def run(settings: Settings, *, model: str | None = None) -> list[Check]:
    """Every check in order (see the module docstring)."""
    checks = check_home(settings)
    checks += check_store(settings)
    checks += check_registry(settings, model=model)
    checks += check_rate_limit(settings)
    checks += check_extras()
    return checks
