"""Share links (DESIGN §8) on SQLite and PostgreSQL: their entries, a token stored nowhere, counted
downloads, expiry, revocation, hostile tokens, other tenants and the race for the last download."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from ledger.appender import NewEntry
from ledger.connections import reading, writing
from ledger.errors import Conflict, Gone, InvalidInput, LedgerError, NotFound
from ledger.repository.base import tables
from ledger.service import Ledger
from ledger.settings import Settings
from ledger.shares import (
    MAX_EXPIRES_IN,
    SHARE_ACTOR,
    NewShare,
    Redeemed,
    ShareGone,
    ShareInfo,
    Shares,
)
from tests.conftest import TEST_MASTER_KEY
from verification.entry import format_time, utc_now

ROOT = Path(__file__).resolve().parents[2]
#: the injected wall clock starts here (2027-01-15T08:00:00Z)
T0 = 1_800_000_000.0
CASE = "case-7"
ALICE = "user:alice"


class Clock:
    """An injected `now` the tests move by hand."""

    def __init__(self) -> None:
        self.value = T0

    def __call__(self) -> float:
        return self.value


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def shares(ledger: Ledger, clock: Clock) -> Shares:
    ledger.tenants.create("acme")
    ledger.tenants.create("globex")
    return Shares(ledger.engine, ledger.tenants, ledger.appender, utc_now, now=clock)


def _document(ledger: Ledger, tenant: str = "acme", case: str | None = CASE) -> str:
    """A documents row, as an upload leaves it. The entry it indexes stands in for a `document` entry
    (those are made by uploading a file, `ledger.documents`): shares read only the row."""
    appended = ledger.appender.append(tenant, NewEntry(kind="interaction", actor=ALICE, case=case, channel="api",
                                                       content=b"stands in for a document"))
    document_id = str(uuid.uuid4())
    with writing(ledger.engine) as conn, conn.begin():
        conn.execute(insert(tables.D).values(document_id=document_id, log_id=ledger.tenants.get(tenant).log_id,
                                             seq=appended.seq, case_id=case, size=18,
                                             created_at=appended.header["time"]))
    return document_id


def _share(shares: Shares, document_id: str, tenant: str = "acme", **given: Any) -> NewShare:
    args: dict[str, Any] = {"actor": ALICE, "recipient": "cust:4711", "expires_in": 3600, "max_downloads": 3,
                            "purpose": "statement Q3"} | given
    return shares.create(tenant, document_id, **args)


def _headers(ledger: Ledger, tenant: str = "acme") -> list[dict[str, Any]]:
    return [entry.header for entry in ledger.reads.headers(tenant, limit=1000)]


def _rows(ledger: Ledger, table: Any) -> list[Any]:
    with reading(ledger.engine) as conn:
        return list(conn.execute(select(table)).all())


def _downloads(ledger: Ledger, share_id: str) -> int:
    with reading(ledger.engine) as conn:
        return int(conn.execute(select(tables.SH.c.downloads).where(tables.SH.c.share_id == share_id)).scalar_one())


# ---------------------------------------------------------------------------- create, list, get, revoke


def test_create_list_get_and_revoke_each_leave_their_entry(ledger: Ledger, shares: Shares, clock: Clock) -> None:
    document_id = _document(ledger)
    made = _share(shares, document_id, max_downloads=2)
    share = made.share
    assert len(made.token) == 43 and share.document_id == document_id
    assert (share.recipient, share.purpose, share.created_by) == ("cust:4711", "statement Q3", ALICE)
    assert share.expires_at == format_time(datetime.fromtimestamp(T0 + 3600, UTC))
    assert share.expires_at == "2027-01-15T09:00:00.000000Z"
    assert (share.max_downloads, share.downloads, share.downloads_left, share.state) == (2, 0, 2, "active")
    assert (share.revoked_at, share.revoked_by) == (None, None)
    assert shares.get("acme", share.share_id) == share
    assert shares.list("acme", document_id) == [share]

    created = _headers(ledger)[-1]
    assert (created["kind"], created["actor"], created["case"], created["channel"]) == ("share", ALICE, CASE, "api")
    assert created["meta"] == {"action": "create", "share": share.share_id, "document": document_id,
                               "expires_at": share.expires_at, "max_downloads": 2, "recipient": "cust:4711",
                               "purpose": "statement Q3"}
    assert share.created_at == created["time"]

    revoked = shares.revoke("acme", share.share_id, actor="user:bob")
    assert (revoked.state, revoked.revoked_by) == ("revoked", "user:bob")
    assert revoked.revoked_at is not None
    assert shares.get("acme", share.share_id) == revoked
    assert shares.list("acme", document_id) == [revoked]
    entry = _headers(ledger)[-1]
    assert (entry["kind"], entry["actor"], entry["case"], entry["channel"]) == ("share", "user:bob", CASE, "api")
    assert entry["meta"] == {"action": "revoke", "share": share.share_id, "document": document_id}

    size = len(_headers(ledger))
    with pytest.raises(Conflict):
        shares.revoke("acme", share.share_id, actor="user:bob")
    assert len(_headers(ledger)) == size, "a refused revocation must not be logged"


def test_a_share_without_purpose_and_several_shares_listed_oldest_first(ledger: Ledger, shares: Shares) -> None:
    document_id = _document(ledger)
    other_document = _document(ledger, case=None)
    first = _share(shares, document_id, purpose=None).share
    second = _share(shares, document_id, recipient="cust:9", max_downloads=1).share
    elsewhere = _share(shares, other_document).share
    assert first.purpose is None
    assert _headers(ledger)[-3]["meta"]["purpose"] is None
    assert _headers(ledger)[-1]["case"] is None
    assert [s.share_id for s in shares.list("acme", document_id)] == [first.share_id, second.share_id]
    assert shares.list("acme", other_document) == [elsewhere]
    assert shares.list("acme", _document(ledger)) == []


def test_share_info_as_dict_is_everything_but_the_token(ledger: Ledger, shares: Shares) -> None:
    made = _share(shares, _document(ledger))
    out = made.share.as_dict()
    assert set(out) == {"share_id", "document_id", "recipient", "purpose", "created_by", "created_at", "expires_at",
                        "max_downloads", "downloads", "downloads_left", "revoked_at", "revoked_by", "state"}
    assert made.token not in repr(out) and made.token not in repr(made.share)


def test_the_token_is_stored_nowhere_only_its_hash(ledger: Ledger, shares: Shares) -> None:
    made = _share(shares, _document(ledger))
    raw = base64.urlsafe_b64decode(made.token + "=")
    assert len(raw) == 32
    [row] = _rows(ledger, tables.SH)
    assert bytes(row.token_hash) == hashlib.sha256(raw).digest()
    needles = (made.token.encode(), raw, raw.hex().encode(), base64.b64encode(raw).rstrip(b"="))
    for name in vars(tables):
        table = getattr(tables, name)
        if name.startswith("_") or not hasattr(table, "columns"):
            continue
        for stored in _rows(ledger, table):
            text = b"".join(bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode() for v in stored)
            assert not any(needle in text for needle in needles), f"the token is stored in {table.name}"


# ---------------------------------------------------------------------------- redeem


def test_redeem_counts_each_download_then_the_share_is_used_up(ledger: Ledger, shares: Shares) -> None:
    document_id = _document(ledger)
    made = _share(shares, document_id, max_downloads=2)
    first = shares.redeem(made.token)
    assert isinstance(first, Redeemed)
    assert (first.tenant, first.document_id, first.case) == ("acme", document_id, CASE)
    assert (first.share.downloads, first.share.downloads_left, first.share.state) == (1, 1, "active")
    second = shares.redeem(made.token)
    assert (second.share.downloads, second.share.downloads_left, second.share.state) == (2, 0, "used-up")
    with pytest.raises(ShareGone) as gone:
        shares.redeem(made.token)
    assert isinstance(gone.value, Gone), "the API answers Gone with 410"
    assert gone.value.code == "gone" and gone.value.fields["state"] == "used-up"
    assert "used up" in str(gone.value)
    assert _downloads(ledger, made.share.share_id) == 2
    assert shares.get("acme", made.share.share_id).state == "used-up"


def test_redeem_writes_no_entry_and_its_access_entry_appends(ledger: Ledger, shares: Shares) -> None:
    document_id = _document(ledger)
    made = _share(shares, document_id, max_downloads=1)
    size = len(_headers(ledger))
    redeemed = shares.redeem(made.token)
    assert len(_headers(ledger)) == size, "redeem counts only: the caller appends the access entry"
    entry = redeemed.access_entry()
    ledger.appender.append(redeemed.tenant, entry)
    header = _headers(ledger)[-1]
    assert (header["kind"], header["actor"], header["case"], header["channel"]) == ("access", SHARE_ACTOR, CASE,
                                                                                   "api")
    assert header["meta"] == {"action": "download", "share": made.share.share_id, "document": document_id,
                              "recipient": "cust:4711", "download": 1}


def test_a_share_expires_at_its_deadline(ledger: Ledger, shares: Shares, clock: Clock) -> None:
    made = _share(shares, _document(ledger), expires_in=60, max_downloads=5)
    assert made.share.expires_at == "2027-01-15T08:01:00.000000Z"
    clock.value = T0 + 59.999
    assert shares.redeem(made.token).share.downloads == 1
    clock.value = T0 + 60
    with pytest.raises(ShareGone) as gone:
        shares.redeem(made.token)
    assert gone.value.fields["state"] == "expired" and "expired" in str(gone.value)
    assert _downloads(ledger, made.share.share_id) == 1
    assert shares.get("acme", made.share.share_id).state == "expired"
    assert shares.get("acme", made.share.share_id).downloads_left == 4


def test_a_revoked_share_is_gone(ledger: Ledger, shares: Shares) -> None:
    made = _share(shares, _document(ledger), max_downloads=2)
    shares.redeem(made.token)
    shares.revoke("acme", made.share.share_id, actor=ALICE)
    with pytest.raises(ShareGone) as gone:
        shares.redeem(made.token)
    assert gone.value.fields["state"] == "revoked" and "revoked" in str(gone.value)
    assert _downloads(ledger, made.share.share_id) == 1


def test_revoked_wins_over_used_up_and_expired(ledger: Ledger, shares: Shares, clock: Clock) -> None:
    made = _share(shares, _document(ledger), max_downloads=1, expires_in=60)
    shares.redeem(made.token)
    shares.revoke("acme", made.share.share_id, actor=ALICE)
    clock.value = T0 + 3600
    with pytest.raises(ShareGone) as gone:
        shares.redeem(made.token)
    assert gone.value.fields["state"] == "revoked"


def _other_spelling(token: str) -> str:
    """The same 32 bytes with the last character's two unused bits set: a non-canonical spelling."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(token[-1])
    return token[:-1] + alphabet[last | 0b11]


