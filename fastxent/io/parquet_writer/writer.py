"""Per-row outputs (``losses_to``: row numbers, ids, losses, predictions) written as Parquet by
fastxent itself, for tables of integer and float columns.

pyarrow's writer took 23 ns a row to encode 20M rows of (row, id, loss, predicted), more than
scoring them, in a thread that also holds the GIL for its bookkeeping. Here integers are
DELTA_BINARY_PACKED and definition levels RLE in Numba without the GIL (:mod:`.encodings`),
floats PLAIN straight from their buffers, and pages stay uncompressed (row numbers and ids
delta-pack to almost nothing, losses do not compress); page headers and the footer are Thrift's
compact protocol (:mod:`.compact`). Integer columns get min/max statistics, every column its
null count. Tables of other types are left to pyarrow (:func:`writes`).

The file reads back as the table written: REQUIRED columns for fields that are not nullable,
integer widths and signedness as logical types (and legacy converted types).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .compact import struct, varint
from .encodings import delta_binary_packed, delta_bound, levels_bound, rle_levels

#: Rows of a data page at most (1 MiB of float64 values).
PAGE_ROWS = 1 << 17

# Parquet's enums (parquet.thrift).
_INT32, _INT64, _FLOAT, _DOUBLE = 1, 2, 4, 5
_PLAIN, _RLE, _DELTA_BINARY_PACKED = 0, 3, 5
_REQUIRED, _OPTIONAL = 0, 1
_UNCOMPRESSED = 0
_DATA_PAGE = 0
#: Legacy converted types of the integers: INT_8 .. INT_64, UINT_8 .. UINT_64.
_CONVERTED = {(8, True): 15, (16, True): 16, (32, True): 17, (64, True): 18}
_CONVERTED.update({(8, False): 11, (16, False): 12, (32, False): 13, (64, False): 14})
#: The LogicalType union's field for integers (IntType).
_INTEGER_LOGICAL = 10


def writes(schema: pa.Schema) -> bool:
    """Whether :class:`RowsWriter` writes tables of ``schema``: integer and float32/float64
    columns, nullable or not."""
    return len(schema) > 0 and all(
        pa.types.is_integer(f.type) or f.type in (pa.float32(), pa.float64()) for f in schema
    )


def _nbytes(piece) -> int:
    return len(piece) if isinstance(piece, bytes) else piece.nbytes


#: The definition levels of a nullable column's rows when none is null (:meth:`_Column.values_of`):
#: each page's are one RLE run (:func:`_one_run`), not a byte a row made and encoded (20M ids:
#: 20 MB of ones and 0.05 s of the writer thread).
ALL_PRESENT = np.ones(0, np.uint8)


def _one_run(rows: int) -> bytes:
    """RLE definition levels (bit width 1) of ``rows`` present rows: one run, its length shifted
    left by one as a ULEB128 varint, then the level 1 in a byte (as :func:`~.encodings.rle_levels`
    writes it)."""
    out = bytearray()
    varint(out, rows << 1)
    out.append(1)
    return bytes(out)


def _joined(bounds: tuple[int, int] | None, before: tuple[int, int] | None) -> tuple[int, int] | None:
    """The bounds of two sets of values, either of them ``None`` (no value)."""
    if bounds is None or before is None:
        return before if bounds is None else bounds
    return min(bounds[0], before[0]), max(bounds[1], before[1])


class _Column:
    """One column's Parquet types, and how its values are encoded."""

    def __init__(self, field: pa.Field):
        self.field = field
        typ = field.type
        self.integer = pa.types.is_integer(typ)
        self.bits = 64 if typ.bit_width == 64 else 32  # INT32 holds the narrower integers
        if self.integer:
            self.physical, self.encoding = (_INT64 if self.bits == 64 else _INT32), _DELTA_BINARY_PACKED
        else:
            self.physical, self.encoding = (_FLOAT if typ == pa.float32() else _DOUBLE), _PLAIN

    def schema_element(self) -> list:
        typ, logical, converted = self.field.type, None, None
        if self.integer:
            signed = pa.types.is_signed_integer(typ)
            converted = _CONVERTED[(typ.bit_width, signed)]
            logical = [(_INTEGER_LOGICAL, "struct", [(1, "i8", typ.bit_width), (2, "bool", signed)])]
        return [
            (1, "i32", self.physical),
            (3, "i32", _OPTIONAL if self.field.nullable else _REQUIRED),
            (4, "binary", self.field.name),
            (6, "i32", converted),
            (10, "struct", logical),
        ]

    def values_of(self, array: pa.Array) -> tuple[np.ndarray, np.ndarray | None]:
        """The present values (NumPy, of the column's type) and, for a nullable column, each
        row's definition level (1 present, 0 null) as bytes, or :data:`ALL_PRESENT` when no
        row is null."""
        levels = None
        if self.field.nullable:
            levels = ALL_PRESENT
            if array.null_count:
                levels = np.asarray(array.is_valid()).astype(np.uint8)
                array = array.drop_null()
        return array.to_numpy(zero_copy_only=False), levels

    def statistics(self, bounds: tuple[int, int] | None, nulls: int) -> list:
        """Statistics fields: the null count, and an integer column's ``bounds`` (its min/max,
        written as the physical type's little-endian bytes)."""
        fields = [(3, "i64", nulls)]
        if bounds is not None:
            mask, size = (1 << self.bits) - 1, self.bits // 8
            low, high = (v & mask for v in bounds)
            fields += [
                (5, "binary", high.to_bytes(size, "little")),
                (6, "binary", low.to_bytes(size, "little")),
            ]
        return fields

    def encoded(self, values: np.ndarray) -> tuple[np.ndarray, tuple[int, int] | None]:
        """The page's values as bytes in the column's encoding, and an integer column's bounds
        (smallest, largest, in the column's own order; ``None`` for floats and while there is no
        value). Integers go to the encoder as signed integers holding the physical type's signed
        value (uint32 as the int32 of its bits, uint64 as the int64; narrower unsigned ones fit
        their int32 as they are), not copied (an int64 copy of 20M predictions: 160 MB written
        by the writer thread); the encoder gives their bounds, except for uint32 and uint64,
        whose signed reading would misorder them."""
        if not self.integer:
            return values.view(np.uint8), None
        unsigned_wide = values.dtype in (np.uint32, np.uint64)
        signed = values.view(np.int32 if values.dtype == np.uint32 else np.int64) if unsigned_wide else values
        out = np.empty(delta_bound(values.size, self.bits), np.uint8)
        size, low, high = delta_binary_packed(signed, self.bits, out)
        if values.size == 0:
            return out[:size], None
        if unsigned_wide:
            low, high = values.min(), values.max()
        return out[:size], (int(low), int(high))


