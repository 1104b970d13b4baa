"""The report's figures drawn on matplotlib's Agg renderer (fastxent/report/canvas.py): text where
it is anchored and the right way up, ticks, the legend's place, and the three figures' PNGs."""

import math

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib.colors import to_rgb  # noqa: E402
from PIL import Image  # noqa: E402

from fastxent.report import canvas as cv  # noqa: E402
from fastxent.report.plots import (  # noqa: E402
    _least_covered,
    plot_histograms,
    plot_per_class,
    plot_reliability,
)
from fastxent.report.png import png_bytes  # noqa: E402


def _ink(canvas):
    """Rows (from the bottom) and columns of the non-white pixels."""
    rgb = np.asarray(canvas.renderer.buffer_rgba())[..., :3]
    rows, cols = np.nonzero((rgb < 200).any(axis=2))
    return canvas.height - 1 - rows, cols


@pytest.mark.parametrize(("ha", "va"), [("left", "baseline"), ("right", "baseline"), ("center", "bottom")])
def test_upright_text_sits_where_it_is_anchored(ha, va):
    canvas = cv.Canvas(3.0, 2.0, dpi=100)
    x, y = 150, 100
    canvas.text(x, y, "HHH", size=20, ha=ha, va=va)
    rows, cols = _ink(canvas)
    width = canvas.text_width("HHH", 20)
    ascent, descent = canvas.ascent_descent(20)
    want_left = {"left": x, "right": x - width, "center": x - width / 2}[ha]
    # the ink stays within the advance by the glyphs' side bearings (a few pixels)
    assert abs(cols.min() - want_left) <= 4 and abs(cols.max() - (want_left + width)) <= 4
    baseline = y if va == "baseline" else y + descent
    assert abs(rows.min() - baseline) <= 1  # H stands on the baseline...
    assert rows.max() > baseline + 0.6 * ascent  # ... and rises above it: the right way up


def test_turned_text_reads_upwards_from_its_anchor():
    canvas = cv.Canvas(3.0, 3.0, dpi=100)
    x, y = 150, 60
    canvas.text(x, y, "HHHH", size=20, ha="left", va="baseline", rotation=90)
    rows, cols = _ink(canvas)
    width = canvas.text_width("HHHH", 20)
    assert abs(rows.min() - y) <= 4 and abs(rows.max() - (y + width)) <= 4
    assert abs(cols.max() - x) <= 2 and cols.min() < x - 10  # glyph tops to the left of the baseline
    with pytest.raises(ValueError, match="0 or 90"):
        canvas.text(x, y, "x", rotation=45)


def test_turned_text_is_upright_text_turned_counter_clockwise():
    upright, turned = cv.Canvas(2.0, 2.0, dpi=100), cv.Canvas(2.0, 2.0, dpi=100)
    upright.text(100, 100, "Fp", size=30, ha="left", va="baseline")
    turned.text(100, 100, "Fp", size=30, ha="left", va="baseline", rotation=90)
    a = np.asarray(upright.renderer.buffer_rgba())[..., 0] < 128
    b = np.asarray(turned.renderer.buffer_rgba())[..., 0] < 128
    rows, cols = np.nonzero(a)
    crop = a[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    rows, cols = np.nonzero(b)
    np.testing.assert_array_equal(np.rot90(crop), b[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1])


@pytest.mark.parametrize(
    ("lo", "hi", "labels"),
    [
        (0.0, 1.0, ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]),
        (0.0, 2.6, ["0.0", "0.5", "1.0", "1.5", "2.0", "2.5"]),
        (0.0, 0.42, ["0.0", "0.1", "0.2", "0.3", "0.4"]),
        (0.0, 0.27, ["0.00", "0.05", "0.10", "0.15", "0.20", "0.25"]),
        (0.0, 1260.0, ["0", "250", "500", "750", "1000", "1250"]),
    ],
)
def test_linear_ticks_are_round_within_the_range_with_common_decimals(lo, hi, labels):
    values, got = cv.linear_ticks(lo, hi)
    assert got == labels
    assert all(lo <= v <= hi for v in values) and values == sorted(values)


