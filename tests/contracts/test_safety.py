"""What the client refuses, and how it behaves when the node is away: wrong chain, fee cap, the
private key's secrecy, an RPC endpoint that is down (given up on) or restarts (survived)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from contracts.chain import AnchorChain
from contracts.config import ChainConfig
from contracts.errors import AnchorChainError, FeeCapExceeded, Reverted, RpcUnavailable, WrongChain
from contracts.receipts import Mined
from tests.anvil import AnvilNode, free_port
from tests.contracts.conftest import FAST, ChainFactory
from tests.contracts.helpers import ROOT_A, wait_for


def test_a_node_on_another_chain_is_refused_before_signing(
        chain: AnchorChain, contract: str, make_chain: ChainFactory) -> None:
    nonce = chain.pending_nonce()
    elsewhere = make_chain(0, contract, chain_id=11155111)
    with pytest.raises(WrongChain) as caught:
        elsewhere.sign_anchor(1, ROOT_A, 1)
    assert (caught.value.expected, caught.value.actual) == (11155111, 31337)
    with pytest.raises(WrongChain):
        elsewhere.deploy()
    with pytest.raises(WrongChain):
        elsewhere.add_publisher(elsewhere.address)
    assert chain.pending_nonce() == nonce


def test_fees_above_the_cap_are_refused(contract: str, make_chain: ChainFactory) -> None:
    stingy = make_chain(0, contract, max_fee_gwei="0.000001")  # 1000 wei; anvil asks ~1 gwei of tip alone
    with pytest.raises(FeeCapExceeded) as caught:
        stingy.sign_anchor(1, ROOT_A, 1)
    assert caught.value.cap_wei == 1000 and caught.value.needed_wei > 1000


def test_a_replacement_above_the_cap_is_refused(chain: AnchorChain, contract: str, make_chain: ChainFactory) -> None:
    signed = chain.sign_anchor(1, ROOT_A, 1)
    capped = make_chain(0, contract, max_fee_gwei=Decimal(signed.max_fee_per_gas) / 10**9)
    assert capped.sign_anchor(2, ROOT_A, 1).max_fee_per_gas <= signed.max_fee_per_gas
    with pytest.raises(FeeCapExceeded):
        capped.sign_anchor(1, ROOT_A, 1, replacing=signed)


def test_the_private_key_never_appears_in_repr_str_or_errors(
        contract: str, make_chain: ChainFactory, fresh: AnvilNode) -> None:
    key = fresh.keys[3]
    secrets = {key.lower(), key.lower().removeprefix("0x"), key.lower().removeprefix("0x")[:16]}
    chain = make_chain(3, contract)
    texts = [repr(chain), str(chain), repr(vars(chain)), repr(chain.config)]
    for attempt in (lambda: chain.sign_anchor(1, ROOT_A, 1),
                    lambda: make_chain(3, contract, chain_id=1).sign_anchor(1, ROOT_A, 1),
                    lambda: make_chain(3, contract, max_fee_gwei="0.000001").add_publisher(chain.address)):
        with pytest.raises(AnchorChainError) as caught:
            attempt()
        texts += [str(caught.value), repr(caught.value), repr(caught.value.fields)]
    for text in texts:
        assert not any(secret in text.lower() for secret in secrets), text


def test_an_invalid_key_is_refused_without_echoing_it(fresh: AnvilNode) -> None:
    bad = "0x" + "ab" * 31 + "zz"
    config = ChainConfig(rpc_url=fresh.rpc_url, chain_id=fresh.chain_id, contract=None)
    with pytest.raises(AnchorChainError) as caught:
        AnchorChain(config, bad)
    assert "abab" not in str(caught.value) and caught.value.__cause__ is None


def test_an_unreachable_endpoint_raises_rpc_unavailable_after_the_retries() -> None:
    url = f"http://127.0.0.1:{free_port()}/v3/SECRETAPIKEY"
    chain = AnchorChain(ChainConfig(rpc_url=url, chain_id=31337, contract=None, rpc_attempts=3, rpc_backoff=0.01))
    retries: list[logging.LogRecord] = []
    with _captured("contracts.rpc", retries), pytest.raises(RpcUnavailable) as caught:
        chain.block_number()
    chain.close()
    message = str(caught.value)
    assert "unreachable" in message and "3 attempts" in message and "127.0.0.1" in message
    assert "SECRETAPIKEY" not in message and "\n" not in message
    assert len(retries) == 2  # three attempts, two waits between them
    assert "SECRETAPIKEY" not in repr(chain.config)


def test_an_endpoint_that_stops_mid_round_is_survived_when_it_comes_back() -> None:
    with AnvilNode() as node:
        config = {**FAST, "rpc_attempts": 10, "rpc_backoff": 0.05}
        owner = AnchorChain(ChainConfig(rpc_url=node.rpc_url, chain_id=node.chain_id, contract=None, **config),
                            node.keys[0])
        contract = owner.deploy()
        chain = AnchorChain(ChainConfig(rpc_url=node.rpc_url, chain_id=node.chain_id, contract=contract, **config),
                            node.keys[0])
        signed = chain.sign_anchor(1, ROOT_A, 1)
        node.stop()
        retries: list[logging.LogRecord] = []
        outcome: list[Mined | BaseException] = []

        def run() -> None:
            try:
                outcome.append(chain.confirm(signed))
            except BaseException as exc:
                outcome.append(exc)

        with _captured("contracts.rpc", retries):
            worker = threading.Thread(target=run, daemon=True)
            worker.start()
            wait_for(lambda: len(retries) >= 2, "the client retrying the stopped endpoint")
            node.start()  # same port, same chain state
            worker.join(30)
        [result] = outcome
        assert isinstance(result, Mined), result
        assert result.tx_hash == signed.tx_hash
        stored = chain.round(1)
        assert stored is not None and stored.root == ROOT_A
        with pytest.raises(Reverted):  # the state from before the outage is still there
            chain.sign_anchor(1, ROOT_A, 1)
        owner.close()
        chain.close()


class _Collect(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record)


@contextmanager
def _captured(name: str, into: list[logging.LogRecord]) -> Iterator[None]:
    """Collect a logger's warnings from every thread (the client retries in a worker thread)."""
    logger, handler = logging.getLogger(name), _Collect(into)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize("status", [403, 404, 401])
def test_an_endpoint_refusing_over_http_is_named_without_its_secret_path(status: int) -> None:
    """Providers put the API key in the URL's path; requests' own messages repeat the whole URL."""

    class Refusing(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/v3/SECRETAPIKEY?token=SECRETTOKEN"
        chain = AnchorChain(ChainConfig(rpc_url=url, chain_id=31337, contract=None, rpc_attempts=1))
        with pytest.raises(AnchorChainError) as caught:
            chain.block_number()
        chain.close()
    finally:
        server.shutdown()
        server.server_close()
    message = str(caught.value)
    assert f"HTTP {status}" in message and "127.0.0.1" in message
    assert "SECRET" not in message and "SECRET" not in repr(caught.value.fields)
