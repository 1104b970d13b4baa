"""``fx.score``: plan a run over a prediction source (:func:`prepare`), then stream it batch by
batch through :class:`~fastxent.stream.Run` (:func:`execute`).

Memory stays bounded by a few batches whatever the source size. Each unit of the source (a
Parquet row group, an IPC record batch, a CSV file) is summed in fixed blocks on its own, so
results are bit-identical whatever ``batch_rows`` is, and on Dask. Rows with a null in the
predictions, target or weight are skipped and counted (``nulls="skip"``) or rejected with the
row named (``nulls="error"``); they never shift other rows.
"""

from __future__ import annotations

import dataclasses
import os
import time

import numpy as np

from . import gpu
from .errors import InputValueError
from .io import columns as colmod
from .io.part import class_names, first_batch
from .io.sinks import AtomicParquetWriter, check_output_path
from .io.sources import PARQUET_DECODE_COLUMN_BYTES, Part, open_parts
from .kernels.codes import BLOCK_ROWS
from .options import ScoreOptions
from .progress import Progress
from .state import Accumulator, Score
from .stream import LossesFile, Run

#: Default batch size in bytes of prediction values (a batch is a whole number of blocks). Small
#: enough that a few decoded batches stay well under the memory of one big row group.
BATCH_BYTES = 8 << 20


def _check_parts_agree(parts: list[Part], columns: list[str]) -> None:
    """Every part must hold the needed columns with the first part's types."""
    first = parts[0].full_schema()
    for part in parts[1:]:
        schema = part.full_schema()
        for name in columns:
            if name not in schema.names:
                raise InputValueError(
                    f"'{part.name}' has no column '{name}' (which '{parts[0].name}' has); its "
                    f"columns are: {', '.join(schema.names)}."
                )
            if not schema.field(name).type.equals(first.field(name).type):
                raise InputValueError(
                    f"column '{name}' is {schema.field(name).type} in '{part.name}' but "
                    f"{first.field(name).type} in '{parts[0].name}'; all files must agree."
                )


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
) -> Score:
    """Score a prediction source: files, a directory, a glob, or in-memory Arrow data.

    Parameters
    ----------
    source : path, list of paths, glob, directory, pyarrow Table/RecordBatch/RecordBatchReader/
        Dataset, or any object with ``__arrow_c_stream__``.
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
        Write a Parquet file with the source row number, the ``keep`` columns, each row's loss
        and its predicted class. Written atomically.
    batch_rows : int, optional
        Rows per batch (default: about 8 MiB of predictions). Does not change the result.
    device : {"auto", "cpu", "cuda"}
    progress : bool or Progress
        Draw a progress bar on stderr.

    Returns
    -------
    Score
    """
    started = time.perf_counter()
    out_path = None
    if losses_to is not None:  # before any input is read: a run must not fail at its end
        paths = source if isinstance(source, (list, tuple)) else [source]
        named = [os.fspath(p) for p in paths if isinstance(p, (str, os.PathLike))]
        out_path = check_output_path(losses_to, [p for p in named if os.path.exists(p)])
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
    job = prepare(source, options)
    if out_path is None:
        return execute(job, [], progress, started)
    check_output_path(out_path, [p.name for p in job.parts if os.path.exists(p.name)])  # files of a directory
    with AtomicParquetWriter(out_path) as writer:
        return execute(job, [LossesFile(writer, job.plan)], progress, started)


@dataclasses.dataclass
class Job:
    """A scoring run, planned: the parts to read, the column plan, the options, and what planning
    decided from them (the device, the rows per batch)."""

    parts: list
    plan: colmod.ColumnPlan
    options: ScoreOptions
    device: str
    batch_rows: int

    def make_acc(self) -> Accumulator:
        """The run's accumulator: the plan's loss with the options' weights and rules."""
        plan, options = self.plan, self.options
        # probabilities follow log_loss, except multilabel ones (log_loss has no multilabel form):
        # those follow torch's binary_cross_entropy, a mean over elements
        multilabel_probs = plan.kind == "multilabel" and plan.inputs == "probs"
        return Accumulator(
            plan.kind,
            inputs=plan.inputs,
            class_weight=options.class_weight,
            ignore_index=options.ignore_index,
            label_smoothing=options.label_smoothing,
            pos_weight=options.pos_weight,
            probs_rules="torch" if multilabel_probs else "sklearn",
            device=self.device,
        )


def prepare(source, options: ScoreOptions | None = None, **option_values) -> Job:
    """Open the source and plan the run; nothing is scored yet.

    ``options`` (or the keyword arguments of :func:`score` that make one) say what to score.
    """
    if options is None:
        options = ScoreOptions(**option_values)
    elif option_values:
        options = dataclasses.replace(options, **option_values)
    parts = open_parts(source)
    schema = parts[0].full_schema()
    plan = colmod.plan(
        schema,
        target=options.target,
        logits=options.logits,
        probs=options.probs,
        logprobs=options.logprobs,
        kind=options.kind,
        weight=options.weight,
        group_by=list(options.group_by) or None,
        keep=list(options.keep) or None,
        classes=None if options.classes is None else list(options.classes),
        peek=lambda column: first_batch(parts, column),
        distinct=lambda column, wanted: class_names(parts, column, wanted),
    )
    _check_parts_agree(parts, plan.columns())
    _check_class_vectors(plan, options.class_weight, options.pos_weight)
    known = [p.rows for p in parts]
    total_elements = sum(known) * max(1, plan.num_classes) if None not in known else 0
    device = gpu.choose(options.device, total_elements)
    batch_rows = options.batch_rows
    if batch_rows is None:
        row_bytes = max(1, plan.num_classes) * 4
        # a batch of many columns costs Python work per column: keep each column's piece as
        # large as the decoder's (one column per class: 100 columns -> 12.5 MiB batches)
        per_columns = PARQUET_DECODE_COLUMN_BYTES * len(plan.input_columns)
        budget = gpu.GPU_BATCH_BYTES if device == "cuda" else max(BATCH_BYTES, per_columns)
        batch_rows = max(BLOCK_ROWS, budget // row_bytes // BLOCK_ROWS * BLOCK_ROWS)
    return Job(parts, plan, options, device, batch_rows)


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


def _check_class_vectors(plan: colmod.ColumnPlan, class_weight, pos_weight) -> None:
    for name, value in (("class_weight", class_weight), ("pos_weight", pos_weight)):
        if value is None:
            continue
        size = np.asarray(value).size
        allowed = (plan.num_classes,) if name == "class_weight" else (1, plan.num_classes)
        if size not in allowed:
            raise InputValueError(
                f"`{name}` has {size} values but `{plan.input_name}` has {plan.num_classes} "
                "classes; pass one per class."
            )
