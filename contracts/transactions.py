"""The publisher's transactions: signed, sent, replaced when they wait, watched until final (DESIGN §6).

The caller persists each `SignedTx` before it is sent, so a crash resumes with the same transaction;
`Transactions.confirm` hands it every replacement through ``on_replace`` *before* sending it, for
the same reason.

- the node's chain id is checked before anything is signed (`WrongChain`);
- fees follow `contracts.fees`: capped, and a replacement keeps the nonce and bumps both fees;
- a dropped or reorganised-out transaction is sent again; one whose nonce another transaction took
  is signed again with a fresh nonce, unless that transaction did the same work.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import TransactionNotFound

from contracts.config import ChainConfig
from contracts.errors import (
    AnchorChainError,
    FeeCapExceeded,
    NonceTaken,
    Reverted,
    TransactionTimeout,
    WrongChain,
)
from contracts.fees import GAS_HEADROOM, choose_fees
from contracts.receipts import Dropped, Mined, Pending, Receipts, TxStatus
from contracts.rpc import Node, to_hex

__all__ = ["SignedTx", "Transactions"]

#: named for the chain client as a whole, as deployments filter its warnings, not for this module
log = logging.getLogger("contracts.chain")

_ALREADY_KNOWN = ("already known", "known transaction", "already imported", "alreadyknown", "already in the pool",
                  "already exists")
_NONCE_TOO_LOW = ("nonce too low", "nonce is too low", "oldnonce", "invalid nonce", "nonce has already been used")


@dataclass(frozen=True)
class SignedTx:
    """What the rounds persist so that a crash resumes with the same transaction."""

    tx_hash: str
    raw: bytes
    nonce: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int

    def __repr__(self) -> str:
        return (f"SignedTx(tx_hash={self.tx_hash!r}, nonce={self.nonce}, max_fee_per_gas={self.max_fee_per_gas}, "
                f"max_priority_fee_per_gas={self.max_priority_fee_per_gas})")


def _matches(message: str, patterns: tuple[str, ...]) -> bool:
    lowered = message.lower().replace("_", " ")
    return any(p in lowered for p in patterns)


class Transactions:
    """One publisher's transactions on one node.

    `sibling(signed, account)` is the `Mined` of another transaction from `account` that did what
    `signed` was for (for an anchor: the same round and root), or None; it is asked when `signed`'s
    nonce was used by another transaction.
    """

    def __init__(self, config: ChainConfig, node: Node, receipts: Receipts, account: LocalAccount | None,
                 sibling: Callable[[SignedTx, str], Mined | None]) -> None:
        self.config = config
        self._node = node
        self._receipts = receipts
        self._account = account
        self._sibling = sibling

    def signer(self) -> LocalAccount:
        if self._account is None:
            raise AnchorChainError("this AnchorChain has no private key; it can only read")
        return self._account

    def check_chain(self) -> int:
        """Refuse a node that serves another chain than the configured one."""
        actual = self._node.call("read the chain id", lambda w3: int(w3.eth.chain_id))
        if actual != self.config.chain_id:
            raise WrongChain(f"the node at {self._node.label} serves chain {actual}, expected {self.config.chain_id}; "
                             "nothing was signed", expected=self.config.chain_id, actual=actual)
        return actual

    # -- signing --------------------------------------------------------------------------------------

    def _fees(self) -> tuple[int, int]:
        def read(w3: Web3) -> tuple[int, int]:
            block = w3.eth.get_block("latest")
            base = int(block.get("baseFeePerGas", 0) or 0)
            return base, int(w3.eth.max_priority_fee)

        return self._node.call("read the fees", read)

    def sign(self, *, to: str | None, data: bytes, replacing: SignedTx | None = None,
             nonce: int | None = None) -> SignedTx:
        """Sign a call of `to` (None: a deployment) with `data`; raises `Reverted` if it would fail."""
        account = self.signer()
        self.check_chain()
        call: dict[str, Any] = {"from": account.address, "data": to_hex(data), "value": 0}
        if to is not None:
            call["to"] = to
        estimate = self._node.call("estimate gas", lambda w3: int(w3.eth.estimate_gas(call)))  # type: ignore[arg-type]
        gas = int(estimate * GAS_HEADROOM)
        base, tip = self._fees()
        max_fee, tip = choose_fees(base, tip, self.config.max_fee_wei, replacing)
        if replacing is not None:
            nonce = replacing.nonce
        if nonce is None:
            nonce = self._node.call("read the pending nonce",
                                    lambda w3: int(w3.eth.get_transaction_count(account.address, "pending")))
        tx: dict[str, Any] = {
            "type": 2, "chainId": self.config.chain_id, "nonce": nonce, "gas": gas,
            "maxFeePerGas": max_fee, "maxPriorityFeePerGas": min(tip, max_fee), "value": 0, "data": data,
        }
        if to is not None:
            tx["to"] = to
        signed = account.sign_transaction(tx)
        return SignedTx(tx_hash=to_hex(signed.hash), raw=bytes(signed.raw_transaction), nonce=nonce,
                        max_fee_per_gas=max_fee, max_priority_fee_per_gas=tx["maxPriorityFeePerGas"])

    def _resign(self, signed: SignedTx, *, replace: bool) -> SignedTx:
        """The same call again: with the same nonce and bumped fees, or with a fresh nonce."""
        fields = TypedTransaction.from_bytes(HexBytes(signed.raw)).as_dict()
        to = fields.get("to")
        target = to_checksum_address(to) if to else None
        return self.sign(to=target, data=bytes(fields["data"]), replacing=signed if replace else None)

    # -- sending and tracking -------------------------------------------------------------------------

    def send(self, signed: SignedTx) -> None:
        """Broadcast; idempotent ("already known" is fine, and so is "nonce too low" once it is mined)."""
        try:
            self._node.call(f"send {signed.tx_hash}", lambda w3: w3.eth.send_raw_transaction(signed.raw))
        except AnchorChainError as exc:
            message = str(exc.fields.get("rpc_message", ""))
            if _matches(message, _ALREADY_KNOWN):
                return
            if _matches(message, _NONCE_TOO_LOW):
                status = self.track(signed)
                if isinstance(status, Mined):
                    return
                raise NonceTaken(f"nonce {signed.nonce} of {signed.tx_hash} was used by another transaction",
                                 tx_hash=signed.tx_hash, nonce=signed.nonce) from None
            raise

    def track(self, signed: SignedTx) -> TxStatus:
        """One non-blocking look at a transaction.

        For a transaction whose nonce was taken by another of ours that did the same work (`sibling`),
        the `Mined` of that transaction is returned.
        """
        receipt = self._receipts.receipt(signed.tx_hash)
        reorged = False
        if receipt is not None:
            mined = self._receipts.mined(receipt)
            if mined is not None:
                return mined
            reorged = True

        def in_pool(w3: Web3) -> bool:
            try:
                tx = w3.eth.get_transaction(signed.tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:
                return False
            return tx is not None

        if self._node.call(f"look for {signed.tx_hash} in the pool", in_pool):
            return Pending(signed.tx_hash)
        account = self.signer().address if self._account is not None else self._sender(signed)
        used = self._node.call("read the nonce", lambda w3: int(w3.eth.get_transaction_count(account, "latest")))  # type: ignore[arg-type]
        if used > signed.nonce:
            sibling = self._sibling(signed, account)
            if sibling is not None:
                return sibling
            return Dropped(signed.tx_hash, f"nonce {signed.nonce} was used by another transaction", nonce_taken=True)
        return Dropped(signed.tx_hash, "reorganised out" if reorged else "neither mined nor in the pool")

    @staticmethod
    def _sender(signed: SignedTx) -> str:
        return str(Account.recover_transaction(signed.raw))

    def confirm(self, signed: SignedTx, *, on_replace: Callable[[SignedTx], None] | None = None) -> Mined:
        """Send, then watch until final; re-send what was dropped, replace what waits too long."""
        deadline = time.monotonic() + self.config.receipt_timeout
        current = signed
        versions = [signed]
        sent_at = time.monotonic()

        def switch(new: SignedTx) -> None:
            nonlocal current, sent_at
            if on_replace is not None:
                on_replace(new)
            versions.append(new)
            current = new
            self.send(new)
            sent_at = time.monotonic()

        with contextlib.suppress(NonceTaken):  # then track() says Dropped(nonce_taken) and it is re-signed
            self.send(current)
        sent_at = time.monotonic()
        while True:
            status = self.track(current)
            if isinstance(status, Mined):
                if status.final:
                    return status
            elif isinstance(status, Dropped):
                earlier = self._earlier_version_mined(versions, status)
                if earlier is not None:
                    if earlier.final:
                        return earlier
                elif status.nonce_taken:
                    log.warning("anchor tx %s: %s; re-signing with a fresh nonce", current.tx_hash, status.reason)
                    switch(self._resign(current, replace=False))
                else:
                    log.warning("anchor tx %s %s; sending it again", current.tx_hash, status.reason)
                    self.send(current)
                    sent_at = time.monotonic()
            elif time.monotonic() - sent_at >= self.config.replace_after:
                try:
                    replacement = self._resign(current, replace=True)
                except FeeCapExceeded as exc:
                    log.warning("anchor tx %s pending; not replaced: %s", current.tx_hash, exc)
                    sent_at = time.monotonic()
                except Reverted:
                    pass  # most likely mined meanwhile: the next look tells
                else:
                    log.warning("anchor tx %s pending for %.0fs; replacing it with %s", current.tx_hash,
                                time.monotonic() - sent_at, replacement.tx_hash)
                    switch(replacement)
            if time.monotonic() >= deadline:
                raise TransactionTimeout(f"transaction {current.tx_hash} not confirmed within "
                                         f"{self.config.receipt_timeout:.0f}s", tx_hash=current.tx_hash)
            time.sleep(self.config.poll_interval)

    def wait_final(self, tx_hash: str) -> Mined:
        """Wait until an already-sent transaction, known by hash only, is mined and final.

        For a transaction found on chain (an `Anchored` event) without its `SignedTx`; it cannot be
        re-sent, so a reorganisation that removes it raises `TransactionTimeout` at the deadline.
        """
        deadline = time.monotonic() + self.config.receipt_timeout
        while True:
            receipt = self._receipts.receipt(tx_hash)
            mined = self._receipts.mined(receipt) if receipt is not None else None
            if mined is not None and mined.final:
                return mined
            if time.monotonic() >= deadline:
                raise TransactionTimeout(f"transaction {tx_hash} not final within "
                                         f"{self.config.receipt_timeout:.0f}s", tx_hash=tx_hash)
            time.sleep(self.config.poll_interval)

    def pending_nonce(self) -> int:
        """The publisher's next nonce, counting its transactions in the pool."""
        address = self.signer().address
        return self._node.call("read the pending nonce",
                               lambda w3: int(w3.eth.get_transaction_count(address, "pending")))

    def _earlier_version_mined(self, versions: list[SignedTx], status: Dropped) -> Mined | None:
        if not status.nonce_taken:
            return None
        for version in versions:
            if version.tx_hash == status.tx_hash:
                continue
            receipt = self._receipts.receipt(version.tx_hash)
            if receipt is not None:
                mined = self._receipts.mined(receipt)
                if mined is not None:
                    return mined
        return None
