"""Files from different tools in one run: one type per column that holds every file's values.

pandas, polars, DuckDB and pyarrow write the same data with different Arrow types: strings as
``string``, ``large_string`` or ``string_view``, class names plain or as a dictionary, logits as
``list``, ``large_list``, ``fixed_size_list`` or a tensor (with child fields named ``item`` or
``element``), ids as ``int32`` or ``int64``. Each batch is read as it comes (the column plan
takes every one of these types), so such files score together; only what means something
different is refused: a different number of classes, or class names against numbers.
``pa.unify_schemas(promote_options="permissive")`` alone is not the rule: it refuses
``string_view`` and dictionaries next to strings, and it would merge lists of 3 and of 4 values.
"""

from __future__ import annotations

import pyarrow as pa

from ..errors import InputValueError
from .labels import is_labels, plain_label_type


def _is_tensor(t: pa.DataType) -> bool:
    return getattr(t, "extension_name", None) == "arrow.fixed_shape_tensor"


def _is_listlike(t: pa.DataType) -> bool:
    return _is_tensor(t) or pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t)


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)


def _values_and_width(t: pa.DataType) -> tuple[pa.DataType, int | None]:
    """A list-like type's value type, and its values per row where the type fixes them."""
    if _is_tensor(t):
        size = 1
        for extent in t.shape:
            size *= extent
        return t.value_type, size
    return t.value_type, (t.list_size if pa.types.is_fixed_size_list(t) else None)


def describe(t: pa.DataType) -> str:
    """What a column of type ``t`` holds, in words, for error messages."""
    if is_labels(t):
        return f"class names ({t})"
    if _is_listlike(t):
        width = _values_and_width(t)[1]
        return f"{width if width is not None else 'a list of'} values per row ({t})"
    if _is_number(t):
        return f"numbers ({t})"
    return str(t)


def unified_type(a: pa.DataType, b: pa.DataType) -> pa.DataType | None:
    """A type that holds the values of both ``a`` and ``b`` with their meaning (``None`` if
    none does): the wider of two numbers, ``large_string`` for two kinds of names, a list of the
    unified values with the same values per row."""
    if pa.types.is_null(a) or pa.types.is_null(b):  # an all-null column of one file
        return b if pa.types.is_null(a) else a
    if a.equals(b):
        return a
    if is_labels(a) and is_labels(b):
        return plain_label_type(a) if plain_label_type(a).equals(plain_label_type(b)) else pa.large_string()
    if _is_listlike(a) and _is_listlike(b):
        (values_a, width_a), (values_b, width_b) = _values_and_width(a), _values_and_width(b)
        values = unified_type(values_a, values_b)
        if values is None or (width_a is not None and width_b is not None and width_a != width_b):
            return None
        if width_a is not None and width_b is not None:
            return pa.list_(values, width_a)
        large = pa.types.is_large_list(a) or pa.types.is_large_list(b)
        return pa.large_list(values) if large else pa.list_(values)
    if _is_number(a) and _is_number(b) and (pa.types.is_boolean(a) or pa.types.is_boolean(b)):
        return b if pa.types.is_boolean(a) else a  # 0/1 targets next to booleans: the numbers
    try:
        schema = pa.unify_schemas(
            [pa.schema([("c", a)]), pa.schema([("c", b)])], promote_options="permissive"
        )
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return None
    return schema.field("c").type


def unify_part_schemas(parts: list, columns: list[str]) -> dict[str, pa.DataType]:
    """The type of each of ``columns`` that holds its values in every part (see
    :func:`unified_type`); parts are :class:`~fastxent.io.part.Part` objects.

    Raises
    ------
    InputValueError
        A part lacks a column, or holds in it what another part's values mean differently
        (class names against numbers, 3 values per row against 4), naming both parts.
    """
    first = parts[0]
    schema = first.full_schema()
    unified = {name: schema.field(name).type for name in columns}
    # the part each column's type was first set by (an all-null column sets nothing)
    origin = {name: first.name for name in columns}
    for part in parts[1:]:
        schema = part.full_schema()
        for name in columns:
            if name not in schema.names:
                raise InputValueError(
                    f"'{part.name}' has no column '{name}' (which '{first.name}' has); its "
                    f"columns are: {', '.join(schema.names)}."
                )
            found = schema.field(name).type
            merged = unified_type(unified[name], found)
            if merged is None:
                raise InputValueError(
                    f"column '{name}' holds {describe(found)} in '{part.name}' but "
                    f"{describe(unified[name])} in '{origin[name]}'; files scored together must "
                    "hold the same classes and kind of values in it."
                )
            if pa.types.is_null(unified[name]):
                origin[name] = part.name
            unified[name] = merged
    return unified
