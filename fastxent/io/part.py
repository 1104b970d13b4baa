"""A :class:`Part`: one readable piece of a source, and the questions planning asks it.

Planning reads data only where the schema cannot tell: :func:`first_batch` (the width of a
variable-length list column) and :func:`class_names` (the classes of a string target). Each part
answers them itself, so a single-use stream (:class:`fastxent.io.memory.StreamPart`) can answer
from batches it keeps for scoring instead of reading its data twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import pyarrow as pa

from ..errors import InputValueError
from ..unit_rows import UNIT_ROWS_KEPT
from .labels import label_set, plain_label_type

#: Rows per batch of :meth:`Part.peek`: planning wants one row, any small batch will do.
PEEK_ROWS = 2048
#: Rows per batch of :meth:`Part.distinct`: one column is read, so batches can be large.
DISTINCT_ROWS = 1 << 20


#: Rows of each unit of a source read as one piece (an in-memory Table or stream, a pandas or
#: Polars frame, a CSV file, an IPC stream-format file, a Delta table read as a dataset where
#: its live files cannot be listed): its first ``UNIT_ROWS``
#: rows are unit 0, the next unit 1, and so on, however it comes chunked or batched, so its
#: results depend on neither. As many as the group-by keeps to fold a unit whole
#: (:data:`~fastxent.unit_rows.UNIT_ROWS_KEPT`, a Parquet row group as pyarrow writes them): a
#: whole 20M-row table as one unit carried 100,000 users' open blocks from batch to batch
#: (0.64-0.71 s, two threads, AMD Zen 4; units of 2**20 rows 0.45 s, of 2**17 0.86 s: a group's
#: blocks are closed at every unit's end).
UNIT_ROWS = UNIT_ROWS_KEPT


def in_units(batches: Iterable[pa.RecordBatch]) -> Iterator[tuple[int, pa.RecordBatch]]:
    """``(unit, batch)`` for the rows of ``batches`` in order, units of :data:`UNIT_ROWS` rows,
    a batch that spans the end of a unit cut there (slices: no copy)."""
    row = 0
    for batch in batches:
        if batch.num_rows == 0:
            yield row // UNIT_ROWS, batch
        start = 0
        while start < batch.num_rows:
            unit, at = divmod(row, UNIT_ROWS)
            take = min(batch.num_rows - start, UNIT_ROWS - at)
            yield unit, batch.slice(start, take) if take < batch.num_rows else batch
            start += take
            row += take


def check_read_whole(name: str, what: str, units) -> None:
    """Refuse ``units`` other than all (``None``) or ``[0]`` of ``name``, ``what`` (a CSV file,
    an IPC stream, a table) read as one piece: its :func:`in_units` units exist only as it is
    read through, none can be read alone."""
    if units is not None and list(units) != [0]:
        raise InputValueError(f"'{name}' is read as one piece ({what}); asked for units {units}.")


@dataclass
class Part:
    """One readable piece of a source: a file, or an in-memory Arrow object.

    A part is a sequence of *units*, the pieces that are summed independently (a Parquet row
    group, an Arrow IPC record batch; :data:`UNIT_ROWS` rows of what is read as one piece, a CSV
    file or an in-memory stream, :func:`in_units`): any worker can score any unit and the results
    merge to the same bits. ``read(columns, batch_rows, units)`` yields
    ``(unit, batch)`` pairs holding ``columns`` (file columns only; partition columns are added by
    :meth:`batches`), for the given unit numbers or all of them. ``unit_rows`` lists each unit's
    rows when the metadata says (``None`` for CSV and streams). ``partition`` maps each partition
    column the file lacks to its value, a typed ``pa.Scalar`` (null included).

    The part of a file has its ``location`` (:class:`~fastxent.io.filesystems.Location`: the path
    and its filesystem) and pickles as that description, with its partition: unpickled (on a
    Dask worker), it opens the file again itself. A part of in-memory data has none and does not
    pickle.
    """

    name: str
    schema: pa.Schema
    rows: int | None
    nbytes: int | None
    read: Callable[[list[str], int, list | None], Iterator[tuple[int, pa.RecordBatch]]]
    partition: dict = field(default_factory=dict)
    unit_rows: list | None = None
    location: object = None
    #: Parquet: the footer (each column chunk's decoded size), and ``read_columns(unit, columns)``,
    #: a table of those file columns over the whole unit (:mod:`fastxent.run.wide` reads row
    #: groups too wide to decode row by row a few columns at a time).
    metadata: object | None = None
    read_columns: Callable[[int, list[str]], pa.Table] | None = None
    #: Parquet: which reader read each column chunk (:class:`~fastxent.io.pages.rowgroup.ReadLog`).
    reads: object = None
    #: Parquet: ``read`` takes ``as_floats``, integer label columns it may give as float32 (the
    #: page reader does, :func:`~fastxent.io.pages.layout.as_float`).
    float_labels: bool = False
    #: Parquet: the file as the page reader opens it (:class:`~fastxent.io.sources.PageFile`),
    #: for the run that scores binary logits straight from their pages (:mod:`fastxent.run.fused`).
    pages: object = None

    def __reduce__(self):
        if self.location is None:
            raise TypeError(f"{self.name} is data in memory, not a file: its part cannot be pickled.")
        return _reopen, (self.location, self.partition)

    def full_schema(self) -> pa.Schema:
        """The file's schema, ``string_view`` columns as ``large_string`` (as :meth:`batches` gives
        them, see :func:`~fastxent.io.labels.plain_label_type`), plus the partition columns."""
        schema = self.schema
        for index, column in enumerate(schema):  # by position: two columns may share a name
            plain = plain_label_type(column.type)
            if plain is not column.type:
                schema = schema.set(index, column.with_type(plain))
        for key, value in self.partition.items():
            if key not in schema.names:
                schema = schema.append(pa.field(key, value.type))
        return schema

    def batches(self, columns: list[str], batch_rows: int, units: list | None = None, as_floats=frozenset()):
        """``(unit, batch)`` pairs, batches with ``columns`` in that order and at most
        ``batch_rows`` rows, for the given units (default: all). ``as_floats``: integer label
        columns the part may give as float32 (:attr:`float_labels`), batch by batch."""
        names = set(self.schema.names)  # a set: 10,000 class columns made a list's lookups cost 5 s
        file_columns = [c for c in columns if c in names]
        casts = self._label_casts(file_columns)
        floats = {"as_floats": frozenset(as_floats)} if as_floats and self.float_labels else {}
        for unit, batch in self.read(file_columns, batch_rows, units, **floats):
            # whole decoded batches are rearranged once, then sliced: rebuilding every slice
            # column by column cost 1.6 ms a batch on 100-column files
            if len(file_columns) == len(columns):
                batch = batch.select(columns)
            else:
                batch = self._with_partition(batch, columns)
            for name, typ in casts.items():
                index = batch.schema.get_field_index(name)
                batch = batch.set_column(index, name, batch.column(index).cast(typ))
            for start in range(0, batch.num_rows, batch_rows):
                yield unit, batch.slice(start, batch_rows)

    def peek(self, column: str) -> pa.RecordBatch | None:
        """The first batch of ``column`` holding a non-null value (``None`` if there is none)."""
        for _, batch in self.batches([column], PEEK_ROWS):
            if batch.column(0).null_count < batch.num_rows:
                return batch
        return None

    def distinct(self, column: str, wanted: int) -> set:
        """The distinct non-null class names of ``column``.

        A re-readable part reads the whole column whatever ``wanted`` is, so that a target with
        more names than the predictions have classes is reported before anything is scored.
        """
        seen: set = set()
        for _, batch in self.batches([column], DISTINCT_ROWS):
            seen |= label_set(batch.column(0))
        return seen

    def _label_casts(self, names: list[str]) -> dict:
        """``{name: type}`` of the columns among ``names`` that :meth:`batches` casts."""
        casts = {}
        for name in names:
            typ = self.schema.field(name).type
            plain = plain_label_type(typ)
            if plain is not typ:
                casts[name] = plain
        return casts

    def _with_partition(self, batch: pa.RecordBatch, columns: list[str]) -> pa.RecordBatch:
        """``batch`` with ``columns`` in order, the ones the file lacks filled from the partition."""
        arrays, read = [], set(batch.schema.names)
        for name in columns:
            if name in read:
                arrays.append(batch.column(name))
            else:
                arrays.append(pa.repeat(self.partition[name], batch.num_rows))
        return pa.RecordBatch.from_arrays(arrays, names=columns)


def _reopen(location, partition: dict) -> Part:
    """The part of the file at ``location``, opened again (a part unpickled)."""
    from .sources import file_part  # sources builds on this module: imported when first needed

    return file_part(location, partition)


def first_batch(parts: list[Part], column: str) -> pa.RecordBatch | None:
    """The first batch of ``column`` holding a non-null value, over all ``parts`` in order."""
    for part in parts:
        batch = part.peek(column)
        if batch is not None:
            return batch
    return None


def class_names(parts: list[Part], column: str, wanted: int) -> list:
    """Sorted distinct class names of a string target over all ``parts`` (see
    :meth:`Part.distinct` for ``wanted``)."""
    seen: set = set()
    for part in parts:
        seen |= part.distinct(column, wanted)
    return sorted(seen)
