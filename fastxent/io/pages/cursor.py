"""One column chunk as Arrow arrays of any number of rows, decoded from its pages.

:class:`ColumnCursor` takes rows from the chunk in order: ``take(n)`` returns the next ``n``
rows as an Arrow array of the column's type (new buffers, so a batch stays valid after the pages
move on). The rows come from one Numba call (:mod:`.takes`), which opens as many pages as they
span; the cursor answers what that call asks of Python (the next window of the file, a page of
a codec Numba does not decompress, larger scratch arrays) and calls again. A list column
holding a null list or a null element, or a fixed_size_list row of another length, raises
:class:`Unsupported` at that point: pyarrow reads the rest of the chunk.
"""

from __future__ import annotations

import collections
import threading

import numpy as np
import pyarrow as pa

from ...kernels.multiclass import COLUMN_SLICE_ROWS
from ..pool import pooled_empty
from . import protocol as p
from .codecs import SNAPPY, UNCOMPRESSED, CodecError, Decompressor
from .decode import string_offsets
from .layout import ColumnLayout
from .pages import HEADER_BYTES, dictionary_bytes
from .takes import take_flat, take_list


class Unsupported(Exception):
    """A valid page the reader does not decode: its column chunk is read by pyarrow."""


class CorruptPage(ValueError):
    """A page's bytes are not a valid page, or its CRC differs from its header's."""


#: What each negative status of :mod:`.protocol` says, ``{at}`` being the page's file offset.
DAMAGE = {
    p.BAD_HEADER: "no valid page header at byte {at}",
    p.BAD_SIZES: "the page header at byte {at} gives sizes outside its column chunk",
    p.BAD_TYPE: "the page header at byte {at} has a page type and no header of that type",
    p.TOO_MANY_VALUES: "the page at byte {at} claims more values than its column chunk holds",
    p.TOO_FEW_VALUES: "the pages end before the footer's count of values",
    p.BAD_CODEC: "the page at byte {at} does not decompress to the size its header gives",
    p.UNCOMPRESSED_SIZE: "the uncompressed page at byte {at} has two different sizes in its header",
    p.BAD_LEVELS: "the levels of the page at byte {at} are not valid RLE",
    p.SHORT_VALUES: "the page at byte {at} holds fewer values than its header says",
    p.NO_DICTIONARY: "the page at byte {at} uses a dictionary, but its chunk has none",
    p.BAD_INDICES: "the dictionary indices of the page at byte {at} are not valid",
    p.SHORT_DICTIONARY: "the dictionary page at byte {at} holds fewer values than its header says",
    p.BAD_LIST: "the repetition levels of the page at byte {at} are not those of a list",
    p.SHORT_ROWS: "the column chunk ends before its row group",
    p.EXTRA_ROWS: "the column chunk holds more rows than its row group",
    p.BAD_CRC: "the page at byte {at} fails its CRC check (its bytes are damaged)",
}
#: What each status of a valid page the reader does not decode says.
NOT_DECODED = {
    p.UNSUPPORTED_DICTIONARY: "a dictionary page of an encoding other than PLAIN",
    p.UNSUPPORTED_LEVELS: "levels of an encoding other than RLE",
    p.UNSUPPORTED_VALUES: "values of an encoding the reader does not decode",
    p.NOT_AS_FLOAT: "a page of labels not given as float32 (plain values, nulls or values above 2**24)",
    p.NULL_IN_LIST: "a null list or a null element",
}

_NONE = np.empty(0, np.uint8)
#: No bytes of the file yet: read-only like the windows read later (np.frombuffer of ``bytes``),
#: so the Numba calls see one array type and compile once (each compile costs seconds).
_NO_WINDOW = np.frombuffer(b"", np.uint8)


class _Spares(threading.local):
    """Each thread's scratch buffers (raw bytes, a list by name) kept from one column chunk to
    the next: allocating them again for each chunk (100 columns, 7 pages each) had the kernel
    zero fresh memory every time. A list, because a row group's columns are open at once: each
    of 100 cursors takes its own."""

    def __init__(self):
        self.buffers: dict = collections.defaultdict(list)
        self.nbytes = 0  # of all the lists' buffers


