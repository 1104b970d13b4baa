"""The pages of one column chunk: headers parsed, CRCs checked, pages decompressed and decoded.

:class:`ChunkPages` yields each data page as a :class:`Page` (its levels and its present values),
having read the dictionary page where there is one. A page it cannot decode although it is valid
(an encoding or level encoding it does not know) raises :class:`Unsupported`; bytes that are not
a valid page raise :class:`CorruptPage`; a page whose CRC differs from its header's raises
:class:`CorruptPage` saying so. Bounds come from the footer (which pyarrow has parsed and checked):
no page may claim more values than its chunk holds or more bytes than its chunk spans.
"""

from __future__ import annotations

import zlib
from typing import NamedTuple

import numpy as np

from . import decode, thrift
from .codecs import CodecError, Decompressor
from .layout import ColumnLayout

PLAIN, PLAIN_DICTIONARY, RLE, BIT_PACKED, RLE_DICTIONARY, BYTE_STREAM_SPLIT = 0, 2, 3, 4, 8, 9
#: Bytes of a column chunk read before those behind the current page are released.
RELEASE_BYTES = 16 << 20
#: Bytes first read for a page header; more when the header (long statistics) is larger.
HEADER_BYTES = 1 << 10


class Unsupported(Exception):
    """A valid page the reader does not decode: its column chunk is read by pyarrow."""


class CorruptPage(ValueError):
    """A page's bytes are not a valid page, or its CRC differs from its header's."""


class Page(NamedTuple):
    """One data page: ``count`` levels, the present ``values`` (the column's stored type), and
    the definition and repetition levels (uint8; ``None`` where the column has none, and where
    a flat column's page has no null). ``full``: every level is a present value (no null, no
    empty list)."""

    count: int
    values: np.ndarray
    defs: np.ndarray | None
    reps: np.ndarray | None
    full: bool


def bits(values: np.ndarray) -> np.ndarray:
    """``values`` as unsigned integers of their width: Numba copies them (it has no float16) with
    every bit kept."""
    return values.view(f"u{values.dtype.itemsize}")


def _bit_width(level: int) -> int:
    return int(level).bit_length()


