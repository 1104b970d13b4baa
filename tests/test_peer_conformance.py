"""What the peers' own test suites expect of fastxent (issue 14), as literal values.

Every number here was computed with torch 2.13 or scikit-learn 1.9 and pasted in, so these tests
run without either library installed.
"""

import math
import re

import numpy as np
import pytest

import fastxent as fx

F32, F64 = np.float32, np.float64


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize(
    "call, shape",
    [
        (lambda x, t, **kw: fx.nll_loss(x((0, 3, 5)), t((0, 5)), **kw), (0, 5)),
        (lambda x, t, **kw: fx.cross_entropy(x((0, 3, 5)), t((0, 5)), **kw), (0, 5)),
        (lambda x, t, **kw: fx.cross_entropy(x((0, 3, 2, 4)), t((0, 2, 4)), **kw), (0, 2, 4)),
        (lambda x, t, **kw: fx.cross_entropy(x((0, 3, 5)), x((0, 3, 5)), **kw), (0, 5)),
        (lambda x, t, **kw: fx.cross_entropy(x((2, 3, 0)), t((2, 0)), label_smoothing=0.1, **kw), (2, 0)),
        (lambda x, t, **kw: fx.binary_cross_entropy(x((0, 3, 5)), x((0, 3, 5)), **kw), (0, 3, 5)),
        (lambda x, t, **kw: fx.binary_cross_entropy_with_logits(x((2, 0, 4)), x((2, 0, 4)), **kw), (2, 0, 4)),
        (
            lambda x, t, **kw: fx.binary_cross_entropy_with_logits(
                x((0, 4)), x((0, 4)), pos_weight=np.ones(4), **kw
            ),
            (0, 4),
        ),
    ],
)
def test_empty_input_gives_torch_shapes_and_values(call, shape, dtype):
    def x(s):
        return np.zeros(s, dtype)

    def t(s):
        return np.zeros(s, np.int64)

    out = call(x, t, reduction="none")
    assert out.shape == shape and out.dtype == dtype
    assert math.isnan(call(x, t, reduction="mean"))  # torch: 0/0
    assert call(x, t, reduction="sum") == 0.0


def test_empty_kdim_reproducer():
    got = fx.nll_loss(np.zeros((0, 3, 5), np.float32), np.zeros((0, 5), np.int64), reduction="none")
    assert got.shape == (0, 5) and got.dtype == np.float32


