"""The error hierarchy shared by every caseledger package.

It lives here because `verification` imports nothing of ours; `ledger`, `compliance` and `api`
extend it in their own ``errors`` modules. Errors carry structured fields so that the CLI and the
HTTP problem documents can say precisely what failed without parsing messages.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ChainError",
    "FormatError",
    "LedgerError",
    "ProofError",
    "SignatureError",
    "VerificationError",
]


class LedgerError(Exception):
    """Base of every error caseledger raises on purpose."""

    #: short machine-readable code, also the last part of the problem+json ``type``
    code = "ledger-error"

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields

    def __str__(self) -> str:
        return self.message


class VerificationError(LedgerError):
    """Something that was supposed to verify did not."""

    code = "verification-failed"


class FormatError(VerificationError):
    """Input that cannot even be parsed: malformed JSON, note, base64, wrong lengths."""

    code = "malformed"


class ProofError(VerificationError):
    """A Merkle proof does not lead to the expected root (or is malformed for its size)."""

    code = "proof-failed"

    def __init__(
        self, message: str, *, expected: bytes | None = None, computed: bytes | None = None, **fields: Any
    ) -> None:
        super().__init__(message, **fields)
        self.expected = expected
        self.computed = computed


class SignatureError(VerificationError):
    """A signature is missing, from an unknown key, or invalid."""

    code = "signature-invalid"


class ChainError(VerificationError):
    """An entry breaks the log: bad hash, ``prev``/``case_prev`` link, seq gap or time order."""

    code = "chain-broken"

    def __init__(self, message: str, *, seq: int | None = None, **fields: Any) -> None:
        super().__init__(message, seq=seq, **fields)
        self.seq = seq
