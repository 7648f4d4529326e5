"""Finding and decoding the contract's `Anchored` events: by transaction, or in a range of blocks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_utils.address import to_checksum_address
from web3.contract import Contract

from contracts.receipts import Receipts
from contracts.rpc import Node, to_hex

__all__ = ["AnchoredEvent", "anchored_in_blocks", "anchored_in_tx"]


@dataclass(frozen=True)
class AnchoredEvent:
    round_id: int
    root: bytes
    leaves: int
    publisher: str
    contract: str
    tx_hash: str
    block: int
    block_hash: str
    log_index: int


def anchored_in_tx(receipts: Receipts, contract: Contract, tx_hash: str,
                   round_id: int | None = None) -> list[AnchoredEvent]:
    """The `Anchored` events of `contract` that `tx_hash` emitted, if its block is canonical (of
    `round_id` only, when given)."""
    receipt = receipts.receipt(tx_hash)
    if receipt is None or receipts.canonical_hash(int(receipt["blockNumber"])) != to_hex(receipt["blockHash"]):
        return []
    logs = [entry for entry in receipt["logs"] if to_checksum_address(entry["address"]) == contract.address]
    return _decode(contract, logs, round_id)


def anchored_in_blocks(node: Node, contract: Contract, from_block: int, to_block: int | str,
                       round_id: int | None = None) -> list[AnchoredEvent]:
    """The `Anchored` events of `contract` in blocks `from_block` to `to_block` (of `round_id` only,
    by its indexed topic, when given)."""
    anchored = contract.events.Anchored()
    topics: list[Any] = [to_hex(anchored.topic)]
    if round_id is not None:
        topics.append(to_hex(round_id.to_bytes(32, "big")))
    logs = node.call("read Anchored logs", lambda w3: w3.eth.get_logs({
        "address": contract.address, "fromBlock": from_block, "toBlock": to_block, "topics": topics}))  # type: ignore[typeddict-item]
    return _decode(contract, logs, round_id)


def _decode(contract: Contract, logs: Any, round_id: int | None) -> list[AnchoredEvent]:
    anchored = contract.events.Anchored()
    found = []
    for entry in logs:
        if not entry["topics"] or to_hex(entry["topics"][0]) != to_hex(anchored.topic):
            continue
        decoded = anchored.process_log(entry)
        args = decoded["args"]
        if round_id is not None and int(args["round"]) != round_id:
            continue
        found.append(AnchoredEvent(
            round_id=int(args["round"]), root=bytes(args["root"]), leaves=int(args["leaves"]),
            publisher=str(to_checksum_address(args["publisher"])), contract=str(contract.address),
            tx_hash=to_hex(entry["transactionHash"]), block=int(entry["blockNumber"]),
            block_hash=to_hex(entry["blockHash"]), log_index=int(entry["logIndex"])))
    return found
