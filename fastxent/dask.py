"""Distributed scoring on Dask: ``fastxent.dask.score`` (optional extra ``fastxent[dask]``).

The source is planned on the client exactly as :func:`fastxent.score` plans it, then split into
tasks of whole *units* (Parquet row groups, IPC record batches, CSV files) of about
:data:`TASK_BYTES`, sized from the file metadata. Each task runs the same
:class:`~fastxent.run.loop.Run` as the single-process scorer on its units and returns its
accumulators; the client merges them in a tree of tasks. Every unit is summed on its own and the
accumulators add their block sums exactly, so the result has the same bits as ``fx.score`` on the
same data, whatever the split, the merge order, or a task re-run after a worker died (a task's
result is used once, when it completes).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import threading
from dataclasses import dataclass

from .errors import FastxentError, InputTypeError, InputValueError
from .io.filesystems import Storage
from .io.locations import Location
from .io.sinks import AtomicDirectory, AtomicTableWriter, check_output_dir
from .io.sources import file_part
from .run.finish import finish
from .run.loop import LossesFile, Run
from .run.plan import Job, prepare


class ClusterError(FastxentError, RuntimeError):
    """The Dask cluster itself failed: an address it cannot use, workers that keep dying."""


#: Input bytes per task (whole units; a unit larger than this is a task of its own).
TASK_BYTES = 256 << 20


@dataclass
class Task:
    """Units of one file to score on a worker, and where their rows sit."""

    path: Location  # the file and its filesystem: the worker opens it itself
    partition: dict
    units: list | None
    first_row: int  # row of the part where the first unit starts
    global_row: int  # the same row counted over the whole source
    index: int


@dataclass
class TaskResult:
    total: object
    groups: object = None  # a GroupTable with group_by
    rows: int = 0
    nbytes: int = 0
    readers: dict | None = None  # Parquet column chunks by reader (Score.readers)


@dataclass
class _Settings:
    """What every task needs to rebuild the run: the job without its parts (which hold open
    readers), as planned once on the client, so no option is restated or re-defaulted."""

    job: Job
    losses_dir: str | None
    several_files: bool  # the losses files name each row's file, as fx.score's does
    before_task: object = None  # tests: a picklable hook run on the worker before each task


def _tasks(parts, row_counts) -> list[Task]:
    tasks, global_row = [], 0
    for part, part_rows in zip(parts, row_counts, strict=True):
        if part.unit_rows is None:  # read as one piece (CSV, an IPC stream): one task
            tasks.append(Task(part.location, part.partition, None, 0, global_row, len(tasks)))
            global_row += part_rows
            continue
        bytes_per_row = (part.nbytes or 0) / max(1, part.rows or 1)
        start, units, size, row = 0, [], 0.0, 0
        for unit, rows in enumerate(part.unit_rows):
            if units and size + rows * bytes_per_row > TASK_BYTES:
                tasks.append(
                    Task(part.location, part.partition, units, start, global_row + start, len(tasks))
                )
                start, units, size = row, [], 0.0
            units.append(unit)
            size += rows * bytes_per_row
            row += rows
        if units:
            tasks.append(Task(part.location, part.partition, units, start, global_row + start, len(tasks)))
        global_row += part_rows
    return tasks


def _count_rows(path: Location, column: str) -> int:
    part = file_part(path)
    return sum(batch.num_rows for _, batch in part.batches([column], 1 << 20))


_PREPARED = threading.Lock()
_prepared = False


def _prepare_worker() -> None:
    """Load the kernels once per worker process, in its first task (a task of a worker that dies
    is re-run elsewhere, where a warm-up run on every worker before the tasks failed the whole
    run); fall back to serial kernels where the threading layer cannot be entered from several
    threads at once (Numba's ``workqueue``)."""
    global _prepared
    import numba
    import numpy as np

    from . import engine
    from .api import cross_entropy

    with _PREPARED:  # the warm-up itself runs a parallel kernel: one thread at a time
        if _prepared:
            return
        cross_entropy(
            np.zeros((engine.PARALLEL_MIN_ELEMENTS, 2), np.float32),
            np.zeros(engine.PARALLEL_MIN_ELEMENTS, np.int64),
        )
        if numba.threading_layer() == "workqueue":
            engine.serial_only("Numba's workqueue layer, which Dask's worker threads cannot share")
        _prepared = True


def _run_task(settings: _Settings, task: Task) -> TaskResult:
    if settings.before_task is not None:
        settings.before_task(task)
    _prepare_worker()
    part = file_part(task.path, task.partition)
    job = settings.job
    plan = job.plan
    sinks, writer = [], None
    if settings.losses_dir is not None:
        writer = AtomicTableWriter(os.path.join(settings.losses_dir, f"part-{task.index:05d}.parquet"))
        sinks.append(LossesFile(writer, plan, job.column_types, settings.several_files))
    run = Run(plan, job.make_acc, sinks, None)
    run.row = task.global_row
    nulls = job.options.nulls
    if writer is None:
        run.part(part, job.batch_rows, nulls, units=task.units, first_row=task.first_row)
    else:
        with writer:
            run.part(part, job.batch_rows, nulls, units=task.units, first_row=task.first_row)
    return TaskResult(run.total, run.groups, run.row - task.global_row, run.nbytes, dict(run.readers))


def _merge(a: TaskResult, b: TaskResult) -> TaskResult:
    a.total.merge(b.total)
    if a.groups is not None:
        a.groups.merge(b.groups)
    readers = collections.Counter(a.readers or {})
    readers.update(b.readers or {})
    return TaskResult(a.total, a.groups, a.rows + b.rows, a.nbytes + b.nbytes, dict(readers))


def _client(client, workers):
    from distributed import Client, LocalCluster

    if client is not None:
        return client, None
    cluster = LocalCluster(
        n_workers=workers or 2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    return Client(cluster), cluster


def score(
    source,
    *,
    client=None,
    workers: int | None = None,
    losses_to=None,
    progress=False,
    filesystem=None,
    storage_options=None,
    _before_task=None,
    **options,
):
    """Score ``source`` (files, a directory, a glob, a list of paths) on a Dask cluster.

    Parameters
    ----------
    client : distributed.Client, optional
        The cluster to use; by default a local cluster of ``workers`` processes (2) is started
        and closed again.
    losses_to : directory, optional
        One Parquet file of per-row losses per task (``part-00000.parquet``, ...); the ``row``
        column is the row number in the whole source, as ``fx.score``. The directory appears
        whole when the run succeeds (replacing a previous run's), and not at all when it fails.
    filesystem, storage_options
        Where the paths and URIs are, as :func:`fastxent.score` takes them; the workers open
        the files themselves, through the same (pickled) filesystems.
    options
        Everything :func:`fastxent.score` takes (``target``, ``logits``, ``group_by``,
        ``device``...). With ``device="cuda"`` tasks ask for the Dask resource ``GPU``.

    Returns
    -------
    fastxent.Score
        The same bits as ``fx.score`` on the same data.
    """
    import time

    started = time.perf_counter()
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise InputValueError(f"`workers` must be a positive number of processes, got {workers!r}.")
    storage = Storage(filesystem, storage_options)
    losses_dir = None
    if losses_to is not None:
        inputs = [source] if isinstance(source, (str, os.PathLike)) else list(source)
        losses_dir = check_output_dir(losses_to, [os.fspath(i) for i in inputs], storage, "`losses_to`")
    device = options.pop("device", "auto")
    job = prepare(source, **options, storage=storage, device="cpu" if device == "auto" else device)
    streams = [part.name for part in job.parts if part.nbytes is None]
    if streams:
        raise InputTypeError(
            f"fastxent.dask.score splits files into tasks, and '{streams[0]}' is read as one stream "
            "(in-memory data, or a Delta table whose files need its log's column mapping or casts); "
            "score it with fx.score."
        )
    output = AtomicDirectory(losses_dir) if losses_dir else contextlib.nullcontext()
    client, cluster = _client(client, workers)
    try:
        with output:
            shipped = dataclasses.replace(job, parts=[])
            losses = output.partial if losses_dir else None
            settings = _Settings(shipped, losses, len(job.parts) > 1, _before_task)
            merged = _run(client, job, settings, {"GPU": 1} if device == "cuda" else None)
    finally:
        if cluster is not None:
            client.close()
            cluster.close()
    if merged.rows == 0:
        raise InputValueError("the source has no rows.")
    elapsed = time.perf_counter() - started
    return finish(merged.total, merged.groups, job.plan, merged.rows, merged.nbytes, elapsed, merged.readers)


def _run(client, job, settings: _Settings, resources) -> TaskResult:
    """Run every task of ``job`` and merge their results in a tree of tasks. If anything fails,
    the tasks still queued are cancelled before the error goes on (no task is left writing
    into an output that is about to be removed, except one already running, which cannot
    create its file once the temporary directory is gone)."""
    futures = []
    try:
        counts = [p.rows for p in job.parts]
        missing = [i for i, rows in enumerate(counts) if rows is None]
        if missing:  # CSV files: count their rows on the workers (one column) for row numbers
            found = client.gather(
                client.map(
                    _count_rows, [job.parts[i].location for i in missing], [job.plan.target] * len(missing)
                )
            )
            for i, rows in zip(missing, found, strict=True):
                counts[i] = rows
        futures = [
            client.submit(_run_task, settings, task, pure=False, resources=resources)
            for task in _tasks(job.parts, counts)
        ]
        level = futures
        while len(level) > 1:
            level = [
                client.submit(_merge, level[i], level[i + 1], pure=False) if i + 1 < len(level) else level[i]
                for i in range(0, len(level), 2)
            ]
            futures += level
        return level[0].result()
    except BaseException:
        if futures:
            client.cancel(futures)
        raise


@contextlib.contextmanager
def quiet_logs(quiet: bool = True):
    """Silence distributed's log lines (workers restarting, tasks failing...) while inside: the
    command reports failures in one line of its own. Worker processes started inside inherit
    the setting through the environment."""
    if not quiet:
        yield
        return
    import logging

    import distributed  # noqa: F401  (configures its loggers, which are then quietened)

    names = ["distributed", *(n for n in logging.root.manager.loggerDict if n.startswith("distributed."))]
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    variable, before = "DASK_LOGGING__DISTRIBUTED", os.environ.get("DASK_LOGGING__DISTRIBUTED")
    os.environ[variable] = "critical"
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        if before is None:
            del os.environ[variable]
        else:
            os.environ[variable] = before
