"""Parquet files of integer and float columns written by fastxent itself (per-row outputs):
:class:`~.writer.RowsWriter`, its encodings (:mod:`.encodings`) and Thrift's compact protocol
(:mod:`.compact`)."""

from .writer import RowsWriter, writes

__all__ = ["RowsWriter", "writes"]
