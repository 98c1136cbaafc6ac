"""Errors a user can act on.

The CLI and the API turn these into clear messages, never tracebacks.
"""

from __future__ import annotations


class LoanriskError(Exception):
    """Base class: a problem the user can fix. The message says what, where, and how to fix it."""


class SchemaError(LoanriskError):
    """The data schema is malformed: names the file and the attribute."""


class DataError(LoanriskError):
    """The data does not fit its schema: names the attribute and, where known, the row."""


class LeakageError(LoanriskError):
    """A feature alone predicts the target almost perfectly; training refuses to use it."""


class RegistryError(LoanriskError):
    """The model registry cannot do what was asked (unknown model, version, alias...)."""


class RegistryUnavailable(RegistryError):  # noqa: N818 - reads as what happened
    """The tracking server cannot be reached (or keeps failing): nothing was decided."""


class GateError(LoanriskError):
    """A promotion was refused by the gate; the message says why."""


class ModelLoadError(LoanriskError):
    """A model version cannot be served (hash mismatch, failed golden check, missing files)."""


# Registry and gate messages give command-line advice; other surfaces say the same in their terms.
HTTP_WORDS = (("use --force", 'send "force": true'), ("pass --version N", 'send "version"'),
              ("`loanrisk models list`", "GET /v1/admin/versions"))
UI_WORDS = (("use --force", "tick force"), ("--force", "force"))


def reword(message: str, words: tuple[tuple[str, str], ...]) -> str:
    """``message`` with each command-line phrase of ``words`` replaced by its counterpart."""
    for cli, other in words:
        message = message.replace(cli, other)
    return message


# Which extra brings each third-party module outside the core install (pyproject.toml; checked by
# tests/unit/test_dependencies.py). The first extra named is the one to suggest.
EXTRA_FOR_MODULE: dict[str, tuple[str, ...]] = {
    "mlflow": ("registry", "train"),
    "pandas": ("registry", "lake", "ui", "train"),
    "psycopg": ("postgres",),
    "redis": ("redis",),
    "pyarrow": ("lake", "train"),
    "duckdb": ("lake", "train"),
    "streamlit": ("ui",),
    "httpx": ("ui",),
    "torch": ("train",),
    "sklearn": ("train",),
    "lightgbm": ("train",),
    "onnx": ("train",),
    "optuna": ("train",),
    "matplotlib": ("train",),
    "tqdm": ("train",),
    "scipy": ("train",),
    "ray": ("scale",),
}


def missing_extra(module: str | None) -> str | None:
    """One line saying which extra to install for a missing third-party ``module`` (None when the
    module is not one an extra brings)."""
    top = (module or "").split(".")[0]
    extras = EXTRA_FOR_MODULE.get(top)
    if not extras:
        return None
    also = ", ".join(f"[{e}]" for e in extras[1:])
    return (f"{top} is not installed: pip install 'loanrisk[{extras[0]}]'"
            + (f" (it also comes with {also} and [all])" if also else " (or [all])"))
