"""A Parquet page reader for the columns a score needs, used where a column chunk allows it.

The footer (parsed by pyarrow) and the Arrow schema decide which columns qualify
(:mod:`.layout`); each qualifying column chunk is read by range requests (:mod:`.files`) and its
rows are taken a batch at a time by one Numba call without the GIL (:mod:`.takes`), which opens
as many pages as the batch spans (:mod:`.pages`: Thrift headers parsed (:mod:`.thrift`), pages
decompressed (snappy in Numba, :mod:`.snappy`; other codecs through ``cramjam``, :mod:`.codecs`),
levels and values decoded (:mod:`.decode`)); CRCs are checked by :mod:`.checksum`. :mod:`.cursor`
turns the rows into Arrow arrays and :mod:`.rowgroup` puts a row group's columns together,
pyarrow reading the rest. The batches are those pyarrow would give, value for value.

``FASTXENT_PARQUET_READER`` chooses: ``auto`` (the default) reads through the page reader the
row groups of files whose read columns include a list column or are at most
:data:`.layout.FEW_FLAT_COLUMNS` flat columns it can all read, and other files through pyarrow;
``pages`` every column the page reader can; ``pyarrow`` none. Measured on two cores (AMD EPYC,
2026-12-04, ``fx.score`` of the ``make-data`` files, in-process medians of 5-7): the 4M x 100
list column scored in 0.98-1.11 s through pages against 1.27-1.54 s through pyarrow; 100 float
columns (one per class) 0.98-1.12 s against 1.15 s; a 100M-row binary file 0.41-0.46 s against
0.50-0.56 s (after zlib-ng's CRC and 8-value unpacking of dictionary indices; 0.38 s both ways
before). Many flat columns stay with pyarrow unless asked: their gain is small, and every
page-read column holds its window and its current page while a batch is built (peak RSS of the
100-column file: 597 MB against pyarrow's 534 MB; files of thousands of class columns would
hold thousands). A row group read partly by each reader pays for both, so ``auto`` does not mix.
"""

from __future__ import annotations

import os

from ...errors import InputValueError

#: The environment variable choosing the Parquet reader: ``auto``, ``pages`` or ``pyarrow``.
READER_VARIABLE = "FASTXENT_PARQUET_READER"
#: Its values.
READERS = ("auto", "pages", "pyarrow")


def reader_choice() -> str:
    """``FASTXENT_PARQUET_READER`` (see the module; unset or empty: ``auto``); any other value
    raises :class:`~fastxent.errors.InputValueError` (a misspelt choice must not be ignored)."""
    raw = os.environ.get(READER_VARIABLE, "")
    choice = raw.strip().lower() or "auto"
    if choice not in READERS:
        raise InputValueError(f"{READER_VARIABLE} must be one of {', '.join(READERS)}, got {raw!r}.")
    return choice


def reader_status() -> str:
    """Which reader reads Parquet column chunks, in words (``fastxent info``)."""
    try:
        choice = reader_choice()
    except InputValueError as err:
        return f"none: {err}"
    if choice == "pyarrow":
        return f"pyarrow ({READER_VARIABLE}=pyarrow)"
    import cramjam

    columns = "every column it decodes" if choice == "pages" else "files with a list column"
    return (
        f"pages for {columns} (cramjam {cramjam.__version__}), pyarrow for the rest "
        f"({READER_VARIABLE}={choice})"
    )
