"""In-memory sources: pyarrow Tables, RecordBatches and Datasets, and single-use streams.

A Table, RecordBatch or Dataset can be read as often as planning needs. A stream (a
``pa.RecordBatchReader``, or anything with ``__arrow_c_stream__``: pandas and Polars DataFrames,
DuckDB relations) is read once: :class:`StreamPart` keeps the batches planning looks at and
replays them to the scorer before reading on.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.dataset as pads

from ..errors import InputTypeError, InputValueError
from . import adapters
from .integrity import check_batch
from .labels import label_set
from .part import Part, in_units


def _memory_part(name: str, schema: pa.Schema, rows, batches_of) -> Part:
    def read(columns, batch_rows, units):
        def checked():
            for index, batch in enumerate(batches_of(columns, batch_rows)):
                batch = batch.select(columns)
                check_batch(batch, f"batch {index} of {name}")
                yield batch

        return in_units(checked())

    return Part(name, schema, rows, None, read)


class StreamPart(Part):
    """A single-use stream of record batches, read once.

    Planning reads ahead only as far as its question needs, and keeps what it read: the first
    batch with a value for :meth:`peek`; for :meth:`distinct`, batches until ``wanted`` class
    names have turned up. Scoring then replays the kept batches, letting each go once scored,
    and reads on from the stream.

    With ``wanted`` names found the classes are settled: they are sorted, and a further name
    would make more names than the predictions have classes, which fails the run at the row that
    holds it. So the classes cost memory only until every class has appeared; when one shows up
    late (or never), the stream is held up to that point (or whole), all its columns.
    """

    def __init__(self, name: str, reader: pa.RecordBatchReader):
        super().__init__(name, reader.schema, None, None, self._read)
        self._reader = reader
        self._kept: list[pa.RecordBatch] = []
        self._scored = False
        self._read_count = 0  # batches read from the stream so far

    def peek(self, column: str) -> pa.RecordBatch | None:
        """The first batch of ``column`` holding a non-null value, kept for scoring."""
        for batch in self._read_ahead():
            if batch.column(column).null_count < batch.num_rows:
                return batch.select([column])
        return None

    def distinct(self, column: str, wanted: int) -> set:
        """The distinct class names of ``column`` in the batches read until ``wanted`` of them
        have turned up (all of them if fewer do), kept for scoring."""
        seen: set = set()
        for batch in self._read_ahead():
            seen |= label_set(batch.column(column))
            if len(seen) >= wanted:
                break
        return seen

    def _read_ahead(self):
        """The stream's batches from its start: the kept ones, then new ones, kept too."""
        self._check_unread()
        index = 0
        while True:
            if index == len(self._kept):
                try:
                    self._kept.append(self._checked(self._reader.read_next_batch()))
                except StopIteration:
                    return
            yield self._kept[index]
            index += 1

    def _read(self, columns, batch_rows, units):
        self._check_unread()
        self._scored = True
        yield from in_units(self._replayed())

    def _replayed(self) -> Iterator[pa.RecordBatch]:
        """The kept batches, then the rest of the stream."""
        kept, self._kept = self._kept[::-1], []
        while kept:
            yield kept.pop()  # the part holds no other reference: a scored batch is let go
        for batch in self._reader:
            yield self._checked(batch)

    def _checked(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """``batch`` once it has passed :func:`~.integrity.check_batch` (a stream may come
        from an IPC file or socket)."""
        check_batch(batch, f"batch {self._read_count} of {self.name}")
        self._read_count += 1
        return batch

    def _check_unread(self) -> None:
        if self._scored:
            raise InputValueError(
                f"{self.name} is a single-use stream and has been read already; pass a new one."
            )


def memory_parts(source) -> list[Part]:
    """The :class:`Part` list of an in-memory source (see :func:`fastxent.score`)."""
    adapted = adapters.adapt(source)  # a polars LazyFrame, a Hugging Face Dataset
    if adapted is not None:
        return [_memory_part(*adapted)]
    if isinstance(source, pa.Table):
        return [
            _memory_part(
                "<table>",
                source.schema,
                source.num_rows,
                lambda cols, rows: source.select(cols).to_batches(max_chunksize=rows),
            )
        ]
    if isinstance(source, pa.RecordBatch):
        return [_memory_part("<record batch>", source.schema, source.num_rows, lambda c, r: [source])]
    if isinstance(source, pads.Dataset):
        return [
            _memory_part(
                "<dataset>",
                source.schema,
                None,
                lambda cols, rows: source.to_batches(columns=cols, batch_size=rows),
            )
        ]
    if isinstance(source, pa.RecordBatchReader):
        return [StreamPart("<stream>", source)]
    if hasattr(source, "__arrow_c_stream__"):
        reader = pa.RecordBatchReader.from_stream(source)
        return [StreamPart(f"<{type(source).__name__}>", reader)]
    raise InputTypeError(
        f"`source` of type {type(source).__name__} is not a path, a list of paths, a pyarrow "
        "Table/RecordBatch/RecordBatchReader/Dataset or an object with `__arrow_c_stream__`."
    )
