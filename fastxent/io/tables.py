"""Table-format directories: Delta Lake, Apache Iceberg, Apache Hudi.

Such a directory holds the files of every version of its table: an overwrite or a delete only
records in the table's log that files left the table. Reading its files as a plain directory
counts removed rows too, so a table directory is never read that way. A Delta table is read
through ``deltalake`` when that is installed: as the Parquet files of its live snapshot with their
partition values (so that Dask splits it into tasks), or through its pyarrow dataset where the
files need the log's column mapping or casts. Any other table format, or Delta without
``deltalake``, is refused with one line that names the format.
"""

from __future__ import annotations

import os

import pyarrow as pa

from ..errors import InputValueError
from .part import Part, check_read_whole, in_units

#: Batches the Delta scanner decodes ahead of the consumer (pyarrow's default, 16, holds more
#: than the few batches the other readers keep).
DELTA_BATCH_READAHEAD = 2

_NAMES = {"delta": "Delta Lake table", "iceberg": "Apache Iceberg table", "hudi": "Apache Hudi table"}
_MARKS = {"delta": "_delta_log/", "iceberg": "metadata/", "hudi": ".hoodie/"}


def table_format(directory: str) -> str | None:
    """ "delta", "iceberg" or "hudi" if ``directory`` is the root of such a table, else ``None``."""
    if os.path.isdir(os.path.join(directory, "_delta_log")):
        return "delta"
    if os.path.isdir(os.path.join(directory, ".hoodie")):
        return "hudi"
    metadata = os.path.join(directory, "metadata")
    if os.path.isdir(metadata):  # a plain directory may be called "metadata": look for Iceberg's files
        names = os.listdir(metadata)
        if "version-hint.text" in names or any(n.endswith(".metadata.json") for n in names):
            return "iceberg"
    return None


def describe(directory: str, fmt: str) -> str:
    """ "'DIR' is a Delta Lake table (_delta_log/)", for messages."""
    return f"'{directory}' is a{'n' if fmt != 'delta' else ''} {_NAMES[fmt]} ({_MARKS[fmt]})"


def table_parts(directory: str, fmt: str) -> list[Part]:
    """The parts of the table at ``directory`` in format ``fmt`` (see :func:`table_format`)."""
    if fmt != "delta":
        reader = {
            "iceberg": "pyiceberg's table.scan().to_arrow_batch_reader()",
            "hudi": "Spark or hudi-rs",
        }[fmt]
        raise InputValueError(
            f"{describe(directory, fmt)}: its files include replaced and deleted ones, and fastxent "
            f"does not read this format; read its current snapshot with {reader} and pass that "
            "(fx.score takes a RecordBatchReader), or export it to Parquet."
        )
    try:
        from deltalake import DeltaTable
        from deltalake.exceptions import DeltaError
    except ImportError:
        raise InputValueError(
            f"{describe(directory, fmt)}: its files include removed ones, which only its log tells "
            "apart; install deltalake (pip install deltalake) to read its current version."
        ) from None
    try:
        table = DeltaTable(directory)
        dataset = table.to_pyarrow_dataset()
        partition_columns = table.metadata().partition_columns
    except (DeltaError, OSError, pa.ArrowException) as err:
        raise InputValueError(f"{describe(directory, fmt)} that deltalake cannot read: {err}") from None
    files = _live_files(directory, dataset, partition_columns)
    if files is None:
        return [_dataset_part(directory, dataset)]
    from .sources import file_part  # sources imports this module for directories

    return [file_part(path, partition) for path, partition in files]


def _live_files(directory: str, dataset, partition_columns: list[str]) -> list | None:
    """``(path, partition)`` of each file of the live snapshot, in the table's order, when its
    files can be read as they are: each holds every other column of the table's schema, of the
    same type (no column mapping, no added or retyped column), under its local path. Then the
    table is scored as those Parquet files, by row groups (and split into tasks on Dask);
    otherwise ``None``, and the table is read through its dataset, which maps and casts.
    ``partition`` maps each partition column to its typed value (null included)."""
    import pyarrow.dataset as pads

    schema = dataset.schema
    stored = [f for f in schema if f.name not in partition_columns]
    files = []
    for fragment in dataset.get_fragments():
        path = os.path.join(directory, fragment.path)
        physical = fragment.physical_schema
        if not os.path.isfile(path) or any(
            physical.get_field_index(f.name) < 0 or physical.field(f.name).type != f.type for f in stored
        ):
            return None
        keys = pads.get_partition_keys(fragment.partition_expression)
        partition = {name: pa.scalar(keys.get(name), schema.field(name).type) for name in partition_columns}
        files.append((path, partition))
    return files


def _dataset_part(name: str, dataset) -> Part:
    """One part reading a pyarrow dataset in order, a few batches ahead, as one piece (the
    table's files are the log's business, not units anyone may read alone), in units of
    :data:`~.part.UNIT_ROWS` rows."""

    def read(columns, batch_rows, units):
        check_read_whole(name, "a table", units)
        scanner = dataset.scanner(
            columns=columns,
            batch_size=batch_rows,
            batch_readahead=DELTA_BATCH_READAHEAD,
            fragment_readahead=1,
        )
        try:
            yield from in_units(scanner.to_batches())
        except (OSError, pa.ArrowException) as err:
            raise InputValueError(f"'{name}' (a Delta Lake table) cannot be read: {err}") from None

    return Part(name, dataset.schema, None, None, read)
