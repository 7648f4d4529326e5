"""PDF export benchmark (issue 11, item 9): our report (render + attach the bundle + sign) against
ReportLab rendering a plain table of the same rows, with no escaping, wrapping, attachment or
signature, in the same run; each in a fresh child process so that its RSS growth is its own.

Usage: export_pdf_bench.py [--sizes 10000,100000] [--repeat N] [--out FILE]
Prints JSON: rows/s of both, their ratio (target >= 0.5), and the peak RSS growth of ours at every
size (target <= 200 MiB, and flat from the smallest size to the largest). With --repeat, ours and
the plain table alternate N times and each keeps its fastest run and its largest RSS growth, so
that a busy machine slows neither side alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil

from bench.common import RssSampler

MIB = 1 << 20
KINDS = ("interaction", "interaction", "interaction", "document", "access", "share")
CHANNELS = ("chat", "email", "phone", "sms", "in_person")
#: targets of issue 11: rate ratio, RSS growth, and "flat": the largest size may grow by this much at most
RATIO_TARGET = 0.5
RSS_TARGET_MIB = 200.0
FLAT_SLACK_MIB = 32.0


def row(seq: int) -> tuple[str, int, str, str, str, str, str, str]:
    """Synthetic entry `seq`: plain fields of realistic length and a message of 40-200 characters."""
    digest = hashlib.sha256(seq.to_bytes(8, "big")).hexdigest()
    content = f"Customer asked about statement {seq % 977}; agent explained the fee and the next steps. " * (
        1 + seq % 3)
    day, hour, minute, second = 1 + seq // 86_400 % 28, seq // 3600 % 24, seq // 60 % 60, seq % 60
    t = f"2026-03-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}.{seq % 10**6:06d}Z"
    return (t, seq, KINDS[seq % len(KINDS)], CHANNELS[seq % len(CHANNELS)], f"user:agent-{seq % 41}",
            f"C-{seq // 25}", digest, content.strip())


def write_bundle(path: Path, size: int) -> str:
    """A bundle-shaped JSON file of `size` entries (not a valid bundle: only its bytes matter here)."""
    sha = hashlib.sha256()
    with open(path, "wb") as f:
        def out(data: str) -> None:
            raw = data.encode()
            sha.update(raw)
            f.write(raw)
        out('{"type": "caseledger.bundle", "v": 1, "entries": [')
        for seq in range(size):
            t, _, kind, channel, actor, case, digest, content = row(seq)
            entry = {"seq": seq, "entry_hash": digest, "header": {"v": 1, "seq": seq, "time": t, "kind": kind,
                     "channel": channel, "actor": actor, "case": case, "prev": digest, "commit": digest},
                     "content": content, "salt": digest}
            out(("," if seq else "") + json.dumps(entry))
        out("]}")
    return sha.hexdigest()


# --- children -----------------------------------------------------------------------------------------

def child_ours(size: int, workdir: Path, bundle: Path, bundle_sha: str) -> dict[str, Any]:
    from compliance.report_pdf import EntryRow, ReportInput, VerificationSummary, render_report
    from compliance.report_sign import attach_bundle, create_dev_certificate, instance_signer, sign_report

    create_dev_certificate("bench.local", workdir / "key.pem", workdir / "cert.pem")
    signer = instance_signer(workdir / "key.pem", workdir / "cert.pem")

    def entries() -> Iterator[EntryRow]:
        for seq in range(size):
            t, _, kind, channel, actor, case, digest, content = row(seq)
            yield EntryRow(t, seq, kind, channel, actor, case, digest, content)

    report = ReportInput(
        log_origin="bench.local/bench", tenant="bench", scope=f"seq 0 to {size}", exported_by="user:auditor",
        generated_at=datetime.now(UTC),
        verification=VerificationSummary(size, "00" * 32, "bench.local/bench", "00000000", None,
                                         (("checkpoint signature", True), ("range proof", True))),
        entries=entries(), disclosures=(), accesses=(), bundle_sha256=bundle_sha)
    start = time.perf_counter()
    pages = render_report(report, workdir / "rendered.pdf")
    rendered = time.perf_counter()
    attach_bundle(workdir / "rendered.pdf", bundle, workdir / "attached.pdf")
    attached = time.perf_counter()
    sign_report(workdir / "attached.pdf", workdir / "report.pdf", signer)
    end = time.perf_counter()
    return {"pages": pages, "seconds": end - start, "render_s": rendered - start, "attach_s": attached - rendered,
            "sign_s": end - attached, "pdf_mib": (workdir / "report.pdf").stat().st_size / MIB}


def child_plain(size: int, workdir: Path) -> dict[str, Any]:
    """The simplest sensible ReportLab: a Table of plain strings per page on one canvas, to a file."""
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.pdfgen.canvas import Canvas
    from reportlab.platypus import Table, TableStyle

    per_page = 45
    width, height = landscape(A4)
    style = TableStyle([("FONT", (0, 0), (-1, -1), "Helvetica", 7.5), ("GRID", (0, 0), (-1, -1), 0.3, "grey")])
    header = ["time", "seq", "kind", "channel", "actor", "case", "entry hash", "content"]
    start = time.perf_counter()
    canvas = Canvas(str(workdir / "plain.pdf"), pagesize=(width, height))
    page: list[list[str]] = []
    pages = 0

    def flush() -> None:
        table = Table([header, *page], style=style)
        _, h = table.wrapOn(canvas, width - 72, height - 72)
        table.drawOn(canvas, 36, height - 36 - h)
        canvas.showPage()

    for seq in range(size):
        t, _, kind, channel, actor, case, digest, content = row(seq)
        page.append([t, str(seq), kind, channel, actor, case, digest[:16], content[:90]])
        if len(page) == per_page:
            flush()
            page, pages = [], pages + 1
    if page:
        flush()
        pages += 1
    canvas.save()
    end = time.perf_counter()
    return {"pages": pages, "seconds": end - start, "pdf_mib": (workdir / "plain.pdf").stat().st_size / MIB}


def run_child(argv: list[str]) -> int:
    mode, size, workdir = argv[0], int(argv[1]), Path(argv[2])
    import reportlab.platypus  # noqa: F401

    import compliance.report_sign  # noqa: F401 - imports are not part of the measured growth

    process = psutil.Process()
    start_rss = process.memory_info().rss / MIB
    result = child_ours(size, workdir, Path(argv[3]), argv[4]) if mode == "ours" else child_plain(size, workdir)
    result["start_rss_mib"] = start_rss
    result["maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))
    return 0


# --- parent -------------------------------------------------------------------------------------------

def measure(mode: str, size: int, extra: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="caseledger-pdf-bench-") as tmp:
        proc = subprocess.Popen([sys.executable, __file__, "--child", mode, str(size), tmp, *extra],
                                stdout=subprocess.PIPE, text=True)
        with RssSampler(interval=0.02, pid=proc.pid) as sampler:
            out, _ = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"{mode} {size}: child failed with exit code {proc.returncode}")
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["rows_per_s"] = size / result["seconds"]
    result["peak_rss_growth_mib"] = max(result["maxrss_mib"], sampler.peak) - result["start_rss_mib"]
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--child"]:
        return run_child(args[1:])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--out", type=Path)
    opts = parser.parse_args(args)
    sizes = [int(s) for s in opts.sizes.split(",")]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="caseledger-pdf-bench-bundle-") as tmp:
        for size in sizes:
            bundle = Path(tmp) / f"bundle-{size}.json"
            sha = write_bundle(bundle, size)
            runs: dict[str, list[dict[str, Any]]] = {"ours": [], "plain": []}
            for _ in range(max(1, opts.repeat)):
                runs["ours"].append(measure("ours", size, [str(bundle), sha]))
                runs["plain"].append(measure("plain", size, []))
            ours, plain = (_best(runs[mode]) for mode in ("ours", "plain"))
            row_ = {"entries": size, "bundle_mib": round(bundle.stat().st_size / MIB, 1),
                    "ours": _rounded(ours), "plain_table": _rounded(plain),
                    "ratio": round(ours["rows_per_s"] / plain["rows_per_s"], 3)}
            print(f"  {size}: {json.dumps(row_)}", file=sys.stderr)
            rows.append(row_)
            bundle.unlink()
    growth = [r["ours"]["peak_rss_growth_mib"] for r in rows]
    summary = {
        "ratio_target": RATIO_TARGET, "ratio_met": all(r["ratio"] >= RATIO_TARGET for r in rows),
        "rss_target_mib": RSS_TARGET_MIB, "rss_met": all(g <= RSS_TARGET_MIB for g in growth),
        "flat": growth[-1] <= growth[0] + FLAT_SLACK_MIB, "flat_slack_mib": FLAT_SLACK_MIB,
    }
    report = {"benchmark": "export_pdf", "rows": rows, "summary": summary}
    text = json.dumps(report, indent=2)
    print(text)
    if opts.out:
        opts.out.write_text(text + "\n")
    return 0


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest run, with the largest RSS growth of all runs."""
    best = dict(max(runs, key=lambda r: r["rows_per_s"]))
    best["peak_rss_growth_mib"] = max(r["peak_rss_growth_mib"] for r in runs)
    best["runs"] = len(runs)
    return best


def _rounded(d: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in d.items()}


if __name__ == "__main__":
    raise SystemExit(main())
