"""The one build-verify-cache road for everything course_utils caches (tables, the real-text set, stand-ins).

    with file_lock(target):                 # cross-process: N concurrent builders all succeed
        clean_leftovers(target)             # what killed runs left next to `target`
        staging = make_staging_dir(target)  # hidden sibling, modes per umask
        ...build into staging...
        write_manifest(staging)             # LAST: names, sizes, SHA-256 of every file
        publish(staging, target)            # atomic rename into place

`cached_build(target, build)` does exactly that, and nothing when `verify_manifest(target)`
finds no problem (readers of a complete folder never need the lock, so a shared read-only
classroom cache works). `read_verified(folder, name)` reads one file and checks it against
the manifest in the same pass. Single files are published the same way:
`staging_path(target)` -> write -> `publish(path, target)`.

Every OSError a learner can hit while writing (disk full, read-only folder, a file where a
folder should be) becomes a CacheError that says what happened, where, and what to do.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import shutil
import sys
import threading
from pathlib import Path
from typing import Callable, Iterator, TypeVar

MANIFEST = ".manifest.json"
MANIFEST_FORMAT = 1
T = TypeVar("T")
LEFTOVER_SUFFIXES = (".tmp", ".old", ".part")  # staging_path(), publish() and older versions' downloads

if sys.platform == "win32":  # pragma: no cover - the course is tested on Linux and macOS
    import msvcrt
else:
    import fcntl


class CacheError(RuntimeError):
    """A cache folder cannot be written, read or trusted; the message says what to do."""


class ManifestError(CacheError):
    """A cached folder is incomplete or its files differ from its manifest."""


# ----------------------------------------------------------------------------- errors


def explain_os_error(error: OSError, path: str | Path, what: str = "the course cache") -> CacheError:
    """A CacheError that says in words what `error` (raised at `path`) means and what to do."""
    where = f"{what} ({path})"
    if error.errno == errno.ENOSPC or error.errno == getattr(errno, "EDQUOT", -1):
        advice = (f"the disk is full while writing {where}. Free some space (or set COURSE_CACHE_DIR "
                  "to a folder on a bigger disk) and run again.")
    elif error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        advice = (f"{where} cannot be written: the folder is read-only for you ({error.strerror}). "
                  "Set COURSE_CACHE_DIR to a folder of your own (or ask whoever set up the shared cache "
                  "to build it once), and run again.")
    elif error.errno in (errno.ENOTDIR, errno.EEXIST) and Path(path).exists() and not Path(path).is_dir():
        advice = (f"{where} should be a folder but {path} is a file. Point COURSE_CACHE_DIR at a folder "
                  "(or move the file away) and run again.")
    else:
        advice = f"{where} could not be used: {error}. Check the path and run again."
    return CacheError(advice)


@contextlib.contextmanager
def os_errors_explained(path: str | Path, what: str = "the course cache") -> Iterator[None]:
    """Turn any OSError inside the block into an explained CacheError about `path`."""
    try:
        yield
    except CacheError:
        raise
    except OSError as error:
        raise explain_os_error(error, getattr(error, "filename", None) or path, what) from error


# ----------------------------------------------------------------------------- lock


@contextlib.contextmanager
def file_lock(path: str | Path, notice: str | None = None) -> Iterator[None]:
    """Hold an exclusive cross-process lock on `path` (lock file `.<name>.lock` next to it).

    The operating system releases the lock when its holder exits, even on SIGKILL, so a
    killed run never blocks the next one. The lock file is opened read-only (flock needs no
    write access) and never deleted, because deleting a lock file races with its next user.
    """
    path = Path(path)
    lock_path = path.parent / f".{path.name}.lock"
    with os_errors_explained(lock_path, "the lock file of the course cache"):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDONLY | os.O_CREAT, 0o666)  # umask applies
    try:
        if sys.platform == "win32":  # pragma: no cover
            while True:
                try:
                    msvcrt.locking(fd, msvcrt.LK_LOCK, 1)
                    break
                except OSError:
                    continue
        else:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(notice or f"[course_utils] waiting for another process that is building {path} ...",
                      flush=True)
                fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


# ----------------------------------------------------------------------------- staging and publishing


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def apply_umask(path: str | Path) -> None:
    """Give `path` (recursively) the modes a fresh file/folder gets under the current umask.

    Files written through mkstemp/mkdtemp, or by other tools (pip, save_pretrained), keep
    0600/0700; a shared classroom cache needs what the umask says (0644/0755 for 022).
    Executable bits of files are kept as they are.
    """
    mask = _umask()
    path = Path(path)
    items = [path, *path.rglob("*")] if path.is_dir() and not path.is_symlink() else [path]
    for item in items:
        if item.is_symlink():
            continue
        if item.is_dir():
            os.chmod(item, 0o777 & ~mask)
        else:
            executable = item.stat().st_mode & 0o111
            os.chmod(item, (0o666 | executable) & ~mask)


def staging_path(target: str | Path, suffix: str = ".tmp") -> Path:
    """A hidden, unique, not yet existing sibling of `target` to build it in: `.<name>.<pid>-<hex>.tmp`."""
    target = Path(target)
    return target.parent / f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}{suffix}"


def make_staging_dir(target: str | Path) -> Path:
    """Create and return a staging folder for `target` (modes per umask, unlike mkdtemp's 0700)."""
    staging = staging_path(target)
    with os_errors_explained(staging.parent):
        staging.parent.mkdir(parents=True, exist_ok=True)
        staging.mkdir()
    return staging


def publish(staging: str | Path, target: str | Path) -> Path:
    """Move a finished staging file or folder to `target` atomically, with modes per umask.

    A file replaces `target` in one rename. A folder that already exists (an outdated or
    damaged build) is first renamed aside and deleted after the new one is in place, so
    `target` is never half-written. Call it while holding file_lock(target).
    """
    staging, target = Path(staging), Path(target)
    with os_errors_explained(target):
        apply_umask(staging)
        if staging.is_dir() and target.exists():
            old = staging_path(target, ".old")
            os.replace(target, old)
            os.replace(staging, target)
            _remove(old)
        else:
            os.replace(staging, target)
    return target


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def partial_path(target: str | Path) -> Path:
    """Where an interrupted download of `target` is kept to be resumed (`.<name>.part`); never a leftover."""
    target = Path(target)
    return target.parent / f".{target.name}.part"


def leftovers(target: str | Path) -> list[Path]:
    """Staging files/folders of `target` (`.<name>.*.tmp` / `.old` / `.part`) left by runs that were killed."""
    target = Path(target)
    if not target.parent.is_dir():
        return []
    prefix, keep = f".{target.name}.", partial_path(target).name
    return sorted(p for p in target.parent.iterdir()
                  if p.name.startswith(prefix) and p.name.endswith(LEFTOVER_SUFFIXES) and p.name != keep)


def clean_leftovers(target: str | Path) -> list[Path]:
    """Delete what killed runs left next to `target`; call it while holding file_lock(target).

    Whoever made them held the same lock, which we now hold, so they are finished or dead.
    """
    found = leftovers(target)
    for path in found:
        _remove(path)
    return found


# ----------------------------------------------------------------------------- manifest


def sha256sum(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _manifest_files(folder: Path) -> list[str]:
    names = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if path.is_file() and not path.is_symlink() and not any(part.startswith(".") for part in relative.parts):
            names.append(relative.as_posix())
    return names


def write_manifest(folder: str | Path, names: list[str] | None = None) -> Path:
    """Write `<folder>/.manifest.json` (size and SHA-256 of `names`, default every non-hidden file); write it LAST."""
    folder = Path(folder)
    names = _manifest_files(folder) if names is None else list(names)
    files = {name: {"size": (folder / name).stat().st_size, "sha256": sha256sum(folder / name)} for name in names}
    text = json.dumps({"format": MANIFEST_FORMAT, "files": files}, indent=1, sort_keys=True)
    path = folder / MANIFEST
    partial = staging_path(path)
    with os_errors_explained(folder):
        partial.write_text(text + "\n", encoding="utf-8")
        publish(partial, path)
    return path


def read_manifest(folder: str | Path) -> dict[str, dict]:
    """The `files` entry of a folder's manifest; ManifestError if it is missing or unreadable."""
    path = Path(folder) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files = manifest["files"]
        if manifest.get("format") != MANIFEST_FORMAT or not isinstance(files, dict):
            raise ValueError("unknown format")
        return files
    except FileNotFoundError:
        raise ManifestError(f"{folder} has no manifest: it is incomplete (a run was interrupted) "
                            "or was made by an older version.") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ManifestError(f"the manifest {path} is damaged ({error}).") from None


def verify_manifest(folder: str | Path, hashes: bool = True) -> list[str]:
    """Problems of a cached folder (missing manifest, missing/resized/changed files); [] if it is intact.

    `hashes=False` checks names and sizes only, for large folders checked on every use.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return [f"{folder} does not exist"]
    try:
        files = read_manifest(folder)
    except ManifestError as error:
        return [str(error)]
    problems = []
    for name, entry in files.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif path.stat().st_size != entry.get("size"):
            problems.append(f"{name} has {path.stat().st_size} bytes, not {entry.get('size')}")
        elif hashes and sha256sum(path) != entry.get("sha256"):
            problems.append(f"{name} has been changed (its SHA-256 differs from the manifest)")
    return problems


def check_manifest(folder: str | Path, hashes: bool = True) -> None:
    """Raise a ManifestError naming the folder to delete if verify_manifest finds problems."""
    problems = verify_manifest(folder, hashes)
    if problems:
        raise ManifestError(
            f"the cached folder {folder} is damaged: {'; '.join(problems)}. "
            f"Delete the folder {folder} and run again to rebuild it."
        )


def read_verified(folder: str | Path, name: str, parse: Callable[[bytes], T] | None = None) -> T | bytes:
    """The bytes of `folder/name` (or `parse(bytes)`), checked against the folder's manifest.

    The SHA-256 is computed in a second thread while `parse` runs (hashlib releases the
    GIL), so verifying a table on every use costs little wall time. A damaged file raises
    ManifestError, also when `parse` fails on it first.
    """
    folder = Path(folder)
    entry = read_manifest(folder).get(name)
    if entry is None:
        raise ManifestError(f"{name} is not listed in the manifest of {folder}.")
    try:
        payload = (folder / name).read_bytes()
    except FileNotFoundError:
        raise ManifestError(f"{folder / name} is missing.") from None
    damaged = ManifestError(f"{folder / name} has been changed or damaged since it was built "
                            "(its size or SHA-256 differs from the manifest).")
    if len(payload) != entry.get("size"):
        raise damaged
    digest: list[str] = []
    hasher = threading.Thread(target=lambda: digest.append(hashlib.sha256(payload).hexdigest()))
    hasher.start()
    try:
        result = parse(payload) if parse is not None else payload
    except Exception:
        hasher.join()
        if digest[0] != entry.get("sha256"):
            raise damaged from None
        raise
    hasher.join()
    if digest[0] != entry.get("sha256"):
        raise damaged
    return result


# ----------------------------------------------------------------------------- the whole road


def cached_build(target: str | Path, build: Callable[[Path], None], what: str = "the cache",
                 hashes: bool = True) -> Path:
    """Return folder `target`, built by `build(staging)` once, verified, and shared by all processes.

    If `target` is intact (verify_manifest) it is returned at once, without the lock.
    Otherwise, under file_lock(target): re-check (another process may just have built it),
    clean leftovers of killed runs, call `build` on a fresh staging folder, write the
    manifest last and publish the folder atomically. A failed build leaves nothing behind.
    """
    target = Path(target)
    if not verify_manifest(target, hashes):
        return target
    with file_lock(target):
        if not verify_manifest(target, hashes):
            return target
        with os_errors_explained(target, what):
            clean_leftovers(target)
            staging = make_staging_dir(target)
            try:
                build(staging)
                write_manifest(staging)
                publish(staging, target)
            finally:
                _remove(staging)  # gone already after publish; a failed build leaves nothing
    return target
