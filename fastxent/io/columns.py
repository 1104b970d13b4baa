"""Which columns of a source hold what, which loss they call for, and how a batch becomes arrays.

:func:`plan` reads only the schema: it finds the prediction column(s), the target, the weight and
the grouping columns, checks their types, and decides the ``kind`` (binary, multiclass,
multilabel or soft) when ``kind="auto"``. :meth:`ColumnPlan.arrays` then turns one record batch
into NumPy arrays for the :class:`~fastxent.state.Accumulator`, without copying where Arrow's
buffers can be viewed, and finds the rows with a null.
"""

from __future__ import annotations

import contextlib
import difflib
import fnmatch
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import InputTypeError, InputValueError
from ..inputs import as_array
from .labels import class_indices, declared_classes, is_declared, is_labels
from .nulls import null_rows

KINDS = ("auto", "binary", "multiclass", "multilabel", "soft")
#: Columns named in "is not in the source" errors; the rest are counted.
LISTED_COLUMNS = 20


def _is_list(t: pa.DataType) -> bool:
    return pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t)


def _is_tensor(t: pa.DataType) -> bool:
    return getattr(t, "extension_name", None) == "arrow.fixed_shape_tensor"


def _value_type(t: pa.DataType) -> pa.DataType:
    if _is_tensor(t):
        return t.storage_type.value_type
    return t.value_type if _is_list(t) else t


@dataclass
class ColumnPlan:
    """Where everything is in the source and what loss it calls for."""

    kind: str
    inputs: str  # "logits" | "probs" | "logprobs"
    input_columns: list[str]
    num_classes: int
    target: str
    weight: str | None = None
    group_by: list[str] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)
    classes: list | None = None  # class names of a string target, in class-index order

    @property
    def input_name(self) -> str:
        return self.input_columns[0] if len(self.input_columns) == 1 else self.inputs

    def columns(self) -> list[str]:
        """Every column to read, each once, in a fixed order."""
        names = [*self.input_columns, self.target]
        names += [c for c in (self.weight, *self.group_by, *self.keep) if c]
        return list(dict.fromkeys(names))

    def float_labels(self) -> frozenset:
        """The columns a reader may give as float32 where they hold integers: the target of
        binary logits, scored as floats (torch's ``binary_cross_entropy_with_logits``), when no
        other role (kept, grouped by, a weight) shows its values as they are stored."""
        others = {self.weight, *self.group_by, *self.keep, *self.input_columns}
        if self.kind != "binary" or self.inputs != "logits" or self.classes is not None:
            return frozenset()
        if self.target in others:
            return frozenset()
        return frozenset([self.target])

    def null_rows(self, batch: pa.RecordBatch, inputs: bool = True) -> np.ndarray | None:
        """Boolean mask of rows with a null in the input (unless ``inputs`` is false: a batch
        without its input columns), target or weight (a null row, or a null inside a row's
        list); ``None`` if none."""
        names = [*(self.input_columns if inputs else []), self.target]
        return null_rows(batch, names + ([self.weight] if self.weight else []))

    def arrays(self, batch: pa.RecordBatch, where=lambda row: f"at row {row}", statistics=None):
        """``(input, target, sample_weight)`` of a batch without nulls, as the kind needs them.

        ``where(row)`` names a batch row in the source's terms, for error messages.
        ``statistics`` (:class:`~fastxent.engine.ClassStatistics` of the batch's rows, read in
        class passes) stands for the input, which the batch then lacks.
        """
        if statistics is not None:
            x = statistics
        elif len(self.input_columns) == 1:
            x = as_array(self.input_columns[0], batch.column(self.input_columns[0]))
        else:
            by_class = self.kind == "multiclass"
            x = stacked_in_place([batch.column(c) for c in self.input_columns]) if by_class else None
            if x is None:
                x = _stacked([as_array(c, batch.column(c)) for c in self.input_columns], by_class)
        if statistics is None:
            x = self._checked_input(x)
        t = self.target_values(batch.column(self.target), where)
        sw = None
        if self.weight:
            sw = as_array(self.weight, batch.column(self.weight)).astype(np.float64, copy=False)
        return x, t, sw

    def _checked_input(self, x: np.ndarray) -> np.ndarray:
        """A batch's input array with the shape the kind needs (binary: one value per row)."""
        if self.kind in ("multiclass", "soft", "multilabel") and x.ndim == 1:
            raise InputValueError(f"`{self.input_name}` has one value per row; kind={self.kind!r} needs C.")
        if self.kind == "binary" and x.ndim == 2:
            x = x[:, 0] if x.shape[1] == 1 else x
        if x.ndim == 2 and x.shape[1] != self.num_classes:
            raise InputValueError(
                f"`{self.input_name}` has {x.shape[1]} values per row in this batch but "
                f"{self.num_classes} before; every row needs one value per class."
            )
        return x

    def target_values(self, column: pa.Array, where) -> np.ndarray:
        """A target column (no nulls) as the kind needs it: class indices, labels or
        probabilities; ``where(row)`` names a row in errors."""
        if self.classes is not None:
            return class_indices(self.target, column, self.classes, where)
        t = as_array(self.target, column)
        if self.kind in ("binary", "multilabel"):
            # as read: the CPU kernels take int64 labels in place and convert other dtypes a
            # chunk at a time, the CUDA kernels take any of them (converting 100M int64 labels
            # here cost a pass over 1.2 GB)
            return t
        if self.kind == "soft":
            return t.astype(np.float32, copy=False) if t.dtype.kind in "biu" else t
        return t.astype(np.int64) if t.dtype.kind == "b" else t


