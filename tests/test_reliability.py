"""Issue 18 in process: the memory bound over everything queued, linear time in row groups, one
line instead of a traceback for hostile inputs, and the behaviours the attack found wrong."""

from __future__ import annotations

import os
import re
import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.ipc  # noqa: F401  (pa.ipc)
import pyarrow.parquet as pq
import pytest

import fastxent as fx
from fastxent.cli import main
from fastxent.io import prefetch, sources
from fastxent.synthetic import make_table, write_table


def _cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code, out, err, message):
    assert (code, out) == (1, ""), err
    assert err == f"fastxent: error: {message}\n"


# --- 3. one bound over everything queued -------------------------------------------------------


def _blocked_prefetch(producers, workers, depth):
    """Take one item of ``ordered_prefetch`` and stop consuming; return, once every worker waits
    for room, ``(items queued, items produced but not consumed)``, then drain the rest."""
    full = threading.Condition()
    seen = {"queued": 0, "waiting": 0}

    def on_wait(queued, waiting):
        with full:
            seen.update(queued=queued, waiting=waiting)
            full.notify_all()

    stream = prefetch.ordered_prefetch(producers, workers, depth, on_wait=on_wait)
    first = next(stream)
    with full:  # an event, not a sleep: the producers report each time they block
        assert full.wait_for(lambda: seen["waiting"] == workers, timeout=60)
        blocked = dict(seen)
    return first, blocked, [first, *stream]


def test_prefetch_bounds_everything_queued_when_producers_are_short():
    """Producers of 3 items with depth 3 never filled their own queues: all 40 ran to the end
    ahead of a consumer that stopped after one item. Now at most depth + 1 wait in the queues."""
    produced = []

    def producer(i):
        def items():
            for j in range(3):
                produced.append((i, j))
                yield (i, j)

        return items

    first, blocked, items = _blocked_prefetch([producer(i) for i in range(40)], workers=2, depth=3)
    assert first == (0, 0)
    assert blocked["queued"] <= 3 + 1
    assert items == [(i, j) for i in range(40) for j in range(3)]  # order kept, nothing lost
    assert len(produced) == 120


def test_parquet_row_groups_queued_ahead_are_bounded_together(tmp_path, monkeypatch):
    """200 row groups of 1,000 rows, each one decoded batch, fewer than the queue depth: a consumer
    that stops after one batch had every row group decoded ahead of it; now depth + 1 at most."""
    path = tmp_path / "small_groups.parquet"
    write_table(make_table(200_000, 1, kind="binary", seed=1), str(path), "parquet", 1000)
    blocked = {}

    def watched(producers, workers, depth):
        _, seen, items = _blocked_prefetch(producers, workers, depth)
        blocked.update(seen, depth=depth)
        return iter(items)

    monkeypatch.setattr(sources, "ordered_prefetch", watched)
    batches = list(sources.file_part(str(path)).read(["logits", "label"], 1 << 16, None))
    assert sum(b.num_rows for _, b in batches) == 200_000
    assert blocked["queued"] <= blocked["depth"] + 1 < 200


# --- 4. many small row groups: linear ----------------------------------------------------------


def test_scoring_time_is_linear_in_the_number_of_row_groups(tmp_path):
    """Each row group re-parsed the footer (which lists every row group): 600 row groups of 10
    rows scored in 1.9 s, 6,000 in 97 s (50x). Linear is 10x; allow 25x for a busy machine."""
    seconds = {}
    for groups in (600, 6000):
        path = str(tmp_path / f"g{groups}.parquet")
        pq.write_table(make_table(groups * 10, 4, seed=2), path, row_group_size=10)
        fx.score(path, target="label", logits="logits")  # kernels loaded, file in the page cache
        runs = []
        for _ in range(2):
            started = time.perf_counter()
            assert fx.score(path, target="label", logits="logits").rows == groups * 10
            runs.append(time.perf_counter() - started)
        seconds[groups] = min(runs)
    assert seconds[6000] < 25 * seconds[600], seconds


# --- 5. one line, not a traceback --------------------------------------------------------------


