"""Streamed multipart/form-data for the routes that take a file (`POST /v1/documents`, `POST /v1/verify/document`).

Neither FastAPI's `Form`/`UploadFile` nor `await request.body()` is used: both hold or spool the whole
body. `StreamedForm` feeds `request.stream()` to python-multipart's push parser instead. The form's
text fields come first and are read whole (they are small: `MAX_FIELDS_BYTES` in all); the file part
must be the last part, so the caller can check its fields and the caller's rights before a byte of
the file beyond the first network read is taken in. `StreamedForm.feed` then runs a synchronous
consumer (the engine's upload, the file verifier) in a worker thread, handing it the file's bytes
through a queue of at most `QUEUE_CHUNKS` pieces, so memory stays bounded and back-pressure reaches
the client. The consumer's chunks end only once the whole body has been parsed and found
well-formed; a truncated body, a part after the file, a client that goes away or a body over the
limit raise inside the consumer instead, so it never finishes on a partial file.

What each bad form gets: no multipart Content-Type or no boundary, a malformed or truncated body:
400; a missing, unknown, repeated or non-UTF-8 field, a part after the file: 422 naming it; fields
over `MAX_FIELDS_BYTES`: 413.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import anyio
import anyio.to_thread
from fastapi.exceptions import RequestValidationError
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from ledger.errors import InvalidInput, TooLarge

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

__all__ = ["MAX_FIELDS_BYTES", "QUEUE_CHUNKS", "FilePart", "StreamedForm", "form_error"]

T = TypeVar("T")

#: the file's bytes waiting for the consumer: at most this many network reads (each at most ~64 KiB)
QUEUE_CHUNKS = 4
#: the text fields of a form, names and values together (the upload limit leaves 64 KiB around the file)
MAX_FIELDS_BYTES = 60 * 1024
#: a part's headers, all together
_MAX_PART_HEADERS = 8 * 1024


def form_error(name: str, message: str) -> RequestValidationError:
    """A 422 naming the form member `name` (rendered by the problem handler like any validation error)."""
    return RequestValidationError([{"loc": ("body", name), "msg": message, "type": "value_error"}])


@dataclass(frozen=True)
class FilePart:
    """The file part as its headers describe it: both values are the client's, and hostile until checked."""

    filename: str
    content_type: str | None


class _Aborted(Exception):
    """The request's body ended badly while the consumer was reading the file (the reason goes to the client)."""


@dataclass
class _Parts:
    """What the push parser's callbacks have seen so far (they run inside `MultipartParser.write`)."""

    fields: frozenset[str]
    file_field: str
    values: dict[str, str] = field(default_factory=dict)
    file: FilePart | None = None
    #: the file's bytes parsed but not yet handed on
    pending: list[bytes] = field(default_factory=list)
    ended: bool = False
    _header_name: bytearray = field(default_factory=bytearray)
    _header_value: bytearray = field(default_factory=bytearray)
    _disposition: bytes | None = None
    _content_type: bytes | None = None
    _current: str | None = None
    _buffer: bytearray = field(default_factory=bytearray)
    _in_file: bool = False
    _fields_bytes: int = 0

    def callbacks(self) -> MultipartCallbacks:
        return {"on_part_begin": self._part_begin, "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value, "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
                "on_part_end": self._part_end, "on_end": self._end}

    def _part_begin(self) -> None:
        if self.file is not None:
            raise form_error(self.file_field,
                             f"the file must be the last part: put the fields before the {self.file_field!r} part")
        self._disposition = self._content_type = None
        self._header_name.clear()
        self._header_value.clear()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]
        self._count_header()

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]
        self._count_header()

    def _count_header(self) -> None:
        if len(self._header_name) + len(self._header_value) > _MAX_PART_HEADERS:
            raise InvalidInput(f"a part's headers are limited to {_MAX_PART_HEADERS} bytes")

    def _header_end(self) -> None:
        name = bytes(self._header_name).strip().lower()
        if name == b"content-disposition":
            self._disposition = bytes(self._header_value)
        elif name == b"content-type":
            self._content_type = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        kind, options = parse_options_header(self._disposition)
        raw_name = options.get(b"name")
        if kind != b"form-data" or raw_name is None:
            raise InvalidInput("every part needs Content-Disposition: form-data with a name")
        name = raw_name.decode("utf-8", "replace")
        if name == self.file_field:
            filename = options.get(b"filename")
            content_type = self._content_type.decode("latin-1").strip() if self._content_type else None
            self.file = FilePart(filename.decode("utf-8", "replace") if filename is not None else "",
                                 content_type or None)
            self._in_file = True
            return
        if name not in self.fields:
            raise form_error(name[:64], f"unknown form field; the fields are {', '.join(sorted(self.fields))} "
                                        f"and the {self.file_field!r} part")
        if name in self.values or name == self._current:
            raise form_error(name, "the field is given more than once")
        self._current = name
        self._buffer.clear()
        self._add_field_bytes(len(name))

    def _add_field_bytes(self, size: int) -> None:
        self._fields_bytes += size
        if self._fields_bytes > MAX_FIELDS_BYTES:
            raise TooLarge(f"the form's fields are limited to {MAX_FIELDS_BYTES} bytes", limit=MAX_FIELDS_BYTES)

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            if end > start:
                self.pending.append(data[start:end])
            return
        self._add_field_bytes(end - start)
        self._buffer += data[start:end]

    def _part_end(self) -> None:
        if self._in_file:
            self._in_file = False
            return
        assert self._current is not None
        try:
            self.values[self._current] = self._buffer.decode("utf-8")
        except UnicodeDecodeError:
            raise form_error(self._current, "the field is not UTF-8 text") from None
        self._current = None
        self._buffer.clear()

    def _end(self) -> None:
        self.ended = True


