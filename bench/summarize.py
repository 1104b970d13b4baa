"""Turn the ``make bench`` results into the Markdown tables of the README's performance section.

Usage: ``python bench/summarize.py README.md RESULTS.json...``: the tables replace the text
between ``<!-- bench:start -->`` and ``<!-- bench:end -->`` (``-`` instead of a README prints
them). ``bench/results-cpu.json`` (``bench/test_bench_cpu.py``: one process per method) gives the
peers table: rows are workloads, columns the methods, each cell the median time and how many
times slower than fastxent it is, then the compilers' first calls and the CPU they ran on.
pytest-benchmark reports (``bench/results-files.json``) give the file table.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

from fastxent.bench_peers import peers_tables

START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def peers_markdown(report: dict) -> str:
    """The peers table from ``bench/test_bench_cpu.py``'s report, with the CPU it ran on."""
    cpu = report.get("machine", {})
    threads = report.get("threads", {}).get("NUMBA_NUM_THREADS") or "all"
    return (
        peers_tables(report["peers"], f"float32, {threads} threads")
        + f"\n\nMedians of {report.get('rounds', '?')} rounds after a first call, each method in its own "
        f"process; (n×) = time relative to fastxent. CPU: {cpu.get('cpu', platform.processor())}, "
        f"{cpu.get('cores', '?')} cores, {cpu.get('vectors', '?')}; Python {platform.python_version()}, "
        f"{report.get('date', '')}, `make bench`."
    )


FILE_LAYOUTS = {
    "mc_list": "multiclass 4M × 100, one list column",
    "mc_columns": "multiclass 4M × 100, 100 columns",
    "binary": "binary, 100M rows",
}
DECODERS = ("decode_pyarrow", "decode_polars", "decode_duckdb")


def _by_name(report: dict) -> dict[str, dict]:
    return {bench["name"]: bench for bench in report["benchmarks"]}


