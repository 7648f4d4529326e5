"""Bundle verification throughput: a 100,000-entry range bundle built in memory, parsed and verified.

    .venv/bin/python bench/bundle_bench.py                 # 100,000 entries, best of 3 runs
    .venv/bin/python bench/bundle_bench.py --entries 10000 --runs 1

The log is made with `verification` alone (no database): version-1 headers with both hash chains
(1,000 cases), JSON content with a salted commitment on nine entries in ten, access entries without
content on the tenth. The bundle is the range [1000, 1000 + n) of a tree of n + 1,500 entries, so
its proof has left peaks and right subtrees. Timed, separately: `json.loads` of the bundle's bytes,
`Bundle.from_json`, and `verify_bundle` (collecting every check), each pass in a fresh process
reading the bundle from a file, as `caseledger verify` does. The target (≥ 50,000 entries/s) is for
parsing plus verifying, without `json.loads`; the rate with it, and of `verify_bundle` alone, are
reported beside. With ``--inclusion`` the same entries are also verified as an inclusion bundle (one
proof per entry). Prints one JSON object on stdout; the load average says how busy the machine was.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from verification.bundle import Bundle  # noqa: E402
from verification.bundle_verify import verify_bundle  # noqa: E402
from verification.checkpoint import Checkpoint, sign_checkpoint, verifier_key  # noqa: E402
from verification.compact import CompactRange, range_decomposition  # noqa: E402
from verification.entry import ZERO_HASH, canonical_json, format_time  # noqa: E402
from verification.merkle import leaf_hash, node_hash  # noqa: E402
from verification.tree import tree_root  # noqa: E402
from verification.trust import Trust  # noqa: E402

ORIGIN = "caseledger.local/bench"
START = 1000
TAIL = 500
TARGET = 50_000


def build_log(size: int) -> tuple[list[dict[str, Any]], list[bytes], list[Any], list[bytes]]:
    """Headers, their leaf hashes, each entry's content (None for none) and salt, for a log of `size`."""
    headers: list[dict[str, Any]] = []
    hashes: list[bytes] = []
    contents: list[Any] = []
    salts: list[bytes] = []
    prev = ZERO_HASH
    heads: dict[str, str] = {}
    base = datetime(2024, 5, 1, 12, tzinfo=UTC)
    for seq in range(size):
        salt = hashlib.sha256(seq.to_bytes(8, "big")).digest()
        case = None if seq % 10 == 9 else f"C-{seq % 1000}"
        content = None if case is None else {"text": f"customer asked about statement {seq}", "n": seq}
        header = {
            "v": 1, "log": ORIGIN, "seq": seq, "id": str(uuid.UUID(bytes=salt[:16], version=4)),
            "time": format_time(base + timedelta(microseconds=37 * seq)),
            "kind": "access" if case is None else "interaction", "actor": f"user:agent-{seq % 17}",
            "case": case, "case_prev": None if case is None else heads.get(case),
            "channel": None if case is None else "chat", "subject": None if case is None else f"s_{seq % 300}",
            "key": None if case is None else f"dk_{seq % 300:04d}",
            "ct": None if case is None else hashlib.sha256(salt + b"ct").hexdigest(),
            "commit": None if content is None else hashlib.sha256(salt + canonical_json(content)).hexdigest(),
            "meta": {"direction": "inbound"} if case else {}, "prev": prev,
        }
        digest = leaf_hash(canonical_json(header))
        prev = digest.hex()
        if case is not None:
            heads[case] = prev
        headers.append(header)
        hashes.append(digest)
        contents.append(content)
        salts.append(salt)
    return headers, hashes, contents, salts


def tree_levels(hashes: list[bytes]) -> list[list[bytes]]:
    """Every level of the RFC 9162 tree over `hashes`, leaves first: nodes paired left to right, an odd
    last node carried up as it is (the same tree as MTH's split at the largest power of two)."""
    levels = [hashes]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
                      + ([below[-1]] if len(below) % 2 else []))
    return levels


def path(levels: list[list[bytes]], index: int) -> list[str]:
    """The inclusion proof of leaf `index` (hex), read off the levels: its sibling wherever it has one."""
    out = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            out.append(level[sibling].hex())
        index >>= 1
    return out


