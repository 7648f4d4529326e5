"""The chain client: deploy `LedgerAnchor`, manage publishers, anchor round roots, read anchors.

It keeps no database. The rounds state machine (``ledger/anchor_rounds.py``) persists each `SignedTx`
before it is sent, so a crash resumes with the same transaction; `confirm` hands it every
replacement through ``on_replace`` *before* sending it, for the same reason.

`AnchorChain` knows the contract; the rules it keeps for every transaction (DESIGN §6) live beside
it: signing, sending, replacing and waiting in `contracts.transactions`, fees and their cap in
`contracts.fees`, receipts, reorganisations and finality in `contracts.receipts`, and the
`Anchored` events in `contracts.events`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_utils.address import is_address, to_checksum_address
from hexbytes import HexBytes
from web3.contract import Contract

from contracts.artifact import load_artifact
from contracts.config import ChainConfig
from contracts.errors import AnchorChainError
from contracts.events import AnchoredEvent, anchored_in_blocks, anchored_in_tx
from contracts.receipts import Mined, Receipts, TxStatus
from contracts.rpc import Node, to_hex
from contracts.transactions import SignedTx, Transactions

__all__ = ["AnchorChain", "StoredRound", "checksum_address"]


@dataclass(frozen=True)
class StoredRound:
    root: bytes
    leaves: int
    block: int
    timestamp: int
    publisher: str


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
        self._receipts = Receipts(self._node, config)
        self._transactions = Transactions(config, self._node, self._receipts, self._account, self._anchored_sibling)

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
        return self._transactions.signer().address

    def _contract_address(self) -> str:
        if self.config.contract is None:
            raise AnchorChainError("no contract address configured (deploy first)")
        return self.config.contract

    def _contract(self) -> Contract:
        contract: Contract = self._node.w3.eth.contract(  # type: ignore[call-overload]
            address=self._contract_address(), abi=self._artifact.abi)
        return contract

    def _encode(self, fn: str, args: list[Any]) -> bytes:
        return bytes(HexBytes(self._codec.encode_abi(fn, args=args)))

    # -- transactions (contracts.transactions) --------------------------------------------------------

    def check_chain(self) -> int:
        """Refuse a node that serves another chain than the configured one."""
        return self._transactions.check_chain()

    def sign_anchor(self, round_id: int, root: bytes, leaves: int, *, replacing: SignedTx | None = None) -> SignedTx:
        """Sign `anchor(round_id, root, leaves)`; raises `Reverted` if the contract would refuse it."""
        if not 0 <= round_id < 2**64:
            raise AnchorChainError(f"round id {round_id} does not fit uint64")
        if len(root) != 32:
            raise AnchorChainError(f"root must be 32 bytes, got {len(root)}")
        if not 0 <= leaves < 2**32:
            raise AnchorChainError(f"leaf count {leaves} does not fit uint32")
        data = self._encode("anchor", [round_id, root, leaves])
        return self._transactions.sign(to=self._contract_address(), data=data, replacing=replacing)

    def send(self, signed: SignedTx) -> None:
        """Broadcast; idempotent ("already known" is fine, and so is "nonce too low" once it is mined)."""
        self._transactions.send(signed)

    def track(self, signed: SignedTx) -> TxStatus:
        """One non-blocking look at a transaction.

        For an anchor whose nonce was taken by another of our transactions for the same round and
        root (an earlier or later version of it), the `Mined` of that transaction is returned.
        """
        return self._transactions.track(signed)

    def confirm(self, signed: SignedTx, *, on_replace: Callable[[SignedTx], None] | None = None) -> Mined:
        """Send, then watch until final; re-send what was dropped, replace what waits too long."""
        return self._transactions.confirm(signed, on_replace=on_replace)

    def wait_final(self, tx_hash: str) -> Mined:
        """Wait until an already-sent transaction, known by hash only, is mined and final."""
        return self._transactions.wait_final(tx_hash)

    def block_number(self) -> int:
        """The node's latest block number."""
        return self._node.call("read the block number", lambda w3: int(w3.eth.block_number))

    def pending_nonce(self) -> int:
        """The publisher's next nonce, counting its transactions in the pool."""
        return self._transactions.pending_nonce()

    def _anchored_sibling(self, signed: SignedTx, account: str) -> Mined | None:
        """The `Mined` of the transaction that anchored the same round and root from this account, if any."""
        fields = TypedTransaction.from_bytes(HexBytes(signed.raw)).as_dict()
        if self.config.contract is None or not fields.get("to") or \
                to_checksum_address(fields["to"]) != self.config.contract:
            return None
        try:
            fn, args = self._codec.decode_function_input(to_hex(fields["data"]))
        except ValueError:
            return None
        if fn.fn_name != "anchor":
            return None
        for event in self.events(round_id=int(args["round"])):
            if event.publisher == account and event.root == bytes(args["root"]):
                receipt = self._receipts.receipt(event.tx_hash)
                return self._receipts.mined(receipt) if receipt is not None else None
        return None

    # -- the contract's operations --------------------------------------------------------------------

    def deploy(self) -> str:
        """Deploy the committed artifact and wait for its confirmation; returns the contract's EIP-55 address."""
        mined = self.confirm(self._transactions.sign(to=None, data=bytes(HexBytes(self._artifact.bytecode))))
        receipt = self._receipts.receipt(mined.tx_hash)
        if receipt is None or not receipt.get("contractAddress"):
            raise AnchorChainError(f"deployment {mined.tx_hash} has no contract address")
        return str(to_checksum_address(receipt["contractAddress"]))

    def add_publisher(self, address: str) -> Mined:
        return self.confirm(self._transactions.sign(to=self._contract_address(), data=self._encode(
            "addPublisher", [checksum_address(address)])))

    def remove_publisher(self, address: str) -> Mined:
        return self.confirm(self._transactions.sign(to=self._contract_address(), data=self._encode(
            "removePublisher", [checksum_address(address)])))

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
        if tx_hash is not None:
            return anchored_in_tx(self._receipts, contract, tx_hash, round_id)
        to_block: int | str = "latest"
        if round_id is not None:
            stored = self.round(round_id)
            if stored is None:
                return []
            from_block = to_block = stored.block
        return anchored_in_blocks(self._node, contract, from_block, to_block, round_id)


def checksum_address(address: str) -> str:
    """`address` in its EIP-55 form (any case accepted); AnchorChainError if it is not an address."""
    if not is_address(address):
        raise AnchorChainError(f"{address!r} is not an Ethereum address")
    return str(to_checksum_address(address))
