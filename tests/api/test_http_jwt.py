"""Token attacks over HTTP: each one is the same bare 401, whatever was wrong.

Then the external identity provider: an ES256 JWKS from a file and from a URL, trusted beside the
built-in EdDSA issuer, each key with its own issuer, audience and single algorithm.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from api import auth
from api.auth import TokenVerifier, Unauthenticated, load_jwt_key
from api.settings import ApiSettings
from tests.api.apisettings import with_settings
from tests.api.conftest import Api, running

IDP = "https://idp.example"
IDP_AUDIENCE = "caseledger-api"
IDP_KID = "idp-1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json64(value: Any) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def _now() -> int:
    return int(time.time())


class Builtin:
    """Hand-made tokens around the built-in issuer's key and kid."""

    def __init__(self, api: Api) -> None:
        key = load_jwt_key(api.settings)
        assert key is not None
        self.key: Ed25519PrivateKey = key
        self.public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo)
        self.public_raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.kid = jwt.get_unverified_header(api.token("acme", "auditor", "audrey"))["kid"]
        settings = api.settings
        self.issuer, self.audience = settings.builtin_issuer, settings.jwt_audience

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = _now()
        claims = {"iss": self.issuer, "aud": self.audience, "sub": "audrey", "tenant": "acme", "role": "auditor",
                  "iat": now, "nbf": now, "exp": now + 600}
        for name, value in changes.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    def sign(self, claims: dict[str, Any] | None = None, key: Any = None, **headers: Any) -> str:
        """A real EdDSA signature (by `key`, default ours) over `claims` with extra header fields."""
        return jwt.encode(claims or self.claims(), key or self.key, algorithm="EdDSA",
                          headers={"kid": self.kid} | headers)

    def raw(self, header: dict[str, Any], claims: dict[str, Any],
            signer: Callable[[bytes], bytes] = lambda _: b"") -> str:
        """A token built by hand, for what pyjwt refuses to make."""
        signing_input = f"{_json64(header)}.{_json64(claims)}".encode()
        return f"{signing_input.decode()}.{_b64(signer(signing_input))}"


def _hs256(secret: bytes) -> Callable[[bytes], bytes]:
    return lambda data: hmac.new(secret, data, hashlib.sha256).digest()


def _edit_payload(token: str, **changes: Any) -> str:
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return ".".join([head, _json64(claims | changes), signature])


def _attacks(b: Builtin, api: Api) -> dict[str, str]:
    now = _now()
    leeway = api.settings.jwt_leeway
    good = b.sign()
    other_key = Ed25519PrivateKey.generate()
    other_jwk = json.loads(OKPAlgorithm.to_jwk(other_key.public_key()))
    return {
        "alg-none": b.raw({"alg": "none", "typ": "JWT", "kid": b.kid}, b.claims()),
        "alg-none-no-kid": b.raw({"alg": "none", "typ": "JWT"}, b.claims()),
        "hs256-public-pem": b.raw({"alg": "HS256", "typ": "JWT", "kid": b.kid}, b.claims(), _hs256(b.public_pem)),
        "hs256-public-raw": b.raw({"alg": "HS256", "typ": "JWT", "kid": b.kid}, b.claims(), _hs256(b.public_raw)),
        "expired": b.sign(b.claims(iat=now - 7200, nbf=now - 7200, exp=now - leeway - 60)),
        "nbf-in-future": b.sign(b.claims(nbf=now + leeway + 120)),
        "iat-in-future": b.sign(b.claims(iat=now + leeway + 120, nbf=None)),
        "wrong-iss": b.sign(b.claims(iss=IDP)),
        "wrong-aud": b.sign(b.claims(aud=IDP_AUDIENCE)),
        "edited-role": _edit_payload(good, role="supervisor"),
        "edited-tenant": _edit_payload(good, tenant="globex"),
        "edited-perms": _edit_payload(good, perms=["content"]),
        "unknown-kid": b.sign(kid="cl-0000000000000000"),
        "path-kid": b.sign(kid="../../keys/master"),
        "path-kid-absolute": b.sign(kid="/etc/passwd"),
        "kid-not-a-string": b.raw({"alg": "EdDSA", "typ": "JWT", "kid": 7}, b.claims(), b.key.sign),
        "kid-missing": jwt.encode(b.claims(), b.key, algorithm="EdDSA"),
        "crit-unknown": b.raw({"alg": "EdDSA", "typ": "JWT", "kid": b.kid, "crit": ["x-unknown"], "x-unknown": 1},
                              b.claims(), b.key.sign),
        "missing-exp": b.sign(b.claims(exp=None)),
        "missing-iat": b.sign(b.claims(iat=None)),
        "missing-sub": b.sign(b.claims(sub=None)),
        "missing-tenant": b.sign(b.claims(tenant=None)),
        "missing-role": b.sign(b.claims(role=None)),
        "missing-iss": b.sign(b.claims(iss=None)),
        "missing-aud": b.sign(b.claims(aud=None)),
        "unknown-role": b.sign(b.claims(role="root")),
        "empty-tenant": b.sign(b.claims(tenant="")),
        "bad-sub": b.sign(b.claims(sub="a b/c")),
        "perms-not-a-list": b.sign(b.claims(perms="content")),
        "other-key-same-kid": b.sign(key=other_key),
        "embedded-jwk": b.sign(key=other_key, jwk=other_jwk),
        "garbage": "not-a-token",
        "garbage-three-parts": "a.b.c",
        "truncated-signature": good[:-10],
        "too-long": b.sign(b.claims(pad="x" * 9000)),
    }