def _malformed(token: str) -> list[Any]:
    return [
        "",
        token[:-1],                             # 42 characters
        token + "A",                            # 44 characters
        token + "=",                            # padded
        token[:-2] + "==",                      # padding inside the 43
        token[:-1] + "+",                       # the standard alphabet, not base64url
        "/" + token[1:],
        token[:-1] + "é",                       # non-ASCII
        "０" + token[1:],                       # a fullwidth digit
        "٣" + token[1:],                        # an Arabic-Indic digit
        token[:-1] + "\n",
        token + "\n",
        " " + token[1:],
        token[:20] + "\x00" + token[21:],
        token.encode(),                         # not a string at all
        None,
        "A" * 10_000,
        _other_spelling(token),                 # the same bytes, spelled differently
    ]


def test_unknown_and_malformed_tokens_are_not_found(ledger: Ledger, shares: Shares) -> None:
    made = _share(shares, _document(ledger), max_downloads=1)
    unknown = base64.urlsafe_b64encode(b"\x01" * 32).rstrip(b"=").decode()
    assert _other_spelling(made.token) != made.token
    for token in [unknown, *_malformed(made.token)]:
        with pytest.raises(LedgerError) as refused:
            shares.redeem(token)
        assert type(refused.value) is NotFound, f"{token!r}: {refused.value!r}"
    assert _downloads(ledger, made.share.share_id) == 0
    assert shares.redeem(made.token).share.downloads == 1, "the real token still opens the share"


