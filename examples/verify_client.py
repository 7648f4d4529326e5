"""A client app's check of a shared document: download it, fetch its receipt, verify both locally.

    python examples/verify_client.py LINK (--vkey VKEY | --token JWT) [--out PATH]

LINK is the share link a caseledger server gave the recipient (``…/v1/shared/<token>``). The
receipt is fetched first (``LINK/receipt``; it counts no download), then the file is streamed to
PATH (default: the document's name in the current directory; an existing file is not overwritten)
and checked against the receipt with `verification.document_receipt.verify_file` — nothing but
httpx and caseledger's `verification` package, which needs no server and no database.

Whom to trust: the log's verifier key, given with ``--vkey`` (obtained out of band: that is what
makes the check worth anything), or fetched from the server's ``GET /v1/log`` with ``--token``.
The receipt's own embedded key is never trusted.

Prints the verdict as JSON on stdout; exits 0 if the file is valid, 1 if it is not or the document
could not be fetched (the reason on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from verification.document_receipt import DocumentReceipt, verify_file
from verification.errors import VerificationError
from verification.trust import Trust

CHUNK = 64 * 1024
TIMEOUT = httpx.Timeout(30.0)


class ClientError(Exception):
    """The document, its receipt or the key could not be had: no verdict."""


def server_base(link: str) -> str:
    """The server's base URL from a share link ``<base>/v1/shared/<token>``."""
    parts = urlsplit(link)
    path, marker, token = parts.path.rpartition("/v1/shared/")
    if not marker or not token or "/" in token:
        raise ClientError(f"not a share link (…/v1/shared/<token>): {link}")
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _get_json(http: httpx.Client, url: str, what: str, headers: dict[str, str] | None = None) -> Any:
    response = http.get(url, headers=headers)
    if response.status_code != 200:
        raise ClientError(f"{what}: HTTP {response.status_code} {_problem_detail(response)}".rstrip())
    try:
        return response.json()
    except ValueError:
        raise ClientError(f"{what}: the answer is not JSON") from None


def _problem_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("detail") or body.get("title") or "") if isinstance(body, dict) else ""


def fetch_vkey(http: httpx.Client, base: str, token: str) -> str:
    """The log's verifier key as the server states it (``GET /v1/log``, any role's token)."""
    info = _get_json(http, f"{base}/v1/log", "the log's key", {"Authorization": f"Bearer {token}"})
    vkey = info.get("vkey") if isinstance(info, dict) else None
    if not isinstance(vkey, str):
        raise ClientError("the log's key: no vkey in the answer")
    return vkey


def download(http: httpx.Client, link: str, out: Path) -> None:
    """Stream the shared file to `out` (through a temporary name: a broken transfer leaves nothing)."""
    partial = out.with_name(out.name + ".part")
    try:
        file = open(partial, "xb")  # noqa: SIM115 - closed below; a file already there is not ours to remove
    except OSError as exc:
        raise ClientError(f"cannot write {partial}: {exc.strerror}") from None
    try:
        with file, http.stream("GET", link) as response:
            if response.status_code != 200:
                response.read()
                raise ClientError(f"download: HTTP {response.status_code} {_problem_detail(response)}".rstrip())
            for chunk in response.iter_bytes(CHUNK):
                file.write(chunk)
        os.replace(partial, out)
    except httpx.HTTPError as exc:
        raise ClientError(f"download: the transfer failed ({type(exc).__name__})") from None
    finally:
        partial.unlink(missing_ok=True)


def file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK):
            yield chunk


def run(link: str, *, vkey: str | None, token: str | None, out: Path | None) -> dict[str, Any]:
    """Download, fetch the receipt, verify: the verdict (`verify_file` with every check collected)."""
    base = server_base(link)
    with httpx.Client(timeout=TIMEOUT) as http:
        try:
            receipt = DocumentReceipt.from_json(_get_json(http, f"{link}/receipt", "receipt"))
        except VerificationError as exc:
            raise ClientError(f"receipt: not a document receipt: {exc}") from None
        if vkey is None:
            assert token is not None
            vkey = fetch_vkey(http, base, token)
        try:
            trust = Trust.of(vkey)
        except VerificationError as exc:
            raise ClientError(f"the log's key is malformed: {exc}") from None
        path = out if out is not None else Path(receipt.name)
        if path.exists():
            raise ClientError(f"{path} exists: not overwritten")
        download(http, link, path)
    verdict = verify_file(receipt, trust, file_chunks(path), collect=True)
    return {"valid": verdict["valid"], "file": str(path), "document": receipt.document(), "log": receipt.receipt.log,
            "seq": receipt.receipt.seq, "checks": verdict["checks"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Download a shared caseledger document and verify it locally.")
    parser.add_argument("link", help="the share link: <server>/v1/shared/<token>")
    trust = parser.add_mutually_exclusive_group(required=True)
    trust.add_argument("--vkey", help="the log's verifier key (<origin>+<key id>+<base64 key>)")
    trust.add_argument("--token", help="a bearer token for GET /v1/log, to fetch the log's key from the server")
    parser.add_argument("--out", type=Path, help="where to save the file (default: its name, in this directory)")
    args = parser.parse_args(argv)
    try:
        result = run(args.link, vkey=args.vkey, token=args.token, out=args.out)
    except ClientError as exc:
        print(f"verify_client: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2))
    if not result["valid"]:
        failed = [check["name"] for check in result["checks"] if not check["ok"]]
        print(f"verify_client: INVALID: failed {', '.join(failed)}", file=sys.stderr)
    return 0 if result["valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