#: The most bytes a thread keeps in spare buffers (a 100-column row group's pages need ~10 MB;
#: 10,000 columns' more would be held for nothing once the file is read).
SPARE_BYTES = 32 << 20


_spares = _Spares()


def _scratch(name: str, n: int, dtype, owned: dict) -> np.ndarray:
    """``n`` values of ``dtype`` from one of this thread's spare buffers ``name``, or a new
    buffer; the buffer is ``owned[name]`` until :meth:`ColumnCursor._give_back` returns it."""
    dtype = np.dtype(dtype)
    raw = _take_spare(name)
    if raw.size < n * dtype.itemsize:
        raw = pooled_empty(n * dtype.itemsize, np.uint8)
    owned[name] = raw
    return raw[: n * dtype.itemsize].view(dtype)


def _spare(name: str, owned: dict) -> np.ndarray:
    """One of this thread's spare buffers ``name`` as it is (empty if there is none), owned as
    :func:`_scratch`'s: a cursor starts with the buffers a chunk read before it used, so its
    first pages need no round to Python to ask for them (:meth:`ColumnCursor._start`)."""
    raw = _take_spare(name)
    if raw.size:
        owned[name] = raw
    return raw


def _take_spare(name: str) -> np.ndarray:
    spares = _spares.buffers[name]
    if not spares:
        return _NONE
    raw = spares.pop()
    _spares.nbytes -= raw.size
    return raw


