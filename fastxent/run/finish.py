"""The :class:`~fastxent.state.Score` of a finished run: one function for ``fx.score``, Dask and
reports alike."""

from __future__ import annotations

import dataclasses

from ..groups import GroupTable
from ..io import columns as colmod


def _sort_key(key):
    parts = key if isinstance(key, tuple) else (key,)
    return tuple(
        (v is None, v != v, str(type(v).__name__), v if v is not None and v == v else 0) for v in parts
    )


def _sorted_keys(keys: list) -> list:
    """Group keys in order: nulls, then NaN, last; mixed types by type name. Keys of one plain
    type (100,000 ints, say) sort as they are, without a sort key per item."""
    kinds = {type(k) for k in keys}
    if (len(kinds) == 1 and kinds <= {int, str, bool}) or (kinds == {float} and all(k == k for k in keys)):
        return sorted(keys)
    return sorted(keys, key=_sort_key)


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
        groups=by_key if groups is None else by_key.ordered(_sorted_keys(list(by_key))),
        readers=dict(sorted((readers or {}).items())),
    )
