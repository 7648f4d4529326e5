"""Proofs over the stored tree (DESIGN §3): inclusion, consistency and range, as typed documents.

Each proof first works out every stored hash it needs (`ledger.tree`'s "indexes needed"
functions), reads them in one query, then computes (STYLE §1). A size beyond the log shows up as
a missing hash — nodes are written with their entries — so the log's size is read only then, or
when no size is given.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from ledger.connections import reading
from ledger.errors import InvalidInput, NotFound
from ledger.repository.nodes import read_nodes
from ledger.repository.tenants import get_log
from ledger.tenants import TenantContext, Tenants
from ledger.tree import (
    consistency_indexes,
    consistency_proof,
    inclusion_indexes,
    inclusion_proof,
    range_indexes,
    range_proof,
    stored_hash_index,
    tree_hash,
    tree_hash_indexes,
)
from verification.proofs import ConsistencyProof, InclusionProof, RangeProof

__all__ = ["MAX_RANGE", "Proofs"]

#: entries one range proof may cover (their entry hashes travel with it)
MAX_RANGE = 100_000


class _Hashes:
    """Stored hashes read in one query: a `HashReader` over them."""

    def __init__(self, found: dict[int, bytes]) -> None:
        self._found = found

    def __call__(self, indexes: Sequence[int]) -> list[bytes]:
        return [self._found[index] for index in indexes]


class Proofs:
    def __init__(self, engine: Engine, tenants: Tenants) -> None:
        self._engine = engine
        self._tenants = tenants

    def _size(self, conn: Connection, context: TenantContext, size: int | None, what: str) -> int:
        if size is None:
            return int(get_log(conn, context.log_id).size)
        if size < 0:
            raise InvalidInput(f"{what} must not be negative")
        return size

    def _read(self, conn: Connection, context: TenantContext, size: int, what: str, indexes: list[int]) -> _Hashes:
        wanted = set(indexes)
        found = read_nodes(conn, context.log_id, sorted(wanted))
        if len(found) < len(wanted):
            current = int(get_log(conn, context.log_id).size)
            if size > current:
                raise NotFound(f"{what} {size} is beyond the log, which has {current} entries", size=current)
            raise NotFound(f"stored tree of {context.origin} lacks node {min(wanted - set(found))}")
        return _Hashes(found)

    def inclusion(self, tenant: str, seq: int, size: int | None = None, *, signed: bool = False) -> InclusionProof:
        """RFC 9162 inclusion proof of entry `seq` in the tree of `size` (default: the current one);
        `signed` attaches a checkpoint signed for that size and root."""
        context = self._tenants.get(tenant)
        with reading(self._engine) as conn:
            size = self._size(conn, context, size, "size")
            if not 0 <= seq < size:
                raise NotFound(f"entry {seq} is not in the tree of size {size}", seq=seq)
            leaf = stored_hash_index(0, seq)
            read = self._read(conn, context, size, "size",
                              [*inclusion_indexes(seq, size), leaf, *tree_hash_indexes(size)])
        root = tree_hash(size, read)
        return InclusionProof(context.origin, seq, size, read([leaf])[0].hex(), root.hex(),
                              tuple(p.hex() for p in inclusion_proof(seq, size, read)),
                              self._tenants.sign(context, size, root) if signed else None)

    def consistency(self, tenant: str, first: int, second: int | None = None, *,
                    signed: bool = False) -> ConsistencyProof:
        """RFC 9162 consistency proof from the tree of `first` to that of `second` (default: current);
        `signed` attaches a checkpoint signed for `second` and its root."""
        context = self._tenants.get(tenant)
        with reading(self._engine) as conn:
            second = self._size(conn, context, second, "second")
            if not 1 <= first <= second:
                raise InvalidInput("a consistency proof needs 1 <= first <= second (RFC 9162 §2.1.4)")
            read = self._read(conn, context, second, "second", [
                *consistency_indexes(first, second), *tree_hash_indexes(first), *tree_hash_indexes(second)])
        second_root = tree_hash(second, read)
        return ConsistencyProof(context.origin, first, second, tree_hash(first, read).hex(), second_root.hex(),
                                tuple(p.hex() for p in consistency_proof(first, second, read)),
                                self._tenants.sign(context, second, second_root) if signed else None)

    def range_edges(self, tenant: str, start: int, end: int, size: int) -> tuple[list[bytes], list[bytes]]:
        """The ``left`` and ``right`` hashes of a range proof of [start, end) in the tree of `size`,
        without the range's own leaves and without `MAX_RANGE` (an export streams those itself)."""
        context = self._tenants.get(tenant)
        if not 0 <= start < end <= size:
            raise InvalidInput(f"a range needs 0 <= start < end <= size ({size})")
        left, right = range_indexes(start, end, size)
        with reading(self._engine) as conn:
            read = self._read(conn, context, size, "size", [*left, *right])
        return range_proof(start, end, size, read)

    def range(self, tenant: str, start: int, end: int, size: int | None = None, *, signed: bool = False) -> RangeProof:
        """DESIGN §3 range proof that entries [start, end) sit at those positions of the tree of `size`."""
        context = self._tenants.get(tenant)
        with reading(self._engine) as conn:
            size = self._size(conn, context, size, "size")
            if not 0 <= start < end <= size:
                raise InvalidInput(f"a range needs 0 <= start < end <= size ({size})")
            if end - start > MAX_RANGE:
                raise InvalidInput(f"a range proof covers at most {MAX_RANGE} entries")
            leaves = [stored_hash_index(0, seq) for seq in range(start, end)]
            left, right = range_indexes(start, end, size)
            read = self._read(conn, context, size, "size", [*leaves, *left, *right, *tree_hash_indexes(size)])
        root = tree_hash(size, read)
        left_hashes, right_hashes = range_proof(start, end, size, read)
        return RangeProof(context.origin, start, end, size, root.hex(), tuple(h.hex() for h in read(leaves)),
                          tuple(h.hex() for h in left_hashes), tuple(h.hex() for h in right_hashes),
                          self._tenants.sign(context, size, root) if signed else None)
