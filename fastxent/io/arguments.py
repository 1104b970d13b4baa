"""The ``fastxent`` command line: each command's options, and what each option accepts.

A value outside what an option accepts (``--workers 0``, an ``--ignore-index`` past 64 bits) is a
usage error, reported by argparse with exit status 2 before anything runs.
"""

from __future__ import annotations

import argparse


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _names(text: str) -> list[str]:
    return [v for v in text.split(",") if v]


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _positive(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _int64(text: str) -> int:
    value = _integer(text)
    if not -(2**63) <= value < 2**63:
        raise argparse.ArgumentTypeError(f"must fit in 64 bits (a class index), got {value}")
    return value


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
    p.add_argument("--ignore-index", type=_int64, default=-100)
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
        "--workers", type=_positive, metavar="N", help="score on a local Dask cluster of N processes"
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


def parser() -> argparse.ArgumentParser:
    """The parser of ``fastxent``'s command line, with a sub-parser for each command."""
    parser = argparse.ArgumentParser(prog="fastxent", description="Exact cross-entropy, fast.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    commands = parser.add_subparsers(dest="command", required=True)
    _score_parser(commands)
    _report_parser(commands)
    _bench_parser(commands)
    _make_data_parser(commands)
    commands.add_parser("info", help="versions, threads, threading layer, cache dir")
    commands.add_parser("warmup", help="compile (or load from the cache) every kernel")
    return parser
