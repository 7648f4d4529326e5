"""Settings of the HTTP face (prefix ``CASELEDGER_``, the same variables as before): tokens and request limits.

`ApiSettings` is the engine's `Settings` plus what only the API and its CLI commands read, so one
object configures both and `Ledger.open` takes it as it is.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field

from ledger.errors import ConfigurationError
from ledger.settings import DEFAULT_MAX_CONTENT, Mode, Settings

__all__ = ["ApiSettings"]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ApiSettings(Settings):
    max_body_bytes: int = Field(default=DEFAULT_MAX_CONTENT, gt=0)
    #: seconds between the deployment's scheduled self-audits (verify-log and the anchor) and between
    #: its compliance runs (erasures and expiries that have become due); one process runs each
    audit_interval: float = Field(default=86400.0, ge=1.0)
    compliance_interval: float = Field(default=3600.0, ge=1.0)
    max_page: int = Field(default=1000, gt=0)
    #: built-in token issuer: audience and lifetime of the tokens `caseledger token` prints
    jwt_audience: str = "caseledger"
    token_ttl: int = Field(default=3600, gt=0)
    #: no token is accepted (or issued) whose exp lies further ahead than this, whoever signed it
    jwt_max_lifetime: int = Field(default=7 * 24 * 3600, gt=0)
    jwt_leeway: int = Field(default=30, ge=0, le=300)
    #: an external identity provider, trusted beside the built-in issuer
    jwt_issuer: str | None = None
    jwt_issuer_audience: str | None = None
    jwt_jwks_file: Path | None = None
    jwt_jwks_url: str | None = None
    jwt_tenant_claim: str = "tenant"
    jwt_role_claim: str = "role"

    @property
    def jwt_key_path(self) -> Path:
        return self.data_dir / "keys" / "jwt-ed25519.pem"

    @property
    def builtin_issuer(self) -> str:
        return f"caseledger:{self.instance}"

    def check_production(self) -> None:
        """Refuse unsafe settings: the engine's, then the JWKS source (https only outside development)."""
        if self.jwt_jwks_url:
            self._check_jwks_url(self.jwt_jwks_url)
        if self.token_ttl > self.jwt_max_lifetime:
            raise ConfigurationError("CASELEDGER_TOKEN_TTL exceeds CASELEDGER_JWT_MAX_LIFETIME")
        super().check_production()
        if self.mode is Mode.PRODUCTION and self.jwt_issuer and not (self.jwt_jwks_file or self.jwt_jwks_url):
            raise ConfigurationError("CASELEDGER_JWT_ISSUER needs CASELEDGER_JWT_JWKS_FILE or _URL")

    def _check_jwks_url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme == "https" and parts.hostname:
            return
        if parts.scheme == "http" and parts.hostname and self.mode is Mode.DEVELOPMENT \
                and _is_loopback(parts.hostname):
            return
        raise ConfigurationError(
            "CASELEDGER_JWT_JWKS_URL must be an https:// URL (plain http only to a loopback address in "
            "development mode): keys fetched over plain http can be replaced by anyone on the path"
        )

