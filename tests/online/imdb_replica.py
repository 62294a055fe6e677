"""A replica of the IMDb archive (aclImdb_v1.tar.gz) made from real review sentences.

    python -m tests.online.imdb_replica      # build it once and print its statistics

Layout as in the real Large Movie Review Dataset v1.0 (Maas et al., 2011):

    aclImdb/README, aclImdb/imdb.vocab
    aclImdb/{train,test}/{pos,neg}/{id}_{rating}.txt   12,500 reviews each (ratings 7-10 / 1-4)
    aclImdb/train/unsup/{id}_0.txt                     50,000 unlabelled reviews
    aclImdb/{train,test}/urls_{pos,neg}.txt, aclImdb/train/urls_unsup.txt

(The real archive also has bag-of-words .feat files and imdbEr.txt; the course never reads
them, so they are left out.) Reviews are built from the VADER research data's 10,605
Rotten Tomatoes review sentences (real text, each rated by 20 people): a positive review is
mostly positive sentences (85 %, the rest of the other polarity, as mixed reviews are), with
`<br /><br />` between paragraphs as in the real files. Review LENGTHS follow IMDb's: the
real reviews have a median of about 174 and a mean of about 231 words, and roughly one in
eight is longer than 512 WordPiece tokens, which a log-normal length (median 174 words,
sigma 0.75, so mean 174 * exp(0.75**2 / 2) = 230) clipped to 10..2,470 words reproduces.
The archive is deterministic (fixed seed, fixed timestamps), so its SHA-256 is the same on
every machine with the same source text.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import random
import re
import tarfile
import tempfile
from collections import Counter
from pathlib import Path

from .replicas import replica_root

ARCHIVE_NAME = "aclImdb_v1.tar.gz"
IMDB_REPLICA_VERSION = 1  # bump when the builder changes
SEED = 0
MEDIAN_WORDS, SIGMA, MIN_WORDS, MAX_WORDS = 174, 0.75, 10, 2470
MIXED_SHARE = 0.15  # share of sentences of the other polarity in a labelled review
SPLIT_SIZE, UNSUP_SIZE = 12_500, 50_000
REVIEWS_PER_TITLE = 30  # the real dataset has at most 30 reviews per film


def review_sentences() -> tuple[list[str], list[str], list[str]]:
    """(positive, negative, all) real movie-review sentences.

    From course_utils.data.load_vader("movie") (the course's one road to this data).
    Positive: mean rating >= +0.5, negative: <= -0.5, as the course's offline set.
    """
    from course_utils import data

    table = data.load_vader("movie")
    rows = list(zip(table["text"].astype(str), table["score"].astype(float)))
    positive = [text for text, score in rows if score >= 0.5]
    negative = [text for text, score in rows if score <= -0.5]
    if len(positive) < 1000 or len(negative) < 1000:
        raise RuntimeError(f"only {len(positive)} positive and {len(negative)} negative review sentences were found.")
    return positive, negative, [text for text, _ in rows]


def review_length(rng: random.Random) -> int:
    """A review length in words, drawn from the log-normal fit of IMDb's lengths."""
    words = round(math.exp(rng.gauss(math.log(MEDIAN_WORDS), SIGMA)))
    return min(max(words, MIN_WORDS), MAX_WORDS)


def make_review(rng: random.Random, main: list[str], other: list[str] | None) -> str:
    """One review of about review_length() words from whole sentences, in paragraphs."""
    target = review_length(rng)
    sentences: list[str] = []
    words = 0
    while words < target:
        pool = other if other is not None and rng.random() < MIXED_SHARE else main
        sentence = rng.choice(pool)
        n = len(sentence.split())
        if sentences and words + n - target > target - words:
            break  # stopping short is closer to the target than one more sentence
        sentences.append(sentence)
        words += n
    paragraphs, i = [], 0
    while i < len(sentences):
        step = rng.randint(3, 7)
        paragraphs.append(" ".join(sentences[i:i + step]))
        i += step
    return "<br /><br />".join(paragraphs)


_README = """Large Movie Review Dataset v1.0 -- LOCAL REPLICA for the course's online rehearsal

This archive has the layout of aclImdb_v1.tar.gz (Maas et al., ACL 2011,
https://ai.stanford.edu/~amaas/data/sentiment/) but NOT its reviews. Each review here is
built from real Rotten Tomatoes review sentences of the VADER research data (Hutto and
Gilbert, ICWSM 2014; MIT licence), with review lengths drawn to follow IMDb's length
distribution (median 174 words, log-normal sigma 0.75). Ratings in the file names are
drawn from 7-10 (pos) and 1-4 (neg); the urls_*.txt files point to placeholder titles.
Use the real dataset for anything but testing the course's download and training code.
"""


def _rating(rng: random.Random, label: str) -> int:
    return rng.randint(7, 10) if label == "pos" else rng.randint(1, 4) if label == "neg" else 0


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(payload), 1_278_000_000, 0o644  # fixed: a reproducible archive
    tar.addfile(info, io.BytesIO(payload))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mtime, info.mode = tarfile.DIRTYPE, 1_278_000_000, 0o755
    tar.addfile(info)


def build_archive(target: Path) -> dict:
    """Write the replica archive to `target`; return its statistics."""
    positive, negative, everything = review_sentences()
    rng = random.Random(SEED)
    words_used: Counter[str] = Counter()
    lengths: list[int] = []
    samples: list[str] = []
    title = 0
    raw = open(target, "wb")
    with raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6) as packed, \
            tarfile.open(fileobj=packed, mode="w", format=tarfile.GNU_FORMAT) as tar:
        _add_dir(tar, "aclImdb")
        _add(tar, "aclImdb/README", _README.encode())
        for split in ("test", "train"):
            _add_dir(tar, f"aclImdb/{split}")
            for label in ("neg", "pos") + (("unsup",) if split == "train" else ()):
                _add_dir(tar, f"aclImdb/{split}/{label}")
                count = UNSUP_SIZE if label == "unsup" else SPLIT_SIZE
                main, other = {"pos": (positive, negative), "neg": (negative, positive)}.get(label, (everything, None))
                urls = []
                for i in range(count):
                    review = make_review(rng, main, other)
                    _add(tar, f"aclImdb/{split}/{label}/{i}_{_rating(rng, label)}.txt", review.encode("utf-8"))
                    if i % REVIEWS_PER_TITLE == 0:
                        title += 1
                    urls.append(f"http://www.imdb.com/title/tt{title:07d}/usercomments\n")
                    n = len(review.replace("<br /><br />", " ").split())
                    lengths.append(n)
                    if split == "train" and label != "unsup":
                        words_used.update(re.findall(r"[a-z0-9']+", review.lower()))
                    if len(samples) < 2000 and i % 25 == 0:
                        samples.append(review)
                _add(tar, f"aclImdb/{split}/urls_{label}.txt", "".join(urls).encode())
        vocab = "".join(f"{word}\n" for word, _ in words_used.most_common())
        _add(tar, "aclImdb/imdb.vocab", vocab.encode())
    lengths.sort()
    return {"reviews": len(lengths), "mean_words": sum(lengths) / len(lengths),
            "median_words": lengths[len(lengths) // 2], "max_words": lengths[-1], "min_words": lengths[0],
            "samples": samples}


def _share_over_512_tokens(samples: list[str]) -> float:
    from transformers import BertTokenizer

    from course_utils.checkpoints import _minilm_dir

    tokenizer = BertTokenizer(vocab=str(_minilm_dir() / "vocab.txt"))
    over = sum(len(tokenizer(text.replace("<br /><br />", " "))["input_ids"]) > 512 for text in samples)
    return over / len(samples)


def build_imdb_replica(root: Path | None = None) -> tuple[Path, str]:
    """Build (once) the replica archive; return (path, SHA-256). Statistics go to a JSON beside it."""
    from course_utils.data import sha256sum

    folder = (root or replica_root()) / f"imdb-v{IMDB_REPLICA_VERSION}"
    archive, stats_file = folder / ARCHIVE_NAME, folder / "stats.json"
    if not (archive.is_file() and stats_file.is_file()):
        folder.mkdir(parents=True, exist_ok=True)
        handle = tempfile.NamedTemporaryFile(dir=folder, prefix=".building-", suffix=".tar.gz", delete=False)
        handle.close()
        partial = Path(handle.name)
        try:
            stats = build_archive(partial)
            stats["share_over_512_tokens"] = _share_over_512_tokens(stats.pop("samples"))
            stats["sha256"] = sha256sum(partial)
            stats["bytes"] = partial.stat().st_size
            partial.replace(archive)
        finally:
            partial.unlink(missing_ok=True)
        stats_file.write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
    stats = json.loads(stats_file.read_text(encoding="utf-8"))
    return archive, stats["sha256"]


if __name__ == "__main__":
    path, digest = build_imdb_replica()
    print(path, digest)
    print((path.parent / "stats.json").read_text())