class ColumnCursor:
    """The rows of one column chunk (see the module).

    ``read(offset, size)`` returns a window of the file's bytes from ``offset``, at least ``size``
    of them, as a uint8 array, and ``read.done()`` frees its buffer once the chunk is read
    (:mod:`.files`). ``start``, ``size``: the chunk's bytes; ``codec``:
    its codec number; ``num_values`` and ``uncompressed``: its value count and
    uncompressed size from the footer; ``rows``: the row group's row count.
    """

    def __init__(self, read, start, size, layout: ColumnLayout, codec, num_values, uncompressed, rows):
        self.read = read
        self.layout = layout
        self.rows_left = rows
        self.per_row = 1.0  # elements per row seen so far (a list column's buffer estimate)
        self.state = np.zeros(p.STATE_SLOTS, np.int64)
        self.state[[p.POS, p.END, p.VALUES_LEFT, p.DICTIONARY, p.PREPARED, p.VERIFIED]] = (
            start,
            start + size,
            num_values,
            -1,
            -1,
            start,
        )
        self.params = np.zeros(p.PARAMETERS, np.int64)
        kind = {UNCOMPRESSED: p.UNCOMPRESSED, SNAPPY: p.SNAPPY}.get(codec, p.BY_PYTHON)
        self.params[
            [p.CODEC, p.TOP, p.IS_LIST, p.EMPTY, p.WIDTH, p.IS_BOOL, p.LARGEST, p.AS_FLOAT, p.AS_CODES]
        ] = (
            kind,
            layout.top,
            layout.is_list,
            layout.empty or 0,
            layout.stored.itemsize,
            layout.stored == np.uint8,
            max(0, uncompressed),  # no page decompresses to more than its whole chunk
            layout.as_float,
            layout.codes,
        )
        self.decompress = Decompressor(codec) if kind == p.BY_PYTHON else None
        self.window, self.base = _NO_WINDOW, start
        # values as bytes, whatever their width (params[WIDTH]): Numba copies them bit for bit (it
        # has no float16), and the page code compiles once for every width (cold, reading columns of
        # four widths compiled for 31.6 s when each width had its own specialisation, 18.7 s now)
        self.width = layout.stored.itemsize
        # what a flat column's values become: the stored type, or float32 (layout.as_float)
        self.decoded = np.dtype(np.float32) if layout.as_float else layout.stored
        self.owned: dict = {}  # scratch buffers taken from this thread's spares
        self.started = False  # the first window read (_start)
        self.page_buf = self.defs = self.reps = _NONE
        self.idx = np.empty(0, np.int32)
        self.vals = self.dictionary = _NONE
        self.strings: pa.Array | None = None  # a string column's dictionary (layout.codes)
        self.dictionary_at = start  # its page's offset
        self.dictionary_size = 0

    def take(self, n: int, room: tuple | None = None) -> pa.Array:
        """The next ``n`` rows; ``room``: where a flat column's values go (``n`` values'
        bytes in a buffer shared with other columns, :func:`shared_value_buffers`), instead of
        a buffer of their own."""
        if n > self.rows_left:
            raise CorruptPage(f"asked for {n} rows, the row group has {self.rows_left} left")
        self.rows_left -= n
        finish = self.rows_left == 0
        if not self.started:
            self._start()
        self.state[p.DONE] = self.state[p.ELEMENTS] = self.state[p.NULLS] = 0
        layout = self.layout
        if layout.is_list:
            offsets = pooled_empty(n + 1, np.int64)
            width = self.width
            child = pooled_empty(max(16, int(n * self.per_row * 1.01) + 16) * width, np.uint8)
            while (status := self._call(take_list, offsets, child, n, finish)) == p.NEED_CHILD:
                grown = pooled_empty(max(int(self.state[p.NEED]) * width, 2 * child.size), np.uint8)
                kept = int(self.state[p.ELEMENTS]) * width
                grown[:kept] = child[:kept]
                child = grown
            self._check(status)
            elements = int(offsets[n])
            self.per_row = max(self.per_row, elements / max(1, n))
            array = _list_array(layout, n, offsets, child[: elements * width].view(layout.stored))
        else:
            size = n * self.decoded.itemsize
            data, out = room if room is not None else (None, pooled_empty(size, np.uint8))
            valid = pooled_empty(n, np.uint8) if layout.nullable else _NONE
            self._check(self._call(take_flat, out, valid, n, finish))
            nulls = int(self.state[p.NULLS])
            array = _array(layout, n, out.view(self.decoded), valid if nulls else None, data)
            if layout.codes:
                array = pa.DictionaryArray.from_arrays(array, self._strings(), safe=False)
        if finish:
            self._give_back()
            self.read.done()  # the window's buffer, for the file's next chunk
            self.window = _NO_WINDOW
        return array

    def _call(self, take, out, other, n, finish) -> int:
        """``take`` until it is done or asks for something only the caller can give."""
        while True:
            status = take(
                self.window,
                self.base,
                self.state,
                self.params,
                self.page_buf,
                self.defs,
                self.reps,
                self.idx,
                self.vals,
                self.dictionary,
                out,
                other,
                n,
                finish,
            )
            if status <= 0 or status == p.NEED_CHILD:
                return status
            self._answer(status)

    def _answer(self, status: int) -> None:
        state = self.state
        need = int(state[p.NEED])
        if status == p.NEED_BYTES:
            self._read_window(int(state[p.NEED_AT]), int(state[p.NEED_SIZE]))
        elif status == p.NEED_BUFFER:
            self.page_buf = _scratch("page", max(need, 2 * self.page_buf.size), np.uint8, self.owned)
        elif status == p.NEED_SCRATCH:
            wanted = int(state[p.NEED_SIZE])
            if wanted & p.DEFS:
                self.defs = _scratch("defs", max(need, 2 * self.defs.size), np.uint8, self.owned)
            if wanted & p.REPS:
                # a list page's levels as bytes, or its row starts as int32 (pages.row_start_room)
                self.reps = _scratch("reps", max(4 * need, 2 * self.reps.size), np.uint8, self.owned)
            if wanted & p.INDICES:
                self.idx = _scratch("idx", max(need, 2 * self.idx.size), np.int32, self.owned)
            if wanted & p.VALUES:
                self.vals = _scratch("vals", max(need * self.width, 2 * self.vals.size), np.uint8, self.owned)
        elif status == p.NEED_DICTIONARY:
            size = dictionary_bytes(need, int(state[p.NEED_SIZE]), self.params)
            self.dictionary = _scratch("dictionary", size, np.uint8, self.owned)
            self.strings, self.dictionary_at = None, int(state[p.AT])
            self.dictionary_size = int(state[p.NEED_SIZE])  # the page's bytes (before padding)
        else:  # NEED_DECOMPRESS: a page of a codec Numba does not decompress
            lo = int(state[p.NEED_AT]) - self.base
            try:
                self.page_buf = self.decompress(self.window[lo : lo + int(state[p.NEED_SIZE])], need)
            except CodecError as err:
                raise CorruptPage(f"the page at byte {state[p.AT]}: {err}") from None
            state[p.PREPARED] = state[p.AT]

    def _start(self) -> None:
        """Before the first call: the chunk's first window, and the spare buffers its pages
        will ask for where that is known (snappy pages, definition levels), rather than at the
        call's asking (100 columns: three rounds to Python a chunk spared). At the first take,
        not when the cursor is made: a row group's cursors are made at once, and each of its
        columns in turn then takes the buffers the column before gave back."""
        self.started = True
        if self.params[p.CODEC] == p.SNAPPY:
            self.page_buf = _spare("page", self.owned)
        if self.layout.top > 0:
            self.defs = _spare("defs", self.owned)
        start, end = int(self.state[p.POS]), int(self.state[p.END])
        if end > start:
            self._read_window(start, min(HEADER_BYTES, end - start))

    def _read_window(self, at: int, size: int) -> None:
        """The window of the chunk from byte ``at`` (at least ``size`` bytes); each page's CRC is
        checked when it is opened (:func:`.pages.open_page`)."""
        self.base = at
        self.window = self.read(at, size)

    def _strings(self) -> pa.Array:
        """The strings of the chunk's dictionary page (empty before it is read), as an Arrow
        string array: the page's bytes after the codes (:func:`~.pages.dictionary_bytes`),
        checked to be UTF-8 as pyarrow checks them."""
        count = int(self.state[p.DICTIONARY])
        if count <= 0:
            return pa.array([], pa.string())
        if self.strings is None:  # made anew for each dictionary page (_answer)
            raw = self.dictionary[4 * count : 4 * count + self.dictionary_size]
            self.strings = dictionary_strings(raw, count, f"the dictionary page at byte {self.dictionary_at}")
        return self.strings

    def _give_back(self) -> None:
        """Hand the scratch buffers to the next chunks this thread reads."""
        for name, raw in self.owned.items():
            if _spares.nbytes + raw.size <= SPARE_BYTES:
                _spares.buffers[name].append(raw)
                _spares.nbytes += raw.size
        self.owned = {}

    def _check(self, status: int) -> None:
        if status == p.OK:
            return
        if status in NOT_DECODED:
            raise Unsupported(NOT_DECODED[status])
        raise CorruptPage(DAMAGE[status].format(at=int(self.state[p.AT])))


