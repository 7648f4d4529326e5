"""The HTTP face's settings: env names kept, the JWKS fetched only over https in production, and
development key files announced loudly and created private."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from api.auth import load_jwt_key
from api.settings import ApiSettings
from ledger.errors import ConfigurationError
from ledger.settings import Mode

REAL_KEY = "9f1c2e8a47d35b60c1e9a2f4b7d8036e5a4c19f2e7b30d86a1c5f94e2b7d6038"


def _settings(tmp_path: Path, mode: Mode, **changes: object) -> ApiSettings:
    return ApiSettings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'a.db'}", mode=mode,
                       master_key=SecretStr(REAL_KEY), jwt_issuer="https://idp.example",
                       **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("url", ["http://idp.example/jwks.json", "http://127.0.0.1:8080/jwks.json",
                                 "http://localhost/jwks.json", "ftp://idp.example/jwks.json", "file:///etc/jwks.json",
                                 "https:///jwks.json"])
def test_a_jwks_url_over_plain_http_is_refused_in_production(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigurationError, match="CASELEDGER_JWT_JWKS_URL must be an https:// URL"):
        _settings(tmp_path, Mode.PRODUCTION, jwt_jwks_url=url).check_production()


@pytest.mark.parametrize("url", ["http://idp.example/jwks.json", "http://10.0.0.8/jwks.json"])
def test_a_jwks_url_over_plain_http_to_another_host_is_refused_in_development(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigurationError, match="https://"):
        _settings(tmp_path, Mode.DEVELOPMENT, jwt_jwks_url=url).check_production()


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/jwks.json", "http://[::1]/jwks.json",
                                 "http://localhost/jwks.json"])
def test_loopback_http_is_allowed_in_development(tmp_path: Path, url: str) -> None:
    _settings(tmp_path, Mode.DEVELOPMENT, jwt_jwks_url=url).check_production()


def test_https_is_allowed_in_production(tmp_path: Path) -> None:
    _settings(tmp_path, Mode.PRODUCTION, jwt_jwks_url="https://idp.example/jwks.json").check_production()


def test_http_settings_keep_their_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASELEDGER_MAX_BODY_BYTES", "1234")
    monkeypatch.setenv("CASELEDGER_JWT_JWKS_URL", "https://idp.example/jwks.json")
    monkeypatch.setenv("CASELEDGER_MAX_PAGE", "7")
    settings = ApiSettings()
    assert (settings.max_body_bytes, settings.jwt_jwks_url, settings.max_page) == (
        1234, "https://idp.example/jwks.json", 7)


def test_a_token_ttl_beyond_the_maximum_lifetime_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="CASELEDGER_TOKEN_TTL"):
        _settings(tmp_path, Mode.DEVELOPMENT, token_ttl=10**7).check_production()


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_the_development_jwt_key_is_announced_and_private(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          umask: int) -> None:
    settings = _settings(tmp_path / "data", Mode.DEVELOPMENT)
    previous = os.umask(umask)
    try:
        assert load_jwt_key(settings, create=True) is not None
    finally:
        os.umask(previous)
    err = capsys.readouterr().err
    assert "WARNING" in err and "UNPROTECTED JWT signing key" in err and str(settings.jwt_key_path) in err
    assert stat.S_IMODE(settings.jwt_key_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(settings.jwt_key_path.parent.stat().st_mode) == 0o700
    load_jwt_key(settings, create=True)  # loading the existing key says nothing
    assert capsys.readouterr().err == ""


def test_production_never_creates_a_jwt_key(tmp_path: Path) -> None:
    settings = _settings(tmp_path, Mode.PRODUCTION)
    assert load_jwt_key(settings, create=True) is None
    assert not settings.jwt_key_path.exists()
