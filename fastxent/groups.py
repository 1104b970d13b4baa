"""Group-by in the scoring pass: a group id per row, and every group's state in a few arrays.

:class:`GroupKeys` gives each row the id of its key (the values of the ``group_by`` columns),
from Arrow's dictionary codes of each batch: a hash per column, then one dictionary lookup per
distinct key of the batch, never per row. Keys follow pandas' ``groupby(dropna=False)``: all
nulls form one group, and so do all NaNs.

:class:`GroupTable` holds, for every group, what an :class:`~fastxent.state.Accumulator` holds
for the total (exact sums, counts, the open block) as rows of arrays, and folds each batch's
row values into them (:mod:`.kernels.groups`: the rows sorted by group, the groups folded in
parallel): the logits are scored once, whatever the number of groups, and a group costs a few
hundred bytes.
"""

from __future__ import annotations

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .errors import InputValueError
from .group_scores import GroupScores, canonical_key
from .kernels import groups as kernels
from .kernels import scattered_fold as scattered
from .kernels.blocks import all_equal, expansion_value, expansion_values
from .kernels.codes import COUNT_FIELDS, N_COUNTS, N_SUMS
from .kernels.key_table import dictionary_ids
from .kernels.unit_groups import add_unit_blocks
from .key_table import KeyTable, is_integer_like, key_bits
from .state import Score, standard_error
from .string_key_table import StringKeyTable, is_string_like, key_spans, with_offsets
from .unit_rows import UnitRows

#: Terms each group's expansions have room for at first. Sums of losses of like magnitudes hold
#: 2-4 terms; the rows widen (doubling) when one needs more. 64 terms for every group (the
#: total's room) took 1 KB a group: 100 MB for 100,000 keys, most of it never touched.
FIRST_EXPANSION_TERMS = 4

#: The factor by which the groups' arrays grow when new keys pass their room: room not yet used
#: costs no memory (zeroed pages are mapped when first written), while each growth copies the
#: rows used (100,000 keys met in batches of 18,000: one copy rather than three).
GROWTH = 8

#: Rows of a batch from which groups are folded in parallel (a thread per group at a time), and
#: groups from which their blocks are closed in parallel: below, a parallel launch costs more.
#: Up to :data:`~.kernels.groups.PARTITION_GROUPS` groups are folded serially whatever the rows:
#: one group mostly holds the rows (a split's train), and the other core is decoding the next
#: row group (binary 20M by split: 0.27-0.28 s serial, 0.31 s parallel).
PARALLEL_FOLD_ROWS = 1 << 15
PARALLEL_CLOSE_GROUPS = 1 << 12

#: Threads from which the fold and the blocks' closing run in parallel at all. With two, the
#: other core is busy: a Parquet file's row groups decode on two threads
#: (:data:`~fastxent.io.sources.PARQUET_WORKERS`) while the fold runs, a parallel loop waits
#: for its slowest thread, and OpenMP's idle threads spin after it unless
#: ``OMP_WAIT_POLICY=passive`` (the CLI sets it; ``fx.score`` in a user's process cannot).
#: 100,000 users, binary 20M file, two threads, AMD Zen 4, medians: in a Python process
#: 0.58-0.65 s serial, 0.79-0.86 s parallel; with the passive policy 0.57-0.58 s either way;
#: the same rows in memory 0.45-0.52 s either way.
PARALLEL_FOLD_THREADS = 3

#: Whole units of unweighted rows with at most this many rows a known group are folded where
#: their rows stand (:mod:`~.kernels.scattered_fold`), not sorted by group first: 100,000
#: users' 131,072-row units fold in 2.6 ms rather than 3.8 (two threads, AMD Zen 3). With more
#: rows a group, more of them are in groups of eight rows or more, which the sorted fold takes.
SCATTERED_ROWS_PER_GROUP = 4

#: Dictionaries of at most this many entries are numbered by Python lookups (:meth:`GroupKeys.ids_of`);
#: larger ones by Arrow's hash kernels, whose calls cost more than a few lookups.
FEW_KEYS = 256