TORCH = {
    "bcel_pw_full_mean_float32": 14.028042793273926,
    "bcel_pw_full_sum_float32": 84.16825866699219,
    "bcel_pw_rows_mean_float32": 10.314078330993652,
    "bcel_pw_rows_sum_float32": 61.88446807861328,
    "bcel_pw_row_mean_float32": 27.130327224731445,
    "bcel_pw_row_sum_float32": 162.78196716308594,
    "bcel_pw_rows_equal_mean_float32": 27.130327224731445,
    "bcel_pw_rows_equal_sum_float32": 162.78196716308594,
    "bcel_pw_full_mean_float64": 14.028043364396098,
    "bcel_pw_full_sum_float64": 84.16826018637659,
    "bcel_pw_rows_mean_float64": 10.314078024945134,
    "bcel_pw_rows_sum_float64": 61.88446814967081,
    "bcel_pw_row_mean_float64": 27.13032763754278,
    "bcel_pw_row_sum_float64": 162.7819658252567,
    "bcel_pw_rows_equal_mean_float64": 27.13032763754278,
    "bcel_pw_rows_equal_sum_float64": 162.7819658252567,
    "bcel_pw_zeros_sum": 2.0794415416798357,
    "ce_bf16": 0.7283850908279419,
    "bce_bf16": 0.42283710837364197,
    "ce_legacy_mean": 0.47424832695990754,
    "ce_legacy_sum": 1.4227449808797226,
    "ce_weight_f32": 0.350700318813324,
    "be_ce": 2.199291706085205,
    "be_bcel": 2.097959518665158,
    "be_nll_sum": 1.5,
}
BCEL_NONE_WEIGHTED = {
    F32: [[0.7615680694580078, 0.09717464447021484, 1.9326000213623047], [20.0, 20.0, 1.3862943649291992]],
    F64: [[0.761568066257835, 0.09717470314748411, 1.9326001588682773], [20.0, 20.0, 1.3862943611198906]],
}
CE_LEGACY_NONE = [0.41703001627783354, 0.93983106084446, 0.06588390375742911]
SKLEARN = {
    "column": 0.4003674356962309,
    "column_3": 0.47570545188004854,
    "column_strings": 0.2899092476264711,
    "indicator": 1.0601317681000455,
    "indicator_float32": 1.0601317882537842,
    "indicator_weighted": 0.6416376597071276,
    "indicator_twos_sum": 4.240527072400182,
    "indicator_zero_row": 0.6108604879161034,
    "indicator_two_columns_1d": 0.39925384810888576,
    "indicator_clipped": 18.623813096721545,
    "float16_binary": 6.9296875,
    "float16_multiclass": 0.91650390625,
    "int_probabilities": 36.04365338911715,
    "list_clipped": 18.021826694558577,
    "float32_clipped": 7.971192359924316,
    "negative_weights_sum": -0.9808292530117264,
    "big_endian_binary": 0.28990925800406553,
    "big_endian_weighted": 1.0986122886681098,
    "torch_float32": 0.3635480271370805,
    "torch_float32_clipped": 36.04365338911715,
    "torch_float64": 0.3635480396729776,
}
DTYPES = {F32: ("float32", 1e-6), F64: ("float64", 1e-12)}
BL = [[2.0, -3.0, 0.5], [-40.0, 40.0, 0.0]]
BT = [[1.0, 0.0, 0.3], [1.0, 0.0, 1.0]]
POS_WEIGHTS = {
    "full": [[3.0, 0.5, 2.0], [1.0, 2.0, 4.0]],
    "rows": [[3.0], [0.5]],
    "row": [[3.0, 0.5, 2.0]],
    "rows_equal": [[3.0, 0.5, 2.0], [3.0, 0.5, 2.0]],
}
P3 = [[0.5, 0.2, 0.3], [0.1, 0.8, 0.1]]
IND = [[1, 0, 1], [0, 1, 0]]


def close(got, want, rtol):
    return math.isclose(got, want, rel_tol=rtol)


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("layout", POS_WEIGHTS)
def test_pos_weight_broadcasts_against_the_input_as_torch(layout, dtype):
    name, rtol = DTYPES[dtype]
    x, t, pw = np.array(BL, dtype), np.array(BT, dtype), np.array(POS_WEIGHTS[layout], dtype)
    for reduction in ("mean", "sum"):
        got = fx.binary_cross_entropy_with_logits(x, t, pos_weight=pw, reduction=reduction)
        assert close(got, TORCH[f"bcel_pw_{layout}_{reduction}_{name}"], rtol), (reduction, got)
    rows = fx.binary_cross_entropy_with_logits(x, t, pos_weight=pw, reduction="none")
    assert rows.shape == x.shape and rows.dtype == dtype
    assert close(float(rows.sum(dtype=np.float64)), TORCH[f"bcel_pw_{layout}_sum_{name}"], rtol)


@pytest.mark.parametrize("dtype", [F32, F64])
def test_per_element_pos_weight_with_row_weight(dtype):
    _, rtol = DTYPES[dtype]
    got = fx.binary_cross_entropy_with_logits(
        np.array(BL, dtype),
        np.array(BT, dtype),
        weight=np.array([[2.0], [0.5]], dtype),
        pos_weight=np.array(POS_WEIGHTS["full"], dtype),
        reduction="none",
    )
    assert got.dtype == dtype
    np.testing.assert_allclose(got, BCEL_NONE_WEIGHTED[dtype], rtol=rtol)


def test_pos_weight_reproducer_and_shapes_torch_refuses():
    x = np.zeros((3, 1))
    got = fx.binary_cross_entropy_with_logits(x, x, pos_weight=np.ones((3, 1)), reduction="sum")
    assert close(got, TORCH["bcel_pw_zeros_sum"], 1e-12)
    x = np.zeros((4, 3))
    for shape in [(4,), (2, 4, 3), (1, 1, 1)]:  # torch: "doesn't match the broadcast shape"
        with pytest.raises(fx.InputValueError, match="does not broadcast to the input's shape"):
            fx.binary_cross_entropy_with_logits(x, x, pos_weight=np.ones(shape))
    with pytest.raises(fx.InputValueError, match=r"`weight` of shape \(2, 4, 3\)"):
        fx.binary_cross_entropy(x, x, weight=np.ones((2, 4, 3)))


