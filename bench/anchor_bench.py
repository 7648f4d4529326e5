"""Anchoring benchmark (`make bench`): gas and wall time of a round over 1, 10, 100 and 1,000 logs,
beside the naive alternative measured in the same run — one anchoring transaction per log.

    .venv/bin/python bench/anchor_bench.py            # 1, 10, 100, 1000 logs (~2 min)
    .venv/bin/python bench/anchor_bench.py --quick    # 1, 10 logs

Runs against a local anvil node from the pinned npm package (contracts/node_modules), on SQLite.
Targets (issue 9): a round's gas within 10 % from 1 to 1,000 logs; a round over 1,000 logs costs
≤ 1/100 of anchoring them one by one; it completes on the local node in ≤ 5 s. Results go to
bench/results/anchor-<time>.json and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402

from bench.common import MASTER_KEY, Result  # noqa: E402
from bench.run import machine, markdown  # noqa: E402
from contracts.chain import AnchorChain  # noqa: E402
from contracts.config import ChainConfig  # noqa: E402
from ledger.appender import NewEntry  # noqa: E402
from ledger.service import Ledger  # noqa: E402
from ledger.settings import Settings  # noqa: E402
from tests.anvil import AnvilNode  # noqa: E402

SIZES = (1, 10, 100, 1000)


def _chain(node: AnvilNode) -> AnchorChain:
    owner = AnchorChain(ChainConfig(rpc_url=node.rpc_url, chain_id=node.chain_id, contract=None, confirmations=1),
                        node.keys[0])
    chain = AnchorChain(ChainConfig(rpc_url=node.rpc_url, chain_id=node.chain_id, contract=owner.deploy(),
                                    confirmations=1), node.keys[0])
    if not chain.is_publisher(chain.address):
        chain.add_publisher(chain.address)
    return chain


def round_over(node: AnvilNode, logs: int, tmp: Path) -> dict[str, Any]:
    """One round over `logs` logs that each grew by one entry: its gas and wall time."""
    settings = Settings(data_dir=tmp / f"round-{logs}", master_key=SecretStr(MASTER_KEY))
    Ledger.initialise(settings)
    ledger = Ledger.open(settings)
    try:
        for i in range(logs):
            name = f"t{i:05d}"
            ledger.tenants.create(name)
            ledger.appender.append(name, NewEntry(kind="interaction", channel="chat", case="c", content=b"{}"))
        chain = _chain(node)
        started = time.perf_counter()
        done = ledger.anchoring.run_round(chain)
        seconds = time.perf_counter() - started
    finally:
        ledger.close()
    assert done is not None and done.state == "confirmed" and done.leaves == logs and done.gas_used
    return {"logs": logs, "gas": done.gas_used, "seconds": seconds}


def naive(node: AnvilNode, logs: int) -> dict[str, Any]:
    """One anchoring transaction per log, as a deployment without round trees would send."""
    chain = _chain(node)
    gas = 0
    started = time.perf_counter()
    for i in range(logs):
        gas += chain.anchor(i + 1, (i + 1).to_bytes(32, "big"), 1).gas_used
    return {"logs": logs, "gas": gas, "seconds": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 and 10 logs only")
    parser.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)
    sizes = SIZES[:2] if args.quick else SIZES
    results: list[Result] = []
    rounds: dict[int, dict[str, Any]] = {}
    naives: dict[int, dict[str, Any]] = {}
    with AnvilNode() as node, tempfile.TemporaryDirectory(prefix="anchor-bench-") as tmp:
        for logs in sizes:
            rounds[logs] = round_over(node, logs, Path(tmp))
            naives[logs] = naive(node, logs)
            print(f"  {logs} logs: round {rounds[logs]['gas']} gas in {rounds[logs]['seconds']:.2f} s; "
                  f"naive {naives[logs]['gas']} gas in {naives[logs]['seconds']:.2f} s", file=sys.stderr)
    smallest, largest = sizes[0], sizes[-1]
    for logs in sizes:
        results.append(Result("anchor_round", "sqlite+anvil", "gas of one round", rounds[logs]["gas"], "gas",
                              size=logs))
        results.append(Result("anchor_round", "sqlite+anvil", "wall time of one round", rounds[logs]["seconds"], "s",
                              size=logs, target="<= 5" if logs == 1000 else None,
                              notes="checkpoints, round tree, transaction, confirmation, receipts, anchor entries"))
        results.append(Result("anchor_naive", "anvil", "gas of one tx per log", naives[logs]["gas"], "gas",
                              size=logs, notes=f"{naives[logs]['seconds']:.1f} s"))
        results.append(Result("ratio", "anvil", "round gas / one tx per log", rounds[logs]["gas"] / naives[logs]["gas"],
                              "ratio", size=logs, target="<= 0.01" if logs == 1000 else None))
    spread = rounds[largest]["gas"] / rounds[smallest]["gas"]
    results.append(Result("ratio", "anvil", f"round gas at {largest} / at {smallest} logs", spread, "ratio",
                          target="<= 1.1", notes="a round's gas does not grow with the number of logs"))
    table = markdown(results)
    print(table)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.results_dir / f"anchor-{stamp}.json"
    out.write_text(json.dumps({"machine": machine(), "rounds": rounds, "naive": naives,
                               "results": [r.as_dict() for r in results]}, indent=2) + "\n")
    print(f"saved {out}", file=sys.stderr)
    return 0 if all(r.met is not False for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
