"""Getting an anchor onto the chain for good: dropped, reorganised-out, stuck and superseded
transactions, and the confirmations rule (N blocks, or at/below the node's finalized block)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from eth_utils.crypto import keccak

from contracts.chain import AnchorChain
from contracts.errors import TransactionTimeout
from contracts.fees import bump_fee
from contracts.receipts import Dropped, Mined, Pending
from contracts.transactions import SignedTx
from tests.anvil import AnvilNode
from tests.contracts.conftest import ChainFactory
from tests.contracts.helpers import ROOT_A, ROOT_B, forced_tx, mined_receipt, wait_for


class Background:
    """Run `fn` in a thread; `result()` joins with a deadline and re-raises its exception."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self._value: Any = None
        self._error: BaseException | None = None

        def run() -> None:
            try:
                self._value = fn()
            except BaseException as exc:  # handed to the test thread
                self._error = exc

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self, timeout: float = 30.0) -> Any:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError("background call did not finish")
        if self._error is not None:
            raise self._error
        return self._value


def test_a_dropped_transaction_is_detected_and_sent_again(chain: AnchorChain, fresh: AnvilNode) -> None:
    fresh.set_automine(False)
    signed = chain.sign_anchor(1, ROOT_A, 2)
    chain.send(signed)
    assert chain.track(signed) == Pending(signed.tx_hash)

    fresh.rpc("anvil_dropTransaction", signed.tx_hash)
    status = chain.track(signed)
    assert isinstance(status, Dropped) and not status.nonce_taken

    confirming = Background(lambda: chain.confirm(signed))
    wait_for(lambda: isinstance(chain.track(signed), Pending), "confirm() to send the dropped transaction again")
    fresh.mine()
    mined = confirming.result()
    assert isinstance(mined, Mined) and mined.tx_hash == signed.tx_hash
    assert chain.round(1) is not None


def test_a_reorganised_out_anchor_is_detected_and_sent_again(chain: AnchorChain, fresh: AnvilNode) -> None:
    signed = chain.sign_anchor(1, ROOT_A, 2)
    first = chain.confirm(signed)
    fresh.mine()
    fresh.rpc("anvil_reorg", 2, [])  # the last two blocks, the anchor's among them, replaced by empty ones
    assert fresh.rpc("eth_getBlockByNumber", hex(first.block), False)["hash"] != first.block_hash
    assert isinstance(chain.track(signed), Dropped)
    assert chain.round(1) is None

    again = chain.confirm(signed)
    assert again.tx_hash == signed.tx_hash and again.block_hash != first.block_hash
    assert [e.block_hash for e in chain.events(round_id=1)] == [again.block_hash]


def test_a_receipt_whose_block_is_no_longer_canonical_is_not_mined(chain: AnchorChain, fresh: AnvilNode) -> None:
    mined = chain.anchor(1, ROOT_A, 2)
    receipt = dict(chain._receipts.receipt(mined.tx_hash))
    assert chain._receipts.mined(receipt) == mined
    receipt["blockHash"] = bytes(32)  # what a node that keeps stale receipts answers after a reorg
    assert chain._receipts.mined(receipt) is None


def test_a_pending_transaction_is_replaced_with_bumped_fees_and_only_one_anchor_lands(
        contract: str, make_chain: ChainFactory, fresh: AnvilNode) -> None:
    chain = make_chain(0, contract, replace_after=0.1)
    fresh.set_automine(False)
    signed = chain.sign_anchor(1, ROOT_A, 2)
    replacements: list[SignedTx] = []
    unknown_when_persisted: list[bool] = []

    def on_replace(new: SignedTx) -> None:  # the caller persists here: the node must not have it yet
        unknown_when_persisted.append(fresh.rpc("eth_getTransactionByHash", new.tx_hash) is None)
        replacements.append(new)

    confirming = Background(lambda: chain.confirm(signed, on_replace=on_replace))
    wait_for(lambda: bool(replacements) and fresh.rpc("eth_getTransactionByHash", replacements[0].tx_hash)
             is not None, "a replacement in the pool")
    fresh.mine()
    mined = confirming.result()

    assert unknown_when_persisted and all(unknown_when_persisted)
    assert mined.tx_hash in {r.tx_hash for r in replacements}
    assert {r.nonce for r in replacements} == {signed.nonce}
    first = replacements[0]
    assert first.max_fee_per_gas >= bump_fee(signed.max_fee_per_gas) >= signed.max_fee_per_gas * 9 // 8
    assert first.max_priority_fee_per_gas >= bump_fee(signed.max_priority_fee_per_gas)
    assert fresh.rpc("eth_getTransactionReceipt", signed.tx_hash) is None
    [event] = chain.events(round_id=1)
    assert event.tx_hash == mined.tx_hash
    assert int(fresh.rpc("eth_getTransactionByHash", mined.tx_hash)["nonce"], 16) == signed.nonce


