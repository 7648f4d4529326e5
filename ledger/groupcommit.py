"""Group commit: appends to one log that arrive together are written in one transaction.

Every caller hands its items to `GroupCommitter.submit` and blocks. The first caller for a log
becomes the leader: it takes everything queued for that log, writes it with one transaction, hands
each caller its own results, and passes leadership to the next waiting caller, if any. A caller
returns only after the transaction holding its items has committed, so an acknowledgement is never
ahead of durability. When a shared transaction fails, each caller's items are written again in a
transaction of their own, so items refused under the lock (a case that must be new, say) fail only
the caller that sent them.

`BackgroundBatcher` is the same for callers that must not block (an asyncio server): they get a
Future, and one background thread writes what they queued, together.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["BackgroundBatcher", "GroupCommitter"]

Item = TypeVar("Item")
Result = TypeVar("Result")
Key = TypeVar("Key", bound=Hashable)


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

    def waiting(self, log_id: int) -> int:
        """Callers queued for `log_id` behind the transaction being written (a gauge)."""
        with self._lock:
            return len(self._queues.get(log_id, ()))

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
            try:
                results = self._write(log_id, items)
            except Exception:
                if len(group) == 1:
                    raise
                self._write_alone(log_id, group)  # one caller's items failed the whole transaction
            else:
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


    def _write_alone(self, log_id: int, group: list[_Waiter[Item, Result]]) -> None:
        """Write each caller's items in a transaction of its own, so that items one caller got
        wrong (refused under the lock) fail only that caller."""
        for waiter in group:
            try:
                waiter.result = self._write(log_id, list(waiter.items))
                self.commits += 1
            except BaseException as exc:
                waiter.error = exc


@dataclass
class _Request(Generic[Key, Item, Result]):
    key: Key
    items: Sequence[Item]
    future: Future[list[Result]]


class BackgroundBatcher(Generic[Key, Item, Result]):
    """Appends from an event loop: `submit` returns at once with a Future, one thread does the work.

    An asyncio server must not block its loop on a commit, and a thread per request costs more
    than the append itself. Requests queue here; a single background thread takes everything
    queued, calls `write(key, items)` once per key for all of it (so the requests share one
    transaction: group commit), and completes each request's Future with its own results, or
    with the exception that failed the call. A request cancelled while still queued is dropped.
    """

    def __init__(self, write: Callable[[Key, list[Item]], list[Result]], *, max_items: int = 5000,
                 name: str = "caseledger-appender") -> None:
        self._write = write
        self._max_items = max_items
        self._name = name
        self._queue: deque[_Request[Key, Item, Result]] = deque()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, key: Key, items: Sequence[Item]) -> Future[list[Result]]:
        future: Future[list[Result]] = Future()
        with self._wake:
            if self._closed:
                raise RuntimeError("the appender is closed")
            self._queue.append(_Request(key, items, future))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._wake.notify()
        return future

    def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        with self._wake:
            self._closed = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _take(self) -> list[_Request[Key, Item, Result]] | None:
        with self._wake:
            while not self._queue:
                if self._closed:
                    return None
                self._wake.wait()
            taken: list[_Request[Key, Item, Result]] = []
            count = 0
            while self._queue and (not taken or count + len(self._queue[0].items) <= self._max_items):
                request = self._queue.popleft()
                count += len(request.items)
                taken.append(request)
        return [request for request in taken if request.future.set_running_or_notify_cancel()]

    def _run(self) -> None:
        while (taken := self._take()) is not None:
            groups: dict[Key, list[_Request[Key, Item, Result]]] = {}
            for request in taken:
                groups.setdefault(request.key, []).append(request)
            for key, group in groups.items():
                try:
                    results = self._write(key, [item for request in group for item in request.items])
                except BaseException as exc:
                    if len(group) > 1 and isinstance(exc, Exception):
                        # one request's items failed the shared call: each request alone, so
                        # only that one learns of it
                        for request in group:
                            self._complete(request, key)
                        continue
                    for request in group:  # every request of the failed call learns why
                        request.future.set_exception(exc)
                    continue
                start = 0
                for request in group:
                    request.future.set_result(results[start : start + len(request.items)])
                    start += len(request.items)

    def _complete(self, request: _Request[Key, Item, Result], key: Key) -> None:
        try:
            request.future.set_result(self._write(key, list(request.items)))
        except BaseException as exc:
            request.future.set_exception(exc)
