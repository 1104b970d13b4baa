"""Running the CPU kernels on one batch: argument packing, chunking, serial or parallel.

A :class:`~fastxent.spec.LossSpec` holds what does not change from batch to batch (family, input
kind, class weights, options); :func:`pack` turns one batch of validated NumPy arrays into the
argument tuple of the family's row function. Batches are cut into chunks when they must be
converted (float16 is computed in float32, non-contiguous views are copied), so memory stays
bounded by a chunk, never a copy of the whole input.

Multiclass input stored class by class (a Fortran-order array, or the one-column-per-class
file layout) runs on kernels that read it that way (:func:`~.kernels.multiclass.index_target_columns`):
transposing it to rows would cost more than the loss itself.
"""

from __future__ import annotations

import threading
import warnings
from typing import NamedTuple

import numba
import numpy as np

from .kernels import binary, halves, multiclass
from .kernels.blocks import segment_count
from .kernels.codes import BLOCK_ROWS, N_COUNTS, N_SUMS, PER_ELEMENT
from .spec import LossSpec

#: Below this many elements a batch runs on the serial kernel: a parallel launch costs more.
PARALLEL_MIN_ELEMENTS = 1 << 18

#: Elements per conversion chunk (float16 upcast, non-contiguous copies): 32 MiB of float64.
CHUNK_ELEMENTS = 1 << 22

_EMPTY = np.empty(0)

FAMILIES = {
    "multiclass": multiclass.INDEX_TARGET,
    "soft": multiclass.SOFT_TARGET,
    "binary": binary.BINARY,
}


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype kernels compute in: float64 stays, everything else becomes float32."""
    return np.dtype(np.float64) if dtype == np.float64 else np.dtype(np.float32)


def pack(spec: LossSpec, x, target, sample_weight, element_weight, weight_mode):
    """The CPU row function's argument tuple for one chunk of ``spec`` (arrays already converted)."""
    eps = float(np.finfo(compute_dtype(x.dtype)).eps)  # float16 bits (uint16): float32's
    sample_weight = _EMPTY if sample_weight is None else sample_weight
    if spec.family == "multiclass":
        tolerance = 1e-8 + float(np.sqrt(eps))  # sklearn: isclose(sum, 1, rtol=sqrt(eps))
        return (
            x,
            target,
            spec.class_weight,
            sample_weight,
            spec.ignore_index,
            spec.label_smoothing,
            spec.kind_code(),
            eps,
            tolerance,
        )
    if spec.family == "soft":
        return (
            x,
            target,
            spec.class_weight,
            sample_weight,
            spec.label_smoothing,
            spec.kind_code(),
        )
    num_classes = x.shape[1] if x.ndim == 2 else 1
    pos_weight = spec.pos_weight
    if pos_weight.size == 1 and num_classes > 1:
        pos_weight = np.full(num_classes, pos_weight[0])
    return (
        x.reshape(-1),
        target.reshape(-1),
        num_classes,
        _EMPTY if element_weight is None else element_weight.reshape(-1),
        weight_mode,
        pos_weight,
        sample_weight,
        spec.kind_code(),
        eps,
    )


class RowValues(NamedTuple):
    """Each row's results from the scoring pass, for groups, per-row outputs and reports:
    ``loss`` and ``den`` (float64), ``marks`` (``MARK_*`` values of :mod:`.kernels.blocks`,
    int32), ``predicted`` (the predicted class, int32) and ``confidence`` (its probability,
    float64; NaN for multilabel rows), the last two empty when not asked for."""

    loss: np.ndarray
    den: np.ndarray
    marks: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray

    @classmethod
    def empty(cls, n: int, predicted: bool = False, confidence: bool = False) -> RowValues:
        return cls(
            np.empty(n),
            np.empty(n),
            np.empty(n, np.int32),
            np.empty(n if predicted else 0, np.int32),
            np.empty(n if confidence else 0),
        )

    def rows(self, lo: int, hi: int) -> RowValues:
        """Rows ``[lo, hi)`` (views; an empty ``predicted`` or ``confidence`` stays empty)."""
        return RowValues(*(a[lo:hi] for a in self))


#: No per-row results: the block drivers keep row values in per-block scratch arrays.
_NO_ROW_VALUES = RowValues.empty(0)


