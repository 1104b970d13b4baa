"""A one-line progress bar on stderr: rows, rows/s, MB/s and (when the total is known) ETA.

Drawn only when asked for (the CLI asks when stderr is a terminal), redrawn at most five times a
second, and erased at the end so results on stdout stay clean.
"""

from __future__ import annotations

import sys
import time

_REDRAW_S = 0.2


class Progress:
    """Call :meth:`advance` per batch; :meth:`close` at the end. ``total_rows`` may be ``None``."""

    def __init__(self, total_rows: int | None, stream=None):
        self.total = total_rows
        self.stream = stream if stream is not None else sys.stderr
        self.rows = 0
        self.nbytes = 0
        self.started = time.perf_counter()
        self._drawn = 0.0

    def advance(self, rows: int, nbytes: int) -> None:
        self.rows += rows
        self.nbytes += nbytes
        now = time.perf_counter()
        if now - self._drawn >= _REDRAW_S:
            self._drawn = now
            self.stream.write("\r" + self.line(now - self.started))
            self.stream.flush()

    def line(self, elapsed: float) -> str:
        rate = self.rows / elapsed if elapsed > 0 else 0.0
        text = f"{self.rows:,} rows  {rate:,.0f} rows/s  {self.nbytes / 1e6 / max(elapsed, 1e-9):,.0f} MB/s"
        if self.total:
            done = min(self.rows / self.total, 1.0)
            filled = int(done * 24)
            eta = (self.total - self.rows) / rate if rate > 0 else float("nan")
            text = f"[{'#' * filled}{'.' * (24 - filled)}] {done:6.1%}  {text}  ETA {eta:,.0f} s"
        return text

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()
