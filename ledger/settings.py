"""Settings from the environment (prefix ``CASELEDGER_``), failing closed outside development."""

from __future__ import annotations

import os
import stat
from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.errors import ConfigurationError

__all__ = ["Mode", "Settings"]

DEFAULT_MAX_CONTENT = 1024 * 1024


class Mode(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CASELEDGER_", extra="ignore")

    data_dir: Path = Path("./caseledger-data")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL; SQLite in data_dir if unset")
    instance: str = "caseledger.local"
    mode: Mode = Mode.DEVELOPMENT
    #: 32-byte master key, hex or base64; takes precedence over master_key_file
    master_key: SecretStr | None = None
    master_key_file: Path | None = None
    max_content_bytes: int = Field(default=DEFAULT_MAX_CONTENT, gt=0)
    batch_size: int = Field(default=1000, gt=0)

    # HTTP API
    max_body_bytes: int = Field(default=DEFAULT_MAX_CONTENT, gt=0)
    max_page: int = Field(default=1000, gt=0)
    #: built-in token issuer: audience and lifetime of the tokens `caseledger token` prints
    jwt_audience: str = "caseledger"
    token_ttl: int = Field(default=3600, gt=0)
    jwt_leeway: int = Field(default=30, ge=0, le=300)
    #: an external identity provider, trusted beside the built-in issuer
    jwt_issuer: str | None = None
    jwt_issuer_audience: str | None = None
    jwt_jwks_file: Path | None = None
    jwt_jwks_url: str | None = None
    jwt_tenant_claim: str = "tenant"
    jwt_role_claim: str = "role"

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'caseledger.db').resolve()}"

    @property
    def default_master_key_path(self) -> Path:
        return self.data_dir / "keys" / "master.key"

    @property
    def jwt_key_path(self) -> Path:
        return self.data_dir / "keys" / "jwt-ed25519.pem"

    @property
    def builtin_issuer(self) -> str:
        return f"caseledger:{self.instance}"

    def check_production(self) -> None:
        """Refuse unsafe production settings (STYLE §14)."""
        if self.mode is not Mode.PRODUCTION:
            return
        if self.master_key is None and self.master_key_file is None:
            raise ConfigurationError(
                "production mode needs CASELEDGER_MASTER_KEY or CASELEDGER_MASTER_KEY_FILE"
            )
        if self.master_key is not None and len(set(self.master_key.get_secret_value())) < 8:
            raise ConfigurationError("CASELEDGER_MASTER_KEY looks like a placeholder, not a key")
        if self.master_key is None and self.master_key_file is not None:
            check_key_file(self.master_key_file)
        if not self.database_url:
            raise ConfigurationError("production mode needs an explicit CASELEDGER_DATABASE_URL")
        if self.jwt_issuer and not (self.jwt_jwks_file or self.jwt_jwks_url):
            raise ConfigurationError("CASELEDGER_JWT_ISSUER needs CASELEDGER_JWT_JWKS_FILE or _URL")


def check_key_file(path: Path) -> None:
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise ConfigurationError(f"key file {path} cannot be read: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(f"key file {path} is readable by others; chmod 600 it")
