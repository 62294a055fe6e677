"""Tests of course_utils.cache: lock, staging, manifest, atomic publish, leftovers, error messages."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from course_utils import cache


def build_two_files(staging: Path) -> None:
    (staging / "a.txt").write_text("alpha")
    (staging / "sub").mkdir()
    (staging / "sub" / "b.bin").write_bytes(b"\x00\x01" * 100)


def test_cached_build_builds_once_and_verifies(tmp_path):
    calls = []

    def build(staging):
        calls.append(staging)
        build_two_files(staging)

    target = tmp_path / "thing"
    assert cache.cached_build(target, build) == target
    assert cache.verify_manifest(target) == []
    manifest = json.loads((target / cache.MANIFEST).read_text())
    assert sorted(manifest["files"]) == ["a.txt", "sub/b.bin"]
    assert manifest["files"]["sub/b.bin"]["size"] == 200
    cache.cached_build(target, build)
    assert len(calls) == 1  # intact: not rebuilt
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == ["thing"]  # no staging left


@pytest.mark.parametrize("damage", ["delete", "truncate", "same-size-change", "no-manifest", "bad-manifest"])
def test_damage_is_detected_and_rebuilt(tmp_path, damage):
    target = tmp_path / "thing"
    cache.cached_build(target, build_two_files)
    if damage == "delete":
        (target / "a.txt").unlink()
    elif damage == "truncate":
        (target / "sub" / "b.bin").write_bytes(b"\x00")
    elif damage == "same-size-change":
        (target / "a.txt").write_text("alphA")
    elif damage == "no-manifest":
        (target / cache.MANIFEST).unlink()
    else:
        (target / cache.MANIFEST).write_text("{not json")
    problems = cache.verify_manifest(target)
    assert problems
    with pytest.raises(cache.ManifestError, match=f"Delete the folder {target}"):
        cache.check_manifest(target)
    cache.cached_build(target, build_two_files)
    assert cache.verify_manifest(target) == [] and (target / "a.txt").read_text() == "alpha"


def test_read_verified_checks_in_the_same_read(tmp_path):
    target = cache.cached_build(tmp_path / "t", build_two_files)
    assert cache.read_verified(target, "a.txt") == b"alpha"
    (target / "a.txt").write_text("alphA")
    with pytest.raises(cache.ManifestError, match="changed or damaged"):
        cache.read_verified(target, "a.txt")
    with pytest.raises(cache.ManifestError, match="not listed"):
        cache.read_verified(target, "nope.txt")


def test_failed_build_leaves_nothing_and_keeps_the_old_folder_out(tmp_path):
    def broken(staging):
        (staging / "half.txt").write_text("half")
        raise RuntimeError("builder crashed")

    with pytest.raises(RuntimeError, match="crashed"):
        cache.cached_build(tmp_path / "thing", broken)
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_publish_file_and_folder_are_atomic_and_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        partial = cache.staging_path(tmp_path / "f.txt")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT, 0o600)  # as mkstemp makes it
        os.write(fd, b"x")
        os.close(fd)
        cache.publish(partial, tmp_path / "f.txt")
        assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o644
        folder = tmp_path / "d"
        folder.mkdir(mode=0o700)
        (folder / "old.txt").write_text("old")
        staging = cache.make_staging_dir(folder)
        os.chmod(staging, 0o700)  # as mkdtemp makes it
        (staging / "new.txt").write_text("new")
        os.chmod(staging / "new.txt", 0o600)
        cache.publish(staging, folder)
        assert sorted(p.name for p in folder.iterdir()) == ["new.txt"]
        assert folder.stat().st_mode & 0o777 == 0o755 and (folder / "new.txt").stat().st_mode & 0o777 == 0o644
        assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "f.txt"]  # the old folder is gone
    finally:
        os.umask(old)


def test_leftovers_of_killed_runs_are_cleaned_but_a_resumable_part_is_kept(tmp_path):
    target = tmp_path / "thing"
    killed = [cache.staging_path(target), cache.staging_path(target, ".old"), tmp_path / ".thing.abc123.part"]
    killed[0].mkdir()
    (killed[0] / "big.bin").write_bytes(b"0" * 1000)
    killed[1].write_text("x")
    killed[2].write_text("x")
    keep = [cache.partial_path(target), tmp_path / ".other.1-2.tmp", tmp_path / "thing.tmp"]
    for path in keep:
        path.write_text("mine")
    assert cache.leftovers(target) == sorted(killed)
    with cache.file_lock(target):
        assert sorted(cache.clean_leftovers(target)) == sorted(killed)
    assert all(not p.exists() for p in killed) and all(p.exists() for p in keep)


def test_file_lock_excludes_other_holders(tmp_path):
    target = tmp_path / "thing"
    inside, overlap = [], []

    def worker(i):
        with cache.file_lock(target, notice=""):
            if inside:
                overlap.append(i)
            inside.append(i)
            time.sleep(0.05)
            inside.remove(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlap == []
    assert (tmp_path / ".thing.lock").is_file()


LOCK_HOLDER = textwrap.dedent("""
    import importlib.util, sys, time
    spec = importlib.util.spec_from_file_location("cache", sys.argv[2])  # stdlib only: no torch import
    cache = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cache)
    with cache.file_lock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(60)
""")


def test_a_killed_lock_holder_does_not_block_the_next_run(tmp_path):
    target = tmp_path / "thing"
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(target), cache.__file__],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        holder.kill()  # SIGKILL: no cleanup code runs
        holder.wait(timeout=30)
        start = time.monotonic()
        with cache.file_lock(target):
            assert time.monotonic() - start < 5
    finally:
        holder.kill()
        holder.stdout.close()


@pytest.mark.parametrize(
    "code, words",
    [(errno.ENOSPC, "disk is full"), (errno.EROFS, "read-only"), (errno.EACCES, "read-only"),
     (errno.EIO, "could not be used")],
)
def test_os_errors_are_explained_with_the_path(tmp_path, code, words):
    with pytest.raises(cache.CacheError, match=words) as error:
        with cache.os_errors_explained(tmp_path / "x", "the thing"):
            raise OSError(code, os.strerror(code), str(tmp_path / "x" / "y"))
    assert str(tmp_path / "x" / "y") in str(error.value) and "the thing" in str(error.value)


def test_a_file_where_the_folder_should_be(tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("I am a file")
    with pytest.raises(cache.CacheError, match="should be a folder.*is a file"):
        cache.cached_build(blocker / "thing", build_two_files)


def test_read_verified_with_a_parser(tmp_path):
    target = cache.cached_build(tmp_path / "t", build_two_files)
    assert cache.read_verified(target, "a.txt", bytes.upper) == b"ALPHA"
    (target / "a.txt").write_bytes(b"\xff\xfe\xfd\xfc\xfb")  # same size, and the parser chokes on it

    def strict(payload):
        return payload.decode("utf-8")

    with pytest.raises(cache.ManifestError, match="changed or damaged"):  # the damage, not the parser's error
        cache.read_verified(target, "a.txt", strict)
