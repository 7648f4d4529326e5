"""Run `Ledger.verify_log` once in a fresh process and print timing and memory as one JSON line.

Usage: verify_child.py DB_URL DATA_DIR TENANT [--tracemalloc]
(master key in CASELEDGER_BENCH_MASTER_KEY). A fresh process gives an honest RSS baseline: memory
the parent freed while building the log would otherwise absorb verify_log's allocations unseen.
With --tracemalloc, a second, untimed pass reports the peak of Python allocations as well.
"""

from __future__ import annotations

import json
import os
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pydantic import SecretStr

from bench.common import RssSampler
from ledger.service import Ledger
from ledger.settings import Settings


def main() -> None:
    url, data_dir, tenant = sys.argv[1:4]
    traced = "--tracemalloc" in sys.argv[4:]
    settings = Settings(data_dir=Path(data_dir), database_url=url,
                        master_key=SecretStr(os.environ["CASELEDGER_BENCH_MASTER_KEY"]))
    ledger = Ledger.open(settings)
    try:
        ledger.tenant_info(tenant)  # load the tenant and open a connection: not part of the pass
        with RssSampler(interval=0.005) as sampler:
            start = time.perf_counter()
            report = ledger.verify_log(tenant)
            seconds = time.perf_counter() - start
        out = {
            "size": report["size"], "seconds": seconds, "ok": report["ok"],
            "rss_start_mb": sampler.start_rss, "rss_peak_mb": sampler.peak, "rss_growth_mb": sampler.growth,
            "rss_samples": sampler.samples, "tracemalloc_peak_mb": None,
            "workers": len(sampler.children_seen), "worker_rss_peak_mb": sampler.child_peak,
            "tree_rss_peak_mb": sampler.tree_peak,
        }
        if traced:
            tracemalloc.start()
            ledger.verify_log(tenant)
            out["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
    finally:
        ledger.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
