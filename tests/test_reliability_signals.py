"""Issue 18, signals: SIGTERM, SIGHUP and Ctrl-C while an output is half written end the command
with one line and leave nothing; after SIGKILL the next run to the same output cleans up.

Each run is the real command in a subprocess. It stops at a known point, with the temporary
output on disk (after the first row group of ``--losses-to`` is written, or once ``make-data``
has written its file), says so on stdout and waits there: the signal is sent on that line, an
event, not after a sleep.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from fastxent.cli import main
from fastxent.io.interrupts import Stopped, stopping_on_signals

# Runs the command with its output paused at the point named by argv[1] ("losses": after the
# first row group of --losses-to is on disk, 1,000 rows a row group; "make-data": after the
# data file is written, before its rename). Prints "paused" and waits for a signal.
# "losses-stopped": as "losses", then once main() has returned prints "cleaned" and waits for a
# line (or the end) of stdin before exiting with main()'s status.
#
# pause() waits on a read of the signal wakeup pipe, not on a lock or signal.pause(): a signal
# arriving between Python's last check for one and the blocking call left those asleep with the
# handler never run (seen once under load: the test waited for "cleaned" forever). The C-level
# handler writes to the wakeup pipe, so the read returns whenever the signal came, and the Python
# handler runs at the next instruction.
_PAUSED_COMMAND = """
import os, signal, sys
from fastxent import synthetic
from fastxent.cli import main
from fastxent.io import sinks

def pause():
    wake, woken = os.pipe()
    os.set_blocking(woken, False)
    signal.set_wakeup_fd(woken)
    print("paused", flush=True)
    while True:
        os.read(wake, 1)

if sys.argv[1].startswith("losses"):
    sinks.OUTPUT_GROUP_ROWS = 1000
    flush = sinks.AtomicTableWriter._flush
    def flush_then_pause(self):
        flush(self)
        self._wait()
        pause()
    sinks.AtomicTableWriter._flush = flush_then_pause
else:
    write = synthetic._write
    def write_then_pause(*args):
        write(*args)
        pause()
    synthetic._write = write_then_pause
code = main(sys.argv[2:])
if sys.argv[1] == "losses-stopped":
    print("cleaned", flush=True)
    sys.stdin.readline()