def _boundary(request: Request) -> bytes:
    kind, options = parse_options_header(request.headers.get("content-type"))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidInput("the body must be multipart/form-data with a boundary")
    return boundary


class StreamedForm:
    """One request's multipart body, read as it arrives: `fields` first, then `feed` for the file."""

    def __init__(self, request: Request, fields: frozenset[str], file_field: str = "file") -> None:
        self._parts = _Parts(fields, file_field)
        try:
            self._parser = MultipartParser(_boundary(request), self._parts.callbacks())
        except FormParserError:
            raise InvalidInput("the multipart boundary is malformed") from None
        self._body = request.stream()
        self._done = False

    async def _read(self) -> bool:
        """Parse the next piece of the body; False once the body has ended (a truncated one raises)."""
        if self._done:
            return False
        try:
            chunk = await self._body.__anext__()
        except ClientDisconnect:
            raise InvalidInput("the client went away before the end of the body") from None
        except StopAsyncIteration:
            self._done = True
            if not self._parts.ended:
                raise InvalidInput("the multipart body is truncated: it ends before its closing boundary") from None
            return False
        if chunk:
            try:
                self._parser.write(chunk)
            except FormParserError as exc:
                raise InvalidInput(f"malformed multipart body: {exc}") from None
        return True

    async def fields(self) -> tuple[dict[str, str], FilePart | None]:
        """Read until the file part begins (or the body ends): the text fields, and the file part if any."""
        while self._parts.file is None and await self._read():
            pass
        return dict(self._parts.values), self._parts.file

    async def _file_bytes(self) -> AsyncIterator[bytes]:
        """The rest of the file as it is parsed, one joined piece per network read; ends when the body does."""
        while True:
            if self._parts.pending:
                piece = b"".join(self._parts.pending)
                self._parts.pending.clear()
                yield piece
            if not await self._read():
                return

    async def feed(self, consume: Callable[[Iterator[bytes]], T]) -> T:
        """`consume(chunks)` in a worker thread, `chunks` being the file's bytes as they arrive.

        `chunks` ends only after the whole body was read and is well-formed; if reading fails, the
        next chunk raises instead, `consume` stops (the engine removes what it had written) and the
        reading error is raised here. If `consume` stops early (the document is too large), the rest
        of the body is not read and its error is raised here.
        """
        pipe = _Pipe(asyncio.get_running_loop())

        async def work() -> T:
            try:
                return await anyio.to_thread.run_sync(consume, pipe.chunks())
            finally:
                pipe.close_reader()

        task = asyncio.ensure_future(work())
        try:
            async for piece in self._file_bytes():
                if not await pipe.put(piece):
                    break  # the consumer stopped before the end: its outcome says why
        except BaseException:
            pipe.abort()
            with anyio.CancelScope(shield=True):
                await asyncio.wait([task])
            if not task.cancelled():
                task.exception()  # retrieved: the reading error is the one that counts
            raise
        pipe.end()
        return await task


class _Pipe:
    """At most `QUEUE_CHUNKS` pieces from the event loop to one worker thread, in order.

    The event loop only appends under a lock and, when the pipe is full, awaits a future that the
    worker resolves once it has taken a piece: no coroutine is scheduled per piece (as
    `anyio.from_thread.run` would), so handing a piece over costs the loop next to nothing."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._cond = threading.Condition()
        self._pieces: collections.deque[bytes] = collections.deque()
        self._ended = self._aborted = self._reader_closed = False
        self._space: asyncio.Future[None] | None = None

    async def put(self, piece: bytes) -> bool:
        """Queue `piece`, waiting while the pipe is full; False once the reader has stopped."""
        while True:
            with self._cond:
                if self._reader_closed:
                    return False
                if len(self._pieces) < QUEUE_CHUNKS:
                    self._pieces.append(piece)
                    self._cond.notify()
                    return True
                self._space = space = self._loop.create_future()
            await space

    def end(self) -> None:
        with self._cond:
            self._ended = True
            self._cond.notify()

    def abort(self) -> None:
        with self._cond:
            self._aborted = True
            self._cond.notify()

    def close_reader(self) -> None:
        """The worker is done (finished or failed): wake a producer waiting for space."""
        with self._cond:
            self._reader_closed = True
            self._wake_producer()

    def _wake_producer(self) -> None:
        space, self._space = self._space, None
        if space is not None:
            self._loop.call_soon_threadsafe(_resolve, space)

    def chunks(self) -> Iterator[bytes]:
        """The pieces, in the worker thread; raises `_Aborted` if the body ended badly."""
        while True:
            with self._cond:
                while not self._pieces and not self._ended and not self._aborted:
                    self._cond.wait()
                if self._aborted:
                    raise _Aborted()
                if not self._pieces:
                    return
                piece = self._pieces.popleft()
                self._wake_producer()
            yield piece


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
