"""Online verification of an anchor receipt's chain part: passes for a real anchor, and names what
differs when any one input is changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from contracts.chain import AnchorChain
from contracts.errors import AnchorMismatch, RpcUnavailable
from contracts.online import verify_anchor_online
from contracts.receipts import Mined
from tests.anvil import AnvilNode, free_port
from tests.contracts.conftest import ChainFactory
from tests.contracts.helpers import ROOT_A, ROOT_B
from verification.errors import VerificationError


@dataclass(frozen=True)
class Anchored:
    rpc_url: str
    chain_id: int
    contract: str
    round_id: int
    root: bytes
    leaves: int
    tx_hash: str
    block: int
    block_hash: str

    def kwargs(self, **changes: Any) -> dict[str, Any]:
        values = {k: v for k, v in self.__dict__.items() if k != "rpc_url"}
        values.update(changes)
        return values


@pytest.fixture
def anchored(chain: AnchorChain, fresh: AnvilNode) -> Anchored:
    chain.anchor(1, ROOT_B, 5)  # another round, so a changed round id finds a root, just not this one
    mined = chain.anchor(2, ROOT_A, 3)
    return Anchored(fresh.rpc_url, fresh.chain_id, str(chain.config.contract), 2, ROOT_A, 3, mined.tx_hash,
                    mined.block, mined.block_hash)


def test_a_real_anchor_verifies_online(anchored: Anchored, fresh: AnvilNode) -> None:
    fresh.mine(2)
    checked = verify_anchor_online(anchored.rpc_url, **anchored.kwargs(), min_confirmations=3)
    assert checked["ok"] is True
    assert (checked["chain_id"], checked["contract"], checked["round"]) == (31337, anchored.contract, 2)
    assert (checked["confirmations"], checked["final"]) == (3, False)
    assert checked["tx"] == anchored.tx_hash and checked["block_hash"] == anchored.block_hash


def _other_contract(make_chain: ChainFactory) -> str:
    other = make_chain(0).deploy()
    make_chain(0, other).anchor(2, ROOT_A, 3)  # same round, root and leaves, on another contract
    return other


@pytest.mark.parametrize(("change", "what"), [
    ("root", "root"),
    ("round", "root"),
    ("unanchored_round", "round"),
    ("leaves", "leaves"),
    ("tx", "tx"),
    ("unknown_tx", "tx"),
    ("block", "block"),
    ("block_hash", "block_hash"),
    ("chain_id", "chain_id"),
    ("contract", "block"),  # the other contract anchored that round in another block
    ("no_contract", "contract"),
    ("confirmations", "confirmations"),
])
def test_a_changed_input_fails_online_verification_naming_it(
        anchored: Anchored, make_chain: ChainFactory, fresh: AnvilNode, change: str, what: str) -> None:
    other_tx = make_chain(0, anchored.contract).anchor(3, ROOT_B, 1).tx_hash
    table: dict[str, dict[str, Any]] = {
        "root": {"root": ROOT_B},
        "round": {"round_id": 1},
        "unanchored_round": {"round_id": 99},
        "leaves": {"leaves": 4},
        "tx": {"tx_hash": other_tx},
        "unknown_tx": {"tx_hash": "0x" + "11" * 32},
        "block": {"block": anchored.block + 1},
        "block_hash": {"block_hash": "0x" + "22" * 32},
        "chain_id": {"chain_id": 1},
        "contract": {"contract": _other_contract(make_chain) if change == "contract" else None},
        "no_contract": {"contract": fresh.addresses[5]},
        "confirmations": {"min_confirmations": 50},
    }
    changes = table[change]
    with pytest.raises(AnchorMismatch) as caught:
        verify_anchor_online(anchored.rpc_url, **anchored.kwargs(**changes))
    assert isinstance(caught.value, VerificationError)
    assert caught.value.what == what, str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_tx_of_the_same_block_that_did_not_emit_the_event_fails(
        chain: AnchorChain, fresh: AnvilNode) -> None:
    fresh.set_automine(False)
    anchoring = chain.sign_anchor(1, ROOT_A, 3)
    chain.send(anchoring)
    other = chain.sign_anchor(2, ROOT_B, 1)
    chain.send(other)
    fresh.mine()
    mined = chain.track(anchoring)
    assert isinstance(mined, Mined)
    with pytest.raises(AnchorMismatch) as caught:
        verify_anchor_online(fresh.rpc_url, chain_id=fresh.chain_id, contract=str(chain.config.contract),
                             round_id=1, root=ROOT_A, leaves=3, tx_hash=other.tx_hash, block=mined.block,
                             block_hash=mined.block_hash)
    assert caught.value.what == "event"


def test_an_unreachable_node_is_not_a_verification_failure() -> None:
    with pytest.raises(RpcUnavailable):
        verify_anchor_online(f"http://127.0.0.1:{free_port()}", chain_id=31337,
                             contract="0x5FbDB2315678afecb367f032d93F642f64180aa3", round_id=1, root=ROOT_A,
                             leaves=1, tx_hash="0x" + "11" * 32, block=1, block_hash="0x" + "22" * 32,
                             rpc_attempts=2)
