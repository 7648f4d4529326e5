"""HTTP benchmark: appends per second and latency through the real server, under `wrk`.

    .venv/bin/python bench/http_bench.py             # 15 s per measurement (~3 min)
    .venv/bin/python bench/http_bench.py --quick     # 5 s per measurement (~1 min)
    .venv/bin/python bench/http_bench.py --no-pg     # SQLite only

For each backend (SQLite, and PostgreSQL on a fresh database) and each worker count (1 and 2) the
server is `python -m api.cli serve --workers N` as a subprocess, on a fresh store made with
`caseledger init` and `tenant create`. `wrk -t2 -c32 -d15s --latency` then measures:

* trivial — `GET /healthz` on the same app and server (same uvicorn settings, same middleware:
  body limit and Prometheus metrics; an `async def` endpoint on the event loop, like the append
  handler, which hands the commit to the ledger's background appender and awaits it).
  It is the ceiling of this server setup, so appends/s ÷ trivial req/s is our own overhead.
* append — `POST /v1/interactions` (bench/wrk/append.lua: ~300 bytes of content, a case among
  10,000, a customer among 100 whose subjects and data keys are warmed up first, an agent token).

After the run the server is stopped and `Ledger.verify_log` re-verifies the whole log; its size
is reported. `run(quick)` returns rows shaped like `bench.common.Result.as_dict()`; `__main__`
prints a Markdown table and saves JSON to bench/results/http-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from pydantic import SecretStr  # noqa: E402

from bench.common import MASTER_KEY, PG_URL, database_url, pg_available  # noqa: E402
from ledger.service import Ledger  # noqa: E402
from ledger.settings import Settings  # noqa: E402

__all__ = ["WrkResult", "parse_wrk", "render", "run"]

TENANT = "bench"
CUSTOMERS = 100
CONNECTIONS = 32
WRK_THREADS = 2
APPEND_SCRIPT = ROOT / "bench" / "wrk" / "append.lua"
TARGET_APPENDS = 1000.0
TARGET_RATIO = 0.3
TARGET_P99_MS = 100.0
RESULTS = ROOT / "bench" / "results"


def _log(message: str) -> None:
    print(f"[http-bench] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- wrk


@dataclass
class WrkResult:
    requests_per_s: float
    requests: int
    duration_s: float
    #: latency percentiles in milliseconds, from --latency ("50", "75", "90", "99")
    latency_ms: dict[str, float]
    non_2xx: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    output: str = ""

    @property
    def p50_ms(self) -> float:
        return self.latency_ms["50"]

    @property
    def p99_ms(self) -> float:
        return self.latency_ms["99"]


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_LATENCY = re.compile(r"^\s*(50|75|90|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$", re.M)
_REQUESTS = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m),", re.M)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def parse_wrk(text: str) -> WrkResult:
    """Requests/sec, the request count and the latency distribution from `wrk --latency` output."""
    rps, count = _RPS.search(text), _REQUESTS.search(text)
    latencies = {pct: float(value) * _UNITS_MS[unit] for pct, value, unit in _LATENCY.findall(text)}
    if rps is None or count is None or set(latencies) != {"50", "75", "90", "99"}:
        raise ValueError(f"unexpected wrk output:\n{text}")
    non_2xx = _NON_2XX.search(text)
    sockets = _SOCKET.search(text)
    errors = dict(zip(("connect", "read", "write", "timeout"), map(int, sockets.groups()), strict=True)) \
        if sockets else {}
    return WrkResult(
        requests_per_s=float(rps.group(1)), requests=int(count.group(1)),
        duration_s=float(count.group(2)) * _UNITS_MS[count.group(3)] / 1000, latency_ms=latencies,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0, socket_errors=errors, output=text)


def wrk_version() -> str:
    found = shutil.which("wrk")
    if found is None:
        return "missing"
    out = subprocess.run([found, "--version"], capture_output=True, text=True, check=False, timeout=10)
    return (out.stdout or out.stderr).splitlines()[0].strip() if (out.stdout or out.stderr) else "?"


def run_wrk(url: str, duration: float, *, script: Path | None = None, env: dict[str, str] | None = None,
            connections: int = CONNECTIONS) -> WrkResult:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed: apt-get install -y wrk")
    command = [wrk, f"-t{WRK_THREADS}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency",
               "--timeout", "10s"]
    if script is not None:
        command += ["-s", str(script)]
    command.append(url)
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=duration + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


# ------------------------------------------------------------------------------------- the server


@dataclass
class Store:
    backend: str
    settings: Settings
    env: dict[str, str]
    directory: Path


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "api.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"caseledger {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


@contextmanager
def fresh_store(backend: str, tmp_root: Path) -> Iterator[Store]:
    """A data directory (and, for PostgreSQL, a database) made by `caseledger init` and `tenant create`."""
    directory = Path(tempfile.mkdtemp(prefix=f"http-{backend}-", dir=tmp_root))
    try:
        with database_url(backend, directory) as url:
            env = {k: v for k, v in os.environ.items()
                   if not k.startswith("CASELEDGER_") and k != "PROMETHEUS_MULTIPROC_DIR"}
            env.update({"CASELEDGER_DATA_DIR": str(directory / "data"), "CASELEDGER_DATABASE_URL": url,
                        "CASELEDGER_MASTER_KEY": MASTER_KEY, "PYTHONPATH": str(ROOT)})
            _cli(env, "init")
            _cli(env, "tenant", "create", TENANT)
            settings = Settings(data_dir=directory / "data", database_url=url, master_key=SecretStr(MASTER_KEY))
            yield Store(backend, settings, env, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(store: Store, workers: int) -> Iterator[str]:
    """`caseledger serve --workers N` in its own process group, ended (whole group) on exit."""
    port = _free_port()
    log_path = store.directory / f"server-{workers}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(workers)],
            cwd=ROOT, env=store.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"the server exited: {log_path.read_text()[-2000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError("the server did not answer /healthz within 60 s")
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
            yield url
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=30)


def _warm_up(url: str, token: str) -> None:
    """Create the customers' subjects and data keys, so the timed run measures steady-state appends."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        for number in range(CUSTOMERS):
            body = {"case": f"W-{number}", "channel": "phone", "direction": "inbound",
                    "subject_ref": f"CRM-{number}", "content": {"note": "warm-up"}}
            response = http.post("/v1/interactions", json=body)
            if response.status_code != 201:
                raise RuntimeError(f"warm-up append failed: {response.status_code} {response.text[:300]}")


