"""``fx.report`` / ``fastxent report``: compare prediction files (or groups) side by side.

One streaming pass per file (:func:`fastxent.score.execute` with a row sink) gathers, per file or
group: the :class:`~fastxent.state.Score`, the 95% interval of the per-row losses, a per-class
table, a histogram of row losses, a reliability table with the expected calibration error, and
the ``k`` rows with the highest loss. The report is ``report.md``, ``report.json`` and PNG plots
in ``out``, each written under a temporary name and renamed.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..errors import InputValueError
from ..io.filesystems import Storage
from ..io.sinks import atomic_write
from ..options import ScoreOptions
from ..run.plan import prepare
from ..score import execute
from .plots import PLOTTED_CLASSES, plot_histograms, plot_per_class, plot_reliability
from .stats import EntryTable


class _Collector:
    """Row sink: adds each scored row to the statistics of its entry (the group's id, or 0),
    from the row values of the scoring pass: loss, predicted class and its probability.

    A batch's statistics are taken in a thread of their own while the next batch is scored (the
    compiled tally releases the GIL), one batch at a time and in order: the same sums as in the
    scoring thread. The tally's two halves run in two threads (:meth:`EntryTable.add`): binary
    20M rows by split, 0.16 s of one thread as one loop, 0.07 s in each half. :meth:`close`
    waits for the last batch, and raises what it raised.
    """

    #: The scoring pass gives each row's confidence with its prediction (Run._row_values).
    confidences = True

    def __init__(self, job, bins: int, top_k: int, ignore_index: int):
        self.plan = job.plan
        width = 2 if self.plan.kind == "binary" else self.plan.num_classes
        names = pa.array(self.plan.classes) if self.plan.classes and self.plan.kind != "multilabel" else None
        self.table = EntryTable(1 if self.plan.kind == "multilabel" else width, bins, top_k, names)
        self.ignore_index = ignore_index
        self.keys: list | None = None  # each entry's group key (None: one entry, the source)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="fastxent-report")
        self._helper = ThreadPoolExecutor(1, thread_name_prefix="fastxent-report-classes")
        self._in_flight: Future | None = None

    def add(self, batch, rows, x, t, values, groups) -> None:
        entry, entries = None, 1
        if groups is not None:
            entry, self.keys = groups
            entries = len(self.keys)  # every id in the batch is below: no pass over the ids
        # the row values stay the batch's until the batch after next is scored (Run._row_values):
        # the statistics of this batch are taken before the next one is added
        self._wait()
        self._in_flight = self._thread.submit(self._add, batch, rows, t, values, entry, entries)

    def _wait(self) -> None:
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            in_flight.result()

    def close(self, raising: bool = True) -> None:
        """Wait for the last batch's statistics (raising its error, unless the run already
        failed with its own) and end the thread."""
        try:
            if raising:
                self._wait()
            else:
                with contextlib.suppress(Exception):
                    self._wait()
        finally:
            self._thread.shutdown()
            self._helper.shutdown()

    def _add(self, batch, rows, t, values, entry, entries: int) -> None:
        plan = self.plan
        losses = values.loss
        confidence = values.confidence  # the predicted class's probability (multilabel: NaN)
        if plan.kind == "multilabel":
            truth = np.zeros(len(losses), dtype=np.int64)  # one "class": per-row losses only
            predicted = truth
        else:
            predicted = values.predicted  # int32: the compiled tally takes it as it is
            if plan.kind == "soft":
                truth = np.argmax(t, axis=1)
            elif plan.kind == "binary":  # the class a label means, soft ones too, as accuracy judges it
                truth = np.greater(t, 0.5).view(np.uint8)
            else:
                truth = np.asarray(t).astype(np.int64, copy=False)
        if entry is None:
            entry = np.zeros(len(losses), dtype=np.int64)
        # ignored rows are not part of any statistic
        skip = truth == self.ignore_index if plan.kind == "multiclass" else np.zeros(len(losses), np.bool_)

        def rows_of(idx: np.ndarray) -> tuple[np.ndarray, dict]:
            """The source's row numbers and the shown columns of the rows ``idx`` (an entry's
            worst-row candidates)."""
            taken = pa.array(idx)
            return rows.in_source(idx), {name: batch.column(name).take(taken) for name in plan.keep}

        self.table.add(entry, entries, losses, truth, confidence, predicted, skip, rows_of, self._helper)

    def entries(self):
        """``(key, entry id)`` of every entry that has rows, keys as :func:`fastxent.score`'s."""
        for e in self.table.entries():
            if self.table.totals[e, 0] or self.table.totals[e, 3]:
                yield (None if self.keys is None else self.keys[e]), e


def _class_names(plan) -> list:
    if plan.kind == "binary":
        return plan.classes or [0, 1]
    if plan.kind == "multilabel":
        return ["all labels"]
    return plan.classes or list(range(plan.num_classes))


def _entry_label(source_label: str, key, several_sources: bool) -> str:
    if key is None:
        return source_label
    text = "/".join(str(k) for k in key) if isinstance(key, tuple) else str(key)
    return f"{source_label}: {text}" if several_sources else text


