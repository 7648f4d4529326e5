"""The ``caseledger`` command: a thin face over `ledger.service.Ledger` and `verification`.

Every command prints JSON on stdout (hex digests); errors are one line on stderr and a non-zero
exit: 1 for a failed verification or a refused request, 2 for bad usage.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from sqlalchemy.exc import SQLAlchemyError

from api.auth import ROLES, TokenIssuer, load_jwt_key
from ledger.errors import ConfigurationError, Conflict, FormatError, InvalidInput, LedgerError
from ledger.service import Ledger, NewEntry
from ledger.settings import Settings
from verification.receipt import verify_document

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="caseledger: an encrypted, hash-chained, Merkle-proven ledger of support interactions.")
tenant_app = typer.Typer(no_args_is_help=True, help="Create and inspect tenants (one log each).")
app.add_typer(tenant_app, name="tenant")

_state: dict[str, Any] = {}

TenantOpt = Annotated[str, typer.Option("--tenant", "-t", help="tenant name")]


def _settings() -> Settings:
    try:
        settings = Settings()
    except ValueError as exc:  # pydantic ValidationError is a ValueError
        raise ConfigurationError(f"invalid CASELEDGER_ settings: {exc}".splitlines()[0]) from None
    if _state.get("data_dir") is not None:
        settings = settings.model_copy(update={"data_dir": _state["data_dir"]})
    return settings


def emit(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = 1) -> NoReturn:
    sys.stderr.write(f"caseledger: {message}\n")
    raise typer.Exit(code)


@contextmanager
def ledger() -> Iterator[Ledger]:
    opened = Ledger.open(_settings())
    try:
        yield opened
    finally:
        opened.close()


@app.callback()
def main_options(
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="data directory (CASELEDGER_DATA_DIR)")] = None,
) -> None:
    _state["data_dir"] = data_dir


@app.command()
def init(
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="data directory to create")] = None,
) -> None:
    """Create the data directory, a migrated database and development keys."""
    if data_dir is not None:
        _state["data_dir"] = data_dir
    settings = _settings()
    made = Ledger.initialise(settings)
    existed = settings.jwt_key_path.exists()
    if load_jwt_key(settings, create=True) is not None and not existed:
        made["jwt_key_file"] = str(settings.jwt_key_path.resolve())
    emit(made)


@tenant_app.command("create")
def tenant_create(name: str) -> None:
    """Create a tenant: its log, tenant key and Ed25519 log key."""
    with ledger() as led:
        emit(led.create_tenant(name).as_dict())


@tenant_app.command("show")
def tenant_show(name: str) -> None:
    with ledger() as led:
        emit(led.tenant_info(name).as_dict())


def _read_input(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None


def _jsonl_entries(data: bytes) -> Iterator[tuple[int, NewEntry]]:
    allowed = {"kind", "channel", "case", "subject_ref", "actor", "content", "meta"}
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput(f"line {number}: not valid JSON", line=number) from None
        if not isinstance(item, dict):
            raise InvalidInput(f"line {number}: expected a JSON object", line=number)
        unknown = set(item) - allowed
        if unknown or "kind" not in item:
            what = f"unknown fields {sorted(unknown)}" if unknown else "missing 'kind'"
            raise InvalidInput(f"line {number}: {what}", line=number)
        content = item.get("content")
        raw = None if content is None else content.encode() if isinstance(content, str) else json.dumps(
            content, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            entry = NewEntry(kind=item["kind"], channel=item.get("channel"), case=item.get("case"),
                             subject_ref=item.get("subject_ref"), actor=item.get("actor") or "service:import",
                             content=raw, meta=item.get("meta") or {})
        except TypeError:
            raise InvalidInput(f"line {number}: fields of the wrong type", line=number) from None
        yield number, entry


@app.command()
def append(
    tenant: TenantOpt,
    kind: Annotated[str | None, typer.Option(help="interaction, document, share, …")] = None,
    channel: Annotated[str | None, typer.Option(help="phone, email, chat, sms, social, video, in_person, api")] = None,
    case: Annotated[str | None, typer.Option(help="case id")] = None,
    subject_ref: Annotated[str | None, typer.Option(help="outside customer reference")] = None,
    actor: Annotated[str, typer.Option(help="user:… or service:…")] = "service:cli",
    content_file: Annotated[str | None, typer.Option(help="file with the content, or - for stdin")] = None,
    jsonl: Annotated[str | None, typer.Option(help="one entry per line (file or -): the import path")] = None,
) -> None:
    """Append one entry, or one per JSONL line in batches; prints one receipt per entry."""
    if (jsonl is None) == (kind is None):
        fail("give either --kind (one entry) or --jsonl (a batch)", 2)
    with ledger() as led:
        if jsonl is None:
            content = _read_input(content_file) if content_file is not None else None
            assert kind is not None
            entry = NewEntry(kind=kind, channel=channel, case=case, subject_ref=subject_ref, actor=actor,
                             content=content)
            emit(led.append(tenant, entry).as_dict())
            return
        batch: list[NewEntry] = []

        def flush() -> None:
            for receipt in led.append_batch(tenant, batch):
                emit(receipt.as_dict())
            batch.clear()

        try:
            for number, entry in _jsonl_entries(_read_input(jsonl)):
                try:
                    led.check(entry)
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


def _content_json(content: bytes) -> dict[str, Any]:
    try:
        return {"content": content.decode()}
    except UnicodeDecodeError:
        return {"content_base64": base64.b64encode(content).decode()}


@app.command()
def read(tenant: TenantOpt, seq: Annotated[int, typer.Option(min=0)]) -> None:
    """Print an entry's header and its decrypted content."""
    with ledger() as led:
        entry = led.read(tenant, seq)
    out: dict[str, Any] = {"header": entry.header, "entry_hash": entry.entry_hash}
    if entry.erased:
        out["erased"] = True
    elif entry.content is not None:
        out |= _content_json(entry.content)
    emit(out)


