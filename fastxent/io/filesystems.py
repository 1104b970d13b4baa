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

The result is a :class:`~.locations.Location`, a path with its filesystem. Failures of the
storage itself (credentials, buckets, network) become one line each (:mod:`.failures`).
"""

from __future__ import annotations

import os
import urllib.parse

import pyarrow as pa
import pyarrow.fs as pafs

from ..errors import InputTypeError, InputValueError
from .failures import first_line, storage_error
from .locations import Location, scheme

#: The pyarrow class of each cloud store's scheme, made with ``storage_options``.
_CLASSES = {
    "s3": "S3FileSystem",
    "gs": "GcsFileSystem",
    "gcs": "GcsFileSystem",
    "abfs": "AzureFileSystem",
    "abfss": "AzureFileSystem",
}


def _fsspec_filesystem(fs) -> pafs.FileSystem:
    """An fsspec filesystem as a pyarrow one (``pyarrow.fs.PyFileSystem`` of a
    :class:`_StorageHandler`)."""
    return pafs.PyFileSystem(_StorageHandler(fs))


class _StorageFile:
    """An fsspec file whose failures are ``OSError``: fsspec's HTTP files raise ``ValueError``
    when a server cannot serve byte ranges, which would otherwise escape as a traceback."""

    def __init__(self, file):
        self._file = file

    def __getattr__(self, name):
        value = getattr(self._file, name)
        if not callable(value):
            return value

        def call(*args, **kwargs):
            try:
                return value(*args, **kwargs)
            except OSError:
                raise
            except Exception as err:  # the storage's failure, in the words of its library
                raise OSError(f"{type(err).__name__}: {err}") from err

        return call


class _StorageHandler(pafs.FSSpecHandler):
    """pyarrow's ``FSSpecHandler`` with files that fail as ``OSError`` (:class:`_StorageFile`)."""

    def open_input_file(self, path):
        return pa.PythonFile(_StorageFile(self.fs.open(path, mode="rb")), mode="r")

    def open_input_stream(self, path):
        return pa.PythonFile(_StorageFile(self.fs.open(path, mode="rb")), mode="r")


def _is_fsspec(value) -> bool:
    try:
        import fsspec
    except ImportError:
        return False
    return isinstance(value, fsspec.AbstractFileSystem)


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
            return Location(base.child(path[head + 1 :]).path, base.filesystem, path)
        return self._remote(text, found)

    def _strip(self, text: str) -> str:
        """A URI's path on the given filesystem (its scheme dropped), or a plain path as it is."""
        handler = getattr(self.filesystem, "handler", None)
        if isinstance(handler, pafs.FSSpecHandler):  # _StorageHandler included
            return handler.fs._strip_protocol(text)
        found = scheme(text)
        return text[len(found) + 3 :] if found else text

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
