"""Prediction holders that are not Arrow objects: a polars ``LazyFrame`` and a Hugging Face
``datasets.Dataset``.

Both can be read as often as planning needs, so neither is collected or copied whole:

- a ``LazyFrame`` runs as a streaming query (``collect_batches``) of only the columns scored,
  so a scan of files reads only those columns, batch by batch;
- a ``Dataset`` is read from its memory-mapped Arrow table through ``iter``, in the order its
  indices give (after ``shuffle``, ``select`` or ``filter``), only the columns scored.

:func:`adapt` says how to read them; a ``DatasetDict`` is refused with its splits named.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

import pyarrow as pa

from ..errors import InputTypeError


def _instance(source, module: str, names: tuple[str, ...]) -> bool:
    """Whether ``source`` is one of the classes ``names`` of ``module``, without importing it
    (no such object can exist until it is imported)."""
    found = sys.modules.get(module)
    return found is not None and isinstance(source, tuple(getattr(found, n) for n in names))


def _lazy_frame(frame) -> tuple:
    import polars as pl

    # one compatibility level for the schema and the batches: polars' newest gives string_view
    # in one and large_string in the other
    level = pl.CompatLevel.oldest()

    def batches_of(columns: list[str], rows: int) -> Iterator[pa.RecordBatch]:
        for chunk in frame.select(columns).collect_batches(chunk_size=rows):
            yield from chunk.to_arrow(compat_level=level).to_batches()

    return "<LazyFrame>", frame.collect_schema().to_arrow(compat_level=level), None, batches_of


def _dataset(dataset) -> tuple:
    def batches_of(columns: list[str], rows: int) -> Iterator[pa.RecordBatch]:
        for table in dataset.select_columns(columns).with_format("arrow").iter(batch_size=rows):
            yield from table.to_batches()

    name = f"<Dataset {dataset.split}>" if dataset.split else "<Dataset>"
    return name, dataset.data.schema, dataset.num_rows, batches_of


def adapt(source) -> tuple[str, pa.Schema, int | None, Callable] | None:
    """How to read ``source`` if it is a polars ``LazyFrame`` or a Hugging Face ``Dataset``:
    ``(name, schema, rows, batches_of)``, ``batches_of(columns, rows)`` yielding record batches
    of those columns, as :func:`fastxent.io.memory._memory_part` takes them (``rows`` is
    ``None`` where only running the query would tell). ``None`` for any other object.

    Raises
    ------
    InputTypeError
        ``source`` is a ``DatasetDict`` (several splits): the message names them.
    """
    if _instance(source, "polars", ("LazyFrame",)):
        return _lazy_frame(source)
    if _instance(source, "datasets", ("Dataset",)):
        return _dataset(source)
    if _instance(source, "datasets", ("DatasetDict", "IterableDatasetDict")):
        splits = ", ".join(repr(s) for s in source)
        raise InputTypeError(
            f"`source` is a DatasetDict of the splits {splits}; pass one of them, e.g. "
            f"`source[{next(iter(source))!r}]`."
        )
    return None