def _column_codes(name: str, column: pa.Array) -> tuple[np.ndarray, list]:
    """``(codes, values)``: each row's code into ``values`` (null included as ``None``)."""
    if pa.types.is_dictionary(column.type):
        dictionary = column.dictionary
        codes = column.indices.cast(pa.int32()).fill_null(len(dictionary))  # int8 cannot hold the null code
        values = dictionary.to_pylist() + [None]
    else:
        try:
            encoded = pc.dictionary_encode(column, null_encoding="encode")
        except pa.ArrowNotImplementedError:
            raise InputValueError(
                f"`group_by` column '{name}' has type {column.type}, which cannot be a "
                "group key; group by a column of numbers, strings, booleans or dates."
            ) from None
        codes, values = encoded.indices, encoded.dictionary.to_pylist()
    return np.asarray(codes, dtype=np.int32), [canonical_key(v) for v in values]


class GroupKeys:
    """The ids of the groups met so far: ``keys[id]`` is a group's key (a tuple for several
    columns), ids numbered in order of first appearance."""

    def __init__(self, names: list[str]):
        self.names = names
        self.keys: list = []
        self._id_of: dict = {}  # key -> id of the first keys (see _ids)
        self._known: pa.Array | None = None  # the keys as one Arrow array (one column, no null)
        self._known_ids = np.empty(0, dtype=np.int32)  # the id of each value of _known
        # (the last dictionary, with a null slot if any; the id of each entry, None: its position)
        self._last_dictionary = None
        self._table: KeyTable | None = None  # integer-like keys (see _table_ids)
        # str or bytes -> (the table of those keys, how many of ``keys`` it has seen)
        self._strings: dict = {}

    def ids(self, batch: pa.RecordBatch) -> np.ndarray:
        """Each row's group id (int32: half the memory traffic of int64 on every row), new keys
        numbered as they appear."""
        if len(self.names) == 1:
            column = batch.column(self.names[0])
            if is_integer_like(column.type) and (self._table is not None or not self.keys):
                return self._table_ids(column)
            if is_string_like(column.type):
                return self._string_ids(column)
            found = self._hashed_ids(column)
            if found is not None:
                return found
        per_column = [_column_codes(name, batch.column(name)) for name in self.names]
        if len(per_column) == 1:
            local, local_keys = per_column[0]
        else:
            local, local_keys = self._combined(per_column)
        mapping = np.empty(len(local_keys), dtype=np.int32)
        for code, key in enumerate(local_keys):
            found = self._ids.get(key)
            if found is None:
                found = self._add(key)
            mapping[code] = found
        return mapping[local]

    def _table_ids(self, column: pa.Array) -> np.ndarray:
        """Ids of one integer-like key column by a compiled table of its values
        (:class:`~.key_table.KeyTable`, direct or hashed): one lookup a row; only new keys become
        Python objects."""
        if self._table is None:
            self._table = KeyTable()
        valid = np.asarray(column.is_valid()) if column.null_count else None
        ids, new_rows = self._table.ids(key_bits(column), valid, len(self.keys))
        if new_rows.size:
            self._add_new(column.take(pa.array(new_rows)).to_pylist())
        if valid is not None:
            null_id = self._ids.get(None)
            if null_id is None:
                null_id = self._add(None)
            ids[~valid] = null_id
        return ids

    def _string_ids(self, column: pa.Array) -> np.ndarray:
        """Ids of one string or binary key column by a compiled table of their bytes
        (:class:`~.string_key_table.StringKeyTable`), which first learns the keys of its kind
        numbered by other paths (a row group's dictionary): one lookup a row; only new keys
        become Python objects."""
        t = column.type
        text = pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
        kind = str if text else bytes
        table, known = self._strings.get(kind, (None, 0))
        if table is None:
            table = StringKeyTable()
        for key_id in range(known, len(self.keys)):
            key = self.keys[key_id]
            if type(key) is kind:
                table.add(key.encode() if text else key, key_id)
        column = with_offsets(column)
        before = table.count
        ids, new_rows = table.ids(key_spans(column), len(self.keys))
        if new_rows.size:
            self._add_new(table.keys(before, text))
        self._strings[kind] = (table, len(self.keys))
        if column.null_count:
            null_id = self._ids.get(None)
            if null_id is None:
                null_id = self._add(None)
            ids[ids < 0] = null_id
        return ids

    def ids_of(self, keys: list) -> np.ndarray:
        """The id of each of ``keys`` (distinct), new ones numbered as they come (int64)."""
        ids = np.empty(len(keys), dtype=np.int64)
        added = False
        for i, key in enumerate(keys):
            found = self._ids.get(key)
            if found is None:
                found, added = self._add(key), True
            ids[i] = found
        if added:  # the key table knows only the keys it numbered: the next batches go by Arrow
            self._table = None
        return ids

    @property
    def _ids(self) -> dict:
        """``key -> id`` of every key. Keys numbered in runs (:meth:`_add_new`) join it when
        it is next needed: the key table finds its keys without it, and 100,000 keys cost 10 ms
        of dictionary updates a run."""
        ids = self._id_of
        if len(ids) < len(self.keys):  # the keys are distinct: the first len(ids) are in it
            first = len(ids)
            ids.update(zip(self.keys[first:], range(first, len(self.keys)), strict=True))
        return ids

    def _add_new(self, keys: list) -> None:
        """Number ``keys`` (distinct, none known yet) as they come."""
        self.keys.extend(keys)
        self._known = None

    def _add(self, key) -> int:
        self._ids[key] = len(self.keys)
        self.keys.append(key)
        self._known = None  # rebuilt from the keys when next needed
        return self._ids[key]

    def _hashed_ids(self, column: pa.Array) -> np.ndarray | None:
        """Ids of one key column from its dictionary codes (Arrow's own dictionary, or one made
        by ``dictionary_encode``): each dictionary entry's id, then each row's in one compiled
        pass (:func:`_ids_of_codes`). ``None`` where the dictionary path must do it: float keys
        (every NaN one group) and types Arrow cannot hash or cast to the keys' type."""
        if pa.types.is_dictionary(column.type):
            values = column.dictionary
            codes = column.indices
            if column.null_count:  # the null rows' entry: one past the dictionary
                values = pa.concat_arrays([values, pa.nulls(1, values.type)])
            last = self._last_dictionary
            # batches of one Parquet row group share its dictionary page: looked up once
            if last is not None and (last[0] is values or last[0].equals(values)):
                return _ids_of_codes(codes, *last[1:])
        else:
            try:
                encoded = pc.dictionary_encode(column, null_encoding="encode")
            except pa.ArrowNotImplementedError:
                return None
            values, codes = encoded.dictionary, encoded.indices
        if pa.types.is_floating(values.type):
            return None
        if len(values) <= FEW_KEYS:
            # a split, a model's name: Python lookups cost less than the calls of Arrow's hash
            # kernels (0.7 ms a batch for 3 keys, in row groups whose dictionaries differ in order)
            mapping = self.ids_of(values.to_pylist()).astype(np.int32)
        else:
            mapping = self._looked_up(values)
            if mapping is None:
                return None
        # entries numbered as the groups (the first dictionary met): the codes are the ids
        identity = np.array_equal(mapping, np.arange(len(mapping)))
        if pa.types.is_dictionary(column.type):
            self._last_dictionary = (values, mapping, identity)
        return _ids_of_codes(codes, mapping, identity)

    def _looked_up(self, values: pa.Array) -> np.ndarray | None:
        """The id of each of a dictionary's ``values`` (distinct; a null the null key), by
        Arrow's hash kernels: they are found among the known keys by ``index_in``, and only new
        keys become Python objects (100,000 keys met in every batch cost one Python lookup each
        otherwise). ``None`` if the values cannot be compared with the known keys."""
        known, known_ids = self._known, self._known_ids
        if known is None and self.keys:
            plain = [(g, k) for g, k in enumerate(self.keys) if k is not None]
            try:
                known = pa.array([k for _, k in plain], type=values.type)
            except (pa.ArrowException, TypeError, ValueError, OverflowError):
                return None
            known_ids = np.array([g for g, _ in plain], dtype=np.int32)
        if known is not None and not values.type.equals(known.type):
            try:
                values = values.cast(known.type)
            except pa.ArrowException:
                return None
        present = values.is_valid()
        if known is None:
            positions = np.full(len(values), -1, dtype=np.int64)
        else:
            positions = np.array(pc.index_in(values, value_set=known).fill_null(-1), dtype=np.int64)
        missing = (positions < 0) & np.asarray(present)
        if missing.any():
            unseen = values.filter(pa.array(missing))
            new = pc.unique(unseen)
            first = len(self.keys)
            self._add_new(new.to_pylist())
            offset = 0 if known is None else len(known)
            known = new if known is None else pa.concat_arrays([known, new])
            known_ids = np.concatenate([known_ids, np.arange(first, len(self.keys), dtype=np.int32)])
            # the batch's new values found among the new keys alone: a small hash table
            found = pc.index_in(unseen, value_set=new).to_numpy(zero_copy_only=False)
            positions[missing] = offset + found
        self._known, self._known_ids = known, known_ids
        mapping = np.where(positions >= 0, known_ids[np.maximum(positions, 0)], -1).astype(np.int32)
        if not pc.all(present).as_py():
            null_id = self._ids.get(None)
            if null_id is None:  # a null key is no value of the Arrow array: nothing to rebuild
                null_id = self._ids[None] = len(self.keys)
                self.keys.append(None)
            mapping[~np.asarray(present)] = null_id
        return mapping

    @staticmethod
    def _combined(per_column) -> tuple[np.ndarray, list]:
        """One code per distinct combination of the columns' codes, and its tuple key."""
        combined = np.zeros(per_column[0][0].shape[0], dtype=np.int64)
        radix = 1
        for codes, values in per_column:
            radix *= len(values)
            if radix >= 1 << 62:
                raise InputValueError("too many distinct keys in one batch of the `group_by` columns.")
            combined = combined * len(values) + codes
        encoded = pc.dictionary_encode(pa.array(combined))
        distinct = np.asarray(encoded.dictionary, dtype=np.int64)
        keys = []
        for value in distinct.tolist():
            parts = []
            for _, values in reversed(per_column):
                value, code = divmod(value, len(values))
                parts.append(values[code])
            keys.append(tuple(reversed(parts)))
        return np.asarray(encoded.indices, dtype=np.int32), keys


