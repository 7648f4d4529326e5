"""Erasure certificates (DESIGN §10): what a person who asked to be forgotten is handed.

A certificate names the log, the request, a digest of the subject's reference, the entries whose
content was erased (their keys destroyed), when, and the receipt of the `erasure` entry that put
the erasure on record. It is signed by the log's key as a C2SP signed note, whose text repeats those
facts line by line::

    caseledger.erasure_certificate/v1
    log <origin>
    request <request id>
    subject <hex HMAC-SHA256(salt, subject reference)>
    erased_at <RFC 3339 time>
    erasure <seq> <entry hash>
    entries <count> <hex SHA-256 of the JCS list of their seqs>

The note's first line is not an origin followed by a tree size, so it can never pass for a
checkpoint. The digest's salt is handed to the requester with the decision and kept nowhere else:
the certificate names the person only to whoever holds both the salt and the reference.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from verification.checkpoint import parse_verifier_key, verify_note
from verification.entry import canonical_json
from verification.errors import FormatError, SignatureError, VerificationError
from verification.fields import hex_hash, mapping, text, type_and_version
from verification.receipt import Receipt, verify_receipt
from verification.trust import Trust

__all__ = ["ERASURE_CERTIFICATE_TYPE", "ERASURE_CERTIFICATE_VERSION", "ErasureCertificate", "certificate_text",
           "entries_digest", "subject_digest", "verify_erasure_certificate"]

ERASURE_CERTIFICATE_TYPE = "caseledger.erasure_certificate"
ERASURE_CERTIFICATE_VERSION = 1
_MAX_ENTRIES = 10_000_000


def subject_digest(salt: bytes, subject_ref: str) -> str:
    """HMAC-SHA256 of the subject's reference (UTF-8) under the requester's salt, hex."""
    return hmac.new(salt, subject_ref.encode("utf-8"), hashlib.sha256).hexdigest()


def entries_digest(seqs: tuple[int, ...]) -> str:
    return hashlib.sha256(canonical_json(list(seqs))).hexdigest()


def certificate_text(log: str, request: str, subject: str, erased_at: str, erasure_seq: int, erasure_hash: str,
                     entries: tuple[int, ...]) -> str:
    """The signed note's text (what the log's key signs)."""
    return (f"{ERASURE_CERTIFICATE_TYPE}/v{ERASURE_CERTIFICATE_VERSION}\nlog {log}\nrequest {request}\n"
            f"subject {subject}\nerased_at {erased_at}\nerasure {erasure_seq} {erasure_hash}\n"
            f"entries {len(entries)} {entries_digest(entries)}\n")


@dataclass(frozen=True)
class ErasureCertificate:
    log: str
    request: str
    subject_digest: str
    erased_at: str
    #: the seqs of the entries whose content was erased, ascending
    entries: tuple[int, ...]
    #: the receipt of the `erasure` entry
    receipt: Receipt
    #: the signed note of `certificate_text`
    note: str
    vkey: str

    def to_json(self) -> dict[str, Any]:
        return {"type": ERASURE_CERTIFICATE_TYPE, "v": ERASURE_CERTIFICATE_VERSION, "log": self.log,
                "request": self.request, "subject_digest": self.subject_digest, "erased_at": self.erased_at,
                "entries": list(self.entries), "erasure_receipt": self.receipt.to_json(), "note": self.note,
                "vkey": self.vkey}

    @classmethod
    def from_json(cls, obj: Any) -> Self:
        doc = mapping(obj, "an erasure certificate")
        type_and_version(doc, ERASURE_CERTIFICATE_TYPE, ERASURE_CERTIFICATE_VERSION)
        raw = doc.get("entries")
        if (not isinstance(raw, list) or len(raw) > _MAX_ENTRIES
                or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in raw)):
            raise FormatError("'entries' must be a list of entry seqs")
        if list(raw) != sorted(set(raw)):
            raise FormatError("'entries' must be ascending, without repeats")
        vkey = text(doc, "vkey")
        parse_verifier_key(vkey)
        return cls(text(doc, "log"), text(doc, "request"), hex_hash(doc, "subject_digest"), text(doc, "erased_at"),
                   tuple(raw), Receipt.from_json(doc.get("erasure_receipt")), text(doc, "note"), vkey)


def verify_erasure_certificate(certificate: ErasureCertificate | Mapping[str, Any], trust: Trust, *,
                               subject_ref: str | None = None, salt: bytes | None = None) -> dict[str, Any]:
    """Check a certificate: its note signed by a trusted key of its log and saying what the fields
    say, its `erasure` entry's receipt, and that entry recording this request as carried out. With
    `subject_ref` and `salt`, also that it is about that subject. Raises `VerificationError`."""
    c = certificate if isinstance(certificate, ErasureCertificate) else ErasureCertificate.from_json(certificate)
    keys = trust.keys_for(c.log)
    key_trusted = bool(keys)
    if not keys:
        if not trust.insecure_embedded_key:
            raise VerificationError(f"key not trusted: no trusted verifier key for {c.log!r}", log=c.log)
        keys = (parse_verifier_key(c.vkey),)
        if keys[0].name != c.log:
            raise SignatureError("the embedded key is not the log's", key_name=keys[0].name)
    body = verify_note(c.note, keys)
    receipt = verify_receipt(c.receipt, trust)
    header = c.receipt.header
    if c.receipt.log != c.log:
        raise VerificationError("the erasure receipt is of another log")
    expected = certificate_text(c.log, c.request, c.subject_digest, c.erased_at, c.receipt.seq, c.receipt.entry_hash,
                                c.entries)
    if body != expected:
        raise SignatureError("the signed text does not say what the certificate's fields say")
    meta = header.get("meta") if isinstance(header, dict) else None
    if (header.get("kind") != "erasure" or not isinstance(meta, dict) or meta.get("request") != c.request
            or meta.get("decision") != "erased"):
        raise VerificationError("the receipt is not of the entry that records this erasure as carried out")
    if not all(seq < c.receipt.seq for seq in c.entries):
        raise VerificationError("an erased entry comes after the erasure")
    result: dict[str, Any] = {"ok": True, "type": ERASURE_CERTIFICATE_TYPE, "log": c.log, "request": c.request,
                              "entries": len(c.entries), "erased_at": c.erased_at,
                              "erasure_seq": c.receipt.seq, "key_trusted": key_trusted and receipt["key_trusted"]}
    if subject_ref is not None or salt is not None:
        if subject_ref is None or salt is None:
            raise FormatError("give both the subject reference and the salt, or neither")
        if not hmac.compare_digest(subject_digest(salt, subject_ref), c.subject_digest):
            raise VerificationError("the certificate is about another subject")
        result["subject_matches"] = True
    return result
