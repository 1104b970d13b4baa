"""Figures drawn straight onto matplotlib's Agg renderer: a canvas in pixels, axes with ticks,
text, lines, bars, markers and a legend, written as a PNG.

Through pyplot, a report's three figures took 0.27 s (a 1M x 100 report: the per-class chart
139 ms, the histogram 71, the reliability diagram 63; one thread, AMD Zen 4), as much as
scoring the file: an Axes makes and lays out dozens of artists (ticks, spines, their callbacks)
before anything is drawn, and matplotlib 3.11 draws text glyph by glyph (0.65 ms a tick label).
Here the same renderer draws paths where they are asked for, and a text is shaped by FreeType
into one alpha mask (``FT2Font.set_text``: 15 us a character) composited as an image, upright
or turned a quarter: the figures keep matplotlib's fonts, antialiasing and colours.
Coordinates are pixels from the bottom-left corner; sizes of text and lines are in points.
"""

from __future__ import annotations

import math
from functools import cache
from typing import NamedTuple

import numpy as np
from matplotlib.backends.backend_agg import RendererAgg, get_hinting_flag
from matplotlib.colors import to_rgb
from matplotlib.font_manager import FontProperties, findfont, get_font
from matplotlib.path import Path
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import Affine2D, Bbox, IdentityTransform

from .png import png_bytes

#: matplotlib's default colour cycle ("tab10").
COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
#: Font sizes (points) of matplotlib's defaults: tick and axis labels, titles, legends.
TEXT, TITLE, SMALL = 10.0, 12.0, 8.33
#: Where ``va`` puts a text's anchor, as a share of the font's ascent (+) or descent (-).
_VERTICAL = {"baseline": 0.0, "bottom": -1.0, "top": 1.0}
#: A tick's length and the gap to its label (points), matplotlib's.
TICK_LENGTH = TICK_PAD = 3.5


@cache
def _font_path() -> str:
    return findfont(FontProperties())


class _Glyphs(NamedTuple):
    """A text drawn by FreeType: its alpha ``mask``, advance ``width``, the mask's rows ``below``
    the baseline and its ``left`` offset (pixels)."""

    mask: np.ndarray
    width: float
    below: float
    left: float


