"""Zstandard pages decompressed inside the compiled page code, by the system's ``libzstd``.

The fused pass (:mod:`.scoring`) opens a row group's pages in one compiled call; a zstd page
decompressed through ``cramjam`` would cost a round to Python each (binary 100M rows: 10,206
pages). ``ZSTD_decompress`` is called instead by the symbol :data:`SYMBOL`, which this module
points at the shared library's function (``libzstd.so.1``, which systemd and most Linux systems
carry: no wheel here exports it). Where no such library loads, the symbol points at a function
that fails every call (:func:`_unavailable`) and :data:`AVAILABLE` is False: zstd files are then
read through the batches (the page reader, with ``cramjam``). One core of AMD Zen 4 decompresses
the binary file's float32 pages at 1.2 GB/s through either.
"""

from __future__ import annotations

import ctypes
import ctypes.util

import llvmlite.binding as llvm
import numpy as np
from numba import cfunc, types

from .jitting import checked_jit

#: The name the page code calls ``ZSTD_decompress`` by.
SYMBOL = "fastxent_zstd_decompress"

# ``size_t ZSTD_decompress(void *dst, size_t capacity, const void *src, size_t size)``: the
# pointers passed as addresses (integers of their width)
_SIGNATURE = types.uintp(types.uintp, types.uintp, types.uintp, types.uintp)
_decompress = types.ExternalFunction(SYMBOL, _SIGNATURE)


def _unavailable(dst, capacity, src, size):
    """Every call fails (a result above any capacity, as zstd's error codes are)."""
    return ~np.uintp(0)


def _library_address() -> int | None:
    """The address of ``ZSTD_decompress`` in the system's libzstd, or ``None``."""
    for name in (ctypes.util.find_library("zstd"), "libzstd.so.1"):
        if name is None:
            continue
        try:
            return ctypes.cast(ctypes.CDLL(name).ZSTD_decompress, ctypes.c_void_p).value
        except (OSError, AttributeError):
            continue
    return None


def _register() -> bool:
    """Point :data:`SYMBOL` at libzstd's function, else at :func:`_unavailable`; return which."""
    address = _library_address()
    found = address is not None
    if not found:
        address = cfunc(_SIGNATURE, nopython=True, cache=True)(_unavailable).address
    llvm.add_symbol(SYMBOL, address)
    return found


#: Whether zstd pages are decompressed here (a libzstd was found).
AVAILABLE = _register()


@checked_jit
def decompress(source, lo, size, out, capacity):
    """Decompress the zstd frames at ``source[lo : lo + size]`` into ``out[:capacity]`` (the
    caller checks both ranges); the bytes written, or -1 where they are not valid frames or do
    not fit."""
    got = np.int64(_decompress(out.ctypes.data, capacity, source.ctypes.data + lo, size))
    return got if 0 <= got <= capacity else -1
