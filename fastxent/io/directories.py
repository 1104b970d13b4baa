"""Which files a directory source holds, and the hive partition values of each, as the engines
that wrote them (Spark, Hive, pyarrow, Polars, DuckDB, pandas) mean them.

- Files: every Parquet, Arrow IPC and CSV file under the directory (:func:`~.formats.is_data_file`:
  compressed CSVs included), in path order. Names starting with ``.`` or ``_`` are skipped, as
  pyarrow.dataset skips them: Spark's ``_SUCCESS`` and ``.crc`` files, ``_metadata``, temporaries.
- Links to directories are followed (a partition directory may be a link); a link back to a
  directory it is inside would be followed forever, and is refused with one line.
- A table-format directory (Delta, Iceberg, Hudi: :mod:`.tables`) inside the directory is refused:
  its files are not its rows.
- ``key=value`` directory names are partition columns with the keys, values and types that
  ``pyarrow.dataset(path, partitioning="hive")`` gives: discovered by pyarrow itself from the
  paths alone (no file is opened): ``%``-escapes decoded, ``__HIVE_DEFAULT_PARTITION__`` null,
  a key whose values all read as 32-bit integers ``int32``, any other key ``string``
  (``month=2024_01`` stays ``"2024_01"``), and null where a file's path lacks the key.

A directory (a prefix) on a remote filesystem (:mod:`.filesystems`) follows the same rules, listed
with one recursive ``FileSelector`` (an object store has no links); a table-format directory there
is refused (its log says which files are live; read it with its own library). Glob patterns are
matched as :func:`glob.glob` matches them with ``recursive=True`` (:func:`matching_files`).
"""

from __future__ import annotations

import fnmatch
import glob as globbing
import os

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs

from ..errors import InputValueError
from .failures import storage_errors
from .formats import is_data_file
from .locations import GLOB_CHARS, Location
from .paths import check_utf8_name
from .tables import describe, table_format


def _identity(path: str) -> tuple[int, int]:
    """What a directory is, whichever links lead to it: its device and inode."""
    info = os.stat(path)
    return info.st_dev, info.st_ino


def data_files(root: str) -> list[str]:
    """The data files under the local directory ``root``, in path order (see the module's rules)."""
    files = []
    # each directory with its ancestors (identity -> path): a link to one of them is a loop
    pending = [(root, {_identity(root): root})]
    while pending:
        directory, ancestors = pending.pop()
        if directory != root and table_format(directory):
            raise InputValueError(
                f"{describe(directory, table_format(directory))} inside the directory '{root}'; "
                "pass the table on its own."
            )
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.name.startswith((".", "_")):
                    continue
                if entry.is_dir():  # follows links
                    identity = _identity(entry.path)
                    if identity in ancestors:
                        raise InputValueError(
                            f"'{entry.path}' links back to '{ancestors[identity]}', a directory it is in: "
                            "following it would never end; remove the link."
                        )
                    pending.append((entry.path, {**ancestors, identity: entry.path}))
                elif is_data_file(entry.name):
                    check_utf8_name(entry.path)
                    if not os.path.exists(entry.path):
                        raise InputValueError(f"'{entry.path}' is a link to nothing (its target is gone).")
                    files.append(entry.path)
    if not files:
        raise InputValueError(f"directory '{root}' holds no Parquet, Arrow IPC or CSV files.")
    return sorted(files)


def _remote_table(root: Location, relative: list[str]) -> None:
    """Refuse a table-format directory at or under a remote ``root`` (``relative``: the listed
    paths below it): its log, not its listing, says which files hold its rows."""
    for path in relative:
        parts = path.split("/")
        for depth, part in enumerate(parts[:-1]):
            iceberg = part == "metadata" and (
                parts[depth + 1] == "version-hint.text" or parts[depth + 1].endswith(".metadata.json")
            )
            fmt = {"_delta_log": "delta", ".hoodie": "hudi"}.get(part, "iceberg" if iceberg else None)
            if fmt is None:
                continue
            table = root.child("/".join(parts[:depth])) if depth else root
            raise InputValueError(
                f"{describe(table.name, fmt)}: its files include removed ones, which only its log "
                "tells apart; read its current version with the table's library (for Delta: "
                "deltalake.DeltaTable(uri).to_pyarrow_dataset()) and pass that to fastxent."
            )


