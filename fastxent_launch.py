"""The ``fastxent`` command's entry point: a signal during start-up ends it in one line.

``import fastxent`` loads numba, pyarrow and the kernels' cache, which takes a second or more; a
Ctrl-C (or SIGTERM, SIGHUP) in that time printed a traceback, since :func:`fastxent.cli.main`
installs its handlers once it is imported. This module, which imports nothing slow, installs
handlers first: a signal before ``main`` starts ends the command with one line and the shell's
exit status (130, 143, 129). Nothing has been written yet, so there is nothing to clean up.
"""

from __future__ import annotations

import os
import signal
import sys

_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _stop(signum: int, frame) -> None:
    what = "interrupted" if signum == signal.SIGINT else f"terminated by {signal.Signals(signum).name}"
    os.write(2, f"fastxent: {what}\n".encode())
    os._exit(128 + signum)


def run() -> None:
    """Import the command with start-up signals handled, then run it (it installs its own)."""
    previous = {}
    for signum in _SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:  # nohup's SIGHUP stays ignored
            previous[signum] = signal.signal(signum, _stop)
    try:
        from fastxent.cli import main
    except Exception as err:  # an environment fastxent cannot run in: said in one line
        if type(err).__module__ != "fastxent.errors":
            raise
        os.write(2, f"fastxent: error: {err}\n".encode())
        sys.exit(1)

    for signum, handler in previous.items():
        signal.signal(signum, handler)
    sys.exit(main())
