"""What every command shares: the Typer app, settings, the ledger opened for one command, output."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from api.settings import ApiSettings
from ledger.errors import ConfigurationError, InvalidInput
from ledger.service import Ledger

__all__ = ["TenantOpt", "app", "emit", "fail", "load_settings", "open_ledger", "read_input", "state"]

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="caseledger: an encrypted, hash-chained, Merkle-proven ledger of support interactions.")

#: options given before the command (``--data-dir``)
state: dict[str, Any] = {}

TenantOpt = Annotated[str, typer.Option("--tenant", "-t", help="tenant name")]


def load_settings() -> ApiSettings:
    try:
        loaded = ApiSettings()
    except ValueError as exc:  # pydantic ValidationError is a ValueError
        raise ConfigurationError(f"invalid CASELEDGER_ settings: {exc}".splitlines()[0]) from None
    if state.get("data_dir") is not None:
        loaded = loaded.model_copy(update={"data_dir": state["data_dir"]})
    return loaded


def emit(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def fail(message: str, code: int = 1) -> NoReturn:
    sys.stderr.write(f"caseledger: {message}\n")
    raise typer.Exit(code)


@contextmanager
def open_ledger() -> Iterator[Ledger]:
    opened = Ledger.open(load_settings())
    try:
        yield opened
    finally:
        opened.close()


def read_input(path: str) -> bytes:
    """A file's bytes, or standard input's for ``-``."""
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None


@app.callback()
def main_options(
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="data directory (CASELEDGER_DATA_DIR)")] = None,
) -> None:
    state["data_dir"] = data_dir