# ---------------------------------------------------------------------------- tenants and unknown ids


def test_another_tenants_document_and_share_are_not_found(ledger: Ledger, shares: Shares) -> None:
    document_id = _document(ledger, "acme")
    made = _share(shares, document_id)
    size = len(_headers(ledger, "globex"))
    with pytest.raises(NotFound):
        _share(shares, document_id, tenant="globex")
    with pytest.raises(NotFound):
        shares.list("globex", document_id)
    with pytest.raises(NotFound):
        shares.get("globex", made.share.share_id)
    with pytest.raises(NotFound):
        shares.revoke("globex", made.share.share_id, actor=ALICE)
    assert shares.get("acme", made.share.share_id).state == "active"
    assert len(_headers(ledger, "globex")) == size
    assert len(_rows(ledger, tables.SH)) == 1
    # the token itself works whoever presents it: it is the capability, and names its tenant
    assert shares.redeem(made.token).tenant == "acme"


def test_unknown_documents_and_shares_are_not_found(ledger: Ledger, shares: Shares) -> None:
    document_id = _document(ledger)
    size = len(_headers(ledger))
    for bad in (str(uuid.uuid4()), "", "x" * 10_000, document_id.upper()):
        with pytest.raises(NotFound):
            _share(shares, bad)
        with pytest.raises(NotFound):
            shares.list("acme", bad)
        with pytest.raises(NotFound):
            shares.get("acme", bad)
        with pytest.raises(NotFound):
            shares.revoke("acme", bad, actor=ALICE)
    with pytest.raises(NotFound):
        _share(shares, document_id, tenant="initech")
    assert len(_headers(ledger)) == size and _rows(ledger, tables.SH) == []


