"""What ``fastxent bench`` and ``make bench`` measure: named workloads and the data they make.

Three sections. **In memory**: issue 13's float32 workloads (multiclass at 1.6 GB of logits for
C = 10 to 32000, binary from logits at 100M rows) and the 4M × 100 one in float16, every peer of
:data:`~fastxent.bench.cases.CASES`. **Files**: Parquet files as ``fastxent make-data`` writes
them (a list column, 100 float columns, binary) scored against decode-only reads and the SQL and
DataFrame peers, and an Arrow IPC file against a read of its memory map. **Features**: plain
scoring, ``group_by`` on 3 and on 100,000 keys, ``losses_to`` and ``report`` on one binary and
one multiclass file, each compared with plain scoring of the same file; plain scoring and the
group-bys of the binary file's rows as a pyarrow Table in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cases import FileInputs

ARRAY_METHODS = ("fastxent", "torch.compile", "jax", "optax", "torch", "numpy", "sklearn", "memory_read")
DECODERS = ("pyarrow decode", "polars decode", "duckdb decode")
#: Distinct keys of the ``user`` column the feature files get.
USERS = 100_000


@dataclass(frozen=True)
class Workload:
    """One thing to time: data (arrays, or a file written once and reused) and the methods of
    ``CASES[loss]`` that run on it. ``data`` names the data set (shared by the feature
    workloads of one file) and ``feature`` the feature's column in the features table."""

    name: str
    section: str
    loss: str
    kind: str
    rows: int
    classes: int
    methods: tuple[str, ...]
    dtype: str = "float32"
    file: str | None = None
    layout: str = "list"
    row_group_rows: int = 1 << 17
    compression: str = "snappy"
    users: bool = False
    key: str | None = None
    data: str = ""
    feature: str = ""

    def scaled_rows(self, scale: float) -> int:
        return max(1, int(self.rows * scale))

    def arrays(self, scale: float, seed: int = 0):
        """float32 logits ``N(0, 3^2)`` (then cast to ``dtype``) and their targets: class indices,
        or 0/1 floats for binary."""
        rows = self.scaled_rows(scale)
        rng = np.random.default_rng(seed)
        shape = (rows,) if self.kind == "binary" else (rows, self.classes)
        x = rng.standard_normal(shape, dtype=np.float32)
        x *= 3
        x = x.astype(self.dtype, copy=False)
        if self.kind == "binary":
            return x, (rng.random(rows, dtype=np.float32) < 0.5).astype(np.float32)
        return x, rng.integers(0, self.classes, rows)

    def path(self, scale: float, directory: Path) -> Path:
        suffix = {"ipc": "arrow"}.get(self.file, self.file)
        users = "_users" if self.users else ""
        codec = "" if self.compression == "snappy" else f"_{self.compression}"
        rows = self.scaled_rows(scale)
        return directory / f"{self.kind}_{self.classes}_{self.layout}{users}{codec}_{rows}.{suffix}"

    def write_file(self, scale: float, directory: Path) -> Path:
        """The workload's file (``make-data``'s table, seed 0), written unless it exists."""
        from fastxent.synthetic import make_table, write_table

        path = self.path(scale, directory)
        if not path.exists():
            import pyarrow as pa

            directory.mkdir(parents=True, exist_ok=True)
            rows = self.scaled_rows(scale)
            table = make_table(rows, self.classes, kind=self.kind, layout=self.layout, seed=0)
            if self.users:
                users = np.random.default_rng(0).integers(0, USERS, rows)
                table = table.append_column("user", pa.array(users))
            codec = self.compression if self.file == "parquet" else None
            write_table(table, str(path), self.file, self.row_group_rows, codec)
        return path

    def inputs(self, scale: float, directory: Path) -> tuple:
        """The builder's arguments: ``(x, y)``, or ``(FileInputs,)`` for a file."""
        if self.file is None:
            return self.arrays(scale)
        path = self.write_file(scale, directory)
        if self.layout == "columns":
            logits, columns = "logit_*", ("label", *(f"logit_{c}" for c in range(self.classes)))
        else:
            logits, columns = "logits", ("label", "logits")
        scratch = directory / "scratch"
        scratch.mkdir(parents=True, exist_ok=True)
        return (FileInputs(str(path), self.kind, logits, columns, self.key, scratch),)

    @property
    def bytes_per_row(self) -> int:
        return (1 if self.kind == "binary" else self.classes) * np.dtype(self.dtype).itemsize


def _in_memory(name, kind, rows, classes, dtype="float32") -> Workload:
    loss = "binary_cross_entropy_with_logits" if kind == "binary" else "cross_entropy"
    return Workload(name, "in memory", loss, kind, rows, classes, ARRAY_METHODS, dtype)


#: The group-bys timed on each feature file: the key column and the features table's column.
GROUP_BYS = (("split", "`group_by` (3 keys)"), ("user", "`group_by` (100,000 keys)"))


