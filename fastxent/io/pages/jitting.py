"""How the page decoders are compiled."""

from __future__ import annotations

from pathlib import Path

import numba

from ...kernels import jit  # imported first: it points Numba at a writable cache


def _cache_probe():
    """A function of this directory, so Numba's locator tells where the decoders are cached."""


# the decoders call each other across files, which Numba's per-file checks do not see
jit.refresh_cache(_cache_probe, Path(__file__).resolve().parent)


def checked_jit(func):
    """``njit`` for code that reads untrusted bytes: cached, releasing the GIL, IEEE arithmetic
    (never fast-math: values are copied, not computed, and must keep their bits). Numba does not
    check indices, so every such function checks its reads against the buffer's end itself."""
    return numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=False)(func)
