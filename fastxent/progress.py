"""A one-line progress bar on stderr: rows, rows/s, MB/s and (when the total is known) ETA.

Drawn only when asked for (the CLI asks when stderr is a terminal), redrawn at most five times a
second, never wider than the terminal (a line that wraps cannot be redrawn in place: ``\\r``
returns to the start of its last screen line only), and erased at the end so results on stdout
stay clean. ``tqdm`` lays the line out; the rates are computed here, so that the seconds spent
compiling kernels on a first run do not count in rows/s or the ETA.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

_REDRAW_S = 0.2

#: Printed once when the kernels are compiled during this run (the first run, or the first after
#: an upgrade): the first batch then takes seconds, which would otherwise look like a hang.
COMPILE_NOTICE = "compiling kernels (first run only; `fastxent warmup` does it ahead)"


def kernels_cached() -> bool:
    """Whether Numba's cache holds compiled fastxent kernels (any: one compiled kernel means a
    run compiled them before, and later runs compile at most a few more)."""
    from numba.core.caching import FunctionCache

    from .kernels import jit

    # the directory jit.py keeps the kernels' cache in: a FunctionCache of a function there
    return any(Path(FunctionCache(jit._cache_probe)._cache_path).glob("*.nbi"))


class Progress:
    """Call :meth:`advance` per batch; :meth:`close` at the end.

    Parameters
    ----------
    total_rows : int or None
        Rows in the source, when the metadata says (a bar and an ETA), else ``None``.
    stream : file, optional
        Where to draw (default: ``sys.stderr``).
    width : int, optional
        Columns of the line (default: the terminal's width, read at each redraw).
    compiling : bool, optional
        Whether the kernels are compiled in this run (default: :func:`kernels_cached` says no
        kernel is cached). If so, :data:`COMPILE_NOTICE` is printed at once and the first
        batch, which carries the compile time, is left out of the rates.
    clock : callable, optional
        Seconds, as ``time.perf_counter`` (tests pass their own).
    """

    def __init__(self, total_rows: int | None, stream=None, *, width=None, compiling=None, clock=None):
        self.total = total_rows
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.clock = clock if clock is not None else time.perf_counter
        self.rows = 0
        self.nbytes = 0
        self.started = self.clock()
        self._drawn = 0.0
        self._compiling = not kernels_cached() if compiling is None else compiling
        # rates count from here: the start, or the end of the first batch when it compiled
        self._base = None if self._compiling else (self.started, 0, 0)
        if self._compiling:
            self.stream.write(COMPILE_NOTICE + "\n")
            self.stream.flush()

    def advance(self, rows: int, nbytes: int) -> None:
        """Count a batch of ``rows`` rows and ``nbytes`` bytes; redraw if it is time."""
        self.rows += rows
        self.nbytes += nbytes
        now = self.clock()
        if self._base is None:  # the first batch, which compiled the kernels
            self._base = (now, self.rows, self.nbytes)
            return
        if now - self._drawn >= _REDRAW_S:
            self._drawn = now
            # "\033[K" clears what a longer earlier line left to the right
            self.stream.write("\r" + self.line(now, self._columns()) + "\033[K")
            self.stream.flush()

    def _columns(self) -> int:
        return self.width or shutil.get_terminal_size((80, 24)).columns

    def rates(self, now: float) -> tuple[float, float]:
        """``(rows/s, bytes/s)`` since the rates' start (0 before any time has passed)."""
        since, rows, nbytes = self._base
        seconds = now - since
        if seconds <= 0:
            return 0.0, 0.0
        return (self.rows - rows) / seconds, (self.nbytes - nbytes) / seconds

    def line(self, now: float, width: int) -> str:
        """The line at time ``now``, at most ``width - 1`` columns (the last column of a
        terminal line makes some terminals wrap)."""
        from tqdm import tqdm

        rate, byte_rate = self.rates(now)
        return tqdm.format_meter(
            self.rows,
            self.total,
            now - self.started,
            ncols=width - 1,
            unit=" rows",
            unit_scale=True,
            rate=rate or None,
            postfix=f"{byte_rate / 1e6:,.0f} MB/s",
        )

    def close(self) -> None:
        """Erase the line (results follow on stdout)."""
        if self._drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
