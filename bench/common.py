"""Shared pieces of the benchmark suite: results, timing, memory sampling, fresh stores, workload."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
import psycopg
from pydantic import SecretStr

from ledger.appender import NewEntry
from ledger.service import Ledger
from ledger.settings import Settings

__all__ = [
    "MASTER_KEY",
    "PG_URL",
    "TENANT",
    "Context",
    "Result",
    "RssSampler",
    "Store",
    "Workload",
    "database_url",
    "fresh_ledger",
    "fresh_pg_database",
    "percentile",
    "pg_available",
    "rss_mb",
]

#: benchmark-only master key (never used outside throwaway databases)
MASTER_KEY = "b3c1a5e0f00dfeed0123456789abcdef0123456789abcdeffedcba9876543210"
PG_URL = os.environ.get("CASELEDGER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TENANT = "bench"


@dataclass
class Result:
    """One row of the results table."""

    benchmark: str
    backend: str
    metric: str
    value: float
    unit: str
    size: int | None = None
    #: e.g. ">= 100000" or "<= 1"; compared against `value` to fill `met`
    target: str | None = None
    met: bool | None = None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.target and self.met is None:
            op, _, bound = self.target.partition(" ")
            self.met = self.value >= float(bound) if op == ">=" else self.value <= float(bound)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Context:
    """What every benchmark gets: the mode's sizes, where to put files, and a place for results."""

    quick: bool
    tmp_root: Path
    results: list[Result]
    deadline: float  # time.monotonic() by which the whole run should be done
    started: float
    pg_1m: str = "auto"
    log: Any = print

    def add(self, result: Result) -> Result:
        self.results.append(result)
        shown = f"{result.value:,.4g}" if abs(result.value) < 1000 else f"{result.value:,.0f}"
        size = f" n={result.size:,}" if result.size is not None else ""
        self.log(f"    {result.benchmark} [{result.backend}{size}] {result.metric}: {shown} {result.unit}")
        return result

    def remaining(self) -> float:
        return self.deadline - time.monotonic()