# ---------------------------------------------------------------------------- bounds


_VALID: dict[str, list[Any]] = {
    "expires_in": [60, 61, 86_400, MAX_EXPIRES_IN],
    "max_downloads": [1, 2, 999, 1000],
    "recipient": ["r", "cust:4711", "a" * 128, "A-Z_0.9:x+y", "pseud:+-._"],
    "purpose": [None, "p", "p" * 64, "statement Q3: 2026-09", "a b_c.d:e-f"],
}
_INVALID: dict[str, list[Any]] = {
    "expires_in": [59, 0, -60, MAX_EXPIRES_IN + 1, 2**63, 60.0, "3600", True, None],
    "max_downloads": [0, -1, 1001, 10**9, 1.0, "1", True, None],
    "recipient": ["", "a" * 129, "alice@example.com", "@", "bob smith", "名前", "cust\n", "cust/1", "cust\x00",
                  "ｃｕｓｔ", None, 4711],
    "purpose": ["", "p" * 65, "line\nbreak", "é", "<script>", "a/b", "tab\t", 3],
}


@pytest.mark.parametrize(("field", "value"), [(f, v) for f, values in _VALID.items() for v in values])
def test_values_within_bounds_are_accepted(ledger: Ledger, shares: Shares, field: str, value: Any) -> None:
    made = _share(shares, _document(ledger), **{field: value})
    stored = shares.get("acme", made.share.share_id)
    if field == "expires_in":
        assert stored.expires_at == format_time(datetime.fromtimestamp(T0 + value, UTC))
    else:
        assert getattr(stored, field) == value


