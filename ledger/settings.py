"""Settings of the engine from the environment (prefix ``CASELEDGER_``), failing closed outside development.

What only the HTTP face needs (tokens, request limits) is in `api.settings.ApiSettings`.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from decimal import Decimal
from enum import StrEnum
from itertools import pairwise
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.envelope import KEY_SIZE
from ledger.errors import ConfigurationError

__all__ = ["DEFAULT_MAX_CONTENT", "Mode", "Settings", "check_key_file", "decode_key", "weak_key_reason"]

DEFAULT_MAX_CONTENT = 1024 * 1024


class Mode(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(BaseSettings):
    # "forbid": a misspelt or misplaced setting passed in code is an error, not silently the default
    # (unknown CASELEDGER_ variables in the environment are not read at all)
    model_config = SettingsConfigDict(env_prefix="CASELEDGER_", extra="forbid")

    data_dir: Path = Path("./caseledger-data")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; SQLite in data_dir if unset")
    instance: str = "caseledger.local"
    mode: Mode = Mode.DEVELOPMENT
    #: 32-byte master key, hex or base64; takes precedence over master_key_file
    master_key: SecretStr | None = None
    master_key_file: Path | None = None
    max_content_bytes: int = Field(default=DEFAULT_MAX_CONTENT, gt=0)
    batch_size: int = Field(default=1000, gt=0)
    #: largest document (DESIGN §8), 25 MiB by default
    max_document_bytes: int = Field(default=25 * 1024 * 1024, ge=0)
    # anchoring (DESIGN §6): on when an RPC URL is set
    #: Ethereum JSON-RPC endpoint; anchoring is off while unset
    anchor_rpc_url: str | None = None
    anchor_chain_id: int | None = Field(default=None, gt=0)
    anchor_contract: str | None = Field(default=None, pattern=r"^0x[0-9a-fA-F]{40}$")
    #: the publisher's private key (hex), in a file only its owner may read
    anchor_key_file: Path | None = None
    anchor_confirmations: int = Field(default=2, ge=1, le=1000)
    #: seconds between rounds run by `caseledger serve`
    anchor_interval: float = Field(default=3600.0, ge=1.0)
    anchor_max_fee_gwei: Decimal = Field(default=Decimal("100"), gt=0)
    #: seconds to wait for a round's transaction to be confirmed before leaving it for the next run
    anchor_timeout: float = Field(default=600.0, gt=0)

    #: the instance's key and X.509 certificate (PEM) that sign exported PDF reports (PAdES); in
    #: development a self-signed pair is made in the data directory on first use
    report_key_file: Path | None = None
    report_cert_file: Path | None = None

    @property
    def report_signing_paths(self) -> tuple[Path, Path]:
        return (self.report_key_file or self.data_dir / "keys" / "report-signing.key",
                self.report_cert_file or self.data_dir / "keys" / "report-signing.pem")

    @property
    def anchoring(self) -> bool:
        return bool(self.anchor_rpc_url)

    def read_anchor_key(self) -> str:
        """The anchoring publisher's private key (hex) from CASELEDGER_ANCHOR_KEY_FILE. Its value is never
        part of an error message."""
        path = self.anchor_key_file
        if path is None:
            raise ConfigurationError("anchoring needs CASELEDGER_ANCHOR_KEY_FILE: a file holding the publisher's "
                                     "private key (hex), readable by its owner only")
        if self.mode is Mode.PRODUCTION:
            check_key_file(path)
        try:
            text = path.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"the anchoring key file {path} cannot be read: "
                                     f"{getattr(exc, 'strerror', None) or 'not text'}") from None
        digits = text[2:] if text.startswith(("0x", "0X")) else text
        if len(digits) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digits):
            raise ConfigurationError(f"the anchoring key file {path} must hold a 32-byte private key as 64 hex digits")
        return "0x" + digits.lower()

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'caseledger.db').resolve()}"

    @property
    def default_master_key_path(self) -> Path:
        return self.data_dir / "keys" / "master.key"

    @property
    def master_key_path(self) -> Path:
        return self.master_key_file or self.default_master_key_path

    def read_master_key(self) -> bytes:
        """The master key's 32 bytes, from CASELEDGER_MASTER_KEY or the key file (which must exist).

        In production mode the key file must be private and the key must not be a placeholder:
        the one check for both sources.
        """
        if self.master_key is not None:
            source, text = "CASELEDGER_MASTER_KEY", self.master_key.get_secret_value()
        else:
            path = self.master_key_path
            source = f"the master key file {path}"
            if self.mode is Mode.PRODUCTION:
                check_key_file(path)
            try:
                text = path.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigurationError(f"{source} cannot be read: {exc}") from None
        raw = decode_key(text, source)
        if self.mode is Mode.PRODUCTION:
            reason = weak_key_reason(raw)
            if reason is not None:
                raise ConfigurationError(f"{source} is a placeholder, not a key ({reason}); "
                                         "generate one with: openssl rand -hex 32")
        return raw

    def check_production(self) -> None:
        """Refuse unsafe production settings (STYLE §14)."""
        if self.mode is not Mode.PRODUCTION:
            return
        if self.master_key is None and self.master_key_file is None:
            raise ConfigurationError(
                "production mode needs CASELEDGER_MASTER_KEY or CASELEDGER_MASTER_KEY_FILE"
            )
        self.read_master_key()
        if not self.database_url:
            raise ConfigurationError("production mode needs an explicit CASELEDGER_DATABASE_URL")
        if self.anchoring:
            if self.anchor_chain_id is None or self.anchor_contract is None or self.anchor_key_file is None:
                raise ConfigurationError("anchoring needs CASELEDGER_ANCHOR_CHAIN_ID, CASELEDGER_ANCHOR_CONTRACT "
                                         "and CASELEDGER_ANCHOR_KEY_FILE beside CASELEDGER_ANCHOR_RPC_URL")
            check_key_file(self.anchor_key_file)
        if (self.report_key_file is None) != (self.report_cert_file is None):
            raise ConfigurationError("give both CASELEDGER_REPORT_KEY_FILE and CASELEDGER_REPORT_CERT_FILE, or neither")
        if self.report_key_file is not None:
            check_key_file(self.report_key_file)


def decode_key(text: str, source: str) -> bytes:
    """A 32-byte key written as 64 hex digits or as base64."""
    text = text.strip()
    try:
        raw = bytes.fromhex(text) if len(text) == 2 * KEY_SIZE else base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        raw = b""
    if len(raw) != KEY_SIZE:
        raise ConfigurationError(f"{source} must hold a 32-byte key as 64 hex digits or base64")
    return raw


def _periodic(data: bytes, longest: int) -> int | None:
    return next((period for period in range(1, longest + 1) if data[period:] == data[:-period]), None)


def weak_key_reason(raw: bytes) -> str | None:
    """Why `raw` is evidently not a random key (all zeros, a repeated or counting pattern, text), or None.

    Each test fails for a random 32-byte key with a probability below 1e-13, so a real key is never refused.
    """
    if len(set(raw)) < len(raw) // 2:
        return f"only {len(set(raw))} distinct byte values"
    period = _periodic(raw, len(raw) // 2)
    if period is not None:
        return f"a pattern repeating every {period} bytes"
    steps = bytes((b - a) % 256 for a, b in pairwise(raw))
    if _periodic(steps, len(steps) // 2) is not None:
        return "a counting pattern"
    if all(0x20 <= byte < 0x7F for byte in raw):
        return "printable text rather than random bytes"
    return None


def check_key_file(path: Path) -> None:
    """Refuse a key file that is missing or that anyone but its owner may read or write."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise ConfigurationError(f"key file {path} cannot be read: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(f"key file {path} is readable by others; chmod 600 it")
