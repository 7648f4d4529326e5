"""Group commit: appends to one log that arrive together are written in one transaction.

Every caller hands its items to `GroupCommitter.submit` and blocks. The first caller for a log
becomes the leader: it takes everything queued for that log, writes it with one transaction, hands
each caller its own results, and passes leadership to the next waiting caller, if any. A caller
returns only after the transaction holding its items has committed, so an acknowledgement is never
ahead of durability.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["GroupCommitter"]

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class _Waiter(Generic[Item, Result]):
    items: Sequence[Item]
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    result: list[Result] | None = None
    error: BaseException | None = None


class GroupCommitter(Generic[Item, Result]):
    def __init__(self, write: Callable[[int, list[Item]], list[Result]], max_items: int = 5000) -> None:
        """`write(log_id, items)` commits all items in one transaction and returns one result each."""
        self._write = write
        self._max_items = max_items
        self._lock = threading.Lock()
        self._queues: dict[int, list[_Waiter[Item, Result]]] = {}
        self._leading: set[int] = set()
        #: transactions written so far (a gauge of how well appends are grouped)
        self.commits = 0

    def submit(self, log_id: int, items: Sequence[Item]) -> list[Result]:
        waiter: _Waiter[Item, Result] = _Waiter(items)
        with self._lock:
            self._queues.setdefault(log_id, []).append(waiter)
            if log_id not in self._leading:
                self._leading.add(log_id)
                waiter.lead = True
        while not waiter.lead:
            waiter.done.wait()
            if waiter.result is not None or waiter.error is not None:
                return self._outcome(waiter)
            waiter.done.clear()
        self._lead(log_id)
        return self._outcome(waiter)

    @staticmethod
    def _outcome(waiter: _Waiter[Item, Result]) -> list[Result]:
        if waiter.error is not None:
            raise waiter.error
        assert waiter.result is not None
        return waiter.result

    def _take(self, log_id: int) -> list[_Waiter[Item, Result]]:
        with self._lock:
            queue = self._queues.get(log_id, [])
            taken: list[_Waiter[Item, Result]] = []
            count = 0
            while queue and (not taken or count + len(queue[0].items) <= self._max_items):
                waiter = queue.pop(0)
                taken.append(waiter)
                count += len(waiter.items)
            return taken

    def _lead(self, log_id: int) -> None:
        group = self._take(log_id)
        try:
            items = [item for waiter in group for item in waiter.items]
            results = self._write(log_id, items)
            self.commits += 1
            start = 0
            for waiter in group:
                waiter.result = results[start : start + len(waiter.items)]
                start += len(waiter.items)
        except BaseException as exc:  # every caller of the failed transaction learns why
            for waiter in group:
                waiter.error = exc
        finally:
            with self._lock:
                queue = self._queues.get(log_id)
                if queue:
                    queue[0].lead = True
                    queue[0].done.set()
                else:
                    self._queues.pop(log_id, None)
                    self._leading.discard(log_id)
            for waiter in group:
                if not waiter.lead:
                    waiter.done.set()