def remote_data_files(root: Location) -> list[Location]:
    """The data files under the remote directory (prefix) ``root``, in path order."""
    with storage_errors(root):
        infos = root.filesystem.get_file_info(pafs.FileSelector(root.path, recursive=True))
    listed = {Location(info.path, root.filesystem).relative_to(root): info for info in infos}
    _remote_table(root, sorted(listed))
    files = [
        root.child(relative)
        for relative, info in sorted(listed.items())
        if info.type == pafs.FileType.File
        and is_data_file(relative)
        and not any(part.startswith((".", "_")) for part in relative.split("/"))
    ]
    if not files:
        raise InputValueError(f"directory '{root.name}' holds no Parquet, Arrow IPC or CSV files.")
    return files


def _segments_match(pattern: list[str], path: list[str]) -> bool:
    """Whether ``path``'s segments match ``pattern``'s, as :func:`glob.glob` with ``recursive``:
    ``**`` stands for any number of directories; a wildcard never matches a leading ``.``."""
    if not pattern:
        return not path
    if not path:
        return pattern == ["**"]
    hidden = path[0].startswith(".") and not pattern[0].startswith(".")
    if pattern[0] == "**":
        return _segments_match(pattern[1:], path) or (not hidden and _segments_match(pattern, path[1:]))
    return not hidden and fnmatch.fnmatchcase(path[0], pattern[0]) and _segments_match(pattern[1:], path[1:])


def matching_files(pattern: Location) -> list[Location]:
    """The files a glob pattern matches, in path order (local: :func:`glob.glob`, recursive)."""
    if not pattern.remote:
        return [Location(path) for path in sorted(globbing.glob(pattern.path, recursive=True))]
    segments = pattern.path.split("/")
    fixed = next(i for i, part in enumerate(segments) if any(c in part for c in GLOB_CHARS))
    wanted = segments[fixed:]
    # the URI as given up to the pattern, so that matches are named as the user names them
    shown = "/".join(pattern.name.split("/")[: -len(wanted)])
    base = Location("/".join(segments[:fixed]) or "/", pattern.filesystem, shown)
    # one level unless the pattern goes deeper: a bucket's root may hold millions of keys below
    recursive = len(wanted) > 1 or "**" in wanted
    with storage_errors(pattern):
        infos = pattern.filesystem.get_file_info(pafs.FileSelector(base.path, recursive=recursive))
    matches = []
    for info in sorted(infos, key=lambda info: info.path):
        relative = Location(info.path, base.filesystem).relative_to(base)
        if info.type == pafs.FileType.File and _segments_match(wanted, relative.split("/")):
            matches.append(base.child(relative))
    return matches


def hive_partitions(root: str, files: list[str]) -> list[dict[str, pa.Scalar]]:
    """The hive partition values of each of ``files`` (under ``root``), ``{key: typed scalar}``,
    every key in every dict (null where a path lacks it).

    Only the paths' text is read, never a file, so the paths of a remote filesystem are given as
    local ones (made absolute alike, their parts below ``root`` unchanged)."""
    root = os.path.abspath(root)
    files = [os.path.abspath(path) for path in files]
    options = pads.FileSystemFactoryOptions(
        partition_base_dir=root, partitioning=pads.HivePartitioning.discover(infer_dictionary=False)
    )
    factory = pads.FileSystemDatasetFactory(pafs.LocalFileSystem(), files, pads.ParquetFileFormat(), options)
    # inspecting no fragment gives the partition schema alone, inferred from the paths: the format
    # above is never used to open a file, so mixed formats are fine
    schema = factory.inspect(fragments=0)
    if not len(schema):
        return [{} for _ in files]
    partitioning = pads.HivePartitioning(schema)
    partitions = []
    for path in files:
        # a relative path whose last segment is the file name, which is never a key
        values = pads.get_partition_keys(partitioning.parse(os.path.relpath(path, root)))
        partitions.append({field.name: pa.scalar(values.get(field.name), field.type) for field in schema})
    return partitions