@pytest.fixture(scope="module")
def builtin(api: Api) -> Builtin:
    return Builtin(api)


def test_the_genuine_article_is_accepted(api: Api, builtin: Builtin) -> None:
    """The control: the hand-made good token passes, so each attack fails for its own flaw."""
    with api.client() as http:
        response = http.get("/v1/log", headers={"Authorization": f"Bearer {builtin.sign()}"})
        assert response.status_code == 200, response.text
        assert response.json()["origin"] == api.origin("acme")


def test_every_attack_is_the_same_bare_401(api: Api, builtin: Builtin) -> None:
    attacks = _attacks(builtin, api)
    answers: dict[bytes, list[str]] = {}
    with api.client() as http:
        for name, token in attacks.items():
            for path in ("/v1/log", "/v1/entries/0"):
                response = http.get(path, headers={"Authorization": f"Bearer {token}"})
                assert response.status_code == 401, (name, response.text)
                assert response.headers["www-authenticate"] == "Bearer", name
                assert response.headers["content-type"] == "application/problem+json", name
                assert "detail" not in response.json(), name
                answers.setdefault(response.content, []).append(name)
        for name, value in {"basic": "Basic YXVkcmV5OnNlY3JldA==", "token-scheme": f"Token {builtin.sign()}",
                            "no-scheme": builtin.sign(), "bearer-only": "Bearer"}.items():
            response = http.get("/v1/log", headers={"Authorization": value})
            assert response.status_code == 401, (name, response.text)
            answers.setdefault(response.content, []).append(name)
    assert len(answers) == 1, answers
    assert json.loads(next(iter(answers))) == {"type": "https://caseledger.dev/problems/unauthenticated",
                                               "title": "Unauthorized", "status": 401}


# --------------------------------------------------------------------------- external identity provider


