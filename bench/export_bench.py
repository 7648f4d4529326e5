"""Export benchmark (issue 11, item 9): a whole export of a 10,000- and a 100,000-entry log — read,
decrypt, check, write the bundle, render, attach and sign the PDF — beside, in the same run,
ReportLab rendering a plain table of the same number of rows with no verification, escaping or
attachment (`bench/export_pdf_bench.py`'s baseline); and `verify_bundle` over the bundle it wrote.

    .venv/bin/python bench/export_bench.py                 # 10k and 100k entries, SQLite
    .venv/bin/python bench/export_bench.py --sizes 10000   # quicker

Each export runs in a fresh child process, sampled from outside for its peak RSS. Targets: PDF export
≥ 50 % of the plain table's rows/s; peak RSS growth ≤ 200 MiB and flat from 10k to 100k; bundle
verification ≥ 50,000 entries/s. Results: bench/results/export-<time>.json and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from bench.common import MASTER_KEY, TENANT, RssSampler, Workload  # noqa: E402

MIB = 1 << 20
BATCH = 1000


def _settings(directory: Path) -> Any:
    from ledger.settings import Settings

    return Settings(data_dir=directory / "data", database_url=f"sqlite:///{directory / 'ledger.db'}",
                    master_key=SecretStr(MASTER_KEY))


def build_log(directory: Path, size: int) -> None:
    from ledger.service import Ledger

    settings = _settings(directory)
    Ledger.initialise(settings)
    ledger = Ledger.open(settings)
    try:
        ledger.tenants.create(TENANT)
        work = Workload()
        written = 0
        while written < size:
            batch = work.batch(min(BATCH, size - written))
            ledger.appender.append_batch(TENANT, batch)
            written += len(batch)
    finally:
        ledger.close()


def child_export(directory: Path, size: int, fmt: str) -> dict[str, Any]:
    from compliance.access import Reader
    from compliance.exports import ExportRequest, Exports
    from ledger.service import Ledger

    ledger = Ledger.open(_settings(directory))
    try:
        exports = Exports(ledger)
        reader = Reader("user:bench-auditor", "auditor", frozenset({"content"}))
        started = time.perf_counter()
        job = exports.create(TENANT, reader, ExportRequest(start=0, end=size, include_content=True, format=fmt))
        done = exports.build(TENANT, job.export_id)
        seconds = time.perf_counter() - started
        if done.status != "done":
            raise SystemExit(f"the export failed: {done.error}")
        bundle = exports.file(TENANT, reader, job.export_id, "bundle")
        return {"seconds": seconds, "file_mib": (done.size or 0) / MIB, "bundle": str(bundle),
                "vkey": ledger.tenants.info(TENANT).vkey}
    finally:
        ledger.close()


def child_verify(bundle: Path, vkey: str) -> dict[str, Any]:
    from verification import Trust
    from verification.bundle_verify import verify_bundle

    started = time.perf_counter()
    document = json.loads(bundle.read_bytes())
    loaded = time.perf_counter()
    result = verify_bundle(document, Trust.of(vkey), collect=True)
    done = time.perf_counter()
    if not result.valid:
        raise SystemExit(f"the bundle does not verify: {result.summary()}")
    return {"entries": result.entries, "load_seconds": loaded - started, "verify_seconds": done - loaded,
            "entries_per_s": result.entries / (done - started),
            "entries_per_s_after_load": result.entries / (done - loaded)}


def child_plain(size: int, directory: Path) -> dict[str, Any]:
    from bench.export_pdf_bench import child_plain as plain_table

    return plain_table(size, directory)


def run_child(argv: list[str]) -> int:
    mode = argv[0]
    import reportlab.platypus  # noqa: F401  (imports are not part of the measured growth)

    import compliance.exports
    import compliance.report_sign  # noqa: F401

    start = psutil.Process().memory_info().rss / MIB
    if mode == "export":
        result = child_export(Path(argv[1]), int(argv[2]), argv[3])
    elif mode == "plain":
        result = child_plain(int(argv[2]), Path(argv[1]))
    else:
        result = child_verify(Path(argv[1]), argv[2])
    result["start_rss_mib"] = start
    print(json.dumps(result))
    return 0


def measure(*args: str) -> dict[str, Any]:
    """A child process running `args`, with its peak RSS sampled from outside."""
    proc = subprocess.Popen([sys.executable, __file__, "--child", *args], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT)
    with RssSampler(interval=0.02, pid=proc.pid) as sampler:
        out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"{args[0]}: the child failed with exit code {proc.returncode}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_growth_mib"] = sampler.peak - result["start_rss_mib"]
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--child"]:
        return run_child(args[1:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results")
    opts = parser.parse_args(args)
    rows = []
    for size in (int(s) for s in opts.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix="caseledger-export-bench-") as tmp:
            directory = Path(tmp)
            build_log(directory, size)
            pdf = measure("export", str(directory), str(size), "pdf")
            bundle = measure("export", str(directory), str(size), "bundle")
            plain = measure("plain", str(directory), str(size))
            verified = measure("verify", bundle["bundle"], bundle["vkey"])
        row = {"entries": size,
               "pdf": {"seconds": round(pdf["seconds"], 2), "rows_per_s": round(size / pdf["seconds"]),
                       "peak_rss_growth_mib": round(pdf["peak_rss_growth_mib"], 1), "mib": round(pdf["file_mib"], 1)},
               "bundle": {"seconds": round(bundle["seconds"], 2), "rows_per_s": round(size / bundle["seconds"]),
                          "peak_rss_growth_mib": round(bundle["peak_rss_growth_mib"], 1),
                          "mib": round(bundle["file_mib"], 1)},
               "plain_table": {"seconds": round(plain["seconds"], 2), "rows_per_s": round(size / plain["seconds"])},
               "pdf_ratio": round(plain["seconds"] / pdf["seconds"], 3),
               "verify": {k: round(v, 2) if isinstance(v, float) else v for k, v in verified.items()
                          if k != "start_rss_mib"}}
        print(json.dumps(row), file=sys.stderr)
        rows.append(row)
    growth = [max(r["pdf"]["peak_rss_growth_mib"], r["bundle"]["peak_rss_growth_mib"]) for r in rows]
    summary = {"pdf_ratio_met": all(r["pdf_ratio"] >= 0.5 for r in rows), "rss_met": all(g <= 200 for g in growth),
               "rss_growth_mib": growth, "verify_met": all(r["verify"]["entries_per_s"] >= 50_000 for r in rows)}
    report = {"benchmark": "export", "at": datetime.now(UTC).isoformat(timespec="seconds"), "rows": rows,
              "summary": summary}
    opts.results_dir.mkdir(parents=True, exist_ok=True)
    (opts.results_dir / f"export-{datetime.now(UTC):%Y%m%dT%H%M%S}.json").write_text(json.dumps(report, indent=2))
    print("| entries | PDF export s (rows/s) | plain table rows/s | ratio | bundle export s | peak RSS growth MiB "
          "(pdf / bundle) | verify entries/s |")
    print("|--:|--:|--:|--:|--:|--:|--:|")
    for r in rows:
        print(f"| {r['entries']:,} | {r['pdf']['seconds']} ({r['pdf']['rows_per_s']:,}) | "
              f"{r['plain_table']['rows_per_s']:,} | {r['pdf_ratio']} | {r['bundle']['seconds']} | "
              f"{r['pdf']['peak_rss_growth_mib']} / {r['bundle']['peak_rss_growth_mib']} | "
              f"{r['verify']['entries_per_s']:,.0f} |")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
