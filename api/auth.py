"""Bearer-token authentication (pyjwt): the built-in EdDSA issuer and an external identity provider.

Verification is strict and explicit: the key is chosen only among configured keys by a well-formed
``kid``; each key has exactly one allowed algorithm, and the token's ``alg`` must equal it (so
``none`` and HS256-with-a-public-key never verify); ``exp``, ``iat``, ``iss``, ``aud``, ``sub`` and
the tenant and role claims are required; the time claims must be JSON numbers, and ``exp`` no
further ahead than the configured maximum lifetime; ``crit`` extensions are refused since we
implement none. Every failure is the same `Unauthenticated`, so a client learns nothing about why.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from api.settings import ApiSettings
from ledger.errors import ConfigurationError, LedgerError
from ledger.keys import create_development_key_file
from ledger.settings import Mode, check_key_file

__all__ = ["ROLES", "Principal", "TokenIssuer", "TokenVerifier", "Unauthenticated", "load_jwt_key"]

ROLES = ("agent", "supervisor", "auditor", "admin", "client")
_ALLOWED_ALGS = frozenset({"EdDSA", "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384",
                           "PS512"})
_KID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}\Z")
_SUB = re.compile(r"[A-Za-z0-9._@:-]{1,120}\Z")
_MAX_TOKEN = 8192
_JWKS_REFRESH_SECONDS = 60.0
#: verified tokens remembered (until each one's exp): an EdDSA check costs ~1 ms on these machines
_VERIFIED_CACHE = 10_000
#: the largest NumericDate we accept, 9999-12-31T23:59:59Z (RFC 7519 §2 allows any JSON number)
_MAX_NUMERIC_DATE = 253_402_300_799


class Unauthenticated(LedgerError):
    code = "unauthenticated"

    def __init__(self) -> None:
        super().__init__("authentication required")


@dataclass(frozen=True)
class Principal:
    sub: str
    tenant: str
    role: str
    perms: frozenset[str]
    #: the cases an agent is assigned to (the optional ``cases`` claim); None: no assignment list
    cases: frozenset[str] | None = None

    @property
    def actor(self) -> str:
        return f"user:{self.sub}"


@dataclass(frozen=True)
class _Key:
    kid: str
    alg: str
    key: Any
    issuer: str
    audience: str


def _kid_for(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "cl-" + hashlib.sha256(raw).hexdigest()[:16]


def load_jwt_key(settings: ApiSettings, *, create: bool = False) -> Ed25519PrivateKey | None:
    """The built-in issuer's key; development mode creates it (0600, announced on stderr) when asked to."""
    path = settings.jwt_key_path
    if not path.exists():
        if not create or settings.mode is Mode.PRODUCTION:
            return None
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        create_development_key_file(path, pem, "JWT signing key")
        return key
    if settings.mode is Mode.PRODUCTION:
        check_key_file(path)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ConfigurationError(f"{path} is not an Ed25519 private key")
    return loaded


