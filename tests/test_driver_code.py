"""What a block driver's compiled code holds (kernels/blocks.py, jit.py): the row function and
a block's sums are called, not inlined, so each is optimised and emitted once per driver."""

import re

import numpy as np

from fastxent.kernels.blocks import _blocks_template, close_segment, no_block_sums
from fastxent.kernels.codes import LOGITS, N_COUNTS, N_SUMS
from fastxent.kernels.jit import bound_copy, never_inlined, strict_jit, vector_jit
from fastxent.kernels.multiclass import index_target_rows


def _definition(ir: str, name: str) -> str:
    """The ``define`` line of the function of ``ir`` whose mangled name holds ``name`` (not its
    Python and C wrappers)."""
    lines = [
        line
        for line in ir.splitlines()
        if line.startswith("define") and name in line and "@_ZN7cpython" not in line and "@cfunc" not in line
    ]
    assert len(lines) == 1, lines
    return lines[0]


def _attributes(ir: str, definition: str) -> str:
    """The attributes of a ``define`` line, its ``#N`` group spelled out."""
    group = re.search(r"#(\d+)", definition)
    spelled = re.search(rf"^attributes #{group.group(1)} = {{(.*)}}$", ir, re.MULTILINE) if group else None
    return definition + (spelled.group(1) if spelled else "")


def test_never_inlined_marks_the_function_noinline():
    @strict_jit(forceinline=False, cache=False)
    def cold(x):
        never_inlined()
        return x + 1.0

    @strict_jit(cache=False)
    def caller(x):
        return cold(x) * 2.0

    assert caller(1.0) == 4.0
    ir = caller.inspect_llvm(caller.signatures[0])
    cold_ir = cold.inspect_llvm(cold.signatures[0])
    assert "noinline" in _attributes(cold_ir, _definition(cold_ir, "cold"))
    # the caller calls it rather than holding its body
    assert re.search(r"call .*@\S*cold", ir)


def test_a_driver_calls_its_row_function_and_block_sums():
    # a driver compiled here, not loaded from the cache (whose code cannot be inspected)
    probe = vector_jit(
        bound_copy(_blocks_template, "probe_blocks", ROWS=index_target_rows, BLOCK_SUMS=no_block_sums),
        cache=False,
    )
    n = 2048 + 5
    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, (n, 20)).astype(np.float32)
    y = rng.integers(0, 20, n).astype(np.int64)
    args = (x, y, np.zeros(0), np.zeros(0), -100, 0.0, LOGITS, 0.0, 0.0)
    sums, counts = np.zeros((2, N_SUMS)), np.zeros((2, N_COUNTS), dtype=np.int64)
    edges = np.zeros(2 * 2048), np.zeros(2 * 2048)
    none = np.zeros(0), np.zeros(0), np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0)
    probe(args, n, 0, sums, counts, *edges, *none)
    assert counts[:, 0].tolist() == [2048, 5] and np.isfinite(sums[0]).all()

    ir = probe.inspect_llvm(probe.signatures[0])
    calls = re.findall(r"call [^@]*@(\S+?)\(", ir)
    assert any("index_target_rows" in callee for callee in calls)
    assert any("close_segment" in callee for callee in calls)
    segment = _definition(ir, "close_segment")
    assert "noinline" in _attributes(ir, segment)
    assert close_segment.targetoptions["forceinline"] is False


def test_every_family_binds_row_functions_that_are_called_not_inlined():
    # the check above on one driver, made for every family's drivers without compiling them: a
    # row function or fused block sums left to inherit ``forceinline=True`` from the driver would
    # be optimised and emitted again at each call site (the cold compile grew by 40% that way)
    from fastxent.kernels import binary, multiclass

    families = [
        binary.BINARY,
        multiclass.INDEX_TARGET,
        multiclass.INDEX_TARGET_STATISTICS,
        multiclass.INDEX_TARGET_COLUMNS,
        multiclass.SOFT_TARGET,
    ]
    bound = set()
    for drivers in families:
        for twin in (*drivers.blocks, *drivers.rowwise):
            names = twin.py_func.__globals__
            for callee in (names["ROWS"], names["BLOCK_SUMS"]):
                if callee is not no_block_sums:
                    assert callee.targetoptions.get("forceinline") is False, callee.py_func.__qualname__
                    bound.add(callee.py_func.__qualname__)
    assert {"binary_rows", "binary_block_sums", "index_target_rows", "index_target_columns"} <= bound
    assert {"index_target_statistics", "soft_target_rows"} <= bound
