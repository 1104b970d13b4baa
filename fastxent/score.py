"""``fx.score``: plan a run over a prediction source (:func:`prepare`), then stream it batch by
batch through :class:`~fastxent.run.loop.Run` (:func:`execute`).

Memory stays bounded by a few batches whatever the source size. Each unit of the source (a
Parquet row group, an IPC record batch, a CSV file) is summed in fixed blocks on its own, so
results are bit-identical whatever ``batch_rows`` is, and on Dask. Rows with a null in the
predictions, target or weight are skipped and counted (``nulls="skip"``) or rejected with the
row named (``nulls="error"``); they never shift other rows.
"""

from __future__ import annotations

import os
import time

from .errors import InputValueError
from .io.filesystems import Storage
from .io.locations import scheme
from .io.sinks import AtomicTableWriter, check_output_path
from .options import ScoreOptions
from .progress import Progress
from .run.loop import LossesFile, Run
from .run.plan import Job, prepare
from .state import Score


def score(
    source,
    *,
    target,
    logits=None,
    probs=None,
    logprobs=None,
    kind="auto",
    weight=None,
    class_weight=None,
    classes=None,
    ignore_index=-100,
    label_smoothing=0.0,
    pos_weight=None,
    nulls="skip",
    group_by=None,
    losses_to=None,
    keep=None,
    batch_rows=None,
    device="auto",
    progress=False,
    filesystem=None,
    storage_options=None,
) -> Score:
    """Score a prediction source: files, a directory, a glob, or in-memory Arrow data.

    Parameters
    ----------
    source : path, list of paths, glob, directory, pyarrow Table/RecordBatch/RecordBatchReader/
        Dataset, or any object with ``__arrow_c_stream__``. Paths may be URIs (``s3://``,
        ``gs://``, ``abfs://``, ``hf://``, ``file://``, and fsspec's schemes).
    target : str
        Target column: class indices, booleans, floats (binary/soft), class names, or a list.
    logits, probs, logprobs : str or list of str
        The prediction column(s): one list/tensor column, one float column (binary), several
        float columns or a glob (``"logit_*"``). Logits follow torch, probabilities
        scikit-learn's ``log_loss``, log-probabilities ``nll_loss``.
    kind : {"auto", "binary", "multiclass", "multilabel", "soft"}
    weight : str, optional
        Column of per-row sample weights.
    class_weight, ignore_index, label_smoothing, pos_weight
        As in :func:`fastxent.cross_entropy` / :func:`fastxent.binary_cross_entropy_with_logits`.
    classes : list, optional
        Class names in class-index order, for a string target (default: the sorted names).
    nulls : {"skip", "error"}
    group_by : str or list of str, optional
        Also score each group (``Score.groups``); hive partition columns of a directory work.
    losses_to : path, optional
        Write each scored row's source row number (several files: a ``file`` column and the row
        within it), the ``keep`` columns, its loss and its predicted class, in the format the
        suffix names (``.parquet``, ``.arrow``/``.feather``, ``.csv`` with its compressions;
        ``-``: CSV on standard output). Written under a temporary name and renamed.
    batch_rows : int, optional
        Rows per batch (default: about 8 MiB of predictions). Does not change the result.
    device : {"auto", "cpu", "cuda"}
    progress : bool or Progress
        Draw a progress bar on stderr.
    filesystem : pyarrow.fs.FileSystem or fsspec filesystem, optional
        The filesystem every path of the call (``source`` and ``losses_to``) is on.
    storage_options : dict, optional
        Options of the filesystems made from URIs: for ``s3://``, ``gs://`` and ``abfs://`` the
        arguments of pyarrow's ``S3FileSystem``/``GcsFileSystem``/``AzureFileSystem``
        (``endpoint_override``, ``access_key``, ``region``...), for the others fsspec's options.
        Without them S3 is configured by the environment (``AWS_ENDPOINT_URL``,
        ``AWS_ACCESS_KEY_ID``...) or the URI's query (``s3://bucket/key?region=...``).

    Returns
    -------
    Score
    """
    started = time.perf_counter()
    storage = Storage(filesystem, storage_options)
    out_path = None
    if losses_to is not None:  # before any input is read: a run must not fail at its end
        paths = source if isinstance(source, (list, tuple)) else [source]
        named = [os.fspath(p) for p in paths if isinstance(p, (str, os.PathLike))]
        inputs = [p for p in named if os.path.exists(p) or scheme(p)]
        out_path = check_output_path(losses_to, inputs, storage=storage)
    options = ScoreOptions(
        target=target,
        logits=logits,
        probs=probs,
        logprobs=logprobs,
        kind=kind,
        weight=weight,
        class_weight=class_weight,
        classes=classes,
        ignore_index=ignore_index,
        label_smoothing=label_smoothing,
        pos_weight=pos_weight,
        nulls=nulls,
        group_by=group_by,
        keep=keep,
        batch_rows=batch_rows,
        device=device,
    )
    job = prepare(source, options, storage=storage)
    if out_path is None:
        return execute(job, [], progress, started)
    files = [p.name for p in job.parts if p.location is not None or os.path.exists(p.name)]
    check_output_path(out_path, files, storage=storage)  # the files of a directory
    with AtomicTableWriter(out_path, storage) as writer:
        sink = LossesFile(writer, job.plan, job.column_types, several_files=len(job.parts) > 1)
        return execute(job, [sink], progress, started)


def execute(job: Job, sinks: list, progress=False, started: float | None = None) -> Score:
    """Stream every batch of a planned run through the accumulators and ``sinks``."""
    started = time.perf_counter() if started is None else started
    known = [p.rows for p in job.parts]
    bar = progress if isinstance(progress, Progress) else None
    if progress is True:
        bar = Progress(sum(known) if None not in known else None)
    try:
        run = Run(job.plan, job.make_acc, sinks, bar)
        for part in job.parts:
            run.part(part, job.batch_rows, job.options.nulls)
    finally:
        if bar is not None:
            bar.close()
    if run.row == 0:
        names = ", ".join(f"'{p.name}'" for p in job.parts[:3])
        raise InputValueError(f"the source has no rows ({names}{', ...' if len(job.parts) > 3 else ''}).")
    return run.finish(time.perf_counter() - started)
