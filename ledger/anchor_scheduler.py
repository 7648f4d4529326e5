"""The server's anchoring task: a round every few minutes, by whichever process holds the lease."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from ledger.anchor_rounds import Round
from ledger.anchoring import Anchoring
from ledger.errors import LedgerError
from ledger.leases import lease_holder

if TYPE_CHECKING:  # web3 is imported only where a chain is used
    from contracts.chain import AnchorChain

__all__ = ["AnchorScheduler"]

_log = logging.getLogger("caseledger.anchoring")


class AnchorScheduler:
    """Runs a round every `interval` seconds in a background thread, while this process holds the
    deployment's anchoring lease: with several server workers (or servers), one anchors at a time,
    and another takes over when the holder stops or its lease runs out."""

    def __init__(self, anchoring: Anchoring, chain: AnchorChain, interval: float) -> None:
        self._anchoring = anchoring
        self._chain = chain
        self._interval = interval
        self._holder = lease_holder()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="caseledger-anchoring", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        if self._thread.is_alive():  # a round still waits for its confirmations: keep the lease until
            return                   # the process ends; it then runs out and the next holder resumes
        try:
            self._anchoring.release_lease(self._holder)
        except Exception:  # the database may be gone at shutdown; the lease then runs out by itself
            _log.warning("could not release the anchoring lease")

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self._interval)

    def run_once(self) -> Round | None:
        """One turn: a round if this process holds (or takes) the lease; errors are logged, not raised."""
        try:
            if not self._anchoring.hold_lease(self._holder):
                return None
            with self._anchoring.leased(self._holder) as lease:
                return self._anchoring.run_round(self._chain, lease)
        except LedgerError as exc:
            _log.warning("anchoring round not completed: %s", exc)
        except Exception:  # the loop must outlive any one failure; the next turn resumes the round
            _log.exception("anchoring round failed unexpectedly")
        return None
