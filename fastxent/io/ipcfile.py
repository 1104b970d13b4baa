"""Arrow IPC files (the file format, Feather v2; and the stream format), read one record batch at a
time from a memory map.

An uncompressed batch is a zero-copy view of the map; a compressed one (zstd, lz4) is decompressed
when it is read, and only the columns asked for (``included_fields``): opening the file decodes
nothing. Its batches' row counts come from each message's header (:func:`record_batch_rows`), read
without touching the bodies. Every batch is checked before use (:mod:`.integrity`: the format has
no checksums).

Units: each record batch of the file format (which has an index of them, so any batch can be read
alone); the whole file in the stream format (to reach a batch, every batch before it must be
decoded, so a stream is read from its start, once).
"""

from __future__ import annotations

import os
import struct

import pyarrow as pa
import pyarrow.ipc as ipc

from ..errors import InputValueError
from .integrity import check_batch
from .part import Part

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


def _message_rows(metadata: pa.Buffer) -> int:
    """The row count of a record batch message, from its flatbuffer header (Message.fbs:
    ``Message.header`` is field 2, after the union's type; ``RecordBatch.length`` field 0)."""
    data = memoryview(metadata)
    root = struct.unpack_from("<I", data, 0)[0]
    header = _flatbuffer_field(data, root, 2)
    if header is None:
        raise ValueError("a record batch message without a header")
    batch = header + struct.unpack_from("<I", data, header)[0]
    length = _flatbuffer_field(data, batch, 0)
    return 0 if length is None else struct.unpack_from("<q", data, length)[0]


def record_batch_rows(source: pa.NativeFile, start: int) -> list[int]:
    """Row counts of the record batches of the IPC stream at byte ``start`` of ``source`` (a
    memory map: message bodies are views, never decompressed)."""
    source.seek(start)
    messages = ipc.MessageReader.open_stream(source)
    rows = []
    while True:
        try:
            message = messages.read_next_message()
        except StopIteration:
            return rows
        if message.type == "record batch":
            rows.append(_message_rows(message.metadata))


def _error(path: str, err: Exception) -> InputValueError:
    return InputValueError(f"'{path}' is not a readable Arrow IPC file (truncated or corrupt?): {err}")


def _fields(schema: pa.Schema, columns: list[str]) -> list[int]:
    """Indices of the fields holding ``columns`` (at least one field: a batch of none has no rows)."""
    indices = sorted({i for name in columns for i in schema.get_all_field_indices(name)})
    return indices or [0]


def ipc_part(path: str) -> Part:
    """The :class:`Part` of an Arrow IPC file, in the file or the stream format."""
    try:
        with pa.memory_map(path, "r") as source:
            try:
                reader = ipc.open_file(source)
                schema, count, start = reader.schema, reader.num_record_batches, FILE_MAGIC_BYTES
            except pa.ArrowInvalid:  # no footer: the stream format
                source.seek(0)
                schema, count, start = ipc.open_stream(source).schema, None, 0
            sizes = record_batch_rows(source, start)
    except (pa.ArrowException, OSError, ValueError, struct.error) as err:
        raise _error(path, err) from None
    if count is not None and count != len(sizes):
        raise _error(path, ValueError(f"its index lists {count} record batches, its body holds {len(sizes)}"))
    if not sizes:
        raise InputValueError(f"'{path}' holds no record batches.")
    stream = count is None

    def read(columns, batch_rows, units):
        options = ipc.IpcReadOptions(included_fields=_fields(schema, columns))
        try:
            with pa.memory_map(path, "r") as source:
                if stream:
                    if units is not None and list(units) != [0]:
                        raise InputValueError(f"'{path}' is one unit (an IPC stream); asked for {units}.")
                    numbered = enumerate(ipc.open_stream(source, options=options))
                else:
                    reader = ipc.open_file(source, options=options)
                    wanted = range(count) if units is None else units
                    numbered = ((i, reader.get_batch(i)) for i in wanted)  # one batch decoded at a time
                for index, batch in numbered:
                    batch = batch.select(columns)
                    check_batch(batch, f"record batch {index} of '{path}'")  # IPC has no checksums
                    yield 0 if stream else index, batch
        except pa.ArrowException as err:
            raise _error(path, err) from None

    return Part(path, schema, sum(sizes), os.path.getsize(path), read, unit_rows=None if stream else sizes)
