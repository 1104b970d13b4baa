"""The ``fastxent`` command line: each command's options, and what each option accepts.

A value outside what an option accepts (``--workers 0``, an ``--ignore-index`` past 64 bits) is a
usage error, reported by argparse with exit status 2 before anything runs. Options are matched
by their full name only (``--label`` is not taken for ``--label-smoothing``), every option's help
shows its default, and ``--debug`` goes before or after the command.
"""

from __future__ import annotations

import argparse
import difflib

from .formats import PARQUET_CODECS


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


def _option_value(text: str):
    """A ``--storage-option`` value as the filesystems take it: a boolean, a number, or text."""
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _storage_option(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` of ``--storage-option`` as ``(key, value)`` (see :func:`_option_value`)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, _option_value(value)


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


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults in the help, except where there is nothing to show (``None``, an unset flag)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def _debug_option(p, default) -> None:
    p.add_argument("--debug", action="store_true", default=default, help="show tracebacks of errors")


def _column_options(p) -> None:
    """The options that say where predictions and targets are, shared by score and report."""
    p.add_argument("paths", nargs="+", metavar="PATH", help="files, directories, globs or URIs (s3://...)")
    p.add_argument(
        "--storage-option",
        action="append",
        type=_storage_option,
        dest="storage_options",
        metavar="KEY=VALUE",
        help="an option of the filesystem of the URIs (S3: endpoint_override, region, ...); repeatable",
    )
    p.add_argument("--target", required=True, help="target column: class indices, names, 0/1 or a list")
    given = p.add_mutually_exclusive_group(required=True)
    given.add_argument(
        "--logits", type=_names, help="logit column(s): a name, a glob, or a,b,c (torch rules)"
    )
    given.add_argument("--probs", type=_names, help="probability column(s) (scikit-learn log_loss rules)")
    given.add_argument("--logprobs", type=_names, help="log-probability column(s) (torch nll_loss rules)")
    p.add_argument(
        "--kind",
        default="auto",
        choices=["auto", "binary", "multiclass", "multilabel", "soft"],
        help="the loss; auto decides from the column types",
    )
    p.add_argument("--weight", help="per-row sample-weight column")
    p.add_argument("--class-weight", type=_floats, metavar="W0,W1,...", help="one weight per class")
    p.add_argument(
        "--classes",
        type=_names,
        metavar="A,B,...",
        help="class names in index order (default: a declared order, else the sorted names)",
    )
    p.add_argument("--ignore-index", type=_int64, default=-100, help="target value whose rows are ignored")
    p.add_argument("--label-smoothing", type=float, default=0.0, help="torch's label_smoothing, in [0, 1]")
    p.add_argument("--pos-weight", type=_floats, metavar="F[,F...]", help="weight of positives (binary)")
    p.add_argument(
        "--nulls", default="skip", choices=["skip", "error"], help="skip and count null rows, or stop"
    )
    p.add_argument("--batch-rows", type=int, help="rows per batch (default: about 8 MiB of predictions)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to compute")
    p.add_argument("--keep", type=_names, metavar="COL,...", help="columns copied into --losses-to")


def _score_parser(commands, add) -> None:
    p = add(commands, "score", help="score prediction files", description="Score prediction files.")
    _column_options(p)
    p.add_argument("--group-by", type=_names, metavar="COL[,COL]", help="also score each group")
    p.add_argument(
        "--losses-to",
        metavar="OUT.parquet",
        help="write each row's loss to this file (its suffix names the format; - is standard output as "
        "CSV); with --scheduler/--workers, a directory of part-NNNNN.parquet files",
    )
    cluster = p.add_mutually_exclusive_group()
    cluster.add_argument("--scheduler", metavar="ADDRESS", help="score on this running Dask cluster")
    cluster.add_argument(
        "--workers", type=_positive, metavar="N", help="score on a local Dask cluster of N processes"
    )
    p.add_argument(
        "--format", default="table", choices=["table", "json", "jsonl", "markdown"], help="of the results"
    )
    p.add_argument("--no-progress", action="store_true", help="never draw the progress bar")


def _report_parser(commands, add) -> None:
    p = add(
        commands, "report", help="model-evaluation report", description="Compare prediction files or groups."
    )
    _column_options(p)
    p.add_argument("--by", type=_names, metavar="COL[,COL]", help="report each group as an entry")
    p.add_argument("--out", required=True, metavar="DIR", help="directory of the report (created)")
    p.add_argument("--top-k", type=int, default=20, help="highest-loss rows to list per entry")
    p.add_argument("--bins", type=int, default=15, help="bins of the reliability table")


def _bench_parser(commands, add) -> None:
    p = add(commands, "bench", help="performance report against peers")
    p.add_argument("--quick", action="store_true", help="small sizes: seconds, not minutes")
    p.add_argument("--out", default="bench-report", metavar="DIR", help="directory of the report")
    p.add_argument("--readme", metavar="README.md", help="also put the summary into this README")


def _make_data_parser(commands, add) -> None:
    p = add(commands, "make-data", help="write a seeded synthetic prediction file")
    p.add_argument("out", metavar="OUT", help="file to write")
    p.add_argument("--rows", type=int, required=True, help="number of rows")
    p.add_argument("--classes", type=int, default=10, help="number of classes")
    p.add_argument(
        "--kind", default="multiclass", choices=["binary", "multiclass", "multilabel"], help="of the targets"
    )
    p.add_argument(
        "--format", choices=["parquet", "ipc", "csv"], help="file format (default: from OUT's suffix)"
    )
    p.add_argument(
        "--layout", default="list", choices=["list", "columns"], help="one list column or a column per class"
    )
    p.add_argument("--row-group-rows", type=int, default=1 << 17, help="rows per Parquet row group")
    p.add_argument(
        "--compression",
        choices=list(PARQUET_CODECS),
        help="codec of the Parquet pages (default: pyarrow's, snappy)",
    )
    p.add_argument("--nulls", type=float, default=0.0, help="fraction of null targets")
    p.add_argument(
        "--dtype", default="float32", choices=["float16", "float32", "float64"], help="of the logits"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed")


class _Parser(argparse.ArgumentParser):
    """``fastxent``'s parser: an unknown option is answered with the closest option of the
    command (``commands`` maps each command's name to its parser)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.commands: dict[str, argparse.ArgumentParser] = {}

    def parse_args(self, args=None, namespace=None):
        known, rest = self.parse_known_args(args, namespace)
        if rest:
            command = self.commands[known.command]
            options = list(command._option_string_actions)
            hints = []
            for arg in rest:
                name = arg.split("=", 1)[0]
                # an option the text begins (what abbreviation would have taken), else a near one
                close = [o for o in options if o.startswith(name)] if name.startswith("--") else []
                close = close or difflib.get_close_matches(name, options, n=1)
                hints += [f"{arg} (did you mean {close[0]}?)"] if close else [arg]
            command.error(f"unrecognized arguments: {' '.join(hints)}")
        return known


def parser() -> argparse.ArgumentParser:
    """The parser of ``fastxent``'s command line, with a sub-parser for each command."""
    from .. import __version__

    common = dict(formatter_class=_Help, allow_abbrev=False)
    parser = _Parser(prog="fastxent", description="Exact cross-entropy, fast.", **common)
    parser.add_argument("--version", action="version", version=f"fastxent {__version__}")
    _debug_option(parser, False)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(commands, name: str, **kwargs) -> argparse.ArgumentParser:
        p = commands.add_parser(name, **common, **kwargs)
        # SUPPRESS: absent after the command, it leaves the value given before it in place
        _debug_option(p, argparse.SUPPRESS)
        parser.commands[name] = p
        return p

    _score_parser(commands, add)
    _report_parser(commands, add)
    _bench_parser(commands, add)
    _make_data_parser(commands, add)
    add(commands, "info", help="versions, threads, threading layer, cache dir")
    add(commands, "warmup", help="compile (or load from the cache) every kernel")
    return parser