@app.command()
def checkpoint(tenant: TenantOpt) -> None:
    """Sign and print the current checkpoint (C2SP signed note)."""
    with ledger() as led:
        sys.stdout.write(led.checkpoint(tenant))


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
    """Inclusion (--seq), consistency (--first/--second) or range (--start/--end) proof."""
    with ledger() as led:
        if seq is not None and first is None and start is None:
            emit(led.prove_inclusion(tenant, seq, size))
        elif first is not None and seq is None and start is None:
            emit(led.prove_consistency(tenant, first, second))
        elif start is not None and end is not None and seq is None and first is None:
            emit(led.prove_range(tenant, start, end, size))
        else:
            fail("give exactly one of --seq, --first/--second, --start/--end", 2)


@app.command()
def receipt(tenant: TenantOpt, seq: Annotated[int, typer.Option(min=0)]) -> None:
    """A self-contained receipt for an entry: header, inclusion proof, signed checkpoint, key."""
    with ledger() as led:
        emit(led.receipt(tenant, seq))


@app.command("verify-log")
def verify_log(tenant: TenantOpt) -> None:
    """Re-verify the whole stored log; exit 1 naming the first bad seq."""
    with ledger() as led:
        emit(led.verify_log(tenant))


@app.command()
def verify(
    file: Annotated[str, typer.Argument(help="receipt or proof JSON, or - for stdin")],
    vkey: Annotated[str | None, typer.Option(help="trusted verifier key of the log")] = None,
) -> None:
    """Verify a receipt or proof offline: no server, no database."""
    try:
        document = json.loads(_read_input(file))
    except (ValueError, UnicodeDecodeError):
        raise FormatError(f"{file} is not JSON") from None
    if not isinstance(document, dict):
        raise FormatError(f"{file} is not a JSON object")
    emit(verify_document(document, vkey))


def _issuer(settings: Settings) -> TokenIssuer:
    key = load_jwt_key(settings)
    if key is None:
        raise ConfigurationError(f"no token signing key at {settings.jwt_key_path}: run `caseledger init`")
    return TokenIssuer(key, settings)


@app.command()
def token(
    tenant: TenantOpt,
    role: Annotated[str, typer.Option(help="agent, supervisor, auditor, admin or client")],
    sub: Annotated[str, typer.Option(help="pseudonymous user id")],
    ttl: Annotated[int | None, typer.Option(min=1, help="lifetime in seconds")] = None,
    perm: Annotated[list[str] | None, typer.Option(help="extra permission, e.g. content (auditors)")] = None,
    case: Annotated[list[str] | None, typer.Option(help="a case assigned to this agent (repeatable)")] = None,
) -> None:
    """Print a bearer token from the built-in issuer."""
    sys.stdout.write(_issuer(_settings()).issue(tenant, role, sub, ttl, perm or (), case) + "\n")


def _prepare_demo(settings: Settings, base: str) -> None:
    Ledger.initialise(settings)
    load_jwt_key(settings, create=True)
    opened = Ledger.open(settings)
    try:
        with suppress(Conflict):
            opened.create_tenant("demo")
    finally:
        opened.close()
    issuer = _issuer(settings)
    lines = [f"caseledger is serving the tenant 'demo' at {base}", f"  API docs: {base}/docs", "  tokens (24 h):"]
    for role in ROLES:
        perms = ("content",) if role == "auditor" else ()
        lines.append(f"    {role:<10} {issuer.issue('demo', role, f'demo-{role}', 86400, perms)}")
    lines.append(f"  try: curl -H 'Authorization: Bearer <agent token>' {base}/v1/log")
    print("\n".join(lines), flush=True)


def _listening_socket(host: str, port: int) -> socket.socket:
    """The socket the workers share. Created with IPPROTO_TCP: asyncio sets TCP_NODELAY only on
    connections accepted from such a socket, and uvicorn's own (protocol 0) costs ~40 ms a response."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="uvicorn worker processes")] = 1,
    demo: Annotated[bool, typer.Option(help="initialise, create tenant 'demo' and print tokens first")] = False,
) -> None:
    """Serve the HTTP API under uvicorn (several workers may share one PostgreSQL database)."""
    import uvicorn

    settings = _settings()
    if _state.get("data_dir") is not None:
        os.environ["CASELEDGER_DATA_DIR"] = str(_state["data_dir"])
    if demo:
        _prepare_demo(settings, f"http://{host}:{port}")
    else:
        settings.check_production()
    if workers > 1:
        metrics_dir = settings.data_dir / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    # h11, not httptools: h11 caps a request head at 16 KiB however slowly it arrives
    config = uvicorn.Config("api.app:create_app_from_env", factory=True, host=host, port=port, workers=workers,
                            http="h11", log_level="warning", access_log=False, timeout_keep_alive=5,
                            limit_concurrency=1000, timeout_graceful_shutdown=10)
    if workers == 1:
        uvicorn.Server(config).run()
        return
    from uvicorn.supervisors import Multiprocess

    Multiprocess(config, sockets=[_listening_socket(host, port)]).run()


def main() -> None:
    try:
        app()
    except LedgerError as exc:
        sys.stderr.write(f"caseledger: {' '.join(str(exc).split())}\n")
        sys.exit(1)
    except SQLAlchemyError as exc:
        origin = getattr(exc, "orig", None)
        reason = str(origin if origin is not None else exc).strip().splitlines()[0]
        sys.stderr.write(f"caseledger: database error: {reason}\n")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
