"""The PNG plots of a model-evaluation report (matplotlib, headless ``Agg`` backend).

Each function takes the report's entries (dicts as in ``report.json``) and a path.
"""

from __future__ import annotations

import numpy as np

from ..errors import FastxentError
from .stats import LOSS_EDGES


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise FastxentError("reports need matplotlib: pip install 'fastxent[report]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plain_log_ticks(ax) -> None:
    """Label a log x axis in plain numbers ("1e-06"): the log axis' own labels are mathtext,
    parsed anew for every figure (0.07 s of a report's 0.5 s of plots)."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


#: Margins of the figures whose labels do not vary (ticks 0 to 1 or powers of ten, set axis
#: titles): ``tight_layout`` measures every label in a layout pass of its own, 35-40 ms a figure
#: of a report's 0.37 s of plots. The per-class chart, whose class names and legend vary, keeps it.
FIXED_MARGINS = {"left": 0.11, "right": 0.97, "bottom": 0.13, "top": 0.92}


def _save(fig, path, margins: dict | None = None) -> None:
    """Write the figure as a PNG, laid out by ``margins`` (figure fractions) or, without them, by
    ``tight_layout``."""
    if margins is None:
        fig.tight_layout()
        # tight_layout leaves a placeholder layout engine behind, for which savefig draws the
        # whole figure once more before printing it (20-25 ms of a per-class chart; same pixels)
        fig.set_layout_engine(None)
    else:
        fig.subplots_adjust(**margins)
    # zlib level 1: 3-4 ms less a figure than matplotlib's default, for files ~30% larger (22 KB)
    fig.savefig(path, format="png", dpi=110, pil_kwargs={"compress_level": 1})
    fig.clf()


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


def plot_per_class(entries, path) -> None:
    """Grouped bars: mean loss per true class, one colour per entry; with more than
    :data:`PLOTTED_CLASSES` classes, those whose worst entry has the highest mean loss."""
    plt = _pyplot()
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
    fig, ax = plt.subplots(figsize=(max(6.0, 0.5 * len(shown) * max(1, len(entries)) ** 0.5), 4.0))
    width = 0.8 / len(entries)
    positions = np.arange(len(shown))
    for i, entry in enumerate(entries):
        ax.bar(positions + (i - (len(entries) - 1) / 2) * width, table[i, shown], width, label=entry["name"])
    ax.set_xticks(positions, [str(names[c]) for c in shown], rotation=45 if len(shown) > 12 else 0)
    ax.set_xlabel("true class")
    ax.set_ylabel("mean cross-entropy")
    ax.set_title(title + which)
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=min(3, len(entries)))
    _save(fig, path)
    plt.close(fig)


def plot_histograms(entries, path) -> None:
    """Step histograms of the per-row losses on a log axis, one line per entry."""
    plt = _pyplot()
    entries, which = drawn_entries(entries)
    fig, ax = plt.subplots(figsize=(7.0, 4.0))
    edges = np.concatenate([[LOSS_EDGES[0] / 10], LOSS_EDGES, [LOSS_EDGES[-1] * 10]])
    for entry in entries:
        counts = np.asarray(entry["histogram"], dtype=float)
        share = counts / counts.sum() if counts.sum() else counts
        ax.stairs(share, edges, label=entry["name"], linewidth=1.5)
    ax.set_xscale("log")
    _plain_log_ticks(ax)
    ax.set_xlabel("per-row loss (first and last bins: below 1e-6, above 1e3)")
    ax.set_ylabel("share of rows")
    ax.set_title("Distribution of row losses" + which)
    ax.legend(fontsize="small")
    _save(fig, path, FIXED_MARGINS)
    plt.close(fig)


def plot_reliability(entries, path) -> None:
    """Reliability diagram: accuracy against confidence per bin, with the diagonal."""
    plt = _pyplot()
    entries, which = drawn_entries(entries)
    fig, ax = plt.subplots(figsize=(5.0, 5.0))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
    for entry in entries:
        bins = [b for b in entry["reliability"] if b["count"]]
        if not bins:
            continue
        ax.plot(
            [b["confidence"] for b in bins],
            [b["accuracy"] for b in bins],
            marker="o",
            label=f"{entry['name']} (ECE {entry['ece']:.3f})",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence (top-class probability)")
    ax.set_ylabel("accuracy")
    ax.set_title("Reliability" + which, fontsize="medium")
    ax.legend(fontsize="small", loc="upper left")
    _save(fig, path, FIXED_MARGINS)
    plt.close(fig)
