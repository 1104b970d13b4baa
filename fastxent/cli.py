"""The ``fastxent`` command: ``score``, ``report``, ``make-data``, ``info``, ``warmup``.

Results go to stdout, progress and warnings to stderr. Exit codes: 0 success, 1 a data error
(one clear line, no traceback unless ``--debug``), 2 a usage error (argparse's convention).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import platform
import sys

from pyarrow import ArrowException

from .errors import FastxentError
from .io import arguments
from .io.formats import STDOUT, OutputNameError
from .io.interrupts import Stopped, stopping_on_signals


def _info() -> int:
    import numba
    import numpy
    import pyarrow

    from . import __version__
    from .engine import threading_status
    from .gpu import status
    from .io.pages import reader_status
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
        ("threads", str(numba.config.NUMBA_NUM_THREADS)),
        ("threading layer", threading_status()),
        ("cache dir", cache_dir()),
        ("parquet reader", reader_status()),
        ("gpu", gpu_status()),
    ]
    for name, value in rows:
        print(f"{name:<16} {value}")
    return 0


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


_COLUMNS = ("loss", "stderr", "accuracy", "perplexity", "rows", "scored", "ignored", "nulls", "nonfinite")
#: How a column's header and cells read, where they differ from its name and _fmt's.
_HEADERS = {"stderr": "± stderr"}
_CELLS = {"stderr": lambda value: "–" if value != value else f"±{value:#.2g}"}


def _label(key) -> str:
    """A group key as a table cell: ``test``, or ``test, 0`` for a key of several columns."""
    return ", ".join(map(str, key)) if isinstance(key, tuple) else str(key)


def render(score, fmt: str, run: dict | None = None) -> str:
    """The score as a table, Markdown, JSON, or JSON lines (one line per group, then the total).

    ``run`` (what was scored: inputs, options, version) heads the JSON document.
    """
    import json

    if fmt == "json":
        return json.dumps({**(run or {}), **json.loads(score.to_json())}, indent=2)
    if fmt == "jsonl":
        total = json.loads(score.to_json())
        lines = [json.dumps({"group": group.pop("key"), **group}) for group in total.pop("groups")]
        return "\n".join([*lines, json.dumps({"group": None, **total})])
    names = score.groups.names if score.groups else ["group"]
    header = [", ".join(names), *(_HEADERS.get(c, c) for c in _COLUMNS)]
    rows = [("all", score)] + [(_label(k), g) for k, g in score.groups.items()]
    body = [[key, *(_CELLS.get(c, _fmt)(getattr(s, c)) for c in _COLUMNS)] for key, s in rows]
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
    footer = []
    if score.classes is not None:
        footer.append(f"classes (in index order): {score.listed_classes()}")
    footer.append(
        f"{score.kind}, {score.rows:,} rows in {score.elapsed_s:.2f} s "
        f"({score.rows_per_s:,.0f} rows/s, {score.bytes_per_s / 1e6:,.0f} MB/s, {score.device})"
    )
    gap = "\n\n" if fmt == "markdown" else "\n"
    return "\n".join(lines) + gap + gap.join(footer)


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


def _same_file_as_stdout(path: str) -> bool:
    try:
        out, ours = os.stat(path), os.fstat(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no such file, or stdout is not a real file
        return False
    return (out.st_dev, out.st_ino) == (ours.st_dev, ours.st_ino)


def _storage_options(args) -> dict | None:
    """``--storage-option``s as a dict; kept out of the options ``--format json`` prints (keys)."""
    return dict(args.storage_options) if args.storage_options else None


def _storage(args):
    """Where the paths and URIs of the command are (:class:`~fastxent.io.filesystems.Storage`)."""
    from .io.filesystems import Storage

    return Storage(storage_options=_storage_options(args))


def _score(args) -> int:
    from .io.locations import scheme

    source = args.paths if len(args.paths) > 1 else args.paths[0]
    inputs = [p for p in args.paths if os.path.exists(p) or scheme(p)]
    on_dask = args.scheduler is not None or args.workers is not None
    results = sys.stdout
    if args.losses_to is not None:  # before any input is read: a run must not fail at its end
        if on_dask:
            from .io.sinks import check_output_dir

            check_output_dir(args.losses_to, inputs, what="--losses-to")
        else:
            from .io.sinks import check_output_path

            out = check_output_path(args.losses_to, inputs, "--losses-to", _storage(args))
            if out == STDOUT or _same_file_as_stdout(out):  # the losses are streamed to stdout
                results = sys.stderr
    options = dict(**_column_arguments(args), group_by=args.group_by, losses_to=args.losses_to)
    if on_dask:
        result = _score_on_dask(args, source, dict(options, storage_options=_storage_options(args)))
    else:
        from .score import score

        progress = not args.no_progress and sys.stderr.isatty()
        result = score(source, **options, storage_options=_storage_options(args), progress=progress)
    print(render(result, args.format, _run_record(args, options)), file=results)
    if result.nonfinite:
        print(f"warning: {result.nonfinite} rows have a non-finite loss (NaN or inf).", file=sys.stderr)
    if result.nulls:
        print(f"note: {result.nulls} rows with a null were skipped.", file=sys.stderr)
    return 0


def _run_record(args, options: dict) -> dict:
    """What was scored, for the JSON output: fastxent's version, the inputs, every option."""
    from . import __version__

    return {"fastxent_version": __version__, "inputs": list(args.paths), "options": options}


