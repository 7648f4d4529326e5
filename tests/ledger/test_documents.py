"""Documents in the engine (DESIGN §8), on SQLite and PostgreSQL: a streamed upload into the blob store,
its entry and receipt, hostile names and media types, limits, tampered blobs, and crash recovery."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.appender import NewEntry
from ledger.documents import NewDocument, safe_name, sniff_media_type
from ledger.envelope import segmented_size
from ledger.errors import DecryptionError, Gone, InvalidInput, NotFound, TooLarge
from ledger.service import Ledger
from tests.conftest import env_for
from verification import Trust
from verification.document_receipt import check_document_name, verify_file
from verification.errors import ProofError

ROOT = Path(__file__).resolve().parents[2]

PDF = b"%PDF-1.7\n" + hashlib.sha256(b"statement").digest() * 5000  # ~160 KiB, three segments


@pytest.fixture
def docs(ledger: Ledger) -> Ledger:
    ledger.tenants.create("acme")
    ledger.tenants.create("globex")
    return ledger


def _chunks(data: bytes, size: int = 10_000) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i:i + size]


def _upload(ledger: Ledger, data: bytes = PDF, tenant: str = "acme", **fields: object) -> str:
    doc = NewDocument(**({"case": "C-1", "title": "Statement", "name": "statement.pdf",
                          "declared_type": "application/pdf", "subject_ref": "CRM-1"} | fields))  # type: ignore[arg-type]
    return ledger.documents.upload(tenant, doc, _chunks(data)).document_id


def _trust(ledger: Ledger, tenant: str = "acme") -> Trust:
    return Trust.of(ledger.tenants.info(tenant).vkey)


def test_an_upload_is_a_document_entry_whose_receipt_verifies_the_file(docs: Ledger) -> None:
    document_id = _upload(docs)
    receipt = docs.documents.receipt("acme", document_id)
    header = receipt.receipt.header
    assert header["kind"] == "document" and header["id"] == document_id and header["meta"] == {"size": len(PDF)}
    assert header["ct"] == docs.documents.blobs.sha256(document_id)  # ct names the stored blob
    assert header["commit"] == hashlib.sha256(bytes.fromhex(receipt.salt) + PDF).hexdigest()
    assert (receipt.name, receipt.media_type, receipt.size) == ("statement.pdf", "application/pdf", len(PDF))
    assert docs.documents.blobs.size(document_id) == segmented_size(len(PDF))
    result = verify_file(receipt.to_json(), _trust(docs), _chunks(PDF))
    assert result["valid"] is True
    with pytest.raises(ProofError):
        verify_file(receipt.to_json(), _trust(docs), [PDF[:-1] + bytes([PDF[-1] ^ 1])])
    # nothing personal in the clear: the header holds neither the name, the title nor the salt
    clear = json.dumps(header)
    assert "statement" not in clear.lower() and receipt.salt not in clear and "CRM-1" not in clear


def test_the_stored_file_streams_back_decrypted(docs: Ledger) -> None:
    document_id = _upload(docs)
    info, stream = docs.documents.stream("acme", document_id)
    assert info.size == len(PDF) and b"".join(stream) == PDF
    stored = b"".join(docs.documents.blobs.open(document_id))
    assert PDF[:64] not in stored  # encrypted at rest


def test_an_empty_file_is_a_document_too(docs: Ledger) -> None:
    document_id = _upload(docs, b"", name="empty.txt", declared_type="text/plain")
    receipt = docs.documents.receipt("acme", document_id)
    assert receipt.size == 0 and receipt.receipt.header["meta"] == {"size": 0}
    assert b"".join(docs.documents.stream("acme", document_id)[1]) == b""
    assert verify_file(receipt.to_json(), _trust(docs), [])["valid"] is True


@pytest.mark.parametrize(("raw", "stored"), [
    ("../../etc/passwd", "passwd"),
    ("/absolute/path/report.pdf", "report.pdf"),
    ("C:\\Users\\x\\scan.png", "scan.png"),
    ("nul\x00byte.pdf", "nulbyte.pdf"),
    ("bell\x07and\x1b[31mescape.txt", "belland[31mescape.txt"),
    ("\u202egnp.exe", "gnp.exe"),  # a right-to-left override hiding the real extension
    ("..", "document"),
    ("", "document"),
    ("...hidden", "hidden"),
    ("a" * 300 + ".pdf", "a" * 251 + ".pdf"),
    ("é" * 200 + ".pdf", "é" * 125 + ".pdf"),
])
def test_hostile_file_names_are_stored_sanitised(docs: Ledger, raw: str, stored: str) -> None:
    assert safe_name(raw) == stored
    assert check_document_name(stored) == stored
    assert len(stored.encode()) <= 255
    document_id = _upload(docs, b"plain text", name=raw, declared_type="text/plain")
    assert docs.documents.receipt("acme", document_id).name == stored


@pytest.mark.parametrize(("head", "declared", "recorded"), [
    (b"%PDF-1.4 ...", "image/png", "application/pdf"),          # the magic bytes win over the claim
    (b"\x89PNG\r\n\x1a\n....", "application/pdf", "image/png"),
    (b"<html><script>alert(1)</script>", "text/html", "text/plain"),  # never recorded as a page to render
    (b"<svg onload=alert(1)>", "image/svg+xml", "text/plain"),
    (b"PK\x03\x04....", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
     "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    (b"PK\x03\x04....", "application/pdf", "application/zip"),
    (b"just words", "text/csv", "text/csv"),
    (b"just words", None, "text/plain"),
    (b"\x00\x01\x02\xff", None, "application/octet-stream"),
    (b"\x00\x01\x02\xff", "application/pdf", "application/octet-stream"),  # claims magic it does not have
    (b"words", "not a media type", "text/plain"),
])
def test_the_media_type_is_sniffed_and_recorded(docs: Ledger, head: bytes, declared: str | None,
                                                recorded: str) -> None:
    assert sniff_media_type(head, declared) == recorded
    document_id = _upload(docs, head, declared_type=declared)
    assert docs.documents.receipt("acme", document_id).media_type == recorded


def test_an_upload_over_the_limit_stops_and_leaves_nothing(docs: Ledger) -> None:
    docs.documents.max_bytes = 100_000
    size_before = docs.tenants.info("acme").size
    with pytest.raises(TooLarge):
        _upload(docs, os.urandom(150_000))
    assert docs.tenants.info("acme").size == size_before
    assert docs.documents.blobs.orphans(lambda _: False) == []  # not even a temporary file
    assert _upload(docs, os.urandom(100_000))  # at the limit is fine


def test_a_failing_upload_stream_leaves_nothing(docs: Ledger) -> None:
    def broken() -> Iterator[bytes]:
        yield b"%PDF-1.7 part"
        raise ConnectionResetError("the client went away")

    with pytest.raises(ConnectionResetError):
        docs.documents.upload("acme", NewDocument(case="C-1", title="t", name="x.pdf"), broken())
    assert docs.tenants.info("acme").size == 0
    assert docs.documents.blobs.orphans(lambda _: False) == []


@pytest.mark.parametrize("fields", [{"title": ""}, {"title": "x" * 201}, {"title": "bad\x00title"}, {"case": ""},
                                    {"case": "has space"}, {"actor": "nobody"}, {"channel": "pigeon"}])
def test_bad_fields_are_refused_before_the_file_is_read(docs: Ledger, fields: dict[str, str]) -> None:
    read: list[bytes] = []

    def watched() -> Iterator[bytes]:
        read.append(b"x")
        yield b"x"

    doc = NewDocument(**({"case": "C-1", "title": "T", "name": "a.txt"} | fields))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        docs.documents.upload("acme", doc, watched())
    assert read == [] and docs.tenants.info("acme").size == 0


def test_documents_are_not_appended_without_their_file(docs: Ledger) -> None:
    with pytest.raises(InvalidInput, match="uploading the file"):
        docs.appender.append("acme", NewEntry(kind="document", content=b"%PDF-1.7"))


def test_another_tenants_document_is_not_found(docs: Ledger) -> None:
    document_id = _upload(docs)
    for call in (docs.documents.receipt, docs.documents.info, docs.documents.stream):
        with pytest.raises(NotFound):
            call("globex", document_id)
    with pytest.raises(NotFound):
        docs.documents.receipt("acme", "00000000-0000-4000-8000-000000000000")


@pytest.mark.parametrize("damage", ["flip", "truncate", "extend", "swap"])
def test_a_damaged_blob_fails_to_decrypt(docs: Ledger, damage: str) -> None:
    document_id = _upload(docs)
    path = docs.documents.blobs.path(document_id)
    blob = bytearray(path.read_bytes())
    segment = 65_536 + 16
    if damage == "flip":
        blob[8 + segment + 100] ^= 1
    elif damage == "truncate":
        del blob[-1]
    elif damage == "extend":
        blob += b"\x00"
    else:
        first, second = blob[8:8 + segment], blob[8 + segment:8 + 2 * segment]
        blob[8:8 + 2 * segment] = second + first
    path.chmod(0o600)
    path.write_bytes(bytes(blob))
    with pytest.raises(DecryptionError):
        b"".join(docs.documents.stream("acme", document_id)[1])


def test_destroying_the_subjects_keys_makes_the_document_unreadable_but_its_receipt_verifiable(docs: Ledger) -> None:
    document_id = _upload(docs)
    before = docs.documents.receipt("acme", document_id).to_json()
    docs.data_keys.destroy("acme", docs.subjects.handle("acme", "CRM-1", create=False))
    with pytest.raises(Gone, match="erased"):
        docs.documents.stream("acme", document_id)
    assert docs.documents.locate("acme", document_id).size == len(PDF)  # what the header says stays readable
    assert verify_file(before, _trust(docs), _chunks(PDF))["valid"] is True  # what was handed out still proves


def test_recovery_indexes_an_entry_left_unindexed_and_removes_a_blob_without_entry(docs: Ledger) -> None:
    document_id = _upload(docs)
    with docs.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM documents")  # as if the process died after the entry's commit
    with docs.documents.blobs.writer("11111111-1111-4111-8111-111111111111") as blob:
        blob.write(b"half")
        blob.commit()  # as if it died after the blob's rename, before the entry
    done = docs.documents.recover()
    assert done == {"indexed": 1, "removed_blobs": ["11111111-1111-4111-8111-111111111111"]}
    assert docs.documents.receipt("acme", document_id).size == len(PDF)
    assert docs.documents.recover() == {"indexed": 0, "removed_blobs": []}


def test_verify_log_accepts_documents_whose_ct_names_their_blob(docs: Ledger) -> None:
    _upload(docs)
    _upload(docs, b"")
    assert docs.logcheck.verify("acme")["size"] == 2


_CHILD = """
import sys
from ledger.documents import NewDocument
from ledger.service import Ledger
from ledger.settings import Settings

