"""What a verifier trusts: the log keys it got from somewhere other than the document it checks.

A receipt carries its log's verifier key, but a key inside the document proves only that the
document is self-consistent: whoever forged it signed it. So receipts are checked with a key
from a `Trust`, and proofs against a root the verifier already trusts (a checkpoint signed by a
trusted key, or a root given explicitly). `insecure_embedded_key` is the explicit opt-out: then a
receipt's own key is used and the result says ``key_trusted: false``.

A trust file holds one verifier key (``<name>+<8 hex key id>+<base64 key>``) per line; blank
lines and lines starting with ``#`` are ignored.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from verification.checkpoint import Checkpoint, NoteVerifier, parse_checkpoint, parse_verifier_key, verify_note
from verification.errors import FormatError, SignatureError, VerificationError

__all__ = ["Trust"]


@dataclass(frozen=True)
class Trust:
    """The verifier keys trusted for each log (a log may have several while its key rotates)."""

    verifiers: tuple[NoteVerifier, ...] = ()
    #: use a receipt's own key when none is trusted for its log, and say so in the result
    insecure_embedded_key: bool = False

    @classmethod
    def of(cls, *vkeys: str, insecure_embedded_key: bool = False) -> Trust:
        """Trust these verifier keys; `FormatError` for a malformed one."""
        return cls(tuple(parse_verifier_key(vkey) for vkey in vkeys), insecure_embedded_key)

    @classmethod
    def from_lines(cls, lines: Iterable[str], *, insecure_embedded_key: bool = False) -> Trust:
        """Parse trust-file lines; `FormatError` naming the first bad line."""
        verifiers = []
        for number, line in enumerate(lines, start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                verifiers.append(parse_verifier_key(line))
            except FormatError as exc:
                raise FormatError(f"line {number}: {exc.message}", line=number) from None
        return cls(tuple(verifiers), insecure_embedded_key)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, insecure_embedded_key: bool = False) -> Trust:
        """Read a trust file (UTF-8); `FormatError` if it cannot be read or a line is malformed."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise FormatError(f"cannot read trust file {os.fspath(path)}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise FormatError(f"trust file {os.fspath(path)} is not UTF-8") from None
        try:
            return cls.from_lines(text.splitlines(), insecure_embedded_key=insecure_embedded_key)
        except FormatError as exc:
            raise FormatError(f"trust file {os.fspath(path)}: {exc.message}") from None

    def keys_for(self, log: str) -> tuple[NoteVerifier, ...]:
        """The trusted keys of `log` (a key's name is its log's origin, DESIGN §3)."""
        return tuple(v for v in self.verifiers if v.name == log)

    def open_checkpoint(self, note: str, log: str) -> Checkpoint:
        """Verify a signed checkpoint of `log` by one of its trusted keys and parse it.

        `VerificationError` ("key not trusted") when no key of `log` is trusted, `SignatureError`
        when no trusted key signed it or the checkpoint is of another origin, `FormatError` for a
        malformed note or body.
        """
        keys = self.keys_for(log)
        if not keys:
            raise VerificationError(f"key not trusted: no trusted verifier key for {log!r}", log=log)
        checkpoint = parse_checkpoint(verify_note(note, keys))
        if checkpoint.origin != log:
            raise SignatureError(f"checkpoint of {checkpoint.origin!r} is signed by the key of {log!r}",
                                 origin=checkpoint.origin, key_name=log)
        return checkpoint