class Canvas:
    """A white ``width`` x ``height`` inch figure at ``dpi`` dots an inch."""

    def __init__(self, width: float, height: float, dpi: float = 110):
        self.dpi = dpi
        self.width, self.height = round(width * dpi), round(height * dpi)
        self.renderer = RendererAgg(self.width, self.height, dpi)
        self._metrics: dict[float, tuple[float, float]] = {}
        # each text's glyphs, shaped once: layouts measure most labels before they are drawn, and
        # FreeType's shaping is most of a label's cost (per-class chart of 100 classes: 64
        # shapings of 32 labels, 9 of its 21 ms)
        self._glyphs: dict[tuple[str, float], _Glyphs] = {}
        self.rectangle(0, 0, self.width, self.height, "white")

    def points(self, size: float) -> float:
        """Pixels of ``size`` points."""
        return size * self.dpi / 72

    def _gc(self, color, width: float = 1.0, dashes=None, clip=None):
        gc = self.renderer.new_gc()
        gc.set_foreground(color)
        gc.set_linewidth(width)
        gc.set_antialiased(True)
        gc.set_joinstyle("round")
        gc.set_capstyle("butt")
        if dashes is not None:
            gc.set_dashes(0, dashes)
        if clip is not None:
            gc.set_clip_rectangle(Bbox.from_extents(*clip))
        return gc

    def line(self, xs, ys, color, width: float = 1.5, dashes=None, clip=None) -> None:
        """A polyline through the points ``(xs[i], ys[i])`` (pixels), ``width`` points wide,
        dashed by ``dashes`` (on/off lengths in points), clipped to ``clip`` (x0, y0, x1, y1)."""
        gc = self._gc(color, width, dashes, clip)
        self.renderer.draw_path(gc, Path(np.column_stack([xs, ys])), IdentityTransform())
        gc.restore()

    def segments(self, x0, y0, x1, y1, color, width: float = 1.0) -> None:
        """Separate straight lines from ``(x0[i], y0[i])`` to ``(x1[i], y1[i])``, in one path
        (ticks: one renderer call, not one a tick)."""
        ends = np.column_stack([x0, y0, x1, y1]).reshape(-1, 2)
        codes = np.tile([Path.MOVETO, Path.LINETO], len(ends) // 2)
        gc = self._gc(color, width)
        self.renderer.draw_path(gc, Path(ends, codes), IdentityTransform())
        gc.restore()

    def rectangle(self, x0, y0, x1, y1, face, edge=None, width: float = 0.0, clip=None) -> None:
        """A rectangle filled with ``face``, outlined with ``edge`` (``width`` points) if given."""
        gc = self._gc(edge or face, width if edge else 0.0, clip=clip)
        corners = Path([(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)], closed=True)
        self.renderer.draw_path(gc, corners, IdentityTransform(), to_rgb(face))
        gc.restore()

    def circles(self, xs, ys, color, radius: float, clip=None) -> None:
        """Filled circles of ``radius`` points centred on the points ``(xs[i], ys[i])``."""
        gc = self._gc(color, 1.0, clip=clip)
        marker = Affine2D().scale(self.points(radius))
        centres = Path(np.column_stack([xs, ys]))
        self.renderer.draw_markers(
            gc, Path.unit_circle(), marker, centres, IdentityTransform(), to_rgb(color)
        )
        gc.restore()

    def _shaped(self, text: str, size: float):
        """FreeType's layout of ``text`` at ``size`` points: the font, set to it."""
        font = get_font(_font_path())
        font.set_size(size, self.dpi)
        font.set_text(text, 0.0, flags=get_hinting_flag())
        return font

    def _glyphs_of(self, text: str, size: float) -> _Glyphs:
        """``text`` at ``size`` points, drawn antialiased into its alpha mask."""
        glyphs = self._glyphs.get((text, size))
        if glyphs is None:
            font = self._shaped(text, size)
            font.draw_glyphs_to_bitmap(antialiased=True)
            glyphs = self._glyphs[text, size] = _Glyphs(
                np.array(font.get_image()),  # a copy: the font draws the next text into its own
                font.get_width_height()[0] / 64,
                font.get_descent() / 64,
                font.get_bitmap_offset()[0] / 64,
            )
        return glyphs

    def text_width(self, text: str, size: float = TEXT) -> float:
        """The advance of ``text`` in pixels."""
        return self._glyphs_of(text, size).width

    def ascent_descent(self, size: float = TEXT) -> tuple[float, float]:
        """The font's ascent and descent at ``size`` points (pixels, both positive): of "lp", as
        matplotlib aligns its labels, so texts of one size share their baselines."""
        if size not in self._metrics:
            font = self._shaped("lp", size)
            height, descent = font.get_width_height()[1] / 64, font.get_descent() / 64
            self._metrics[size] = height - descent, descent
        return self._metrics[size]

    def beside_ticks(self, labels) -> float:
        """Pixels that ticks and their upright ``labels`` take left of a y axis (or, turned a
        quarter, below an x axis)."""
        return self.points(TICK_LENGTH + TICK_PAD) + max(
            (self.text_width(label) for label in labels), default=0.0
        )

    def below_ticks(self, labels, turned: bool) -> float:
        """Pixels that x ticks and their ``labels`` (upright, or ``turned`` a quarter) take below
        an axis."""
        if turned:
            return self.beside_ticks(labels)
        return self.points(TICK_LENGTH + TICK_PAD) + sum(self.ascent_descent())

    def text(self, x, y, text, size=TEXT, ha="center", va="center", rotation=0, color="black") -> None:
        """Write ``text`` with its anchor at ``(x, y)``: ``ha`` ("left", "center", "right") and
        ``va`` ("bottom", "baseline", "center", "top") place the anchor in the text's own frame,
        which ``rotation`` (0 or 90 degrees) turns about it."""
        if not text:
            return
        ascent, descent = self.ascent_descent(size)
        mask, width, below, left = self._glyphs_of(text, size)
        along = {"left": 0.0, "center": 0.5, "right": 1.0}[ha] * width
        across = (
            (ascent - descent) / 2 if va == "center" else _VERTICAL[va] * (ascent if va == "top" else descent)
        )
        image = np.empty((*mask.shape, 4), dtype=np.uint8)
        image[..., :3] = np.round(np.array(to_rgb(color)) * 255)
        image[..., 3] = mask
        if rotation == 0:
            x0, y0 = x - along + left, y - across - below
        elif rotation == 90:
            image = np.rot90(image)  # turned counter-clockwise: read upwards, glyph tops leftwards
            x0, y0 = x + across - (mask.shape[0] - below), y - along + left
        else:
            raise ValueError("text turns by 0 or 90 degrees")
        gc = self._gc(color)
        # draw_image takes the bottom row first
        self.renderer.draw_image(gc, round(x0), round(y0), np.ascontiguousarray(image[::-1]))
        gc.restore()

    def save(self, path) -> None:
        """Write the figure as a PNG of its RGBA pixels (:func:`~.png.png_bytes`; the canvas is
        opaque: its alpha channel is 255 throughout)."""
        with open(path, "wb") as out:
            out.write(png_bytes(np.asarray(self.renderer.buffer_rgba())))


def linear_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    """Round tick values within ``[lo, hi]`` (matplotlib's steps of 1, 2, 2.5 and 5) and their
    labels, all with the decimals the finest needs."""
    values = [
        v
        for v in MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
        if lo - 1e-12 <= v <= hi + 1e-12
    ]
    decimals = 0
    while decimals < 8 and any(abs(v * 10**decimals - round(v * 10**decimals)) > 1e-6 for v in values):
        decimals += 1
    return values, [f"{v + 0.0:.{decimals}f}" for v in values]


class Axes:
    """A plotting area of ``canvas``, ``box`` = (left, bottom, right, top) in pixels, showing
    ``xlim`` and ``ylim`` (data), its x axis logarithmic when ``xlog``."""

    def __init__(self, canvas: Canvas, box, xlim, ylim, xlog: bool = False):
        self.canvas, self.box, self.xlog = canvas, box, xlog
        self.xlim = tuple(math.log10(v) for v in xlim) if xlog else tuple(xlim)
        self.ylim = tuple(ylim)

    def x(self, values) -> np.ndarray:
        """Pixel columns of data ``values`` along x."""
        values = np.asarray(values, dtype=float)
        if self.xlog:
            with np.errstate(divide="ignore"):
                values = np.log10(values)
        (lo, hi), (left, right) = self.xlim, (self.box[0], self.box[2])
        return left + (values - lo) / (hi - lo) * (right - left)

    def y(self, values) -> np.ndarray:
        """Pixel rows (from the bottom) of data ``values`` along y."""
        (lo, hi), (bottom, top) = self.ylim, (self.box[1], self.box[3])
        return bottom + (np.asarray(values, dtype=float) - lo) / (hi - lo) * (top - bottom)

    def frame(self) -> None:
        left, bottom, right, top = self.box
        self.canvas.line([left, right, right, left, left], [bottom, bottom, top, top, bottom], "black", 0.8)

    def xticks(self, values, labels, rotation=0, minor=()) -> float:
        """Ticks and labels under the x axis (``minor``: unlabelled short ticks); returns the
        pixels the labels reach below the axis."""
        canvas, bottom = self.canvas, self.box[1]
        length, pad = canvas.points(TICK_LENGTH), canvas.points(TICK_PAD)
        columns = self.x(values)
        for at, size, width in ((self.x(minor), canvas.points(2), 0.6), (columns, length, 0.8)):
            if len(at):
                canvas.segments(
                    at, np.full(len(at), bottom), at, np.full(len(at), bottom - size), "black", width
                )
        for at, label in zip(columns, labels, strict=True):
            if rotation:
                canvas.text(at, bottom - length - pad, label, ha="right", va="center", rotation=90)
            else:
                canvas.text(at, bottom - length - pad, label, va="top")
        return canvas.below_ticks(labels, bool(rotation))

    def yticks(self, values, labels) -> float:
        """Ticks and labels left of the y axis; returns the pixels they reach left of it."""
        canvas, left = self.canvas, self.box[0]
        length, pad = canvas.points(TICK_LENGTH), canvas.points(TICK_PAD)
        rows = self.y(values)
        canvas.segments(np.full(len(rows), left), rows, np.full(len(rows), left - length), rows, "black", 0.8)
        for at, label in zip(rows, labels, strict=True):
            canvas.text(left - length - pad, at, label, ha="right", va="center")
        return canvas.beside_ticks(labels)

    def xlabel(self, text: str, below: float) -> None:
        """The x axis' title, ``below`` pixels under the axis (under its tick labels)."""
        left, bottom, right, _ = self.box
        self.canvas.text((left + right) / 2, bottom - below - self.canvas.points(4), text, va="top")

    def ylabel(self, text: str, beside: float) -> None:
        """The y axis' title, ``beside`` pixels left of the axis."""
        left, bottom, _, top = self.box
        self.canvas.text(
            left - beside - self.canvas.points(4), (bottom + top) / 2, text, va="bottom", rotation=90
        )

    def title(self, text: str, size: float = TITLE) -> None:
        left, _, right, top = self.box
        self.canvas.text((left + right) / 2, top + self.canvas.points(6), text, size=size, va="baseline")


class Legend:
    """Legend items ``(label, color, style)``, style one of "line", "dashed", "marker" (a line with
    a dot) and "patch" (a bar's colour), in ``columns`` columns, at :data:`SMALL` size."""

    def __init__(self, canvas: Canvas, items, columns: int = 1):
        self.canvas, self.items, self.columns = canvas, list(items), max(1, columns)
        em = canvas.points(SMALL)
        self.pad, self.handle, self.gap, self.spacing = 0.4 * em, 2.0 * em, 0.8 * em, 0.5 * em
        ascent, descent = canvas.ascent_descent(SMALL)
        self.row = ascent + descent
        rows = -(-len(self.items) // self.columns)
        widths = [canvas.text_width(str(label), SMALL) for label, _, _ in self.items]
        self.column_widths = [
            self.handle + self.gap + max(widths[c :: self.columns], default=0.0) for c in range(self.columns)
        ]
        self.width = 2 * self.pad + sum(self.column_widths) + 2 * self.gap * (self.columns - 1)
        self.height = 2 * self.pad + rows * self.row + (rows - 1) * self.spacing

    def draw(self, left: float, top: float) -> None:
        """Draw the legend with its top-left corner at ``(left, top)``."""
        canvas = self.canvas
        canvas.rectangle(left, top - self.height, left + self.width, top, "white", "#cccccc", 0.8)
        for k, (label, color, style) in enumerate(self.items):
            row, column = divmod(k, self.columns)
            x = left + self.pad + sum(self.column_widths[:column]) + 2 * self.gap * column
            middle = top - self.pad - row * (self.row + self.spacing) - self.row / 2
            if style == "patch":
                canvas.rectangle(
                    x, middle - 0.35 * self.row, x + self.handle, middle + 0.35 * self.row, color
                )
            else:
                dashes = [3.7, 1.6] if style == "dashed" else None
                canvas.line([x, x + self.handle], [middle, middle], color, 1.5, dashes)
                if style == "marker":
                    canvas.circles([x + self.handle / 2], [middle], color, 3.0)
            canvas.text(x + self.handle + self.gap, middle, str(label), size=SMALL, ha="left", va="center")
