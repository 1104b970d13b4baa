"""Arrow IPC files (the file format, Feather v2; and the stream format), read one record batch at a
time: opening a file decodes nothing.

An uncompressed file is memory-mapped: its batches are zero-copy views of the map, whose pages
are handed back once a batch has been read past (:class:`_Map`). A compressed one (zstd, lz4) is
read with plain reads, each batch decompressed when it is read, only the columns asked for.
Mapped pages stay resident, counted in the process's RSS, until unmapped: a file read whole
through a map peaked at its own size (2.4M rows x 100 classes: 1,390 MB plain, 1,370 MB zstd).
The batches' row counts, and whether the bodies are compressed, come from each message's header
(:func:`record_batches`), read without touching the bodies. Every batch is checked before use
(:mod:`.integrity`: the format has no checksums).

Units: each record batch of the file format (which has an index of them, so any batch can be read
alone); the whole file in the stream format (to reach a batch, every batch before it must be
decoded, so a stream is read from its start, once).

A remote file (:mod:`.filesystems`) is read with range reads, only the columns asked for: the
batches' row counts come from the footer's index and each batch's header (small reads, issued
REMOTE_HEADER_READS at a time), never from the bodies; a remote stream is read once, from its start,
its rows left uncounted (counting them would download it whole).
"""

from __future__ import annotations

import mmap
import struct
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.ipc as ipc

from ..errors import InputValueError
from .failures import is_storage_error, storage_error
from .integrity import check_batch
from .locations import Location
from .part import Part, check_read_whole, in_units

#: Record batch headers read at once from a remote file (each read waits for the network).
REMOTE_HEADER_READS = 16
#: Read-ahead of a remote IPC stream: the size of each range request.
REMOTE_STREAM_BYTES = 8 << 20
#: The file format's end: the footer's length (int32), then "ARROW1".
FILE_TAIL_BYTES = 10

#: Bytes before the first message of the file format: "ARROW1" and two bytes of padding.
FILE_MAGIC_BYTES = 8


def _flatbuffer_field(data: memoryview, table: int, index: int) -> int | None:
    """Position of field ``index`` of the flatbuffer table at ``table``, ``None`` if absent."""
    vtable = table - struct.unpack_from("<i", data, table)[0]
    vtable_bytes = struct.unpack_from("<H", data, vtable)[0]
    if 4 + 2 * index >= vtable_bytes:
        return None
    offset = struct.unpack_from("<H", data, vtable + 4 + 2 * index)[0]
    return table + offset if offset else None


def _message_header(metadata: pa.Buffer) -> tuple[int, bool]:
    """``(rows, compressed)`` of a record batch message, from its flatbuffer header (Message.fbs:
    ``Message.header`` is field 2, after the union's type; ``RecordBatch.length`` is field 0 and
    ``RecordBatch.compression`` field 3)."""
    data = memoryview(metadata)
    root = struct.unpack_from("<I", data, 0)[0]
    header = _flatbuffer_field(data, root, 2)
    if header is None:
        raise ValueError("a record batch message without a header")
    batch = header + struct.unpack_from("<I", data, header)[0]
    length = _flatbuffer_field(data, batch, 0)
    rows = 0 if length is None else struct.unpack_from("<q", data, length)[0]
    return rows, _flatbuffer_field(data, batch, 3) is not None


def record_batches(source: pa.NativeFile, start: int, count: int | None = None) -> tuple[list[int], bool]:
    """Row counts of the record batches of the IPC stream at byte ``start`` of ``source`` (a
    memory map: message bodies are views, never decompressed), and whether any is compressed.

    ``count``: the number of record batches the file format's footer lists. Reading stops there,
    since some writers (Polars) put no end-of-stream marker before the footer."""
    source.seek(start)
    messages = ipc.MessageReader.open_stream(source)
    rows, compressed = [], False
    while count is None or len(rows) < count:
        try:
            message = messages.read_next_message()
        except StopIteration:
            break
        if message.type == "record batch":
            batch_rows, packed = _message_header(message.metadata)
            rows.append(batch_rows)
            compressed |= packed
    return rows, compressed