def _plain_and_group_bys(data, kind, rows, classes, plain_loss, group_loss) -> list[Workload]:
    """Plain scoring (``plain_loss``) and the :data:`GROUP_BYS` (``group_loss``, with the peers'
    group-bys of the binary loss) of the feature file of ``data``."""
    base = dict(kind=kind, rows=rows, classes=classes, file="parquet", users=True, data=data)
    peers = ("polars", "duckdb") if kind == "binary" else ()  # the peers' SQL is the binary loss
    plain = Workload(f"{data}: plain", "features", plain_loss, methods=("fastxent",), feature="plain", **base)
    return [
        plain,
        *(
            Workload(
                f"{data}: group by {key}",
                "features",
                group_loss,
                methods=("fastxent", *peers),
                key=key,
                feature=feature,
                **base,
            )
            for key, feature in GROUP_BYS
        ),
    ]


def _features(data, kind, rows, classes) -> list[Workload]:
    """The features of a file: plain scoring, the group-bys, ``losses_to`` and the report."""
    base = dict(kind=kind, rows=rows, classes=classes, file="parquet", users=True, data=data)
    return [
        *_plain_and_group_bys(data, kind, rows, classes, "file", "group_by"),
        Workload(
            f"{data}: losses_to",
            "features",
            "losses_to",
            methods=("fastxent",),
            feature="`losses_to` (+ `keep`)",
            **base,
        ),
        Workload(
            f"{data}: report",
            "features",
            "report",
            methods=("fastxent",),
            key="split",
            feature="`report(by=)`, plots included",
            **base,
        ),
    ]


def _table_features(data, kind, rows, classes) -> list[Workload]:
    """Plain scoring and the group-bys of :func:`_features`' file, read into a pyarrow Table
    before timing: the in-memory frames users score (the peers' group-bys over the same rows in
    memory)."""
    return _plain_and_group_bys(data, kind, rows, classes, "table", "table_group_by")


def _file(name, kind, rows, classes, peers, file="parquet", **options) -> Workload:
    """A file workload: fastxent, then the decoders on Parquet, then ``peers``."""
    methods = ("fastxent", *(DECODERS if file == "parquet" else ()), *peers)
    return Workload(name, "files", "file", kind, rows, classes, methods, file=file, **options)


def _parquet_layouts(codec: str = "snappy") -> list[Workload]:
    """The three Parquet layouts (a list column, a column per class, binary) with pages written
    by ``codec``. Snappy (pyarrow's default) is timed against every peer; the other codecs, named
    in the workloads, against the decoders only (issue 16's targets)."""
    named = "" if codec == "snappy" else f", {'uncompressed' if codec == 'none' else codec}"
    snappy = codec == "snappy"
    return [
        _file(
            f"multiclass 4M × 100, one list column{named}",
            "multiclass",
            4_000_000,
            100,
            (),
            compression=codec,
        ),
        _file(
            f"multiclass 4M × 100, 100 columns{named}",
            "multiclass",
            4_000_000,
            100,
            ROW_GROUPS if snappy else (),
            layout="columns",
            compression=codec,
        ),
        _file(
            f"binary, 100M rows{named}",
            "binary",
            100_000_000,
            1,
            (*ROW_GROUPS, "polars expression", "duckdb sql") if snappy else (),
            row_group_rows=1 << 20,
            compression=codec,
        ),
    ]


#: Polars reading one row group at a time, on the flat layouts (where Polars decodes fast enough to be
#: a candidate decoder for fastxent).
ROW_GROUPS = ("polars row groups",)
WORKLOADS = {
    w.name: w
    for w in [
        _in_memory("multiclass 4M × 100", "multiclass", 4_000_000, 100),
        _in_memory("multiclass 40M × 10", "multiclass", 40_000_000, 10),
        _in_memory("multiclass 400k × 1000", "multiclass", 400_000, 1000),
        _in_memory("multiclass 12.5k × 32000", "multiclass", 12_500, 32000),
        _in_memory("binary from logits, 100M", "binary", 100_000_000, 1),
        _in_memory("multiclass 4M × 100, float16", "multiclass", 4_000_000, 100, "float16"),
        *_parquet_layouts(),
        *_parquet_layouts("zstd"),
        *_parquet_layouts("none"),
        _file("multiclass 4M × 100, Arrow IPC", "multiclass", 4_000_000, 100, ("memory_read",), file="ipc"),
        *_features("binary, 20M rows", "binary", 20_000_000, 1),
        *_features("multiclass 1M × 100", "multiclass", 1_000_000, 100),
        *_table_features("binary, 20M rows, a pyarrow Table in memory", "binary", 20_000_000, 1),
    ]
}

#: ``fastxent bench --quick``: one workload of each section and a few methods, at 1/1000 of the
#: size; the methods that need no compiler, so it takes seconds.
QUICK_SCALE = 1e-3
QUICK = {
    "multiclass 4M × 100": ("fastxent", "torch", "numpy", "memory_read"),
    "binary from logits, 100M": ("fastxent", "memory_read"),
    "binary, 100M rows": ("fastxent", "pyarrow decode"),
    "binary, 20M rows: plain": ("fastxent",),
    "binary, 20M rows: group by split": ("fastxent",),
}