def make_bundle(n: int, inclusion: bool) -> tuple[dict[str, Any], str]:
    size = START + n + TAIL
    headers, hashes, contents, salts = build_log(size)
    key = Ed25519PrivateKey.generate()
    compact = CompactRange()
    for digest in hashes:
        compact.append(digest)
    note = sign_checkpoint(Checkpoint(ORIGIN, size, compact.root()), key)
    end = START + n
    entries = []
    for seq in range(START, end):
        entry: dict[str, Any] = {"seq": seq, "entry_hash": hashes[seq].hex(), "header": headers[seq]}
        if contents[seq] is not None:
            entry |= {"content": contents[seq], "salt": salts[seq].hex()}
        entries.append(entry)
    if inclusion:
        levels = tree_levels(hashes)
        proof: dict[str, Any] = {"inclusion": [{"seq": seq, "proof": path(levels, seq)} for seq in range(START, end)]}
    else:
        left_at, right_at = range_decomposition(START, end, size)
        left, right = (
            [tree_root(hashes[i << level:(i + 1) << level]).hex() for level, i in coords]
            for coords in (left_at, right_at))
        proof = {"range": {"start": START, "end": end, "left": left, "right": right}}
    doc = {"type": "caseledger.bundle", "v": 1,
           "manifest": {"log": ORIGIN, "scope": {"start": START, "end": end}, "generated_at": "2024-06-01T10:00:00Z",
                        "generator": "caseledger bench", "exported_by": "service:bench", "include_content": True,
                        "redactions": []},
           "vkey": verifier_key(ORIGIN, key.public_key()), "checkpoint": note, "entries": entries, "proof": proof,
           "anchors": []}
    return doc, verifier_key(ORIGIN, key.public_key())


def measure_once(path: str, vkey: str) -> dict[str, Any]:
    """One pass over the bundle file in this (fresh) process: seconds of each step and the result's counts."""
    data = Path(path).read_bytes()
    trust = Trust.of(vkey)
    gc.collect()
    t0 = time.perf_counter()
    loaded = json.loads(data)
    t1 = time.perf_counter()
    bundle = Bundle.from_json(loaded)
    t2 = time.perf_counter()
    result = verify_bundle(bundle, trust, collect=True)
    t3 = time.perf_counter()
    if not result.valid:
        raise SystemExit(result.summary())
    return {"json_loads": t1 - t0, "from_json": t2 - t1, "verify": t3 - t2, "entries": result.entries,
            "bytes": len(data), "content_verified": result.content_verified, "content_absent": result.content_absent}


def measure(path: str, vkey: str, runs: int) -> dict[str, Any]:
    """Best of `runs` passes, each in a fresh process (as `caseledger verify` runs): a heap the builder
    left fragmented would otherwise slow the pass down."""
    passes = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, __file__, "--measure", path, vkey], capture_output=True, text=True,
                              check=True)
        passes.append(json.loads(done.stdout))
    best = {name: min(p[name] for p in passes) for name in ("json_loads", "from_json", "verify")}
    n = passes[0]["entries"]
    parse_verify = best["from_json"] + best["verify"]
    return {
        "entries": n, "bundle_mb": round(passes[0]["bytes"] / 1e6, 1),
        "seconds": {name: round(value, 3) for name, value in best.items()},
        "entries_per_s": round(n / parse_verify),
        "entries_per_s_with_json_loads": round(n / (parse_verify + best["json_loads"])),
        "verify_only_entries_per_s": round(n / best["verify"]),
        "content_verified": passes[0]["content_verified"], "content_absent": passes[0]["content_absent"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs, each in a fresh process")
    parser.add_argument("--inclusion", action="store_true", help="also verify an inclusion bundle of the entries")
    parser.add_argument("--measure", nargs=2, metavar=("FILE", "VKEY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        sys.stdout.write(json.dumps(measure_once(*args.measure)) + "\n")
        return
    out: dict[str, Any] = {"benchmark": "bundle-verify", "python": platform.python_version(),
                           "machine": platform.machine(), "cpus": os.cpu_count(),
                           "load_average": round(os.getloadavg()[0], 2), "runs": args.runs,
                           "target_entries_per_s": TARGET}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("range", "inclusion") if args.inclusion else ("range",):
            doc, vkey = make_bundle(args.entries, inclusion=kind == "inclusion")
            path = str(Path(tmp) / f"{kind}.json")
            Path(path).write_text(json.dumps(doc), encoding="utf-8")
            del doc
            out[kind] = measure(path, vkey, args.runs)
    out["range"]["met"] = out["range"]["entries_per_s"] >= TARGET
    sys.stdout.write(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
