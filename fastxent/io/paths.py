"""Output paths: what may be written where, checked before any input is read.

Every output (``losses_to``, ``make-data``, report files) is written under a hidden temporary
name beside it, ``.NAME.<pid>.partial``, and renamed when complete. Paths that are not regular
files are never replaced by that rename: a FIFO or a character device (``/dev/null``, a
terminal, ``/dev/stdout`` whatever it points at) is written through, as a stream; any other kind
is refused. A process killed outright (SIGKILL, a power cut) cannot remove its temporary file,
so the next write to the same output removes the temporaries of processes that no longer exist.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import stat

from ..errors import InputValueError
from .filesystems import Storage, storage_of
from .uploads import check_remote_directory

_KINDS = {
    stat.S_IFIFO: "named pipe (FIFO)",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
    stat.S_IFSOCK: "socket",
}
#: Kinds of existing output paths written through instead of replaced.
_STREAMS = (stat.S_IFIFO, stat.S_IFCHR)


def special_kind(mode: int) -> str | None:
    """The kind of a file that is neither a regular file nor a directory ("named pipe (FIFO)",
    "character device", ...), from its ``st_mode``; ``None`` for those two."""
    return _KINDS.get(stat.S_IFMT(mode))


def _opened_file(path: str) -> bool:
    """Whether ``path`` leads through ``/proc/*/fd`` (``/dev/stdout``, ``/dev/fd/3``): a file a
    process holds open, even when it is a regular file (``> out.parquet``)."""
    for _ in range(40):  # the kernel's own limit on links followed
        if os.path.realpath(os.path.dirname(path)).startswith("/proc/"):
            return True
        if not os.path.islink(path):
            return False
        path = os.path.join(os.path.dirname(path), os.readlink(path))
    return False


def is_stream(path: str) -> bool:
    """Whether ``path`` is written through rather than replaced: an existing FIFO or character
    device, or a file a process holds open (replacing what ``/dev/stdout`` points at would
    leave the shell writing to a deleted file)."""
    try:
        if stat.S_IFMT(os.stat(path).st_mode) in _STREAMS:
            return True
    except OSError:
        return False
    return _opened_file(path)


def partial_path(path: str, old: bool = False) -> str:
    """The hidden temporary name of ``path`` for this process: ``.NAME.<pid>.partial``, or with
    ``old``, ``.NAME.<pid>.old.partial`` (where a replaced output waits to be removed)."""
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}.{os.getpid()}{'.old' if old else ''}.partial")


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (this one counts: its temporaries are in use)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale(path: str) -> None:
    """Remove the temporaries of ``path`` (files or directories, ``.NAME.<pid>.partial`` and
    ``.NAME.<pid>.old.partial``) whose process is gone."""
    directory, name = os.path.split(path)
    ours = re.compile(rf"\.{re.escape(name)}\.(\d+)(\.old)?\.partial")
    try:
        entries = os.listdir(directory)
    except OSError:
        return
    for entry in entries:
        match = ours.fullmatch(entry)
        if match is None or _alive(int(match.group(1))):
            continue
        stale = os.path.join(directory, entry)
        with contextlib.suppress(FileNotFoundError):  # another run removed it first
            if os.path.isdir(stale) and not os.path.islink(stale):
                shutil.rmtree(stale)
            else:
                os.unlink(stale)


def _is_input(path: str, inputs: list[str]) -> bool:
    for source in inputs:
        if os.path.abspath(source) == path:
            return True
        if os.path.exists(source) and os.path.exists(path) and os.path.samefile(source, path):
            return True
    return False


def check_utf8_name(path: str) -> None:
    """pyarrow opens paths as UTF-8: a name that is not (Python keeps its bytes as surrogates)
    cannot be opened, so it gets a message instead of an encoding error."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(path).decode("utf-8", "backslashreplace")
        raise InputValueError(
            f"the file name '{shown}' is not valid UTF-8, which pyarrow cannot open; rename the file."
        ) from None


def check_output_path(path, inputs: list[str], what: str = "the output") -> str:
    """The path to write ``path`` to, after checking it can be written (``inputs``: paths it must
    not be). Call before reading any input, so a run cannot fail at its end for its output.

    A symbolic link is followed (the file it points at is replaced, not the link); a FIFO or a
    character device is returned as it is, to be written through (:func:`is_stream`).
    """
    path = os.path.abspath(os.fspath(path))
    check_utf8_name(path)
    if is_stream(path):
        return path
    if os.path.islink(path):  # a link to a FIFO or a device was written through above
        path = os.path.realpath(path)
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        raise InputValueError(f"cannot write '{path}': directory '{directory}' does not exist.")
    if os.path.isdir(path):
        raise InputValueError(f"cannot write {what} '{path}': it is a directory; give a file name.")
    kind = special_kind(os.stat(path).st_mode) if os.path.exists(path) else None
    if kind:  # a FIFO or a device was written through above: a socket or a block device
        raise InputValueError(f"cannot write {what} '{path}': it is a {kind}, not a regular file.")
    if _is_input(path, inputs):
        raise InputValueError(f"the output '{path}' is also an input; choose another file name.")
    probe = partial_path(path)
    try:  # the temporary file is what gets written first: try it (permissions, read-only mounts)
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
        os.unlink(probe)
    except OSError as err:
        raise InputValueError(f"cannot write '{path}': {err.strerror} (in '{directory}').") from None
    remove_stale(path)
    return path


def check_report_directory(path, storage: Storage | None = None) -> None:
    """Check that a directory of outputs (``fastxent report --out``) can be written: it is a
    directory or can be created as one, in a directory that takes new files; on an object store
    (``storage``: :class:`~.filesystems.Storage`), a prefix where new objects may be written."""
    location = storage_of(storage).locate(path)
    if location.remote:
        check_remote_directory(location)
        return
    path = os.path.abspath(location.path)
    check_utf8_name(path)
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise InputValueError(f"cannot write into '{path}': '{existing}' is not a directory.")
    probe = partial_path(os.path.join(existing, "fastxent"))
    try:
        os.mkdir(probe)
        os.rmdir(probe)
    except OSError as err:
        raise InputValueError(f"cannot write into '{path}': {err.strerror} (in '{existing}').") from None


class StreamFile(io.RawIOBase):
    """A write-only file that counts its own position, for outputs written through.

    pyarrow's writers ask where they are (``tell``), which a pipe cannot answer (``lseek``
    fails); the count can, since nothing is written to the file but through this object.
    Opens ``path``, or takes over the open file descriptor ``fd`` (closed with the object).
    """

    def __init__(self, path: str | None = None, *, fd: int | None = None):
        super().__init__()
        self._fd = os.open(path, os.O_WRONLY | os.O_TRUNC) if fd is None else fd
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):  # a pipe may take part of a large write
            done += os.write(self._fd, view[done:])
        self._position += done
        return done

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()
