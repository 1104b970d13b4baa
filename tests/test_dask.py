"""fastxent.dask.score on a LocalCluster of two worker processes: the same bits as fx.score."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fastxent as fx
from fastxent.synthetic import make_table, write_table

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


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Several files with several row groups and nulls, under a hive partition ``model=``."""
    root = tmp_path_factory.mktemp("dataset")
    for model in ("a", "b"):
        (root / f"model={model}").mkdir()
        for i in range(2):
            table = make_table(2500, 5, seed=10 * ord(model) + i, nulls=0.03)
            write_table(table, str(root / f"model={model}" / f"part-{i}.parquet"), "parquet", 600)
    return root


def _same(a, b):
    assert (a.total, a.weight, a.rows, a.scored, a.nulls, a.nonfinite, a.accuracy) == (
        b.total,
        b.weight,
        b.rows,
        b.scored,
        b.nulls,
        b.nonfinite,
        b.accuracy,
    )
    # exact sums for a total; a group's compensated sums agree to a rounding, merged in any order
    assert b.stderr == pytest.approx(a.stderr, rel=1e-15, nan_ok=True)


def test_bit_identical_to_single_process_with_groups(client, dataset, monkeypatch):
    monkeypatch.setattr(fxdask, "TASK_BYTES", 1)  # one row group per task: many tasks, many merges
    options = dict(target="label", logits="logits", group_by=["model", "split"])
    local = fx.score(str(dataset), **options)
    remote = fxdask.score(str(dataset), client=client, **options)
    _same(local, remote)
    assert remote.loss == local.loss and set(remote.groups) == set(local.groups) and len(local.groups) == 6
    for key, group in local.groups.items():
        _same(group, remote.groups[key])


def test_per_row_losses_one_file_per_task(client, dataset, tmp_path):
    out = tmp_path / "losses"
    fxdask.score(
        str(dataset), client=client, target="label", logits="logits", losses_to=str(out), keep=["id"]
    )
    written = pq.read_table(out)
    local = tmp_path / "local.parquet"
    fx.score(str(dataset), target="label", logits="logits", losses_to=str(local), keep=["id"])
    expected = pq.read_table(local)
    assert len(os.listdir(out)) >= 4 and written.num_rows == expected.num_rows
    assert "file" in written.column_names  # several files: each row names its file
    order = [("file", "ascending"), ("row", "ascending")]
    assert written.sort_by(order).equals(expected.sort_by(order))


