"""Tests of the real-text set (VADER data) with source archives built by the tests, never a real host.

pip itself is exercised against a local --find-links folder with --no-index; the other tests
replace the pip call by a copy of the locally built archive.
"""

from __future__ import annotations

import hashlib
import io
import socket
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from course_utils import cache, data, prepare

MOVIE = [("1", "2.5", "A wonderful, ''moving'' film."), ("2", "-3.1", "Dull and far too long."),
         ("3", "0.2", "It is a film."), ("4", "0.5", "Quite good."), ("5", "-0.5", "Rather weak."),
         ("6", "-0.4", "Mixed."), ("7", "3.9", "Ünïcode masterpiece."), ("8", "-1.25", "I fell asleep.")]
OTHER = [("1_1", "0.4", "Some text."), ("1_2", "-0.9", "Other text.")]


def ground_truth(rows, final_newline: bool = False) -> bytes:
    text = "\r\n".join("\t".join(row) for row in rows) + ("\r\n" if final_newline else "")
    return text.encode("utf-8")


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(payload), 0o644
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


BACKEND = '''import os
def get_requires_for_build_wheel(config_settings=None):
    return []
def prepare_metadata_for_build_wheel(directory, config_settings=None):
    os.makedirs(os.path.join(directory, "vaderSentiment-3.3.2.dist-info"))
    with open(os.path.join(directory, "vaderSentiment-3.3.2.dist-info", "METADATA"), "w") as f:
        f.write("Metadata-Version: 2.1\\nName: vaderSentiment\\nVersion: 3.3.2\\n")
    return "vaderSentiment-3.3.2.dist-info"
'''


def make_sdist(files: dict[str, bytes] | None = None, drop: str | None = None) -> bytes:
    """A vaderSentiment-3.3.2.tar.gz with the real layout (and an in-tree build backend for pip)."""
    files = files if files is not None else {
        "movie": ground_truth(MOVIE), "nyt": ground_truth(OTHER), "amazon": ground_truth(OTHER),
        "tweets": ground_truth(OTHER, final_newline=True)}
    inner = _tar_gz({data.VADER_FILES[kind][0]: payload for kind, payload in files.items() if kind != drop})
    root = "vaderSentiment-3.3.2/"
    return _tar_gz({
        root + "PKG-INFO": b"Metadata-Version: 2.1\nName: vaderSentiment\nVersion: 3.3.2\n",
        root + "pyproject.toml": b'[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n',
        root + "backend.py": BACKEND.encode(),
        data.VADER_INNER: inner,
    })


@pytest.fixture
def vader(monkeypatch, tmp_path):
    """An empty cache, the pins of a small fake data set, and pip replaced by a copy of `sdist`."""
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    for var in ("COURSE_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(data, "VADER_FILES", {kind: (path, len(OTHER) if kind != "movie" else len(MOVIE))
                                              for kind, (path, _) in data.VADER_FILES.items()})
    monkeypatch.setattr(data, "_announced", False)
    state = {"sdist": make_sdist(), "calls": 0}
    monkeypatch.setattr(data, "VADER_SHA256", hashlib.sha256(state["sdist"]).hexdigest())

    def fake_pip(folder: Path) -> None:
        state["calls"] += 1
        (folder / data.VADER_SDIST).write_bytes(state["sdist"])

    monkeypatch.setattr(data, "_pip_download", fake_pip)
    return state


