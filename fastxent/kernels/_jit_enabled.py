"""fastxent's kernels exist only compiled: ``NUMBA_DISABLE_JIT=1`` (which users set to debug their
own Numba code) is refused at import with one sentence saying so, rather than a
``NotImplementedError`` from inside a kernel later. The vectorised float32 ``exp``/``log`` and the
integer-keyed maxima are LLVM intrinsics and overloads that have no plain-Python form."""

from __future__ import annotations

import numba

from ..errors import FastxentError

if numba.config.DISABLE_JIT:
    raise FastxentError(
        "fastxent's kernels run only compiled, and NUMBA_DISABLE_JIT=1 turns Numba's compiler off; "
        "unset NUMBA_DISABLE_JIT (or set it to 0) to use fastxent."
    )
