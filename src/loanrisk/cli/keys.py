"""`loanrisk keys`: create (optionally expiring), list and revoke the service's API keys."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from rich.table import Table

from loanrisk.cli.common import DatabaseOpt, add_group, console, store_for
from loanrisk.errors import LoanriskError

keys_app = typer.Typer(help="API keys for the decision service (stored hashed).",
                       no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    channel: Annotated[list[str] | None, typer.Option(
        help="web | mobile | chatbot | call_center | mail: the channel(s) its applications may "
             "come from. Repeat it or give a comma list (--channel web --channel mobile, "
             "--channel web,mobile); the first is the default when a body names none. A body "
             "naming any other channel is refused (403), for admin keys too. Default: web.")
    ] = None,
    admin: Annotated[bool, typer.Option("--admin", help="May promote, roll back, reload and "
                                        "read every application.")] = False,
    expires: Annotated[str | None, typer.Option(
        help="Stop working after this long: 90d, 12h, 2w (default: never).")] = None,
    database: DatabaseOpt = None,
) -> None:
    """Create an API key and print it once (only its SHA-256 is stored)."""
    from loanrisk.scoring.validation import CHANNELS
    from loanrisk.store.tables import utcnow
    from loanrisk.watch.retrain import parse_duration

    channels = list(dict.fromkeys(c.strip() for given in (channel or ["web"])
                                  for c in given.split(",") if c.strip()))
    for c in channels or [""]:
        if c not in CHANNELS:
            raise LoanriskError(f"--channel {c!r}: use one or more of {', '.join(CHANNELS)}")
    expires_at = None
    if expires is not None:
        try:
            expires_at = utcnow() + timedelta(seconds=parse_duration(expires))
        except LoanriskError:
            raise LoanriskError(f"--expires {expires!r}: use a positive duration such as 90d, "
                                "12h or 2w") from None
    token, row = store_for(database).create_key(channel=channels, admin=admin,
                                             expires_at=expires_at)
    until = f", expires {expires_at:%Y-%m-%d %H:%M} UTC" if expires_at else ""
    allowed = channels[0] + (f" (default), {', '.join(channels[1:])}" if channels[1:] else "")
    console.print(f"key id {row.id} ({'admin, ' if admin else ''}{allowed}{until}); it is shown "
                  "once:", highlight=False)
    print(token)


@keys_app.command("list")
def keys_list(database: DatabaseOpt = None) -> None:
    """List API keys (ids, prefixes, allowed channels with the default first, and expiry; never
    the keys)."""
    table = Table(title="API keys")
    table.add_column("id", overflow="fold")
    for col in ("prefix", "channels", "admin", "created", "expires", "state"):
        table.add_column(col)
    for k in store_for(database).list_keys():
        state = "revoked" if k.revoked else "expired" if k.expired() else "active"
        expires = k.expires_at.strftime("%Y-%m-%d %H:%M") if k.expires_at else "never"
        table.add_row(str(k.id), k.prefix + "…", ", ".join(k.allowed_channels()),
                      "yes" if k.admin else "",
                      k.created_at.strftime("%Y-%m-%d %H:%M"), expires, state)
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (or a unique start of it).")],
    database: DatabaseOpt = None,
) -> None:
    """Revoke an API key (takes effect within seconds)."""
    row = store_for(database).revoke_key(key_id)
    console.print(f"revoked {row.id} ({row.channel})", highlight=False)


@keys_app.command("rotate-data")
def keys_rotate_data(
    batch: Annotated[int, typer.Option(min=1, help="Applications per transaction.")] = 1000,
    database: DatabaseOpt = None,
) -> None:
    """Seal every stored application with the active data key (the first of
    LOANRISK_ENCRYPTION_KEYS), clear rows included, in batches; interrupt it and run it again
    to go on. Keep the old keys configured until it reports 0 left."""
    from loanrisk.store.rotate import remaining, rotate_data

    store = store_for(database)
    n = rotate_data(store, batch=batch)
    store.audit("data keys rotated", endpoint="cli keys rotate-data", details={"rows": n})
    console.print(f"re-sealed {n:,} applications; {remaining(store):,} left", highlight=False)


@keys_app.command("new-data-key")
def keys_new_data_key(
    key_id: Annotated[str, typer.Argument(help="Its id, e.g. k2 (or 'index' for the "
                                               "blind-index key).")],
) -> None:
    """Print a new random 256-bit key as '<id>:<base64>' for LOANRISK_ENCRYPTION_KEYS (put it
    first to make it the active key)."""
    from loanrisk.store.crypto import new_key

    print(f"{key_id}:{new_key()}")


def register(app: typer.Typer) -> None:
    """Add `keys` to the `loanrisk` app."""

    add_group(app, keys_app, "keys")
