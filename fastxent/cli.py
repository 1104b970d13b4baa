"""The ``fastxent`` command: ``score``, ``report``, ``make-data``, ``info``, ``warmup``.

Results go to stdout, progress and warnings to stderr. Exit codes: 0 success, 1 a data error
(one clear line, no traceback unless ``--debug``), 2 a usage error (argparse's convention).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys

from pyarrow import ArrowException

from .errors import FastxentError


def _info() -> int:
    import numba
    import numpy
    import pyarrow

    from . import __version__
    from .gpu import status
    from .kernels.jit import cache_dir

    def gpu_status() -> str:
        usable, description = status()
        return description if usable else f"none usable: {description}"

    rows = [
        ("fastxent", __version__),
        ("python", platform.python_version()),
        ("numba", numba.__version__),
        ("numpy", numpy.__version__),
        ("pyarrow", pyarrow.__version__),
        ("threads", str(numba.get_num_threads())),
        ("threading layer", numba.config.THREADING_LAYER),
        ("cache dir", cache_dir()),
        ("gpu", gpu_status()),
    ]
    for name, value in rows:
        print(f"{name:<16} {value}")
    return 0


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _names(text: str) -> list[str]:
    return [v for v in text.split(",") if v]


def _column_options(p) -> None:
    """The options that say where predictions and targets are, shared by score and report."""
    p.add_argument("paths", nargs="+", metavar="PATH", help="files, directories or globs")
    p.add_argument("--target", required=True, help="target column")
    given = p.add_mutually_exclusive_group(required=True)
    given.add_argument("--logits", type=_names, help="logit column(s): a name, a glob, or a,b,c")
    given.add_argument("--probs", type=_names, help="probability column(s)")
    given.add_argument("--logprobs", type=_names, help="log-probability column(s)")
    p.add_argument("--kind", default="auto", choices=["auto", "binary", "multiclass", "multilabel", "soft"])
    p.add_argument("--weight", help="per-row sample-weight column")
    p.add_argument("--class-weight", type=_floats, metavar="W0,W1,...")
    p.add_argument("--classes", type=_names, metavar="A,B,...", help="class names in index order")
    p.add_argument("--ignore-index", type=int, default=-100)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--pos-weight", type=_floats, metavar="F[,F...]")
    p.add_argument("--nulls", default="skip", choices=["skip", "error"])
    p.add_argument("--batch-rows", type=int)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--keep", type=_names, metavar="COL,...")


def _score_parser(commands) -> None:
    p = commands.add_parser("score", help="score prediction files", description="Score prediction files.")
    _column_options(p)
    p.add_argument("--group-by", type=_names, metavar="COL[,COL]")
    p.add_argument("--losses-to", metavar="OUT.parquet")
    cluster = p.add_mutually_exclusive_group()
    cluster.add_argument("--scheduler", metavar="ADDRESS", help="score on this running Dask cluster")
    cluster.add_argument(
        "--workers", type=int, metavar="N", help="score on a local Dask cluster of N processes"
    )
    p.add_argument("--format", default="table", choices=["table", "json", "jsonl", "markdown"])
    p.add_argument("--no-progress", action="store_true", help="never draw the progress bar")


def _report_parser(commands) -> None:
    p = commands.add_parser(
        "report", help="model-evaluation report", description="Compare prediction files or groups."
    )
    _column_options(p)
    p.add_argument("--by", type=_names, metavar="COL[,COL]", help="report each group as an entry")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--top-k", type=int, default=20, help="highest-loss rows to list per entry")
    p.add_argument("--bins", type=int, default=15, help="bins of the reliability table")


def _bench_parser(commands) -> None:
    p = commands.add_parser("bench", help="performance report against peers")
    p.add_argument("--quick", action="store_true", help="small sizes: seconds, not minutes")
    p.add_argument("--out", default="bench-report", metavar="DIR")
    p.add_argument("--readme", metavar="README.md", help="also put the summary into this README")


def _make_data_parser(commands) -> None:
    p = commands.add_parser("make-data", help="write a seeded synthetic prediction file")
    p.add_argument("out", metavar="OUT")
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--kind", default="multiclass", choices=["binary", "multiclass", "multilabel"])
    p.add_argument("--format", default=None, choices=["parquet", "ipc", "csv"])
    p.add_argument("--layout", default="list", choices=["list", "columns"])
    p.add_argument("--row-group-rows", type=int, default=1 << 17)
    p.add_argument("--nulls", type=float, default=0.0, help="fraction of null targets")
    p.add_argument("--dtype", default="float32", choices=["float16", "float32", "float64"])
    p.add_argument("--seed", type=int, default=0)


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


_COLUMNS = ("loss", "accuracy", "perplexity", "rows", "scored", "ignored", "nulls", "nonfinite")


def render(score, fmt: str) -> str:
    """The score as a table, Markdown, JSON, or JSON lines (one line per group, then the total)."""
    rows = [("all", score)] + [(str(k), g) for k, g in score.groups.items()]
    if fmt == "json":
        return score.to_json(indent=2)
    if fmt == "jsonl":
        import json

        lines = []
        for key, s in rows[1:] + rows[:1]:
            record = json.loads(s.to_json())
            record.pop("groups", None)
            lines.append(json.dumps({"group": None if key == "all" else key, **record}))
        return "\n".join(lines)
    header = ["group", *_COLUMNS]
    body = [[key, *(_fmt(getattr(s, c)) for c in _COLUMNS)] for key, s in rows]
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in body]
    else:
        widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
        lines = [
            "  ".join(
                cell.rjust(w) if i else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(r, widths, strict=True))
            )
            for r in [header, *body]
        ]
    footer = (
        f"{score.kind}, {score.rows:,} rows in {score.elapsed_s:.2f} s "
        f"({score.rows_per_s:,.0f} rows/s, {score.bytes_per_s / 1e6:,.0f} MB/s, {score.device})"
    )
    return "\n".join(lines) + ("\n\n" if fmt == "markdown" else "\n") + footer


def _column_arguments(args) -> dict:
    given = {"logits": args.logits, "probs": args.probs, "logprobs": args.logprobs}
    columns = {k: (v[0] if v and len(v) == 1 else v) for k, v in given.items() if v is not None}
    return dict(
        target=args.target,
        **columns,
        kind=args.kind,
        weight=args.weight,
        class_weight=args.class_weight,
        classes=args.classes,
        ignore_index=args.ignore_index,
        label_smoothing=args.label_smoothing,
        pos_weight=args.pos_weight,
        nulls=args.nulls,
        keep=args.keep,
        batch_rows=args.batch_rows,
        device=args.device,
    )


def _score(args) -> int:
    source = args.paths if len(args.paths) > 1 else args.paths[0]
    options = dict(**_column_arguments(args), group_by=args.group_by, losses_to=args.losses_to)
    if args.scheduler or args.workers:
        from . import dask as on_dask

        if args.scheduler:
            from distributed import Client

            with Client(args.scheduler) as client:
                result = on_dask.score(source, client=client, **options)
        else:
            result = on_dask.score(source, workers=args.workers, **options)
    else:
        from .score import score

        result = score(source, **options, progress=not args.no_progress and sys.stderr.isatty())
    print(render(result, args.format))
    if result.nonfinite:
        print(f"warning: {result.nonfinite} rows have a non-finite loss (NaN or inf).", file=sys.stderr)
    if result.nulls:
        print(f"note: {result.nulls} rows with a null were skipped.", file=sys.stderr)
    return 0


def _report(args) -> int:
    from .report import report

    document = report(
        args.paths, out=args.out, by=args.by, top_k=args.top_k, bins=args.bins, **_column_arguments(args)
    )
    best, count = document["entries"][0], len(document["entries"])
    print(f"wrote {args.out}/report.md ({count} entries; best: {best['name']}, loss {best['loss']:.6g})")
    return 0


def _bench(args, argv) -> int:
    from pathlib import Path

    from .benchmark import run, summary_ratios

    command = "fastxent " + " ".join(argv if argv is not None else sys.argv[1:])
    results = run(Path(args.out), args.quick, command)
    print(f"wrote {args.out}/report.md")
    if args.readme:
        from .bench_report import splice_summary

        splice_summary(Path(args.readme), results, Path(args.out) / "report.md")
    for key, value in summary_ratios(results).items():
        print(f"  {key:<24} {value:.2f}")
    return 0


def _make_data(args) -> int:
    from .synthetic import make_table, write_table

    fmt = args.format or {"ipc": "ipc", "arrow": "ipc", "feather": "ipc", "csv": "csv"}.get(
        args.out.rsplit(".", 1)[-1].lower(), "parquet"
    )
    classes = 1 if args.kind == "binary" else args.classes
    table = make_table(
        args.rows,
        classes,
        kind=args.kind,
        layout=args.layout,
        seed=args.seed,
        nulls=args.nulls,
        dtype=args.dtype,
    )
    write_table(table, args.out, fmt, args.row_group_rows)
    print(f"wrote {args.out}: {args.rows:,} rows, {args.kind}, {classes} classes, {fmt}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    # Idle OpenMP threads sleep instead of spinning: while a file is scored, the Parquet decoder
    # threads need the cores that spinning kernel threads would hold (measured: 15-20% faster
    # file scoring here, no change in memory). Set before the first parallel kernel starts.
    os.environ.setdefault("OMP_WAIT_POLICY", "passive")
    parser = argparse.ArgumentParser(prog="fastxent", description="Exact cross-entropy, fast.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)
    _score_parser(commands)
    _report_parser(commands)
    _bench_parser(commands)
    _make_data_parser(commands)
    commands.add_parser("info", help="versions, threads, threading layer, cache dir")
    commands.add_parser("warmup", help="compile (or load from the cache) every kernel")
    args = parser.parse_args(argv)
    try:
        if args.command == "info":
            return _info()
        if args.command == "score":
            return _score(args)
        if args.command == "make-data":
            return _make_data(args)
        if args.command == "report":
            return _report(args)
        if args.command == "bench":
            return _bench(args, argv)
        from .warmup import warmup

        print(f"kernels ready in {warmup():.2f} s")
        return 0
    except (FastxentError, OSError, ArrowException) as err:
        if args.debug:
            raise
        print(f"fastxent: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fastxent: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
