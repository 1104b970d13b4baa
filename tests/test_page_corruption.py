"""Issue 16: damaged Parquet pages give one clean line or pyarrow's own result, never a crash or
another number.

Bytes of the column chunks are damaged one at a time (every few bytes over page headers, levels,
dictionaries and values; snappy and uncompressed; with and without page checksums), and each
damaged file is scored through the page reader and through pyarrow: the page reader raises
:class:`~fastxent.errors.InputValueError` naming the file, row group and column, or gives the
score pyarrow gives. A checksum mismatch is reported as such; a truncated file is an error.
"""

from __future__ import annotations

import ctypes
import os
import re
import subprocess
import sys
import zlib

import numba
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from page_corpus import corpus_table

import fastxent as fx
from fastxent.errors import InputValueError
from fastxent.io.pages import READER_VARIABLE, checksum, decode
from fastxent.io.pages.layout import chunk_range

OPTIONS = dict(target="label", logits="lst")
WRITERS = {
    "uncompressed-v1": dict(use_dictionary=["label"], compression="none", data_page_size=500),
    "snappy-v2-checksums": dict(
        compression="snappy", data_page_version="2.0", write_page_checksum=True, data_page_size=500
    ),
    "zstd-dictionary-v1-checksums": dict(compression="zstd", write_page_checksum=True),
}


def outcome(path: str, monkeypatch, reader: str, **options):
    """The score's numbers (and its groups' keys and numbers), or the error's message."""
    monkeypatch.setenv(READER_VARIABLE, reader)
    try:
        score = fx.score(path, **OPTIONS, **options)
    except InputValueError as err:
        return str(err)
    groups = [(key, g.total, g.scored) for key, g in score.groups.items()] if score.groups else None
    return repr(
        (score.total, score.weight, score.scored, score.nulls, score.nonfinite, score.accuracy, groups)
    )


@pytest.mark.parametrize("writer", list(WRITERS))
@pytest.mark.parametrize("group_by", [None, "split"])
def test_damaged_bytes_give_an_error_or_pyarrows_result(tmp_path, writer, group_by, monkeypatch):
    """Grouped by a string column too: its dictionary page (the strings' lengths and bytes) and
    its pages of codes are damaged as well."""
    good = tmp_path / "good.parquet"
    pq.write_table(corpus_table(400).select(["label", "lst", "x", "split"]), good, **WRITERS[writer])
    options = {} if group_by is None else {"group_by": group_by}
    data = np.fromfile(good, np.uint8)
    group = pq.ParquetFile(good).metadata.row_group(0)
    ranges = [chunk_range(group.column(j)) for j in range(group.num_columns)]
    start, end = min(s for s, _ in ranges), max(s + n for s, n in ranges)
    bad = tmp_path / "bad.parquet"
    errors = 0
    for offset in range(start, end, max(1, (end - start) // 150)):
        damaged = data.copy()
        damaged[offset] ^= 0x5A
        damaged.tofile(bad)
        pages = outcome(str(bad), monkeypatch, "pages", **options)
        if pages.startswith("'"):  # an error message, naming the file
            assert "bad.parquet" in pages and "\n" not in pages
            errors += 1
        else:
            assert pages == outcome(str(bad), monkeypatch, "pyarrow", **options), offset
    assert errors  # damage was found somewhere


def test_checksum_mismatch_is_named(tmp_path, monkeypatch):
    path = tmp_path / "crc.parquet"
    pq.write_table(
        corpus_table(400).select(["label", "lst"]), path, compression="none", write_page_checksum=True
    )
    data = np.fromfile(path, np.uint8)
    column = pq.ParquetFile(path).metadata.row_group(0).column(1)
    start, size = chunk_range(column)
    data[start + size - 3] ^= 1  # the last value of the last page: its header stays valid
    data.tofile(path)
    monkeypatch.setenv(READER_VARIABLE, "pages")
    with pytest.raises(
        InputValueError, match=r"row group 0, column 'lst': the page at byte \d+ fails its CRC"
    ):
        fx.score(str(path), **OPTIONS)


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95])
def test_truncated_files_are_an_error(tmp_path, monkeypatch, keep):
    path = tmp_path / "cut.parquet"
    pq.write_table(corpus_table(400).select(["label", "lst"]), path)
    data = np.fromfile(path, np.uint8)
    data[: int(keep * data.size)].tofile(path)
    monkeypatch.setenv(READER_VARIABLE, "pages")
    with pytest.raises(InputValueError, match="cut.parquet"):
        fx.score(str(path), **OPTIONS)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.integers(0, 40), st.integers(0, 300), st.integers(-1, 300))
