"""Integer labels of binary logits read as float32 by the page reader (``layout.as_float``).

The target of ``binary_cross_entropy_with_logits`` is scored as a float, so the page reader gives
a dictionary-encoded integer label column as float32 (4 bytes a label written and read instead of
8). Every score must be the pyarrow path's, bit for bit; pages it cannot give so (PLAIN values,
the dictionary's fallback to PLAIN, nulls, labels float32 does not hold exactly) go to pyarrow as
int64 from the batch they begin in; a label shown as stored (kept, grouped by) is never converted.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_page_reader import assert_same_score, scores

import fastxent as fx
from fastxent.io import sources
from fastxent.io.pages import READER_VARIABLE, decode
from fastxent.io.sources import open_parts
from fastxent.run import loop

ROWS = 3000
LOGITS = dict(target="label", logits="logit", kind="binary")


@pytest.fixture(autouse=True)
def batch_path(monkeypatch):
    """These files are plain binary logits, which the fused pass scores without batches
    (tests/test_fused_scoring.py): off here, so that the batches' float labels are scored."""
    monkeypatch.setattr(loop, "fused_file", lambda *args: None)


def _table(labels, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal(len(labels)).astype(np.float32)
    logits[::89] = -30.0  # confident rows: losses near 0 and near 30
    return pa.table({"logit": logits, "label": labels, "id": np.arange(len(labels))})


def _label_types(path: str, monkeypatch) -> tuple[set, dict]:
    """The label column's types over the batches of a binary run, and the reader's reasons."""
    monkeypatch.setenv(READER_VARIABLE, "pages")
    part = open_parts(path)[0]
    types = {
        str(b.schema.field("label").type) for _, b in part.batches(["logit", "label"], 700, None, {"label"})
    }
    return types, part.reads.reasons


# labels, writer options, the label's types in the batches, whether pyarrow reads some of it
CASES = {
    "int64 dictionary": (lambda rng: rng.integers(0, 2, ROWS), {}, {"float"}, False),
    "int32 dictionary, v2 zstd": (
        lambda rng: rng.integers(0, 2, ROWS).astype(np.int32),
        dict(data_page_version="2.0", compression="zstd"),
        {"float"},
        False,
    ),
    "int8 dictionary of -1, 0, 1": (
        lambda rng: rng.integers(-1, 2, ROWS).astype(np.int8),
        {},
        {"float"},
        False,
    ),
    # a chunk that cannot be given as floats from its first row is read through pages as stored
    "plain values": (lambda rng: rng.integers(0, 2, ROWS), dict(use_dictionary=False), {"int64"}, False),
    "labels above 2**24": (lambda rng: rng.choice([0, (1 << 24) + 1], ROWS), {}, {"int64"}, False),
    "labels at 2**24": (lambda rng: rng.choice([-(1 << 24), 1 << 24], ROWS), {}, {"float"}, False),
    "dictionary fallback to plain in the first batch": (
        lambda rng: rng.integers(0, 5000, ROWS),
        # pyarrow checks the dictionary's size every write_batch_size rows
        dict(dictionary_pagesize_limit=512, data_page_size=1024, write_batch_size=64),
        {"int64"},
        False,
    ),
    # ... and one that stops later, by pyarrow from the batch where it stops
    "dictionary fallback to plain later": (
        lambda rng: np.where(np.arange(ROWS) < 1500, rng.integers(0, 2, ROWS), rng.integers(0, 5000, ROWS)),
        dict(dictionary_pagesize_limit=512, data_page_size=1024, row_group_size=ROWS),
        {"float", "int64"},
        True,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("batch_rows", [1000, 777])
def test_scores_equal_pyarrows_and_fall_back_where_they_must(tmp_path, monkeypatch, case, batch_rows):
    labels, options, types, by_pyarrow = CASES[case]
    monkeypatch.setattr(sources, "PAGES_DECODE_COLUMN_BYTES", 2048)  # row groups of several batches
    path = str(tmp_path / "labels.parquet")
    pq.write_table(_table(labels(np.random.default_rng(1))), path, **{"row_group_size": 1100, **options})
    pages, arrow = scores(path, monkeypatch, batch_rows=batch_rows, **LOGITS)
    assert_same_score(pages, arrow)
    assert pages.rows == ROWS and pages.loss == pages.loss
    seen, reasons = _label_types(path, monkeypatch)
    assert seen == types
    if by_pyarrow:
        assert "not given as float32" in reasons["label"]
    else:
        assert not reasons and pages.readers == {"pages": 2 * 3}


@pytest.mark.parametrize("first_null", [0, 2000])
def test_nulls_in_labels_give_the_same_bits(tmp_path, monkeypatch, first_null):
    """Nulls from the first row: the chunk is read as stored; from a later page: by pyarrow from
    the batch where they begin."""
    monkeypatch.setattr(sources, "PAGES_DECODE_COLUMN_BYTES", 2048)
    rng = np.random.default_rng(2)
    mask = (rng.random(ROWS) < 0.05) & (np.arange(ROWS) >= first_null)
    labels = pa.array(rng.integers(0, 2, ROWS), mask=mask)
    path = str(tmp_path / "nulls.parquet")
    pq.write_table(_table(labels), path, row_group_size=ROWS, data_page_size=64, write_batch_size=128)
    pages, arrow = scores(path, monkeypatch, nulls="skip", batch_rows=500, **LOGITS)
    assert_same_score(pages, arrow)
    assert pages.nulls == labels.null_count > 0
    seen, reasons = _label_types(path, monkeypatch)
    assert "int64" in seen
    assert ("label" in reasons) == (first_null > 0)


def test_labels_shown_as_stored_are_not_converted(tmp_path, monkeypatch):
    """Kept in the losses file or grouped by, the label keeps its type: the page reader is not
    asked for floats, and the scores are pyarrow's."""
    path = str(tmp_path / "labels.parquet")
    pq.write_table(_table(np.random.default_rng(3).integers(0, 2, ROWS)), path, row_group_size=1100)
    out = tmp_path / "losses.parquet"
    monkeypatch.setenv(READER_VARIABLE, "pages")
    kept = fx.score(path, losses_to=str(out), keep=["label"], **LOGITS)
    assert pq.read_schema(out).field("label").type == pa.int64()
    grouped = fx.score(path, group_by="label", **LOGITS)
    assert set(grouped.groups) == {0, 1} and all(isinstance(k, int) for k in grouped.groups)
    pages, arrow = scores(path, monkeypatch, **LOGITS)
    assert_same_score(pages, arrow)
    assert kept.loss == pages.loss and grouped.loss == pages.loss


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_dictionary_values_as_exact_floats(dtype):
    limit = 1 << 24
    values = np.array([0, 1, -1, limit, -limit, 12345], dtype)
    raw = np.zeros(values.size * (values.itemsize + 4), np.uint8)
    raw[: values.nbytes] = values.view(np.uint8)
    assert decode.integers_as_floats(raw, values.size, values.itemsize)
    np.testing.assert_array_equal(raw[values.nbytes :].view(np.float32), values.astype(np.float32))
    assert raw[values.nbytes :].view(np.float32).astype(dtype).tolist() == values.tolist()
    for above in (limit + 1, -limit - 1):
        raw[: values.nbytes] = np.array([0, above, 1, 2, 3, 4], dtype).view(np.uint8)
        assert not decode.integers_as_floats(raw, values.size, values.itemsize)


def test_debug_says_which_labels_are_read_as_floats(tmp_path, monkeypatch, capsys):
    from fastxent.cli import main

    path = str(tmp_path / "labels.parquet")
    pq.write_table(_table(np.random.default_rng(4).integers(0, 2, ROWS)), path)
    monkeypatch.setenv(READER_VARIABLE, "pages")
    assert main(["score", path, "--target", "label", "--logits", "logit", "--debug"]) == 0
    err = capsys.readouterr().err
    assert (
        f"'{path}' row group 0: pages read ['logit', 'label (as float32 labels)']; pyarrow read none" in err
    )
    assert main(["score", path, "--target", "label", "--logits", "logit", "--keep", "label", "--debug"]) == 0
    assert "pages read ['logit', 'label']" in capsys.readouterr().err
