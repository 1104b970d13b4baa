"""Issue 18, output paths: a FIFO or a device is written through, never replaced; an output that
cannot be written is refused before any input is read."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fastxent.cli import main

_COLUMNS = ["--target", "label", "--logits", "logits"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """``f.parquet`` and its per-row losses written to a regular file, ``losses.parquet``."""
    root = tmp_path_factory.mktemp("outputs")
    assert main(["make-data", str(root / "f.parquet"), "--rows", "3000", "--classes", "4"]) == 0
    assert (
        main(["score", str(root / "f.parquet"), *_COLUMNS, "--losses-to", str(root / "losses.parquet")]) == 0
    )
    return root


def _cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_losses_to_a_fifo_are_streamed_through_it(data, tmp_path, capsys):
    fifo = tmp_path / "o.fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()  # opening a FIFO waits for the other end: the command's open is the event
    code, out, _ = _cli(capsys, "score", data / "f.parquet", *_COLUMNS, "--losses-to", fifo)
    reader.join()
    assert code == 0 and out.startswith("group")
    assert pq.read_table(pa.BufferReader(received[0])).equals(pq.read_table(data / "losses.parquet"))
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and os.listdir(tmp_path) == ["o.fifo"]


def test_dev_null_stays_a_device(data, tmp_path, capsys):
    before = os.stat("/dev/null")
    for argv in (
        ["score", data / "f.parquet", *_COLUMNS, "--losses-to", "/dev/null"],
        ["make-data", "/dev/null", "--rows", "100", "--format", "parquet"],
        ["make-data", "/dev/null", "--rows", "100", "--format", "ipc"],
    ):
        assert _cli(capsys, *argv)[0] == 0
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)
    assert not [n for n in os.listdir("/dev") if n.startswith(".null.")]


def test_losses_to_dev_stdout_stream_and_the_results_go_to_stderr(data):
    command = [sys.executable, "-m", "fastxent.cli", "score", str(data / "f.parquet"), *_COLUMNS]
    done = subprocess.run([*command, "--losses-to", "/dev/stdout"], capture_output=True)
    assert done.returncode == 0 and done.stderr.startswith(b"group")
    assert pq.read_table(pa.BufferReader(done.stdout)).equals(pq.read_table(data / "losses.parquet"))


def _corrupt_input(tmp_path):
    """An input that fails as soon as it is read: an error about it means the input was read."""
    path = tmp_path / "corrupt.parquet"
    path.write_bytes(b"PAR1" + b"\0" * 100)
    return path


def test_an_output_that_is_a_directory_is_refused_before_reading(tmp_path, capsys):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, out, err = _cli(capsys, "score", _corrupt_input(tmp_path), *_COLUMNS, "--losses-to", out_dir)
    assert (code, out) == (1, "")
    assert (
        err
        == f"fastxent: error: cannot write --losses-to '{out_dir}': it is a directory; give a file name.\n"
    )
    code, _, err = _cli(capsys, "make-data", tmp_path / "out", "--rows", "10")
    assert code == 1 and "it is a directory" in err
    assert sorted(os.listdir(tmp_path)) == ["corrupt.parquet", "out"] and os.listdir(tmp_path / "out") == []


@pytest.fixture
def read_only_dir(tmp_path):
    """A directory nobody can create files in: mode 0o555, or for root (who ignores modes) the
    immutable attribute, where the file system and the container allow it."""
    path = tmp_path / "ro"
    path.mkdir()
    if os.geteuid():
        path.chmod(0o555)
        undo = ["chmod", "755", str(path)]
    elif subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0:
        undo = ["chattr", "-i", str(path)]
    else:
        pytest.skip("root, and no immutable attribute here: every directory is writable")
    try:
        yield path
    finally:
        subprocess.run(undo, check=True)


def test_a_read_only_output_directory_is_refused_before_reading(tmp_path, read_only_dir, capsys):
    target = read_only_dir / "o.parquet"
    for argv in (
        ["score", _corrupt_input(tmp_path), *_COLUMNS, "--losses-to", target],
        ["make-data", target, "--rows", "10"],
    ):
        code, out, err = _cli(capsys, *argv)
        assert (code, out) == (1, "")
        assert err.startswith(f"fastxent: error: cannot write '{target}': ") and len(err.splitlines()) == 1
        assert err.endswith(f" (in '{read_only_dir}').\n") and "corrupt" not in err
    assert os.listdir(read_only_dir) == []


def test_a_symbolic_link_output_replaces_the_file_it_points_at(data, tmp_path, capsys):
    (tmp_path / "real.parquet").write_bytes(b"old")
    (tmp_path / "link.parquet").symlink_to(tmp_path / "real.parquet")
    assert (
        _cli(capsys, "score", data / "f.parquet", *_COLUMNS, "--losses-to", tmp_path / "link.parquet")[0] == 0
    )
    assert (tmp_path / "link.parquet").is_symlink()
    assert pq.read_table(tmp_path / "real.parquet").equals(pq.read_table(data / "losses.parquet"))


def test_a_report_into_a_file_or_a_read_only_directory_is_refused_before_reading(
    tmp_path, read_only_dir, capsys
):
    (tmp_path / "file").write_text("")
    for out, message in (
        (
            tmp_path / "file" / "report",
            f"cannot write into '{tmp_path}/file/report': '{tmp_path}/file' is not",
        ),
        (read_only_dir / "report", f"cannot write into '{read_only_dir}/report': "),
    ):
        code, stdout, err = _cli(capsys, "report", _corrupt_input(tmp_path), *_COLUMNS, "--out", out)
        assert (code, stdout) == (1, "") and err.startswith(f"fastxent: error: {message}"), err
        assert len(err.splitlines()) == 1
    assert (
        sorted(os.listdir(tmp_path)) == ["corrupt.parquet", "file", "ro"] and os.listdir(read_only_dir) == []
    )
