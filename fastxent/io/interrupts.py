"""Signals that stop the ``fastxent`` command: SIGINT, SIGTERM and SIGHUP all end it as Ctrl-C does.

Python's default action for SIGTERM and SIGHUP ends the process on the spot, without unwinding:
no ``finally`` runs, so a temporary output file stayed behind. While the command runs, each of
these signals raises :class:`Stopped` in the main thread instead, so every writer removes its
temporary file on the way out. The first signal also makes the process ignore the next ones:
a second Ctrl-C arriving during that clean-up interrupted it half-way (and printed "Exception
ignored in: <generator ...>"). A run that will not stop can still be killed (SIGKILL); the next
run to the same output removes what it left (:func:`~fastxent.io.paths.remove_stale`).
"""

from __future__ import annotations

import contextlib
import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Stopped(KeyboardInterrupt):
    """The command was stopped by signal ``signum``; it exits with ``128 + signum`` (the shell's
    convention: 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def message(self) -> str:
        if self.signum == signal.SIGINT:
            return "interrupted"
        return f"terminated by {signal.Signals(self.signum).name}"


@contextlib.contextmanager
def stopping_on_signals(ignoring_after_a_stop: bool = False):
    """While inside, SIGINT, SIGTERM and SIGHUP raise :class:`Stopped` (then are ignored until
    the end); the previous handlers come back on leaving, unless a signal stopped the block and
    ``ignoring_after_a_stop`` (the command, which exits next: a second Ctrl-C sent right after
    the first, but arriving once the clean-up was done, raised KeyboardInterrupt on the way out
    and the process died by SIGINT rather than exiting with 130). A signal ignored already stays
    ignored (``nohup`` ignores SIGHUP, a shell script's ``&`` SIGINT). Signal handlers belong to
    the main thread, so elsewhere (``main()`` called from a thread) this changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    caught = [signum for signum, handler in previous.items() if handler is not signal.SIG_IGN]
    stopped = []

    def stop(signum: int, frame) -> None:
        for other in caught:
            signal.signal(other, signal.SIG_IGN)
        stopped.append(signum)
        raise Stopped(signum)

    for signum in caught:
        signal.signal(signum, stop)
    try:
        yield
    finally:
        if not (stopped and ignoring_after_a_stop):
            for signum, handler in previous.items():
                signal.signal(signum, handler)
