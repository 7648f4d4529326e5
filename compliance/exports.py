"""Exports for auditors (DESIGN §9): a case, a subject, a seq range or a time window, as a signed PDF
with its bundle attached, a bundle alone, or JSONL and CSV for eDiscovery tools.

Creating an export is itself an `export` entry (in the case's chain for a case, the subject's for a
subject), so later exports list it; the job then runs in the background (`build`) against the
checkpoint of the log as it is then, and its state lives in the `exports` table. Content is exported
only by readers with the `content` permission, and every redaction is applied before anything is
written. Files live in ``<data_dir>/exports/<id>/`` (0700/0600).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import queue
import re
import shutil
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from compliance.access import Permission, Reader, allowed, require
from compliance.export_writer import ExportWriter
from ledger.appender import NewEntry
from ledger.connections import reading, writing
from ledger.errors import Conflict, InvalidInput, LedgerError, NotFound
from ledger.files import private_dir
from ledger.repository import compliance as repo
from ledger.service import Ledger
from verification.bundle import BundleManifest
from verification.entry import CASE_RE, format_time

__all__ = ["EXPORT_FILES", "FORMATS", "ExportJob", "ExportRequest", "ExportRunner", "Exports"]

FORMATS = ("pdf", "bundle", "jsonl")
#: the files an export of each format makes (the bundle always: the PDF embeds it)
EXPORT_FILES = {"pdf": ("pdf", "bundle"), "bundle": ("bundle",), "jsonl": ("jsonl", "csv", "bundle")}
FILE_NAMES = {"pdf": "report.pdf", "bundle": "bundle.json", "jsonl": "entries.jsonl", "csv": "entries.csv"}
MEDIA_TYPES = {"pdf": "application/pdf", "bundle": "application/json", "jsonl": "application/x-ndjson",
               "csv": "text/csv"}
GENERATOR = "caseledger 0.1"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_POINTER = re.compile(r"(?:/(?:[^~/]|~[01])*)+\Z")
_MAX_REDACTIONS = 64
_log = logging.getLogger("caseledger.exports")


def _moment(value: str, name: str) -> str:
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be an RFC 3339 time with an offset") from None
    if moment.tzinfo is None:
        raise InvalidInput(f"{name} must be an RFC 3339 time with an offset")
    return format_time(moment.astimezone(UTC))


@dataclass(frozen=True)
class ExportRequest:
    """What an auditor asks for: exactly one scope."""

    case: str | None = None
    subject_ref: str | None = None
    start: int | None = None
    end: int | None = None
    since: str | None = None
    until: str | None = None
    include_content: bool = False
    redact: tuple[str, ...] = ()
    format: str = "pdf"

    def check(self) -> None:
        scopes = [self.case is not None, self.subject_ref is not None,
                  self.start is not None or self.end is not None, self.since is not None or self.until is not None]
        if sum(scopes) != 1:
            raise InvalidInput("give exactly one scope: a case, a subject_ref, a seq range (start, end) or a time "
                               "window (since, until)")
        if self.case is not None and not CASE_RE.match(self.case):
            raise InvalidInput("case id must be 1-128 of letters, digits and . _ : -")
        if (self.start is None) != (self.end is None):
            raise InvalidInput("a seq range needs both start and end")
        if self.start is not None and self.end is not None and not 0 <= self.start < self.end:
            raise InvalidInput("a seq range needs 0 <= start < end")
        if (self.since is None) != (self.until is None):
            raise InvalidInput("a time window needs both since and until")
        if self.since is not None and self.until is not None \
                and _moment(self.since, "since") >= _moment(self.until, "until"):
            raise InvalidInput("a time window needs since before until")
        if self.format not in FORMATS:
            raise InvalidInput(f"format is one of {', '.join(FORMATS)}")
        if len(self.redact) > _MAX_REDACTIONS or not all(isinstance(p, str) and _POINTER.match(p)
                                                         for p in self.redact):
            raise InvalidInput(f"redact is a list of at most {_MAX_REDACTIONS} JSON pointers (RFC 6901), e.g. /card")
        if self.redact and not self.include_content:
            raise InvalidInput("redactions apply to content: ask for include_content too")


@dataclass(frozen=True)
class ExportJob:
    export_id: str
    status: str
    format: str
    scope: dict[str, Any]
    include_content: bool
    redactions: tuple[str, ...]
    created_by: str
    created_at: str
    export_seq: int
    finished_at: str | None = None
    error: str | None = None
    size: int | None = None
    sha256: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def files(self) -> tuple[str, ...]:
        return EXPORT_FILES[self.format] if self.status == "done" else ()

    def to_json(self) -> dict[str, Any]:
        return {"id": self.export_id, "status": self.status, "format": self.format, "scope": self.scope,
                "include_content": self.include_content, "redactions": list(self.redactions),
                "created_by": self.created_by, "created_at": self.created_at, "export_seq": self.export_seq,
                "finished_at": self.finished_at, "error": self.error, "size": self.size, "sha256": self.sha256,
                "files": list(self.files), "verification": self.summary or None}


def _job(row: Any) -> ExportJob:
    spec = json.loads(row.spec)
    return ExportJob(str(row.export_id), str(row.status), spec["format"], spec["scope"], spec["include_content"],
                     tuple(spec["redactions"]), str(row.created_by), str(row.created_at), int(row.export_seq),
                     row.finished_at, row.error, None if row.size is None else int(row.size), row.sha256,
                     spec.get("summary") or {})


class Exports:
    def __init__(self, ledger: Ledger, directory: Path | None = None) -> None:
        self.ledger = ledger
        self.directory = directory or Path(ledger.settings.data_dir) / "exports"

    # ------------------------------------------------------------------ jobs

    def create(self, tenant: str, reader: Reader, request: ExportRequest) -> ExportJob:
        """Check who asks and what, then put the export on record (an `export` entry); the job is queued."""
        require(reader, Permission.EXPORT)
        if request.include_content and not allowed(reader, Permission.READ_CONTENT):
            raise InvalidInput("content can be exported only with the 'content' permission") \
                if reader.role == "auditor" else InvalidInput("this role cannot export content")
        request.check()
        context = self.ledger.tenants.get(tenant)
        scope: dict[str, Any]
        subject = None
        if request.case is not None:
            scope = {"case": request.case}
        elif request.subject_ref is not None:
            try:
                subject = self.ledger.subjects.handle(tenant, request.subject_ref, create=False)
            except NotFound:
                raise NotFound("no such subject: nothing is recorded about it (or it was erased)") from None
            scope = {"subject": subject}
        elif request.start is not None and request.end is not None:
            size = int(self.ledger.tenants.info(tenant).size or 0)
            if request.end > size:
                raise InvalidInput(f"the range ends beyond the log, which has {size} entries")
            scope = {"start": request.start, "end": request.end}
        else:
            assert request.since is not None and request.until is not None
            scope = {"from": _moment(request.since, "since"), "to": _moment(request.until, "until")}
        export_id = str(uuid.uuid4())
        created_at = self.ledger.clock()
        spec = {"scope": scope, "include_content": request.include_content, "redactions": list(request.redact),
                "format": request.format}
        made: list[ExportJob] = []

        def record(conn: Any, seq: int) -> None:
            repo.insert_export(conn, {"export_id": export_id, "log_id": context.log_id, "spec": json.dumps(spec),
                                      "status": "queued", "created_by": reader.actor, "created_at": created_at,
                                      "export_seq": seq})
            made.append(ExportJob(export_id, "queued", request.format, scope, request.include_content,
                                  request.redact, reader.actor, created_at, seq))

        meta = {"export": export_id, "scope": scope, "include_content": request.include_content,
                "redactions": len(request.redact), "format": request.format}
        self.ledger.appender.append(tenant, NewEntry(kind="export", actor=reader.actor, channel="api",
                                                     case=request.case, subject=subject, meta=meta,
                                                     with_entry=record))
        return made[0]

    def get(self, tenant: str, reader: Reader, export_id: str) -> ExportJob:
        require(reader, Permission.EXPORT)
        return self._get(tenant, export_id)

    def _get(self, tenant: str, export_id: str) -> ExportJob:
        context = self.ledger.tenants.get(tenant)
        row = None
        if isinstance(export_id, str) and _UUID.fullmatch(export_id):
            with reading(self.ledger.engine) as conn:
                row = repo.get_export(conn, context.log_id, export_id)
        if row is None:
            raise NotFound(f"no export {export_id}")
        return _job(row)

    def file(self, tenant: str, reader: Reader, export_id: str, name: str) -> Path:
        """One of a finished export's files; Conflict while it is not done."""
        job = self.get(tenant, reader, export_id)
        if job.status != "done":
            raise Conflict(f"export {export_id} is {job.status}: its files are not ready")
        if name not in job.files:
            raise NotFound(f"export {export_id} has no {name} file; it has {', '.join(job.files)}")
        return self._dir(export_id) / FILE_NAMES[name]

    def _dir(self, export_id: str) -> Path:
        return self.directory / export_id

    def build(self, tenant: str, export_id: str) -> ExportJob:
        """Run a queued export to its end (done, or failed with a one-line reason)."""
        context = self.ledger.tenants.get(tenant)
        with writing(self.ledger.engine) as conn, conn.begin():
            if not repo.update_export(conn, export_id, "queued", {"status": "running"}):
                return self._get(tenant, export_id)  # another worker took it, or it ran already
        job = self._get(tenant, export_id)
        directory = private_dir(self._dir(export_id))
        try:
            summary = self._write(tenant, job, directory)
        except (LedgerError, OSError, ValueError) as exc:
            shutil.rmtree(directory, ignore_errors=True)
            message = str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__
            with writing(self.ledger.engine) as conn, conn.begin():
                repo.update_export(conn, export_id, "running", {"status": "failed", "error": message,
                                                                "finished_at": self.ledger.clock()})
            return self._get(tenant, export_id)
        main = directory / FILE_NAMES[EXPORT_FILES[job.format][0]]
        digest, size = _file_digest(main)
        spec = {"scope": job.scope, "include_content": job.include_content, "redactions": list(job.redactions),
                "format": job.format, "summary": summary}
        with writing(self.ledger.engine) as conn, conn.begin():
            repo.update_export(conn, export_id, "running", {
                "status": "done", "finished_at": self.ledger.clock(), "size": size, "sha256": digest,
                "spec": json.dumps(spec)})
        del context
        return self._get(tenant, export_id)

    def queued(self, tenant: str) -> list[str]:
        context = self.ledger.tenants.get(tenant)
        with reading(self.ledger.engine) as conn:
            return repo.exports_in(conn, context.log_id, "queued")

    # ------------------------------------------------------------------ writing

    def _write(self, tenant: str, job: ExportJob, directory: Path) -> dict[str, Any]:
        context = self.ledger.tenants.get(tenant)
        pinned = self.ledger.checkpoints.latest(tenant)
        manifest = BundleManifest(context.origin, dict(job.scope), job.created_at, GENERATOR, job.created_by,
                                  job.include_content, job.redactions)
        anchors = []
        with contextlib.suppress(NotFound):
            anchors.append(self.ledger.anchoring.receipt(tenant).receipt)
        scope = job.scope
        start = end = None
        if "start" in scope:
            start, end = int(scope["start"]), min(int(scope["end"]), pinned.size)
        elif "from" in scope:
            start = self.ledger.reads.seq_at(tenant, scope["from"])
            end = min(self.ledger.reads.seq_at(tenant, scope["to"]), pinned.size)
            if start >= end:
                raise InvalidInput("no entries were written in that time window")
        want_csv = job.format == "jsonl"
        with (open(directory / FILE_NAMES["bundle"], "w", encoding="utf-8", opener=_private) as bundle,
              open(directory / "rows.jsonl", "w+", encoding="utf-8", opener=_private) as rows,
              _maybe(directory / FILE_NAMES["jsonl"], want_csv) as jsonl,
              _maybe(directory / FILE_NAMES["csv"], want_csv, newline="") as csv_out):
            writer = ExportWriter(bundle, rows, manifest, context.vkey, pinned.note, size=pinned.size,
                                  root=pinned.root, jsonl=jsonl, csv_out=csv_out)
            decrypt = job.include_content
            if start is not None and end is not None:
                for entry in self.ledger.reads.span(tenant, start, end, decrypt=decrypt):
                    writer.add(entry)
                left, right = self.ledger.proofs.range_edges(tenant, start, end, pinned.size)
                writer.finish_range(start, end, left, right, anchors)
            else:
                entries = (self.ledger.reads.case(tenant, scope["case"], decrypt=decrypt) if "case" in scope
                           else self.ledger.reads.of_subject(tenant, scope["subject"], decrypt=decrypt))
                for entry in entries:
                    if entry.seq < pinned.size:
                        writer.add(entry)
                if not writer.seqs:
                    raise NotFound("the scope holds no entries")
                proofs = ((seq, [bytes.fromhex(h) for h in self.ledger.proofs.inclusion(tenant, seq, size).proof])
                          for seq, size in ((seq, pinned.size) for seq in writer.seqs))
                writer.finish_inclusions(proofs, anchors)
            counts = writer.counts
            summary = {"checkpoint_size": pinned.size, "root": pinned.root.hex(), "entries": counts.entries,
                       "content_verified": counts.verified_content, "no_commitment": counts.no_commitment,
                       "redacted": counts.redacted, "erased": counts.erased, "failures": counts.failures,
                       "ok": not counts.failures, "bundle_sha256": writer.sha256, "bundle_size": writer.size}
            if job.format == "pdf":
                from compliance.export_report import render_export_pdf  # ReportLab and pyHanko: for a PDF only

                bundle.flush()  # the PDF attaches the bundle from its file
                rows.seek(0)
                render_export_pdf(self.ledger, tenant, job, manifest, pinned, anchors, summary, rows,
                                  directory / FILE_NAMES["bundle"], directory / FILE_NAMES["pdf"])
        (directory / "rows.jsonl").unlink()
        return summary


