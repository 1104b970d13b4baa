"""The benchmark document as text: the README's Performance section and the report directory.

Usage: ``python -m fastxent.bench.summary RESULTS.json [--out DIR] [--readme README.md]``
regenerates both from a document :func:`fastxent.bench.run.benchmark` wrote (``fastxent bench``
does the same after measuring). The README section lies between :data:`START` and :data:`END`.
Every table cell is a median; ``(n×)`` is a time relative to fastxent's on the same workload.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
from pathlib import Path

from fastxent.errors import FastxentError
from fastxent.io.sinks import atomic_write

START, END = "<!-- bench:start -->", "<!-- bench:end -->"
LABELS = {
    "jax": "JAX (jax.jit)",
    "torch": "torch eager",
    "numpy": "NumPy",
    "sklearn": "scikit-learn",
    "memory_read": "memory read (np.max)",
}
#: The methods whose first call compiles (or loads compiled code).
COMPILED = ("fastxent", "torch.compile", "jax", "optax")
DECODERS = ("pyarrow decode", "polars decode", "duckdb decode")


def _label(method: str) -> str:
    return LABELS.get(method, method)


def _by_workload(doc: dict, section: str) -> dict[str, dict[str, dict]]:
    """``{workload: {method: result}}`` of one section, in the order they were run."""
    table: dict[str, dict[str, dict]] = {}
    for result in doc["results"]:
        if doc["workloads"][result["workload"]]["section"] == section:
            table.setdefault(result["workload"], {})[result["method"]] = result
    return table


def _methods(table: dict) -> list[str]:
    return list(dict.fromkeys(m for row in table.values() for m in row))


def _dates(doc: dict, section: str) -> str:
    dates = {r["date"] for r in doc["results"] if doc["workloads"][r["workload"]]["section"] == section}
    return ", ".join(sorted(dates))


def _time(seconds: float) -> str:
    """Milliseconds below 10 ms (the quick run's sizes), else seconds to the millisecond."""
    return f"{seconds * 1e3:.2f} ms" if seconds < 0.01 else f"{seconds:.3f} s"


def _seconds(result: dict | None, ours: float | None = None, cpu: bool = False) -> str:
    if result is None:
        return "–"
    text = _time(result["seconds"])
    if cpu and result.get("cpu_s") is not None:
        text += f" ({result['cpu_s']:.2f} CPU s)"
    if ours and result["method"] != "fastxent":
        text += f" ({result['seconds'] / ours:.2f}×)"
    return text


def machine_line(doc: dict) -> str:
    m, threads = doc["machine"], doc["threads"]
    scaled = "" if doc.get("scale", 1.0) == 1.0 else f"Sizes scaled by {doc['scale']:g} (the quick run). "
    return scaled + (
        f"CPU: {m['cpu']}, {m['cores']} cores, {m['vectors']}; {threads.get('numba_threads')} threads "
        f"(NUMBA_NUM_THREADS={threads.get('NUMBA_NUM_THREADS')}, OMP_NUM_THREADS="
        f"{threads.get('OMP_NUM_THREADS')}, OMP_WAIT_POLICY={threads.get('OMP_WAIT_POLICY')}); "
        f"Python {doc['python']}, `{doc['command']}`."
    )


def in_memory_tables(doc: dict) -> list[str]:
    """Median seconds by workload and method with the ratio to fastxent, then each compiler's
    first call less the median."""
    table = _by_workload(doc, "in memory")
    if not table:
        return []
    methods = _methods(table)
    lines = [
        "| workload (in memory) | " + " | ".join(_label(m) for m in methods) + " |",
        "|---|" + "---:|" * len(methods),
    ]
    for workload, row in table.items():
        ours = row.get("fastxent", {}).get("seconds")
        lines.append(f"| {workload} | " + " | ".join(_seconds(row.get(m), ours) for m in methods) + " |")
    compiled = [m for m in COMPILED if m in methods]
    lines += [
        "",
        "| first call less the median (compile, tracing, cache load) | "
        + " | ".join(_label(m) for m in compiled)
        + " |",
        "|---|" + "---:|" * len(compiled),
    ]
    for workload, row in table.items():
        cells = [
            f"{row[m]['compile_s']:.1f} s" if row.get(m, {}).get("compile_s") is not None else "–"
            for m in compiled
        ]
        lines.append(f"| {workload} | " + " | ".join(cells) + " |")
    return lines + ["", f"Measured {_dates(doc, 'in memory')}."]


def files_table(doc: dict) -> list[str]:
    """File scoring against decode-only reads and the peers that compute the loss from the file,
    with CPU seconds (on two cores a decoder's CPU seconds plus the kernel's bound the wall time
    from below) and fastxent's peak memory."""
    table = _by_workload(doc, "files")
    if not table:
        return []
    methods = _methods(table)
    lines = [
        "| file | " + " | ".join(_label(m) for m in methods) + " | fastxent / fastest decode | peak RSS |",
        "|---|" + "---:|" * (len(methods) + 2),
    ]
    for workload, row in table.items():
        ours = row.get("fastxent", {})
        decodes = [row[m]["seconds"] for m in DECODERS if m in row]
        ratio = f"{ours['seconds'] / min(decodes):.2f}×" if ours and decodes else "–"
        rss = ours.get("peak_rss_mb")
        cells = [_seconds(row.get(m), cpu=True) for m in methods]
        lines.append(
            f"| {workload} | "
            + " | ".join(cells)
            + f" | {ratio} | {'–' if rss is None else f'{rss:.0f} MB'} |"
        )
    return lines + ["", f"Parquet unless named; measured {_dates(doc, 'files')}."]


def features_table(doc: dict) -> list[str]:
    """The features users run daily, each as its time and a multiple of plain scoring of the same
    file; the peers' group-bys of the binary loss after it."""
    table = _by_workload(doc, "features")
    if not table:
        return []
    described = doc["workloads"]
    files = list(dict.fromkeys(described[w]["data"] for w in table))
    features = [f for f in dict.fromkeys(described[w]["feature"] for w in table) if f != "plain"]
    lines = [
        "| data (Parquet, unless in memory) | plain `score` | " + " | ".join(features) + " |",
        "|---|---:|" + "---:|" * len(features),
    ]
    peers = []
    for data in files:
        rows = {described[w]["feature"]: row for w, row in table.items() if described[w]["data"] == data}
        plain = rows.get("plain", {}).get("fastxent")
        ours = plain["seconds"] if plain else None
        cells = []
        for feature in features:
            result = rows.get(feature, {}).get("fastxent")
            ratio = f" ({result['seconds'] / ours:.2f}×)" if result and ours else ""
            cells.append("–" if result is None else f"{_time(result['seconds'])}{ratio}")
        lines.append(f"| {data} | {_seconds(plain)} | " + " | ".join(cells) + " |")
        peers += [
            f"{method} {feature} {_time(result['seconds'])} ({data})"
            for feature, row in rows.items()
            for method, result in row.items()
            if method != "fastxent"
        ]
    if peers:
        lines += ["", "The same group-by losses computed by the peers: " + "; ".join(peers) + "."]
    return lines + ["", f"Measured {_dates(doc, 'features')}."]


def headline(doc: dict) -> str:
    """One sentence: fastxent's time against the fastest other method on each in-memory workload."""
    parts = []
    for workload, row in _by_workload(doc, "in memory").items():
        ours = row.get("fastxent", {}).get("seconds")
        others = {m: r["seconds"] for m, r in row.items() if m not in ("fastxent", "memory_read")}
        if ours and others:
            best = min(others, key=others.get)
            parts.append(f"{workload}: {_label(best)} {others[best] / ours:.2f}×")
    if not parts:
        return ""
    return (
        "The fastest other method's time relative to fastxent's (above 1×: fastxent is faster): "
        + "; ".join(parts)
        + "."
    )


def compile_line(doc: dict) -> str:
    c = doc.get("compile")
    if not c:
        return ""
    return (
        f"Compile time: a fresh process compiling {c['what']} takes {c['cold']:.1f} s with an empty cache, "
        f"{c['cached']:.1f} s from the cache (start-up included), measured {c['date']}."
    )


def tables(doc: dict) -> str:
    parts = [headline(doc)]
    for lines in (in_memory_tables(doc), files_table(doc), features_table(doc)):
        parts.append("\n".join(lines))
    parts += [compile_line(doc), machine_line(doc)]
    parts += [f"- {note}" for note in doc.get("notes", [])]
    return "\n\n".join(p for p in parts if p)


def report(doc: dict, plots: list[str]) -> str:
    """``report.md``: the tables, the plots and where it ran."""
    text = "# fastxent performance report\n\n" + tables(doc)
    if plots:
        text += "\n\n## Plots\n\n" + "\n".join(f"![{Path(p).stem}]({p})" for p in plots)
    return text + "\n"


def splice(readme: Path, text: str) -> None:
    """Replace the README's text between :data:`START` and :data:`END` with ``text``."""
    content = readme.read_text()
    if START not in content or END not in content:
        raise FastxentError(f"{readme} has no {START} ... {END} markers for the benchmark section.")
    head, rest = content.split(START, 1)
    _, tail = rest.split(END, 1)
    atomic_write(readme, lambda path: path.write_text(f"{head}{START}\n{text}\n{END}{tail}"))


def write(doc: dict, out: Path, readme: Path | None = None) -> None:
    """``results.json``, the plots (with matplotlib) and ``report.md`` in ``out``; the README's
    section too when ``readme`` is given (linking to the report)."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "results.json", lambda path: path.write_text(json.dumps(doc, indent=1) + "\n"))
    plots = []
    if importlib.util.find_spec("matplotlib") is not None:
        from .plots import draw

        plots = draw(doc, out)
    atomic_write(out / "report.md", lambda path: path.write_text(report(doc, plots)))
    if readme is not None:
        link = os.path.relpath(out / "report.md", readme.parent)
        splice(readme, f"{tables(doc)}\n\nPlots and the results as JSON: [{link}]({link}).")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Regenerate the report and README section from results.")
    parser.add_argument("results", type=Path)
    parser.add_argument("--out", type=Path, default=Path("bench/report"))
    parser.add_argument("--readme", type=Path)
    args = parser.parse_args(argv)
    write(json.loads(args.results.read_text()), args.out, args.readme)


if __name__ == "__main__":
    main()
