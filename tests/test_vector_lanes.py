"""The float32 kernels on the rows that stress them, and on every vector width the CPU may offer.

Multiclass rows sum ``exp(x - m)`` in float32 partial sums that leave out the maximum's own
``exp(0)``, in whole 16-class vectors and a masked last one (kernels/row_vectors.py); the
binary loop keeps its losses in float32. Each row must still be within 1e-6 relative of the exact
loss (1e-12 for float64 input), however confident, whatever C and wherever its maxima, ties and
non-finite values fall; and so on an AVX2-only CPU and with Intel's AVX-512 tuning, compiled in
a child process.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pytest
from llvmlite import binding

import fastxent as fx
from fastxent.kernels import reference as ref

RTOL = {np.float32: 1e-6, np.float64: 1e-12}
CLASS_COUNTS = [2, 7, 15, 16, 17, 31, 100, 512, 513, 1000, 4099]


def exact_losses(x, y):
    """Per-row cross-entropy of class-index targets, exact to float64 rounding however small:
    ``d_y + log1p(sum of exp(x_c - m) over all but the first maximum)``."""
    x = x.astype(np.float64)
    m = x.max(axis=1, keepdims=True)
    terms = np.exp(x - m)
    terms[np.arange(len(x)), np.argmax(x, axis=1)] = 0.0
    rows = np.arange(len(y))
    return (m[:, 0] - x[rows, y]) + np.log1p(terms.sum(axis=1))


def confident_rows(rng, n, c, dtype):
    """Rows whose target is the maximum by 16 to 30: losses from ~1e-7 down to ~1e-13."""
    x = rng.normal(0.0, 2.0, (n, c))
    y = rng.integers(0, c, n)
    x[np.arange(n), y] = x.max(axis=1) + rng.uniform(16.0, 30.0, n)
    return x.astype(dtype), y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", CLASS_COUNTS)
def test_confident_rows_keep_their_relative_precision(c, dtype):
    rng = np.random.default_rng(c)
    x, y = confident_rows(rng, 300, c, dtype)
    want = exact_losses(x, y)
    assert want.max() < 1e-5 and want.min() < 1e-9  # confident indeed
    for layout in (x, np.asfortranarray(x)):  # row kernels and class-by-class kernels
        got = fx.cross_entropy(layout, y, reduction="none")
        np.testing.assert_allclose(got, want, rtol=RTOL[dtype], atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("gap", [0.05, 0.7, 3.0, 17.3])
@pytest.mark.parametrize("c", [17, 100, 513, 32000])
def test_equal_terms_sum_within_the_promise(c, gap, dtype):
    # every other class at m - gap: the float32 partial sums add one value hundreds of times,
    # the order in which rounding errors drift instead of cancelling
    x = np.full((4, c), -gap, dtype=dtype)
    y = np.array([0, 1, c - 1, c // 2])
    x[np.arange(4), [0, 5, c - 1, c - 2]] = 0.0  # the maximum in the vectors and in the tail
    want = exact_losses(x, y)
    for layout in (x, np.asfortranarray(x)):
        got = fx.cross_entropy(layout, y, reduction="none")
        np.testing.assert_allclose(got, want, rtol=RTOL[dtype], atol=0)


@pytest.mark.parametrize("c", [5, 17, 100, 1000])
def test_ties_anywhere_count_once_each_and_predict_the_first(c):
    rng = np.random.default_rng(c)
    x = rng.normal(0.0, 1.0, (6, c)).astype(np.float32)
    top = np.float32(x.max() + 1.0)
    ties = [(0, c - 1), (c - 2, c - 1), (1, 2), (0, c // 2), (c - 1,), (0, 1, c - 1)]
    for r, where in enumerate(ties):
        x[r, list(where)] = top
    y = np.array([c - 1, c - 2, 2, 0, c - 1, 1])
    want = exact_losses(x, y)
    for layout in (x, np.asfortranarray(x)):
        np.testing.assert_allclose(fx.cross_entropy(layout, y, reduction="none"), want, rtol=1e-6)
        acc = fx.Accumulator()
        acc.update(layout, y)
        correct = int(np.sum(np.argmax(x, axis=1) == y))
        assert correct == 3  # rows 1, 3 and 4 predict their target (the first of the ties)
        assert acc.result().accuracy == correct / len(y)


@pytest.mark.parametrize("c", [7, 16, 17, 100])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_logits_anywhere_behave_as_torch(c, dtype):
    inf, nan = np.inf, np.nan
    rng = np.random.default_rng(c)
    x = rng.normal(0.0, 1.0, (8, c)).astype(dtype)
    x[0, 0] = inf  # +inf in the vectors: NaN (inf - inf)
    x[1, c - 1] = inf  # ... and in the tail
    x[2, c // 2] = nan
    x[3, :] = -inf  # all -inf: NaN
    x[4, c - 1] = -inf  # a -inf target: inf
    x[5, 0] = -inf  # a -inf elsewhere: finite
    x[6, c - 1] = nan
    y = np.array([1 % c, 0, 0, 0, c - 1, c - 1, 0, 0])
    want = ref.cross_entropy(x, y, reduction="none")
    for layout in (x, np.asfortranarray(x)):
        got = fx.cross_entropy(layout, y, reduction="none")
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        assert np.isnan(got[[0, 1, 2, 3, 6]]).all() and got[4] == inf
        finite = np.isfinite(want)
        np.testing.assert_allclose(got[finite], want[finite], rtol=RTOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_logits_of_every_size(dtype):
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.normal(0, 3, 3000), rng.uniform(-100, 100, 3000), [0, -0.0, 1e-30, 87.5, -88]])
    t = np.concatenate([rng.integers(0, 2, 6000), [1, 0, 1, 1, 0]]).astype(dtype)
    t[::7] = 0.3  # soft targets
    x = x.astype(dtype)
    want = ref.binary_cross_entropy_with_logits(x, t, reduction="none")
    got = fx.binary_cross_entropy_with_logits(x, t, reduction="none")
    # float32 flushes softplus tails below exp(-87) = 1.6e-38 to 0 (a subnormal would hold them
    # to a few digits at best)
    kept = want > (np.exp(-87.0) if dtype == np.float32 else 0)
    np.testing.assert_allclose(got[kept], want[kept], rtol=RTOL[dtype], atol=0)
    assert ((got[~kept] >= 0) & (got[~kept] <= want[~kept])).all()
    acc = fx.Accumulator(kind="binary")
    acc.update(x, t)
    assert acc.result().accuracy == np.mean((x > 0) == (t > 0.5))


# A child process scores the cases with the kernels of one CPU path: another CPU's, compiled in
# a cache of their own, or the host's own from the suite's cache where the host is that path.
# The assembly it counts is of the row kernels compiled again there without the cache: code
# loaded from a cache cannot be inspected.
CHILD = textwrap.dedent(
    """
    import json, sys
    import os
    import numba
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    import fastxent as fx
    from fastxent.kernels import binary, multiclass

    cases = np.load(sys.argv[1])
    out = {}
    for name in ("x32", "x64"):
        x, y = cases[name], cases["y"]
        out[name] = fx.cross_entropy(x, y, reduction="none").tolist()
        out[name + "_columns"] = fx.cross_entropy(np.asfortranarray(x), y, reduction="none").tolist()
    out["binary"] = fx.binary_cross_entropy_with_logits(cases["b"], cases["t"], reduction="none").tolist()
    # rows of more classes than the two-tier sums start at: summed plain first
    out["wide"] = fx.cross_entropy(cases["wide"], cases["yw"], reduction="none").tolist()
    for c in (3, 10, 16):  # the narrow path: 16 rows transposed at a time, scored class by class
        out[f"narrow{c}"] = fx.cross_entropy(cases[f"narrow{c}"], cases["yn"] % c, reduction="none").tolist()
    for ngroups in (3, 9):  # a few groups: partitioned by the fold (packed on AVX-512, permuted on AVX2)
        table = pa.table({"label": cases["t"], "logits": cases["b"], "key": cases["yn"] % ngroups})
        grouped = fx.score(table, target="label", logits="logits", group_by="key", batch_rows=300)
        out[f"groups{ngroups}"] = {str(k): g.loss for k, g in grouped.groups.items()}
    x32 = cases["x32"]  # predictions: each row's first maximum, 16 classes a step
    rows = pa.FixedSizeListArray.from_arrays(pa.array(x32.reshape(-1)), x32.shape[1])
    losses = os.path.join(os.path.dirname(sys.argv[1]), "losses.parquet")
    fx.score(pa.table({"label": cases["y"], "x": rows}), target="label", logits="x", losses_to=losses)
    out["predicted"] = pq.read_table(losses)["predicted"].to_pylist()
    asm = ""
    drivers = (multiclass.INDEX_TARGET, multiclass.INDEX_TARGET_COLUMNS, binary.BINARY)
    # the float32 logit rows' own functions, called (not inlined) from the drivers
    float32_rows = (multiclass.corrected_float32_rows, multiclass.tiered_float32_rows)
    for kernel in (*(d.rowwise[0] for d in drivers), *float32_rows):
        uncached = numba.njit(**{**kernel.targetoptions, "cache": False})(kernel.py_func)
        for signature in kernel.signatures:
            uncached.compile(signature)
        asm += "".join(uncached.inspect_asm().values())
    out["zmm"], out["ymm"] = asm.count("zmm"), asm.count("ymm")
    print(json.dumps(out))
    """
)

#: Haswell's features: AVX2 and FMA, no AVX-512 (Numba would otherwise take the host's).
AVX2_FEATURES = (
    "+64bit,+avx,+avx2,+bmi,+bmi2,+cmov,+cx16,+cx8,+f16c,+fma,+fsgsbase,+fxsr,+invpcid,+lzcnt,"
    "+mmx,+movbe,+pclmul,+popcnt,+rdrnd,+sahf,+sse,+sse2,+sse3,+sse4.1,+sse4.2,+ssse3,+xsave,+xsaveopt"
)
HOST_FEATURES = binding.get_host_cpu_features().flatten().split(",")
CPU_PATHS = {
    # an AVX2 host without AVX-512 runs the AVX2 path natively: its own kernels, from the suite's
    # cache (compiling all of them again for Haswell took 98 of the suite's 735 s on a Zen 3)
    "avx2": (
        {"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": AVX2_FEATURES}
        if "+avx512f" in HOST_FEATURES
        else {},
        "+avx2",
    ),
    # Intel's server tuning prefers 256-bit vectors; the kernels ask for 512 (jit.wide_vectors)
    "avx512-intel-tuning": ({"NUMBA_CPU_NAME": "icelake-server"}, "+avx512f"),
}


@pytest.mark.parametrize("path", list(CPU_PATHS))
def test_each_vector_width_scores_within_the_promise(path, tmp_path):
    env_extra, needed = CPU_PATHS[path]
    if needed not in HOST_FEATURES:
        pytest.skip(f"this CPU cannot run {path} code")
    rng = np.random.default_rng(13)
    x, y = confident_rows(rng, 200, 100, np.float64)
    x[100:] = rng.normal(0, 4, (100, 100))  # half confident, half spread
    b = np.concatenate([rng.normal(0, 4, 500), rng.uniform(-80, 80, 500)]).astype(np.float32)
    t = rng.integers(0, 2, 1000).astype(np.float32)
    narrow = {f"narrow{c}": rng.normal(0, 4, (1000, c)).astype(np.float32) for c in (3, 10, 16)}
    yn = rng.integers(0, 48, 1000)
    wide, yw = confident_rows(rng, 200, 300, np.float32)
    wide[100:] = rng.normal(0, 4, (100, 300))
    cases = tmp_path / "cases.npz"
    np.savez(cases, x32=x.astype(np.float32), x64=x, y=y, b=b, t=t, yn=yn, wide=wide, yw=yw, **narrow)
    env = {**os.environ, **env_extra}
    if env_extra:  # another CPU's kernels: a cache of their own
        env["NUMBA_CACHE_DIR"] = str(tmp_path / "cache")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(cases)], env=env, capture_output=True, text=True, check=True
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if path == "avx2":
        assert out["zmm"] == 0 and out["ymm"] > 0
    else:
        assert out["zmm"] > 0
    for name, dtype in (("x32", np.float32), ("x64", np.float64)):
        want = exact_losses(x.astype(dtype), y)
        for suffix in ("", "_columns"):
            np.testing.assert_allclose(out[name + suffix], want, rtol=RTOL[dtype], atol=0)
    np.testing.assert_allclose(out["wide"], exact_losses(wide, yw), rtol=RTOL[np.float32], atol=0)
    want = ref.binary_cross_entropy_with_logits(b, t, reduction="none")
    np.testing.assert_allclose(out["binary"], want, rtol=1e-6)
    for name, rows in narrow.items():
        want = exact_losses(rows, yn % rows.shape[1])
        np.testing.assert_allclose(out[name], want, rtol=RTOL[np.float32], atol=0)
    assert out["predicted"] == np.argmax(x.astype(np.float32), axis=1).tolist()
    for ngroups in (3, 9):  # the same bits as this process's fold, whatever its partition
        table = pa.table({"label": t, "logits": b, "key": yn % ngroups})
        here = fx.score(table, target="label", logits="logits", group_by="key", batch_rows=300)
        assert out[f"groups{ngroups}"] == {str(k): g.loss for k, g in here.groups.items()}
