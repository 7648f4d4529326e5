"""Limits and operations over HTTP: body and header sizes, page sizes, proofs past the log, slow
clients, problem documents, X-Purpose, readiness and metrics."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.apisettings import with_settings
from tests.api.conftest import Api, interaction, running

LIMIT = 1024 * 1024
CASE = "L-1"
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def seeded(api: Api) -> Api:
    """Five interactions in acme's case L-1, logged by the agent lou."""
    with api.client("acme", "agent", "lou") as http:
        for n in range(5):
            assert http.post("/v1/interactions", json=interaction(CASE, n=n)).status_code == 201
    return api


@pytest.fixture
def sup(seeded: Api) -> Iterator[httpx.Client]:
    with seeded.client("acme", "supervisor", "sam") as http:
        yield http


@pytest.fixture
def lou(seeded: Api) -> Iterator[httpx.Client]:
    with seeded.client("acme", "agent", "lou") as http:
        yield http


def _port(api: Api) -> int:
    return int(api.url.rsplit(":", 1)[1])


def _raw(api: Api) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", _port(api)), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _status_line(sock: socket.socket) -> bytes:
    """The first line the server answers, or b"" if it closed (or reset) without a word."""
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    return data.split(b"\r\n", 1)[0]


def _padded_body(total: int) -> bytes:
    """A valid interaction body of exactly `total` bytes."""
    body = interaction(CASE, note="")
    base = len(json.dumps(body).encode())
    body["content"]["note"] = "x" * (total - base)
    data = json.dumps(body).encode()
    assert len(data) == total
    return data


def _assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["type"]
    return body


# --------------------------------------------------------------------------- request bodies