def _numeric_date(value: Any) -> float | None:
    """A JSON number of seconds since the epoch up to year 9999; None for strings, booleans, NaN, infinities."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not 0 <= value <= _MAX_NUMERIC_DATE:  # false for NaN too; never converts a huge int to float
        return None
    return float(value)


def _check_times(claims: dict[str, Any], now: float, leeway: int, max_lifetime: int) -> float:
    """Check exp, iat and (if present) nbf strictly (RFC 7519 §4.1.4-6); returns exp.

    pyjwt accepts numeric strings ("9999999999") and any magnitude; here a time claim must be a
    JSON number, and no token may live longer than `max_lifetime` from now, whoever signed it.
    """
    exp, iat = _numeric_date(claims.get("exp")), _numeric_date(claims.get("iat"))
    nbf = _numeric_date(claims["nbf"]) if "nbf" in claims else None
    if exp is None or iat is None or ("nbf" in claims and nbf is None):
        raise Unauthenticated()
    if exp <= now - leeway or exp > now + max_lifetime + leeway:
        raise Unauthenticated()
    if iat > now + leeway or (nbf is not None and nbf > now + leeway):
        raise Unauthenticated()
    return exp


class TokenIssuer:
    """The built-in issuer: EdDSA tokens for development, tests and service accounts."""

    def __init__(self, key: Ed25519PrivateKey, settings: ApiSettings) -> None:
        self._key = key
        self._kid = _kid_for(key.public_key())
        self._issuer = settings.builtin_issuer
        self._audience = settings.jwt_audience
        self._ttl = settings.token_ttl
        self._max_lifetime = settings.jwt_max_lifetime

    def issue(self, tenant: str, role: str, sub: str, ttl: int | None = None,
              perms: Iterable[str] = (), cases: Iterable[str] | None = None) -> str:
        if role not in ROLES:
            raise LedgerError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
        if not _SUB.match(sub):
            raise LedgerError("sub must be 1-120 of letters, digits and . _ @ : -")
        if (ttl or self._ttl) > self._max_lifetime:
            raise LedgerError(f"ttl may be at most {self._max_lifetime} seconds (CASELEDGER_JWT_MAX_LIFETIME)")
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self._issuer, "aud": self._audience, "sub": sub, "tenant": tenant, "role": role,
            "iat": now, "nbf": now, "exp": now + (ttl or self._ttl), "jti": str(uuid.uuid4()),
        }
        if perms:
            claims["perms"] = sorted(set(perms))
        if cases is not None:
            claims["cases"] = sorted(set(cases))
        return jwt.encode(claims, self._key, algorithm="EdDSA", headers={"kid": self._kid})


def _jwk_algorithm(jwk: dict[str, Any]) -> str:
    alg = jwk.get("alg")
    if alg is None:
        kty, crv = jwk.get("kty"), jwk.get("crv")
        alg = {"OKP": "EdDSA", "RSA": "RS256"}.get(str(kty)) or {
            "P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}.get(str(crv))
    if alg not in _ALLOWED_ALGS:
        raise ConfigurationError(f"JWKS key {jwk.get('kid')!r}: algorithm {alg!r} is not allowed")
    return str(alg)


def _keys_from_jwks(document: Any, issuer: str, audience: str) -> dict[str, _Key]:
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ConfigurationError("a JWKS document must be an object with a 'keys' list")
    keys: dict[str, _Key] = {}
    for jwk in document["keys"]:
        if not isinstance(jwk, dict) or jwk.get("kty") == "oct":
            raise ConfigurationError("JWKS keys must be asymmetric public keys")
        if jwk.get("use", "sig") != "sig":
            continue
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not _KID.match(kid):
            raise ConfigurationError(f"JWKS key id {kid!r} is missing or malformed")
        alg = _jwk_algorithm(jwk)
        try:
            key = jwt.PyJWK(jwk, algorithm=alg).key
        except jwt.PyJWTError as exc:
            raise ConfigurationError(f"JWKS key {kid!r} cannot be used: {exc}") from None
        keys[kid] = _Key(kid, alg, key, issuer, audience)
    return keys


class TokenVerifier:
    def __init__(self, settings: ApiSettings, builtin: Ed25519PublicKey | None) -> None:
        self._settings = settings
        self._keys: dict[str, _Key] = {}
        self._lock = threading.Lock()
        self._verified: dict[str, tuple[float, Principal]] = {}
        self._fetched_at = -math.inf  # not 0.0: monotonic() may be under a minute after boot
        if builtin is not None:
            kid = _kid_for(builtin)
            self._keys[kid] = _Key(kid, "EdDSA", builtin, settings.builtin_issuer, settings.jwt_audience)
        if settings.jwt_issuer:
            if settings.jwt_jwks_file:
                try:
                    document = json.loads(Path(settings.jwt_jwks_file).read_text())
                except (OSError, ValueError) as exc:
                    raise ConfigurationError(f"cannot read JWKS file {settings.jwt_jwks_file}: {exc}") from None
                self._keys.update(_keys_from_jwks(document, settings.jwt_issuer, self._external_audience))
            elif settings.jwt_jwks_url:
                self._refresh()
        if not self._keys and not settings.jwt_jwks_url:
            raise ConfigurationError("no token keys: run `caseledger init` or configure CASELEDGER_JWT_ISSUER")

    @property
    def _external_audience(self) -> str:
        return self._settings.jwt_issuer_audience or self._settings.jwt_audience

    def _refresh(self) -> None:
        """Fetch the identity provider's JWKS, at most once a minute (unknown kids trigger it)."""
        url, issuer = self._settings.jwt_jwks_url, self._settings.jwt_issuer
        if not url or not issuer or time.monotonic() - self._fetched_at < _JWKS_REFRESH_SECONDS:
            return
        with self._lock:
            self._fetched_at = time.monotonic()
            try:
                response = httpx.get(url, timeout=5.0, follow_redirects=False)
                response.raise_for_status()
                fresh = _keys_from_jwks(response.json(), issuer, self._external_audience)
            except (httpx.HTTPError, ValueError, ConfigurationError):
                return  # keep the keys we have; an unknown kid stays unknown
            self._keys = {k: v for k, v in self._keys.items() if v.issuer != issuer} | fresh

    @property
    def ready(self) -> bool:
        return bool(self._keys)

    def cached(self, token: str) -> Principal | None:
        """The principal of a token verified before and not yet expired; None otherwise."""
        cached = self._verified.get(token)
        if cached is not None and time.time() < cached[0]:
            return cached[1]
        return None

    def verify(self, token: str) -> Principal:
        """Verify a token; a token verified before is answered from a cache until it expires."""
        cached = self.cached(token)
        if cached is not None:
            return cached
        principal, expires = self._verify(token)
        if len(self._verified) >= _VERIFIED_CACHE:
            self._verified.clear()
        self._verified[token] = (expires, principal)
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        if len(token) > _MAX_TOKEN:
            raise Unauthenticated()
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError, TypeError):
            raise Unauthenticated() from None
        kid = header.get("kid")
        if "crit" in header or not isinstance(kid, str) or not _KID.match(kid):
            raise Unauthenticated()
        key = self._keys.get(kid)
        if key is None:
            self._refresh()
            key = self._keys.get(kid)
        if key is None or header.get("alg") != key.alg:
            raise Unauthenticated()
        settings = self._settings
        try:
            claims = jwt.decode(
                token, key.key, algorithms=[key.alg], audience=key.audience, issuer=key.issuer,
                options={"require": ["exp", "iat", "iss", "aud", "sub"], "verify_signature": True,
                         # the time claims are checked strictly below, not with pyjwt's int() coercion
                         "verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except (jwt.PyJWTError, ValueError, TypeError, OverflowError):
            raise Unauthenticated() from None
        if not isinstance(claims, dict):
            raise Unauthenticated()
        expires = _check_times(claims, time.time(), settings.jwt_leeway, settings.jwt_max_lifetime)
        sub, tenant = claims.get("sub"), claims.get(settings.jwt_tenant_claim)
        role, perms, cases = claims.get(settings.jwt_role_claim), claims.get("perms", []), claims.get("cases")
        if not (isinstance(sub, str) and _SUB.match(sub) and isinstance(tenant, str) and tenant
                and role in ROLES and isinstance(perms, list) and all(isinstance(p, str) for p in perms)
                and (cases is None or (isinstance(cases, list) and all(isinstance(c, str) for c in cases)))):
            raise Unauthenticated()
        principal = Principal(sub=sub, tenant=tenant, role=str(role), perms=frozenset(perms),
                              cases=None if cases is None else frozenset(cases))
        return principal, expires
