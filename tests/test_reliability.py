"""Issue 18 in process: the memory bound over everything queued, linear time in row groups, one
line instead of a traceback for hostile inputs, and the behaviours the attack found wrong."""

from __future__ import annotations

import threading
import time

import pyarrow.ipc  # noqa: F401  (pa.ipc)
import pyarrow.parquet as pq

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