class _Map:
    """A read-only memory map of a file, as a pyarrow source (:attr:`source`), that drops from the
    process the pages of the batches read past (:meth:`release`)."""

    def __init__(self, path: str):
        with open(path, "rb") as f:
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        buffer = pa.py_buffer(self._map)
        self.source = pa.BufferReader(buffer)
        self._base, self._end = buffer.address, buffer.address + buffer.size

    def release(self, batch: pa.RecordBatch) -> None:
        """Drop the pages under ``batch``'s buffers from this process. They stay in the page
        cache, and an array still in use maps them again when read: only RSS changes."""
        spans = [
            (b.address, b.address + b.size)
            for column in batch.columns
            for b in column.buffers()
            if b is not None and self._base <= b.address < self._end
        ]
        if not spans:
            return
        start = (min(s for s, _ in spans) - self._base) // mmap.PAGESIZE * mmap.PAGESIZE
        end = max(e for _, e in spans) - self._base
        self._map.madvise(mmap.MADV_DONTNEED, start, end - start)


def _error(path: str, err: Exception, location: Location | None = None) -> InputValueError:
    if location is not None and is_storage_error(err):  # the network or the credentials
        return storage_error(err, location)
    return InputValueError(f"'{path}' is not a readable Arrow IPC file (truncated or corrupt?): {err}")


def _fields(schema: pa.Schema, columns: list[str]) -> list[int]:
    """Indices of the fields holding ``columns`` (at least one field: a batch of none has no rows)."""
    indices = sorted({i for name in columns for i in schema.get_all_field_indices(name)})
    return indices or [0]


def _counted_from_footer(reader: ipc.RecordBatchFileReader) -> tuple[list[int], bool]:
    """Row counts of a file's record batches read through its footer, one batch held at a time
    (a compressed batch is decompressed to be counted: such files cost that at open)."""
    return [reader.get_batch(i).num_rows for i in range(reader.num_record_batches)], True


def ipc_part(location: Location, nbytes: int) -> Part:
    """The :class:`Part` of an Arrow IPC file, in the file or the stream format, of ``nbytes``."""
    if location.remote:
        return _remote_part(location, nbytes)
    path = location.path
    try:
        with pa.memory_map(path, "r") as source:
            try:
                reader = ipc.open_file(source)
                schema, count, start = reader.schema, reader.num_record_batches, FILE_MAGIC_BYTES
            except pa.ArrowInvalid:  # no footer: the stream format
                source.seek(0)
                schema, count, start = ipc.open_stream(source).schema, None, 0
            try:
                sizes, compressed = record_batches(source, start, count)
            except (pa.ArrowException, OSError, ValueError, struct.error):
                if count is None:
                    raise
                # a file whose body does not begin with the schema message (Polars writes the
                # schema in the footer only): the footer's batches, one at a time
                sizes, compressed = _counted_from_footer(reader)
    except (pa.ArrowException, OSError, ValueError, struct.error) as err:
        raise _error(path, err) from None
    if count is not None and count != len(sizes):
        raise _error(path, ValueError(f"its index lists {count} record batches, its body holds {len(sizes)}"))
    if not sizes:
        raise InputValueError(f"'{path}' holds no record batches.")
    stream = count is None

    def read(columns, batch_rows, units):
        # only the columns asked for are decompressed; but asked for, pyarrow copies uncompressed
        # buffers instead of handing out views of the map
        fields = _fields(schema, columns) if compressed else None
        options = ipc.IpcReadOptions(included_fields=fields)
        try:
            mapped = None if compressed else _Map(path)
            source = pa.OSFile(path) if compressed else mapped.source
            release = None if mapped is None else mapped.release
            if stream:
                check_read_whole(path, "an IPC stream", units)
                numbered = enumerate(ipc.open_stream(source, options=options))
                # read as one piece: units of UNIT_ROWS rows
                yield from in_units(batch for _, batch in _checked(numbered, columns, path, release))
            else:
                reader = ipc.open_file(source, options=options)
                wanted = range(count) if units is None else units
                numbered = ((i, reader.get_batch(i)) for i in wanted)  # one batch decoded at a time
                yield from _checked(numbered, columns, path, release)
        except (pa.ArrowException, OSError) as err:
            raise _error(path, err) from None

    return Part(path, schema, sum(sizes), nbytes, read, unit_rows=None if stream else sizes)