def test_a_null_inside_a_list_in_a_later_batch_is_skipped():
    """Batches after the first are slices whose offsets do not start at 0 (IndexError before)."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5000, 3)).astype(np.float32)
    rows = [list(map(float, r)) for r in x]
    rows[3000][1] = None
    table = pa.table({"x": pa.array(rows, pa.list_(pa.float32())), "y": pa.array(np.arange(5000) % 3)})
    got = fx.score(table, target="y", logits="x", batch_rows=2048)
    keep = np.arange(5000) != 3000
    assert (got.rows, got.nulls, got.scored) == (5000, 1, 4999)
    assert got.loss == pytest.approx(fx.cross_entropy(x[keep], (np.arange(5000) % 3)[keep]), rel=1e-12)


def test_an_empty_list_after_a_row_with_a_null_is_a_ragged_row():
    x = pa.array([[1.0, None], [0.5, 0.2], []], pa.list_(pa.float32()))
    with pytest.raises(
        fx.InputValueError, match=r"^`x` is a ragged list column: row 0 has 2 values, row 1 has 0"
    ):
        fx.score(pa.table({"x": x, "y": pa.array([0, 1, 0])}), target="y", logits="x")


def test_two_columns_with_the_name_in_use(tmp_path, capsys):
    x = pa.array([0.5, -1.0])
    table = pa.Table.from_arrays([x, pa.array([1, 0]), x], names=["x", "y", "x"])
    with pytest.raises(fx.InputValueError, match="the source has 2 columns named 'x'; rename them"):
        fx.score(table, target="y", logits="x")
    # a duplicated name that the run does not use is no obstacle
    other = pa.Table.from_arrays([x, pa.array([1, 0]), x, x], names=["x", "y", "z", "z"])
    assert fx.score(other, target="y", logits="x").rows == 2
    pq.write_table(table, tmp_path / "dup.parquet")
    _one_line_error(
        *_cli(capsys, "score", tmp_path / "dup.parquet", "--target", "y", "--logits", "x"),
        "the source has 2 columns named 'x'; rename them so that each name is one column.",
    )


def test_a_file_name_that_is_not_utf8(tmp_path, capsys):
    write_table(make_table(100, 3), str(tmp_path / "good.parquet"), "parquet")
    bad = os.fsdecode(bytes(tmp_path) + b"/bad\xff.parquet")
    os.link(tmp_path / "good.parquet", bad)
    shown = f"{tmp_path}/bad\\xff.parquet"
    message = f"the file name '{shown}' is not valid UTF-8, which pyarrow cannot open; rename the file."
    _one_line_error(*_cli(capsys, "score", tmp_path, "--target", "label", "--logits", "logits"), message)
    # an output name is refused the same way, before anything is written
    _one_line_error(*_cli(capsys, "make-data", bad, "--rows", "10"), message)
    assert sorted(os.listdir(tmp_path)) == sorted(["good.parquet", os.path.basename(bad)])


def test_a_parquet_footer_with_a_column_name_that_is_not_utf8(tmp_path, capsys):
    path = tmp_path / "name.parquet"
    pq.write_table(pa.table({"label": [0, 1], "logits": [0.1, 0.2], "zzzq": [1, 2]}), path)
    path.write_bytes(path.read_bytes().replace(b"zzzq", b"zz\xffq"))
    _one_line_error(
        *_cli(capsys, "score", path, "--target", "label", "--logits", "logits"),
        f"'{path}' is not a readable Parquet file (truncated or corrupt?): 'utf-8' codec can't decode "
        "byte 0xff in position 2: invalid start byte",
    )


def test_arguments_at_their_edges_are_usage_errors(tmp_path, capsys):
    for argv, message in (
        (["--ignore-index", "1180591620717411303424"], "argument --ignore-index: must fit in 64 bits"),
        (["--workers", "0"], "argument --workers: must be at least 1, got 0"),
        (["--workers", "-1"], "argument --workers: must be at least 1, got -1"),
        (["--workers", "two"], "argument --workers: expected an integer, got 'two'"),
    ):
        with pytest.raises(SystemExit) as stop:
            main(["score", str(tmp_path / "f.parquet"), "--target", "y", "--logits", "x", *argv])
        assert stop.value.code == 2 and message in capsys.readouterr().err


def test_make_data_larger_than_memory_is_refused_before_allocating(tmp_path, capsys):
    code, out, err = _cli(capsys, "make-data", tmp_path / "x.parquet", "--rows", "10000000000000")
    assert (code, out) == (1, "") and err.startswith("fastxent: error: 10,000,000,000,000 rows of 10 classes")
    assert "more than this machine's" in err and len(err.splitlines()) == 1
    assert os.listdir(tmp_path) == []


def test_out_of_memory_is_one_line(tmp_path, capsys, monkeypatch):
    import fastxent.synthetic as synthetic

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(synthetic, "make_table", no_memory)
    _one_line_error(*_cli(capsys, "make-data", tmp_path / "x.parquet", "--rows", "10"), "out of memory")
    assert os.listdir(tmp_path) == []


def test_group_by_a_list_column_is_one_line(tmp_path, capsys):
    path = tmp_path / "f.parquet"
    write_table(make_table(100, 3), str(path), "parquet")
    _one_line_error(
        *_cli(capsys, "score", path, "--target", "label", "--logits", "logits", "--group-by", "logits"),
        "`group_by` column 'logits' has type fixed_size_list<element: float>[3], which cannot be a group "
        "key; group by a column of numbers, strings, booleans or dates.",
    )


# --- 7. behaviour ------------------------------------------------------------------------------


def _rows(x, null_rows=()):
    return [None if i in null_rows else list(map(float, r)) for i, r in enumerate(x)]


@pytest.mark.parametrize(
    "list_type", [pa.list_(pa.float32(), 3), pa.list_(pa.float32())], ids=["fixed", "list"]
)
@pytest.mark.parametrize("null_row", [0, 5])
def test_a_null_prediction_row_is_skipped_and_counted(tmp_path, list_type, null_row):
    """A null row of a fixed_size_list column was rejected ("Length of item not correct"); a list
    column whose first row is null must take its width from the first row that is not."""
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((50, 3)).astype(np.float32), np.arange(50) % 3
    table = pa.table({"x": pa.array(_rows(x, {null_row}), list_type), "y": pa.array(y)})
    pq.write_table(table, tmp_path / "f.parquet")
    keep = np.arange(50) != null_row
    for source in (table, str(tmp_path / "f.parquet")):
        got = fx.score(source, target="y", logits="x")
        assert (got.rows, got.nulls, got.scored) == (50, 1, 49)
        assert got.loss == pytest.approx(fx.cross_entropy(x[keep], y[keep]), rel=1e-12)


@pytest.mark.parametrize("name", ["f.tsv", "f.tsv.gz"])
def test_tab_separated_files_are_read_with_tabs(tmp_path, name):
    import gzip

    text = "label\tlogit_0\tlogit_1\n1\t0.5\t2.0\n0\t1.5\t-1.0\n"
    data = gzip.compress(text.encode()) if name.endswith(".gz") else text.encode()
    (tmp_path / name).write_bytes(data)
    got = fx.score(str(tmp_path / name), target="label", logits="logit_*")
    want = fx.cross_entropy(np.array([[0.5, 2.0], [1.5, -1.0]], np.float32), np.array([1, 0]))
    assert got.rows == 2 and got.loss == pytest.approx(want, rel=1e-6)


def test_a_fifo_as_input_says_what_it_is(tmp_path, capsys):
    os.mkfifo(tmp_path / "in.parquet")
    _one_line_error(
        *_cli(capsys, "score", tmp_path / "in.parquet", "--target", "y", "--logits", "x"),
        f"'{tmp_path / 'in.parquet'}' is a named pipe (FIFO), not a regular file: fastxent reads a file "
        "more than once (its footer, then its data); write the predictions to a file first.",
    )


def test_classes_on_an_integer_target_is_an_error(tmp_path, capsys):
    path = tmp_path / "f.parquet"
    write_table(make_table(100, 3), str(path), "parquet")
    _one_line_error(
        *_cli(capsys, "score", path, "--target", "label", "--logits", "logits", "--classes", "a,b,c"),
        "`classes` names the classes of a target that holds class names, but `target` column 'label' "
        "holds int64 values, which are the classes themselves; drop `classes`.",
    )


_CONCURRENT = """
import threading, numpy as np, numba
import fastxent as fx
rng = np.random.default_rng(0)
x, y = rng.standard_normal((400_000, 8)).astype(np.float32), rng.integers(0, 8, 400_000)
want = fx.cross_entropy(x, y)
table = __import__("pyarrow").table({"x": __import__("pyarrow").array(x[:, 0]), "y": (y % 2)})
score = fx.score(table, target="y", logits="x").loss
got = []
def losses():
    got.extend(fx.cross_entropy(x, y) == want for _ in range(2))