def test_the_legend_goes_to_the_corner_the_curves_leave_free():
    canvas = cv.Canvas(5.0, 4.0, dpi=100)
    axes = cv.Axes(canvas, (50, 50, 450, 350), (0, 1), (0, 1))
    legend = cv.Legend(canvas, [("a model", "red", "line")])
    t = np.linspace(0, 1, 500)
    diagonal = axes.x(t), axes.y(t)  # the upper right is taken, the upper left free
    left, top = _least_covered(axes, legend, [diagonal])
    assert left < 100 and top > 300
    high = axes.x(t), axes.y(np.full_like(t, 0.97))  # both upper corners taken: the lower right
    left, top = _least_covered(axes, legend, [diagonal, high])
    assert left > 300 and top < 150


def _entries(n, classes=3, names=None):
    rng = np.random.default_rng(n)
    entries = []
    for i in range(n):
        histogram = rng.integers(0, 100, 38).tolist()
        reliability = [
            {"count": int(c), "confidence": (b + 0.5) / 10, "accuracy": float(rng.random())}
            for b, c in enumerate(rng.integers(0, 3, 10))
        ]
        per_class = [
            {"class": c, "count": int(k), "mean_loss": float(rng.random() * 3)}
            for c, k in enumerate(rng.integers(0, 3, classes))
        ]
        name = names[i] if names else f"model {i}"
        entries.append(
            {
                "name": name,
                "ece": 0.05,
                "histogram": histogram,
                "reliability": reliability,
                "per_class": per_class,
            }
        )
    return entries


def _colours(path):
    pixels = np.asarray(Image.open(path).convert("RGB")).reshape(-1, 3)
    return {tuple(p) for p in np.unique(pixels, axis=0)}


@pytest.mark.parametrize("draw", [plot_per_class, plot_histograms, plot_reliability])
def test_each_figure_draws_every_entry_in_its_colour(draw, tmp_path):
    names = ["$x$ and $y$", 7, "a very long group name that goes on"]  # mathtext-like, not a str
    path = tmp_path / "figure.png"
    draw(_entries(3, names=names), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    colours = _colours(path)
    for colour in cv.COLORS[:3]:
        assert tuple(round(255 * c) for c in to_rgb(colour)) in colours


def test_figures_of_empty_and_non_finite_statistics_still_draw(tmp_path):
    entry = _entries(1)[0]
    entry["histogram"] = [0] * 38  # nothing scored
    entry["reliability"] = [{"count": 0, "confidence": math.nan, "accuracy": math.nan}] * 10
    entry["per_class"] = [
        {"class": "a", "count": 0, "mean_loss": math.nan},
        {"class": "b", "count": 2, "mean_loss": math.inf},
    ]
    for draw in (plot_per_class, plot_histograms, plot_reliability):
        draw([entry], tmp_path / "f.png")
        width, height = Image.open(tmp_path / "f.png").size
        assert width >= 550 and height >= 440


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("shape", [(1, 1), (1, 37), (29, 1), (64, 48), (300, 401)])
def test_png_files_decode_to_the_image_written(shape, channels, tmp_path):
    rng = np.random.default_rng(shape[0] * 1000 + shape[1])
    pixels = rng.integers(0, 256, (*shape, channels), dtype=np.uint8)
    pixels[shape[0] // 2 :] = pixels[: shape[0] - shape[0] // 2][::-1]  # repeated rows, as figures have
    path = tmp_path / "image.png"
    path.write_bytes(png_bytes(pixels))
    with Image.open(path) as image:
        assert image.mode == {3: "RGB", 4: "RGBA"}[channels]
        np.testing.assert_array_equal(np.asarray(image), pixels)


def test_a_saved_figure_is_its_canvas(tmp_path):
    canvas = cv.Canvas(3.0, 2.0, dpi=100)
    canvas.line([10, 290], [10, 190], "#1f77b4", 2.0)
    canvas.text(150, 100, "fastxent", size=14)
    canvas.save(tmp_path / "c.png")
    with Image.open(tmp_path / "c.png") as image:
        np.testing.assert_array_equal(np.asarray(image), np.asarray(canvas.renderer.buffer_rgba()))
        assert (np.asarray(image)[..., 3] == 255).all()
