"""The options of a scoring run, in one frozen value validated once when it is made.

:func:`fastxent.score`, :func:`fastxent.report`, :func:`fastxent.dask.score` and the command line
all build a :class:`ScoreOptions`; the run's :class:`~fastxent.score.Job` keeps it and Dask ships
it to the workers as it is, so no option is restated (or re-defaulted) along the way.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import validate
from .errors import InputTypeError, InputValueError


def _names(name: str, value) -> tuple[str, ...]:
    """A column list option (``group_by``, ``keep``) as a tuple of names."""
    if value is None:
        return ()
    names = (value,) if isinstance(value, str) else tuple(value)
    if not all(isinstance(n, str) for n in names):
        raise InputTypeError(f"`{name}` must be a column name or a list of names, got {value!r}.")
    return names


def _vector(name: str, value) -> tuple[float, ...] | None:
    """A per-class vector option as a tuple of floats (hashable, picklable, compared by value)."""
    if value is None:
        return None
    return tuple(float(v) for v in validate.vector(name, np.atleast_1d(np.asarray(value))))


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScoreOptions:
    """Everything :func:`fastxent.score` takes besides the source and its outputs.

    Fields are the keyword arguments of :func:`fastxent.score`, normalised: ``group_by`` and
    ``keep`` tuples of names, ``class_weight``/``pos_weight`` tuples of floats, ``ignore_index``
    an int, ``label_smoothing`` a float. Making one validates every option, so a bad option is
    refused before any input is opened.
    """

    target: str
    logits: object = None
    probs: object = None
    logprobs: object = None
    kind: str = "auto"
    weight: str | None = None
    class_weight: tuple[float, ...] | None = None
    classes: tuple | None = None
    ignore_index: int = -100
    label_smoothing: float = 0.0
    pos_weight: tuple[float, ...] | None = None
    nulls: str = "skip"
    group_by: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()
    batch_rows: int | None = None
    device: str = "auto"

    def __post_init__(self):
        validate.choice("kind", self.kind, ("auto", "binary", "multiclass", "multilabel", "soft"))
        validate.choice("nulls", self.nulls, ("skip", "error"))
        validate.choice("device", self.device, ("auto", "cpu", "cuda"))
        batch_rows = self.batch_rows
        if batch_rows is not None and (
            isinstance(batch_rows, bool) or not isinstance(batch_rows, (int, np.integer)) or batch_rows < 1
        ):
            raise InputValueError(f"`batch_rows` must be a positive integer, got {batch_rows!r}.")
        normalised = {
            "ignore_index": validate.index_argument("ignore_index", self.ignore_index),
            "label_smoothing": validate.smoothing(self.label_smoothing),
            "group_by": _names("group_by", self.group_by),
            "keep": _names("keep", self.keep),
            "class_weight": _vector("class_weight", self.class_weight),
            "pos_weight": _vector("pos_weight", self.pos_weight),
            "classes": None if self.classes is None else tuple(self.classes),
            "batch_rows": None if batch_rows is None else int(batch_rows),
        }
        for name, value in normalised.items():
            object.__setattr__(self, name, value)