def scores():
    got.append(fx.score(table, target="y", logits="x").loss == score)
threads = [threading.Thread(target=f) for f in [losses] * 2 + [scores] * 5]
[t.start() for t in threads]
[t.join() for t in threads]
assert numba.threading_layer() == "workqueue" and got == [True] * 9, got
"""


def test_concurrent_calls_under_the_workqueue_threading_layer():
    """Numba's workqueue layer aborts the process when two threads launch parallel kernels."""
    import subprocess
    import sys

    env = {**os.environ, "NUMBA_THREADING_LAYER": "workqueue"}
    done = subprocess.run([sys.executable, "-c", _CONCURRENT], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


# --- 8. corrupt Arrow IPC ----------------------------------------------------------------------


def _ipc_with(tmp_path, table: pa.Table, find: bytes, replace: bytes, stream: bool = False):
    """``table`` written as an IPC file (or stream) with the one occurrence of ``find`` replaced."""
    sink = pa.BufferOutputStream()
    with (pa.ipc.new_stream if stream else pa.ipc.new_file)(sink, table.schema) as writer:
        writer.write_table(table)
    data = sink.getvalue().to_pybytes()
    assert data.count(find) == 1 and len(find) == len(replace)
    path = tmp_path / ("f.arrows" if stream else "f.arrow")
    path.write_bytes(data.replace(find, replace))
    return path


def _offsets(values) -> bytes:
    return np.array(values, np.int32).tobytes()


def test_ipc_list_offsets_that_decrease_are_refused(tmp_path):
    x = pa.array([[0.5, 1.0, 2.0]] * 4, pa.list_(pa.float32()))
    table = pa.table({"x": x, "y": pa.array([0, 1, 2, 0], pa.int8())})
    path = _ipc_with(tmp_path, table, _offsets([0, 3, 6, 9, 12]), _offsets([0, 3, 100, 9, 12]))
    with pytest.raises(fx.InputValueError) as error:
        fx.score(str(path), target="y", logits="x")
    assert str(error.value) == (
        f"column 'x' of record batch 0 of '{path}' is corrupt (a damaged Arrow IPC file?): offsets "
        "decrease at row 2 (100 then 9)"
    )


def test_ipc_offsets_past_the_values_are_refused(tmp_path):
    x = pa.array([[0.5, 1.0, 2.0]] * 4, pa.list_(pa.float32()))
    table = pa.table({"x": x, "y": pa.array([0, 1, 2, 0], pa.int8())})
    path = _ipc_with(tmp_path, table, _offsets([0, 3, 6, 9, 12]), _offsets([0, 3, 6, 9, 4000]))
    with pytest.raises(fx.InputValueError, match=r"^record batch 0 of '.*f.arrow' is corrupt \(a damaged"):
        fx.score(str(path), target="y", logits="x")


def test_ipc_string_offsets_and_dictionary_indices_are_checked(tmp_path):
    x = pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(8, np.float32)), 2)
    names = pa.array(["cat", "dog", "cat", "dog"])
    table = pa.table({"x": x, "y": names})
    path = _ipc_with(tmp_path, table, _offsets([0, 3, 6, 9, 12]), _offsets([0, 3, 6, 2, 12]))
    with pytest.raises(fx.InputValueError, match="column 'y' of .* offsets decrease at row 2 \\(6 then 2\\)"):
        fx.score(str(path), target="y", logits="x")
    codes = pa.DictionaryArray.from_arrays(pa.array([1, 0, 1, 1], pa.int32()), names[:2])
    coded = table.set_column(1, "y", codes)
    path = _ipc_with(tmp_path, coded, _offsets([1, 0, 1, 1]), _offsets([1, 0, 9, 1]), stream=True)
    with pytest.raises(fx.InputValueError) as error:
        fx.score(pa.ipc.open_stream(pa.memory_map(str(path))), target="y", logits="x")
    assert str(error.value) == (
        "column 'y' of batch 0 of <stream> is corrupt (a damaged Arrow IPC file?): dictionary indices "
        "0..9 outside a dictionary of 2 values"
    )


