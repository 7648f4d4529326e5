"""Errors of the engine, extending the shared hierarchy in `verification.errors`."""

from __future__ import annotations

from verification.errors import (
    ChainError,
    FormatError,
    LedgerError,
    ProofError,
    SignatureError,
    VerificationError,
)

__all__ = [
    "ChainError",
    "ConfigurationError",
    "Conflict",
    "DecryptionError",
    "FormatError",
    "Gone",
    "InvalidInput",
    "LedgerError",
    "NotFound",
    "PolicyViolation",
    "ProofError",
    "SignatureError",
    "TooLarge",
    "TooManyRequests",
    "VerificationError",
]


class DecryptionError(LedgerError):
    """Content could not be decrypted. Deliberately says nothing more (wrong key, moved, tampered)."""

    code = "decryption-failed"

    def __init__(self) -> None:
        super().__init__("content cannot be decrypted")


class NotFound(LedgerError):
    code = "not-found"


class Conflict(LedgerError):
    code = "conflict"


class InvalidInput(LedgerError):
    code = "invalid-input"


class TooLarge(InvalidInput):
    code = "too-large"


class PolicyViolation(LedgerError):
    code = "policy-violation"


class Gone(LedgerError):
    """It existed and no longer serves: an expired, revoked or used-up share."""

    code = "gone"


class TooManyRequests(LedgerError):
    """The client must slow down (e.g. after repeated bad share tokens)."""

    code = "too-many-requests"


class ConfigurationError(LedgerError):
    """Settings or keys are missing or unsafe; the process must not start."""

    code = "configuration"