def report(
    sources,
    *,
    out,
    by=None,
    keep=None,
    top_k=20,
    bins=15,
    filesystem=None,
    storage_options=None,
    **score_options,
) -> dict:
    """Score each source (or each group of ``by``) and write a model-evaluation report to ``out``.

    Parameters
    ----------
    sources : a path, or a list of paths / Arrow sources (one entry each)
    out : directory for ``report.md``, ``report.json`` and the PNG plots (created if missing), or
        a URI (``s3://bucket/report``): each file uploaded whole or not at all
    by : column (or columns) whose groups become entries of their own
    keep : columns shown with the ``top_k`` highest-loss rows
    bins : bins of the reliability (calibration) table
    filesystem, storage_options : where the sources and ``out`` are, as :func:`fastxent.score` takes them
    score_options : ``target``, ``logits``/``probs``/``logprobs`` and the rest of :func:`fastxent.score`

    Returns
    -------
    dict
        What ``report.json`` holds.
    """
    if "losses_to" in score_options or "group_by" in score_options:
        raise InputValueError(
            "report() takes `by=` for groups and writes no per-row file; drop those options."
        )
    sources = list(sources) if isinstance(sources, (list, tuple)) else [sources]
    if not sources:
        raise InputValueError("`sources` is empty; pass at least one prediction file.")
    storage = Storage(filesystem, storage_options)
    target = storage.locate(out)
    if not target.remote and os.path.exists(target.path) and not os.path.isdir(target.path):
        raise InputValueError(f"`out` '{target.path}' exists and is not a directory.")
    options = ScoreOptions(group_by=by, keep=keep, **score_options)  # every option checked first
    entries = []
    for index, source in enumerate(sources):
        label = Path(os.fspath(source)).name if isinstance(source, (str, os.PathLike)) else f"source {index}"
        job = prepare(source, options, storage=storage)
        collector = _Collector(job, bins, top_k, options.ignore_index)
        try:
            result = execute(job, [collector])
        except BaseException:
            collector.close(raising=False)
            raise
        collector.close()
        names = _class_names(job.plan)
        for key, e in sorted(collector.entries(), key=lambda item: str(item[0])):
            score = result if key is None else result.groups[key]
            entry_label = _entry_label(label, key, len(sources) > 1)
            entries.append(_entry(entry_label, score, collector.table, e, names))
    if not entries:
        raise InputValueError("nothing was scored: every row was null or ignored.")
    entries.sort(key=lambda e: (math.isnan(e["loss"]), e["loss"]))
    entries[0]["best"] = True
    if not target.remote:  # an object store has no directories to make
        Path(target.path).mkdir(parents=True, exist_ok=True)
    document = {"entries": entries, "options": {k: str(v) for k, v in score_options.items()}, "by": by}
    plots = {
        "loss_by_class.png": plot_per_class,
        "loss_histogram.png": plot_histograms,
        "reliability.png": plot_reliability,
    }
    for name, draw in plots.items():
        atomic_write(target.child(name).name, lambda path, draw=draw: draw(entries, path), storage)
    json_text = json.dumps(_clean(document), indent=2)
    atomic_write(target.child("report.json").name, lambda path: path.write_text(json_text), storage)
    markdown_text = markdown(document, list(plots))
    atomic_write(target.child("report.md").name, lambda path: path.write_text(markdown_text), storage)
    return document


def _entry(label: str, score, stats: EntryTable, e: int, names) -> dict:
    return {
        "name": label,
        "best": False,
        "kind": score.kind,
        "rows": score.rows,
        "scored": score.scored,
        "loss": score.loss,
        "accuracy": score.accuracy,
        "perplexity": score.perplexity,
        **stats.summary(e),
        "per_class": stats.per_class(e, names),
        "histogram": stats.histogram[e].tolist(),
        "reliability": stats.reliability(e),
        "worst_rows": stats.worst_rows(e),
    }


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return _clean(value.item())
    return value


def _f(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _or_inf(value) -> float:
    """A mean loss for sorting: NaN (a class whose rows' loss is NaN) as the highest."""
    return math.inf if value is None or value != value else value


def markdown(document: dict, plots: list[str]) -> str:
    """The report as Markdown: summary, per-class tables, plots, the worst rows."""
    entries = document["entries"]
    lines = [
        "# Model evaluation report",
        "",
        "## Summary",
        "",
        "Sorted by loss; ★ marks the best. The interval is the 95% normal interval of the mean "
        "per-row loss (standard error of the row losses); ECE is the expected calibration error.",
        "",
        "| | entry | rows | loss | 95% interval | accuracy | perplexity | ECE |",
        "|---|---|---:|---:|---|---:|---:|---:|",
    ]
    for e in entries:
        low, high = e["ci95"]
        lines.append(
            f"| {'★' if e['best'] else ''} | {e['name']} | {e['rows']} | {_f(e['loss'])} | "
            f"[{_f(low)}, {_f(high)}] | {_f(e['accuracy'])} | {_f(e['perplexity'])} | {_f(e['ece'])} |"
        )
    lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    for e in entries:
        classes = e["per_class"]
        lines += ["", f"## {e['name']}", ""]
        if len(classes) > PLOTTED_CLASSES:  # many classes: the worst first, to read from the top
            classes = sorted(classes, key=lambda c: (c["count"] == 0, -_or_inf(c["mean_loss"])))
            lines += [f"{len(classes)} classes, highest mean loss first (classes without rows last):", ""]
        lines += ["| class | count | mean loss | accuracy |", "|---|---:|---:|---:|"]
        lines += [
            f"| {c['class']} | {c['count']} | {_f(c['mean_loss'])} | {_f(c['accuracy'])} |" for c in classes
        ]
        worst = e["worst_rows"]
        if worst:
            header = list(worst[0])
            lines += ["", f"Highest-loss rows ({len(worst)}):", "", "| " + " | ".join(header) + " |"]
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(_f(row[h]) for h in header) + " |" for row in worst]
    return "\n".join(lines) + "\n"