ledger = Ledger.open(Settings())

def chunks():
    while True:
        piece = sys.stdin.buffer.read(65536)
        if not piece:
            return
        yield piece

ledger.documents.upload("acme", NewDocument(case="C-1", title="T", name="big.bin"), chunks())
print("committed", flush=True)
"""


def test_a_sigkill_during_an_upload_leaves_no_entry_and_nothing_served(docs: Ledger) -> None:
    env = env_for(docs.settings) | {"PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD], env=env, cwd=ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdin is not None
    try:
        child.stdin.write(os.urandom(3 * 65536))
        child.stdin.flush()
        deadline = time.monotonic() + 60
        while not list(docs.documents.blobs.root.rglob("*.tmp-*")):  # the temporary blob is being written
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the upload did not start"
            time.sleep(0.02)
        child.kill()
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()  # closes the pipes
    assert docs.tenants.info("acme").size == 0  # no entry
    done = docs.documents.recover()  # the dead writer's lock went with it: its temporary blob is swept
    assert len(done["removed_blobs"]) == 1 and not list(docs.documents.blobs.root.rglob("*"))[1:]


def test_the_index_row_is_written_in_the_entrys_own_transaction(docs: Ledger) -> None:
    """A row written with the entry: if writing it fails, the entry is not written either."""
    seen: list[int] = []

    def index(conn: object, seq: int) -> None:
        seen.append(seq)

    def broken(conn: object, seq: int) -> None:
        raise RuntimeError("the row cannot be written")

    first = docs.appender.append("acme", NewEntry(kind="interaction", channel="chat", with_entry=index))
    assert seen == [first.seq]
    with pytest.raises(RuntimeError):
        docs.appender.append("acme", NewEntry(kind="interaction", channel="chat", with_entry=broken))
    assert docs.tenants.info("acme").size == 1
    document_id = _upload(docs)
    assert docs.documents.locate("acme", document_id).seq == 1
