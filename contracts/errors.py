"""Errors of the on-chain side: the compiler wrapper, the chain client and online anchor checks.

Every message is one line and never contains a private key or an RPC URL's path (which often holds
an API key); raw web3, eth-account and requests exceptions are translated into these before they
leave `contracts`.

`AnchorChainError` is not `verification.errors.ChainError`: that one means a broken hash chain of
entries, this one means the Ethereum side failed.
"""

from __future__ import annotations

from typing import Any

from verification.errors import LedgerError, VerificationError

__all__ = [
    "AnchorChainError",
    "AnchorMismatch",
    "CompileError",
    "FeeCapExceeded",
    "NonceTaken",
    "Reverted",
    "RpcUnavailable",
    "TransactionTimeout",
    "WrongChain",
]


class CompileError(LedgerError):
    """The pinned Solidity compiler is missing or refused the source."""

    code = "contract-compile-failed"


class AnchorChainError(LedgerError):
    """Base of what the chain client raises: the node, the transaction or the contract failed."""

    code = "anchor-chain-error"


class RpcUnavailable(AnchorChainError):
    """The RPC endpoint did not answer after every retry."""

    code = "rpc-unavailable"


class WrongChain(AnchorChainError):
    """The node serves another chain than the configured one; nothing was signed."""

    code = "wrong-chain"

    def __init__(self, message: str, *, expected: int, actual: int, **fields: Any) -> None:
        super().__init__(message, expected=expected, actual=actual, **fields)
        self.expected = expected
        self.actual = actual


class Reverted(AnchorChainError):
    """The contract refused the call, at estimation time or on chain; `reason` is its revert string."""

    code = "reverted"

    def __init__(self, message: str, *, reason: str = "", tx_hash: str | None = None, **fields: Any) -> None:
        super().__init__(message, reason=reason, tx_hash=tx_hash, **fields)
        self.reason = reason
        self.tx_hash = tx_hash


class FeeCapExceeded(AnchorChainError):
    """Paying what the network asks would exceed the configured maxFeePerGas cap."""

    code = "fee-cap-exceeded"

    def __init__(self, message: str, *, needed_wei: int, cap_wei: int, **fields: Any) -> None:
        super().__init__(message, needed_wei=needed_wei, cap_wei=cap_wei, **fields)
        self.needed_wei = needed_wei
        self.cap_wei = cap_wei


class TransactionTimeout(AnchorChainError):
    """A transaction was not mined with enough confirmations within the receipt timeout."""

    code = "transaction-timeout"

    def __init__(self, message: str, *, tx_hash: str, **fields: Any) -> None:
        super().__init__(message, tx_hash=tx_hash, **fields)
        self.tx_hash = tx_hash


class NonceTaken(AnchorChainError):
    """The transaction's nonce was used by another transaction that did not do the same work."""

    code = "nonce-taken"

    def __init__(self, message: str, *, tx_hash: str, nonce: int, **fields: Any) -> None:
        super().__init__(message, tx_hash=tx_hash, nonce=nonce, **fields)
        self.tx_hash = tx_hash
        self.nonce = nonce


class AnchorMismatch(VerificationError):
    """Online verification: what the chain holds differs from the anchor receipt."""

    code = "anchor-mismatch"

    def __init__(self, message: str, *, what: str, expected: Any = None, actual: Any = None, **fields: Any) -> None:
        super().__init__(message, what=what, expected=expected, actual=actual, **fields)
        self.what = what
        self.expected = expected
        self.actual = actual
