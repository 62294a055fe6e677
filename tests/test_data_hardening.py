"""Issue 12: what an attack suite broke in course_utils.data, one test (or more) per numbered case.

Hostile and broken archives are built by the tests and served with a matching checksum from a
misbehaving HTTP server on 127.0.0.1 (as a broken or malicious classroom mirror would serve
them); no real host is contacted. The tests use `data` only at module level, so that each of
them fails on the code before the hardening for its own reason.
"""

from __future__ import annotations

import errno
import hashlib
import http.server
import io
import multiprocessing
import os
import signal
import socket
import tarfile
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from course_utils import data, environment
from tests.test_data import REVIEWS, _add, make_archive, sha

URL_PATH = "/aclImdb_v1.tar.gz"
# separate processes; fork (Linux) starts them in milliseconds, spawn would re-import torch in each
PROCESSES = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")


class Mirror:
    """A classroom mirror on 127.0.0.1 serving `payload`, with knobs for the ways servers misbehave."""

    def __init__(self, payload: bytes, status: int = 200, head: bool = True, ranges: bool = False,
                 drop_after: int | None = None, trickle: tuple[int, float] | None = None,
                 stall_after: int | None = None):
        self.payload, self.requests = payload, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_HEAD(self):  # noqa: N802
                outer.requests.append(("HEAD", self.headers.get("Range")))
                if not head:
                    self.send_error(501)  # a server without HEAD
                elif status != 200:
                    self.send_error(status)
                else:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(outer.payload)))
                    self.end_headers()

            def do_GET(self):  # noqa: N802
                wanted = self.headers.get("Range")
                outer.requests.append(("GET", wanted))
                if status != 200:
                    self.send_error(status)
                    return
                start = int(wanted[6:-1]) if ranges and wanted and wanted.endswith("-") else 0
                body = outer.payload[start:]
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(outer.payload) - 1}/{len(outer.payload)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    if drop_after is not None:  # the connection drops: fewer bytes than announced
                        self.wfile.write(body[:drop_after])
                    elif trickle is not None:
                        size, pause = trickle
                        for i in range(0, len(body), size):
                            self.wfile.write(body[i:i + size])
                            self.wfile.flush()
                            time.sleep(pause)
                    elif stall_after is not None:
                        self.wfile.write(body[:stall_after])
                        self.wfile.flush()
                        time.sleep(30)
                    else:
                        self.wfile.write(body)
                except OSError:  # the client gave up
                    pass

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{URL_PATH}"

    def gets(self) -> list:
        return [rng for method, rng in self.requests if method == "GET"]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def online(monkeypatch, tmp_path):
    """Online path against 127.0.0.1 only; an empty course cache; pip cannot fetch anything."""
    for var in ("COURSE_OFFLINE", "HF_HUB_OFFLINE", "COURSE_IMDB_URL", "COURSE_IMDB_SHA256", "COURSE_IMDB_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "course-cache"))
    monkeypatch.setattr(data, "_announced", False)
    monkeypatch.setattr(data, "_pip_download", lambda folder: (_ for _ in ()).throw(data.DataError("no pip in tests")),
                        raising=False)


def load(cache: Path, mirror: Mirror, payload: bytes | None = None, **kwargs) -> pd.DataFrame:
    return data.load_imdb(cache=cache, url=mirror.url, sha256=sha(payload if payload is not None else mirror.payload),
                          progress=False, **kwargs)


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if not p.name.endswith(".lock"))


EXPECTED = {(text, 1 if "/pos/" in name else 0) for name, text in REVIEWS.items()}


# ----------------------------------------------------------------------------- 1: symlink chains


def symlink_chain_archive(escape_to: str) -> bytes:
    """The shape of CVE-2025-4517: a chain of links so long that realpath gives up, then a write through it."""

    def extra(tar):
        comp, steps, path = "d" * 247, "abcdefghijklmnop", ""
        for step in steps:
            _add(tar, os.path.join(path, comp), type=tarfile.DIRTYPE, mode=0o755)
            _add(tar, os.path.join(path, step), type=tarfile.SYMTYPE, linkname=comp)
            path = os.path.join(path, comp)
        linkpath = os.path.join("/".join(steps), "l" * 254)
        _add(tar, linkpath, type=tarfile.SYMTYPE, linkname="../" * len(steps))
        _add(tar, "escape", type=tarfile.SYMTYPE, linkname=f"{linkpath}/{escape_to}")
        _add(tar, "escape/victim.txt", b"OVERWRITTEN", mode=0o644)

    return make_archive(extra)


def test_case1_symlink_chain_cannot_write_outside_the_cache(tmp_path):
    victim = tmp_path / "victim.txt"  # in the cache's parent folder
    victim.write_text("precious")
    cache = tmp_path / "cache"
    archive = symlink_chain_archive("../..")
    with Mirror(archive) as mirror:
        with pytest.raises(data.ArchiveError, match="link member"):
            load(cache, mirror)
    assert victim.read_text() == "precious"
    assert files_under(tmp_path) == ["cache", f"cache/{data.ARCHIVE_NAME}", "victim.txt"]


# ----------------------------------------------------------------------------- 2: a user's folder


def test_case2_a_users_folder_is_never_deleted(tmp_path, monkeypatch):
    mine = tmp_path / "my-imdb"
    (mine / "extracted" / "notes").mkdir(parents=True)
    (mine / "extracted" / "notes" / "thesis.txt").write_text("three years of work")
    (mine / "table").mkdir()
    (mine / "table" / "keep.txt").write_text("mine")
    monkeypatch.setenv("COURSE_IMDB_DIR", str(mine))
    with Mirror(make_archive()) as mirror:
        monkeypatch.setenv("COURSE_IMDB_URL", mirror.url)
        monkeypatch.setenv("COURSE_IMDB_SHA256", sha(mirror.payload))
        df = data.load_imdb(progress=False)
    assert set(zip(df.review, df.sentiment)) == EXPECTED
    assert (mine / "extracted" / "notes" / "thesis.txt").read_text() == "three years of work"
    assert (mine / "table" / "keep.txt").read_text() == "mine"


def test_case2_a_hand_placed_table_is_used_not_replaced(tmp_path, monkeypatch):
    mine = tmp_path / "my-imdb"
    mine.mkdir()
    pd.DataFrame({"review": ["my own review"], "sentiment": [1]}).to_csv(mine / data.TABLE_NAME, index=False)
    before = (mine / data.TABLE_NAME).read_bytes()
    monkeypatch.setenv("COURSE_IMDB_DIR", str(mine))
    df = data.load_imdb(progress=False)
    assert df.review.tolist() == ["my own review"] and (mine / data.TABLE_NAME).read_bytes() == before


# ----------------------------------------------------------------------------- 3: concurrent calls


def _concurrent_worker(barrier, url, checksum, root, rounds, results):
    from course_utils import data as worker_data

    for index in range(rounds):
        barrier.wait(timeout=120)
        try:
            df = worker_data.load_imdb(cache=Path(root) / f"round{index}", url=url, sha256=checksum, progress=False)
            results.put((index, "ok", hashlib.sha256(df.to_csv(index=False).encode()).hexdigest()))
        except BaseException as error:  # noqa: BLE001 - report whatever killed the call
            results.put((index, "error", repr(error)))


def test_case3_three_processes_at_once_five_times_all_succeed(tmp_path):
    context = PROCESSES
    barrier, results = context.Barrier(3), context.Queue()
    rounds = 5
    with Mirror(make_archive(), trickle=(64, 0.001)) as mirror:  # a little slow: the calls overlap
        processes = [context.Process(target=_concurrent_worker,
                                     args=(barrier, mirror.url, sha(mirror.payload), str(tmp_path), rounds, results))
                     for _ in range(3)]
        for process in processes:
            process.start()
        outcomes = [results.get(timeout=300) for _ in range(3 * rounds)]
        for process in processes:
            process.join(timeout=60)
        downloads = len(mirror.gets())
    assert [outcome for outcome in outcomes if outcome[1] != "ok"] == []
    assert len({digest for _, _, digest in outcomes}) == 1  # every call got the same table
    assert downloads == rounds  # one download per round: the others waited for it
    for index in range(rounds):
        assert files_under(tmp_path / f"round{index}") == [".manifest.json", data.ARCHIVE_NAME, data.TABLE_NAME]


# ----------------------------------------------------------------------------- 4: modes per umask


@pytest.mark.parametrize("umask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o002, 0o664, 0o775)])
def test_case4_cache_is_readable_by_others_per_umask(tmp_path, monkeypatch, umask, file_mode, dir_mode):
    from tests.test_data_vader import make_sdist

    old = os.umask(umask)
    try:
        cache = tmp_path / "shared" / "imdb"
        with Mirror(make_archive()) as mirror:
            load(cache, mirror)
        sdist = make_sdist()
        monkeypatch.setattr(data, "VADER_SHA256", sha(sdist))
        monkeypatch.setattr(data, "VADER_FILES", {kind: (path, 8 if kind == "movie" else 2)
                                                  for kind, (path, _) in data.VADER_FILES.items()})

        def pip_like(folder):  # pip (like mkstemp) may leave 0600 files
            (folder / data.VADER_SDIST).write_bytes(sdist)
            os.chmod(folder / data.VADER_SDIST, 0o600)

        monkeypatch.setattr(data, "_pip_download", pip_like)
        data.prepare_vader()
    finally:
        os.umask(old)
    course_cache = tmp_path / "course-cache"
    for root in (cache, course_cache):
        for path in [root, *root.rglob("*")]:
            expected = dir_mode if path.is_dir() else file_mode
            assert path.stat().st_mode & 0o777 == expected, path


# ----------------------------------------------------------------------------- 6: archive bombs


def sparse_member(name: str, real_size: int) -> bytes:
    """A GNU sparse member header claiming `real_size` bytes (tarfile cannot write one itself)."""
    info = tarfile.TarInfo(name)
    info.type = tarfile.GNUTYPE_SPARSE
    header = bytearray(info.tobuf(tarfile.GNU_FORMAT))
    header[483:495] = tarfile.itn(real_size, 12, tarfile.GNU_FORMAT)
    header[148:156] = b" " * 8
    header[148:155] = b"%06o\x00" % tarfile.calc_chksums(bytes(header))[0]
    return bytes(header)


def raw(tar: tarfile.TarFile, block: bytes) -> None:
    tar.fileobj.write(block)
    tar.offset += len(block)


def huge_header(tar: tarfile.TarFile, name: str, size: int) -> None:
    """A member header announcing `size` bytes that never come: the caps must act on the header."""
    info = tarfile.TarInfo(name)
    info.size = size
    raw(tar, info.tobuf(tarfile.GNU_FORMAT))


@pytest.mark.parametrize(
    "extra, caps, message",
    [
        (lambda tar: raw(tar, sparse_member("aclImdb/train/pos/9_9.txt", 8 << 30)), {}, "sparse member"),
        (lambda tar: huge_header(tar, "aclImdb/train/unsup/0_0.txt", 2 << 30), {}, "more than 1,073,741,824 bytes"),
        (lambda tar: _add(tar, "aclImdb/train/pos/7_7.txt", b"\0" * (2 << 20)), {}, "more than the 1,048,576 allowed"),
        (lambda tar: [_add(tar, f"aclImdb/train/unsup/{i}_0.txt", b"x") for i in range(60)], {"MAX_MEMBERS": 50},
         "more than 50 members"),
        (lambda tar: _add(tar, "aclImdb/train/unsup/big.txt", b"x" * 5000), {"MAX_TOTAL_BYTES": 4096},
         "more than 4,096 bytes"),
    ],
    ids=["sparse-8GiB", "2GiB-member", "2MiB-review", "member-count", "total-size"],
)
def test_case6_archive_bombs_are_refused_from_their_headers(tmp_path, monkeypatch, extra, caps, message):
    for name, value in caps.items():
        monkeypatch.setattr(data, name, value)
    archive = make_archive(extra)
    cache = tmp_path / "cache"
    start = time.process_time()
    with Mirror(archive) as mirror:
        with pytest.raises(data.ArchiveError, match=message):
            load(cache, mirror)
    assert time.process_time() - start < 5
    assert files_under(cache) == [data.ARCHIVE_NAME]  # nothing written but the verified download


# ----------------------------------------------------------------------------- 7: misleading diagnoses


@pytest.mark.parametrize("status", [500, 503])
def test_case7_server_errors_are_reported_not_replaced_by_other_data(tmp_path, monkeypatch, status):
    with Mirror(make_archive(), status=status) as mirror:
        monkeypatch.setattr(data, "IMDB_URL", mirror.url)  # even the official address: no silent switch
        with pytest.raises(data.DataError, match=f"HTTP {status}"):
            data.load_imdb(cache=tmp_path / "cache", sha256=sha(mirror.payload), progress=False)


def test_case7_a_server_without_head_still_serves_the_archive(tmp_path, monkeypatch):
    with Mirror(make_archive(), head=False) as mirror:
        monkeypatch.setattr(data, "IMDB_URL", mirror.url)
        df = data.load_imdb(cache=tmp_path / "cache", sha256=sha(mirror.payload), progress=False)
    assert df.attrs["source"] == "imdb" and set(zip(df.review, df.sentiment)) == EXPECTED


def test_case7_a_configured_mirror_that_fails_is_an_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_IMDB_URL", "http://127.0.0.1:9/aclImdb_v1.tar.gz")  # nothing listens there
    with pytest.raises(data.DataError, match="refused"):
        data.load_imdb(cache=tmp_path / "cache", progress=False)
    assert "GENERATED" not in capsys.readouterr().out


def test_case7_dns_failure_is_named(tmp_path, monkeypatch):
    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with pytest.raises(data.DataError, match="DNS"):
        data.load_imdb(cache=tmp_path / "cache", url="http://mirror.example/aclImdb_v1.tar.gz", progress=False)


def test_case7_disk_full_is_not_called_a_corrupt_archive(tmp_path, monkeypatch):
    def full(self, path, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    with Mirror(make_archive()) as mirror:
        with pytest.raises(RuntimeError, match="disk is full") as error:
            load(tmp_path / "cache", mirror)
    assert str(tmp_path / "cache") in str(error.value) and "corrupt" not in str(error.value)


def test_case7_a_rejected_archive_is_named_with_its_path(tmp_path):
    cache = tmp_path / "cache"
    archive = make_archive(lambda tar: _add(tar, "aclImdb/x", type=tarfile.SYMTYPE, linkname="../.."))
    with Mirror(archive) as mirror:
        for _ in range(2):  # the re-run fails the same way, and says which file to delete
            with pytest.raises(data.ArchiveError) as error:
                load(cache, mirror)
            assert f"{cache / data.ARCHIVE_NAME} has a link member" in str(error.value)
            assert "delete it" in str(error.value)


# ----------------------------------------------------------------------------- 8: raw exceptions


@pytest.mark.parametrize("payload", [b"review,sentiment\n\xff\xfe\xfa,1\n", b'review,sentiment\n"open quote,1\n',
                                     b"review,sentiment\na,1,extra,fields\nb,0\n"],
                         ids=["not-utf8", "parser-error", "ragged"])
def test_case8_a_damaged_table_gives_a_table_error(tmp_path, payload):
    (tmp_path / data.TABLE_NAME).write_bytes(payload)  # a table without manifest, put there by hand
    with pytest.raises(data.TableError, match="(?i)delete it and run again"):
        data.load_imdb(cache=tmp_path, progress=False)


def test_case8_nul_in_a_member_name(tmp_path):
    name = "aclImdb/train/pos/" + "x" * 100 + "\x00.txt"  # long, so tarfile stores it in a pax header
    archive = make_archive(lambda tar: _add(tar, name, b"text"))
    with Mirror(archive) as mirror:
        with pytest.raises(data.ArchiveError, match="NUL byte"):
            load(tmp_path / "cache", mirror)


def test_case8_read_only_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):
        if str(path).startswith(str(cache)) and flags & (os.O_CREAT | os.O_WRONLY | os.O_RDWR):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    with Mirror(make_archive()) as mirror:
        with pytest.raises(RuntimeError, match="read-only for you.*COURSE_CACHE_DIR") as error:
            load(cache, mirror)
    assert str(cache) in str(error.value)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can write anywhere")
def test_case8_read_only_cache_for_real(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    cache.chmod(0o555)
    try:
        with Mirror(make_archive()) as mirror:
            with pytest.raises(RuntimeError, match="read-only for you"):
                load(cache, mirror)
    finally:
        cache.chmod(0o755)


def test_case8_course_cache_dir_is_a_file(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("oops")
    monkeypatch.setenv("COURSE_CACHE_DIR", str(blocker))
    with pytest.raises(RuntimeError, match=f"should be a folder but {blocker} is a file"):
        data.load_imdb(progress=False)


def test_case8_a_complete_cache_is_read_without_writing(tmp_path, monkeypatch):
    """A shared classroom cache, complete and read-only for students, loads without the lock."""
    cache = tmp_path / "cache"
    with Mirror(make_archive()) as mirror:
        first = load(cache, mirror)
        real_open = os.open
        monkeypatch.setattr(os, "open", lambda path, flags, *a, **k: (_ for _ in ()).throw(
            OSError(errno.EROFS, "Read-only file system", str(path))) if flags & (os.O_CREAT | os.O_WRONLY) else
            real_open(path, flags, *a, **k))
        pd.testing.assert_frame_equal(load(cache, mirror), first)


# ----------------------------------------------------------------------------- 9: damaged cached tables


def _half(text):
    lines = text.splitlines(keepends=True)
    return "".join(lines[: 1 + (len(lines) - 1) // 2])


def _duplicated(text):
    lines = text.splitlines(keepends=True)
    return "".join(lines + lines[1:])


def _flipped(text):
    df = pd.read_csv(io.StringIO(text))
    df["sentiment"] = 1 - df["sentiment"]
    return df.to_csv(index=False)


@pytest.mark.parametrize("damage", [_half, _duplicated, _flipped], ids=["half", "duplicated", "flipped"])
def test_case9_a_damaged_table_is_detected_and_rebuilt(tmp_path, damage):
    cache = tmp_path / "cache"
    with Mirror(make_archive()) as mirror:
        good = load(cache, mirror)
        table = cache / data.TABLE_NAME
        table.write_text(damage(table.read_text(encoding="utf-8")), encoding="utf-8")
        again = load(cache, mirror)
        assert len(mirror.gets()) == 1  # rebuilt from the verified archive, not downloaded again
    pd.testing.assert_frame_equal(again, good)


# ----------------------------------------------------------------------------- 10: leftovers, resume, trickle


def test_case10_a_killed_download_is_resumed_and_nothing_is_left_over(tmp_path):
    archive = make_archive(lambda tar: _add(tar, "aclImdb/train/unsup/0_0.txt", os.urandom(200_000)))
    cache = tmp_path / "cache"
    cache.mkdir()
    part = cache / f".{data.ARCHIVE_NAME}.part"
    with Mirror(archive, ranges=True, trickle=(4096, 0.05)) as slow:
        child = PROCESSES.Process(target=data.download, args=(slow.url, cache / data.ARCHIVE_NAME),
                                  kwargs={"sha256": sha(archive), "progress": False})
        child.start()
        try:
            deadline = time.monotonic() + 120
            while not (part.is_file() and part.stat().st_size > 20_000) and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            os.kill(child.pid, signal.SIGKILL)  # no cleanup code runs
            child.join(timeout=30)
    kept = part.stat().st_size
    assert 0 < kept < len(archive)
    # what killed runs of this and older versions leave: a staging file, a random-named part
    (cache / f".{data.TABLE_NAME}.4242-deadbeef.tmp").write_text("half a table")
    (cache / f".{data.ARCHIVE_NAME}.k3j4l5.part").write_bytes(b"0" * 1000)
    with Mirror(archive, ranges=True) as mirror:
        df = load(cache, mirror)
        assert mirror.gets() == [f"bytes={kept}-"]  # resumed where the killed run stopped
    assert set(zip(df.review, df.sentiment)) == EXPECTED
    assert files_under(cache) == [".manifest.json", data.ARCHIVE_NAME, data.TABLE_NAME]


def test_case10_a_dropped_connection_resumes_on_the_next_run(tmp_path):
    archive = make_archive(lambda tar: _add(tar, "aclImdb/train/unsup/0_0.txt", os.urandom(50_000)))
    target = tmp_path / data.ARCHIVE_NAME
    with Mirror(archive, ranges=True, drop_after=20_000) as mirror:
        with pytest.raises(data.DataError, match="run again to resume"):
            data.download(mirror.url, target, sha256=sha(archive), progress=False)
    with Mirror(archive, ranges=True) as mirror:
        data.download(mirror.url, target, sha256=sha(archive), progress=False)
        assert mirror.gets() == ["bytes=20000-"]
    assert target.read_bytes() == archive


def test_case10_a_server_without_ranges_restarts_cleanly(tmp_path):
    archive = make_archive()
    target = tmp_path / data.ARCHIVE_NAME
    (tmp_path / f".{data.ARCHIVE_NAME}.part").write_bytes(archive[:100])
    with Mirror(archive, ranges=False) as mirror:
        data.download(mirror.url, target, sha256=sha(archive), progress=False)
    assert target.read_bytes() == archive


def test_case10_a_stale_part_from_another_file_is_detected_and_restarted(tmp_path):
    archive = make_archive()
    target = tmp_path / data.ARCHIVE_NAME
    (tmp_path / f".{data.ARCHIVE_NAME}.part").write_bytes(b"garbage from another mirror" * 10)
    with Mirror(archive, ranges=True) as mirror:
        data.download(mirror.url, target, sha256=sha(archive), progress=False)
        assert mirror.gets()[-1] is None  # the second try fetched the whole file
    assert target.read_bytes() == archive


def test_case10_a_trickling_server_is_given_up_on(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "MIN_RATE", 20_000)
    monkeypatch.setattr(data, "RATE_WINDOW_S", 1.0)
    archive = make_archive(lambda tar: _add(tar, "aclImdb/train/unsup/0_0.txt", os.urandom(100_000)))
    start = time.monotonic()
    with Mirror(archive, trickle=(1024, 0.2)) as mirror:  # 5 KiB/s
        with pytest.raises(data.DataError, match="too slow.*run again to resume"):
            load(tmp_path / "cache", mirror)
    assert time.monotonic() - start < 10


def test_case10_a_stalled_server_times_out(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "READ_TIMEOUT_S", 0.5)
    with Mirror(make_archive(), stall_after=100) as mirror:
        start = time.monotonic()
        with pytest.raises(data.DataError, match="no data for 0.5 s.*timeout"):
            load(tmp_path / "cache", mirror)
    assert time.monotonic() - start < 10


# ----------------------------------------------------------------------------- 11: settings


@pytest.mark.parametrize("value, expected", [("1", True), ("0", False), ("true", True), ("FALSE", False),
                                             ("Yes", True), ("no", False), (" 1\n", True), ("", "default")])
def test_case11_boolean_settings(monkeypatch, value, expected):
    monkeypatch.setenv("COURSE_QUICK", value)
    for default in (True, False):
        assert environment.env_flag("COURSE_QUICK", default) is (default if expected == "default" else expected)


@pytest.mark.parametrize("value", ["2", "ture", "enabled", "-1"])
def test_case11_other_values_are_a_clear_error(monkeypatch, value):
    monkeypatch.setenv("COURSE_OFFLINE", value)
    with pytest.raises(ValueError, match=f"COURSE_OFFLINE={value!r} is not a yes/no setting"):
        environment.is_offline()
    monkeypatch.setenv("COURSE_OFFLINE", "no")
    monkeypatch.setenv("HF_HUB_OFFLINE", "TRUE")
    assert environment.is_offline() is True


def test_case11_a_pasted_checksum_with_whitespace_is_accepted(tmp_path, monkeypatch):
    archive = make_archive()
    with Mirror(archive) as mirror:
        monkeypatch.setenv("COURSE_IMDB_URL", mirror.url)
        monkeypatch.setenv("COURSE_IMDB_SHA256", "  " + sha(archive).upper() + "\n")
        df = data.load_imdb(cache=tmp_path / "cache", progress=False)
    assert len(df) == len(REVIEWS) and (tmp_path / "cache" / data.ARCHIVE_NAME).is_file()


def test_case11_a_checksum_that_is_not_one_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_IMDB_SHA256", "c40f74a1...58fe")
    with pytest.raises(data.DataError, match="COURSE_IMDB_SHA256=.*is not a SHA-256"):
        data.load_imdb(cache=tmp_path / "cache", url="http://127.0.0.1:9/x", progress=False)
