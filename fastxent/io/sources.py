"""Where prediction batches come from: files (Parquet, Arrow IPC, CSV), directories, globs, lists,
and in-memory Arrow data.

A source becomes a list of :class:`Part` objects, read one after the other. Each part reads only
the columns asked for, batch by batch, so memory stays bounded by a few batches:

- Parquet: two row groups are decoded at once, in threads (:mod:`.prefetch`), each batch by batch
  (``iter_batches`` with a read buffer, ``pre_buffer=False``: pages are read as they are decoded,
  so a huge row group never sits in memory whole). pyarrow's decoder releases the GIL, so
  decoding overlaps the loss kernel.
- Arrow IPC / Feather v2: memory-mapped, batches are zero-copy views of the file, each checked
  before use (:mod:`.integrity`: the format has no checksums).
- CSV: pyarrow's streaming reader.
- A directory is a dataset: every Parquet/IPC/CSV file under it, in path order; ``key=value``
  directory names (hive partitions) become constant columns usable in ``group_by``.
- In-memory Arrow data and single-use streams: :mod:`.memory`.
"""

from __future__ import annotations

import glob as globbing
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from ..errors import InputValueError
from .integrity import check_batch
from .memory import memory_parts
from .part import Part
from .paths import check_utf8_name, special_kind
from .prefetch import ordered_prefetch

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
IPC_SUFFIXES = (".arrow", ".feather", ".ipc", ".arrows")
TSV_SUFFIXES = (".tsv", ".tsv.gz", ".tab")
CSV_SUFFIXES = (".csv", ".csv.gz", *TSV_SUFFIXES)

#: Row groups decoded at once, each at most PARQUET_AHEAD_BYTES ahead of the consumer.
PARQUET_WORKERS = 2
#: Read buffers of the Parquet decoder, all columns together: pages are read as they are decoded,
#: not a column chunk at a time.
PARQUET_BUFFER_BYTES = 8 << 20
#: Decoded bytes per column of an ``iter_batches`` batch, at least (the caller's batches are
#: sliced out of it): each decoded batch costs a fixed overhead per column. 100 float columns
#: decoded in 0.73 s in 128 KiB column batches against 0.8-0.9 s in 64-80 KiB ones; 256 KiB was
#: 5-10% faster still but took the peak RSS of scoring the file from 500 to 570-600 MB.
PARQUET_DECODE_COLUMN_BYTES = 128 << 10
#: Decoded bytes each row-group worker may hold ready ahead of the consumer (at least one batch).
PARQUET_AHEAD_BYTES = 16 << 20


def _file_error(path: str, what: str, err: Exception) -> InputValueError:
    return InputValueError(f"'{path}' is not a readable {what} file (truncated or corrupt?): {err}")


def _format_of(path: str) -> str:
    lower = path.lower()
    if lower.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if lower.endswith(IPC_SUFFIXES):
        return "ipc"
    if lower.endswith(CSV_SUFFIXES):
        return "csv"
    with open(path, "rb") as f:  # unknown suffix: sniff the magic bytes
        head = f.read(6)
    if head[:4] == b"PAR1":
        return "parquet"
    if head == b"ARROW1" or head[:4] == b"\xff\xff\xff\xff":
        return "ipc"
    return "csv"


