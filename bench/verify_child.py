"""Run `Ledger.verify_log` once in a fresh process and print timing as JSON lines.

Usage: verify_child.py DB_URL DATA_DIR TENANT [--tracemalloc]
(master key in CASELEDGER_BENCH_MASTER_KEY). A fresh process gives an honest RSS baseline: memory
the parent freed while building the log would otherwise absorb verify_log's allocations unseen.
The parent samples this process's RSS from outside (`bench.common.RssSampler(pid=…)`), so that it
runs no thread of its own and verify_log may fork its workers, as `caseledger verify-log` does.
The first line is the timed pass; with --tracemalloc a second, untimed pass reports the peak of
Python allocations as well, on a second line.
"""

from __future__ import annotations

import json
import os
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil
from pydantic import SecretStr

from bench.common import rss_mb
from ledger.service import Ledger
from ledger.settings import Settings


def main() -> None:
    url, data_dir, tenant = sys.argv[1:4]
    traced = "--tracemalloc" in sys.argv[4:]
    settings = Settings(data_dir=Path(data_dir), database_url=url,
                        master_key=SecretStr(os.environ["CASELEDGER_BENCH_MASTER_KEY"]))
    ledger = Ledger.open(settings)
    try:
        ledger.tenants.info(tenant)  # load the tenant and open a connection: not part of the pass
        start_rss = rss_mb(psutil.Process())
        start = time.perf_counter()
        report = ledger.logcheck.verify(tenant)
        seconds = time.perf_counter() - start
        print(json.dumps({"size": report["size"], "seconds": seconds, "ok": report["ok"], "rss_start_mb": start_rss}),
              flush=True)
        if traced:
            tracemalloc.start()
            ledger.logcheck.verify(tenant)
            print(json.dumps({"tracemalloc_peak_mb": tracemalloc.get_traced_memory()[1] / 2**20}), flush=True)
            tracemalloc.stop()
    finally:
        ledger.close()


if __name__ == "__main__":
    main()