def _commit_stats(url: str) -> tuple[float, float]:
    """(append transactions, appended entries) summed over the workers, from /metrics.

    Counters are summed over the workers by prometheus' multiprocess mode. (Where the app keeps them
    as gauges set when a worker serves /metrics, several fresh connections reach every worker.)
    """
    values: dict[str, float] = {}
    for _ in range(4):
        text = httpx.get(f"{url}/metrics", timeout=30).text
        for name in ("caseledger_append_transactions", "caseledger_appended_entries"):
            # a gauge (older app) or a counter, which prometheus_client names <name>_total
            found = re.search(rf"^{name}(?:_total)?(?:\{{[^}}]*\}})? ([\d.e+]+)$", text, re.M)
            if found:
                values[name] = float(found.group(1))
    return values.get("caseledger_append_transactions", 0.0), values.get("caseledger_appended_entries", 0.0)


# ----------------------------------------------------------------------------------- measurement


def _row(benchmark: str, backend: str, metric: str, value: float, unit: str, *, size: int | None = None,
         target: str | None = None, notes: str = "", extra: dict[str, Any] | None = None) -> dict[str, Any]:
    met = None
    if target:
        op, _, bound = target.partition(" ")
        met = value >= float(bound) if op == ">=" else value <= float(bound)
    return {"benchmark": benchmark, "backend": backend, "metric": metric, "value": value, "unit": unit,
            "size": size, "target": target, "met": met, "notes": notes, "extra": extra or {}}