sys.exit(code)
"""


@pytest.fixture(autouse=True)
def _signals_not_ignored():
    """The signals these tests send at their default dispositions while each runs (and so in
    its children). A suite started under ``nohup`` inherits SIGHUP ignored, which the command
    rightly keeps ignoring (:func:`~fastxent.io.interrupts.stopping_on_signals`): its SIGHUP
    cases would then wait for a signal that never comes."""
    ignored = [
        s for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP) if signal.getsignal(s) is signal.SIG_IGN
    ]
    for signum in ignored:
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
    yield
    for signum in ignored:
        signal.signal(signum, signal.SIG_IGN)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("signals") / "f.parquet"
    assert main(["make-data", str(path), "--rows", "5000", "--classes", "4"]) == 0
    return path


def _line_of(child: subprocess.Popen, timeout: float = 60) -> str:
    """The child's next line of stdout; if none comes within ``timeout`` seconds, the child is
    killed and the test fails (instead of waiting forever)."""
    line = []
    reader = threading.Thread(target=lambda: line.append(child.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not line:
        child.kill()
        pytest.fail(f"no line from the child in {timeout} s; its stderr: {child.communicate()[1]!r}")
    return line[0]


def _paused(where: str, *argv) -> subprocess.Popen:
    child = subprocess.Popen(
        [sys.executable, "-c", _PAUSED_COMMAND, where, *map(str, argv)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert _line_of(child) == "paused\n", child.communicate()[1]
    return child


def _score_losses(data, out):
    return _paused("losses", "score", data, "--target", "label", "--logits", "logits", "--losses-to", out)


@pytest.mark.parametrize(
    "signum,code,line",
    [
        (signal.SIGTERM, 143, "fastxent: terminated by SIGTERM\n"),
        (signal.SIGHUP, 129, "fastxent: terminated by SIGHUP\n"),
        (signal.SIGINT, 130, "fastxent: interrupted\n"),
    ],
)
def test_a_signal_while_writing_losses_leaves_nothing(data, tmp_path, signum, code, line):
    child = _score_losses(data, tmp_path / "o.parquet")
    assert [p.name for p in tmp_path.iterdir()] == [f".o.parquet.{child.pid}.partial"]
    child.send_signal(signum)
    out, err = child.communicate(timeout=60)
    assert (child.returncode, out, err) == (code, "", line)
    assert list(tmp_path.iterdir()) == []


def test_a_second_ctrl_c_during_the_clean_up_changes_nothing(data, tmp_path):
    child = _score_losses(data, tmp_path / "o.parquet")
    child.send_signal(signal.SIGINT)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert (child.returncode, out, err) == (130, "", "fastxent: interrupted\n")
    assert list(tmp_path.iterdir()) == []


def test_sigterm_while_make_data_writes_leaves_nothing(tmp_path):
    child = _paused("make-data", "make-data", tmp_path / "x.parquet", "--rows", "100")
    assert [p.name for p in tmp_path.iterdir()] == [f".x.parquet.{child.pid}.partial"]  # hidden
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=60)
    assert (child.returncode, out, err) == (143, "", "fastxent: terminated by SIGTERM\n")
    assert list(tmp_path.iterdir()) == []


def test_the_next_run_removes_what_a_killed_run_left(data, tmp_path, capsys):
    killed = [
        _score_losses(data, tmp_path / "o.parquet"),
        _paused("make-data", "make-data", tmp_path / "x.csv", "--rows", "9", "--layout", "columns"),
    ]
    for child in killed:
        child.kill()
        child.communicate(timeout=60)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [f".o.parquet.{killed[0].pid}.partial", f".x.csv.{killed[1].pid}.partial"]
    # a live process's temporary file is another run in progress: it stays
    alive = f".o.parquet.{os.getppid()}.partial"
    (tmp_path / alive).write_bytes(b"")
    argv = ["score", data, "--target", "label", "--logits", "logits", "--losses-to", tmp_path / "o.parquet"]
    assert main([str(a) for a in argv]) == 0
    assert main(["make-data", str(tmp_path / "x.csv"), "--rows", "9", "--layout", "columns"]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in tmp_path.iterdir()) == [alive, "o.parquet", "x.csv"]


def test_signals_are_ignored_after_the_first_and_restored_after():
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    with pytest.raises(Stopped) as stop, stopping_on_signals():
        os.kill(os.getpid(), signal.SIGHUP)
    assert (stop.value.exit_code, stop.value.message) == (129, "terminated by SIGHUP")
    assert {s: signal.getsignal(s) for s in before} == before
    with stopping_on_signals():
        with pytest.raises(Stopped):
            os.kill(os.getpid(), signal.SIGTERM)
        assert all(signal.getsignal(s) is signal.SIG_IGN for s in before)
        os.kill(os.getpid(), signal.SIGINT)  # ignored: the clean-up runs to its end
    assert {s: signal.getsignal(s) for s in before} == before


def test_the_command_ignores_signals_after_a_stop_until_it_exits():
    """A second signal that arrives once the clean-up is over (the sender was slower than the
    clean-up) is ignored too: the command exits with the first one's status, not killed."""
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        with pytest.raises(Stopped), stopping_on_signals(ignoring_after_a_stop=True):
            os.kill(os.getpid(), signal.SIGINT)
        assert all(signal.getsignal(s) is signal.SIG_IGN for s in before)
        os.kill(os.getpid(), signal.SIGINT)  # after the block: ignored, nothing raised
        with stopping_on_signals(ignoring_after_a_stop=True):  # not stopped: restored
            pass
        assert all(signal.getsignal(s) is signal.SIG_IGN for s in before)
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def test_a_ctrl_c_after_the_clean_up_of_the_first_changes_nothing(data, tmp_path):
    """The second Ctrl-C held back until the first one's clean-up is done: still 130, one line,
    nothing left (the command's signals stay ignored until it exits)."""
    out = tmp_path / "o.parquet"
    command = ["score", data, "--target", "label", "--logits", "logits", "--losses-to", out]
    child = _paused("losses-stopped", *command)
    child.send_signal(signal.SIGINT)
    assert _line_of(child) == "cleaned\n"  # main() returned: the second one comes now
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert (child.returncode, out, err) == (130, "", "fastxent: interrupted\n")
    assert list(tmp_path.iterdir()) == []


STARTUP_SCRIPT = """
import importlib.abc, os, signal, sys
import fastxent_launch

SIGNUM = int(sys.argv[1])

class SignalDuringImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "fastxent.cli":  # the slow import of numba, pyarrow, the kernels
            os.kill(os.getpid(), SIGNUM)
        return None

sys.meta_path.insert(0, SignalDuringImport())
sys.argv[1:] = ["--version"]
fastxent_launch.run()
"""


@pytest.mark.parametrize(
    "signum, code, line",
    [(2, 130, "fastxent: interrupted\n"), (15, 143, "fastxent: terminated by SIGTERM\n")],
)
def test_a_signal_during_start_up_is_one_line(signum, code, line):
    """The command's entry point handles signals before it imports fastxent (no traceback)."""
    done = subprocess.run(
        [sys.executable, "-c", STARTUP_SCRIPT, str(signum)], capture_output=True, text=True, timeout=120
    )
    assert (done.returncode, done.stderr, done.stdout) == (code, line, "")


def test_numba_disable_jit_is_refused_in_one_line():
    """NUMBA_DISABLE_JIT=1 (set to debug one's own Numba code): the command says in one line that
    fastxent's kernels need the compiler; the library raises one FastxentError at import."""
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    command = [
        sys.executable,
        "-c",
        "import sys, fastxent_launch; sys.argv[1:] = ['info']; fastxent_launch.run()",
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert done.stderr.startswith("fastxent: error: fastxent's kernels run only compiled")
    library = subprocess.run(
        [sys.executable, "-c", "import fastxent"], capture_output=True, text=True, env=env
    )
    assert "FastxentError: fastxent's kernels run only compiled" in library.stderr
