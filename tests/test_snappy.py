"""Raw snappy blocks decompressed in Numba (:mod:`fastxent.io.pages.snappy`).

Snappy: blocks compressed by ``cramjam`` round-trip, hand-built blocks (overlapping copies, long
literal lengths, copies with 4-byte offsets) give cramjam's bytes, and every kind of bad block
gives -1. A decoder written here from the format's description, byte by byte, is the oracle for
damaged and arbitrary bytes: the Numba decoder gives its answer exactly (cramjam's decoder rejects
a few valid blocks, such as a literal's length bytes near the end of the input, so it can only be
the oracle where it accepts). No write lands outside the window given, checked with guard bytes.
"""

from __future__ import annotations

import cramjam
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastxent.io.pages.snappy import decompress

GUARD = 0xA5
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------- snappy blocks, built by hand


def varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def literal(data: bytes, length_bytes: int = 0) -> bytes:
    """A literal element; ``length_bytes`` 1-4 writes the length in that many bytes (allowed for
    any length, though a compressor uses them only above 60)."""
    if length_bytes == 0:
        assert 1 <= len(data) <= 60
        return bytes([(len(data) - 1) << 2]) + data
    return bytes([(59 + length_bytes) << 2]) + (len(data) - 1).to_bytes(length_bytes, "little") + data


def copy(offset: int, length: int, offset_bytes: int = 2) -> bytes:
    """A copy element with a 1-, 2- or 4-byte offset (1: lengths 4-11, offsets below 2048)."""
    if offset_bytes == 1:
        assert 4 <= length <= 11 and offset < 2048
        return bytes([1 | (length - 4) << 2 | (offset >> 8) << 5, offset & 0xFF])
    assert 1 <= length <= 64
    kind = 2 if offset_bytes == 2 else 3
    return bytes([kind | (length - 1) << 2]) + offset.to_bytes(offset_bytes, "little")


