"""A local anvil node for tests: a real Ethereum JSON-RPC endpoint on a free loopback port.

`AnvilNode` starts the pinned `contracts/node_modules/.bin/anvil` (installed by `make test`, which
runs `npm ci` in contracts/), learns its funded keys from ``--config-out``, and waits for it by
polling ``eth_chainId`` against a deadline. `stop()` ends it with SIGTERM so that anvil dumps its
state (``--dump-state``); `start()` again brings it back on the same port with that state loaded,
so a test can take the endpoint away mid-round and give it back.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["ANVIL", "AnvilNode", "free_port"]

ANVIL = Path(__file__).resolve().parent.parent / "contracts" / "node_modules" / ".bin" / "anvil"
HOST = "127.0.0.1"


def free_port() -> int:
    """A port that was free a moment ago (the caller retries if it was taken since)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class AnvilError(RuntimeError):
    pass


class AnvilNode:
    """One anvil process; a context manager that always kills it on exit."""

    def __init__(self, *, chain_id: int = 31337, accounts: int = 10, extra_args: tuple[str, ...] = (),
                 start_timeout: float = 30.0) -> None:
        if not ANVIL.exists():
            raise AnvilError(f"anvil not found at {ANVIL}: run `make test` (it runs `npm ci` in contracts/)")
        self.chain_id = chain_id
        self.accounts = accounts
        self.extra_args = extra_args
        self.start_timeout = start_timeout
        self._dir = tempfile.TemporaryDirectory(prefix="anvil-")
        self.workdir = Path(self._dir.name)
        self.state_file = self.workdir / "state.json"
        self.port: int | None = None
        self.keys: list[str] = []
        self.addresses: list[str] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None
        self._next_id = 0

    # -- lifecycle ------------------------------------------------------------------------------------

    @property
    def rpc_url(self) -> str:
        if self.port is None:
            raise AnvilError("anvil has not been started")
        return f"http://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> AnvilNode:
        """Start anvil; on a restart, the same port and the state dumped by `stop()`."""
        if self.running:
            raise AnvilError("anvil is already running")
        restart = self.port is not None
        for attempt in range(5):
            if not restart:
                self.port = free_port()
            if self._launch(restart):
                return self
            if restart and attempt >= 2:
                break
        raise AnvilError(f"anvil did not come up on {HOST}:{self.port}; log: {self._log_tail()}")

    def _launch(self, restart: bool) -> bool:
        config_out = self.workdir / "config.json"
        config_out.unlink(missing_ok=True)
        args = [
            str(ANVIL), "--host", HOST, "--port", str(self.port), "--chain-id", str(self.chain_id),
            "--accounts", str(self.accounts), "--config-out", str(config_out),
            "--dump-state", str(self.state_file), *self.extra_args,
        ]
        if restart and self.state_file.exists():
            args += ["--load-state", str(self.state_file)]
        if self._log is not None:
            self._log.close()
        self._log = (self.workdir / "anvil.log").open("ab")
        # a session of its own: the npm wrapper forwards SIGTERM to the native binary, and if it does
        # not go, the whole group (wrapper and binary, nothing else) is killed by its id
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:  # exited: most likely the port was taken meanwhile
                self._proc = None
                return False
            try:
                answered = int(self._raw_rpc("eth_chainId", [], timeout=1.0), 16)
            except (OSError, AnvilError, ValueError):
                time.sleep(0.05)
                continue
            if answered != self.chain_id:
                raise AnvilError(f"something else answers on {self.rpc_url} (chain id {answered})")
            if config_out.exists():
                config = json.loads(config_out.read_text())
                self.keys = list(config["private_keys"])
                self.addresses = list(config["available_accounts"])
                return True
            time.sleep(0.05)
        self._terminate()
        raise AnvilError(f"anvil did not answer within {self.start_timeout}s; log: {self._log_tail()}")

    def stop(self) -> None:
        """Stop anvil gracefully, so that it dumps its state for the next `start()`."""
        self._terminate()

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
        # the wrapper may exit before the binary has released the port; wait for the port itself
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self._port_in_use():
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def _port_in_use(self) -> bool:
        if self.port is None:
            return False
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            return sock.connect_ex((HOST, self.port)) == 0

    def close(self) -> None:
        self._terminate()
        if self._log is not None:
            self._log.close()
            self._log = None
        self._dir.cleanup()

    def __enter__(self) -> AnvilNode:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _log_tail(self) -> str:
        try:
            lines = (self.workdir / "anvil.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-3:]) or "(empty)"

    # -- test-only RPC --------------------------------------------------------------------------------

    def _raw_rpc(self, method: str, params: list[Any], timeout: float = 10.0) -> Any:
        self._next_id += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params}).encode()
        request = urllib.request.Request(self.rpc_url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read())
        if "error" in answer:
            raise AnvilError(f"{method}: {answer['error']}")
        return answer["result"]

    def rpc(self, method: str, *params: Any) -> Any:
        """A raw JSON-RPC call, for what tests do to the node (evm_mine, evm_snapshot, anvil_reorg…)."""
        return self._raw_rpc(method, list(params))

    def mine(self, blocks: int = 1) -> None:
        self.rpc("anvil_mine", hex(blocks))

    def block_number(self) -> int:
        return int(self.rpc("eth_blockNumber"), 16)

    def set_automine(self, on: bool) -> None:
        self.rpc("evm_setAutomine", on)

    def snapshot(self) -> str:
        snap: str = self.rpc("evm_snapshot")
        return snap

    def revert(self, snapshot: str) -> None:
        if not self.rpc("evm_revert", snapshot):
            raise AnvilError(f"evm_revert({snapshot}) refused")
