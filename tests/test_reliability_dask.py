"""Issue 18 on Dask: ``losses_to`` appears whole or not at all, and the cluster's own failures
(an address it cannot use, workers that keep dying) are one line with no log lines around it."""

from __future__ import annotations

import functools
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fastxent as fx
from fastxent.cli import main
from fastxent.synthetic import make_table, write_table

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
fxdask = pytest.importorskip("fastxent.dask")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture
def two_files(tmp_path):
    """``in/a.parquet`` (good) and ``in/b.parquet``, whose last row group has a class out of range."""
    root = tmp_path / "in"
    root.mkdir()
    good = make_table(2000, 4, seed=1)
    write_table(good, str(root / "a.parquet"), "parquet", 500)
    labels = good["label"].to_numpy().copy()
    labels[-1] = 7
    write_table(good.set_column(1, "label", pa.array(labels)), str(root / "b.parquet"), "parquet", 500)
    return root


def test_a_failing_file_leaves_no_losses_directory(client, two_files, tmp_path, monkeypatch):
    monkeypatch.setattr(fxdask, "TASK_BYTES", 1)  # a task per row group: most of them succeed
    with pytest.raises(fx.InputValueError, match="class 7 at row 1999 of '.*b.parquet'"):
        fxdask.score(
            str(two_files), client=client, target="label", logits="logits", losses_to=tmp_path / "out"
        )
    assert sorted(os.listdir(tmp_path)) == ["in"]


def test_the_losses_directory_appears_whole_and_replaces_a_previous_one(client, two_files, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "part-00007.parquet").write_bytes(b"a previous run's part")
    options = dict(client=client, target="label", logits="logits", losses_to=out)
    fxdask.score(str(two_files / "a.parquet"), **options)
    assert sorted(os.listdir(tmp_path)) == ["in", "out"]
    assert os.listdir(out) == ["part-00000.parquet"] and pq.read_table(out).num_rows == 2000
    (out / "notes.txt").write_text("mine")
    with pytest.raises(fx.InputValueError, match="holds other files than part-NNNNN.parquet \\('notes.txt'"):
        fxdask.score(str(two_files / "a.parquet"), **options)
    assert sorted(os.listdir(out)) == ["notes.txt", "part-00000.parquet"]


def test_an_address_the_cluster_cannot_use_is_one_line(tmp_path, capsys):
    argv = ["score", str(tmp_path), "--target", "y", "--logits", "x", "--scheduler", "nonsense::"]
    assert main(argv) == 1
    assert capsys.readouterr() == (
        "",
        "fastxent: error: the Dask cluster failed: ValueError: invalid address 'nonsense::'; maybe: ipv6 "
        "needs brackets like [::1]\n",
    )


class AlwaysDie:
    """Kill the worker that runs any task."""

    def __call__(self, task) -> None:
        os._exit(1)


def test_workers_that_keep_dying_are_one_line_and_no_log(two_files, capfd, monkeypatch):
    monkeypatch.setattr(fxdask, "score", functools.partial(fxdask.score, _before_task=AlwaysDie()))
    argv = ["score", str(two_files / "a.parquet"), "--target", "label", "--logits", "logits"]
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):  # the first death
        assert main([*argv, "--workers", "1"]) == 1
    out, err = capfd.readouterr()
    assert out == "" and len(err.splitlines()) == 1, err
    assert err.startswith("fastxent: error: the Dask cluster failed: KilledWorker: Attempted to run task")


def test_a_cluster_that_fails_to_start_is_one_line(two_files, capsys, monkeypatch):
    def no_nanny(*args, **kwargs):
        raise RuntimeError("Nanny failed to start.")

    monkeypatch.setattr(distributed, "LocalCluster", no_nanny)
    argv = ["score", str(two_files / "a.parquet"), "--target", "label", "--logits", "logits"]
    assert main([*argv, "--workers", "2"]) == 1
    assert capsys.readouterr() == (
        "",
        "fastxent: error: the Dask cluster failed: RuntimeError: Nanny failed to start.\n",
    )
