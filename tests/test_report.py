"""Model-evaluation reports: every section, numbers equal to fx.score and to NumPy, real PNGs."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import fastxent as fx
from fastxent.cli import main
from fastxent.inputs import as_array
from fastxent.kernels.tally import binade_starts, loss_bin
from fastxent.report.stats import LOSS_EDGES
from fastxent.synthetic import make_table, write_table

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def two_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    paths = []
    for seed in (1, 2):
        path = root / f"model{seed}.parquet"
        write_table(make_table(3000, 4, seed=seed, signal=2.0 + seed), str(path), "parquet", 1000)
        paths.append(str(path))
    return root, paths


def _numpy_entry(path, split):
    table = pq.read_table(path)
    rows = table["split"].to_numpy(zero_copy_only=False) == split
    x = as_array("logits", table["logits"].combine_chunks())[rows].astype(np.float64)
    y = table["label"].to_numpy()[rows]
    shifted = x - x.max(axis=1, keepdims=True)
    log_z = np.log(np.exp(shifted).sum(axis=1))
    losses = log_z - shifted[np.arange(len(y)), y]
    confidence = np.exp(-log_z)
    correct = np.argmax(x, axis=1) == y
    return losses, y, confidence, correct, table["id"].to_numpy()[rows]


def test_report_sections_and_numbers(two_models):
    root, paths = two_models
    out = root / "out"
    document = fx.report(
        paths, out=out, by="split", keep=["id"], target="label", logits="logits", top_k=4, bins=10
    )
    assert len(document["entries"]) == 6
    losses_sorted = [e["loss"] for e in document["entries"]]
    assert losses_sorted == sorted(losses_sorted) and document["entries"][0]["best"]

    entry = next(e for e in document["entries"] if e["name"] == "model1.parquet: test")
    assert (
        entry["loss"]
        == fx.score(paths[0], target="label", logits="logits", group_by="split").groups["test"].loss
    )
    losses, y, confidence, correct, ids = _numpy_entry(paths[0], "test")
    assert entry["rows"] == len(y) and entry["accuracy"] == pytest.approx(correct.mean())
    stderr = losses.std(ddof=1) / np.sqrt(len(losses))
    assert entry["ci95"] == pytest.approx(
        [losses.mean() - 1.96 * stderr, losses.mean() + 1.96 * stderr], rel=1e-3
    )
    for c, row in enumerate(entry["per_class"]):
        assert row["count"] == (y == c).sum()
        assert row["mean_loss"] == pytest.approx(losses[y == c].mean(), rel=1e-6)
        assert row["accuracy"] == pytest.approx(correct[y == c].mean())
    which = np.minimum((confidence * 10).astype(int), 9)
    ece = sum(abs(correct[which == b].sum() - confidence[which == b].sum()) for b in range(10)) / len(y)
    assert entry["ece"] == pytest.approx(ece, rel=1e-6)
    assert [r["id"] for r in entry["worst_rows"]] == list(ids[np.argsort(-losses)[:4]])
    assert sum(entry["histogram"]) == len(y)

    text = (out / "report.md").read_text()
    for section in ("## Summary", "## Plots", "## model1.parquet: test", "Highest-loss rows (4)", "| ★ |"):
        assert section in text
    assert (
        json.loads((out / "report.json").read_text())["entries"][0]["name"] == document["entries"][0]["name"]
    )


def test_plots_are_real_pngs(two_models):
    import matplotlib.image

    root, paths = two_models
    out = root / "plots"
    fx.report(paths, out=out, target="label", logits="logits")
    for name in ("loss_by_class.png", "loss_histogram.png", "reliability.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
        pixels = matplotlib.image.imread(out / name)
        assert pixels.shape[0] > 300 and pixels.std() > 0.05  # drawn content, not a blank canvas
    assert sorted(p.name for p in out.iterdir()) == [
        "loss_by_class.png",
        "loss_histogram.png",
        "reliability.png",
        "report.json",
        "report.md",
    ]


def test_report_command_and_bad_input(two_models, capsys):
    root, paths = two_models
    code = main(["report", *paths, "--target", "label", "--logits", "logits", "--out", str(root / "cli")])
    assert code == 0 and "2 entries; best: model" in capsys.readouterr().out
    assert (
        main(["report", paths[0], "--target", "nope", "--logits", "logits", "--out", str(root / "bad")]) == 1
    )
    assert "column 'nope' is not in the source" in capsys.readouterr().err
    assert not (root / "bad").exists()


def test_statistics_do_not_depend_on_batches_and_skip_ignored_rows(tmp_path):
    table = make_table(5000, 4, seed=7)
    labels = table["label"].to_numpy().copy()
    labels[::9] = -100  # ignored rows are in no statistic
    path = tmp_path / "m.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("label"), "label", [labels]), path)
    options = dict(by="split", keep=["id"], target="label", logits="logits", top_k=7)
    whole = fx.report(str(path), out=tmp_path / "a", **options)["entries"]
    split = fx.report(str(path), out=tmp_path / "b", batch_rows=300, **options)["entries"]
    x = as_array("logits", table["logits"].combine_chunks())
    want_losses = fx.cross_entropy(x, labels, reduction="none").astype(np.float64)  # float32 rows
    splits = table["split"].to_numpy(zero_copy_only=False)
    for a, b in zip(whole, split, strict=True):
        assert a["name"] == b["name"]
        rows = (splits == a["name"]) & (labels != -100)
        assert a["histogram"] == b["histogram"] and sum(a["histogram"]) == rows.sum()
        assert [c["count"] for c in a["per_class"]] == [c["count"] for c in b["per_class"]]
        assert a["row_mean"] == pytest.approx(b["row_mean"], rel=1e-12)
        assert a["row_mean"] == pytest.approx(want_losses[rows].mean(), rel=1e-6)
        worst = np.flatnonzero(rows)[np.argsort(-want_losses[rows], kind="stable")[:7]]
        assert [r["row"] for r in a["worst_rows"]] == [r["row"] for r in b["worst_rows"]] == worst.tolist()


def test_per_class_chart_stays_readable_with_many_classes(tmp_path):
    import matplotlib.image

    from fastxent.report.plots import PLOTTED_CLASSES, plot_per_class

    def entry(name, shift):
        return {
            "name": name,
            "per_class": [{"class": f"c{c}", "count": 1, "mean_loss": c + shift} for c in range(1000)],
        }

    path = tmp_path / "classes.png"
    plot_per_class([entry("a", 0.0), entry("b", 0.5)], path)
    height, width = matplotlib.image.imread(path).shape[:2]
    assert width < 0.5 * PLOTTED_CLASSES * 2**0.5 * 110 + 200 and height < 600  # 20 classes, not 1,000


def test_worst_rows_name_the_classes_of_a_string_target(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 3)).astype(np.float32)
    names = np.array(["ant", "bee", "cat"])
    labels = rng.integers(0, 3, 60)
    table = pa.table(
        {"label": names[labels], "logits": pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), 3)}
    )
    entry = fx.report(table, out=tmp_path, target="label", logits="logits", top_k=3)["entries"][0]
    losses = fx.cross_entropy(x, labels, reduction="none")
    worst = np.argsort(-losses, kind="stable")[:3]
    assert [r["row"] for r in entry["worst_rows"]] == worst.tolist()
    assert [r["target"] for r in entry["worst_rows"]] == names[labels[worst]].tolist()
    assert [r["predicted"] for r in entry["worst_rows"]] == names[np.argmax(x[worst], axis=1)].tolist()


def test_figures_draw_a_few_entries_of_many(tmp_path):
    from fastxent.report.plots import PLOTTED_ENTRIES, drawn_entries, plot_histograms, plot_reliability

    entries = [
        {
            "name": f"group {i}",
            "loss": float(i),
            "ece": 0.1,
            "histogram": [1] * 38,  # len(LOSS_EDGES) + 1
            "reliability": [{"count": 1, "confidence": 0.5, "accuracy": 0.5}],
            "per_class": [{"class": "a", "count": 1, "mean_loss": float(i)}],
        }
        for i in range(1000)
    ]
    drawn, title = drawn_entries(entries)
    assert [e["name"] for e in drawn] == ["group 0", "group 1", "group 2", "group 3"] + [
        f"group {i}" for i in range(996, 1000)
    ]
    assert len(drawn) == PLOTTED_ENTRIES and title == " (4 lowest- and 4 highest-loss of 1000)"
    for draw in (plot_histograms, plot_reliability):
        draw(entries, tmp_path / "f.png")
        assert (tmp_path / "f.png").stat().st_size < 200_000


def test_markdown_lists_many_classes_worst_first(tmp_path):
    from fastxent.report import markdown

    per_class = [
        {"class": f"c{c}", "count": 0 if c == 3 else 5, "mean_loss": float(c % 7), "accuracy": 0.5}
        for c in range(30)
    ]
    per_class[10]["mean_loss"] = float("nan")
    entry = {"name": "m", "best": True, "rows": 1, "loss": 1.0, "ci95": [0.0, 2.0], "accuracy": 0.5}
    entry.update(perplexity=2.7, ece=0.1, per_class=per_class, worst_rows=[])
    text = markdown({"entries": [entry]}, [])
    rows = [
        line.split(" | ")[0][2:]
        for line in text.splitlines()
        if line.startswith("| c") and "class" not in line
    ]
    assert rows[0] == "c10" and rows[-1] == "c3"  # NaN first (the worst), no rows last
    assert rows[1:6] == ["c6", "c13", "c20", "c27", "c5"]
    assert "30 classes, highest mean loss first" in text


@pytest.mark.parametrize("edges", [LOSS_EDGES, np.logspace(-3, 2, 26), np.array([0.5, 0.75, 1.0])])
def test_loss_bins_by_binade_equal_searchsorted(edges):
    """The histogram's bin of a loss, found from its binade and at most two edges, is
    ``np.searchsorted``'s: at every edge and its neighbours, zero, subnormals, negatives, huge."""
    rng = np.random.default_rng(0)
    near = np.concatenate([edges, np.nextafter(edges, 0), np.nextafter(edges, np.inf)])
    losses = np.concatenate(
        [
            near,
            10.0 ** rng.uniform(-12, 8, 20_000),
            [0.0, -0.0, 5e-324, 2.2e-308, -1.0, -1e-300, 1.7e308, 1.0, 2.0, 0.5, 4.0],
        ]
    )
    padded = np.concatenate([edges, [np.inf, np.inf]])
    starts = binade_starts(edges)
    got = np.array([loss_bin(padded, starts, v) for v in losses])
    assert np.array_equal(got, np.searchsorted(edges, losses))


