"""caseledger benchmark suite (`make bench`): prints a Markdown table, saves JSON to bench/results/.

    .venv/bin/python bench/run.py                 # full run (~15-20 min on 2 cores)
    .venv/bin/python bench/run.py --quick         # small sizes, a smoke run (~1 min)
    .venv/bin/python bench/run.py --only append   # one or more benchmarks (see --list)

PostgreSQL comes from CASELEDGER_TEST_PG (an SQLAlchemy URL); each measurement gets a fresh
database (CREATE DATABASE / DROP DATABASE) or a fresh temporary directory, removed afterwards.
See bench/README.md for what each column and metric means.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.baselines import bench_pymerkle, bench_raw_sqlite  # noqa: E402
from bench.common import PG_URL, Context, Result, pg_available, pg_version  # noqa: E402
from bench.ledger_bench import bench_append, bench_scale  # noqa: E402

#: name -> (needs PostgreSQL, function); run in this order (the PostgreSQL 1M decision comes last)
BENCHMARKS: dict[str, tuple[bool, Callable[[Context], None]]] = {
    "raw-sqlite": (False, bench_raw_sqlite),
    "pymerkle": (False, bench_pymerkle),
    "append-sqlite": (False, lambda ctx: bench_append(ctx, "sqlite")),
    "append-pg": (True, lambda ctx: bench_append(ctx, "postgres")),
    "scale-sqlite": (False, lambda ctx: bench_scale(ctx, "sqlite")),
    "scale-pg": (True, lambda ctx: bench_scale(ctx, "postgres")),
}
ALIASES = {"baselines": ["raw-sqlite", "pymerkle"], "sqlite": ["raw-sqlite", "pymerkle", "append-sqlite",
                                                                "scale-sqlite"], "pg": ["append-pg", "scale-pg"]}


def select(only: list[str]) -> list[str]:
    if not only:
        return list(BENCHMARKS)
    chosen: set[str] = set()
    for spec in only:
        for name in (part.strip() for part in spec.split(",") if part.strip()):
            matches = ALIASES.get(name) or [b for b in BENCHMARKS if b == name or b.startswith(name + "-")]
            if not matches:
                raise SystemExit(f"unknown benchmark {name!r}; choose from {', '.join([*BENCHMARKS, *ALIASES])}")
            chosen.update(matches)
    return [name for name in BENCHMARKS if name in chosen]


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ report


def fmt_value(result: Result) -> str:
    value, unit = result.value, result.unit
    if isinstance(value, float) and math.isnan(value):
        return "—"
    if unit == "ms":
        text = f"{value:.3f}"
    elif unit in ("x", "ratio"):
        text = f"{value:.3f}" if value < 10 else f"{value:,.1f}"
    elif unit in ("s", "MB"):
        text = f"{value:,.1f}"
    else:
        text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"
    return f"{text} {unit}".strip()


def markdown(results: list[Result]) -> str:
    lines = [
        "| Benchmark | Backend | n / log size | Metric | Value | Target | Notes |",
        "|---|---|--:|---|--:|---|---|",
    ]
    for r in results:
        size = f"{r.size:,}" if r.size is not None else ""
        target = ""
        if r.target:
            target = f"{r.target.replace('>=', '≥').replace('<=', '≤')} {'✅' if r.met else '❌'}"
        notes = r.notes.replace("|", "/")
        lines.append(f"| {r.benchmark} | {r.backend} | {size} | {r.metric} | {fmt_value(r)} | {target} | {notes} |")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
        "sqlite": sqlite3.sqlite_version,
    }
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except Exception:  # informational only
        pass
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        names = (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
        info["cpu"] = next(names, "?")
    info["git"] = os.environ.get("CASELEDGER_BENCH_REV") or git_revision()
    with contextlib.suppress(OSError):
        info["load_avg_start"] = os.getloadavg()
    return info


def _load(info: dict[str, Any], when: str) -> str:
    value = info.get(f"load_avg_{when}")
    return "/".join(f"{x:.1f}" for x in value) if value else "?"


def git_revision() -> str:
    """Short commit, with "+dirty" when ledger/ or verification/ differ from it (what is measured)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False,
                              timeout=10).stdout.strip()

    try:
        commit = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", "ledger", "verification")
    except (OSError, subprocess.SubprocessError):
        return "?"
    return (commit or "?") + ("+dirty" if dirty else "")


def derived(results: list[Result]) -> list[Result]:
    """Ratios between rows measured in this run."""
    def find(benchmark: str, backend: str, metric_prefix: str) -> Result | None:
        return next((r for r in results if r.benchmark == benchmark and r.backend == backend
                     and r.metric.startswith(metric_prefix) and not math.isnan(r.value)), None)

    out: list[Result] = []
    ours = find("append_batch", "sqlite", "batched")
    raw = find("raw_sqlite", "sqlite", "executemany")
    merkle = find("pymerkle", "sqlite", "SqliteTree")
    if ours and raw:
        out.append(Result("ratio", "sqlite", "ours batched / raw sqlite executemany", ours.value / raw.value, "x",
                          target=">= 0.25", notes=f"{ours.value:,.0f} / {raw.value:,.0f} per second"))
    if ours and merkle:
        out.append(Result("ratio", "sqlite", "ours batched / pymerkle SqliteTree", ours.value / merkle.value, "x",
                          notes=f"{ours.value:,.0f} / {merkle.value:,.0f} per second (informational)"))
    pg = find("append_batch", "postgres", "batched")
    if pg and raw:
        out.append(Result("ratio", "postgres", "ours batched (PG) / raw sqlite executemany", pg.value / raw.value,
                          "x", notes="informational: different engine"))
    return out


