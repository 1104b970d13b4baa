"""The command line as a person meets it: --version, help with defaults, no prefix matching,
--debug anywhere, "did you mean" for typos, and a progress bar that fits the terminal."""

from __future__ import annotations

import argparse
import io

import pytest

import fastxent as fx
from fastxent.cli import main
from fastxent.io import arguments
from fastxent.progress import COMPILE_NOTICE, Progress, kernels_cached


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    path = tmp_path_factory.mktemp("polish") / "mc.parquet"
    assert main(["make-data", str(path), "--rows", "300", "--classes", "3"]) == 0
    return path


def _usage_error(capsys, *argv) -> str:
    with pytest.raises(SystemExit) as stop:
        main([str(a) for a in argv])
    assert stop.value.code == 2
    return capsys.readouterr().err


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out == f"fastxent {fx.__version__}\n"


def _subparsers(parser):
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return commands.choices


def test_every_option_has_help_and_its_default_is_shown():
    parser = arguments.parser()
    for name, sub in _subparsers(parser).items():
        for action in sub._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
    text = _subparsers(parser)["score"].format_help()
    assert "(default: -100)" in text and "(default: table)" in text and "(default: skip)" in text
    assert "(default: None)" not in text and "(default: False)" not in text


@pytest.mark.parametrize(
    "typo,meant",
    [
        ("--label", "--label-smoothing"),
        ("--ignore", "--ignore-index"),
        ("--labl-smoothing", "--label-smoothing"),
    ],
)
def test_no_prefix_matching_and_a_hint_for_unknown_options(data, capsys, typo, meant):
    err = _usage_error(capsys, "score", data, "--target", "label", "--logits", "logits", typo, "1")
    assert f"fastxent score: error: unrecognized arguments: {typo} (did you mean {meant}?) 1" in err


def test_a_required_option_is_not_met_by_its_prefix(data, capsys):
    err = _usage_error(capsys, "score", data, "--target", "label", "--logit", "logits")
    assert "one of the arguments --logits --probs --logprobs is required" in err


def test_debug_after_the_command_shows_the_traceback(data, capsys):
    argv = ["score", str(data), "--target", "label", "--logits", "logts"]
    assert main(argv) == 1
    assert "did you mean 'logits'?" in capsys.readouterr().err
    with pytest.raises(fx.InputValueError, match="did you mean 'logits'"):
        main([*argv, "--debug"])
    with pytest.raises(fx.InputValueError):
        main(["--debug", *argv])


def test_column_typos_name_the_closest_column(data, capsys):
    assert main(["score", str(data), "--target", "Label", "--logits", "logits"]) == 1
    err = capsys.readouterr().err
    assert "`target` column 'Label' is not in the source; did you mean 'label'? Its columns are:" in err
    assert main(["score", str(data), "--target", "label", "--logits", "zzz"]) == 1
    assert "column 'zzz' is not in the source; its columns are: " in capsys.readouterr().err


class _Clock:
    def __init__(self, now: float = 100.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_progress_bar_fits_80_columns_and_is_erased():
    stream, clock = io.StringIO(), _Clock()
    bar = Progress(1_000_000, stream, width=80, compiling=False, clock=clock)
    for t, rows in ((102.0, 250_000), (102.1, 250_000), (104.0, 250_000)):
        clock.now = t
        bar.advance(rows, 8_000_000)
    bar.close()
    drawn = stream.getvalue().split("\r")[1:]
    lines = [d.removesuffix("\033[K") for d in drawn]
    assert lines[0] == " 25%|██████▊                    | 250k/1.00M [00:02<00:06, 125k rows/s, 4 MB/s]"
    assert lines[1].startswith(" 75%|") and lines[1].endswith("[00:04<00:01, 188k rows/s, 6 MB/s]")
    assert lines[2] == ""  # the line erased at the end
    assert all(len(line) <= 79 for line in lines) and "\n" not in stream.getvalue()


def test_progress_bar_shrinks_with_the_terminal():
    stream, clock = io.StringIO(), _Clock()
    bar = Progress(None, stream, width=30, compiling=False, clock=clock)
    clock.now = 101.0
    bar.advance(123_456_789, 10**9)
    line = stream.getvalue().removeprefix("\r").removesuffix("\033[K")
    assert len(line) <= 29 and line.startswith("123M rows [00:01, 123M rows/s")


def test_compile_time_is_left_out_of_the_rates():
    stream, clock = io.StringIO(), _Clock()
    bar = Progress(4000, stream, width=80, compiling=True, clock=clock)
    assert stream.getvalue() == COMPILE_NOTICE + "\n"
    clock.now = 105.0  # the first batch took 5 s: compiling
    bar.advance(1000, 1_000_000)
    assert stream.getvalue() == COMPILE_NOTICE + "\n"  # nothing drawn without a rate
    clock.now = 106.0
    bar.advance(1000, 1_000_000)
    assert bar.rates(106.0) == (1000.0, 1e6)
    # 2,000 rows left at 1,000 rows/s: 2 s, not the 6 s that 2,000 rows in 6 s would give
    assert "[00:06<00:02, 1.00k rows/s, 1 MB/s]" in stream.getvalue()


def test_kernels_cached_after_a_kernel_ran():
    fx.cross_entropy([[0.0, 1.0]], [1])
    assert kernels_cached()


def test_a_missing_column_of_a_wide_file_lists_a_few_columns(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {"label": [0, 1], **{f"logit_{c}": [0.5, 0.25] for c in range(1000)}}
    pq.write_table(pa.table(columns), tmp_path / "wide.parquet")
    assert main(["score", str(tmp_path / "wide.parquet"), "--target", "labels", "--logits", "logit_*"]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "did you mean 'label'?" in err
    assert "label, logit_0, logit_1," in err and "logit_18, ... (981 more)." in err and len(err) < 500
