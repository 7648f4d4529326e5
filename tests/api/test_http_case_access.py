"""Issue 7 regressions against a running server, on SQLite and PostgreSQL: case access by assignment,
poisoned content, edge dates, identical 404s, concurrent checkpoints, one stored form of content."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx

from api.cli.ledger import jsonl_entries
from ledger.appender import NewEntry
from ledger.service import Ledger
from tests.api.conftest import Api, interaction
from tests.conftest import env_for
from verification.entry import MAX_JSON_DEPTH

ROOT = Path(__file__).resolve().parents[2]


def _size(api: Api) -> int:
    with api.client("acme", "auditor", "audrey") as auditor:
        return int(auditor.get("/v1/log").json()["size"])


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"n": value}
    return value


def test_agent_cannot_join_a_case_by_posting_to_it(api: Api) -> None:
    owner = api.client("acme", "agent", "owner-1")
    intruder = api.client("acme", "agent", "intruder-1")
    assert owner.post("/v1/interactions", json=interaction("JOIN-1", note="private")).status_code == 201
    before = _size(api)
    refused = intruder.post("/v1/interactions", json=interaction("JOIN-1", note="let me in"))
    assert refused.status_code == 403
    assert refused.headers["content-type"] == "application/problem+json"
    assert _size(api) == before, "a refused post wrote something"
    assert intruder.get("/v1/cases/JOIN-1/timeline").status_code == 404
    # the opener still works on its case, and a new case is the intruder's own
    assert owner.get("/v1/cases/JOIN-1/timeline").status_code == 200
    assert intruder.post("/v1/interactions", json=interaction("JOIN-2")).status_code == 201
    assert intruder.get("/v1/cases/JOIN-2/timeline").status_code == 200
    assert owner.get("/v1/cases/JOIN-2/timeline").status_code == 404


def test_supervisor_assignment_grants_and_revokes_and_is_on_record(api: Api) -> None:
    owner = api.client("acme", "agent", "owner-2")
    helper = api.client("acme", "agent", "helper-2")
    supervisor = api.client("acme", "supervisor", "sam")
    assert owner.post("/v1/interactions", json=interaction("ASG-1")).status_code == 201
    assert helper.get("/v1/cases/ASG-1/timeline").status_code == 404
    assigned = supervisor.post("/v1/cases/ASG-1/assignments", json={"agent": "user:helper-2"})
    assert assigned.status_code == 201
    header = assigned.json()["header"]
    assert header["kind"] == "assignment" and header["case"] == "ASG-1" and header["actor"] == "user:sam"
    assert header["meta"] == {"action": "assign", "agent": "user:helper-2"}
    assert helper.get("/v1/cases/ASG-1/timeline").status_code == 200
    assert helper.post("/v1/interactions", json=interaction("ASG-1")).status_code == 201
    staff = supervisor.get("/v1/cases/ASG-1/assignments").json()
    assert staff["opener"] == "user:owner-2" and staff["agents"] == ["user:helper-2", "user:owner-2"]
    assert supervisor.post("/v1/cases/ASG-1/assignments", json={"agent": "user:helper-2"}).status_code == 409
    removed = supervisor.delete("/v1/cases/ASG-1/assignments/user:helper-2")
    assert removed.status_code == 200 and removed.json()["header"]["meta"]["action"] == "unassign"
    assert helper.get("/v1/cases/ASG-1/timeline").status_code == 404
    before = _size(api)
    assert helper.post("/v1/interactions", json=interaction("ASG-1")).status_code == 403
    assert _size(api) == before
    assert supervisor.delete("/v1/cases/ASG-1/assignments/user:helper-2").status_code == 404


def test_only_supervisors_of_the_tenant_assign(api: Api) -> None:
    owner = api.client("acme", "agent", "owner-3")
    assert owner.post("/v1/interactions", json=interaction("ASG-3")).status_code == 201
    body = {"agent": "user:owner-3-friend"}
    for role in ("agent", "auditor", "admin", "client"):
        assert api.client("acme", role, "x").post("/v1/cases/ASG-3/assignments", json=body).status_code == 403
    assert api.client().post("/v1/cases/ASG-3/assignments", json=body).status_code == 401
    # another tenant's supervisor assigns in its own tenant only: acme's case is untouched
    other = api.client("globex", "supervisor", "gus")
    assert other.post("/v1/cases/ASG-3/assignments", json=body).status_code == 201
    friend = api.client("acme", "agent", "owner-3-friend")
    assert friend.get("/v1/cases/ASG-3/timeline").status_code == 404
    bad = api.client("acme", "supervisor", "sam").post("/v1/cases/ASG-3/assignments", json={"agent": "bob"})
    assert bad.status_code == 422


def test_two_agents_racing_to_open_a_case_one_wins(api: Api) -> None:
    results: dict[str, int] = {}
    start = threading.Barrier(8)

    def post(sub: str) -> None:
        with api.client("acme", "agent", sub) as client:
            start.wait()
            results[sub] = client.post("/v1/interactions", json=interaction("RACE-1")).status_code

    threads = [threading.Thread(target=post, args=(f"racer-{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results.values()) == [201] + [403] * 7
    timeline = api.client("acme", "supervisor", "sam").get("/v1/cases/RACE-1/timeline").json()
    winner = next(sub for sub, status in results.items() if status == 201)
    assert [e["header"]["actor"] for e in timeline["entries"]] == [f"user:{winner}"]


def test_deeply_nested_content_is_refused_naming_the_limit(api: Api) -> None:
    agent = api.client("acme", "agent", "deep")
    before = _size(api)
    for depth in (MAX_JSON_DEPTH + 1, 300, 950, 1000, 5000, 100_000):  # the deepest are too deep for json.loads
        # written out by hand: the client's own encoder would give up on the deepest
        body = json.dumps(interaction("DEEP-1") | {"content": "@"}).replace('"@"', '{"n":' * depth + "1" + "}" * depth)
        response = agent.post("/v1/interactions", content=body, headers={"content-type": "application/json"})
        assert response.status_code in (400, 422), (depth, response.status_code)
        assert response.headers["content-type"] == "application/problem+json"
        assert f"nests deeper than {MAX_JSON_DEPTH} levels" in response.json()["detail"], (depth, response.text[:300])
    assert _size(api) == before
    ok = agent.post("/v1/interactions", json=interaction("DEEP-1") | {"content": _nested(MAX_JSON_DEPTH)})
    assert ok.status_code == 201


def test_stored_content_too_deep_for_a_response_is_read_as_text(api: Api) -> None:
    """Content stored before the limit (here through the engine) never makes its case unreadable."""
    poison = json.dumps(_nested(400)).encode()
    with _opened(api) as ledger:
        appended = ledger.appender.append("acme", NewEntry(kind="interaction", case="POISON-1", actor="user:victim",
                                                           channel="chat", content=poison))
    victim = api.client("acme", "agent", "victim")
    timeline = victim.get("/v1/cases/POISON-1/timeline")
    assert timeline.status_code == 200
    assert timeline.json()["entries"][0]["content_text"] == poison.decode()
    entry = victim.get(f"/v1/entries/{appended.seq}", params={"content": "true"})
    assert entry.status_code == 200 and entry.json()["content_text"] == poison.decode()


#: stored content that parses as JSON but has no RFC 8785 form: a response cannot carry it as JSON
#: (a lone surrogate breaks the encoder; NaN and the infinities would silently become null)
NO_CANONICAL_FORM = ('{"a":"\\udc00"}', '["\\ud800"]', "NaN", "Infinity", "-Infinity", "1e999",
                     '{"x":[NaN]}', "9007199254740993")


def _poison(api: Api, case: str, text: str) -> int:
    """`text` stored as an entry's content through the engine, as `caseledger append --content-file` does."""
    with _opened(api) as ledger:
        return ledger.appender.append("acme", NewEntry(kind="interaction", case=case, actor="user:victim",
                                                       channel="chat", content=text.encode())).seq


