"""Benchmarks of the ledger itself: appends (batched, single, 8 threads), proofs and verify_log at scale."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    MASTER_KEY,
    TENANT,
    Context,
    Result,
    RssSampler,
    Store,
    Workload,
    batches,
    elapsed,
    fresh_ledger,
    percentile,
    rss_mb,
)
from verification.merkle import verify_consistency, verify_inclusion

__all__ = ["bench_append", "bench_scale"]

BATCH = 1000
_BENCH_DIR = Path(__file__).resolve().parent


def _warm(store: Store, workload: Workload) -> None:
    """Untimed: create every subject and data key, and one full batch, so timing sees steady state."""
    store.ledger.appender.append_batch(TENANT, workload.warm_subjects())
    store.ledger.appender.append_batch(TENANT, workload.batch(BATCH))


def _ms(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return percentile(ordered, 50) * 1000, percentile(ordered, 99) * 1000


# ------------------------------------------------------------------ appends


def bench_append(ctx: Context, backend: str) -> None:
    n_batches = batches(ctx)
    n_single = 100 if ctx.quick else (1000 if backend == "sqlite" else 600)
    per_thread = 25 if ctx.quick else 250
    threads = 8

    # 1. batched: append_batch with batches of 1000
    with fresh_ledger(backend, ctx.tmp_root) as store:
        workload = Workload(seed=1)
        _warm(store, workload)
        times: list[float] = []
        for _ in range(n_batches):
            batch = workload.batch(BATCH)
            start = time.perf_counter()
            store.ledger.appender.append_batch(TENANT, batch)
            times.append(elapsed(start))
        p50, p99 = _ms(times)
        ctx.add(Result(
            "append_batch", backend, "batched appends (1000/batch)", n_batches * BATCH / sum(times), "entries/s",
            size=n_batches * BATCH, notes=f"per batch p50 {p50:.0f} ms, p99 {p99:.0f} ms",
            extra={"batch_seconds": times},
        ))

    # 2. single appends, sequential, one thread
    with fresh_ledger(backend, ctx.tmp_root) as store:
        workload = Workload(seed=2)
        _warm(store, workload)
        entries = workload.batch(n_single)
        latencies: list[float] = []
        wall = time.perf_counter()
        for entry in entries:
            start = time.perf_counter()
            store.ledger.appender.append(TENANT, entry)
            latencies.append(elapsed(start))
        total = elapsed(wall)
        p50, p99 = _ms(latencies)
        ctx.add(Result(
            "append", backend, "single appends, 1 thread", n_single / total, "appends/s", size=n_single,
            notes=f"latency p50 {p50:.2f} ms, p99 {p99:.2f} ms",
            extra={"latency_p50_ms": p50, "latency_p99_ms": p99},
        ))

    # 3. single appends from 8 threads at once (group commit)
    with fresh_ledger(backend, ctx.tmp_root) as store:
        workload = Workload(seed=3)
        _warm(store, workload)
        ledger = store.ledger
        committer: Any = ledger.appender
        work = [workload.batch(per_thread) for _ in range(threads)]
        lats: list[list[float]] = [[] for _ in range(threads)]
        errors: list[BaseException] = []
        barrier = threading.Barrier(threads + 1)

        def run(index: int) -> None:
            barrier.wait()
            try:
                for entry in work[index]:
                    start = time.perf_counter()
                    ledger.appender.append(TENANT, entry)
                    lats[index].append(elapsed(start))
            except BaseException as exc:  # reported below
                errors.append(exc)

        pool = [threading.Thread(target=run, args=(i,), name=f"appender-{i}") for i in range(threads)]
        for thread in pool:
            thread.start()
        commits_before = committer.commits
        barrier.wait()
        wall = time.perf_counter()
        for thread in pool:
            thread.join()
        total = elapsed(wall)
        if errors:
            raise errors[0]
        count = threads * per_thread
        commits = committer.commits - commits_before
        p50, p99 = _ms([x for lat in lats for x in lat])
        ctx.add(Result(
            "append", backend, f"single appends, {threads} threads", count / total, "appends/s", size=count,
            notes=f"{count / max(commits, 1):.1f} entries/commit; latency p50 {p50:.2f} ms, p99 {p99:.2f} ms",
            extra={"commits": commits, "latency_p50_ms": p50, "latency_p99_ms": p99},
        ))


# ------------------------------------------------------------------ proofs and verify_log at scale


def _sizes(ctx: Context) -> list[int]:
    return [1_000, 5_000] if ctx.quick else [10_000, 100_000, 1_000_000]


@dataclass
class _Growth:
    seconds: float = 0.0  # inside append_batch
    added: int = 0
    last_rate: float = 0.0  # entries/s of the last batch: shows whether appends slow down as the log grows
    aborted: str = ""


def _grow(store: Store, workload: Workload, target: int, batch: int,
          give_up: Callable[[int, float], str] | None = None) -> _Growth:
    """Append until the log has `target` entries (or `give_up(entries left, last rate)` says why not)."""
    size = store.ledger.tenants.info(TENANT).size or 0
    growth = _Growth()
    while size < target:
        n = min(batch, target - size)
        entries = workload.batch(n)
        start = time.perf_counter()
        store.ledger.appender.append_batch(TENANT, entries)
        took = elapsed(start)
        growth.seconds += took
        growth.added += n
        growth.last_rate = n / took
        size += n
        if give_up is not None and size < target:
            growth.aborted = give_up(target - size, growth.last_rate)
            if growth.aborted:
                break
    return growth


def _proofs(ctx: Context, store: Store, backend: str, size: int, samples: int) -> dict[str, float]:
    ledger = store.ledger
    rnd = random.Random(size)
    out: dict[str, float] = {}

    inclusion: list[float] = []
    lengths = 0
    for i in range(samples):
        seq = rnd.randrange(size)
        tree_size = rnd.randint(seq + 1, size)
        start = time.perf_counter()
        proof = ledger.proofs.inclusion(TENANT, seq, tree_size).to_json()
        inclusion.append(elapsed(start))
        lengths += len(proof["proof"])
        if i < 20:  # sanity: the proofs we time are proofs that verify
            verify_inclusion(seq, tree_size, bytes.fromhex(proof["leaf_hash"]),
                             [bytes.fromhex(p) for p in proof["proof"]], bytes.fromhex(proof["root"]))
    p50, p99 = _ms(inclusion)
    out["inclusion_p50"] = p50
    ctx.add(Result("prove_inclusion", backend, "inclusion proof p50", p50, "ms", size=size, target="<= 1",
                   notes=f"p99 {p99:.3f} ms; {samples} samples, mean path {lengths / samples:.1f} hashes",
                   extra={"p50_ms": p50, "p99_ms": p99, "samples": samples}))

    consistency: list[float] = []
    lengths = 0
    for i in range(samples):
        first = rnd.randint(1, size - 1)
        second = rnd.randint(first + 1, size)
        start = time.perf_counter()
        proof = ledger.proofs.consistency(TENANT, first, second).to_json()
        consistency.append(elapsed(start))
        lengths += len(proof["proof"])
        if i < 20:
            verify_consistency(first, second, [bytes.fromhex(p) for p in proof["proof"]],
                               bytes.fromhex(proof["first_root"]), bytes.fromhex(proof["second_root"]))
    p50, p99 = _ms(consistency)
    out["consistency_p50"] = p50
    ctx.add(Result("prove_consistency", backend, "consistency proof p50", p50, "ms", size=size, target="<= 1",
                   notes=f"p99 {p99:.3f} ms; {samples} samples, mean proof {lengths / samples:.1f} hashes",
                   extra={"p50_ms": p50, "p99_ms": p99, "samples": samples}))
    return out


def _verify_in_child(store: Store, traced: bool, timeout: float) -> dict[str, Any]:
    """Run verify_log in a fresh process, so its RSS growth is not hidden by memory freed earlier.

    Its RSS (and its workers') is sampled from here, so the child runs no thread of its own.
    """
    env = dict(os.environ)
    env["CASELEDGER_BENCH_MASTER_KEY"] = MASTER_KEY
    command = [sys.executable, str(_BENCH_DIR / "verify_child.py"), store.url, str(store.settings.data_dir), TENANT]
    if traced:
        command.append("--tracemalloc")
    deadline = time.monotonic() + timeout
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None and child.stderr is not None
        with RssSampler(interval=0.005, pid=child.pid) as sampler:
            first = child.stdout.readline()  # the timed pass is over when its line arrives
        rest = child.stdout.read()
        errors = child.stderr.read()
        if child.wait(timeout=max(1.0, deadline - time.monotonic())) != 0 or not first:
            raise RuntimeError(f"verify child failed: {errors.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(first)
    result |= {"rss_peak_mb": sampler.peak, "rss_growth_mb": sampler.peak - result["rss_start_mb"],
               "rss_samples": sampler.samples, "workers": len(sampler.children_seen),
               "worker_rss_peak_mb": sampler.child_peak, "tree_rss_peak_mb": sampler.tree_peak,
               "tracemalloc_peak_mb": None}
    for line in rest.splitlines():
        if line.strip():
            result |= json.loads(line)
    return result


def bench_scale(ctx: Context, backend: str) -> None:
    sizes = _sizes(ctx)
    samples = 300 if ctx.quick else 2000
    build_batch = 1000 if ctx.quick else 5000
    with fresh_ledger(backend, ctx.tmp_root) as store:
        workload = Workload(seed=7)
        store.ledger.appender.append_batch(TENANT, workload.warm_subjects())
        build_total = 0.0
        measured: list[tuple[int, dict[str, float]]] = []
        last: dict[str, float] = {}
        for size in sizes:
            current = store.ledger.tenants.info(TENANT).size or 0
            if backend == "postgres" and size == sizes[-1] and not ctx.quick and not _fits(ctx, size, current, last):
                continue
            guard = None
            if backend == "postgres" and size == sizes[-1] and not ctx.quick and ctx.pg_1m == "auto":
                guard = _deadline_guard(ctx, size, last)
            growth = _grow(store, workload, size, build_batch, guard)
            build_total += growth.seconds
            last["build_rate"] = growth.added / growth.seconds if growth.seconds else float("inf")
            if growth.aborted:
                ctx.add(Result(
                    "build", backend, "gave up growing the log (time budget)", build_total, "s",
                    size=current + growth.added, notes=growth.aborted,
                ))
                break
            ctx.add(Result(
                "build", backend, f"grow log to size (append_batch x{build_batch})", build_total, "s", size=size,
                notes=f"+{growth.added:,} entries in {growth.seconds:.1f} s = {last['build_rate']:,.0f} entries/s "
                      f"(last batch {growth.last_rate:,.0f}/s); bench RSS {rss_mb():.0f} MB",
                extra={"stage_seconds": growth.seconds, "stage_entries": growth.added,
                       "cumulative_seconds": build_total, "last_batch_rate": growth.last_rate},
            ))

            start = time.perf_counter()
            measured.append((size, _proofs(ctx, store, backend, size, samples)))
            last["proof_seconds"] = elapsed(start)

            traced = size <= 100_000
            verified = _verify_in_child(store, traced, timeout=max(600.0, ctx.remaining()))
            rate = verified["size"] / verified["seconds"]
            last["verify_rate"] = rate
            ctx.add(Result(
                "verify_log", backend, "verify_log throughput", rate, "entries/s", size=verified["size"],
                target=">= 100000", notes=f"{verified['seconds']:.2f} s for {verified['size']:,} entries"
                                         + (f" in {verified['workers'] + 1} processes (this one and "
                                            f"{verified['workers']} worker)" if verified.get("workers")
                                            else ", one process"),
                extra=verified,
            ))
            notes = f"RSS {verified['rss_start_mb']:.0f} -> peak {verified['rss_peak_mb']:.0f} MB"
            if verified.get("workers"):
                notes += (f"; {verified['workers']} worker process(es), each peak <= "
                          f"{verified['worker_rss_peak_mb']:.0f} MB, all together "
                          f"{verified['tree_rss_peak_mb']:.0f} MB")
            if verified.get("tracemalloc_peak_mb") is not None:
                notes += f"; tracemalloc peak {verified['tracemalloc_peak_mb']:.1f} MB (separate pass)"
            ctx.add(Result("verify_log", backend, "verify_log RSS growth (main process)",
                           verified["rss_growth_mb"], "MB", size=verified["size"], notes=notes, extra=verified))
        if len(measured) > 1:
            (base_size, base), (top_size, top) = measured[0], measured[-1]
            log_growth = math.log2(top_size) / math.log2(base_size)
            for key in ("inclusion_p50", "consistency_p50"):
                ratio = top[key] / base[key]
                ctx.add(Result(
                    "proof_growth", backend, f"{key.replace('_', ' ')} growth {base_size:,} -> {top_size:,}",
                    ratio, "x", size=top_size, target=f"<= {log_growth * 1.5:.2f}",
                    notes=f"log2 ratio is {log_growth:.2f}; target allows 1.5x that (O(log n))",
                ))


def _deadline_guard(ctx: Context, size: int, last: dict[str, float]) -> Callable[[int, float], str]:
    """Give up growing when, at the latest batch's rate, the rest would not fit the time budget."""
    def give_up(left: int, rate: float) -> str:
        after = left / rate + size / last.get("verify_rate", 20_000.0) + 2 * last.get("proof_seconds", 10.0)
        if after < ctx.remaining() - 30:
            return ""
        return (f"appends slowed to {rate:,.0f} entries/s; {left:,} more would need ~{after:.0f} s with only "
                f"{max(ctx.remaining(), 0):.0f} s of the budget left (use --pg-1m always or --budget)")
    return give_up


def _fits(ctx: Context, size: int, current: int, last: dict[str, float]) -> bool:
    """Whether growing the PostgreSQL log to `size` fits the run's time budget (--pg-1m auto)."""
    if ctx.pg_1m == "never":
        reason = "disabled with --pg-1m never"
    elif ctx.pg_1m == "always":
        return True
    else:
        estimate = ((size - current) / last.get("build_rate", 1000.0)
                    + size / last.get("verify_rate", 20_000.0) + 2 * last.get("proof_seconds", 10.0))
        if estimate < ctx.remaining() - 30:
            return True
        reason = (f"estimated {estimate:.0f} s > {max(ctx.remaining(), 0):.0f} s left of the time budget "
                  f"(at {last.get('build_rate', 0):,.0f} entries/s); use --pg-1m always or --budget")
    ctx.add(Result("build", "postgres", "skipped: grow log to 1M", float("nan"), "", size=size, notes=reason))
    return False
