"""Where prediction batches come from: files (Parquet, Arrow IPC, CSV), directories, globs, lists,
and in-memory Arrow data.

A source becomes a list of :class:`Part` objects, read one after the other. Each part reads only
the columns asked for, batch by batch, so memory stays bounded by a few batches:

- Parquet: two row groups are decoded at once, in threads (:mod:`.prefetch`), each batch by batch
  (``iter_batches`` with a read buffer, ``pre_buffer=False``: pages are read as they are decoded,
  so a huge row group never sits in memory whole). pyarrow's decoder releases the GIL, so
  decoding overlaps the loss kernel.
- Arrow IPC / Feather v2: one record batch at a time from a memory map (:mod:`.ipcfile`).
- CSV: pyarrow's streaming reader, compressed files decompressed as they are read. Values are
  read as their writers meant them: in a float column ``NaN``, ``nan``, ``inf``, ``-inf`` are
  values (a diverged model's NaN is scored as NaN, as torch does); only an empty unquoted field is
  null (in any column; a quoted empty field ``""`` is an empty string). Other markers (``NA``,
  ``NULL``, ``N/A``) are not nulls: a float column holding them is read as text.
- A directory is a dataset (:mod:`.directories`): every Parquet/IPC/CSV file under it, in path
  order, with its hive partition columns usable in ``group_by``; a Delta table is read through
  ``deltalake`` (:mod:`.tables`).
- In-memory Arrow data and single-use streams: :mod:`.memory`.

Files, directories and globs on an object store (``s3://``, ``gs://``, ``abfs://``, fsspec's
schemes; :mod:`.filesystems`) are read the same way, in the same units, through range reads: a
Parquet row group whose columns hold at most REMOTE_PREBUFFER_BYTES is fetched in a few large
coalesced requests, in parallel (``pre_buffer``); a larger one through read buffers of
REMOTE_BUFFER_BYTES, so memory stays bounded by the same few batches whatever the row group.

Which format a file is: :mod:`.formats`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from ..errors import InputValueError
from .directories import data_files, hive_partitions, matching_files, remote_data_files
from .failures import is_storage_error, storage_error
from .filesystems import Storage, storage_of
from .formats import input_format, is_tab_separated
from .ipcfile import ipc_part
from .locations import GLOB_CHARS, Location
from .memory import memory_parts
from .pages import reader_choice
from .pages.files import LocalFile, RangedFile
from .pages.layout import FEW_FLAT_COLUMNS, MANY_FLAT_COLUMNS, column_layouts, flat_column_count
from .pages.rowgroup import ReadLog, page_columns, row_group_batches
from .part import Part, check_read_whole, in_units
from .paths import check_utf8_name, special_kind
from .prefetch import ordered_prefetch
from .tables import table_format, table_parts

#: Row groups decoded at once, each at most PARQUET_AHEAD_BYTES ahead of the consumer.
PARQUET_WORKERS = 2
#: Read buffers of the Parquet decoder, all columns together: pages are read as they are decoded,
#: not a column chunk at a time.
PARQUET_BUFFER_BYTES = 8 << 20
#: Decoded bytes per column of an ``iter_batches`` batch (the caller's batches are sliced out of
#: it), up to PARQUET_DECODE_BYTES for all columns: each decoded batch costs a fixed overhead per
#: column. 100 float columns decoded in 0.73 s in 128 KiB column batches against 0.8-0.9 s in
#: 64-80 KiB ones; 256 KiB was 5-10% faster still but took the peak RSS of scoring the file from
#: 500 to 570-600 MB.
PARQUET_DECODE_COLUMN_BYTES = 128 << 10
#: Decoded bytes of an ``iter_batches`` batch, all columns together: 1,000 or 10,000 columns (one
#: per class) get smaller pieces each rather than a batch that grows with the column count. Peak
#: RSS scoring 100k rows x 1,000 float columns (one row group, plain pages): 1,415 MB with 128 KiB
#: a column, 719 MB with this at 32 MiB, 585 MB at 16 MiB, 532 MB at 8 MiB (a 290 MB baseline).
PARQUET_DECODE_BYTES = 16 << 20
#: The page reader's batches (:mod:`.pages`): its Python work is per column and batch, not per
#: page, so larger batches pay it less often (100 float columns, decode only, two threads:
#: 0.80 s with pyarrow's budgets, 0.54 s with these and two batches ahead; pyarrow 0.55-0.63 s).
PAGES_DECODE_COLUMN_BYTES = 1 << 20
PAGES_DECODE_BYTES = 64 << 20
#: Smallest read buffer per column chunk (pyarrow reads pages larger than its buffer directly).
PARQUET_MIN_BUFFER_BYTES = 4 << 10
#: Decoded bytes each row-group worker may hold ready ahead of the consumer (at least one batch).
PARQUET_AHEAD_BYTES = 16 << 20
#: A remote row group whose wanted column chunks hold at most this many (compressed) bytes is
#: fetched whole before decoding, in coalesced range requests issued in parallel: one request
#: per page would pay the network's latency thousands of times.
REMOTE_PREBUFFER_BYTES = 64 << 20
#: Read buffers of the Parquet decoder for a larger remote row group, all columns together: each
#: refill is one range request, so they are larger than on a local disk.
REMOTE_BUFFER_BYTES = 64 << 20
#: Read-ahead of a remote CSV or Arrow IPC stream: the size of each range request.
REMOTE_READ_BYTES = 8 << 20


def _file_error(location: Location, what: str, err: Exception) -> InputValueError:
    if location.remote and is_storage_error(err):  # the network or the credentials, not the file
        return storage_error(err, location)
    return InputValueError(f"'{location.name}' is not a readable {what} file (truncated or corrupt?): {err}")


def _chunk_bytes(meta: pq.FileMetaData, index: int, columns: list[str]) -> int:
    """Compressed bytes of ``columns`` in row group ``index``: what fetching them reads."""
    group, wanted = meta.row_group(index), set(columns)
    return sum(
        group.column(i).total_compressed_size
        for i in range(group.num_columns)
        if group.column(i).path_in_schema.split(".")[0] in wanted
    )


@dataclass(frozen=True)
class PageFile:
    """What the page reader (:mod:`.pages.rowgroup`) needs of a Parquet file: its name, size,
    footer and Arrow schema, and ``open()``, its range reads."""

    location: Location
    size: int
    meta: pq.FileMetaData
    schema: pa.Schema

    @property
    def name(self) -> str:
        return self.location.name

    def open(self) -> RangedFile | LocalFile:
        if self.location.remote or not hasattr(os, "preadv"):
            filesystem = self.location.filesystem if self.location.remote else pafs.LocalFileSystem()
            return RangedFile(filesystem, self.location.path)
        return LocalFile(self.location.path)


def _parquet_part(location: Location, nbytes: int) -> Part:
    path = location.path
    # a remote file through its filesystem; a local one opened by pyarrow itself, as always
    where = {"filesystem": location.filesystem} if location.remote else {}
    try:
        with pq.ParquetFile(path, pre_buffer=False, **where) as footer:
            meta = footer.metadata
        schema = meta.schema.to_arrow_schema()
    except (pa.ArrowException, OSError, UnicodeDecodeError) as err:  # a damaged name: not UTF-8
        raise _file_error(location, "Parquet", err) from None

    page_file = PageFile(location, nbytes, meta, schema)
    read_log = ReadLog()

    def read(columns, batch_rows, units, as_floats=frozenset()):
        # one read buffer per column chunk: share the budget so wide files stay bounded too
        budget = REMOTE_BUFFER_BYTES if location.remote else PARQUET_BUFFER_BYTES
        buffer_size = max(PARQUET_MIN_BUFFER_BYTES, budget // max(1, len(columns)))
        choice = reader_choice()
        flat_limit = FEW_FLAT_COLUMNS if location.remote else MANY_FLAT_COLUMNS  # see MANY_FLAT_COLUMNS
        layouts = (
            None
            if choice == "pyarrow"
            else column_layouts(meta, schema, columns, choice == "auto", flat_limit, as_floats)
        )
        paged = layouts is not None and any(not isinstance(v, str) for v in layouts.values())
        row_bytes = _decoded_row_bytes(meta, columns)
        decode_rows = _decode_rows(len(columns), row_bytes, batch_rows, paged)
        # two row groups decoding at once need room for a batch each
        ahead = max(2 if paged else 1, PARQUET_AHEAD_BYTES // (decode_rows * row_bytes))

        def open_reader(index, names):
            # one reader per row group (a ParquetFile is not safe to share between threads),
            # opened on the footer parsed once: parsing it for every row group made files of many
            # small row groups quadratic (6,000 row groups: 97 s, now linear)
            fetch = location.remote and _chunk_bytes(meta, index, names) <= REMOTE_PREBUFFER_BYTES
            return pq.ParquetFile(
                path,
                **where,
                metadata=meta,
                pre_buffer=fetch,
                buffer_size=buffer_size,
                page_checksum_verification=True,
                # string columns (class names, group keys) as the file's dictionary pages hold
                # them: codes into a small dictionary, not a string per row to hash again (a
                # 20M-row key column: ~0.3 s of hashing)
                read_dictionary=[c for c in names if _is_string(schema, c)],
            )

        def pyarrow_rows(index, names, skip=0):
            """pyarrow's batches of ``names`` in row group ``index``, from its row ``skip``."""
            reader = open_reader(index, names)
            try:
                for batch in reader.iter_batches(
                    batch_size=decode_rows, row_groups=[index], columns=names, use_threads=False
                ):
                    if skip >= batch.num_rows:
                        skip -= batch.num_rows
                        continue
                    _check_strings(batch)
                    yield batch.slice(skip)
                    skip = 0
            finally:
                reader.close()

        def row_group(index):
            def batches():
                chosen = page_columns(page_file, index, columns, layouts, read_log)
                try:
                    if chosen:
                        for batch in row_group_batches(
                            page_file,
                            index,
                            columns,
                            decode_rows,
                            chosen,
                            lambda names, skip: pyarrow_rows(index, names, skip),
                            lambda message: _file_error(location, "Parquet", ValueError(message)),
                            read_log,
                            PARQUET_WORKERS if one_at_a_time else 1,
                        ):
                            yield index, batch
                    else:
                        for batch in pyarrow_rows(index, columns):
                            yield index, batch
                except (pa.ArrowException, OSError) as err:
                    raise _file_error(location, "Parquet", err) from None

            return batches

        wanted = range(meta.num_row_groups) if units is None else units
        # many page-read flat columns: one row group at a time, its columns taken by two threads
        # (see FEW_FLAT_COLUMNS)
        one_at_a_time = flat_column_count(layouts) > FEW_FLAT_COLUMNS
        workers = 1 if one_at_a_time else PARQUET_WORKERS
        yield from ordered_prefetch([row_group(i) for i in wanted], workers, ahead)

    def read_columns(unit, columns):
        try:
            with pq.ParquetFile(path, **where, metadata=meta, page_checksum_verification=True) as reader:
                return reader.read_row_group(unit, columns=columns, use_threads=True)
        except (pa.ArrowException, OSError) as err:
            raise _file_error(location, "Parquet", err) from None

    groups = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    return Part(
        location.name,
        schema,
        meta.num_rows,
        nbytes,
        read,
        unit_rows=groups,
        metadata=meta,
        read_columns=read_columns,
        reads=read_log,
        float_labels=True,
        pages=page_file,
    )


