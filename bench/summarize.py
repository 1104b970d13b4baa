"""Turn a pytest-benchmark JSON file into the Markdown table of the README's performance section.

Usage: ``python bench/summarize.py results.json [README.md]``. With a README, the table replaces
the text between ``<!-- bench:start -->`` and ``<!-- bench:end -->``; otherwise it is printed.
Rows are workloads, columns the methods, each cell the median time and how many times slower
than fastxent it is.
"""

from __future__ import annotations

import json
import platform
import re
import sys
from collections import defaultdict
from pathlib import Path

START, END = "<!-- bench:start -->", "<!-- bench:end -->"
METHODS = ("fastxent", "torch", "numpy", "memory_read")
WORKLOADS = {
    "multiclass[mc_4Mx100]": "multiclass 4M × 100",
    "multiclass[mc_40Mx10]": "multiclass 40M × 10",
    "binary": "binary from logits, 100M",
}


def medians(report: dict) -> dict[str, dict[str, float]]:
    """``{workload: {method: median seconds}}`` from a pytest-benchmark report."""
    table: dict[str, dict[str, float]] = defaultdict(dict)
    for bench in report["benchmarks"]:
        match = re.fullmatch(r"test_(multiclass|binary)_(\w+?)(\[.*\])?", bench["name"])
        if match is None:
            continue
        family, method, param = match.groups()
        table[family + (param or "")][method] = bench["stats"]["median"]
    return table


def markdown(report: dict) -> str:
    """The table, with the machine and versions underneath."""
    table = medians(report)
    lines = [
        "| workload (float32, 2 threads) | " + " | ".join(METHODS) + " |",
        "|---|" + "---:|" * len(METHODS),
    ]
    for key, label in WORKLOADS.items():
        row = table.get(key, {})
        ours = row.get("fastxent")
        cells = []
        for method in METHODS:
            if method not in row:
                cells.append("–")
            elif method == "fastxent" or ours is None:
                cells.append(f"{row[method]:.3f} s")
            else:
                cells.append(f"{row[method]:.3f} s ({row[method] / ours:.2f}×)")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    info = report["machine_info"]
    lines += [
        "",
        f"Medians of pytest-benchmark rounds; (n×) = time relative to fastxent. "
        f"{info.get('cpu', {}).get('brand_raw', platform.processor())}, "
        f"Python {info.get('python_version')}, {report.get('datetime', '')[:10]}, "
        "`make bench`.",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    report = json.loads(Path(argv[0]).read_text())
    text = markdown(report)
    if len(argv) < 2:
        print(text)
        return
    readme = Path(argv[1])
    content = readme.read_text()
    head, rest = content.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{text}\n{END}{tail}")


if __name__ == "__main__":
    main(sys.argv[1:])
