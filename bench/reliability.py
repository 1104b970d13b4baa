"""Issue 18's measurements: peak memory of file scoring on every layout, and the cost of the Arrow
integrity check. Too big and too slow for unit tests; run by hand or from ``make bench``:

    python bench/reliability.py [--rows 60000000] [--dir /tmp/fastxent-bench]

1. Peak RSS of ``fastxent score`` on binary Parquet files of ``rows / 4`` and ``rows`` rows
   (60M rows: a 0.63 GB file), plain, with ``--losses-to`` and with ``--group-by``. The promise:
   under 600 MB, and flat (the 4x larger file within 1.25x + 64 MB).
2. The time :func:`fastxent.io.integrity.check_batch` takes inside scoring an Arrow IPC file of
   4M rows x 100 classes (``make-data --format ipc``: a fixed_size_list column; and the same
   values as a variable-length list column, whose offsets the check reads). The promise: < 3%.
3. Peak RSS on the layouts of issue 19: Arrow IPC files of ``rows / 25`` rows x 100 classes,
   zstd and lz4, file and stream format (each batch decoded when read, not all at open); Parquet
   files of 1,000 one-column-per-class columns x 100k rows and 10,000 columns x 10k rows (decoded
   in batches bounded over all columns). The promise: under 600 MB each.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

COMMAND = [sys.executable, "-m", "fastxent.cli"]


def _peak_mb(argv: list[str]) -> float:
    """Peak resident memory of one command, in MB (its own, measured by the kernel)."""
    child = subprocess.Popen([*COMMAND, *argv], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, argv
    return usage.ru_maxrss / 1024


def memory(rows: int, root: Path) -> None:
    print("peak RSS (MB) of fastxent score, binary Parquet files")
    peaks = {}
    for n in (rows // 4, rows):
        path = root / f"binary-{n}.parquet"
        if not path.exists():
            argv = ["make-data", str(path), "--rows", str(n), "--kind", "binary"]
            subprocess.run([*COMMAND, *argv], check=True)
        for name, extra in (
            ("plain", []),
            ("--losses-to", ["--losses-to", str(root / "losses.parquet")]),
            ("--group-by", ["--group-by", "split"]),
        ):
            peaks[n, name] = _peak_mb(["score", str(path), "--target", "label", "--logits", "logits", *extra])
            print(f"  {n:>12,} rows {path.stat().st_size / 1e9:5.2f} GB  {name:<12} {peaks[n, name]:7.0f}")
    for name in ("plain", "--losses-to", "--group-by"):
        small, large = peaks[rows // 4, name], peaks[rows, name]
        flat = "flat" if large <= 1.25 * small + 64 else "NOT FLAT"
        print(f"  {name:<12} 4x rows: {large / small:.2f}x  {flat}, max {large:.0f}")


# Rewrites a Parquet file as Arrow IPC, batch by batch: argv = source, target, codec, "stream"|"file".
_TO_IPC = """
import sys
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
source, target, codec, layout = sys.argv[1:]
reader = pq.ParquetFile(source)
options = ipc.IpcWriteOptions(compression=None if codec == "plain" else codec)
new = ipc.new_stream if layout == "stream" else ipc.new_file
with new(target, reader.schema_arrow, options=options) as w:
    for batch in reader.iter_batches(1 << 17):
        w.write_batch(batch)
"""


def _ipc_layouts(rows: int, root: Path) -> list[Path]:
    """The same predictions as Arrow IPC: plain, zstd and lz4, file and stream format. Written by
    child processes: Linux keeps a process's peak RSS across fork and exec, so a parent that grew
    would lend its peak to every command measured after."""
    source = root / f"classes100-{rows}.parquet"
    if not source.exists():
        argv = ["make-data", str(source), "--rows", str(rows), "--classes", "100"]
        subprocess.run([*COMMAND, *argv], check=True)
    paths = []
    for codec, layout in (
        ("plain", "file"),
        ("zstd", "file"),
        ("zstd", "stream"),
        ("lz4", "file"),
        ("lz4", "stream"),
    ):
        path = root / f"classes100-{rows}-{codec}.{'arrows' if layout == 'stream' else 'arrow'}"
        if not path.exists():
            subprocess.run([sys.executable, "-c", _TO_IPC, str(source), str(path), codec, layout], check=True)
        paths.append(path)
    return paths


def _wide(classes: int, rows: int, root: Path) -> Path:
    path = root / f"wide-{classes}x{rows}.parquet"
    if not path.exists():
        argv = ["make-data", str(path), "--rows", str(rows), "--classes", str(classes), "--layout", "columns"]
        subprocess.run([*COMMAND, *argv], check=True)
    return path


def layouts(rows: int, root: Path) -> None:
    print("peak RSS (MB) of fastxent score on other layouts")
    runs = [(path, "logits") for path in _ipc_layouts(rows // 25, root)]
    runs += [(_wide(classes, n, root), "logit_*") for classes, n in ((1000, 100_000), (10_000, 10_000))]
    for path, logits in runs:
        peak = _peak_mb(["score", str(path), "--target", "label", "--logits", logits])
        verdict = "ok" if peak < 600 else "OVER"
        print(f"  {path.name:<40} {path.stat().st_size / 1e9:5.2f} GB {peak:7.0f}  {verdict}")


def integrity(root: Path) -> None:
    import pyarrow as pa
    import pyarrow.ipc as ipc

    import fastxent as fx
    from fastxent.io import ipcfile

    fixed = root / "classes100.arrow"
    if not fixed.exists():
        argv = ["make-data", str(fixed), "--format", "ipc", "--rows", "4000000", "--classes", "100"]
        subprocess.run([*COMMAND, *argv], check=True)
    ragged = root / "classes100-list.arrow"
    if not ragged.exists():
        table = ipc.open_file(pa.memory_map(str(fixed))).read_all()
        lists = [
            pa.ListArray.from_arrays(pa.array(range(0, 100 * len(c) + 1, 100), pa.int32()), c.flatten())
            for c in table["logits"].chunks
        ]
        table = table.set_column(table.schema.get_field_index("logits"), "logits", pa.chunked_array(lists))
        with ipc.new_file(str(ragged), table.schema) as writer:
            writer.write_table(table, max_chunksize=1 << 17)
    check = ipcfile.check_batch
    print("Arrow IPC integrity check inside fx.score, 4M rows x 100 classes (median of 5)")
    for path in (fixed, ragged):
        spent, total = [], []
        for _ in range(6):
            inside = [0.0]

            def timed(batch, where, inside=inside):
                started = time.perf_counter()
                check(batch, where)
                inside[0] += time.perf_counter() - started

            ipcfile.check_batch = timed
            started = time.perf_counter()
            fx.score(str(path), target="label", logits="logits")
            total.append(time.perf_counter() - started)
            spent.append(inside[0])
        ipcfile.check_batch = check
        spent, total = sorted(spent[1:])[2], sorted(total[1:])[2]  # the first run loads kernels
        print(f"  {path.name:<24} check {spent * 1e3:6.1f} ms of {total:.3f} s: {100 * spent / total:.2f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60_000_000)
    parser.add_argument("--dir", default="/tmp/fastxent-bench")
    args = parser.parse_args()
    root = Path(args.dir)
    root.mkdir(parents=True, exist_ok=True)
    memory(args.rows, root)
    integrity(root)
    layouts(args.rows, root)


if __name__ == "__main__":
    main()
