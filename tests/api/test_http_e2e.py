"""One case end to end over real HTTP: log 100 interactions, read them back, verify what the server
says with the `verification` package alone, and find the access entries the reads left behind."""

from __future__ import annotations

from typing import Any

from ledger.service import Ledger
from tests.api.conftest import Api, interaction
from verification.checkpoint import open_checkpoint, parse_verifier_key
from verification.compact import verify_range
from verification.entry import entry_hash
from verification.merkle import verify_consistency, verify_inclusion

CASE = "E-1001"
CHANNELS = ("phone", "email", "chat")
COUNT = 100
PURPOSE = "complaint review 2024:Q3"


def _all_headers(api: Api, tenant: str) -> list[dict[str, Any]]:
    """Every header of the log, page by page, as an auditor sees them."""
    headers: list[dict[str, Any]] = []
    with api.client(tenant, "auditor", "audrey") as http:
        after = -1
        while True:
            response = http.get("/v1/entries", params={"after": after, "limit": 37})
            assert response.status_code == 200, response.text
            page = response.json()
            headers += [entry["header"] for entry in page["entries"]]
            assert [entry["entry_hash"] for entry in page["entries"]] == [
                entry_hash(entry["header"]).hex() for entry in page["entries"]]
            if page["next_after"] is None:
                return headers
            after = page["next_after"]


def test_a_case_end_to_end(api: Api) -> None:
    origin = api.origin("acme")
    erin = api.client("acme", "agent", "erin")
    receipts = []
    for n in range(COUNT):
        channel = CHANNELS[n % 3]
        body = interaction(CASE, channel, n=n, text=f"contact {n} by {channel}")
        body["meta"] = {"ticket": f"T-{n}"}
        response = erin.post("/v1/interactions", json=body)
        assert response.status_code == 201, response.text
        receipt = response.json()
        assert response.headers["location"] == f"/v1/entries/{receipt['seq']}"
        assert receipt["log"] == origin and receipt["entry_hash"] == entry_hash(receipt["header"]).hex()
        receipts.append(receipt)
    seqs = [receipt["seq"] for receipt in receipts]
    assert seqs == sorted(seqs) and len(set(seqs)) == COUNT

    # a supervisor reads the whole case, decrypted, in log order, each entry hash recomputable
    sam = api.client("acme", "supervisor", "sam", headers={"X-Purpose": PURPOSE})
    timeline = sam.get(f"/v1/cases/{CASE}/timeline")
    assert timeline.status_code == 200, timeline.text
    entries = timeline.json()["entries"]
    assert [entry["seq"] for entry in entries] == seqs
    previous = None
    for n, entry in enumerate(entries):
        header = entry["header"]
        assert entry["entry_hash"] == entry_hash(header).hex() == receipts[n]["entry_hash"]
        assert entry["content"] == {"n": n, "text": f"contact {n} by {CHANNELS[n % 3]}"}
        assert header["channel"] == CHANNELS[n % 3] and header["case"] == CASE
        assert header["actor"] == "user:erin" and header["kind"] == "interaction"
        assert header["meta"] == {"direction": "inbound", "ticket": f"T-{n}"}
        assert header["case_prev"] == previous
        assert f"contact {n}" not in str(header)
        previous = entry["entry_hash"]
    # the agent reads one entry of the case they work on; an auditor with the grant another
    assert erin.get(f"/v1/entries/{seqs[7]}", params={"content": "true"},
                    headers={"X-Purpose": "callback"}).json()["content"]["n"] == 7
    audrey = api.client("acme", "auditor", "audrey", perms=("content",))
    assert audrey.get(f"/v1/entries/{seqs[42]}?content=true").json()["content"]["n"] == 42

    # the signed checkpoint verifies against the published key
    log = sam.get("/v1/log").json()
    verifier = parse_verifier_key(log["vkey"])
    note = sam.get("/v1/checkpoint")
    assert note.headers["content-type"].startswith("text/plain")
    checkpoint = open_checkpoint(note.text, verifier)
    assert checkpoint.origin == origin and checkpoint.size >= seqs[-1] + 1
    size, root = checkpoint.size, checkpoint.root

    # inclusion of several entries at the checkpoint's size, against the checkpoint's root
    for index in (0, 1, 7, 42, 63, 64, COUNT - 1):
        seq = seqs[index]
        proof = sam.get("/v1/proofs/inclusion", params={"seq": seq, "size": size}).json()
        assert proof["log"] == origin and proof["tree_size"] == size and proof["root"] == root.hex()
        assert proof["leaf_hash"] == receipts[index]["entry_hash"]
        verify_inclusion(seq, size, bytes.fromhex(proof["leaf_hash"]), [bytes.fromhex(h) for h in proof["proof"]],
                         root)

    # the tree after the first 10 entries is a prefix of the checkpointed tree
    first = seqs[9] + 1
    consistency = sam.get("/v1/proofs/consistency", params={"first": first, "second": size}).json()
    assert consistency["second_root"] == root.hex()
    verify_consistency(first, size, [bytes.fromhex(h) for h in consistency["proof"]],
                       bytes.fromhex(consistency["first_root"]), root)
    earlier = sam.get("/v1/proofs/inclusion", params={"seq": seqs[3], "size": first}).json()
    assert earlier["root"] == consistency["first_root"]

    # a range proof carries 50 of the case's entries at once
    start, end = seqs[25], seqs[75]
    proven = sam.get("/v1/proofs/range", params={"start": start, "end": end, "size": size}).json()
    assert proven["entry_hashes"] == [receipt["entry_hash"] for receipt in receipts[25:75]]
    verify_range(start, end, size, [bytes.fromhex(h) for h in proven["entry_hashes"]],
                 [bytes.fromhex(h) for h in proven["left"]], [bytes.fromhex(h) for h in proven["right"]], root)

    # every decryption left an access entry, with who, what and why
    access = [header for header in _all_headers(api, "acme") if header["kind"] == "access"]
    assert [(header["actor"], header["meta"]) for header in access] == [
        ("user:sam", {"scope": "case", "case": CASE, "count": COUNT, "seqs": seqs, "purpose": PURPOSE}),
        ("user:erin", {"scope": "entry", "count": 1, "seqs": [seqs[7]], "purpose": "callback"}),
        ("user:audrey", {"scope": "entry", "count": 1, "seqs": [seqs[42]]}),
    ]
    assert all(header["channel"] == "api" and header["case"] is None for header in access)
    assert access[0]["seq"] > seqs[-1]
    # ...and the proofs and headers read since then did not add any
    assert len([h for h in _all_headers(api, "acme") if h["kind"] == "access"]) == len(access)

    ledger = Ledger.open(api.settings)
    try:
        verified = ledger.logcheck.verify("acme")
    finally:
        ledger.close()
    assert verified["ok"] is True and verified["size"] == len(_all_headers(api, "acme"))
    assert verified["checkpoints"] >= 1
