"""The application store (SQLite or PostgreSQL): tables, migrations, keys, outcomes, challenger
results, the Parquet lake and the frames the watch stage reads."""

from loanrisk.store.core import (
    KEY_PREFIX,
    DuplicateApplication,
    KeyInfo,
    Store,
    hash_key,
)
from loanrisk.store.engine import (
    MIGRATIONS,
    StoreError,
    head_revision,
    make_engine,
    migrate,
    normalise_url,
)

__all__ = ["KEY_PREFIX", "MIGRATIONS", "DuplicateApplication", "KeyInfo", "Store", "StoreError",
           "hash_key", "head_revision", "make_engine", "migrate", "normalise_url"]
