"""The deployment's anchoring lease: one process at a time runs anchoring rounds (DESIGN §6).

A process holds the lease for a while unless it renews it, so a holder that stops loses it by itself;
one that died on this host (a killed `anchor run`) loses it at once. The lease row is in the
database, its queries in ``ledger/repository/anchors.py``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine

from ledger.connections import writing
from ledger.errors import LedgerError
from ledger.repository import anchors as repo

__all__ = ["LEASE", "LEASE_TTL", "AnchorLease", "LeaseGuard", "check_lease", "lease_holder"]

#: the lease the deployment's one anchoring task holds, and how long it lasts unless renewed
LEASE = "anchoring"
LEASE_TTL = 30.0
_log = logging.getLogger("caseledger.anchoring")


@dataclass
class LeaseGuard:
    """Set `lost` when the process stops holding the anchoring lease."""

    lost: bool = False


def check_lease(lease: LeaseGuard | None) -> None:
    """Raise before a round's next step once its lease was lost (no guard: nothing to lose)."""
    if lease is not None and lease.lost:
        raise LedgerError("the anchoring lease was lost to another process; it resumes the round")


class AnchorLease:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def hold(self, holder: str, ttl: float = LEASE_TTL) -> bool:
        """Take or renew the deployment's anchoring lease for `ttl` seconds; False while another
        process holds it — unless that process ran on this host and has died (a killed `anchor run`)."""
        with writing(self._engine) as conn, conn.begin():
            if repo.acquire_lease(conn, LEASE, holder, time.time(), ttl):
                return True
            current = repo.lease_holder_of(conn, LEASE)
            if current is not None and _died_here(current):
                _log.warning("taking over the anchoring lease of %s, which has died", current)
                return repo.acquire_lease(conn, LEASE, holder, time.time(), ttl, dead=current)
        return False

    @contextmanager
    def held(self, holder: str, ttl: float = LEASE_TTL) -> Iterator[LeaseGuard]:
        """Keep the lease `holder` holds while the block runs: a thread renews it every `ttl` / 3, so a
        long round keeps it and a process that dies loses it within `ttl`. A renewal that fails marks
        the guard lost, and a round given the guard stops before its next step."""
        guard = LeaseGuard()
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(ttl / 3):
                try:
                    held = self.hold(holder, ttl)
                except Exception:  # the database is unreachable: the lease may run out meanwhile
                    held = False
                if not held:
                    _log.warning("the anchoring lease was lost; the round is left to its next holder")
                    guard.lost = True
                    return

        keeper = threading.Thread(target=renew, name="caseledger-anchoring-lease", daemon=True)
        keeper.start()
        try:
            yield guard
        finally:
            stop.set()
            keeper.join()

    def release(self, holder: str) -> None:
        with writing(self._engine) as conn, conn.begin():
            repo.release_lease(conn, LEASE, holder)


def _pid_namespace() -> str:
    """This boot and PID namespace: where a process id means one process ("" when unknown)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
        return f"{boot}-{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return ""


def lease_holder() -> str:
    """This process, as a lease holder: host, PID namespace, pid and a random suffix."""
    return f"{socket.gethostname()[:48]}:{_pid_namespace()}:{os.getpid()}:{os.urandom(4).hex()}"


def _died_here(holder: str) -> bool:
    """Whether `holder` (a `lease_holder`) was a process of this host's PID namespace that no longer
    exists; False whenever that cannot be known."""
    parts = holder.rsplit(":", 3)
    if len(parts) != 4 or not parts[2].isdigit() or not parts[1]:
        return False
    host, namespace, pid = parts[0], parts[1], int(parts[2])
    if host != socket.gethostname()[:48] or namespace != _pid_namespace() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists, under another user
        return False
    return False