@pytest.mark.parametrize(("field", "value"), [(f, v) for f, values in _INVALID.items() for v in values])
def test_values_out_of_bounds_are_refused(ledger: Ledger, shares: Shares, field: str, value: Any) -> None:
    document_id = _document(ledger)
    size = len(_headers(ledger))
    with pytest.raises(InvalidInput) as refused:
        _share(shares, document_id, **{field: value})
    if field == "recipient" and isinstance(value, str) and "@" in value:
        assert "pseudonymous" in str(refused.value)
    assert len(_headers(ledger)) == size and _rows(ledger, tables.SH) == []


def test_an_actor_the_log_refuses_neither_shares_nor_revokes(ledger: Ledger, shares: Shares) -> None:
    document_id = _document(ledger)
    size = len(_headers(ledger))
    with pytest.raises(InvalidInput):
        _share(shares, document_id, actor="alice")
    assert len(_headers(ledger)) == size and _rows(ledger, tables.SH) == []
    made = _share(shares, document_id)
    with pytest.raises(InvalidInput):
        shares.revoke("acme", made.share.share_id, actor="nobody at all")
    assert shares.get("acme", made.share.share_id).state == "active"


# ---------------------------------------------------------------------------- the last download


def _race(shares: Shares, token: str, threads: int) -> Counter[str]:
    """`threads` redeems of `token` released at once: how many were counted, gone or failed."""
    barrier = threading.Barrier(threads)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def redeem() -> None:
        barrier.wait()
        try:
            shares.redeem(token)
            outcome = "counted"
        except ShareGone as gone:
            outcome = str(gone.fields["state"])
        except Exception as exc:  # anything else is a failure the assertions name
            outcome = repr(exc)
        with lock:
            outcomes[outcome] += 1

    workers = [threading.Thread(target=redeem) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    return outcomes


@pytest.mark.parametrize("round_", range(5))
def test_concurrent_redeems_of_the_last_download_let_exactly_one_through(ledger: Ledger, shares: Shares,
                                                                         round_: int) -> None:
    made = _share(shares, _document(ledger), max_downloads=1)
    assert _race(shares, made.token, 8) == Counter({"counted": 1, "used-up": 7})
    assert _downloads(ledger, made.share.share_id) == 1


def test_concurrent_redeems_count_exactly_max_downloads(ledger: Ledger, shares: Shares) -> None:
    made = _share(shares, _document(ledger), max_downloads=3)
    assert _race(shares, made.token, 10) == Counter({"counted": 3, "used-up": 7})
    assert _downloads(ledger, made.share.share_id) == 3


def test_two_processes_race_for_the_last_download(ledger: Ledger, shares: Shares, settings: Settings) -> None:
    made = _share(shares, _document(ledger), max_downloads=1)
    start = time.time() + 3.0  # both processes are up and connected by then
    processes = [subprocess.Popen([sys.executable, "-m", "tests.ledger.test_shares", settings.db_url,
                                   str(settings.data_dir), made.token, str(start), "4"],
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    outcomes: Counter[str] = Counter()
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        outcomes.update(out.split())
    assert outcomes == Counter({"counted": 1, "used-up": 7})
    assert _downloads(ledger, made.share.share_id) == 1


def _redeem_in_this_process(url: str, data_dir: str, token: str, start: float, threads: int) -> None:
    """The other side of `test_two_processes_race_for_the_last_download`: one process, its own engine."""
    settings = Settings(data_dir=Path(data_dir), database_url=url, master_key=TEST_MASTER_KEY)
    ledger = Ledger.open(settings)
    try:
        shares = Shares(ledger.engine, ledger.tenants, ledger.appender, utc_now)
        with reading(ledger.engine) as conn:  # connect before the start, so both processes race evenly
            conn.execute(select(1)).all()
        time.sleep(max(start - time.time(), 0))
        for outcome, count in _race(shares, token, threads).items():
            sys.stdout.write(f"{outcome}\n" * count)
    finally:
        ledger.close()



def test_share_info_is_frozen(ledger: Ledger, shares: Shares) -> None:
    share = _share(shares, _document(ledger)).share
    assert isinstance(share, ShareInfo)
    with pytest.raises(AttributeError):
        share.downloads = 9  # type: ignore[misc]


if __name__ == "__main__":
    _redeem_in_this_process(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))