def test_stored_content_without_a_canonical_json_form_is_read_as_text(api: Api) -> None:
    """A lone surrogate, NaN, Infinity or 1e999 stored as content never makes its case unreadable, and
    no number is turned into null: the content comes back as the text it is."""
    victim = api.client("acme", "agent", "victim")
    for number, text in enumerate(NO_CANONICAL_FORM):
        seq = _poison(api, f"POISON-NAN-{number}", text)
        timeline = victim.get(f"/v1/cases/POISON-NAN-{number}/timeline")
        assert timeline.status_code == 200, (text, timeline.text[:300])
        [entry] = timeline.json()["entries"]
        assert "content" not in entry and entry["content_text"] == text
        single = victim.get(f"/v1/entries/{seq}", params={"content": "true"})
        assert single.status_code == 200, (text, single.text[:300])
        assert "content" not in single.json() and single.json()["content_text"] == text


def test_cli_read_of_stored_content_without_a_canonical_json_form_does_not_crash(api: Api) -> None:
    env = env_for(api.settings) | {"PYTHONPATH": str(ROOT)}
    for number, text in enumerate(NO_CANONICAL_FORM):
        seq = _poison(api, f"POISON-CLI-{number}", text)
        read = subprocess.run([sys.executable, "-m", "api.cli", "read", "--tenant", "acme", "--seq", str(seq)],
                              env=env, capture_output=True, text=True, timeout=120)
        assert read.returncode == 0 and "Traceback" not in read.stderr, (text, read.stderr[-500:])
        shown = json.loads(read.stdout)
        assert "content" not in shown and shown["content_text"] == text


