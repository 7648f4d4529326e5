"""Deployment-wide periodic tasks (the self-audit, the compliance run): one process runs each.

A task holds a named lease (a row of the leases table, as anchoring's) from run to run: it lasts
1.5 intervals and is renewed before and after each run, so with several workers or servers one runs
the task; if it stops or dies, another takes over within two intervals. The other processes call
`idle` each turn instead (the self-audit adopts the recorded outcome there). The first run comes one
interval after `start`, so a process that restarts often does not run the task each time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from ledger.connections import writing
from ledger.leases import LEASE_TTL, lease_holder
from ledger.repository import anchors as lease_repo
from ledger.service import Ledger

__all__ = ["DeploymentLease", "LeasedSchedule"]

T = TypeVar("T")
_log = logging.getLogger("caseledger.compliance")


class DeploymentLease:
    """The lease `name`: held by one process of the deployment at a time."""

    def __init__(self, ledger: Ledger, name: str) -> None:
        self._engine = ledger.engine
        self.name = name

    def hold(self, holder: str, ttl: float) -> bool:
        """Take or renew the lease for `ttl` seconds; False while another process holds it."""
        with writing(self._engine) as conn, conn.begin():
            return lease_repo.acquire_lease(conn, self.name, holder, time.time(), ttl)

    def release(self, holder: str) -> None:
        with writing(self._engine) as conn, conn.begin():
            lease_repo.release_lease(conn, self.name, holder)


class LeasedSchedule(Generic[T]):
    """Runs `run` every `interval` seconds on a thread of its own, in the process holding the lease."""

    def __init__(self, ledger: Ledger, lease: str, interval: float, run: Callable[[], T],
                 idle: Callable[[], object] | None = None) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._lease = DeploymentLease(ledger, lease)
        self._run, self._idle = run, idle
        self._interval = interval
        self._ttl = interval * 1.5 + LEASE_TTL
        self._holder = lease_holder()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"caseledger-{lease}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        if self._thread.is_alive():  # a run is still going: its lease runs out by itself
            return
        try:
            self._lease.release(self._holder)
        except Exception:  # the database may be gone at shutdown; the lease then runs out by itself
            _log.warning("could not release the %s lease", self._lease.name)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.run_once()

    def run_once(self) -> T | None:
        """One turn: a run if this process holds (or takes) the lease, else `idle`. Errors are logged."""
        try:
            if not self._lease.hold(self._holder, self._ttl):
                if self._idle is not None:
                    self._idle()
                return None
            outcome = self._run()
            self._lease.hold(self._holder, self._ttl)
            return outcome
        except Exception:  # the loop must outlive any one failure
            _log.exception("%s turn failed", self._lease.name)
        return None