@pytest.mark.parametrize("entries", [1, 3, 500])
def test_tally_equals_row_by_row_statistics(entries):
    """The compiled tally's sums, counts and worst-row marks equal the same statistics added one
    row at a time in Python, bit for bit: skipped rows, non-finite losses, NaN confidences and
    classes outside the table (negative, too large) included."""
    from fastxent.kernels.tally import tally_classes, tally_losses
    from fastxent.report.stats import _EDGE_STARTS, _PADDED_EDGES, EntryTable

    rng = np.random.default_rng(entries)
    n, classes, bins = 3000, 4, 10
    entry = rng.integers(0, entries, n)
    losses = rng.exponential(1.0, n) * 10.0 ** rng.integers(-7, 3, n)
    losses[rng.random(n) < 0.02] = np.inf
    losses[rng.random(n) < 0.02] = np.nan
    truth = rng.integers(-1, classes + 1, n)
    predicted = rng.integers(0, classes, n).astype(np.int32)
    confidence = rng.random(n)
    confidence[rng.random(n) < 0.02] = np.nan
    skip = rng.random(n) < 0.05
    table = EntryTable(classes, bins, 5)
    table._fit(entries)
    table.threshold[:] = rng.exponential(2.0, entries)
    worst = np.empty(n, np.bool_)
    args = (_PADDED_EDGES, _EDGE_STARTS, table.totals, table.histogram, table.threshold, worst)
    tally_losses(entry, losses, skip, *args)
    tally_classes(entry, losses, truth, confidence, predicted, skip, table.classes, table.bins)

    totals, histogram = np.zeros_like(table.totals), np.zeros_like(table.histogram)
    per_class, per_bin = np.zeros_like(table.classes), np.zeros_like(table.bins)
    for i in range(n):
        if skip[i]:
            assert not worst[i]
            continue
        e, loss = entry[i], losses[i]
        assert worst[i] == ((np.inf if np.isnan(loss) else loss) >= table.threshold[e])
        if not np.isfinite(loss):
            totals[e, 3] += 1
            continue
        hit = float(predicted[i] == truth[i])
        totals[e, :3] += (1.0, loss, loss * loss)
        histogram[e, np.searchsorted(LOSS_EDGES, loss)] += 1
        if 0 <= truth[i] < classes:
            per_class[e, truth[i]] += (1.0, loss, hit)
        c = 0.0 if np.isnan(confidence[i]) else confidence[i]
        per_bin[e, min(int(c * bins), bins - 1)] += (1.0, c, hit)
    np.testing.assert_array_equal(table.totals, totals)
    np.testing.assert_array_equal(table.histogram, histogram)
    np.testing.assert_array_equal(table.classes, per_class)
    np.testing.assert_array_equal(table.bins, per_bin)


