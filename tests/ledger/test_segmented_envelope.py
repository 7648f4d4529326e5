"""The segmented envelope (DESIGN §4, version 0x02): vectors, round trips, every mutation, bounded memory.

Envelopes a correct sealer never writes (segments swapped, dropped, sealed with the wrong flag) are built
with the vector generator's own reference sealer, which uses `cryptography` directly.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import random
import tracemalloc
from collections.abc import Iterable, Iterator, Sequence
from functools import cache
from itertools import pairwise
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.envelope import (
    SEGMENT_SIZE,
    SEGMENTED_HEADER_SIZE,
    SegmentSealer,
    content_aad,
    open_stream,
    plain_size,
    seal_stream,
    segmented_size,
)
from ledger.errors import DecryptionError

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "caseledger"
FILE = "segmented-envelopes.json"
KEY = bytes(range(32))
AAD = content_aad("caseledger.local/acme-bank", "a2b3c4d5-e6f7-4809-9a1b-2c3d4e5f6071", "dk_00112233445566778899")
OTHER_AAD = content_aad("caseledger.local/acme-bank", "c4d5e6f7-0819-4a2b-8c3d-4e5f60718293", "dk_00112233445566778899")
PREFIX = bytes.fromhex("0a0b0c0d0e0f10")
STORED = SEGMENT_SIZE + 16
BOUNDARY_SIZES = (0, 1, SEGMENT_SIZE - 1, SEGMENT_SIZE, SEGMENT_SIZE + 1, 2 * SEGMENT_SIZE, 2 * SEGMENT_SIZE + 1)


@cache
def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("caseledger_vector_generator_segmented", VECTORS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def reference(plaintext: bytes, prefix: bytes = PREFIX, key: bytes = KEY, aad: bytes = AAD) -> bytes:
    """The envelope as the vector generator seals it, independently of ledger.envelope."""
    return bytes(_generator().seal_segments(key, prefix, aad, _generator().split(plaintext)))


def raw_segments(segments: Sequence[tuple[int, bool, bytes]], prefix: bytes = PREFIX) -> bytes:
    """An envelope with any index and last flag per segment: what a faulty or hostile writer makes."""
    return bytes(_generator().seal_segments(KEY, prefix, AAD, segments))


def _sealed_pieces(sealer: SegmentSealer, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """What `seal_stream` yields, from a sealer with a known prefix: header, updates, finish."""
    yield sealer.header()
    for chunk in chunks:
        yield sealer.update(chunk)
    yield sealer.finish()


def sealed(plaintext: bytes, chunks: Iterable[bytes] | None = None, prefix: bytes = PREFIX) -> bytes:
    sealer = SegmentSealer.with_prefix(KEY, AAD, prefix)
    return b"".join(_sealed_pieces(sealer, [plaintext] if chunks is None else chunks))


def pieces(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    points = sorted({0, len(data), *(min(max(cut, 0), len(data)) for cut in cuts)})
    return [data[a:b] for a, b in pairwise(points)]


def opened(envelope: bytes, cuts: Iterable[int] = (), key: bytes = KEY, aad: bytes = AAD) -> bytes:
    return b"".join(open_stream(key, pieces(envelope, cuts), aad))


def yielded_before_error(envelope: bytes, key: bytes = KEY, aad: bytes = AAD) -> list[bytes]:
    """The plaintext segments released before DecryptionError (which must come)."""
    out: list[bytes] = []
    stream = open_stream(key, pieces(envelope, range(0, len(envelope), 10_000)), aad)
    with pytest.raises(DecryptionError):
        for segment in stream:
            out.append(segment)
    return out


def plaintext_of(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


# --- vectors -------------------------------------------------------------------------------------


def _cases(want_err: bool) -> list[Any]:
    cases: list[dict[str, Any]] = json.loads((VECTORS / FILE).read_text(encoding="utf-8"))
    return [pytest.param(case, id=case["desc"][:80]) for case in cases if case["wantErr"] is want_err]


def _vector_plaintext(case: dict[str, Any]) -> bytes:
    if "plaintext" in case:
        return bytes.fromhex(case["plaintext"])
    repeat = case["plaintext_repeat"]
    return bytes.fromhex(repeat["byte"]) * int(repeat["count"])


def test_vector_file_is_what_the_generator_writes() -> None:
    generator = _generator()
    assert (VECTORS / FILE).read_text(encoding="utf-8") == generator.render(generator.build()[FILE]), (
        f"{FILE} is stale: run python tests/vectors/caseledger/generate.py"
    )


def test_vector_cases_are_described_and_both_kinds_exist() -> None:
    cases: list[dict[str, Any]] = json.loads((VECTORS / FILE).read_text(encoding="utf-8"))
    assert len({case["desc"] for case in cases}) == len(cases)
    assert {case["wantErr"] for case in cases} == {True, False}


@pytest.mark.parametrize("case", _cases(want_err=False))
def test_segmented_vector(case: dict[str, Any]) -> None:
    key, prefix = bytes.fromhex(case["key"]), bytes.fromhex(case["prefix"])
    aad = content_aad(case["log"], case["id"], case["key_id"])
    assert aad == case["aad"].encode("utf-8")
    plaintext = _vector_plaintext(case)
    assert len(plaintext) == case["plaintext_size"]
    envelope = b"".join(_sealed_pieces(SegmentSealer.with_prefix(key, aad, prefix), [plaintext]))
    assert hashlib.sha256(envelope).hexdigest() == case["envelope_sha256"]
    assert len(envelope) == case["envelope_size"] == segmented_size(len(plaintext))
    assert plain_size(len(envelope)) == len(plaintext)
    if "envelope" in case:
        assert envelope.hex() == case["envelope"]
    tag_ends = [min(SEGMENTED_HEADER_SIZE + STORED * (i + 1), len(envelope)) for i in range(case["segments"])]
    assert [envelope[end - 16 : end].hex() for end in tag_ends] == case["tags"]
    assert b"".join(open_stream(key, [envelope], aad)) == plaintext


@pytest.mark.parametrize("case", _cases(want_err=True))
def test_segmented_vector_refused(case: dict[str, Any]) -> None:
    aad = content_aad(case["log"], case["id"], case["key_id"])
    assert aad == case["aad"].encode("utf-8")
    envelope = bytes.fromhex(case["envelope"])
    with pytest.raises(DecryptionError):
        for _ in open_stream(bytes.fromhex(case["key"]), [envelope], aad):
            pass


# --- sizes and round trips -----------------------------------------------------------------------


@pytest.mark.parametrize("size", BOUNDARY_SIZES)
def test_round_trip_at_segment_boundaries(size: int) -> None:
    plaintext = plaintext_of(size, seed=size)
    envelope = b"".join(seal_stream(KEY, [plaintext], AAD))
    assert envelope[0] == 0x02 and len(envelope) == segmented_size(size)
    assert plain_size(len(envelope)) == size
    assert opened(envelope) == plaintext
    assert opened(envelope, range(0, len(envelope), 7919)) == plaintext
    assert opened(envelope, range(len(envelope))) == plaintext  # one byte at a time
    assert sealed(plaintext) == reference(plaintext)


def test_empty_file_is_one_empty_final_segment() -> None:
    envelope = b"".join(seal_stream(KEY, [], AAD))
    assert len(envelope) == 1 + 7 + 16 == segmented_size(0)
    assert list(open_stream(KEY, [envelope], AAD)) == []
    assert b"".join(seal_stream(KEY, [b"", b""], AAD))[8:] != envelope[8:]  # a fresh prefix each time


def test_random_prefix_differs_between_streams() -> None:
    assert len({b"".join(seal_stream(KEY, [b"x"], AAD))[1:8] for _ in range(20)}) == 20


@settings(max_examples=60, deadline=None)
@given(
    size=st.one_of(st.sampled_from(BOUNDARY_SIZES), st.integers(0, 3 * SEGMENT_SIZE + 17)),
    seed=st.integers(0, 2**32 - 1),
    data=st.data(),
)
def test_round_trip_any_chunking(size: int, seed: int, data: st.DataObject) -> None:
    plaintext = plaintext_of(size, seed)
    in_cuts = data.draw(st.lists(st.integers(0, size), max_size=12), label="input cuts")
    chunks = pieces(plaintext, in_cuts)
    envelope = sealed(plaintext, chunks)
    assert envelope == reference(plaintext)
    out_cuts = data.draw(st.lists(st.integers(0, len(envelope)), max_size=12), label="envelope cuts")
    assert opened(envelope, out_cuts) == plaintext


def test_update_keeps_a_full_segment_until_more_data_follows() -> None:
    sealer = SegmentSealer.with_prefix(KEY, AAD, PREFIX)
    assert sealer.header() == b"\x02" + PREFIX
    assert sealer.update(b"a" * SEGMENT_SIZE) == b""  # could still be the final segment
    assert sealer.update(b"") == b""
    first = sealer.update(b"b")
    assert len(first) == STORED
    assert sealer.update(b"c" * (SEGMENT_SIZE - 1)) == b""
    assert len(sealer.update(b"d" * (2 * SEGMENT_SIZE))) == 2 * STORED  # buffers no more than one segment
    last = sealer.finish()
    assert len(last) == STORED
    envelope = sealer.header() + first + bytes(2 * STORED) + last
    assert len(envelope) == segmented_size(4 * SEGMENT_SIZE)
    with pytest.raises(ValueError):
        sealer.update(b"x")
    with pytest.raises(ValueError):
        sealer.finish()


def test_seal_stream_yields_the_header_then_whole_segments() -> None:
    out = list(seal_stream(KEY, [b"x" * 1000] * 200, AAD))
    assert len(out[0]) == SEGMENTED_HEADER_SIZE
    assert all(len(piece) % STORED == 0 for piece in out[1:-1])
    assert len(out[-1]) <= STORED


def test_keys_and_prefixes_are_checked() -> None:
    with pytest.raises(ValueError):
        SegmentSealer(KEY[:16], AAD)
    with pytest.raises(ValueError):
        SegmentSealer.with_prefix(KEY, AAD, bytes(8))
    with pytest.raises(DecryptionError):
        open_stream(KEY[:31], [sealed(b"x")], AAD)


@pytest.mark.parametrize("size", [*range(0, 100), *range(SEGMENT_SIZE - 20, SEGMENT_SIZE + 40),
                                  *range(3 * SEGMENT_SIZE - 20, 3 * SEGMENT_SIZE + 20)])
def test_plain_size_inverts_segmented_size(size: int) -> None:
    assert plain_size(segmented_size(size)) == size


def test_plain_size_refuses_lengths_no_envelope_has() -> None:
    valid = {segmented_size(size) for size in range(0, 3 * SEGMENT_SIZE + 2)}
    for length in range(0, segmented_size(3 * SEGMENT_SIZE + 1) + 1):
        if length in valid:
            assert segmented_size(plain_size(length)) == length
        else:
            with pytest.raises(ValueError):
                plain_size(length)
    assert segmented_size(SEGMENT_SIZE) + 16 not in valid  # an empty final segment after a full one
    with pytest.raises(ValueError):
        segmented_size(-1)


# --- mutations -----------------------------------------------------------------------------------

PLAIN = plaintext_of(2 * SEGMENT_SIZE + 100, seed=7)
SEGS = [PLAIN[:SEGMENT_SIZE], PLAIN[SEGMENT_SIZE : 2 * SEGMENT_SIZE], PLAIN[2 * SEGMENT_SIZE :]]
ENVELOPE = reference(PLAIN)
HEADER, S0, S1, S2 = (ENVELOPE[:8], ENVELOPE[8 : 8 + STORED], ENVELOPE[8 + STORED : 8 + 2 * STORED],
                      ENVELOPE[8 + 2 * STORED :])


def flip(data: bytes, index: int) -> bytes:
    raw = bytearray(data)
    raw[index] ^= 0x01
    return bytes(raw)


def test_mutation_fixture_is_sound() -> None:
    assert HEADER + S0 + S1 + S2 == ENVELOPE and len(S2) == 100 + 16
    assert list(open_stream(KEY, [ENVELOPE], AAD)) == SEGS


# (mutated envelope, how many good segments are released before the error)
MUTATIONS: dict[str, tuple[bytes, int]] = {
    "segments 0 and 1 swapped": (HEADER + S1 + S0 + S2, 0),
    "segments 1 and 2 swapped": (HEADER + S0 + S2 + S1, 1),
    "last segment dropped": (HEADER + S0 + S1, 1),
    "middle segment dropped": (HEADER + S0 + S2, 1),
    "first segment dropped": (HEADER + S1 + S2, 0),
    "only the header": (HEADER, 0),
    "header cut short": (HEADER[:7], 0),
    "nothing at all": (b"", 0),
    "truncated by one byte": (ENVELOPE[:-1], 2),
    "truncated inside the tag of the last segment": (ENVELOPE[:-10], 2),
    "truncated to less than a tag": (ENVELOPE[: 8 + 2 * STORED + 15], 2),
    "one byte appended": (ENVELOPE + b"\x00", 2),
    "a segment appended (a copy of the first)": (ENVELOPE + S0, 2),
    "the final segment repeated": (ENVELOPE + S2, 2),
    "version byte 0x01": (b"\x01" + ENVELOPE[1:], 0),
    "version byte 0x03": (b"\x03" + ENVELOPE[1:], 0),
    "prefix bit flipped": (flip(ENVELOPE, 1), 0),
    "last prefix byte bit flipped": (flip(ENVELOPE, 7), 0),
    "first ciphertext byte of segment 0 flipped": (flip(ENVELOPE, 8), 0),
    "tag of segment 0 flipped": (flip(ENVELOPE, 8 + STORED - 1), 0),
    "ciphertext of segment 1 flipped": (flip(ENVELOPE, 8 + STORED + 1000), 1),
    "tag of segment 1 flipped": (flip(ENVELOPE, 8 + 2 * STORED - 1), 1),
    "ciphertext of the final segment flipped": (flip(ENVELOPE, 8 + 2 * STORED), 2),
    "tag of the final segment flipped": (flip(ENVELOPE, -1), 2),
    "segments of another stream (other prefix) spliced in": (HEADER + S0 + reference(PLAIN, bytes(7))[8 + STORED :], 1),
}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_mutation_is_refused_after_the_good_segments_only(name: str) -> None:
    envelope, good = MUTATIONS[name]
    assert yielded_before_error(envelope) == SEGS[:good]


@pytest.mark.parametrize("name", ["wrong key", "wrong aad: another entry id"])
def test_wrong_key_or_aad_releases_nothing(name: str) -> None:
    key, aad = (bytes(32), AAD) if name == "wrong key" else (KEY, OTHER_AAD)
    assert yielded_before_error(ENVELOPE, key, aad) == []


# envelopes a correct sealer never writes; each segment valid on its own
FORGED: dict[str, tuple[list[tuple[int, bool, bytes]], int]] = {
    "cut at a segment boundary: the last segment kept is not final": ([(0, False, SEGS[0]), (1, False, SEGS[1])], 1),
    "an empty final segment after a full one": ([(0, False, SEGS[0]), (1, True, b"")], 1),
    "two final segments": ([(0, True, SEGS[0]), (1, True, SEGS[1][:100])], 0),
    "index skips one": ([(0, False, SEGS[0]), (2, True, SEGS[2])], 1),
    "index repeats": ([(0, False, SEGS[0]), (0, True, SEGS[2])], 1),
    "a short non-final segment": ([(0, False, SEGS[2]), (1, True, SEGS[2])], 0),
    "a segment appended after the final one": ([(0, False, SEGS[0]), (1, True, SEGS[1]), (2, True, b"x")], 1),
    "an empty stream sealed as not final": ([(0, False, b"")], 0),
    "an empty stream that starts at index 1": ([(1, True, b"")], 0),
}


@pytest.mark.parametrize("name", list(FORGED))
def test_forged_envelope_is_refused(name: str) -> None:
    segments, good = FORGED[name]
    assert yielded_before_error(raw_segments(segments)) == SEGS[:good]


def test_truncated_blob_raises_before_the_generator_finishes() -> None:
    stream = open_stream(KEY, iter([ENVELOPE[:-1]]), AAD)
    assert next(stream) == SEGS[0]
    assert next(stream) == SEGS[1]
    with pytest.raises(DecryptionError):
        next(stream)


def test_extended_blob_raises_before_the_generator_finishes() -> None:
    whole = HEADER + S0 + S1 + S2 + S2
    stream = open_stream(KEY, (whole[i : i + 4096] for i in range(0, len(whole), 4096)), AAD)
    assert [next(stream), next(stream)] == SEGS[:2]
    with pytest.raises(DecryptionError):
        next(stream)


def test_every_single_bit_flip_in_a_small_envelope_is_refused() -> None:
    envelope = reference(b"a short statement")
    for index in range(len(envelope)):
        for bit in (0x01, 0x80):
            bad = bytearray(envelope)
            bad[index] ^= bit
            with pytest.raises(DecryptionError):
                opened(bytes(bad))


# --- memory --------------------------------------------------------------------------------------


def _repeat(chunk: bytes, count: int) -> Iterator[bytes]:
    for _ in range(count):
        yield chunk


def test_sealing_and_opening_25_mib_keeps_memory_bounded() -> None:
    chunk = os.urandom(64 * 1024)
    count = 25 * 16  # 25 MiB
    expected = hashlib.sha256()
    for _ in range(count):
        expected.update(chunk)
    digest = hashlib.sha256()
    stored = 0
    tracemalloc.start()
    try:
        envelope = seal_stream(KEY, _repeat(chunk, count), AAD)

        def counted(pieces: Iterator[bytes]) -> Iterator[bytes]:
            nonlocal stored
            for piece in pieces:
                stored += len(piece)
                yield piece

        for segment in open_stream(KEY, counted(envelope), AAD):
            digest.update(segment)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest.digest() == expected.digest()
    assert stored == segmented_size(count * len(chunk))
    assert peak < 1024 * 1024, f"peak {peak} bytes"