def _views(column: pa.Array, edit) -> pa.Array:
    """``column`` (a view array) with its views (int32 ``(n, 4)``: length, prefix, buffer,
    offset) changed by ``edit``."""
    buffers = column.buffers()
    views = np.frombuffer(buffers[1], np.int32).reshape(-1, 4).copy()
    edit(views)
    return pa.Array.from_buffers(
        column.type, len(column), [buffers[0], pa.py_buffer(views.tobytes()), *buffers[2:]], column.null_count
    )


@pytest.mark.parametrize("typ", [pa.string_view(), pa.binary_view()], ids=str)
def test_string_views_pointing_outside_their_buffers_are_refused(typ):
    """Views of long strings point into data buffers: a length, buffer or offset that leaves
    them is refused (a null row's view is never read); views of short strings hold them."""
    words = ["a longer string than twelve", "cat", None, "another long string, here"]
    column = pa.array([w if w is None or typ == pa.string_view() else w.encode() for w in words], typ)
    x = pa.FixedSizeListArray.from_arrays(pa.array(np.zeros(8, np.float32)), 2)
    labels = pa.array([0, 1, 0, 1])

    def score(keys: pa.Array):
        return fx.score(pa.table({"x": x, "y": labels, "k": keys}), target="y", logits="x", group_by="k")

    assert score(column).groups[words[1] if typ == pa.string_view() else b"cat"].rows == 1
    null_row = _views(column, lambda v: v.__setitem__((2, 0), 1 << 30))  # a null's view: not read
    assert len(score(null_row).groups) == 4
    broken = {
        "a view of length -5": lambda v: v.__setitem__((1, 0), -5),
        "a view of data buffer 7 of 1": lambda v: v.__setitem__((3, 2), 7),
        "a view of bytes 0..1027 of a ": lambda v: v.__setitem__((0, 0), 1027),
        "a view of bytes -4..": lambda v: v.__setitem__((3, 3), -4),
    }
    for message, edit in broken.items():
        with pytest.raises(
            fx.InputValueError, match=f"column 'k' of batch 0 of <table> is corrupt .*: {message}"
        ):
            score(_views(column, edit))


