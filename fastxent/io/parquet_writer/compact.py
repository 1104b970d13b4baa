"""Thrift's compact protocol, written: the page headers and the footer of a Parquet file.

A struct is a list of ``(field id, kind, value)`` in increasing field id, ``None`` values left
out. Kinds: ``"bool"`` (a struct field's type holds it), ``"i8"``, ``"i32"``, ``"i64"`` (ZigZag
varints), ``"binary"`` (bytes or str), ``"struct"`` (a list of fields), and ``("list", kind)``
(a list of values of one kind other than bool).
"""

from __future__ import annotations

# Compact protocol type codes.
_TRUE, _FALSE, _BYTE, _I32, _I64, _BINARY, _LIST, _STRUCT = 1, 2, 3, 5, 6, 8, 9, 12
_TYPES = {"bool": _TRUE, "i8": _BYTE, "i32": _I32, "i64": _I64, "binary": _BINARY, "struct": _STRUCT}


def varint(out: bytearray, value: int) -> None:
    """Append the unsigned ``value`` to ``out`` as a ULEB128 varint (seven bits a byte, least
    significant first): Thrift's integers, and the run headers of Parquet's RLE."""
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _zigzag(value: int) -> int:
    return value << 1 if value >= 0 else ((-value) << 1) - 1


def _value(out: bytearray, kind, value) -> None:
    if kind in ("i32", "i64"):
        varint(out, _zigzag(value))
    elif kind == "i8":
        out.append(value & 0xFF)
    elif kind == "binary":
        data = value.encode() if isinstance(value, str) else bytes(value)
        varint(out, len(data))
        out += data
    elif kind == "struct":
        _struct(out, value)
    else:
        _, element = kind
        code = _TYPES[element]
        if len(value) < 15:
            out.append((len(value) << 4) | code)
        else:
            out.append(0xF0 | code)
            varint(out, len(value))
        for item in value:
            _value(out, element, item)


def _struct(out: bytearray, fields) -> None:
    last = 0
    for field_id, kind, value in fields:
        if value is None:
            continue
        if field_id <= last:
            raise ValueError(f"Thrift fields out of order: {field_id} after {last}")
        code = _LIST if isinstance(kind, tuple) else _TYPES[kind]
        if kind == "bool":
            code = _TRUE if value else _FALSE
        if field_id - last <= 15:
            out.append(((field_id - last) << 4) | code)
        else:
            out.append(code)
            varint(out, _zigzag(field_id))
        last = field_id
        if kind != "bool":
            _value(out, kind, value)
    out.append(0)  # stop


def struct(fields) -> bytes:
    """The compact encoding of a struct (see the module)."""
    out = bytearray()
    _struct(out, fields)
    return bytes(out)
