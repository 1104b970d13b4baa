"""A file's bytes for the page reader, by range reads.

Each column chunk gets a ``read(offset, size)``: one range request of a window of the chunk from
``offset``, at least ``size`` bytes (a page larger than the window is read whole), never past the
chunk's end; ``read.done()`` once the chunk is read. Only the window being decoded is held, so a
huge row group is never resident whole.

A local file (:class:`LocalFile`) is read with ``pread`` into windows kept from one row group to
the next by the thread reading them: a fresh buffer for every window (pyarrow's ``read_at``) had
the kernel map and zero new pages for each read once windows outgrew the allocator's cached
sizes (100 float columns in 320 KB windows: 1.25 s of page faults a 4M-row file, against 0.6 s
in all with reused windows). Local files are read rather than memory-mapped: a file truncated
under a mapping raises SIGBUS in the decoder, and threads faulting pages of a mapping in while
others map and unmap theirs serialised on the process's memory map (binary 100M rows: 0.60 s
mapped, 0.35 s read). A file in a remote store (:class:`RangedFile`) is read by its pyarrow
filesystem, a new buffer a window.
"""

from __future__ import annotations

import os
import threading

import numpy as np

from .cursor import CorruptPage


class RangedFile:
    """A file on a pyarrow filesystem (a remote store), read by range requests."""

    def __init__(self, filesystem, path: str):
        self._handle = filesystem.open_input_file(path)

    def chunk(self, start: int, size: int, window: int) -> _RangedChunk:
        """``read(offset, size)`` for the chunk of ``size`` bytes at ``start`` (see the module)."""
        return _RangedChunk(self._handle, start + size, window)

    def close(self) -> None:
        self._handle.close()


class _RangedChunk:
    """``read(offset, size)`` of one chunk of a :class:`RangedFile`; ``done()`` does nothing (each
    window is a new buffer)."""

    def __init__(self, handle, end: int, window: int):
        self._handle, self._end, self._window = handle, end, window

    def __call__(self, offset: int, size: int) -> np.ndarray:
        data = self._handle.read_at(min(max(size, self._window), self._end - offset), offset)
        if len(data) < size:
            raise CorruptPage("the file ends inside the column chunk (truncated?)")
        return np.frombuffer(data, np.uint8)  # a new buffer: views of the last one stay valid

    def done(self) -> None:
        pass


class _SpareWindows(threading.local):
    """The window buffers a thread's last closed :class:`LocalFile` read into, for its next."""

    def __init__(self):
        self.buffers: list[np.ndarray] = []


_spare_windows = _SpareWindows()


class LocalFile:
    """A local file, read by ``pread`` into a window buffer per column chunk (see the module).

    A chunk's window is overwritten by its next read: the page code keeps no view of a window
    past the call that asks for the next one (values, dictionaries and decompressed pages are
    copied out of it). A chunk read to its end gives its buffer back (``done()``) to the next
    chunk: columns read one after another (a row group decoded in one batch) share one, one for
    each of the two threads where two take a row group's columns (:func:`.rowgroup._taken`)."""

    def __init__(self, path: str):
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        spares = _spare_windows.buffers
        self._free, self._held = list(spares), list(spares)  # buffers unused; all this file's
        spares.clear()
        self._lock = threading.Lock()  # two threads may take a row group's columns (rowgroup._taken)

    def chunk(self, start: int, size: int, window: int) -> _LocalChunk:
        """``read(offset, size)`` for the chunk of ``size`` bytes at ``start`` (see the module)."""
        return _LocalChunk(self, start, start + size, window)

    def buffer(self, n: int) -> np.ndarray:
        """A buffer of at least ``n`` bytes: the free one freed last that is large enough (still
        in the cache), else a new one an eighth larger (the next chunk of a column is a few bytes
        longer or shorter), a free one too small for it dropped, so that the file holds no more
        buffers than chunks at once."""
        with self._lock:
            return self._buffer(n)

    def _buffer(self, n: int) -> np.ndarray:
        for k in range(len(self._free) - 1, -1, -1):
            if self._free[k].size >= n:
                return self._free.pop(k)
        if self._free:
            small = self._free.pop()
            self._held = [b for b in self._held if b is not small]
        buffer = np.empty(n + n // 8, np.uint8)
        self._held.append(buffer)
        return buffer

    def give_back(self, buffer: np.ndarray) -> None:
        with self._lock:
            self._free.append(buffer)

    def read_into(self, buffer: np.ndarray, offset: int) -> int:
        """Read ``buffer.size`` bytes from ``offset`` (fewer at the end of the file): ``pread``
        returns short counts on interruption, so it is called until done."""
        done = 0
        while done < buffer.size:
            got = os.preadv(self._fd, [buffer[done:]], offset + done)
            if got == 0:
                break
            done += got
        return done

    def close(self) -> None:
        os.close(self._fd)
        _spare_windows.buffers.extend(self._held)
        self._free = self._held = []


class _LocalChunk:
    """``read(offset, size)`` of one chunk of a :class:`LocalFile`, into the chunk's window buffer;
    ``done()``: the chunk is read, its buffer free for the file's next chunk."""

    def __init__(self, file: LocalFile, start: int, end: int, window: int):
        self._file, self._start, self._end, self._window = file, start, end, window
        self._buffer: np.ndarray | None = None

    def __call__(self, offset: int, size: int) -> np.ndarray:
        wanted = min(max(size, self._window), self._end - offset)
        buffer = self._buffer
        if buffer is None or buffer.size < wanted:
            if buffer is not None:
                self._file.give_back(buffer)
            buffer = self._buffer = self._file.buffer(max(wanted, min(self._window, self._end - self._start)))
        got = self._file.read_into(buffer[:wanted], offset)
        if got < size:
            raise CorruptPage("the file ends inside the column chunk (truncated?)")
        view = buffer[:got]
        view.flags.writeable = False  # the type the page code compiled for (bytes read)
        return view

    def done(self) -> None:
        if self._buffer is not None:
            self._file.give_back(self._buffer)
            self._buffer = None