def _wrk_extra(result: WrkResult) -> dict[str, Any]:
    out = asdict(result)
    out.pop("output")
    return out


def measure(backend: str, workers: int, duration: float, tmp_root: Path) -> list[dict[str, Any]]:
    """One fresh store and server: trivial req/s, appends/s, latencies, then verify_log."""
    _log(f"{backend}, {workers} worker(s): preparing a fresh store")
    with fresh_store(backend, tmp_root) as store:
        token = _cli(store.env, "token", "--tenant", TENANT, "--role", "agent", "--sub", "bench-agent",
                     "--ttl", "86400").strip()
        wrk_env = dict(os.environ) | {"CASELEDGER_BENCH_TOKEN": token,
                                      "CASELEDGER_BENCH_CUSTOMERS": str(CUSTOMERS)}
        with serving(store, workers) as url:
            _warm_up(url, token)
            _log(f"{backend}, {workers} worker(s): GET /healthz for {duration:.0f} s")
            trivial = run_wrk(f"{url}/healthz", duration)
            _log(f"  {trivial.requests_per_s:,.0f} req/s, p50 {trivial.p50_ms:.2f} ms, p99 {trivial.p99_ms:.2f} ms")
            run_wrk(f"{url}/v1/interactions", max(1.0, duration / 5), script=APPEND_SCRIPT, env=wrk_env)
            transactions_before, entries_before = _commit_stats(url)
            _log(f"{backend}, {workers} worker(s): POST /v1/interactions for {duration:.0f} s")
            append = run_wrk(f"{url}/v1/interactions", duration, script=APPEND_SCRIPT, env=wrk_env)
            transactions_after, entries_after = _commit_stats(url)
            _log(f"  {append.requests_per_s:,.0f} appends/s, p50 {append.p50_ms:.2f} ms, "
                 f"p99 {append.p99_ms:.2f} ms, non-2xx {append.non_2xx}")
        ledger = Ledger.open(store.settings)
        try:
            started = time.perf_counter()
            report = ledger.logcheck.verify(TENANT)
            verify_s = time.perf_counter() - started
        finally:
            ledger.close()
        _log(f"  verify_log: {report['size']} entries ok in {verify_s:.2f} s")

    commits = transactions_after - transactions_before
    grouped = (entries_after - entries_before) / commits if commits > 0 else float("nan")
    ratio = append.requests_per_s / trivial.requests_per_s if trivial.requests_per_s else 0.0
    label = f"{workers} worker{'s' if workers > 1 else ''}"
    errors = append.non_2xx + sum(append.socket_errors.values())
    common = {"workers": workers, "connections": CONNECTIONS, "wrk_threads": WRK_THREADS, "duration_s": duration}
    return [
        _row("http_trivial", backend, f"GET /healthz req/s, {label}", trivial.requests_per_s, "req/s",
             notes=f"p50 {trivial.p50_ms:.2f} ms, p99 {trivial.p99_ms:.2f} ms",
             extra=common | _wrk_extra(trivial)),
        _row("http_append", backend, f"POST /v1/interactions appends/s, {label}", append.requests_per_s,
             "appends/s", target=f">= {TARGET_APPENDS:g}",
             notes=(f"p50 {append.p50_ms:.2f} ms; {append.requests} requests, {errors} errors; "
                    f"~{grouped:.1f} entries/commit"),
             extra=common | _wrk_extra(append) | {"entries_per_commit": grouped, "errors": errors}),
        _row("http_append", backend, f"POST /v1/interactions p99 latency, {label}", append.p99_ms, "ms",
             target=f"<= {TARGET_P99_MS:g}", notes=f"p90 {append.latency_ms['90']:.2f} ms",
             extra=common),
        _row("ratio", backend, f"appends/s ÷ trivial req/s, {label}", ratio, "x",
             target=f">= {TARGET_RATIO:g}", extra=common),
        _row("http_verify_log", backend, f"verify_log after the run, {label}", float(report["size"]), "entries",
             size=int(report["size"]), notes=f"ok in {verify_s:.2f} s",
             extra=common | {"verify_s": verify_s, "ok": bool(report["ok"]), "root": report["root"]}),
    ]