_NO_NULLS = np.empty(0, dtype=np.uint8)
#: No sorted denominators given: the fold copies the rows' (:func:`~.kernels.groups.FOLD_ROWS`).
_NO_ONES = np.empty(0)
#: No open blocks' state (:meth:`GroupTable.state`): whole units folded only.
_NO_LANES = np.empty((0, N_SUMS, kernels.LANES))
_NO_PENDING = np.empty((0, 2, kernels.LANES))
#: No scattered sums yet (:meth:`GroupTable._fold_scattered` makes them for the groups known).
_NO_SUMS = np.empty((0, scattered.SUM_COLUMNS))


def _ids_of_codes(codes: pa.Array, mapping: np.ndarray, identity: bool) -> np.ndarray:
    """Each row's group id from its dictionary code (``codes``, an Arrow integer array whose
    null rows take the null slot, ``mapping``'s last entry): ``mapping[code]``, in one compiled
    pass over Arrow's buffers (:func:`~.kernels.key_table.dictionary_ids`), or the codes
    themselves, uncopied, when the mapping is the identity and no code is null. Codes outside
    the dictionary are refused."""
    if identity and not codes.null_count and codes.type == pa.int32():
        ids = np.asarray(codes)
        outside = ids.size > 0 and (ids.min() < 0 or ids.max() >= len(mapping))
    else:
        validity, data = codes.buffers()
        dtype = codes.type.to_pandas_dtype()
        values = np.frombuffer(data, dtype=dtype, count=codes.offset + len(codes))[codes.offset :]
        bits = np.frombuffer(validity, dtype=np.uint8) if codes.null_count else _NO_NULLS
        ids = np.empty(len(codes), dtype=np.int32)
        outside = dictionary_ids(values, bits, codes.offset, mapping, ids)
    if outside:  # a dictionary array built without checks: its ids would index past the groups
        raise InputValueError("a `group_by` column's dictionary codes point outside its dictionary.")
    return ids


