"""A run's group results: ``key -> Score`` for every group, in key order, held as arrays."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa

from .state import Score

#: The one NaN object every NaN key becomes, so that a dictionary finds it (``nan != nan``).
_NAN_KEY = float("nan")


def canonical_key(value):
    """The key a group value stands for: itself, or the one NaN object for any NaN."""
    if isinstance(value, float) and value != value:
        return _NAN_KEY
    return value


def _sort_key(key):
    parts = key if isinstance(key, tuple) else (key,)
    return tuple(
        (v is None, v != v, str(type(v).__name__), v if v is not None and v == v else 0) for v in parts
    )


def key_order(keys: list) -> np.ndarray:
    """The positions of ``keys`` in key order: nulls, then NaN, last; mixed types by type name.
    Keys of one plain type sort as they are, integers (100,000 users) by NumPy: a Python sort and
    a dictionary of 100,000 keys cost 25 ms of a 0.3 s run."""
    kinds = set(map(type, keys))
    if kinds == {int}:
        values = np.array(keys)
        if values.dtype.kind in "iu":  # else beyond 64 bits: sorted as Python ints
            # no two groups have one key: any sort is the order (quicksort: 3 ms, not 8)
            return np.argsort(values)
    if (len(kinds) == 1 and kinds <= {int, str, bool}) or (kinds == {float} and all(k == k for k in keys)):
        return np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)
    return np.array(sorted(range(len(keys)), key=lambda g: _sort_key(keys[g])), dtype=np.int64)


def _key_array(values: list) -> pa.Array:
    """A key column's values as Arrow infers them; integers past int64 (a uint64 column's) as
    uint64; values of no common type as text."""
    try:
        return pa.array(values)
    except OverflowError:
        try:
            return pa.array(values, pa.uint64())
        except (OverflowError, pa.ArrowInvalid, pa.ArrowTypeError):
            pass
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    return pa.array([None if v is None else str(v) for v in values], pa.string())


class GroupScores(Mapping):
    """``key -> Score`` of a run's groups (see :func:`fastxent.run.finish.finish`).

    ``keys[g]`` is group ``g``'s key, and the values live in one array per
    :class:`~fastxent.state.Score` statistic (``columns``, indexed by ``g``); a group's ``Score``
    is made when it is looked up, so 100,000 groups cost arrays, not 100,000 objects, until they
    are read, and :meth:`to_arrow` and :meth:`records` are made from the arrays. Groups are
    iterated in ``order`` (their ids; default: as numbered), :meth:`in_key_order` sorts them.
    ``names`` are the ``group_by`` columns a key's values come from (default: ``group`` for a
    key of one value, ``group_0``, ``group_1``, ... for a tuple).
    """

    def __init__(
        self,
        keys: list,
        columns: dict,
        kind: str,
        device: str,
        order: np.ndarray | None = None,
        names: list[str] | None = None,
    ):
        self._ids_keys = keys
        self._order = np.arange(len(keys)) if order is None else np.asarray(order, dtype=np.int64)
        self._ordered_keys = keys if order is None else None  # made when first iterated
        self._columns, self._kind, self._device = columns, kind, device
        self._index_of: dict | None = None  # key -> id, made on the first lookup
        if names is None and keys:
            first = keys[0]
            names = [f"group_{i}" for i in range(len(first))] if isinstance(first, tuple) else ["group"]
        self.names = list(names or [])

    @property
    def _keys(self) -> list:
        """The keys in iteration order (a run's 100,000 keys reordered cost 7 ms: made when
        first asked for, not with every :meth:`in_key_order`)."""
        if self._ordered_keys is None:
            self._ordered_keys = list(map(self._ids_keys.__getitem__, self._order.tolist()))
        return self._ordered_keys

    @property
    def _index(self) -> dict:
        if self._index_of is None:
            self._index_of = {key: g for g, key in enumerate(self._ids_keys)}
        return self._index_of

    def _same(self, order: np.ndarray) -> GroupScores:
        same = GroupScores(self._ids_keys, self._columns, self._kind, self._device, order, self.names)
        same._index_of = self._index_of
        return same

    def ordered(self, keys: list) -> GroupScores:
        """The same groups, iterated in the order of ``keys``."""
        return self._same(np.array([self._index[canonical_key(k)] for k in keys], dtype=np.int64))

    def in_key_order(self) -> GroupScores:
        """The same groups, iterated in key order (:func:`key_order`)."""
        return self._same(key_order(self._ids_keys))

    def __getitem__(self, key) -> Score:
        g = self._index[canonical_key(key)]
        values = {
            name: (None if column is None else column[g].item()) for name, column in self._columns.items()
        }
        return Score(**values, kind=self._kind, device=self._device)

    def __iter__(self):
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._order)

    def __repr__(self) -> str:
        shown = ", ".join(f"{key!r}: loss={self[key].loss:.6g}" for key in self._keys[:5])
        more = f", ... ({len(self)} groups)" if len(self) > 5 else ""
        return f"GroupScores({{{shown}{more}}})"

    def _key_columns(self) -> dict:
        """``{name: list of values}`` of the keys, in key order."""
        if len(self.names) == 1:
            return {self.names[0]: list(self._keys)}
        return dict(zip(self.names, (list(values) for values in zip(*self._keys, strict=True)), strict=True))

    def _stat_arrays(self) -> dict:
        """``{statistic: Arrow array}`` of the groups, in key order (taken from the arrays)."""
        order = self._order
        arrays = {}
        for name in Score.STATS:
            column, typ = self._columns[name], Score.stat_type(name)
            arrays[name] = pa.nulls(len(order), typ) if column is None else pa.array(column[order], typ)
        return arrays

    def to_arrow(self) -> pa.Table:
        """One row per group, in key order: the key columns (``names``; a name that is also a
        statistic's gets a ``group_`` prefix), then :attr:`Score.STATS`. A key column whose
        values have no common Arrow type (ints and strings of hive partitions) holds text."""
        columns = {}
        for name, values in self._key_columns().items():
            columns[f"group_{name}" if name in Score.STATS else name] = _key_array(values)
        return pa.table({**columns, **self._stat_arrays()})

    def to_pandas(self):
        """:meth:`to_arrow` as a pandas DataFrame."""
        return self.to_arrow().to_pandas()

    def records(self) -> list[dict]:
        """``[{"key": {name: value, ...}, <statistics>}, ...]`` in key order (the groups of
        :meth:`Score.to_dict`)."""
        keys = self._key_columns()
        stats = pa.table(self._stat_arrays()).to_pylist()
        return [
            {"key": {name: values[g] for name, values in keys.items()}, **row} for g, row in enumerate(stats)
        ]