def test_tables_are_parsed_cached_and_reused(vader, tmp_path):
    movie = data.load_vader("movie")
    assert list(movie.columns) == ["id", "score", "text"]
    assert movie.id.tolist() == [row[0] for row in MOVIE]  # ids stay text ("1_1" in the other files)
    assert movie.score.tolist() == [float(row[1]) for row in MOVIE]
    assert movie.text.tolist() == [row[2] for row in MOVIE]  # quotes and Unicode kept exactly
    assert data.load_vader("tweets").id.tolist() == ["1_1", "1_2"]  # a final CRLF is fine
    folder = tmp_path / "cache" / "vader" / data.VADER_TABLES
    assert cache.verify_manifest(folder) == []
    assert sorted(p.name for p in folder.iterdir()) == [".manifest.json", "amazon.csv", "movie.csv", "nyt.csv", "tweets.csv"]
    assert data.sha256sum(tmp_path / "cache" / "vader" / data.VADER_SDIST) == data.VADER_SHA256
    for kind in ("nyt", "amazon"):
        assert len(data.load_vader(kind)) == len(OTHER)
    assert vader["calls"] == 1  # fetched once, then read from the cache
    with pytest.raises(ValueError, match="movie"):
        data.load_vader("imdb")


def test_review_sentences_threshold_and_shuffle(vader):
    df = data.load_review_sentences()
    assert list(df.columns) == ["review", "sentiment"] and df.attrs["source"] == "review-sentences"
    expected = {(text, int(float(score) >= 0.5)) for _, score, text in MOVIE if abs(float(score)) >= 0.5}
    assert set(zip(df.review, df.sentiment)) == expected  # +-0.5 kept, 0.2 and -0.4 dropped
    assert len(df) == 6 and df.attrs["rated"] == len(MOVIE)
    pd.testing.assert_frame_equal(df, data.load_review_sentences())  # deterministic
    assert df.review.tolist() != [text for _, score, text in MOVIE if abs(float(score)) >= 0.5]  # shuffled


def test_checksum_mismatch_keeps_nothing(vader, tmp_path, monkeypatch):
    monkeypatch.setattr(data, "VADER_SHA256", "0" * 64)
    with pytest.raises(data.ChecksumMismatchError, match="pinned"):
        data.load_vader()
    vader_folder = tmp_path / "cache" / "vader"
    assert [p.name for p in vader_folder.iterdir() if not p.name.endswith(".lock")] == []


@pytest.mark.parametrize("drop", ["movie", "inner"])
def test_missing_member_is_a_clear_error(vader, monkeypatch, drop):
    if drop == "inner":
        sdist = _tar_gz({"vaderSentiment-3.3.2/PKG-INFO": b"x"})
    else:
        sdist = make_sdist(drop="movie")
    vader["sdist"] = sdist
    monkeypatch.setattr(data, "VADER_SHA256", hashlib.sha256(sdist).hexdigest())
    with pytest.raises(data.ArchiveError, match="has no .*(movieReviewSnippets|hutto_ICWSM_2014.tar.gz)"):
        data.load_vader("nyt")


@pytest.mark.parametrize(
    "line, reason",
    [(b"9\t1.0", "expected id"), (b"9\tgood\tText", "could not convert"), (b"9\t7.5\tText", "outside"),
     (b"9\t1.0\t\xff\xfe", "not UTF-8"), (b"", "expected id")],
    ids=["two-fields", "bad-score", "score-range", "not-utf8", "empty-line"],
)
def test_malformed_line_is_refused_with_its_number(vader, monkeypatch, line, reason):
    movie = ground_truth(MOVIE[:2]) + b"\r\n" + line + b"\r\n" + ground_truth(MOVIE[2:])
    sdist = make_sdist({"movie": movie, "nyt": ground_truth(OTHER), "amazon": ground_truth(OTHER),
                        "tweets": ground_truth(OTHER)})
    vader["sdist"] = sdist
    monkeypatch.setattr(data, "VADER_SHA256", hashlib.sha256(sdist).hexdigest())
    with pytest.raises(data.ArchiveError, match=reason) as error:
        data.load_vader()
    assert "line 3" in str(error.value) or "UTF-8" in str(error.value)


def test_wrong_row_count_is_refused(vader, monkeypatch):
    monkeypatch.setitem(data.VADER_FILES, "movie", (data.VADER_FILES["movie"][0], 10_605))
    with pytest.raises(data.ArchiveError, match="10,605"):
        data.load_vader()


