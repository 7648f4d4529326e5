"""What the chain says of a sent transaction: pending, mined (and final or not), or dropped.

A transaction counts once its block has ``confirmations`` confirmations (the block itself is one) or
is at or below the node's ``finalized`` block; a receipt whose block is no longer canonical counts
as not mined (DESIGN §6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from web3 import Web3
from web3.exceptions import BlockNotFound, TransactionNotFound, Web3RPCError

from contracts.config import ChainConfig
from contracts.errors import AnchorChainError, Reverted, RpcUnavailable
from contracts.rpc import Node, to_hex

__all__ = ["Dropped", "Mined", "Pending", "Receipts", "TxStatus"]


@dataclass(frozen=True)
class Pending:
    """In the node's pool, not mined yet."""

    tx_hash: str


@dataclass(frozen=True)
class Dropped:
    """Neither mined (canonically) nor in the pool: it must be sent again.

    ``nonce_taken`` says that another transaction used its nonce, so sending it again cannot work
    and it must be re-signed with a fresh nonce.
    """

    tx_hash: str
    reason: str
    nonce_taken: bool = False


@dataclass(frozen=True)
class Mined:
    tx_hash: str
    block: int
    block_hash: str
    confirmations: int
    final: bool
    gas_used: int


TxStatus = Pending | Mined | Dropped


class Receipts:
    """Receipts and blocks as one node sees them, read through its retries."""

    def __init__(self, node: Node, config: ChainConfig) -> None:
        self._node = node
        self._config = config
        self._finalized_supported: bool | None = None

    def receipt(self, tx_hash: str) -> Any:
        """The node's receipt of `tx_hash`, or None while it has none."""

        def read(w3: Web3) -> Any:
            try:
                return w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:
                return None

        return self._node.call(f"read the receipt of {tx_hash}", read)

    def canonical_hash(self, number: int) -> str | None:
        """The hash of the canonical block `number`, or None if the node has no such block."""

        def read(w3: Web3) -> str | None:
            try:
                return to_hex(w3.eth.get_block(number)["hash"])
            except BlockNotFound:
                return None

        return self._node.call(f"read block {number}", read)

    def _finalized(self) -> int | None:
        if self._finalized_supported is False:
            return None

        def read(w3: Web3) -> int | None:
            try:
                return int(w3.eth.get_block("finalized")["number"])
            except (BlockNotFound, Web3RPCError):
                return None

        number = self._node.call("read the finalized block", read)
        self._finalized_supported = number is not None
        return number

    def mined(self, receipt: Any) -> Mined | None:
        """The receipt as `Mined` if its block is canonical; raises `Reverted` for a failed transaction."""
        number = int(receipt["blockNumber"])
        block_hash = to_hex(receipt["blockHash"])
        if self.canonical_hash(number) != block_hash:
            return None
        tx_hash = to_hex(receipt["transactionHash"])
        if int(receipt["status"]) != 1:
            reason = self._revert_reason(receipt)
            raise Reverted(f"transaction {tx_hash} reverted in block {number}: {reason}", reason=reason,
                           tx_hash=tx_hash)
        latest = self._node.call("read the block number", lambda w3: int(w3.eth.block_number))
        confirmations = max(0, latest - number + 1)
        final = confirmations >= self._config.confirmations
        if not final:
            finalized = self._finalized()
            final = finalized is not None and number <= finalized
        return Mined(tx_hash=tx_hash, block=number, block_hash=block_hash, confirmations=confirmations, final=final,
                     gas_used=int(receipt["gasUsed"]))

    def _revert_reason(self, receipt: Any) -> str:
        """Replay the failed call on the state of its block to learn its revert string."""
        tx_hash = to_hex(receipt["transactionHash"])
        tx = self._node.call(f"read {tx_hash}", lambda w3: w3.eth.get_transaction(tx_hash))  # type: ignore[arg-type]
        call = {"from": tx["from"], "to": tx["to"], "data": to_hex(tx["input"]), "value": tx["value"],
                "gas": tx["gas"]}
        try:
            self._node.call(f"replay {tx_hash}", lambda w3: w3.eth.call(call, int(receipt["blockNumber"])))  # type: ignore[arg-type]
        except Reverted as exc:
            return exc.reason
        except RpcUnavailable:
            raise
        except AnchorChainError as exc:  # the node refuses to replay it (anvil: "EVM error OutOfGas")
            if int(receipt["gasUsed"]) >= int(tx["gas"]):
                return "out of gas"
            return f"reverted (replay refused: {exc.fields.get('rpc_message', '?')})"
        if int(receipt["gasUsed"]) >= int(tx["gas"]):
            return "out of gas"
        return "reverted without a reason"
