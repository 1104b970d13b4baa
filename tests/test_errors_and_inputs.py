"""Clear errors for bad input, and the input forms (Arrow, read-only, views, __array__)."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import fastxent as fx
from fastxent.kernels.jit import SOURCES_STAMP, choose_cache_dir, drop_stale_cache, sources_digest

X = np.array([[1.0, 2.0, 0.1], [0.5, 0.2, 0.3]], np.float32)


def test_target_out_of_range_names_row_and_fix():
    with pytest.raises(ValueError, match=r"class 4 at row 1.*3 classes.*ignore_index=4"):
        fx.cross_entropy(X, [0, 4])


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: fx.cross_entropy(X, [0, -2]), "class -2 at row 1"),
        (lambda: fx.cross_entropy(X, np.array([0.0, 1.0])), "holds floats"),
        (lambda: fx.cross_entropy(X, [0, 1, 2]), "must have shape \\(2,\\)"),
        (lambda: fx.cross_entropy(X, [0, 1], weight=[1.0, 2.0]), "2 values but `input` has 3"),
        (lambda: fx.cross_entropy(X, [0, 1], label_smoothing=-0.1), r"\[0, 1\]"),
        (lambda: fx.cross_entropy(X, [0, 1], reduction="avg"), "`reduction`"),
        (lambda: fx.cross_entropy(X, np.zeros((2, 1, 1), int)), "must have shape"),
        (lambda: fx.cross_entropy(X.astype(int), [0, 1]), "float16, float32 or float64"),
        (lambda: fx.binary_cross_entropy(np.array([0.5, 1.2]), np.array([1.0, 0.0])), "1.2"),
        (lambda: fx.binary_cross_entropy(np.array([0.5, np.nan]), np.array([1.0, 0.0])), "nan"),
        (lambda: fx.binary_cross_entropy(np.array([0.5, 0.2]), np.array([1.0, 2.0])), "target"),
        (lambda: fx.binary_cross_entropy_with_logits(X, X, pos_weight=[1.0, 2.0]), "pos_weight"),
        (lambda: fx.log_loss([0, 1], [0.5, np.nan]), "Input contains NaN"),
        (lambda: fx.log_loss([1, 1], [0.2, 0.3]), "only one label"),
        (lambda: fx.log_loss([0, 1, 2], [0.2, 0.3]), "inconsistent numbers of samples"),
        (lambda: fx.log_loss([0, 1], [0.2, 1.3]), "greater than 1"),
        (lambda: fx.log_loss([0, 3], [0.2, 0.3], labels=[0, 1]), "not belonging"),
        (lambda: fx.cross_entropy(X, [0, 1], device="cuda"), "device='cuda'"),
        (lambda: fx.cross_entropy(X, X, ignore_index=0), "soft"),
    ],
)
def test_bad_input_raises_builtin_derived_error(call, match):
    with pytest.raises((ValueError, TypeError), match=match) as info:
        call()
    assert isinstance(info.value, fx.FastxentError)


def test_arrow_forms_are_read_in_place():
    flat = pa.array(X.ravel())
    fixed = pa.FixedSizeListArray.from_arrays(flat, 3)
    ragged = pa.array([[1.0, 2.0], [1.0]])
    want = fx.cross_entropy(X, [1, 2])
    assert fx.cross_entropy(fixed, pa.array([1, 2])) == want
    assert fx.cross_entropy(pa.chunked_array([fixed.slice(0, 1), fixed.slice(1)]), [1, 2]) == want
    listed = pa.array(X.tolist(), pa.list_(pa.float32()))
    assert fx.cross_entropy(listed.slice(0), [1, 2]) == want
    tensor = pa.FixedShapeTensorArray.from_numpy_ndarray(X)
    assert fx.cross_entropy(tensor, [1, 2]) == want
    with pytest.raises(ValueError, match="ragged"):
        fx.cross_entropy(ragged, [0, 0])
    with pytest.raises(ValueError, match="nulls"):
        fx.cross_entropy(X, pa.array([1, None]))
    # a slice with an offset: flatten() honours it (.values would not)
    assert fx.cross_entropy(fixed.slice(1), [2]) == fx.cross_entropy(X[1:], [2])


def test_read_only_and_strided_inputs():
    ro = X.copy()
    ro.setflags(write=False)
    assert fx.cross_entropy(ro, [1, 2]) == fx.cross_entropy(X, [1, 2])
    wide = np.repeat(X, 2, axis=1)[:, ::2]
    assert fx.cross_entropy(wide, np.array([1, 2], np.int8)) == fx.cross_entropy(X, [1, 2])
    assert fx.cross_entropy(np.asfortranarray(X), [1, 2]) == fx.cross_entropy(X, [1, 2])


def test_cache_falls_back_when_package_and_home_are_read_only(tmp_path):
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("")
    fallback = choose_cache_dir(package_dir=a_file, user_dir=a_file / "cache")
    assert fallback is not None and "fastxent-numba-cache" in fallback.name
    assert choose_cache_dir(package_dir=tmp_path, user_dir=a_file) is None


def test_package_dir_is_real():
    assert Path(fx.__file__).parent.name == "fastxent"


def test_cached_kernels_are_dropped_when_any_kernel_source_changes(tmp_path):
    sources, cache = tmp_path / "kernels", tmp_path / "cache"
    sources.mkdir()
    (sources / "blocks.py").write_text("driver = 1\n")
    (sources / "vmath.py").write_text("helper = 1\n")
    cache.mkdir()
    cached = [cache / "blocks.driver-10.py311.nbi", cache / "blocks.driver-10.py311.1.nbc"]
    other = cache / "someone_else.f-1.py311.nbi"
    for path in [*cached, other]:
        path.write_bytes(b"x")
    first = sources_digest(sources)
    assert drop_stale_cache(cache, first, sources)  # no stamp yet: stale
    assert not any(p.exists() for p in cached) and other.exists()
    assert (cache / SOURCES_STAMP).read_text() == first
    cached[0].write_bytes(b"x")
    assert not drop_stale_cache(cache, first, sources) and cached[0].exists()
    (sources / "vmath.py").write_text("helper = 2\n")  # a helper in *another* file changes
    second = sources_digest(sources)
    assert second != first
    assert drop_stale_cache(cache, second, sources) and not cached[0].exists()


@pytest.mark.parametrize("bad", [1.5, "1", True, None])
def test_score_and_accumulator_take_only_integer_ignore_index(bad):
    table = pa.table({"label": [0, 1], "logits": [[0.1, 0.2], [0.3, 0.1]]})
    with pytest.raises(fx.InputTypeError, match="`ignore_index` must be an integer"):
        fx.score(table, target="label", logits="logits", ignore_index=bad)
    with pytest.raises(TypeError, match="`ignore_index` must be an integer"):
        fx.Accumulator(ignore_index=bad)
