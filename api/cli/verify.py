"""``caseledger verify``: offline verification of receipts and proofs — no server, no database."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from api.cli.common import app, emit, read_input
from ledger.errors import FormatError
from verification.receipt import verify_document


@app.command()
def verify(
    file: Annotated[str, typer.Argument(help="receipt or proof JSON, or - for stdin")],
    vkey: Annotated[str | None, typer.Option(help="trusted verifier key of the log")] = None,
) -> None:
    """Verify a receipt or proof offline: no server, no database."""
    try:
        document = json.loads(read_input(file))
    except (ValueError, UnicodeDecodeError):
        raise FormatError(f"{file} is not JSON") from None
    if not isinstance(document, dict):
        raise FormatError(f"{file} is not a JSON object")
    emit(verify_document(document, vkey))