def test_log_loss_column_targets():
    got = fx.log_loss([[0], [1], [1], [0]], [[0.2], [0.7], [0.6], [0.4]])
    assert close(got, SKLEARN["column"], 1e-12)
    assert close(fx.log_loss(np.array([[0], [1], [1], [0]]), [0.2, 0.7, 0.6, 0.4]), SKLEARN["column"], 1e-12)
    got = fx.log_loss([[0], [1], [2]], [[0.5, 0.2, 0.3], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    assert close(got, SKLEARN["column_3"], 1e-12)
    assert close(fx.log_loss([["a"], ["b"]], [0.2, 0.7]), SKLEARN["column_strings"], 1e-12)


def test_log_loss_label_indicator_targets():
    assert close(fx.log_loss(IND, P3), SKLEARN["indicator"], 1e-12)
    for y in (np.array(IND, bool), np.array(IND, float), np.array(IND, np.uint8)):
        assert close(fx.log_loss(y, P3), SKLEARN["indicator"], 1e-12)
    assert close(fx.log_loss(IND, np.array(P3, F32)), SKLEARN["indicator_float32"], 1e-6)
    got = fx.log_loss(IND, P3, sample_weight=[1, 3])
    assert close(got, SKLEARN["indicator_weighted"], 1e-12)
    got = fx.log_loss([[2, 0, 2], [0, 2, 0]], P3, normalize=False)  # the values are used as given
    assert close(got, SKLEARN["indicator_twos_sum"], 1e-12)
    got = fx.log_loss([[0, 0, 0], [0, 1, 0], [1, 0, 0]], [[0.5, 0.2, 0.3], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    assert close(got, SKLEARN["indicator_zero_row"], 1e-12)
    assert close(fx.log_loss([[1, 0], [0, 1]], [0.5, 0.9]), SKLEARN["indicator_two_columns_1d"], 1e-12)
    with pytest.warns(UserWarning, match="do not sum to one"):
        got = fx.log_loss(IND, [[0.0, 0.2, 0.3], [0.1, 1.0, 0.1]])
    assert close(got, SKLEARN["indicator_clipped"], 1e-12)


@pytest.mark.parametrize(
    "y, p, kwargs, message",
    [
        (
            [[1, 0, 1], [0, 1, 0]],
            P3,
            {"labels": [0, 1, 2]},
            "The object was not fitted with multilabel input.",
        ),
        ([[0, 1, 2], [2, 1, 0]], P3, {}, "Multioutput target data is not supported with label binarization"),
        (
            [[1.0, 0, 0.5], [0, 1, 0]],
            P3,
            {},
            "Multioutput target data is not supported with label binarization",
        ),
        ([["a", "b"], ["b", "a"]], P3, {}, "Multioutput target data is not supported"),
        ([[1.0, 0, np.nan], [0, 1, 0]], P3, {}, "Input y contains NaN."),
        (
            [[1, 0], [0, 1]],
            P3,
            {},
            "y_true and y_prob contain different number of classes: 2 vs 3. Please provide the true "
            "labels explicitly through the labels argument. Classes found in y_true: [0 1]",
        ),
        (np.zeros((2, 3, 1), int), P3, {}, "Unknown label type"),
    ],
)
def test_log_loss_indicator_errors(y, p, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        fx.log_loss(y, p, **kwargs)


def test_log_loss_dtypes_as_scikit_learn_reads_them():
    # float16 is kept (clipped at its eps, 2**-10) and computed in float32, so the result is
    # -log(2**-10) where scikit-learn, computing in float16, has it rounded to 6.9296875
    got = fx.log_loss([0, 1], np.array([1, 0], np.float16))
    assert got == -math.log(2**-10) and close(got, SKLEARN["float16_binary"], 1e-3)
    p16 = np.array([[0.2, 0.3, 0.5], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]], np.float16)
    assert close(fx.log_loss([0, 1, 2], p16), SKLEARN["float16_multiclass"], 1e-3)
    # integers and lists are read as float64 (eps 2.2e-16), float32 arrays keep float32's eps
    assert close(fx.log_loss([0, 1], np.array([1, 0])), SKLEARN["int_probabilities"], 1e-12)
    assert close(fx.log_loss([0, 1], [0.0, 0.0]), SKLEARN["list_clipped"], 1e-12)
    assert close(fx.log_loss([0, 1], np.array([0.0, 0.0], F32)), SKLEARN["float32_clipped"], 1e-6)


# every `log_loss` pytest.raises(match=...) of scikit-learn 1.9's test_classification.py, and the
# messages of its check_array / _check_sample_weight for the inputs below
SKLEARN_ERRORS = [
    (
        ([2, 2], [[0.2, 0.8], [0.6, 0.4], [0.7, 0.3]]),
        {},
        "Found input variables with inconsistent numbers of samples: [3, 2]",
    ),
    (([0, 1, 0], [0.2, 0.8, 0.6]), {"sample_weight": [1, 2]}, "inconsistent numbers of samples: [3, 3, 2]"),
    (([0, 1], [np.inf, np.inf]), {}, "Input contains infinity or a value too large for dtype('float64')."),
    (
        ([0, 1], np.array([-np.inf, 0.5], F32)),
        {},
        "Input contains infinity or a value too large for dtype('float32').",
    ),
    (([0, 1], [np.inf, np.nan]), {}, "Input contains NaN."),
    (([0, 1], [0.3, 0.5]), {"sample_weight": [1, np.nan]}, "Input sample_weight contains NaN."),
    (
        ([0, 1], [0.3, 0.5]),
        {"sample_weight": np.array([np.inf, 1], F32)},
        "Input sample_weight contains infinity or a value too large for dtype('float32').",
    ),
    (
        ([0, 1], [0.3, 0.5]),
        {"sample_weight": [0, 0]},
        "Sample weights must contain at least one non-zero number.",
    ),
    (
        ([0, 1], [0.3, 0.5]),
        {"sample_weight": [[1], [1]]},
        "Sample weights must be 1D array or scalar, got 2D array. Expected either a scalar value or a 1D "
        "array of length 2.",
    ),
    (
        ([0, 1], [0.3, 0.5]),
        {"sample_weight": 2.0},
        "The 'sample_weight' parameter of log_loss must be an array-like",
    ),
    (
        ([2, 2], [[0.2, 0.8], [0.6, 0.4]]),
        {},
        "y_true contains only one label (2). Please provide the list of all",
    ),
    (
        (["a", "b", "c"], [[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.1, 0.1, 0.8]]),
        {"labels": ["a", "c", "d"]},
        "y_true contains values {'b'} not belonging to the passed labels ['a', 'c', 'd'].",
    ),
    (([0, 1], np.zeros((2, 2, 1))), {}, "Found array with dim 3, while dim <= 2 is required."),
    (([], []), {}, "Found array with 0 sample(s) (shape=(0,)) while a minimum of 1 is required."),
    (([0, 1], np.zeros((2, 0))), {}, "Found array with 0 feature(s) (shape=(2, 0)) while a minimum of 1"),
    (([0, 1], 0.5), {}, "The 'y_proba' parameter of log_loss must be an array-like. Got 0.5 instead."),
]


@pytest.mark.parametrize("args, kwargs, message", SKLEARN_ERRORS)
def test_log_loss_errors_are_scikit_learns(args, kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        fx.log_loss(*args, **kwargs)
    assert isinstance(info.value, fx.FastxentError)


def test_log_loss_sample_weights_as_scikit_learn():
    got = fx.log_loss([0, 1], [0.2, 0.3], sample_weight=[1, -1], normalize=False)  # negative: allowed
    assert close(got, SKLEARN["negative_weights_sum"], 1e-12)
    with pytest.raises(ZeroDivisionError, match="Weights sum to zero, can't be normalized"):
        fx.log_loss([0, 1], [0.3, 0.5], sample_weight=[1, -1])
    with pytest.raises(TypeError, match="`sample_weight` must be numeric"):
        fx.log_loss([0, 1], [0.3, 0.5], sample_weight=["a", "b"])


def test_legacy_size_average_and_reduce_mean_what_they_mean_in_torch():
    x = np.array([[1.0, 2.0, 0.1], [0.5, 0.2, 0.3], [-1.0, 0.0, 3.0]])
    y = np.array([1, 0, 2])
    cases = [
        (dict(size_average=False), "sum", TORCH["ce_legacy_sum"]),
        (dict(size_average=False, reduce=True), "sum", TORCH["ce_legacy_sum"]),
        (dict(size_average=True, reduce=True), "mean", TORCH["ce_legacy_mean"]),
        (dict(reduce=True), "mean", TORCH["ce_legacy_mean"]),
    ]
    for legacy, reduction, want in cases:
        with pytest.warns(UserWarning, match=f"please use reduction='{reduction}' instead"):
            assert close(
                fx.cross_entropy(x, y, reduction="sum" if reduction == "mean" else "mean", **legacy),
                want,
                1e-12,
            )
    for legacy in (dict(reduce=False), dict(size_average=True, reduce=False)):
        with pytest.warns(UserWarning, match="reduction='none'"):
            np.testing.assert_allclose(fx.cross_entropy(x, y, **legacy), CE_LEGACY_NONE, rtol=1e-12)
    logp = np.log(np.full((2, 2), 0.5))
    with pytest.warns(UserWarning, match="reduction='sum'"):
        assert close(fx.nll_loss(logp, [0, 1], size_average=False), 2 * math.log(2), 1e-12)
    p = np.array([0.5, 0.5])
    with pytest.warns(UserWarning, match="reduction='none'"):
        assert fx.binary_cross_entropy(p, p, reduce=False).shape == (2,)
    with pytest.warns(UserWarning, match="reduction='sum'"):
        got = fx.binary_cross_entropy_with_logits(np.zeros(2), np.zeros(2), size_average=False)
    assert close(got, 2 * math.log(2), 1e-12)


def test_float16_weight_with_float32_input_is_accepted():
    # torch refuses the mix; fastxent reads weights as float64, so a float16 weight means its values
    x = np.array([[1.0, 2.0, 0.1], [0.5, 0.2, 0.3], [-1.0, 0.0, 3.0]], F32)
    got = fx.cross_entropy(x, [1, 0, 2], weight=np.array([0.5, 2.0, 1.5], np.float16))
    assert close(got, TORCH["ce_weight_f32"], 1e-6)


def test_torch_tensors_as_users_hold_them():
    torch = pytest.importorskip("torch")
    # values exact in bfloat16, so torch's float32 result on them is the literal
    x = torch.tensor([[1.5, -0.25, 2.0], [0.5, 0.75, -1.0]], requires_grad=True)
    t = torch.tensor([2, 0])
    assert close(fx.cross_entropy(x, t), TORCH["ce_bf16"], 1e-6)  # requires_grad: read detached
    xb = x.detach().bfloat16().requires_grad_()
    assert close(fx.cross_entropy(xb, t), TORCH["ce_bf16"], 1e-6)
    rows = fx.cross_entropy(xb, t, reduction="none")
    assert rows.dtype == np.float32 and rows.shape == (2,)
    p = torch.tensor([[0.5, 0.25, 0.75]], dtype=torch.bfloat16, requires_grad=True)
    assert close(fx.binary_cross_entropy(p, torch.tensor([[1.0, 0.0, 1.0]])), TORCH["bce_bf16"], 1e-6)
    pw = torch.ones((1, 3), dtype=torch.bfloat16)
    got = fx.binary_cross_entropy_with_logits(xb, torch.ones(2, 3), pos_weight=pw, weight=torch.ones(3))
    assert np.isfinite(got)
    # scikit-learn reads torch tensors as float64 (a torch dtype is no NumPy dtype): float64's eps
    # clips, and float32 values summing to one only within float32 rounding draw the warning
    y = torch.tensor([0, 1, 1])
    with pytest.warns(UserWarning, match="do not sum to one"):
        got = fx.log_loss(y, torch.tensor([[0.7, 0.3], [0.2, 0.8], [0.4, 0.6]], requires_grad=True))
    assert close(got, SKLEARN["torch_float32"], 1e-12)
    assert close(
        fx.log_loss(torch.tensor([0, 1]), torch.tensor([1.0, 0.0])), SKLEARN["torch_float32_clipped"], 1e-12
    )
    got = fx.log_loss(y, torch.tensor([0.3, 0.8, 0.6], dtype=torch.float64))
    assert close(got, SKLEARN["torch_float64"], 1e-12)


def test_big_endian_arrays_give_the_native_values():
    x = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]])
    got = fx.cross_entropy(x.astype(">f4"), np.array([0, 2], ">i8"), weight=np.array([1.0, 2.0, 3.0], ">f8"))
    assert close(got, TORCH["be_ce"], 1e-6)
    assert close(fx.cross_entropy(np.zeros((2, 3), F32), np.array([0, 1], ">i8")), math.log(3.0), 1e-6)
    assert close(
        fx.nll_loss(x.astype(">f8"), np.array([1, 2], ">i2"), reduction="sum"), TORCH["be_nll_sum"], 1e-12
    )
    assert close(fx.binary_cross_entropy(np.array([0.5], ">f8"), np.array([1.0])), math.log(2.0), 1e-15)
    got = fx.binary_cross_entropy_with_logits(
        x.astype(">f8"),
        np.array([[1.0, 0, 1], [0, 1, 0.5]], ">f8"),
        weight=np.array([1.0, 2, 3], ">f8"),
        pos_weight=np.array([[2.0], [3.0]], ">f8"),
    )
    assert close(got, TORCH["be_bcel"], 1e-12)
    assert close(fx.log_loss([0, 1], np.array([0.2, 0.7], ">f4")), SKLEARN["big_endian_binary"], 1e-6)
    got = fx.log_loss(
        np.array([0, 1, 2, 1, 0], ">i8"),
        np.full((5, 3), 1 / 3, ">f8"),
        sample_weight=np.arange(1, 6.0).astype(">f8"),
    )
    assert close(got, SKLEARN["big_endian_weighted"], 1e-12)
    acc = fx.Accumulator("multiclass")
    acc.update(x.astype(">f8"), np.array([0, 2], ">i4"), np.array([1.0, 1.0], ">f8"))
    assert acc.result().loss == fx.cross_entropy(x, [0, 2])


@pytest.mark.parametrize(
    "value, error, message",
    [
        (1.5, TypeError, r"`ignore_index` must be an integer, got 1.5 \(float\)"),
        ("1", TypeError, r"`ignore_index` must be an integer, got '1' \(str\)"),
        (True, TypeError, "got the bool True"),
        (None, TypeError, "must be an integer"),
        (2**70, ValueError, "must fit in int64"),
    ],
)
def test_ignore_index_must_be_an_integer_as_in_torch(value, error, message):
    x = np.zeros((2, 3))
    for call in (fx.cross_entropy, fx.nll_loss):
        with pytest.raises(error, match=message) as info:
            call(x, [0, 1], ignore_index=value)
        assert isinstance(info.value, fx.FastxentError)


def test_ignore_index_takes_numpy_integers():
    x = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]])
    assert fx.cross_entropy(x, [0, 2], ignore_index=np.int32(2)) == fx.cross_entropy(x[:1], [0])


@pytest.mark.parametrize(
    "value, error, message",
    [
        ("0.1", TypeError, "`label_smoothing` must be a float in \\[0, 1\\], got '0.1'"),
        (None, TypeError, "`label_smoothing` must be a float"),
        ([0.1], TypeError, "`label_smoothing` must be a float"),
        (2**70, ValueError, "must be in \\[0, 1\\]"),
        (math.nan, ValueError, "must be in \\[0, 1\\]"),
    ],
)
def test_label_smoothing_must_be_a_number(value, error, message):
    with pytest.raises(error, match=message) as info:
        fx.cross_entropy(np.zeros((2, 3)), [0, 1], label_smoothing=value)
    assert isinstance(info.value, fx.FastxentError)


def test_label_smoothing_takes_what_torch_takes():
    x = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]])
    assert fx.cross_entropy(x, [0, 2], label_smoothing=True) == fx.cross_entropy(
        x, [0, 2], label_smoothing=1.0
    )
    assert fx.cross_entropy(x, [0, 2], label_smoothing=np.float64(0.25)) == fx.cross_entropy(
        x, [0, 2], label_smoothing=0.25
    )
