"""Writing PDF files object by object, so that neither a long report nor a large attachment is ever
held in memory whole (ISO 32000-1 §7.5: file structure, cross-reference table, incremental updates).

qpdf (pikepdf) and ReportLab both keep every object of a document in memory while they write it;
for a report of thousands of pages that grows with its length. Here pikepdf only *reads*, one part
file at a time, and the bytes are written straight to the output; `ObjectWriter` also appends the
incremental update that attaches the bundle (`compliance.report_sign`).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

import pikepdf

__all__ = ["ObjectWriter", "concatenate", "serialize"]

_HEADER = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
_INHERITED = ("/Resources", "/MediaBox", "/CropBox", "/Rotate")

Ref = Callable[[pikepdf.Object], bytes]


def serialize(value: object, ref: Ref) -> bytes:
    """A direct PDF value in PDF syntax; indirect objects inside it become references through `ref`."""
    if isinstance(value, pikepdf.Object) and value.is_indirect:
        return ref(value)
    if isinstance(value, pikepdf.Dictionary):
        return b"<<" + b"".join(_entry(k, v, ref) for k, v in value.items()) + b">>"
    if isinstance(value, pikepdf.Array):
        return b"[" + b" ".join(serialize(v, ref) for v in value) + b"]"
    if isinstance(value, pikepdf.Object):  # names, strings, operators
        return bytes(value.unparse())
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, Decimal | float):
        return format(Decimal(value), "f").encode()
    if value is None:
        return b"null"
    raise TypeError(f"cannot write {type(value).__name__} as a PDF value")


def _entry(key: str, value: object, ref: Ref) -> bytes:
    return bytes(pikepdf.Name(key).unparse()) + b" " + serialize(value, ref) + b" "


class ObjectWriter:
    """Numbered objects appended to a binary file, and the cross-reference section that indexes them."""

    def __init__(self, out: BinaryIO, *, position: int = 0, next_number: int = 1) -> None:
        self._out = out
        self._pos = position
        self._offsets: dict[int, tuple[int, int]] = {}
        self.next_number = next_number

    def write(self, data: bytes) -> None:
        self._out.write(data)
        self._pos += len(data)

    def reserve(self) -> int:
        number = self.next_number
        self.next_number += 1
        return number

    def put(self, number: int, body: bytes, *, generation: int = 0) -> None:
        self._offsets[number] = (self._pos, generation)
        self.write(b"%d %d obj\n%s\nendobj\n" % (number, generation, body))

    def put_stream(self, number: int, entries: bytes, data: bytes) -> None:
        self._offsets[number] = (self._pos, 0)
        self.write(b"%d 0 obj\n<<%s/Length %d>>\nstream\n" % (number, entries, len(data)))
        self.write(data + b"\nendstream\nendobj\n")

    def put_compressed_stream(self, number: int, entries: bytes, chunks: Iterable[bytes]) -> None:
        """A FlateDecode stream compressed chunk by chunk as it is written; its /Length follows it."""
        length_number = self.reserve()
        self._offsets[number] = (self._pos, 0)
        self.write(b"%d 0 obj\n<<%s/Filter /FlateDecode /Length %d 0 R>>\nstream\n" % (number, entries, length_number))
        start = self._pos
        compressor = zlib.compressobj(6)
        for chunk in chunks:
            self.write(compressor.compress(chunk))
        self.write(compressor.flush())
        length = self._pos - start
        self.write(b"\nendstream\nendobj\n")
        self.put(length_number, b"%d" % length)

    def finish(self, trailer: bytes, *, prev: int | None = None) -> None:
        """The cross-reference section of every object written here, then the trailer (/Size added)."""
        xref = self._pos
        self.write(b"xref\n")
        numbers = sorted(self._offsets)
        if prev is None:
            numbers = [0, *numbers]
        runs: list[list[int]] = []
        for n in numbers:
            if runs and runs[-1][-1] + 1 == n:
                runs[-1].append(n)
            else:
                runs.append([n])
        for run in runs:
            self.write(b"%d %d\n" % (run[0], len(run)))
            self.write(b"".join(b"0000000000 65535 f\r\n" if n == 0 else b"%010d %05d n\r\n" % self._offsets[n]
                                for n in run))
        prev_entry = b"" if prev is None else b" /Prev %d" % prev
        self.write(b"trailer\n<< /Size %d%s %s >>\nstartxref\n%d\n%%%%EOF\n" % (self.next_number, prev_entry, trailer,
                                                                               xref))


class _Copier:
    """Copies the objects one part file refers to, each once, under new numbers in the output."""

    def __init__(self, writer: ObjectWriter) -> None:
        self._writer = writer
        self._numbers: dict[tuple[int, int], int] = {}
        self._pending: list[pikepdf.Object] = []

    def assign(self, obj: pikepdf.Object) -> int:
        number = self._writer.reserve()
        self._numbers[obj.objgen] = number
        return number

    def ref(self, obj: pikepdf.Object) -> bytes:
        key = obj.objgen
        if key not in self._numbers:
            self.assign(obj)
            self._pending.append(obj)
        return b"%d 0 R" % self._numbers[key]

    def put(self, obj: pikepdf.Object, extra: bytes = b"", skip: Sequence[str] = ()) -> None:
        number = self._numbers[obj.objgen]
        entries = b"".join(_entry(k, v, self.ref) for k, v in obj.items() if k not in skip and k != "/Length")
        if isinstance(obj, pikepdf.Stream):
            self._writer.put_stream(number, entries + extra, obj.read_raw_bytes())
        elif isinstance(obj, pikepdf.Dictionary):
            self._writer.put(number, b"<<" + entries + extra + b">>")
        else:
            self._writer.put(number, _direct(obj, self.ref))

    def drain(self) -> None:
        while self._pending:
            self.put(self._pending.pop())


def _direct(obj: pikepdf.Object, ref: Ref) -> bytes:
    """An indirect array or scalar written as the body of its own object."""
    if isinstance(obj, pikepdf.Array):
        return b"[" + b" ".join(serialize(v, ref) for v in obj) + b"]"
    return bytes(obj.unparse())


def _inherited(page: pikepdf.Dictionary, key: str) -> object | None:
    node: pikepdf.Dictionary = page
    for _ in range(64):  # a page tree deeper than this is malformed
        if key in node:
            return node[key]
        parent = node.get("/Parent")
        if not isinstance(parent, pikepdf.Dictionary):
            return None
        node = parent
    return None


def concatenate(parts: Sequence[Path], out_path: Path, *, title: str, creator: str) -> None:
    """Join the pages of `parts` (in order) into one PDF at `out_path`, reading one part at a time.

    Each part becomes a node of the new page tree; attributes a page inherited from its old tree are
    copied onto it.
    """
    with open(out_path, "wb") as out:
        w = ObjectWriter(out)
        w.write(_HEADER)
        catalog, root_pages, info = w.reserve(), w.reserve(), w.reserve()
        nodes: list[tuple[int, int]] = []
        for part in parts:
            with pikepdf.open(part) as src:
                node = w.reserve()
                copier = _Copier(w)
                pages = [page.obj for page in src.pages]
                kids = [copier.assign(page) for page in pages]
                for page in pages:
                    extra = b"/Parent %d 0 R " % node
                    for key in _INHERITED:
                        if key not in page and (value := _inherited(page, key)) is not None:
                            extra += _entry(key, value, copier.ref)
                    copier.put(page, extra, skip=("/Parent",))
                copier.drain()
                w.put(node, b"<</Type /Pages /Parent %d 0 R /Kids [%s] /Count %d>>"
                      % (root_pages, b" ".join(b"%d 0 R" % k for k in kids), len(kids)))
                nodes.append((node, len(kids)))
        w.put(root_pages, b"<</Type /Pages /Kids [%s] /Count %d>>"
              % (b" ".join(b"%d 0 R" % n for n, _ in nodes), sum(c for _, c in nodes)))
        w.put(catalog, b"<</Type /Catalog /Pages %d 0 R>>" % root_pages)
        w.put(info, b"<</Title %s /Creator %s /Producer %s>>" % (
            bytes(pikepdf.String(title).unparse()), bytes(pikepdf.String(creator).unparse()),
            bytes(pikepdf.String(f"{creator} (ReportLab)").unparse())))
        file_id = os.urandom(16).hex().encode()
        w.finish(b"/Root %d 0 R /Info %d 0 R /ID [<%s> <%s>]" % (catalog, info, file_id, file_id))
