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
"""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs

from ..errors import InputValueError
from .formats import is_data_file
from .paths import check_utf8_name
from .tables import describe, table_format


def _identity(path: str) -> tuple[int, int]:
    """What a directory is, whichever links lead to it: its device and inode."""
    info = os.stat(path)
    return info.st_dev, info.st_ino


def data_files(root: str) -> list[str]:
    """The data files under the directory ``root``, in path order (see the module's rules)."""
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


def hive_partitions(root: str, files: list[str]) -> list[dict[str, pa.Scalar]]:
    """The hive partition values of each of ``files`` (under ``root``), ``{key: typed scalar}``,
    every key in every dict (null where a path lacks it)."""
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
