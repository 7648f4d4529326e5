"""Documents benchmark (`make bench`): upload and download MB/s of 1 MiB and 25 MiB files through the
API (multipart upload, encrypted into the blob store; download by a share link, decrypted), beside a
plain FastAPI endpoint measured in the same run that streams the same upload to a file and serves it
back with `FileResponse`; and the server's peak RSS growth while moving a 25 MiB file.

    .venv/bin/python bench/documents_bench.py            # SQLite, one worker
    .venv/bin/python bench/documents_bench.py --quick    # fewer repetitions

Targets (issue 10): ≥ 50 % of the plain endpoint's throughput both ways; peak RSS growth < 10 MiB for
25 MiB files. Results: bench/results/documents-<time>.json and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402

from bench.http_bench import TENANT, _cli, _free_port, fresh_store, serving  # noqa: E402

MIB = 1024 * 1024
BLOCK = os.urandom(MIB)
BOUNDARY = "caseledgerbenchboundary"


def _file(size: int) -> Iterator[bytes]:
    left = size
    while left > 0:
        piece = BLOCK[: min(64 * 1024, left)]
        left -= len(piece)
        yield piece


def _multipart(size: int) -> Iterator[bytes]:
    def field(name: str, value: str) -> bytes:
        return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").encode()

    yield field("case", "BENCH-1") + field("title", "benchmark file")
    yield (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"bench.bin\"\r\n"
           "Content-Type: application/octet-stream\r\n\r\n").encode()
    yield from _file(size)
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


class PeakRss:
    """The peak RSS of a process and its children, sampled on a thread while in the block."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self) -> float:
        total: int = self.process.memory_info().rss
        for child in self.process.children(recursive=True):
            with suppress(psutil.Error):
                total += child.memory_info().rss
        return total / MIB

    def _run(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> PeakRss:
        self.start = self.peak = self._rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> float:
        return self.peak - self.start


def _server_pid(url: str) -> int:
    port = int(url.rsplit(":", 1)[1])
    for conn in psutil.net_connections(kind="tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
            return int(conn.pid)
    raise RuntimeError(f"no process listens on port {port}")


def ours(size: int, repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="docs-bench-") as tmp, fresh_store("sqlite", Path(tmp)) as store:
        agent = _cli(store.env, "token", "--tenant", TENANT, "--role", "supervisor", "--sub", "bench").strip()
        # the recipient has no token: a client of its own, kept open like the plain endpoint's
        with serving(store, 1) as url, httpx.Client(base_url=url, timeout=300,
                                                    headers={"Authorization": f"Bearer {agent}"}) as http, \
                httpx.Client(timeout=300) as recipient:
            pid = _server_pid(url)
            up = down = 0.0
            rss = 0.0
            for _ in range(repeat):
                with PeakRss(pid) as watch:
                    started = time.perf_counter()
                    made = http.post("/v1/documents", content=_multipart(size),
                                     headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
                    up += time.perf_counter() - started
                made.raise_for_status()
                document = made.json()["document"]["id"]
                share = http.post(f"/v1/documents/{document}/shares", json={
                    "recipient": "bench-recipient", "expires_in": 3600, "max_downloads": 1, "purpose": "bench"})
                share.raise_for_status()
                with PeakRss(pid) as down_watch:
                    started = time.perf_counter()
                    got = 0
                    with recipient.stream("GET", share.json()["url"]) as response:
                        response.raise_for_status()
                        for chunk in response.iter_raw():
                            got += len(chunk)
                    down += time.perf_counter() - started
                assert got == size, (got, size)
                rss = max(rss, watch.growth, down_watch.growth)
    return {"upload_mb_s": size * repeat / MIB / up, "download_mb_s": size * repeat / MIB / down, "rss_growth_mb": rss}


@contextmanager
def plain_server() -> Iterator[str]:
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="plain-files-") as files:
        env = dict(os.environ) | {"PLAIN_FILES_DIR": files, "PYTHONPATH": str(ROOT)}
        process = subprocess.Popen([sys.executable, "-m", "uvicorn", "bench.plain_files_app:app", "--host", "127.0.0.1",
                                    "--port", str(port), "--log-level", "warning"], cwd=ROOT, env=env,
                                   start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    httpx.get(f"{url}/docs", timeout=2)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise RuntimeError("the plain server did not start") from None
                    time.sleep(0.1)
            yield url
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def plain(size: int, repeat: int) -> dict[str, Any]:
    with plain_server() as url, httpx.Client(base_url=url, timeout=300) as http:
        pid = _server_pid(url)
        up = down = rss = 0.0
        for _ in range(repeat):
            with PeakRss(pid) as watch:
                started = time.perf_counter()
                made = http.post("/plain", content=_file(size))
                up += time.perf_counter() - started
            made.raise_for_status()
            with PeakRss(pid) as down_watch:
                started = time.perf_counter()
                got = 0
                with http.stream("GET", f"/plain/{made.json()['id']}") as response:
                    for chunk in response.iter_raw():
                        got += len(chunk)
                down += time.perf_counter() - started
            assert got == size
            rss = max(rss, watch.growth, down_watch.growth)
    return {"upload_mb_s": size * repeat / MIB / up, "download_mb_s": size * repeat / MIB / down, "rss_growth_mb": rss}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    runs = {MIB: 3 if args.quick else 10, 25 * MIB: 1 if args.quick else 3}
    rows: list[dict[str, Any]] = []
    for size, repeat in runs.items():
        base = plain(size, repeat)
        mine = ours(size, repeat)
        row = {"size_mib": size // MIB, "repeat": repeat, "ours": mine, "plain": base,
               "upload_ratio": mine["upload_mb_s"] / base["upload_mb_s"],
               "download_ratio": mine["download_mb_s"] / base["download_mb_s"]}
        rows.append(row)
        print(f"  {size // MIB} MiB: {json.dumps(row)}", file=sys.stderr)
    lines = ["| file | ours up MB/s | plain up MB/s | up ratio (≥ 0.5) | ours down MB/s | plain down MB/s "
             "| down ratio (≥ 0.5) | peak RSS growth, ours (< 10 MiB for 25 MiB) |",
             "|--:|--:|--:|--:|--:|--:|--:|--:|"]
    ok = True
    for row in rows:
        mine, base = row["ours"], row["plain"]
        up_ok, down_ok = row["upload_ratio"] >= 0.5, row["download_ratio"] >= 0.5
        rss_ok = row["size_mib"] < 25 or mine["rss_growth_mb"] < 10
        ok = ok and up_ok and down_ok and rss_ok
        lines.append(f"| {row['size_mib']} MiB | {mine['upload_mb_s']:.1f} | {base['upload_mb_s']:.1f} | "
                     f"{row['upload_ratio']:.2f} {'✅' if up_ok else '❌'} | {mine['download_mb_s']:.1f} | "
                     f"{base['download_mb_s']:.1f} | {row['download_ratio']:.2f} {'✅' if down_ok else '❌'} | "
                     f"{mine['rss_growth_mb']:.1f} MiB {'✅' if rss_ok else '❌'} |")
    print("\n".join(lines))
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"documents-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.json"
    out.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    print(f"saved {out}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