class RowsWriter:
    """A Parquet file of one ``schema`` (:func:`writes`) written to ``sink`` (a pyarrow output
    stream): :meth:`write_table` adds row groups, :meth:`close` the footer; what
    :class:`~fastxent.io.writers.TableWriter` uses of ``pyarrow.parquet.ParquetWriter``."""

    def __init__(self, sink, schema: pa.Schema):
        if not writes(schema):
            raise TypeError(f"RowsWriter writes integer and float columns, not {schema}")
        self._sink = sink
        self._schema = schema
        self._columns = [_Column(field) for field in schema]
        self._row_groups: list = []
        self._rows = 0
        self._at = 0
        self._write(b"PAR1")

    def _write(self, piece) -> None:
        self._sink.write(piece)
        self._at += _nbytes(piece)

    def write_table(self, table: pa.Table, row_group_size: int) -> None:
        """Write ``table`` (of the file's schema) as row groups of at most ``row_group_size``."""
        if not table.schema.equals(self._schema):
            raise ValueError(f"the table's schema is not the file's: {table.schema} against {self._schema}")
        for start in range(0, table.num_rows, row_group_size):
            self._row_group(table.slice(start, row_group_size))

    def _row_group(self, table: pa.Table) -> None:
        chunks, start = [], self._at
        for column, chunked in zip(self._columns, table.columns, strict=True):
            offset, meta = self._column_chunk(column, chunked.chunks)
            chunks.append([(2, "i64", offset), (3, "struct", meta)])
        size = self._at - start
        self._row_groups.append(
            [
                (1, ("list", "struct"), chunks),
                (2, "i64", size),
                (3, "i64", table.num_rows),
                (5, "i64", start),
                (6, "i64", size),
            ]
        )
        self._rows += table.num_rows

    def _column_chunk(self, column: _Column, arrays: list[pa.Array]) -> tuple[int, list]:
        """Write one column chunk: the pages of each of ``arrays`` (the row group's rows, in
        order) in turn; return its offset and ColumnMetaData. Each array's pages are its own,
        not the arrays' rows joined first: a row group of a losses file is ~8 batches, and
        joining them copied each column (20M rows of row, id, loss, predicted: 0.1 s of the
        writer thread)."""
        first = self._at
        rows = nulls = 0
        bounds = None
        for array in arrays:
            values, levels = column.values_of(array)
            bounds = _joined(self._pages(column, values, levels), bounds)
            rows += len(array)
            nulls += array.null_count
        size = self._at - first
        encodings = [_RLE, column.encoding] if column.field.nullable else [column.encoding]
        meta = [
            (1, "i32", column.physical),
            (2, ("list", "i32"), encodings),
            (3, ("list", "binary"), [column.field.name]),
            (4, "i32", _UNCOMPRESSED),
            (5, "i64", rows),
            (6, "i64", size),
            (7, "i64", size),
            (9, "i64", first),
            (12, "struct", column.statistics(bounds, nulls)),
        ]
        return first, meta

    def _pages(
        self, column: _Column, values: np.ndarray, levels: np.ndarray | None
    ) -> tuple[int, int] | None:
        """Write the data pages of one array's rows (``levels``: each row's definition level,
        ``None`` for a REQUIRED column, :data:`ALL_PRESENT` for a nullable one without nulls;
        ``values``: the present ones), :data:`PAGE_ROWS` rows a page at most; return the
        values' bounds (:meth:`_Column.encoded`)."""
        rows = values.shape[0] if levels is None or levels is ALL_PRESENT else levels.shape[0]
        taken = 0
        bounds = None
        for lo in range(0, rows, PAGE_ROWS):
            hi = min(lo + PAGE_ROWS, rows)
            body = []
            present = hi - lo
            if levels is not None:
                if levels is ALL_PRESENT:
                    encoded = _one_run(hi - lo)
                else:
                    page_levels = levels[lo:hi]
                    present = int(np.count_nonzero(page_levels))
                    out = np.empty(levels_bound(hi - lo), np.uint8)
                    encoded = out[: rle_levels(page_levels, out)]
                body += [len(encoded).to_bytes(4, "little"), encoded]  # v1 pages: a length first
            encoded, page_bounds = column.encoded(values[taken : taken + present])
            body.append(encoded)
            bounds = _joined(page_bounds, bounds)
            taken += present
            size = sum(_nbytes(piece) for piece in body)
            page = [(1, "i32", hi - lo), (2, "i32", column.encoding), (3, "i32", _RLE), (4, "i32", _RLE)]
            self._write(
                struct([(1, "i32", _DATA_PAGE), (2, "i32", size), (3, "i32", size), (5, "struct", page)])
            )
            for piece in body:
                self._write(piece)
        return bounds

    def close(self) -> None:
        """Write the footer (FileMetaData, its length, the magic bytes). The sink stays open."""
        from ... import __version__  # the package imports this module: not at import time

        root = [(4, "binary", "schema"), (5, "i32", len(self._columns))]
        footer = struct(
            [
                (1, "i32", 2),
                (2, ("list", "struct"), [root] + [c.schema_element() for c in self._columns]),
                (3, "i64", self._rows),
                (4, ("list", "struct"), self._row_groups),
                (6, "binary", f"fastxent version {__version__}"),
                (7, ("list", "struct"), [[(1, "struct", [])] for _ in self._columns]),  # TYPE_ORDER
            ]
        )
        self._write(footer)
        self._write(len(footer).to_bytes(4, "little") + b"PAR1")
