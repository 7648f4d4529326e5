"""Fixtures for the chain client: one anvil node per xdist worker, a fresh chain state per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from contracts.chain import AnchorChain
from contracts.config import ChainConfig
from tests.anvil import AnvilNode

#: fast polling and short back-off: the node is local
FAST: dict[str, Any] = {"confirmations": 1, "poll_interval": 0.02, "rpc_backoff": 0.02, "receipt_timeout": 30.0}

ChainFactory = Callable[..., AnchorChain]


@pytest.fixture(scope="session")
def node() -> Iterator[AnvilNode]:
    with AnvilNode() as started:
        yield started


@pytest.fixture
def fresh(node: AnvilNode) -> Iterator[AnvilNode]:
    """The node, rolled back after the test to the state before it (automine on, empty pool)."""
    node.set_automine(True)
    snapshot = node.snapshot()
    try:
        yield node
    finally:
        node.rpc("anvil_dropAllTransactions")
        node.set_automine(True)
        node.revert(snapshot)


@pytest.fixture
def make_chain(fresh: AnvilNode) -> Iterator[ChainFactory]:
    """AnchorChain(key index, contract, **config overrides); every one made is closed after the test."""
    made: list[AnchorChain] = []

    def make(key: int = 0, contract: str | None = None, **overrides: Any) -> AnchorChain:
        settings: dict[str, Any] = {"rpc_url": fresh.rpc_url, "chain_id": fresh.chain_id, **FAST, **overrides}
        if "max_fee_gwei" in settings:
            settings["max_fee_gwei"] = Decimal(str(settings["max_fee_gwei"]))
        chain = AnchorChain(ChainConfig(contract=contract, **settings), fresh.keys[key])
        made.append(chain)
        return chain

    yield make
    for chain in made:
        chain.close()


@pytest.fixture
def contract(make_chain: ChainFactory) -> str:
    """A LedgerAnchor freshly deployed by key 0 (its owner and first publisher)."""
    return make_chain(0).deploy()


@pytest.fixture
def chain(make_chain: ChainFactory, contract: str) -> AnchorChain:
    """The owner's client for the fresh contract."""
    return make_chain(0, contract)
