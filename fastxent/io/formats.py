"""File formats by name: which files an input directory holds, and what an output's name asks for.

One table of suffixes serves both directions, so whatever fastxent writes it reads back:

- Parquet: ``.parquet``, ``.pq``, ``.parq``;
- Arrow IPC: ``.arrow``, ``.feather``, ``.ipc`` (the file format) and ``.arrows`` (the stream
  format);
- CSV: ``.csv``, and tab-separated ``.tsv`` and ``.tab``, each alone or followed by the suffix of
  a compression pyarrow reads and writes as a stream: ``.gz``, ``.bz2``, ``.zst``, ``.lz4``
  (brotli's ``.br`` is left out: pyarrow writes it but does not detect it when reading).

An output's suffix decides its format; an unknown suffix is a usage error (:class:`OutputNameError`),
raised before any input is read. A name without a suffix, and an output that is a stream (a FIFO,
a device, ``/dev/stdout``, whose name says nothing about what it carries), get Parquet, the default
format. ``-`` is standard output and gets CSV: a stream a terminal, ``head`` and every CSV reader
can take, where Parquet, whose footer is at its end, cannot be read from a pipe by most readers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import InputValueError
from .paths import is_stream

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
IPC_SUFFIXES = (".arrow", ".feather", ".ipc", ".arrows")
TSV_SUFFIXES = (".tsv", ".tab")
CSV_SUFFIXES = (".csv", *TSV_SUFFIXES)
#: Compression suffixes of CSV files, as pyarrow names their codecs.
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".lz4": "lz4"}
#: Codecs pyarrow writes Parquet pages with (``make-data --compression``); "none": uncompressed.
PARQUET_CODECS = ("snappy", "zstd", "lz4", "gzip", "brotli", "none")
#: The name that stands for standard output.
STDOUT = "-"


def _split_compression(name: str) -> tuple[str, str | None]:
    """``(name without its compression suffix, codec)``, or ``(name, None)``."""
    base, suffix = os.path.splitext(name)
    codec = COMPRESSIONS.get(suffix.lower())
    return (base, codec) if codec else (name, None)


def _suffix_format(name: str) -> str | None:
    """ "parquet", "ipc" or "csv" from ``name``'s suffix; ``None`` if it names none of them."""
    lower = name.lower()
    if lower.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if lower.endswith(IPC_SUFFIXES):
        return "ipc"
    if _split_compression(lower)[0].endswith(CSV_SUFFIXES):
        return "csv"
    return None


def is_data_file(name: str) -> bool:
    """Whether a file called ``name`` is one a directory source reads (by its suffix)."""
    return _suffix_format(name) is not None


def is_tab_separated(name: str) -> bool:
    """Whether ``name`` is a tab-separated file (``.tsv``, ``.tab``, compressed or not)."""
    return _split_compression(name.lower())[0].endswith(TSV_SUFFIXES)


def input_format(path: str, read_head=None) -> str:
    """The format of an input file: from its suffix, else from its first bytes (CSV if neither
    Parquet's nor Arrow's magic), read by ``read_head(count)`` when given (a remote file), else
    from the local file."""
    known = _suffix_format(path)
    if known is not None:
        return known
    if read_head is not None:
        head = read_head(6)
    else:
        with open(path, "rb") as f:
            head = f.read(6)
    if head[:4] == b"PAR1":
        return "parquet"
    if head == b"ARROW1" or head[:4] == b"\xff\xff\xff\xff":
        return "ipc"
    return "csv"


class OutputNameError(InputValueError):
    """An output's name asks for no format fastxent writes (the command line's exit status 2)."""


def check_directory_name(path, what: str = "the output directory") -> None:
    """Refuse a name for an output *directory* of ``part-NNNNN.parquet`` files (Dask's per-row
    losses, one file per task) that asks for something else: ``-`` (a stream, which tasks
    writing at once cannot share) or a file suffix (``losses.csv`` would be a directory of
    Parquet files). Raises :class:`OutputNameError`."""
    path = os.fspath(path)
    if path == STDOUT:
        raise OutputNameError(
            f"{what} is a directory of part-NNNNN.parquet files, one per task, which standard output "
            "('-') cannot take; give a directory name (or score without Dask to stream the losses)."
        )
    named = _suffix_format(os.path.basename(path.rstrip("/" + os.sep)))
    if named is not None:
        raise OutputNameError(
            f"{what} '{path}' is named as a {named} file, but on Dask it is a directory of "
            "part-NNNNN.parquet files, one per task; give a name without a file suffix."
        )


@dataclass(frozen=True)
class OutputFormat:
    """What to write: ``kind`` ("parquet", "ipc" or "csv"); for IPC, ``stream`` (the stream
    format, else the file format); for CSV, ``compression`` (a pyarrow codec name or ``None``)
    and ``delimiter``."""

    kind: str
    compression: str | None = None
    delimiter: str = ","
    stream: bool = False


def output_format(path, kind: str | None = None, what: str = "the output") -> OutputFormat:
    """The format of an output file, from its name (see the module's rules).

    ``kind`` ("parquet", "ipc" or "csv"), when given, is what the caller asked for (``make-data
    --format``): it decides for a name without a suffix or a stream, and must agree with a
    suffix that names a format. Raises :class:`OutputNameError` otherwise.
    """
    path = os.fspath(path)
    if path == STDOUT:
        return OutputFormat(kind or "csv")
    name = os.path.basename(path)
    named = _suffix_format(name)
    if named is None:
        suffix = os.path.splitext(name)[1]
        if suffix and kind is None and not is_stream(path):
            raise OutputNameError(
                f"{what} '{path}' has the suffix '{suffix}', which names no format fastxent writes; "
                "use .parquet (.pq), .arrow (.feather, .ipc, .arrows) or .csv (.tsv), the CSV ones "
                "optionally with .gz, .bz2, .zst or .lz4."
            )
        return OutputFormat(kind or "parquet")
    if kind is not None and kind != named:
        raise OutputNameError(f"{what} '{path}' is named as {named} but the format asked for is {kind}.")
    base, codec = _split_compression(name.lower())
    tab = base.endswith(TSV_SUFFIXES)
    return OutputFormat(named, codec, "\t" if tab else ",", stream=name.lower().endswith(".arrows"))
