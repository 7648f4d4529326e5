"""cProfile the hot paths on a fresh store: batched append, verify_log, inclusion proofs.

    .venv/bin/python bench/profile_paths.py [--backend sqlite|postgres] [--batches 10] [--top 30]

Prints, per path, the wall-clock rate without the profiler, then the profile sorted by cumulative
and by own time. Not part of `make bench`; used to find what the benchmark numbers are made of.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import TENANT, Workload, fresh_ledger


def show(profile: cProfile.Profile, top: int) -> None:
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).strip_dirs().sort_stats(order).print_stats(top)
        print(f"--- sorted by {order}")
        print("\n".join(line for line in out.getvalue().splitlines() if line.strip()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--proofs", type=int, default=1000)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="caseledger-profile-") as tmp, \
            fresh_ledger(args.backend, Path(tmp)) as store:
        ledger = store.ledger
        workload = Workload(seed=5)
        ledger.appender.append_batch(TENANT, workload.warm_subjects())
        ledger.appender.append_batch(TENANT, workload.batch(1000))

        batches = [workload.batch(1000) for _ in range(args.batches)]
        start = time.perf_counter()
        for batch in batches[: args.batches // 2]:
            ledger.appender.append_batch(TENANT, batch)
        plain = (args.batches // 2) * 1000 / (time.perf_counter() - start)
        profile = cProfile.Profile()
        profile.enable()
        for batch in batches[args.batches // 2 :]:
            ledger.appender.append_batch(TENANT, batch)
        profile.disable()
        print(f"=== append_batch x1000 on {args.backend}: {plain:,.0f} entries/s without the profiler")
        show(profile, args.top)

        size = ledger.tenants.info(TENANT).size or 0
        start = time.perf_counter()
        ledger.logcheck.verify(TENANT)
        plain = size / (time.perf_counter() - start)
        profile = cProfile.Profile()
        profile.enable()
        ledger.logcheck.verify(TENANT)
        profile.disable()
        print(f"=== verify_log of {size:,} entries on {args.backend}: {plain:,.0f} entries/s without the profiler")
        show(profile, args.top)

        rnd = random.Random(1)
        seqs = [rnd.randrange(size) for _ in range(args.proofs)]
        start = time.perf_counter()
        for seq in seqs:
            ledger.proofs.inclusion(TENANT, seq)
        plain = (time.perf_counter() - start) / len(seqs) * 1000
        profile = cProfile.Profile()
        profile.enable()
        for seq in seqs:
            ledger.proofs.inclusion(TENANT, seq)
        profile.disable()
        print(f"=== prove_inclusion at {size:,} on {args.backend}: mean {plain:.3f} ms without the profiler")
        show(profile, args.top)


if __name__ == "__main__":
    main()
