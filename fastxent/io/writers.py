"""Writing tables in the format an output's name asks for (:mod:`.formats`): Parquet, Arrow IPC
(file or stream format), or CSV, plain or through a compressed stream.

:class:`TableWriter` writes to a path or to a file object (an output written through, see
:mod:`.paths`); where the output goes, under which temporary name, is :mod:`.sinks`' business.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from ..errors import InputValueError
from .formats import OutputFormat
from .parquet_writer import RowsWriter, writes


def column_options(schema: pa.Schema) -> dict:
    """``ParquetWriter`` options for a per-row output: integer columns (row numbers, ids, the
    predicted class) DELTA_BINARY_PACKED, floats and booleans PLAIN, dictionary pages only for
    the rest (strings and other kept columns, where they pay).

    pyarrow's default tries a dictionary for every column first and falls back to PLAIN once it
    grows too large: on 20M rows of (row, id, loss, predicted) that cost 1.31 s and gave 252 MB,
    these options 0.39 s and 98 MB.
    """
    dictionary, encoding = [], {}
    for field in schema:
        if pa.types.is_integer(field.type):
            encoding[field.name] = "DELTA_BINARY_PACKED"
        elif not (pa.types.is_floating(field.type) or pa.types.is_boolean(field.type)):
            dictionary.append(field.name)
    return {"use_dictionary": dictionary, "column_encoding": encoding}


def _check_flat(schema: pa.Schema) -> None:
    """CSV holds one value per field: refuse nested columns before anything is written."""
    for field in schema:
        if pa.types.is_nested(field.type) or isinstance(field.type, pa.ExtensionType):
            raise InputValueError(
                f"CSV holds flat columns only, and column '{field.name}' is {field.type}; write a "
                ".parquet or .arrow file instead (or split the column into one column per class)."
            )


class TableWriter:
    """Tables of one ``schema`` written one after the other to ``target`` (a path or a writable
    file object) in the format ``fmt``. ``parquet_options`` are passed to ``ParquetWriter``;
    ``rows_writer``: Parquet of integer and float columns (per-row outputs) is written by
    :class:`~.parquet_writer.RowsWriter` instead, five times faster.

    Use as a context manager, or call :meth:`close`; closing it closes a file object too.
    """

    def __init__(
        self,
        target,
        schema: pa.Schema,
        fmt: OutputFormat,
        parquet_options: dict | None = None,
        rows_writer: bool = False,
    ):
        self.fmt = fmt
        if fmt.kind == "csv":
            _check_flat(schema)
        # the writers leave their sink open: the file is opened (and closed) here, so that it is
        # complete on disk before the caller renames it
        self._sink = pa.OSFile(target, "wb") if isinstance(target, str) else target
        if fmt.compression is not None:  # closing the compressed stream closes the file
            self._sink = pa.CompressedOutputStream(self._sink, fmt.compression)
        try:
            if fmt.kind == "parquet" and rows_writer and writes(schema):
                self._writer = RowsWriter(self._sink, schema)
            elif fmt.kind == "parquet":
                self._writer = pq.ParquetWriter(self._sink, schema, **(parquet_options or {}))
            elif fmt.kind == "ipc":
                self._writer = (ipc.new_stream if fmt.stream else ipc.new_file)(self._sink, schema)
            else:
                options = pacsv.WriteOptions(delimiter=fmt.delimiter)
                self._writer = pacsv.CSVWriter(self._sink, schema, write_options=options)
        except BaseException:
            self._sink.close()
            raise

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()

    def write(self, table: pa.Table, chunk_rows: int) -> None:
        """Write ``table``: Parquet row groups and IPC record batches of at most ``chunk_rows``."""
        if self.fmt.kind == "parquet":
            self._writer.write_table(table, row_group_size=chunk_rows)
        elif self.fmt.kind == "ipc":
            self._writer.write_table(table, max_chunksize=chunk_rows)
        else:
            self._writer.write_table(table)

    def close(self) -> None:
        """Finish the file (Parquet's and IPC's footers, the compressed stream's last frame)."""
        try:
            self._writer.close()
        finally:
            self._sink.close()
