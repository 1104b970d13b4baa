"""Planning a run: open the source, plan its columns, decide the device and the batch size.

A :class:`Job` is what a run needs and nothing it reads: the parts, the column plan, the
:class:`~fastxent.options.ScoreOptions` and what planning decided. Nothing is scored here.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import gpu
from ..errors import InputValueError
from ..io import columns as colmod
from ..io.filesystems import Storage
from ..io.part import class_names, first_batch
from ..io.schemas import unify_part_schemas
from ..io.sources import PAGES_DECODE_BYTES, PAGES_DECODE_COLUMN_BYTES, open_parts
from ..kernels.codes import BLOCK_ROWS
from ..options import ScoreOptions
from ..state import Accumulator

#: Default batch size in bytes of prediction values (a batch is a whole number of blocks). Small
#: enough that a few decoded batches stay well under the memory of one big row group.
BATCH_BYTES = 8 << 20
#: The most bytes of predictions a default batch holds, however many columns they come in: the
#: page reader's decoded batch (a batch sliced out of a decoded one is a column-strided view,
#: which the class-by-class kernels copy: 100 float columns scored in 0.80-0.85 s in 32,768-row
#: slices of 131,072-row decoded batches, 0.67-0.70 s whole).
MAX_BATCH_BYTES = PAGES_DECODE_BYTES


@dataclasses.dataclass
class Job:
    """A scoring run, planned: the parts to read, the column plan, the options, and what planning
    decided from them (the device, the rows per batch)."""

    parts: list
    plan: colmod.ColumnPlan
    options: ScoreOptions
    device: str
    batch_rows: int
    column_types: dict  # each used column's type holding every part's values (io/schemas.py)

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


def prepare(
    source, options: ScoreOptions | None = None, *, storage: Storage | None = None, **option_values
) -> Job:
    """Open the source and plan the run; nothing is scored yet.

    ``options`` (or the keyword arguments of :func:`score` that make one) say what to score;
    ``storage`` where its paths and URIs are (:class:`~fastxent.io.filesystems.Storage`).
    """
    if options is None:
        options = ScoreOptions(**option_values)
    elif option_values:
        options = dataclasses.replace(options, **option_values)
    parts = open_parts(source, storage)
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
    column_types = unify_part_schemas(parts, plan.columns())  # files from several tools agree
    _check_class_vectors(plan, options.class_weight, options.pos_weight)
    device = gpu.choose(options.device)  # files are host data: the GPU only when asked for
    batch_rows = options.batch_rows
    if batch_rows is None:
        row_bytes = max(1, plan.num_classes) * 4
        # a batch of many columns costs Python work per column: keep each column's piece as
        # large as the page reader decodes it (one column per class: 100 columns -> 64 MiB batches)
        per_columns = PAGES_DECODE_COLUMN_BYTES * len(plan.input_columns)
        # ... up to MAX_BATCH_BYTES: 10,000 columns would make 1.3 GB batches (the Parquet
        # reader decodes wide files in bounded pieces itself)
        budget = (
            gpu.GPU_BATCH_BYTES if device == "cuda" else min(max(BATCH_BYTES, per_columns), MAX_BATCH_BYTES)
        )
        batch_rows = max(BLOCK_ROWS, budget // row_bytes // BLOCK_ROWS * BLOCK_ROWS)
    return Job(parts, plan, options, device, batch_rows, column_types)


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
