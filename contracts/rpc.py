"""One JSON-RPC endpoint: a web3 instance behind retries and error translation.

Every call the chain client and the online verifier make goes through `Node.call`, which retries
an endpoint that is down (connection refused, timeout, HTTP 429/5xx) with exponential back-off and
then raises `RpcUnavailable`; a JSON-RPC error becomes `AnchorChainError`, a revert `Reverted`. No
web3 or requests exception leaves this module's callers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

import requests
from eth_abi.abi import decode as abi_decode
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import (
    ContractLogicError,
    ProviderConnectionError,
    RequestTimedOut,
    TimeExhausted,
    TooManyRequests,
    Web3Exception,
    Web3RPCError,
)

from contracts.errors import AnchorChainError, Reverted, RpcUnavailable

__all__ = ["Node", "endpoint_label", "revert_reason", "to_hex"]

T = TypeVar("T")

log = logging.getLogger(__name__)

_ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
_PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)


def endpoint_label(rpc_url: str) -> str:
    """scheme://host:port of an RPC URL: its path and query often hold an API key, so never print them."""
    try:
        parts = urlsplit(rpc_url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparsable RPC URL>"
    return f"{parts.scheme}://{host}{port}"


def to_hex(value: bytes | str) -> str:
    """A node's bytes (a hash, a topic, call data) as 0x-prefixed lowercase hex."""
    return HexBytes(value).to_0x_hex()


def _one_line(text: object, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def revert_reason(exc: ContractLogicError) -> str:
    """The revert string of a failed call: decoded from the revert data, else the node's message."""
    data = exc.data
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str):
        hexdata = data.removeprefix("Reverted ").strip()
        try:
            raw = bytes.fromhex(hexdata.removeprefix("0x"))
        except ValueError:
            raw = b""
        try:
            if raw[:4] == _ERROR_SELECTOR:
                return str(abi_decode(["string"], raw[4:])[0])
            if raw[:4] == _PANIC_SELECTOR:
                return f"panic 0x{abi_decode(['uint256'], raw[4:])[0]:02x}"
        except Exception:  # undecodable revert data: fall back to the message
            pass
    message = str(exc.message or exc)
    return _one_line(message.removeprefix("execution reverted: ").removeprefix("execution reverted") or "reverted")


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, requests.HTTPError):
        status = exc.response.status_code if exc.response is not None else 0
        return status == 429 or status >= 500
    return isinstance(exc, (requests.ConnectionError, requests.Timeout, ProviderConnectionError, RequestTimedOut,
                            TimeExhausted, TooManyRequests, ConnectionError, TimeoutError))


class Node:
    """A web3 client for one endpoint with its own HTTP session (closed by `close`)."""

    def __init__(self, rpc_url: str, *, attempts: int = 5, backoff: float = 0.25, timeout: float = 10.0) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.label = endpoint_label(rpc_url)
        self._secret = rpc_url
        self.attempts = attempts
        self.backoff = backoff
        self._session = requests.Session()
        provider = Web3.HTTPProvider(rpc_url, session=self._session, request_kwargs={"timeout": timeout},
                                     exception_retry_configuration=None)
        self.w3 = Web3(provider)

    def close(self) -> None:
        self._session.close()

    def _scrub(self, text: str) -> str:
        """`text` without the endpoint's full URL (only its `label`)."""
        return text.replace(self._secret, self.label) if self._secret != self.label else text

    def __repr__(self) -> str:
        return f"Node({self.label})"

    def call(self, what: str, fn: Callable[[Web3], T]) -> T:
        """Run `fn(w3)`, retrying while the endpoint is unreachable; translate every failure.

        `what` names the operation for messages ("read the chain id"). `fn` may be re-run, so it must
        be a read or an idempotent submission.
        """
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                return fn(self.w3)
            except ContractLogicError as exc:
                reason = revert_reason(exc)
                raise Reverted(f"{what}: reverted: {reason}", reason=reason) from None
            except Exception as exc:
                if not _transient(exc):
                    if isinstance(exc, AnchorChainError):
                        raise
                    if isinstance(exc, Web3RPCError):
                        message = self._scrub(_one_line(exc.message))
                        raise AnchorChainError(f"{what}: the node at {self.label} refused: {message}",
                                               rpc_message=message) from None
                    if isinstance(exc, requests.RequestException):
                        # requests' messages carry the whole URL, whose path often holds an API key
                        status = exc.response.status_code if exc.response is not None else None
                        detail = f"HTTP {status}" if status is not None else type(exc).__name__
                        raise AnchorChainError(f"{what}: the node at {self.label} answered {detail}") from None
                    if isinstance(exc, (Web3Exception, ValueError, TypeError, KeyError)):
                        raise AnchorChainError(f"{what}: unexpected answer from {self.label}: "
                                               f"{type(exc).__name__}: {self._scrub(_one_line(exc))}") from None
                    raise
                if attempt == self.attempts:
                    raise RpcUnavailable(
                        f"the Ethereum RPC endpoint {self.label} is unreachable ({what}; {self.attempts} attempts "
                        f"over {self._total_wait():.1f}s, last: {type(exc).__name__})",
                        endpoint=self.label, attempts=self.attempts,
                    ) from None
            log.warning("the Ethereum RPC endpoint %s is unreachable (%s, attempt %d of %d); retrying in %.2fs",
                        self.label, what, attempt, self.attempts, delay)
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def _total_wait(self) -> float:
        return float(sum(self.backoff * 2**i for i in range(self.attempts - 1)))