def files_markdown(report: dict) -> str:
    """File scoring: fastxent against the fastest decode-only read, peers, memory, peak RSS.

    Each time cell also gives the CPU seconds of a round (all threads), where recorded: on two
    cores the CPU seconds of a decoder plus those of the kernel bound the wall time from below.
    """
    benches = _by_name(report)
    if not any(name.startswith("test_file_") for name in benches):
        return ""

    def median(name):
        bench = benches.get(name)
        return None if bench is None else bench["stats"]["median"]

    def cell(name):
        bench = benches.get(name)
        if bench is None:
            return "–"
        cpu = bench.get("extra_info", {}).get("cpu_s")
        return f"{bench['stats']['median']:.3f} s" + ("" if cpu is None else f" ({cpu:.2f} CPU s)")

    lines = [
        "| file (Parquet, 2 threads) | fastxent score | pyarrow decode | Polars decode "
        "| Polars, one row group at a time | DuckDB decode | fastxent / fastest decode | peak RSS |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label in FILE_LAYOUTS.items():
        ours = median(f"test_file_fastxent[{key}]")
        known = [v for d in DECODERS if (v := median(f"test_file_{d}[{key}]")) is not None]
        ratio = f"{ours / min(known):.2f}×" if ours and known else "–"
        rss = benches.get(f"test_peak_rss_of_the_command[{key}]", {}).get("extra_info", {}).get("peak_rss_mb")
        names = [
            f"test_file_fastxent[{key}]",
            f"test_file_decode_pyarrow[{key}]",
            f"test_file_decode_polars[{key}]",
            f"test_file_decode_polars_row_groups[{key}]",
            f"test_file_decode_duckdb[{key}]",
        ]
        lines.append(
            f"| {label} | "
            + " | ".join(cell(n) for n in names)
            + f" | {ratio} | {'–' if rss is None else f'{rss:.0f} MB'} |"
        )
    binary = median("test_file_fastxent[binary]")
    peers = [
        ("DuckDB SQL", median("test_binary_loss_duckdb_sql")),
        ("Polars expression", median("test_binary_loss_polars_expression")),
    ]
    found = [f"{n} {v:.3f} s ({v / binary:.1f}× fastxent's time)" for n, v in peers if v and binary]
    if found:
        lines += ["", "Binary loss computed by the peers on the same file: " + "; ".join(found) + "."]
    ipc, read = median("test_ipc_fastxent"), median("test_ipc_memory_read")
    if ipc and read:
        lines += [
            "",
            f"Memory-mapped Arrow IPC, multiclass 4M × 100: fastxent {ipc:.3f} s, a plain max over the "
            f"same mapped values {read:.3f} s: {read / ipc:.2f}× the memory-read speed.",
        ]
    return "\n".join(lines)


FEATURE_FILES = {"binary_20M": "binary, 20M rows", "mc_1Mx100": "multiclass 1M × 100"}
FEATURES = {
    "group_by_split": "`group_by` (3 keys)",
    "group_by_100k_keys": "`group_by` (100,000 keys)",
    "losses_to": "`losses_to` (+ `keep`)",
    "report": "`report(by=)`, plots included",
}


def features_markdown(report: dict) -> str:
    """The features users run daily, each as its time and a multiple of plain scoring; the
    Polars and DuckDB group-bys of the binary loss beside them."""
    benches = _by_name(report)
    if not any(name.startswith("test_feature_") for name in benches):
        return ""

    def median(name):
        bench = benches.get(name)
        return None if bench is None else bench["stats"]["median"]

    lines = [
        "| file (Parquet, 2 threads) | plain `score` | " + " | ".join(FEATURES.values()) + " |",
        "|---|---:|" + "---:|" * len(FEATURES),
    ]
    for key, label in FEATURE_FILES.items():
        plain = median(f"test_feature_fastxent[{key}-plain]")
        cells = []
        for feature in FEATURES:
            name = (
                f"test_feature_fastxent_report[{key}]"
                if feature == "report"
                else f"test_feature_fastxent[{key}-{feature}]"
            )
            value = median(name)
            cells.append("–" if value is None or not plain else f"{value:.3f} s ({value / plain:.2f}×)")
        lines.append(
            f"| {label} | {'–' if plain is None else f'{plain:.3f} s'} | " + " | ".join(cells) + " |"
        )
    peers = [
        (f"{engine} `group by {key}` {median(f'test_feature_{engine.lower()}_group_by[{key}]'):.3f} s")
        for engine in ("Polars", "DuckDB")
        for key in ("split", "user")
        if median(f"test_feature_{engine.lower()}_group_by[{key}]") is not None
    ]
    if peers:
        lines += [
            "",
            "The binary file's group-by loss in the peers (3 and 100,000 keys): " + "; ".join(peers) + ".",
        ]
    return "\n".join(lines)


def markdown(reports: list[dict]) -> str:
    """The peers table (from a ``peers`` report), then the file table (from pytest-benchmark ones)."""
    parts = [peers_markdown(r) for r in reports if "peers" in r]
    for report in (r for r in reports if "benchmarks" in r):  # each with its own machine and date
        tables = "\n\n".join(t for t in (files_markdown(report), features_markdown(report)) if t)
        if tables:
            info = report["machine_info"]
            parts.append(
                tables
                + "\n\nMedians of pytest-benchmark rounds. "
                + f"{info.get('cpu', {}).get('brand_raw', platform.processor())}, "
                + f"Python {info.get('python_version')}, {report.get('datetime', '')[:10]}, `make bench`."
            )
    return "\n\n".join(parts)


def main(argv: list[str]) -> None:
    text = markdown([json.loads(Path(p).read_text()) for p in argv[1:]])
    if argv[0] == "-":
        print(text)
        return
    readme = Path(argv[0])
    content = readme.read_text()
    head, rest = content.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{text}\n{END}{tail}")


if __name__ == "__main__":
    main(sys.argv[1:])