def dictionary_strings(raw: np.ndarray, count: int, page: str) -> pa.Array:
    """The ``count`` PLAIN byte arrays of a dictionary ``page``'s bytes ``raw`` as an Arrow
    string array, checked to be UTF-8 as pyarrow checks them; :class:`CorruptPage` (naming
    ``page``) where they are fewer or not UTF-8."""
    offsets = np.empty(count + 1, np.int32)
    data = pooled_empty(max(raw.size, 1), np.uint8)
    used = string_offsets(raw, count, offsets, data)
    if used < 0:
        raise CorruptPage(f"{page} holds fewer strings than it says")
    strings = pa.Array.from_buffers(
        pa.string(), count, [None, pa.py_buffer(offsets), pa.py_buffer(data[:used])]
    )
    try:
        strings.validate(full=True)
    except pa.ArrowInvalid:
        raise CorruptPage(f"{page} holds a string that is not UTF-8") from None
    return strings


def shares_values(layout: ColumnLayout) -> bool:
    """Whether a flat column's Arrow values are its decoded bytes as they are (not booleans,
    which Arrow packs into bits, nor a type narrower than the stored one, nor a string column's
    codes), so that they can lie in a buffer shared with other columns
    (:func:`shared_value_buffers`)."""
    plain = layout.field.type != pa.bool_() and not layout.codes
    return not layout.is_list and layout.values == layout.stored and plain


