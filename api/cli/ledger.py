"""Ledger commands: init, tenants, append (one entry or a JSONL import), read, checkpoint, proofs,
receipts and verify-log."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from api.auth import load_jwt_key
from api.cli.common import TenantOpt, app, emit, fail, load_settings, open_ledger, read_input, state
from ledger.appender import NewEntry
from ledger.content import encode_json_content, render_content
from ledger.errors import InvalidInput
from ledger.service import Ledger
from verification.entry import CHANNELS

tenant_app = typer.Typer(no_args_is_help=True, help="Create and inspect tenants (one log each).")
app.add_typer(tenant_app, name="tenant")


@app.command()
def init(
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="data directory to create")] = None,
) -> None:
    """Create the data directory, a migrated database and development keys."""
    if data_dir is not None:
        state["data_dir"] = data_dir
    settings = load_settings()
    made = Ledger.initialise(settings)
    existed = settings.jwt_key_path.exists()
    if load_jwt_key(settings, create=True) is not None and not existed:
        made["jwt_key_file"] = str(settings.jwt_key_path.resolve())
    emit(made)


@tenant_app.command("create")
def tenant_create(name: str) -> None:
    """Create a tenant: its log, tenant key and Ed25519 log key."""
    with open_ledger() as led:
        emit(led.tenants.create(name).as_dict())


@tenant_app.command("show")
def tenant_show(name: str) -> None:
    with open_ledger() as led:
        emit(led.tenants.info(name).as_dict())


def jsonl_entries(data: bytes) -> Iterator[tuple[int, NewEntry]]:
    """(line number, entry) for each non-blank line of a JSONL import, checked as HTTP checks a body
    (JSON content in its RFC 8785 form); `InvalidInput` naming the first bad line."""
    allowed = {"kind", "channel", "case", "subject_ref", "actor", "content", "meta"}
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise InvalidInput(f"line {number}: not valid JSON (or nested too deep)", line=number) from None
        if not isinstance(item, dict):
            raise InvalidInput(f"line {number}: expected a JSON object", line=number)
        unknown = set(item) - allowed
        if unknown or "kind" not in item:
            what = f"unknown fields {sorted(unknown)}" if unknown else "missing 'kind'"
            raise InvalidInput(f"line {number}: {what}", line=number)
        content = item.get("content")
        try:  # text is stored as it is; JSON in its RFC 8785 form, as over HTTP (DESIGN §9)
            raw = None if content is None else content.encode() if isinstance(content, str) else (
                encode_json_content(content))
        except UnicodeEncodeError:  # an escaped lone surrogate: text with no UTF-8 form
            raise InvalidInput(f"line {number}: content: text with a lone surrogate is not valid Unicode",
                               line=number) from None
        except InvalidInput as exc:
            raise InvalidInput(f"line {number}: {exc.message}", line=number) from None
        try:
            # a missing or null actor or meta takes the default; any other value is checked as given
            entry = NewEntry(kind=item["kind"], channel=item.get("channel"), case=item.get("case"),
                             subject_ref=item.get("subject_ref"),
                             actor="service:import" if item.get("actor") is None else item["actor"],
                             content=raw, meta={} if item.get("meta") is None else item["meta"])
        except TypeError:
            raise InvalidInput(f"line {number}: fields of the wrong type", line=number) from None
        yield number, entry


@app.command()
def append(
    tenant: TenantOpt,
    kind: Annotated[str | None, typer.Option(help="interaction, document, share, …")] = None,
    channel: Annotated[str | None, typer.Option(help=", ".join(sorted(CHANNELS)))] = None,
    case: Annotated[str | None, typer.Option(help="case id")] = None,
    subject_ref: Annotated[str | None, typer.Option(help="outside customer reference")] = None,
    actor: Annotated[str, typer.Option(help="user:… or service:…")] = "service:cli",
    content_file: Annotated[str | None, typer.Option(help="file with the content, or - for stdin")] = None,
    jsonl: Annotated[str | None, typer.Option(help="one entry per line (file or -): the import path")] = None,
) -> None:
    """Append one entry, or one per JSONL line in batches; prints one receipt per entry."""
    if (jsonl is None) == (kind is None):
        fail("give either --kind (one entry) or --jsonl (a batch)", 2)
    with open_ledger() as led:
        if jsonl is None:
            content = read_input(content_file) if content_file is not None else None
            assert kind is not None
            entry = NewEntry(kind=kind, channel=channel, case=case, subject_ref=subject_ref, actor=actor,
                             content=content)
            emit(led.appender.append(tenant, entry).as_dict())
            return
        batch: list[NewEntry] = []

        def flush() -> None:
            for appended in led.appender.append_batch(tenant, batch):
                emit(appended.as_dict())
            batch.clear()

        try:
            for number, entry in jsonl_entries(read_input(jsonl)):
                try:
                    led.appender.check(entry)
                except InvalidInput as exc:
                    raise InvalidInput(f"line {number}: {exc.message}", line=number) from None
                batch.append(entry)
                if len(batch) >= led.settings.batch_size:
                    flush()
        except InvalidInput:
            if batch:  # the good lines before a bad one are kept
                flush()
            raise
        if batch:
            flush()


@app.command()
def read(tenant: TenantOpt, seq: Annotated[int, typer.Option(min=0)]) -> None:
    """Print an entry's header and its decrypted content."""
    with open_ledger() as led:
        entry = led.reads.entry(tenant, seq)
    out: dict[str, Any] = {"header": entry.header, "entry_hash": entry.entry_hash}
    if entry.erased:
        out["erased"] = True
    elif entry.content is not None:
        out |= render_content(entry.content)
    emit(out)
    if entry.erased:
        sys.stderr.write(f"caseledger: the content of entry {seq} was erased (its keys were destroyed); "
                         "the header and every proof remain\n")


