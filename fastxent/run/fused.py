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

A run grouped by one string column (dictionary-encoded, of the same codecs, no null key) reads
its chunk too: :func:`~fastxent.io.pages.scoring.take_codes` gives each row's entry of the row
group's dictionary page, the logits call each row's loss and marks, and
:func:`~fastxent.unit_groups.unit_sums` sums the row group's groups in the same thread; the
run's table adds those sums (:meth:`~fastxent.groups.GroupTable.add_unit`), the bits of the
batch path's fold. Binary 20M rows by ``split`` (two threads, AMD Zen 4): 0.087-0.095 s against
0.20-0.30 s through batches (plain scoring 0.041-0.050 s); the key column read by the page
reader's cursor instead cost 0.03-0.05 s more, most of it Python holding the GIL that the
thread adding units waits for.

Only plain scoring and that group-by take this path (no per-row outputs, on the CPU), and only
files whose footer allows it (:func:`fused_file`); a row group whose pages hold anything else
(a null, another encoding, a label other than 0 or 1, damaged bytes, a dictionary with a string
twice) is read through the batch path, which scores it as before or raises the error it always
raised.
``FASTXENT_PARQUET_READER=pyarrow`` turns the pass off, as it turns off the page reader. Column
chunks it scores count as ``fused`` in :attr:`~fastxent.state.Score.readers`; the logger
``fastxent.pages`` says at DEBUG level (``fastxent --debug``) which row groups it scored.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..io.pages import reader_choice, zstd
from ..io.pages import scoring as pages
from ..io.pages.cursor import CorruptPage, dictionary_strings
from ..io.pages.layout import (
    ENCODINGS,
    MANY_FLAT_COLUMNS,
    ColumnLayout,
    column_layouts,
)
from ..io.pages.pages import HEADER_BYTES
from ..io.pages.thrift import SLOTS
from ..io.part import Part
from ..io.pool import pooled_empty
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
#: Groups a row group's key dictionary may have for its groups to be summed in the thread that
#: scored it (:mod:`fastxent.unit_groups`); with more, the run's table folds its rows as the
#: batch path does. Each group summed apart is added to the table by its blocks, at a random
#: place of the table's arrays: 75,000 users a row group (100,000 known) cost 11 ms a row group
#: that way, against 2.6 ms for the fold of its rows, which takes the groups where they stand.
GROUPS_SUMMED_APART = 256

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
    the bytes its batches would have held (the logits, float32 labels and the keys). In a run
    with ``group_by``, either its groups' sums for the run's table to add (``groups``: up to
    :data:`GROUPS_SUMMED_APART` groups), or its rows for the table to fold as the batch path
    does: the ``keys`` (a dictionary array), each row's ``loss`` (float64) and ``marks`` (int32).
    """

    sums: np.ndarray
    counts: np.ndarray
    nbytes: int
    groups: UnitGroups | None = None
    keys: pa.Array | None = None
    loss: np.ndarray | None = None
    marks: np.ndarray | None = None


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
        self.dictionary_bytes = np.empty(0, np.uint8)  # a key chunk's dictionary page
        self.last_strings: tuple = (b"", 0, None)  # its bytes, count and strings, the last read

    def grow_dictionary(self, dtype, entries: int) -> None:
        self.dictionary[dtype] = np.empty(entries, dtype)

    def grow_key_dictionary(self, size: int) -> None:
        self.dictionary_bytes = np.empty(size + size // 8, np.uint8)

    def key_values(self, key: ColumnLayout, count: int, size: int) -> pa.Array | None:
        """The ``count`` values of the dictionary page whose ``size`` bytes :func:`take_codes`
        left in ``dictionary_bytes``, as an Arrow array of the key's type (``None``: they are
        not ``count`` distinct values, strings in UTF-8). A string page holding the bytes of the
        last gives the last array again (a row group's dictionary is often the one before's)."""
        if count <= 0:  # no dictionary page: a chunk of no rows
            return pa.array([], key.field.type)
        raw = self.dictionary_bytes[:size]
        if not key.codes:  # integers, PLAIN: as they are stored
            if size < count * key.stored.itemsize:
                return None
            values = pa.array(raw[: count * key.stored.itemsize].view(key.stored).copy())
        else:
            page = raw.tobytes()
            if self.last_strings[:2] == (page, count):
                return self.last_strings[2]
            try:
                values = dictionary_strings(raw, count, "a key's dictionary page")
            except CorruptPage:
                return None
            self.last_strings = (page, count, values)
        if pc.count_distinct(values).as_py() != count:  # a value twice would split its group
            return None
        return values

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
        if key is not None and not _key_chunk_allows(group.column(key.leaf), key):
            return None
    pos_weight = float(spec.pos_weight[0]) if spec.pos_weight.size else 1.0
    return FusedFile(part, x, t, pos_weight, key)


def _chunk_state() -> np.ndarray:
    return np.zeros(pages.STATE_SLOTS, np.int64)


def _key_layout(part: Part, group_by: list[str]) -> ColumnLayout | None:
    """The layout of the one ``group_by`` column whose rows' dictionary codes number a row
    group's groups: strings (:attr:`~..io.pages.layout.ColumnLayout.codes`) or int32/int64
    values (:func:`_key_chunk_allows`). Other keys go through the batch path: other types would
    need the page reader's conversions, floats their NaNs made one group, and several key
    columns have no one dictionary."""
    if len(group_by) != 1:
        return None
    key = column_layouts(part.pages.meta, part.pages.schema, group_by, False, MANY_FLAT_COLUMNS)[group_by[0]]
    if isinstance(key, str) or key.is_list:
        return None
    return key if key.codes or key.field.type in (pa.int32(), pa.int64()) else None


def _key_chunk_allows(chunk, key: ColumnLayout) -> bool:
    """Whether a key column chunk's footer entry allows the fused pass: as :func:`_chunk_allows`,
    with a dictionary page; integers only where their statistics leave room for at most
    :data:`GROUPS_SUMMED_APART` values (more are numbered faster by the batch path's table of
    integers: 100,000 users a file, binary 20M rows, 1.0-1.1 s fused against 0.45-0.6 s)."""
    if not (_chunk_allows(chunk) and chunk.has_dictionary_page):
        return False
    if key.codes:
        return True
    stats = chunk.statistics
    return stats is not None and stats.has_min_max and stats.max - stats.min < GROUPS_SUMMED_APART


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
        scratch, codes, row_values = _scratch, None, _NO_ROWS
        try:
            if self.key is not None:
                codes, key_state = np.empty(rows, np.int32), _chunk_state()
                call = self._codes_call(codes)
                if (
                    self._walk(file, index, self.key, call, scratch.grow_key_dictionary, key_state)
                    != pages.DONE
                ):
                    return self._elsewhere(index)
                apart = key_state[pages.ENTRIES] <= GROUPS_SUMMED_APART
                # rows for the run's table to fold are its until then: not this thread's scratch
                row_values = (
                    scratch.row_values(rows)
                    if apart
                    else (pooled_empty(rows, np.float64), scratch.den, pooled_empty(rows, np.int32))
                )
            labels = np.empty(rows, np.int8)
            if self._walk(file, index, self.target, self._labels_call(labels)) != pages.DONE:
                return self._elsewhere(index)
            sums = np.zeros((-(-rows // BLOCK_ROWS), N_SUMS))
            counts = np.zeros(N_COUNTS, np.int64)
            call = self._logits_call(labels, sums, counts, row_values)
            grow = functools.partial(scratch.grow_dictionary, self.dtype)
            if self._walk(file, index, self.logits, call, grow) != pages.DONE:
                return self._elsewhere(index)
        except CorruptPage:  # the file ends inside a chunk: the batch path says so
            return self._elsewhere(index)
        finally:
            file.close()
        nbytes = rows * (self.dtype.itemsize + 4)
        groups = None
        if codes is not None:
            values = scratch.key_values(self.key, int(key_state[pages.ENTRIES]), int(key_state[pages.HELD]))
            if values is None:  # not UTF-8 strings, or a value twice
                return self._elsewhere(index)
            nbytes += codes.nbytes
            if not apart:  # strings (integers span fewer values), as the batch path reads them
                keys = pa.DictionaryArray.from_arrays(pa.array(codes), values)
                return self._scored_log(index, UnitSums(sums, counts, nbytes, None, keys, *row_values[::2]))
            groups = unit_sums(self.key.name, codes, values, *row_values[::2])
        return self._scored_log(index, UnitSums(sums, counts, nbytes, groups))

    def _scored_log(self, index: int, scored: UnitSums) -> UnitSums:
        """``scored``, its column chunks counted as fused and the row group logged."""
        reads = self.part.reads
        if reads is not None:
            for column in (
                (self.logits, self.target) if self.key is None else (self.logits, self.target, self.key)
            ):
                reads.add(column.name, FUSED)
        log.debug("'%s' row group %d: scored from its pages (fused)", self.part.name, index)
        return scored

    def _codes_call(self, codes: np.ndarray):
        s = _scratch
        return lambda window, base, state, codec, optional: pages.take_codes(
            window, base, state, s.header, s.page, s.page_ro, codec, optional, s.dictionary_bytes, codes
        )

    def _labels_call(self, labels: np.ndarray):
        s = _scratch
        return lambda window, base, state, codec, optional: pages.take_labels(
            window, base, state, s.header, s.page, s.page_ro, codec, optional, self.physical,
            s.label_dictionary, labels,
        )  # fmt: skip

    def _logits_call(self, labels, sums, counts, row_values):
        s, dtype = _scratch, self.dtype
        values = s.values.setdefault(dtype, np.empty(2 * BLOCK_ROWS, dtype))

        def call(window, base, state, codec, optional):
            return pages.score_logits(
                window, base, state, s.header, s.page, s.page_ro, codec, optional, labels, self.pos_weight,
                s.dictionary.setdefault(dtype, np.empty(0, dtype)), s.indices, values[BLOCK_ROWS:],
                values[:BLOCK_ROWS], sums, counts, row_values,
            )  # fmt: skip

        return call

    def _elsewhere(self, index: int) -> None:
        log.debug(
            "'%s' row group %d: read through batches (its pages hold what the fused pass does not "
            "score: a null, another encoding, a label other than 0 or 1, or damaged bytes)",
            self.part.name,
            index,
        )

    def _walk(self, file, index: int, column: ColumnLayout, call, grow=None, state=None) -> int:
        """Run ``call(window, base, state, codec, optional)`` (a compiled walk of
        :mod:`~..io.pages.scoring`) over a column chunk's windows, giving it what it asks for:
        the next window, a larger page buffer or index scratch, or (``grow(size)``) a larger
        dictionary; returns the final status. ``state``: the chunk's state to use (zeros, as
        :func:`_chunk_state` makes it), for the caller to read after."""
        chunk = self.part.pages.meta.row_group(index).column(column.leaf)
        # from the dictionary page where there is one: an empty row group's chunk, as pyarrow
        # writes it, is a dictionary page and a data page offset of 0 (which chunk_range takes)
        start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
        size = chunk.total_compressed_size
        codec, optional = _CODECS[chunk.compression], column.nullable
        state = _chunk_state() if state is None else state
        state[pages.POS], state[pages.END], state[pages.ENTRIES] = start, start + size, -1
        read = file.chunk(start, size, self.window)
        scratch = _scratch
        try:
            base = start
            window = read(start, min(HEADER_BYTES, size))
            while True:
                status = call(window, base, state, codec, optional)
                if status == pages.NEED_BYTES:
                    base = int(state[pages.POS])
                    window = read(base, int(state[pages.NEED_SIZE]))
                elif status == pages.NEED_PAGE:
                    scratch.grow_page(int(state[pages.NEED_SIZE]))
                elif status == pages.NEED_ENTRIES:
                    grow(int(state[pages.NEED_SIZE]))
                elif status == pages.NEED_INDICES:
                    scratch.indices = np.empty(int(state[pages.NEED_SIZE]), np.int32)
                else:
                    return status
        finally:
            read.done()
