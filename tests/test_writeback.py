"""Outputs renamed over the files they replace (fastxent/io/writeback.py)."""

from __future__ import annotations

import os
import sys

import pytest

from fastxent.io.writeback import replace_over, start_writeback


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts /proc/self/fd")
def test_the_replaced_file_is_let_go_and_the_new_one_is_in_place(tmp_path):
    path, partial = tmp_path / "out.parquet", tmp_path / "out.parquet.partial"
    path.write_bytes(b"old" * 100_000)
    partial.write_bytes(b"new")
    start_writeback(str(partial))
    before = open_descriptors()
    letting_go = replace_over(str(partial), str(path))
    assert path.read_bytes() == b"new" and not partial.exists()
    assert letting_go is not None
    letting_go.join()
    assert open_descriptors() == before  # the old file's descriptor is closed


def test_nothing_to_replace(tmp_path):
    path, partial = tmp_path / "out.arrow", tmp_path / "partial"
    partial.write_bytes(b"x")
    assert replace_over(str(partial), str(path)) is None
    assert path.read_bytes() == b"x"


def test_a_failed_rename_raises_and_holds_nothing(tmp_path):
    path = tmp_path / "out.parquet"
    path.write_bytes(b"old")
    before = open_descriptors() if sys.platform.startswith("linux") else None
    with pytest.raises(FileNotFoundError):
        replace_over(str(tmp_path / "missing"), str(path))
    assert path.read_bytes() == b"old"
    if before is not None:
        assert open_descriptors() == before


def test_writeback_of_a_missing_file_is_no_error(tmp_path):
    start_writeback(str(tmp_path / "missing"))
