"""`verify_document`: verify any caseledger JSON document by its declared ``type`` and ``v`` (DESIGN §7).

One registry maps each (type, version) to its parser and verifier; a document of a type or
version not in it is refused, never guessed from its members.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from verification.anchor import ANCHOR_RECEIPT_TYPE, ANCHOR_RECEIPT_VERSION, AnchorReceipt, verify_anchor_receipt
from verification.bundle import BUNDLE_TYPE, BUNDLE_VERSION, Bundle
from verification.bundle_verify import verify_bundle
from verification.document_receipt import (
    DOCUMENT_RECEIPT_TYPE,
    DOCUMENT_RECEIPT_VERSION,
    DocumentReceipt,
    verify_document_receipt,
)
from verification.erasure_certificate import (
    ERASURE_CERTIFICATE_TYPE,
    ERASURE_CERTIFICATE_VERSION,
    ErasureCertificate,
    verify_erasure_certificate,
)
from verification.errors import FormatError
from verification.fields import mapping
from verification.proofs import (
    PROOF_VERSION,
    ConsistencyProof,
    InclusionProof,
    RangeProof,
    verify_consistency_proof,
    verify_inclusion_proof,
    verify_range_proof,
)
from verification.receipt import RECEIPT_TYPE, RECEIPT_VERSION, Receipt, verify_receipt
from verification.trust import Trust

__all__ = ["DOCUMENT_TYPES", "verify_document"]

T = TypeVar("T")
Handler = Callable[[Any, Trust, "bytes | None"], dict[str, Any]]


def _handler(parse: Callable[[Any], T], verify: Callable[..., dict[str, Any]]) -> Handler:
    def handle(obj: Any, trust: Trust, root: bytes | None) -> dict[str, Any]:
        return verify(parse(obj), trust, root=root)
    return handle


def _verify_bundle(bundle: Bundle, trust: Trust, *, root: bytes | None = None) -> dict[str, Any]:
    return verify_bundle(bundle, trust, root=root).to_json()


def _verify_certificate(certificate: ErasureCertificate, trust: Trust, *, root: bytes | None = None
                        ) -> dict[str, Any]:
    if root is not None:
        raise FormatError("an erasure certificate is checked against the log's key, not a root")
    return verify_erasure_certificate(certificate, trust)


#: document type -> version -> parse and verify
DOCUMENT_TYPES: dict[str, dict[int, Handler]] = {
    RECEIPT_TYPE: {RECEIPT_VERSION: _handler(Receipt.from_json, verify_receipt)},
    ANCHOR_RECEIPT_TYPE: {ANCHOR_RECEIPT_VERSION: _handler(AnchorReceipt.from_json, verify_anchor_receipt)},
    InclusionProof.TYPE: {PROOF_VERSION: _handler(InclusionProof.from_json, verify_inclusion_proof)},
    ConsistencyProof.TYPE: {PROOF_VERSION: _handler(ConsistencyProof.from_json, verify_consistency_proof)},
    RangeProof.TYPE: {PROOF_VERSION: _handler(RangeProof.from_json, verify_range_proof)},
    DOCUMENT_RECEIPT_TYPE: {
        DOCUMENT_RECEIPT_VERSION: _handler(DocumentReceipt.from_json, verify_document_receipt)},
    BUNDLE_TYPE: {BUNDLE_VERSION: _handler(Bundle.from_json, _verify_bundle)},
    ERASURE_CERTIFICATE_TYPE: {ERASURE_CERTIFICATE_VERSION: _handler(ErasureCertificate.from_json,
                                                                     _verify_certificate)},
}


def verify_document(doc: Any, trust: Trust, *, root: bytes | None = None) -> dict[str, Any]:
    """Parse and verify a document by its ``type`` and ``v``; raise a `VerificationError` subclass if it fails.

    `trust` says which log keys are trusted; `root` (32 bytes) is a tree root trusted out of band
    (for a consistency proof, the root of the second tree; for a receipt, an anchor receipt or a
    document receipt, the root of its checkpoint). A document receipt is checked without its file
    (``file_checked: false``); `verification.document_receipt.verify_file` checks a file too. A
    bundle raises its first failed check (`verification.bundle_verify.verify_bundle` with ``collect=True``
    reports them all).
    """
    obj = mapping(doc, "a caseledger document")
    doc_type = obj.get("type")
    versions = DOCUMENT_TYPES.get(doc_type) if isinstance(doc_type, str) else None
    if versions is None:
        raise FormatError(f"unknown document type {doc_type!r}")
    v = obj.get("v")
    handler = versions.get(v) if type(v) is int else None
    if handler is None:
        raise FormatError(f"unsupported version {v!r} of {doc_type}")
    return handler(obj, trust, root)
