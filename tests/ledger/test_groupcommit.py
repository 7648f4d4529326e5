"""The background batcher on its own: grouping, per-request results and errors, cancellation."""

from __future__ import annotations

import threading

import pytest

from ledger.groupcommit import BackgroundBatcher


def test_queued_requests_are_written_together_and_cancelled_ones_not_at_all() -> None:
    calls: list[tuple[str, list[int]]] = []
    gate = threading.Event()

    def write(key: str, items: list[int]) -> list[int]:
        gate.wait(30)
        calls.append((key, items))
        if key == "bad":
            raise ValueError("refused")
        return [item * 10 for item in items]

    batcher: BackgroundBatcher[str, int, int] = BackgroundBatcher(write)
    first = batcher.submit("a", [0])  # taken at once; the thread then waits at the gate
    while not first.running():
        pass
    queued = [batcher.submit("a", [1, 2]), batcher.submit("b", [3]), batcher.submit("a", [4]),
              batcher.submit("bad", [5]), batcher.submit("bad", [6, 7])]
    dropped = batcher.submit("a", [99])
    assert dropped.cancel()
    gate.set()
    assert first.result(30) == [0]
    assert [f.result(30) for f in queued[:3]] == [[10, 20], [30], [40]]
    for future in queued[3:]:
        with pytest.raises(ValueError, match="refused"):
            future.result(30)
    batcher.close()
    assert calls == [("a", [0]), ("a", [1, 2, 4]), ("b", [3]), ("bad", [5, 6, 7])]


def test_close_finishes_the_queue_then_refuses() -> None:
    batcher: BackgroundBatcher[str, int, int] = BackgroundBatcher(lambda key, items: items)
    futures = [batcher.submit("k", [i]) for i in range(50)]
    batcher.close()
    assert [f.result(0) for f in futures] == [[i] for i in range(50)]
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit("k", [1])