def test_level_and_index_decoding_of_any_bytes_stays_inside(data, width, count, limit):
    """Levels, dictionary indices, booleans and split streams from arbitrary bytes: a status, or
    values within ``limit``; never a read past the bytes given (a crash) or a value past the limit."""
    buf = np.frombuffer(data, np.uint8)
    out = np.full(count, -7, np.int32)
    end = decode.decode_hybrid(buf, 0, buf.size, width, count, limit, out)
    assert end <= buf.size
    if end >= 0:
        assert (out <= limit).all() and (out >= 0).all()
    assert decode.one_run(buf, 0, buf.size, min(width, 32), count) <= (1 << 32)
    assert decode.unpack_booleans(buf, 0, buf.size, count, np.empty(count, np.uint8)) <= buf.size
    split = np.empty(count * 4, np.uint8)
    assert decode.unsplit(buf, 0, buf.size, 4, count, split) <= buf.size


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


@pytest.mark.parametrize("width", [1, 2, 3, 4, 5, 7, 8, 9, 13, 20, 31])
@pytest.mark.parametrize("count", [1, 3, 8, 61, 4096, 10_001])
def test_bit_packed_runs_decode_every_value(width, count):
    """Bit-packed runs, widths 1, 2 and 4 a byte at a time, other widths up to 8 a group of 8
    values at a time and wider ones value by value, a run's last values past its last whole group, with and
    without spare bytes after the run: each value equals the bits a reference unpacks; one above
    the limit is refused."""
    rng = np.random.default_rng(width * count)
    groups = -(-count // 8)
    body = rng.integers(0, 256, groups * width, dtype=np.uint8)
    want = np.unpackbits(body, bitorder="little").reshape(-1, width) @ (1 << np.arange(width, dtype=np.int64))
    want = want[:count]
    for spare in (0, 16):
        buf = np.frombuffer(_varint(groups << 1 | 1) + body.tobytes() + bytes(spare), np.uint8)
        out = np.full(count, -1, np.int32)
        limit = (1 << width) - 1
        assert decode.decode_hybrid(buf, 0, buf.size, width, count, limit, out) == buf.size - spare
        np.testing.assert_array_equal(out, want)
        if want.max() > 0:
            assert decode.decode_hybrid(buf, 0, buf.size, width, count, int(want.max()) - 1, out) == -1


CRC_RANGES = [(0, 0), (0, 1), (3, 70), (5, 4096 + 13), (0, 1 << 20), (1, (1 << 20) - 7)]


def test_page_checksums_are_zlib_crc32():
    """The CRC the page code calls (zlib-ng's where installed) is zlib's, at any offset and length."""
    rng = np.random.default_rng(4)
    data = rng.integers(0, 256, 1 << 20, dtype=np.uint8)
    for lo, hi in CRC_RANGES:
        assert checksum.page_crc32(data, lo, hi - lo) == zlib.crc32(data[lo:hi].tobytes())


def test_table_crc32_is_zlib_crc32():
    """The CRC compiled for platforms without zlib-ng gives zlib's too, from any start value."""
    table_crc32 = numba.cfunc(checksum.TABLE_SIGNATURE, nopython=True)(checksum._table_crc32).ctypes
    rng = np.random.default_rng(5)
    data = rng.integers(0, 256, 1 << 20, dtype=np.uint8)
    for lo, hi in CRC_RANGES:
        piece = np.ascontiguousarray(data[lo:hi])
        pointer = piece.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))
        assert table_crc32(0, pointer, hi - lo) == zlib.crc32(piece.tobytes())
        assert table_crc32(12345, pointer, hi - lo) == zlib.crc32(piece.tobytes(), 12345)