@app.command()
def checkpoint(tenant: TenantOpt) -> None:
    """Sign and print the current checkpoint (C2SP signed note)."""
    with open_ledger() as led:
        sys.stdout.write(led.checkpoints.issue(tenant))


@app.command()
def prove(
    tenant: TenantOpt,
    seq: Annotated[int | None, typer.Option(help="inclusion proof of this entry")] = None,
    size: Annotated[int | None, typer.Option(help="tree size (default: the current size)")] = None,
    first: Annotated[int | None, typer.Option(help="consistency: older size")] = None,
    second: Annotated[int | None, typer.Option(help="consistency: newer size")] = None,
    start: Annotated[int | None, typer.Option(help="range: first seq")] = None,
    end: Annotated[int | None, typer.Option(help="range: end seq (exclusive)")] = None,
) -> None:
    """Inclusion (--seq), consistency (--first/--second) or range (--start/--end) proof, with a
    checkpoint signed for its tree size (`caseledger verify --vkey` checks both)."""
    with open_ledger() as led:
        if seq is not None and first is None and start is None:
            emit(led.proofs.inclusion(tenant, seq, size, signed=True).to_json())
        elif first is not None and seq is None and start is None:
            emit(led.proofs.consistency(tenant, first, second, signed=True).to_json())
        elif start is not None and end is not None and seq is None and first is None:
            emit(led.proofs.range(tenant, start, end, size, signed=True).to_json())
        else:
            fail("give exactly one of --seq, --first/--second, --start/--end", 2)


@app.command()
def receipt(tenant: TenantOpt, seq: Annotated[int, typer.Option(min=0)]) -> None:
    """A self-contained receipt for an entry: header, inclusion proof, signed checkpoint, key — and,
    once the entry is anchored, its anchor (against the anchored checkpoint)."""
    with open_ledger() as led:
        emit(led.anchoring.entry_receipt(tenant, seq).to_json())


@app.command("verify-log")
def verify_log(tenant: TenantOpt) -> None:
    """Re-verify the whole stored log; exit 1 naming the first bad seq."""
    with open_ledger() as led:
        emit(led.logcheck.verify(tenant))
