"""The one registry of what the benchmarks time and the tests check: ``CASES[loss][method]``.

Each entry is a builder. Array losses take the workload's logits and targets, ``builder(x, y)``;
file losses take one :class:`FileInputs`. A builder does its set-up (imports, conversions, loading
a memory map) and returns a zero-argument callable that computes the loss, which is what is timed.
A peer whose library is missing raises ``ImportError`` from its builder: the harness leaves it out
with a note, the tests skip it. :func:`comparable` turns what a call returned into a value to
compare with fastxent's; the methods in :data:`FLOORS` compute no loss (they read what fastxent
reads: the floor its time is compared with).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np


class FileInputs(NamedTuple):
    """What a file method is given: the file, its loss kind, the ``logits`` argument of
    :func:`fastxent.score` (a column or a ``logit_*`` pattern), the columns a decoder reads, the
    group-by key column (or ``None``), and a directory for outputs."""

    path: str
    kind: str
    logits: str
    columns: tuple[str, ...]
    key: str | None
    scratch: Path


# ---- in memory: (x, y) -> callable ----------------------------------------------------------


def _fastxent(loss_name):
    def build(x, y):
        import fastxent as fx

        loss = getattr(fx, loss_name)
        return lambda: loss(x, y)

    return build


def _torch(loss_name, compiled):
    def build(x, y):
        import torch

        loss = getattr(torch.nn.functional, loss_name)
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def formula(a, t):
            return loss(a.float(), t)  # float16 read as users do, widened (a no-op on float32)

        fn = torch.compile(formula, dynamic=False) if compiled else formula
        return lambda: float(fn(tx, ty))

    return build


def _jax_multiclass(library):
    def build(x, y):
        import jax
        import jax.numpy as jnp

        if library == "optax":
            import optax

            def formula(a, t):
                a = a.astype(jnp.float32)
                return optax.softmax_cross_entropy_with_integer_labels(a, t).mean()

        else:

            def formula(a, t):
                a = a.astype(jnp.float32)
                m = jnp.max(a, axis=1, keepdims=True)
                log_z = jnp.log(jnp.sum(jnp.exp(a - m), axis=1)) + m[:, 0]
                return jnp.mean(log_z - jnp.take_along_axis(a, t[:, None], axis=1)[:, 0])

        fn, jx, jy = jax.jit(formula), jnp.asarray(x), jnp.asarray(y.astype(np.int32))
        return lambda: float(fn(jx, jy))

    return build


def _jax_binary(library):
    def build(x, y):
        import jax
        import jax.numpy as jnp

        if library == "optax":
            import optax

            def formula(a, t):
                return optax.sigmoid_binary_cross_entropy(a.astype(jnp.float32), t).mean()

        else:

            def formula(a, t):  # softplus(a) - a t, written stably
                a = a.astype(jnp.float32)
                return jnp.mean(jnp.maximum(a, 0) - a * t + jnp.log1p(jnp.exp(-jnp.abs(a))))

        fn, jx, jy = jax.jit(formula), jnp.asarray(x), jnp.asarray(y)
        return lambda: float(fn(jx, jy))

    return build


def _numpy_multiclass(x, y):
    def run():
        v = x.astype(np.float32, copy=False)
        m = v.max(axis=1, keepdims=True)
        log_z = np.log(np.exp(v - m).sum(axis=1)) + m[:, 0]
        return float(np.mean(log_z - v[np.arange(len(y)), y]))

    return run


def _numpy_binary(x, y):
    def run():
        v = x.astype(np.float32, copy=False)
        return float(np.mean(np.maximum(v, 0) - v * y + np.log1p(np.exp(-np.abs(v)))))

    return run


def _sklearn_multiclass(x, y):
    from sklearn.metrics import log_loss

    # log_loss takes probabilities: the softmax is the user's set-up, not timed; float64, since
    # log_loss clips at the dtype's epsilon and float32 would clip confident rows
    shifted = x.astype(np.float64) - x.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    labels = np.arange(x.shape[1])
    return lambda: float(log_loss(y, probs, labels=labels))


def _sklearn_binary(x, y):
    from sklearn.metrics import log_loss

    probs = 1.0 / (1.0 + np.exp(-x.astype(np.float64)))
    return lambda: float(log_loss(y, probs, labels=[0, 1]))


def _memory_read(x, y):
    return lambda: float(np.max(x))


def _array_cases(loss_name, jax_build, numpy_build, sklearn_build) -> dict:
    return {
        "fastxent": _fastxent(loss_name),
        "torch.compile": _torch(loss_name, compiled=True),
        "jax": jax_build("jax"),
        "optax": jax_build("optax"),
        "torch": _torch(loss_name, compiled=False),
        "numpy": numpy_build,
        "sklearn": sklearn_build,
        "memory_read": _memory_read,
    }


# ---- files: FileInputs -> callable ----------------------------------------------------------


def _score(source_of, **options):
    """fastxent scoring ``source_of(f)`` (the file's path, or its rows read into memory before
    timing) with ``options`` (a callable option is given the inputs)."""

    def build(f: FileInputs):
        import fastxent as fx

        source = source_of(f)
        chosen = {k: v(f) if callable(v) else v for k, v in options.items()}
        return lambda: fx.score(source, target="label", logits=f.logits, **chosen)

    return build


def _score_file(**options):
    return _score(lambda f: f.path, **options)


def _report_file(f: FileInputs):
    import fastxent as fx

    out = f.scratch / "report"
    return lambda: fx.report(f.path, out=out, by=f.key, target="label", logits=f.logits)


def _pyarrow_decode(f: FileInputs):
    import pyarrow.parquet as pq

    return lambda: pq.read_table(f.path, columns=list(f.columns)).num_rows


def _polars_decode(f: FileInputs):
    import polars as pl

    return lambda: pl.read_parquet(f.path, columns=list(f.columns)).height


def _polars_row_groups(f: FileInputs):
    """Polars decoding one row group at a time, as a scorer with bounded memory would have to use
    it (a slice inside a row group decodes the group's earlier pages again)."""
    import polars as pl
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(f.path).metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    starts = np.cumsum([0, *sizes[:-1]])
    frame = pl.scan_parquet(f.path, glob=False).select(list(f.columns))
    return lambda: sum(frame.slice(int(s), n).collect().height for s, n in zip(starts, sizes, strict=True))


def _duckdb_decode(f: FileInputs):
    import duckdb

    select = ", ".join(f'"{c}"' for c in f.columns)
    return lambda: duckdb.sql(f"select {select} from read_parquet('{f.path}')").arrow().read_all().num_rows


def _polars_binary_loss():
    import polars as pl

    x, y = pl.col("logits").cast(pl.Float64), pl.col("label").cast(pl.Float64)
    return pl, ((1 - y) * x + (-x).clip(lower_bound=0) + (-x.abs()).exp().log1p()).mean().alias("loss")


#: The binary loss from logits in DuckDB SQL, as a user would write it.
BINARY_LOSS_SQL = "avg((1 - label) * logits + greatest(-logits, 0) + ln(1 + exp(-abs(logits))))"


def _polars_expression(f: FileInputs):
    pl, loss = _polars_binary_loss()
    return lambda: pl.scan_parquet(f.path).select(loss).collect().item()


def _duckdb_sql(f: FileInputs):
    import duckdb

    return lambda: duckdb.sql(f"select {BINARY_LOSS_SQL} from read_parquet('{f.path}')").fetchall()[0][0]


def _polars_group_by(f: FileInputs):
    pl, loss = _polars_binary_loss()
    return lambda: pl.scan_parquet(f.path).group_by(f.key).agg(loss).collect()


def _duckdb_group_by(f: FileInputs):
    import duckdb

    sql = f"select {f.key}, {BINARY_LOSS_SQL} from read_parquet('{f.path}') group by {f.key}"
    return lambda: duckdb.sql(sql).fetchall()


def _table(f: FileInputs):
    """The file's label, logits and key columns as a pyarrow Table in memory (not timed)."""
    import pyarrow.parquet as pq

    return pq.read_table(f.path, columns=[*f.columns, *([f.key] if f.key else [])])


def _polars_table_group_by(f: FileInputs):
    """Polars' group-by of the binary loss over a DataFrame in memory."""
    pl, loss = _polars_binary_loss()
    frame = pl.from_arrow(_table(f))
    return lambda: frame.group_by(f.key).agg(loss)


def _duckdb_table_group_by(f: FileInputs):
    """DuckDB's group-by of the binary loss over a pyarrow Table in memory (scanned in place)."""
    import duckdb

    connection = duckdb.connect()
    connection.register("rows", _table(f))
    sql = f"select {f.key}, {BINARY_LOSS_SQL} from rows group by {f.key}"
    return lambda: connection.sql(sql).fetchall()


def _mapped_read(f: FileInputs):
    """``np.max`` over the logits of a memory-mapped Arrow IPC file: the memory-read floor."""
    import pyarrow as pa

    table = pa.ipc.open_file(pa.memory_map(f.path)).read_all()
    values = [np.asarray(chunk.flatten()) for chunk in table[f.logits].chunks]
    return lambda: max(float(v.max()) for v in values)


CASES = {
    "cross_entropy": _array_cases("cross_entropy", _jax_multiclass, _numpy_multiclass, _sklearn_multiclass),
    "binary_cross_entropy_with_logits": _array_cases(
        "binary_cross_entropy_with_logits", _jax_binary, _numpy_binary, _sklearn_binary
    ),
    "file": {
        "fastxent": _score_file(),
        "pyarrow decode": _pyarrow_decode,
        "polars decode": _polars_decode,
        "polars row groups": _polars_row_groups,
        "duckdb decode": _duckdb_decode,
        "polars expression": _polars_expression,
        "duckdb sql": _duckdb_sql,
        "memory_read": _mapped_read,
    },
    "group_by": {
        "fastxent": _score_file(group_by=lambda f: f.key),
        "polars": _polars_group_by,
        "duckdb": _duckdb_group_by,
    },
    "losses_to": {"fastxent": _score_file(losses_to=lambda f: str(f.scratch / "losses.parquet"), keep="id")},
    "table": {"fastxent": _score(_table)},
    "table_group_by": {
        "fastxent": _score(_table, group_by=lambda f: f.key),
        "polars": _polars_table_group_by,
        "duckdb": _duckdb_table_group_by,
    },
    "report": {"fastxent": _report_file},
}

#: Methods that compute no loss: they read what fastxent reads, the floor its time is measured against.
FLOORS = frozenset({"memory_read", "pyarrow decode", "polars decode", "polars row groups", "duckdb decode"})


def comparable(result) -> float | dict[str, float]:
    """The loss a call returned, or its groups' losses (``{key as text: loss}``), whatever the
    method: a float, a fastxent ``Score``, a report document, a Polars frame or DuckDB rows."""
    groups = getattr(result, "groups", None)
    if groups:
        return {str(key): score.loss for key, score in groups.items()}
    if hasattr(result, "loss"):
        return float(result.loss)
    if isinstance(result, dict):  # fx.report's document: one entry per group of ``by``
        return {str(entry["name"]): entry["loss"] for entry in result["entries"]}
    if hasattr(result, "rows"):  # a Polars frame of (key, loss)
        return {str(key): float(loss) for key, loss in result.rows()}
    if isinstance(result, list):  # DuckDB's rows of (key, loss)
        return {str(key): float(loss) for key, loss in result}
    return float(result)
