"""Issue 15 §1: prediction files on object stores, read and written like local ones.

A local S3-compatible server (moto's, on 127.0.0.1) holds copies of local files; every score read
through an ``s3://`` URI is compared with the score of the local file, bit for bit (total, weight,
counts, every group). Outputs written to the store are read back and compared with the local
ones, and a failed run leaves no object behind. The storage's own failures (a missing key or
bucket, missing or wrong credentials, an unknown scheme) are each one line. fsspec's in-memory
filesystem stands for the filesystems reached through fsspec.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import socket

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

import fastxent as fx
from fastxent.cli import main
from fastxent.errors import InputTypeError, InputValueError
from fastxent.io import sinks, sources
from fastxent.io.pages import READER_VARIABLE
from fastxent.synthetic import make_table, write_table

moto_server = pytest.importorskip("moto.server")

BUCKET = "preds"
OPTIONS = dict(target="label", logits="logits")


@pytest.fixture(scope="module")
def server():
    """A moto S3 server on a free port of 127.0.0.1, and fake credentials in the environment
    (pyarrow's S3 reads AWS_ENDPOINT_URL when it makes a filesystem from a URI)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    moto = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as env:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_REGION"):
            env.delenv(name, raising=False)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no wait for a cloud's metadata service
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        env.setenv("AWS_CONFIG_FILE", os.devnull)
        env.setenv("AWS_ENDPOINT_URL", endpoint)
        yield endpoint
    moto.stop()


@pytest.fixture(scope="module")
def store(server):
    return pafs.S3FileSystem(endpoint_override=server, allow_bucket_creation=True, region="us-east-1")


@pytest.fixture(scope="module")
def local(tmp_path_factory, store):
    """Local prediction files and a hive-partitioned directory, copied to the bucket whole."""
    root = tmp_path_factory.mktemp("local")
    table = make_table(5000, 5, seed=1, nulls=0.02)
    write_table(table, str(root / "preds.parquet"), "parquet", 700)
    write_table(table, str(root / "preds.arrow"), "ipc", 700)
    write_table(table, str(root / "preds.arrows"), "ipc", 700)
    write_table(make_table(3000, 4, layout="columns", seed=2), str(root / "preds.csv.gz"), "csv", 0)
    for model in ("a", "b"):
        (root / "ds" / f"model={model}").mkdir(parents=True)
        for i in range(2):
            part = make_table(1500, 5, seed=10 * ord(model) + i, nulls=0.03)
            write_table(part, str(root / "ds" / f"model={model}" / f"part-{i}.parquet"), "parquet", 400)
    (root / "ds" / "_SUCCESS").write_bytes(b"")  # what Spark leaves: never read as data
    (root / "ds" / "model=a" / ".part-0.parquet.crc").write_bytes(b"junk")
    store.create_dir(BUCKET)
    pafs.copy_files(str(root), BUCKET, destination_filesystem=store)
    return root


def _same(a: fx.Score, b: fx.Score) -> None:
    """The same bits: totals, denominators, counts, and every group's."""
    fields = ("total", "weight", "rows", "scored", "ignored", "nulls", "nonfinite", "accuracy", "kind")
    assert [getattr(a, f) for f in fields] == [getattr(b, f) for f in fields]
    assert a.loss == b.loss or (a.loss != a.loss and b.loss != b.loss)
    assert set(a.groups) == set(b.groups)
    for key, group in a.groups.items():
        assert [getattr(group, f) for f in fields] == [getattr(b.groups[key], f) for f in fields]


def _keys(store, prefix: str = BUCKET) -> list[str]:
    return sorted(i.path for i in store.get_file_info(pafs.FileSelector(prefix, recursive=True)) if i.is_file)


@pytest.mark.parametrize("name", ["preds.parquet", "preds.arrow", "preds.arrows", "preds.csv.gz"])
def test_file_formats_bit_identical_to_local(local, name):
    options = dict(target="label", logits="logit_*") if name.endswith(".csv.gz") else OPTIONS
    options = dict(options, group_by="split")
    remote = fx.score(f"s3://{BUCKET}/{name}", **options)
    _same(fx.score(str(local / name), **options), remote)
    assert remote.rows > 0 and len(remote.groups) == 3


def test_large_row_groups_read_through_buffers(local, monkeypatch):
    """Row groups too large to fetch whole are decoded from range-read buffers: same bits."""
    monkeypatch.setattr(sources, "REMOTE_PREBUFFER_BYTES", 0)
    monkeypatch.setattr(sources, "REMOTE_BUFFER_BYTES", 64 << 10)
    _same(
        fx.score(str(local / "preds.parquet"), **OPTIONS), fx.score(f"s3://{BUCKET}/preds.parquet", **OPTIONS)
    )


def test_directory_with_hive_partitions(local):
    options = dict(OPTIONS, group_by=["model", "split"])
    remote = fx.score(f"s3://{BUCKET}/ds", **options)
    _same(fx.score(str(local / "ds"), **options), remote)
    assert remote.rows == 6000 and {key[0] for key in remote.groups} == {"a", "b"}


@pytest.mark.parametrize(
    "pattern", ["ds/model=*/part-*.parquet", "ds/**/*.parquet", "ds/model=[b]/*.parquet"]
)
def test_globs(local, pattern):
    remote = fx.score(f"s3://{BUCKET}/{pattern}", **OPTIONS)
    _same(fx.score(str(local / pattern), **OPTIONS), remote)
    assert remote.rows == (3000 if "[b]" in pattern else 6000)


def test_query_parameters_configure_s3(local, monkeypatch, server):
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    query = f"?endpoint_override={server}"
    expected = fx.score(str(local / "preds.parquet"), **OPTIONS)
    _same(expected, fx.score(f"s3://{BUCKET}/preds.parquet{query}", **OPTIONS))
    globbed = fx.score(f"s3://{BUCKET}/ds/*/*.parquet{query}", **OPTIONS)
    _same(fx.score(str(local / "ds" / "*" / "*.parquet"), **OPTIONS), globbed)
    fx.score(str(local / "preds.parquet"), **OPTIONS, losses_to=f"s3://{BUCKET}/q/losses.parquet{query}")
    store = pafs.S3FileSystem(endpoint_override=server)
    assert pq.read_metadata(f"{BUCKET}/q/losses.parquet", filesystem=store).num_rows == expected.scored


def test_a_list_of_uris_and_paths(local):
    sources_ = [f"s3://{BUCKET}/preds.parquet", str(local / "preds.arrow")]
    _same(
        fx.score([str(local / "preds.parquet"), str(local / "preds.arrow")], **OPTIONS),
        fx.score(sources_, **OPTIONS),
    )


def test_a_part_pickles_as_its_location(local):
    part = sources.open_parts(f"s3://{BUCKET}/preds.parquet")[0]
    again = pickle.loads(pickle.dumps(part))
    assert (again.name, again.rows, again.unit_rows) == (part.name, part.rows, part.unit_rows)
    first = [batch for _, batch in part.batches(["label"], 1000)]
    assert [batch for _, batch in again.batches(["label"], 1000)] == first


def test_losses_to_s3_equal_the_local_file(local, store, tmp_path):
    options = dict(OPTIONS, keep=["split"])
    fx.score(str(local / "preds.parquet"), **options, losses_to=str(tmp_path / "losses.parquet"))
    fx.score(f"s3://{BUCKET}/preds.parquet", **options, losses_to=f"s3://{BUCKET}/out/losses.parquet")
    written = pq.read_table(f"{BUCKET}/out/losses.parquet", filesystem=store)
    assert written.equals(pq.read_table(tmp_path / "losses.parquet"))
    assert _keys(store, f"{BUCKET}/out") == [f"{BUCKET}/out/losses.parquet"]  # no temporary left


def test_failed_run_leaves_no_object(local, store, monkeypatch):
    """Pieces are uploaded while the run goes on; a null met later fails it: nothing remains."""
    monkeypatch.setattr(sinks, "OUTPUT_GROUP_ROWS", 100)
    with pytest.raises(InputValueError, match="null"):
        fx.score(
            f"s3://{BUCKET}/preds.parquet", **OPTIONS, nulls="error", losses_to=f"s3://{BUCKET}/failed/l.csv"
        )
    assert not [key for key in _keys(store) if "failed" in key or key.endswith(".partial")]


def test_report_to_s3_equals_the_local_report(local, store, tmp_path):
    pytest.importorskip("matplotlib")
    options = dict(OPTIONS, by="split", top_k=3)
    fx.report(str(local / "preds.parquet"), out=str(tmp_path / "report"), **options)
    fx.report(f"s3://{BUCKET}/preds.parquet", out=f"s3://{BUCKET}/report", **options)
    names = ["loss_by_class.png", "loss_histogram.png", "reliability.png", "report.json", "report.md"]
    assert _keys(store, f"{BUCKET}/report") == [f"{BUCKET}/report/{n}" for n in names]
    for name in ("report.json", "report.md"):
        with store.open_input_stream(f"{BUCKET}/report/{name}") as f:
            assert f.read() == (tmp_path / "report" / name).read_bytes()


def test_missing_key_and_bucket(server):
    with pytest.raises(InputValueError, match=rf"^'s3://{BUCKET}/nothing.parquet' does not exist\.$"):
        fx.score(f"s3://{BUCKET}/nothing.parquet", **OPTIONS)
    with pytest.raises(InputValueError, match="there is no bucket 'no-such-bucket'"):
        fx.score("s3://no-such-bucket/preds.parquet", **OPTIONS)
    with pytest.raises(InputValueError, match=f"no file matches 's3://{BUCKET}/ds/\\*.csv'"):
        fx.score(f"s3://{BUCKET}/ds/*.csv", **OPTIONS)


@pytest.fixture
def authenticated(local, monkeypatch):
    """The server checks credentials from here on (moto lets every request in by default), and
    refuses an unsigned request as S3 refuses it for a private bucket: 403 Access Denied (moto's
    server fails on one with a 500 instead)."""
    import moto.settings
    from moto.iam.access_control import S3IAMRequest
    from moto.s3.exceptions import S3AccessDeniedError

    signed = S3IAMRequest.__init__

    def anonymous_denied(self, *, headers, **kwargs):
        if "Authorization" not in headers:
            raise S3AccessDeniedError()
        signed(self, headers=headers, **kwargs)

    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    monkeypatch.setattr(S3IAMRequest, "__init__", anonymous_denied)


@pytest.mark.parametrize("credentials", ["wrong", "missing"])
def test_credentials_refused_in_one_line(authenticated, monkeypatch, credentials, capsys):
    if credentials == "missing":
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    else:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG1")
    uri = f"s3://{BUCKET}/preds.parquet"
    with pytest.raises(InputValueError, match=rf"access to '{uri}' was denied .* AWS_ACCESS_KEY_ID"):
        fx.score(uri, **OPTIONS)
    assert main(["score", uri, "--target", "label", "--logits", "logits"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"fastxent: error: access to '{uri}' was denied") and "\n" not in err


def test_cli_reads_and_writes_uris(local, store, capsys, monkeypatch, server):
    uri = f"s3://{BUCKET}/preds.parquet"
    assert main(["score", uri, "--target", "label", "--logits", "logits", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    expected = fx.score(str(local / "preds.parquet"), **OPTIONS)
    assert (document["total"], document["rows"], document["inputs"]) == (expected.total, expected.rows, [uri])
    assert main(["score", f"s3://{BUCKET}/nothing.parquet", "--target", "label", "--logits", "logits"]) == 1
    assert capsys.readouterr().err == f"fastxent: error: 's3://{BUCKET}/nothing.parquet' does not exist.\n"
    # the endpoint as a --storage-option instead of the environment; never printed
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    argv = ["score", uri, "--target", "label", "--logits", "logits", "--format", "json"]
    out = f"s3://{BUCKET}/cli/losses.arrow"
    assert main([*argv, "--storage-option", f"endpoint_override={server}", "--losses-to", out]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["total"] == expected.total and server not in json.dumps(document)
    with store.open_input_file(f"{BUCKET}/cli/losses.arrow") as f:
        assert pa.ipc.open_file(f).read_all().num_rows == expected.rows - expected.nulls


def test_storage_options_configure_the_filesystem(local, monkeypatch, server):
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    options = {"endpoint_override": server, "access_key": "testing", "secret_key": "testing"}
    remote = fx.score(f"s3://{BUCKET}/preds.parquet", **OPTIONS, storage_options=options)
    _same(fx.score(str(local / "preds.parquet"), **OPTIONS), remote)
    with pytest.raises(InputValueError, match="arguments of pyarrow.fs.S3FileSystem"):
        fx.score(f"s3://{BUCKET}/preds.parquet", **OPTIONS, storage_options={"no_such_option": 1})
    with pytest.raises(InputValueError, match="either `filesystem` or `storage_options`"):
        fx.score("x.parquet", **OPTIONS, filesystem=pafs.LocalFileSystem(), storage_options=options)


def test_dask_workers_read_the_uris(local):
    distributed = pytest.importorskip("distributed")
    fxdask = pytest.importorskip("fastxent.dask")
    options = dict(OPTIONS, group_by=["model", "split"])
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with cluster, distributed.Client(cluster) as client:
        remote = fxdask.score(f"s3://{BUCKET}/ds", client=client, **options)
        csv = fxdask.score(f"s3://{BUCKET}/preds.csv.gz", client=client, target="label", logits="logit_*")
    _same(fx.score(str(local / "ds"), **options), remote)
    _same(fx.score(str(local / "preds.csv.gz"), target="label", logits="logit_*"), csv)
    with pytest.raises(InputValueError, match="an object store is not"):
        fxdask.score(f"s3://{BUCKET}/ds", losses_to=f"s3://{BUCKET}/dask-losses", **OPTIONS)


def test_file_uris_are_local_paths(tmp_path):
    (tmp_path / "a dir").mkdir()
    path = tmp_path / "a dir" / "preds.parquet"
    write_table(make_table(1000, 3, seed=3), str(path), "parquet", 300)
    expected = fx.score(str(path), **OPTIONS)
    _same(expected, fx.score(path.as_uri(), **OPTIONS))  # file:///.../a%20dir/preds.parquet
    fx.score(path.as_uri(), **OPTIONS, losses_to=(tmp_path / "losses.csv").as_uri())
    assert (tmp_path / "losses.csv").read_text().count("\n") == expected.rows + 1


def test_fsspec_filesystems(local):
    fsspec = pytest.importorskip("fsspec")
    memory = fsspec.filesystem("memory")
    memory.put(str(local / "ds"), "/ds", recursive=True)
    memory.put(str(local / "preds.arrow"), "/preds.arrow")
    options = dict(OPTIONS, group_by=["model", "split"])
    expected = fx.score(str(local / "ds"), **options)
    try:
        _same(expected, fx.score("/ds", **options, filesystem=memory))
        wrapped = pafs.PyFileSystem(pafs.FSSpecHandler(memory))
        globbed = fx.score("/ds/**/*.parquet", **OPTIONS, filesystem=wrapped)  # no partitions: files
        _same(fx.score(str(local / "ds" / "**" / "*.parquet"), **OPTIONS), globbed)
        _same(fx.score(str(local / "preds.arrow"), **OPTIONS), fx.score("memory://preds.arrow", **OPTIONS))
        fx.score("/preds.arrow", **OPTIONS, filesystem=memory, losses_to="/out/losses.parquet")
        assert memory.ls("/out", detail=False) == ["/out/losses.parquet"]
    finally:
        memory.rm("/", recursive=True)


def test_unreachable_storage(local):
    with socket.socket() as closed:  # a port that nothing listens on once the socket is closed
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    options = {
        "endpoint_override": f"http://127.0.0.1:{port}",
        "connect_timeout": 1,
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=1),
    }
    with pytest.raises(
        InputValueError, match=r"cannot reach the storage of 's3://preds/preds.parquet' \(network\)"
    ):
        fx.score(f"s3://{BUCKET}/preds.parquet", **OPTIONS, storage_options=options)


def test_unknown_schemes_and_filesystems():
    with pytest.raises(InputValueError, match="cannot read 'nosuch://x/preds.parquet': Protocol not known"):
        fx.score("nosuch://x/preds.parquet", **OPTIONS)
    with pytest.raises(InputTypeError, match="`filesystem` must be a pyarrow.fs.FileSystem or an fsspec"):
        fx.score("x.parquet", **OPTIONS, filesystem="s3")


def test_local_files_stay_on_the_local_path(local):
    """Plain paths never go through a filesystem object (memory maps, the OS's own reads)."""
    part = sources.open_parts(str(local / "preds.arrow"))[0]
    assert part.location.filesystem is None and part.name == str(local / "preds.arrow")


def test_http_files_through_fsspec(tmp_path, capsys):
    """https:// and http:// go to fsspec's HTTP filesystem: read by byte ranges where the server
    serves them; a server that cannot is one clear line, not a traceback."""
    pytest.importorskip("aiohttp")
    import functools
    import http.server
    import threading

    write_table(make_table(3000, 4, seed=9), str(tmp_path / "f.parquet"), "parquet", 1000)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # the server's request log would share stderr
            pass

    class QuietServer(http.server.ThreadingHTTPServer):
        def handle_error(self, *args):  # a client that hung up, said on stderr too
            pass

    handler = functools.partial(Quiet, directory=str(tmp_path))
    server = QuietServer(("127.0.0.1", 0), handler)  # no Range support
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/f.parquet"
        code = main(["score", url, "--target", "label", "--logits", "logits"])
        err = capsys.readouterr().err
        assert code == 1 and len(err.splitlines()) == 1
        assert "doesn't appear to support range requests" in err and url in err
    finally:
        server.shutdown()
        server.server_close()


def test_many_flat_columns_of_a_remote_file_read_by_pyarrow(local, store, tmp_path, monkeypatch):
    """``auto`` reads a local file of 12 class columns through pages, the same file in a store
    through pyarrow (which coalesces a row group's column chunks into few range requests, where
    the page reader would fetch each column's pages apart): the same bits."""
    monkeypatch.delenv(READER_VARIABLE, raising=False)
    path = tmp_path / "wide.parquet"
    write_table(make_table(2000, 12, layout="columns", seed=3), str(path), "parquet", 500)
    store.create_dir("wide")
    pafs.copy_files(str(path), "wide/wide.parquet", destination_filesystem=store)
    options = dict(target="label", logits="logit_*")
    near, far = fx.score(str(path), **options), fx.score("s3://wide/wide.parquet", **options)
    _same(near, far)
    assert dict(near.readers) == {"pages": 13 * 4} and dict(far.readers) == {"pyarrow": 13 * 4}
