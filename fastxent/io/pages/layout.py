"""Which column chunks the page reader reads: decided from the footer and the Arrow schema.

A column qualifies when its Arrow type is one the reader builds (float16/32/64, integers,
booleans, strings as dictionary codes, or a list / large_list / fixed_size_list of floats) and
its Parquet leaf agrees with that type (physical type, levels). A column chunk of such a column
qualifies when its codec and encodings are ones the reader decodes. Everything else is read by
pyarrow, and :func:`column_layouts` / :func:`chunk_refusal` say why.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import READER_VARIABLE
from .codecs import CODEC_NAMES

#: Encodings a chunk may list (values, levels and dictionary indices the reader decodes).
ENCODINGS = {"PLAIN", "PLAIN_DICTIONARY", "RLE_DICTIONARY", "RLE", "BYTE_STREAM_SPLIT", "BIT_PACKED"}

#: Parquet physical type of each supported Arrow value type, and the NumPy type it decodes to.
_PHYSICAL = {
    pa.float16(): ("FIXED_LEN_BYTE_ARRAY", np.float16),
    pa.float32(): ("FLOAT", np.float32),
    pa.float64(): ("DOUBLE", np.float64),
    pa.int8(): ("INT32", np.int32),
    pa.int16(): ("INT32", np.int32),
    pa.int32(): ("INT32", np.int32),
    pa.uint8(): ("INT32", np.int32),
    pa.uint16(): ("INT32", np.int32),
    pa.uint32(): ("INT32", np.int32),
    pa.int64(): ("INT64", np.int64),
    pa.uint64(): ("INT64", np.int64),
    pa.bool_(): ("BOOLEAN", np.uint8),
}


@dataclass(frozen=True)
class ColumnLayout:
    """How one column's pages become its Arrow array.

    ``leaf``: the column's index among the file's leaf columns; ``field``: its Arrow field;
    ``stored``: the NumPy type of the Parquet values (uint8 for booleans); ``values``: the NumPy
    type of the Arrow values; ``top``: the definition level of a present value; ``nullable``:
    whether a flat column has definition levels; ``empty``: the definition level of an empty
    list (``None``: not a list); ``list_size``: the size of a fixed_size_list (0 otherwise).
    ``as_float``: an integer column given as float32 (binary labels, :func:`column_layouts`).
    ``codes``: a string column given as its dictionary codes (int32) and the dictionary page's
    strings, the ``dictionary<int32, string>`` array pyarrow's ``read_dictionary`` gives
    (:data:`STRINGS`).
    """

    name: str
    leaf: int
    field: pa.Field
    stored: np.dtype
    values: np.dtype
    top: int
    nullable: bool
    empty: int | None = None
    list_size: int = 0
    as_float: bool = False
    codes: bool = False

    @property
    def is_list(self) -> bool:
        return self.empty is not None


def _leaves(meta: pq.FileMetaData) -> dict:
    """``{top-level column: [leaf indices]}``."""
    leaves: dict = {}
    for j in range(meta.num_columns):
        leaves.setdefault(meta.schema.column(j).path.split(".")[0], []).append(j)
    return leaves


#: The Arrow type of a string column read by pages (group keys, class names): codes into the
#: strings of its chunk's dictionary page, as pyarrow reads it (``read_dictionary``,
#: :mod:`fastxent.io.sources`), so that a chunk read by either reader gives the same type. A
#: chunk whose pages are not all dictionary-encoded (a writer falls back to PLAIN pages when a
#: dictionary grows too large) is read by pyarrow from the batch where that page begins.
STRINGS = pa.dictionary(pa.int32(), pa.string())


def _layout(meta: pq.FileMetaData, field: pa.Field, leaf: int) -> ColumnLayout | str:
    column = meta.schema.column(leaf)
    typ = field.type
    if typ == pa.string() and column.physical_type == "BYTE_ARRAY":
        if column.max_repetition_level != 0 or column.max_definition_level != int(field.nullable):
            return "its levels are not those of a flat column"
        codes = np.dtype(np.int32)
        top = column.max_definition_level
        strings = field.with_type(STRINGS)
        return ColumnLayout(field.name, leaf, strings, codes, codes, top, field.nullable, codes=True)
    outer = None
    if pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ):
        outer, element = field, typ.value_field
        field_type = element.type
    else:
        element, field_type = field, typ
    if field_type not in _PHYSICAL:
        return f"its values are {field_type}"
    physical, stored = _PHYSICAL[field_type]
    if column.physical_type != physical or (physical == "FIXED_LEN_BYTE_ARRAY" and column.length != 2):
        return f"its values are stored as {column.physical_type}"
    values = np.dtype(field_type.to_pandas_dtype()) if field_type != pa.bool_() else np.dtype(np.uint8)
    top = column.max_definition_level
    if outer is None:
        if column.max_repetition_level != 0 or top != int(field.nullable):
            return "its levels are not those of a flat column"
        return ColumnLayout(field.name, leaf, field, np.dtype(stored), values, top, field.nullable)
    # list (optional: 1 level) -> repeated group (1 level) -> element (optional: 1 level)
    if column.max_repetition_level != 1 or top != int(outer.nullable) + 1 + int(element.nullable):
        return "its levels are not those of one list level"
    if not pa.types.is_floating(field_type):
        return f"it is a list of {field_type}"
    size = typ.list_size if pa.types.is_fixed_size_list(typ) else 0
    return ColumnLayout(
        field.name, leaf, field, np.dtype(stored), values, top, False, int(outer.nullable), size
    )


#: Signed integer types whose columns :func:`as_float` gives as float32.
_SIGNED = (pa.int8(), pa.int16(), pa.int32(), pa.int64())


def as_float(layout: ColumnLayout) -> ColumnLayout:
    """``layout`` of a flat signed integer column given as float32, the type binary labels are
    scored in: 4 bytes a label decoded and read by the kernel instead of 8 (100M int64 labels:
    800 MB written and read again). The reader gives it so from dictionary pages whose values
    float32 holds exactly (|v| <= 2**24), as a float32 dictionary gathered like any other. A
    chunk that cannot be given so from its first row (PLAIN values, nulls, larger values) is
    read as stored (:func:`as_stored`); one that stops later, by pyarrow from the batch where it
    stops (:class:`~.cursor.Unsupported`). Other layouts are returned as they are."""
    if layout.is_list or layout.field.type not in _SIGNED:
        return layout
    field = layout.field.with_type(pa.float32())
    return replace(layout, field=field, values=np.dtype(np.float32), as_float=True)


def as_stored(layout: ColumnLayout, field: pa.Field) -> ColumnLayout:
    """``layout`` given :func:`as_float` read as its column's ``field`` is stored again."""
    return replace(layout, field=field, values=np.dtype(field.type.to_pandas_dtype()), as_float=False)


