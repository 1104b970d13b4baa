"""A :class:`Location`: a path with the filesystem it is on, and what reading and writing ask it.

``filesystem=None`` is the local disk, read through the operating system (memory maps,
``os.stat``): the fast path. Any other filesystem is one of pyarrow's (S3, GCS, Azure, or fsspec's
through ``FSSpecHandler``). A location pickles (pyarrow's filesystems do), so a Dask worker opens
the file itself. Which filesystem a path or URI is on: :mod:`.filesystems`.
"""

from __future__ import annotations

import os
import posixpath
import re
import uuid
from dataclasses import dataclass

import pyarrow.fs as pafs

from ..errors import InputValueError
from .failures import storage_errors

#: ``scheme://`` at the start of a URI (a Windows drive, ``C:\``, has no slashes after the colon).
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://")
#: Characters that make a path a glob pattern.
GLOB_CHARS = "*?["
#: Schemes of filesystems that keep files in buckets (containers): their first path segment.
BUCKET_SCHEMES = {"S3FileSystem": "s3", "GcsFileSystem": "gs", "AzureFileSystem": "abfs"}


def scheme(text: str) -> str | None:
    """The scheme of a URI (``"s3"``), ``None`` for a plain path."""
    match = _SCHEME.match(text)
    return match.group(1).lower() if match else None


@dataclass(frozen=True)
class Location:
    """A file or directory: ``path`` on ``filesystem`` (``None``: the local disk, read through the
    operating system), shown in messages as ``name`` (the path or the URI as given)."""

    path: str
    filesystem: pafs.FileSystem | None = None
    name: str = ""

    def __post_init__(self):
        if not self.name:
            object.__setattr__(self, "name", self.path)

    @property
    def remote(self) -> bool:
        """Whether the location is read through a pyarrow filesystem, not the operating system."""
        return self.filesystem is not None

    @property
    def kind(self) -> str:
        """What stores the location: ``"s3"``, ``"gs"``, ``"abfs"`` for the cloud stores (buckets),
        else the URI's scheme, else the filesystem's type (``"local"`` for the local disk)."""
        if not self.remote:
            return scheme(self.name) or "local"
        name = type(self.filesystem).__name__
        return BUCKET_SCHEMES.get(name) or scheme(self.name) or name

    def child(self, relative: str) -> Location:
        """The location ``relative`` (``/``-separated) below this one, on the same filesystem."""
        if not self.remote:
            path = os.path.join(self.path, *relative.split("/"))
            return Location(path, None, path)
        name, query = split_query(self.name)
        return Location(_join(self.path, relative), self.filesystem, _join(name, relative) + query)

    def sibling(self, name: str) -> Location:
        """The location called ``name`` in the same directory (prefix) as this one."""
        if not self.remote:
            path = os.path.join(os.path.dirname(self.path), name)
            return Location(path, None, path)
        shown, query = split_query(self.name)
        return Location(
            _join(posixpath.dirname(self.path), name), self.filesystem, _join(_parent(shown), name) + query
        )

    def relative_to(self, root: Location) -> str:
        """This location's path below ``root``, ``/``-separated."""
        if not self.remote:
            return os.path.relpath(self.path, root.path).replace(os.sep, "/")
        return posixpath.relpath(self.path, root.path.rstrip("/") or "/")

    def info(self) -> pafs.FileInfo:
        """The filesystem's :class:`pyarrow.fs.FileInfo` of a remote location."""
        with storage_errors(self):
            return self.filesystem.get_file_info(self.path)

    def exists(self) -> bool:
        """Whether a file or directory is at the location."""
        if not self.remote:
            return os.path.exists(self.path)
        return self.info().type != pafs.FileType.NotFound

    def is_directory(self) -> bool:
        """Whether the location is a directory (on an object store: a prefix of keys)."""
        if not self.remote:
            return os.path.isdir(self.path)
        return self.info().type == pafs.FileType.Directory

    def file_size(self) -> int:
        """The size of a remote input file, after checking that it exists and is a file."""
        info = self.info()
        if info.type == pafs.FileType.NotFound:
            raise InputValueError(self.missing())
        if info.type == pafs.FileType.Directory:
            raise InputValueError(f"'{self.name}' is a directory; pass it alone to read it as a dataset.")
        return info.size

    def head(self, count: int) -> bytes:
        """The first ``count`` bytes of a remote file."""
        with storage_errors(self), self.filesystem.open_input_stream(self.path) as stream:
            return stream.read(count)

    def missing(self) -> str:
        """Why a remote location does not exist: its bucket is missing, or the key is."""
        if self.kind in BUCKET_SCHEMES.values():
            bucket = self.path.split("/", 1)[0]
            with storage_errors(self):
                found = self.filesystem.get_file_info(bucket).type != pafs.FileType.NotFound
            if not found:
                return f"'{self.name}' does not exist: there is no bucket '{bucket}'."
        return f"'{self.name}' does not exist."

    def temporary(self) -> Location:
        """A hidden temporary name beside this location, unique to this process and this call:
        ``.NAME.<pid>.<random>.partial`` (an object store is shared by many machines)."""
        name = posixpath.basename(self.path.rstrip("/"))
        return self.sibling(f".{name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.partial")


def split_query(name: str) -> tuple[str, str]:
    """A URI's name without its query, and the query (``"?region=..."``; ``""`` if none): a path
    joined onto the URI goes before it."""
    if scheme(name) is None:
        return name, ""
    path, mark, query = name.partition("?")
    return path, mark + query


def _join(base: str, relative: str) -> str:
    return f"{base.rstrip('/')}/{relative}" if base.rstrip("/") else relative


def _parent(name: str) -> str:
    """The parent of a URI or path: everything up to its last ``/`` (a bucket's root stays)."""
    return name.rstrip("/").rsplit("/", 1)[0] if "/" in name.rstrip("/") else ""
