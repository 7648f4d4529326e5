"""Two uvicorn workers appending to one PostgreSQL log: one chain, no gaps, no duplicates, no fork.

`caseledger serve --workers 2` runs as a subprocess (its own process group, always ended); many
threads post interactions at once, so both workers sequence appends against the same log head.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from ledger.service import Ledger
from ledger.settings import Settings
from tests.conftest import TEST_MASTER_KEY
from verification.entry import ZERO_HASH

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
TENANT = "acme"
CLIENTS = 16
PER_CLIENT = 70  # 1120 appends in all


def _cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "api.cli", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Server:
    url: str
    process: subprocess.Popen[bytes]
    settings: Settings


@pytest.fixture
def two_workers(pg_url: str, tmp_path: Path) -> Iterator[Server]:
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASELEDGER_")}
    env.update({"CASELEDGER_DATABASE_URL": pg_url, "CASELEDGER_MASTER_KEY": TEST_MASTER_KEY.get_secret_value(),
                "CASELEDGER_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)})
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    _cli(env, "init")
    _cli(env, "tenant", "create", TENANT)
    port = _free_port()
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            assert time.monotonic() < deadline, "the server did not answer /healthz in 60 s"
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        yield Server(url, process, Settings(data_dir=data_dir, database_url=pg_url, master_key=TEST_MASTER_KEY))
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
        log.close()


def _env_of(server: Server) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASELEDGER_")}
    env.update({"CASELEDGER_DATABASE_URL": server.settings.db_url,
                "CASELEDGER_MASTER_KEY": TEST_MASTER_KEY.get_secret_value(),
                "CASELEDGER_DATA_DIR": str(server.settings.data_dir), "PYTHONPATH": str(ROOT)})
    return env


def test_two_workers_append_one_unforked_chain(two_workers: Server) -> None:
    token = _cli(_env_of(two_workers), "token", "--tenant", TENANT, "--role", "agent", "--sub", "a1").strip()
    # uvicorn's workers are multiprocessing "spawn" children (beside, perhaps, a resource tracker)
    workers = [child.pid for child in psutil.Process(two_workers.process.pid).children(recursive=True)
               if "spawn_main" in " ".join(child.cmdline())]
    assert len(workers) == 2, workers
    receipts: list[dict[str, Any]] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(CLIENTS)

    def client(number: int) -> None:
        mine: list[dict[str, Any]] = []
        with httpx.Client(base_url=two_workers.url, timeout=60,
                          headers={"Authorization": f"Bearer {token}"}) as http:
            start.wait()
            for index in range(PER_CLIENT):
                case = f"C-{(number * PER_CLIENT + index) % 40}"
                body = {"case": case, "channel": "chat", "direction": "inbound",
                        "subject_ref": f"CRM-{index % 7}", "content": {"note": f"client {number} call {index}"}}
                try:
                    response = http.post("/v1/interactions", json=body)
                except httpx.HTTPError as exc:
                    with lock:
                        errors.append(f"client {number} call {index}: {exc!r}")
                    continue
                if response.status_code != 201:
                    with lock:
                        errors.append(f"client {number} call {index}: {response.status_code} {response.text[:200]}")
                    continue
                mine.append(response.json())
        with lock:
            receipts.extend(mine)

    threads = [threading.Thread(target=client, args=(n,), name=f"client-{n}") for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads), "clients still running after 300 s"
    assert not errors, f"{len(errors)} failed requests, e.g.: {errors[:5]}"

    total = CLIENTS * PER_CLIENT
    assert len(receipts) == total
    by_seq = {r["seq"]: r for r in receipts}
    assert sorted(by_seq) == list(range(total)), "seqs are not exactly 0..N-1 without duplicates"
    # one chain: seq k's prev is seq k-1's hash, so every prev has exactly one child (no fork)
    prevs = [r["header"]["prev"] for r in receipts]
    assert len(set(prevs)) == total, "two entries share a prev: the chain forked"
    for seq, receipt in by_seq.items():
        assert receipt["header"]["seq"] == seq
        assert receipt["header"]["prev"] == (ZERO_HASH if seq == 0 else by_seq[seq - 1]["entry_hash"])
    # a case's entries chain through case_prev in log order, however the workers interleaved
    last_of_case: dict[str, str] = {}
    for seq in range(total):
        header = by_seq[seq]["header"]
        assert header["case_prev"] == last_of_case.get(header["case"]), f"case chain broken at {seq}"
        last_of_case[header["case"]] = by_seq[seq]["entry_hash"]

    ledger = Ledger.open(two_workers.settings)
    try:
        report = ledger.logcheck.verify(TENANT)
        info = ledger.tenants.info(TENANT)
    finally:
        ledger.close()
    assert info.size == total
    assert report["ok"] and report["size"] == total, report

    # both workers served appends: prometheus' multiprocess mode keeps one counter file per process
    counters = {path.name for path in (two_workers.settings.data_dir / "metrics").glob("counter_*.db")}
    served_by = {pid for pid in workers if f"counter_{pid}.db" in counters}
    assert len(served_by) == 2, (workers, sorted(counters))
    metrics = httpx.get(f"{two_workers.url}/metrics", timeout=30).text
    posted = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                 if line.startswith("caseledger_http_requests_total{")
                 and 'route="/v1/interactions"' in line and 'status="201"' in line)
    assert posted == total
