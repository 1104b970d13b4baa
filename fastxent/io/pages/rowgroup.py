"""A Parquet row group read as record batches: page-read columns and pyarrow-read ones side by side.

:func:`row_group_batches` yields batches of ``decode_rows`` rows (the last one shorter), each
column from :class:`~.cursor.ColumnCursor` where :mod:`.layout` allows it, from pyarrow
otherwise (all such columns through one ``iter_batches``). A page-read column meeting a page it
does not decode (:class:`~.cursor.Unsupported`) continues through pyarrow from the first row of
the batch being built, so a switch never changes a value. The batches hold the same values, in
the same rows, as pyarrow's: the scores are bit for bit the same.

Every choice is recorded in a :class:`ReadLog` (``fastxent score --debug`` prints it).
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait

import pyarrow as pa

from . import READER_VARIABLE
from .codecs import CODEC_NAMES
from .cursor import ColumnCursor, CorruptPage, Unsupported, shared_value_buffers
from .layout import as_stored, chunk_range, chunk_refusal

#: Bytes read at once from a file, all of a row group's page-read columns together: each window
#: read costs a round of Python (a read, another Numba call; its pages' CRCs listed and checked
#: from Python too when these were measured),
#: so a column's window holds its whole chunk where the budget allows. 100 float columns of
#: 512 KiB chunks, decoded alone on one thread: 0.69 s in 80 KiB windows (8 MiB), 0.65 s in
#: 320 KiB (32 MiB), 0.62 s whole (64 MiB); peak RSS scoring the 4M x 100 list file 458, 507
#: and 542 MB with 16, 32 and 64 MiB.
WINDOW_BYTES = 32 << 20
#: Smallest read per column (a page larger than its window is read whole): every page-read
#: column of a row group holds a window at once, so 10,000 columns hold 10,000 windows.
MIN_WINDOW_BYTES = 16 << 10

log = logging.getLogger("fastxent.pages")

PAGES = "pages"
PYARROW = "pyarrow"


class ReadLog:
    """How many column chunks each reader read (``counts``: ``{"pages": n, "pyarrow": m}``; a
    chunk that pyarrow finishes counts for both), and why pyarrow read the ones it did
    (``reasons``: ``{column: reason}``, the first per column). Shared by the threads decoding
    row groups; the logger ``fastxent.pages`` says at DEBUG level which reader read what, one
    line per row group (``fastxent --debug`` shows it)."""

    def __init__(self):
        self.counts = collections.Counter()
        self.reasons: dict = {}
        self._lock = threading.Lock()

    def add(self, column: str, path: str, reason: str | None = None) -> None:
        with self._lock:
            self.counts[path] += 1
            if reason is not None:
                self.reasons.setdefault(column, reason)


class _Rows:
    """Rows of an iterator of record batches, taken ``n`` at a time as one array per column."""

    def __init__(self, batches: Iterator[pa.RecordBatch]):
        self.batches, self.pending = batches, []

    def take(self, n: int) -> pa.RecordBatch:
        pieces, have = [], 0
        while have < n:
            batch = self.pending.pop() if self.pending else next(self.batches, None)
            if batch is None:
                raise CorruptPage(f"pyarrow read {n - have} rows fewer than the row group holds")
            if batch.num_rows > n - have:
                self.pending.append(batch.slice(n - have))
                batch = batch.slice(0, n - have)
            pieces.append(batch)
            have += batch.num_rows
        return (
            pieces[0] if len(pieces) == 1 else pa.Table.from_batches(pieces).combine_chunks().to_batches()[0]
        )


def page_columns(file, index: int, columns: list[str], layouts: dict, read_log: ReadLog) -> dict:
    """``{column: ColumnLayout}`` of the ``columns`` whose chunks in row group ``index`` the page
    reader reads; the others are logged as pyarrow's, with the reason. ``layouts`` is ``None``
    when the page reader is off."""
    group = file.meta.row_group(index)
    chosen, refused = {}, {}
    for name in columns:
        layout = f"{READER_VARIABLE}=pyarrow" if layouts is None else layouts[name]
        refusal = (
            layout if isinstance(layout, str) else chunk_refusal(group.column(layout.leaf), file.size, layout)
        )
        if refusal is None:
            chosen[name] = layout
            read_log.add(name, PAGES)
        else:
            refused[name] = refusal
            read_log.add(name, PYARROW, refusal)
    if log.isEnabledFor(logging.DEBUG):
        why = "; ".join(f"{name!r} ({reason})" for name, reason in refused.items())
        read = [f"{name} (as float32 labels)" if v.as_float else name for name, v in chosen.items()]
        log.debug("'%s' row group %d: pages read %s; pyarrow read %s", file.name, index, read, why or "none")
    return chosen


def _taken(cursors: dict, m: int, shared: dict, helper: ThreadPoolExecutor | None) -> dict:
    """``{name: the next m rows of its cursor, or the Unsupported or CorruptPage it raised}``, the
    columns taken by the calling thread and ``helper`` (when given) side by side, each column by
    whichever is free next: their pages are decoded without the GIL, and a column's windows,
    scratch buffers and slice of ``shared`` are its own (:mod:`.files` hands out windows under a
    lock). A thread meeting a CorruptPage takes no more columns: the names are handed out in
    order, so every column before the first damaged one (in column order) has its entry, and the
    caller raises for that one. Any other error is raised once both threads are done with the
    cursors."""
    names = iter(list(cursors))  # one iterator: CPython hands each name to one thread
    out: dict = {}

    def take_next() -> None:
        for name in names:
            try:
                out[name] = cursors[name].take(m, shared.get(name))
            except Unsupported as err:  # the column goes on through pyarrow
                out[name] = err
            except CorruptPage as err:  # the batch fails: no more columns taken by this thread
                out[name] = err
                return

    if helper is None:
        take_next()
        return out
    other = helper.submit(take_next)
    try:
        take_next()
    finally:
        wait([other])  # the cursors and the file stay the helper's until it is done
    other.result()
    return out


def _outcome(value):
    if isinstance(value, Exception):
        raise value
    return value


def row_group_batches(
    file,
    index: int,
    columns: list[str],
    decode_rows: int,
    chosen: dict,
    pyarrow_rows,
    fail,
    read_log,
    threads: int = 1,
) -> Iterator[pa.RecordBatch]:
    """The batches of row group ``index`` (see the module).

    ``file``: an object with ``name``, ``size``, ``meta`` and ``schema`` (the footer and its Arrow
    schema) and ``open()`` (a :mod:`.files` object); ``chosen``: :func:`page_columns` (not empty);
    ``pyarrow_rows(names, skip)``: pyarrow's batches of ``names`` in this row group from row
    ``skip``; ``fail(message)``: the error for a corrupt page; ``threads``: how many threads take
    the page-read columns of a batch (2: the caller's and a helper, :func:`_taken`). Storage
    failures (``OSError``) propagate.
    """
    group = file.meta.row_group(index)
    n = group.num_rows
    others = [c for c in columns if c not in chosen]
    source = file.open()
    helper = ThreadPoolExecutor(1, thread_name_prefix="fastxent-pages") if threads > 1 else None
    try:
        # a row group decoded in one batch reads its columns one after another, each to its end
        # (its window then free for the next: :mod:`.files`), so each may have the whole budget
        whole = decode_rows >= n
        window = WINDOW_BYTES if whole else max(MIN_WINDOW_BYTES, WINDOW_BYTES // len(chosen))

        def cursor_of(layout) -> ColumnCursor:
            chunk = group.column(layout.leaf)
            start, size = chunk_range(chunk)
            read = source.chunk(start, size, window)
            codec = CODEC_NAMES[chunk.compression]
            return ColumnCursor(
                read, start, size, layout, codec, chunk.num_values, chunk.total_uncompressed_size, n
            )

        cursors = {name: cursor_of(layout) for name, layout in chosen.items()}
        streams = {}  # columns read by pyarrow: one stream for the chunks refused from the start
        if others:
            shared = _Rows(pyarrow_rows(others, 0))
            streams.update(dict.fromkeys(others, shared))
        done = 0
        while done < n:
            m = min(decode_rows, n - done)
            arrays, fields = {}, {}
            shared = shared_value_buffers({name: cursor.layout for name, cursor in cursors.items()}, m)
            taken = _taken(cursors, m, shared, helper)
            for name, cursor in list(cursors.items()):
                try:
                    try:
                        arrays[name] = _outcome(taken[name])
                    except Unsupported:
                        if not (cursor.layout.as_float and done == 0):
                            raise
                        # labels the chunk cannot give as floats from its first row: as stored
                        cursor = cursors[name] = cursor_of(as_stored(cursor.layout, file.schema.field(name)))
                        arrays[name] = cursor.take(m, shared.get(name))
                    fields[name] = cursor.layout.field  # float32 for labels given as floats
                except Unsupported as why:
                    del cursors[name]
                    reason = f"from row {done} of the row group: {why}"
                    read_log.add(name, PYARROW, reason)
                    log.debug("'%s' row group %d: pyarrow reads %r %s", file.name, index, name, reason)
                    streams[name] = _Rows(pyarrow_rows([name], done))
                except CorruptPage as err:
                    raise fail(f"row group {index}, column '{name}': {err}") from None
            by_stream = {}
            for name, stream in streams.items():
                if id(stream) not in by_stream:
                    try:
                        by_stream[id(stream)] = stream.take(m)
                    except CorruptPage as err:
                        raise fail(f"row group {index}, column '{name}': {err}") from None
                batch = by_stream[id(stream)]
                arrays[name] = batch.column(name)
                fields[name] = batch.schema.field(name)
            schema = pa.schema([fields[c] for c in columns])
            yield pa.RecordBatch.from_arrays([arrays[c] for c in columns], schema=schema)
            done += m
    finally:
        if helper is not None:
            helper.shutdown()
        source.close()