def stacked_in_place(columns: list) -> np.ndarray | None:
    """The ``(N, C)`` array of C Arrow columns without a copy, where their values lie one
    stride apart in one Arrow buffer (the page reader decodes a batch's float columns into one,
    :func:`~.pages.cursor.shared_value_buffers`): Fortran order when the stride is a column's
    size, column-strided for a slice of such a batch. ``None`` where they do not (other readers,
    nulls, mixed types): they are copied (:func:`_stacked`)."""
    if not all(isinstance(column, pa.Array) for column in columns):
        return None
    typ, n = columns[0].type, len(columns[0])
    if not (pa.types.is_floating(typ) or pa.types.is_integer(typ)):
        return None
    width = typ.bit_width // 8
    starts, parent = [], None
    for column in columns:
        if column.type != typ or len(column) != n or column.null_count:
            return None
        data = column.buffers()[1]
        owner = data.parent
        if owner is None or (parent is not None and owner.address != parent.address):
            return None
        parent = owner
        starts.append(data.address + column.offset * width)
    step = starts[1] - starts[0]
    if n == 0 or step < n * width or any(s != starts[0] + k * step for k, s in enumerate(starts)):
        return None
    dtype, offset = np.dtype(typ.to_pandas_dtype()), starts[0] - parent.address
    # np.ndarray checks that the view lies inside the buffer, which it keeps alive: the classes'
    # rows padded to the stride where the buffer holds the last one's padding too (the kernels
    # read them in place, fastxent.engine.class_rows), else the columns alone
    rows = None
    if step % width == 0:
        with contextlib.suppress(TypeError, ValueError):
            rows = np.ndarray((len(columns), step // width), dtype, parent, offset, (step, width))
    if rows is None:
        x = np.ndarray((n, len(columns)), dtype, parent, offset, (width, step))
        x.flags.writeable = False  # read-only, as Arrow's own views
        return x
    rows.flags.writeable = False
    return rows[:, :n].T


def _stacked(columns: list[np.ndarray], by_class: bool) -> np.ndarray:
    """One ``(N, C)`` array from C column arrays. For class-index targets it is Fortran-order:
    each column is one contiguous copy and the kernels read it class by class
    (:func:`fastxent.engine.is_column_major`), where ``np.column_stack``'s transposing copy cost
    more than scoring the rows."""
    if not by_class:
        return np.column_stack(columns)
    x = np.empty((len(columns), len(columns[0])), dtype=np.result_type(*columns)).T
    for c, column in enumerate(columns):
        x[:, c] = column
    return x


def expand_columns(spec, names: list[str], what: str) -> list[str]:
    """Column names from one name, a glob (``"logit_*"``) or a list, checked against ``names``."""
    wanted = [spec] if isinstance(spec, str) else list(spec)
    found = []
    for item in wanted:
        if item in names:
            found.append(item)
            continue
        if any(ch in item for ch in "*?["):
            matches = [n for n in names if fnmatch.fnmatchcase(n, item)]
            if matches:
                found += matches
                continue
        raise InputValueError(f"{what} column '{item}' is not in the source;{_suggestion(item, names)}")
    return found


def _suggestion(name: str, names: list[str]) -> str:
    """What follows "is not in the source;": the closest column's name, if one is close, and the columns."""
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if not close:  # a change of case is a typo too ("Label" for "label")
        close = [n for n in names if n.lower() == name.lower()]
    # a wide file's 10,000 class columns would make a page-long "line"
    listed = ", ".join(names[:LISTED_COLUMNS])
    if len(names) > LISTED_COLUMNS:
        listed += f", ... ({len(names) - LISTED_COLUMNS} more)"
    return (
        f" did you mean '{close[0]}'? Its columns are: {listed}." if close else f" its columns are: {listed}."
    )


def _width(schema: pa.Schema, column: str) -> int | None:
    t = schema.field(column).type
    if pa.types.is_fixed_size_list(t):
        return t.list_size
    if _is_tensor(t):
        shape = t.shape
        return int(np.prod(shape)) if shape else None
    return None


def plan(
    schema: pa.Schema,
    *,
    target: str,
    logits=None,
    probs=None,
    logprobs=None,
    kind: str = "auto",
    weight: str | None = None,
    group_by=None,
    keep=None,
    classes=None,
    peek=None,
    distinct=None,
) -> ColumnPlan:
    """Resolve the columns and the kind of loss from the ``schema``.

    Two callbacks read data only when the schema cannot tell: ``peek(column)`` returns the
    first batch holding a non-null value of a column (the width of a variable-length list
    column) and ``distinct(column, wanted)`` the sorted distinct values of a string target (its
    classes, when ``classes`` is not given; ``wanted`` is how many the predictions need, where a
    single-use stream may stop looking).
    """
    given = [
        (n, v) for n, v in (("logits", logits), ("probs", probs), ("logprobs", logprobs)) if v is not None
    ]
    if len(given) != 1:
        raise InputValueError(
            "pass exactly one of `logits=`, `probs=` or `logprobs=` (the column(s) holding the "
            f"predictions); got {len(given)}."
        )
    if kind not in KINDS:
        raise InputValueError(f"`kind` must be one of {', '.join(KINDS)}, got {kind!r}.")
    inputs, spec = given[0]
    names = schema.names
    input_columns = expand_columns(spec, names, f"`{inputs}`")
    (target_column,) = expand_columns(target, names, "`target`")
    weight_column = expand_columns(weight, names, "`weight`")[0] if weight else None
    group_columns = expand_columns(group_by, names, "`group_by`") if group_by else []
    keep_columns = expand_columns(keep, names, "`keep`") if keep else []
    for name in dict.fromkeys([*input_columns, target_column, weight_column, *group_columns, *keep_columns]):
        if name is not None and len(schema.get_all_field_indices(name)) > 1:
            raise InputValueError(
                f"the source has {len(schema.get_all_field_indices(name))} columns named '{name}'; "
                "rename them so that each name is one column."
            )

    types = [schema.field(c).type for c in input_columns]
    if len(input_columns) > 1:
        for c, t in zip(input_columns, types, strict=True):
            if not pa.types.is_floating(t):
                raise InputTypeError(f"prediction column '{c}' must be float, got {t}.")
        num_classes = len(input_columns)
    else:
        t = types[0]
        value_type = _value_type(t)
        if not pa.types.is_floating(value_type):
            raise InputTypeError(
                f"`{inputs}` column '{input_columns[0]}' must hold floats (a float column, or a "
                f"list/tensor of floats per row), got {t}."
            )
        if _is_list(t) or _is_tensor(t):
            num_classes = _width(schema, input_columns[0])
            if num_classes is None:
                num_classes = _first_width(peek(input_columns[0]) if peek else None, input_columns[0])
        else:
            num_classes = 1

    ttype = schema.field(target_column).type
    chosen = _choose_kind(kind, inputs, num_classes, ttype, target_column)
    if inputs == "logprobs" and chosen != "multiclass":
        raise InputValueError("`logprobs=` is for multiclass predictions with class-index targets.")
    labels = None
    if classes is not None and not is_labels(ttype):
        raise InputValueError(
            f"`classes` names the classes of a target that holds class names, but `target` column "
            f"'{target_column}' holds {ttype} values, which are the classes themselves; drop `classes`."
        )
    if is_labels(ttype):
        wanted = 2 if chosen == "binary" else num_classes
        labels = _class_names(target_column, ttype, wanted, classes, peek, distinct)
    if weight_column and not (
        pa.types.is_floating(w := schema.field(weight_column).type) or pa.types.is_integer(w)
    ):
        raise InputTypeError(f"`weight` column '{weight_column}' must be numeric, got {w}.")
    return ColumnPlan(
        kind=chosen,
        inputs=inputs,
        input_columns=input_columns,
        num_classes=num_classes,
        target=target_column,
        weight=weight_column,
        group_by=group_columns,
        keep=keep_columns,
        classes=labels,
    )


def _class_names(column: str, ttype: pa.DataType, wanted: int, classes, peek, distinct) -> list:
    """The class names of a target of names, in class-index order: ``classes`` when given, else
    the order the type declares (:func:`~.labels.is_declared`), else the sorted names."""
    if classes is not None:
        labels, found = list(classes), "names were given"
    elif is_declared(ttype):
        batch = peek(column) if peek else None
        labels = [] if batch is None else declared_classes(batch.column(column))
        found = f"classes are declared by its type ({ttype}, in the order {labels})"
    else:
        labels = list(distinct(column, wanted) if distinct else [])
        found = "distinct names were found"
    if len(labels) != wanted:
        raise InputValueError(
            f"`target` column '{column}' holds class names; {len(labels)} {found} but the "
            f"predictions have {wanted} classes. Pass the class names in class-index order as `classes=`."
        )
    return labels


def _first_width(batch: pa.RecordBatch | None, column: str) -> int:
    if batch is None:
        raise InputValueError(
            f"cannot tell the number of classes of list column '{column}': the source is empty or "
            "the column is all nulls."
        )
    # the first non-null row: a null row's list has no length
    return pc.list_value_length(batch.column(column)).drop_null()[0].as_py()


def _choose_kind(kind: str, inputs: str, num_classes: int, ttype: pa.DataType, target: str) -> str:
    """The loss kind from the prediction width and the target's type (``kind="auto"``)."""
    if _is_list(ttype) or _is_tensor(ttype):
        readings = ["multilabel", "soft"]
    elif is_labels(ttype) or pa.types.is_integer(ttype):
        readings = ["binary"] if num_classes == 1 else ["multiclass"]
    elif pa.types.is_boolean(ttype) or pa.types.is_floating(ttype):
        readings = ["binary"] if num_classes == 1 else []
    else:
        raise InputTypeError(
            f"`target` column '{target}' has type {ttype}; expected integers, booleans, floats, "
            "class names or a list per row."
        )
    if num_classes == 1 and readings != ["binary"]:
        raise InputValueError(
            f"the predictions have one value per row but `target` column '{target}' ({ttype}) has "
            "a list per row."
        )
    if kind == "auto":
        if not readings:
            raise InputTypeError(
                f"`target` column '{target}' holds {ttype} values but the predictions have "
                f"{num_classes} classes: class indices must be integers (or class names)."
            )
        if len(readings) > 1:
            raise InputValueError(
                f"`target` column '{target}' holds a list per row, which fits kind='multilabel' "
                "(one binary loss per class) and kind='soft' (probability targets); pass `kind=`."
            )
        return readings[0]
    if kind not in readings:
        raise InputValueError(
            f"kind={kind!r} does not fit `target` column '{target}' ({ttype}) with "
            f"{num_classes} prediction value(s) per row; it fits: {', '.join(readings) or 'nothing'}."
        )
    return kind
