"""Group commit on its own: grouping, per-caller results and errors, retry alone, cancellation."""

from __future__ import annotations

import threading

import pytest

from ledger.groupcommit import BackgroundBatcher, GroupCommitter


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
    # the shared call for "bad" failed, so each request was tried alone before it learned why
    assert calls == [("a", [0]), ("a", [1, 2, 4]), ("b", [3]), ("bad", [5, 6, 7]), ("bad", [5]), ("bad", [6, 7])]


def test_one_requests_refused_items_fail_only_that_request() -> None:
    """A shared call that fails because of one request's items is retried per request."""
    gate = threading.Event()

    def write(key: str, items: list[int]) -> list[int]:
        gate.wait(30)
        if 13 in items:
            raise ValueError("13 is refused")
        return [item + 1 for item in items]

    batcher: BackgroundBatcher[str, int, int] = BackgroundBatcher(write)
    first = batcher.submit("k", [0])
    while not first.running():
        pass
    good, bad, also_good = batcher.submit("k", [1]), batcher.submit("k", [13]), batcher.submit("k", [2, 3])
    gate.set()
    assert good.result(30) == [2] and also_good.result(30) == [3, 4]
    with pytest.raises(ValueError, match="13"):
        bad.result(30)
    batcher.close()


def _committer_with_queue(write_gate: threading.Event, calls: list[list[int]]) -> GroupCommitter[int, int]:
    def write(log_id: int, items: list[int]) -> list[int]:
        calls.append(list(items))
        write_gate.wait(30)
        if 13 in items:
            raise ValueError("13 is refused")
        return [item * 2 for item in items]

    return GroupCommitter(write)


def test_group_committer_writes_waiting_callers_in_one_transaction() -> None:
    gate = threading.Event()
    calls: list[list[int]] = []
    committer = _committer_with_queue(gate, calls)
    results: dict[int, list[int] | BaseException] = {}

    def call(index: int, items: list[int]) -> None:
        try:
            results[index] = committer.submit(1, items)
        except BaseException as exc:
            results[index] = exc

    leader = threading.Thread(target=call, args=(0, [0]))
    leader.start()
    while not calls:  # the leader is inside its write; the next callers queue behind it
        pass
    followers = [threading.Thread(target=call, args=(i, [i, i + 100])) for i in range(1, 4)]
    for thread in followers:
        thread.start()
    while committer.waiting(1) < 3:
        pass
    gate.set()
    for thread in [leader, *followers]:
        thread.join(30)
    assert results == {0: [0], 1: [2, 202], 2: [4, 204], 3: [6, 206]}
    assert calls[0] == [0] and sorted(calls[1]) == [1, 2, 3, 101, 102, 103] and len(calls) == 2
    assert committer.commits == 2


def test_group_committer_retries_each_caller_alone_when_the_shared_write_fails() -> None:
    gate = threading.Event()
    gate.set()
    calls: list[list[int]] = []
    committer = _committer_with_queue(gate, calls)
    with pytest.raises(ValueError, match="13"):
        committer.submit(1, [13])
    assert committer.submit(1, [4]) == [8]
    assert committer.commits == 1 and calls == [[13], [4]]

