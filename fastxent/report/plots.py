"""The PNG plots of a model-evaluation report, drawn on matplotlib's Agg renderer
(:mod:`.canvas`).

Each function takes the report's entries (dicts as in ``report.json``) and a path.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import FastxentError
from .stats import LOSS_EDGES


def _canvas():
    """The :mod:`.canvas` module (matplotlib is an optional dependency: ``fastxent[report]``)."""
    try:
        from . import canvas
    except ImportError:
        raise FastxentError("reports need matplotlib: pip install 'fastxent[report]'") from None
    return canvas


#: Margins of the figures whose labels do not vary (ticks 0 to 1 or powers of ten, set axis
#: titles), as shares of the figure: left, bottom, right, top.
FIXED_MARGINS = (0.11, 0.13, 0.95, 0.92)

#: Classes drawn in the per-class chart at most: with more, the highest-loss ones (the report's
#: table lists them all). 100 classes drew a 9,526-pixel-wide chart in 0.7 s.
PLOTTED_CLASSES = 20


#: Entries (files, groups of ``by``) drawn in a figure at most: with more, the lowest- and the
#: highest-loss ones, half each (entries come sorted by loss). 1,000 groups drew 1,000 lines
#: and a legend taller than the figure.
PLOTTED_ENTRIES = 8


def drawn_entries(entries) -> tuple[list, str]:
    """The entries a figure draws (see :data:`PLOTTED_ENTRIES`) and what its title adds."""
    if len(entries) <= PLOTTED_ENTRIES:
        return list(entries), ""
    half = PLOTTED_ENTRIES // 2
    return [*entries[:half], *entries[-half:]], f" ({half} lowest- and {half} highest-loss of {len(entries)})"


def _fixed_box(canvas) -> tuple[float, float, float, float]:
    left, bottom, right, top = FIXED_MARGINS
    return left * canvas.width, bottom * canvas.height, right * canvas.width, top * canvas.height


def _top(values) -> float:
    """The upper end of a y axis from 0 showing ``values``: 5% above the largest (1 if none)."""
    finite = [v for v in values if math.isfinite(v)]
    largest = max(finite, default=0.0)
    return 1.05 * largest if largest > 0 else 1.0


def plot_per_class(entries, path) -> None:
    """Grouped bars: mean loss per true class, one colour per entry; with more than
    :data:`PLOTTED_CLASSES` classes, those whose worst entry has the highest mean loss."""
    cv = _canvas()
    entries, which = drawn_entries(entries)
    table = np.array(
        [[c["mean_loss"] if c["count"] else np.nan for c in entry["per_class"]] for entry in entries],
        dtype=float,
    )
    names = [c["class"] for c in entries[0]["per_class"]]
    shown = np.arange(len(names))
    title = "Loss per class"
    if len(names) > PLOTTED_CLASSES:
        worst = np.nan_to_num(np.nanmax(np.where(np.isnan(table), -np.inf, table), axis=0), nan=-np.inf)
        shown = np.argsort(-worst, kind="stable")[:PLOTTED_CLASSES]
        title = f"Loss of the {PLOTTED_CLASSES} highest-loss classes (of {len(names)})"
    canvas = cv.Canvas(max(6.0, 0.5 * len(shown) * max(1, len(entries)) ** 0.5), 4.0)
    labels = [str(names[c]) for c in shown]
    turned = len(shown) > 12
    values = table[:, shown]
    ylim = (0.0, _top(values.ravel()))
    yvalues, ylabels = cv.linear_ticks(*ylim)
    legend = cv.Legend(canvas, [(e["name"], cv.COLORS[i % 10], "patch") for i, e in enumerate(entries)], 3)
    # margins from what is drawn outside the axes: tick labels, axis titles, the legend below
    pad, (ascent, descent) = canvas.points(6), canvas.ascent_descent()
    line = ascent + descent
    ticks_x, ticks_y = canvas.below_ticks(labels, turned), canvas.beside_ticks(ylabels)
    left = pad + line + canvas.points(4) + ticks_y
    bottom = pad + legend.height + pad + line + canvas.points(4) + ticks_x
    top = canvas.height - pad - canvas.points(6) - sum(canvas.ascent_descent(cv.TITLE))
    right = canvas.width - pad
    axes = cv.Axes(canvas, (left, bottom, right, top), (-0.6, len(shown) - 0.4), ylim)
    width = 0.8 / len(entries)
    positions = np.arange(len(shown))
    base = axes.y(0.0)
    for i, row in enumerate(values):
        centres = axes.x(positions + (i - (len(entries) - 1) / 2) * width)
        half = (axes.x(width) - axes.x(0.0)) / 2
        for centre, height in zip(centres, axes.y(row), strict=True):
            if math.isfinite(height):
                canvas.rectangle(centre - half, base, centre + half, height, cv.COLORS[i % 10], clip=axes.box)
    axes.frame()
    below = axes.xticks(positions, labels, rotation=90 if turned else 0)
    axes.yticks(yvalues, ylabels)
    axes.xlabel("true class", below)
    axes.ylabel("mean cross-entropy", ticks_y)
    axes.title(title + which)
    legend.draw((canvas.width - legend.width) / 2, pad + legend.height)
    canvas.save(path)


def _least_covered(axes, legend, curves) -> tuple[float, float]:
    """The top-left corner of ``legend`` in the corner of ``axes`` where fewest points of
    ``curves`` (pixel arrays ``(xs, ys)``) lie under it (matplotlib's ``loc="best"``, for the
    four corners; the upper ones first)."""
    left, bottom, right, top = axes.box
    inset = axes.canvas.points(5)
    lefts = (right - inset - legend.width, left + inset)
    tops = (top - inset, bottom + inset + legend.height)
    corners = [(x0, y1) for y1 in tops for x0 in lefts]

    def covered(corner):
        x0, y1 = corner
        inside = 0
        for xs, ys in curves:
            inside += np.count_nonzero(
                (xs >= x0) & (xs <= x0 + legend.width) & (ys <= y1) & (ys >= y1 - legend.height)
            )
        return inside

    return min(corners, key=covered)


def _dense(xs, ys, per_segment: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Points along the polyline ``(xs, ys)``, ``per_segment`` a segment: what a legend would
    hide of it, not only its vertices."""
    t = np.linspace(0.0, 1.0, per_segment, endpoint=False)
    xs, ys = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    return (
        np.append((xs[:-1, None] + np.diff(xs)[:, None] * t).ravel(), xs[-1:]),
        np.append((ys[:-1, None] + np.diff(ys)[:, None] * t).ravel(), ys[-1:]),
    )


