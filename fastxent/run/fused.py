"""Binary logits in Parquet scored from their pages in one pass, row group by row group.

The commonest file a binary model's predictions are scored from (one column of float32 or
float64 logits, one of 0/1 labels: int32, int64 or boolean; snappy, zstd (where the system has
a libzstd, :mod:`fastxent.io.pages.zstd`) or uncompressed pages, no nulls) is bound by
decoding: the batch path decodes its pages into Arrow arrays, then the kernel reads them back.
Here each row group is read and scored in two compiled calls (:mod:`fastxent.io.pages.scoring`)
by one of :data:`~fastxent.io.sources.PARQUET_WORKERS` threads, into its block sums and counts,
which the run adds whole (:meth:`~fastxent.state.Accumulator.add_unit`): blocks are the row
group's 2048-row blocks, so the bits are those of the batch path, for any ``batch_rows``,
thread count or Dask split. The decoded logits and labels never leave the cache. 100M rows (96
row groups, two threads, AMD Zen 4): snappy 0.12-0.17 s against 0.25 s through batches
(Polars decodes the two columns alone in 0.15-0.18 s beside it); zstd 0.31-0.38 s against
0.59 s.

Only plain scoring takes this path (no groups, no per-row outputs, on the CPU), and only files
whose footer allows it (:func:`fused_file`); a row group whose pages hold anything else (a
null, another encoding, a label other than 0 or 1, damaged bytes) is read through the batch
path, which scores it as before or raises the error it always raised.
``FASTXENT_PARQUET_READER=pyarrow`` turns the pass off, as it turns off the page reader. Column
chunks it scores count as ``fused`` in :attr:`~fastxent.state.Score.readers`; the logger
``fastxent.pages`` says at DEBUG level (``fastxent --debug``) which row groups it scored.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..io.pages import reader_choice, zstd
from ..io.pages import scoring as pages
from ..io.pages.codecs import CODEC_NAMES
from ..io.pages.cursor import ColumnCursor, CorruptPage, Unsupported
from ..io.pages.layout import (
    ENCODINGS,
    MANY_FLAT_COLUMNS,
    ColumnLayout,
    chunk_range,
    chunk_refusal,
    column_layouts,
)
from ..io.pages.pages import HEADER_BYTES
from ..io.pages.rowgroup import PAGES
from ..io.pages.thrift import SLOTS
from ..io.part import Part
from ..io.prefetch import ordered_prefetch
from ..io.sources import PARQUET_WORKERS
from ..kernels.codes import BLOCK_ROWS, N_COUNTS, N_SUMS
from ..unit_groups import UnitGroups, unit_sums

log = logging.getLogger("fastxent.pages")

#: Name of the pass in :attr:`~fastxent.state.Score.readers`.
FUSED = "fused"
#: Bytes a window of a column chunk reads at a time: with the page buffer, it stays in the
#: core's L2 cache while its pages are checked, decompressed and scored. A remote store's range
#: requests cost more each: larger windows there.
WINDOW_BYTES = 1 << 20
REMOTE_WINDOW_BYTES = 16 << 20
#: Row groups scored ahead of the one the run is adding (each result is a few KB).
AHEAD = 4

_CODECS = {"SNAPPY": pages.SNAPPY, "UNCOMPRESSED": pages.UNCOMPRESSED}
if zstd.AVAILABLE:
    _CODECS["ZSTD"] = pages.ZSTD
#: The label column's physical type (:data:`~..io.pages.scoring.BOOLEAN`, ...) by the NumPy type
#: the page reader stores its values as (:attr:`~..io.pages.layout.ColumnLayout.stored`).
_LABELS = {
    np.dtype(np.uint8): pages.BOOLEAN,
    np.dtype(np.int32): pages.INT32,
    np.dtype(np.int64): pages.INT64,
}
_LOGITS = (np.dtype(np.float32), np.dtype(np.float64))
_ENCODINGS = ENCODINGS - {"BYTE_STREAM_SPLIT"}
#: No row values asked for (:func:`~..io.pages.scoring.score_logits`): a run without groups.
_NO_ROWS = (np.empty(0), np.empty(0), np.empty(0, np.int32))


@dataclass(frozen=True)
class UnitSums:
    """A row group scored: each block's :data:`~fastxent.kernels.codes.SUM_FIELDS` (one row a
    block, the last one partial) and the counts of :data:`~fastxent.kernels.codes.COUNT_FIELDS`;
    the bytes its batches would have held (the logits, float32 labels and the keys); in a run
    with ``group_by``, its groups' sums for the run's table to add (``None`` otherwise)."""

    sums: np.ndarray
    counts: np.ndarray
    nbytes: int
    groups: UnitGroups | None = None


class _Scratch(threading.local):
    """A thread's buffers, kept from row group to row group (grown when a page asks)."""

    def __init__(self):
        self.header = np.zeros(SLOTS, np.int64)
        self.page = np.empty(0, np.uint8)
        self.page_ro = self.page
        self.label_dictionary = np.zeros(2, np.int8)
        self.dictionary: dict = {}
        self.indices = np.empty(0, np.int32)
        self.values: dict = {}
        self.den = np.empty(BLOCK_ROWS)  # a block's denominators (ones), not kept
        self.loss = np.empty(0)  # a row group's losses and marks, for its groups
        self.marks = np.empty(0, np.int32)

    def row_values(self, rows: int) -> tuple:
        if self.loss.shape[0] < rows:
            self.loss, self.marks = np.empty(rows), np.empty(rows, np.int32)
        return self.loss[:rows], self.den, self.marks[:rows]

    def grow_page(self, size: int) -> None:
        self.page = np.empty(size + size // 8, np.uint8)
        self.page_ro = self.page.view()
        self.page_ro.flags.writeable = False  # the window's type: one compiled `source`


_scratch = _Scratch()


def fused_file(part: Part, plan, total) -> FusedFile | None:
    """The fused pass over ``part`` for a run of ``plan`` into the accumulator ``total``, or
    ``None`` where the run or the file is not one it scores (the batch path then does)."""
    spec = total.spec
    if part.pages is None or reader_choice() == "pyarrow" or total.device != "cpu":
        return None
    if plan.kind != "binary" or plan.inputs != "logits" or len(plan.input_columns) != 1:
        return None
    if plan.weight or plan.classes is not None or plan.keep:
        return None
    if spec.class_weight.size or spec.pos_weight.size > 1:  # empty: not given
        return None
    logits, target = plan.input_columns[0], plan.target
    meta = part.pages.meta
    # the page reader's layouts: one flat leaf column each, of the Parquet type its Arrow type
    # is stored as (a partition column, a list, float16 logits have none here)
    layouts = column_layouts(meta, part.pages.schema, [logits, target], False, MANY_FLAT_COLUMNS)
    x, t = layouts[logits], layouts[target]
    if logits == target or isinstance(x, str) or isinstance(t, str) or x.is_list or t.is_list:
        return None
    if x.stored not in _LOGITS or t.stored not in _LABELS:
        return None
    key = _key_layout(part, plan.group_by) if plan.group_by else None
    if plan.group_by and key is None:
        return None
    for index in range(meta.num_row_groups):
        group = meta.row_group(index)
        if not all(_chunk_allows(group.column(c.leaf)) for c in (x, t)):
            return None
        if key is not None and chunk_refusal(group.column(key.leaf), part.pages.size, key) is not None:
            return None
    pos_weight = float(spec.pos_weight[0]) if spec.pos_weight.size else 1.0
    return FusedFile(part, x, t, pos_weight, key)


def _key_layout(part: Part, group_by: list[str]) -> ColumnLayout | None:
    """The layout of the one ``group_by`` column where the page reader reads it as the codes of
    its dictionary pages (strings: :attr:`~..io.pages.layout.ColumnLayout.codes`), which number
    a row group's groups for nothing. Other keys go through the batch path: integers would be
    numbered by hashing every row in the worker (``dictionary_encode``: 4.6 ms a 131,072-row row
    group of 75,000 users, the batch path's whole fold of it 2 ms), and several key columns
    have no one dictionary."""
    if len(group_by) != 1:
        return None
    key = column_layouts(part.pages.meta, part.pages.schema, group_by, False, MANY_FLAT_COLUMNS)[group_by[0]]
    if isinstance(key, str) or key.is_list:
        return None
    return key if key.codes else None


def _chunk_allows(chunk) -> bool:
    """Whether a column chunk's footer entry allows the fused pass: its codec and encodings, and
    no null where its statistics count them."""
    if chunk.compression not in _CODECS or not set(chunk.encodings) <= _ENCODINGS:
        return False
    stats = chunk.statistics
    return stats is None or not stats.has_null_count or stats.null_count == 0


class FusedFile:
    """The fused pass over one Parquet part: :meth:`units` scores its row groups."""

    def __init__(
        self,
        part: Part,
        logits: ColumnLayout,
        target: ColumnLayout,
        pos_weight: float,
        key: ColumnLayout | None,
    ):
        self.part, self.logits, self.target, self.pos_weight = part, logits, target, pos_weight
        self.key = key  # the group_by column's layout (None: no groups)
        self.dtype, self.physical = logits.stored, _LABELS[target.stored]
        self.window = REMOTE_WINDOW_BYTES if part.pages.location.remote else WINDOW_BYTES

    def units(self, wanted: list | None) -> Iterator[tuple[int, UnitSums | None]]:
        """``(unit, sums)`` for each row group of ``wanted`` (default: all) in order, ``sums``
        ``None`` for one the batch path must read; row groups are scored ahead in threads."""
        meta = self.part.pages.meta
        indices = range(meta.num_row_groups) if wanted is None else wanted
        producers = [lambda index=index: [(index, self._scored(index))] for index in indices]
        yield from ordered_prefetch(producers, PARQUET_WORKERS, AHEAD)

    def _scored(self, index: int) -> UnitSums | None:
        rows = self.part.pages.meta.row_group(index).num_rows
        file = self.part.pages.open()
        key, row_values = None, _NO_ROWS
        try:
            if self.key is not None:
                key = self._key_array(file, index, self.key, rows)
                row_values = _scratch.row_values(rows)
            labels = np.empty(rows, np.int8)
            if self._walk(file, index, self.target, labels) != pages.DONE:
                return self._elsewhere(index)
            sums = np.zeros((-(-rows // BLOCK_ROWS), N_SUMS))
            counts = np.zeros(N_COUNTS, np.int64)
            if self._walk(file, index, self.logits, labels, sums, counts, row_values) != pages.DONE:
                return self._elsewhere(index)
        except (CorruptPage, Unsupported):  # a chunk cut short, a key page the reader leaves to pyarrow
            return self._elsewhere(index)
        finally:
            file.close()
        nbytes = rows * (self.dtype.itemsize + 4)
        groups = None
        if key is not None:
            groups = unit_sums(self.key.name, key, row_values[0], row_values[2])
            if groups is None:
                return self._elsewhere(index)
            nbytes += key.nbytes
        reads = self.part.reads
        if reads is not None:
            for column in (self.logits, self.target):
                reads.add(column.name, FUSED)
            if key is not None:
                reads.add(self.key.name, PAGES)
        log.debug("'%s' row group %d: scored from its pages (fused)", self.part.name, index)
        return UnitSums(sums, counts, nbytes, groups)

    def _key_array(self, file, index: int, key: ColumnLayout, rows: int) -> pa.Array:
        """A group key column's chunk in row group ``index``, read whole by the page reader
        (:class:`~..io.pages.cursor.ColumnCursor`: the array the batch path would read)."""
        chunk = self.part.pages.meta.row_group(index).column(key.leaf)
        start, size = chunk_range(chunk)
        read = file.chunk(start, size, self.window)
        codec = CODEC_NAMES[chunk.compression]
        cursor = ColumnCursor(
            read, start, size, key, codec, chunk.num_values, chunk.total_uncompressed_size, rows
        )
        return cursor.take(rows)

    def _elsewhere(self, index: int) -> None:
        log.debug(
            "'%s' row group %d: read through batches (its pages hold what the fused pass does not "
            "score: a null, another encoding, a label other than 0 or 1, or damaged bytes)",
            self.part.name,
            index,
        )

    def _walk(
        self, file, index: int, column: ColumnLayout, labels, sums=None, counts=None, row_values=None
    ) -> int:
        """Run the label call (``sums`` None) or the logits call over a column chunk's windows,
        giving each what it asks for (the logits call each row's values where ``row_values``
        are not empty); returns the final status."""
        chunk = self.part.pages.meta.row_group(index).column(column.leaf)
        # from the dictionary page where there is one: an empty row group's chunk, as pyarrow
        # writes it, is a dictionary page and a data page offset of 0 (which chunk_range takes)
        start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
        size = chunk.total_compressed_size
        codec, optional = _CODECS[chunk.compression], column.nullable
        state = np.zeros(pages.STATE_SLOTS, np.int64)
        state[pages.POS], state[pages.END], state[pages.ENTRIES] = start, start + size, -1
        read = file.chunk(start, size, self.window)
        scratch = _scratch
        try:
            base = start
            window = read(start, min(HEADER_BYTES, size))
            while True:
                if sums is None:
                    status = pages.take_labels(
                        window, base, state, scratch.header, scratch.page, scratch.page_ro, codec,
                        optional, self.physical, scratch.label_dictionary, labels,
                    )  # fmt: skip
                else:
                    dictionary = scratch.dictionary.setdefault(self.dtype, np.empty(0, self.dtype))
                    values = scratch.values.setdefault(self.dtype, np.empty(2 * BLOCK_ROWS, self.dtype))
                    status = pages.score_logits(
                        window, base, state, scratch.header, scratch.page, scratch.page_ro, codec,
                        optional, labels, self.pos_weight, dictionary, scratch.indices,
                        values[BLOCK_ROWS:], values[:BLOCK_ROWS], sums, counts, row_values,
                    )  # fmt: skip
                if status == pages.NEED_BYTES:
                    base = int(state[pages.POS])
                    window = read(base, int(state[pages.NEED_SIZE]))
                elif status == pages.NEED_PAGE:
                    scratch.grow_page(int(state[pages.NEED_SIZE]))
                elif status == pages.NEED_ENTRIES:
                    scratch.dictionary[self.dtype] = np.empty(int(state[pages.NEED_SIZE]), self.dtype)
                elif status == pages.NEED_INDICES:
                    scratch.indices = np.empty(int(state[pages.NEED_SIZE]), np.int32)
                else:
                    return status
        finally:
            read.done()