def run(quick: bool, *, backends: Sequence[str] | None = None, workers: Sequence[int] = (1, 2),
        duration: float | None = None) -> list[dict[str, Any]]:
    """Every measurement; rows shaped like `bench.common.Result.as_dict()`."""
    duration = duration if duration is not None else (5.0 if quick else 15.0)
    if backends is None:
        why = pg_available()
        if why is not None:
            _log(f"PostgreSQL at {PG_URL} is not available ({why}): SQLite only")
        backends = ["sqlite"] if why is not None else ["sqlite", "postgres"]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="caseledger-http-bench-") as tmp:
        for backend in backends:
            for count in workers:
                rows += measure(backend, count, duration, Path(tmp))
    return rows


# --------------------------------------------------------------------------------------- output


def _mark(row: dict[str, Any] | None) -> str:
    if row is None or row["met"] is None:
        return ""
    return " ✅" if row["met"] else " ❌"


def render(rows: Sequence[dict[str, Any]]) -> str:
    """One line per backend and worker count."""
    groups: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for row in rows:
        key = (row["backend"], int(row["extra"].get("workers", 0)))
        kind = row["benchmark"] + (":p99" if row["unit"] == "ms" else "")
        groups.setdefault(key, {})[kind] = row
    lines = [
        f"| Backend | Workers | Trivial GET /healthz req/s (p50 / p99 ms) | Appends/s (≥ {TARGET_APPENDS:,.0f}) "
        f"| Append p50 ms | Append p99 ms (≤ {TARGET_P99_MS:g}) | Ratio (≥ {TARGET_RATIO:g}) | Errors "
        "| Entries/commit | Log size after run (verify_log) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (backend, workers), got in groups.items():
        trivial, append, p99 = got["http_trivial"], got["http_append"], got["http_append:p99"]
        ratio, verify = got["ratio"], got["http_verify_log"]
        t, a = trivial["extra"], append["extra"]
        errors = a["non_2xx"] + sum(a["socket_errors"].values())
        lines.append(
            f"| {backend} | {workers} | {trivial['value']:,.0f} ({t['latency_ms']['50']:.2f} / "
            f"{t['latency_ms']['99']:.2f}) | {append['value']:,.0f}{_mark(append)} | {a['latency_ms']['50']:.2f} "
            f"| {p99['value']:.2f}{_mark(p99)} | {ratio['value']:.2f}{_mark(ratio)} | {errors} "
            f"| {a['entries_per_commit']:.1f} | {verify['size']:,} ok ({verify['extra']['verify_s']:.2f} s) |")
    return "\n".join(lines)


def _machine() -> dict[str, Any]:
    import platform

    info: dict[str, Any] = {"python": platform.python_version(), "cpus": os.cpu_count(), "wrk": wrk_version(),
                            "wrk_args": f"-t{WRK_THREADS} -c{CONNECTIONS} --latency"}
    with suppress(OSError):
        info["load_avg"] = os.getloadavg()
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False, timeout=10).stdout.strip()
    info["git"] = commit or "?"
    return info


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="5 s per measurement instead of 15 s")
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts (default 1,2)")
    parser.add_argument("--duration", type=float, default=None, help="seconds per wrk measurement")
    args = parser.parse_args(argv)
    started = time.monotonic()
    machine = _machine()
    rows = run(args.quick, backends=["sqlite"] if args.no_pg else None,
               workers=[int(w) for w in args.workers.split(",") if w.strip()], duration=args.duration)
    machine["load_avg_end"] = os.getloadavg()
    table = render(rows)
    print(table)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"http-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"machine": machine, "quick": args.quick, "results": rows, "table": table,
                                "seconds": time.monotonic() - started}, indent=2, ensure_ascii=False))
    _log(f"saved {path.relative_to(ROOT)}")
    missed = [f"{row['backend']}: {row['metric']}" for row in rows if row["met"] is False]
    if missed:
        _log("missed targets: " + "; ".join(missed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
