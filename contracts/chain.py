"""The chain client: deploy `LedgerAnchor`, manage publishers, anchor round roots, read anchors.

It keeps no database. The rounds state machine (``ledger/anchoring.py``) persists each `SignedTx`
before it is sent, so a crash resumes with the same transaction; `confirm` hands it every
replacement through ``on_replace`` *before* sending it, for the same reason.

Rules this module keeps (DESIGN §6):

- the node's chain id is checked before anything is signed (`WrongChain`);
- EIP-1559 fees come from the node and are capped (`FeeCapExceeded` rather than pay more);
- a replacement keeps the nonce and bumps both fees by at least 12.5% (never a duplicate);
- a transaction counts once its block has ``confirmations`` confirmations (the block itself is one)
  or is at or below the node's ``finalized`` block; a receipt whose block is no longer canonical
  counts as not mined; a dropped or reorganised-out transaction is sent again.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_utils.address import is_address, is_checksum_address, to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import BlockNotFound, TransactionNotFound, Web3RPCError

from contracts.artifact import load_artifact
from contracts.errors import (
    AnchorChainError,
    FeeCapExceeded,
    NonceTaken,
    Reverted,
    RpcUnavailable,
    TransactionTimeout,
    WrongChain,
)
from contracts.rpc import Node, endpoint_label

__all__ = [
    "AnchorChain",
    "AnchoredEvent",
    "ChainConfig",
    "Dropped",
    "Mined",
    "Pending",
    "SignedTx",
    "StoredRound",
    "TxStatus",
    "bump_fee",
    "checksum_address",
]

log = logging.getLogger(__name__)

GWEI = 10**9
#: a replacement pays at least this much more (geth and most pools want 10%)
BUMP_NUMERATOR, BUMP_DENOMINATOR = 9, 8
#: headroom on the estimated gas limit; unused gas is not paid for
GAS_HEADROOM = Decimal("1.25")

_ALREADY_KNOWN = ("already known", "known transaction", "already imported", "alreadyknown", "already in the pool",
                  "already exists")
_NONCE_TOO_LOW = ("nonce too low", "nonce is too low", "oldnonce", "invalid nonce", "nonce has already been used")


def bump_fee(old: int) -> int:
    """`old` raised by at least 12.5% (and by at least 1 wei)."""
    return max(old + 1, -(-old * BUMP_NUMERATOR // BUMP_DENOMINATOR))


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


@dataclass(frozen=True)
class StoredRound:
    root: bytes
    leaves: int
    block: int
    timestamp: int
    publisher: str


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


def _hex(value: bytes | str) -> str:
    return HexBytes(value).to_0x_hex()


def _matches(message: str, patterns: tuple[str, ...]) -> bool:
    lowered = message.lower().replace("_", " ")
    return any(p in lowered for p in patterns)


class AnchorChain:
    """The publisher's client for one `LedgerAnchor` contract on one chain.

    The private key is held by an eth-account object only; it is never logged and never part of a
    repr, a str or an error message.
    """

    def __init__(self, config: ChainConfig, private_key: bytes | str | None = None) -> None:
        self.config = config
        self._account: LocalAccount | None = None
        if private_key is not None:
            try:
                self._account = Account.from_key(private_key)
            except Exception:
                raise AnchorChainError("the publisher key is not a valid secp256k1 private key") from None
        self._node = Node(config.rpc_url, attempts=config.rpc_attempts, backoff=config.rpc_backoff,
                          timeout=config.rpc_timeout)
        self._artifact = load_artifact()
        self._codec: type[Contract] = self._node.w3.eth.contract(abi=self._artifact.abi)
        self._finalized_supported: bool | None = None

    # -- plumbing -------------------------------------------------------------------------------------

    def __repr__(self) -> str:
        who = self._account.address if self._account is not None else "read-only"
        return (f"AnchorChain({self._node.label}, chain_id={self.config.chain_id}, "
                f"contract={self.config.contract}, {who})")

    __str__ = __repr__

    def close(self) -> None:
        self._node.close()

    def __enter__(self) -> AnchorChain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def address(self) -> str:
        """The publisher's EIP-55 address."""
        return self._signer().address

    def _signer(self) -> LocalAccount:
        if self._account is None:
            raise AnchorChainError("this AnchorChain has no private key; it can only read")
        return self._account

    def _contract_address(self) -> str:
        if self.config.contract is None:
            raise AnchorChainError("no contract address configured (deploy first)")
        return self.config.contract

    def _contract(self) -> Contract:
        contract: Contract = self._node.w3.eth.contract(  # type: ignore[call-overload]
            address=self._contract_address(), abi=self._artifact.abi)
        return contract

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

    def _sign(self, *, to: str | None, data: bytes, replacing: SignedTx | None = None,
              nonce: int | None = None) -> SignedTx:
        account = self._signer()
        self.check_chain()
        call: dict[str, Any] = {"from": account.address, "data": _hex(data), "value": 0}
        if to is not None:
            call["to"] = to
        estimate = self._node.call("estimate gas", lambda w3: int(w3.eth.estimate_gas(call)))  # type: ignore[arg-type]
        gas = int(estimate * GAS_HEADROOM)
        base, tip = self._fees()
        cap = self.config.max_fee_wei
        max_fee = 2 * base + tip
        if replacing is not None:
            tip = max(tip, bump_fee(replacing.max_priority_fee_per_gas))
            max_fee = max(max_fee, base + tip, bump_fee(replacing.max_fee_per_gas))
            if max_fee > cap:
                raise FeeCapExceeded(f"replacing {replacing.tx_hash} needs maxFeePerGas {max_fee} wei, above the cap "
                                     f"of {cap} wei", needed_wei=max_fee, cap_wei=cap)
            nonce = replacing.nonce
        elif max_fee > cap:
            if base + tip > cap:
                raise FeeCapExceeded(f"the network asks {base + tip} wei per gas (base {base} + tip {tip}), above the "
                                     f"cap of {cap} wei", needed_wei=base + tip, cap_wei=cap)
            max_fee = cap  # enough for now; it may wait if the base fee rises, and is replaced then
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
        return SignedTx(tx_hash=_hex(signed.hash), raw=bytes(signed.raw_transaction), nonce=nonce,
                        max_fee_per_gas=max_fee, max_priority_fee_per_gas=tx["maxPriorityFeePerGas"])

    def _resign(self, signed: SignedTx, *, replace: bool) -> SignedTx:
        """The same call again: with the same nonce and bumped fees, or with a fresh nonce."""
        fields = TypedTransaction.from_bytes(HexBytes(signed.raw)).as_dict()
        to = fields.get("to")
        target = to_checksum_address(to) if to else None
        return self._sign(to=target, data=bytes(fields["data"]), replacing=signed if replace else None)

    def sign_anchor(self, round_id: int, root: bytes, leaves: int, *, replacing: SignedTx | None = None) -> SignedTx:
        """Sign `anchor(round_id, root, leaves)`; raises `Reverted` if the contract would refuse it."""
        if not 0 <= round_id < 2**64:
            raise AnchorChainError(f"round id {round_id} does not fit uint64")
        if len(root) != 32:
            raise AnchorChainError(f"root must be 32 bytes, got {len(root)}")
        if not 0 <= leaves < 2**32:
            raise AnchorChainError(f"leaf count {leaves} does not fit uint32")
        data = self._encode("anchor", [round_id, root, leaves])
        return self._sign(to=self._contract_address(), data=data, replacing=replacing)

    def _encode(self, fn: str, args: list[Any]) -> bytes:
        return bytes(HexBytes(self._codec.encode_abi(fn, args=args)))

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

    def _receipt(self, tx_hash: str) -> Any:
        def read(w3: Web3) -> Any:
            try:
                return w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:
                return None

        return self._node.call(f"read the receipt of {tx_hash}", read)

    def _canonical_hash(self, number: int) -> str | None:
        def read(w3: Web3) -> str | None:
            try:
                return _hex(w3.eth.get_block(number)["hash"])
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

    def _mined(self, receipt: Any) -> Mined | None:
        """The receipt as `Mined` if its block is canonical; raises `Reverted` for a failed transaction."""
        number = int(receipt["blockNumber"])
        block_hash = _hex(receipt["blockHash"])
        if self._canonical_hash(number) != block_hash:
            return None
        tx_hash = _hex(receipt["transactionHash"])
        if int(receipt["status"]) != 1:
            reason = self._mined_revert_reason(receipt)
            raise Reverted(f"transaction {tx_hash} reverted in block {number}: {reason}", reason=reason,
                           tx_hash=tx_hash)
        latest = self._node.call("read the block number", lambda w3: int(w3.eth.block_number))
        confirmations = max(0, latest - number + 1)
        final = confirmations >= self.config.confirmations
        if not final:
            finalized = self._finalized()
            final = finalized is not None and number <= finalized
        return Mined(tx_hash=tx_hash, block=number, block_hash=block_hash, confirmations=confirmations, final=final,
                     gas_used=int(receipt["gasUsed"]))

    def _mined_revert_reason(self, receipt: Any) -> str:
        """Replay the failed call on the state of its block to learn its revert string."""
        tx_hash = _hex(receipt["transactionHash"])
        tx = self._node.call(f"read {tx_hash}", lambda w3: w3.eth.get_transaction(tx_hash))  # type: ignore[arg-type]
        call = {"from": tx["from"], "to": tx["to"], "data": _hex(tx["input"]), "value": tx["value"], "gas": tx["gas"]}
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

    def track(self, signed: SignedTx) -> TxStatus:
        """One non-blocking look at a transaction.

        For an anchor whose nonce was taken by another of our transactions for the same round and
        root (an earlier or later version of it), the `Mined` of that transaction is returned.
        """
        receipt = self._receipt(signed.tx_hash)
        reorged = False
        if receipt is not None:
            mined = self._mined(receipt)
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
        account = self._signer().address if self._account is not None else self._sender(signed)
        used = self._node.call("read the nonce", lambda w3: int(w3.eth.get_transaction_count(account, "latest")))  # type: ignore[arg-type]
        if used > signed.nonce:
            sibling = self._anchored_sibling(signed, account)
            if sibling is not None:
                return sibling
            return Dropped(signed.tx_hash, f"nonce {signed.nonce} was used by another transaction", nonce_taken=True)
        return Dropped(signed.tx_hash, "reorganised out" if reorged else "neither mined nor in the pool")

    @staticmethod
    def _sender(signed: SignedTx) -> str:
        return str(Account.recover_transaction(signed.raw))

    def _anchored_sibling(self, signed: SignedTx, account: str) -> Mined | None:
        """The `Mined` of the transaction that anchored the same round and root from this account, if any."""
        fields = TypedTransaction.from_bytes(HexBytes(signed.raw)).as_dict()
        if self.config.contract is None or not fields.get("to") or \
                to_checksum_address(fields["to"]) != self.config.contract:
            return None
        try:
            fn, args = self._codec.decode_function_input(_hex(fields["data"]))
        except ValueError:
            return None
        if fn.fn_name != "anchor":
            return None
        for event in self.events(round_id=int(args["round"])):
            if event.publisher == account and event.root == bytes(args["root"]):
                receipt = self._receipt(event.tx_hash)
                return self._mined(receipt) if receipt is not None else None
        return None

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
            receipt = self._receipt(tx_hash)
            mined = self._mined(receipt) if receipt is not None else None
            if mined is not None and mined.final:
                return mined
            if time.monotonic() >= deadline:
                raise TransactionTimeout(f"transaction {tx_hash} not final within "
                                         f"{self.config.receipt_timeout:.0f}s", tx_hash=tx_hash)
            time.sleep(self.config.poll_interval)

    def block_number(self) -> int:
        """The node's latest block number."""
        return self._node.call("read the block number", lambda w3: int(w3.eth.block_number))

    def pending_nonce(self) -> int:
        """The publisher's next nonce, counting its transactions in the pool."""
        address = self.address
        return self._node.call("read the pending nonce",
                               lambda w3: int(w3.eth.get_transaction_count(address, "pending")))  # type: ignore[arg-type]

    def _earlier_version_mined(self, versions: list[SignedTx], status: Dropped) -> Mined | None:
        if not status.nonce_taken:
            return None
        for version in versions:
            if version.tx_hash == status.tx_hash:
                continue
            receipt = self._receipt(version.tx_hash)
            if receipt is not None:
                mined = self._mined(receipt)
                if mined is not None:
                    return mined
        return None

    # -- the contract's operations --------------------------------------------------------------------

    def deploy(self) -> str:
        """Deploy the committed artifact and wait for its confirmation; returns the contract's EIP-55 address."""
        mined = self.confirm(self._sign(to=None, data=bytes(HexBytes(self._artifact.bytecode))))
        receipt = self._receipt(mined.tx_hash)
        if receipt is None or not receipt.get("contractAddress"):
            raise AnchorChainError(f"deployment {mined.tx_hash} has no contract address")
        return str(to_checksum_address(receipt["contractAddress"]))

    def add_publisher(self, address: str) -> Mined:
        return self.confirm(self._sign(to=self._contract_address(), data=self._encode("addPublisher",
                                                                                       [checksum_address(address)])))

    def remove_publisher(self, address: str) -> Mined:
        return self.confirm(self._sign(to=self._contract_address(), data=self._encode("removePublisher",
                                                                                       [checksum_address(address)])))

    def is_publisher(self, address: str) -> bool:
        contract = self._contract()
        return bool(self._node.call("read isPublisher",
                                    lambda w3: contract.functions.isPublisher(checksum_address(address)).call()))

    def owner(self) -> str:
        contract = self._contract()
        return str(self._node.call("read owner", lambda w3: contract.functions.owner().call()))

    def anchor(self, round_id: int, root: bytes, leaves: int) -> Mined:
        """Sign and confirm in one go (no persistence between: for tools and tests)."""
        return self.confirm(self.sign_anchor(round_id, root, leaves))

    def round(self, round_id: int) -> StoredRound | None:
        """What the contract stores for a round, or None if it is not anchored."""
        contract = self._contract()
        root, leaves, block, timestamp, publisher = self._node.call(
            f"read round {round_id}", lambda w3: contract.functions.getRound(round_id).call())
        if bytes(root) == bytes(32):
            return None
        return StoredRound(root=bytes(root), leaves=int(leaves), block=int(block), timestamp=int(timestamp),
                           publisher=str(to_checksum_address(publisher)))

    def events(self, *, round_id: int | None = None, tx_hash: str | None = None,
               from_block: int = 0) -> list[AnchoredEvent]:
        """`Anchored` events of this contract, by round (its indexed topic) or by transaction.

        By round, the stored block number says where to look, so no wide log range is scanned.
        """
        contract = self._contract()
        anchored = contract.events.Anchored()
        if tx_hash is not None:
            receipt = self._receipt(tx_hash)
            if receipt is None or self._canonical_hash(int(receipt["blockNumber"])) != _hex(receipt["blockHash"]):
                return []
            logs = [entry for entry in receipt["logs"]
                    if to_checksum_address(entry["address"]) == contract.address]
        else:
            to_block: int | str = "latest"
            if round_id is not None:
                stored = self.round(round_id)
                if stored is None:
                    return []
                from_block = to_block = stored.block
            topics: list[Any] = [_hex(anchored.topic)]
            if round_id is not None:
                topics.append(_hex(round_id.to_bytes(32, "big")))
            logs = self._node.call("read Anchored logs", lambda w3: w3.eth.get_logs({
                "address": contract.address, "fromBlock": from_block, "toBlock": to_block, "topics": topics}))  # type: ignore[typeddict-item]
        found = []
        for entry in logs:
            if not entry["topics"] or _hex(entry["topics"][0]) != _hex(anchored.topic):
                continue
            decoded = anchored.process_log(entry)
            args = decoded["args"]
            if round_id is not None and int(args["round"]) != round_id:
                continue
            found.append(AnchoredEvent(
                round_id=int(args["round"]), root=bytes(args["root"]), leaves=int(args["leaves"]),
                publisher=str(to_checksum_address(args["publisher"])), contract=str(contract.address),
                tx_hash=_hex(entry["transactionHash"]), block=int(entry["blockNumber"]),
                block_hash=_hex(entry["blockHash"]), log_index=int(entry["logIndex"])))
        return found


def checksum_address(address: str) -> str:
    """`address` in its EIP-55 form (any case accepted); AnchorChainError if it is not an address."""
    if not is_address(address):
        raise AnchorChainError(f"{address!r} is not an Ethereum address")
    return str(to_checksum_address(address))




