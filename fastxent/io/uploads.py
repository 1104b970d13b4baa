"""Outputs on a remote filesystem (an object store): checked before any input is read, and
written whole or not at all.

An object store has no rename. An output is written under a hidden temporary key beside it
(:meth:`~.filesystems.Location.temporary`: ``.NAME.<pid>.<random>.partial``), then moved to its
name (on S3 a server-side copy, then the temporary key deleted); when the run fails or is
interrupted, the temporary key is deleted instead, so nothing is left behind. Files that only a
local path can make (the report's plots, drawn by matplotlib) are written to a local temporary
directory first and uploaded the same way (:func:`upload`).
"""

from __future__ import annotations

import contextlib
import posixpath
import tempfile
from pathlib import Path

import pyarrow.fs as pafs

from ..errors import InputValueError
from .failures import storage_errors
from .locations import Location


def probe(location: Location) -> None:
    """Write and delete an empty temporary object beside ``location``: the bucket exists and the
    credentials may write there, checked before the run rather than found out at its end."""
    temporary = location.temporary()
    with storage_errors(location, "write"):
        location.filesystem.open_output_stream(temporary.path).close()
        location.filesystem.delete_file(temporary.path)


def check_remote_output(location: Location, inputs: list[str], what: str = "the output") -> None:
    """Check that the remote file ``location`` can be written (``inputs``: names it must not be)."""
    if location.info().type == pafs.FileType.Directory:
        raise InputValueError(f"cannot write {what} '{location.name}': it is a directory; give a file name.")
    if location.name in inputs or location.path in inputs:
        raise InputValueError(f"the output '{location.name}' is also an input; choose another file name.")
    probe(location)


def check_remote_directory(location: Location) -> None:
    """Check that files can be written under the remote directory (prefix) ``location``."""
    if location.info().type == pafs.FileType.File:
        raise InputValueError(f"cannot write into '{location.name}': it is a file, not a directory.")
    probe(location.child("fastxent"))


def publish(temporary: Location, location: Location) -> None:
    """Move the complete temporary object to its name (replacing an object of that name)."""
    with storage_errors(location, "write"):
        location.filesystem.move(temporary.path, location.path)


def discard(temporary: Location) -> None:
    """Delete a temporary object, if it was made (the run's own error is the one to report)."""
    with contextlib.suppress(OSError):
        temporary.filesystem.delete_file(temporary.path)


def upload(location: Location, write) -> None:
    """Call ``write(local_path)`` on a local temporary file named as ``location`` (its suffix
    may say the format), then upload it under a temporary key and move it to ``location``."""
    temporary = location.temporary()
    with tempfile.TemporaryDirectory(prefix="fastxent-") as directory:
        local = Path(directory) / posixpath.basename(location.path.rstrip("/"))
        write(local)
        try:
            with storage_errors(location, "write"):
                pafs.copy_files(str(local), temporary.path, destination_filesystem=location.filesystem)
            publish(temporary, location)
        except BaseException:
            discard(temporary)
            raise