def percentile(sorted_values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return float("nan")
    rank = max(1, round(pct / 100 * len(sorted_values) + 0.5 - 1e-9))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def rss_mb(process: psutil.Process | None = None) -> float:
    rss: int = (process or psutil.Process()).memory_info().rss
    return rss / 2**20


class RssSampler:
    """Samples RSS on a thread while running: a process (default: this one) and its children (workers).

    `peak` is the process's largest RSS, `growth` that minus the RSS at start; `tree_peak` is the
    largest sum over the process and its descendants, `child_peak` the largest single descendant.
    Watching another process keeps the watched one free of the sampling thread.
    """

    def __init__(self, interval: float = 0.005, rescan: float = 0.1, pid: int | None = None) -> None:
        self.interval = interval
        self.rescan = rescan
        self._process = psutil.Process(pid)
        self.start_rss = rss_mb(self._process)
        self.peak = self.tree_peak = self.start_rss
        self.child_peak = 0.0
        self.children_seen: set[int] = set()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        children: list[psutil.Process] = []
        scanned = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            if now - scanned >= self.rescan:
                try:
                    children = [c for c in self._process.children(recursive=True) if _is_worker(c)]
                except psutil.Error:
                    children = []
                scanned = now
            try:
                own = rss_mb(self._process)
            except psutil.Error:  # the watched process has ended
                break
            total = own
            for child in children:
                try:
                    value = rss_mb(child)
                except psutil.Error:
                    continue
                self.children_seen.add(child.pid)
                self.child_peak = max(self.child_peak, value)
                total += value
            self.peak = max(self.peak, own)
            self.tree_peak = max(self.tree_peak, total)
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self.start_rss = rss_mb(self._process)
        self.peak = self.tree_peak = self.start_rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        with contextlib.suppress(psutil.Error):
            self.peak = max(self.peak, rss_mb(self._process))

    @property
    def growth(self) -> float:
        return self.peak - self.start_rss


def _is_worker(process: psutil.Process) -> bool:
    """A child doing work (multiprocessing's resource tracker is not one)."""
    try:
        return not any("resource_tracker" in part for part in process.cmdline())
    except psutil.Error:
        return False


def _pg_admin_dsn() -> str:
    return PG_URL.replace("postgresql+psycopg://", "postgresql://")


def pg_available() -> str | None:
    """None if the PostgreSQL server answers, else why not."""
    try:
        with psycopg.connect(_pg_admin_dsn(), autocommit=True, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]
    return None


def pg_version() -> str:
    with psycopg.connect(_pg_admin_dsn(), autocommit=True, connect_timeout=5) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


@contextmanager
def fresh_pg_database() -> Iterator[str]:
    """A brand-new PostgreSQL database (SQLAlchemy URL), dropped afterwards (as tests/conftest.py)."""
    name = f"cl_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_pg_admin_dsn(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = PG_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(_pg_admin_dsn(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Store:
    ledger: Ledger
    settings: Settings
    directory: Path

    @property
    def url(self) -> str:
        return self.settings.db_url


@contextmanager
def fresh_ledger(backend: str, tmp_root: Path) -> Iterator[Store]:
    """An initialised, opened Ledger with one tenant on a fresh data dir / database; removed after."""
    directory = Path(tempfile.mkdtemp(prefix=f"caseledger-bench-{backend}-", dir=tmp_root))
    try:
        with database_url(backend, directory) as url:
            settings = Settings(data_dir=directory / "data", database_url=url, master_key=SecretStr(MASTER_KEY))
            Ledger.initialise(settings)
            ledger = Ledger.open(settings)
            try:
                ledger.tenants.create(TENANT)
                yield Store(ledger, settings, directory)
            finally:
                ledger.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def database_url(backend: str, directory: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{directory / 'ledger.db'}"
    elif backend == "postgres":
        with fresh_pg_database() as url:
            yield url
    else:
        raise ValueError(f"unknown backend {backend!r}")


# ------------------------------------------------------------------ workload

_OPENERS = [
    "Customer called about", "Customer wrote in regarding", "Chat started concerning",
    "Follow-up on", "Complaint received about", "Question raised on",
]
_TOPICS = [
    "a duplicate charge on the March invoice", "the delayed refund for order", "changing the registered address",
    "a blocked card after travel abroad", "the mortgage repayment schedule", "an unrecognised direct debit",
    "closing the savings account", "the premium increase at renewal", "a missing statement for last quarter",
    "access to the online banking portal", "the claim submitted after the storm", "the transfer limit",
]
_DETAILS = [
    "Agent verified identity with two security questions and explained the next steps.",
    "Customer was unhappy with the waiting time and asked for a call back tomorrow morning.",
    "Escalated to the second-line team; reference number given to the customer.",
    "Documents requested by email; customer will send them within five working days.",
    "Resolved on the call; confirmation letter to be sent by post.",
    "Customer asked for a written summary of the conversation and our complaints procedure.",
]
_CHANNELS = ("phone", "email", "chat", "phone", "email", "sms")


def _content(rnd: random.Random) -> bytes:
    """~300 bytes of realistic free text (what an agent types after an interaction)."""
    parts = [
        f"{rnd.choice(_OPENERS)} {rnd.choice(_TOPICS)} #{rnd.randrange(10**7):07d}.",
        rnd.choice(_DETAILS),
        rnd.choice(_DETAILS),
        f"Amount mentioned: EUR {rnd.randrange(5, 5000)}.{rnd.randrange(100):02d}; "
        f"account ending {rnd.randrange(10**4):04d}.",
    ]
    text = " ".join(parts)
    while len(text) < 280:
        text += " " + rnd.choice(_DETAILS)
    return text[:320].encode()


class Workload:
    """Deterministic stream of realistic entries: a case id, one of ~100 customers, a channel, meta."""

    def __init__(self, seed: int = 20240601, customers: int = 100, cases: int = 10_000) -> None:
        self._rnd = random.Random(seed)
        self.customers = customers
        self.cases = cases
        self._contents = [_content(self._rnd) for _ in range(512)]

    def entry(self) -> NewEntry:
        rnd = self._rnd
        return NewEntry(
            kind="interaction",
            content=rnd.choice(self._contents),
            channel=rnd.choice(_CHANNELS),
            case=f"CASE-{rnd.randrange(self.cases):06d}",
            subject_ref=f"customer-{rnd.randrange(self.customers):04d}",
            actor=f"user:agent-{rnd.randrange(40):03d}",
            meta={"direction": "inbound"},
        )

    def batch(self, n: int) -> list[NewEntry]:
        return [self.entry() for _ in range(n)]

    def warm_subjects(self) -> list[NewEntry]:
        """One entry per customer: creates every subject handle and data key (a one-off cost)."""
        entries = []
        for k in range(self.customers):
            entries.append(NewEntry(kind="interaction", content=self._contents[k % len(self._contents)],
                                    channel="phone", case=f"CASE-{k:06d}", subject_ref=f"customer-{k:04d}",
                                    meta={"direction": "inbound"}))
        return entries


def elapsed(start: float) -> float:
    return time.perf_counter() - start


def batches(ctx: Context) -> int:
    """Batches of 1000 per throughput measurement, the same for the baselines and our appends:
    one slow fsync moves a 20-batch mean by a fifth, so a full run takes 60."""
    return 3 if ctx.quick else 60
