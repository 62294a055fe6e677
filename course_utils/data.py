"""Movie reviews as a `review, sentiment` table (the book's movie_data.csv), online and offline.

    df = course_utils.data.load_imdb()     # df.attrs["source"]: "imdb", "review-sentences" or "generated"

Online, the Large Movie Review Dataset archive (aclImdb_v1.tar.gz, 50,000 labelled IMDb
reviews) is downloaded once (progress bar, resumable, verified against its published
SHA-256); the reviews are read straight from the archive (nothing is extracted) into a
shuffled table cached as `<cache>/imdb/movie_data.csv` with a manifest.

Offline (COURSE_OFFLINE=1 / HF_HUB_OFFLINE=1, or the IMDb server cannot be reached) the
REAL-TEXT SET is used instead, announced: 10,605 Rotten Tomatoes review sentences, each
rated by at least 20 people (the VADER research data, Hutto & Gilbert 2014, MIT licence), fetched
once with pip (`python -m course_utils.prepare`, run by `make lab`/`make test`) and
cached under `<cache>/vader/`. `load_vader(kind)` gives its four tables, and
`load_review_sentences()` the clearly rated movie sentences as `review, sentiment`.
Templated reviews (`generate_reviews`) are only the last fallback and a test fixture.

Every archive is read through `read_archive`: regular files only, links/devices/sparse
members refused, member count and sizes capped. Every cache goes through course_utils.cache
(lock, staging, manifest, atomic publish).
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import re
import socket
import ssl
import subprocess
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from . import cache as _cache
from .cache import (CacheError, ManifestError, file_lock, os_errors_explained, partial_path, publish, sha256sum,
                    staging_path)
from .environment import cache_dir, is_offline

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
ARCHIVE_NAME = "aclImdb_v1.tar.gz"
TABLE_NAME = "movie_data.csv"
COLUMNS = ("review", "sentiment")  # sentiment: 1 = positive, 0 = negative
PROBE_TIMEOUT_S = 2.0
SHUFFLE_SEED = 0  # the book shuffles movie_data.csv with np.random.seed(0)

# HTTP: a stalled or trickling server fails instead of hanging forever (like curl's --speed-limit)
READ_TIMEOUT_S = 30.0
MIN_RATE = 1024  # bytes/s, averaged over RATE_WINDOW_S
RATE_WINDOW_S = 30.0

# caps for reading the IMDb archive (the real one: ~100,000 members, reviews up to ~14 kB, ~230 MB in all)
IMDB_REVIEW = re.compile(r"aclImdb/(train|test)/(pos|neg)/[^/\x00]+\.txt")
MAX_MEMBERS = 200_000
MAX_REVIEW_BYTES = 1 << 20
MAX_TOTAL_BYTES = 1 << 30

# the real-text set: the source distribution of vaderSentiment 3.3.2 (MIT), fetched with pip
VADER_REQUIREMENT = "vaderSentiment==3.3.2"
VADER_SDIST = "vaderSentiment-3.3.2.tar.gz"
VADER_SHA256 = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
VADER_INNER = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
VADER_FILES = {  # kind -> member of the inner archive, with its number of rows
    "movie": ("hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt", 10_605),
    "nyt": ("hutto_ICWSM_2014/nytEditorialSnippets_GroundTruth.txt", 5_190),
    "amazon": ("hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt", 3_708),
    "tweets": ("hutto_ICWSM_2014/tweets_GroundTruth.txt", 4_200),
}
VADER_TABLES = "tables-v1"  # bump when the tables' format changes, so old caches are rebuilt
POSITIVE_SCORE, NEGATIVE_SCORE = 0.5, -0.5  # mean rating on -4..+4; sentences in between are dropped
PIP_TIMEOUT_S = 600

_announced = False


class DataError(CacheError):
    """A download, archive or table problem, with a message that says what to do."""


class ChecksumMismatchError(DataError):
    """The downloaded file is not the published archive (it has been removed)."""


class ArchiveError(DataError):
    """The archive is truncated, corrupt, or contains a member this course refuses to read."""


class TableError(DataError):
    """The review table is missing a column, has bad labels, or is empty."""


# ----------------------------------------------------------------------------- settings


def checksum_setting(value: str, name: str = "COURSE_IMDB_SHA256") -> str:
    """A SHA-256 as typed or pasted (whitespace, upper case), normalised; DataError if it is not one."""
    cleaned = "".join(value.split()).lower()
    if not re.fullmatch(r"[0-9a-f]{64}", cleaned):
        raise DataError(f"{name}={value!r} is not a SHA-256 checksum (64 hexadecimal digits); "
                        "copy it again from the mirror's page, or unset it.")
    return cleaned


def imdb_dir(cache: str | Path | None = None) -> Path:
    """Folder for the IMDb archive and table: `cache`, else COURSE_IMDB_DIR, else cache_dir()/'imdb'."""
    configured = cache if cache is not None else os.environ.get("COURSE_IMDB_DIR", "").strip()
    path = Path(configured).expanduser() if configured else cache_dir() / "imdb"
    with os_errors_explained(path, "the IMDb folder"):
        path.mkdir(parents=True, exist_ok=True)
    return path


def vader_dir() -> Path:
    """Folder for the real-text set: cache_dir()/'vader'."""
    path = cache_dir() / "vader"
    with os_errors_explained(path, "the review-sentence folder"):
        path.mkdir(parents=True, exist_ok=True)
    return path


# ----------------------------------------------------------------------------- download


def verify_checksum(path: str | Path, expected: str) -> None:
    """Raise ChecksumMismatchError (and delete the file) if `path` does not hash to `expected`."""
    actual, expected = sha256sum(path), checksum_setting(expected, "the expected checksum")
    if actual != expected:
        Path(path).unlink(missing_ok=True)
        raise ChecksumMismatchError(
            f"{path} has SHA-256 {actual} but {expected} was expected, so it is not the published "
            "archive (an interrupted copy, a proxy error page or a wrong mirror). The bad file has "
            "been removed; run again to download it afresh, or check COURSE_IMDB_URL."
        )


def _cause(error: BaseException) -> str:
    """The real reason a request failed, in words (status code, DNS, refused, timeout)."""
    if isinstance(error, urllib.error.HTTPError):
        return f"the server answered HTTP {error.code} ({error.reason})"
    reason = error.reason if isinstance(error, urllib.error.URLError) else error
    if isinstance(reason, socket.gaierror):
        return f"the server's name could not be resolved (DNS: {reason.strerror or reason})"
    if isinstance(reason, ConnectionRefusedError):
        return "the connection was refused (nothing listens at that address)"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return "the server did not answer in time (timeout)"
    if isinstance(reason, ssl.SSLError):
        return f"the secure connection failed (TLS: {reason})"
    return f"{type(reason).__name__}: {reason}"


def probe(url: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """None if the server of `url` answers at all (any HTTP status) within `timeout`, else why not.

    An HTTP error (500, 503, 405 for HEAD) is an answer: the download then reports it,
    instead of mistaking a broken server for a missing network. The probe runs in a daemon
    thread, so a slow DNS lookup cannot hold the caller longer than `timeout`.
    """
    answer: dict[str, str | None] = {}

    def run() -> None:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
                answer["cause"] = None
        except urllib.error.HTTPError:
            answer["cause"] = None
        except Exception as error:  # DNS, refused, timeout, TLS
            answer["cause"] = _cause(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    return answer.get("cause", f"the server did not answer within {timeout:g} s (timeout)")


def download(
    url: str,
    target: str | Path,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float | None = None,
    min_rate: float | None = None,
    rate_window: float | None = None,
) -> Path:
    """Download `url` to `target`, resumable, with a progress bar, verified against `sha256`.

    The bytes go to `.<name>.part` next to `target`, which is renamed into place only once
    complete and verified. If a run is interrupted (Ctrl-C, SIGKILL, a dropped connection,
    a server slower than `min_rate` bytes/s over `rate_window` s, no data for `timeout` s),
    the next run resumes with an HTTP Range request where the server supports it.
    Concurrent calls for the same `target` wait for each other (file_lock). Unset limits
    come from READ_TIMEOUT_S, MIN_RATE and RATE_WINDOW_S.
    """
    timeout = READ_TIMEOUT_S if timeout is None else timeout
    min_rate = MIN_RATE if min_rate is None else min_rate
    rate_window = RATE_WINDOW_S if rate_window is None else rate_window
    target = Path(target)
    expected = checksum_setting(sha256, "the expected checksum") if sha256 else None
    with file_lock(target), os_errors_explained(target, "the download"):
        _cache.clean_leftovers(target)  # also random-named .part files of older versions
        if target.is_file() and expected and sha256sum(target) == expected:
            return target  # another process finished it while we waited
        partial = partial_path(target)
        for attempt in range(2):
            resumed = _fetch(url, partial, progress, timeout, min_rate, rate_window)
            actual = sha256sum(partial)
            if expected is None or actual == expected:
                break
            partial.unlink(missing_ok=True)
            if not resumed or attempt:
                raise ChecksumMismatchError(
                    f"the file downloaded from {url} has SHA-256 {actual} but {expected} was expected, "
                    "so it is not the published archive (a proxy error page or a wrong mirror?). The bad "
                    f"file has been removed; check COURSE_IMDB_URL and COURSE_IMDB_SHA256 and run again."
                )
            # a resumed download that does not verify: the old part came from elsewhere; start afresh
        publish(partial, target)
    return target


def _fetch(url: str, partial: Path, progress: bool, timeout: float, min_rate: float, rate_window: float) -> bool:
    """Append the rest of `url` to `partial` (Range), or fetch it whole; True if it resumed."""
    from tqdm.auto import tqdm

    offset = partial.stat().st_size if partial.is_file() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # the kept part is not a prefix of what the server has
            partial.unlink()
            return _fetch(url, partial, progress, timeout, min_rate, rate_window)
        raise DataError(f"downloading {url} failed: {_cause(error)}. Check the address (COURSE_IMDB_URL "
                        "for a mirror) or try again later.") from error
    except (urllib.error.URLError, OSError) as error:
        raise DataError(f"could not download {url}: {_cause(error)}. Check your internet connection "
                        "(or COURSE_IMDB_URL) and run again, or set COURSE_OFFLINE=1 to work offline.") from error
    with response:
        resumed = bool(offset) and response.status == 206 and \
            response.headers.get("Content-Range", "").startswith(f"bytes {offset}-")
        if not resumed:
            offset = 0  # the server sent the whole file: start the part afresh
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        received = offset
        with open(partial, "ab" if resumed else "wb") as handle, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=f"downloading {partial.name[1:-5]}", disable=not progress,
        ) as bar:
            window_start, window_bytes = time.monotonic(), 0
            while True:
                try:
                    chunk = response.read1(1 << 16)  # what has arrived: read() would wait for 64 KiB
                except (TimeoutError, socket.timeout) as error:
                    raise DataError(f"the download of {url} stalled: no data for {timeout:g} s after "
                                    f"{received:,} bytes (timeout). The part is kept in {partial}; run "
                                    "again to resume.") from error
                except Exception as error:  # IncompleteRead, connection reset
                    raise DataError(f"the download of {url} was interrupted after {received:,} bytes "
                                    f"({_cause(error)}). The part is kept in {partial}; run again to "
                                    "resume.") from error
                if not chunk:
                    break
                handle.write(chunk)
                received += len(chunk)
                window_bytes += len(chunk)
                bar.update(len(chunk))
                elapsed = time.monotonic() - window_start
                if elapsed >= rate_window:
                    if window_bytes / elapsed < min_rate:
                        raise DataError(
                            f"the download of {url} is too slow: {window_bytes / elapsed:,.0f} bytes/s over the "
                            f"last {elapsed:.0f} s (less than {min_rate:,.0f}). The part is kept in {partial}; "
                            "run again to resume, or use a faster mirror (COURSE_IMDB_URL).")
                    window_start, window_bytes = time.monotonic(), 0
            handle.flush()
            os.fsync(handle.fileno())
    if total is not None and received != total:
        raise DataError(f"the download of {url} stopped after {received:,} of {total:,} bytes. The part is "
                        f"kept in {partial}; run again to resume.")
    return resumed


# ----------------------------------------------------------------------------- safe archive reading


def read_archive(
    archive: str | Path | bytes,
    wanted: Callable[[str], bool],
    max_members: int | None = None,
    max_member_bytes: int | None = None,
    max_total_bytes: int | None = None,
    name: str | None = None,
) -> Iterator[tuple[str, bytes]]:
    """Yield (member name, bytes) of the regular-file members of a .tar(.gz) for which `wanted(name)`.

    Nothing is ever written to disk, so no member can escape anywhere. The archive is
    refused (ArchiveError) if it holds a link, device, pipe, sparse or unknown member, a
    NUL in a name, a wanted name twice, more than `max_members` members, a wanted member
    over `max_member_bytes` or members over `max_total_bytes` in all (archive bombs are
    caught from their headers, before anything is decompressed). Unset caps come from
    MAX_MEMBERS, MAX_REVIEW_BYTES and MAX_TOTAL_BYTES.
    """
    max_members = MAX_MEMBERS if max_members is None else max_members
    max_member_bytes = MAX_REVIEW_BYTES if max_member_bytes is None else max_member_bytes
    max_total_bytes = MAX_TOTAL_BYTES if max_total_bytes is None else max_total_bytes
    label = name or (str(archive) if not isinstance(archive, bytes) else "the archive")

    def refuse(reason: str) -> ArchiveError:
        return ArchiveError(f"{label} {reason}; refusing to read this archive. If it is a cached download, "
                            "delete it and run again (and check COURSE_IMDB_URL if you use a mirror).")

    source = io.BytesIO(archive) if isinstance(archive, bytes) else open(archive, "rb")
    seen: set[str] = set()
    count = total = 0
    try:
        with source, tarfile.open(fileobj=source, mode="r|*") as tar:
            for member in tar:
                count += 1
                if count > max_members:
                    raise refuse(f"has more than {max_members:,} members (an archive bomb?)")
                shown = repr(member.name[:60] + ("..." if len(member.name) > 60 else ""))
                if "\x00" in member.name:
                    raise refuse(f"has a member name with a NUL byte ({shown})")
                if member.name.startswith(("/", "\\")) or ".." in re.split(r"[/\\]", member.name):
                    raise refuse(f"has a member with an absolute path or '..' ({shown})")
                if member.sparse is not None or member.type == tarfile.GNUTYPE_SPARSE:
                    raise refuse(f"has a sparse member ({shown})")
                if member.issym() or member.islnk():
                    raise refuse(f"has a link member ({shown})")
                if member.isdir():
                    continue
                if member.type not in (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE):
                    raise refuse(f"has a member that is not a regular file ({shown}: a device, pipe or "
                                 "unknown type)")
                total += member.size
                if total > max_total_bytes:
                    raise refuse(f"holds more than {max_total_bytes:,} bytes (an archive bomb?)")
                if not wanted(member.name):
                    continue
                if member.size > max_member_bytes:
                    raise refuse(f"has a member of {member.size:,} bytes ({shown}), more than "
                                 f"the {max_member_bytes:,} allowed")
                if member.name in seen:
                    raise refuse(f"has the member {shown} twice")
                seen.add(member.name)
                payload = tar.extractfile(member).read(member.size)
                if len(payload) != member.size:
                    raise EOFError(f"{member.name} is cut short")
                yield member.name, payload
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:  # gzip.BadGzipFile is an OSError
        raise ArchiveError(f"{label} is truncated or corrupt ({error}). Delete it and run again to "
                           "download it afresh.") from error


def reviews_from_archive(archive: str | Path, seed: int = SHUFFLE_SEED) -> pd.DataFrame:
    """The shuffled `review, sentiment` table of an aclImdb archive, read without extracting it.

    Reads aclImdb/{train,test}/{pos,neg}/*.txt (pos -> 1, neg -> 0) in the order the book's
    folder walk gives (test then train, pos then neg, by file name) and shuffles with `seed`.
    """
    found: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for name, payload in read_archive(archive, IMDB_REVIEW.fullmatch):
        _, split, folder, file = name.split("/")
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ArchiveError(f"{archive}: the review {name} is not UTF-8 text ({error}); this is not "
                               "the aclImdb archive. Delete it and run again.") from None
        found.setdefault((split, folder), []).append((file, text.replace("\r\n", "\n").replace("\r", "\n")))
    missing = [f"{s}/{f}" for s in ("test", "train") for f in ("pos", "neg") if (s, f) not in found]
    if missing:
        raise ArchiveError(f"{archive} has no reviews in aclImdb/{', aclImdb/'.join(missing)}, so it is not "
                           "the aclImdb archive; check COURSE_IMDB_URL, delete the file and run again.")
    rows = [(text, 1 if folder == "pos" else 0)
            for split in ("test", "train") for folder in ("pos", "neg")
            for _, text in sorted(found[(split, folder)])]
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    order = np.random.RandomState(seed).permutation(len(df))
    return validate_table(df.iloc[order], f"the reviews in {archive}")


# ----------------------------------------------------------------------------- tables


def validate_table(df: pd.DataFrame, source: str = "the review table") -> pd.DataFrame:
    """Check the `review, sentiment` schema (labels 0/1, not empty); return the two columns."""
    missing = [column for column in COLUMNS if column not in df.columns]
    if missing:
        raise TableError(
            f"{source} has no {', '.join(repr(c) for c in missing)} column (it has {list(df.columns)}); "
            f"the course expects the columns {list(COLUMNS)}. If it is a cached file, delete it and run again."
        )
    if len(df) == 0:
        raise TableError(f"{source} is empty. If it is a cached file, delete it and run again to rebuild it.")
    labels = set(pd.unique(df["sentiment"]))
    if not labels <= {0, 1}:
        raise TableError(f"{source} has sentiment labels {sorted(labels, key=str)}; only 0 (negative) and 1 "
                         "(positive) are allowed. If it is a cached file, delete it and run again to rebuild it.")
    if df["review"].isna().any():
        raise TableError(f"{source} has rows without a review; delete it and run again to rebuild it.")
    return df.loc[:, list(COLUMNS)].astype({"review": str, "sentiment": "int64"}).reset_index(drop=True)


def _parse_csv(payload: bytes | str | Path, source: str, **options) -> pd.DataFrame:
    try:
        return pd.read_csv(io.BytesIO(payload) if isinstance(payload, bytes) else payload,
                           encoding="utf-8", **options)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as error:
        raise TableError(f"{source} is damaged and cannot be read ({type(error).__name__}: {error}). "
                         "Delete it and run again to rebuild it.") from None


def read_table(path: str | Path) -> pd.DataFrame:
    """Read and validate a `review, sentiment` CSV such as movie_data.csv."""
    df = _parse_csv(Path(path), str(path))
    if len(df.columns) == 0:
        raise TableError(f"{path} is empty. Delete it and run again to rebuild it.")
    return validate_table(df, str(path))


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a validated table as CSV atomically (staging file, then rename; modes per umask)."""
    path = Path(path)
    df = validate_table(df)
    partial = staging_path(path)
    with os_errors_explained(path, "the review table"):
        try:
            df.to_csv(partial, index=False, encoding="utf-8")
            publish(partial, path)
        finally:
            partial.unlink(missing_ok=True)
    return path


def _read_cached_imdb(folder: Path) -> pd.DataFrame:
    """The cached IMDb table, checked against its manifest (ManifestError if it is not intact)."""
    source = str(folder / TABLE_NAME)
    return _cache.read_verified(folder, TABLE_NAME, lambda payload: validate_table(_parse_csv(payload, source), source))


# ----------------------------------------------------------------------------- the real-text set (VADER)


def _pip_download(folder: Path) -> None:
    """Run `python -m pip download` of the vaderSentiment source archive into `folder`."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--disable-pip-version-check", "--retries", "2", "--timeout", "20",
               VADER_REQUIREMENT, "-d", str(folder)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise DataError(f"pip did not finish fetching {VADER_REQUIREMENT} within {PIP_TIMEOUT_S} s; "
                        "check your connection to the package index and run `python -m course_utils.prepare` again.") from None
    if result.returncode != 0:
        detail = " | ".join(line.strip() for line in (result.stderr or result.stdout).strip().splitlines()[-3:])
        raise DataError(
            f"pip could not fetch {VADER_REQUIREMENT} (the review sentences used offline): exit code "
            f"{result.returncode}: {detail}. Check that pip can reach the package index (your proxy or "
            "pip configuration), then run `python -m course_utils.prepare` again."
        )


def fetch_vader_sdist(offline: bool | None = None) -> Path:
    """The verified vaderSentiment source archive in vader_dir(), fetched with pip if needed."""
    folder = vader_dir()
    target = folder / VADER_SDIST
    if target.is_file() and sha256sum(target) == VADER_SHA256:
        return target
    offline = is_offline() if offline is None else offline
    with file_lock(target), os_errors_explained(target, "the review-sentence folder"):
        _cache.clean_leftovers(target)
        if target.is_file():
            if sha256sum(target) == VADER_SHA256:
                return target
            target.unlink()  # ours, and not the pinned file: fetch it again
        if offline:
            raise DataError(
                f"the review sentences are not cached in {folder} and offline mode forbids fetching them. "
                "Run `python -m course_utils.prepare` once with internet access (unset COURSE_OFFLINE), "
                "or copy a cache folder that has them."
            )
        staging = _cache.make_staging_dir(target)
        try:
            _pip_download(staging)
            fetched = staging / VADER_SDIST
            if not fetched.is_file():
                raise DataError(f"pip ran but did not produce {VADER_SDIST} in {staging}; "
                                f"run `python -m course_utils.prepare` again.")
            actual = sha256sum(fetched)
            if actual != VADER_SHA256:
                raise ChecksumMismatchError(
                    f"{VADER_SDIST} from the package index has SHA-256 {actual} but {VADER_SHA256} is "
                    "pinned: it is not the published source archive (a proxy page or a tampered mirror?). "
                    "It was not kept; check your pip index configuration and run again.")
            publish(fetched, target)
        finally:
            _cache._remove(staging)
    return target


def parse_ground_truth(payload: bytes, name: str) -> pd.DataFrame:
    """Parse a VADER *_GroundTruth.txt file (UTF-8, CRLF, `id<TAB>score<TAB>text`) into `id, score, text`."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ArchiveError(f"{name} is not UTF-8 text ({error}); refusing it.") from None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the final newline, where a file has one (the published files end without)
    rows = []
    for number, line in enumerate(lines, start=1):
        line = line.removesuffix("\r")
        fields = line.split("\t")
        try:
            if len(fields) != 3 or not fields[0] or not fields[2].strip():
                raise ValueError("expected id<TAB>score<TAB>text")
            score = float(fields[1])
            if not -4.0 <= score <= 4.0:
                raise ValueError(f"score {score} outside -4..+4")
        except ValueError as error:
            raise ArchiveError(f"{name}, line {number}, is malformed ({error}): {line[:80]!r}; "
                               "refusing this file.") from None
        rows.append((fields[0], score, fields[2]))
    return pd.DataFrame(rows, columns=["id", "score", "text"])


def _build_vader_tables(staging: Path, offline: bool | None = None) -> None:
    """Write the four VADER tables (id, score, text) as CSV into `staging`, from the verified sdist."""
    sdist = fetch_vader_sdist(offline)
    inner = dict(read_archive(sdist, VADER_INNER.__eq__, max_members=1_000, max_member_bytes=64 << 20,
                              max_total_bytes=256 << 20))
    if VADER_INNER not in inner:
        raise ArchiveError(f"{sdist} has no member {VADER_INNER}, so it is not the vaderSentiment 3.3.2 "
                           "source archive; delete it and run `python -m course_utils.prepare` again.")
    members = {path for path, _ in VADER_FILES.values()}
    files = dict(read_archive(inner[VADER_INNER], members.__contains__, max_members=1_000,
                              max_member_bytes=64 << 20, max_total_bytes=256 << 20, name=VADER_INNER))
    for kind, (member, rows) in VADER_FILES.items():
        if member not in files:
            raise ArchiveError(f"{VADER_INNER} in {sdist} has no {member}; delete {sdist} and run again.")
        df = parse_ground_truth(files[member], member)
        if len(df) != rows:
            raise ArchiveError(f"{member} has {len(df):,} rows, not the {rows:,} of the published data; "
                               f"delete {sdist} and run again.")
        df.to_csv(staging / f"{kind}.csv", index=False, encoding="utf-8")


def prepare_vader(offline: bool | None = None) -> Path:
    """Fetch (pip), verify and cache the VADER tables once; return their folder (fast when cached).

    `offline=False` fetches even when COURSE_OFFLINE/HF_HUB_OFFLINE are set (setup time).
    """
    return _cache.cached_build(vader_dir() / VADER_TABLES, lambda staging: _build_vader_tables(staging, offline),
                               "the review-sentence tables")


def load_vader(kind: str = "movie") -> pd.DataFrame:
    """One table of the VADER research data as `id, score, text` (score: mean of 20 raters, -4..+4).

    kind: "movie" (Rotten Tomatoes sentences), "nyt" (New York Times editorials),
    "amazon" (Amazon product reviews) or "tweets". Fetched with pip on first use.
    """
    if kind not in VADER_FILES:
        raise ValueError(f"kind={kind!r} is not one of {list(VADER_FILES)}.")
    folder = vader_dir() / VADER_TABLES
    try:
        payload = _cache.read_verified(folder, f"{kind}.csv")
    except ManifestError:  # not built yet, or damaged: (re)build under the lock
        prepare_vader()
        payload = _cache.read_verified(folder, f"{kind}.csv")
    df = _parse_csv(payload, str(folder / f"{kind}.csv"), dtype={"id": str, "text": str}, keep_default_na=False)
    df.attrs["source"] = f"vader-{kind}"
    return df


def load_review_sentences() -> pd.DataFrame:
    """The clearly rated movie sentences as a shuffled `review, sentiment` table (~5,000 of each).

    Mean rating >= +0.5 -> 1 (positive), <= -0.5 -> 0 (negative); the sentences in between
    are dropped. Shuffled with SHUFFLE_SEED, like the IMDb table.
    """
    movie = load_vader("movie")
    clear = movie[(movie.score >= POSITIVE_SCORE) | (movie.score <= NEGATIVE_SCORE)]
    df = pd.DataFrame({"review": clear.text, "sentiment": (clear.score >= POSITIVE_SCORE).astype("int64")})
    order = np.random.RandomState(SHUFFLE_SEED).permutation(len(df))
    df = validate_table(df.iloc[order], "the review sentences")
    df.attrs.update(source="review-sentences", rated=len(movie))
    return df


# ----------------------------------------------------------------------------- generated reviews

_SUBJECTS = ["This movie", "The film", "This picture", "The sequel", "This thriller", "The comedy",
             "This drama", "The remake", "This documentary", "The director's new film"]
_POSITIVE = ["wonderful", "brilliant", "moving", "excellent", "delightful", "superb", "charming",
             "gripping", "beautiful", "hilarious", "touching", "outstanding", "clever", "memorable"]
_NEGATIVE = ["awful", "boring", "terrible", "dull", "clumsy", "tedious", "painful", "bland",
             "predictable", "disappointing", "forgettable", "messy", "lifeless", "annoying"]
_ASPECTS = ["acting", "script", "soundtrack", "camera work", "dialogue", "plot", "ending", "cast",
            "pacing", "special effects", "direction", "story"]
_POS_CLOSERS = ["I would happily watch it again.", "Highly recommended.", "I loved every minute of it.",
                "Ten out of ten from me.", "Go and see it.", "One of the best films this year."]
_NEG_CLOSERS = ["I want those two hours back.", "Not recommended.", "I nearly walked out.",
                "Two out of ten from me.", "Skip this one.", "One of the worst films this year."]
_NEUTRAL = [
    "The story follows a {job} in {place}.", "It runs for about {minutes} minutes.",
    "I watched it with {who} last {day}.", "It is based on a novel about a {job}.",
    "Most of it was filmed in {place}.", "The lead plays a {job} who moves to {place}.",
]
_JOBS = ["teacher", "detective", "farmer", "pilot", "chef", "nurse", "musician", "lawyer"]
_PLACES = ["Osaka", "a small village", "Paris", "the desert", "a space station", "New York", "the mountains"]
_WHO = ["my sister", "a friend", "my parents", "the kids", "my colleagues"]
_DAYS = ["Friday", "weekend", "Sunday", "night"]


def _generated_review(rng: random.Random, positive: bool) -> str:
    good, bad = (_POSITIVE, _NEGATIVE) if positive else (_NEGATIVE, _POSITIVE)
    sentences = [f"{rng.choice(_SUBJECTS)} was {rng.choice(good)}."]
    for _ in range(rng.randint(1, 9)):
        kind = rng.random()
        if kind < 0.35:
            sentences.append(f"The {rng.choice(_ASPECTS)} was {rng.choice(good)}.")
        elif kind < 0.55:  # negation: "not <opposite word>" carries this review's sentiment
            sentences.append(f"The {rng.choice(_ASPECTS)} was not {rng.choice(bad)} at all.")
        elif kind < 0.7:  # one remark against the overall sentiment, as real reviews have
            sentences.append(f"Only the {rng.choice(_ASPECTS)} was a bit {rng.choice(bad)}.")
        else:
            sentences.append(rng.choice(_NEUTRAL).format(
                job=rng.choice(_JOBS), place=rng.choice(_PLACES), minutes=rng.randint(80, 180),
                who=rng.choice(_WHO), day=rng.choice(_DAYS)))
    rng.shuffle(sentences)
    sentences.append(rng.choice(_POS_CLOSERS if positive else _NEG_CLOSERS))
    return " ".join(sentences)


def generate_reviews(n: int = 2000, seed: int = 123) -> pd.DataFrame:
    """A deterministic, balanced, generated `review, sentiment` table of `n` templated reviews."""
    if n < 2:
        raise ValueError("generate_reviews needs n >= 2 so that both sentiments appear.")
    rng = random.Random(seed)
    labels = [1] * (n // 2) + [0] * (n - n // 2)
    rng.shuffle(labels)
    rows = [(_generated_review(rng, bool(label)), label) for label in labels]
    return validate_table(pd.DataFrame(rows, columns=list(COLUMNS)), "the generated reviews")


# ----------------------------------------------------------------------------- entry point


def _announce(message: str) -> None:
    global _announced
    if not _announced:
        _announced = True
        print(message)


def _tagged(df: pd.DataFrame, source: str) -> pd.DataFrame:
    df.attrs["source"] = source  # "imdb", "review-sentences" or "generated": notebooks adapt their expectations
    return df


def _instead_of_imdb(why: str, fetch: bool, n_generated: int) -> pd.DataFrame:
    """The review sentences (fetched with pip if `fetch`), else generated reviews; announced."""
    try:
        if not fetch and not review_sentences_cached():
            raise DataError(f"they are not cached in {vader_dir()}")
        df = load_review_sentences()
    except DataError as error:
        _announce(
            f"[course_utils] {why}: using {n_generated:,} GENERATED movie reviews instead of the IMDb "
            f"dataset,\n  because the real review sentences are not available either ({error})\n  Same "
            "columns (review, sentiment); the reviews are templated, so accuracies on them mean little.\n"
            "  For real text: run `python -m course_utils.prepare` once with internet access."
        )
        return _tagged(generate_reviews(n_generated), "generated")
    _announce(
        f"[course_utils] {why}: using {len(df):,} REAL movie-review SENTENCES instead of the IMDb reviews:\n"
        f"  Rotten Tomatoes sentences, each rated by at least 20 people (VADER data, Hutto & Gilbert 2014); kept the "
        f"{len(df):,} of {df.attrs['rated']:,}\n  with a clear mean rating (>= +0.5 positive, <= -0.5 "
        "negative). They are short single sentences, not whole IMDb reviews,\n  so accuracies differ from "
        "the book's. For IMDb: unset COURSE_OFFLINE and HF_HUB_OFFLINE and check your connection."
    )
    return df


def review_sentences_cached() -> bool:
    """True if the review sentences can be loaded without the network (tables or source archive cached)."""
    folder = vader_dir()
    return not _cache.verify_manifest(folder / VADER_TABLES) or (folder / VADER_SDIST).is_file()


def load_imdb(
    cache: str | Path | None = None,
    url: str | None = None,
    sha256: str | None = None,
    offline: bool | None = None,
    n_generated: int = 2000,
    progress: bool = True,
) -> pd.DataFrame:
    """The IMDb reviews as a shuffled `review, sentiment` table (sentiment 1 = positive).

    Order of preference: offline mode -> the cached review sentences (the network is never
    touched); the cached, manifest-verified movie_data.csv; the table read from the
    downloaded, verified archive. If the official IMDb server cannot be reached, the review
    sentences are used instead (announced, with the reason); a configured mirror that fails
    is an error, never a silent switch. Generated reviews are the last fallback.
    `cache` (or COURSE_IMDB_DIR), `url` (or COURSE_IMDB_URL) and `sha256`
    (or COURSE_IMDB_SHA256) configure where and from what mirror. `df.attrs["source"]`
    says which data you got: "imdb", "review-sentences" or "generated".
    """
    offline = is_offline() if offline is None else offline
    if offline:
        return _instead_of_imdb("offline mode", False, n_generated)
    configured_url = url or os.environ.get("COURSE_IMDB_URL", "").strip() or None
    url = configured_url or IMDB_URL
    sha256 = checksum_setting(sha256 or os.environ.get("COURSE_IMDB_SHA256") or IMDB_SHA256)
    folder = imdb_dir(cache)
    table, archive = folder / TABLE_NAME, folder / ARCHIVE_NAME
    try:
        return _tagged(_read_cached_imdb(folder), "imdb")
    except ManifestError:
        pass
    if table.is_file() and not (folder / _cache.MANIFEST).exists() and not archive.exists():
        # a movie_data.csv put here by hand (the book's file): use it as it is, never replace it
        return _tagged(read_table(table), "imdb")
    if not archive.is_file() and not partial_path(archive).is_file() and configured_url is None:
        cause = probe(url)
        if cause is not None:
            return _instead_of_imdb(f"the IMDb server cannot be reached ({cause})", True, n_generated)
    with file_lock(table):
        try:  # another process may have built it while we waited
            return _tagged(_read_cached_imdb(folder), "imdb")
        except ManifestError:
            pass
        for target in (table, folder / _cache.MANIFEST):
            _cache.clean_leftovers(target)
        if archive.is_file():
            verify_checksum(archive, sha256)  # a file copied in by hand, or a cache: check before trusting it
        else:
            download(url, archive, sha256=sha256, progress=progress)
        df = reviews_from_archive(archive)
        write_table(df, table)
        with os_errors_explained(folder, "the IMDb folder"):
            _cache.write_manifest(folder, [TABLE_NAME])
    return _tagged(df, "imdb")