class Chunk(NamedTuple):
    """Consecutive rows of a batch, ready for a kernel: ``args`` for the row functions of
    ``drivers`` (a family's :class:`~.kernels.blocks.Drivers`), every array in them read-only
    (:func:`read_only`)."""

    rows: int
    args: tuple
    drivers: object


class ClassStatistics(NamedTuple):
    """Multiclass rows already reduced class by class (:mod:`fastxent.run.wide`), standing in
    for their ``(N, C)`` input: ``stats`` (``(N_STATS, N)`` float64, the rows of
    :data:`~.kernels.multiclass.D_TARGET`...) and ``predicted`` (each row's first argmax, int32),
    for ``num_classes`` classes of ``dtype`` values, and (with ``predicted``) ``confidence``, the
    probability of the predicted class (logits: ``1 / Z`` from the same sums as the loss). Only
    the rows are finished from them."""

    stats: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray
    num_classes: int
    dtype: np.dtype

    @property
    def shape(self) -> tuple[int, int]:
        return self.stats.shape[1], self.num_classes

    @property
    def nbytes(self) -> int:
        return self.stats.shape[1] * self.num_classes * self.dtype.itemsize  # the input it stands for

    def rows(self, lo: int, hi: int) -> ClassStatistics:
        return self._replace(
            stats=self.stats[:, lo:hi], predicted=self.predicted[lo:hi], confidence=self.confidence[lo:hi]
        )

    def take(self, positions: np.ndarray) -> ClassStatistics:
        if not self.predicted.shape[0]:
            return self._replace(stats=self.stats[:, positions])
        return self._replace(
            stats=self.stats[:, positions],
            predicted=self.predicted[positions],
            confidence=self.confidence[positions],
        )


def is_column_major(spec: LossSpec, x: np.ndarray) -> bool:
    """Whether ``x`` runs on the class-by-class kernels: class-index targets and ``(N, C)``
    input whose columns are contiguous but rows are not (a Fortran-order array or a row slice of
    one; the slice is copied a chunk at a time into Fortran order)."""
    return (
        spec.family == "multiclass"
        and x.ndim == 2
        and x.shape[1] > 1
        and x.strides[0] == x.itemsize
        and not x.flags.c_contiguous
    )


def class_rows(x: np.ndarray) -> np.ndarray | None:
    """The C-contiguous ``(C, P)`` array whose first ``N`` columns are ``x.T``, where ``x`` (``(N,
    C)``, column-strided) is such a view (``P >= N``: each class's values padded to ``P``, or the
    first rows of a Fortran-order ``(P, C)`` array); ``None`` otherwise. The class-by-class
    kernels read it in place, ``N`` rows of each class. Class columns a power of two of bytes
    apart fall in the same cache sets (131,072 float32 rows: every class at one L2 set), where
    padded ones spread (:func:`fastxent.io.pages.cursor.spread_stride`): 4M x 100 float32 in
    batches of 131,072 rows scored in 0.42 s one thread, 0.27 s padded by 512 rows."""
    base = x.base
    if not isinstance(base, np.ndarray) or base.ndim != 2:
        return None
    rows = base if base.flags.c_contiguous else base.T
    if (
        rows.flags.c_contiguous
        and rows.dtype == x.dtype
        and rows.shape[0] == x.shape[1]
        and rows.shape[1] >= x.shape[0]
        and rows.strides[0] == x.strides[1]
        and rows.ctypes.data == x.ctypes.data
    ):
        return rows
    return None


def halves_in_kernel(spec: LossSpec, x: np.ndarray) -> bool:
    """Whether ``x`` is float16 input the kernels read as its bits (``uint16``) and convert
    themselves: multiclass rows in row order (class-index targets), or one binary column."""
    if x.dtype != np.float16 or not x.flags.c_contiguous:
        return False
    return (spec.family == "multiclass" and x.ndim == 2) or (spec.family == "binary" and x.ndim == 1)


def _converted(a: np.ndarray | None, dtype, order: str = "C") -> np.ndarray | None:
    if a is None:
        return None
    if a.dtype == np.float16 and dtype == np.float32 and order == "C":
        return halves.widened(a)
    return np.asarray(a, dtype=dtype, order=order)