def test_damaged_table_is_rebuilt_from_the_cached_archive(vader, tmp_path):
    good = data.load_vader()
    table = tmp_path / "cache" / "vader" / data.VADER_TABLES / "movie.csv"
    table.write_text(table.read_text().replace(",2.5,", ",-2.5,"))  # a flipped score: same size
    pd.testing.assert_frame_equal(data.load_vader(), good)
    assert vader["calls"] == 1  # rebuilt from the verified archive, not fetched again


def test_offline_without_cache_gives_generated_and_says_why(vader, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_OFFLINE", "1")
    df = data.load_imdb(n_generated=40)
    assert df.attrs["source"] == "generated" and len(df) == 40
    out = capsys.readouterr().out
    assert "GENERATED" in out and "python -m course_utils.prepare" in out
    assert vader["calls"] == 0
    with pytest.raises(data.DataError, match="offline mode forbids.*course_utils.prepare"):
        data.load_vader()


def test_offline_uses_the_cached_review_sentences_without_network(vader, monkeypatch, capsys):
    data.prepare_vader()
    monkeypatch.setenv("COURSE_OFFLINE", "1")

    def no_network(*args, **kwargs):
        raise AssertionError("the offline path must not touch the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    df = data.load_imdb()
    again = data.load_imdb()
    out = capsys.readouterr().out
    assert df.attrs["source"] == "review-sentences" and len(df) == 6
    pd.testing.assert_frame_equal(df, again)
    assert out.count("REAL movie-review SENTENCES") == 1  # announced once
    for words in ("Rotten Tomatoes", "rated by at least 20 people", "not whole IMDb reviews", f"kept the 6 of {len(MOVIE)}"):
        assert words in out


@pytest.fixture
def only_review_sentences(monkeypatch):
    """prepare's own step only (the stand-in builds are tested with the checkpoints)."""
    monkeypatch.setattr(prepare, "STEPS", [("review sentences", prepare.review_sentences)])


def test_prepare_prints_one_line_and_is_idempotent(vader, capsys, only_review_sentences):
    assert prepare.main([]) == 0
    assert prepare.main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all("review sentences: 6 of 8" in line for line in lines)
    assert vader["calls"] == 1


def test_prepare_reports_failure(vader, monkeypatch, capsys, only_review_sentences):
    monkeypatch.setattr(data, "VADER_SHA256", "1" * 64)
    assert prepare.main([]) == 1
    assert "FAILED" in capsys.readouterr().err


@pytest.fixture
def local_index(tmp_path, monkeypatch):
    """pip restricted to a local folder: no index, no real host."""
    index = tmp_path / "index"
    index.mkdir()
    for var in ("COURSE_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    return index


def test_real_pip_download_from_a_local_folder(monkeypatch, tmp_path, local_index):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    sdist = make_sdist()
    (local_index / data.VADER_SDIST).write_bytes(sdist)
    monkeypatch.setattr(data, "VADER_SHA256", hashlib.sha256(sdist).hexdigest())
    path = data.fetch_vader_sdist()
    assert path.read_bytes() == sdist
    assert [p.name for p in path.parent.iterdir() if not p.name.endswith(".lock")] == [data.VADER_SDIST]


def test_pip_without_index_is_a_clear_error(monkeypatch, tmp_path, local_index):
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(data.DataError, match="pip could not fetch vaderSentiment==3.3.2.*exit code.*prepare"):
        data.fetch_vader_sdist()
    assert not (tmp_path / "cache" / "vader" / data.VADER_SDIST).exists()
    assert not data.review_sentences_cached()


def test_parse_ground_truth_quirks():
    df = data.parse_ground_truth(ground_truth(MOVIE), "m.txt")
    assert df.shape == (len(MOVIE), 3) and df.text[0] == "A wonderful, ''moving'' film."
    assert len(data.parse_ground_truth(ground_truth(MOVIE, final_newline=True), "m.txt")) == len(MOVIE)
