"""Per-row output (``losses_to=``): a Parquet file written under a temporary name and renamed.

Rows are buffered into large row groups. The file appears under its final name only when the
run succeeds: on an error or Ctrl-C the temporary file is removed, so no partial output remains.
"""

from __future__ import annotations

import contextlib
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InputValueError

#: Rows per row group of the output file.
OUTPUT_GROUP_ROWS = 1 << 20


def check_output_path(path: str, inputs: list[str]) -> str:
    """The absolute output path, after checking its directory exists and it is not an input."""
    path = os.path.abspath(os.fspath(path))
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise InputValueError(f"cannot write '{path}': directory '{directory}' does not exist.")
    for source in inputs:
        if os.path.exists(source) and os.path.exists(path) and os.path.samefile(source, path):
            raise InputValueError(f"the output '{path}' is also an input; choose another file name.")
        if os.path.abspath(source) == path:
            raise InputValueError(f"the output '{path}' is also an input; choose another file name.")
    return path


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


class AtomicParquetWriter:
    """Buffer tables and write them as large row groups to ``path`` via a temporary file.

    Use as a context manager: leaving it normally renames the temporary file to ``path``;
    leaving it through any exception (``KeyboardInterrupt`` included) deletes it. Row groups are
    encoded and written in a background thread (pyarrow releases the GIL), one at a time, so
    writing overlaps scoring while at most two row groups are held.
    """

    def __init__(self, path: str):
        self.path = path
        directory, name = os.path.split(path)
        self.partial = os.path.join(directory, f".{name}.{os.getpid()}.partial")
        self._writer: pq.ParquetWriter | None = None
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="fastxent-writer")
        self._in_flight: Future | None = None

    def __enter__(self) -> AtomicParquetWriter:
        return self

    def write(self, table: pa.Table) -> None:
        self._pending.append(table)
        self._pending_rows += table.num_rows
        if self._pending_rows >= OUTPUT_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        table = pa.concat_tables(self._pending)
        self._pending, self._pending_rows = [], 0
        self._wait()  # the previous row group is written (and its errors raised) first
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.partial, table.schema, **column_options(table.schema))
        write = self._writer.write_table
        self._in_flight = self._thread.submit(write, table, row_group_size=OUTPUT_GROUP_ROWS)

    def _wait(self) -> None:
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            in_flight.result()

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._flush()
                self._wait()
                if self._writer is not None:
                    self._writer.close()
                    self._writer = None
                    os.replace(self.partial, self.path)
        finally:
            with contextlib.suppress(Exception):  # the run's own error is the one to report
                self._wait()
            self._thread.shutdown()
            if self._writer is not None:
                self._writer.close()
            if os.path.exists(self.partial):
                os.unlink(self.partial)


def atomic_write(path, write) -> None:
    """Call ``write(temporary_path)``, then rename the result to ``path``; remove it on failure."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        if partial.exists():
            partial.unlink()
