"""Class-name targets: which Arrow types hold class names, their distinct values, and their
mapping to class indices.

Classes are numbered in their declared order where the type declares one (an ordered dictionary:
a polars ``Enum``, a pandas ordered ``Categorical``), else in sorted order of their names: an
unordered dictionary's order is an accident of encoding (order of appearance, for polars'
``Categorical`` and for Parquet's dictionary pages), not a declaration.

Every string type works alike (``string``, ``large_string``, ``string_view`` and dictionaries of
them): :func:`plain_labels` casts ``string_view`` once, where pyarrow's kernels lack it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputValueError


def is_labels(t: pa.DataType) -> bool:
    """Whether ``t`` holds class names: a string type, or a dictionary of one."""
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def is_declared(t: pa.DataType) -> bool:
    """Whether ``t`` declares the order of its classes: an ordered dictionary of names."""
    return pa.types.is_dictionary(t) and t.ordered and is_labels(t)


def declared_classes(column: pa.Array) -> list:
    """Every class an ordered dictionary ``column`` declares, used by its rows or not, in the
    declared order (the dictionary's)."""
    return plain_labels(column).dictionary.to_pylist()


def plain_label_type(t: pa.DataType) -> pa.DataType:
    """``t`` with ``string_view`` (Polars' strings) as ``large_string``, also inside a dictionary.

    pyarrow 26 has no ``take``, ``index_in`` or sorting kernel for ``string_view``, and its
    ``dictionary_encode`` and ``unique`` turn a null into ``""``; ``large_string`` holds any
    batch's text (``string`` stops at 2 GiB).
    """
    if pa.types.is_string_view(t):
        return pa.large_string()
    if pa.types.is_dictionary(t) and pa.types.is_string_view(t.value_type):
        return pa.dictionary(t.index_type, pa.large_string(), t.ordered)
    return t


def plain_labels(column: pa.Array) -> pa.Array:
    """``column`` cast to :func:`plain_label_type` (itself, without a copy, for other types)."""
    typ = column.type
    plain = plain_label_type(typ)
    return column if plain is typ else column.cast(plain)


def label_set(column: pa.Array) -> set:
    """The distinct non-null class names in a string or dictionary ``column``."""
    column = plain_labels(column)
    if pa.types.is_dictionary(column.type):
        # only the entries the rows use: a pandas categorical's dictionary keeps categories no
        # row holds
        column = column.dictionary.take(pc.unique(column.indices).drop_null())
    return {v for v in pc.unique(column).to_pylist() if v is not None}


def class_indices(name: str, column: pa.Array, classes: list, where) -> np.ndarray:
    """The index in ``classes`` of each row's class name; ``where(row)`` names a row in errors."""
    column = plain_labels(column)
    lookup = pa.array([str(c) for c in classes], type=pa.large_string())
    if pa.types.is_dictionary(column.type):
        # look each dictionary entry up once, then index by the rows' codes (no decoding)
        index = pc.index_in(column.dictionary, value_set=lookup).take(column.indices)
    else:
        index = pc.index_in(column, value_set=lookup)
    if index.null_count:
        first = int(np.flatnonzero(np.asarray(index.is_null()))[0])
        raise InputValueError(
            f"`{name}` has class {column[first].as_py()!r} {where(first)}, which is not one of the "
            f"classes {classes}; pass the full list as `classes=`."
        )
    return np.asarray(index).astype(np.int64)
