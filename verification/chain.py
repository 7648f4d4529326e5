"""The two hash chains and the tree of a whole log, checked in one streaming pass (DESIGN §2, §3).

Memory is bounded by the number of open cases, not by the log size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from verification.compact import CompactRange
from verification.entry import ZERO_HASH, parse_header
from verification.errors import ChainError
from verification.merkle import leaf_hash

__all__ = ["LogVerifier"]


class LogVerifier:
    """Streams a log's entries in order and checks every rule of DESIGN §2 and §3.

    Feed it each entry's stored header bytes (and stored hash, when there is one) with `add`; it
    raises `ChainError` naming the first bad seq. It keeps the Merkle peaks, so `root` is the RFC 9162
    root of what it has seen, and `add` returns the subtree hashes each leaf completes, in the order
    the tlog storage layout writes them, so a caller can compare a stored tree as it goes.
    """

    def __init__(self, origin: str, *, start: int = 0, peaks: Sequence[bytes] = (),
                 last_hash: str | None = ZERO_HASH, last_time: str = "", open_cases: bool = False) -> None:
        """Verify from entry 0, or from `start` given the tree's `peaks` there (a segment).

        A segment that does not know the entry before it passes ``last_hash=None``: the first `prev`
        is then recorded in `first_prev` instead of checked. With `open_cases`, a case's first
        `case_prev` in the segment is recorded in `case_first` (seq, value) for the caller to check
        against the segments before.
        """
        self.origin = origin
        self.size = start
        self.last_hash = last_hash
        self.last_time = last_time
        self.first_prev: str | None = None
        self._tree = CompactRange(start, peaks)
        self._case_heads: dict[str, str] = {}
        self._open_cases = open_cases
        self.case_first: dict[str, tuple[int, str | None]] = {}
        #: the parsed header of the entry most recently added
        self.header: dict[str, Any] = {}

    @property
    def root(self) -> bytes:
        return self._tree.root()

    @property
    def peaks(self) -> list[bytes]:
        """The Merkle peaks of what was seen: the compact form of the tree."""
        return self._tree.peaks

    @property
    def case_heads(self) -> dict[str, str]:
        """Hex hash of the last entry seen of each case."""
        return dict(self._case_heads)

    def add(self, header_bytes: bytes, stored_hash: bytes | None = None) -> list[bytes]:
        seq = self.size
        last_time = self.last_time
        header = parse_header(header_bytes, seq=seq, checked_time=last_time or None)
        if header["seq"] != seq:
            raise ChainError(f"entry {seq}: header says seq {header['seq']} (gap, swap or reorder)", seq=seq)
        if header["log"] != self.origin:
            raise ChainError(f"entry {seq}: belongs to log {header['log']!r}, not {self.origin!r}", seq=seq)
        if self.last_hash is None:
            self.first_prev = header["prev"]
        elif header["prev"] != self.last_hash:
            raise ChainError(f"entry {seq}: prev does not link to entry {seq - 1}", seq=seq)
        case, case_prev, heads = header["case"], header["case_prev"], self._case_heads
        if case is None or case in heads or not self._open_cases:
            if case_prev != (None if case is None else heads.get(case)):
                raise ChainError(f"entry {seq}: case_prev does not link to the case's previous entry", seq=seq)
        else:  # a case's first entry in a segment: its link is checked against the segments before
            self.case_first[case] = (seq, case_prev)
        time = header["time"]
        if time < last_time:
            raise ChainError(f"entry {seq}: time goes backwards", seq=seq)
        digest = leaf_hash(header_bytes)
        if stored_hash is not None and stored_hash != digest:
            raise ChainError(
                f"entry {seq}: stored entry hash does not match its header",
                seq=seq, expected=stored_hash.hex(), computed=digest.hex(),
            )
        hex_digest = digest.hex()
        if case is not None:
            heads[case] = hex_digest
        self.last_hash = hex_digest
        self.last_time = time
        completed = self._tree.append(digest)
        self.size = seq + 1
        self.header = header
        return completed
