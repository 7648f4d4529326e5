"""Share links over real HTTP on SQLite and PostgreSQL (DESIGN §8, STYLE §18): who may share, list and
revoke; the recipient's download with no account; and each attack on the link — guessing, replay,
the race for the last download, hostile file names, a damaged stored file, other tenants and cases.

Documents are uploaded through the engine (`ledger.documents.upload`) into the server's database.
The running server's clock cannot be moved, so an expired share is made by moving its `expires_at`
into the past in the database. Tests that send bad tokens come from addresses of their own (the
server trusts X-Forwarded-For from 127.0.0.1, as uvicorn does by default), so the bad-token limiter
of one test never refuses another's requests.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import httpx
import pytest
from sqlalchemy import update

from api.routers.shares import content_disposition
from compliance.shares import BadTokenLimiter
from ledger.connections import writing
from ledger.documents import NewDocument
from ledger.envelope import SEGMENT_SIZE, SEGMENTED_HEADER_SIZE
from ledger.repository.base import tables
from ledger.service import Ledger
from ledger.shares import SHARE_ACTOR
from tests.api.conftest import Api
from verification.document_receipt import verify_file
from verification.trust import Trust

ACME, GLOBEX = "acme", "globex"
CASE, OTHER_CASE, GLOBEX_CASE = "S-1", "S-2", "G-1"
#: a stored segment: the plaintext segment and its 16-byte tag
STORED_SEGMENT = SEGMENT_SIZE + 16
#: five segments, the last one short
FILE = b"%PDF-1.7\n" + os.urandom(4 * SEGMENT_SIZE + 1000)
_addresses = itertools.count(1)


def _address() -> str:
    """A client address no other test uses (RFC 5737 documentation ranges)."""
    number = next(_addresses)
    return f"198.51.{number // 250}.{number % 250 + 1}"


@dataclass
class World:
    api: Api
    ledger: Ledger
    #: acme's document in CASE (opened by the agent alice), in OTHER_CASE (bob's), globex's document
    document: str
    other_case_document: str
    globex_document: str

    def upload(self, data: bytes = FILE, *, tenant: str = ACME, case: str = CASE, name: str = "statement Q3.pdf",
               declared: str | None = "application/pdf", actor: str = "user:alice") -> str:
        chunks = [data[i:i + 50_000] for i in range(0, len(data), 50_000)]
        receipt = self.ledger.documents.upload(tenant, NewDocument(
            case=case, title="Statement", name=name, declared_type=declared, subject_ref="CRM-77812", actor=actor),
            chunks)
        return receipt.document_id

    def headers(self, tenant: str = ACME) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while page := self.ledger.reads.headers(tenant, found[-1]["seq"] if found else -1, 1000):
            found += [entry.header | {"seq": entry.seq} for entry in page]
        return found

    def entries_of(self, share_id: str, tenant: str = ACME) -> list[dict[str, Any]]:
        return [h for h in self.headers(tenant) if (h.get("meta") or {}).get("share") == share_id]

    def client(self, who: str) -> httpx.Client:
        tenant, role, sub = WHO[who]
        return self.api.client(tenant, role, sub) if tenant is not None else self.api.client()

    def share(self, document: str | None = None, who: str = "supervisor", **body: Any) -> dict[str, Any]:
        given = {"recipient": "cust:4711", "expires_in": 3600, "max_downloads": 3, "purpose": "statement Q3"} | body
        response = self.client(who).post(f"/v1/documents/{document or self.document}/shares", json=given)
        assert response.status_code == 201, response.text
        made: dict[str, Any] = response.json()
        return made

    def anonymous(self, address: str | None = None) -> httpx.Client:
        return self.api.client(headers={"X-Forwarded-For": address} if address else None)


#: who -> (tenant, role, sub); tenant None: no token at all
WHO: dict[str, tuple[str | None, str, str]] = {
    "supervisor": (ACME, "supervisor", "sam"),
    "agent": (ACME, "agent", "alice"),
    "agent-off-case": (ACME, "agent", "bob"),
    "auditor": (ACME, "auditor", "audrey"),
    "admin": (ACME, "admin", "adam"),
    "client": (ACME, "client", "carl"),
    "globex-supervisor": (GLOBEX, "supervisor", "gina"),
    "globex-agent": (GLOBEX, "agent", "alice"),
    "anonymous": (None, "", ""),
}


@pytest.fixture(scope="module")
def world(api: Api) -> Iterator[World]:
    ledger = Ledger.open(api.settings)
    try:
        made = World(api, ledger, "", "", "")
        made.document = made.upload()
        made.other_case_document = made.upload(case=OTHER_CASE, actor="user:bob")
        made.globex_document = made.upload(tenant=GLOBEX, case=GLOBEX_CASE, actor="user:gus")
        yield made
    finally:
        ledger.close()


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "Traceback" not in response.text and 'File "' not in response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


def _token(url: str) -> str:
    return url.rsplit("/", 1)[1]


# ---------------------------------------------------------------------------- create, list, revoke


def test_create_list_and_revoke_each_leave_their_share_entry(world: World) -> None:
    made = world.share(max_downloads=2)
    assert set(made) == {"share_id", "url", "expires_at", "max_downloads"}
    assert made["url"].startswith(f"{world.api.url}/v1/shared/")
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", _token(made["url"]))
    assert made["max_downloads"] == 2
    [created] = world.entries_of(made["share_id"])
    assert (created["kind"], created["actor"], created["case"]) == ("share", "user:sam", CASE)
    assert created["meta"] == {"action": "create", "share": made["share_id"], "document": world.document,
                               "expires_at": made["expires_at"], "max_downloads": 2, "recipient": "cust:4711",
                               "purpose": "statement Q3"}

    sup = world.client("supervisor")
    listed = sup.get(f"/v1/documents/{world.document}/shares")
    assert listed.status_code == 200, listed.text
    assert _token(made["url"]) not in listed.text and "token" not in listed.text
    [mine] = [s for s in listed.json()["shares"] if s["share_id"] == made["share_id"]]
    assert (mine["state"], mine["downloads"], mine["downloads_left"]) == ("active", 0, 2)
    assert mine["created_by"] == "user:sam"

    revoked = sup.delete(f"/v1/shares/{made['share_id']}")
    assert revoked.status_code == 200, revoked.text
    assert (revoked.json()["state"], revoked.json()["revoked_by"]) == ("revoked", "user:sam")
    assert world.entries_of(made["share_id"])[-1]["meta"] == {
        "action": "revoke", "share": made["share_id"], "document": world.document}
    size = len(world.headers())
    _problem(sup.delete(f"/v1/shares/{made['share_id']}"), 409)
    assert len(world.headers()) == size, "a refused revocation must not be logged"
    [again] = [s for s in sup.get(f"/v1/documents/{world.document}/shares").json()["shares"]
               if s["share_id"] == made["share_id"]]
    assert again["state"] == "revoked"


#: who -> status of (create, list, revoke) on acme's document in CASE, which alice opened
STAFF_EXPECTED: dict[str, tuple[int, int, int]] = {
    "supervisor": (201, 200, 200),
    "agent": (201, 200, 200),
    "agent-off-case": (404, 404, 404),
    "auditor": (403, 200, 403),
    "admin": (403, 403, 403),
    "client": (403, 403, 403),
    "globex-supervisor": (404, 404, 404),
    "globex-agent": (404, 404, 404),
    "anonymous": (401, 401, 401),
}


@pytest.mark.parametrize("who", sorted(STAFF_EXPECTED))
def test_who_may_share_list_and_revoke(world: World, who: str) -> None:
    """BOLA: another tenant and an agent outside the case see nothing (404, as for no document at
    all); the role table refuses the rest (403); no token, 401. A refusal writes nothing."""
    create, listing, revoke = STAFF_EXPECTED[who]
    target = world.share()["share_id"]
    client = world.client(who)
    size = len(world.headers())
    body = {"recipient": "cust:1", "expires_in": 600}
    response = client.post(f"/v1/documents/{world.document}/shares", json=body)
    assert response.status_code == create, response.text
    if create == 201:
        assert world.entries_of(response.json()["share_id"])[0]["actor"] == f"user:{WHO[who][2]}"
    else:
        _problem(response, create)
    response = client.get(f"/v1/documents/{world.document}/shares")
    assert response.status_code == listing, response.text
    if listing == 200:
        assert target in response.text and "url" not in response.json()["shares"][0]
    response = client.delete(f"/v1/shares/{target}")
    assert response.status_code == revoke, response.text
    assert len(world.headers()) == size + (create == 201) + (revoke == 200)
    if revoke != 200:  # the refused revocation left the link working
        assert world.ledger.shares.get(ACME, target).state == "active"


def test_an_agent_works_only_on_its_own_cases_documents(world: World) -> None:
    """bob opened OTHER_CASE: he shares its document, alice (off that case) cannot see or revoke it."""
    made = world.share(world.other_case_document, who="agent-off-case")
    alice = world.client("agent")
    _problem(alice.get(f"/v1/documents/{world.other_case_document}/shares"), 404)
    _problem(alice.post(f"/v1/documents/{world.other_case_document}/shares",
                        json={"recipient": "cust:1", "expires_in": 600}), 404)
    _problem(alice.delete(f"/v1/shares/{made['share_id']}"), 404)
    assert world.client("agent-off-case").delete(f"/v1/shares/{made['share_id']}").status_code == 200


def test_another_tenants_documents_and_shares_are_not_found(world: World) -> None:
    globex_share = world.share(world.globex_document, who="globex-supervisor")
    sup = world.client("supervisor")
    for response in (sup.get(f"/v1/documents/{world.globex_document}/shares"),
                     sup.post(f"/v1/documents/{world.globex_document}/shares",
                              json={"recipient": "cust:1", "expires_in": 600}),
                     sup.delete(f"/v1/shares/{globex_share['share_id']}"),
                     sup.get("/v1/documents/00000000-0000-4000-8000-000000000000/shares"),
                     sup.delete("/v1/shares/00000000-0000-4000-8000-000000000000")):
        _problem(response, 404)
    # the link still opens globex's document, and its download is globex's entry, not acme's
    downloaded = world.anonymous().get(globex_share["url"])
    assert downloaded.status_code == 200 and downloaded.content == FILE
    assert [h["kind"] for h in world.entries_of(globex_share["share_id"], GLOBEX)] == ["share", "access"]
    assert world.entries_of(globex_share["share_id"], ACME) == []


@pytest.mark.parametrize(("body", "status"), [
    ({"recipient": "cust:1", "expires_in": 600, "extra": 1}, 422),
    ({"recipient": "alice@example.com", "expires_in": 600}, 400),
    ({"recipient": "", "expires_in": 600}, 422),
    ({"recipient": "a b", "expires_in": 600}, 422),
    ({"recipient": "x" * 129, "expires_in": 600}, 422),
    ({"recipient": "cust:1", "expires_in": 59}, 422),
    ({"recipient": "cust:1", "expires_in": 90 * 24 * 3600 + 1}, 422),
    ({"recipient": "cust:1", "expires_in": True}, 422),
    ({"recipient": "cust:1", "expires_in": "600"}, 422),
    ({"recipient": "cust:1", "expires_in": 600, "max_downloads": 0}, 422),
    ({"recipient": "cust:1", "expires_in": 600, "max_downloads": 1001}, 422),
    ({"recipient": "cust:1", "expires_in": 600, "purpose": "x\ny"}, 422),
    ({"recipient": "cust:1"}, 422),
    ([], 422),
], ids=["unknown-field", "e-mail-recipient", "empty-recipient", "space-in-recipient", "long-recipient",
        "expiry-too-short", "expiry-too-long", "bool-expiry", "string-expiry", "no-downloads", "too-many-downloads",
        "newline-in-purpose", "no-expiry", "not-an-object"])
def test_a_bad_share_request_is_refused_and_writes_nothing(world: World, body: Any, status: int) -> None:
    size = len(world.headers())
    _problem(world.client("supervisor").post(f"/v1/documents/{world.document}/shares", json=body), status)
    assert len(world.headers()) == size


def test_malformed_ids_are_refused(world: World) -> None:
    sup = world.client("supervisor")
    for path in ("/v1/documents/../shares", "/v1/documents/ABC/shares", f"/v1/documents/{'a' * 5000}/shares",
                 f"/v1/documents/{world.document.upper()}/shares"):
        assert sup.get(path).status_code in (404, 422), path
    _problem(sup.delete("/v1/shares/not-a-share"), 422)


# ---------------------------------------------------------------------------- the recipient's download


def test_the_recipient_downloads_the_exact_bytes_and_each_download_is_logged_first(world: World) -> None:
    made = world.share(max_downloads=2)
    # no token needed, and a junk one is not even looked at: the link is the capability
    recipient = world.api.client(headers={"Authorization": "Bearer junk"})
    with recipient.stream("GET", made["url"]) as response:
        assert response.status_code == 200
        # the access entry is committed before the first byte of the body
        [_, access] = world.entries_of(made["share_id"])
        body = response.read()
    assert body == FILE
    headers = response.headers
    assert headers["content-type"] == "application/pdf"
    assert headers["content-length"] == str(len(FILE))
    assert headers["content-disposition"] == (
        "attachment; filename=\"statement Q3.pdf\"; filename*=UTF-8''statement%20Q3.pdf")
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    assert headers["referrer-policy"] == "no-referrer"
    assert "transfer-encoding" not in headers
    assert (access["kind"], access["actor"], access["case"], access["channel"]) == ("access", SHARE_ACTOR, CASE, "api")
    assert access["meta"] == {"action": "download", "share": made["share_id"], "document": world.document,
                              "recipient": "cust:4711", "download": 1}

    assert world.anonymous().get(made["url"]).content == FILE
    accesses = [h for h in world.entries_of(made["share_id"]) if h["kind"] == "access"]
    assert [h["meta"]["download"] for h in accesses] == [1, 2]
    # replayed once more: used up
    gone = _problem(world.anonymous().get(made["url"]), 410)
    assert "used up" in gone["detail"]
    assert len(world.entries_of(made["share_id"])) == 3, "a refused download is not an access"


def test_an_empty_document_downloads_as_an_empty_body(world: World) -> None:
    made = world.share(world.upload(b"", name="empty.txt", declared="text/plain"))
    response = world.anonymous().get(made["url"])
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-length"] == "0"
    assert response.headers["content-type"] == "text/plain"


@pytest.mark.parametrize("round_", range(3))
def test_two_concurrent_downloads_of_the_last_download_let_exactly_one_through(world: World, round_: int) -> None:
    made = world.share(max_downloads=1)
    barrier = threading.Barrier(2)
    results: list[tuple[int, bytes]] = []
    lock = threading.Lock()

    def download() -> None:
        client = world.anonymous()
        barrier.wait()
        response = client.get(made["url"])
        with lock:
            results.append((response.status_code, response.content))

    threads = [threading.Thread(target=download) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(status for status, _ in results) == [200, 410], results
    assert [content for status, content in results if status == 200] == [FILE]
    assert [h["kind"] for h in world.entries_of(made["share_id"])] == ["share", "access"]


def test_an_expired_share_answers_410(world: World) -> None:
    made = world.share()
    with writing(world.ledger.engine) as conn, conn.begin():
        conn.execute(update(tables.SH).where(tables.SH.c.share_id == made["share_id"])
                     .values(expires_at=time.time() - 1))
    assert "expired" in _problem(world.anonymous().get(made["url"]), 410)["detail"]
    _problem(world.anonymous().get(made["url"] + "/receipt"), 410)
    [listed] = [s for s in world.client("supervisor").get(f"/v1/documents/{world.document}/shares").json()["shares"]
                if s["share_id"] == made["share_id"]]
    assert listed["state"] == "expired"
    assert [h["kind"] for h in world.entries_of(made["share_id"])] == ["share"]


def test_a_revoked_share_answers_410(world: World) -> None:
    made = world.share()
    assert world.client("agent").delete(f"/v1/shares/{made['share_id']}").status_code == 200
    assert "revoked" in _problem(world.anonymous().get(made["url"]), 410)["detail"]
    _problem(world.anonymous().get(made["url"] + "/receipt"), 410)
    assert [h["meta"]["action"] for h in world.entries_of(made["share_id"])] == ["create", "revoke"]


def _forged_tokens(good: str) -> dict[str, str]:
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # the last character carries 2 unused bits: any other spelling of the same bytes is refused
    twin = good[:-1] + last[last.index(good[-1]) ^ 1]
    return {
        "unknown": "A" * 43,
        "one-character-changed": good[:10] + ("B" if good[10] != "B" else "C") + good[11:],
        "non-canonical-twin": twin,
        "short": good[:-1],
        "long": good + "A",
        "padded": good + "=",
        "standard-base64": good.replace("-", "+").replace("_", "/") if ("-" in good or "_" in good) else "+" + good[1:],
        "upper-cased": good.upper() if good.upper() != good else good.lower(),
        "huge": "A" * 8000,
        "percent-encoded-nul": "%00" + good[3:],
        "non-ascii": "é" * 43,
        "dot-dot": "..",
        "sql": "'%20OR%201=1--",
    }


def test_unknown_and_malformed_tokens_answer_404_without_a_trace(world: World) -> None:
    made = world.share()
    good = _token(made["url"])
    for name, forged in _forged_tokens(good).items():
        for suffix in ("", "/receipt"):
            response = world.anonymous(_address()).get(f"/v1/shared/{forged}{suffix}")
            if forged == "..":  # the path is normalised away by the client: no such route
                assert response.status_code == 404, name
                continue
            _problem(response, 404)
    assert [h["kind"] for h in world.entries_of(made["share_id"])] == ["share"]
    assert world.anonymous().get(made["url"]).content == FILE


def test_repeated_bad_tokens_from_one_address_are_refused_with_429_good_ones_too(world: World) -> None:
    made = world.share()
    guesser = world.anonymous(_address())
    for attempt in range(20):
        forged = f"{attempt:02d}" + "A" * 41
        _problem(guesser.get(f"/v1/shared/{forged}" + ("/receipt" if attempt % 2 else "")), 404)
    limited = _problem(guesser.get(f"/v1/shared/{'B' * 43}"), 429)
    assert limited["title"] == "Too Many Requests"
    assert 1 <= int(guesser.get(f"/v1/shared/{'C' * 43}").headers["retry-after"]) <= 60
    # the limited address cannot use a good link either, and that attempt consumes nothing
    _problem(guesser.get(made["url"]), 429)
    _problem(guesser.get(made["url"] + "/receipt"), 429)
    assert world.ledger.shares.get(ACME, made["share_id"]).downloads == 0
    # ...while another address can
    assert world.anonymous(_address()).get(made["url"]).content == FILE


def test_gone_shares_do_not_count_as_bad_tokens(world: World) -> None:
    made = world.share(max_downloads=1)
    client = world.anonymous(_address())
    assert client.get(made["url"]).status_code == 200
    for _ in range(25):
        _problem(client.get(made["url"]), 410)
    assert client.get(made["url"] + "/receipt").status_code == 200


# ---------------------------------------------------------------------------- hostile file names


@pytest.mark.parametrize("name", [
    'say "hi" \\ back.txt', "Zoë Œuvre – résumé.pdf", "履歴書.pdf", "x\r\nSet-Cookie: a=b.txt",
    "semi;colon=1,comma.txt", "%41%42 100%.txt", "'; rm -rf ~.txt", "\u202etxt.exe", "😀.txt", "tab\there.txt",
], ids=["quotes-backslash", "latin", "cjk", "crlf-injection", "separators", "percent", "shell", "rtl-override",
        "emoji", "tab"])
def test_content_disposition_of_a_hostile_name_is_safe(world: World, name: str) -> None:
    document = world.upload(b"hello\n", name=name, declared="text/plain")
    made = world.share(document)
    response = world.anonymous().get(made["url"])
    assert response.status_code == 200 and response.content == b"hello\n"
    stored = world.ledger.documents.info(ACME, document).name
    _check_disposition(response.headers["content-disposition"], stored)
    assert "set-cookie" not in response.headers


@pytest.mark.parametrize("name", ['a"b', "a\\b", "a\r\nb", "a\x00b", "\x7f", "é", "", "..", "%", " lead", "a;b=c"])
def test_content_disposition_escapes_anything(name: str) -> None:
    """The header function alone, with names the upload would never store (control characters)."""
    _check_disposition(content_disposition(name), name)


def _check_disposition(header: str, name: str) -> None:
    match = re.fullmatch(r"attachment; filename=\"([^\"\\\x00-\x1f\x7f]*)\"; "
                         r"filename\*=UTF-8''([A-Za-z0-9%!#$&+.^_`|~-]*)", header)
    assert match, header
    fallback, encoded = match.groups()
    assert fallback and fallback.isascii() and "%" not in fallback
    assert unquote(encoded, errors="strict") == name


# ---------------------------------------------------------------------------- a damaged stored file


def _damage(world: World, document: str, how: str) -> None:
    path = world.ledger.documents.blobs.path(document)
    data = bytearray(path.read_bytes())
    if how == "flip-in-segment-3":
        data[SEGMENTED_HEADER_SIZE + 3 * STORED_SEGMENT + 100] ^= 0x01
    elif how == "flip-in-segment-0":
        data[SEGMENTED_HEADER_SIZE + 100] ^= 0x01
    elif how == "last-segment-cut":
        del data[SEGMENTED_HEADER_SIZE + 4 * STORED_SEGMENT:]
    elif how == "extended":
        data += data[-STORED_SEGMENT:]
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["flip-in-segment-3", "last-segment-cut", "extended"])
def test_a_damaged_blob_breaks_the_transfer_and_the_download_is_still_logged(world: World, how: str) -> None:
    document = world.upload()
    made = world.share(document)
    _damage(world, document, how)
    received = b""
    with world.anonymous().stream("GET", made["url"]) as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(len(FILE))
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            for chunk in response.iter_bytes():
                received += chunk
    assert len(received) < len(FILE), "the transfer must not complete"
    assert FILE.startswith(received)
    assert [h["kind"] for h in world.entries_of(made["share_id"])] == ["share", "access"]


def test_a_blob_damaged_at_its_start_answers_500_before_any_byte(world: World) -> None:
    document = world.upload()
    made = world.share(document)
    _damage(world, document, "flip-in-segment-0")
    response = world.anonymous().get(made["url"])
    body = _problem(response, 500)
    assert body["request_id"] == response.headers["x-request-id"]
    assert FILE[:1000] not in response.content
    assert [h["kind"] for h in world.entries_of(made["share_id"])] == ["share", "access"]


# ---------------------------------------------------------------------------- the document receipt


def test_the_receipt_verifies_the_downloaded_file_and_counts_no_download(world: World) -> None:
    made = world.share(max_downloads=1)
    recipient = world.anonymous()
    first = recipient.get(made["url"] + "/receipt")
    assert first.status_code == 200, first.text
    second = recipient.get(made["url"] + "/receipt").json()
    # the same document; the checkpoint may be newer (each fetch is itself an access entry)
    assert {k: second[k] for k in ("document", "salt")} == {k: first.json()[k] for k in ("document", "salt")}
    assert second["receipt"]["header"] == first.json()["receipt"]["header"]
    assert world.ledger.shares.get(ACME, made["share_id"]).downloads == 0
    downloaded = recipient.get(made["url"])
    assert downloaded.status_code == 200
    # a one-time link still gives its receipt once used up, so the recipient can keep it beside the file
    after = recipient.get(made["url"] + "/receipt")
    assert after.status_code == 200
    receipt = after.json()
    assert receipt["type"] == "caseledger.document-receipt" and receipt["v"] == 1
    assert receipt["document"] == {"id": world.document, "name": "statement Q3.pdf", "media_type": "application/pdf",
                                   "size": len(FILE)}
    vkey = world.client("agent").get("/v1/log").json()["vkey"]
    verified = verify_file(receipt, Trust.of(vkey), [downloaded.content])
    assert verified["valid"] is True
    with pytest.raises(Exception, match="commit"):
        verify_file(receipt, Trust.of(vkey), [downloaded.content[:-1] + b"x"])
    actions = [h["meta"]["action"] for h in world.entries_of(made["share_id"])]
    assert actions == ["create", "receipt", "receipt", "download", "receipt"]


def test_the_whole_flow_over_http_upload_share_download_receipt_verify(world: World) -> None:
    """An agent uploads into a new case, shares the file; the recipient downloads it and its receipt,
    which verifies offline and through POST /v1/verify/document."""
    agent = world.api.client(ACME, "agent", "erin")
    data = b"%PDF-1.4\n" + os.urandom(150_000)
    uploaded = agent.post("/v1/documents", data={"case": "S-9", "title": "Q3 statement", "subject_ref": "CRM-9"},
                          files={"file": ("Q3 – statement.pdf", data, "application/pdf")})
    assert uploaded.status_code == 201, uploaded.text
    document = uploaded.json()["document"]["id"]
    made = agent.post(f"/v1/documents/{document}/shares", json={"recipient": "cust:9", "expires_in": 600,
                                                                "max_downloads": 1})
    assert made.status_code == 201, made.text
    recipient = world.anonymous()
    downloaded = recipient.get(made.json()["url"])
    assert downloaded.status_code == 200 and downloaded.content == data
    assert downloaded.headers["content-disposition"] == (
        "attachment; filename=\"Q3 _ statement.pdf\"; filename*=UTF-8''Q3%20%E2%80%93%20statement.pdf")
    receipt = recipient.get(made.json()["url"] + "/receipt").json()
    vkey = agent.get("/v1/log").json()["vkey"]
    assert verify_file(receipt, Trust.of(vkey), [downloaded.content])["valid"] is True
    checked = agent.post("/v1/verify/document", files={"receipt": ("receipt.json", json.dumps(receipt).encode()),
                                                       "file": ("f.pdf", downloaded.content)})
    assert checked.status_code == 200, checked.text
    assert checked.json()["valid"] is True
    _problem(recipient.get(made.json()["url"]), 410)


# ---------------------------------------------------------------------------- the bad-token limiter alone


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_limiter_refuses_after_limit_misses_until_the_oldest_is_a_window_old() -> None:
    clock = _Clock()
    limiter = BadTokenLimiter(limit=3, window=60.0, clock=clock)
    for _ in range(2):
        limiter.miss("a")
        clock.now += 10
    assert limiter.retry_after("a") is None
    limiter.miss("a")  # misses at 1000, 1010, 1020
    assert limiter.retry_after("a") == 40
    assert limiter.retry_after("b") is None
    clock.now = 1059.5
    assert limiter.retry_after("a") == 1
    clock.now = 1060.0  # the first miss is a window old: two remain
    assert limiter.retry_after("a") is None
    limiter.miss("a")
    assert limiter.retry_after("a") == 10
    clock.now = 2000.0
    assert limiter.retry_after("a") is None


def test_the_limiter_remembers_a_bounded_number_of_clients() -> None:
    clock = _Clock()
    limiter = BadTokenLimiter(limit=2, window=60.0, max_clients=100, clock=clock)

    def guess_twice(client: str) -> None:  # limited now, so `retry_after` tells whether it is remembered
        limiter.miss(client)
        limiter.miss(client)

    guess_twice("guesser")
    for number in range(99):
        guess_twice(f"other-{number}")
    assert limiter.retry_after("guesser") is not None
    limiter.miss("guesser")  # seen again: the most recent now
    for number in range(99, 198):
        guess_twice(f"other-{number}")
    assert limiter.retry_after("guesser") is not None
    guess_twice("one-more")  # the least recently seen client is forgotten
    assert limiter.retry_after("guesser") is None
    everyone = ["guesser", *(f"other-{number}" for number in range(198)), "one-more"]
    remembered = [client for client in everyone if limiter.retry_after(client) is not None]
    assert remembered == [*(f"other-{number}" for number in range(99, 198)), "one-more"]  # 100 clients
    with pytest.raises(ValueError):
        BadTokenLimiter(limit=0)
