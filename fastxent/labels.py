"""Class labels as scikit-learn's ``LabelBinarizer`` sees them: sorted, errors word for word."""

from __future__ import annotations

import warnings

import numpy as np

from .errors import InputValueError


def encode_labels(y_true: np.ndarray, labels=None) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(index of each label in the sorted classes, sorted classes)``.

    Raises as ``sklearn.metrics.log_loss`` does for a single class or labels missing from
    ``labels``; warns when ``labels`` is not sorted (columns are read in sorted order).
    """
    if y_true.ndim != 1:
        raise InputValueError(
            f"`y_true` must be 1-D (one label per sample), got shape {y_true.shape}; "
            "label-indicator matrices are not supported."
        )
    if labels is not None:
        given = np.asarray(labels)
        classes = np.unique(given)
        if classes.shape != given.shape or not (classes == given).all():
            warnings.warn(
                f"Labels passed were {labels}. But this function assumes labels are ordered "
                f"lexicographically. Pass the ordered labels={classes.tolist()} and ensure "
                "that the columns of y_prob correspond to this ordering.",
                UserWarning,
                stacklevel=3,
            )
        unknown = ~np.isin(y_true, classes)
        if unknown.any():
            undeclared = set(y_true[unknown].tolist())
            raise InputValueError(
                f"y_true contains values {undeclared} not belonging to the passed labels {labels}."
            )
    else:
        classes = np.unique(y_true)
    if classes.shape[0] == 1:
        if labels is None:
            raise InputValueError(
                f"y_true contains only one label ({classes[0]}). Please provide the list of all "
                "expected class labels explicitly through the labels argument."
            )
        raise InputValueError(f"The labels array needs to contain at least two labels, got {classes}.")
    return np.searchsorted(classes, y_true).astype(np.int64), classes
