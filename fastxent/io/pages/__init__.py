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
row groups of files whose read columns include a list column, or are at most
:data:`.layout.MANY_FLAT_COLUMNS` flat columns it can read (at most
:data:`.layout.FEW_FLAT_COLUMNS` in a remote store) whose pages it decompresses as fast as
pyarrow (:func:`.layout._slower_codecs`: any codec but brotli), and other files through
pyarrow; ``pages`` every column the page reader can;
``pyarrow`` none. Measured on two cores (AMD EPYC, 2026-12-04, ``fx.score`` of the
``make-data`` files, in-process medians of 3-7): the 4M x 100 list column scored in 0.98-1.11 s
through pages against 1.27-1.54 s through pyarrow (0.67-0.70 s since list pages without nulls
are read by their row starts, 2026-12-05); a 100M-row binary file 0.35-0.46 s against
0.50-0.56 s; 100 float columns (one per class) 0.77-0.85 s against 1.33-1.42 s. A batch's flat
columns of one type are decoded side by side into one buffer
(:func:`.cursor.shared_value_buffers`), so class columns reach the kernels without a copy, and
row groups of many flat columns are decoded one at a time, two threads taking their columns
(:data:`.layout.FEW_FLAT_COLUMNS`: two row groups at once took 200 MB more). Columns it cannot
read (string group keys, say) are read by pyarrow beside the pages
(:func:`.layout.column_layouts`). Plain scoring of binary logits skips the batches altogether:
their pages are scored as they are decoded (:mod:`.scoring`, :mod:`fastxent.run.fused`).
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

    from . import zstd  # imports this package: not at the top
    from .layout import FEW_FLAT_COLUMNS, MANY_FLAT_COLUMNS

    columns = (
        "every column it decodes"
        if choice == "pages"
        else f"files with a list column or up to {MANY_FLAT_COLUMNS:,} flat columns ({FEW_FLAT_COLUMNS} "
        "in a remote store) of any codec but brotli"
    )
    return (
        f"pages for {columns} (cramjam {cramjam.__version__}), pyarrow for the rest "
        f"({READER_VARIABLE}={choice}); binary logits in snappy, {'zstd ' if zstd.AVAILABLE else ''}"
        f"or uncompressed pages scored straight from them (fused{'' if zstd.AVAILABLE else '; no libzstd'})"
    )