def reference(block: bytes, window: int) -> bytes | None:
    """The block's bytes as the format describes them (one byte at a time), or None when it is not
    a valid block for an output of ``window`` bytes. Preambles of at most 5 bytes and 32 bits, as
    snappy's own decoder reads them."""
    length = shift = pos = 0
    while True:
        if pos == len(block) or pos == 5:
            return None
        byte = block[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            break
    if length > 0xFFFFFFFF or length > window:
        return None
    out = bytearray()
    while pos < len(block):
        tag = block[pos]
        pos += 1
        if tag & 3 == 0:
            n = (tag >> 2) + 1
            if n > 60:
                if pos + n - 60 > len(block):
                    return None
                n, pos = int.from_bytes(block[pos : pos + n - 60], "little") + 1, pos + n - 60
            if pos + n > len(block) or len(out) + n > length:
                return None
            out += block[pos : pos + n]
            pos += n
            continue
        size = {1: 1, 2: 2, 3: 4}[tag & 3]
        if pos + size > len(block):
            return None
        if tag & 3 == 1:
            n, offset = ((tag >> 2) & 7) + 4, (tag >> 5) << 8 | block[pos]
        else:
            n, offset = (tag >> 2) + 1, int.from_bytes(block[pos : pos + size], "little")
        pos += size
        if offset == 0 or offset > len(out) or len(out) + n > length:
            return None
        for _ in range(n):
            out.append(out[-offset])
    return bytes(out) if len(out) == length else None


def preamble(block: bytes) -> int | None:
    """The length a block's preamble gives, if it is one."""
    length = shift = 0
    for pos in range(min(len(block), 5)):
        length |= (block[pos] & 0x7F) << shift
        shift += 7
        if block[pos] < 0x80:
            return length
    return None


def cramjam_answer(block: bytes, window: int) -> bytes | None:
    """cramjam's bytes for the block into an output of ``window`` bytes, or None if it refuses."""
    out = np.zeros(window, np.uint8)
    try:
        n = cramjam.snappy.decompress_raw_into(block, out)
    except Exception:  # cramjam's DecompressionError, or a ValueError for the output
        return None
    return out[:n].tobytes()


def run(block: bytes, window: int, out_pos: int = 0, guard: int = 0):
    """``decompress`` of ``block`` into ``window`` bytes at ``out_pos`` of an output with
    ``guard`` guard bytes after the window; the result and the whole output."""
    src = np.frombuffer(block, np.uint8)
    out = np.full(out_pos + window + guard, GUARD, np.uint8)
    return decompress(src, 0, src.size, out, out_pos, out_pos + window), out


def check(block: bytes, window: int, out_pos: int = 3, guard: int = 24) -> bytes | None:
    """Decompress into a window between guard bytes; assert that the answer is the reference's
    and that nothing outside the preamble's length was written. Returns the bytes, or None."""
    n, out = run(block, window, out_pos, guard)
    expected = reference(block, window)
    if expected is None:
        assert n == -1
    else:
        assert n == len(expected)
        assert out[out_pos : out_pos + n].tobytes() == expected
    if n < 0:  # nothing written unless the preamble was read and fits the window
        n = preamble(block) if preamble(block) is not None and preamble(block) <= window else 0
    untouched = out_pos + n
    assert (out[:out_pos] == GUARD).all()
    assert (out[untouched:] == GUARD).all()
    return expected


# ---------------------------------------------------------------- snappy: round trips


def sample(kind: str, size: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed + size)
    if kind == "random":
        return rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    if kind == "zeros":
        return bytes(size)
    if kind == "small-alphabet":  # dictionary indices: short copies, most offsets below 16
        return rng.integers(0, 4, size, dtype=np.uint8).tobytes()
    if kind == "int32-dictionary":
        return rng.integers(0, 4096, size // 4 + 1).astype(np.int32).tobytes()[:size]
    if kind == "float32":
        return rng.standard_normal(size // 4 + 1).astype(np.float32).tobytes()[:size]
    if kind == "text":
        return b"".join(b"row %d value %d; " % (i, i % 97) for i in range(size // 10 + 1))[:size]
    raise AssertionError(kind)


KINDS = ["random", "zeros", "small-alphabet", "int32-dictionary", "float32", "text"]
SIZES = [0, 1, 2, 7, 8, 15, 16, 17, 31, 60, 61, 64, 65, 100, 255, 256, 1000, 4096, 65535, 65536]
SIZES += [65537, 100_003, 131_072, 200_000]


@pytest.mark.parametrize("kind", KINDS)
def test_round_trip_sizes(kind):
    """cramjam's blocks of 0 to 200k bytes decompress to the original, into exactly its size."""
    for size in SIZES + list(np.random.default_rng(1).integers(0, 200_001, 8)):
        raw = sample(kind, int(size))
        block = np.frombuffer(cramjam.snappy.compress_raw(raw), np.uint8)
        out = np.full(len(raw), GUARD, np.uint8)
        assert decompress(block, 0, block.size, out, 0, out.size) == len(raw)
        assert out.tobytes() == raw


@pytest.mark.parametrize("kind", KINDS)
def test_into_part_of_a_larger_buffer(kind):
    """Into ``out[out_pos:out_end]`` of a larger buffer, from a block in the middle of a larger
    input: the bytes outside ``[out_pos, out_pos + n)`` are untouched, with the window exactly the
    length (no room past the last element) and with room to spare."""
    for size in [0, 1, 9, 23, 100, 5000, 70_000]:
        raw = sample(kind, size, seed=7)
        block = bytes(cramjam.snappy.compress_raw(raw))
        src = np.frombuffer(b"\x07" * 11 + block + b"\x09" * 13, np.uint8)
        for out_pos, spare in [(1, 0), (37, 0), (37, 50), (0, 1)]:
            out = np.full(out_pos + size + spare + 40, GUARD, np.uint8)
            n = decompress(src, 11, 11 + len(block), out, out_pos, out_pos + size + spare)
            assert n == size
            assert out[out_pos : out_pos + n].tobytes() == raw
            assert (out[:out_pos] == GUARD).all() and (out[out_pos + n :] == GUARD).all()


def test_read_only_input():
    """Pages come as bytes: a read-only input array decompresses as well."""
    raw = sample("text", 3000)
    src = np.frombuffer(bytes(cramjam.snappy.compress_raw(raw)), np.uint8)
    assert not src.flags.writeable
    out = np.zeros(3000, np.uint8)
    assert decompress(src, 0, src.size, out, 0, out.size) == 3000
    assert out.tobytes() == raw


@given(st.binary(max_size=3000))
@FUZZ
def test_round_trip_arbitrary_bytes(raw):
    block = bytes(cramjam.snappy.compress_raw(raw))
    assert check(block, len(raw)) == raw


@given(st.lists(st.sampled_from([b"a", b"ab", b"abc", b"0123456789", b"\x00" * 5, b"xyz" * 7]), max_size=400))
@FUZZ
def test_round_trip_repetitive_bytes(pieces):
    raw = b"".join(pieces)
    block = bytes(cramjam.snappy.compress_raw(raw))
    assert check(block, len(raw) + 5) == raw


# ---------------------------------------------------------------- snappy: hand-built blocks


@pytest.mark.parametrize("offset_bytes", [1, 2, 4])
def test_copies_of_every_offset_and_length(offset_bytes):
    """Copies of each length from offsets 1 to 20 (below, at and above the length: runs,
    repeated patterns and plain copies) give the bytes of a byte-by-byte copy, as cramjam does,
    followed by a literal of 0 to 17 bytes: the room past the copy in an output of exactly the
    block's length, on both sides of each threshold where the copy is moved in whole words."""
    lengths = range(4, 12) if offset_bytes == 1 else range(1, 65)
    prefix = bytes(range(100, 120))
    for offset in range(1, 21):
        for n in lengths:
            byte_by_byte = bytearray(prefix)
            for _ in range(n):
                byte_by_byte.append(byte_by_byte[-offset])
            for room in range(18):
                tail = b"T" * room
                block = varint(20 + n + room) + literal(prefix) + copy(offset, n, offset_bytes)
                block += literal(tail) if tail else b""
                expected = bytes(byte_by_byte) + tail
                assert check(block, len(expected)) == expected
                if room in (0, 17):
                    assert bytes(cramjam.snappy.decompress_raw(block)) == expected
                    assert check(block, len(expected) + 64) == expected


def test_run_of_one_byte():
    """Offset 1 repeats the last byte: a run-length encoding."""
    block = varint(1 + 64 * 40 + 5) + literal(b"z") + copy(1, 64) * 40 + copy(1, 5, 4)
    assert bytes(cramjam.snappy.decompress_raw(block)) == b"z" * (1 + 64 * 40 + 5)
    assert check(block, 1 + 64 * 40 + 5) == b"z" * (1 + 64 * 40 + 5)


def test_overlapping_pattern_each_byte_after_the_other():
    """A copy longer than its offset repeats the pattern (``abc`` -> ``abcabcab...``)."""
    block = varint(3 + 50) + literal(b"abc") + copy(3, 50)
    assert check(block, 53) == (b"abc" * 20)[:53]
    assert bytes(cramjam.snappy.decompress_raw(block)) == (b"abc" * 20)[:53]


@pytest.mark.parametrize("length_bytes", [1, 2, 3, 4])
def test_literal_lengths_in_extra_bytes(length_bytes):
    """Tags 60-63: a literal's length in 1-4 bytes, for long and (non-canonical) short literals."""
    for size in [1, 16, 61, 300, 70_000]:
        if size > 256**length_bytes:
            continue
        data = sample("random", size, seed=3)
        block = varint(size + 8) + literal(data, length_bytes) + literal(b"tail-end")
        expected = bytes(cramjam.snappy.decompress_raw(block))
        assert expected == data + b"tail-end"
        assert check(block, size + 8) == expected


def test_long_copy_chain_with_four_byte_offsets():
    """Copies from far back through 4-byte offsets, as no 64 KiB fragment of cramjam's has."""
    head = sample("random", 70_000, seed=5)
    block = varint(70_000 + 64 * 3) + literal(head, 3) + copy(69_999, 64, 4) + copy(65_536, 64, 4)
    block += copy(7, 64, 4)
    expected = bytes(cramjam.snappy.decompress_raw(block))
    assert check(block, len(expected)) == expected
    assert expected[70_000:70_064] == head[1:65]


# ---------------------------------------------------------------- snappy: bad blocks


VALID = varint(3 + 9 + 70 + 20) + literal(b"abc") + copy(3, 9, 1) + literal(sample("random", 70), 1)
VALID += copy(70, 20)
#: Valid blocks ending in each kind of element, so that a cut leaves each one's last byte out.
ENDINGS = {
    "copy-1": varint(3 + 9) + literal(b"abc") + copy(3, 9, 1),
    "copy-2": varint(3 + 9) + literal(b"abc") + copy(2, 9, 2),
    "copy-4": varint(3 + 9) + literal(b"abc") + copy(1, 9, 4),
    **{f"literal-{k}-length-bytes": varint(3 + 2) + literal(b"abc") + literal(b"de", k) for k in range(5)},
}


def test_the_hand_built_blocks_are_valid():
    expected = bytes(cramjam.snappy.decompress_raw(VALID))
    assert len(expected) == 102
    assert check(VALID, 102) == expected
    ends = {"copy-1": b"abcabcabcabc", "copy-2": b"abcbcbcbcbcb", "copy-4": b"abcccccccccc"}
    for kind, block in ENDINGS.items():
        assert check(block, preamble(block)) == ends.get(kind, b"abcde")
        if kind.startswith("copy"):
            assert bytes(cramjam.snappy.decompress_raw(block)) == ends[kind]
    # cramjam wants 4 bytes after a tag with length bytes, wherever the literal ends: valid
    # blocks that end with a short literal are refused (it never writes them)
    assert cramjam_answer(ENDINGS["literal-1-length-bytes"], 5) is None


@pytest.mark.parametrize("kind", ["text", "small-alphabet", "random", "hand-built", *ENDINGS])
def test_truncated_at_every_length(kind):
    """Every prefix of a valid block is invalid (each element writes at least one byte), read
    with ``end`` at the cut in the whole array: nothing at or past ``end`` is read."""
    if kind in ENDINGS or kind == "hand-built":
        block = ENDINGS.get(kind, VALID)
    else:
        block = bytes(cramjam.snappy.compress_raw(sample(kind, 3000)))
    window = preamble(block)
    src = np.frombuffer(block, np.uint8)
    out = np.full(window + 16, GUARD, np.uint8)
    for cut in range(len(block)):
        assert decompress(src, 0, cut, out, 0, window) == -1
        assert decompress(src, 0, cut, out, 0, out.size) == -1
    assert decompress(src, 0, len(block), out, 0, window) == window


def corruptions(block: bytes, seed: int):
    rng = np.random.default_rng(seed)
    for at in range(len(block)):
        for value in {block[at] ^ 0xFF, block[at] ^ 1 << int(rng.integers(8)), int(rng.integers(256))}:
            yield block[:at] + bytes([value]) + block[at + 1 :]


@pytest.mark.parametrize("kind", ["text", "small-alphabet", "hand-built"])
def test_corrupted_bytes(kind):
    """A byte changed anywhere: -1 or cramjam's answer where it accepts the block, the reference's
    answer always, and no write outside the window."""
    block = VALID if kind == "hand-built" else bytes(cramjam.snappy.compress_raw(sample(kind, 700)))
    window = preamble(block) + 8
    checked = rejected = 0
    for damaged in corruptions(block, seed=len(block)):
        ours = check(damaged, window)
        theirs = cramjam_answer(damaged, window)
        if theirs is not None:
            assert ours is None or ours == theirs
        checked += 1
        rejected += ours is None
    assert checked >= 2 * len(block) and 0 < rejected < checked


def test_preamble_longer_than_the_output():
    block = bytes(cramjam.snappy.compress_raw(b"0123456789" * 10))
    assert run(block, 99, guard=8)[0] == -1
    assert run(block, 100)[0] == 100
    assert run(varint(2**32) + literal(b"a"), 2**20)[0] == -1


@pytest.mark.parametrize(
    "block",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x80", id="preamble-unterminated"),
        pytest.param(b"\xff\xff\xff\xff\x1f", id="preamble-over-32-bits"),
        pytest.param(varint(5) + literal(b"abc") + copy(0, 2), id="offset-0"),
        pytest.param(varint(5) + literal(b"abc") + copy(4, 2), id="offset-before-start"),
        pytest.param(varint(7) + literal(b"abc") + copy(4, 4, 1), id="copy1-before-start"),
        pytest.param(varint(9) + literal(b"abc") + copy(3, 5, 4)[:3], id="copy4-offset-cut-off"),
        pytest.param(varint(9) + literal(b"abc") + copy(3, 5)[:2], id="copy2-offset-cut-off"),
        pytest.param(varint(9) + literal(b"abc") + copy(3, 5, 1)[:1], id="copy1-offset-cut-off"),
        pytest.param(varint(10) + literal(b"0123456789")[:6], id="literal-past-input"),
        pytest.param(varint(10) + b"\xf0\x09", id="literal-length-bytes-only"),
        pytest.param(varint(10) + b"\xf8\x09\x00", id="literal-length-bytes-cut-off"),
        pytest.param(varint(5) + literal(b"0123456789"), id="literal-past-output"),
        pytest.param(varint(5) + literal(b"abc") + copy(3, 3), id="copy-past-output"),
        pytest.param(varint(7) + literal(b"abc") + copy(3, 3), id="fewer-bytes-than-preamble"),
        pytest.param(varint(0) + literal(b"a"), id="element-after-empty-output"),
        pytest.param(varint(3) + literal(b"abc") + copy(1, 1), id="element-after-full-output"),
    ],
)
def test_invalid_blocks(block):
    """Each of these is refused, by cramjam too, and writes nothing outside the window."""
    assert reference(block, 100) is None
    assert cramjam_answer(block, 100) is None
    n, out = run(block, 100, out_pos=5, guard=16)
    assert n == -1
    assert (out[:5] == GUARD).all() and (out[5 + 100 :] == GUARD).all()


def test_preamble_of_more_than_5_bytes():
    """Snappy's lengths are 32-bit varints, at most 5 bytes; a longer one is refused (cramjam reads
    up to 64 bits and accepts it)."""
    block = b"\x80\x80\x80\x80\x80\x00"
    assert cramjam_answer(block, 10) == b""
    assert run(block, 10)[0] == -1
    assert run(b"\x80\x80\x80\x80\x00", 10)[0] == 0  # five bytes, redundant but within limits
    assert run(b"\xff\xff\xff\xff\x0f", 10)[0] == -1  # 2**32 - 1: longer than the output


def test_offset_reaching_before_out_pos():
    """The start of the output is ``out_pos``, not the array's: a copy reaching into the bytes
    before it is refused even though they are in the array."""
    block = varint(5) + literal(b"abc") + copy(4, 2)
    src = np.frombuffer(block, np.uint8)
    out = np.full(64, GUARD, np.uint8)
    assert decompress(src, 0, src.size, out, 10, 64) == -1
    assert decompress(src, 0, src.size, out, 10, 14) == -1  # a window too small for the preamble
    ok = varint(5) + literal(b"abc") + copy(3, 2)
    assert decompress(np.frombuffer(ok, np.uint8), 0, len(ok), out, 10, 64) == 5
    assert out[10:15].tobytes() == b"abcab" and (out[:10] == GUARD).all() and (out[15:] == GUARD).all()


def test_bounds_outside_the_arrays():
    """Bounds outside the arrays are refused, even where memory follows the array: the input is a
    view that leaves out a valid block's last byte, so a read past its end would complete it."""
    block = bytes(cramjam.snappy.compress_raw(b"hello hello hello"))
    whole = np.frombuffer(block, np.uint8)
    out = np.zeros(32, np.uint8)
    assert decompress(whole, 0, whole.size, out, 0, 32) == 17
    src = whole[:-1]
    n = src.size
    for args in [(-1, n, 0, 32), (0, n + 1, 0, 32), (3, 2, 0, 32), (0, n, -1, 32), (0, n, 0, 33)]:
        pos, end, out_pos, out_end = args
        assert decompress(src, pos, end, out, out_pos, out_end) == -1, args
    assert decompress(whole, 0, whole.size, out, 9, 8) == -1
    assert decompress(whole, 0, whole.size, out[:20], 0, 32) == -1


@st.composite
def blocks(draw):
    """Bytes likely to get far into the decoder: a small preamble, then a valid block's elements
    with bytes changed, or arbitrary elements; or wholly arbitrary bytes."""
    choice = draw(st.integers(0, 2))
    if choice == 0:
        return draw(st.binary(max_size=200))
    if choice == 1:
        return varint(draw(st.integers(0, 300))) + draw(st.binary(max_size=200))
    raw = draw(st.binary(min_size=1, max_size=400)) * draw(st.integers(1, 4))
    block = bytearray(cramjam.snappy.compress_raw(raw))
    for _ in range(draw(st.integers(1, 4))):
        block[draw(st.integers(0, len(block) - 1))] = draw(st.integers(0, 255))
    return bytes(block)


@given(blocks(), st.integers(0, 400), st.integers(0, 9))
@FUZZ
def test_fuzz_never_writes_outside_the_window(block, window, out_pos):
    """Arbitrary bytes: the reference's answer, cramjam's where it accepts, and the guard bytes
    around the window untouched (:func:`check`)."""
    ours = check(block, window, out_pos=out_pos, guard=32)
    theirs = cramjam_answer(block, window)
    if theirs is not None:
        assert ours is None or ours == theirs
