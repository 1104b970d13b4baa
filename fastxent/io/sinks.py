"""Outputs written whole or not at all: per-row losses (``losses_to=``), files and directories.

Each output is written under a hidden temporary name and renamed when complete; leaving through
any exception (``KeyboardInterrupt``, and the CLI's SIGTERM/SIGHUP, included) removes the
temporary file, so no partial output remains. What the names are, which paths are written
through instead (FIFOs, devices, ``-`` for standard output) and how a killed run's temporaries
go: :mod:`.paths`; which format a name asks for: :mod:`.formats`. An output on an object store
(a URI, or a path on the ``filesystem`` of the call; :class:`~.filesystems.Storage`) is written
under a temporary key and moved: :mod:`.uploads`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa

from ..errors import InputValueError
from . import paths, uploads
from .failures import storage_errors
from .filesystems import Storage, storage_of
from .formats import STDOUT, check_directory_name, output_format
from .locations import scheme, split_query
from .paths import StreamFile, is_stream, partial_path, remove_stale
from .writeback import replace_over, start_writeback
from .writers import TableWriter, column_options

#: Rows per row group (Parquet) or record batch (Arrow IPC) of a per-row output.
OUTPUT_GROUP_ROWS = 1 << 20


def check_output_path(
    path, inputs: list[str], what: str = "the output", storage: Storage | None = None
) -> str:
    """The path to write a table to, after checking that its name asks for a format fastxent
    writes (:func:`~.formats.output_format`) and that it can be written
    (:func:`~.paths.check_output_path`; ``inputs``: paths it must not be). ``-`` (standard output)
    is returned as it is, a remote output (see ``storage``) as its name. Call before reading any
    input, so a run cannot fail at its end for its output.
    """
    if os.fspath(path) == STDOUT:
        try:
            sys.stdout.fileno()
        except (AttributeError, OSError) as err:  # a notebook's stdout, a test's capture
            raise InputValueError(
                f"{what} '-' is standard output, which here is not a file ({err}); give a file name."
            ) from None
        return STDOUT
    location = storage_of(storage).locate(path)
    if location.remote:
        output_format(split_query(location.name)[0], what=what)
        uploads.check_remote_output(location, inputs, what)
        return location.name
    checked = paths.check_output_path(location.path, inputs, what)
    output_format(checked, what=what)
    return checked


class AtomicTableWriter:
    """Buffer tables and write them in large pieces to ``path`` via a temporary file, in the
    format its name asks for (:func:`~.formats.output_format`: Parquet, Arrow IPC or CSV).

    Use as a context manager: leaving it normally renames the temporary file to ``path``;
    leaving it through any exception (``KeyboardInterrupt`` included) deletes it. Pieces (row
    groups, record batches) are encoded and written in a background thread (pyarrow releases the
    GIL), one at a time, so writing overlaps scoring while at most two pieces are held. A
    ``path`` that is a FIFO or a device (:func:`~.paths.is_stream`), or ``-`` (standard output),
    is written through: what was written stays written. A remote ``path`` (``storage``) is
    written under a temporary key, moved to ``path`` or deleted (:mod:`.uploads`).
    """

    def __init__(self, path: str, storage: Storage | None = None):
        self.path = path
        location = None if path == STDOUT else storage_of(storage).locate(path)
        self.remote = location if location is not None and location.remote else None
        self.format = output_format(path if self.remote is None else split_query(path)[0])
        if self.remote is not None:
            self.partial = self.remote.temporary()
        else:
            self.partial = None if path == STDOUT or is_stream(path) else partial_path(path)
        self._writer: TableWriter | None = None
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="fastxent-writer")
        self._in_flight: Future | None = None

    def __enter__(self) -> AtomicTableWriter:
        return self

    def write(self, table: pa.Table) -> None:
        self._pending.append(table)
        self._pending_rows += table.num_rows
        if self._pending_rows >= OUTPUT_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        table = pa.concat_tables(self._pending)
        self._pending, self._pending_rows = [], 0
        self._wait()  # the previous row group is written (and its errors raised) first
        if self._writer is None:
            options = column_options(table.schema)
            self._writer = TableWriter(self._target(), table.schema, self.format, options, rows_writer=True)
        self._in_flight = self._thread.submit(self._write, table)

    def _write(self, table: pa.Table) -> None:
        """Write a piece (in the writer's thread); a local temporary file's pages start going to
        disk at once, not in the rename (:mod:`.writeback`)."""
        self._writer.write(table, OUTPUT_GROUP_ROWS)
        if self.remote is None and self.partial is not None:
            start_writeback(self.partial)

    def _target(self):
        """Where the writer writes: the temporary file or key, or the stream written through."""
        if self.remote is not None:
            with storage_errors(self.remote, "write"):
                return self.remote.filesystem.open_output_stream(self.partial.path)
        if self.partial is not None:
            return self.partial
        if self.path == STDOUT:
            sys.stdout.flush()  # what was printed before comes first
            return StreamFile(fd=os.dup(sys.stdout.fileno()))
        return StreamFile(self.path)

    def _wait(self) -> None:
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            in_flight.result()

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._flush()
                self._wait()
                if self._writer is not None:
                    self._writer.close()
                    self._writer = None
                    if self.remote is not None:
                        uploads.publish(self.partial, self.remote)
                        self.partial = None
                    elif self.partial is not None:
                        replace_over(self.partial, self.path)
        finally:
            with contextlib.suppress(Exception):  # the run's own error is the one to report
                self._wait()
            self._thread.shutdown()
            try:
                if self._writer is not None:
                    self._writer.close()
            finally:
                self._remove_partial()

    def _remove_partial(self) -> None:
        """Remove the temporary file or key of a run that failed (a written one is renamed)."""
        if self.remote is not None:
            if self.partial is not None:
                uploads.discard(self.partial)
        elif self.partial is not None and os.path.exists(self.partial):
            os.unlink(self.partial)


def atomic_write(path, write, storage: Storage | None = None) -> None:
    """Call ``write(temporary_path)``, then rename the result to ``path``; remove it on failure.

    A ``path`` that is a FIFO or a device is passed to ``write`` itself (written through); a
    remote one (``storage``) gets a local temporary file, then is uploaded (:func:`.uploads.upload`).
    """
    location = storage_of(storage).locate(path)
    if location.remote:
        uploads.upload(location, write)
        return
    path = Path(paths.check_output_path(location.path, []))
    if is_stream(str(path)):
        write(path)
        return
    partial = Path(partial_path(str(path)))
    try:
        write(partial)
        os.replace(partial, path)
    finally:
        if partial.exists():
            partial.unlink()


#: The names of the files an :class:`AtomicDirectory` holds (what Dask's ``losses_to`` writes).
PART_NAME = re.compile(r"part-\d{5}\.parquet")


def check_output_dir(
    path, inputs: list[str], storage: Storage | None = None, what: str = "the output directory"
) -> str:
    """The absolute path of an output directory of ``part-NNNNN.parquet`` files, after checking
    it can be written: named as a directory (:func:`~.formats.check_directory_name`; ``what``
    names it in that error), it may exist only as a directory holding nothing else (a previous
    run's output, replaced whole), and hold no input. It is a local (or shared) directory: an
    object store cannot make a directory of files appear at once."""
    check_directory_name(path, what)
    storage = storage_of(storage)
    if storage.filesystem is not None or scheme(os.fspath(path)) not in (None, "file"):
        raise InputValueError(
            f"cannot write the output directory '{path}': the Dask workers' losses go to a local or "
            "shared directory, which an object store is not; give a directory on a shared filesystem, "
            "or score with fx.score(losses_to=URI), which writes one file."
        )
    path = os.path.abspath(storage.locate(path).path)  # file:// as a path
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise InputValueError(f"cannot write '{path}': directory '{parent}' does not exist.")
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise InputValueError(f"cannot write the output directory '{path}': it exists and is not one.")
        others = sorted(n for n in os.listdir(path) if not PART_NAME.fullmatch(n))
        if others:
            raise InputValueError(
                f"the output directory '{path}' holds other files than part-NNNNN.parquet "
                f"('{others[0]}'...); choose a new or empty directory."
            )
    for source in inputs:
        if os.path.abspath(source) == path or os.path.abspath(source).startswith(path + os.sep):
            raise InputValueError(f"the output directory '{path}' holds an input; choose another one.")
    probe = partial_path(path)
    try:  # the temporary directory is what gets written first: try it
        os.mkdir(probe)
        os.rmdir(probe)
    except OSError as err:
        raise InputValueError(f"cannot write '{path}': {err.strerror} (in '{parent}').") from None
    remove_stale(path)
    return path


def _remove_tree(path: str) -> None:
    """Remove a directory tree that writers still running elsewhere (Dask tasks of a failed
    run) may add files to: once it is gone they cannot, as nothing creates it again."""
    for _ in range(100):
        try:
            shutil.rmtree(path)
            return
        except FileNotFoundError:
            return
        except OSError as err:
            if err.errno != errno.ENOTEMPTY:
                raise
    shutil.rmtree(path)


class AtomicDirectory:
    """An output directory that appears whole or not at all: its files are written into a hidden
    temporary directory beside it (:attr:`partial`), renamed to ``path`` when leaving the context
    normally (replacing a previous run's output) and removed when leaving through an exception.
    ``path`` must have passed :func:`check_output_dir`."""

    def __init__(self, path: str):
        self.path = path
        self.partial = partial_path(path)

    def __enter__(self) -> AtomicDirectory:
        os.mkdir(self.partial)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                for name in os.listdir(self.partial):
                    if not PART_NAME.fullmatch(name):  # a killed task attempt's temporary file
                        os.unlink(os.path.join(self.partial, name))
                old = None
                if os.path.exists(self.path):
                    old = partial_path(self.path, old=True)
                    os.replace(self.path, old)
                os.replace(self.partial, self.path)
                if old is not None:
                    shutil.rmtree(old)
        finally:
            _remove_tree(self.partial)
