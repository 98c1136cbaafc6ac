"""Encryption at rest of what identifies or describes an applicant: the ONE place it happens.

The applications table's ``attributes``, ``applicant_id`` and ``external_ref`` columns use the
column types below: every write through SQLAlchemy (the service, imports) seals the value and
every read opens it, so the API, replay, monitor, performance, retrain, export and the UI read
clear values without knowing. AES-256-GCM (``cryptography``): authenticated (a changed byte,
or a value moved to another column, fails instead of decrypting to garbage: the column name is
the associated data), a fresh 96-bit nonce per value, standard and fast (AES-NI). A sealed
value reads ``enc:<key id>:<base64(nonce | ciphertext | tag)>``; values stored before
encryption was turned on are read as they are until ``loanrisk keys rotate-data`` seals them.

Keys: ``LOANRISK_ENCRYPTION_KEYS="k2:<base64 32 bytes>,k1:<base64>,index:<base64>"`` or the same
entries, one per line, in the file ``LOANRISK_ENCRYPTION_KEY_FILE``. The first data key is the
active one (new values; rotation target); the others are kept to read older values. ``index``
is the separate key of the blind index: HMAC-SHA256 of applicant_id / external_ref, stored
beside the ciphertext so lookups by value work without decrypting (it never rotates with the
data keys). Neither variable set: on by default, with the key file ``$LOANRISK_HOME/keys/
data.keys`` (mode 0600), made at first use with a new data key and a new index key. Only
``LOANRISK_ENCRYPTION=off`` stores in clear (``loanrisk doctor`` warns).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from loanrisk.errors import LoanriskError

PREFIX = "enc:"
FILE_MAGIC = b"LRSEAL1 "
SET_KEYS = ("set LOANRISK_ENCRYPTION_KEYS (kid:base64key,...,index:base64key) or "
            "LOANRISK_ENCRYPTION_KEY_FILE; `loanrisk keys new-data-key` makes one")


class KeyProblem(LoanriskError):
    """A data key is missing, malformed or wrong."""


def new_key() -> str:
    """A new random 256-bit key, base64."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


@dataclass
class Keyring:
    """The data keys (first active) and the blind-index key."""

    keys: dict[str, bytes] = field(repr=False)  # never in a repr, a log line or a traceback
    active: str
    index_key: bytes = field(repr=False)
    _ciphers: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def cipher(self, kid: str) -> Any:
        """The AESGCM object of key ``kid``, made once (the key schedule is not redone per
        value)."""
        aead = self._ciphers.get(kid)
        if aead is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            aead = self._ciphers[kid] = AESGCM(self.keys[kid])
        return aead

    @classmethod
    def parse(cls, text: str, where: str) -> Keyring:
        keys: dict[str, bytes] = {}
        index: bytes | None = None
        for entry in (e.strip() for e in text.replace("\n", ",").split(",")):
            if not entry or entry.startswith("#"):
                continue
            kid, _, b64 = entry.partition(":")
            try:
                raw = base64.b64decode(b64.strip(), validate=True)
            except ValueError:
                raw = b""
            if not kid.strip() or len(raw) != 32:
                raise KeyProblem(f"{where}: entry {kid.strip() or '?'!r} is not "
                                 "'<key id>:<base64 of 32 bytes>'; " + SET_KEYS)
            if kid.strip() == "index":
                index = raw
            else:
                keys[kid.strip()] = raw
        if not keys or index is None:
            raise KeyProblem(f"{where}: needs at least one data key and an 'index:' key; "
                             + SET_KEYS)
        return cls(keys=keys, active=next(iter(keys)), index_key=index)

    def seal(self, value: str, column: str) -> str:
        nonce = secrets.token_bytes(12)
        ct = self.cipher(self.active).encrypt(nonce, value.encode(), column.encode())
        return f"{PREFIX}{self.active}:{base64.b64encode(nonce + ct).decode()}"

    def open(self, value: str, column: str) -> str:
        from cryptography.exceptions import InvalidTag

        kid, _, b64 = value[len(PREFIX):].partition(":")
        if kid not in self.keys:
            raise KeyProblem(f"stored applications are encrypted with key {kid!r}, which the "
                             "configured keys do not hold: add it to LOANRISK_ENCRYPTION_KEYS "
                             "(or the key file)")
        blob = base64.b64decode(b64)
        try:
            return self.cipher(kid).decrypt(blob[:12], blob[12:], column.encode()).decode()
        except InvalidTag:
            raise KeyProblem(f"key {kid!r} does not decrypt the stored applications (a wrong "
                             "key under that id, or altered data): fix LOANRISK_ENCRYPTION_KEYS "
                             "(or the key file)") from None

    def seal_bytes(self, data: bytes, context: str) -> bytes:
        """A whole file sealed with the active key: ``LRSEAL1 <key id>\\n`` then nonce,
        ciphertext and tag; ``context`` (where the file belongs) is the associated data."""
        nonce = secrets.token_bytes(12)
        return (FILE_MAGIC + self.active.encode() + b"\n" + nonce
                + self.cipher(self.active).encrypt(nonce, data, context.encode()))

    def open_bytes(self, blob: bytes, context: str, where: str) -> bytes:
        """A file sealed by :meth:`seal_bytes`, opened (KeyProblem naming ``where``)."""
        from cryptography.exceptions import InvalidTag

        head, _, rest = blob[len(FILE_MAGIC):].partition(b"\n")
        kid = head.decode(errors="replace")
        if not blob.startswith(FILE_MAGIC) or len(rest) < 28:
            raise KeyProblem(f"{where} is not a file sealed by loanrisk (run `loanrisk export` "
                             "again)")
        if kid not in self.keys:
            raise KeyProblem(f"{where} is encrypted with key {kid!r}, which the configured "
                             "keys do not hold: add it to LOANRISK_ENCRYPTION_KEYS (or the "
                             "key file)")
        try:
            return self.cipher(kid).decrypt(rest[:12], rest[12:], context.encode())  # type: ignore[no-any-return]
        except InvalidTag:
            raise KeyProblem(f"key {kid!r} does not decrypt {where} (a wrong key under that "
                             "id, or an altered or moved file): fix LOANRISK_ENCRYPTION_KEYS "
                             "(or the key file)") from None

    def blind(self, value: str | None) -> str | None:
        """HMAC-SHA256 of a value under the index key (hex), for equality lookups."""
        if value is None:
            return None
        return hmac.new(self.index_key, value.encode(), hashlib.sha256).hexdigest()


