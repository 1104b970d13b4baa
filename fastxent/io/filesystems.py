"""Where a path or a URI lives: the local disk, or a filesystem that pyarrow reads.

- A plain path, and a ``file://`` URI, is on the local disk and read through the operating system
  (memory maps, ``os.stat``): the fast path, unchanged by everything below.
- A URI whose scheme pyarrow knows (``s3://``, ``gs://``, ``abfs://``, ``hf://``) gets the
  filesystem of ``pyarrow.fs.FileSystem.from_uri``, configured as pyarrow configures it: for S3
  the standard variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``,
  ``AWS_ENDPOINT_URL``, ...) and query parameters (``?endpoint_override=...&region=...``).
- Any other scheme (``https://``, ``memory://``, ``az://``...) goes to fsspec, when fsspec and
  the package of that scheme are installed, through pyarrow's ``FSSpecHandler``.
- ``filesystem=`` (a pyarrow or fsspec filesystem) puts every path of a call on it;
  ``storage_options=`` configures the filesystems made from URIs: the keyword arguments of the
  pyarrow class (``S3FileSystem(endpoint_override=..., access_key=...)``), or fsspec's options.

A :class:`Location` is a path with its filesystem. It pickles (pyarrow's filesystems do), so a
Dask worker opens the file itself. Failures of the storage itself (credentials, buckets,
network) become one line each (:mod:`.failures`).
"""

from __future__ import annotations

import os
import posixpath
import re
import urllib.parse
import uuid
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.fs as pafs

from ..errors import InputTypeError, InputValueError
from .failures import first_line, storage_error, storage_errors

#: ``scheme://`` at the start of a URI (a Windows drive, ``C:\``, has no slashes after the colon).
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://")
#: Characters that make a path a glob pattern.
GLOB_CHARS = "*?["
#: Schemes of filesystems that keep files in buckets (containers): their first path segment.
_BUCKET_SCHEMES = {"S3FileSystem": "s3", "GcsFileSystem": "gs", "AzureFileSystem": "abfs"}
#: The pyarrow class of each cloud store's scheme, made with ``storage_options``.
_CLASSES = {
    "s3": "S3FileSystem",
    "gs": "GcsFileSystem",
    "gcs": "GcsFileSystem",
    "abfs": "AzureFileSystem",
    "abfss": "AzureFileSystem",
}


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
        return _BUCKET_SCHEMES.get(name) or scheme(self.name) or name

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
        if not self.remote:
            return os.path.exists(self.path)
        return self.info().type != pafs.FileType.NotFound

    def is_directory(self) -> bool:
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
        if self.kind in _BUCKET_SCHEMES.values():
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


def _fsspec_filesystem(fs) -> pafs.FileSystem:
    """An fsspec filesystem as a pyarrow one (``pyarrow.fs.PyFileSystem(FSSpecHandler(fs))``)."""
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs))


def _is_fsspec(value) -> bool:
    try:
        import fsspec
    except ImportError:
        return False
    return isinstance(value, fsspec.AbstractFileSystem)


