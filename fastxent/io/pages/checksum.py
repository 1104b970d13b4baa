"""The CRC-32 of Parquet pages (the zlib polynomial), computed inside the compiled page code.

zlib-ng's ``crc32`` folds the bytes with carry-less multiplies (PCLMULQDQ, VPCLMULQDQ on
AVX-512): 24-30 GB/s on one core here, against 4 GB/s for the zlib CPython links and 1.6 GB/s
for the slicing-by-8 table below (:func:`_table_crc32`). :func:`page_crc32` calls it from Numba
by the symbol :data:`SYMBOL`, which this module points at ``zng_crc32`` (exported by the zlib-ng
wheel's extension) or, where that cannot be found, at that table's function, compiled here.
A symbol rather than an address: Numba's cache keeps the name, and cached page code links to
whichever function this process registered. Checked where a page is opened
(:func:`.pages.open_page`): a page's CRC cost a round to Python and a call of zlib-ng from it
before (binary 100M rows: 53 pages a column chunk).
"""

from __future__ import annotations

import ctypes

import llvmlite.binding as llvm
import numpy as np
from numba import carray, cfunc, types

from .jitting import checked_jit

#: The name the page code calls the CRC function by.
SYMBOL = "fastxent_parquet_crc32"

# ``uint32 crc32(uint32 crc, const uint8 *bytes, uint32 size)``, as zlib-ng's ``zng_crc32``; the
# pointer passed as an address (an integer of its width: the same register in every 64-bit ABI)
_SIGNATURE = types.uint32(types.uint32, types.uintp, types.uint32)
_crc32 = types.ExternalFunction(SYMBOL, _SIGNATURE)
#: The signature :func:`_table_crc32` is compiled with: the same ABI, the pointer typed.
TABLE_SIGNATURE = types.uint32(types.uint32, types.CPointer(types.uint8), types.uint32)


def _crc_tables() -> np.ndarray:
    """The slicing-by-8 tables of the reflected polynomial 0xEDB88320 (int64: Numba keeps
    arithmetic of mixed unsigned and signed integers in int64)."""
    tables = np.zeros((8, 256), np.int64)
    for b in range(256):
        c = b
        for _ in range(8):
            c = (c >> 1) ^ (0xEDB88320 if c & 1 else 0)
        tables[0, b] = c
    for t in range(1, 8):
        tables[t] = (tables[t - 1] >> 8) ^ tables[0][tables[t - 1] & 0xFF]
    return tables


_TABLES = _crc_tables()


def _table_crc32(crc, pointer, size):
    """zlib's ``crc32(crc, bytes, size)``, eight bytes a step through :data:`_TABLES`."""
    data = carray(pointer, (size,))
    t = _TABLES
    c = ~np.int64(crc) & 0xFFFFFFFF
    i = 0
    while i + 8 <= size:
        low = np.int64(data[i]) | np.int64(data[i + 1]) << 8 | np.int64(data[i + 2]) << 16
        c ^= low | np.int64(data[i + 3]) << 24
        c = (
            t[7, c & 0xFF]
            ^ t[6, (c >> 8) & 0xFF]
            ^ t[5, (c >> 16) & 0xFF]
            ^ t[4, c >> 24]
            ^ t[3, data[i + 4]]
            ^ t[2, data[i + 5]]
            ^ t[1, data[i + 6]]
            ^ t[0, data[i + 7]]
        )
        i += 8
    while i < size:
        c = t[0, (c ^ data[i]) & 0xFF] ^ (c >> 8)
        i += 1
    return ~c & 0xFFFFFFFF


def _zlib_ng_address() -> int | None:
    """The address of zlib-ng's ``zng_crc32``, or ``None`` where it is not installed or exported."""
    try:
        import zlib_ng.zlib_ng as extension

        return ctypes.cast(ctypes.CDLL(extension.__file__).zng_crc32, ctypes.c_void_p).value
    except (ImportError, OSError, AttributeError):
        return None


def _register() -> str:
    """Point :data:`SYMBOL` at zlib-ng's CRC, else at the table one; return which."""
    address = _zlib_ng_address()
    if address is not None:
        llvm.add_symbol(SYMBOL, address)
        return "zlib-ng"
    compiled = cfunc(TABLE_SIGNATURE, nopython=True, cache=True)(_table_crc32)
    llvm.add_symbol(SYMBOL, compiled.address)
    return "table"


#: Which CRC the page code calls: ``"zlib-ng"`` or ``"table"``.
IMPLEMENTATION = _register()


@checked_jit
def page_crc32(buffer, lo, size):
    """The CRC-32 of ``buffer[lo : lo + size]`` (uint8, contiguous; the caller checks the range)."""
    return _crc32(np.uint32(0), buffer.ctypes.data + lo, np.uint32(size))