def _parallel(worth_it: bool) -> bool:
    """Whether to fold in parallel: the work is ``worth_it`` and the cores are there
    (:data:`PARALLEL_FOLD_THREADS`)."""
    return worth_it and numba.get_num_threads() >= PARALLEL_FOLD_THREADS


def _rows_after(gid: np.ndarray, groups: np.ndarray, done: np.ndarray) -> np.ndarray:
    """The positions of the rows of each of ``groups`` after its first ``done`` rows, in order."""
    positions = np.flatnonzero(np.isin(gid, groups))
    ids = gid[positions]
    order = np.argsort(ids, kind="stable")
    ranked = ids[order]
    rank = np.empty(order.shape[0], dtype=np.int64)
    rank[order] = np.arange(order.shape[0]) - np.searchsorted(ranked, ranked, side="left")
    skip = np.zeros(int(groups.max()) + 1, dtype=np.int64)
    skip[groups] = done
    return positions[rank >= skip[ids]]


class GroupTable:
    """Every group's scoring state, one row per group id of a :class:`GroupKeys`.

    ``judged_per_row``: how many predictions a scored row judges (C for multilabel, else 1).
    Picklable; :meth:`merge` adds another table's groups (matched by key), which must have
    closed their blocks (:meth:`close_blocks`), as every unit of a source does at its end.
    """

    def __init__(
        self,
        names: list[str],
        judged_per_row: int = 1,
        unit_rows: UnitRows | None = None,
        denominators_are_one: bool = False,
    ):
        self.keys = GroupKeys(names)
        self.judged_per_row = judged_per_row
        # every row's denominator is 1 by the run's options (single-column binary input without
        # sample weights): the fold does not check each batch's (0.12 ms a 131,072-row batch
        # read from memory, 6% of a binary split run)
        self.denominators_are_one = denominators_are_one
        self._size = 0
        # the rows of the unit being read, folded as a whole unit at its end; once it outgrows
        # them, its batches are folded as they come, groups' open blocks carried (``_open``)
        self._unit = UnitRows() if unit_rows is None else unit_rows
        self._open = False
        self.lanes = self.pending = None  # the open blocks' state: made when first carried
        self._scratch_arrays = (np.empty(0, dtype=np.int32), np.empty(0), np.empty(0, dtype=np.int32))
        self._ones_array = _NO_ONES
        self._sums = _NO_SUMS  # the scattered fold's sums (see _fold_scattered)
        self._grow(64)

    def _grow(self, capacity: int) -> None:
        def grown(a: np.ndarray | None, shape, dtype) -> np.ndarray:
            new = np.zeros((capacity, *shape), dtype=dtype)
            if a is not None:
                new[: self._size] = a[: self._size]
            return new

        width = self.terms.shape[2] if hasattr(self, "terms") else FIRST_EXPANSION_TERMS
        self.terms = grown(getattr(self, "terms", None), (2, width), np.float64)
        self.nterms = grown(getattr(self, "nterms", None), (2,), np.int64)
        self.specials = grown(getattr(self, "specials", None), (2, 3), np.int64)
        # the products of SUM_FIELDS (sums of loss**2, loss*den, den**2): (sum, error) each
        self.moments = grown(getattr(self, "moments", None), (N_SUMS - 2, 2), np.float64)
        if self.lanes is not None:
            self.lanes = grown(self.lanes, (N_SUMS, kernels.LANES), np.float64)
            self.pending = grown(self.pending, (2, kernels.LANES), np.float64)
        self.filled = grown(getattr(self, "filled", None), (), np.int64)
        self.counts = grown(getattr(self, "counts", None), (N_COUNTS,), np.int64)
        # unweighted blocks' denominators, as row counts (see FOLD_ROWS), until _add_row_counts
        self.den_rows = grown(getattr(self, "den_rows", None), (), np.int64)
        self.nulls = grown(getattr(self, "nulls", None), (), np.int64)

    def _fit(self) -> None:
        size = len(self.keys.keys)
        if size > self.terms.shape[0]:
            self._grow(max(size, GROWTH * self.terms.shape[0]))
        self._size = size

    def _add_exactly(self, q: int, groups: np.ndarray, values: np.ndarray) -> None:
        """Add ``values[k]`` exactly to group ``groups[k]``'s sum ``q`` (0: losses, 1:
        denominators), widening every group's expansions when one is full."""
        rows = 2 * groups + q  # the expansions' rows (see state)
        done = 0
        while True:
            terms, nterms, specials = self.state()[5:]
            done += kernels.add_exactly(terms, nterms, specials, rows[done:], values[done:])
            if done == rows.shape[0]:
                return
            self._widen()

    def _add_row_counts(self) -> None:
        """Add the row counts kept for unweighted blocks to the denominators' expansions (one
        exact addition a group, where each block would have made one)."""
        groups = np.flatnonzero(self.den_rows[: self._size])
        if groups.size:
            self._add_exactly(1, groups, self.den_rows[groups].astype(np.float64))
            self.den_rows[groups] = 0

    def _widen(self) -> None:
        """Double every group's room for expansion terms (non-overlapping float64 terms number
        at most ~40: this happens a few times at most)."""
        width = self.terms.shape[2]
        wider = np.zeros((self.terms.shape[0], 2, 2 * width))
        wider[:, :, :width] = self.terms
        self.terms = wider

    def ids(self, batch: pa.RecordBatch) -> np.ndarray:
        """Each row's group id (see :meth:`GroupKeys.ids`), with room made for new groups."""
        gid = self.keys.ids(batch)
        self._fit()
        return gid

    def count_nulls(self, gid: np.ndarray) -> None:
        """Count rows skipped for a null, in their groups."""
        self.nulls[: self._size] += np.bincount(gid, minlength=self._size)

    def fold(
        self, gid: np.ndarray, loss: np.ndarray, den: np.ndarray, marks: np.ndarray, whole_unit: bool = False
    ) -> None:
        """Add scored rows (their group ids, loss, denominator and marks), in stream order;
        ``whole_unit``: they are all the scored rows of a unit of the source, which ends with
        them. Other batches of many groups are kept until their unit ends (:meth:`close_blocks`)
        and folded as one: 100,000 groups' blocks summed once a unit rather than carried open
        from batch to batch (a 131,072-row unit of 20,480-row batches, 73,000 groups: 2.7 ms
        rather than 10). Those of a few groups (:data:`~.kernels.groups.PARTITION_GROUPS`) are
        folded as they come, their blocks carried: a few groups' open blocks cost nothing, and
        keeping the rows copied 24 bytes a row (20M rows by split in memory, medians of three
        runs: 0.34-0.36 s rather than 0.38-0.39). The same bits either way."""
        if not self._open:
            if whole_unit and self._unit.rows == 0:
                self._fold(gid, loss, den, marks, True)
                return
            if self._size > kernels.PARTITION_GROUPS and self._unit.add(gid, loss, den, marks):
                return
            if self._unit.rows:  # the unit outgrows the rows kept: carried
                self._fold(*self._unit.take(), False)
        self._fold(gid, loss, den, marks, False)

    def add_unit(self, unit) -> None:
        """Add a whole unit's groups summed apart (a :class:`~fastxent.unit_groups.UnitGroups`
        of unweighted rows), as :meth:`fold` would have folded its rows: the same bits. Between
        units only, in a table whose rows' denominators are all 1."""
        if self._open or self._unit.rows or not self.denominators_are_one:
            raise RuntimeError("add_unit between units only, in a table of unweighted rows")
        groups = self.ids(unit.keys)[unit.runs]
        self.counts[groups] += unit.counts  # each group once: a plain fancy add suffices
        done = 0
        while True:
            _, _, _, _, moments, terms, nterms, specials = self.state()
            done = add_unit_blocks(
                groups, unit.block_run, unit.block_sums, done, terms, nterms, specials, moments,
                self.den_rows[: self._size],
            )  # fmt: skip
            if done == unit.block_run.shape[0]:
                return
            self._widen()

    def _fold(
        self, gid: np.ndarray, loss: np.ndarray, den: np.ndarray, marks: np.ndarray, whole_unit: bool
    ) -> None:
        if not whole_unit:
            self._open = True
            if self.lanes is None:
                capacity = self.terms.shape[0]
                self.lanes = np.zeros((capacity, N_SUMS, kernels.LANES))
                self.pending = np.zeros((capacity, 2, kernels.LANES))
        unweighted = self.denominators_are_one or all_equal(den, 1.0)
        if whole_unit and unweighted and self._scatters(gid.shape[0]):
            left = self._fold_scattered(gid, loss, marks)
            if left is None:
                return
            gid, loss, den, marks = gid[left], loss[left], den[left], marks[left]
        while True:
            parallel = _parallel(gid.shape[0] >= PARALLEL_FOLD_ROWS and self._size > kernels.PARTITION_GROUPS)
            stopped, done = kernels.FOLD_ROWS[parallel](
                gid,
                loss,
                den,
                marks,
                self.judged_per_row,
                whole_unit,
                *self.state(),
                self.den_rows[: self._size],
                *self._scratch(gid.shape[0]),
                self.ones(gid.shape[0] + kernels.SPARE_ROWS) if unweighted else _NO_ONES,
            )
            if stopped.size == 0:
                return
            self._widen()
            rows = _rows_after(gid, stopped, done)
            gid, loss, den, marks = gid[rows], loss[rows], den[rows], marks[rows]

    def _scatters(self, n: int) -> bool:
        """Whether a whole unit of ``n`` unweighted rows is folded where its rows stand
        (:mod:`~.kernels.scattered_fold`): many groups, few rows each (its passes over the groups
        cost a few ns a group known, as the counting sort's do)."""
        size = self._size
        return kernels.PARTITION_GROUPS < size <= kernels.COUNTING_GROUPS_PER_ROW * n and (
            n <= SCATTERED_ROWS_PER_GROUP * size
        )

    def _fold_scattered(self, gid: np.ndarray, loss: np.ndarray, marks: np.ndarray) -> np.ndarray | None:
        """Fold a whole unit of unweighted rows group by group where they stand
        (:mod:`~.kernels.scattered_fold`); return the positions of the rows left to the sorted
        fold (those of groups with :data:`~.kernels.groups.LANES` rows or more), or ``None``.

        The scattered sums are zero between calls; an error between the passes (no room made
        for an expansion) leaves some filled, so they are dropped and made again."""
        n = gid.shape[0]
        index = self._scratch(n)[0]
        big_rows, rare_rows, groups = index[:n], index[n : 2 * n], index[4 * n + 3 :]
        if self._sums.shape[0] < self._size:
            self._sums = np.zeros((self.terms.shape[0], scattered.SUM_COLUMNS))
        sums = self._sums
        try:
            ngroups, nbig, nrare = scattered.scatter_rows(
                gid, loss, marks, sums[: self._size], groups, big_rows, rare_rows
            )
            while True:
                _, _, _, counts, moments, terms, nterms, specials = self.state()
                left = scattered.ADD_SUMS[_parallel(n >= PARALLEL_FOLD_ROWS)](
                    groups,
                    ngroups,
                    sums,
                    self.judged_per_row,
                    counts,
                    moments,
                    terms,
                    nterms,
                    specials,
                    self.den_rows[: self._size],
                )
                if left == 0:
                    break
                self._widen()
            scattered.add_rare_marks(gid, marks, rare_rows, nrare, self.judged_per_row, counts)
            scattered.clear_big_groups(gid, big_rows, nbig, sums)
        except BaseException:
            self._sums = _NO_SUMS
            raise
        return big_rows[:nbig].copy() if nbig else None

    def ones(self, n: int) -> np.ndarray:
        """``n`` ones (or more), kept from batch to batch: the sorted denominators of unweighted
        rows, and the rows' own where a caller has none to give (the fused pass's rows)."""
        if self._ones_array.shape[0] < n:
            self._ones_array = np.ones(n)
        return self._ones_array

    def _scratch(self, n: int) -> tuple:
        """Scratch arrays for folding ``n`` rows (see :func:`~.kernels.groups.FOLD_ROWS`), kept
        from batch to batch."""
        index, values, marks = self._scratch_arrays
        need = 4 * n + 3 + min(self._size, kernels.COUNTING_GROUPS_PER_ROW * n) + 1
        if index.shape[0] < need:
            index = np.empty(need, dtype=np.int32)
        room = n + kernels.SPARE_ROWS  # the partition writes past the rows (see sort_by_group)
        if marks.shape[0] < room:
            values, marks = np.empty(2 * room), np.empty(room, dtype=np.int32)
        self._scratch_arrays = index, values, marks
        return self._scratch_arrays

    def close_blocks(self) -> None:
        """Sum every group's open block: the unit of the source ends (see
        :meth:`fastxent.state.Accumulator.close_blocks`): its rows kept are folded."""
        if self._unit.rows:
            self._fold(*self._unit.take(), True)
        if not self._open:  # whole units folded since the last close: nothing is open
            return
        self._open = False
        parallel = _parallel(self._size >= PARALLEL_CLOSE_GROUPS)
        while True:
            lanes, pending, filled, _, moments, terms, nterms, specials = self.state()
            if kernels.CLOSE_GROUPS[parallel](lanes, pending, filled, terms, nterms, specials, moments) == 0:
                return
            self._widen()

    def state(self) -> tuple:
        """The groups' arrays as the kernels take them (:func:`~.kernels.groups.FOLD_ROWS`): the
        expansions as rows ``2g`` (losses) and ``2g + 1`` (denominators), views of ``terms``,
        ``nterms`` and ``specials``."""
        size = self._size
        carried = self.lanes is not None
        return (
            self.lanes[:size] if carried else _NO_LANES,
            self.pending[:size] if carried else _NO_PENDING,
            self.filled[:size],
            self.counts[:size],
            self.moments[:size],
            self.terms[:size].reshape(2 * size, self.terms.shape[2]),
            self.nterms[:size].reshape(2 * size),
            self.specials[:size].reshape(2 * size, 3),
        )

    def merge(self, other: GroupTable) -> GroupTable:
        """Add the groups of ``other`` (same run options, blocks closed); returns self.

        All groups at once (a Dask run merges tables of 100,000 groups): one lookup per key, then
        every expansion term, special and moment added by one kernel call each."""
        if any(t._unit.rows or t.filled[: t._size].any() for t in (self, other)):
            raise InputValueError("group tables with open blocks cannot be merged; close their blocks first.")
        size = other._size
        found = self.keys.ids_of(other.keys.keys)
        self._fit()
        self._add_row_counts()
        other._add_row_counts()
        for q in range(2):
            nterms = other.nterms[:size, q]
            present = np.arange(other.terms.shape[2]) < nterms[:, None]  # each group's terms, in order
            self._add_exactly(
                q, np.repeat(found, nterms), np.ascontiguousarray(other.terms[:size, q][present])
            )
        # ``found`` holds each group once (other's keys are distinct): plain fancy adds suffice
        self.specials[found] += other.specials[:size]
        kernels.add_moments(self.moments, found, other.moments[:size])
        self.counts[found] += other.counts[:size]
        self.nulls[found] += other.nulls[:size]
        return self

    def totals(self, g: int) -> tuple[float, float]:
        """Group ``g``'s ``(sum of losses, sum of denominators)``, each correctly rounded."""
        self._add_row_counts()
        return tuple(
            expansion_value(self.terms[g, q], self.nterms[g, q], self.specials[g, q]) for q in range(2)
        )

    def scores(self, template: Score) -> GroupScores:
        """Each group's :class:`~fastxent.state.Score` (see :class:`GroupScores`); ``template``
        is the run's total (its kind and device; the run's timings are not split between
        groups). Computed for all groups at once: a run may have 100,000 of them."""
        self._add_row_counts()
        size = self._size
        sums = np.empty((2, size))
        for q in range(2):
            expansion_values(self.terms[:size, q], self.nterms[:size, q], self.specials[:size, q], sums[q])
        counts = self.counts[:size]
        judged = counts[:, COUNT_FIELDS.index("judged")]
        # each sum plus its rounding errors (as .sum(axis=2), without its 6 ms over 100,000 groups)
        moments = self.moments[:size, :, 0] + self.moments[:size, :, 1]
        stderr = standard_error(sums[0], sums[1], *moments.T, counts[:, COUNT_FIELDS.index("scored")])
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            loss = sums[0] / sums[1]  # 0/0 is NaN, as in torch
            accuracy = np.where(
                judged > 0, counts[:, COUNT_FIELDS.index("correct")] / np.maximum(judged, 1), np.nan
            )
            perplexity = np.exp(loss) if template.perplexity is not None else None
        scored, ignored = counts[:, COUNT_FIELDS.index("scored")], counts[:, COUNT_FIELDS.index("ignored")]
        columns = {
            "loss": loss,
            "stderr": stderr,
            "total": sums[0],
            "weight": sums[1],
            "rows": scored + ignored + self.nulls[:size],  # a row read is scored, ignored or null
            "scored": scored.copy(),
            "ignored": ignored.copy(),
            "nulls": self.nulls[:size].copy(),
            "nonfinite": counts[:, COUNT_FIELDS.index("nonfinite")].copy(),
            "accuracy": accuracy,
            "perplexity": perplexity,
        }
        return GroupScores(
            list(self.keys.keys), columns, template.kind, template.device, names=list(self.keys.names)
        )

    def __getstate__(self):
        state = dict(self.__dict__)
        size = self._size
        for name in ("terms", "nterms", "specials", "moments", "filled", "counts", "nulls", "den_rows"):
            state[name] = state[name][:size].copy()
        for name in ("lanes", "pending"):  # open blocks' rows: zeros once closed, made again
            state[name] = state[name][:size].copy() if self._open else None
        state["_scratch_arrays"] = tuple(a[:0] for a in self._scratch_arrays)  # scratch is not state
        state["_ones_array"] = _NO_ONES
        state["_sums"] = _NO_SUMS
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._grow(max(64, self._size))