def _parquet_part(path: str) -> Part:
    try:
        with pq.ParquetFile(path, pre_buffer=False) as footer:
            meta = footer.metadata
        schema = meta.schema.to_arrow_schema()
    except (pa.ArrowException, OSError, UnicodeDecodeError) as err:  # a damaged name: not UTF-8
        raise _file_error(path, "Parquet", err) from None

    def read(columns, batch_rows, units):
        # one read buffer per column chunk: share the budget so wide files stay bounded too
        buffer_size = max(1 << 16, PARQUET_BUFFER_BYTES // max(1, len(columns)))
        row_bytes = _decoded_row_bytes(meta, columns)
        # a whole number of the caller's batches, so slicing leaves no stub batches behind
        column_rows = PARQUET_DECODE_COLUMN_BYTES * len(columns) // row_bytes
        decode_rows = max(1, column_rows // batch_rows) * batch_rows
        ahead = max(1, PARQUET_AHEAD_BYTES // (decode_rows * row_bytes))

        def row_group(index):
            def batches():
                # one reader per row group (a ParquetFile is not safe to share between threads),
                # opened on the footer parsed once: parsing it for every row group made files
                # of many small row groups quadratic (6,000 row groups: 97 s, now linear)
                reader = pq.ParquetFile(
                    path,
                    metadata=meta,
                    pre_buffer=False,
                    buffer_size=buffer_size,
                    page_checksum_verification=True,
                )
                try:
                    for batch in reader.iter_batches(
                        batch_size=decode_rows, row_groups=[index], columns=columns, use_threads=False
                    ):
                        yield index, batch
                except (pa.ArrowException, OSError) as err:
                    raise _file_error(path, "Parquet", err) from None
                finally:
                    reader.close()

            return batches

        wanted = range(meta.num_row_groups) if units is None else units
        yield from ordered_prefetch([row_group(i) for i in wanted], PARQUET_WORKERS, ahead)

    groups = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    return Part(path, schema, meta.num_rows, os.path.getsize(path), read, unit_rows=groups)


def _decoded_row_bytes(meta: pq.FileMetaData, columns: list[str]) -> int:
    """Uncompressed bytes per row of ``columns``, from the first row group's metadata."""
    if not meta.num_row_groups or not meta.row_group(0).num_rows:
        return 1
    group = meta.row_group(0)
    wanted = set(columns)
    nbytes = sum(
        group.column(i).total_uncompressed_size
        for i in range(group.num_columns)
        if group.column(i).path_in_schema.split(".")[0] in wanted
    )
    return max(1, nbytes // group.num_rows)


def _ipc_part(path: str) -> Part:
    try:
        source = pa.memory_map(path, "r")
        try:
            reader = ipc.open_file(source)
            count = reader.num_record_batches
            batches = [reader.get_batch(i) for i in range(count)]
        except pa.ArrowInvalid:
            source.seek(0)
            batches = list(ipc.open_stream(source))
            reader = None
        schema = reader.schema if reader is not None else (batches[0].schema if batches else None)
    except (pa.ArrowException, OSError) as err:
        raise _file_error(path, "Arrow IPC", err) from None
    if schema is None:
        raise InputValueError(f"'{path}' holds no record batches.")

    def read(columns, batch_rows, units):
        for index in range(len(batches)) if units is None else units:
            batch = batches[index].select(columns)  # views of the memory map: no copy
            check_batch(batch, f"record batch {index} of '{path}'")  # IPC has no checksums
            yield index, batch

    sizes = [b.num_rows for b in batches]
    return Part(path, schema, sum(sizes), os.path.getsize(path), read, unit_rows=sizes)


def _csv_part(path: str) -> Part:
    # tab-separated files by their suffix; pyarrow decompresses ".gz" files itself
    parse = pacsv.ParseOptions(delimiter="\t" if path.lower().endswith(TSV_SUFFIXES) else ",")
    try:
        schema = pacsv.open_csv(path, parse_options=parse).schema
    except (pa.ArrowException, OSError) as err:
        raise _file_error(path, "CSV", err) from None

    def read(columns, batch_rows, units):
        if units is not None and list(units) != [0]:
            raise InputValueError(f"'{path}' is one unit (a CSV file); asked for units {units}.")
        try:
            reader = pacsv.open_csv(
                path, parse_options=parse, convert_options=pacsv.ConvertOptions(include_columns=columns)
            )
            for batch in reader:
                yield 0, batch
        except pa.ArrowException as err:
            raise _file_error(path, "CSV", err) from None

    return Part(path, schema, None, os.path.getsize(path), read)


_FILE_READERS = {"parquet": _parquet_part, "ipc": _ipc_part, "csv": _csv_part}


def file_part(path: str, partition: dict | None = None) -> Part:
    """The :class:`Part` of one file (format from the suffix, else from its first bytes)."""
    if not os.path.exists(path):
        raise InputValueError(f"'{path}' does not exist.")
    if os.path.isdir(path):
        raise InputValueError(f"'{path}' is a directory; pass it alone to read it as a dataset.")
    check_utf8_name(path)
    kind = special_kind(os.stat(path).st_mode)
    if kind:
        raise InputValueError(
            f"'{path}' is a {kind}, not a regular file: fastxent reads a file more than once "
            "(its footer, then its data); write the predictions to a file first."
        )
    if not os.access(path, os.R_OK):
        raise InputValueError(f"'{path}' is not readable (permission denied).")
    if os.path.getsize(path) == 0:
        raise InputValueError(f"'{path}' is empty (0 bytes).")
    part = _FILE_READERS[_format_of(path)](path)
    part.partition = partition or {}
    return part


def _partition_value(text: str):
    try:
        return int(text)
    except ValueError:
        return text


def _directory_parts(root: str) -> list[Part]:
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
        for name in sorted(filenames):
            lower = name.lower()
            if name.startswith((".", "_")) or not lower.endswith(
                PARQUET_SUFFIXES + IPC_SUFFIXES + CSV_SUFFIXES
            ):
                continue
            files.append(os.path.join(dirpath, name))
    if not files:
        raise InputValueError(f"directory '{root}' holds no Parquet, Arrow IPC or CSV files.")
    parts = []
    for path in sorted(files):
        keys = {}
        for segment in Path(os.path.relpath(path, root)).parts[:-1]:
            if "=" in segment:
                key, value = segment.split("=", 1)
                keys[key] = _partition_value(value)
        parts.append(file_part(path, keys))
    # a partition key whose values are not all integers is a string key everywhere
    for key in {k for p in parts for k in p.partition}:
        if not all(isinstance(p.partition.get(key), int) for p in parts):
            for p in parts:
                if key in p.partition:
                    p.partition[key] = str(p.partition[key])
    return parts


def _path_parts(source: str) -> list[Part]:
    if os.path.isdir(source):
        return _directory_parts(source)
    if any(ch in source for ch in "*?[") and not os.path.exists(source):
        matches = sorted(globbing.glob(source, recursive=True))
        if not matches:
            raise InputValueError(f"no file matches '{source}'.")
        return [file_part(p) for p in matches]
    return [file_part(source)]


def open_parts(source) -> list[Part]:
    """The :class:`Part` list of any supported source (see :func:`fastxent.score`)."""
    if isinstance(source, (str, os.PathLike)):
        return _path_parts(os.fspath(source))
    if isinstance(source, (list, tuple)):
        if not source:
            raise InputValueError("`source` is an empty list; pass at least one path.")
        return [p for item in source for p in _path_parts(os.fspath(item))]
    return memory_parts(source)
