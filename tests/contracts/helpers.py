"""Small helpers shared by the chain tests (raw transactions and logs straight from the node)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from eth_account import Account
from eth_utils.crypto import keccak
from hexbytes import HexBytes

from contracts.chain import AnchorChain
from contracts.transactions import SignedTx
from tests.anvil import AnvilNode

ROOT_A = bytes([0xAA]) * 32
ROOT_B = bytes([0xBB]) * 32


def topic(signature: str) -> str:
    return "0x" + keccak(text=signature).hex()


def address_topic(address: str) -> str:
    return "0x" + "00" * 12 + address.lower().removeprefix("0x")


def logs_of(node: AnvilNode, tx_hash: str) -> list[dict[str, Any]]:
    logs: list[dict[str, Any]] = mined_receipt(node, tx_hash)["logs"]
    return logs


def mined_receipt(node: AnvilNode, tx_hash: str) -> dict[str, Any]:
    """The receipt once the node has mined the transaction (automine answers before it mines)."""
    wait_for(lambda: node.rpc("eth_getTransactionReceipt", tx_hash) is not None, f"{tx_hash} mined")
    receipt: dict[str, Any] = node.rpc("eth_getTransactionReceipt", tx_hash)
    return receipt


def forced_tx(chain: AnchorChain, node: AnvilNode, key: int, data: bytes, *, nonce: int | None = None,
              gas: int = 200_000) -> SignedTx:
    """A transaction signed without estimating gas, so that the node mines it even if it reverts."""
    account = Account.from_key(node.keys[key])
    if nonce is None:
        nonce = int(node.rpc("eth_getTransactionCount", account.address, "pending"), 16)
    tx = {"type": 2, "chainId": node.chain_id, "nonce": nonce, "gas": gas, "maxFeePerGas": 10**10,
          "maxPriorityFeePerGas": 10**9, "to": chain.config.contract, "value": 0, "data": data}
    signed = account.sign_transaction(tx)
    return SignedTx(HexBytes(signed.hash).to_0x_hex(), bytes(signed.raw_transaction), nonce, 10**10, 10**9)


def anchor_data(round_id: int, root: bytes, leaves: int) -> bytes:
    selector = keccak(text="anchor(uint64,bytes32,uint32)")[:4]
    return selector + round_id.to_bytes(32, "big") + root + leaves.to_bytes(32, "big")


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    """Poll `predicate` until it holds (a deadline, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)