def test_edges_closer_than_two_a_binade_are_refused():
    with pytest.raises(ValueError, match="two edges a binade"):
        binade_starts(np.array([1.0, 1.1, 1.2, 1.3]))


@pytest.mark.parametrize("batch_rows", [None, 170])
def test_rows_skipped_for_nulls_keep_their_source_numbers(tmp_path, batch_rows):
    """With null rows skipped, the worst rows of a report and the ``row`` column of a losses
    file are the rows' numbers in the source (within each file for a directory's losses)."""
    rng = np.random.default_rng(7)
    n = 1200
    x = rng.standard_normal(n) * 4
    y = rng.integers(0, 2, n)
    null = rng.random(n) < 0.15
    table = pa.table({"label": y, "logits": pa.array(x, mask=null), "id": np.arange(n) * 10})
    pq.write_table(table, tmp_path / "one.parquet", row_group_size=500)
    options = dict(target="label", logits="logits", nulls="skip", batch_rows=batch_rows)
    entry = fx.report(str(tmp_path / "one.parquet"), out=tmp_path / "r", keep=["id"], top_k=9, **options)
    losses = fx.binary_cross_entropy_with_logits(x, y.astype(np.float64), reduction="none")
    worst = np.flatnonzero(~null)[np.argsort(-losses[~null], kind="stable")[:9]]
    rows = entry["entries"][0]["worst_rows"]
    assert [r["row"] for r in rows] == worst.tolist()
    assert [r["id"] for r in rows] == (worst * 10).tolist()

    (tmp_path / "d").mkdir()
    for i in range(2):
        pq.write_table(table.slice(600 * i, 600), tmp_path / "d" / f"p{i}.parquet", row_group_size=250)
    out = tmp_path / "losses.parquet"
    fx.score(str(tmp_path / "d"), losses_to=str(out), keep="id", **options)
    written = pq.read_table(out)
    kept = np.flatnonzero(~null)
    assert written["row"].to_pylist() == (kept % 600).tolist()
    assert written["file"].to_pylist() == [str(tmp_path / "d" / f"p{i}.parquet") for i in kept // 600]
    assert written["id"].to_pylist() == (kept * 10).tolist()
    np.testing.assert_allclose(written["loss"].to_numpy(), losses[~null], rtol=1e-12)


@pytest.mark.parametrize("labels", [[0.1, 0.7, 0.9], [0.0, 1.0], [False, True], [0, 1]])
def test_binary_rows_count_in_the_class_their_label_means(labels, tmp_path):
    """A binary label's class is label > 0.5, soft labels included, as accuracy judges it: the
    per-class counts add up to those classes and their accuracies to the score's."""
    rng = np.random.default_rng(2)
    x = rng.normal(0, 2, 3000).astype(np.float32)
    t = np.array(labels)[rng.integers(0, len(labels), 3000)]
    table = pa.table({"label": t, "logits": x})
    entry = fx.report(table, out=tmp_path, target="label", logits="logits", top_k=5)["entries"][0]
    positive = np.asarray(t, dtype=float) > 0.5
    assert [c["count"] for c in entry["per_class"]] == [int((~positive).sum()), int(positive.sum())]
    hits = sum(c["accuracy"] * c["count"] for c in entry["per_class"])
    assert hits / 3000 == pytest.approx(np.mean((x > 0) == positive), rel=1e-12)
    assert entry["accuracy"] == pytest.approx(np.mean((x > 0) == positive), rel=1e-12)
    worst = entry["worst_rows"]
    assert [r["target"] for r in worst] == [int(positive[r["row"]]) for r in worst]
