"""A file's bytes for the page reader: a local file memory-mapped, a remote one by range reads.

Both give each column chunk a ``view(offset, size)`` (a uint8 array of the file's bytes, valid
while the next page is read) and a ``release(lo, hi)`` for the bytes read past. A local file is
mapped once per row group read and its pages are viewed in place, without a copy; released
ranges are dropped from the process's memory (``MADV_DONTNEED``; the page cache keeps them and
a later read faults them back in), so a huge row group is never resident whole. A remote file is
read through a window per column chunk, one range request per window.
"""

from __future__ import annotations

import contextlib
import mmap
from collections.abc import Callable

import numpy as np

from .pages import CorruptPage


def _truncated() -> CorruptPage:
    return CorruptPage("the file ends inside the column chunk (truncated?)")


class MappedFile:
    """A local file, memory-mapped (see the module)."""

    def __init__(self, path: str):
        with open(path, "rb") as f:
            self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self._data = np.frombuffer(self._map, np.uint8)

    def chunk(self, start: int, size: int, window: int) -> tuple[Callable, Callable]:
        return self._view, self._release

    def _view(self, offset: int, size: int) -> np.ndarray:
        piece = self._data[offset : offset + size]
        if piece.size < size:
            raise _truncated()
        return piece

    def _release(self, lo: int, hi: int) -> None:
        lo -= lo % mmap.PAGESIZE
        if hi > lo:
            self._map.madvise(mmap.MADV_DONTNEED, lo, min(hi, len(self._map)) - lo)

    def close(self) -> None:
        """Unmap now, unless arrays still view the map (then it goes with the last of them)."""
        self._data = None
        with contextlib.suppress(BufferError):
            self._map.close()


class _Window:
    """A remote file's bytes through a window of ``size`` bytes, read by ``read(offset, size)``."""

    def __init__(self, read: Callable, end: int, size: int):
        self.read, self.end, self.size = read, end, size
        self.lo = self.hi = 0
        self.buf = np.empty(0, np.uint8)

    def __call__(self, offset: int, size: int) -> np.ndarray:
        if not (self.lo <= offset and offset + size <= self.hi):
            data = self.read(offset, min(max(size, self.size), self.end - offset))
            if len(data) < size:
                raise _truncated()
            self.buf = np.frombuffer(data, np.uint8)  # a new buffer: views of the last one stay valid
            self.lo, self.hi = offset, offset + len(data)
        return self.buf[offset - self.lo : offset - self.lo + size]


class RangedFile:
    """A file on a pyarrow filesystem, read by range requests (see the module)."""

    def __init__(self, filesystem, path: str):
        self._handle = filesystem.open_input_file(path)

    def chunk(self, start: int, size: int, window: int) -> tuple[Callable, Callable]:
        read = self._handle.read_at
        return _Window(lambda offset, count: read(count, offset), start + size, window), _keep

    def close(self) -> None:
        self._handle.close()


def _keep(lo: int, hi: int) -> None:
    """Remote windows are dropped as the reader moves on: nothing to release."""