def test_a_body_at_the_limit_is_accepted(lou: httpx.Client) -> None:
    response = lou.post("/v1/interactions", content=_padded_body(LIMIT), headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text[:300]


def test_a_body_over_the_limit_with_content_length_is_413(lou: httpx.Client) -> None:
    """Every time: a server that closed with the body unread would reset the connection, now and then
    before the client read the 413."""
    for size in (LIMIT + 1, 3 * LIMIT) * 8:
        response = lou.post("/v1/interactions", content=_padded_body(size),
                            headers={"Content-Type": "application/json"})
        body = _assert_problem(response, 413)
        assert body["type"].endswith("/too-large")
        # the connection is kept and the rest of the body discarded: the client may go on
        assert lou.get("/healthz").status_code == 200


def test_a_declared_oversize_body_is_refused_before_it_is_sent(seeded: Api) -> None:
    token = seeded.token("acme", "agent", "lou")
    with _raw(seeded) as sock:
        sock.sendall(f"POST /v1/interactions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {50 * LIMIT}\r\n\r\n".encode())
        assert _status_line(sock).startswith(b"HTTP/1.1 413 ")


def test_an_oversize_body_is_discarded_and_the_connection_kept(seeded: Api) -> None:
    """A client that writes its whole body before reading (most do) must get to read the 413: closing
    with the body unread would reset the connection under its feet."""
    size = 20 * LIMIT  # more than the loopback socket buffers hold, so the server must read it
    token = seeded.token("acme", "agent", "lou")
    with _raw(seeded) as sock:
        sock.sendall(f"POST /v1/interactions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n".encode())
        sock.sendall(b"x" * size)
        assert _status_line(sock).startswith(b"HTTP/1.1 413 ")
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        answer = b""
        while not answer.endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk
            answer += chunk
        assert b"HTTP/1.1 200 " in answer


def test_a_chunked_body_over_the_limit_is_413(lou: httpx.Client) -> None:
    data = _padded_body(LIMIT + 4096)

    def chunks() -> Iterator[bytes]:
        for at in range(0, len(data), 64 * 1024):
            yield data[at : at + 64 * 1024]

    response = lou.post("/v1/interactions", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    body = _assert_problem(response, 413)
    assert body["type"].endswith("/too-large")
    assert lou.get(f"/v1/cases/{CASE}/timeline").status_code == 200


def test_a_small_chunked_body_is_accepted(lou: httpx.Client) -> None:
    data = json.dumps(interaction(CASE, n=99)).encode()
    response = lou.post("/v1/interactions", content=iter([data[:10], data[10:]]),
                        headers={"Content-Type": "application/json"})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(("change", "where"), [
    ({"unexpected": 1}, "unexpected"),
    ({"channel": "pigeon"}, "channel"),
    ({"direction": "sideways"}, "direction"),
    ({"case": "has space"}, "case"),
    ({"case": "x" * 129}, "case"),
    ({"occurred_at": "2024-01-01T00:00:00"}, "occurred_at"),  # naive: no zone
    ({"meta": {"Bad-Key": 1}}, "meta"),
    ({"meta": {f"k{n}": n for n in range(33)}}, "meta"),
    ({"meta": {"nested": {"a": 1}}}, "meta"),
    ({"content": "not an object"}, "content"),
    ({"subject_ref": ""}, "subject_ref"),
])
def test_invalid_interaction_bodies_are_422(lou: httpx.Client, change: dict[str, Any], where: str) -> None:
    body = _assert_problem(lou.post("/v1/interactions", json=interaction(CASE) | change), 422)
    assert body["type"].endswith("/invalid-request")
    assert any(where in error["loc"] for error in body["errors"]), body


def test_missing_fields_and_broken_json_are_422(lou: httpx.Client) -> None:
    for field in ("case", "channel", "direction", "subject_ref", "content"):
        body = interaction(CASE)
        del body[field]
        _assert_problem(lou.post("/v1/interactions", json=body), 422)
    _assert_problem(lou.post("/v1/interactions", content=b'{"case": ', headers={"Content-Type": "application/json"}),
                    422)
    _assert_problem(lou.post("/v1/interactions", content=b"", headers={"Content-Type": "application/json"}), 422)


def test_a_201_has_a_location_that_answers(lou: httpx.Client) -> None:
    response = lou.post("/v1/interactions", json=interaction(CASE, "sms", n=100))
    assert response.status_code == 201
    receipt = response.json()
    assert response.headers["location"] == f"/v1/entries/{receipt['seq']}"
    again = lou.get(response.headers["location"])
    assert again.status_code == 200
    assert again.json()["entry_hash"] == receipt["entry_hash"] and again.json()["header"] == receipt["header"]


# --------------------------------------------------------------------------- pages and proofs


@pytest.mark.parametrize(("query", "status"), [
    ("limit=1000", 200), ("limit=1", 200), ("limit=1001", 422), ("limit=100000", 422), ("limit=0", 422),
    ("limit=-1", 422), ("after=-1", 200), ("after=-2", 422), ("after=99999999", 200), ("limit=x", 422),
])
def test_page_size_is_capped(sup: httpx.Client, query: str, status: int) -> None:
    response = sup.get(f"/v1/entries?{query}")
    assert response.status_code == status, response.text
    if status != 200:
        _assert_problem(response, status)


def test_pages_end_with_next_after_null(sup: httpx.Client) -> None:
    everything = sup.get("/v1/entries?limit=1000").json()
    assert everything["next_after"] is None
    seqs, after = [], -1
    while after is not None:
        page = sup.get(f"/v1/entries?after={after}&limit=2").json()
        assert set(page) == {"entries", "next_after"}
        seqs += [entry["seq"] for entry in page["entries"]]
        after = page["next_after"]
    assert seqs[: len(everything["entries"])] == [entry["seq"] for entry in everything["entries"]]


def test_the_server_page_cap_still_pages_to_the_end(seeded: Api) -> None:
    """With max_page below the requested limit the pages shrink, and next_after still leads on."""
    with running(with_settings(seeded, max_page=2)) as small, \
            small.client("acme", "auditor", "audrey") as http, seeded.client("acme", "auditor", "audrey") as full:
        everything = full.get("/v1/entries?limit=1000").json()["entries"]
        seen, after = [], -1
        while after is not None:
            page = http.get(f"/v1/entries?after={after}&limit=1000").json()
            assert len(page["entries"]) <= 2
            seen += page["entries"]
            after = page["next_after"]
        assert [entry["seq"] for entry in seen][: len(everything)] == [entry["seq"] for entry in everything]


def _size(http: httpx.Client) -> int:
    size: int = http.get("/v1/log").json()["size"]
    return size


@pytest.mark.parametrize(("query", "statuses"), [
    ("inclusion?seq=0&size={beyond}", {404}),
    ("inclusion?seq={size}", {404}),
    ("inclusion?seq={beyond}&size={beyond}", {404}),
    ("inclusion?seq=0&size=4611686018427387904", {404}),  # 2**62
    ("inclusion?seq=0&size=0", {404}),
    ("inclusion?seq=3&size=3", {404}),
    ("inclusion?seq=0&size=9223372036854775808", {422}),
    ("inclusion?seq=-1", {422}),
    ("inclusion", {422}),
    ("consistency?first=1&second={beyond}", {404}),
    ("consistency?first={beyond}", {400, 404}),
    ("consistency?first=0&second=1", {400}),
    ("consistency?first=3&second=2", {400}),
    ("consistency?first=1&second=4611686018427387904", {404}),
    ("range?start=0&end=1&size={beyond}", {404}),
    ("range?start=0&end={beyond}", {400, 404}),
    ("range?start={size}&end={beyond}", {400, 404}),
    ("range?start=2&end=2", {400}),
    ("range?start=3&end=1", {400}),
    ("range?start=0&end=1&size=4611686018427387904", {404}),
])
def test_proofs_past_the_log_are_4xx(sup: httpx.Client, query: str, statuses: set[int]) -> None:
    size = _size(sup)
    response = sup.get("/v1/proofs/" + query.format(size=size, beyond=size + 1))
    assert response.status_code in statuses, response.text
    _assert_problem(response, response.status_code)


def test_proofs_inside_the_log_are_200(sup: httpx.Client) -> None:
    size = _size(sup)
    for query in (f"inclusion?seq={size - 1}&size={size}", "inclusion?seq=0", f"consistency?first={size}",
                  f"consistency?first=1&second={size}", f"range?start=0&end={size}", "range?start=1&end=2&size=2"):
        assert sup.get("/v1/proofs/" + query).status_code == 200, query


# --------------------------------------------------------------------------- headers and slow clients


def test_a_100kb_header_is_refused_and_the_server_serves_on(seeded: Api, sup: httpx.Client) -> None:
    with seeded.client() as http:
        response = http.get("/healthz", headers={"X-Filler": "a" * 100_000})
        assert response.status_code in (400, 431), response.text
        if response.status_code == 431:  # our own limit (h11 answers 400 when the head came in pieces)
            _assert_problem(response, 431)
        response = sup.get("/v1/log", headers={"X-Filler": "a" * 100_000})
        assert response.status_code in (400, 431)
        assert http.get("/healthz").status_code == 200
    assert sup.get("/v1/log").status_code == 200


def test_a_dribbled_100kb_header_is_refused(seeded: Api) -> None:
    with _raw(seeded) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Filler: ")
        try:
            for _ in range(25):
                sock.sendall(b"a" * 4096)
                time.sleep(0.002)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused mid-way: what we want
        line = _status_line(sock)
        assert line == b"" or line.split(b" ")[1] in (b"400", b"431"), line
    with seeded.client() as http:
        assert http.get("/healthz").status_code == 200


def test_headers_at_a_sane_size_are_fine(sup: httpx.Client) -> None:
    assert sup.get("/v1/log", headers={"X-Filler": "a" * 4000}).status_code == 200


def test_slow_clients_do_not_stop_the_others(seeded: Api, sup: httpx.Client) -> None:
    slow = [_raw(seeded) for _ in range(8)]
    try:
        for sock in slow:
            sock.sendall(b"GET /v1/log HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        for round_ in range(20):
            for sock in slow:
                sock.sendall(b"z")  # a byte at a time, never finishing the head
            # answered while they dribble (how fast is a benchmark's business, not a test's)
            response = sup.get("/v1/log") if round_ % 2 else sup.get("/healthz")
            assert response.status_code == 200
        for sock in slow:  # they are still waited for, not answered or dropped
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)
    finally:
        for sock in slow:
            sock.close()
    assert sup.get("/readyz").status_code == 200


# --------------------------------------------------------------------------- problems, purpose, operations


def test_errors_are_problem_documents(seeded: Api, sup: httpx.Client, lou: httpx.Client) -> None:
    with seeded.client() as anonymous, seeded.client("acme", "client", "carl") as client:
        _assert_problem(anonymous.get("/v1/log"), 401)
        _assert_problem(client.get("/v1/entries"), 403)
        _assert_problem(sup.get("/v1/entries/999999"), 404)
        _assert_problem(sup.get("/v1/cases/NOPE/timeline"), 404)
        _assert_problem(sup.get("/v1/nowhere"), 404)
        _assert_problem(anonymous.get("/nowhere"), 404)
        _assert_problem(sup.delete("/v1/entries/0"), 405)
        _assert_problem(sup.put("/v1/interactions", json={}), 405)
        _assert_problem(sup.get("/v1/entries/-1"), 422)
        _assert_problem(sup.get("/v1/cases/has%20space/timeline"), 422)
        _assert_problem(sup.get("/v1/proofs/consistency?first=0&second=1"), 400)
        _assert_problem(lou.post("/v1/interactions", json=interaction(CASE) | {"x": 1}), 422)


@pytest.mark.parametrize("purpose", ["a;b", "x" * 65, "", "<script>", "tab\there", "drop table entries;--"])
def test_a_bad_purpose_is_400_and_logs_nothing(seeded: Api, sup: httpx.Client, purpose: str) -> None:
    before = _size(sup)
    for path in (f"/v1/cases/{CASE}/timeline", "/v1/entries/0?content=true", "/v1/entries/0"):
        body = _assert_problem(sup.get(path, headers={"X-Purpose": purpose}), 400)
        assert "X-Purpose" in body["detail"]
    assert _size(sup) == before


def test_a_good_purpose_is_logged(sup: httpx.Client, seeded: Api) -> None:
    purpose = "fraud check 7: case.L-1_x"
    response = sup.get(f"/v1/cases/{CASE}/timeline", headers={"X-Purpose": purpose})
    assert response.status_code == 200
    with seeded.client("acme", "auditor", "audrey") as audit:
        entries = audit.get("/v1/entries?limit=1000").json()["entries"]
    access = [entry["header"] for entry in entries if entry["header"]["kind"] == "access"]
    assert access[-1]["meta"]["purpose"] == purpose and access[-1]["actor"] == "user:sam"


def test_readyz_and_healthz(seeded: Api) -> None:
    with seeded.client() as http:
        ready = http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "checks": {"database": True, "keys": True, "audit": True}}
        assert http.get("/healthz").json()["status"] == "ok"


def test_metrics_count_requests(seeded: Api, sup: httpx.Client) -> None:
    sup.get("/v1/log")
    with seeded.client() as http:
        response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert any(line.startswith("caseledger_http_requests_total{") for line in lines)
    assert any('route="/v1/log"' in line and 'status="200"' in line for line in lines
               if line.startswith("caseledger_http_requests_total{"))
    assert any(line.startswith("caseledger_http_request_seconds_bucket{") for line in lines)