def test_occurred_at_at_the_edges_of_the_calendar_is_422(api: Api) -> None:
    agent = api.client("acme", "agent", "calendar")
    for moment in ("9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+12:00"):
        response = agent.post("/v1/interactions", json=interaction("CAL-1") | {"occurred_at": moment})
        assert response.status_code == 422, response.text
        assert "occurred_at" in response.text


def test_404_for_not_yours_and_for_missing_are_identical(api: Api) -> None:
    owner = api.client("acme", "agent", "owner-404")
    other = api.client("acme", "agent", "other-404")
    seq = owner.post("/v1/interactions", json=interaction("HIDDEN-1")).json()["seq"]
    missing = 10**9
    hidden, absent = other.get(f"/v1/entries/{seq}"), other.get(f"/v1/entries/{missing}")
    assert hidden.status_code == absent.status_code == 404
    assert hidden.json()["detail"].replace(str(seq), "N") == absent.json()["detail"].replace(str(missing), "N")
    assert hidden.json().keys() == absent.json().keys()
    hidden_case, absent_case = other.get("/v1/cases/HIDDEN-1/timeline"), other.get("/v1/cases/NOPE-1/timeline")
    assert hidden_case.json()["detail"].replace("HIDDEN-1", "X") == absent_case.json()["detail"].replace("NOPE-1", "X")


def test_concurrent_checkpoints_at_a_fresh_size_all_succeed_once(api: Api) -> None:
    writer = api.client("acme", "supervisor", "sam")
    assert writer.post("/v1/interactions", json=interaction("CP-1")).status_code == 201
    statuses: list[int] = []
    notes: list[str] = []
    receipts: list[Any] = []
    lock = threading.Lock()
    start = threading.Barrier(32)
    token = api.auth("acme", "auditor", "audrey")

    def fetch(index: int) -> None:
        with httpx.Client(base_url=api.url, headers=token, timeout=60) as client:
            start.wait()
            response = client.get("/v1/checkpoint")
            with lock:
                statuses.append(response.status_code)
                notes.append(response.text)

    def receipt() -> None:
        start.wait()
        with _opened(api) as ledger:
            made = ledger.checkpoints.receipt("acme", 0)
        with lock:
            receipts.append(made)

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(28)]
    threads += [threading.Thread(target=receipt) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert statuses == [200] * 28
    assert len(set(notes)) == 1 and len(receipts) == 4
    assert {r.checkpoint for r in receipts} == set(notes)
    size = int(notes[0].split("\n")[1])
    with _opened(api) as ledger:
        assert [s for s, _ in ledger.checkpoints.history("acme")].count(size) == 1


def test_json_content_is_stored_alike_by_http_and_jsonl(api: Api) -> None:
    agent = api.client("acme", "agent", "faces")
    seq_http = agent.post("/v1/interactions", json=interaction("FACES-1") | {"content": {"b": 1, "a": 2}}).json()["seq"]
    line = json.dumps({"kind": "interaction", "case": "FACES-2", "channel": "chat", "content": {"b": 1, "a": 2}})
    [(_, entry)] = list(jsonl_entries(line.encode()))
    with _opened(api) as ledger:
        seq_jsonl = ledger.appender.append("acme", entry).seq
        stored = [ledger.reads.entry("acme", seq).content for seq in (seq_http, seq_jsonl)]
    assert stored == [b'{"a":2,"b":1}', b'{"a":2,"b":1}']


class _opened:
    """The running server's ledger opened a second time, as another worker would."""

    def __init__(self, api: Api) -> None:
        self._ledger = Ledger.open(api.settings)

    def __enter__(self) -> Ledger:
        return self._ledger

    def __exit__(self, *exc: object) -> None:
        self._ledger.close()