def test_intact_ipc_files_score_as_before(tmp_path):
    table = make_table(3000, 4, seed=5, nulls=0.05)
    write_table(table, str(tmp_path / "f.arrow"), "ipc", 700)
    got = fx.score(str(tmp_path / "f.arrow"), target="label", logits="logits", group_by="split")
    assert got.rows == 3000 and got.total == fx.score(table, target="label", logits="logits").total


def test_a_threading_layer_that_cannot_load_falls_back_to_serial_kernels():
    """NUMBA_THREADING_LAYER=tbb without TBB: one warning, then the serial kernels' bits."""
    import subprocess
    import sys

    script = (
        "import numpy as np, fastxent as fx\n"
        "x = np.random.default_rng(0).standard_normal((400_000, 4)).astype(np.float32)\n"
        "y = np.zeros(400_000, np.int64)\n"
        "print(repr(fx.cross_entropy(x, y)), repr(fx.cross_entropy(x, y)))\n"
    )
    runs = {}
    for layer in ("tbb", "default"):
        env = {**os.environ, "NUMBA_THREADING_LAYER": layer}
        runs[layer] = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
        assert runs[layer].returncode == 0, runs[layer].stderr
    try:
        import tbb  # noqa: F401
    except ImportError:
        assert runs["tbb"].stderr.count("threading layer could not be loaded") == 1
    assert runs["tbb"].stdout == runs["default"].stdout


LAYERS_SHOWN = [("default", "threading layer  (omp|tbb|workqueue)\n"), ("tbb", "serial kernels [(]the")]


@pytest.mark.parametrize("layer, shown", LAYERS_SHOWN)
def test_info_shows_the_threading_layer_in_use_and_why(layer, shown):
    import subprocess
    import sys

    env = {**os.environ, "NUMBA_THREADING_LAYER": layer}
    script = "import sys, fastxent_launch; sys.argv[1:] = ['info']; fastxent_launch.run()"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert done.returncode == 0 and re.search(shown, done.stdout), done.stdout + done.stderr