def _checked(numbered, columns: list[str], name: str, release=None):
    """``(index, batch)`` of the numbered record batches of ``name``, ``columns`` selected, each
    checked (:func:`~.integrity.check_batch`: IPC has no checksums); ``release(batch)`` once the
    caller asks for the next (it is done with it)."""
    for index, batch in numbered:
        batch = batch.select(columns)
        check_batch(batch, f"record batch {index} of '{name}'")
        yield index, batch
        if release is not None:
            release(batch)


def _footer_blocks(source: pa.NativeFile, size: int) -> list[tuple[int, int]] | None:
    """``(offset, metadata length)`` of each record batch of an IPC file, from its footer
    (File.fbs: ``Footer.recordBatches`` is field 3, a vector of 24-byte ``Block`` structs:
    offset int64, metaDataLength int32, padding, bodyLength int64); ``None`` for the stream
    format, which has no footer."""
    if size < FILE_MAGIC_BYTES + FILE_TAIL_BYTES:
        return None
    tail = source.read_at(FILE_TAIL_BYTES, size - FILE_TAIL_BYTES)
    if tail[4:] != b"ARROW1":
        return None
    length = struct.unpack_from("<i", tail, 0)[0]
    footer = memoryview(source.read_at(length, size - FILE_TAIL_BYTES - length))
    root = struct.unpack_from("<I", footer, 0)[0]
    field = _flatbuffer_field(footer, root, 3)
    if field is None:
        return []
    vector = field + struct.unpack_from("<I", footer, field)[0]
    count = struct.unpack_from("<I", footer, vector)[0]
    return [struct.unpack_from("<qi", footer, vector + 4 + 24 * i) for i in range(count)]


def _block_rows(source: pa.NativeFile, block: tuple[int, int]) -> int:
    """Rows of the record batch at ``block``, from its header alone (the body is not read)."""
    offset, length = block
    data = source.read_at(length, offset)
    # a message starts with 0xFFFFFFFF and its length, or (before format 0.15) its length only
    start = 8 if data[:4] == b"\xff\xff\xff\xff" else 4
    return _message_header(pa.py_buffer(data[start:]))[0]


def _remote_part(location: Location, nbytes: int) -> Part:
    """An IPC file on a remote filesystem: range reads of the batches and columns asked for."""
    name, fs = location.name, location.filesystem
    try:
        with fs.open_input_file(location.path) as source:
            blocks = _footer_blocks(source, nbytes)
            if blocks is None:
                schema, sizes = ipc.open_stream(source).schema, None
            else:
                schema = ipc.open_file(source).schema
                with ThreadPoolExecutor(REMOTE_HEADER_READS) as pool:
                    sizes = list(pool.map(lambda block: _block_rows(source, block), blocks))
    except (pa.ArrowException, OSError, ValueError, struct.error) as err:
        raise _error(name, err, location) from None
    if sizes == []:
        raise InputValueError(f"'{name}' holds no record batches.")
    stream = sizes is None

    def read(columns, batch_rows, units):
        options = ipc.IpcReadOptions(included_fields=_fields(schema, columns))
        try:
            if stream:
                check_read_whole(name, "an IPC stream", units)
                with fs.open_input_stream(location.path, buffer_size=REMOTE_STREAM_BYTES) as source:
                    numbered = enumerate(ipc.open_stream(source, options=options))
                    yield from in_units(batch for _, batch in _checked(numbered, columns, name))
                return
            with fs.open_input_file(location.path) as source:
                reader = ipc.open_file(source, options=options)
                wanted = range(len(sizes)) if units is None else units
                yield from _checked(((i, reader.get_batch(i)) for i in wanted), columns, name)
        except (pa.ArrowException, OSError) as err:
            raise _error(name, err, location) from None

    rows = None if stream else sum(sizes)
    return Part(name, schema, rows, nbytes, read, unit_rows=sizes)