def plot_histograms(entries, path) -> None:
    """Step histograms of the per-row losses on a log axis, one line per entry."""
    cv = _canvas()
    entries, which = drawn_entries(entries)
    canvas = cv.Canvas(7.0, 4.0)
    edges = np.concatenate([[LOSS_EDGES[0] / 10], LOSS_EDGES, [LOSS_EDGES[-1] * 10]])
    shares = []
    for entry in entries:
        counts = np.asarray(entry["histogram"], dtype=float)
        shares.append(counts / counts.sum() if counts.sum() else counts)
    ylim = (0.0, _top([s.max(initial=0.0) for s in shares]))
    axes = cv.Axes(canvas, _fixed_box(canvas), (edges[0], edges[-1]), ylim, xlog=True)
    curves = []
    for i, share in enumerate(shares):
        # the outline of the bars: up from the axis at the first edge, along each bin, down at the last
        xs = axes.x(np.concatenate([[edges[0]], np.repeat(edges, 2)[1:-1], [edges[-1]]]))
        ys = axes.y(np.concatenate([[0.0], np.repeat(share, 2), [0.0]]))
        canvas.line(xs, ys, cv.COLORS[i % 10], 1.5, clip=axes.box)
        curves.append(_dense(xs, ys))
    axes.frame()
    decades = np.arange(round(math.log10(edges[0])), round(math.log10(edges[-1])) + 1)
    minor = [k * 10.0**d for d in decades[:-1] for k in range(2, 10)]
    below = axes.xticks([10.0**d for d in decades], [f"{10.0**d:g}" for d in decades], minor=minor)
    yvalues, ylabels = cv.linear_ticks(*ylim)
    beside = axes.yticks(yvalues, ylabels)
    axes.xlabel("per-row loss (first and last bins: below 1e-6, above 1e3)", below)
    axes.ylabel("share of rows", beside)
    axes.title("Distribution of row losses" + which)
    legend = cv.Legend(canvas, [(e["name"], cv.COLORS[i % 10], "line") for i, e in enumerate(entries)])
    legend.draw(*_least_covered(axes, legend, curves))
    canvas.save(path)


def plot_reliability(entries, path) -> None:
    """Reliability diagram: accuracy against confidence per bin, with the diagonal."""
    cv = _canvas()
    entries, which = drawn_entries(entries)
    canvas = cv.Canvas(5.0, 5.0)
    axes = cv.Axes(canvas, _fixed_box(canvas), (0.0, 1.0), (0.0, 1.0))
    diagonal = axes.x([0, 1]), axes.y([0, 1])
    canvas.line(*diagonal, "grey", 1.0, dashes=[3.7, 1.6], clip=axes.box)
    items, curves = [("perfect calibration", "grey", "dashed")], [_dense(*diagonal, 200)]
    for i, entry in enumerate(entries):
        bins = [b for b in entry["reliability"] if b["count"]]
        if not bins:
            continue
        color = cv.COLORS[i % 10]
        xs, ys = axes.x([b["confidence"] for b in bins]), axes.y([b["accuracy"] for b in bins])
        canvas.line(xs, ys, color, 1.5, clip=axes.box)
        canvas.circles(xs, ys, color, 3.0, clip=axes.box)
        items.append((f"{entry['name']} (ECE {entry['ece']:.3f})", color, "marker"))
        curves.append(_dense(xs, ys))
    axes.frame()
    values, labels = cv.linear_ticks(0.0, 1.0)
    below = axes.xticks(values, labels)
    beside = axes.yticks(values, labels)
    axes.xlabel("confidence (top-class probability)", below)
    axes.ylabel("accuracy", beside)
    axes.title("Reliability" + which, size=cv.TEXT)
    legend = cv.Legend(canvas, items)
    legend.draw(*_least_covered(axes, legend, curves))
    canvas.save(path)
