"""One column of a row group as Arrow arrays of any number of rows, from its decoded pages.

:class:`ColumnCursor` takes rows from the pages of :class:`~.pages.ChunkPages` in order: ``take(n)``
returns the next ``n`` rows as an Arrow array of the column's type (new buffers, so a batch stays
valid after the pages move on). Rows of a list column may span pages. A list column holding a null
list or a null element, or a fixed_size_list row of another length, raises
:class:`~.pages.Unsupported` at that point: pyarrow reads the rest of the chunk.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from . import decode
from .layout import ColumnLayout
from .pages import ChunkPages, CorruptPage, Page, Unsupported, bits


class ColumnCursor:
    """The rows of one column chunk (see the module); ``rows`` is the row group's row count."""

    def __init__(self, pages: ChunkPages, layout: ColumnLayout, rows: int):
        self.layout = layout
        self.pages = iter(pages)
        self.page: Page | None = None
        self.level = 0  # next level (row, for a flat column) of the current page
        self.value = 0  # next present value of the current page
        self.rows_left = rows
        self.per_row = 1.0  # elements per row seen so far (a list column's buffer estimate)

    def _current(self) -> Page | None:
        """The page holding the next level, ``None`` at the end of the chunk."""
        while self.page is None or self.level >= self.page.count:
            self.page = next(self.pages, None)
            self.level = self.value = 0
            if self.page is None:
                return None
        return self.page

    def take(self, n: int) -> pa.Array:
        """The next ``n`` rows."""
        if n > self.rows_left:
            raise CorruptPage(f"asked for {n} rows, the row group has {self.rows_left} left")
        self.rows_left -= n
        array = self._list(n) if self.layout.is_list else self._flat(n)
        if self.rows_left == 0 and self._current() is not None:
            raise CorruptPage("the column chunk holds more rows than its row group")
        return array

    def _flat(self, n: int) -> pa.Array:
        layout = self.layout
        out = np.empty(n, layout.values)
        valid = np.ones(n, bool) if layout.nullable else None
        done = 0
        while done < n:
            page = self._current()
            if page is None:
                raise CorruptPage(f"the column chunk ends {n - done} rows before its row group")
            m = min(n - done, page.count - self.level)
            if page.full:  # no null in the page: its values are its rows
                _copy(page.values[self.value : self.value + m], out[done : done + m])
                self.value += m
            else:
                defs = page.defs[self.level : self.level + m]
                valid[done : done + m] = defs == layout.top
                piece = np.empty(m, layout.stored)
                used = decode.scatter(bits(page.values[self.value :]), defs, m, layout.top, bits(piece))
                if used < 0:
                    raise CorruptPage("a page holds fewer values than its definition levels say")
                out[done : done + m] = piece
                self.value += used
            self.level += m
            done += m
        return _array(layout.field.type, n, out, valid)

    def _list(self, n: int) -> pa.Array:
        layout = self.layout
        offsets = np.empty(n + 1, np.int64)
        child = np.empty(max(16, int(n * self.per_row * 1.01) + 16), layout.values)
        rows = elements = 0
        while True:
            page = self._current()
            if page is None:
                break
            start = elements
            self.level, rows, elements, status = decode.walk_list(
                page.reps,
                page.defs,
                self.level,
                page.count,
                n,
                rows,
                layout.empty,
                layout.top,
                offsets,
                elements,
            )
            if status == decode.NULL_IN_LIST:
                raise Unsupported("a null list or a null element")
            if status < 0:
                raise CorruptPage("the repetition levels of a page are not those of a list")
            got = elements - start
            if got > page.values.size - self.value:
                raise CorruptPage("a page holds fewer values than its definition levels say")
            if elements > child.size:
                child = np.concatenate(
                    [child[:start], np.empty(max(elements, 2 * child.size) - start, child.dtype)]
                )
            _copy(page.values[self.value : self.value + got], child[start:elements])
            self.value += got
            if self.level < page.count:  # stopped where the next row begins
                break
        if rows != n:
            raise CorruptPage(f"the column chunk ends {n - rows} rows before its row group")
        offsets[n] = elements
        self.per_row = max(self.per_row, elements / max(1, n))
        return _list_array(layout, n, offsets, child[:elements])


def _copy(source: np.ndarray, target: np.ndarray) -> None:
    """``target[:] = source``: bits copied in Numba where the types agree, cast by NumPy where
    the Arrow type is narrower than the stored one (int8 from INT32)."""
    if source.dtype == target.dtype:
        decode.copy(bits(source), bits(target))
    else:
        target[:] = source


def _array(typ: pa.DataType, n: int, values: np.ndarray, valid: np.ndarray | None) -> pa.Array:
    """An Arrow array of ``typ`` over ``values`` (booleans as bytes), nulls where not ``valid``."""
    nulls = 0 if valid is None else n - int(np.count_nonzero(valid))
    bitmap = None if not nulls else pa.py_buffer(np.packbits(valid, bitorder="little"))
    if typ == pa.bool_():
        data = pa.py_buffer(np.packbits(values.astype(bool), bitorder="little"))
    else:
        data = pa.py_buffer(values)
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
