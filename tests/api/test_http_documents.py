"""Documents over real HTTP on SQLite and PostgreSQL: streamed uploads, hostile names and types, limits
(declared and chunked), malformed forms, who may upload and read what, and the verify endpoint.

Bodies are built by hand (`form`), so that the order of the parts, the names and the framing are
exactly what each attack needs; a generator as `content=` makes httpx send it chunked, without a
Content-Length.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.api.conftest import Api, interaction
from verification.checkpoint import parse_checkpoint, sign_checkpoint
from verification.document_receipt import CHECKS, check_document_name, verify_file
from verification.trust import Trust

BOUNDARY = "cl-test-7c1f0e9a"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
PROBLEM = "application/problem+json"
PDF = b"%PDF-1.7\n" + b"statement of account\n" * 500
MIB = 1024 * 1024

FilePart = tuple[str, str | None, bytes]


def _part(name: str, value: bytes, filename: str | None = None, content_type: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"'.encode()
    if filename is not None:
        disposition += b'; filename="' + filename.encode("utf-8", "surrogateescape") + b'"'
    head = b"Content-Disposition: " + disposition + b"\r\n"
    if content_type is not None:
        head += f"Content-Type: {content_type}\r\n".encode()
    return f"--{BOUNDARY}\r\n".encode() + head + b"\r\n" + value + b"\r\n"


def form(fields: dict[str, str], file: FilePart | None = None, *, after: dict[str, str] | None = None,
         end: bool = True) -> bytes:
    """A multipart body: `fields`, then `file` as (filename, content type, bytes), then `after` fields."""
    body = b"".join(_part(name, value.encode()) for name, value in fields.items())
    if file is not None:
        body += _part("file", file[2], file[0], file[1])
    body += b"".join(_part(name, value.encode()) for name, value in (after or {}).items())
    return body + (f"--{BOUNDARY}--\r\n".encode() if end else b"")


def chunked(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start:start + size]


def upload(http: httpx.Client, case: str, data: bytes = PDF, name: str = "statement.pdf",
           media_type: str | None = "application/pdf", title: str = "Statement", **fields: str) -> httpx.Response:
    return http.post("/v1/documents", content=form({"case": case, "title": title, **fields}, (name, media_type, data)),
                     headers={"Content-Type": CONTENT_TYPE})


def verify(http: httpx.Client, receipt: Any, data: bytes) -> httpx.Response:
    text = receipt if isinstance(receipt, str) else json.dumps(receipt)
    return http.post("/v1/verify/document", content=form({"receipt": text}, ("file", None, data)),
                     headers={"Content-Type": CONTENT_TYPE})


def log_size(api: Api, tenant: str = "acme") -> int:
    with api.client(tenant, "auditor", "ada") as http:
        size: int = http.get("/v1/log").json()["size"]
        return size


def blob_files(api: Api) -> list[Path]:
    root = Path(api.settings.data_dir) / "blobs"
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


def vkey(api: Api, tenant: str = "acme") -> str:
    with api.client(tenant, "client", "cli") as http:
        key: str = http.get("/v1/log").json()["vkey"]
        return key


def _raw(api: Api, head: bytes, body: bytes = b"") -> bytes:
    """Send a request head (and `body`) on a fresh connection; the server's whole first answer."""
    url = urlsplit(api.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(head + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    return problem


@pytest.fixture(scope="module")
def agent(api: Api) -> Iterator[httpx.Client]:
    """dana, who opens case D-1 first (whichever test of the module runs first, on whichever worker)."""
    with api.client("acme", "agent", "dana") as http:
        assert http.post("/v1/interactions", json=interaction("D-1")).status_code == 201
        yield http


@pytest.fixture(scope="module")
def supervisor(api: Api) -> Iterator[httpx.Client]:
    with api.client("acme", "supervisor", "sam") as http:
        yield http


# --- uploading ------------------------------------------------------------------------------------


def test_upload_answers_a_receipt_that_verifies_the_file(api: Api, agent: httpx.Client) -> None:
    size = log_size(api)
    response = upload(agent, "D-1", subject_ref="CRM-1")
    assert response.status_code == 201, response.text
    receipt = response.json()
    assert response.headers["location"] == f"/v1/documents/{receipt['document']['id']}"
    assert receipt["type"] == "caseledger.document-receipt"
    assert receipt["document"] | {"id": None} == {"id": None, "name": "statement.pdf",
                                                  "media_type": "application/pdf", "size": len(PDF)}
    assert receipt["receipt"]["header"]["meta"] == {"size": len(PDF)}
    assert receipt["receipt"]["header"]["actor"] == "user:dana"
    assert receipt["receipt"]["seq"] == size
    verdict = verify_file(receipt, Trust.of(vkey(api)), chunked(PDF, 1000), collect=True)
    assert verdict["valid"], verdict
    assert log_size(api) == size + 1


def test_a_chunked_upload_without_content_length_is_streamed(api: Api, agent: httpx.Client) -> None:
    data = os.urandom(3 * MIB + 17)
    body = form({"case": "D-1", "title": "Scan"}, ("scan.bin", "application/octet-stream", data))
    response = agent.post("/v1/documents", content=chunked(body, 50_000), headers={"Content-Type": CONTENT_TYPE})
    assert response.status_code == 201, response.text
    assert response.json()["document"]["size"] == len(data)
    assert verify_file(response.json(), Trust.of(vkey(api)), [data])["valid"]


@pytest.mark.parametrize(("raw", "stored"), [
    ("../../etc/passwd", "passwd"),
    ("/absolute/path/report.pdf", "report.pdf"),
    ("C:\\Users\\x\\report.pdf", "report.pdf"),
    ("bad\x00name.pdf", "badname.pdf"),
    ("\x1b[31mred\x07.txt", "[31mred.txt"),
    ("..", "document"),
    ("", "document"),
], ids=["dot-dot", "absolute", "windows-path", "nul", "control", "only-dots", "empty"])
def test_hostile_file_names_are_sanitised(agent: httpx.Client, raw: str, stored: str) -> None:
    response = upload(agent, "D-1", name=raw)
    assert response.status_code == 201, response.text
    assert response.json()["document"]["name"] == stored


def test_a_file_name_over_255_bytes_is_cut_keeping_its_extension(agent: httpx.Client) -> None:
    response = upload(agent, "D-1", name="é" * 300 + ".pdf")
    assert response.status_code == 201, response.text
    name = response.json()["document"]["name"]
    assert len(name.encode()) <= 255 and name.endswith(".pdf") and check_document_name(name) == name


@pytest.mark.parametrize(("declared", "data", "recorded"), [
    ("image/png", PDF, "application/pdf"),
    ("application/pdf", b"just text, not a PDF", "text/plain"),
    ("text/html", b"<script>alert(1)</script>", "text/plain"),
    (None, b"\x89PNG\r\n\x1a\n" + bytes(100), "image/png"),
], ids=["png-that-is-a-pdf", "pdf-that-is-text", "html", "undeclared-png"])
def test_the_media_type_is_sniffed_when_the_declared_one_contradicts_the_bytes(
        agent: httpx.Client, declared: str | None, data: bytes, recorded: str) -> None:
    response = upload(agent, "D-1", data=data, name="file", media_type=declared)
    assert response.status_code == 201, response.text
    assert response.json()["document"]["media_type"] == recorded


def test_an_empty_file_is_a_document(api: Api, agent: httpx.Client) -> None:
    response = upload(agent, "D-1", data=b"", name="empty.txt", media_type="text/plain")
    assert response.status_code == 201, response.text
    assert response.json()["document"]["size"] == 0
    assert verify_file(response.json(), Trust.of(vkey(api)), [])["valid"]


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_read(api: Api) -> None:
    size, blobs = log_size(api), blob_files(api)
    limit = api.settings.max_document_bytes + 64 * 1024
    head = (f"POST /v1/documents HTTP/1.1\r\nHost: x\r\nContent-Type: {CONTENT_TYPE}\r\n"
            f"Authorization: Bearer {api.token('acme', 'agent', 'dana')}\r\n"
            f"Content-Length: {limit + 1}\r\n\r\n").encode()
    answer = _raw(api, head)  # not a byte of the body is sent: the answer comes anyway
    assert _status(answer) == 413, answer[:300]
    assert log_size(api) == size and blob_files(api) == blobs


def test_a_chunked_body_over_the_limit_is_refused_while_reading_and_leaves_nothing(
        api: Api, agent: httpx.Client) -> None:
    size, blobs = log_size(api), blob_files(api)
    data = b"x" * (api.settings.max_document_bytes + 1)
    body = form({"case": "D-1", "title": "Too big"}, ("big.bin", None, data))
    response = agent.post("/v1/documents", content=chunked(body), headers={"Content-Type": CONTENT_TYPE})
    assert _problem(response, 413)["type"].endswith("/too-large")
    assert log_size(api) == size and blob_files(api) == blobs


def test_a_declared_body_just_over_the_document_limit_is_refused_by_the_engine(
        api: Api, agent: httpx.Client) -> None:
    size, blobs = log_size(api), blob_files(api)
    response = upload(agent, "D-1", data=b"y" * (api.settings.max_document_bytes + 1))
    assert _problem(response, 413)["type"].endswith("/too-large")
    assert log_size(api) == size and blob_files(api) == blobs


def test_a_document_of_exactly_the_limit_is_accepted(api: Api, agent: httpx.Client) -> None:
    data = os.urandom(api.settings.max_document_bytes)
    body = form({"case": "D-1", "title": "Full size"}, ("full.bin", None, data))
    response = agent.post("/v1/documents", content=chunked(body, 256 * 1024), headers={"Content-Type": CONTENT_TYPE})
    assert response.status_code == 201, response.text
    assert response.json()["document"]["size"] == len(data)


# --- malformed forms ------------------------------------------------------------------------------


def test_fields_after_the_file_are_refused_and_nothing_is_stored(api: Api, agent: httpx.Client) -> None:
    size, blobs = log_size(api), blob_files(api)
    late_title = form({"case": "D-1"}, ("late.pdf", "application/pdf", PDF), after={"title": "too late"})
    late_subject = form({"case": "D-1", "title": "t"}, ("late.pdf", None, PDF), after={"subject_ref": "CRM-9"})
    for body in (late_title, late_subject):
        for content in (body, chunked(body, 100)):
            response = agent.post("/v1/documents", content=content, headers={"Content-Type": CONTENT_TYPE})
            problem = _problem(response, 422)
            assert "before the 'file' part" in problem["detail"], problem
    assert log_size(api) == size and blob_files(api) == blobs


@pytest.mark.parametrize("missing", ["case", "title", "file"])
def test_a_missing_field_or_file_is_named(api: Api, agent: httpx.Client, missing: str) -> None:
    size = log_size(api)
    fields = {name: value for name, value in {"case": "D-1", "title": "Statement"}.items() if name != missing}
    body = form(fields, None if missing == "file" else ("a.pdf", None, PDF))
    response = agent.post("/v1/documents", content=body, headers={"Content-Type": CONTENT_TYPE})
    problem = _problem(response, 422)
    assert problem["errors"][0]["loc"] == ["body", missing], problem
    assert log_size(api) == size


@pytest.mark.parametrize(("fields", "member"), [
    ({"case": "D-1", "title": "x", "meta": '{"a": 1}'}, "meta"),
    ({"case": "D 1!", "title": "x"}, "case"),
    ({"case": "D-1", "title": "bell\x07"}, "title"),
    ({"case": "D-1", "title": "x" * 201}, "title"),
], ids=["meta-is-not-accepted", "bad-case", "control-in-title", "long-title"])
def test_invalid_fields_are_named(agent: httpx.Client, fields: dict[str, str], member: str) -> None:
    response = agent.post("/v1/documents", content=form(fields, ("a.pdf", None, PDF)),
                          headers={"Content-Type": CONTENT_TYPE})
    assert _problem(response, 422)["errors"][0]["loc"] == ["body", member]


@pytest.mark.parametrize(("content_type", "body", "status"), [
    ("application/json", b'{"case": "D-1"}', 400),
    ("multipart/form-data", form({"case": "D-1"}), 400),
    (CONTENT_TYPE, form({"case": "D-1", "title": "t"}, ("a.pdf", None, PDF), end=False), 400),
    (CONTENT_TYPE, form({"case": "D-1", "title": "t"}, ("a.pdf", None, PDF))[:200], 400),
    (CONTENT_TYPE, b"this is not multipart at all", 400),
    (CONTENT_TYPE, b"", 400),
    (CONTENT_TYPE, f"--{BOUNDARY}\r\nX-Other: y\r\n\r\nvalue\r\n--{BOUNDARY}--\r\n".encode(), 400),
    (CONTENT_TYPE, form({"case": "D-1", "case ": "D-2"}), 422),
    (CONTENT_TYPE, _part("case", b"D-1") + _part("case", b"D-2") + f"--{BOUNDARY}--\r\n".encode(), 422),
    (CONTENT_TYPE, _part("title", b"\xff\xfe") + f"--{BOUNDARY}--\r\n".encode(), 422),
    (CONTENT_TYPE, _part("title", b"t" * 70_000) + f"--{BOUNDARY}--\r\n".encode(), 413),
], ids=["not-multipart", "no-boundary", "no-closing-boundary", "truncated", "garbage", "empty", "no-disposition",
        "unknown-field", "repeated-field", "not-utf8", "huge-field"])
def test_malformed_forms_are_client_errors_and_store_nothing(api: Api, agent: httpx.Client, content_type: str,
                                                              body: bytes, status: int) -> None:
    size = log_size(api)
    for content in (body, chunked(body, 7)):
        response = agent.post("/v1/documents", content=content, headers={"Content-Type": content_type})
        _problem(response, status)
    assert log_size(api) == size


def test_a_client_that_goes_away_mid_upload_leaves_nothing(api: Api) -> None:
    size, blobs = log_size(api), blob_files(api)
    head = (f"POST /v1/documents HTTP/1.1\r\nHost: x\r\nContent-Type: {CONTENT_TYPE}\r\n"
            f"Authorization: Bearer {api.token('acme', 'agent', 'dana')}\r\n"
            f"Content-Length: {10 * MIB}\r\n\r\n").encode()
    partial = form({"case": "D-1", "title": "Cut"}, ("cut.bin", None, b"z" * (2 * MIB)), end=False)
    url = urlsplit(api.url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(head + partial)
        time.sleep(0.3)
    deadline = time.monotonic() + 10
    while any(".tmp-" in path.name for path in blob_files(api)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log_size(api) == size and blob_files(api) == blobs


# --- who may upload -------------------------------------------------------------------------------


def test_anonymous_uploads_get_401_before_the_body_is_read(api: Api) -> None:
    head = (f"POST /v1/documents HTTP/1.1\r\nHost: x\r\nContent-Type: {CONTENT_TYPE}\r\n"
            f"Content-Length: {5 * MIB}\r\n\r\n").encode()
    assert _status(_raw(api, head)) == 401
    assert _status(_raw(api, head.replace(b"Host: x", b"Host: x\r\nAuthorization: Bearer forged"))) == 401


@pytest.mark.parametrize("role", ["client", "auditor", "admin"])
def test_roles_that_do_not_log_cannot_upload(api: Api, role: str) -> None:
    size = log_size(api)
    with api.client("acme", role, f"{role}-1", perms=("content",)) as http:
        _problem(upload(http, "D-1"), 403)
    head = (f"POST /v1/documents HTTP/1.1\r\nHost: x\r\nContent-Type: {CONTENT_TYPE}\r\n"
            f"Authorization: Bearer {api.token('acme', role, 'r')}\r\nContent-Length: {5 * MIB}\r\n\r\n").encode()
    assert _status(_raw(api, head)) == 403  # refused before a byte of the body is read
    assert log_size(api) == size


def test_an_agent_cannot_upload_into_anothers_case_or_read_its_documents(api: Api, agent: httpx.Client) -> None:
    with api.client("acme", "agent", "eve") as eve:
        size = log_size(api)
        problem = _problem(upload(eve, "D-1"), 403)
        assert "not assigned" in problem["detail"]
        assert log_size(api) == size
        document_id = upload(agent, "D-1").json()["document"]["id"]
        for path in (f"/v1/documents/{document_id}", f"/v1/documents/{document_id}/receipt"):
            _problem(eve.get(path), 404)
        # her own new case is hers
        assert upload(eve, "E-1").status_code == 201


def test_a_supervisor_uploads_to_any_case_and_an_assigned_agent_to_its_own(api: Api, agent: httpx.Client,
                                                                          supervisor: httpx.Client) -> None:
    assert upload(supervisor, "D-1").status_code == 201
    assert agent.post("/v1/interactions", json=interaction("D-2")).status_code == 201
    with api.client("acme", "agent", "finn") as finn:
        _problem(upload(finn, "D-2"), 403)
        assert supervisor.post("/v1/cases/D-2/assignments", json={"agent": "user:finn"}).status_code == 201
        assert upload(finn, "D-2").status_code == 201


def test_another_tenants_documents_are_not_found(api: Api, agent: httpx.Client) -> None:
    document_id = upload(agent, "D-1").json()["document"]["id"]
    with api.client("globex", "supervisor", "gus") as gus:
        for path in (f"/v1/documents/{document_id}", f"/v1/documents/{document_id}/receipt"):
            problem = _problem(gus.get(path), 404)
            assert document_id in problem["detail"]


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "0" * 36, "ABCDEF01-2345-6789-ABCD-EF0123456789", "x" * 5000])
def test_document_ids_must_be_uuids(supervisor: httpx.Client, bad_id: str) -> None:
    _problem(supervisor.get(f"/v1/documents/{bad_id}"), 422)
    _problem(supervisor.get(f"/v1/documents/{bad_id}/receipt"), 422)


def test_an_unknown_document_is_not_found(supervisor: httpx.Client) -> None:
    _problem(supervisor.get("/v1/documents/00000000-0000-4000-8000-000000000000/receipt"), 404)


# --- reading --------------------------------------------------------------------------------------


def _access_entries(api: Api) -> list[dict[str, Any]]:
    with api.client("acme", "supervisor", "sam") as http:
        headers = http.get("/v1/entries", params={"limit": 1000}).json()["entries"]
    return [entry["header"] for entry in headers if entry["header"]["kind"] == "access"]


def test_name_title_and_media_type_only_for_readers_of_content_and_each_read_is_logged(
        api: Api, agent: httpx.Client) -> None:
    uploaded = upload(agent, "D-1", name="private.pdf", title="Private statement").json()
    document_id = uploaded["document"]["id"]
    seq = uploaded["receipt"]["seq"]
    header_only = {"id": document_id, "seq": seq, "case": "D-1", "size": len(PDF)}
    content = header_only | {"name": "private.pdf", "title": "Private statement", "media_type": "application/pdf"}
    for role, perms, want in [("admin", (), header_only), ("auditor", (), header_only),
                              ("auditor", ("content",), content), ("supervisor", (), content)]:
        with api.client("acme", role, f"{role}-r", perms=perms) as http:
            before = len(_access_entries(api))
            response = http.get(f"/v1/documents/{document_id}", headers={"X-Purpose": "audit"})
            assert response.status_code == 200, response.text
            assert response.json() == want, (role, perms)
            logged = _access_entries(api)[before:]
            if want is content:
                assert [e["meta"] for e in logged] == [{"scope": "document", "document": document_id, "read": "info",
                                                         "count": 1, "seqs": [seq], "purpose": "audit"}]
                assert logged[0]["actor"] == f"user:{role}-r"
            else:
                assert logged == []
    assert agent.get(f"/v1/documents/{document_id}").json() == content
    with api.client("acme", "client", "c") as client:
        _problem(client.get(f"/v1/documents/{document_id}"), 403)


def test_the_receipt_is_for_readers_of_content(api: Api, agent: httpx.Client) -> None:
    uploaded = upload(agent, "D-1").json()
    document_id = uploaded["document"]["id"]
    got = agent.get(f"/v1/documents/{document_id}/receipt")
    assert got.status_code == 200, got.text
    assert got.json()["document"] == uploaded["document"] and got.json()["salt"] == uploaded["salt"]
    assert verify_file(got.json(), Trust.of(vkey(api)), [PDF])["valid"]
    with api.client("acme", "auditor", "aud", perms=("content",)) as auditor:
        assert auditor.get(f"/v1/documents/{document_id}/receipt").status_code == 200
    for role in ("admin", "auditor", "client"):
        with api.client("acme", role, f"{role}-x") as http:
            _problem(http.get(f"/v1/documents/{document_id}/receipt"), 403)
    _problem(agent.get(f"/v1/documents/{document_id}/receipt", headers={"X-Purpose": "bad\tpurpose"}), 400)


# --- verification ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_documents(api: Api, agent: httpx.Client) -> tuple[dict[str, Any], dict[str, Any]]:
    first = upload(agent, "V-1", data=PDF, name="first.pdf")
    second = upload(agent, "V-1", data=PDF + b"second", name="second.pdf")
    assert first.status_code == second.status_code == 201
    assert agent.post("/v1/interactions", json=interaction("V-1")).status_code == 201  # the log grows on
    return first.json(), second.json()


def _failed(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    verdict = response.json()
    names = [check["name"] for check in verdict["checks"]]
    assert names == ["log", *CHECKS, "consistent"], names
    failed = {check["name"] for check in verdict["checks"] if not check["ok"]}
    assert verdict["valid"] is not failed
    return failed


def test_verify_accepts_the_file_and_its_receipt(api: Api, two_documents: tuple[dict[str, Any], ...]) -> None:
    first, _ = two_documents
    with api.client("acme", "client", "app") as client:
        response = verify(client, first, PDF)
        assert _failed(response) == set()
        checks = {check["name"]: check["detail"] for check in response.json()["checks"]}
        assert checks["anchor"] == "not anchored"
        assert "extends" in checks["consistent"]


def _resign(note: str, key: Ed25519PrivateKey) -> str:
    """The same checkpoint, signed by `key` under the log's name."""
    return sign_checkpoint(parse_checkpoint(note[: note.rfind("\n\n") + 1]), key)


def _mutations(first: dict[str, Any], second: dict[str, Any]) -> dict[str, tuple[Any, bytes, set[str]]]:
    def edited(path: str, value: Any) -> dict[str, Any]:
        doc = copy.deepcopy(first)
        *parents, last = path.split(".")
        target = doc
        for part in parents:
            target = target[part]
        target[last] = value(target[last]) if callable(value) else value
        return doc

    note = first["receipt"]["checkpoint"]
    body, _, signature = note.partition("\n\n")
    lines = body.split("\n")
    other_root = bytes(32)
    lines[2] = base64.b64encode(other_root).decode()
    other_key = Ed25519PrivateKey.generate()
    return {
        "one-byte-changed": (first, PDF[:10] + bytes([PDF[10] ^ 1]) + PDF[11:], {"commitment"}),
        "truncated": (first, PDF[:-1], {"commitment", "size"}),
        "extended": (first, PDF + b"\n", {"commitment", "size"}),
        "receipt-of-another-document": (second, PDF, {"commitment", "size"}),
        "edited-salt": (edited("salt", lambda s: ("0" if s[0] != "0" else "1") + s[1:]), PDF, {"commitment"}),
        "edited-header": (edited("receipt.header.case", "V-2"), PDF, {"entry_hash", "inclusion"}),
        "edited-proof": (edited("receipt.inclusion.proof", lambda p: ["00" * 32, *p[1:]]), PDF, {"inclusion"}),
        "edited-checkpoint": (edited("receipt.checkpoint", "\n".join(lines) + "\n\n" + signature), PDF,
                              {"checkpoint_signature", "inclusion", "consistent"}),
        "signed-by-another-key": (edited("receipt.checkpoint", _resign(note, other_key)), PDF,
                                  {"checkpoint_signature"}),
    }


@pytest.mark.parametrize("mutation", ["one-byte-changed", "truncated", "extended", "receipt-of-another-document",
                                      "edited-salt", "edited-header", "edited-proof", "edited-checkpoint",
                                      "signed-by-another-key"])
def test_verify_names_the_check_that_fails(api: Api, two_documents: tuple[dict[str, Any], dict[str, Any]],
                                           mutation: str) -> None:
    receipt, data, failing = _mutations(*two_documents)[mutation]
    with api.client("acme", "client", "app") as client:
        assert _failed(verify(client, receipt, data)) == failing


def test_verify_of_another_logs_receipt_says_unknown_log(api: Api,
                                                         two_documents: tuple[dict[str, Any], ...]) -> None:
    first, _ = two_documents
    with api.client("globex", "client", "app") as client:
        response = verify(client, first, PDF)
        assert _failed(response) == {"log", "checkpoint_signature", "consistent"}
        assert "unknown log" in response.json()["checks"][0]["detail"]


@pytest.mark.parametrize("receipt", ["not json", "[]", '{"type": "caseledger.receipt", "v": 1}',
                                     '{"type": "caseledger.document-receipt", "v": 2}', "[" * 50_000],
                         ids=["not-json", "array", "other-type", "other-version", "deep"])
def test_verify_refuses_a_malformed_receipt(api: Api, receipt: str) -> None:
    with api.client("acme", "client", "app") as client:
        problem = _problem(verify(client, receipt, PDF), 422)
        assert problem["errors"][0]["loc"] == ["body", "receipt"]


def test_verify_needs_the_receipt_before_the_file_and_a_token(api: Api,
                                                             two_documents: tuple[dict[str, Any], ...]) -> None:
    first, _ = two_documents
    with api.client("acme", "client", "app") as client:
        body = form({}, ("f", None, PDF), after={"receipt": json.dumps(first)})
        _problem(client.post("/v1/verify/document", content=body, headers={"Content-Type": CONTENT_TYPE}), 422)
        body = form({"receipt": json.dumps(first)})
        problem = _problem(client.post("/v1/verify/document", content=body, headers={"Content-Type": CONTENT_TYPE}),
                           422)
        assert problem["errors"][0]["loc"] == ["body", "file"]
    with api.client() as anonymous:
        _problem(verify(anonymous, first, PDF), 401)


def test_verify_streams_a_large_file(api: Api, agent: httpx.Client) -> None:
    data = os.urandom(8 * MIB)
    receipt = agent.post("/v1/documents", content=chunked(form({"case": "V-2", "title": "big"}, ("b", None, data))),
                         headers={"Content-Type": CONTENT_TYPE}).json()
    body = form({"receipt": json.dumps(receipt)}, ("b", None, data))
    response = agent.post("/v1/verify/document", content=chunked(body, 100_000), headers={"Content-Type": CONTENT_TYPE})
    assert _failed(response) == set()


def test_concurrent_uploads_each_get_their_own_document(api: Api) -> None:
    results: list[int] = []

    def one(n: int) -> None:
        with api.client("acme", "supervisor", "sam") as http:
            data = bytes([n]) * (MIB + n)
            body = form({"case": "C-CONC", "title": f"doc {n}"}, (f"{n}.bin", None, data))
            response = http.post("/v1/documents", content=chunked(body, 32 * 1024),
                                 headers={"Content-Type": CONTENT_TYPE})
            results.append(response.status_code)
            assert verify_file(response.json(), Trust.of(vkey(api)), [data])["valid"]

    threads = [threading.Thread(target=one, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [201] * 6


# --- memory ---------------------------------------------------------------------------------------


def _upload_stream(case: str, size: int, piece: bytes) -> Iterator[bytes]:
    """A multipart upload of `size` bytes made of `piece` repeated, generated as it is sent (never held)."""
    head, tail = form({"case": case, "title": "Large"}, ("large.bin", None, b"\0")).split(b"\0")
    yield head
    for start in range(0, size, len(piece)):
        yield piece[: min(len(piece), size - start)]
    yield tail


class _PeakRss:
    """The process's peak resident set size while it runs, sampled every few milliseconds."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self.base = self.peak = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def test_a_25_mib_upload_keeps_memory_bounded(api: Api, agent: httpx.Client) -> None:
    """The server runs in this process (a uvicorn thread): its peak RSS growth is this process's."""
    size = api.settings.max_document_bytes
    piece = os.urandom(64 * 1024)
    for _ in range(2):  # warm up: threads, buffers and caches the first uploads create
        warm = agent.post("/v1/documents", content=_upload_stream("M-1", size, piece),
                          headers={"Content-Type": CONTENT_TYPE})
        assert warm.status_code == 201, warm.text
    with _PeakRss() as rss:
        response = agent.post("/v1/documents", content=_upload_stream("M-1", size, piece),
                              headers={"Content-Type": CONTENT_TYPE})
    assert response.status_code == 201, response.text
    assert response.json()["document"]["size"] == size
    print(f"peak RSS growth {(rss.peak - rss.base) / MIB:.2f} MiB")
    assert rss.peak - rss.base < 10 * MIB, f"peak RSS grew by {(rss.peak - rss.base) / MIB:.1f} MiB"
