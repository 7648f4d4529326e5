"""``caseledger export``: an auditor's export written to a file (DESIGN §9) — the same job as
``POST /v1/exports``, built at once. The export is on record as an `export` entry by ``--actor``."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer

from api.cli.common import TenantOpt, app, emit, fail, open_ledger
from compliance.access import Reader
from compliance.exports import EXPORT_FILES, ExportRequest, Exports


@app.command()
def export(
    tenant: TenantOpt,
    out: Annotated[Path, typer.Option("--out", help="where to write the PDF, bundle or JSONL")],
    fmt: Annotated[str, typer.Option("--format", help="pdf, bundle or jsonl (also writes OUT.csv)")] = "pdf",
    case: Annotated[str | None, typer.Option(help="export a case")] = None,
    subject_ref: Annotated[str | None, typer.Option("--subject-ref", help="export a customer's entries")] = None,
    start: Annotated[int | None, typer.Option("--from", help="export entries from this seq …")] = None,
    end: Annotated[int | None, typer.Option("--to", help="… to before this seq")] = None,
    since: Annotated[str | None, typer.Option(help="export entries written from this RFC 3339 time …")] = None,
    until: Annotated[str | None, typer.Option(help="… until before this one")] = None,
    content: Annotated[bool, typer.Option("--content", help="include the decrypted content")] = False,
    redact: Annotated[list[str] | None, typer.Option(help="a JSON pointer to redact from content (repeatable)")
                      ] = None,
    actor: Annotated[str, typer.Option(help="who exports, recorded in the log")] = "service:cli",
) -> None:
    """Export a case, a subject, a seq range or a time window; prints the export's record."""
    if out.exists():
        fail(f"--out: {out} exists already; choose a new file", 2)
    reader = Reader(actor=actor, role="auditor", perms=frozenset({"content"}))
    request = ExportRequest(case=case, subject_ref=subject_ref, start=start, end=end, since=since, until=until,
                            include_content=content, redact=tuple(redact or ()), format=fmt)
    with open_ledger() as led:
        exports = Exports(led)
        job = exports.build(tenant, exports.create(tenant, reader, request).export_id)
        if job.status != "done":
            fail(f"the export failed: {job.error}", 1)
        main, *others = EXPORT_FILES[job.format]
        shutil.copyfile(exports.file(tenant, reader, job.export_id, main), out)
        written = [str(out)]
        for name in others:
            if name == "csv":
                extra = out.with_suffix(".csv")
                shutil.copyfile(exports.file(tenant, reader, job.export_id, name), extra)
                written.append(str(extra))
    emit({**job.to_json(), "written": written})