class _maybe:
    """A file opened for writing when `wanted`, else None (for the optional outputs)."""

    def __init__(self, path: Path, wanted: bool, newline: str | None = None) -> None:
        self._path, self._wanted, self._newline = path, wanted, newline
        self._file: Any = None

    def __enter__(self) -> Any:
        if self._wanted:
            self._file = open(self._path, "w", encoding="utf-8", newline=self._newline, opener=_private)
        return self._file

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


def _file_digest(path: Path) -> tuple[str, int]:
    sha, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), size


class ExportRunner:
    """Builds exports in the background, one at a time, on a thread of its own (in `serve`).

    `submit` queues a job; `start` also picks up the jobs left queued by a process that stopped. Two
    processes never build one job: `Exports.build` claims it (queued → running) in the database."""

    def __init__(self, exports: Exports) -> None:
        self.exports = exports
        self._queue: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="exports", daemon=True)

    def start(self) -> None:
        for tenant in self.exports.ledger.tenants.names():
            for export_id in self.exports.queued(tenant):
                self.submit(tenant, export_id)
        self._thread.start()

    def submit(self, tenant: str, export_id: str) -> None:
        self._queue.put((tenant, export_id))

    def stop(self, timeout: float = 30.0) -> None:
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self.exports.build(*item)
            except Exception:  # a job that cannot even be marked failed: the next start picks it up again
                _log.exception("export %s could not be built", item[1])