def _target_dtype(spec: LossSpec, target: np.ndarray, x_dtype) -> np.dtype:
    if spec.family == "multiclass":
        return target.dtype if target.dtype in (np.int32, np.int64) else np.dtype(np.int64)
    if spec.family == "binary" and target.dtype == np.int64:
        return target.dtype  # labels as most files store them: read in place, not converted
    return x_dtype


def read_only(args: tuple) -> tuple:
    """``args`` with each writable array replaced by a read-only view of it.

    Numba compiles a kernel once for each argument type, and an array's type includes whether
    it is writable: Arrow's buffers are read-only, NumPy's arrays and the copies made here are
    not. The drivers only read their arguments, so one kind halves the kernels compiled (a
    third of a cold suite's variants) and the first in-memory call after a file score (or the
    other way round) loads the cache instead of compiling again.
    """
    return tuple(_read_only_view(a) if isinstance(a, np.ndarray) else a for a in args)


def _read_only_view(a: np.ndarray) -> np.ndarray:
    if not a.flags.writeable:
        return a
    view = a.view()
    view.flags.writeable = False
    return view


def chunks(spec: LossSpec, x, target, sample_weight=None, element_weight=None, weight_mode=0):
    """Yield a :class:`Chunk` for each consecutive row range of a batch, converting as needed.

    Arrays already contiguous and of a kernel dtype pass through as they are (read-only Arrow
    buffers included): one chunk, no copy. Column-major multiclass input stays column-major.
    """
    if isinstance(x, ClassStatistics):  # statistics, argmax, confidences, then pack's arguments, then C
        target = _converted(target, _target_dtype(spec, target, x.dtype))
        packed = pack(spec, x, target, _converted(sample_weight, np.float64), None, 0)
        args = (
            np.ascontiguousarray(x.stats),
            np.ascontiguousarray(x.predicted),
            np.ascontiguousarray(x.confidence),
            *packed[1:],
            np.int64(x.num_classes),
        )
        yield Chunk(x.shape[0], read_only(args), multiclass.INDEX_TARGET_STATISTICS)
        return
    n = x.shape[0]
    dtype = compute_dtype(x.dtype)
    tdtype = _target_dtype(spec, target, dtype)
    by_columns = is_column_major(spec, x)
    order = "F" if by_columns else "C"
    drivers = multiclass.INDEX_TARGET_COLUMNS if by_columns else FAMILIES[spec.family]
    if halves_in_kernel(spec, x):
        # the row kernels convert float16 rows themselves, a row (kernels.halves.row_values)
        # or a piece of narrow rows (rows_computed) at a time in the cache: no float32 copy of
        # the batch goes through memory
        x = x.view(np.uint16)
        dtype = x.dtype
    # class rows padded apart (class_rows): read in place, as a Fortran-order array is
    padded = class_rows(x) if by_columns and not x.flags.f_contiguous else None
    as_is = (
        x.dtype == dtype
        and ((x.flags.f_contiguous or padded is not None) if by_columns else x.flags.c_contiguous)
        and target.dtype == tdtype
        and target.flags.c_contiguous
        and (sample_weight is None or sample_weight.flags.c_contiguous)
    )
    row_elements = max(1, int(np.prod(x.shape[1:])))
    step = n if as_is else max(BLOCK_ROWS, CHUNK_ELEMENTS // row_elements // BLOCK_ROWS * BLOCK_ROWS)
    for lo in range(0, max(n, 1), max(step, 1)):
        hi = min(lo + step, n)
        ew = element_weight
        if element_weight is not None and weight_mode == PER_ELEMENT:
            ew = element_weight[lo:hi]
        sw = None if sample_weight is None else sample_weight[lo:hi]
        if padded is not None and as_is:  # (C, P), C-contiguous: one class per kernel row
            xc = padded
        else:
            xc = _converted(x[lo:hi], dtype, order)
            xc = xc.T if by_columns else xc  # (C, rows), C-contiguous
        args = pack(
            spec,
            xc,
            _converted(target[lo:hi], tdtype),
            _converted(sw, np.float64),
            _converted(ew, np.float64),
            weight_mode,
        )
        yield Chunk(hi - lo, read_only(args), drivers)
        if hi >= n:
            break


#: Why this process runs only the serial kernels (``None``: it does not); ``fastxent info`` says.
SERIAL_REASON: str | None = None


def serial_only(reason: str) -> None:
    """Use only the serial kernels in this process, for ``reason`` (a forked child of an OpenMP
    parent, a threading layer that cannot load, a Dask worker under ``workqueue``)."""
    global PARALLEL_MIN_ELEMENTS, SERIAL_REASON
    PARALLEL_MIN_ELEMENTS = 1 << 62
    SERIAL_REASON = reason


def threading_status() -> str:
    """The threading layer the parallel kernels run on (launching one small parallel kernel to
    find out, compiled or loaded from the cache), or why this process runs serial kernels."""
    if SERIAL_REASON is None:
        x = np.zeros((PARALLEL_MIN_ELEMENTS // 4, 4), dtype=np.float32)
        chunk = next(chunks(LossSpec("multiclass"), x, np.zeros(x.shape[0], dtype=np.int64)))
        run_rowwise(chunk, np.empty(x.shape[0], dtype=np.float32))
    if SERIAL_REASON is not None:
        return f"none: serial kernels ({SERIAL_REASON})"
    asked = numba.config.THREADING_LAYER
    return f"{numba.threading_layer()}" + ("" if asked == "default" else f" (NUMBA_THREADING_LAYER={asked})")


#: Numba's ``workqueue`` layer (used when neither OpenMP nor TBB loads) aborts the process when
#: two threads launch parallel kernels at once ("Concurrent access has been detected"): under it,
#: parallel launches take turns.
_WORKQUEUE_LAUNCH = threading.Lock()


def _layer_is_threadsafe() -> bool:
    try:
        return numba.threading_layer() != "workqueue"
    except ValueError:  # no layer chosen before the first parallel launch: assume the worst
        return False


def _launch(pair, chunk: Chunk, *args) -> None:
    """Run a chunk on the serial or the parallel twin of a driver ``pair`` (:func:`launch`)."""
    launch(pair, chunk.args[0].size, *args)


def launch(pair, size: int, *args) -> None:
    """Run the serial or the parallel twin of a kernel ``pair`` on ``args``, for input of
    ``size`` elements.

    Small inputs run serial (a parallel launch costs more). A threading layer that cannot load
    (``NUMBA_THREADING_LAYER=tbb`` without TBB) is said once on stderr and the process goes on
    with the serial kernels, which give the same bits.
    """
    if size < PARALLEL_MIN_ELEMENTS:
        pair[0](*args)
        return
    try:
        if _layer_is_threadsafe():
            pair[1](*args)
            return
        with _WORKQUEUE_LAUNCH:
            pair[1](*args)
    except ValueError as err:
        if "threading layer" not in str(err):
            raise
        warnings.warn(
            f"fastxent: Numba's threading layer could not be loaded ({str(err).splitlines()[0]}); "
            "scoring on one thread (set NUMBA_THREADING_LAYER to a layer that loads, or unset it).",
            RuntimeWarning,
            stacklevel=4,
        )
        serial_only(f"the threading layer could not be loaded: {str(err).splitlines()[0]}")
        pair[0](*args)


def run_blocks(chunk: Chunk, first: int, row_values: RowValues | None = None, moments: bool = True):
    """Run the block driver on one chunk whose first block boundary is ``first`` rows in.

    Returns ``(sums, counts, edge_loss, edge_den)`` as described in
    :func:`fastxent.kernels.blocks._blocks_template`; ``row_values`` (the chunk's rows), when given,
    receives each row's values in the same pass. ``moments``: the sums include the products the
    standard error needs (:data:`~.kernels.codes.SUM_FIELDS`), else only the losses and
    denominators.
    """
    rows = chunk.rows
    nseg = segment_count(rows, first)
    sums = np.zeros((nseg, N_SUMS if moments else 2))
    counts = np.zeros((nseg, N_COUNTS), dtype=np.int64)
    edge_loss = np.zeros(min(rows, 2 * BLOCK_ROWS))
    edge_den = np.zeros_like(edge_loss)
    values = _NO_ROW_VALUES if row_values is None else row_values
    _launch(chunk.drivers.blocks, chunk, chunk.args, rows, first, sums, counts, edge_loss, edge_den, *values)
    return sums, counts, edge_loss, edge_den


def run_rowwise(chunk: Chunk, out: np.ndarray) -> None:
    """Per-row losses of one chunk into ``out`` (``reduction="none"``)."""
    _launch(chunk.drivers.rowwise, chunk, chunk.args, chunk.rows, out)
