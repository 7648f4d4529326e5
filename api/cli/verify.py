"""``caseledger verify``: offline verification of receipts and proofs — no server, no database.

Only what the verifier trusts counts: log keys given with ``--vkey`` or ``--trust`` (a file of
verifier keys), or a tree root given with ``--root``. ``--insecure-embedded-key`` accepts a
receipt's own key, and the result then says ``key_trusted: false``.
"""

from __future__ import annotations

import json
import re
from typing import Annotated

import typer

from api.cli.common import app, emit, fail, read_input
from verification.documents import verify_document
from verification.errors import FormatError
from verification.trust import Trust

_HEX_ROOT = re.compile(r"[0-9a-fA-F]{64}\Z")


def _trust(vkeys: list[str], trust_file: str | None, insecure: bool) -> Trust:
    """The keys given on the command line; a bad one is a usage error (exit 2)."""
    try:
        given = Trust.of(*vkeys)
    except FormatError as exc:
        fail(f"--vkey: {exc.message}", 2)
    verifiers = given.verifiers
    if trust_file is not None:
        try:
            verifiers += Trust.from_file(trust_file).verifiers
        except FormatError as exc:
            fail(f"--trust: {exc.message}", 2)
    return Trust(verifiers, insecure_embedded_key=insecure)


@app.command()
def verify(
    file: Annotated[str, typer.Argument(help="receipt or proof JSON, or - for stdin")],
    vkey: Annotated[list[str] | None, typer.Option(help="a trusted verifier key of the log (repeatable)")] = None,
    trust: Annotated[str | None, typer.Option("--trust", help="file of trusted verifier keys, one a line")] = None,
    root: Annotated[str | None, typer.Option(help="trusted tree root, 64 hex digits")] = None,
    insecure_embedded_key: Annotated[bool, typer.Option(
        "--insecure-embedded-key", help="accept a receipt's own key (proves only self-consistency)")] = False,
) -> None:
    """Verify a receipt or proof offline against trusted keys or a trusted root."""
    trusted = _trust(vkey or [], trust, insecure_embedded_key)
    if root is not None and not _HEX_ROOT.match(root):
        fail("--root: a tree root is 64 hex digits", 2)
    try:
        document = json.loads(read_input(file))
    except RecursionError:
        raise FormatError(f"{file} nests too deeply to be a caseledger document") from None
    except (ValueError, UnicodeDecodeError):
        raise FormatError(f"{file} is not JSON") from None
    if not isinstance(document, dict):
        raise FormatError(f"{file} is not a JSON object")
    emit(verify_document(document, trusted, root=None if root is None else bytes.fromhex(root)))