def _option_value(text: str):
    """A ``--storage-option`` value as the filesystems take it: a boolean, a number, or text."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def parse_storage_option(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` of ``--storage-option`` as ``(key, value)`` (see :func:`_option_value`)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"expected KEY=VALUE, got {text!r}")
    return key, _option_value(value)


class Storage:
    """How the paths and URIs of one call are read and written.

    Parameters
    ----------
    filesystem : pyarrow.fs.FileSystem or fsspec.AbstractFileSystem, optional
        Every path of the call is on it (a URI's scheme is dropped).
    storage_options : dict, optional
        Options of the filesystems made from URIs: keyword arguments of the pyarrow class for
        the schemes pyarrow knows (``s3``: ``S3FileSystem(**storage_options)``, the endpoint
        still from ``AWS_ENDPOINT_URL`` unless given), fsspec's options for the others.
    """

    def __init__(self, filesystem=None, storage_options: dict | None = None):
        if filesystem is not None and storage_options:
            raise InputValueError(
                "pass either `filesystem` or `storage_options`: the options configure the "
                "filesystems made from URIs, and `filesystem` is used as it is."
            )
        if storage_options is not None and not isinstance(storage_options, dict):
            raise InputTypeError(f"`storage_options` must be a dict, got {type(storage_options).__name__}.")
        if filesystem is not None and not isinstance(filesystem, pafs.FileSystem):
            if not _is_fsspec(filesystem):
                raise InputTypeError(
                    "`filesystem` must be a pyarrow.fs.FileSystem or an fsspec filesystem, got "
                    f"{type(filesystem).__name__}."
                )
            filesystem = _fsspec_filesystem(filesystem)
        if isinstance(filesystem, pafs.LocalFileSystem):
            filesystem = None  # the operating system reads the local disk faster (memory maps)
        self.filesystem = filesystem
        self.storage_options = dict(storage_options or {})

    def locate(self, source) -> Location:
        """The :class:`Location` of a path or URI (a glob pattern stays a pattern in its path)."""
        text = os.fspath(source)
        if isinstance(text, bytes):
            text = os.fsdecode(text)
        if self.filesystem is not None:
            return Location(self._strip(text), self.filesystem, text)
        found = scheme(text)
        if found is None:
            return Location(text)
        if found == "file":
            parsed = urllib.parse.urlsplit(text)
            if parsed.netloc not in ("", "localhost"):
                raise InputValueError(f"'{text}' names the host '{parsed.netloc}'; a file:// URI is local.")
            path = urllib.parse.unquote(parsed.path)
            return Location(path, None, path)
        # in a URI "?" starts the query (s3://bucket/key?endpoint_override=...): "*" and "[" glob
        path, mark, query = text.partition("?")
        cut = min((path.find(c) for c in "*[" if c in path), default=-1)
        if cut >= 0:  # a pattern: the filesystem of the part before it, the pattern appended
            head = path.rfind("/", 0, cut)
            base = self._remote(path[: head + 1] + mark + query, found)
            return Location(_join(base.path, path[head + 1 :]), base.filesystem, path)
        return self._remote(text, found)

    def _strip(self, text: str) -> str:
        """A URI's path on the given filesystem (its scheme dropped), or a plain path as it is."""
        handler = getattr(self.filesystem, "handler", None)
        if isinstance(handler, pafs.FSSpecHandler):
            return handler.fs._strip_protocol(text)
        match = _SCHEME.match(text)
        return text[match.end() :] if match else text

    def _remote(self, uri: str, found: str) -> Location:
        """The location of ``uri`` on the filesystem its scheme names."""
        try:
            native = self._native(uri, found)
        except pa.ArrowInvalid as err:
            if "Unrecognized filesystem type" not in str(err):
                raise InputValueError(f"cannot read '{uri}': {first_line(err)}") from None
            native = None
        except OSError as err:  # S3 resolves the bucket's region: the storage's own errors
            raise storage_error(err, Location(uri.split("://", 1)[1], None, uri)) from None
        if native is not None:
            fs, path = native
            return Location(path, fs, uri)
        try:
            import fsspec.core
        except ImportError:
            raise InputValueError(
                f"'{uri}': pyarrow has no filesystem for '{found}://'; install fsspec (and its "
                f"package for '{found}', such as s3fs, gcsfs, adlfs or aiohttp) to read it."
            ) from None
        try:
            fs, path = fsspec.core.url_to_fs(uri, **self.storage_options)
        except ImportError as err:  # fsspec knows the scheme, its package is missing
            raise InputValueError(f"cannot read '{uri}': {first_line(err)}.") from None
        except ValueError as err:
            raise InputValueError(f"cannot read '{uri}': {first_line(err)}.") from None
        return Location(path, _fsspec_filesystem(fs), uri)

    def _native(self, uri: str, found: str):
        """``(filesystem, path)`` from pyarrow for ``uri``. With ``storage_options``, a cloud
        store's filesystem class is made with them (not from the URI: that would ask AWS for the
        bucket's region, even when the options name another endpoint). Raises ``ArrowInvalid``
        for schemes pyarrow does not know."""
        if not self.storage_options or found not in _CLASSES:
            return pafs.FileSystem.from_uri(uri)
        cls = getattr(pafs, _CLASSES[found], None)
        if cls is None:
            raise InputValueError(f"'{uri}': this pyarrow was built without pyarrow.fs.{_CLASSES[found]}.")
        options = dict(self.storage_options)
        if cls is pafs.S3FileSystem and "endpoint_override" not in options:
            # from_uri reads the endpoint from the environment; the class itself does not
            endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
            if endpoint:
                options["endpoint_override"] = endpoint
        try:
            fs = cls(**options)
        except TypeError as err:
            raise InputValueError(
                f"storage_options for '{found}://' are the arguments of pyarrow.fs.{cls.__name__}: "
                f"{first_line(err)}."
            ) from None
        parsed = urllib.parse.urlsplit(uri)
        # the bucket, or Azure's container (abfs://container@account.dfs.core.windows.net/path)
        bucket = parsed.netloc.split("@", 1)[0]
        return fs, bucket + urllib.parse.unquote(parsed.path)


#: The storage of a call that passes neither ``filesystem`` nor ``storage_options``.
LOCAL = Storage()


def storage_of(storage: Storage | None) -> Storage:
    """``storage``, or the default one (URIs configured by the environment)."""
    return LOCAL if storage is None else storage
