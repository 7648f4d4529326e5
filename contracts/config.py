"""Where and how the chain client anchors: the node, the chain id, the contract and its limits."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from eth_utils.address import is_checksum_address

from contracts.errors import AnchorChainError
from contracts.fees import GWEI
from contracts.rpc import endpoint_label

__all__ = ["ChainConfig"]


@dataclass(frozen=True)
class ChainConfig:
    rpc_url: str
    chain_id: int
    contract: str | None
    confirmations: int = 2
    max_fee_gwei: Decimal = Decimal("100")
    receipt_timeout: float = 120.0
    rpc_attempts: int = 5
    poll_interval: float = 0.2
    #: first back-off between RPC attempts; doubles each time
    rpc_backoff: float = 0.25
    #: a transaction pending (not mined) this long is replaced with bumped fees
    replace_after: float = 45.0
    #: per-request HTTP timeout
    rpc_timeout: float = 10.0

    def __post_init__(self) -> None:
        if self.contract is not None and not is_checksum_address(self.contract):
            raise AnchorChainError(f"contract address {self.contract!r} is not an EIP-55 (checksummed) address")
        if self.confirmations < 1:
            raise AnchorChainError("confirmations must be at least 1 (the block itself)")
        if self.max_fee_gwei <= 0:
            raise AnchorChainError("max_fee_gwei must be positive")

    def __repr__(self) -> str:  # the RPC URL's path may hold an API key
        return (f"ChainConfig(rpc_url={endpoint_label(self.rpc_url)!r}, chain_id={self.chain_id}, "
                f"contract={self.contract!r}, confirmations={self.confirmations})")

    @property
    def max_fee_wei(self) -> int:
        return int(self.max_fee_gwei * GWEI)
