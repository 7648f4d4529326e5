"""Online verification of an anchor receipt's chain part (DESIGN §6), against any JSON-RPC node.

Inputs are primitives, so `verification`'s receipt code (or anyone) can call it without the chain
client. Each check compares one thing and names it in `AnchorMismatch.what` when it differs.
"""

from __future__ import annotations

from typing import Any

from eth_utils.address import is_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import BlockNotFound, TransactionNotFound, Web3RPCError

from contracts.artifact import load_artifact
from contracts.errors import AnchorMismatch
from contracts.rpc import Node

__all__ = ["verify_anchor_online"]


def _hex(value: bytes | str) -> str:
    return HexBytes(value).to_0x_hex()


def _mismatch(what: str, message: str, expected: Any, actual: Any) -> AnchorMismatch:
    return AnchorMismatch(message, what=what, expected=expected, actual=actual)


def verify_anchor_online(rpc_url: str, *, chain_id: int, contract: str, round_id: int, root: bytes, leaves: int,
                         tx_hash: str, block: int, block_hash: str, min_confirmations: int = 1,
                         rpc_attempts: int = 3) -> dict[str, Any]:
    """Prove on `chain_id` that `contract` stores `root` (and `leaves`) for `round_id`, and that
    transaction `tx_hash`, in the canonical block `block` with hash `block_hash`, succeeded and
    emitted that `Anchored` event from `contract`, with at least `min_confirmations` (or finalized).

    Raises `AnchorMismatch` (a `VerificationError`) naming the first thing that differs, and
    `RpcUnavailable` / `AnchorChainError` when the node cannot answer.
    """
    if not is_checksum_address(contract):
        raise _mismatch("contract", f"contract address {contract!r} is not EIP-55", "EIP-55 address", contract)
    if len(root) != 32:
        raise _mismatch("root", f"root must be 32 bytes, got {len(root)}", 32, len(root))
    block_hash = block_hash.lower()
    tx_hash = tx_hash.lower()
    node = Node(rpc_url, attempts=rpc_attempts)
    try:
        return _verify(node, chain_id=chain_id, contract=contract, round_id=round_id, root=root, leaves=leaves,
                       tx_hash=tx_hash, block=block, block_hash=block_hash, min_confirmations=min_confirmations)
    finally:
        node.close()


def _verify(node: Node, *, chain_id: int, contract: str, round_id: int, root: bytes, leaves: int, tx_hash: str,
            block: int, block_hash: str, min_confirmations: int) -> dict[str, Any]:
    actual_chain = node.call("read the chain id", lambda w3: int(w3.eth.chain_id))
    if actual_chain != chain_id:
        raise _mismatch("chain_id", f"the node serves chain {actual_chain}, the receipt names chain {chain_id}",
                        chain_id, actual_chain)

    code = node.call(f"read the code of {contract}", lambda w3: bytes(w3.eth.get_code(contract)))  # type: ignore[arg-type]
    if not code:
        raise _mismatch("contract", f"there is no contract at {contract} on chain {chain_id}", contract, None)
    abi = load_artifact().abi
    anchor = node.w3.eth.contract(address=contract, abi=abi)  # type: ignore[call-overload]
    stored_root, stored_leaves, stored_block, _, publisher = node.call(
        f"read round {round_id}", lambda w3: anchor.functions.getRound(round_id).call())
    if bytes(stored_root) == bytes(32):
        raise _mismatch("round", f"contract {contract} stores no root for round {round_id}", root.hex(), None)
    if bytes(stored_root) != root:
        raise _mismatch("root", f"contract {contract} stores root {bytes(stored_root).hex()} for round {round_id}, "
                        f"the receipt says {root.hex()}", root.hex(), bytes(stored_root).hex())
    if int(stored_leaves) != leaves:
        raise _mismatch("leaves", f"round {round_id} stores {stored_leaves} leaves, the receipt says {leaves}",
                        leaves, int(stored_leaves))
    if int(stored_block) != block:
        raise _mismatch("block", f"round {round_id} was anchored in block {stored_block}, the receipt says {block}",
                        block, int(stored_block))

    def canonical(w3: Web3) -> str | None:
        try:
            return _hex(w3.eth.get_block(block)["hash"])
        except BlockNotFound:
            return None

    actual_hash = node.call(f"read block {block}", canonical)
    if actual_hash != block_hash:
        raise _mismatch("block_hash", f"block {block} has hash {actual_hash}, the receipt says {block_hash}",
                        block_hash, actual_hash)

    def receipt_of(w3: Web3) -> Any:
        try:
            return w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None

    receipt = node.call(f"read the receipt of {tx_hash}", receipt_of)
    if receipt is None:
        raise _mismatch("tx", f"transaction {tx_hash} is not mined on chain {chain_id}", tx_hash, None)
    if int(receipt["blockNumber"]) != block or _hex(receipt["blockHash"]) != block_hash:
        raise _mismatch("tx", f"transaction {tx_hash} is in block {receipt['blockNumber']} "
                        f"({_hex(receipt['blockHash'])}), the receipt says {block} ({block_hash})",
                        f"{block}/{block_hash}", f"{receipt['blockNumber']}/{_hex(receipt['blockHash'])}")

    if int(receipt["status"]) != 1:
        raise _mismatch("tx", f"transaction {tx_hash} failed (status 0)", 1, 0)

    event = anchor.events.Anchored()
    topic, round_topic = _hex(event.topic), _hex(round_id.to_bytes(32, "big"))
    found = None
    for entry in receipt["logs"]:
        topics = [_hex(t) for t in entry["topics"]]
        if entry["address"].lower() != contract.lower() or topics[:2] != [topic, round_topic]:
            continue
        args = event.process_log(entry)["args"]
        if bytes(args["root"]) == root and int(args["leaves"]) == leaves:
            found = entry
            break
    if found is None:
        raise _mismatch("event", f"transaction {tx_hash} emitted no Anchored({round_id}, {root.hex()}, {leaves}) "
                        f"from {contract}", "Anchored event", None)

    latest = node.call("read the block number", lambda w3: int(w3.eth.block_number))

    def finalized_of(w3: Web3) -> int | None:
        try:
            return int(w3.eth.get_block("finalized")["number"])
        except (BlockNotFound, Web3RPCError):
            return None

    finalized = node.call("read the finalized block", finalized_of)
    confirmations = max(0, latest - block + 1)
    final = finalized is not None and block <= finalized
    if confirmations < min_confirmations and not final:
        raise _mismatch("confirmations", f"block {block} has {confirmations} confirmation(s), "
                        f"{min_confirmations} required", min_confirmations, confirmations)
    return {
        "ok": True, "chain_id": chain_id, "contract": contract, "round": round_id, "root": root.hex(),
        "leaves": leaves, "tx": tx_hash, "block": block, "block_hash": block_hash,
        "log_index": int(found["logIndex"]), "publisher": str(Web3.to_checksum_address(publisher)),
        "confirmations": confirmations, "final": final,
    }
