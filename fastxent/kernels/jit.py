"""How every CPU kernel is compiled: Numba options, the cache directory, serial/parallel twins.

Numba's ``cache=True`` needs a writable directory. It tries ``__pycache__`` beside the source,
then the user-wide cache under ``$HOME``; when neither is writable (a read-only site-packages in a
container with a read-only home) the *decorator itself* raises and ``import fastxent`` would fail.
:func:`ensure_cache_dir` runs before any kernel is decorated and points Numba at a private
temporary directory in that case.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import types
from pathlib import Path

import numba
from llvmlite import binding, ir
from numba.core.caching import FunctionCache
from numba.extending import intrinsic
from numba.misc import appdirs

#: LLVM fast-math flags used by the kernels: reassociation (vectorised sums and maxima), fused
#: multiply-add, reciprocal and signed-zero freedom. Deliberately *not* ``nnan``/``ninf``
#: (``fastmath=True``), which let LLVM assume no NaN or infinity and would break ``-inf`` logits
#: and NaN propagation.
VECTOR_FLAGS = frozenset({"reassoc", "contract", "arcp", "nsz"})

#: Flags for element-wise helpers (``exp32``...): fused multiply-add only. Reassociation would
#: let LLVM rewrite ``(1 + x) - 1`` as ``x`` and undo the error-compensation tricks they rely on;
#: element-wise loops vectorise without it. Flags live on each instruction, so these helpers
#: keep their strict arithmetic when inlined into a reassociating kernel.
ELEMENTWISE_FLAGS = frozenset({"contract"})

_PACKAGE_DIR = Path(__file__).resolve().parent


def _is_writable_dir(path: Path) -> bool:
    """Return whether a file can be created in ``path`` (creating the directory if needed)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path):
            return True
    except OSError:
        return False


def choose_cache_dir(package_dir: Path = _PACKAGE_DIR, user_dir: Path | None = None) -> Path | None:
    """Return a fallback cache directory, or ``None`` when Numba's own choice will work.

    Parameters
    ----------
    package_dir : Path
        Directory holding the kernel sources (Numba's first choice is its ``__pycache__``).
    user_dir : Path, optional
        Numba's user-wide cache directory (default: the one Numba would use).
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    if user_dir is None:
        user_dir = Path(appdirs.AppDirs(appname="numba", appauthor=False).user_cache_dir)
    if _is_writable_dir(package_dir / "__pycache__") or _is_writable_dir(user_dir):
        return None
    return Path(tempfile.gettempdir()) / f"fastxent-numba-cache-{os.getuid()}"


def ensure_cache_dir() -> Path | None:
    """Point Numba at a writable cache directory when its defaults are read-only."""
    fallback = choose_cache_dir()
    if fallback is not None:
        fallback.mkdir(parents=True, exist_ok=True)
        numba.config.CACHE_DIR = str(fallback)
    return fallback


def cache_dir() -> str:
    """The directory Numba caches fastxent's kernels in (for ``fastxent info``)."""
    if numba.config.CACHE_DIR:
        return numba.config.CACHE_DIR
    if _is_writable_dir(_PACKAGE_DIR / "__pycache__"):
        return str(_PACKAGE_DIR / "__pycache__")
    return appdirs.AppDirs(appname="numba", appauthor=False).user_cache_dir


ensure_cache_dir()

#: Name of the file, in the kernel cache directory, holding the digest of the kernel sources.
SOURCES_STAMP = "fastxent-kernels.sha256"