def shared_value_buffers(layouts: dict, n: int) -> dict:
    """``{column: (Arrow buffer, bytes)}``: room for ``n`` values of each column of ``layouts``
    whose values can be shared (:func:`shares_values`), as an Arrow buffer and the same bytes
    writable by the decoder; the columns of one type side by side in one buffer, in order.

    The 100 class columns of a batch then lie in one buffer, :func:`spread_stride` apart, as
    the class-by-class kernels read them (:func:`fastxent.engine.class_rows`), which the scorer
    views in place (:func:`fastxent.io.columns.stacked_in_place`) instead of copying every
    column into one (1.6 GB of copies on a 4M x 100 file).
    """
    by_type: dict = {}
    for name, layout in layouts.items():
        if shares_values(layout):
            by_type.setdefault(layout.stored, []).append(name)
    out = {}
    for dtype, names in by_type.items():
        size = n * dtype.itemsize
        stride = spread_stride(size, dtype.itemsize) if len(names) > 1 else size
        whole = pa.allocate_buffer(len(names) * stride)  # from Arrow's pool, as pooled_empty
        writable = np.frombuffer(whole, np.uint8)  # a slice of ``whole`` would be read-only
        for k, name in enumerate(names):
            out[name] = whole.slice(k * stride, size), writable[k * stride : k * stride + size]
    return out


def spread_stride(size: int, itemsize: int) -> int:
    """The bytes from one class column to the next for columns of ``size`` bytes: an odd multiple
    of a slice of the class-by-class kernels (:data:`~fastxent.kernels.multiclass.COLUMN_SLICE_ROWS`
    values, 2 KB of float32), so that the classes' slices fall in different cache sets rather than
    all in the same ones as columns a power of two of bytes apart do (131,072 float32 rows: 104 ns
    a row of 100 classes scored one thread against 68 ns padded to 131,584; 4 KB apart, 82 ns)."""
    piece = COLUMN_SLICE_ROWS * itemsize
    pieces = -(-size // piece)
    return (pieces + 1 - pieces % 2) * piece


def _array(
    layout: ColumnLayout, n: int, values: np.ndarray, valid: np.ndarray | None, data: pa.Buffer | None = None
) -> pa.Array:
    """An Arrow array of the column's type over ``values`` (booleans as bytes; a string column's
    codes, as int32), nulls where not ``valid`` (``None``: no null); ``data``: the Arrow buffer
    ``values`` lie in, if they lie in one."""
    typ = pa.int32() if layout.codes else layout.field.type
    if values.dtype != layout.values:  # an Arrow type narrower than the stored one (int8 from INT32)
        values = values.astype(layout.values)
    nulls = 0 if valid is None else n - int(np.count_nonzero(valid))
    bitmap = None if not nulls else pa.py_buffer(np.packbits(valid, bitorder="little"))
    if data is None:
        data = pa.py_buffer(np.packbits(values, bitorder="little") if typ == pa.bool_() else values)
    return pa.Array.from_buffers(typ, n, [bitmap, data], null_count=nulls)


def _list_array(layout: ColumnLayout, n: int, offsets: np.ndarray, child: np.ndarray) -> pa.Array:
    typ = layout.field.type
    values = pa.Array.from_buffers(typ.value_type, child.size, [None, pa.py_buffer(child)], null_count=0)
    if layout.list_size:
        if child.size != n * layout.list_size or np.any(np.diff(offsets) != layout.list_size):
            raise Unsupported(f"a row that does not hold {layout.list_size} values")
        return pa.FixedSizeListArray.from_arrays(values, type=typ)
    wide = pa.types.is_large_list(typ)
    offsets = offsets if wide else offsets.astype(np.int32)  # a list's offsets are int32
    return pa.Array.from_buffers(typ, n, [None, pa.py_buffer(offsets)], null_count=0, children=[values])