#: The ``auto`` reader reads local files of flat columns through pages when at most this many
#: are read: every page-read column holds a window of the file and its current page while a
#: batch is built, so files of thousands of class columns stay with pyarrow. Remote files, at
#: most :data:`FEW_FLAT_COLUMNS`: each page-read column is fetched by range requests of its own
#: (windows of 8 MiB shared between the columns), where pyarrow coalesces a row group's columns
#: into few large ones.
MANY_FLAT_COLUMNS = 1024
#: Row groups of more than this many page-read flat columns are decoded one at a time, their
#: columns taken by two threads (:func:`flat_column_count`; ``fastxent.io.sources``,
#: :func:`.rowgroup._taken`): every row group decoding ahead holds its batches (up to 64 MiB
#: each), so two row groups at once cost memory, where two threads on one row group cost none.
#: Scoring ``make-data`` files of float32 class columns, in 131,072-row groups, on two cores
#: (2026-12-04; time, peak RSS): 100 columns 0.85 s, 492 MB one at a time; 0.93 s, 677-690 MB two
#: at a time; through pyarrow 1.33-1.42 s, 497 MB. 256 columns (500k rows): 0.37 s, 562 MB;
#: 0.56 s, 776 MB; pyarrow 0.54 s, 559 MB. 20 to 64 columns: 5-30% faster one at a time,
#: 50-200 MB less. Once the page CRCs were checked in the compiled code rather than from Python
#: (2026-12-07, AMD Zen 4, medians of 5 in one process, page checksums written, one thread
#: against two taking the columns): 4M x 20 columns 0.36 s against 0.26 s, 2M x 64 0.51 against
#: 0.34, 500k x 256 0.85 against 0.55, the peak RSS within 30 MB; the 4M x 100 ``make-data``
#: file 0.55-0.59 against 0.50-0.53 s, 502-536 MB (two row groups at a time: 0.46-0.48 s, 700 MB).
#: A binary file (two columns) and list columns decode faster two row groups at a time (the 4M x
#: 100 list file 1.18 s against 1.40).
FEW_FLAT_COLUMNS = 8


def flat_column_count(layouts: dict | None) -> int:
    """How many of :func:`column_layouts`' columns the page reader reads as flat columns."""
    if layouts is None:
        return 0
    return sum(1 for v in layouts.values() if not isinstance(v, str) and not v.is_list)