def test_a_replacement_that_lost_to_the_original_reports_the_original(chain: AnchorChain, fresh: AnvilNode) -> None:
    fresh.set_automine(False)
    original = chain.sign_anchor(1, ROOT_A, 2)
    replacement = chain.sign_anchor(1, ROOT_A, 2, replacing=original)  # persisted, then the process died
    assert replacement.nonce == original.nonce and replacement.tx_hash != original.tx_hash
    chain.send(original)
    fresh.mine()

    status = chain.track(replacement)
    assert isinstance(status, Mined) and status.tx_hash == original.tx_hash
    assert chain.confirm(replacement).tx_hash == original.tx_hash  # "nonce too low" is not an error here
    assert len(chain.events(round_id=1)) == 1


def test_a_nonce_taken_by_another_transaction_is_re_signed_with_a_fresh_one(
        chain: AnchorChain, fresh: AnvilNode) -> None:
    signed = chain.sign_anchor(1, ROOT_A, 2)
    other = forced_tx(chain, fresh, 0, keccak(text="addPublisher(address)")[:4] + bytes(12)
                      + bytes.fromhex(fresh.addresses[1][2:]), nonce=signed.nonce)
    chain.send(other)
    mined_receipt(fresh, other.tx_hash)
    status = chain.track(signed)
    assert isinstance(status, Dropped) and status.nonce_taken

    replacements: list[SignedTx] = []
    mined = chain.confirm(signed, on_replace=replacements.append)
    [fresh_nonce] = replacements
    assert fresh_nonce.nonce == signed.nonce + 1
    assert mined.tx_hash == fresh_nonce.tx_hash
    assert chain.round(1) is not None


def test_send_is_idempotent_before_and_after_mining(chain: AnchorChain, fresh: AnvilNode) -> None:
    fresh.set_automine(False)
    signed = chain.sign_anchor(1, ROOT_A, 2)
    chain.send(signed)
    chain.send(signed)  # already known
    fresh.mine()
    chain.send(signed)  # nonce too low, but it is this one that was mined
    assert isinstance(chain.track(signed), Mined)
    assert len(chain.events(round_id=1)) == 1


def test_confirmations_count_the_block_itself_and_final_needs_all_of_them(
        contract: str, make_chain: ChainFactory, fresh: AnvilNode) -> None:
    chain = make_chain(0, contract, confirmations=3)
    signed = chain.sign_anchor(1, ROOT_A, 2)
    chain.send(signed)
    mined_receipt(fresh, signed.tx_hash)
    seen = chain.track(signed)
    assert isinstance(seen, Mined) and (seen.confirmations, seen.final) == (1, False)

    confirming = Background(lambda: chain.confirm(signed))
    fresh.mine()
    seen = chain.track(signed)
    assert isinstance(seen, Mined) and (seen.confirmations, seen.final) == (2, False)
    assert not confirming.done or confirming.result() is None  # it cannot have returned yet
    fresh.mine()
    final = confirming.result()
    assert (final.confirmations, final.final) == (3, True)


def test_a_block_at_or_below_the_finalized_block_is_final(
        contract: str, make_chain: ChainFactory, fresh: AnvilNode) -> None:
    chain = make_chain(0, contract, confirmations=1000)
    signed = chain.sign_anchor(1, ROOT_A, 2)
    chain.send(signed)
    block = int(mined_receipt(fresh, signed.tx_hash)["blockNumber"], 16)
    fresh.mine(63)
    assert int(fresh.rpc("eth_getBlockByNumber", "finalized", False)["number"], 16) < block
    seen = chain.track(signed)
    assert isinstance(seen, Mined) and not seen.final
    fresh.mine(1)  # anvil's finalized block is 64 behind its head
    assert int(fresh.rpc("eth_getBlockByNumber", "finalized", False)["number"], 16) == block
    seen = chain.track(signed)
    assert isinstance(seen, Mined) and seen.final and seen.confirmations == 65


def test_a_transaction_never_mined_times_out(contract: str, make_chain: ChainFactory, fresh: AnvilNode) -> None:
    chain = make_chain(0, contract, receipt_timeout=0.3, replace_after=60.0)
    fresh.set_automine(False)
    signed = chain.sign_anchor(1, ROOT_A, 2)
    with pytest.raises(TransactionTimeout) as caught:
        chain.confirm(signed)
    assert caught.value.tx_hash == signed.tx_hash


def test_two_rounds_anchor_independently(chain: AnchorChain) -> None:
    chain.anchor(1, ROOT_A, 2)
    chain.anchor(2, ROOT_B, 3)
    assert [(e.round_id, e.root) for e in chain.events()] == [(1, ROOT_A), (2, ROOT_B)]