class ChunkPages:
    """The data pages of one column chunk, in order (see the module).

    ``view(offset, size)`` returns the file's bytes ``[offset, offset + size)`` as a uint8 array
    that stays valid while the next page is read, ``release(lo, hi)`` lets go of bytes read
    (:mod:`.files`); ``codec`` is the chunk's codec number,
    ``num_values`` and ``uncompressed`` its value count and uncompressed size from the footer.
    """

    def __init__(self, view, release, start, size, layout: ColumnLayout, codec, num_values, uncompressed):
        self.view, self.release, self.pos, self.end = view, release, start, start + size
        self.released = start
        self.layout = layout
        self.decompress = Decompressor(codec)
        self.values_left = num_values
        self.largest = max(0, uncompressed)  # no page decompresses to more than its whole chunk
        self.dictionary = None
        self.header = np.empty(thrift.SLOTS, np.int64)

    def __iter__(self):
        while self.pos < self.end:
            page = self._next()
            if page is not None:
                yield page
        if self.values_left:
            raise CorruptPage(f"the pages end {self.values_left} values before the footer's count")

    def _read_header(self) -> tuple[np.ndarray, int]:
        """The header at ``self.pos``: its slots and its length."""
        want = min(HEADER_BYTES, self.end - self.pos)
        while True:
            raw = self.view(self.pos, want)
            length = thrift.parse_page_header(raw, 0, raw.size, self.header)
            if length > 0:
                return self.header, length
            if want == self.end - self.pos:
                raise CorruptPage(f"no valid page header at byte {self.pos}")
            want = min(4 * want, self.end - self.pos)

    def _next(self) -> Page | None:
        h, length = self._read_header()
        at = self.pos
        kind, size, full = h[thrift.TYPE], h[thrift.COMPRESSED], h[thrift.UNCOMPRESSED]
        body_at = at + length
        if size < 0 or full < 0 or size > self.end - body_at or full > max(self.largest, size):
            raise CorruptPage(f"the page header at byte {at} gives sizes outside its column chunk")
        body = self.view(body_at, size)
        self.pos = body_at + size
        if self.pos - self.released >= RELEASE_BYTES:
            self.release(self.released, at)  # this page's own bytes may still be viewed
            self.released = at
        if h[thrift.HAS_CRC] == 1 and zlib.crc32(body) != h[thrift.CRC]:
            raise CorruptPage(f"the page at byte {at} fails its CRC check (its bytes are damaged)")
        if kind == thrift.INDEX_PAGE:
            return None
        try:
            if kind == thrift.DICTIONARY_PAGE and h[thrift.SUB_HEADER] == thrift.DICTIONARY_HEADER:
                self._dictionary(h, body, full, at)
                return None
            if kind == thrift.DATA_PAGE and h[thrift.SUB_HEADER] == thrift.DATA_HEADER:
                return self._data_v1(h, body, full, at)
            if kind == thrift.DATA_PAGE_V2 and h[thrift.SUB_HEADER] == thrift.DATA_V2_HEADER:
                return self._data_v2(h, body, full, at)
        except CodecError as err:
            raise CorruptPage(f"the page at byte {at}: {err}") from None
        raise CorruptPage(f"the page header at byte {at} has page type {kind} and no header of that type")

    def _count(self, h, at: int) -> int:
        count = h[thrift.NUM_VALUES]
        if count < 0 or count > self.values_left:
            raise CorruptPage(
                f"the page at byte {at} claims {count} values, more than its column chunk holds"
            )
        self.values_left -= count
        return int(count)

    def _dictionary(self, h, body, full, at) -> None:
        if h[thrift.ENCODING] not in (PLAIN, PLAIN_DICTIONARY) or self.layout.stored == np.uint8:
            raise Unsupported(f"a dictionary page of encoding {h[thrift.ENCODING]}")
        count = h[thrift.NUM_VALUES]
        data = self.decompress(body, int(full))
        width = self.layout.stored.itemsize
        if count < 0 or count * width > data.size:
            raise CorruptPage(f"the dictionary page at byte {at} holds fewer values than its header says")
        self.dictionary = data[: count * width].view(self.layout.stored).copy()

    def _levels(
        self, data, pos, end, count, level, at, prefixed, flat=False
    ) -> tuple[np.ndarray | None, int]:
        """``count`` levels up to ``level`` at ``data[pos:end]`` (RLE, v1 pages with a 4-byte
        length first); ``(None, pos)`` where the column has no such levels, or (``flat``: the
        definition levels of a flat column) where every one is ``level``, one run."""
        if level == 0:
            return None, pos
        if prefixed:
            if end - pos < 4:
                raise CorruptPage(f"the levels of the page at byte {at} are cut short")
            stop = pos + 4 + int(data[pos : pos + 4].view("<u4")[0])
            pos += 4
            if stop > end:
                raise CorruptPage(f"the levels of the page at byte {at} run past the page")
            end = stop
        if flat and decode.one_run(data, pos, end, _bit_width(level), count) == level:
            return None, end
        out = np.empty(count, np.uint8)
        if decode.decode_hybrid(data, pos, end, _bit_width(level), count, level, out) < 0:
            raise CorruptPage(f"the levels of the page at byte {at} are not valid RLE")
        return out, end

    def _data_v1(self, h, body, full, at) -> Page:
        count = self._count(h, at)
        data = self.decompress(body, int(full))
        layout = self.layout
        for which in (thrift.REP_ENCODING, thrift.DEF_ENCODING):
            if h[which] not in (RLE, -1):
                raise Unsupported(f"levels of encoding {h[which]}")
        reps, pos = self._levels(data, 0, data.size, count, 1 if layout.is_list else 0, at, True)
        defs, pos = self._levels(data, pos, data.size, count, layout.top, at, True, not layout.is_list)
        return self._page(h[thrift.ENCODING], data, pos, count, defs, reps, at)

    def _data_v2(self, h, body, full, at) -> Page:
        count = self._count(h, at)
        rep_bytes, def_bytes = h[thrift.REP_BYTES], h[thrift.DEF_BYTES]
        if rep_bytes < 0 or def_bytes < 0 or rep_bytes + def_bytes > min(body.size, full):
            raise CorruptPage(f"the level lengths of the page at byte {at} run past the page")
        levels = rep_bytes + def_bytes
        layout = self.layout
        reps, _ = self._levels(body, 0, rep_bytes, count, 1 if layout.is_list else 0, at, False)
        defs, _ = self._levels(body, rep_bytes, levels, count, layout.top, at, False, not layout.is_list)
        rest = body[levels:]
        data = self.decompress(rest, int(full - levels)) if h[thrift.IS_COMPRESSED] != 0 else rest
        return self._page(h[thrift.ENCODING], data, 0, count, defs, reps, at)

    def _page(self, encoding, data, pos, count, defs, reps, at) -> Page:
        present = count if defs is None else int(np.count_nonzero(defs == self.layout.top))
        values = self._values(encoding, data, pos, present, at)
        return Page(count, values, defs, reps, present == count)

    def _values(self, encoding, data, pos, present, at) -> np.ndarray:
        """The ``present`` values of a data page, from ``data[pos:]``."""
        stored = self.layout.stored
        end = data.size
        if encoding in (PLAIN_DICTIONARY, RLE_DICTIONARY):
            if self.dictionary is None:
                raise CorruptPage(f"the page at byte {at} uses a dictionary, but its chunk has none")
            if present and (end - pos < 1):
                raise CorruptPage(f"the dictionary indices of the page at byte {at} are missing")
            indices = np.empty(present, np.int32)
            width = int(data[pos]) if present else 0
            if (
                decode.decode_hybrid(data, pos + 1, end, width, present, self.dictionary.size - 1, indices)
                < 0
            ):
                raise CorruptPage(f"the dictionary indices of the page at byte {at} are not valid")
            out = np.empty(present, stored)
            decode.gather(bits(self.dictionary), indices, present, bits(out))
            return out
        if encoding == PLAIN and stored == np.uint8:  # booleans: bits
            out = np.empty(present, np.uint8)
            if decode.unpack_booleans(data, pos, end, present, out) < 0:
                raise CorruptPage(f"the page at byte {at} holds fewer values than its header says")
            return out
        if encoding == RLE and stored == np.uint8:  # booleans of v2 pages: a 4-byte length first
            return self._levels(data, pos, end, present, 1, at, True)[0]
        width = stored.itemsize
        if encoding == PLAIN:
            if present * width > end - pos:
                raise CorruptPage(f"the page at byte {at} holds fewer values than its header says")
            return data[pos : pos + present * width].view(stored)
        if encoding == BYTE_STREAM_SPLIT and stored != np.uint8:
            out = np.empty(present * width, np.uint8)
            if decode.unsplit(data, pos, end, width, present, out) < 0:
                raise CorruptPage(f"the page at byte {at} holds fewer values than its header says")
            return out.view(stored)
        raise Unsupported(f"values of encoding {encoding}")