def sources_digest(package_dir: Path = _PACKAGE_DIR) -> str:
    """SHA-256 of every kernel source file (``*.py`` in ``package_dir``), in name order."""
    digest = hashlib.sha256()
    for source in sorted(package_dir.glob("*.py")):
        digest.update(source.name.encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()


def drop_stale_cache(cache_path: Path, digest: str, package_dir: Path = _PACKAGE_DIR) -> bool:
    """Delete the cached kernels in ``cache_path`` unless they were compiled from sources with
    this ``digest``; return whether anything was stale.

    Numba invalidates a cached function only when *its own* source file changes. fastxent's
    kernels inline helpers from other files (``vmath``, ``formulas``) and the block drivers are
    compiled from ``blocks.py`` with a row function from another file, so an edit to a helper
    would otherwise keep serving machine code built from the old helper.
    """
    stamp = cache_path / SOURCES_STAMP
    try:
        if stamp.read_text() == digest:
            return False
    except OSError:
        pass
    modules = {source.stem for source in package_dir.glob("*.py")}
    for entry in cache_path.glob("*.nb[ic]"):
        if entry.name.split(".", 1)[0] in modules:
            entry.unlink(missing_ok=True)
    cache_path.mkdir(parents=True, exist_ok=True)
    partial = cache_path / f"{SOURCES_STAMP}.{os.getpid()}.tmp"
    partial.write_text(digest)
    partial.replace(stamp)
    return True


def _cache_probe():
    """A function of this directory, so Numba's locator tells where the kernels are cached."""


def refresh_cache(probe=_cache_probe, package_dir: Path = _PACKAGE_DIR) -> None:
    """:func:`drop_stale_cache` for the directory of compiled sources ``package_dir``, whose
    cache Numba's locator finds from ``probe``, a function defined there (the page decoders of
    :mod:`fastxent.io.pages` call each other across files too)."""
    # A read-only cache keeps Numba's own per-file checks; never fail the import over it.
    with contextlib.suppress(OSError):
        drop_stale_cache(Path(FunctionCache(probe)._cache_path), sources_digest(package_dir), package_dir)


refresh_cache()


def vector_jit(func=None, **options):
    """``njit`` for kernels and reductions that must vectorise (:data:`VECTOR_FLAGS`).

    ``forceinline``: LLVM otherwise refuses to inline a helper that itself inlined ``exp32`` and
    ``log1p32`` (too large), and a loop that still contains a call does not vectorise.
    """
    options = {
        "cache": True,
        "nogil": True,
        "error_model": "numpy",
        "fastmath": set(VECTOR_FLAGS),
        "forceinline": True,
        **options,
    }
    return numba.njit(**options) if func is None else numba.njit(**options)(func)


def elementwise_jit(func):
    """``njit`` for element-wise scalar helpers (:data:`ELEMENTWISE_FLAGS`)."""
    return vector_jit(func, fastmath=set(ELEMENTWISE_FLAGS))


#: ``jit_options`` for ``@overload`` implementations of element-wise helpers.
ELEMENTWISE_OVERLOAD_OPTIONS = {"fastmath": set(ELEMENTWISE_FLAGS), "forceinline": True}

#: ``jit_options`` for ``@overload`` implementations of reductions (:func:`vector_jit`'s flags).
VECTOR_OVERLOAD_OPTIONS = {"fastmath": set(VECTOR_FLAGS), "forceinline": True}


#: The LLVM function attribute that lets the loop vectoriser use the widest vectors the target has.
WIDE_VECTORS = '"prefer-vector-width"="512"'


class _WideAttributes(ir.FunctionAttributes):
    """llvmlite's function attributes, plus :data:`WIDE_VECTORS` (llvmlite only knows the
    enumerated LLVM attributes, not string ones)."""

    _known = ir.FunctionAttributes._known | {WIDE_VECTORS}


@intrinsic
def wide_vectors(typingctx):
    """Mark the function that calls this (at compile time; it does nothing when run) with
    :data:`WIDE_VECTORS`.

    LLVM sizes a loop's vectors from the subtarget's preferred width, and its tuning for Intel
    server CPUs (Skylake-SP to Sapphire Rapids) prefers 256 bits although they have AVX-512, so
    float32 loops ran on 8 lanes instead of 16. The attribute lifts that preference for this
    function only: other Numba code in the process keeps its own. It cannot widen past the
    target: X86 takes ``min(512, widest register)``, so AVX2 machines still get 256-bit code,
    and the target's name and features are part of Numba's cache key, so a cache never hands
    one machine's vectors to another. A loop is vectorised where it is written, before it is
    inlined, so every kernel function with a hot loop calls this.
    """

    def codegen(context, builder, signature, args):
        function = builder.function
        if not isinstance(function.attributes, _WideAttributes):
            attributes = _WideAttributes(function.attributes)
            attributes.alignstack = function.attributes.alignstack
            attributes.personality = function.attributes.personality
            function.attributes = attributes
        function.attributes.add(WIDE_VECTORS)
        return context.get_dummy_value()

    return numba.types.none(), codegen


@intrinsic
def never_inlined(typingctx):
    """Mark the function that calls this (at compile time; it does nothing when run) LLVM
    ``noinline``.

    Numba links a callee's code into every function that calls it, where LLVM inlines it at
    will: a callee inlined at three call sites is optimised and emitted three times, in every
    driver that links it. Large, cold callees (a block's sums, once a block) stay one function.
    The function must set ``forceinline=False`` itself: Numba hands an unset ``forceinline`` down
    from the function whose compilation compiles it, and LLVM refuses ``noinline`` beside
    ``alwaysinline``.
    """

    def codegen(context, builder, signature, args):
        builder.function.attributes.add("noinline")
        return context.get_dummy_value()

    return numba.types.none(), codegen


def target_has(feature: str) -> bool:
    """Whether the CPU Numba compiles for has ``feature`` (LLVM's name: ``"f16c"``,
    ``"avx512f"``): ``NUMBA_CPU_FEATURES`` when set, else the host's features (whatever
    ``NUMBA_CPU_NAME`` says). Kernels that emit a target's own instructions check this first:
    LLVM cannot lower them for a CPU without the feature."""
    features = numba.config.CPU_FEATURES
    if features is None:
        features = binding.get_host_cpu_features().flatten()
    return f"+{feature}" in features.split(",")


def strict_jit(func=None, **options):
    """``njit`` with IEEE semantics: no reassociation, so summation order is exactly as written."""
    options = {"cache": True, "nogil": True, "error_model": "numpy", "fastmath": False, **options}
    return numba.njit(**options) if func is None else numba.njit(**options)(func)


def bound_copy(template, name, **names):
    """A copy of the function ``template`` named ``name``, whose globals ``names`` are bound to
    the values given: one body compiled around different callees. Numba compiles each copy
    apart, and caches it under its own name."""
    func = types.FunctionType(
        template.__code__, {**template.__globals__, **names}, name, template.__defaults__
    )
    func.__qualname__ = name
    func.__doc__ = template.__doc__
    return func


def serial_and_parallel(body, jit=vector_jit):
    """Compile one kernel body twice: serial (small inputs) and ``parallel=True`` (``prange``),
    with ``jit`` (:func:`vector_jit`, or :func:`strict_jit` for a body whose sums must keep their
    order).

    A parallel launch costs up to milliseconds, so small inputs take the serial twin. The serial
    twin is a copy of the function under another qualified name because Numba's cache key does
    not include the compile options: both twins under one name would overwrite each other.
    """
    serial = types.FunctionType(body.__code__, body.__globals__, body.__name__ + "_serial", body.__defaults__)
    serial.__qualname__ = body.__qualname__ + "_serial"
    serial.__doc__ = body.__doc__
    return jit(serial), jit(body, parallel=True)