def _decode_rows(columns: int, row_bytes: int, batch_rows: int, paged: bool) -> int:
    """Rows of a decoded batch: PARQUET_DECODE_COLUMN_BYTES a column, in a whole number of the
    caller's batches (slicing then leaves no stub batches behind), at most PARQUET_DECODE_BYTES in
    all (``paged``: the page reader's PAGES_DECODE_* budgets). A caller's batch larger than that
    (score's default grows with the column count; the GPU's is 128 MiB) is decoded in pieces of
    fewer rows."""
    column_bytes, total = (
        (PAGES_DECODE_COLUMN_BYTES, PAGES_DECODE_BYTES)
        if paged
        else (PARQUET_DECODE_COLUMN_BYTES, PARQUET_DECODE_BYTES)
    )
    rows = max(1, column_bytes * columns // row_bytes // batch_rows) * batch_rows
    limit = max(1, total // row_bytes)
    if rows <= limit:
        return rows
    return limit // batch_rows * batch_rows or limit


def _check_strings(batch: pa.RecordBatch) -> None:
    """Raise ``ArrowInvalid`` where a string column of ``batch`` holds bytes that are not UTF-8:
    pyarrow's Parquet reader does not check them (a damaged page), and a key or class name
    would fail later as Python's ``UnicodeDecodeError``. The page reader checks its own
    (:mod:`.pages.cursor`)."""
    for column in batch.columns:
        typ = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
        if pa.types.is_string(typ) or pa.types.is_large_string(typ):
            column.validate(full=True)


def _is_string(schema: pa.Schema, name: str) -> bool:
    index = schema.get_field_index(name)  # -1: absent, or a name given twice
    return index >= 0 and pa.types.is_string(schema.field(index).type)


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


#: Only an empty unquoted field is null: pyarrow's default markers (NaN, nan, -nan, NA, N/A, ...)
#: would hide a diverged model's NaN as a missing value.
CSV_NULLS = {"null_values": [""], "strings_can_be_null": True, "quoted_strings_can_be_null": False}


def _csv_source(location: Location):
    """What ``open_csv`` reads: a local path (pyarrow decompresses by its suffix), or a remote
    stream, decompressed by its suffix too, read ahead REMOTE_READ_BYTES at a time."""
    if not location.remote:
        return location.path
    return location.filesystem.open_input_stream(location.path, buffer_size=REMOTE_READ_BYTES)


def _csv_part(location: Location, nbytes: int) -> Part:
    name = location.name
    # tab-separated files by their suffix; pyarrow decompresses .gz, .bz2, .zst and .lz4 files
    parse = pacsv.ParseOptions(delimiter="\t" if is_tab_separated(location.path) else ",")
    try:
        convert = pacsv.ConvertOptions(**CSV_NULLS)
        schema = pacsv.open_csv(_csv_source(location), parse_options=parse, convert_options=convert).schema
    except (pa.ArrowException, OSError) as err:
        raise _file_error(location, "CSV", err) from None

    def read(columns, batch_rows, units):
        check_read_whole(name, "a CSV file", units)
        try:
            convert = pacsv.ConvertOptions(include_columns=columns, **CSV_NULLS)
            reader = pacsv.open_csv(_csv_source(location), parse_options=parse, convert_options=convert)
            yield from in_units(reader)
        except (pa.ArrowException, OSError) as err:
            raise _file_error(location, "CSV", err) from None

    return Part(name, schema, None, nbytes, read)


_FILE_READERS = {"parquet": _parquet_part, "ipc": ipc_part, "csv": _csv_part}


def _local_size(path: str) -> int:
    """The size of a local input file, after checking that it is one fastxent can read."""
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
    return os.path.getsize(path)


def file_part(source: str | Location, partition: dict | None = None) -> Part:
    """The :class:`Part` of one file, a local path or a :class:`~.filesystems.Location` (format
    from the suffix, else from its first bytes), with the ``partition`` columns of a directory
    (``{name: pa.Scalar}``). The part pickles as the location and the partition."""
    location = source if isinstance(source, Location) else Location(os.fspath(source))
    nbytes = location.file_size() if location.remote else _local_size(location.path)
    if nbytes == 0:
        raise InputValueError(f"'{location.name}' is empty (0 bytes).")
    fmt = input_format(location.path, location.head if location.remote else None)
    part = _FILE_READERS[fmt](location, nbytes)
    part.partition = partition or {}
    part.location = location
    return part


def _directory_parts(root: Location) -> list[Part]:
    if root.remote:
        files = remote_data_files(root)
    else:
        fmt = table_format(root.path)
        if fmt is not None:
            return table_parts(root.path, fmt)
        files = [Location(path) for path in data_files(root.path)]
    partitions = hive_partitions(root.path, [f.path for f in files])
    return [file_part(f, keys) for f, keys in zip(files, partitions, strict=True)]


def _path_parts(source, storage: Storage) -> list[Part]:
    location = storage.locate(source)
    if location.is_directory():
        return _directory_parts(location)
    if any(ch in location.path for ch in GLOB_CHARS) and not location.exists():
        matches = matching_files(location)
        if not matches:
            raise InputValueError(f"no file matches '{location.name}'.")
        return [file_part(p) for p in matches]
    return [file_part(location)]


def open_parts(source, storage: Storage | None = None) -> list[Part]:
    """The :class:`Part` list of any supported source (see :func:`fastxent.score`); paths and
    URIs are read as ``storage`` says (:class:`~.filesystems.Storage`; default: local paths,
    URIs configured by the environment)."""
    storage = storage_of(storage)
    if isinstance(source, (str, os.PathLike)):
        return _path_parts(source, storage)
    if isinstance(source, (list, tuple)):
        if not source:
            raise InputValueError("`source` is an empty list; pass at least one path.")
        return [p for item in source for p in _path_parts(item, storage)]
    return memory_parts(source)
