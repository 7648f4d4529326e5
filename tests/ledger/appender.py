"""A separate process that appends to a log: used by the concurrency and crash tests.

Usage: python -m tests.ledger.appender DB_URL TENANT COUNT (COUNT 0 = until killed).
Prints "SEQ ENTRY_HASH" after each append returns, i.e. after its commit was acknowledged.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ledger.appender import NewEntry
from ledger.service import Ledger
from ledger.settings import Settings
from tests.conftest import TEST_MASTER_KEY


def main() -> None:
    url, tenant, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    settings = Settings(data_dir=Path(os.environ.get("TMPDIR", "/tmp")), database_url=url,
                        master_key=TEST_MASTER_KEY)
    ledger = Ledger.open(settings)
    pid = os.getpid()
    done = 0
    while count == 0 or done < count:
        receipt = ledger.appender.append(tenant, NewEntry(
            kind="interaction", channel="phone", case=f"case-{pid}-{done % 5}", subject_ref=f"cust-{done % 7}",
            content=f"call {done} from {pid}".encode(), actor=f"service:proc-{pid}"))
        sys.stdout.write(f"{receipt.seq} {receipt.entry_hash}\n")
        sys.stdout.flush()
        done += 1
    ledger.close()


if __name__ == "__main__":
    main()
