"""Anchoring a round: stored once, emitted, decoded; refusals carry the contract's reason."""

from __future__ import annotations

import pytest

from contracts.chain import AnchorChain
from contracts.errors import AnchorChainError, Reverted
from contracts.receipts import Mined
from tests.anvil import AnvilNode
from tests.contracts.conftest import ChainFactory
from tests.contracts.helpers import ROOT_A, ROOT_B, anchor_data, forced_tx, mined_receipt, topic


def test_a_publisher_anchor_is_stored_emitted_and_decoded(chain: AnchorChain, fresh: AnvilNode) -> None:
    mined = chain.anchor(7, ROOT_A, 3)
    assert mined.final and mined.confirmations == 1

    stored = chain.round(7)
    assert stored is not None
    assert (stored.root, stored.leaves, stored.block, stored.publisher) == (ROOT_A, 3, mined.block, chain.address)
    block = fresh.rpc("eth_getBlockByNumber", hex(mined.block), False)
    assert stored.timestamp == int(block["timestamp"], 16)

    [by_round] = chain.events(round_id=7)
    [by_tx] = chain.events(tx_hash=mined.tx_hash)
    assert by_round == by_tx
    assert (by_round.round_id, by_round.root, by_round.leaves, by_round.publisher) == (7, ROOT_A, 3, chain.address)
    assert (by_round.tx_hash, by_round.block, by_round.block_hash) == (mined.tx_hash, mined.block, mined.block_hash)
    assert by_round.contract == chain.config.contract
    assert [e.round_id for e in chain.events()] == [7]


def test_a_round_not_anchored_reads_as_none_and_has_no_events(chain: AnchorChain) -> None:
    chain.anchor(1, ROOT_A, 1)
    assert chain.round(2) is None
    assert chain.events(round_id=2) == []


def test_anchor_gas_is_the_same_for_every_round(chain: AnchorChain) -> None:
    first = chain.anchor(1, ROOT_A, 1)
    second = chain.anchor(2, ROOT_B, 9)
    assert first.gas_used == second.gas_used
    assert first.gas_used < 75_000  # two fresh slots, one event, the publisher check


def test_a_non_publisher_anchor_is_refused_at_signing_with_its_reason(
        contract: str, make_chain: ChainFactory) -> None:
    stranger = make_chain(3, contract)
    with pytest.raises(Reverted) as caught:
        stranger.sign_anchor(1, ROOT_A, 1)
    assert caught.value.reason == "LedgerAnchor: not a publisher"


def test_a_repeated_round_is_refused_at_signing_with_its_reason(chain: AnchorChain) -> None:
    chain.anchor(1, ROOT_A, 1)
    with pytest.raises(Reverted) as caught:
        chain.sign_anchor(1, ROOT_B, 1)
    assert caught.value.reason == "LedgerAnchor: round already anchored"
    stored = chain.round(1)
    assert stored is not None and stored.root == ROOT_A


@pytest.mark.parametrize(("root", "leaves", "reason"), [
    (bytes(32), 1, "LedgerAnchor: empty root"),
    (ROOT_A, 0, "LedgerAnchor: no leaves"),
])
def test_an_empty_root_or_no_leaves_is_refused(chain: AnchorChain, root: bytes, leaves: int, reason: str) -> None:
    with pytest.raises(Reverted) as caught:
        chain.sign_anchor(1, root, leaves)
    assert caught.value.reason == reason


def test_arguments_that_do_not_fit_the_abi_are_refused_before_the_node(chain: AnchorChain) -> None:
    with pytest.raises(AnchorChainError, match="uint64"):
        chain.sign_anchor(2**64, ROOT_A, 1)
    with pytest.raises(AnchorChainError, match="32 bytes"):
        chain.sign_anchor(1, ROOT_A[:31], 1)
    with pytest.raises(AnchorChainError, match="uint32"):
        chain.sign_anchor(1, ROOT_A, 2**32)


def test_a_forced_non_publisher_anchor_reverts_on_chain_with_its_reason(
        chain: AnchorChain, contract: str, make_chain: ChainFactory, fresh: AnvilNode) -> None:
    stranger = make_chain(3, contract)
    signed = forced_tx(stranger, fresh, 3, anchor_data(1, ROOT_A, 1))
    stranger.send(signed)
    assert mined_receipt(fresh, signed.tx_hash)["status"] == "0x0"
    with pytest.raises(Reverted) as caught:
        stranger.track(signed)
    assert caught.value.reason == "LedgerAnchor: not a publisher"
    assert caught.value.tx_hash == signed.tx_hash
    with pytest.raises(Reverted):
        stranger.confirm(signed)
    assert chain.round(1) is None


def test_a_forced_repeated_round_reverts_on_chain_with_its_reason(chain: AnchorChain, fresh: AnvilNode) -> None:
    chain.anchor(1, ROOT_A, 1)
    signed = forced_tx(chain, fresh, 0, anchor_data(1, ROOT_B, 1))
    chain.send(signed)
    mined_receipt(fresh, signed.tx_hash)
    with pytest.raises(Reverted) as caught:
        chain.track(signed)
    assert caught.value.reason == "LedgerAnchor: round already anchored"
    stored = chain.round(1)
    assert stored is not None and stored.root == ROOT_A


def test_an_out_of_gas_anchor_is_reported_as_such(chain: AnchorChain, fresh: AnvilNode) -> None:
    signed = forced_tx(chain, fresh, 0, anchor_data(1, ROOT_A, 1), gas=30_000)
    chain.send(signed)
    mined_receipt(fresh, signed.tx_hash)
    with pytest.raises(Reverted) as caught:
        chain.track(signed)
    assert "gas" in caught.value.reason
    assert chain.round(1) is None


def test_events_by_transaction_ignore_other_contracts_logs(chain: AnchorChain, make_chain: ChainFactory) -> None:
    other_contract = make_chain(0).deploy()
    other = make_chain(0, other_contract)
    mined = other.anchor(1, ROOT_A, 1)
    assert chain.events(tx_hash=mined.tx_hash) == []
    assert [e.contract for e in other.events(tx_hash=mined.tx_hash)] == [other_contract]
    assert topic("Anchored(uint64,bytes32,uint32,address)")  # the event signature the ABI names
    assert isinstance(mined, Mined)