def column_layouts(
    meta: pq.FileMetaData,
    schema: pa.Schema,
    columns: list[str],
    automatic: bool,
    flat_limit: int,
    as_floats=frozenset(),
) -> dict:
    """``{column: ColumnLayout}`` for the columns the page reader reads, ``{column: reason}`` (a
    string) for the others. ``automatic`` (the ``auto`` reader): it reads them when one of them
    is a list column, or they are at most ``flat_limit`` flat ones of codecs it decompresses as
    fast as pyarrow (:func:`_slower_codecs`), pyarrow reading the columns it cannot beside them.
    A pyarrow reader beside the pages costs its row groups' opening, not a reading of the whole
    row group (two cores, 2026-12-05, ``fx.score`` mins of 5-7: the 4M x 100 class-column file
    grouped by its string ``split`` 1.12-1.13 s all through pyarrow, 0.65 s mixed; binary 20M rows
    by ``split`` 0.200-0.206 s against 0.183 s). ``as_floats``: columns that may be given as
    float32 where they are signed integers (:func:`as_float`)."""
    leaves = _leaves(meta)
    out = {}
    for name in columns:
        if (
            schema.get_all_field_indices(name) != [schema.get_field_index(name)]
            or len(leaves.get(name, [])) != 1
        ):
            out[name] = "it is not one leaf column"
            continue
        field = schema.field(name)
        if pa.types.is_dictionary(field.type):
            out[name] = "it is dictionary-encoded in Arrow"
            continue
        layout = _layout(meta, field, leaves[name][0])
        out[name] = as_float(layout) if name in as_floats and not isinstance(layout, str) else layout
    paged = [v for v in out.values() if not isinstance(v, str)]
    if automatic and paged and not any(v.is_list for v in paged):
        why = None
        if len(paged) > flat_limit:
            why = f"more than {flat_limit} flat columns are read"
        elif meta.num_row_groups and (slow := _slower_codecs(meta, paged)):
            why = f"its flat columns are {slow}, which pyarrow decompresses faster"
        if why is not None:
            why += f" ({READER_VARIABLE}=pages reads every column it can)"
            out = {name: v if isinstance(v, str) else why for name, v in out.items()}
    return out


#: The codecs pyarrow decompresses faster than the page reader (through cramjam).
SLOWER_CODECS = {"BROTLI"}


def _slower_codecs(meta: pq.FileMetaData, layouts) -> str:
    """The codecs (of the first row group) of ``layouts``' chunks that pyarrow decompresses
    faster than the pages would (:data:`SLOWER_CODECS`), or ``""``. Pages decompress snappy in
    Numba, the others through cramjam in Python (:mod:`.codecs`). Measured on two cores
    (2026-12-05, ``fx.score``, medians of 3; pages against pyarrow): up to
    :data:`FEW_FLAT_COLUMNS` flat columns (two row groups decoded at once), binary 20M rows gzip
    0.218 s against 0.243, lz4 0.063 against 0.080, zstd 0.099 against 0.109 (100M rows: 0.445
    against 0.545), brotli 0.478 against 0.338; a list column's pages stay faster (4M x 100 zstd:
    1.89 s against 2.16 s). More flat columns (one row group at a time) were pyarrow's for codecs
    other than snappy until two threads took a row group's columns (2026-12-07, AMD Zen 4): the
    zstd 100 class columns 1.45-1.75 s and 480 MB peak RSS against 2.14-2.15 s and 570-600 MB;
    2M rows x 64 float32 columns zstd 0.89-1.11 s against 0.86-1.00, lz4 0.60-0.64 against
    0.56-0.62, gzip 1.95-2.09 against 2.04-2.19, 420-450 MB against 580-650."""
    group = meta.row_group(0)
    codecs = {group.column(layout.leaf).compression for layout in layouts}
    return ", ".join(sorted(codecs & SLOWER_CODECS))


def chunk_refusal(chunk: pq.ColumnChunkMetaData, file_size: int, layout: ColumnLayout) -> str | None:
    """Why the page reader does not read this column chunk of ``layout``'s column (``None``: it
    does)."""
    if chunk.compression not in CODEC_NAMES:
        return f"its codec is {chunk.compression}"
    if layout.codes and not chunk.has_dictionary_page:
        return "its strings are not dictionary-encoded"
    unknown = set(chunk.encodings) - ENCODINGS
    if unknown:
        return f"it has {', '.join(sorted(unknown))} pages"
    start, size = chunk_range(chunk)
    if start < 4 or size <= 0 or start + size > file_size:
        return "its offsets in the footer are outside the file"
    return None


def chunk_range(chunk: pq.ColumnChunkMetaData) -> tuple[int, int]:
    """``(first byte, size)`` of a column chunk's pages. Some writers store a dictionary page
    offset of 0 for a chunk without one: the first page is the earlier of the valid offsets."""
    start = chunk.data_page_offset
    dictionary = chunk.dictionary_page_offset
    if chunk.has_dictionary_page and dictionary is not None and 0 < dictionary < start:
        start = dictionary
    return start, chunk.total_compressed_size
