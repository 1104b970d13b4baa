"""A Parquet page reader for the columns a score needs, used where a column chunk allows it.

The footer (parsed by pyarrow) and the Arrow schema decide which columns qualify
(:mod:`.layout`); each qualifying column chunk is read by range requests (:mod:`.files`) and its
rows are taken a batch at a time by one Numba call without the GIL (:mod:`.takes`), which opens
as many pages as the batch spans (:mod:`.pages`: Thrift headers parsed (:mod:`.thrift`), pages
decompressed (snappy in Numba, :mod:`.snappy`; other codecs through ``cramjam``, :mod:`.codecs`),
levels and values decoded (:mod:`.decode`)); CRCs are checked with ``zlib``. :mod:`.cursor` turns
the rows into Arrow arrays and :mod:`.rowgroup` puts a row group's columns together, pyarrow
reading the rest. The batches are those pyarrow would give, value for value.

``FASTXENT_PARQUET_READER`` chooses: ``auto`` (the default) reads list columns through the page
reader and flat columns through pyarrow, ``pages`` every column the page reader can, ``pyarrow``
none. Measured on two cores (AMD EPYC, 2026-12-04, ``fx.score`` of the ``make-data`` files,
medians of 5): the 4M x 100 list column scored in 0.97 s through pages against 1.29 s through
pyarrow; a 100M-row binary column 0.36 s both ways; 100 float columns (one per class, 20,000-row
pages) 1.41 s against 0.97 s: the Python work per column and batch (Arrow arrays, buffers) and
the threads waiting on each other for the GIL cost more than the decoding saves. So flat
columns stay with pyarrow unless asked.
"""

from __future__ import annotations

import os

#: The environment variable choosing the Parquet reader: ``auto``, ``pages`` or ``pyarrow``.
READER_VARIABLE = "FASTXENT_PARQUET_READER"
#: Its values.
READERS = ("auto", "pages", "pyarrow")


def reader_choice() -> str:
    """``FASTXENT_PARQUET_READER`` (see the module); an unknown value is ``auto``."""
    choice = os.environ.get(READER_VARIABLE, "auto").strip().lower()
    return choice if choice in READERS else "auto"


def reader_status() -> str:
    """Which reader reads Parquet column chunks, in words (``fastxent info``)."""
    choice = reader_choice()
    if choice == "pyarrow":
        return f"pyarrow ({READER_VARIABLE}=pyarrow)"
    import cramjam

    columns = "every column it decodes" if choice == "pages" else "list columns"
    return (
        f"pages for {columns} (cramjam {cramjam.__version__}), pyarrow for the rest "
        f"({READER_VARIABLE}={choice})"
    )
