"""The performance report of ``fastxent bench``: Markdown, JSON and PNG plots from the results."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .bench_peers import peers_tables
from .benchmark import CLASS_COUNTS, summary_ratios
from .errors import FastxentError
from .io.sinks import atomic_write
from .report.plots import _pyplot, _save


def _summary(results: dict) -> str:
    ratios = summary_ratios(results)
    parts = []
    for key, value in sorted(ratios.items(), key=lambda kv: kv[0]):
        dtype, method = key.split(" ", 1)
        if method == "memory_read":
            parts.append(f"{value:.0%} of the memory-read speed ({dtype})")
        else:
            parts.append(f"{value:.1f}× {method} ({dtype})")
    return (
        "fastxent against its peers, geometric mean over C ∈ {"
        + ", ".join(map(str, CLASS_COUNTS))
        + "} at fixed bytes, in memory: "
        + "; ".join(parts)
        + "."
    )


def _in_memory_table(results: dict, dtype: str) -> list[str]:
    rows = [r for r in results["in_memory"] if r["dtype"] == dtype]
    methods = ["fastxent"] + sorted({r["method"] for r in rows} - {"fastxent"})
    lines = [
        f"| C ({dtype}) | rows | " + " | ".join(methods) + " |",
        "|---:|---:|" + "---:|" * len(methods),
    ]
    for classes in CLASS_COUNTS:
        cells = {r["method"]: r for r in rows if r["classes"] == classes}
        if "fastxent" not in cells:
            continue
        ours = cells["fastxent"]["seconds"]
        text = []
        for method in methods:
            r = cells.get(method)
            if r is None:
                text.append("–")
            elif method == "fastxent":
                text.append(f"{r['seconds'] * 1e3:.1f} ms ({r['gb_per_s']:.1f} GB/s)")
            else:
                text.append(f"{r['seconds'] * 1e3:.1f} ms ({r['seconds'] / ours:.2f}×)")
        lines.append(f"| {classes} | {cells['fastxent']['rows']:,} | " + " | ".join(text) + " |")
    return lines


def _files_table(results: dict) -> list[str]:
    lines = ["| file | method | time | GB/s of file | vs fastxent |", "|---|---|---:|---:|---:|"]
    ours = {r["workload"]: r["seconds"] for r in results["files"] if r["method"] == "fastxent"}
    for r in results["files"]:
        ratio = r["seconds"] / ours[r["workload"]]
        time_ms = r["seconds"] * 1e3
        lines.append(
            f"| {r['workload']} | {r['method']} | {time_ms:.0f} ms | {r['gb_per_s']:.2f} | {ratio:.2f}× |"
        )
    return lines


def markdown(results: dict) -> str:
    env = results["environment"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    lines = ["# fastxent performance report", "", _summary(results), ""]
    for dtype in sorted({r["dtype"] for r in results["in_memory"]}):
        lines += [f"## In memory, {dtype}", ""] + _in_memory_table(results, dtype) + [""]
    if results.get("peers"):
        lines += [
            "## Compiling peers, each in its own process",
            "",
            peers_tables(results["peers"], f"float32, {env['threads']} threads"),
            "",
        ]
    lines += ["## Files", ""] + _files_table(results) + [""]
    compile_s = results["compile_s"]
    lines += [
        "## Compile time",
        "",
        f"A fresh process compiling {compile_s['what']}: {compile_s['cold']:.1f} s with an empty "
        f"cache, {compile_s['cached']:.1f} s from the cache (start-up included).",
        "",
        "## Plots",
        "",
        "![throughput](throughput_vs_classes.png)",
        "![speed-up](speedup.png)",
        "![memory-read fraction](memory_read_fraction.png)",
        "",
    ]
    lines += [f"- {note}" for note in results["notes"]]
    lines += [
        "",
        f"Machine: {env['cpu']}, {env.get('vectors', 'vector extensions not recorded')}, "
        f"{env['cores']} cores, {env['threads']} threads "
        f"({env['threading_layer']} threading layer); GPU: {env['gpu']}. Python {env['python']}; "
        f"{versions}. {env['date']}, `{env['command']}`. Times are medians of several rounds "
        "(one for NumPy, SciPy and scikit-learn), every method of the grid in the same process.",
    ]
    return "\n".join(lines) + "\n"


def _plots(results: dict, out: Path) -> None:
    plt = _pyplot()
    rows = results["in_memory"]
    methods = ["fastxent"] + sorted({r["method"] for r in rows} - {"fastxent"})
    dtypes = sorted({r["dtype"] for r in rows})

    main = "float32" if "float32" in dtypes else dtypes[0]  # the dtype the speed-up plot shows
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, ax = plt.subplots(figsize=(7.0, 4.5))
    for i, method in enumerate(methods):  # one colour per method: solid float32, dashed float16
        for dtype in dtypes:
            points = sorted(
                (r["classes"], r["gb_per_s"]) for r in rows if r["method"] == method and r["dtype"] == dtype
            )
            if points:
                style = "-" if dtype == "float32" else "--"
                colour = colours[i % len(colours)]
                ax.plot(
                    *zip(*points, strict=True), style, color=colour, marker="o", label=f"{method} ({dtype})"
                )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("classes C (N × C at fixed bytes)")
    ax.set_ylabel("GB/s of logits")
    ax.set_title("Throughput")
    ax.legend(fontsize="x-small", ncol=2)
    atomic_write(out / "throughput_vs_classes.png", lambda path: _save(fig, path))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7.0, 4.5))
    peers = [m for m in methods if m not in ("fastxent", "memory_read")]
    positions = np.arange(len(CLASS_COUNTS))
    width = 0.8 / max(1, len(peers))
    for i, peer in enumerate(peers):
        ours = {r["classes"]: r["seconds"] for r in rows if r["method"] == "fastxent" and r["dtype"] == main}
        theirs = {r["classes"]: r["seconds"] for r in rows if r["method"] == peer and r["dtype"] == main}
        values = [theirs[c] / ours[c] if c in theirs else np.nan for c in CLASS_COUNTS]
        ax.bar(positions + (i - (len(peers) - 1) / 2) * width, values, width, label=peer)
    ax.axhline(1.0, color="grey", linewidth=1)
    ax.set_xticks(positions, [str(c) for c in CLASS_COUNTS])
    ax.set_yscale("log")
    ax.set_xlabel("classes C")
    ax.set_ylabel(f"speed-up of fastxent ({main})")
    ax.set_title("fastxent against each peer")
    ax.legend(fontsize="small")
    atomic_write(out / "speedup.png", lambda path: _save(fig, path))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7.0, 4.0))
    for dtype in dtypes:
        ours = {r["classes"]: r["seconds"] for r in rows if r["method"] == "fastxent" and r["dtype"] == dtype}
        read = {
            r["classes"]: r["seconds"] for r in rows if r["method"] == "memory_read" and r["dtype"] == dtype
        }
        points = [(c, read[c] / ours[c]) for c in CLASS_COUNTS if c in ours and c in read]
        ax.plot(*zip(*points, strict=True), marker="o", label=dtype)
    ax.set_xscale("log")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("classes C")
    ax.set_ylabel("memory-read time / fastxent time")
    ax.set_title("Fraction of the memory-read speed")
    ax.legend(fontsize="small")
    atomic_write(out / "memory_read_fraction.png", lambda path: _save(fig, path))
    plt.close(fig)


def write_report(results: dict, out: Path) -> None:
    """``results.json``, ``report.md`` and the three plots in ``out``."""
    atomic_write(out / "results.json", lambda path: path.write_text(json.dumps(results, indent=2)))
    _plots(results, out)
    atomic_write(out / "report.md", lambda path: path.write_text(markdown(results)))


README_START, README_END = "<!-- fastxent-bench:start -->", "<!-- fastxent-bench:end -->"


def splice_summary(readme: Path, results: dict, report: Path) -> None:
    """Replace the README's text between the ``fastxent-bench`` markers with the summary."""
    content = readme.read_text()
    if README_START not in content or README_END not in content:
        raise FastxentError(f"{readme} has no {README_START} ... {README_END} markers for the summary.")
    head, rest = content.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    env = results["environment"]
    link = os.path.relpath(report, readme.parent)
    machine = ", ".join(str(env[k]) for k in ("cpu", "vectors", "date") if k in env)
    text = f"{_summary(results)} Full report: [{link}]({link}) ({machine})."
    atomic_write(readme, lambda path: path.write_text(f"{head}{README_START}\n{text}\n{README_END}{tail}"))
