"""The report's statistics of scored rows, every entry (a file or a group) at once, in one pass."""

from __future__ import annotations

import math

import numpy as np

from .jit import strict_jit
from .vmath import bits_of


def binade_starts(edges: np.ndarray) -> np.ndarray:
    """``starts[k]``: how many of the (increasing, positive) ``edges`` lie below the float64
    whose top 12 bits (sign and exponent) are ``k`` (0 for negative numbers and zero), for
    :func:`loss_bin`, which checks at most two more edges: refused if a binade holds more."""
    exponents = np.arange(2048)
    with np.errstate(over="ignore"):  # exponent 2047 (infinities, NaN) starts at inf: never binned
        lowest = np.where(exponents == 0, 0.0, np.ldexp(1.0, exponents - 1023, dtype=np.float64))
        highest = np.ldexp(1.0, exponents - 1022)
    starts = np.zeros(4096, dtype=np.int64)
    starts[:2048] = np.searchsorted(edges, lowest, side="left")
    within = np.searchsorted(edges, highest, side="left") - starts[:2048]
    if within.max() > 2:
        raise ValueError("loss_bin looks at two edges a binade: these edges are closer than that.")
    return starts


@strict_jit
def loss_bin(edges, starts, loss):
    """``np.searchsorted(edges, loss)``: how many edges are below ``loss``.

    The edges below the loss's binade, from ``starts`` (:func:`binade_starts`) by its top 12
    bits, plus the at most two edges inside it (``edges`` padded with two infinities): a binary
    search's branches are unpredictable for losses (14 ns a row) and a count over 37 edges costs
    4.5 ns. NaN and infinite losses are not binned.
    """
    at = np.uint64(starts[np.uint64(bits_of(loss)) >> np.uint64(52)])
    return at + np.uint64(edges[at] < loss) + np.uint64(edges[at + np.uint64(1)] < loss)


@strict_jit
def tally_losses(entry, losses, skip, edges, starts, totals, histogram, threshold, worst):
    """Add rows' losses to their entries' statistics; mark the candidates for the worst rows.

    Row ``i`` (unless ``skip[i]``: an ignored row) belongs to entry ``entry[i]``. A non-finite
    loss only counts (``totals[e, 3]``); a finite one adds to ``totals[e] = (rows, sum l,
    sum l**2, non-finite)`` and to the loss ``histogram[e]`` (bins split by ``edges``, padded
    with two infinities, and their :func:`binade_starts`). ``worst[i]`` says whether the row's
    loss (NaN as +inf) reaches ``threshold[e]``, the entry's k-th worst so far.

    One of the two halves of a batch's statistics (:func:`tally_classes` the other): each sum
    is over the rows in order in either, so the two may run at once, in two threads. One loop
    for both cost 7.6 ns a row; the halves 3.0 and 3.3 (131,072 binary rows, 3 entries).
    """
    # Flat views and unsigned offsets: an index into a 2- or 3-d array costs a multiplication by
    # a stride reloaded from the stack and a fix-up for negative values at every access, and the
    # loop's ten of them ran out of registers (131,072 rows, 3 entries: 10.0 -> 7.5 ns a row).
    u = np.uint64
    histogram_width = u(histogram.shape[1])
    totals_of, histogram_of = totals.reshape(-1), histogram.reshape(-1)
    for i in range(losses.shape[0]):
        worst[i] = False
        if skip[i]:
            continue
        e = u(entry[i])
        loss = losses[i]
        key = math.inf if loss != loss else loss
        worst[i] = key >= threshold[e]
        if not math.isfinite(loss):
            totals_of[e * u(4) + u(3)] += 1.0
            continue
        at = e * u(4)
        totals_of[at] += 1.0
        totals_of[at + u(1)] += loss
        totals_of[at + u(2)] += loss * loss
        histogram_of[e * histogram_width + loss_bin(edges, starts, loss)] += 1


@strict_jit
def tally_classes(entry, losses, truth, confidence, predicted, skip, classes, bins):
    """Add rows to their entries' per-class and calibration statistics (the other half of
    :func:`tally_losses`).

    Row ``i`` (unless ``skip[i]`` or its loss is not finite) of entry ``e = entry[i]`` adds to
    ``classes[e, truth]`` = (rows, sum l, correct) and to the calibration bin of its
    ``confidence`` ``bins[e, b]`` = (rows, sum of confidences, correct),
    ``b = min(floor(confidence * B), B - 1)`` (NaN confidence: 0); correct: ``predicted[i] ==
    truth[i]``.
    """
    u = np.uint64
    num_classes, num_bins = classes.shape[1], bins.shape[1]
    classes_of, bins_of = classes.reshape(-1), bins.reshape(-1)
    for i in range(losses.shape[0]):
        loss = losses[i]
        if skip[i] or not math.isfinite(loss):
            continue
        e = u(entry[i])
        hit = 1.0 if predicted[i] == truth[i] else 0.0
        t = u(truth[i])
        if t < u(num_classes):  # a negative class wraps around to a huge one
            at = (e * u(num_classes) + t) * u(3)
            classes_of[at] += 1.0
            classes_of[at + u(1)] += loss
            classes_of[at + u(2)] += hit
        c = confidence[i]
        c = 0.0 if c != c else min(max(c, 0.0), 1.0)
        at = (e * u(num_bins) + u(min(int(c * num_bins), num_bins - 1))) * u(3)
        bins_of[at] += 1.0
        bins_of[at + u(1)] += c
        bins_of[at + u(2)] += hit