_cache: dict[str, Keyring | None] = {}
DEFAULT_FILE = Path("keys") / "data.keys"


def encryption_off() -> bool:
    """``LOANRISK_ENCRYPTION=off`` (or false/0/no): applicant data stored in clear."""
    return os.environ.get("LOANRISK_ENCRYPTION", "").strip().lower() in {"off", "false", "0",
                                                                         "no"}


def default_key_file() -> Path:
    """Where the key file made at first use lives: ``$LOANRISK_HOME/keys/data.keys``."""
    from loanrisk.config import get_settings

    return get_settings().home / DEFAULT_FILE


def _made_key_file(path: Path) -> str:
    """The default key file's text, made first (0600, atomically: concurrent first uses by
    several processes agree on one file) when it does not exist yet."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.parent.chmod(0o700)
        except OSError:
            pass
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("# loanrisk data keys (made at first use): the first data key is active;\n"
                     "# keep this file out of the database's backups and never lose it.\n"
                     f"k1:{new_key()}\nindex:{new_key()}\n")
        try:
            os.link(tmp, path)  # fails when another process made it first: theirs is kept
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text()


def keyring() -> Keyring | None:
    """The configured keyring (read once per configuration), or None: encryption off.

    ``LOANRISK_ENCRYPTION_KEYS``, else ``LOANRISK_ENCRYPTION_KEY_FILE``, else (unless
    ``LOANRISK_ENCRYPTION=off``) the default key file under the loanrisk home, made at first
    use."""
    spec = (os.environ.get("LOANRISK_ENCRYPTION_KEYS", ""),
            os.environ.get("LOANRISK_ENCRYPTION_KEY_FILE", ""))
    default = None if spec[0].strip() or spec[1].strip() or encryption_off() \
        else default_key_file()
    token = "\0".join((*spec, str(default)))
    if token not in _cache:
        if spec[0].strip():
            _cache[token] = Keyring.parse(spec[0], "LOANRISK_ENCRYPTION_KEYS")
        elif spec[1].strip():
            try:
                text = open(spec[1]).read()  # noqa: PTH123, SIM115
            except OSError as exc:
                raise KeyProblem(f"LOANRISK_ENCRYPTION_KEY_FILE {spec[1]}: {exc.strerror}; "
                                 + SET_KEYS) from None
            _cache[token] = Keyring.parse(text, f"key file {spec[1]}")
        elif default is not None:
            try:
                text = _made_key_file(default)
            except OSError as exc:
                raise KeyProblem(f"the default key file {default}: {exc.strerror}; "
                                 + SET_KEYS + " (or LOANRISK_ENCRYPTION=off to store in "
                                 "clear)") from None
            _cache[token] = Keyring.parse(text, f"key file {default}")
        else:
            _cache[token] = None
    return _cache[token]


def open_value(value: Any, column: str) -> Any:
    """A stored value, opened when sealed (clear values as they are)."""
    if isinstance(value, str) and value.startswith(PREFIX):
        ring = keyring()
        if ring is None:
            raise KeyProblem("stored applications are encrypted but no key is configured: "
                             + SET_KEYS)
        return ring.open(value, column)
    return value


class SealedText(TypeDecorator[str]):
    """Text sealed with the active data key (clear when encryption is off)."""

    impl = Text
    cache_ok = True

    def __init__(self, column: str) -> None:
        super().__init__()
        self.column = column

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        ring = keyring()
        if value is None or ring is None or value.startswith(PREFIX):
            return value
        return ring.seal(value, self.column)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return open_value(value, self.column)  # type: ignore[no-any-return]


class SealedJson(TypeDecorator[Any]):
    """JSON sealed as ``{"enc": "<sealed JSON text>"}`` (the column stays JSON/JSONB)."""

    impl = JSON
    cache_ok = True

    def __init__(self, column: str) -> None:
        super().__init__()
        self.column = column

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":  # JSONB, as the plain JSON columns
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        ring = keyring()
        if value is None or ring is None or is_sealed_json(value):
            return value
        return {"enc": ring.seal(json.dumps(value, separators=(",", ":")), self.column)}

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return open_json(value, self.column)


def is_sealed_json(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("enc"), str) \
        and value["enc"].startswith(PREFIX)


def open_json(value: Any, column: str = "attributes") -> Any:
    """A stored JSON value (parsed or text), opened when sealed."""
    if isinstance(value, str) and value.startswith("{\"enc\""):
        value = json.loads(value)
    if is_sealed_json(value):
        return json.loads(open_value(value["enc"], column))
    return value
