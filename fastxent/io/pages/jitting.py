"""How the page decoders are compiled."""

from __future__ import annotations

import numba

from ...kernels import jit  # noqa: F401  (imported first: it points Numba at a writable cache)


def checked_jit(func):
    """``njit`` for code that reads untrusted bytes: cached, releasing the GIL, IEEE arithmetic
    (never fast-math: values are copied, not computed, and must keep their bits). Numba does not
    check indices, so every such function checks its reads against the buffer's end itself."""
    return numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=False)(func)
