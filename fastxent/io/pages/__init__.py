"""A Parquet page reader for the columns a score needs, used where a column chunk allows it.

The footer (parsed by pyarrow) and the Arrow schema decide which columns qualify
(:mod:`.layout`); each qualifying column chunk's pages are read with the file's own range reads
(``pread`` locally, ``read_at`` on a pyarrow filesystem), their Thrift headers parsed
(:mod:`.thrift`), CRCs checked where written, bytes decompressed with ``cramjam``
(:mod:`.codecs`) and decoded in Numba (:mod:`.decode`, :mod:`.pages`); :mod:`.cursor` turns pages
into Arrow arrays of any number of rows and :mod:`.rowgroup` puts a row group's columns together,
pyarrow reading the rest. The batches are those pyarrow would give, value for value.

The page reader is off by default: ``FASTXENT_PARQUET_READER=pages`` in the environment turns it
on (``pyarrow``, the default, reads every chunk through pyarrow as before it existed). It gives the
same bits, but on two cores it does not yet score faster than pyarrow decodes: its Python work per
page (headers, CRCs, decompression calls) holds the GIL, so the two threads decoding row groups
wait on each other, and files of small pages (one float column per class, 20,000 rows a page)
scored 1.2-1.7x slower; files of large pages (a list column of logits) 5-10% faster. The reader
becomes the default once a column chunk's pages are decoded in one call without the GIL.
"""

from __future__ import annotations

import os

#: The environment variable choosing the Parquet reader: ``pyarrow`` (the default) or ``pages``.
READER_VARIABLE = "FASTXENT_PARQUET_READER"


def pages_enabled() -> bool:
    """Whether column chunks may be read by the page reader (see the module)."""
    return os.environ.get(READER_VARIABLE, "pyarrow").strip().lower() == "pages"


def reader_status() -> str:
    """Which reader reads Parquet column chunks, in words (``fastxent info``)."""
    if not pages_enabled():
        return f"pyarrow ({READER_VARIABLE}=pages turns the page reader on)"
    import cramjam

    return f"pages (cramjam {cramjam.__version__}), pyarrow where a chunk needs it"
