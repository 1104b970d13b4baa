"""A file's bytes for the page reader, by range reads.

Each column chunk gets a ``read(offset, size)``: one range request of a window of the chunk from
``offset``, at least ``size`` bytes (a page larger than the window is read whole), never past the
chunk's end. Only the window being decoded is held, so a huge row group is never resident whole.

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
from collections.abc import Callable

import numpy as np

from .cursor import CorruptPage


class RangedFile:
    """A file on a pyarrow filesystem (a remote store), read by range requests."""

    def __init__(self, filesystem, path: str):
        self._handle = filesystem.open_input_file(path)

    def chunk(self, start: int, size: int, window: int) -> Callable:
        """``read(offset, size)`` for the chunk of ``size`` bytes at ``start`` (see the module)."""
        end = start + size

        def read(offset: int, size: int) -> np.ndarray:
            data = self._handle.read_at(min(max(size, window), end - offset), offset)
            if len(data) < size:
                raise CorruptPage("the file ends inside the column chunk (truncated?)")
            return np.frombuffer(data, np.uint8)  # a new buffer: views of the last one stay valid

        return read

    def close(self) -> None:
        self._handle.close()


class _SpareWindows(threading.local):
    """The window buffers a thread's last closed :class:`LocalFile` read into, for its next."""

    def __init__(self):
        self.buffers: list[np.ndarray] = []


_spare_windows = _SpareWindows()


class LocalFile:
    """A local file, read by ``pread`` into a window buffer per column chunk (see the module).

    A chunk's window is overwritten by its next read: the page code keeps no view of a window
    past the call that asks for the next one (values, dictionaries and decompressed pages are
    copied out of it)."""

    def __init__(self, path: str):
        self._fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        self._windows: list[np.ndarray] = []  # the buffers of this file's chunks, in order

    def chunk(self, start: int, size: int, window: int) -> Callable:
        """``read(offset, size)`` for the chunk of ``size`` bytes at ``start`` (see the module)."""
        end = start + size
        slot = len(self._windows)
        spares = _spare_windows.buffers
        self._windows.append(spares.pop() if spares else np.empty(0, np.uint8))

        def read(offset: int, size: int) -> np.ndarray:
            wanted = min(max(size, window), end - offset)
            buffer = self._windows[slot]
            if buffer.size < wanted:
                buffer = self._windows[slot] = np.empty(max(wanted, min(window, end - start)), np.uint8)
            got = self._read_into(buffer[:wanted], offset)
            if got < size:
                raise CorruptPage("the file ends inside the column chunk (truncated?)")
            view = buffer[:got]
            view.flags.writeable = False  # the type the page code compiled for (bytes read)
            return view

        return read

    def _read_into(self, buffer: np.ndarray, offset: int) -> int:
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
        _spare_windows.buffers.extend(self._windows)
        self._windows = []
