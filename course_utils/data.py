"""The IMDb movie reviews as a `review, sentiment` table (the book's movie_data.csv).

    df = course_utils.data.load_imdb()

Online, the Large Movie Review Dataset archive (aclImdb_v1.tar.gz, 50,000 labelled
reviews) is downloaded once with a progress bar, verified against its published
SHA-256, extracted safely and turned into a shuffled table cached as
`<cache>/imdb/movie_data.csv`; later calls read that CSV without touching the network.
Offline (COURSE_OFFLINE=1 / HF_HUB_OFFLINE=1, or the server does not answer within
PROBE_TIMEOUT_S seconds) a GENERATED review set in the same schema is used instead,
announced with one printed notice. Its reviews are templated, so a model that learns
on them proves the pipeline works, not that it understands film criticism.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from .environment import cache_dir, is_offline, url_answers

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
ARCHIVE_NAME = "aclImdb_v1.tar.gz"
TABLE_NAME = "movie_data.csv"
COLUMNS = ("review", "sentiment")  # sentiment: 1 = positive, 0 = negative
PROBE_TIMEOUT_S = 2.0
SHUFFLE_SEED = 0  # the book shuffles movie_data.csv with np.random.seed(0)

_announced = False


class DataError(RuntimeError):
    """A download, archive or table problem, with a message that says what to do."""


class ChecksumMismatchError(DataError):
    """The downloaded file is not the published archive (it has been removed)."""


class ArchiveError(DataError):
    """The archive is truncated, corrupt, or contains a member that would escape the target folder."""


class TableError(DataError):
    """The review table is missing a column, has bad labels, or is empty."""


# ----------------------------------------------------------------------------- download


def imdb_dir(cache: str | Path | None = None) -> Path:
    """Folder for the IMDb archive and table: `cache`, else COURSE_IMDB_DIR, else cache_dir()/'imdb'."""
    configured = cache if cache is not None else os.environ.get("COURSE_IMDB_DIR")
    path = Path(configured).expanduser() if configured else cache_dir() / "imdb"
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256sum(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksum(path: str | Path, expected: str) -> None:
    """Raise ChecksumMismatchError (and delete the file) if `path` does not hash to `expected`."""
    actual = sha256sum(path)
    if actual != expected.lower():
        Path(path).unlink(missing_ok=True)
        raise ChecksumMismatchError(
            f"{Path(path).name} has SHA-256 {actual} but {expected.lower()} was expected, so it is "
            "not the published archive (an interrupted copy, a proxy error page or a wrong mirror). "
            "The bad file has been removed; run again to download it afresh, or check COURSE_IMDB_URL."
        )


def download(
    url: str,
    target: str | Path,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = 30.0,
) -> Path:
    """Download `url` to `target` atomically, with a tqdm progress bar, verifying `sha256`.

    The bytes go to a hidden temporary file next to `target` that is renamed into place
    (os.replace) only once it is complete and verified, so an interrupted download never
    looks complete and simply runs again. On a checksum mismatch the file is removed.
    """
    from tqdm.auto import tqdm

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.", suffix=".part", delete=False)
    partial = Path(handle.name)
    digest = hashlib.sha256()
    try:
        with handle:
            try:
                response = urllib.request.urlopen(url, timeout=timeout)
            except urllib.error.HTTPError as error:
                raise DataError(
                    f"downloading {url} failed: the server answered HTTP {error.code} ({error.reason}). "
                    "Check the address (COURSE_IMDB_URL for a mirror) and run again."
                ) from error
            except (urllib.error.URLError, OSError) as error:
                raise DataError(
                    f"could not download {url}: {error}. Check your internet connection and run again, "
                    "or set COURSE_OFFLINE=1 to use the generated review set."
                ) from error
            with response:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                received = 0
                with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                          desc=f"downloading {target.name}", disable=not progress) as bar:
                    while True:
                        try:
                            chunk = response.read(1 << 16)
                        except Exception as error:  # IncompleteRead, reset connection, read timeout
                            raise DataError(
                                f"the download of {url} was interrupted after {received} bytes ({error}); "
                                "nothing was kept, run again to restart it."
                            ) from error
                        if not chunk:
                            break
                        handle.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
            if total is not None and received != total:
                raise DataError(
                    f"the download of {url} stopped after {received} of {total} bytes; "
                    "nothing was kept, run again to restart it."
                )
            handle.flush()
            os.fsync(handle.fileno())
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            raise ChecksumMismatchError(
                f"the file downloaded from {url} has SHA-256 {digest.hexdigest()} but {sha256.lower()} "
                "was expected, so it is not the published archive (a proxy error page or a wrong "
                "mirror?). The bad file has been removed; check COURSE_IMDB_URL and run again."
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


# ----------------------------------------------------------------------------- extraction


def _check_member(member: tarfile.TarInfo, target: Path) -> None:
    """Raise ArchiveError if extracting `member` into `target` could write outside it."""
    name = member.name
    parts = PurePosixPath(name).parts
    if name.startswith(("/", "\\")) or PurePosixPath(name).is_absolute() or (parts and ":" in parts[0]):
        raise ArchiveError(f"the archive member {name!r} has an absolute path; refusing to extract this archive.")
    if ".." in parts or ".." in Path(name).parts:
        raise ArchiveError(f"the archive member {name!r} contains '..'; refusing to extract this archive.")
    destination = (target / name).resolve()
    if not destination.is_relative_to(target):
        raise ArchiveError(f"the archive member {name!r} would be written outside the target folder; refusing.")
    if member.issym() or member.islnk():
        link = PurePosixPath(member.linkname)
        if link.is_absolute():
            raise ArchiveError(
                f"the archive member {name!r} is a link to the absolute path {member.linkname!r}; refusing."
            )
        # a symlink is relative to its own folder, a hard link to the archive root
        base = (target / name).parent if member.issym() else target
        if not (base / member.linkname).resolve().is_relative_to(target):
            raise ArchiveError(
                f"the archive member {name!r} is a link that points outside the target folder "
                f"({member.linkname!r}); refusing to extract this archive."
            )
    elif not (member.isfile() or member.isdir()):
        raise ArchiveError(f"the archive member {name!r} is a device or pipe; refusing to extract this archive.")


def safe_extract(archive: str | Path, target: str | Path) -> Path:
    """Extract a .tar(.gz) into `target` after checking every member; return `target`.

    Each member is checked first (no absolute paths, no '..', no link leaving the
    target, no devices), then tarfile's own "data" filter is applied as a second line
    of defence. Extraction goes to a temporary folder renamed into place, so a failure
    leaves nothing half-extracted behind.
    """
    archive, target = Path(archive), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent)).resolve()
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                members = tar.getmembers()  # reads the whole archive: a truncated one fails here
                if not members:
                    raise ArchiveError(f"{archive.name} is empty; delete it and run again to download it afresh.")
                for member in members:
                    _check_member(member, staging)
                tar.extractall(staging, members=members, filter="data")
        except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
            raise ArchiveError(
                f"{archive.name} is truncated or corrupt ({error}). Delete it and run again to "
                "download it afresh."
            ) from error
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


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
        raise TableError(f"{source} has sentiment labels {sorted(labels)}; only 0 (negative) and 1 (positive) are allowed.")
    if df["review"].isna().any():
        raise TableError(f"{source} has rows without a review; delete it and run again to rebuild it.")
    return df.loc[:, list(COLUMNS)].astype({"review": str, "sentiment": "int64"}).reset_index(drop=True)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read and validate a `review, sentiment` CSV such as movie_data.csv."""
    try:
        df = pd.read_csv(path, encoding="utf-8")
    except pd.errors.EmptyDataError:
        df = pd.DataFrame()
    if len(df.columns) == 0:
        raise TableError(f"{Path(path).name} is empty. Delete it and run again to rebuild it.")
    return validate_table(df, Path(path).name)


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a validated table as CSV atomically (temporary file, then os.replace)."""
    path = Path(path)
    df = validate_table(df)
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".part", delete=False)
    handle.close()
    try:
        df.to_csv(handle.name, index=False, encoding="utf-8")
        os.replace(handle.name, path)
    finally:
        Path(handle.name).unlink(missing_ok=True)
    return path


def table_from_aclimdb(root: str | Path, seed: int = SHUFFLE_SEED) -> pd.DataFrame:
    """Build the shuffled `review, sentiment` table from an extracted aclImdb folder.

    Reads aclImdb/{train,test}/{pos,neg}/*.txt (pos -> 1, neg -> 0), as the book does to
    make movie_data.csv, and shuffles the rows with a fixed seed.
    """
    root = Path(root)
    if (root / "aclImdb").is_dir():
        root = root / "aclImdb"
    rows: list[tuple[str, int]] = []
    for split in ("test", "train"):
        for folder, label in (("pos", 1), ("neg", 0)):
            directory = root / split / folder
            if not directory.is_dir():
                raise ArchiveError(
                    f"the extracted archive has no {split}/{folder} folder, so it is not the aclImdb "
                    "archive; check COURSE_IMDB_URL, delete the cached files and run again."
                )
            for file in sorted(directory.glob("*.txt")):
                rows.append((file.read_text(encoding="utf-8"), label))
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    order = np.random.RandomState(seed).permutation(len(df))
    return validate_table(df.iloc[order], "the extracted aclImdb reviews")


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
    df.attrs["source"] = source  # "imdb" or "generated": notebooks adapt their expectations
    return df


def load_imdb(
    cache: str | Path | None = None,
    url: str | None = None,
    sha256: str | None = None,
    offline: bool | None = None,
    n_generated: int = 2000,
    progress: bool = True,
    keep_extracted: bool = False,
) -> pd.DataFrame:
    """The IMDb reviews as a shuffled `review, sentiment` table (sentiment 1 = positive).

    Order of preference: offline mode -> generated reviews (the network is never
    touched); the cached movie_data.csv; the downloaded, verified and extracted archive;
    generated reviews if the server does not answer within PROBE_TIMEOUT_S seconds.
    `cache` (or COURSE_IMDB_DIR), `url` (or COURSE_IMDB_URL) and `sha256`
    (or COURSE_IMDB_SHA256) configure where and from what mirror. `df.attrs["source"]`
    says which data you got: "imdb" or "generated".
    """
    offline = is_offline() if offline is None else offline
    url = url or os.environ.get("COURSE_IMDB_URL") or IMDB_URL
    sha256 = sha256 or os.environ.get("COURSE_IMDB_SHA256") or IMDB_SHA256
    if offline:
        _announce(
            f"[course_utils] offline mode: using {n_generated:,} GENERATED movie reviews instead of the "
            "IMDb dataset.\n  Same columns (review, sentiment); the reviews are templated, so accuracies "
            "on them are not the book's.\n  For the real data: unset COURSE_OFFLINE and HF_HUB_OFFLINE "
            "and check your internet connection."
        )
        return _tagged(generate_reviews(n_generated), "generated")
    folder = imdb_dir(cache)
    table = folder / TABLE_NAME
    if table.is_file():
        return _tagged(read_table(table), "imdb")
    archive = folder / ARCHIVE_NAME
    if archive.is_file():
        verify_checksum(archive, sha256)  # a file copied in by hand: check it before trusting it
    else:
        if not url_answers(url, PROBE_TIMEOUT_S):
            _announce(
                f"[course_utils] the IMDb server did not answer within {PROBE_TIMEOUT_S:g} s: using "
                f"{n_generated:,} GENERATED movie reviews instead.\n  Same columns (review, sentiment); "
                "accuracies on them are not the book's.\n  For the real data: check your internet "
                "connection (or set COURSE_IMDB_URL to a mirror) and run again."
            )
            return _tagged(generate_reviews(n_generated), "generated")
        download(url, archive, sha256=sha256, progress=progress)
    extracted = safe_extract(archive, folder / "extracted")
    try:
        df = table_from_aclimdb(extracted)
    finally:
        if not keep_extracted:
            shutil.rmtree(extracted, ignore_errors=True)
    write_table(df, table)
    return _tagged(df, "imdb")