WITHOUT_ZLIB_NG = """
import sys
sys.modules["zlib_ng"] = None  # as on a platform without its wheel
import fastxent as fx
from fastxent.io.pages import checksum
assert checksum.IMPLEMENTATION == "table", checksum.IMPLEMENTATION
try:
    fx.score(sys.argv[1], target="label", logits="lst")
except fx.InputValueError as err:
    print("error:", err)
score = fx.score(sys.argv[2], target="label", logits="lst")
print(repr((score.total, score.weight, score.scored, score.nonfinite, score.accuracy)))
"""


def test_pages_are_checked_without_zlib_ng(tmp_path):
    """Without zlib-ng the page code calls the table CRC by the same symbol, its cached code
    included: a damaged page is named, an intact file scores as pyarrow reads it."""
    good, bad = tmp_path / "good.parquet", tmp_path / "bad.parquet"
    pq.write_table(
        corpus_table(400).select(["label", "lst"]), good, compression="none", write_page_checksum=True
    )
    data = np.fromfile(good, np.uint8)
    start, size = chunk_range(pq.ParquetFile(good).metadata.row_group(0).column(1))
    data[start + size - 3] ^= 1
    data.tofile(bad)
    env = {**os.environ, READER_VARIABLE: "pages"}
    run = subprocess.run(
        [sys.executable, "-c", WITHOUT_ZLIB_NG, str(bad), str(good)], capture_output=True, text=True, env=env
    )
    assert run.returncode == 0, run.stderr
    error, numbers = run.stdout.splitlines()
    assert re.fullmatch(r"error: .*row group 0, column 'lst': the page at byte \d+ fails its CRC.*", error)
    expected = fx.score(pq.read_table(good), target="label", logits="lst")
    assert numbers == repr(
        (expected.total, expected.weight, expected.scored, expected.nonfinite, expected.accuracy)
    )
    assert expected.scored > 0


@pytest.mark.parametrize("reader", ["pages", "pyarrow"])
@pytest.mark.parametrize("dictionary", [True, False])
def test_strings_that_are_not_utf8_are_an_error(tmp_path, monkeypatch, reader, dictionary):
    """A string column whose bytes are not UTF-8 (a damaged dictionary page, or PLAIN strings):
    one line naming the file, whichever reader reads it (pyarrow's does not check them)."""
    path = tmp_path / "text.parquet"
    table = (
        corpus_table(400).select(["label", "lst"]).append_column("split", pa.array(["train", "test"] * 200))
    )
    pq.write_table(table, path, compression="none", use_dictionary=dictionary)
    data = path.read_bytes()
    assert data.count(b"train") >= 1
    path.write_bytes(data.replace(b"train", b"tr\xffin"))
    monkeypatch.setenv(READER_VARIABLE, reader)
    with pytest.raises(InputValueError, match=r"text\.parquet") as err:
        fx.score(str(path), **OPTIONS, group_by="split")
    assert "\n" not in str(err.value)
    monkeypatch.setenv(READER_VARIABLE, "pages")
    reads = fx.score(str(path), **OPTIONS).readers
    assert reads == {"pages": 2}  # the strings unread, nothing fails


def test_a_string_longer_than_its_dictionary_page_is_an_error(tmp_path, monkeypatch):
    """The last string of a dictionary page claiming a byte more than the page holds: an error,
    not the stale byte after the page in the reader's buffer (the page is 13 bytes, padded to 16)."""
    path = tmp_path / "text.parquet"
    table = corpus_table(400).select(["label", "lst"])
    table = table.append_column("split", pa.array(["ab", "cde"] * 200))
    pq.write_table(table, path, compression="none")
    data = path.read_bytes()
    assert data.count(b"\x03\x00\x00\x00cde") == 1
    path.write_bytes(data.replace(b"\x03\x00\x00\x00cde", b"\x04\x00\x00\x00cde"))
    monkeypatch.setenv(READER_VARIABLE, "pages")
    with pytest.raises(
        InputValueError, match=r"text\.parquet.*dictionary page at byte \d+ holds fewer strings"
    ):
        fx.score(str(path), **OPTIONS, group_by="split")
