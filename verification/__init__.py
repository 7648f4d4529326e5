"""Offline verification of everything caseledger hands out (DESIGN §7).

Standard library, ``cryptography`` and ``rfc8785`` only, so a client can check receipts and proofs
with this package alone::

    from verification import Trust, verify_document
    verify_document(json.load(f), Trust.of(log_vkey))
"""

from verification import errors
from verification.anchor import (
    AnchorReceipt,
    RoundLeaf,
    RoundTree,
    build_round,
    round_leaf,
    round_leaf_hash,
    verify_anchor_receipt,
)
from verification.bundle import Bundle, BundleEntry, BundleInclusion, BundleManifest, BundleRange
from verification.bundle_result import BundleCheck, BundleResult
from verification.bundle_verify import verify_bundle
from verification.chain import LogVerifier
from verification.checkpoint import (
    Checkpoint,
    NoteVerifier,
    open_checkpoint,
    parse_checkpoint,
    parse_verifier_key,
    verifier_key,
    verify_note,
)
from verification.compact import CompactRange, verify_range
from verification.document_receipt import DocumentReceipt, verify_document_receipt, verify_file
from verification.documents import verify_document
from verification.entry import MAX_JSON_DEPTH, canonical_json, entry_hash, json_depth, parse_header
from verification.erasure_certificate import ErasureCertificate, verify_erasure_certificate
from verification.errors import (
    ChainError,
    FormatError,
    LedgerError,
    ProofError,
    SignatureError,
    VerificationError,
)
from verification.merkle import EMPTY_ROOT, leaf_hash, node_hash, verify_consistency, verify_inclusion
from verification.proofs import (
    ConsistencyProof,
    InclusionProof,
    RangeProof,
    verify_consistency_proof,
    verify_inclusion_proof,
    verify_range_proof,
)
from verification.receipt import Receipt, ReceiptAnchor, verify_receipt
from verification.trust import Trust

__all__ = [
    "EMPTY_ROOT",
    "MAX_JSON_DEPTH",
    "AnchorReceipt",
    "Bundle",
    "BundleCheck",
    "BundleEntry",
    "BundleInclusion",
    "BundleManifest",
    "BundleRange",
    "BundleResult",
    "ChainError",
    "Checkpoint",
    "CompactRange",
    "ConsistencyProof",
    "DocumentReceipt",
    "ErasureCertificate",
    "FormatError",
    "InclusionProof",
    "LedgerError",
    "LogVerifier",
    "NoteVerifier",
    "ProofError",
    "RangeProof",
    "Receipt",
    "ReceiptAnchor",
    "RoundLeaf",
    "RoundTree",
    "SignatureError",
    "Trust",
    "VerificationError",
    "build_round",
    "canonical_json",
    "entry_hash",
    "errors",
    "json_depth",
    "leaf_hash",
    "node_hash",
    "open_checkpoint",
    "parse_checkpoint",
    "parse_header",
    "parse_verifier_key",
    "round_leaf",
    "round_leaf_hash",
    "verifier_key",
    "verify_anchor_receipt",
    "verify_bundle",
    "verify_consistency",
    "verify_consistency_proof",
    "verify_document",
    "verify_document_receipt",
    "verify_erasure_certificate",
    "verify_file",
    "verify_inclusion",
    "verify_inclusion_proof",
    "verify_note",
    "verify_range",
    "verify_range_proof",
    "verify_receipt",
]