class DieOnce:
    """Kill the worker the first time any task runs (a marker file says it happened)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __call__(self, task) -> None:
        if not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(1)


def test_a_worker_dying_mid_run_still_gives_the_exact_result(client, dataset, tmp_path):
    marker = tmp_path / "died"
    local = fx.score(str(dataset), target="label", logits="logits")
    remote = fxdask.score(
        str(dataset), client=client, target="label", logits="logits", _before_task=DieOnce(str(marker))
    )
    assert marker.exists()  # a worker did die
    _same(local, remote)
    client.wait_for_workers(2)


def test_bad_data_in_one_file_names_it(client, tmp_path):
    good = make_table(1000, 4, seed=1)
    write_table(good, str(tmp_path / "a.parquet"), "parquet", 500)
    bad = good.set_column(1, "label", pa.array([7] * 1000))
    write_table(bad, str(tmp_path / "b.parquet"), "parquet", 500)
    with pytest.raises(fx.InputValueError, match="class 7 at row 0 of '.*b.parquet'"):
        fxdask.score(str(tmp_path), client=client, target="label", logits="logits")


def test_command_line_uses_the_cluster(client, dataset, capsys):
    import json

    from fastxent.cli import main

    address = client.scheduler.address
    argv = ["score", str(dataset), "--target", "label", "--logits", "logits", "--format", "json"]
    assert main([*argv, "--scheduler", address]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert remote["total"] == fx.score(str(dataset), target="label", logits="logits").total


def test_command_line_starts_a_local_cluster(dataset, capsys):
    import json

    from fastxent.cli import main

    argv = [
        "score",
        str(dataset),
        "--target",
        "label",
        "--logits",
        "logits",
        "--format",
        "json",
        "--workers",
        "2",
    ]
    assert main(argv) == 0
    assert (
        json.loads(capsys.readouterr().out)["total"]
        == fx.score(str(dataset), target="label", logits="logits").total
    )


# --- Delta tables ------------------------------------------------------------------------------


def _delta_table(root, nulls_in_partition: bool):
    """A Delta table partitioned by ``run`` (a null run too, if asked), overwritten once so that
    removed files stay in its directory."""
    deltalake = pytest.importorskip("deltalake")
    table = make_table(3000, 4, seed=3).drop_columns(["logits"])
    logits = make_table(3000, 4, seed=3)["logits"]
    columns = {f"logit_{c}": pa.array(logits.combine_chunks().flatten()[c::4]) for c in range(4)}
    for name, column in columns.items():
        table = table.append_column(name, column)
    runs = pa.array([None if nulls_in_partition and i % 7 == 0 else i % 3 for i in range(3000)], pa.int64())
    table = table.append_column("run", runs)
    deltalake.write_deltalake(root, table.slice(0, 500), partition_by=["run"])
    deltalake.write_deltalake(root, table, mode="overwrite", partition_by=["run"])
    return deltalake.DeltaTable(root).to_pyarrow_dataset()


@pytest.mark.parametrize("nulls_in_partition", [False, True])
def test_a_delta_table_is_split_into_tasks_with_the_same_bits(
    client, tmp_path, monkeypatch, nulls_in_partition
):
    live = _delta_table(tmp_path / "delta", nulls_in_partition)
    monkeypatch.setattr(fxdask, "TASK_BYTES", 1)  # one row group per task
    options = dict(target="label", logits="logit_*", group_by=["run", "split"])
    local = fx.score(str(tmp_path / "delta"), **options)
    remote = fxdask.score(str(tmp_path / "delta"), client=client, **options)
    _same(local, remote)
    assert local.rows == live.count_rows() == 3000  # the live version only
    expected = fx.score(live.to_table(), **options)  # the table as deltalake reads it
    assert local.loss == pytest.approx(expected.loss, rel=1e-12)
    assert set(remote.groups) == set(local.groups) == set(expected.groups)
    if nulls_in_partition:
        assert any(key[0] is None for key in local.groups)
    for key, group in local.groups.items():
        _same(group, remote.groups[key])
        assert group.loss == pytest.approx(expected.groups[key].loss, rel=1e-12)


def test_a_delta_table_needing_its_log_is_read_whole_and_refused_on_dask(client, tmp_path):
    deltalake = pytest.importorskip("deltalake")
    root = tmp_path / "delta"
    table = make_table(1000, 3, seed=4).select(["label", "logits"])
    deltalake.write_deltalake(root, table)
    wider = table.append_column("note", pa.array(["x"] * 1000))
    deltalake.write_deltalake(root, wider, mode="append", schema_mode="merge")  # old file lacks `note`
    local = fx.score(
        str(root), target="label", logits="logits", keep=["note"], losses_to=str(tmp_path / "l.pq")
    )
    assert local.rows == 2000
    assert pq.read_table(tmp_path / "l.pq")["note"].null_count == 1000  # the old file's rows
    with pytest.raises(fx.InputTypeError, match=r"'.*delta' is read as one stream .*score it with fx.score"):
        fxdask.score(str(root), client=client, target="label", logits="logits")


@pytest.mark.parametrize("name", ["-", "losses.csv", "losses.parquet", "out.arrows", "l.tsv.gz"])
def test_losses_on_dask_are_a_directory_not_a_file_or_a_stream(dataset, tmp_path, capsys, name):
    from fastxent.cli import main

    argv = ["score", str(dataset), "--target", "label", "--logits", "logits", "--workers", "2"]
    assert main([*argv, "--losses-to", str(tmp_path / name) if name != "-" else name]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "part-NNNNN.parquet" in err
    assert os.listdir(tmp_path) == [] and not os.path.exists("-")
    with pytest.raises(fx.InputValueError, match="directory of part-NNNNN.parquet"):
        fxdask.score(str(dataset), workers=1, target="label", logits="logits", losses_to=name)
