"""The :class:`~fastxent.state.Score` of a finished run: one function for ``fx.score``, Dask and
reports alike."""

from __future__ import annotations

import dataclasses

from ..groups import GroupTable
from ..io import columns as colmod


def finish(
    total,
    groups: GroupTable | None,
    plan: colmod.ColumnPlan,
    rows: int,
    nbytes: int,
    elapsed: float,
    readers: dict | None = None,
):
    """The :class:`Score` of a run (one process, or Dask tasks merged): the total's, with the
    kind planned, the rates of the whole run (``rows``/``nbytes`` read in ``elapsed`` seconds of
    wall time), the column chunks each Parquet reader read (``readers``) and each group's
    score, sorted by key (nulls, then NaN, last)."""
    result = dataclasses.replace(total.result(), kind=plan.kind, classes=plan.classes)
    by_key = {} if groups is None else groups.scores(result)
    return dataclasses.replace(
        result,
        elapsed_s=elapsed,
        rows_per_s=rows / elapsed if elapsed > 0 else 0.0,
        bytes_per_s=nbytes / elapsed if elapsed > 0 else 0.0,
        groups=by_key if groups is None else by_key.in_key_order(),
        readers=dict(sorted((readers or {}).items())),
    )