# ------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every benchmark")
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only these (comma-separated or repeated; prefixes like 'append' work)")
    parser.add_argument("--list", action="store_true", help="list the benchmark names and exit")
    parser.add_argument("--no-pg", action="store_true", help="skip everything that needs PostgreSQL")
    parser.add_argument("--pg-1m", choices=["auto", "always", "never"], default="auto",
                        help="grow the PostgreSQL log to 1M entries: auto = only if it fits --budget (default)")
    parser.add_argument("--budget", type=float, default=None, metavar="SECONDS",
                        help="time budget for the whole run (default 1380 full, 300 quick)")
    parser.add_argument("--tmpdir", type=Path, default=None, help="where the temporary databases go")
    parser.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)

    if args.list:
        for name, (needs_pg, _) in BENCHMARKS.items():
            print(f"{name}{'  (PostgreSQL)' if needs_pg else ''}")
        print("aliases: " + ", ".join(f"{k} = {','.join(v)}" for k, v in ALIASES.items()))
        return 0

    names = select(args.only)
    started_wall = datetime.now(UTC)
    started = time.monotonic()
    budget = args.budget if args.budget is not None else (300.0 if args.quick else 1380.0)
    results: list[Result] = []
    info = machine()
    pg_problem = None if not args.no_pg else "--no-pg"
    if pg_problem is None and any(BENCHMARKS[n][0] for n in names):
        pg_problem = pg_available()
        if pg_problem is None:
            info["postgres"] = pg_version()
        else:
            log(f"PostgreSQL at {PG_URL} is not usable ({pg_problem}): skipping PostgreSQL benchmarks")

    errors = 0
    with tempfile.TemporaryDirectory(prefix="caseledger-bench-", dir=args.tmpdir) as tmp:
        ctx = Context(quick=args.quick, tmp_root=Path(tmp), results=results, deadline=started + budget,
                      started=started, pg_1m=args.pg_1m, log=log)
        for name in names:
            needs_pg, function = BENCHMARKS[name]
            if needs_pg and pg_problem is not None:
                results.append(Result(name, "postgres", "skipped", float("nan"), "", notes=pg_problem))
                continue
            log(f"{name} ({time.monotonic() - started:.0f} s into the run; load average {os.getloadavg()[0]:.1f})")
            begin = time.monotonic()
            try:
                function(ctx)
            except Exception as exc:
                errors += 1
                traceback.print_exc()
                results.append(Result(name, "postgres" if needs_pg else "sqlite", "ERROR", float("nan"), "",
                                      notes=f"{type(exc).__name__}: {exc}"[:300]))
            log(f"{name} done in {time.monotonic() - begin:.0f} s")

    with contextlib.suppress(OSError):
        info["load_avg_end"] = os.getloadavg()
    results.extend(derived(results))
    duration = time.monotonic() - started
    peak_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    verifies = [r.extra for r in results if r.benchmark == "verify_log" and "tree_rss_peak_mb" in r.extra]
    peak_children = max((max(v["rss_peak_mb"], v["worker_rss_peak_mb"]) for v in verifies), default=float("nan"))
    peak_tree = max((v["tree_rss_peak_mb"] for v in verifies), default=float("nan"))
    results.append(Result("run", "-", "peak RSS of the bench process (ru_maxrss)", peak_self, "MB"))
    if verifies:
        results.append(Result("run", "-", "peak RSS of any verify_log process (sampled)", peak_children, "MB",
                              notes=f"verify_log process and its workers together: {peak_tree:,.0f} MB at most"))
    results.append(Result("run", "-", "total run time", duration, "s",
                          notes=f"{'quick' if args.quick else 'full'} mode; budget {budget:.0f} s"))

    table = markdown(results)
    print(f"## caseledger benchmarks — {started_wall.strftime('%Y-%m-%d %H:%M UTC')}"
          f" ({'quick' if args.quick else 'full'})\n")
    print(f"{info.get('cpus')} CPUs ({info.get('cpu', '?')}), {info.get('memory_gb', '?')} GB RAM, "
          f"Python {info['python']}, SQLite {info['sqlite']}, PostgreSQL {info.get('postgres', 'n/a')}, "
          f"git {info.get('git', '?')}; load average {_load(info, 'start')} at start, {_load(info, 'end')} at end\n")
    print(table)

    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"ledger-{started_wall.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({
        "started": started_wall.isoformat(), "duration_s": duration, "mode": "quick" if args.quick else "full",
        "benchmarks": names, "machine": info, "peak_rss_mb": peak_self, "peak_rss_children_mb": peak_children,
        "results": [r.as_dict() for r in results], "markdown": table,
    }, indent=2, default=str, allow_nan=True) + "\n")
    print(f"\nsaved {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}; run time {duration:.0f} s")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