def _score_on_dask(args, source, options):
    """``fastxent.dask.score`` on ``--scheduler`` or ``--workers``; the cluster's own failures
    (an address it cannot use, workers that keep dying) as one :class:`ClusterError` line, its
    log lines only with ``--debug``."""
    from . import dask as on_dask

    try:
        with on_dask.quiet_logs(not args.debug):
            if args.scheduler:
                from distributed import Client

                with Client(args.scheduler) as client:
                    return on_dask.score(source, client=client, **options)
            return on_dask.score(source, workers=args.workers, **options)
    except (FastxentError, OSError, ArrowException):
        raise
    except Exception as err:
        raise on_dask.ClusterError(f"the Dask cluster failed: {type(err).__name__}: {err}") from err


def _report(args) -> int:
    from .io.paths import check_report_directory
    from .report import report

    check_report_directory(args.out, _storage(args))  # before any input is read

    document = report(
        args.paths,
        out=args.out,
        by=args.by,
        top_k=args.top_k,
        bins=args.bins,
        storage_options=_storage_options(args),
        **_column_arguments(args),
    )
    best, count = document["entries"][0], len(document["entries"])
    print(f"wrote {args.out}/report.md ({count} entries; best: {best['name']}, loss {best['loss']:.6g})")
    return 0


def _bench(args, argv) -> int:
    from pathlib import Path

    from .bench.run import benchmark
    from .bench.summary import headline, write

    command = "fastxent " + " ".join(argv if argv is not None else sys.argv[1:])
    doc = benchmark(args.quick, command)
    write(doc, Path(args.out), Path(args.readme) if args.readme else None)
    print(f"wrote {args.out}/report.md")
    print(headline(doc))
    return 0


def _make_data(args) -> int:
    from .io.formats import output_format
    from .io.paths import check_output_path
    from .synthetic import check_compression, make_table, write_table

    if args.out != STDOUT:  # before generating anything
        check_output_path(args.out, [])
    fmt = output_format(args.out, args.format, "make-data's output")
    check_compression(fmt, args.compression, args.out)
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
    write_table(table, args.out, args.format, args.row_group_rows, args.compression)
    codec = fmt.compression or args.compression
    written = fmt.kind + (f" ({codec})" if codec else "")
    print(f"wrote {args.out}: {args.rows:,} rows, {args.kind}, {classes} classes, {written}", file=sys.stderr)
    return 0


def _command(args, argv) -> int:
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


@contextlib.contextmanager
def _reader_log(debug: bool):
    """``--debug``: which reader read each Parquet row group's columns, one line per row group on
    stderr (the logger ``fastxent.pages``), for this command only."""
    if not debug:
        yield
        return
    pages_log = logging.getLogger("fastxent.pages")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("fastxent: %(message)s"))
    level = pages_log.level
    pages_log.addHandler(handler)
    pages_log.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        pages_log.removeHandler(handler)
        pages_log.setLevel(level)


def _run(args, argv) -> int:
    """Run the command; an error it expects is one line on stderr (a traceback with ``--debug``).
    Returning from here drops the error's traceback, and with it the frames that hold readers
    open, while the signals are still ignored: their clean-up cannot be interrupted."""
    try:
        with _reader_log(getattr(args, "debug", False)):
            return _command(args, argv)
    except BrokenPipeError:  # the reader of stdout left (`| head`): not an error of the data
        # stdout to /dev/null: flushing it at exit would raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a shell reports a command ended by SIGPIPE
    except OutputNameError as err:  # an output named for no format: a usage error, as argparse's
        if args.debug:
            raise
        print(f"fastxent: error: {err}", file=sys.stderr)
        return 2
    except (FastxentError, OSError, ArrowException, MemoryError) as err:
        if args.debug:
            raise
        what = "out of memory" if isinstance(err, MemoryError) else str(err)
        print(f"fastxent: error: {' '.join(what.split())}", file=sys.stderr)  # one line
        return 1
    except Stopped as stop:
        print(f"fastxent: {stop.message}", file=sys.stderr)
        return stop.exit_code
    except KeyboardInterrupt:
        print("fastxent: interrupted", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    # first of all, before anything slow: a signal from here on ends the command in one line,
    # and the ones after it are ignored until the process exits
    with stopping_on_signals(ignoring_after_a_stop=True):
        # Idle OpenMP threads sleep instead of spinning: while a file is scored, the Parquet
        # decoder threads need the cores that spinning kernel threads would hold (measured:
        # 15-20% faster file scoring here, no change in memory). Set before the first parallel
        # kernel starts.
        os.environ.setdefault("OMP_WAIT_POLICY", "passive")
        try:
            args = arguments.parser().parse_args(argv)
        except Stopped as stop:  # while parsing; later ones are _run's
            print(f"fastxent: {stop.message}", file=sys.stderr)
            return stop.exit_code
        return _run(args, argv)


if __name__ == "__main__":
    sys.exit(main())
