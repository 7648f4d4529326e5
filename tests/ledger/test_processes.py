"""Several processes and hard crashes: no fork, no gap, no lost acknowledged append."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from ledger.service import Ledger

ROOT = Path(__file__).resolve().parents[2]


def _appender(url: str, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.ledger.appender", url, "t", str(count)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_eight_processes_on_postgres_neither_fork_nor_gap(ledger: Ledger, db_url: str) -> None:
    ledger.tenants.create("t")
    processes = [_appender(db_url, 500) for _ in range(8)]
    acknowledged: list[tuple[int, str]] = []
    for process in processes:
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, err
        acknowledged += [(int(s), h) for s, h in (line.split() for line in out.splitlines())]
    assert sorted(seq for seq, _ in acknowledged) == list(range(4000))
    with ledger.engine.connect() as conn:
        from sqlalchemy import text

        seqs = [row[0] for row in conn.execute(text("SELECT seq FROM entries ORDER BY seq"))]
        headers = [row[0] for row in conn.execute(text("SELECT header FROM entries ORDER BY seq"))]
    assert seqs == list(range(4000))
    import json

    children = Counter(json.loads(bytes(h))["prev"] for h in headers)
    assert all(count == 1 for count in children.values()), "some entry has two successors: the chain forked"
    assert len(children) == 4000
    summary = ledger.logcheck.verify("t")
    assert summary["size"] == 4000
    stored = {seq: ledger.reads.entry("t", seq).entry_hash for seq in (0, 1999, 3999)}
    assert all(dict(acknowledged)[seq] == digest for seq, digest in stored.items())


@pytest.mark.slow
def test_sigkill_never_loses_an_acknowledged_append(ledger: Ledger, db_url: str) -> None:
    ledger.tenants.create("t")
    rng = random.Random(int(os.environ.get("CASELEDGER_CRASH_SEED", "20261124")))
    acknowledged: dict[int, str] = {}
    kills = 0
    while kills < 20:
        process = _appender(db_url, 0)
        assert process.stdout is not None
        first = process.stdout.readline()  # wait until it is appending
        assert first, process.stderr.read() if process.stderr else "appender died"
        time.sleep(rng.uniform(0.0, 0.25))
        os.kill(process.pid, signal.SIGKILL)
        rest, _ = process.communicate()
        kills += 1
        lines = (first + rest).splitlines()
        if rest and not rest.endswith("\n"):
            lines = lines[:-1]  # a line cut by the kill was never fully acknowledged
        for line in lines:
            number, digest = line.split()
            assert int(number) not in acknowledged
            acknowledged[int(number)] = digest
        assert ledger.logcheck.verify("t")["size"] >= len(acknowledged)
        for seq, digest in acknowledged.items():
            assert ledger.reads.entry("t", seq).entry_hash == digest
    assert len(acknowledged) >= 20