class Idp:
    """An identity provider with one ES256 key, `idp-1`."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.jwk = json.loads(ECAlgorithm.to_jwk(self.key.public_key())) | {"kid": IDP_KID, "alg": "ES256",
                                                                              "use": "sig"}
        self.jwks = {"keys": [self.jwk]}

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = _now()
        return {"iss": IDP, "aud": IDP_AUDIENCE, "sub": "ivy@idp", "tenant": "acme", "role": "supervisor",
                "iat": now, "exp": now + 600} | changes

    def token(self, claims: dict[str, Any] | None = None, key: Any = None, alg: str = "ES256",
              kid: str = IDP_KID) -> str:
        return jwt.encode(claims or self.claims(), key or self.key, algorithm=alg, headers={"kid": kid})


@pytest.fixture(scope="module")
def idp() -> Idp:
    return Idp()


def _idp_settings(api: Api, **idp: Any) -> ApiSettings:
    return with_settings(api, jwt_issuer=IDP, jwt_issuer_audience=IDP_AUDIENCE, **idp)


@pytest.fixture(scope="module")
def jwks_file_api(api: Api, idp: Idp, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    path = tmp_path_factory.mktemp("idp") / "jwks.json"
    path.write_text(json.dumps(idp.jwks))
    with running(_idp_settings(api, jwt_jwks_file=path)) as made:
        yield made


class _JwksHandler(BaseHTTPRequestHandler):
    document = b""
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        if self.path != "/.well-known/jwks.json":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.document)))
        self.end_headers()
        self.wfile.write(self.document)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@pytest.fixture(scope="module")
def jwks_server(idp: Idp) -> Iterator[tuple[str, type[_JwksHandler]]]:
    handler = type("Handler", (_JwksHandler,), {"document": json.dumps(idp.jwks).encode(), "hits": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def jwks_url_api(api: Api, jwks_server: tuple[str, type[_JwksHandler]]) -> Iterator[Api]:
    with running(_idp_settings(api, jwt_jwks_url=jwks_server[0])) as made:
        yield made


def _status(api: Api, token: str, path: str = "/v1/log") -> int:
    with httpx.Client(base_url=api.url, timeout=30) as http:
        return http.get(path, headers={"Authorization": f"Bearer {token}"}).status_code


def _check_idp(api: Api, idp: Idp, builtin: Builtin) -> None:
    assert _status(api, idp.token()) == 200
    assert _status(api, idp.token(), "/v1/entries") == 200  # a supervisor of acme
    other = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = idp.key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    refused = {
        "wrong-aud": idp.token(idp.claims(aud="caseledger")),
        "wrong-iss": idp.token(idp.claims(iss=builtin.issuer)),
        "builtin-iss-and-aud": idp.token(idp.claims(iss=builtin.issuer, aud=builtin.audience)),
        "expired": idp.token(idp.claims(exp=_now() - 600)),
        "rs256-same-kid": idp.token(key=rsa_key, alg="RS256"),
        "hs256-same-kid-pem": builtin.raw({"alg": "HS256", "typ": "JWT", "kid": IDP_KID}, idp.claims(), _hs256(pem)),
        "hs256-same-kid-jwk": builtin.raw({"alg": "HS256", "typ": "JWT", "kid": IDP_KID}, idp.claims(),
                                          _hs256(json.dumps(idp.jwk).encode())),
        "es384-same-kid": idp.token(key=ec.generate_private_key(ec.SECP384R1()), alg="ES384"),
        "other-ec-key-same-kid": idp.token(key=other),
        "unknown-kid": idp.token(kid="idp-2"),
        "builtin-kid": idp.token(kid=builtin.kid),
    }
    for name, token in refused.items():
        assert _status(api, token) == 401, name
    # the built-in issuer is still trusted beside the IdP, with its own issuer and audience only
    assert _status(api, builtin.sign()) == 200
    assert _status(api, builtin.sign(builtin.claims(iss=IDP, aud=IDP_AUDIENCE))) == 401


def test_idp_from_a_jwks_file(jwks_file_api: Api, idp: Idp, builtin: Builtin) -> None:
    _check_idp(jwks_file_api, idp, builtin)


def test_idp_from_a_jwks_url(jwks_url_api: Api, idp: Idp, builtin: Builtin,
                             jwks_server: tuple[str, type[_JwksHandler]]) -> None:
    _check_idp(jwks_url_api, idp, builtin)
    assert jwks_server[1].hits >= 1
    with httpx.Client(base_url=jwks_url_api.url) as http:
        assert http.get("/readyz").status_code == 200


def test_unknown_kids_do_not_hammer_the_jwks_url(jwks_url_api: Api, idp: Idp,
                                                 jwks_server: tuple[str, type[_JwksHandler]]) -> None:
    before = jwks_server[1].hits
    for n in range(20):
        assert _status(jwks_url_api, idp.token(kid=f"idp-x{n}")) == 401
    assert jwks_server[1].hits - before <= 1


def test_the_jwks_is_fetched_at_start_even_just_after_boot(monkeypatch: pytest.MonkeyPatch, api: Api, idp: Idp,
                                                           jwks_server: tuple[str, type[_JwksHandler]]) -> None:
    """time.monotonic() counts from boot on Linux; under a minute after boot the first fetch must still happen."""

    class JustBooted:
        @staticmethod
        def monotonic() -> float:
            return 5.0

        @staticmethod
        def time() -> float:
            return time.time()

    monkeypatch.setattr(auth, "time", JustBooted)
    verifier = TokenVerifier(_idp_settings(api, jwt_jwks_url=jwks_server[0]), None)
    assert verifier.verify(idp.token()).sub == "ivy@idp"
    with pytest.raises(Unauthenticated):
        verifier.verify(idp.token(idp.claims(aud="caseledger")))
