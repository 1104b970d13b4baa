"""A file's bytes for the page reader, by range reads through a pyarrow filesystem.

Each column chunk gets a ``read(offset, size)``: one range request (``pread`` on a local file)
of a window of the chunk from ``offset``, at least ``size`` bytes (a page larger than the window
is read whole), never past the chunk's end. Only the window being decoded is held, so a huge row
group is never resident whole. Local files are read this way too rather than memory-mapped:
threads faulting pages of a mapping in while others map and unmap theirs serialised on the
process's memory map (binary 100M rows: 0.60 s mapped, 0.35 s read).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .cursor import CorruptPage


class RangedFile:
    """A file on a pyarrow filesystem (local or remote), read by range requests."""

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
