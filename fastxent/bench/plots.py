"""The performance report's plots (matplotlib's pyplot: drawn once a bench run, so its layout
engine's cost does not matter here): throughput in memory, and time per file, by method."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fastxent.errors import FastxentError
from fastxent.io.sinks import atomic_write

from .summary import _by_workload, _label, _methods


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise FastxentError("the bench's plots need matplotlib: pip install 'fastxent[bench]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path) -> None:
    """Write the figure as a PNG laid out by ``tight_layout``."""
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    fig.clf()


def _bars(plt, table: dict, value, ylabel: str, title: str, path: Path) -> None:
    """Grouped bars: one group per workload, one bar per method (log scale: the methods span
    two orders of magnitude)."""
    methods = _methods(table)
    fig, ax = plt.subplots(figsize=(9.0, 4.8))
    positions = np.arange(len(table))
    width = 0.8 / max(1, len(methods))
    for i, method in enumerate(methods):
        heights = [value(row[method]) if method in row else np.nan for row in table.values()]
        ax.bar(positions + (i - (len(methods) - 1) / 2) * width, heights, width, label=_label(method))
    ax.set_xticks(positions, list(table), rotation=15, ha="right", fontsize="small")
    ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the bars
    atomic_write(path, lambda target: _save(fig, target))
    plt.close(fig)


def draw(doc: dict, out: Path) -> list[str]:
    """The plots of the sections that have results, written to ``out``; their file names."""
    plt = _pyplot()
    written = []
    memory = _by_workload(doc, "in memory")
    if memory:
        _bars(
            plt,
            memory,
            lambda r: r["bytes"] / r["seconds"] / 1e9,
            "GB/s of logits",
            "In memory: throughput by method (higher is faster)",
            out / "in_memory.png",
        )
        written.append("in_memory.png")
    files = _by_workload(doc, "files")
    if files:
        _bars(plt, files, lambda r: r["seconds"], "seconds", "Files: time by method", out / "files.png")
        written.append("files.png")
    return written
