"""`loanrisk doctor`'s security checks: the TLS certificate (readable, matching its key, valid
now, not expiring soon) and whether the store's data is encrypted at rest."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from loanrisk.cli.checks import Check

CERT_WARNING_DAYS = 30


def check_certificate(certfile: Path, keyfile: Path | None = None,
                      now: datetime | None = None) -> list[Check]:
    """The certificate's validity window (FAIL outside it, warn within CERT_WARNING_DAYS of its
    end) and, with ``keyfile``, whether the key matches it."""
    from cryptography import x509

    now = now or datetime.now(UTC)
    try:
        cert = x509.load_pem_x509_certificate(Path(certfile).read_bytes())
    except (OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or exc
        return [Check("TLS certificate", False, f"{certfile}: {why}",
                      "give a PEM certificate to --ssl-certfile")]
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    subject = cert.subject.rfc4514_string() or "(no subject)"
    found = f"{subject}, valid {start:%Y-%m-%d} to {end:%Y-%m-%d %H:%M} UTC"
    if now < start or now >= end:
        state = "expired" if now >= end else "not yet valid"
        return [Check("TLS certificate", False, f"{state}: {found}",
                      "renew the certificate (and restart `loanrisk serve`)")]
    out = [Check("TLS certificate", True, found)]
    if end - now < timedelta(days=CERT_WARNING_DAYS):
        out.append(Check("TLS certificate expiry", False, f"expires in {(end - now).days} days "
                         f"({end:%Y-%m-%d %H:%M} UTC)", "renew it before then", required=False))
    if keyfile is not None:
        import ssl

        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
        except (OSError, ssl.SSLError) as exc:
            out.append(Check("TLS key", False, f"{keyfile}: {exc}", "give the certificate's own "
                             "unencrypted PEM key to --ssl-keyfile"))
        else:
            out.append(Check("TLS key", True, f"{keyfile} matches the certificate"))
    return out


def check_encryption() -> list[Check]:
    """Whether applicant data is sealed at rest (a warning when off; a FAIL when the keys are
    malformed)."""
    from loanrisk.errors import LoanriskError
    from loanrisk.store.crypto import SET_KEYS, default_key_file, keyring

    try:
        ring = keyring()
    except LoanriskError as exc:
        return [Check("encryption at rest", False, str(exc), SET_KEYS)]
    if ring is None:
        return [Check("encryption at rest", False, "off (LOANRISK_ENCRYPTION=off): applicant "
                      "attributes and identifiers are stored in clear",
                      "unset LOANRISK_ENCRYPTION (a key file is made under the home) or "
                      + SET_KEYS + ", then `loanrisk keys rotate-data`", required=False)]
    where = "LOANRISK_ENCRYPTION_KEYS" if os.environ.get("LOANRISK_ENCRYPTION_KEYS", "").strip() \
        else os.environ.get("LOANRISK_ENCRYPTION_KEY_FILE", "").strip() or \
        f"{default_key_file()} (made at first use; keep it out of the database's backups)"
    return [Check("encryption at rest", True, f"AES-256-GCM, active key {ring.active!r} "
                  f"({len(ring.keys)} data key(s)), blind index keyed; keys: {where}")]
