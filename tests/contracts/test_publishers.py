"""Who may anchor: the owner (the deployer) adds and removes publishers; nobody else can."""

from __future__ import annotations

import pytest

from contracts.chain import AnchorChain
from contracts.errors import Reverted
from tests.anvil import AnvilNode
from tests.contracts.conftest import ChainFactory
from tests.contracts.helpers import ROOT_A, address_topic, logs_of, topic


def test_the_deployer_is_owner_and_first_publisher(chain: AnchorChain, fresh: AnvilNode) -> None:
    assert chain.owner() == chain.address
    assert chain.is_publisher(chain.address)
    assert not chain.is_publisher(fresh.addresses[1])


def test_the_owner_adds_and_removes_a_publisher_with_events(
        chain: AnchorChain, contract: str, make_chain: ChainFactory, fresh: AnvilNode) -> None:
    other = make_chain(1, contract)
    added = chain.add_publisher(other.address)
    assert chain.is_publisher(other.address)
    [log] = logs_of(fresh, added.tx_hash)
    assert log["address"].lower() == contract.lower()
    assert log["topics"] == [topic("PublisherAdded(address)"), address_topic(other.address)]
    other.anchor(1, ROOT_A, 1)

    removed = chain.remove_publisher(other.address)
    assert not chain.is_publisher(other.address)
    [log] = logs_of(fresh, removed.tx_hash)
    assert log["topics"] == [topic("PublisherRemoved(address)"), address_topic(other.address)]
    with pytest.raises(Reverted) as caught:
        other.sign_anchor(2, ROOT_A, 1)
    assert caught.value.reason == "LedgerAnchor: not a publisher"


def test_a_non_owner_cannot_add_or_remove_publishers(
        chain: AnchorChain, contract: str, make_chain: ChainFactory) -> None:
    stranger = make_chain(2, contract)
    with pytest.raises(Reverted) as caught:
        stranger.add_publisher(stranger.address)
    assert caught.value.reason == "LedgerAnchor: not the owner"
    assert not chain.is_publisher(stranger.address)
    with pytest.raises(Reverted) as caught:
        stranger.remove_publisher(chain.address)
    assert caught.value.reason == "LedgerAnchor: not the owner"
    assert chain.is_publisher(chain.address)
