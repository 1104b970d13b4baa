"""The numbers every kernel and both targets (CPU and CUDA) share: summation blocks, count slots,
per-row marks, input kinds and weight layouts. Kernel modules take them from here, never from
another target's module, so no value is ever copied by hand."""

from __future__ import annotations

#: Rows per summation block. Fixed: changing it changes results in the last bits.
BLOCK_ROWS = 2048

#: Threads per CUDA thread block: a power of two for the tree reduction, and a divisor of
#: :data:`BLOCK_ROWS`, so that a thread block sums one summation block, each thread
#: :data:`ROWS_PER_THREAD` of its rows.
TPB = 128
ROWS_PER_THREAD = BLOCK_ROWS // TPB

#: Counts each row function returns: scored, ignored, nonfinite, correct, judged, off-simplex.
COUNT_FIELDS = ("scored", "ignored", "nonfinite", "correct", "judged", "unnormalised")
N_COUNTS = len(COUNT_FIELDS)
SCORED, IGNORED, NONFINITE, CORRECT, JUDGED, UNNORMALISED = range(N_COUNTS)

#: Per-row marks, written by the row functions when asked (groups and per-row outputs): flag
#: bits, and the row's count of correct predictions from :data:`MARK_CORRECT_SHIFT` up (a
#: multilabel row has up to C). A row not ignored is scored.
MARK_IGNORED, MARK_NONFINITE, MARK_UNNORMALISED = 1, 2, 4
MARK_CORRECT_SHIFT = 3

#: What a block's sums hold, in order: the row losses and denominators (the loss is their ratio),
#: and the moments its standard error needs (sums of ``loss**2``, ``loss * den`` and ``den**2``).
SUM_FIELDS = ("loss", "den", "loss_sq", "loss_den", "den_sq")
N_SUMS = len(SUM_FIELDS)

#: Capacity of an exact-sum expansion (a float64 sum needs at most ~40 non-overlapping terms).
EXPANSION_SIZE = 64

#: What the values in a multiclass row are.
LOGITS, LOG_PROBS, PROBS = 0, 1, 2

#: What a binary element is, and which library's rules apply to probabilities.
BINARY_LOGITS, BINARY_PROBS_TORCH, BINARY_PROBS_SKLEARN = 0, 1, 2

#: How torch's element ``weight`` is laid out: absent, one per class (``C``), one per element.
NO_WEIGHT, PER_CLASS, PER_ELEMENT = 0, 1, 2
