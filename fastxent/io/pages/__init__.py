"""A Parquet page reader for the columns a score needs, used where a column chunk allows it.

The footer (parsed by pyarrow) and the Arrow schema decide which columns qualify
(:mod:`.layout`); each qualifying column chunk's pages are read with the file's own range reads
(``pread`` locally, ``read_at`` on a pyarrow filesystem), their Thrift headers parsed
(:mod:`.thrift`), CRCs checked where written, bytes decompressed with ``cramjam``
(:mod:`.codecs`) and decoded in Numba (:mod:`.decode`, :mod:`.pages`); :mod:`.cursor` turns pages
into Arrow arrays of any number of rows and :mod:`.rowgroup` puts a row group's columns together,
pyarrow reading the rest. The batches are those pyarrow would give, value for value.

``FASTXENT_PARQUET_READER=pyarrow`` in the environment turns the page reader off (every chunk
through pyarrow, as before it existed).
"""

from __future__ import annotations

import os

#: The environment variable choosing the Parquet reader: ``pages`` (the default) or ``pyarrow``.
READER_VARIABLE = "FASTXENT_PARQUET_READER"


def pages_enabled() -> bool:
    """Whether column chunks may be read by the page reader (see the module)."""
    return os.environ.get(READER_VARIABLE, "pages").strip().lower() != "pyarrow"


def reader_status() -> str:
    """Which reader reads Parquet column chunks, in words (``fastxent info``)."""
    if not pages_enabled():
        return f"pyarrow ({READER_VARIABLE}=pyarrow)"
    import cramjam

    return f"pages (cramjam {cramjam.__version__}), pyarrow where a chunk needs it"
